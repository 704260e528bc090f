//! Reading a Spin manifest (`spin.toml`, manifest version 2).
//!
//! Only what a local run needs is modelled; every error names the field.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use toml::{Table, Value};

use crate::variables::{validate_name, Template};

/// An application variable (`[variables]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Variable {
    pub default: Option<String>,
    pub required: bool,
    pub secret: bool,
}

/// `[[trigger.http]]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpTrigger {
    pub route: String,
    pub component: String,
}

/// `[[trigger.redis]]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RedisTrigger {
    pub channel: String,
    pub component: String,
    /// Overrides `[application.trigger.redis] address` (a template).
    pub address: Option<String>,
}

/// `[component.<id>]`.
#[derive(Clone, Debug)]
pub struct Component {
    /// Absolute path of the `.wasm` file.
    pub source: PathBuf,
    /// As written in the manifest, relative to the manifest directory.
    pub source_raw: String,
    /// Templates, resolved against application variables at start-up.
    pub allowed_outbound_hosts: Vec<Template>,
    pub variables: BTreeMap<String, Template>,
    pub environment: BTreeMap<String, String>,
}

/// A parsed manifest.
#[derive(Clone, Debug)]
pub struct App {
    pub path: PathBuf,
    pub dir: PathBuf,
    pub name: String,
    /// `[application] version`, if set.
    pub version: Option<String>,
    pub variables: BTreeMap<String, Variable>,
    /// `[application.trigger.redis] address` (a template).
    pub redis_address: Option<String>,
    pub http_triggers: Vec<HttpTrigger>,
    pub redis_triggers: Vec<RedisTrigger>,
    pub components: BTreeMap<String, Component>,
}

fn type_name(v: &Value) -> &'static str {
    v.type_str()
}

fn get_str(t: &Table, key: &str, field: &str) -> Result<Option<String>> {
    match t.get(key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => bail!("`{field}` must be a string, found {}", type_name(other)),
    }
}

fn req_str(t: &Table, key: &str, field: &str) -> Result<String> {
    get_str(t, key, field)?.ok_or_else(|| anyhow!("`{field}` is missing"))
}

fn get_table<'a>(t: &'a Table, key: &str, field: &str) -> Result<Option<&'a Table>> {
    match t.get(key) {
        None => Ok(None),
        Some(Value::Table(t)) => Ok(Some(t)),
        Some(other) => bail!("`{field}` must be a table, found {}", type_name(other)),
    }
}

fn get_bool(t: &Table, key: &str, field: &str) -> Result<bool> {
    match t.get(key) {
        None => Ok(false),
        Some(Value::Boolean(b)) => Ok(*b),
        Some(other) => bail!("`{field}` must be a boolean, found {}", type_name(other)),
    }
}

fn string_map(t: &Table, field: &str) -> Result<BTreeMap<String, String>> {
    t.iter()
        .map(|(k, v)| match v {
            Value::String(s) => Ok((k.clone(), s.clone())),
            other => bail!("`{field}.{k}` must be a string, found {}", type_name(other)),
        })
        .collect()
}

fn parse_template(
    s: &str,
    field: &str,
    variables: &BTreeMap<String, Variable>,
) -> Result<Template> {
    let t = Template::new(s).with_context(|| format!("`{field}` is not a valid template"))?;
    for v in t.variables() {
        if !variables.contains_key(v) {
            bail!("`{field}` refers to unknown variable {v:?} (declare it under [variables])");
        }
    }
    Ok(t)
}

