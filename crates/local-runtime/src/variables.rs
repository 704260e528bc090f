//! Spin variables: `{{ name }}` templates, name validation and the resolution
//! of application variables from providers, the same order as Spin 3.6:
//!
//! 1. `--variable name=value` on the command line (like `spin up --variable`),
//! 2. the `[[config_provider]]`/`[[variables_provider]]` entries of the runtime
//!    config file, in file order,
//! 3. the environment provider Spin always appends (prefix `SPIN_VARIABLE`,
//!    dotenv file `.env` in the working directory),
//! 4. the variable's `default` in `spin.toml`.
//!
//! A variable with no value from any of these is an error if it is `required`.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::OnceLock;

use anyhow::{bail, Context, Result};

use crate::manifest::Variable;

/// The prefix of Spin's default environment provider.
pub const DEFAULT_ENV_PREFIX: &str = "SPIN_VARIABLE";

/// A template: literal text with `{{ variable }}` expressions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    Lit(String),
    Expr(String),
}

impl Template {
    /// Parses a template the way Spin's `spin-expressions` does.
    pub fn new(template: &str) -> Result<Self> {
        let mut parts = Vec::new();
        let mut rest = template;
        while !rest.is_empty() {
            if let Some(expr_rest) = rest.strip_prefix("{{") {
                let Some((expr, after)) = expr_rest.split_once("}}") else {
                    bail!("unmatched '{{{{' in template {template:?}");
                };
                parts.push(Part::Expr(expr.trim().to_string()));
                rest = after;
            } else if let Some(idx) = rest.find("{{") {
                parts.push(Part::Lit(rest[..idx].to_string()));
                rest = &rest[idx..];
            } else {
                parts.push(Part::Lit(rest.to_string()));
                rest = "";
            }
        }
        Ok(Self { parts })
    }

    /// The variable names the template refers to.
    pub fn variables(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Part::Expr(e) => Some(e.as_str()),
            Part::Lit(_) => None,
        })
    }

    /// Expands the template with resolved application variables.
    pub fn render(&self, values: &HashMap<String, String>) -> Result<String> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Lit(l) => out.push_str(l),
                Part::Expr(name) => out.push_str(
                    values
                        .get(name)
                        .with_context(|| format!("unknown variable {name:?}"))?,
                ),
            }
        }
        Ok(out)
    }
}

/// Validates a variable name with Spin's rules.
pub fn validate_name(key: &str) -> std::result::Result<(), String> {
    let reason = if key.is_empty() {
        "must not be empty".to_string()
    } else if let Some(c) = key
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_'))
    {
        format!("invalid character {c:?}. Variable names may contain only lower-case letters, numbers, and underscores.")
    } else if !key.as_bytes()[0].is_ascii_lowercase() {
        "must start with a lowercase ASCII letter".to_string()
    } else if !key.as_bytes()[key.len() - 1].is_ascii_alphanumeric() {
        "must end with a lowercase ASCII letter or digit".to_string()
    } else if key.contains("__") {
        "must not contain multiple consecutive underscores".to_string()
    } else {
        return Ok(());
    };
    Err(format!("{key:?}: {reason}"))
}

/// A source of application variable values.
pub enum Provider {
    /// Fixed values (`--variable`, or a runtime-config `static` provider).
    Static {
        name: String,
        values: HashMap<String, String>,
    },
    /// Environment variables `<PREFIX>_<NAME>`, falling back to a dotenv file.
    Env {
        prefix: String,
        dotenv_path: Option<PathBuf>,
        dotenv: OnceLock<HashMap<String, String>>,
    },
}

impl std::fmt::Debug for Provider {
    // Values may be secrets: only the description is shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

impl Provider {
    pub fn env(prefix: Option<String>, dotenv_path: Option<PathBuf>) -> Self {
        Provider::Env {
            prefix: prefix.unwrap_or_else(|| DEFAULT_ENV_PREFIX.to_string()),
            dotenv_path,
            dotenv: OnceLock::new(),
        }
    }

    /// Spin's always-present default provider.
    pub fn default_env() -> Self {
        Self::env(None, Some(PathBuf::from(".env")))
    }

    /// Looks a variable up; `env` reads the process environment.
    fn get(&self, name: &str, env: &dyn Fn(&str) -> Option<String>) -> Option<String> {
        match self {
            Provider::Static { values, .. } => values.get(name).cloned(),
            Provider::Env {
                prefix,
                dotenv_path,
                dotenv,
            } => {
                let key = if prefix.is_empty() {
                    name.to_ascii_uppercase()
                } else {
                    format!("{prefix}_{}", name.to_ascii_uppercase())
                };
                if let Some(v) = env(&key) {
                    return Some(v);
                }
                let path = dotenv_path.as_ref()?;
                // Like Spin: a missing or unreadable dotenv file contributes nothing.
                dotenv
                    .get_or_init(|| {
                        dotenvy::from_path_iter(path)
                            .into_iter()
                            .flatten()
                            .filter_map(|r| r.ok())
                            .collect()
                    })
                    .get(&key)
                    .cloned()
            }
        }
    }

