//! Bounded under hostile input: what a request or a job may cost the
//! instance that serves it, end to end on the built components.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use e2e::{Azurite, Platform, PlatformOptions, RedisServer, ADMIN_TOKEN, DEMO_KEY};

/// Send a request head that declares `declared` body bytes, then only a few
/// of them, keep the connection open and return the response's status line
/// if one arrives within `within`.
fn status_without_the_body(
    port: u16,
    method: &str,
    path: &str,
    auth: Option<&str>,
    within: Duration,
) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    let declared = 1024 * 1024;
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {declared}\r\n"
    );
    if let Some(token) = auth {
        head.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).expect("write head");
    stream.write_all(&[b' '; 64]).expect("write some body");
    stream.flush().expect("flush");
    let deadline = Instant::now() + within;
    let mut received = Vec::new();
    let mut buf = [0u8; 1024];
    while Instant::now() < deadline {
        stream
            .set_read_timeout(Some(
                deadline
                    .saturating_duration_since(Instant::now())
                    .max(Duration::from_millis(1)),
            ))
            .expect("set timeout");
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                received.extend_from_slice(&buf[..n]);
                if let Some(end) = received.windows(2).position(|w| w == b"\r\n") {
                    return Some(String::from_utf8_lossy(&received[..end]).into_owned());
                }
            }
            Err(_) => break,
        }
    }
    None
}

#[test]
fn bodies_are_not_read_before_authentication_or_for_routes_without_one() {
    let redis = RedisServer::start();
    let azurite = Azurite::start();
    let api = Platform::start(&redis, &azurite, PlatformOptions::api_only());
    let within = Duration::from_secs(5);
    // Each request declares a 1 MiB body and sends 64 bytes of it: the API
    // answers at once, because it never waits for (or buffers) that body.
    let cases = [
        ("POST", "/api/v1/jobs", None, "401"),
        ("POST", "/api/v1/jobs", Some("not-a-key"), "401"),
        ("POST", "/api/v1/jobs", Some(ADMIN_TOKEN), "401"),
        ("POST", "/api/v1/unknown", Some(DEMO_KEY), "404"),
        ("PUT", "/api/v1/jobs", Some(DEMO_KEY), "405"),
        ("POST", "/api/v1/admin/sweep", Some(ADMIN_TOKEN), "200"),
        ("POST", "/api/v1/admin/sweep", Some(DEMO_KEY), "401"),
    ];
    for (method, path, auth, status) in cases {
        let line = status_without_the_body(api.port, method, path, auth, within);
        let line = line.unwrap_or_else(|| {
            panic!(
                "{method} {path}: no response within {within:?}: the body is being read\n{}",
                api.runtime_log()
            )
        });
        assert!(
            line.starts_with("HTTP/1.1 ") && line[9..].starts_with(status),
            "{method} {path}: {line}"
        );
    }
    // An authenticated submit does wait for its body.
    assert_eq!(
        status_without_the_body(
            api.port,
            "POST",
            "/api/v1/jobs",
            Some(DEMO_KEY),
            Duration::from_secs(2)
        ),
        None
    );
}
