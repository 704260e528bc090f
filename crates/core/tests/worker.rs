//! The worker and the Blob client against a real Redis and Azurite.

mod common;

use std::io::Cursor;

use base64::Engine as _;
use common::*;
use platform_core::blob::{BlobClient, BlobError, PutOutcome};
use platform_core::config::{BlobAuth, BlobConfig, HttpTimeouts, PipelineConfig};
use platform_core::jobs;
use platform_core::log::{Level, Logger};
use platform_core::native::{block_on, CountingRedis, NativeHttp};
use platform_core::pipeline::{
    self, JobStatus, NewJob, PipelineError, SubmitOutcome, PROCESS_ROUND_TRIPS,
};
use platform_core::ports::Redis;
use platform_core::worker::{handle_message, WorkerReport};
use serde_json::{json, Value};

/// Run the worker on one message, with native HTTP and a quiet logger.
fn work(
    message: &[u8],
    cfg: &PipelineConfig,
    blob: &BlobConfig,
    redis: &impl Redis,
) -> Result<WorkerReport, PipelineError> {
    block_on(handle_message(
        message,
        cfg,
        blob,
        redis,
        &NativeHttp::default(),
        &logger(),
    ))
}

fn logger() -> Logger {
    Logger::new("worker-test", Level::Error)
}

fn submit(
    redis: &impl platform_core::ports::Redis,
    cfg: &platform_core::config::PipelineConfig,
    job_type: &str,
    input: &Value,
) -> String {
    let job = NewJob {
        tenant: "acme".into(),
        job_type: job_type.into(),
        input_json: input.to_string(),
        request_hash: format!("{job_type}:{input}"),
        idempotency_key: None,
    };
    match pipeline::submit(redis, cfg, job).unwrap() {
        SubmitOutcome::Created(record) => record.id,
        other => panic!("unexpected {other:?}"),
    }
}

