//! `allowed_outbound_hosts` parsing and matching with the rules of Spin 3.6's
//! `spin-outbound-networking-config`: `<scheme>://<host>[:<port>]`, `*` for any
//! scheme, host or port, `*.domain` subdomain wildcards, port ranges `a..b`,
//! IP/CIDR hosts, and a scheme's well-known port when none is given.

use std::net::IpAddr;

use anyhow::{bail, Context, Result};

#[derive(Clone, Debug, PartialEq, Eq)]
enum SchemePat {
    Any,
    Is(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum HostPat {
    Any,
    /// `*.example.com`, stored as `.example.com`.
    AnySubdomain(String),
    /// `self`: requests to the app itself (service chaining), never matched
    /// by an absolute URL.
    ToSelf,
    Is(String),
    Cidr(IpAddr, u8),
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum PortPat {
    Any,
    Port(u16),
    /// Half-open, like Spin's `Range<u16>`.
    Range(u16, u16),
}

/// One parsed `allowed_outbound_hosts` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AllowedHost {
    scheme: SchemePat,
    host: HostPat,
    port: PortPat,
}

/// The well-known ports Spin fills in when an entry or URL has none.
pub fn well_known_port(scheme: &str) -> Option<u16> {
    match scheme {
        "postgres" => Some(5432),
        "mysql" => Some(3306),
        "redis" => Some(6379),
        "mqtt" => Some(1883),
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    }
}

impl AllowedHost {
    pub fn parse(entry: &str) -> Result<Self> {
        let url = entry.trim();
        let Some((scheme, rest)) = url.split_once("://") else {
            match url {
                "*" | ":" | "" | "?" => bail!(
                    "{url:?} is not an allowed outbound host format: hosts must be in the form <scheme>://<host>[:<port>], with '*' wildcards allowed for each"
                ),
                _ => bail!("{url:?} does not contain a scheme (e.g., 'http://' or '*://')"),
            }
        };
        let (host, rest) = rest.rsplit_once(':').unwrap_or((rest, ""));
        let port = match rest.split_once('/') {
            Some((port, path)) => {
                if !path.is_empty() {
                    bail!("{url:?} has a path but is not allowed to");
                }
                port
            }
            None => rest,
        };

        let scheme_pat = if scheme == "*" {
            SchemePat::Any
        } else if scheme.starts_with('{') {
            bail!("{url:?}: scheme lists are not supported")
        } else if scheme.chars().any(|c| !c.is_alphabetic()) {
            bail!("{url:?}: scheme {scheme:?} contains non alphabetic character")
        } else {
            SchemePat::Is(scheme.to_string())
        };

        let host = host.trim();
        let host_pat = if host == "*" {
            HostPat::Any
        } else if host == "self" || host == "self.alt" {
            HostPat::ToSelf
        } else if host.starts_with('{') {
            bail!("{url:?}: host lists are not supported")
        } else if let Some(net) = parse_cidr(host) {
            HostPat::Cidr(net.0, net.1)
        } else if matches!(host.split('/').nth(1), Some(p) if !p.is_empty()) {
            bail!("{url:?}: hosts must not contain paths")
        } else if let Some(domain) = host.strip_prefix("*.") {
            if domain.contains('*') {
                bail!("Invalid allowed host {host}: wildcards are allowed only as prefixes");
            }
            HostPat::AnySubdomain(format!(".{domain}"))
        } else if host.contains('*') {
            bail!("Invalid allowed host {host}: wildcards are allowed only as subdomains")
        } else {
            HostPat::Is(host.trim_end_matches('/').to_string())
        };

        let port_pat = if port.is_empty() {
            PortPat::Port(well_known_port(scheme).with_context(|| {
                format!("{url:?}: no port was provided and the scheme {scheme:?} does not have a known default port number")
            })?)
        } else if port == "*" {
            PortPat::Any
        } else if port.starts_with('{') {
            bail!("{url:?}: port lists are not supported")
        } else if let Some((a, b)) = port.split_once("..") {
            PortPat::Range(
                a.parse()
                    .with_context(|| format!("port range {port:?} contains non-number"))?,
                b.parse()
                    .with_context(|| format!("port range {port:?} contains non-number"))?,
            )
        } else {
            PortPat::Port(
                port.parse()
                    .with_context(|| format!("port {port:?} is not a number"))?,
            )
        };

        Ok(Self {
            scheme: scheme_pat,
            host: host_pat,
            port: port_pat,
        })
    }

    fn allows(&self, url: &OutboundUrl) -> bool {
        let scheme_ok = match &self.scheme {
            SchemePat::Any => true,
            SchemePat::Is(s) => *s == url.scheme,
        };
        let host_ok = match &self.host {
            HostPat::Any => true,
            HostPat::AnySubdomain(suffix) => url.host.ends_with(suffix.as_str()),
            HostPat::ToSelf => false,
            HostPat::Is(h) => *h == url.host,
            HostPat::Cidr(net, bits) => url
                .host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<IpAddr>()
                .is_ok_and(|ip| cidr_contains(*net, *bits, ip)),
        };
        let port_ok = match &self.port {
            PortPat::Any => true,
            other => match url.port.or_else(|| well_known_port(&url.scheme)) {
                None => false,
                Some(p) => match other {
                    PortPat::Port(q) => p == *q,
                    PortPat::Range(a, b) => (*a..*b).contains(&p),
                    PortPat::Any => true,
                },
            },
        };
        scheme_ok && host_ok && port_ok
    }
}

fn parse_cidr(host: &str) -> Option<(IpAddr, u8)> {
    let (addr, bits) = match host.split_once('/') {
        Some((a, b)) => (a, Some(b.parse::<u8>().ok()?)),
        None => (host, None),
    };
    let ip: IpAddr = addr
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let bits = bits.unwrap_or(max);
    (bits <= max).then_some((ip, bits))
}

fn cidr_contains(net: IpAddr, bits: u8, ip: IpAddr) -> bool {
    match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(i)) => {
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - bits)
            };
            u32::from(n) & mask == u32::from(i) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(i)) => {
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - bits)
            };
            u128::from(n) & mask == u128::from(i) & mask
        }
        _ => false,
    }
}

