//! Wire formats: canonical JSON for request hashes and RFC 3339 timestamps.

use serde_json::Value;
use sha2::{Digest, Sha256};

/// Canonical JSON: object members sorted by key, no insignificant whitespace,
/// strings and numbers as serde_json writes them.
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut members: Vec<(&String, &Value)> = map.iter().collect();
            members.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (key, value)) in members.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                write_canonical(value, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

/// The idempotency hash of a submission: hex SHA-256 of the canonical JSON of `{type, input}`.
pub fn request_hash(job_type: &str, input: &Value) -> String {
    let body = serde_json::json!({ "type": job_type, "input": input });
    Sha256::digest(canonical_json(&body).as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// [`request_hash`] of an input already in canonical form (as a job type's
/// `validate` returns it), without parsing or copying it.
pub fn request_hash_canonical(job_type: &str, canonical_input: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"{\"input\":");
    hasher.update(canonical_input.as_bytes());
    hasher.update(b",\"type\":");
    hasher.update(Value::String(job_type.to_string()).to_string().as_bytes());
    hasher.update(b"}");
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Milliseconds since the Unix epoch as RFC 3339 UTC with milliseconds,
/// e.g. `2026-11-25T14:39:48.123Z`.
pub fn rfc3339_millis(ms: u64) -> String {
    let secs = ms / 1000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60,
        ms % 1000
    )
}

// Howard Hinnant's days-to-civil algorithm.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn canonical_json_sorts_keys_at_every_level() {
        let a: Value =
            serde_json::from_str(r#"{"b": 1, "a": {"y": [3, {"d": 1, "c": "é\n"}], "x": null}}"#)
                .unwrap();
        assert_eq!(
            canonical_json(&a),
            r#"{"a":{"x":null,"y":[3,{"c":"é\n","d":1}]},"b":1}"#
        );
    }

    #[test]
    fn request_hash_ignores_member_order_and_whitespace() {
        let one: Value = serde_json::from_str(r#"{"text": "hi", "top": 3}"#).unwrap();
        let two: Value = serde_json::from_str(r#"{ "top":3,"text":"hi" }"#).unwrap();
        assert_eq!(
            request_hash("text-stats", &one),
            request_hash("text-stats", &two)
        );
        assert_ne!(
            request_hash("text-stats", &one),
            request_hash("thumbnail", &one)
        );
        assert_ne!(
            request_hash("text-stats", &one),
            request_hash("text-stats", &json!({"text": "hi"}))
        );
        // sha256 of {"input":{},"type":"t"}
        assert_eq!(request_hash("t", &json!({})).len(), 64);
    }

    #[test]
    fn request_hash_of_a_canonical_input_is_the_same() {
        for input in [
            json!({"text": "é\n\"", "top_n": 3}),
            json!({}),
            json!({"image": "AAAA", "max_height": 1, "max_width": 2}),
        ] {
            assert_eq!(
                request_hash_canonical("text-stats", &canonical_json(&input)),
                request_hash("text-stats", &input)
            );
        }
    }

    #[test]
    fn formats_rfc3339() {
        assert_eq!(rfc3339_millis(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339_millis(951_782_400_007), "2000-02-29T00:00:00.007Z");
        assert_eq!(
            rfc3339_millis(1_795_617_588_123),
            "2026-11-25T14:39:48.123Z"
        );
    }
}
