//! Bearer authentication: tenant API keys and the operator token.
//!
//! The presented token is hashed with SHA-256 and compared with every
//! configured digest in constant time, without stopping at a match, so neither
//! the position of a key nor the length of a token shows in the timing.

use subtle::{Choice, ConditionallySelectable, ConstantTimeEq};

use super::config::{digest, Credentials};

/// The bearer token of an `Authorization` header value, if it has the `Bearer` scheme.
pub fn bearer_token(authorization: &str) -> Option<&str> {
    let (scheme, token) = authorization.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let token = token.trim();
    (!token.is_empty()).then_some(token)
}

impl Credentials {
    /// The tenant that `token` belongs to.
    pub fn tenant_for(&self, token: &str) -> Option<&str> {
        let presented = digest(token.as_bytes());
        let mut found = Choice::from(0);
        let mut index = 0u32;
        for (i, key) in self.keys.iter().enumerate() {
            let matched = key.digest.ct_eq(&presented);
            index.conditional_assign(&(i as u32), matched);
            found |= matched;
        }
        bool::from(found).then(|| self.keys[index as usize].tenant.as_str())
    }

    /// Whether `token` is the operator token.
    pub fn is_admin(&self, token: &str) -> bool {
        self.admin
            .is_some_and(|admin| bool::from(admin.ct_eq(&digest(token.as_bytes()))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn credentials() -> Credentials {
        Credentials::parse("demo:demo-key,acme:acme-key,demo:demo-key-2", "admin-token").unwrap()
    }

    #[test]
    fn parses_bearer_scheme() {
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("bearer  abc "), Some("abc"));
        assert_eq!(bearer_token("Basic abc"), None);
        assert_eq!(bearer_token("Bearer"), None);
        assert_eq!(bearer_token("Bearer "), None);
        assert_eq!(bearer_token("abc"), None);
    }

    #[test]
    fn maps_keys_to_tenants() {
        let c = credentials();
        assert_eq!(c.tenant_for("demo-key"), Some("demo"));
        assert_eq!(c.tenant_for("acme-key"), Some("acme"));
        assert_eq!(c.tenant_for("demo-key-2"), Some("demo"));
        assert_eq!(c.tenant_for("demo-key-"), None);
        assert_eq!(c.tenant_for("admin-token"), None);
        assert_eq!(c.tenant_for(""), None);
    }

    #[test]
    fn recognises_the_admin_token_only() {
        let c = credentials();
        assert!(c.is_admin("admin-token"));
        assert!(!c.is_admin("admin-toke"));
        assert!(!c.is_admin("demo-key"));
    }
}