/// A destination a component tries to reach.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboundUrl {
    pub scheme: String,
    pub host: String,
    pub port: Option<u16>,
}

impl OutboundUrl {
    /// Parses `url`; without `scheme://` the given default scheme is assumed.
    /// User info (`user:password@`) is ignored.
    pub fn parse(url: &str, default_scheme: &str) -> Result<Self> {
        let (scheme, rest) = match url.split_once("://") {
            Some((s, r)) => (s.to_ascii_lowercase(), r),
            None => (default_scheme.to_string(), url),
        };
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        let authority = authority
            .rsplit_once('@')
            .map(|(_, a)| a)
            .unwrap_or(authority);
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (h, after) = v6
                .split_once(']')
                .with_context(|| format!("{url:?}: unterminated IPv6 address"))?;
            (format!("[{h}]"), after.strip_prefix(':'))
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), Some(p)),
                None => (authority.to_string(), None),
            }
        };
        if host.is_empty() {
            bail!("{url:?} does not have a host component");
        }
        let port = match port {
            None | Some("") => None,
            Some(p) => Some(
                p.parse::<u16>()
                    .with_context(|| format!("{url:?}: invalid port {p:?}"))?,
            ),
        };
        Ok(Self {
            scheme,
            host: host.to_ascii_lowercase(),
            port,
        })
    }

    /// `host[:port]`, as Spin prints it.
    pub fn authority(&self) -> String {
        match self.port {
            Some(p) => format!("{}:{p}", self.host),
            None => self.host.clone(),
        }
    }
}

/// A component's resolved allow-list.
#[derive(Clone, Debug, Default)]
pub struct AllowedHosts {
    hosts: Vec<AllowedHost>,
}

impl AllowedHosts {
    pub fn parse(entries: &[String]) -> Result<Self> {
        if entries.len() == 1 && entries[0] == "insecure:allow-all" {
            bail!("'insecure:allow-all' is not allowed - use '*://*:*' instead if you really want to allow all outbound traffic");
        }
        Ok(Self {
            hosts: entries
                .iter()
                .map(|e| AllowedHost::parse(e))
                .collect::<Result<_>>()?,
        })
    }

    pub fn allows(&self, url: &OutboundUrl) -> bool {
        self.hosts.iter().any(|h| h.allows(url))
    }

    /// Checks `url`; a denied or unparsable destination is reported on stderr
    /// as Spin reports it, and `false` is returned.
    pub fn check(&self, component: &str, url: &str, default_scheme: &str) -> bool {
        match OutboundUrl::parse(url, default_scheme) {
            Ok(parsed) if self.allows(&parsed) => true,
            Ok(parsed) => {
                report_denied(component, &parsed.scheme, &parsed.authority());
                false
            }
            Err(e) => {
                eprintln!("Outbound network destination not allowed: {e}");
                false
            }
        }
    }
}

