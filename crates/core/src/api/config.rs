//! The API's own settings, read from Spin variables.

use std::fmt;

use sha2::{Digest, Sha256};

use super::routes::RouteId;
pub use crate::config::ConfigError;
use crate::config::{BlobAuth, BlobConfig, HttpTimeouts, PipelineConfig, SubmitLimits};
use crate::log::Level;

/// Default for `max_body_bytes`: 8 MiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

/// One tenant's API key, kept only as its SHA-256 digest.
#[derive(Clone)]
pub(crate) struct TenantKey {
    pub(crate) tenant: String,
    pub(crate) digest: [u8; 32],
}

/// The API keys (`api_keys`) and the operator token (`admin_token`).
///
/// Only SHA-256 digests are kept, and `Debug` prints tenant names only.
#[derive(Clone)]
pub struct Credentials {
    pub(crate) keys: Vec<TenantKey>,
    /// `None` when the request's route did not read `admin_token`: then no
    /// token is the operator's.
    pub(crate) admin: Option<[u8; 32]>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tenants: Vec<&str> = self.keys.iter().map(|k| k.tenant.as_str()).collect();
        f.debug_struct("Credentials")
            .field("tenants", &tenants)
            .field("admin_token", &"<redacted>")
            .finish()
    }
}

fn invalid(name: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        name,
        reason: reason.into(),
    }
}

pub(crate) fn digest(secret: &[u8]) -> [u8; 32] {
    Sha256::digest(secret).into()
}

/// Whether `tenant` is 1..=63 of `[a-z0-9-]`.
pub fn valid_tenant(tenant: &str) -> bool {
    (1..=63).contains(&tenant.len())
        && tenant
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

fn valid_secret(secret: &str) -> bool {
    !secret.is_empty() && secret.bytes().all(|b| (0x21..=0x7e).contains(&b))
}

impl Credentials {
    /// Parse `api_keys` (`tenant:key,tenant:key`) and `admin_token`.
    ///
    /// Keys must be non-empty visible ASCII and unique; a tenant may have several keys;
    /// the admin token must differ from every API key.
    pub fn parse(api_keys: &str, admin_token: &str) -> Result<Self, ConfigError> {
        let keys = Self::parse_keys(api_keys)?;
        let admin = Self::parse_admin(admin_token)?;
        if keys.keys.iter().any(|k| Some(k.digest) == admin.admin) {
            return Err(invalid("admin_token", "must differ from every API key"));
        }
        Ok(Self {
            keys: keys.keys,
            admin: admin.admin,
        })
    }

    /// Only the tenants' keys (`api_keys`), for a tenant route: no token is
    /// the operator's. That the operator token differs from every key is
    /// checked where both are read ([`Credentials::parse`], `/readyz`).
    pub fn parse_keys(api_keys: &str) -> Result<Self, ConfigError> {
        let mut keys: Vec<TenantKey> = Vec::new();
        let api_keys = api_keys.trim();
        if api_keys.is_empty() {
            return Err(invalid("api_keys", "no keys configured"));
        }
        for (index, entry) in api_keys.split(',').enumerate() {
            let entry = entry.trim();
            let position = index + 1;
            let Some((tenant, key)) = entry.split_once(':') else {
                return Err(invalid(
                    "api_keys",
                    format!("entry {position} is not `tenant:key`"),
                ));
            };
            if !valid_tenant(tenant) {
                return Err(invalid(
                    "api_keys",
                    format!("entry {position}: tenant must be 1 to 63 of a-z, 0-9 and `-`"),
                ));
            }
            if !valid_secret(key) {
                return Err(invalid(
                    "api_keys",
                    format!(
                        "entry {position} (tenant `{tenant}`): key must be non-empty visible ASCII"
                    ),
                ));
            }
            let digest = digest(key.as_bytes());
            if let Some(other) = keys.iter().find(|k| k.digest == digest) {
                return Err(invalid(
                    "api_keys",
                    format!(
                        "entry {position} (tenant `{tenant}`) repeats the key of tenant `{}`",
                        other.tenant
                    ),
                ));
            }
            keys.push(TenantKey {
                tenant: tenant.to_string(),
                digest,
            });
        }
        Ok(Self { keys, admin: None })
    }

    /// Only the operator token (`admin_token`), for an operator route: no
    /// token is a tenant's.
    pub fn parse_admin(admin_token: &str) -> Result<Self, ConfigError> {
        let admin_token = admin_token.trim();
        if !valid_secret(admin_token) {
            return Err(invalid("admin_token", "must be non-empty visible ASCII"));
        }
        Ok(Self {
            keys: Vec::new(),
            admin: Some(digest(admin_token.as_bytes())),
        })
    }

    /// The configured tenants, in configuration order (with repeats for several keys).
    pub fn tenants(&self) -> impl Iterator<Item = &str> {
        self.keys.iter().map(|k| k.tenant.as_str())
    }
}

/// The API's settings.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// API keys and operator token.
    pub credentials: Credentials,
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    /// Minimum log level.
    pub log_level: Level,
    /// The pipeline's settings (key prefix, channel, retries, sweep batch).
    pub pipeline: PipelineConfig,
    /// Where results are stored.
    pub blob: BlobConfig,
    /// Timeouts of Blob Storage calls.
    pub http_timeouts: HttpTimeouts,
    /// Submit limits of tenants without their own.
    pub submit_limits: SubmitLimits,
    /// Tenants' own submit limits.
    pub tenant_submit_limits: Vec<(String, SubmitLimits)>,
    /// Replicas that must acknowledge a new job before the `202` (Redis
    /// `WAIT`); 0: do not wait (no replica).
    pub wait_replicas: u32,
    /// The longest a submit waits for them.
    pub wait_timeout_ms: u64,
}

