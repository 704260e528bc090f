//! The runtime config file (`spin up --runtime-config-file`): the variable
//! providers. Like Spin 3.6 (`crates/runtime-config/src/variables.rs`), the
//! configured providers come first, in file order, and the default environment
//! provider (`SPIN_VARIABLE`, dotenv `.env`) is always appended. A relative
//! `dotenv_path` is opened relative to the working directory, as Spin does.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use toml::{Table, Value};

use crate::variables::Provider;

/// Reads the providers from a runtime config file (or only the default one).
pub fn providers(path: Option<&Path>) -> Result<Vec<Provider>> {
    let mut providers = match path {
        None => Vec::new(),
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read runtime config file {}", path.display()))?;
            parse(&text)
                .with_context(|| format!("invalid runtime config file {}", path.display()))?
        }
    };
    providers.push(Provider::default_env());
    Ok(providers)
}

/// Parses the providers of a runtime config (without the default provider).
pub fn parse(text: &str) -> Result<Vec<Provider>> {
    let doc: Table = toml::from_str(text).context("TOML syntax error")?;
    for key in doc.keys() {
        match key.as_str() {
            "config_provider" | "variables_provider" => {}
            "key_value_store" | "sqlite_database" | "llm_compute" | "outbound_networking"
            | "otel" | "wasi" | "client_tls" => eprintln!(
                "Warning: runtime config section [{key}] is ignored by spin-local (this project's components do not use it)"
            ),
            other => bail!("`{other}` is not a runtime config section"),
        }
    }
    let Some(list) = doc
        .get("variables_provider")
        .or_else(|| doc.get("config_provider"))
    else {
        return Ok(Vec::new());
    };
    let Value::Array(items) = list else {
        bail!("`config_provider` must be an array of tables ([[config_provider]])");
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let field = format!("config_provider[{i}]");
        let Value::Table(t) = item else {
            bail!("`{field}` must be a table");
        };
        let ty = match t.get("type") {
            Some(Value::String(s)) => s.as_str(),
            Some(_) => bail!("`{field}.type` must be a string"),
            None => bail!("`{field}.type` is missing"),
        };
        match ty {
            "env" => {
                for k in t.keys() {
                    if !["type", "prefix", "dotenv_path"].contains(&k.as_str()) {
                        bail!("`{field}.{k}` is not a field of the env provider (prefix, dotenv_path)");
                    }
                }
                let prefix = match t.get("prefix") {
                    None => None,
                    Some(Value::String(s)) => Some(s.clone()),
                    Some(_) => bail!("`{field}.prefix` must be a string"),
                };
                let dotenv_path = match t.get("dotenv_path") {
                    None => None,
                    Some(Value::String(s)) => Some(PathBuf::from(s)),
                    Some(_) => bail!("`{field}.dotenv_path` must be a string"),
                };
                out.push(Provider::env(prefix, dotenv_path));
            }
            "static" => {
                let values = match t.get("values") {
                    Some(Value::Table(v)) => v
                        .iter()
                        .map(|(k, v)| match v {
                            Value::String(s) => Ok((k.clone(), s.clone())),
                            _ => bail!("`{field}.values.{k}` must be a string"),
                        })
                        .collect::<Result<HashMap<_, _>>>()?,
                    _ => bail!("`{field}.values` must be a table"),
                };
                out.push(Provider::Static {
                    name: format!("runtime config {field}"),
                    values,
                });
            }
            other => bail!(
                "`{field}.type = {other:?}` is not supported by spin-local (env and static are); production uses SpinKube"
            ),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_provider_and_default_appended() {
        let p = parse(
            "[[config_provider]]\ntype = \"env\"\nprefix = \"SPIN_VARIABLE\"\ndotenv_path = \"runtime-config/local.env\"\n",
        )
        .unwrap();
        assert_eq!(p.len(), 1);
        assert_eq!(
            p[0].describe(),
            "environment (SPIN_VARIABLE_*, dotenv runtime-config/local.env)"
        );
        let all = providers(None).unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!(
            all[0].describe(),
            "environment (SPIN_VARIABLE_*, dotenv .env)"
        );
    }

    #[test]
    fn project_runtime_configs_parse() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../runtime-config");
        for f in ["local.toml", "aks.toml"] {
            let p = providers(Some(&dir.join(f))).unwrap();
            assert_eq!(p.len(), 2, "{f}");
        }
    }

    #[test]
    fn errors() {
        assert!(format!(
            "{:#}",
            parse("[[config_provider]]\ntype = \"vault\"\n").unwrap_err()
        )
        .contains("config_provider[0].type"));
        assert!(format!(
            "{:#}",
            parse("[[config_provider]]\nprefix = \"X\"\n").unwrap_err()
        )
        .contains("config_provider[0].type"));
        assert!(format!(
            "{:#}",
            parse("[[config_provider]]\ntype = \"env\"\npath = \"x\"\n").unwrap_err()
        )
        .contains("config_provider[0].path"));
        assert!(parse("bogus = 1\n").is_err());
        let s =
            parse("[[variables_provider]]\ntype = \"static\"\nvalues = { a = \"1\" }\n").unwrap();
        assert_eq!(s.len(), 1);
    }
}
