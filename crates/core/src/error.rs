//! The crate's error types, one per area, and [`Error`] wrapping them all.

use crate::ports::RedisError;

/// Any error of this crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A configuration variable is missing or invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The job pipeline failed.
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    /// A Blob Storage request failed.
    #[error(transparent)]
    Blob(#[from] BlobError),
}

/// A Spin variable is missing or has an invalid value.
///
/// Messages name the variable, never its value: some variables are secrets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A required variable has no value.
    #[error("missing required variable `{name}`")]
    Missing {
        /// The variable's name.
        name: &'static str,
    },
    /// A variable's value cannot be used.
    #[error("invalid value for variable `{name}`: {reason}")]
    Invalid {
        /// The variable's name.
        name: &'static str,
        /// What is wrong with it (never the value of a secret).
        reason: String,
    },
}

/// Why a pipeline operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PipelineError {
    /// Redis cannot be reached: the API answers `503`, the worker leaves the
    /// job to lease expiry and the sweep.
    #[error("job store unavailable: {0}")]
    Unavailable(String),
    /// Redis answered something unexpected (a script error, a malformed reply).
    #[error("job store error: {0}")]
    Internal(String),
}

impl From<RedisError> for PipelineError {
    fn from(error: RedisError) -> Self {
        match error {
            RedisError::Unavailable(message) => PipelineError::Unavailable(message),
            // Redis at `maxmemory` (under `noeviction`) refuses writes with
            // `OOM`, a replica or a failing-over primary with `READONLY`:
            // both pass, so they are "unavailable" (503 + Retry-After), not
            // internal errors. Spin passes the redis crate's rendering
            // (`... - ExtensionError: OOM ...`, `ReadOnly: ...`).
            RedisError::Command(message) if is_transient_refusal(&message) => {
                PipelineError::Unavailable(message)
            }
            RedisError::Command(message) => PipelineError::Internal(message),
        }
    }
}

fn is_transient_refusal(message: &str) -> bool {
    let lower = message.to_ascii_lowercase();
    lower.contains("command not allowed when used memory")
        || lower.starts_with("readonly")
        || lower.contains("readonly:")
        || lower.contains("you can't write against a read only replica")
}

/// Why a Blob Storage request failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlobError {
    /// No response: connection refused, reset, timed out.
    #[error("blob storage unavailable: {0}")]
    Unavailable(String),
    /// `403`: the account key or SAS token was rejected (wrong, expired, or
    /// missing a permission).
    #[error("blob storage rejected the credentials ({code})")]
    Auth {
        /// The `x-ms-error-code`, e.g. `AuthenticationFailed`.
        code: String,
    },
    /// Any other unexpected status.
    #[error("blob storage answered {status} ({code})")]
    Status {
        /// The HTTP status.
        status: u16,
        /// The `x-ms-error-code`, or empty.
        code: String,
    },
}

impl BlobError {
    /// Whether retrying later may succeed: no response, `5xx`, `408`, `429`,
    /// and `403` (a rotated or renewed credential fixes it without touching
    /// the job). Other `4xx` are permanent.
    pub fn is_transient(&self) -> bool {
        match self {
            BlobError::Unavailable(_) | BlobError::Auth { .. } => true,
            BlobError::Status { status, .. } => *status >= 500 || *status == 408 || *status == 429,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redis_errors_map_to_pipeline_errors() {
        assert_eq!(
            PipelineError::from(RedisError::Unavailable("refused".into())),
            PipelineError::Unavailable("refused".into())
        );
        assert_eq!(
            PipelineError::from(RedisError::Command("ERR x".into())),
            PipelineError::Internal("ERR x".into())
        );
        // Refusals that pass: Redis at maxmemory, a read-only replica.
        for message in [
            "OOM command not allowed when used memory > 'maxmemory'.",
            "An error was signalled by the server - ExtensionError: OOM: command not allowed when used memory > 'maxmemory'. script: 1f2e",
            "READONLY You can't write against a read only replica.",
            "An error was signalled by the server - ReadOnly: You can't write against a read only replica.",
        ] {
            assert!(
                matches!(
                    PipelineError::from(RedisError::Command(message.into())),
                    PipelineError::Unavailable(_)
                ),
                "{message}"
            );
        }
    }

    #[test]
    fn blob_errors_are_classified() {
        assert!(BlobError::Unavailable("reset".into()).is_transient());
        assert!(BlobError::Status {
            status: 503,
            code: "ServerBusy".into()
        }
        .is_transient());
        assert!(BlobError::Status {
            status: 429,
            code: String::new()
        }
        .is_transient());
        assert!(!BlobError::Status {
            status: 400,
            code: "InvalidHeaderValue".into()
        }
        .is_transient());
        assert!(BlobError::Auth {
            code: "AuthenticationFailed".into()
        }
        .is_transient());
    }
}
