//! Faults, one test each: what the platform promises is that an accepted job
//! is never lost and runs to completion once in effect, whatever happens to
//! the worker, Redis or Blob Storage.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use e2e::{
    test_png, text_job, thumbnail_job, Azurite, Platform, PlatformOptions, RedisServer,
    ADMIN_TOKEN, DEMO_KEY,
};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(120);

#[test]
fn jobs_submitted_while_no_worker_runs_complete_once_one_starts() {
    let redis = RedisServer::start();
    let azurite = Azurite::start();
    let api = Platform::start(&redis, &azurite, PlatformOptions::api_only());
    let client = api.client();

    // No subscriber: every dispatch message is lost.
    let ids: Vec<String> = (0..10)
        .map(|i| client.submit_ok(DEMO_KEY, &text_job(&format!("nobody listens {i}"))))
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    for id in &ids {
        assert_eq!(client.job(DEMO_KEY, id)["status"], "queued");
    }

    // A worker starts; the scheduled sweep re-publishes what is due.
    let _worker = Platform::start(&redis, &azurite, PlatformOptions::worker_only());
    for id in &ids {
        let job = client.wait_final(DEMO_KEY, id, WAIT);
        assert_eq!(job["status"], "succeeded", "{job}");
        assert_eq!(job["attempts"], 1, "{job}");
    }
}

/// Per job id, how many times a worker's logs say it ran the job.
fn runs_per_job(logs: &str) -> HashMap<String, usize> {
    let mut runs = HashMap::new();
    for line in logs.lines() {
        let Ok(entry) = serde_json::from_str::<Value>(line.trim()) else {
            continue;
        };
        if let (Some(id), Some(_attempt)) = (entry["job_id"].as_str(), entry.get("attempt")) {
            *runs.entry(id.to_string()).or_insert(0) += 1;
        }
    }
    runs
}

#[test]
fn two_workers_process_every_job_exactly_once() {
    let redis = RedisServer::start();
    let azurite = Azurite::start();
    let api = Platform::start(&redis, &azurite, PlatformOptions::api_only());
    let worker_a = Platform::start(&redis, &azurite, PlatformOptions::worker_only());
    let worker_b = Platform::start(&redis, &azurite, PlatformOptions::worker_only());
    let client = api.client();

    let ids: Vec<String> = (0..40)
        .map(|i| client.submit_ok(DEMO_KEY, &text_job(&format!("two workers {i}"))))
        .collect();
    for id in &ids {
        let job = client.wait_final(DEMO_KEY, id, WAIT);
        assert_eq!(job["status"], "succeeded", "{job}");
        assert_eq!(job["attempts"], 1, "claimed more than once: {job}");
    }

    // Both workers received every message; between them each job ran once.
    std::thread::sleep(Duration::from_millis(300));
    let a = runs_per_job(&worker_a.component_stdout("worker"));
    let b = runs_per_job(&worker_b.component_stdout("worker"));
    assert!(
        !a.is_empty() || !b.is_empty(),
        "no job log lines:\n{}",
        worker_a.all_logs()
    );
    for id in &ids {
        let total = a.get(id).unwrap_or(&0) + b.get(id).unwrap_or(&0);
        assert_eq!(total, 1, "job {id} ran {total} times (a: {a:?}, b: {b:?})");
    }
}

#[test]
fn a_job_whose_worker_dies_mid_run_completes_after_restart() {
    let redis = RedisServer::start();
    let azurite = Azurite::start();
    let api = Platform::start(
        &redis,
        &azurite,
        PlatformOptions::api_only()
            .var("lease_ms", "3000")
            .var("max_body_bytes", "33554432"),
    );
    let worker_options = PlatformOptions::worker_only().var("lease_ms", "3000");
    let mut worker = Platform::start(&redis, &azurite, worker_options);
    let client = api.client();

    // The CPU-bound job type with a 12-megapixel image (about 0.7 s of work),
    // so that it is still running when the worker is killed. Scaled to 256
    // pixels: to 1024 its working set (84 MiB) is over the thumbnail limit.
    let png = test_png(4000, 3000);
    let body = thumbnail_job(&png, 256, 256);
    let id = client.submit_ok(DEMO_KEY, &body);

    let deadline = Instant::now() + Duration::from_secs(30);
    while client.job(DEMO_KEY, &id)["status"] != "running" {
        assert!(Instant::now() < deadline, "the job never started running");
        std::thread::sleep(Duration::from_millis(5));
    }
    worker.kill();
    let job = client.job(DEMO_KEY, &id);
    assert_eq!(
        job["status"], "running",
        "the job finished before the worker was killed: {job}"
    );

    // The lease expires, the sweep republishes, the restarted worker reclaims it.
    worker.restart();
    let job = client.wait_final(DEMO_KEY, &id, WAIT);
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(job["attempts"], 2, "{job}");

    let want = platform_core::jobs::find("thumbnail")
        .unwrap()
        .run(&body["input"].to_string())
        .unwrap();
    let (_, bytes) = azurite
        .read_blob(&format!("demo/{id}.png"))
        .expect("result blob");
    assert_eq!(bytes, want.bytes);
}