fn png_base64(width: u32, height: u32) -> String {
    let image = image::RgbImage::from_fn(width, height, |x, y| {
        image::Rgb([(x * 7) as u8, (y * 5) as u8, 99])
    });
    let mut bytes = Vec::new();
    image
        .write_to(&mut Cursor::new(&mut bytes), image::ImageFormat::Png)
        .unwrap();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[test]
fn blob_client_against_azurite() {
    require_azurite();
    let config = blob_config("client");
    let http = NativeHttp::default();
    let client = BlobClient::new(&config, &http);

    assert_eq!(
        block_on(client.get("acme/missing.json")).unwrap(),
        None,
        "missing container reads as absent"
    );
    block_on(client.ensure_container()).unwrap();
    block_on(client.ensure_container()).unwrap(); // idempotent
    assert_eq!(block_on(client.get("acme/missing.json")).unwrap(), None);

    let name = "acme/some id.json";
    assert_eq!(
        block_on(client.put_if_absent(name, "application/json", b"{\"a\":1}")).unwrap(),
        PutOutcome::Created
    );
    assert_eq!(
        block_on(client.put_if_absent(name, "application/json", b"{\"a\":2}")).unwrap(),
        PutOutcome::AlreadyExists
    );
    assert_eq!(
        block_on(client.get(name)).unwrap(),
        Some(("application/json".to_string(), b"{\"a\":1}".to_vec())),
        "the first write wins"
    );

    // A wrong key is an authentication error.
    let wrong = BlobConfig {
        auth: BlobAuth::SharedKey { key: vec![7; 64] },
        ..config.clone()
    };
    let err = block_on(BlobClient::new(&wrong, &http).get(name)).unwrap_err();
    assert!(matches!(err, BlobError::Auth { .. }), "{err:?}");
}

#[test]
fn put_creates_a_missing_container() {
    require_azurite();
    let config = blob_config("autocreate");
    let http = NativeHttp::default();
    let client = BlobClient::new(&config, &http);
    assert_eq!(
        block_on(client.put_if_absent("t/x.bin", "application/octet-stream", &[1, 2, 3])).unwrap(),
        PutOutcome::Created
    );
    assert_eq!(
        block_on(client.get("t/x.bin")).unwrap(),
        Some(("application/octet-stream".into(), vec![1, 2, 3]))
    );
}

#[test]
fn worker_runs_jobs_and_stores_results_byte_for_byte() {
    require_azurite();
    let redis = CountingRedis::new(redis());
    let cfg = pipeline_config("worker");
    let blob = blob_config("worker");
    let http = NativeHttp::default();

    let cases = [
        (
            "text-stats",
            json!({"text": "The quick brown fox. The lazy dog!\nthe end", "top_n": 3}),
        ),
        (
            "thumbnail",
            json!({"image": png_base64(120, 80), "max_width": 30, "max_height": 30}),
        ),
    ];
    for (job_type, input) in cases {
        let id = submit(&redis, &cfg, job_type, &input);
        redis.take();
        let report = work(id.as_bytes(), &cfg, &blob, &redis).unwrap();
        assert_eq!(
            report,
            WorkerReport {
                claimed: 1,
                succeeded: 1,
                ..WorkerReport::default()
            }
        );
        let trips = redis.take();
        println!("{job_type}: {trips} Redis round trips for one processed job");
        assert!(
            trips <= u64::from(PROCESS_ROUND_TRIPS) + 2,
            "{trips} round trips"
        ); // +2: first EVALs on a fresh server

        let record = pipeline::get(&redis, &cfg, &id).unwrap().unwrap();
        assert_eq!((record.status, record.attempts), (JobStatus::Succeeded, 1));
        let result = record.result.expect("a result reference");
        let expected = jobs::find(job_type)
            .unwrap()
            .run(&input.to_string())
            .unwrap();
        assert_eq!(result.blob, format!("acme/{id}.{}", expected.extension));
        assert_eq!(result.content_type, expected.content_type);
        assert_eq!(result.bytes, expected.bytes.len() as u64);

        let (content_type, bytes) = block_on(BlobClient::new(&blob, &http).get(&result.blob))
            .unwrap()
            .expect("the blob exists");
        assert_eq!(content_type, expected.content_type);
        assert_eq!(
            bytes, expected.bytes,
            "{job_type}: stored bytes equal the job's output"
        );

        // A duplicate delivery does nothing.
        let again = work(id.as_bytes(), &cfg, &blob, &redis).unwrap();
        assert_eq!(again, WorkerReport::default());
    }
}

#[test]
fn one_processed_job_costs_two_round_trips() {
    require_azurite();
    let redis = CountingRedis::new(redis());
    let cfg = pipeline_config("trips");
    let blob = blob_config("trips");
    let mut fewest = u64::MAX;
    for i in 0..3 {
        let id = submit(
            &redis,
            &cfg,
            "text-stats",
            &json!({"text": format!("run {i}")}),
        );
        redis.take();
        let report = work(id.as_bytes(), &cfg, &blob, &redis).unwrap();
        assert_eq!(report.succeeded, 1);
        fewest = fewest.min(redis.take());
    }
    println!("round trips per processed job: {fewest}");
    assert_eq!(fewest, u64::from(PROCESS_ROUND_TRIPS));
}

#[test]
fn garbage_messages_only_sweep() {
    require_azurite();
    let redis = redis();
    let cfg = pipeline_config("garbage");
    let blob = blob_config("garbage");
    // A job whose message was lost is picked up by any message, even garbage.
    let id = submit(&redis, &cfg, "text-stats", &json!({"text": "lost"}));
    for message in [
        &b"\xff\xfe not utf-8"[..],
        b"",
        b"not-a-job-id",
        b"00000000-0000-4000-8000-000000000000",
    ] {
        let report = work(message, &cfg, &blob, &redis).unwrap();
        if report.claimed == 1 {
            assert_eq!(report.succeeded, 1);
        } else {
            assert_eq!(report, WorkerReport::default());
        }
    }
    assert_eq!(
        pipeline::get(&redis, &cfg, &id).unwrap().unwrap().status,
        JobStatus::Succeeded
    );
}

#[test]
fn permanent_job_errors_dead_letter_and_blob_outages_retry() {
    require_azurite();
    let redis = redis();
    let cfg = pipeline_config("errors");
    let blob = blob_config("errors");

    // A corrupt image body passes validation (header intact) but fails to decode: permanent.
    let mut png = base64::engine::general_purpose::STANDARD
        .decode(png_base64(40, 40))
        .unwrap();
    png.truncate(60);
    let input = json!({"image": base64::engine::general_purpose::STANDARD.encode(&png), "max_width": 8, "max_height": 8});
    jobs::find("thumbnail")
        .unwrap()
        .validate(&input.to_string())
        .unwrap();
    let corrupt = submit(&redis, &cfg, "thumbnail", &input);
    let report = work(corrupt.as_bytes(), &cfg, &blob, &redis).unwrap();
    assert_eq!(
        report,
        WorkerReport {
            claimed: 1,
            failed: 1,
            ..WorkerReport::default()
        }
    );
    let record = pipeline::get(&redis, &cfg, &corrupt).unwrap().unwrap();
    assert_eq!(record.status, JobStatus::Failed);
    // Tenants get a stable reason, never the decoder's message.
    assert_eq!(
        record.error.as_deref(),
        Some("the job failed: its input could not be processed")
    );

    // An unknown type (not validated by the pipeline itself) fails for good.
    let unknown = submit(&redis, &cfg, "no-such-type", &json!({}));
    let report = work(unknown.as_bytes(), &cfg, &blob, &redis).unwrap();
    assert_eq!(report.failed, 1);
    assert_eq!(
        pipeline::dead_letters(&redis, &cfg, 0, 10).unwrap().len(),
        2
    );
    let record = pipeline::get(&redis, &cfg, &unknown).unwrap().unwrap();
    assert_eq!(record.error.as_deref(), Some("unknown job type"));

    // Blob Storage down: the job goes back to the queue with backoff.
    let down = BlobConfig {
        endpoint: "http://127.0.0.1:1/devstoreaccount1".into(),
        ..blob.clone()
    };
    let id = submit(&redis, &cfg, "text-stats", &json!({"text": "x"}));
    let report = work(id.as_bytes(), &cfg, &down, &redis).unwrap();
    assert_eq!(
        report,
        WorkerReport {
            claimed: 1,
            retrying: 1,
            ..WorkerReport::default()
        }
    );
    let record = pipeline::get(&redis, &cfg, &id).unwrap().unwrap();
    assert_eq!((record.status, record.attempts), (JobStatus::Queued, 1));
    // Not the storage client's error (address, OS error text).
    assert_eq!(
        record.error.as_deref(),
        Some("the result storage was unavailable")
    );

    // Once it is back, the retry succeeds.
    std::thread::sleep(std::time::Duration::from_millis(150));
    let report = work(id.as_bytes(), &cfg, &blob, &redis).unwrap();
    assert_eq!(report.succeeded, 1);
    let record = pipeline::get(&redis, &cfg, &id).unwrap().unwrap();
    assert_eq!(
        (record.status, record.attempts, record.error),
        (JobStatus::Succeeded, 2, None)
    );
}

#[test]
fn redis_down_is_an_error_and_nothing_panics() {
    let redis = platform_core::native::NativeRedis::new("redis://127.0.0.1:1").unwrap();
    let cfg = pipeline_config("redisdown");
    let blob = blob_config("redisdown");
    let result = work(b"00000000-0000-4000-8000-000000000000", &cfg, &blob, &redis);
    assert!(
        matches!(result, Err(pipeline::PipelineError::Unavailable(_))),
        "{result:?}"
    );
}

#[test]
fn jobs_not_started_within_half_the_lease_are_handed_back() {
    require_azurite();
    let redis = redis();
    // A 1 ms lease: half of it is gone once the message's own job has run.
    let cfg = platform_core::config::PipelineConfig {
        lease_ms: 1,
        ..pipeline_config("release")
    };
    let blob = blob_config("release");
    let ids: Vec<String> = (0..3)
        .map(|i| submit(&redis, &cfg, "text-stats", &json!({"text": format!("{i}")})))
        .collect();

    let mut subscriber = Subscriber::new(&cfg.channel);
    let report = work(ids[0].as_bytes(), &cfg, &blob, &redis).unwrap();
    assert_eq!(
        report,
        WorkerReport {
            claimed: 3,
            succeeded: 1,
            released: 2,
            ..WorkerReport::default()
        }
    );

    let mut published = subscriber.next(2);
    published.sort();
    let mut expected = ids[1..].to_vec();
    expected.sort();
    assert_eq!(
        published, expected,
        "released jobs are published for another worker"
    );
    for id in &ids[1..] {
        let record = pipeline::get(&redis, &cfg, id).unwrap().unwrap();
        assert_eq!(
            (record.status, record.attempts),
            (JobStatus::Queued, 0),
            "the claim's attempt is undone"
        );
    }
    assert_eq!(
        pipeline::get(&redis, &cfg, &ids[0])
            .unwrap()
            .unwrap()
            .status,
        JobStatus::Succeeded
    );
}

/// A server that accepts connections and never answers, holding them open.
fn silent_server() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming() {
            held.push(stream);
        }
    });
    port
}

