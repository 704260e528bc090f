//! Configuration read from Spin variables (see `spin.toml`).
//!
//! Both constructors take a lookup function (`spin_sdk::variables::get` in a
//! component, a map in tests) so that parsing is tested natively. Errors name
//! the variable, never the value of a secret.

use std::fmt;

use base64::Engine as _;

pub use crate::error::ConfigError;

/// The job pipeline's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipelineConfig {
    /// Prefix of every Redis key (`{prefix}:job:{id}`, `{prefix}:due`, ...).
    pub key_prefix: String,
    /// The pub/sub channel the worker listens on.
    pub channel: String,
    /// Attempts before a job is dead-lettered (>= 1).
    pub max_attempts: u32,
    /// Backoff before the second attempt; doubles for each further attempt.
    pub retry_backoff_ms: u64,
    /// How long a claimed job is leased to its worker.
    pub lease_ms: u64,
    /// Overdue jobs claimed per message, and published per sweep.
    pub sweep_batch: u32,
    /// How long a finished (succeeded or dead-lettered) job is kept: its
    /// record expires and its dead-letter entry is trimmed after this. Keep
    /// it no longer than the result blobs' lifecycle rule.
    pub retention_ms: u64,
    /// Claimed jobs a worker instance runs at once (their Blob Storage calls
    /// overlap); 1 runs them one after another.
    pub concurrency: u32,
}

/// Default for `worker_concurrency`.
pub const DEFAULT_WORKER_CONCURRENCY: u32 = 16;

impl Default for PipelineConfig {
    fn default() -> Self {
        Self {
            key_prefix: "jobs".into(),
            channel: "jobs".into(),
            max_attempts: 5,
            retry_backoff_ms: 1_000,
            lease_ms: 30_000,
            sweep_batch: 32,
            retention_ms: 7 * 24 * 3_600_000,
            concurrency: DEFAULT_WORKER_CONCURRENCY,
        }
    }
}

impl PipelineConfig {
    /// Read `max_attempts`, `retry_backoff_ms`, `lease_ms`, `sweep_batch`,
    /// `job_retention_seconds`, `worker_concurrency` (and
    /// optionally `key_prefix`, `channel`); a variable without a value keeps
    /// its default.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let defaults = Self::default();
        let text = |name: &'static str, default: String| -> Result<String, ConfigError> {
            match lookup(name) {
                None => Ok(default),
                Some(value) => {
                    let value = value.trim();
                    let valid = !value.is_empty()
                        && value.len() <= 64
                        && value.chars().all(|c| {
                            c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':')
                        });
                    if valid {
                        Ok(value.to_string())
                    } else {
                        Err(ConfigError::Invalid {
                            name,
                            reason: "expected 1 to 64 characters among A-Z a-z 0-9 - _ . :".into(),
                        })
                    }
                }
            }
        };
        Ok(Self {
            key_prefix: text("key_prefix", defaults.key_prefix)?,
            channel: text("channel", defaults.channel)?,
            max_attempts: number(
                &lookup,
                "max_attempts",
                defaults.max_attempts.into(),
                1,
                100,
            )? as u32,
            retry_backoff_ms: number(
                &lookup,
                "retry_backoff_ms",
                defaults.retry_backoff_ms,
                0,
                3_600_000,
            )?,
            lease_ms: number(&lookup, "lease_ms", defaults.lease_ms, 100, 86_400_000)?,
            retention_ms: number(
                &lookup,
                "job_retention_seconds",
                defaults.retention_ms / 1000,
                60,
                90 * 24 * 3600,
            )? * 1000,
            // At least 1: 0 would turn recovery (sweep and overdue claims) off.
            sweep_batch: number(
                &lookup,
                "sweep_batch",
                defaults.sweep_batch.into(),
                1,
                1_000,
            )? as u32,
            concurrency: number(
                &lookup,
                "worker_concurrency",
                defaults.concurrency.into(),
                1,
                64,
            )? as u32,
        })
    }
}

fn number(
    lookup: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    default: u64,
    min: u64,
    max: u64,
) -> Result<u64, ConfigError> {
    let Some(value) = lookup(name) else {
        return Ok(default);
    };
    match value.trim().parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(ConfigError::Invalid {
            name,
            reason: format!("expected an integer from {min} to {max}"),
        }),
    }
}

/// A tenant's submit limits; 0 turns a limit off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubmitLimits {
    /// Token bucket refill: submissions per second, sustained.
    pub rate_per_second: u32,
    /// Token bucket size: submissions in a burst.
    pub burst: u32,
    /// Unfinished (queued or running) jobs the tenant may have.
    pub max_queued: u32,
}

