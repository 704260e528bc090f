//! Tenant limits end to end: a tenant over its submit limits gets `429`
//! with `Retry-After` and `RateLimit-*` headers, and its flood does not hold
//! up another tenant's job.

use std::time::Duration;

use e2e::{text_job, Azurite, Platform, PlatformOptions, RedisServer, ACME_KEY, DEMO_KEY};

#[test]
fn a_flooding_tenant_is_limited_and_another_tenants_job_still_runs() {
    let redis = RedisServer::start();
    let azurite = Azurite::start();
    let api = Platform::start(
        &redis,
        &azurite,
        PlatformOptions::api_only()
            .var("submit_limits", "0/0/0")
            .var("tenant_submit_limits", "demo=0/0/5"),
    );
    let client = api.client();

    let mut accepted = 0;
    for i in 0..30 {
        let reply = client.submit(DEMO_KEY, &text_job(&format!("flood {i}")));
        match reply.status {
            202 => accepted += 1,
            429 => {
                let problem = reply.assert_problem(429);
                assert!(
                    problem["type"]
                        .as_str()
                        .unwrap()
                        .ends_with("too-many-queued"),
                    "{problem}"
                );
                for header in [
                    "retry-after",
                    "ratelimit-limit",
                    "ratelimit-remaining",
                    "ratelimit-reset",
                ] {
                    assert!(reply.header(header).is_some(), "{header} missing");
                }
                assert_eq!(reply.header("ratelimit-limit"), Some("5"));
            }
            other => panic!("unexpected status {other}"),
        }
    }
    // No worker runs yet, so none of demo's jobs can finish during the
    // flood: exactly its cap of unfinished jobs got in.
    assert_eq!(accepted, 5, "{accepted} accepted");

    // The other tenant is not held back by demo's cap, and its job runs
    // beside demo's once a worker is there.
    let id = client.submit_ok(ACME_KEY, &text_job("another tenant"));
    let _worker = Platform::start(&redis, &azurite, PlatformOptions::worker_only());
    let job = client.wait_final(ACME_KEY, &id, Duration::from_secs(60));
    assert_eq!(job["status"], "succeeded", "{job}");
}