#[test]
fn a_blob_call_that_never_answers_fails_the_attempt_within_its_timeouts() {
    let redis = redis();
    let cfg = pipeline_config("silent");
    let blob = BlobConfig {
        endpoint: format!("http://127.0.0.1:{}/devstoreaccount1", silent_server()),
        ..blob_config("silent")
    };
    let http = NativeHttp::with_timeouts(HttpTimeouts {
        connect_ms: 200,
        first_byte_ms: 500,
        between_bytes_ms: 500,
    });
    let id = submit(&redis, &cfg, "text-stats", &json!({"text": "x"}));
    let started = std::time::Instant::now();
    let report = block_on(handle_message(
        id.as_bytes(),
        &cfg,
        &blob,
        &redis,
        &http,
        &logger(),
    ))
    .unwrap();
    let elapsed = started.elapsed();
    assert_eq!(
        report,
        WorkerReport {
            claimed: 1,
            retrying: 1,
            ..WorkerReport::default()
        }
    );
    // One PUT that times out (and no more: a failed PUT is not retried
    // within the attempt), well within the lease.
    assert!(elapsed < std::time::Duration::from_secs(3), "{elapsed:?}");
    let record = pipeline::get(&redis, &cfg, &id).unwrap().unwrap();
    assert_eq!((record.status, record.attempts), (JobStatus::Queued, 1));
}