impl SubmitLimits {
    /// No limit at all.
    pub const UNLIMITED: Self = Self {
        rate_per_second: 0,
        burst: 0,
        max_queued: 0,
    };

    /// Parse `rate_per_second/burst/max_queued`, e.g. `20/40/1000`.
    pub fn parse(text: &str) -> Option<Self> {
        let mut parts = text.trim().split('/').map(|p| p.trim().parse::<u32>().ok());
        let (Some(Some(rate_per_second)), Some(Some(burst)), Some(Some(max_queued)), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return None;
        };
        // A rate needs a bucket of at least one token.
        (rate_per_second == 0 || burst >= 1).then_some(Self {
            rate_per_second,
            burst,
            max_queued,
        })
    }
}

/// How long an outbound HTTP request (Blob Storage) may wait, passed to the
/// runtime as wasi:http `request-options`. Spin's defaults are 600 s each,
/// against a 30 s lease: one hung call would stall the worker and let the
/// lease expire under a running job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpTimeouts {
    /// To establish the connection.
    pub connect_ms: u64,
    /// From sending the request to the response's first byte (its headers).
    pub first_byte_ms: u64,
    /// Between two chunks of the response body.
    pub between_bytes_ms: u64,
}

impl Default for HttpTimeouts {
    fn default() -> Self {
        Self {
            connect_ms: 2_000,
            first_byte_ms: 10_000,
            between_bytes_ms: 10_000,
        }
    }
}

impl HttpTimeouts {
    /// Read `http_connect_timeout_ms`, `http_first_byte_timeout_ms` and
    /// `http_between_bytes_timeout_ms` (each 10 to 60000; unset: the default).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let defaults = Self::default();
        Ok(Self {
            connect_ms: number(
                &lookup,
                "http_connect_timeout_ms",
                defaults.connect_ms,
                10,
                60_000,
            )?,
            first_byte_ms: number(
                &lookup,
                "http_first_byte_timeout_ms",
                defaults.first_byte_ms,
                10,
                60_000,
            )?,
            between_bytes_ms: number(
                &lookup,
                "http_between_bytes_timeout_ms",
                defaults.between_bytes_ms,
                10,
                60_000,
            )?,
        })
    }

    /// The timeouts the worker uses under a `lease_ms` lease: a call that
    /// waits its whole connect and first-byte timeouts must leave half of
    /// the lease, so longer ones are cut down to fit (connect to at most an
    /// eighth of the lease, first byte to the rest of the first half), and
    /// between-bytes to at most half the lease.
    pub fn within_lease(&self, lease_ms: u64) -> Self {
        let half = lease_ms / 2;
        if self.connect_ms + self.first_byte_ms < half {
            return Self {
                between_bytes_ms: self.between_bytes_ms.min(half.max(1)),
                ..*self
            };
        }
        let connect_ms = self.connect_ms.min(lease_ms / 8).max(1);
        Self {
            connect_ms,
            first_byte_ms: self
                .first_byte_ms
                .min(half.saturating_sub(connect_ms + 1))
                .max(1),
            between_bytes_ms: self.between_bytes_ms.min(half.max(1)),
        }
    }
}

/// How the Blob client authenticates.
#[derive(Clone, PartialEq, Eq)]
pub enum BlobAuth {
    /// Shared Key: the storage account key, base64-decoded.
    SharedKey {
        /// The decoded account key.
        key: Vec<u8>,
    },
    /// A SAS token, appended to every request's query (without a leading `?`).
    Sas {
        /// The token, e.g. `sv=...&sig=...`.
        token: String,
    },
}

impl fmt::Debug for BlobAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BlobAuth::SharedKey { .. } => f.write_str("SharedKey { key: <redacted> }"),
            BlobAuth::Sas { .. } => f.write_str("Sas { token: <redacted> }"),
        }
    }
}

/// Where results are stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobConfig {
    /// The account's base URL without a trailing `/`: path-style for Azurite
    /// (`http://127.0.0.1:10000/devstoreaccount1`) or
    /// `https://<account>.blob.core.windows.net`.
    pub endpoint: String,
    /// The storage account name.
    pub account: String,
    /// The container holding results.
    pub container: String,
    /// The credential.
    pub auth: BlobAuth,
}

