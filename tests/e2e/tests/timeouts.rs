//! Outbound calls are bounded in time: a Blob Storage that accepts
//! connections and never answers costs an attempt its timeouts, not the
//! runtime's 600 s defaults.

use std::time::{Duration, Instant};

use e2e::{text_job, Azurite, Platform, PlatformOptions, RedisServer, DEMO_KEY};

/// A server that accepts connections and never answers, holding them open.
fn silent_server() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("address").port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming() {
            held.push(stream);
        }
    });
    port
}

#[test]
fn a_blob_store_that_never_answers_fails_the_attempt_within_the_timeouts() {
    let redis = RedisServer::start();
    let azurite = Azurite::start();
    let port = silent_server();
    let api = Platform::start(&redis, &azurite, PlatformOptions::api_only());
    let worker = Platform::start(
        &redis,
        &azurite,
        PlatformOptions::worker_only()
            .var(
                "blob_endpoint",
                format!("http://127.0.0.1:{port}/devstoreaccount1"),
            )
            .var("blob_host", format!("127.0.0.1:{port}"))
            .var("http_connect_timeout_ms", "500")
            .var("http_first_byte_timeout_ms", "1000")
            .var("retry_backoff_ms", "60000"),
    );
    let client = api.client();
    let id = client.submit_ok(DEMO_KEY, &text_job("nobody answers"));
    let started = Instant::now();
    // The first attempt fails on the first-byte timeout and the job waits
    // for its retry; with Spin's defaults it would stay running for 600 s.
    let mut job = client.job(DEMO_KEY, &id);
    while !(job["status"] == "queued" && job["attempts"] == 1) {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the attempt did not fail in time: {job}\n{}",
            worker.all_logs()
        );
        std::thread::sleep(Duration::from_millis(100));
        job = client.job(DEMO_KEY, &id);
    }
    assert!(job["error"].is_string(), "{job}");
    assert!(started.elapsed() < Duration::from_secs(20));
}