/// Spin 3.6's disallowed-host messages (runtime-factors' handler).
pub fn report_denied(component: &str, scheme: &str, authority: &str) {
    let pattern = format!("{scheme}://{authority}");
    eprintln!("ERROR spin_local: Outbound network destination not allowed: {pattern} (component {component})");
    eprintln!("Warning: A component tried to make an outbound network connection to disallowed destination '{pattern}'.");
    eprintln!("To allow this request, add 'allowed_outbound_hosts = [\"{pattern}\"]' to the manifest component section.");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allows(entries: &[&str], url: &str, scheme: &str) -> bool {
        let hosts = AllowedHosts::parse(&entries.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .unwrap();
        hosts.allows(&OutboundUrl::parse(url, scheme).unwrap())
    }

    #[test]
    fn exact_host_and_default_ports() {
        assert!(allows(
            &["redis://127.0.0.1:6379"],
            "redis://127.0.0.1:6379",
            "redis"
        ));
        // No port in the URL: the scheme's well-known port.
        assert!(allows(
            &["redis://127.0.0.1:6379"],
            "redis://127.0.0.1",
            "redis"
        ));
        assert!(allows(
            &["redis://127.0.0.1"],
            "redis://127.0.0.1:6379",
            "redis"
        ));
        assert!(!allows(
            &["redis://127.0.0.1:6379"],
            "redis://127.0.0.1:6380",
            "redis"
        ));
        assert!(!allows(
            &["redis://127.0.0.1:6379"],
            "redis://10.0.0.1:6379",
            "redis"
        ));
        // The scheme must match too.
        assert!(!allows(
            &["http://127.0.0.1:10000"],
            "https://127.0.0.1:10000/x",
            "https"
        ));
        assert!(allows(
            &["http://127.0.0.1:10000"],
            "http://127.0.0.1:10000/devstoreaccount1/c/b?x=1",
            "http"
        ));
        assert!(allows(
            &["https://example.com"],
            "https://example.com/a",
            "https"
        ));
        assert!(!allows(
            &["https://example.com"],
            "https://example.com:8443/a",
            "https"
        ));
    }

    #[test]
    fn passwords_are_ignored() {
        assert!(allows(
            &["redis://cache.internal:6380"],
            "redis://:s3cret@cache.internal:6380/0",
            "redis"
        ));
        assert!(allows(
            &["rediss://cache.internal:6380"],
            "rediss://default:p@ss@cache.internal:6380",
            "redis"
        ));
    }

    #[test]
    fn wildcards() {
        assert!(allows(&["*://*:*"], "redis://anything:1", "redis"));
        assert!(allows(
            &["https://*.blob.core.windows.net"],
            "https://acct.blob.core.windows.net/c",
            "https"
        ));
        assert!(!allows(
            &["https://*.blob.core.windows.net"],
            "https://blob.core.windows.net.evil/c",
            "https"
        ));
        assert!(allows(
            &["http://localhost:*"],
            "http://localhost:1234",
            "http"
        ));
        assert!(allows(
            &["*://localhost:6379"],
            "redis://localhost:6379",
            "redis"
        ));
        assert!(allows(
            &["http://localhost:8000..8010"],
            "http://localhost:8005",
            "http"
        ));
        assert!(!allows(
            &["http://localhost:8000..8010"],
            "http://localhost:8010",
            "http"
        ));
        assert!(allows(
            &["redis://10.0.0.0/8:6379"],
            "redis://10.1.2.3:6379",
            "redis"
        ));
        assert!(!allows(
            &["redis://10.0.0.0/8:6379"],
            "redis://11.1.2.3:6379",
            "redis"
        ));
        assert!(!allows(&["http://self"], "http://self/x", "http"));
    }

    #[test]
    fn schemeless_url_uses_default_scheme() {
        assert!(allows(&["redis://h:1"], "h:1", "redis"));
    }

    #[test]
    fn invalid_entries() {
        for bad in [
            "*",
            "example.com",
            "http://example.com/path",
            "http://a.*.com",
            "http://ex*ample.com",
            "ftp://example.com",
            "http://example.com:port",
            "h1ttp://example.com",
        ] {
            assert!(AllowedHost::parse(bad).is_err(), "{bad}");
        }
        assert!(AllowedHosts::parse(&["insecure:allow-all".to_string()]).is_err());
        assert!(!AllowedHosts::default().check("c", "http://x", "http"));
    }

    #[test]
    fn url_parsing() {
        let u = OutboundUrl::parse("HTTP://User:pw@Example.COM:8080/p?q", "http").unwrap();
        assert_eq!(u.scheme, "http");
        assert_eq!(u.host, "example.com");
        assert_eq!(u.port, Some(8080));
        assert_eq!(u.authority(), "example.com:8080");
        let v6 = OutboundUrl::parse("http://[::1]:80/", "http").unwrap();
        assert_eq!(v6.host, "[::1]");
        assert!(OutboundUrl::parse("http:///x", "http").is_err());
    }
}