impl ApiConfig {
    /// The submit limits of `tenant`.
    pub fn limits_for(&self, tenant: &str) -> SubmitLimits {
        self.tenant_submit_limits
            .iter()
            .find(|(t, _)| t == tenant)
            .map_or(self.submit_limits, |(_, limits)| *limits)
    }
}

/// Which parts of the settings a request reads.
///
/// Every Spin variable read is a host call, and Spin 3.6's environment
/// variable provider (the one SpinKube's `SpinApp.spec.variables` feed)
/// serves each with `tokio::task::block_in_place`, which hands the runtime
/// worker's queue to another thread: reading all of the API's variables on
/// every request cost more CPU than the rest of a `/healthz`. So a request
/// reads only what its route uses; `/readyz` reads and checks everything, so
/// an instance with a bad variable never becomes ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Reads {
    /// `log_level`.
    pub log: bool,
    /// `api_keys`.
    pub keys: bool,
    /// `admin_token`.
    pub admin: bool,
    /// `max_body_bytes`.
    pub body: bool,
    /// The pipeline's variables (`max_attempts`, `sweep_batch`, ...).
    pub pipeline: bool,
    /// `submit_limits` and `tenant_submit_limits`.
    pub limits: bool,
    /// `redis_wait_replicas` and `redis_wait_timeout_ms`.
    pub wait: bool,
    /// The Blob Storage variables.
    pub blob: bool,
    /// The Blob Storage call timeouts.
    pub timeouts: bool,
}

impl Reads {
    /// Everything.
    pub const ALL: Self = Self {
        log: true,
        keys: true,
        admin: true,
        body: true,
        pipeline: true,
        limits: true,
        wait: true,
        blob: true,
        timeouts: true,
    };

    /// What a request to `route` reads; `None`: no route matched (only the
    /// log level, for the request's log line).
    pub fn of(route: Option<RouteId>) -> Self {
        let base = Self {
            log: true,
            ..Self::default()
        };
        let Some(route) = route else { return base };
        let body = super::routes::route(route).body;
        match route {
            // A liveness probe reads nothing, and its `200` is not logged.
            RouteId::Healthz => Self::default(),
            RouteId::OpenApi => base,
            RouteId::Readyz => Self::ALL,
            RouteId::SubmitJob => Self {
                keys: true,
                body,
                pipeline: true,
                limits: true,
                wait: true,
                ..base
            },
            RouteId::GetJob => Self {
                keys: true,
                pipeline: true,
                ..base
            },
            RouteId::GetResult => Self {
                keys: true,
                pipeline: true,
                blob: true,
                timeouts: true,
                ..base
            },
            RouteId::DeadLetters
            | RouteId::Redrive
            | RouteId::Sweep
            | RouteId::Backlog
            | RouteId::RedriveAll => Self {
                admin: true,
                body,
                pipeline: true,
                ..base
            },
        }
    }
}