#[test]
fn a_result_stored_by_an_earlier_run_is_recorded_at_its_stored_size() {
    require_azurite();
    let redis = redis();
    let cfg = pipeline_config("existed");
    let blob = blob_config("existed");
    let http = NativeHttp::default();
    let id = submit(&redis, &cfg, "text-stats", &json!({"text": "x"}));
    // An earlier run stored its result, then died before completing the job.
    let earlier = b"{\"stored\":\"by an earlier run\"}";
    let name = format!("acme/{id}.json");
    block_on(BlobClient::new(&blob, &http).put_if_absent(&name, "application/json", earlier))
        .unwrap();

    let report = work(id.as_bytes(), &cfg, &blob, &redis).unwrap();
    assert_eq!(report.succeeded, 1);
    let record = pipeline::get(&redis, &cfg, &id).unwrap().unwrap();
    let result = record.result.unwrap();
    assert_eq!(result.blob, name);
    assert_eq!(result.bytes, earlier.len() as u64);
    assert_eq!(
        block_on(BlobClient::new(&blob, &http).size(&name)).unwrap(),
        Some(earlier.len() as u64)
    );
}

#[test]
fn refused_credentials_do_not_spend_attempts() {
    require_azurite();
    let redis = redis();
    let cfg = PipelineConfig {
        max_attempts: 1,
        ..pipeline_config("auth")
    };
    let blob = blob_config("auth");
    // An expired SAS or a rotated key: the storage answers 403.
    let refused = BlobConfig {
        auth: BlobAuth::SharedKey { key: vec![7; 64] },
        ..blob.clone()
    };
    let id = submit(&redis, &cfg, "text-stats", &json!({"text": "x"}));
    for _ in 0..3 {
        let report = work(id.as_bytes(), &cfg, &refused, &redis).unwrap();
        assert_eq!(report.failed, 0, "{report:?}");
        let record = pipeline::get(&redis, &cfg, &id).unwrap().unwrap();
        assert_eq!((record.status, record.attempts), (JobStatus::Queued, 0));
        assert!(record.error.unwrap().contains("credentials"));
        // It waits a while before the next try; make it due now.
        assert!(due_score(&redis, &cfg, &id).unwrap() > redis_now(&redis) + 30_000);
        redis
            .execute(
                "ZADD",
                &[
                    format!("{{{}}}:due", cfg.key_prefix).into(),
                    "0".into(),
                    id.as_str().into(),
                ],
            )
            .unwrap();
    }
    // The credentials are fixed: its one attempt succeeds.
    let report = work(id.as_bytes(), &cfg, &blob, &redis).unwrap();
    assert_eq!(report.succeeded, 1);
    let record = pipeline::get(&redis, &cfg, &id).unwrap().unwrap();
    assert_eq!((record.status, record.attempts), (JobStatus::Succeeded, 1));
}

/// Blob Storage through native HTTP, but each call first yields once, as a
/// call waiting on the network does, and the calls in flight are counted:
/// the most at once, and the most at once while a thumbnail's PNG result is
/// being stored.
#[derive(Default)]
struct Overlapping {
    inner: NativeHttp,
    in_flight: std::cell::Cell<usize>,
    most: std::cell::Cell<usize>,
    png_in_flight: std::cell::Cell<usize>,
    most_beside_png: std::cell::Cell<usize>,
}