    /// A short description for messages.
    pub fn describe(&self) -> String {
        match self {
            Provider::Static { name, .. } => name.clone(),
            Provider::Env {
                prefix,
                dotenv_path,
                ..
            } => match dotenv_path {
                Some(p) => format!("environment ({prefix}_*, dotenv {})", p.display()),
                None => format!("environment ({prefix}_*)"),
            },
        }
    }
}

/// Resolves every application variable, or fails naming the required
/// variables that have no value.
pub fn resolve_all(
    variables: &BTreeMap<String, Variable>,
    providers: &[Provider],
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<HashMap<String, String>> {
    let mut values = HashMap::new();
    let mut missing = Vec::new();
    for (name, var) in variables {
        let value = providers
            .iter()
            .find_map(|p| p.get(name, env))
            .or_else(|| var.default.clone());
        match value {
            Some(v) => {
                values.insert(name.clone(), v);
            }
            None => missing.push(name.clone()),
        }
    }
    if !missing.is_empty() {
        let hints = missing
            .iter()
            .map(|n| {
                format!(
                    "  - {n} (set {DEFAULT_ENV_PREFIX}_{} or pass --variable {n}=...)",
                    n.to_ascii_uppercase()
                )
            })
            .collect::<Vec<_>>()
            .join("\n");
        let checked = providers
            .iter()
            .map(Provider::describe)
            .collect::<Vec<_>>()
            .join("; ");
        bail!(
            "no provider resolved required variable(s): {}\n{hints}\nProviders checked: {checked}",
            missing.join(", ")
        );
    }
    Ok(values)
}

/// Resolves a component's `[component.x.variables]` templates.
pub fn resolve_component(
    component_vars: &BTreeMap<String, Template>,
    app_values: &HashMap<String, String>,
) -> Result<HashMap<String, String>> {
    component_vars
        .iter()
        .map(|(k, t)| Ok((k.clone(), t.render(app_values)?)))
        .collect()
}

/// Parses a `KEY=VALUE` argument (`--env`).
pub fn parse_kv(s: &str) -> std::result::Result<(String, String), String> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| format!("expected NAME=VALUE, got {s:?}"))?;
    Ok((k.trim().to_string(), v.to_string()))
}

