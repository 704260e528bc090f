//! The pipeline's Lua scripts against a real Redis server.

mod common;

use std::thread;
use std::time::Duration;

use common::*;
use platform_core::native::{CountingRedis, NativeRedis};
use platform_core::pipeline::{
    self, ClaimedJob, JobStatus, RedriveOutcome, ResultRef, SubmitOutcome, PROCESS_ROUND_TRIPS,
    SUBMIT_ROUND_TRIPS,
};
use platform_core::ports::Redis;

fn created(outcome: SubmitOutcome) -> platform_core::pipeline::JobRecord {
    match outcome {
        SubmitOutcome::Created(record) => record,
        other => panic!("expected a new job, got {other:?}"),
    }
}

fn result_for(job: &ClaimedJob) -> ResultRef {
    ResultRef {
        blob: format!("{}/{}.json", job.tenant, job.id),
        content_type: "application/json".into(),
        bytes: 10,
    }
}

#[test]
fn submit_records_a_queued_job_and_publishes_its_id() {
    let redis = redis();
    let cfg = pipeline_config("submit");
    let mut subscriber = Subscriber::new(&cfg.channel);

    let record = created(pipeline::submit(&redis, &cfg, text_job("acme", "hello", None)).unwrap());
    assert!(pipeline::is_valid_id(&record.id));
    assert_eq!(record.status, JobStatus::Queued);
    assert_eq!((record.attempts, record.max_attempts), (0, 3));
    assert_eq!(record.tenant, "acme");
    assert_eq!(record.job_type, "text-stats");
    assert!(record.created_at > 1_700_000_000_000);
    assert_eq!(record.started_at, None);
    assert_eq!(subscriber.next(1), vec![record.id.clone()]);

    assert_eq!(
        pipeline::get(&redis, &cfg, &record.id).unwrap(),
        Some(record.clone())
    );
    assert_eq!(
        pipeline::get(&redis, &cfg, "00000000-0000-4000-8000-000000000000").unwrap(),
        None
    );
    let due = due_score(&redis, &cfg, &record.id).expect("queued job is in the due set");
    assert_eq!(due as u64, record.created_at);
}

#[test]
fn idempotency_key_returns_the_original_or_a_conflict() {
    let redis = redis();
    let cfg = pipeline_config("idem");
    let first = created(pipeline::submit(&redis, &cfg, text_job("acme", "a", Some("k1"))).unwrap());

    match pipeline::submit(&redis, &cfg, text_job("acme", "a", Some("k1"))).unwrap() {
        SubmitOutcome::Existing(record) => assert_eq!(record, first),
        other => panic!("expected the original job, got {other:?}"),
    }
    match pipeline::submit(&redis, &cfg, text_job("acme", "different", Some("k1"))).unwrap() {
        SubmitOutcome::IdempotencyConflict { existing_id } => assert_eq!(existing_id, first.id),
        other => panic!("expected a conflict, got {other:?}"),
    }
    // Keys are per tenant; no key means a new job every time.
    let other_tenant =
        created(pipeline::submit(&redis, &cfg, text_job("other", "a", Some("k1"))).unwrap());
    assert_ne!(other_tenant.id, first.id);
    let a = created(pipeline::submit(&redis, &cfg, text_job("acme", "a", None)).unwrap());
    let b = created(pipeline::submit(&redis, &cfg, text_job("acme", "a", None)).unwrap());
    assert_ne!(a.id, b.id);

    let ttl = redis
        .execute(
            "TTL",
            &[format!("{{{}}}:idem:acme:k1", cfg.key_prefix).into()],
        )
        .unwrap();
    assert!(
        matches!(ttl[0], platform_core::ports::RedisValue::Int(t) if t > 86_000 && t <= 86_400),
        "{ttl:?}"
    );
}

