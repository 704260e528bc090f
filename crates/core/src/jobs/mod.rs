//! Job types: each one a module implementing [`JobType`], registered in
//! [`REGISTRY`]. To add a type, write a module and add it there.

use serde_json::{Map, Value};

pub mod text_stats;
pub mod thumbnail;

/// Every job type, by name.
static REGISTRY: &[&dyn JobType] = &[&text_stats::TextStats, &thumbnail::Thumbnail];

/// A kind of job: validates its input when submitted, runs it in the worker.
///
/// `run` must be a pure function of the input: the worker may run a job more
/// than once (after a lost lease) and relies on getting the same bytes.
pub trait JobType: Sync {
    /// The name used in `{"type": ...}`.
    fn name(&self) -> &'static str;
    /// Check the input cheaply, before the job is accepted.
    fn validate(&self, input: &Value) -> Result<(), InputError>;
    /// Produce the result.
    fn run(&self, input: &Value) -> Result<JobOutput, JobError>;
}

/// A job's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobOutput {
    /// The result's bytes.
    pub bytes: Vec<u8>,
    /// Its media type, e.g. `application/json`.
    pub content_type: &'static str,
    /// The blob name's extension, without the dot.
    pub extension: &'static str,
}

/// Why an input was rejected (the API answers `422`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{pointer}: {message}")]
pub struct InputError {
    /// JSON pointer (RFC 6901) into the input, e.g. `/text`; empty for the whole input.
    pub pointer: String,
    /// What is wrong, safe to show to the client.
    pub message: String,
}

impl InputError {
    /// An error at `pointer`.
    pub fn new(pointer: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            pointer: pointer.into(),
            message: message.into(),
        }
    }
}

/// Why a job run failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JobError {
    /// Running it again will fail the same way (e.g. a corrupt image body).
    #[error("{0}")]
    Permanent(String),
    /// It may succeed later.
    #[error("{0}")]
    Transient(String),
}

/// The job type called `name`.
pub fn find(name: &str) -> Option<&'static dyn JobType> {
    REGISTRY.iter().copied().find(|job| job.name() == name)
}

/// The names of all job types.
pub fn names() -> impl Iterator<Item = &'static str> {
    REGISTRY.iter().map(|job| job.name())
}

/// The input as an object whose keys are all in `allowed`.
pub(crate) fn object<'a>(
    input: &'a Value,
    allowed: &[&str],
) -> Result<&'a Map<String, Value>, InputError> {
    let map = input
        .as_object()
        .ok_or_else(|| InputError::new("", "the input must be a JSON object"))?;
    if let Some(unknown) = map.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(InputError::new(
            format!("/{}", escape_pointer(unknown)),
            format!("unknown field; expected one of: {}", allowed.join(", ")),
        ));
    }
    Ok(map)
}

/// An optional integer field within `min..=max`.
pub(crate) fn integer_field(
    map: &Map<String, Value>,
    name: &str,
    min: u64,
    max: u64,
) -> Result<Option<u64>, InputError> {
    match map.get(name) {
        None => Ok(None),
        Some(value) => match value.as_u64() {
            Some(n) if (min..=max).contains(&n) => Ok(Some(n)),
            _ => Err(InputError::new(
                format!("/{name}"),
                format!("must be an integer from {min} to {max}"),
            )),
        },
    }
}

fn escape_pointer(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn registry_finds_each_type_by_name() {
        let names: Vec<_> = names().collect();
        assert_eq!(names, ["text-stats", "thumbnail"]);
        for name in names {
            assert_eq!(find(name).unwrap().name(), name);
        }
        assert!(find("nope").is_none());
    }

    #[test]
    fn unknown_fields_are_pointed_at() {
        let err = object(&json!({"text": "x", "a/b": 1}), &["text"]).unwrap_err();
        assert_eq!(err.pointer, "/a~1b");
        let err = object(&json!([1]), &["text"]).unwrap_err();
        assert_eq!(err.pointer, "");
    }
}
