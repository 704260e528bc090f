//! Refused storage credentials (an expired SAS, a rotated key) do not burn
//! jobs' attempts: the job waits, and the worker logs one error line an
//! alert can match.

use std::time::{Duration, Instant};

use e2e::{text_job, Azurite, Platform, PlatformOptions, RedisServer, DEMO_KEY};
use serde_json::Value;

#[test]
fn refused_credentials_defer_jobs_without_spending_attempts() {
    let redis = RedisServer::start();
    let azurite = Azurite::start();
    let api = Platform::start(&redis, &azurite, PlatformOptions::api_only());
    // A valid-looking key that is not the account's: Azurite answers 403.
    let wrong_key = "d3Jvbmcta2V5LXdyb25nLWtleS13cm9uZy1rZXktd3Jvbmcta2V5LXdyb25nLWtleQ==";
    let worker = Platform::start(
        &redis,
        &azurite,
        PlatformOptions::worker_only()
            .var("blob_credential", wrong_key)
            .var("max_attempts", "1"),
    );
    let client = api.client();
    let id = client.submit_ok(DEMO_KEY, &text_job("refused"));
    // With one attempt allowed, a 403 counted as an attempt would fail it.
    let deadline = Instant::now() + Duration::from_secs(20);
    let alert = loop {
        let alert = worker.component_stdout("worker").lines().find_map(|line| {
            let entry: Value = serde_json::from_str(line.trim()).ok()?;
            (entry["level"] == "error"
                && entry["msg"] == "blob storage rejected the credentials"
                && entry["job_id"] == id.as_str())
            .then_some(entry)
        });
        if let Some(alert) = alert {
            break alert;
        }
        assert!(
            Instant::now() < deadline,
            "no alert line:\n{}",
            worker.all_logs()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(alert["outcome"], "deferred", "{alert}");
    let job = client.job(DEMO_KEY, &id);
    assert_eq!(job["status"], "queued", "{job}");
    assert_eq!(job["attempts"], 0, "{job}");
    let reason = job["error"].as_str().unwrap_or_default();
    assert!(
        reason.contains("credentials") && !reason.contains("403"),
        "{job}"
    );
}
