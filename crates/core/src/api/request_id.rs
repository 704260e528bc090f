//! `X-Request-Id`: honoured when valid, generated otherwise.

/// Whether a caller's request id is acceptable: 1..=128 of `[A-Za-z0-9._-]`.
pub fn valid(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// A new request id: 32 lower-case hex digits from the system's random source.
pub fn generate() -> String {
    let mut bytes = [0u8; 16];
    if getrandom::getrandom(&mut bytes).is_err() {
        // No random source: fall back to the clock, which is still unique enough
        // to correlate log lines.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        bytes = nanos.to_be_bytes();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The caller's id if valid, else a new one.
pub fn from_header(value: Option<&str>) -> String {
    match value {
        Some(id) if valid(id) => id.to_string(),
        _ => generate(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn honours_valid_ids_and_replaces_others() {
        assert_eq!(from_header(Some("abc.DEF_1-2")), "abc.DEF_1-2");
        for bad in ["", "a b", "a/b", "é", &"a".repeat(129)] {
            let id = from_header(Some(bad));
            assert_ne!(id, bad);
            assert!(valid(&id));
        }
        let generated = from_header(None);
        assert_eq!(generated.len(), 32);
        assert_ne!(generated, generate());
    }
}