impl BlobConfig {
    /// Read `blob_endpoint`, `blob_account`, `blob_container`, `blob_auth`
    /// (`shared-key` or `sas`) and `blob_credential`; all are required.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let required = |name: &'static str| -> Result<String, ConfigError> {
            match lookup(name) {
                Some(value) if !value.trim().is_empty() => Ok(value.trim().to_string()),
                _ => Err(ConfigError::Missing { name }),
            }
        };

        let endpoint = required("blob_endpoint")?.trim_end_matches('/').to_string();
        let scheme_ok = ["http://", "https://"]
            .iter()
            .any(|s| endpoint.len() > s.len() && endpoint[..s.len()].eq_ignore_ascii_case(s));
        if !scheme_ok || endpoint.contains(['?', '#', ' ']) {
            return Err(ConfigError::Invalid {
                name: "blob_endpoint",
                reason: "expected an http:// or https:// URL without query or fragment".into(),
            });
        }

        let account = required("blob_account")?;
        if !account.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(ConfigError::Invalid {
                name: "blob_account",
                reason: "expected letters and digits only".into(),
            });
        }

        let container = required("blob_container")?;
        if !is_valid_container_name(&container) {
            return Err(ConfigError::Invalid {
                name: "blob_container",
                reason: "expected 3 to 63 lower-case letters, digits and single hyphens, starting and ending with a letter or digit".into(),
            });
        }

        let mode = required("blob_auth")?;
        let credential = required("blob_credential")?;
        let auth = match mode.to_ascii_lowercase().as_str() {
            "shared-key" => {
                let key = base64::engine::general_purpose::STANDARD
                    .decode(credential.as_bytes())
                    .map_err(|_| ConfigError::Invalid {
                        name: "blob_credential",
                        reason: "a shared key must be the base64 account key".into(),
                    })?;
                BlobAuth::SharedKey { key }
            }
            "sas" => {
                let token = credential.trim_start_matches('?').to_string();
                if !token.contains("sig=") {
                    return Err(ConfigError::Invalid {
                        name: "blob_credential",
                        reason: "a SAS token must contain a `sig` parameter".into(),
                    });
                }
                BlobAuth::Sas { token }
            }
            _ => {
                return Err(ConfigError::Invalid {
                    name: "blob_auth",
                    reason: "expected `shared-key` or `sas`".into(),
                })
            }
        };

        Ok(Self {
            endpoint,
            account,
            container,
            auth,
        })
    }
}