#[test]
fn redis_down_means_503_and_never_202() {
    let mut redis = RedisServer::start();
    let azurite = Azurite::start();
    let api = Platform::start(&redis, &azurite, PlatformOptions::api_only());
    let client = api.client();
    client.submit_ok(DEMO_KEY, &text_job("before the outage"));

    redis.stop();
    for i in 0..5 {
        let reply = client.submit(DEMO_KEY, &text_job(&format!("during the outage {i}")));
        reply.assert_problem(503);
        assert!(
            reply.header("retry-after").is_some(),
            "503 without Retry-After"
        );
    }
    client
        .request("GET", "/readyz", &[], None)
        .assert_problem(503);
    assert_eq!(client.request("GET", "/healthz", &[], None).status, 200);
    // Every route that needs Redis says so, with Retry-After.
    let some_id = "00000000-0000-4000-8000-000000000000";
    for reply in [
        client.get(&format!("/api/v1/jobs/{some_id}"), DEMO_KEY),
        client.get(&format!("/api/v1/jobs/{some_id}/result"), DEMO_KEY),
        client.get("/api/v1/admin/dead-letters", ADMIN_TOKEN),
        client.admin_post(&format!("/api/v1/admin/dead-letters/{some_id}/redrive")),
        client.sweep(),
    ] {
        reply.assert_problem(503);
        assert!(
            reply.header("retry-after").is_some(),
            "503 without Retry-After"
        );
    }

    // Back up: nothing was half-created (Redis lost its memory, so no job exists at all),
    // and submissions are accepted again.
    redis.restart();
    let mut conn = redis.client();
    let keys: Vec<String> = redis::cmd("KEYS").arg("{jobs}:*").query(&mut conn).unwrap();
    assert!(keys.is_empty(), "{keys:?}");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let reply = client.submit(DEMO_KEY, &text_job("after the outage"));
        if reply.status == 202 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still {} after Redis came back",
            reply.status
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn blob_storage_down_retries_then_fails_and_redrive_completes() {
    let redis = RedisServer::start();
    let mut azurite = Azurite::start();
    let options = PlatformOptions::default()
        .var("max_attempts", "3")
        .var("retry_backoff_ms", "200");
    let platform = Platform::start(&redis, &azurite, options);
    let client = platform.client();

    azurite.stop();
    let text = "stored once storage is back";
    let id = client.submit_ok(DEMO_KEY, &text_job(text));
    let job = client.wait_final(DEMO_KEY, &id, WAIT);
    assert_eq!(job["status"], "failed", "{job}");
    assert_eq!(job["attempts"], 3, "{job}");
    let error = job["error"].to_string().to_ascii_lowercase();
    assert!(
        error.contains("storage") || error.contains("blob"),
        "reason: {error}"
    );

    // The result of a failed job is a conflict that says why.
    let result = client.get(&format!("/api/v1/jobs/{id}/result"), DEMO_KEY);
    let problem = result.assert_problem(409);
    assert_eq!(problem["job_status"], "failed", "{problem}");

    let dead = client.get("/api/v1/admin/dead-letters", ADMIN_TOKEN);
    assert_eq!(dead.status, 200);
    assert!(
        dead.body_contains(&id),
        "dead letters lack {id}: {}",
        String::from_utf8_lossy(&dead.body)
    );

    azurite.restart();
    let redrive = client.admin_post(&format!("/api/v1/admin/dead-letters/{id}/redrive"));
    assert!(
        matches!(redrive.status, 200 | 202),
        "{}",
        String::from_utf8_lossy(&redrive.body)
    );
    let job = client.wait_final(DEMO_KEY, &id, WAIT);
    assert_eq!(job["status"], "succeeded", "{job}");

    let want = platform_core::jobs::find("text-stats")
        .unwrap()
        .run(&serde_json::json!({"text": text}).to_string())
        .unwrap();
    let result = client.get(&format!("/api/v1/jobs/{id}/result"), DEMO_KEY);
    assert_eq!(result.body, want.bytes);

    // With storage down again, the stored result cannot be read: 502, not 500.
    azurite.stop();
    client
        .get(&format!("/api/v1/jobs/{id}/result"), DEMO_KEY)
        .assert_problem(502);
}

/// A crashed runtime leaves nothing behind: `spin up` runs its triggers as
/// child processes, and a platform stopped with SIGKILL must take all of them
/// with it, or a "dead" worker would go on claiming jobs.
#[test]
fn a_killed_platform_leaves_no_runtime_process() {
    let redis = RedisServer::start();
    let azurite = Azurite::start();
    let mut platform = Platform::start(&redis, &azurite, PlatformOptions::default());
    let group = platform.process_group().expect("running");
    let running = e2e::live_processes_in_group(group);
    assert!(!running.is_empty(), "the runtime's process group is empty");
    if e2e::Runtime::from_env() == e2e::Runtime::Spin {
        assert!(
            running.iter().any(|(_, cmd)| cmd.contains(" trigger ")),
            "spin up runs its triggers in child processes of its group: {running:?}"
        );
    }
    platform.kill();
    // Not its port: another test running beside this one may take it.
    assert_eq!(e2e::live_processes_in_group(group), Vec::new());
}