impl platform_core::ports::Http for Overlapping {
    async fn send(
        &self,
        request: platform_core::ports::HttpRequest,
    ) -> Result<platform_core::ports::HttpResponse, platform_core::ports::HttpError> {
        let png = request.url.contains(".png");
        self.in_flight.set(self.in_flight.get() + 1);
        self.png_in_flight
            .set(self.png_in_flight.get() + usize::from(png));
        self.most.set(self.most.get().max(self.in_flight.get()));
        if self.png_in_flight.get() > 0 {
            self.most_beside_png
                .set(self.most_beside_png.get().max(self.in_flight.get()));
        }
        let mut yielded = false;
        std::future::poll_fn(|cx| {
            if yielded {
                std::task::Poll::Ready(())
            } else {
                yielded = true;
                cx.waker().wake_by_ref();
                std::task::Poll::Pending
            }
        })
        .await;
        self.in_flight.set(self.in_flight.get() - 1);
        self.png_in_flight
            .set(self.png_in_flight.get() - usize::from(png));
        self.inner.send(request).await
    }
}

/// Run the worker on one message through [`Overlapping`] HTTP.
fn work_overlapping(
    message: &str,
    cfg: &PipelineConfig,
    blob: &BlobConfig,
    redis: &impl Redis,
) -> (WorkerReport, Overlapping) {
    let http = Overlapping::default();
    let report = block_on(handle_message(
        message.as_bytes(),
        cfg,
        blob,
        redis,
        &http,
        &logger(),
    ))
    .unwrap();
    (report, http)
}

#[test]
fn a_claimed_batch_overlaps_its_storage_calls_up_to_worker_concurrency() {
    require_azurite();
    let redis = CountingRedis::new(redis());
    let blob = blob_config("overlap");
    // Warm the script cache: a flushed one answers NOSCRIPT once per script.
    let warm = pipeline_config("overlap");
    let id = submit(&redis, &warm, "text-stats", &json!({"text": "warm"}));
    assert_eq!(
        work(id.as_bytes(), &warm, &blob, &redis).unwrap().succeeded,
        1
    );
    for (concurrency, jobs) in [(4, 10usize), (1, 3), (16, 5)] {
        let cfg = PipelineConfig {
            concurrency,
            ..pipeline_config("overlap")
        };
        let ids: Vec<String> = (0..jobs)
            .map(|i| {
                submit(
                    &redis,
                    &cfg,
                    "text-stats",
                    &json!({"text": format!("job {i}")}),
                )
            })
            .collect();
        redis.take();
        // One message claims its job and the rest as overdue ones.
        let (report, http) = work_overlapping(&ids[0], &cfg, &blob, &redis);
        assert_eq!(report.claimed as usize, jobs);
        assert_eq!(report.succeeded as usize, jobs, "{report:?}");
        assert_eq!(
            http.most.get(),
            jobs.min(concurrency as usize),
            "{concurrency}"
        );
        // One claim plus one completion per job, overlapped or not.
        assert_eq!(redis.take(), 1 + jobs as u64);
        for id in &ids {
            let job = pipeline::get(&redis, &cfg, id).unwrap().unwrap();
            assert_eq!(job.status, JobStatus::Succeeded);
            assert_eq!(job.attempts, 1);
        }
    }
}

#[test]
fn thumbnails_run_alone_while_text_jobs_overlap() {
    require_azurite();
    let redis = redis();
    let blob = blob_config("alone");
    let cfg = PipelineConfig {
        concurrency: 8,
        ..pipeline_config("alone")
    };
    let mut ids = Vec::new();
    for i in 0..3 {
        ids.push(submit(
            &redis,
            &cfg,
            "thumbnail",
            &json!({"image": png_base64(40 + i, 30), "max_width": 16, "max_height": 16}),
        ));
        ids.push(submit(
            &redis,
            &cfg,
            "text-stats",
            &json!({"text": format!("beside thumbnail {i}")}),
        ));
    }
    let (report, http) = work_overlapping(&ids[0], &cfg, &blob, &redis);
    assert_eq!(report.succeeded, 6, "{report:?}");
    assert_eq!(http.most.get(), 3, "the text jobs overlapped");
    assert_eq!(http.most_beside_png.get(), 1, "a thumbnail had company");
}
