//! Job types: each one a module implementing [`JobType`], registered in
//! [`REGISTRY`]. To add a type, write a module and add it there.

use std::borrow::Cow;

use serde_json::value::RawValue;

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
    /// Check the input (the JSON text of the submission's `input`) cheaply,
    /// before the job is accepted, and return it in canonical form: compact
    /// JSON with its members sorted by name, as [`crate::api::canonical_json`]
    /// writes it. That is what is stored, run and hashed for idempotency. The
    /// input is parsed into typed fields borrowed from the text, never into a
    /// `serde_json::Value`, so a hostile input costs no more than its size.
    fn validate(&self, input: &str) -> Result<String, InputError>;
    /// Produce the result from the canonical input.
    fn run(&self, input: &str) -> Result<JobOutput, JobError>;
    /// Whether the worker may hold this job's output while others of its
    /// batch run (`worker_concurrency`). A type whose run or output can take
    /// a large share of the instance's memory says no: it runs alone, so
    /// the instance's memory stays bounded by one such job.
    fn overlaps(&self) -> bool {
        true
    }
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

/// The members of a JSON object named in `names`, as raw JSON text borrowed
/// from `json` (nothing is copied or built per member), plus the names of up
/// to `max_unknown` members not in `names`; later unknown members are
/// checked, not kept.
/// A member given twice keeps its last value, as `serde_json::Value` does.
///
/// `Err(None)`: `json` is not an object; `Err(Some(e))`: it is not valid
/// JSON (`e` says where).
pub(crate) fn object_members<'a, const N: usize>(
    json: &'a str,
    names: [&'static str; N],
    max_unknown: usize,
) -> Result<Members<'a, N>, Option<serde_json::Error>> {
    use serde::de::{Deserializer as _, IgnoredAny, MapAccess, Visitor};

    struct ObjectVisitor<'n, const N: usize> {
        names: &'n [&'static str; N],
        max_unknown: usize,
    }

    impl<'de, const N: usize> Visitor<'de> for ObjectVisitor<'_, N> {
        type Value = Members<'de, N>;

        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a JSON object")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut members = Members {
                values: [None; N],
                unknown: Vec::new(),
                complete: true,
            };
            while let Some(key) = map.next_key::<String>()? {
                match self.names.iter().position(|n| *n == key) {
                    Some(i) => members.values[i] = Some(map.next_value::<&'de RawValue>()?),
                    None if members.unknown.len() < self.max_unknown => {
                        map.next_value::<IgnoredAny>()?;
                        members.unknown.push(key);
                    }
                    None => {
                        // Enough names: check the value without keeping it.
                        members.complete = false;
                        map.next_value::<IgnoredAny>()?;
                    }
                }
            }
            Ok(members)
        }
    }

    let mut de = serde_json::Deserializer::from_str(json);
    let members = de
        .deserialize_map(ObjectVisitor {
            names: &names,
            max_unknown,
        })
        .map_err(|e| match e.classify() {
            serde_json::error::Category::Data => None,
            _ => Some(e),
        })?;
    de.end().map_err(Some)?;
    Ok(members)
}

/// What [`object_members`] found.
pub(crate) struct Members<'a, const N: usize> {
    /// The raw value of each name, in the order of the names.
    pub(crate) values: [Option<&'a RawValue>; N],
    /// Member names that are not expected.
    pub(crate) unknown: Vec<String>,
    /// Whether every unknown member is in `unknown` (false: more than `max_unknown`).
    pub(crate) complete: bool,
}

/// The input's members named in `names`, rejecting the first unknown one.
pub(crate) fn input_members<'a, const N: usize>(
    input: &'a str,
    names: [&'static str; N],
) -> Result<[Option<&'a RawValue>; N], InputError> {
    let members = object_members(input, names, 1)
        .map_err(|_| InputError::new("", "the input must be a JSON object"))?;
    match members.unknown.first() {
        Some(unknown) => Err(InputError::new(
            format!("/{}", escape_pointer(unknown)),
            format!("unknown field; expected one of: {}", names.join(", ")),
        )),
        None => Ok(members.values),
    }
}

/// `input` as compact JSON, written into a buffer of the raw input's size:
/// the canonical form is never longer than the text it was parsed from, so
/// the buffer never grows (and never holds two copies while it does).
pub(crate) fn canonical<T: serde::Serialize>(
    input: &T,
    raw_len: usize,
) -> Result<String, InputError> {
    let mut out = Vec::with_capacity(raw_len);
    serde_json::to_writer(&mut out, input)
        .map_err(|_| InputError::new("", "cannot be serialized"))?;
    String::from_utf8(out).map_err(|_| InputError::new("", "cannot be serialized"))
}

/// An optional integer member within `min..=max`.
pub(crate) fn integer_member(
    raw: Option<&RawValue>,
    name: &str,
    min: u64,
    max: u64,
) -> Result<Option<u64>, InputError> {
    match raw {
        None => Ok(None),
        Some(raw) => match serde_json::from_str::<u64>(raw.get()) {
            Ok(n) if (min..=max).contains(&n) => Ok(Some(n)),
            _ => Err(InputError::new(
                format!("/{name}"),
                format!("must be an integer from {min} to {max}"),
            )),
        },
    }
}

/// A required string member, borrowed from the input when it has no escapes.
pub(crate) fn string_member<'a>(
    raw: Option<&'a RawValue>,
    name: &str,
    what: &str,
) -> Result<Cow<'a, str>, InputError> {
    let raw = raw.ok_or_else(|| InputError::new(format!("/{name}"), "is required"))?;
    serde_json::from_str::<&'a str>(raw.get())
        .map(Cow::Borrowed)
        .or_else(|_| serde_json::from_str::<String>(raw.get()).map(Cow::Owned))
        .map_err(|_| InputError::new(format!("/{name}"), format!("must be {what}")))
}

fn escape_pointer(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

#[cfg(test)]
mod tests {
    use super::*;
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
        let err = input_members(r#"{"text": "x", "a/b": 1}"#, ["text"]).unwrap_err();
        assert_eq!(err.pointer, "/a~1b");
        let err = input_members("[1]", ["text"]).unwrap_err();
        assert_eq!(err.pointer, "");
        let [text] = input_members(r#"{"text": 1, "text": "\u0041"}"#, ["text"]).unwrap();
        assert_eq!(string_member(text, "text", "a string").unwrap(), "A");
    }

    #[test]
    fn members_are_borrowed_and_unknown_names_kept_up_to_the_limit() {
        let json = r#"{"b": [1, 2], "x": 1, "y": 2, "a": "s"}"#;
        let members = object_members(json, ["a", "b"], 1).unwrap();
        assert_eq!(members.unknown, ["x"]);
        assert!(!members.complete);
        assert_eq!(members.values[1].unwrap().get(), "[1, 2]");
        assert_eq!(members.values[0].unwrap().get(), r#""s""#);
        assert!(matches!(object_members("[1]", ["a"], 0), Err(None)));
        assert!(matches!(object_members("{\"a\": ", ["a"], 0), Err(Some(_))));
        assert!(matches!(object_members("{} x", ["a"], 0), Err(Some(_))));
    }
}