/// Reads `--variable` arguments with the forms `spin up` accepts:
/// `name=value`, `name=@file` (the file's text), `@file.json` and
/// `@file.toml` (string keys to string values).
pub fn cli_variables(args: &[String]) -> Result<HashMap<String, String>> {
    let mut out = HashMap::new();
    for arg in args {
        if let Some(path) = arg.strip_prefix('@') {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("--variable {arg}: cannot read {path}"))?;
            let values: HashMap<String, String> = if path.ends_with(".json") {
                serde_json::from_str(&text).with_context(|| {
                    format!("--variable {arg}: expected a JSON object of string values")
                })?
            } else if path.ends_with(".toml") {
                toml::from_str(&text).with_context(|| {
                    format!("--variable {arg}: expected a TOML table of string values")
                })?
            } else {
                bail!("--variable {arg}: a file of variables must be .json or .toml");
            };
            out.extend(values);
        } else {
            let (k, v) = parse_kv(arg).map_err(|e| anyhow::anyhow!("--variable: {e}"))?;
            let v = match v.strip_prefix('@') {
                Some(path) => std::fs::read_to_string(path)
                    .with_context(|| format!("--variable {k}: cannot read {path}"))?,
                None => v,
            };
            out.insert(k, v);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn var(default: Option<&str>, required: bool) -> Variable {
        Variable {
            default: default.map(str::to_string),
            required,
            secret: false,
        }
    }

    #[test]
    fn template_parts_and_render() {
        let t = Template::new("redis://{{ redis_host }}/{{db}}").unwrap();
        assert_eq!(t.variables().collect::<Vec<_>>(), ["redis_host", "db"]);
        let values = HashMap::from([
            ("redis_host".to_string(), "h:1".to_string()),
            ("db".to_string(), "0".to_string()),
        ]);
        assert_eq!(t.render(&values).unwrap(), "redis://h:1/0");
        assert_eq!(Template::new("plain").unwrap().variables().count(), 0);
        assert_eq!(Template::new("").unwrap().variables().count(), 0);
        assert!(Template::new("{{ a }}{{ b }}").unwrap().variables().count() == 2);
    }

    #[test]
    fn template_errors() {
        assert!(Template::new("{{ matched }} {{ unmatched").is_err());
        let t = Template::new("{{ nope }}").unwrap();
        assert!(t.render(&HashMap::new()).is_err());
    }

    #[test]
    fn names() {
        for good in ["a", "abc", "a1b2c3", "a_1", "a_1_b_3", "redis_host"] {
            validate_name(good).unwrap();
        }
        for bad in ["", "aX", "1bc", "_x", "x.y", "x_", "a__b", "x-y"] {
            assert!(validate_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn resolution_order() {
        let vars = BTreeMap::from([
            ("a".to_string(), var(Some("default-a"), false)),
            ("b".to_string(), var(Some("default-b"), false)),
            ("c".to_string(), var(None, true)),
            ("d".to_string(), var(Some("default-d"), false)),
        ]);
        let dir = std::env::temp_dir().join(format!("spin-local-vars-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let dotenv = dir.join("x.env");
        std::fs::write(
            &dotenv,
            "APP_B=dotenv-b\nAPP_C=dotenv-c\nSPIN_VARIABLE_D=ignored\n",
        )
        .unwrap();
        let providers = vec![
            Provider::Static {
                name: "--variable".into(),
                values: HashMap::from([("a".to_string(), "cli-a".to_string())]),
            },
            Provider::env(Some("APP".into()), Some(dotenv)),
            Provider::default_env(),
        ];
        let env = |k: &str| match k {
            "APP_A" => Some("env-a".to_string()),
            "APP_B" => Some("env-b".to_string()),
            "SPIN_VARIABLE_C" => Some("default-env-c".to_string()),
            _ => None,
        };
        let values = resolve_all(&vars, &providers, &env).unwrap();
        // --variable beats every provider.
        assert_eq!(values["a"], "cli-a");
        // The environment beats the provider's dotenv file.
        assert_eq!(values["b"], "env-b");
        // A configured provider (via its dotenv) beats the default env provider.
        assert_eq!(values["c"], "dotenv-c");
        // Nothing set: the manifest default.
        assert_eq!(values["d"], "default-d");
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn default_env_provider_and_missing_dotenv() {
        let vars = BTreeMap::from([("api_keys".to_string(), var(None, true))]);
        let providers = vec![Provider::env(None, Some("/nonexistent/.env".into()))];
        let env = |k: &str| (k == "SPIN_VARIABLE_API_KEYS").then(|| "k".to_string());
        assert_eq!(
            resolve_all(&vars, &providers, &env).unwrap()["api_keys"],
            "k"
        );
    }

    #[test]
    fn missing_required_names_the_variables() {
        let vars = BTreeMap::from([
            ("api_keys".to_string(), var(None, true)),
            ("admin_token".to_string(), var(None, true)),
            ("x".to_string(), var(Some("1"), false)),
        ]);
        let err = resolve_all(&vars, &[Provider::default_env()], &|_| None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("admin_token, api_keys"), "{err}");
        assert!(err.contains("SPIN_VARIABLE_API_KEYS"), "{err}");
    }

    #[test]
    fn component_templates() {
        let app = HashMap::from([("redis_host".to_string(), "127.0.0.1:6379".to_string())]);
        let comp = BTreeMap::from([
            (
                "redis_address".to_string(),
                Template::new("redis://{{ redis_host }}").unwrap(),
            ),
            ("fixed".to_string(), Template::new("x").unwrap()),
        ]);
        let v = resolve_component(&comp, &app).unwrap();
        assert_eq!(v["redis_address"], "redis://127.0.0.1:6379");
        assert_eq!(v["fixed"], "x");
    }

    #[test]
    fn cli_variable_forms() {
        let dir = std::env::temp_dir().join(format!("spin-local-cli-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let text = dir.join("v.txt");
        std::fs::write(&text, "{\"a\": 1}").unwrap();
        let json = dir.join("v.json");
        std::fs::write(&json, r#"{"j": "1", "k": "2"}"#).unwrap();
        let toml = dir.join("v.toml");
        std::fs::write(&toml, "t = \"3\"\n").unwrap();
        let args = [
            "x=plain".to_string(),
            format!("f=@{}", text.display()),
            format!("@{}", json.display()),
            format!("@{}", toml.display()),
        ];
        let v = cli_variables(&args).unwrap();
        assert_eq!(v["x"], "plain");
        assert_eq!(v["f"], "{\"a\": 1}");
        assert_eq!(
            (v["j"].as_str(), v["k"].as_str(), v["t"].as_str()),
            ("1", "2", "3")
        );
        std::fs::write(&json, r#"{"n": 1}"#).unwrap();
        assert!(cli_variables(&[format!("@{}", json.display())]).is_err());
        assert!(cli_variables(&[format!("@{}", text.display())]).is_err());
        assert!(cli_variables(&["novalue".to_string()]).is_err());
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn kv_args() {
        assert_eq!(parse_kv("a=b=c").unwrap(), ("a".into(), "b=c".into()));
        assert!(parse_kv("novalue").is_err());
    }
}