impl App {
    /// Reads and validates the manifest at `path`.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read manifest {}", path.display()))?;
        let dir = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        let dir = if dir.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            dir
        };
        let dir = dir
            .canonicalize()
            .with_context(|| format!("cannot resolve directory {}", dir.display()))?;
        Self::parse(&text, path, &dir)
            .with_context(|| format!("invalid manifest {}", path.display()))
    }

    /// Parses manifest text; `dir` anchors relative `source` paths.
    pub fn parse(text: &str, path: &Path, dir: &Path) -> Result<Self> {
        let doc: Table = toml::from_str(text).context("TOML syntax error")?;

        match doc.get("spin_manifest_version") {
            Some(Value::Integer(2)) => {}
            Some(Value::String(s)) if s == "2" => {}
            Some(other) => bail!(
                "`spin_manifest_version` must be 2 (this runtime reads manifest v2 only), found {other}"
            ),
            None => bail!("`spin_manifest_version` is missing (expected 2)"),
        }

        let application = get_table(&doc, "application", "application")?
            .ok_or_else(|| anyhow!("`[application]` is missing"))?;
        let name = req_str(application, "name", "application.name")?;
        let version = get_str(application, "version", "application.version")?;
        let redis_address = match get_table(application, "trigger", "application.trigger")? {
            Some(t) => match get_table(t, "redis", "application.trigger.redis")? {
                Some(r) => get_str(r, "address", "application.trigger.redis.address")?,
                None => None,
            },
            None => None,
        };

        let mut variables = BTreeMap::new();
        if let Some(vars) = get_table(&doc, "variables", "variables")? {
            for (k, v) in vars {
                let field = format!("variables.{k}");
                validate_name(k).map_err(|e| anyhow!("`{field}`: invalid variable name {e}"))?;
                let Value::Table(vt) = v else {
                    bail!("`{field}` must be a table like {{ default = \"...\" }} or {{ required = true }}");
                };
                for key in vt.keys() {
                    if !["default", "required", "secret", "description"].contains(&key.as_str()) {
                        bail!("`{field}.{key}` is not a variable field (expected default, required, secret, description)");
                    }
                }
                let default = get_str(vt, "default", &format!("{field}.default"))?;
                let required = get_bool(vt, "required", &format!("{field}.required"))?;
                let secret = get_bool(vt, "secret", &format!("{field}.secret"))?;
                match (&default, required) {
                    (Some(_), true) => {
                        bail!("`{field}`: a variable cannot be both required and have a default")
                    }
                    (None, false) => {
                        bail!("`{field}`: a variable must either be required or have a default")
                    }
                    _ => {}
                }
                variables.insert(
                    k.clone(),
                    Variable {
                        default,
                        required,
                        secret,
                    },
                );
            }
        }
        if let Some(addr) = &redis_address {
            parse_template(addr, "application.trigger.redis.address", &variables)?;
        }

        let mut components = BTreeMap::new();
        if let Some(comps) = get_table(&doc, "component", "component")? {
            for (id, v) in comps {
                let field = format!("component.{id}");
                let Value::Table(ct) = v else {
                    bail!("`{field}` must be a table");
                };
                let source_raw = match ct.get("source") {
                    Some(Value::String(s)) => s.clone(),
                    Some(Value::Table(_)) => bail!(
                        "`{field}.source`: remote sources (url/digest/registry) are not supported by spin-local; build the component and point `source` at the .wasm file"
                    ),
                    Some(other) => bail!("`{field}.source` must be a string, found {}", type_name(other)),
                    None => bail!("`{field}.source` is missing"),
                };
                let source = dir.join(&source_raw);
                let allowed_outbound_hosts = match ct.get("allowed_outbound_hosts") {
                    None => Vec::new(),
                    Some(Value::Array(a)) => a
                        .iter()
                        .enumerate()
                        .map(|(i, h)| match h {
                            Value::String(s) => parse_template(
                                s,
                                &format!("{field}.allowed_outbound_hosts[{i}]"),
                                &variables,
                            ),
                            other => bail!(
                                "`{field}.allowed_outbound_hosts[{i}]` must be a string, found {}",
                                type_name(other)
                            ),
                        })
                        .collect::<Result<_>>()?,
                    Some(other) => bail!(
                        "`{field}.allowed_outbound_hosts` must be an array of strings, found {}",
                        type_name(other)
                    ),
                };
                if ct.contains_key("allowed_http_hosts") {
                    bail!("`{field}.allowed_http_hosts` is not supported in manifest v2; use allowed_outbound_hosts");
                }
                let mut comp_vars = BTreeMap::new();
                if let Some(vt) = get_table(ct, "variables", &format!("{field}.variables"))? {
                    for (k, s) in string_map(vt, &format!("{field}.variables"))? {
                        validate_name(&k).map_err(|e| {
                            anyhow!("`{field}.variables.{k}`: invalid variable name {e}")
                        })?;
                        let t = parse_template(&s, &format!("{field}.variables.{k}"), &variables)?;
                        comp_vars.insert(k, t);
                    }
                }
                let environment =
                    match get_table(ct, "environment", &format!("{field}.environment"))? {
                        Some(t) => string_map(t, &format!("{field}.environment"))?,
                        None => BTreeMap::new(),
                    };
                for unsupported in [
                    "files",
                    "key_value_stores",
                    "sqlite_databases",
                    "ai_models",
                    "dependencies",
                ] {
                    if let Some(v) = ct.get(unsupported) {
                        let empty = matches!(v, Value::Array(a) if a.is_empty())
                            || matches!(v, Value::Table(t) if t.is_empty());
                        if !empty {
                            bail!("`{field}.{unsupported}` is not supported by spin-local (this project's components do not use it)");
                        }
                    }
                }
                components.insert(
                    id.clone(),
                    Component {
                        source,
                        source_raw,
                        allowed_outbound_hosts,
                        variables: comp_vars,
                        environment,
                    },
                );
            }
        }

        let mut http_triggers = Vec::new();
        let mut redis_triggers = Vec::new();
        if let Some(triggers) = get_table(&doc, "trigger", "trigger")? {
            for (kind, list) in triggers {
                let Value::Array(items) = list else {
                    bail!("`trigger.{kind}` must be an array of tables ([[trigger.{kind}]])");
                };
                for (i, item) in items.iter().enumerate() {
                    let field = format!("trigger.{kind}[{i}]");
                    let Value::Table(t) = item else {
                        bail!("`{field}` must be a table");
                    };
                    let component = match t.get("component") {
                        Some(Value::String(s)) => s.clone(),
                        Some(Value::Table(_)) => bail!("`{field}.component`: inline components are not supported by spin-local; declare [component.<id>] and reference it by id"),
                        Some(other) => bail!("`{field}.component` must be a string, found {}", type_name(other)),
                        None => bail!("`{field}.component` is missing"),
                    };
                    if !components.contains_key(&component) {
                        bail!("`{field}.component` refers to unknown component {component:?}");
                    }
                    match kind.as_str() {
                        "http" => {
                            if t.contains_key("static_response") {
                                bail!("`{field}.static_response` is not supported by spin-local");
                            }
                            if let Some(exec) = get_table(t, "executor", &format!("{field}.executor"))? {
                                let ty = get_str(exec, "type", &format!("{field}.executor.type"))?;
                                if ty.as_deref() != Some("http") {
                                    bail!("`{field}.executor`: only the default (wasi-http) executor is supported by spin-local");
                                }
                            }
                            match t.get("route") {
                                Some(Value::String(route)) => http_triggers.push(HttpTrigger {
                                    route: route.clone(),
                                    component,
                                }),
                                Some(Value::Table(p)) => {
                                    if p.get("private") != Some(&Value::Boolean(true)) {
                                        bail!("`{field}.route` must be a string pattern or {{ private = true }}");
                                    }
                                }
                                Some(other) => bail!("`{field}.route` must be a string, found {}", type_name(other)),
                                None => bail!("`{field}.route` is missing"),
                            }
                        }
                        "redis" => {
                            let channel = req_str(t, "channel", &format!("{field}.channel"))?;
                            parse_template(&channel, &format!("{field}.channel"), &variables)?;
                            let address = get_str(t, "address", &format!("{field}.address"))?;
                            if let Some(a) = &address {
                                parse_template(a, &format!("{field}.address"), &variables)?;
                            } else if redis_address.is_none() {
                                bail!("`{field}` has no `address` and `[application.trigger.redis] address` is not set");
                            }
                            redis_triggers.push(RedisTrigger {
                                channel,
                                component,
                                address,
                            });
                        }
                        other => bail!("`trigger.{other}`: trigger type {other:?} is not supported by spin-local (http and redis are)"),
                    }
                }
            }
        }

        Ok(Self {
            path: path.to_path_buf(),
            dir: dir.to_path_buf(),
            name,
            version,
            variables,
            redis_address,
            http_triggers,
            redis_triggers,
            components,
        })
    }

    /// Keeps only the given components and their triggers, like
    /// `spin up --component-id` and SpinKube's `components:`.
    pub fn retain_components(&mut self, ids: &[String]) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        for id in ids {
            if !self.components.contains_key(id) {
                let known = self
                    .components
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ");
                bail!("--component-id {id:?}: no such component (the manifest has: {known})");
            }
        }
        self.components.retain(|id, _| ids.contains(id));
        self.http_triggers.retain(|t| ids.contains(&t.component));
        self.redis_triggers.retain(|t| ids.contains(&t.component));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