#[test]
fn a_job_is_claimed_by_exactly_one_of_two_racing_workers() {
    let redis = redis();
    let cfg = pipeline_config("race");
    for _ in 0..10 {
        let id = created(pipeline::submit(&redis, &cfg, text_job("acme", "x", None)).unwrap()).id;
        let claims: Vec<Vec<ClaimedJob>> = thread::scope(|s| {
            let handles: Vec<_> = (0..2)
                .map(|_| {
                    let (cfg, id) = (cfg.clone(), id.clone());
                    s.spawn(move || pipeline::claim(&common::redis(), &cfg, Some(&id)).unwrap())
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let winners: Vec<&ClaimedJob> = claims.iter().flatten().filter(|j| j.id == id).collect();
        assert_eq!(winners.len(), 1, "{claims:?}");
        assert_eq!(winners[0].attempt, 1);
        // Finish it so the next round's claims see only the new job.
        assert!(pipeline::complete(&redis, &cfg, winners[0], &result_for(winners[0])).unwrap());
    }
}

#[test]
fn duplicate_delivery_does_nothing() {
    let redis = redis();
    let cfg = pipeline_config("dup");
    let id = created(pipeline::submit(&redis, &cfg, text_job("acme", "x", None)).unwrap()).id;
    let claimed = pipeline::claim(&redis, &cfg, Some(&id)).unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].input_json, r#"{"text":"x"}"#);
    assert!(
        pipeline::claim(&redis, &cfg, Some(&id)).unwrap().is_empty(),
        "running with a live lease"
    );
    assert!(pipeline::complete(&redis, &cfg, &claimed[0], &result_for(&claimed[0])).unwrap());
    assert!(
        pipeline::claim(&redis, &cfg, Some(&id)).unwrap().is_empty(),
        "succeeded"
    );
    assert!(
        !pipeline::complete(&redis, &cfg, &claimed[0], &result_for(&claimed[0])).unwrap(),
        "completes once"
    );
    let record = pipeline::get(&redis, &cfg, &id).unwrap().unwrap();
    assert_eq!(record.status, JobStatus::Succeeded);
    assert_eq!(record.attempts, 1);
    assert_eq!(record.result, Some(result_for(&claimed[0])));
    assert!(record.finished_at.is_some());
    assert_eq!(due_score(&redis, &cfg, &id), None);
    // An unknown id is skipped too.
    assert!(
        pipeline::claim(&redis, &cfg, Some("00000000-0000-4000-8000-000000000000"))
            .unwrap()
            .is_empty()
    );
}

#[test]
fn expired_lease_is_reclaimed_and_the_stale_worker_is_fenced_out() {
    let redis = redis();
    let cfg = platform_core::config::PipelineConfig {
        lease_ms: 200,
        ..pipeline_config("lease")
    };
    let id = created(pipeline::submit(&redis, &cfg, text_job("acme", "x", None)).unwrap()).id;

    let first = pipeline::claim(&redis, &cfg, Some(&id)).unwrap().remove(0);
    assert_eq!(first.attempt, 1);
    let lease_end = due_score(&redis, &cfg, &id).unwrap();
    assert!(
        (lease_end - redis_now(&redis) - 200).abs() < 100,
        "lease ends about lease_ms from now"
    );

    thread::sleep(Duration::from_millis(300));
    // The lease expired: an overdue sweep claim (no message) picks it up.
    let second = pipeline::claim(&redis, &cfg, None).unwrap();
    assert_eq!(second.len(), 1);
    assert_eq!((second[0].id.as_str(), second[0].attempt), (id.as_str(), 2));

    assert!(!pipeline::complete(&redis, &cfg, &first, &result_for(&first)).unwrap());
    assert_eq!(
        pipeline::fail(&redis, &cfg, &first, "late", false).unwrap(),
        None
    );
    assert_eq!(
        pipeline::get(&redis, &cfg, &id).unwrap().unwrap().status,
        JobStatus::Running
    );

    assert!(pipeline::complete(&redis, &cfg, &second[0], &result_for(&second[0])).unwrap());
    let record = pipeline::get(&redis, &cfg, &id).unwrap().unwrap();
    assert_eq!((record.status, record.attempts), (JobStatus::Succeeded, 2));
}

#[test]
fn a_stale_worker_is_fenced_out_after_a_redrive_resets_the_attempts() {
    let redis = redis();
    let cfg = platform_core::config::PipelineConfig {
        lease_ms: 100,
        max_attempts: 1,
        ..pipeline_config("redrive-fence")
    };
    let id = created(pipeline::submit(&redis, &cfg, text_job("acme", "x", None)).unwrap()).id;
    // A claims attempt 1; its lease expires and the job is dead-lettered.
    let a = pipeline::claim(&redis, &cfg, Some(&id)).unwrap().remove(0);
    thread::sleep(Duration::from_millis(200));
    assert!(pipeline::claim(&redis, &cfg, Some(&id)).unwrap().is_empty());
    // An operator re-drives it; C claims it: attempt 1 again.
    assert!(matches!(
        pipeline::redrive(&redis, &cfg, &id).unwrap(),
        RedriveOutcome::Requeued(_)
    ));
    let c = pipeline::claim(&redis, &cfg, Some(&id)).unwrap().remove(0);
    assert_eq!((a.attempt, c.attempt), (1, 1));
    // A's late outcome must not touch C's running job.
    assert_eq!(
        pipeline::fail(&redis, &cfg, &a, "late", false).unwrap(),
        None
    );
    assert!(!pipeline::complete(&redis, &cfg, &a, &result_for(&a)).unwrap());
    assert_eq!(
        pipeline::release(&redis, &cfg, std::slice::from_ref(&a)).unwrap(),
        0
    );
    let record = pipeline::get(&redis, &cfg, &id).unwrap().unwrap();
    assert_eq!((record.status, record.attempts), (JobStatus::Running, 1));
    assert!(pipeline::complete(&redis, &cfg, &c, &result_for(&c)).unwrap());
}

#[test]
fn lease_expiring_on_the_last_attempt_dead_letters_the_job() {
    let redis = redis();
    let cfg = platform_core::config::PipelineConfig {
        lease_ms: 100,
        max_attempts: 1,
        ..pipeline_config("lastlease")
    };
    let id = created(pipeline::submit(&redis, &cfg, text_job("acme", "x", None)).unwrap()).id;
    assert_eq!(pipeline::claim(&redis, &cfg, Some(&id)).unwrap().len(), 1);
    thread::sleep(Duration::from_millis(200));
    assert!(pipeline::claim(&redis, &cfg, Some(&id)).unwrap().is_empty());
    let record = pipeline::get(&redis, &cfg, &id).unwrap().unwrap();
    assert_eq!(record.status, JobStatus::Failed);
    assert!(record.error.unwrap().contains("within its lease"));
    assert_eq!(
        pipeline::dead_letters(&redis, &cfg, 0, 10).unwrap().len(),
        1
    );
}

#[test]
fn retries_back_off_exponentially_then_dead_letter() {
    let redis = redis();
    let cfg = pipeline_config("retry"); // 3 attempts, 100 ms backoff
    let id = created(pipeline::submit(&redis, &cfg, text_job("acme", "x", None)).unwrap()).id;

    for (attempt, backoff) in [(1u32, 100i64), (2, 200)] {
        let job = pipeline::claim(&redis, &cfg, Some(&id)).unwrap().remove(0);
        assert_eq!(job.attempt, attempt);
        assert_eq!(
            pipeline::fail(&redis, &cfg, &job, "blob storage unavailable", true).unwrap(),
            Some(JobStatus::Queued)
        );
        let due = due_score(&redis, &cfg, &id).unwrap();
        let delay = due - redis_now(&redis);
        assert!(
            delay > backoff - 50 && delay <= backoff,
            "attempt {attempt}: due in {delay} ms, backoff {backoff}"
        );
        let record = pipeline::get(&redis, &cfg, &id).unwrap().unwrap();
        assert_eq!(
            (record.status, record.attempts),
            (JobStatus::Queued, attempt)
        );
        assert_eq!(record.error.as_deref(), Some("blob storage unavailable"));
        // Backing off: a message does not start it early.
        assert!(pipeline::claim(&redis, &cfg, Some(&id)).unwrap().is_empty());
        thread::sleep(Duration::from_millis(backoff as u64 + 50));
    }

    let job = pipeline::claim(&redis, &cfg, Some(&id)).unwrap().remove(0);
    assert_eq!(job.attempt, 3);
    assert_eq!(
        pipeline::fail(&redis, &cfg, &job, "still down", true).unwrap(),
        Some(JobStatus::Failed)
    );
    let record = pipeline::get(&redis, &cfg, &id).unwrap().unwrap();
    assert_eq!((record.status, record.attempts), (JobStatus::Failed, 3));
    assert_eq!(record.error.as_deref(), Some("still down"));
    assert!(record.finished_at.is_some());
    assert_eq!(due_score(&redis, &cfg, &id), None);
    let dead = pipeline::dead_letters(&redis, &cfg, 0, 10).unwrap();
    assert_eq!(dead, vec![record]);
}

#[test]
fn permanent_failure_dead_letters_at_once() {
    let redis = redis();
    let cfg = pipeline_config("perm");
    let id = created(pipeline::submit(&redis, &cfg, text_job("acme", "x", None)).unwrap()).id;
    let job = pipeline::claim(&redis, &cfg, Some(&id)).unwrap().remove(0);
    assert_eq!(
        pipeline::fail(&redis, &cfg, &job, "corrupt image", false).unwrap(),
        Some(JobStatus::Failed)
    );
    let record = pipeline::get(&redis, &cfg, &id).unwrap().unwrap();
    assert_eq!((record.status, record.attempts), (JobStatus::Failed, 1));
}

#[test]
fn a_claim_also_picks_up_overdue_jobs() {
    let redis = redis();
    let cfg = pipeline_config("overdue");
    let ids: Vec<String> = (0..3)
        .map(|i| {
            created(pipeline::submit(&redis, &cfg, text_job("acme", &i.to_string(), None)).unwrap())
                .id
        })
        .collect();
    // As if the messages for ids[1] and ids[2] were lost: the message for
    // ids[0] claims them too, message job first.
    let claimed: Vec<String> = pipeline::claim(&redis, &cfg, Some(&ids[0]))
        .unwrap()
        .into_iter()
        .map(|j| j.id)
        .collect();
    assert_eq!(claimed.len(), 3);
    assert_eq!(claimed[0], ids[0]);
    assert!(
        pipeline::claim(&redis, &cfg, None).unwrap().is_empty(),
        "all leased now"
    );
}

#[test]
fn sweep_publishes_due_jobs_only() {
    let redis = redis();
    let cfg2 = pipeline_config("sweep");
    let ids2: Vec<String> = (0..3)
        .map(|i| {
            created(
                pipeline::submit(&redis, &cfg2, text_job("acme", &i.to_string(), None)).unwrap(),
            )
            .id
        })
        .collect();
    // One job is running with a live lease: not due.
    let no_batch = platform_core::config::PipelineConfig {
        sweep_batch: 0,
        ..cfg2.clone()
    };
    assert_eq!(
        pipeline::claim(&redis, &no_batch, Some(&ids2[0]))
            .unwrap()
            .len(),
        1
    );

    let mut subscriber = Subscriber::new(&cfg2.channel);
    assert_eq!(pipeline::sweep(&redis, &cfg2).unwrap(), 2);
    let mut published = subscriber.next(2);
    published.sort();
    let mut expected = ids2[1..].to_vec();
    expected.sort();
    assert_eq!(published, expected);
    assert!(subscriber.nothing_else(&cfg2.channel));

    // The batch bounds a sweep.
    let small = platform_core::config::PipelineConfig {
        sweep_batch: 1,
        ..cfg2.clone()
    };
    assert_eq!(pipeline::sweep(&redis, &small).unwrap(), 1);
    assert_eq!(subscriber.next(1).len(), 1);
    assert!(subscriber.nothing_else(&cfg2.channel));
}

#[test]
fn redrive_requeues_a_failed_job_and_publishes_it() {
    let redis = redis();
    let cfg = pipeline_config("redrive");
    let id = created(pipeline::submit(&redis, &cfg, text_job("acme", "x", None)).unwrap()).id;
    assert_eq!(
        pipeline::redrive(&redis, &cfg, &id).unwrap(),
        RedriveOutcome::NotFailed(JobStatus::Queued)
    );
    assert_eq!(
        pipeline::redrive(&redis, &cfg, "00000000-0000-4000-8000-000000000000").unwrap(),
        RedriveOutcome::NotFound
    );

    let job = pipeline::claim(&redis, &cfg, Some(&id)).unwrap().remove(0);
    pipeline::fail(&redis, &cfg, &job, "boom", false).unwrap();
    assert_eq!(
        pipeline::dead_letters(&redis, &cfg, 0, 10).unwrap().len(),
        1
    );

    let mut subscriber = Subscriber::new(&cfg.channel);
    let record = match pipeline::redrive(&redis, &cfg, &id).unwrap() {
        RedriveOutcome::Requeued(record) => record,
        other => panic!("expected a requeue, got {other:?}"),
    };
    assert_eq!(
        (
            record.status,
            record.attempts,
            record.error.clone(),
            record.finished_at
        ),
        (JobStatus::Queued, 0, None, None)
    );
    assert_eq!(subscriber.next(1), vec![id.clone()]);
    assert!(pipeline::dead_letters(&redis, &cfg, 0, 10)
        .unwrap()
        .is_empty());
    let again = pipeline::claim(&redis, &cfg, Some(&id)).unwrap();
    assert_eq!(again[0].attempt, 1);
}

#[test]
fn dead_letters_are_paged_newest_first() {
    let redis = redis();
    let cfg = pipeline_config("deadpage");
    let mut ids = Vec::new();
    for i in 0..3 {
        let id = created(
            pipeline::submit(&redis, &cfg, text_job("acme", &i.to_string(), None)).unwrap(),
        )
        .id;
        let job = pipeline::claim(&redis, &cfg, Some(&id))
            .unwrap()
            .into_iter()
            .find(|j| j.id == id)
            .unwrap();
        pipeline::fail(&redis, &cfg, &job, "boom", false).unwrap();
        ids.push(id);
        thread::sleep(Duration::from_millis(5));
    }
    let page: Vec<String> = pipeline::dead_letters(&redis, &cfg, 0, 2)
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(page, vec![ids[2].clone(), ids[1].clone()]);
    let rest: Vec<String> = pipeline::dead_letters(&redis, &cfg, 2, 2)
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(rest, vec![ids[0].clone()]);
    assert!(pipeline::dead_letters(&redis, &cfg, 0, 0)
        .unwrap()
        .is_empty());
}

#[test]
fn round_trips_per_submit_and_per_processed_job() {
    let redis = CountingRedis::new(common::redis());
    let cfg = pipeline_config("trips");
    // Warm the script cache (a fresh server answers NOSCRIPT once per script).
    let warm = created(pipeline::submit(&redis, &cfg, text_job("acme", "warm", None)).unwrap());
    let job = pipeline::claim(&redis, &cfg, Some(&warm.id))
        .unwrap()
        .remove(0);
    pipeline::complete(&redis, &cfg, &job, &result_for(&job)).unwrap();
    redis.take();

    // A concurrent SCRIPT FLUSH (another test) can add an EVAL: take the
    // lowest of three measurements, i.e. the count with cached scripts.
    let (mut submit_trips, mut process_trips) = (u64::MAX, u64::MAX);
    for _ in 0..3 {
        redis.take();
        let id = created(pipeline::submit(&redis, &cfg, text_job("acme", "x", None)).unwrap()).id;
        submit_trips = submit_trips.min(redis.take());
        let job = pipeline::claim(&redis, &cfg, Some(&id)).unwrap().remove(0);
        assert!(pipeline::complete(&redis, &cfg, &job, &result_for(&job)).unwrap());
        process_trips = process_trips.min(redis.take());
    }
    println!("round trips: submit {submit_trips}, processed job {process_trips}");
    assert_eq!(submit_trips, u64::from(SUBMIT_ROUND_TRIPS));
    assert_eq!(process_trips, u64::from(PROCESS_ROUND_TRIPS));
}

#[test]
fn scripts_are_reloaded_after_a_script_flush() {
    // The EVALSHA -> EVAL fallback's round trips are counted in a unit test;
    // here other tests may reload scripts concurrently, so only check that
    // the pipeline keeps working on a server that forgot its scripts.
    let redis = common::redis();
    let cfg = pipeline_config("flush");
    let id = created(pipeline::submit(&redis, &cfg, text_job("acme", "x", None)).unwrap()).id;
    redis.execute("SCRIPT", &["FLUSH".into()]).unwrap();
    assert!(pipeline::get(&redis, &cfg, &id).unwrap().is_some());
    assert_eq!(pipeline::claim(&redis, &cfg, Some(&id)).unwrap().len(), 1);
}

#[test]
fn unreachable_redis_is_unavailable() {
    let redis = NativeRedis::new("redis://127.0.0.1:1").unwrap();
    let cfg = pipeline_config("down");
    assert!(matches!(
        pipeline::submit(&redis, &cfg, text_job("acme", "x", None)),
        Err(pipeline::PipelineError::Unavailable(_))
    ));
    assert!(matches!(
        pipeline::ping(&redis),
        Err(pipeline::PipelineError::Unavailable(_))
    ));
    pipeline::ping(&common::redis()).unwrap();
}

#[test]
fn claim_bounds_the_bytes_of_overdue_inputs_it_takes() {
    let redis = redis();
    let cfg = pipeline_config("claim-bytes");
    // Five overdue jobs of 1.5 MiB input each: well within the batch count,
    // far over the byte budget.
    let big = "x".repeat(3 * 512 * 1024);
    let ids: Vec<String> = (0..5)
        .map(|_| created(pipeline::submit(&redis, &cfg, text_job("acme", &big, None)).unwrap()).id)
        .collect();

    let first = pipeline::claim(&redis, &cfg, Some(&ids[0])).unwrap();
    let bytes: usize = first.iter().map(|j| j.input_json.len()).sum();
    assert_eq!(first[0].id, ids[0], "the message's own job comes first");
    assert!(
        first.len() < ids.len(),
        "claimed all {} large jobs at once",
        first.len()
    );
    assert!(
        bytes as i64 <= pipeline::CLAIM_BATCH_BYTES + big.len() as i64 + 64,
        "claimed {bytes} bytes of input"
    );

    // The rest stay due and are claimed by later deliveries: none is lost.
    let mut claimed: Vec<String> = first.into_iter().map(|j| j.id).collect();
    while claimed.len() < ids.len() {
        let next = pipeline::claim(&redis, &cfg, None).unwrap();
        assert!(!next.is_empty(), "due jobs left unclaimed");
        claimed.extend(next.into_iter().map(|j| j.id));
    }
    claimed.sort();
    let mut expected = ids.clone();
    expected.sort();
    assert_eq!(claimed, expected);
}

fn pttl(redis: &impl Redis, key: &str) -> i64 {
    match redis.execute("PTTL", &[key.into()]).unwrap()[0] {
        platform_core::ports::RedisValue::Int(n) => n,
        ref other => panic!("{other:?}"),
    }
}

#[test]
fn finished_jobs_expire_after_the_retention_and_dead_letters_are_trimmed() {
    let redis = redis();
    let cfg = platform_core::config::PipelineConfig {
        retention_ms: 60_000,
        max_attempts: 1,
        ..pipeline_config("retention")
    };
    let tag = format!("{{{}}}", cfg.key_prefix);
    let job_key = |id: &str| format!("{tag}:job:{id}");

    // Succeeded: the record expires after the retention.
    let done = created(pipeline::submit(&redis, &cfg, text_job("acme", "a", None)).unwrap()).id;
    assert_eq!(
        pttl(&redis, &job_key(&done)),
        -1,
        "an unfinished job never expires"
    );
    let claimed = pipeline::claim(&redis, &cfg, Some(&done))
        .unwrap()
        .remove(0);
    assert_eq!(pttl(&redis, &job_key(&done)), -1);
    assert!(pipeline::complete(&redis, &cfg, &claimed, &result_for(&claimed)).unwrap());
    let ttl = pttl(&redis, &job_key(&done));
    assert!((59_000..=60_000).contains(&ttl), "{ttl}");

    // Dead-lettered: the record expires too, and dead letters older than the
    // retention are trimmed when another job is dead-lettered.
    let dead = format!("{tag}:dead");
    redis
        .execute(
            "ZADD",
            &[dead.as_str().into(), "1".into(), "ancient".into()],
        )
        .unwrap();
    let failed = created(pipeline::submit(&redis, &cfg, text_job("acme", "b", None)).unwrap()).id;
    let claimed = pipeline::claim(&redis, &cfg, Some(&failed))
        .unwrap()
        .remove(0);
    assert_eq!(
        pipeline::fail(&redis, &cfg, &claimed, "no", false).unwrap(),
        Some(JobStatus::Failed)
    );
    let ttl = pttl(&redis, &job_key(&failed));
    assert!((59_000..=60_000).contains(&ttl), "{ttl}");
    let members = redis
        .execute("ZRANGE", &[dead.as_str().into(), "0".into(), "-1".into()])
        .unwrap();
    assert_eq!(
        members,
        vec![platform_core::ports::RedisValue::Bytes(
            failed.clone().into_bytes()
        )]
    );

    // Re-driven: unfinished again, so it no longer expires.
    assert!(matches!(
        pipeline::redrive(&redis, &cfg, &failed).unwrap(),
        RedriveOutcome::Requeued(_)
    ));
    assert_eq!(pttl(&redis, &job_key(&failed)), -1);
}
