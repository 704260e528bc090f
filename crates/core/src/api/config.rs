//! The API's own settings, read from Spin variables.

use std::fmt;

use sha2::{Digest, Sha256};

pub use crate::config::ConfigError;
use crate::config::{BlobConfig, HttpTimeouts, PipelineConfig, SubmitLimits};
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
    pub(crate) admin: [u8; 32],
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
        let admin_token = admin_token.trim();
        if !valid_secret(admin_token) {
            return Err(invalid("admin_token", "must be non-empty visible ASCII"));
        }
        let admin = digest(admin_token.as_bytes());
        if keys.iter().any(|k| k.digest == admin) {
            return Err(invalid("admin_token", "must differ from every API key"));
        }
        Ok(Self { keys, admin })
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

impl ApiConfig {
    /// Read `api_keys`, `admin_token`, `max_body_bytes` and `log_level` through
    /// `lookup` (a missing optional variable takes its default).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let pipeline = PipelineConfig::from_lookup(&lookup)?;
        let blob = BlobConfig::from_lookup(&lookup)?;
        let http_timeouts = HttpTimeouts::from_lookup(&lookup)?;
        let api_keys = lookup("api_keys").ok_or(ConfigError::Missing { name: "api_keys" })?;
        let admin_token = lookup("admin_token").ok_or(ConfigError::Missing {
            name: "admin_token",
        })?;
        let credentials = Credentials::parse(&api_keys, &admin_token)?;
        let max_body_bytes = match lookup("max_body_bytes") {
            None => DEFAULT_MAX_BODY_BYTES,
            Some(value) => match value.trim().parse::<usize>() {
                Ok(n) if n > 0 => n,
                _ => return Err(invalid("max_body_bytes", "must be a positive integer")),
            },
        };
        let limits_error = "expected `rate_per_second/burst/max_queued`, e.g. `20/40/1000` (0 turns a limit off; a rate needs a burst of at least 1)";
        let submit_limits = match lookup("submit_limits") {
            None => SubmitLimits::UNLIMITED,
            Some(value) => {
                SubmitLimits::parse(&value).ok_or_else(|| invalid("submit_limits", limits_error))?
            }
        };
        let mut tenant_submit_limits = Vec::new();
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
            tenant_submit_limits.push(parsed.ok_or_else(|| {
                invalid(
                    "tenant_submit_limits",
                    "expected comma-separated `tenant=rate_per_second/burst/max_queued`",
                )
            })?);
        }
        let small = |name: &'static str, default: u64, max: u64| match lookup(name) {
            None => Ok(default),
            Some(value) => value
                .trim()
                .parse::<u64>()
                .ok()
                .filter(|n| *n <= max)
                .ok_or_else(|| invalid(name, format!("expected an integer from 0 to {max}"))),
        };
        let wait_replicas = small("redis_wait_replicas", 0, 5)? as u32;
        let wait_timeout_ms = small("redis_wait_timeout_ms", 100, 5_000)?;
        let log_level = match lookup("log_level") {
            None => Level::Info,
            Some(value) => value
                .parse()
                .map_err(|_| invalid("log_level", "expected debug, info, warn or error"))?,
        };
        Ok(Self {
            credentials,
            max_body_bytes,
            log_level,
            pipeline,
            blob,
            http_timeouts,
            submit_limits,
            tenant_submit_limits,
            wait_replicas,
            wait_timeout_ms,
        })
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