impl ApiConfig {
    /// Read every variable through `lookup` (a missing optional variable
    /// takes its default) and check them together.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        Self::read(Reads::ALL, lookup)
    }

    /// Read what a request to `route` uses ([`Reads::of`]); the parts it does
    /// not read keep inert defaults (no API key, no operator token, no Blob
    /// Storage account).
    pub fn for_route(
        route: Option<RouteId>,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        Self::read(Reads::of(route), lookup)
    }

    /// Read the parts `reads` names.
    pub fn read(
        reads: Reads,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let mut config = Self {
            credentials: Credentials {
                keys: Vec::new(),
                admin: None,
            },
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            log_level: Level::Info,
            pipeline: PipelineConfig::default(),
            blob: BlobConfig {
                endpoint: String::new(),
                account: String::new(),
                container: String::new(),
                auth: BlobAuth::Sas {
                    token: String::new(),
                },
            },
            http_timeouts: HttpTimeouts::default(),
            submit_limits: SubmitLimits::UNLIMITED,
            tenant_submit_limits: Vec::new(),
            wait_replicas: 0,
            wait_timeout_ms: 100,
        };
        if reads.pipeline {
            config.pipeline = PipelineConfig::from_lookup(&lookup)?;
        }
        if reads.blob {
            config.blob = BlobConfig::from_lookup(&lookup)?;
        }
        if reads.timeouts {
            config.http_timeouts = HttpTimeouts::from_lookup(&lookup)?;
        }
        let required = |name: &'static str| lookup(name).ok_or(ConfigError::Missing { name });
        config.credentials = match (reads.keys, reads.admin) {
            (true, true) => Credentials::parse(&required("api_keys")?, &required("admin_token")?)?,
            (true, false) => Credentials::parse_keys(&required("api_keys")?)?,
            (false, true) => Credentials::parse_admin(&required("admin_token")?)?,
            (false, false) => config.credentials,
        };
        if reads.body {
            if let Some(value) = lookup("max_body_bytes") {
                config.max_body_bytes = match value.trim().parse::<usize>() {
                    Ok(n) if n > 0 => n,
                    _ => return Err(invalid("max_body_bytes", "must be a positive integer")),
                };
            }
        }
        if reads.limits {
            let limits_error = "expected `rate_per_second/burst/max_queued`, e.g. `20/40/1000` (0 turns a limit off; a rate needs a burst of at least 1)";
            if let Some(value) = lookup("submit_limits") {
                config.submit_limits = SubmitLimits::parse(&value)
                    .ok_or_else(|| invalid("submit_limits", limits_error))?;
            }
            for entry in lookup("tenant_submit_limits")
                .unwrap_or_default()
                .split(',')
                .filter(|e| !e.trim().is_empty())
            {
                let parsed = entry
                    .split_once('=')
                    .and_then(|(tenant, limits)| {
                        Some((tenant.trim().to_string(), SubmitLimits::parse(limits)?))
                    })
                    .filter(|(tenant, _)| !tenant.is_empty());
                config.tenant_submit_limits.push(parsed.ok_or_else(|| {
                    invalid(
                        "tenant_submit_limits",
                        "expected comma-separated `tenant=rate_per_second/burst/max_queued`",
                    )
                })?);
            }
        }
        if reads.wait {
            let small = |name: &'static str, default: u64, max: u64| match lookup(name) {
                None => Ok(default),
                Some(value) => value
                    .trim()
                    .parse::<u64>()
                    .ok()
                    .filter(|n| *n <= max)
                    .ok_or_else(|| invalid(name, format!("expected an integer from 0 to {max}"))),
            };
            config.wait_replicas = small("redis_wait_replicas", 0, 5)? as u32;
            // The timeout matters only when a submit waits at all.
            if config.wait_replicas > 0 || reads == Reads::ALL {
                config.wait_timeout_ms = small("redis_wait_timeout_ms", 100, 5_000)?;
            }
        }
        if reads.log {
            if let Some(value) = lookup("log_level") {
                config.log_level = value
                    .parse()
                    .map_err(|_| invalid("log_level", "expected debug, info, warn or error"))?;
            }
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    const BLOB: [(&str, &str); 5] = [
        ("blob_endpoint", "http://127.0.0.1:10000/devstoreaccount1"),
        ("blob_account", "devstoreaccount1"),
        ("blob_container", "results"),
        ("blob_auth", "shared-key"),
        ("blob_credential", "a2V5"),
    ];

    fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .chain(BLOB.iter())
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| map.get(name).cloned()
    }

    fn var_name(error: ConfigError) -> &'static str {
        match error {
            ConfigError::Missing { name } | ConfigError::Invalid { name, .. } => name,
        }
    }

    #[test]
    fn parses_keys_and_defaults() {
        let config = ApiConfig::from_lookup(lookup(&[
            ("api_keys", " demo:k1 , acme:k2,demo:k3\n"),
            ("admin_token", "admin"),
        ]))
        .unwrap();
        assert_eq!(
            config.credentials.tenants().collect::<Vec<_>>(),
            ["demo", "acme", "demo"]
        );
        assert_eq!(config.max_body_bytes, DEFAULT_MAX_BODY_BYTES);
        assert_eq!(config.log_level, Level::Info);
    }

    #[test]
    fn rejects_bad_keys_without_printing_them() {
        let cases = [
            ("", "admin", "api_keys"),
            ("demo", "admin", "api_keys"),
            ("Demo:secret-1", "admin", "api_keys"),
            ("demo:", "admin", "api_keys"),
            ("demo:secret-1,", "admin", "api_keys"),
            ("demo:secret 1", "admin", "api_keys"),
            ("demo:secret-1,acme:secret-1", "admin", "api_keys"),
            ("demo:secret-1", "", "admin_token"),
            ("demo:secret-1", "secret-1", "admin_token"),
        ];
        for (keys, admin, name) in cases {
            let err = Credentials::parse(keys, admin).unwrap_err();
            assert!(!err.to_string().contains("secret-1"), "{err}");
            assert_eq!(var_name(err), name, "{keys:?}");
        }
        let long = format!("{}:k", "a".repeat(64));
        assert!(Credentials::parse(&long, "admin").is_err());
    }

    #[test]
    fn rejects_bad_limits_and_levels() {
        let base = [("api_keys", "demo:k"), ("admin_token", "t")];
        let with = |extra: (&'static str, &'static str)| {
            let mut pairs = base.to_vec();
            pairs.push(extra);
            ApiConfig::from_lookup(lookup(&pairs))
        };
        assert_eq!(
            with(("max_body_bytes", "0"))
                .map(|_| ())
                .map_err(var_name)
                .unwrap_err(),
            "max_body_bytes"
        );
        assert_eq!(
            with(("max_body_bytes", "x"))
                .map(|_| ())
                .map_err(var_name)
                .unwrap_err(),
            "max_body_bytes"
        );
        assert_eq!(
            with(("max_body_bytes", "1024")).unwrap().max_body_bytes,
            1024
        );
        assert_eq!(
            with(("log_level", "loud"))
                .map(|_| ())
                .map_err(var_name)
                .unwrap_err(),
            "log_level"
        );
        assert!(ApiConfig::from_lookup(lookup(&[("api_keys", "demo:k")])).is_err());
    }

    /// The names a route's configuration read asks for.
    fn names_read(route: Option<RouteId>) -> Vec<String> {
        let asked = std::cell::RefCell::new(Vec::new());
        let all = lookup(&[("api_keys", "demo:k"), ("admin_token", "t")]);
        ApiConfig::for_route(route, |name| {
            asked.borrow_mut().push(name.to_string());
            all(name)
        })
        .expect("valid configuration");
        asked.into_inner()
    }

    #[test]
    fn each_route_reads_only_the_variables_it_uses() {
        assert!(names_read(Some(RouteId::Healthz)).is_empty());
        assert_eq!(names_read(None), ["log_level"]);
        assert_eq!(names_read(Some(RouteId::OpenApi)), ["log_level"]);
        let get = names_read(Some(RouteId::GetJob));
        assert!(get.contains(&"api_keys".to_string()));
        for name in [
            "admin_token",
            "blob_credential",
            "submit_limits",
            "max_body_bytes",
        ] {
            assert!(!get.iter().any(|n| n == name), "GET job read {name}");
        }
        let submit = names_read(Some(RouteId::SubmitJob));
        for name in [
            "api_keys",
            "max_body_bytes",
            "submit_limits",
            "redis_wait_replicas",
        ] {
            assert!(
                submit.iter().any(|n| n == name),
                "submit did not read {name}"
            );
        }
        // Without a replica to wait for, the wait's timeout is not read.
        assert!(!submit.iter().any(|n| n == "redis_wait_timeout_ms"));
        assert!(!submit
            .iter()
            .any(|n| n == "blob_credential" || n == "admin_token"));
        let result = names_read(Some(RouteId::GetResult));
        assert!(result.iter().any(|n| n == "blob_credential"));
        assert!(result.iter().any(|n| n == "http_first_byte_timeout_ms"));
        let sweep = names_read(Some(RouteId::Sweep));
        assert!(sweep.iter().any(|n| n == "admin_token"));
        assert!(!sweep.iter().any(|n| n == "api_keys"));
        // Readiness reads everything the API has.
        let ready = names_read(Some(RouteId::Readyz));
        for name in [
            "api_keys",
            "admin_token",
            "blob_credential",
            "redis_wait_timeout_ms",
        ] {
            assert!(
                ready.iter().any(|n| n == name),
                "readyz did not read {name}"
            );
        }
    }

    #[test]
    fn a_route_that_read_one_credential_accepts_only_that_kind() {
        let vars = lookup(&[("api_keys", "demo:tenant-key"), ("admin_token", "op-token")]);
        let tenant = ApiConfig::for_route(Some(RouteId::GetJob), &vars).unwrap();
        assert_eq!(tenant.credentials.tenant_for("tenant-key"), Some("demo"));
        assert!(!tenant.credentials.is_admin("op-token"));
        let admin = ApiConfig::for_route(Some(RouteId::Backlog), &vars).unwrap();
        assert!(admin.credentials.is_admin("op-token"));
        assert_eq!(admin.credentials.tenant_for("tenant-key"), None);
        // Nothing read, nothing accepted.
        let probe = ApiConfig::for_route(Some(RouteId::Healthz), &vars).unwrap();
        assert_eq!(probe.credentials.tenant_for("tenant-key"), None);
        assert!(!probe.credentials.is_admin("op-token"));
    }

    #[test]
    fn a_bad_variable_fails_the_routes_that_read_it_and_readiness() {
        let vars = lookup(&[
            ("api_keys", "demo:k"),
            ("admin_token", "t"),
            ("submit_limits", "lots"),
        ]);
        assert!(ApiConfig::for_route(Some(RouteId::GetJob), &vars).is_ok());
        for route in [RouteId::SubmitJob, RouteId::Readyz] {
            let err = ApiConfig::for_route(Some(route), &vars).unwrap_err();
            assert_eq!(var_name(err), "submit_limits");
        }
        // The operator token equal to a tenant's key is caught where both are read.
        let same = lookup(&[("api_keys", "demo:same"), ("admin_token", "same")]);
        assert!(ApiConfig::for_route(Some(RouteId::GetJob), &same).is_ok());
        assert_eq!(
            var_name(ApiConfig::for_route(Some(RouteId::Readyz), &same).unwrap_err()),
            "admin_token"
        );
    }

    #[test]
    fn debug_never_prints_secrets() {
        let config = ApiConfig::from_lookup(lookup(&[
            ("api_keys", "demo:very-secret-key"),
            ("admin_token", "very-secret-admin"),
        ]))
        .unwrap();
        let printed = format!("{config:?}");
        assert!(printed.contains("demo"));
        assert!(!printed.contains("very-secret"));
    }
}