/// Azure's container naming rules.
pub fn is_valid_container_name(name: &str) -> bool {
    (3..=63).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.starts_with('-')
        && !name.ends_with('-')
        && !name.contains("--")
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    const AZURITE_KEY: &str =
        "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

    fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| map.get(name).cloned()
    }

    fn blob_vars() -> Vec<(&'static str, &'static str)> {
        vec![
            ("blob_endpoint", "http://127.0.0.1:10000/devstoreaccount1/"),
            ("blob_account", "devstoreaccount1"),
            ("blob_container", "results"),
            ("blob_auth", "shared-key"),
            ("blob_credential", AZURITE_KEY),
        ]
    }

    #[test]
    fn pipeline_defaults_and_overrides() {
        assert_eq!(
            PipelineConfig::from_lookup(lookup(&[])).unwrap(),
            PipelineConfig::default()
        );
        let cfg = PipelineConfig::from_lookup(lookup(&[
            ("max_attempts", "3"),
            ("retry_backoff_ms", " 250 "),
            ("lease_ms", "5000"),
            ("sweep_batch", "1"),
        ]))
        .unwrap();
        assert_eq!(cfg.max_attempts, 3);
        assert_eq!(cfg.retry_backoff_ms, 250);
        assert_eq!(cfg.lease_ms, 5000);
        assert_eq!(cfg.sweep_batch, 1);
        assert_eq!(cfg.retention_ms, 7 * 24 * 3_600_000);
        let cfg =
            PipelineConfig::from_lookup(lookup(&[("job_retention_seconds", "3600")])).unwrap();
        assert_eq!(cfg.retention_ms, 3_600_000);
        assert!(PipelineConfig::from_lookup(lookup(&[("job_retention_seconds", "10")])).is_err());
        assert_eq!(cfg.key_prefix, "jobs");
    }

    #[test]
    fn http_timeouts_default_well_under_half_the_lease() {
        let defaults = HttpTimeouts::from_lookup(lookup(&[])).unwrap();
        assert_eq!(defaults, HttpTimeouts::default());
        assert_eq!(
            defaults.within_lease(PipelineConfig::default().lease_ms),
            defaults,
            "the defaults fit the default lease"
        );
        let set = HttpTimeouts::from_lookup(lookup(&[
            ("http_connect_timeout_ms", "500"),
            ("http_first_byte_timeout_ms", "20000"),
        ]))
        .unwrap();
        assert_eq!(
            (set.connect_ms, set.first_byte_ms, set.between_bytes_ms),
            (500, 20_000, 10_000)
        );
        // Too long for a 30 s lease: cut to fit in half of it.
        let fitted = set.within_lease(30_000);
        assert_eq!(fitted.connect_ms, 500);
        assert!(
            fitted.connect_ms + fitted.first_byte_ms < 15_000,
            "{fitted:?}"
        );
        // A 3 s lease with the defaults.
        let short = HttpTimeouts::default().within_lease(3_000);
        assert!(short.connect_ms + short.first_byte_ms < 1_500, "{short:?}");
        assert!(short.between_bytes_ms <= 1_500, "{short:?}");
        for value in ["0", "600000", "x"] {
            let err = HttpTimeouts::from_lookup(lookup(&[("http_first_byte_timeout_ms", value)]))
                .unwrap_err();
            assert!(
                err.to_string().contains("http_first_byte_timeout_ms"),
                "{err}"
            );
        }
    }

    #[test]
    fn pipeline_rejects_bad_numbers_naming_the_variable() {
        for (name, value) in [
            ("max_attempts", "0"),
            ("max_attempts", "five"),
            ("lease_ms", "-1"),
            ("sweep_batch", "5000"),
            ("sweep_batch", "0"),
        ] {
            let err = PipelineConfig::from_lookup(lookup(&[(name, value)])).unwrap_err();
            assert!(
                matches!(&err, ConfigError::Invalid { name: n, .. } if *n == name),
                "{err}"
            );
            assert!(err.to_string().contains(name));
        }
        let err = PipelineConfig::from_lookup(lookup(&[("key_prefix", "a b")])).unwrap_err();
        assert!(err.to_string().contains("`key_prefix`"));
    }

    #[test]
    fn blob_shared_key_is_decoded_and_endpoint_trimmed() {
        let cfg = BlobConfig::from_lookup(lookup(&blob_vars())).unwrap();
        assert_eq!(cfg.endpoint, "http://127.0.0.1:10000/devstoreaccount1");
        match &cfg.auth {
            BlobAuth::SharedKey { key } => assert_eq!(key.len(), 64),
            other => panic!("unexpected {other:?}"),
        }
        let debug = format!("{cfg:?}");
        assert!(debug.contains("<redacted>"));
        assert!(!debug.contains("Eby8"));
    }

    #[test]
    fn blob_sas_strips_question_mark() {
        let mut vars = blob_vars();
        vars.retain(|(k, _)| *k != "blob_auth" && *k != "blob_credential");
        vars.push(("blob_auth", "sas"));
        vars.push(("blob_credential", "?sv=2022-11-02&sp=rcw&sig=abc%3D"));
        let cfg = BlobConfig::from_lookup(lookup(&vars)).unwrap();
        assert_eq!(
            cfg.auth,
            BlobAuth::Sas {
                token: "sv=2022-11-02&sp=rcw&sig=abc%3D".into()
            }
        );
        assert!(!format!("{:?}", cfg.auth).contains("sig"));
    }

    #[test]
    fn blob_errors_name_the_variable_not_the_secret() {
        let mut vars = blob_vars();
        vars.retain(|(k, _)| *k != "blob_credential");
        let err = BlobConfig::from_lookup(lookup(&vars)).unwrap_err();
        assert_eq!(
            err,
            ConfigError::Missing {
                name: "blob_credential"
            }
        );

        vars.push(("blob_credential", "not base64 secret!"));
        let err = BlobConfig::from_lookup(lookup(&vars))
            .unwrap_err()
            .to_string();
        assert!(err.contains("`blob_credential`"), "{err}");
        assert!(!err.contains("secret!"), "{err}");

        let mut vars = blob_vars();
        vars.retain(|(k, _)| *k != "blob_auth");
        vars.push(("blob_auth", "password"));
        assert!(BlobConfig::from_lookup(lookup(&vars))
            .unwrap_err()
            .to_string()
            .contains("`blob_auth`"));

        let mut vars = blob_vars();
        vars.retain(|(k, _)| *k != "blob_container");
        vars.push(("blob_container", "Results"));
        assert!(BlobConfig::from_lookup(lookup(&vars))
            .unwrap_err()
            .to_string()
            .contains("`blob_container`"));

        let mut vars = blob_vars();
        vars.retain(|(k, _)| *k != "blob_endpoint");
        vars.push(("blob_endpoint", "ftp://x"));
        assert!(BlobConfig::from_lookup(lookup(&vars))
            .unwrap_err()
            .to_string()
            .contains("`blob_endpoint`"));
    }

    #[test]
    fn container_names() {
        assert!(is_valid_container_name("results"));
        assert!(is_valid_container_name("t-1-results"));
        assert!(!is_valid_container_name("ab"));
        assert!(!is_valid_container_name("a--b"));
        assert!(!is_valid_container_name("-ab"));
    }
}