spin_manifest_version = 2
[application]
name = "demo"
[application.trigger.redis]
address = "redis://{{ redis_host }}"
[variables]
redis_host = { default = "127.0.0.1:6379" }
api_keys = { required = true, secret = true }
[[trigger.http]]
route = "/..."
component = "api"
[[trigger.http]]
route = { private = true }
component = "api"
[[trigger.redis]]
channel = "jobs"
component = "worker"
[component.api]
source = "target/api.wasm"
allowed_outbound_hosts = ["redis://{{ redis_host }}"]
environment = { RUST_LOG = "info" }
[component.api.variables]
keys = "{{ api_keys }}"
[component.api.build]
command = "cargo build"
[component.worker]
source = "target/worker.wasm"
"#;

    fn parse(text: &str) -> Result<App> {
        App::parse(text, Path::new("spin.toml"), Path::new("/app"))
    }

    fn err(text: &str) -> String {
        format!("{:#}", parse(text).unwrap_err())
    }

    #[test]
    fn parses_the_manifest() {
        let app = parse(GOOD).unwrap();
        assert_eq!(app.name, "demo");
        assert_eq!(
            app.redis_address.as_deref(),
            Some("redis://{{ redis_host }}")
        );
        assert_eq!(app.http_triggers.len(), 1);
        assert_eq!(app.redis_triggers[0].channel, "jobs");
        let api = &app.components["api"];
        assert_eq!(api.source, Path::new("/app/target/api.wasm"));
        assert_eq!(api.environment["RUST_LOG"], "info");
        assert!(app.variables["api_keys"].required);
        assert!(app.variables["api_keys"].secret);
        assert_eq!(
            app.variables["redis_host"].default.as_deref(),
            Some("127.0.0.1:6379")
        );
    }

    #[test]
    fn parses_the_project_manifest() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let app = App::load(&dir.join("spin.toml")).unwrap();
        assert_eq!(
            app.components.keys().collect::<Vec<_>>(),
            ["api", "worker", "worker-health"]
        );
        assert_eq!(app.redis_triggers.len(), 1);
        assert_eq!(app.http_triggers.len(), 2);
    }

    #[test]
    fn errors_name_the_field() {
        let cases = [
            (
                GOOD.replace("spin_manifest_version = 2", "spin_manifest_version = 1"),
                "spin_manifest_version",
            ),
            (GOOD.replace("name = \"demo\"", ""), "application.name"),
            (
                GOOD.replace("source = \"target/worker.wasm\"", ""),
                "component.worker.source",
            ),
            (
                GOOD.replace("source = \"target/worker.wasm\"", "source = 3"),
                "component.worker.source",
            ),
            (
                GOOD.replace("component = \"worker\"", "component = \"nope\""),
                "trigger.redis[0].component",
            ),
            (
                GOOD.replace("channel = \"jobs\"", ""),
                "trigger.redis[0].channel",
            ),
            (
                GOOD.replace("{{ api_keys }}", "{{ nope }}"),
                "component.api.variables.keys",
            ),
            (
                GOOD.replace("redis://{{ redis_host }}\"]", "redis://{{ x }}\"]"),
                "component.api.allowed_outbound_hosts[0]",
            ),
            (
                GOOD.replace("{ required = true, secret = true }", "{ secret = true }"),
                "variables.api_keys",
            ),
            (
                GOOD.replace(
                    "{ required = true, secret = true }",
                    "{ required = true, default = \"x\" }",
                ),
                "variables.api_keys",
            ),
            (
                GOOD.replace("api_keys = {", "Api_Keys = {"),
                "variables.Api_Keys",
            ),
            (
                GOOD.replace(
                    "[[trigger.http]]\nroute = \"/...\"",
                    "[[trigger.cron]]\nroute = \"/...\"",
                ),
                "trigger.cron",
            ),
            (
                GOOD.replace("route = \"/...\"", ""),
                "trigger.http[0].route",
            ),
            (format!("{GOOD}\n[x\n"), "TOML syntax error"),
        ];
        for (text, field) in cases {
            let e = err(&text);
            assert!(e.contains(field), "expected {field:?} in: {e}");
        }
    }

    #[test]
    fn selective_deployment() {
        let mut app = parse(GOOD).unwrap();
        app.retain_components(&["worker".to_string()]).unwrap();
        assert!(app.http_triggers.is_empty());
        assert_eq!(app.redis_triggers.len(), 1);
        assert_eq!(app.components.len(), 1);
        let e = parse(GOOD)
            .unwrap()
            .retain_components(&["nope".to_string()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("nope") && e.contains("api, worker"), "{e}");
    }
}
