//! What the worker does with one message from the jobs channel.
//!
//! The message body is a job id. The worker claims that job plus up to
//! `sweep_batch` overdue ones (one round trip), then runs up to
//! `worker_concurrency` of the claimed jobs at once: each runs its type,
//! writes the result to `{tenant}/{id}.{ext}` with `If-None-Match: *` and
//! completes the job, fenced by its claim token (one round trip).
//! Jobs not started once half the lease has passed are handed back with
//! [`pipeline::release`] (one more round trip, only then). Failures are
//! recorded with [`pipeline::fail`]: transient job errors and
//! Blob Storage outages are retried with backoff, permanent errors fail the
//! job. If Redis itself fails, the handler stops and returns the error: the
//! claimed jobs' leases expire and a later claim or sweep picks them up again.

use std::time::{Duration, Instant};

use futures::StreamExt as _;

use serde_json::{json, Map, Value};

use crate::blob::{BlobClient, PutOutcome};
use crate::config::{BlobConfig, PipelineConfig};
use crate::error::PipelineError;
use crate::jobs::{self, JobError};
use crate::log::{Level, Logger};
use crate::pipeline::{self, ClaimedJob, JobStatus, ResultRef};
use crate::ports::{Http, Redis};

/// What one message led to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkerReport {
    /// Jobs claimed (the message's job and overdue ones).
    pub claimed: u32,
    /// Jobs completed with a result.
    pub succeeded: u32,
    /// Jobs re-queued for a later attempt.
    pub retrying: u32,
    /// Jobs failed for good (dead-lettered).
    pub failed: u32,
    /// Jobs whose completion or failure was fenced out: another worker took
    /// them over after this one's lease expired.
    pub fenced: u32,
    /// Claimed jobs handed back unstarted because half the lease had passed.
    pub released: u32,
    /// Jobs put back without spending an attempt: the result storage
    /// refused the credentials.
    pub deferred: u32,
}

/// How one claimed job ended, for the log line.
enum Outcome {
    Succeeded {
        blob: String,
        existed: bool,
    },
    Failed {
        status: Option<JobStatus>,
        reason: String,
        detail: String,
    },
    /// Put back without spending an attempt (`None`: fenced out).
    Deferred {
        deferred: bool,
        detail: String,
    },
    Fenced,
}

/// The reasons a job's `error` may hold: stable and safe to show tenants.
/// Error codes, decoder and runtime messages go only to the worker's log.
pub mod reasons {
    /// The job type is not known to this worker.
    pub const UNKNOWN_TYPE: &str = "unknown job type";
    /// The job cannot succeed with this input (a corrupt image, say).
    pub const JOB_FAILED: &str = "the job failed: its input could not be processed";
    /// The job failed in a way that may pass (retried while attempts remain).
    pub const JOB_FAILED_TRANSIENT: &str = "the job failed temporarily";
    /// The result storage refused the result for good.
    pub const STORE_FAILED: &str = "the result could not be stored";
    /// The result storage was unavailable (retried while attempts remain).
    pub const STORE_FAILED_TRANSIENT: &str = "the result storage was unavailable";
    /// The result storage refused the worker's credentials: the job waits,
    /// without spending an attempt, until they are fixed.
    pub const STORE_AUTH: &str =
        "the result storage refused the service's credentials; the job waits for them to be fixed";
}

/// How long a job waits after the result storage refused the credentials
/// (an expired SAS, a revoked key) before it is tried again; no attempt is
/// spent, so an outage of the credentials never dead-letters jobs.
pub const AUTH_RETRY_MS: u64 = 60_000;

/// The `msg` of the error log line an alert matches when the result storage
/// refuses the credentials.
pub const AUTH_ALERT: &str = "blob storage rejected the credentials";

/// Handle one message: claim, run, store, complete. Never panics on bad input;
/// returns `Err` only when Redis fails.
pub async fn handle_message(
    message: &[u8],
    cfg: &PipelineConfig,
    blob: &BlobConfig,
    redis: &impl Redis,
    http: &impl Http,
    log: &Logger,
) -> Result<WorkerReport, PipelineError> {
    let text = std::str::from_utf8(message).map(str::trim).unwrap_or("");
    let job_id = if pipeline::is_valid_id(text) {
        Some(text)
    } else {
        let preview: String = String::from_utf8_lossy(message).chars().take(64).collect();
        log.log(
            Level::Warn,
            "message is not a job id; sweeping only",
            fields([
                ("message_bytes", json!(message.len())),
                ("preview", json!(preview)),
            ]),
        );
        None
    };

    let claimed = pipeline::claim(redis, cfg, job_id)?;
    let client = BlobClient::new(blob, http);
    let mut report = WorkerReport {
        claimed: claimed.len() as u32,
        ..WorkerReport::default()
    };

    // Up to `concurrency` claimed jobs run at once, so their Blob Storage
    // calls overlap: behind milliseconds of storage latency one job after
    // another leaves the worker idle. Redis calls stay one at a time (the
    // port is synchronous), and each job still costs one completing round
    // trip. A job's slot holds its input and its output, so the instance's
    // memory is bounded by `concurrency` jobs, not by the batch.
    let concurrency = cfg.concurrency.max(1) as usize;
    let handled_since = Instant::now();
    let budget = Duration::from_millis(cfg.lease_ms / 2);
    // After a Redis failure no further job starts: the unstarted ones keep
    // their claims until the lease expires, and a later claim or the sweep
    // takes them again.
    let stopped = std::cell::Cell::new(false);
    // Types that may not overlap (a thumbnail's decoded image) run alone,
    // one after another, once the rest are done.
    let (alone, together): (Vec<_>, Vec<_>) = claimed
        .iter()
        .enumerate()
        .partition(|(_, job)| jobs::find(&job.job_type).is_some_and(|t| !t.overlaps()));
    let run = |(index, job)| {
        let (client, stopped) = (&client, &stopped);
        async move {
            if stopped.get() {
                return Step::Skipped;
            }
            // Jobs claimed together share one lease length. Once half
            // of it has gone, hand the rest back rather than start them
            // late and have their leases expire (which would cost them
            // an attempt).
            if index > 0 && handled_since.elapsed() >= budget {
                return Step::Release(job);
            }
            let started = Instant::now();
            let outcome = process(job, cfg, client, redis).await;
            if outcome.is_err() {
                stopped.set(true);
            }
            Step::Ran(job, started.elapsed(), outcome)
        }
    };
    let mut steps = futures::stream::iter(together)
        .map(run)
        .buffer_unordered(concurrency)
        .chain(futures::stream::iter(alone).map(run).buffer_unordered(1));
    let mut release = Vec::new();
    let mut failure = None;
    while let Some(step) = steps.next().await {
        match step {
            Step::Skipped => {}
            Step::Release(job) => release.push(job.clone()),
            Step::Ran(job, duration, outcome) => {
                if let Err(error) = record(job, duration, outcome, &mut report, log) {
                    failure.get_or_insert(error);
                }
            }
        }
    }
    drop(steps);
    if let Some(error) = failure {
        return Err(error);
    }
    if !release.is_empty() {
        report.released = pipeline::release(redis, cfg, &release)?;
        log.log(
            Level::Info,
            "released claimed jobs: half the lease has passed",
            fields([
                ("released", json!(report.released)),
                (
                    "ids",
                    json!(release.iter().map(|j| j.id.as_str()).collect::<Vec<_>>()),
                ),
            ]),
        );
    }
    Ok(report)
}

/// What became of one claimed job in [`handle_message`].
enum Step<'a> {
    /// Not started: an earlier job found Redis failing.
    Skipped,
    /// Not started: half the lease had passed; to be handed back.
    Release(&'a ClaimedJob),
    /// Run, for this long, to this outcome.
    Ran(&'a ClaimedJob, Duration, Result<Outcome, PipelineError>),
}

/// Count a job's outcome in `report` and log its line; a Redis failure is
/// logged and returned.
fn record(
    job: &ClaimedJob,
    duration: Duration,
    outcome: Result<Outcome, PipelineError>,
    report: &mut WorkerReport,
    log: &Logger,
) -> Result<(), PipelineError> {
    let mut line = fields([
        ("job_id", json!(job.id)),
        ("job_type", json!(job.job_type)),
        ("tenant", json!(job.tenant)),
        ("attempt", json!(job.attempt)),
        ("duration_ms", json!(duration.as_millis() as u64)),
        ("duration_us", json!(duration.as_micros() as u64)),
    ]);
    let outcome = match outcome {
        Ok(outcome) => outcome,
        Err(error) => {
            line.insert("outcome".into(), json!("aborted"));
            line.insert("error".into(), json!(error.to_string()));
            log.log(Level::Error, "job aborted: job store failed", line);
            return Err(error);
        }
    };
    let level = match &outcome {
        Outcome::Succeeded { blob, existed } => {
            report.succeeded += 1;
            line.insert("outcome".into(), json!("succeeded"));
            line.insert("blob".into(), json!(blob));
            line.insert("blob_existed".into(), json!(existed));
            Level::Info
        }
        Outcome::Failed {
            status,
            reason,
            detail,
        } => {
            line.insert("reason".into(), json!(reason));
            line.insert("error".into(), json!(detail));
            match status {
                Some(JobStatus::Queued) => {
                    report.retrying += 1;
                    line.insert("outcome".into(), json!("retrying"));
                    Level::Warn
                }
                Some(_) => {
                    report.failed += 1;
                    line.insert("outcome".into(), json!("failed"));
                    Level::Error
                }
                None => {
                    report.fenced += 1;
                    line.insert("outcome".into(), json!("fenced"));
                    Level::Warn
                }
            }
        }
        Outcome::Deferred { deferred, detail } => {
            line.insert("error".into(), json!(detail));
            if *deferred {
                report.deferred += 1;
                line.insert("outcome".into(), json!("deferred"));
                line.insert("retry_in_ms".into(), json!(AUTH_RETRY_MS));
            } else {
                report.fenced += 1;
                line.insert("outcome".into(), json!("fenced"));
            }
            // One line an alert matches: `level=error`, this `msg`.
            log.log(Level::Error, AUTH_ALERT, line);
            return Ok(());
        }
        Outcome::Fenced => {
            report.fenced += 1;
            line.insert("outcome".into(), json!("fenced"));
            Level::Warn
        }
    };
    log.log(level, "job", line);
    Ok(())
}

async fn process<H: Http>(
    job: &ClaimedJob,
    cfg: &PipelineConfig,
    client: &BlobClient<'_, H>,
    redis: &impl Redis,
) -> Result<Outcome, PipelineError> {
    // Tenants see `reason` (stable, safe: it is stored in the job and
    // returned by the API); `detail` (error codes, decoder and runtime
    // messages) goes only to the worker's log line.
    let failed = |reason: &str, detail: String, retryable: bool| {
        let status = pipeline::fail(redis, cfg, job, reason, retryable)?;
        Ok(Outcome::Failed {
            status,
            reason: reason.to_string(),
            detail,
        })
    };

    let Some(job_type) = jobs::find(&job.job_type) else {
        return failed(
            reasons::UNKNOWN_TYPE,
            format!("unknown job type `{}`", job.job_type),
            false,
        );
    };
    let output = match job_type.run(&job.input_json) {
        Ok(output) => output,
        Err(JobError::Permanent(e)) => return failed(reasons::JOB_FAILED, e, false),
        Err(JobError::Transient(e)) => return failed(reasons::JOB_FAILED_TRANSIENT, e, true),
    };

    let name = format!("{}/{}.{}", job.tenant, job.id, output.extension);
    let store_failed = |e: crate::blob::BlobError| {
        if let crate::blob::BlobError::Auth { .. } = e {
            // Not the job's fault, and retrying soon will not help: wait
            // for the credentials without spending an attempt.
            let deferred = pipeline::defer(redis, cfg, job, AUTH_RETRY_MS, reasons::STORE_AUTH)?;
            return Ok(Outcome::Deferred {
                deferred,
                detail: format!("storing the result failed: {e}"),
            });
        }
        let reason = if e.is_transient() {
            reasons::STORE_FAILED_TRANSIENT
        } else {
            reasons::STORE_FAILED
        };
        failed(
            reason,
            format!("storing the result failed: {e}"),
            e.is_transient(),
        )
    };
    let existed = match client
        .put_if_absent(&name, output.content_type, &output.bytes)
        .await
    {
        Ok(PutOutcome::Created) => false,
        Ok(PutOutcome::AlreadyExists) => true,
        Err(e) => return store_failed(e),
    };
    // An earlier run stored the result: record the stored blob's size, which
    // is what the result route will serve.
    let bytes = if existed {
        match client.size(&name).await {
            Ok(Some(size)) => size,
            Ok(None) => output.bytes.len() as u64,
            Err(e) => return store_failed(e),
        }
    } else {
        output.bytes.len() as u64
    };
    let result = ResultRef {
        blob: name.clone(),
        content_type: output.content_type.into(),
        bytes,
    };
    if pipeline::complete(redis, cfg, job, &result)? {
        Ok(Outcome::Succeeded {
            blob: name,
            existed,
        })
    } else {
        Ok(Outcome::Fenced)
    }
}

fn fields<const N: usize>(pairs: [(&str, Value); N]) -> Map<String, Value> {
    pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

#[cfg(test)]
mod tests {
    use crate::ports::block_on;
    use std::cell::RefCell;

    use super::*;
    use crate::config::BlobAuth;
    use crate::ports::{HttpError, HttpRequest, HttpResponse, RedisArg, RedisError, RedisValue};

    /// Answers every command with the next queued reply, recording commands.
    struct FakeRedis {
        replies: RefCell<Vec<Result<Vec<RedisValue>, RedisError>>>,
        commands: RefCell<Vec<Vec<RedisArg>>>,
    }

    impl Redis for FakeRedis {
        fn execute(&self, _: &str, args: &[RedisArg]) -> Result<Vec<RedisValue>, RedisError> {
            self.commands.borrow_mut().push(args.to_vec());
            self.replies.borrow_mut().remove(0)
        }
    }

    struct NoHttp;

    impl Http for NoHttp {
        async fn send(&self, _: HttpRequest) -> Result<HttpResponse, HttpError> {
            Err(HttpError("no network in unit tests".into()))
        }
    }

    fn blob() -> BlobConfig {
        BlobConfig {
            endpoint: "http://127.0.0.1:1/acct".into(),
            account: "acct".into(),
            container: "results".into(),
            auth: BlobAuth::Sas {
                token: "sig=x".into(),
            },
        }
    }

    fn run(
        message: &[u8],
        replies: Vec<Result<Vec<RedisValue>, RedisError>>,
    ) -> (Result<WorkerReport, PipelineError>, Vec<Vec<RedisArg>>) {
        let redis = FakeRedis {
            replies: RefCell::new(replies),
            commands: RefCell::new(Vec::new()),
        };
        let log = Logger::new("test", Level::Error);
        let result = block_on(handle_message(
            message,
            &PipelineConfig::default(),
            &blob(),
            &redis,
            &NoHttp,
            &log,
        ));
        (result, redis.commands.into_inner())
    }

    #[test]
    fn garbage_message_claims_without_a_job_id() {
        let (result, commands) = run(b"\xff garbage", vec![Ok(vec![RedisValue::Int(0)])]);
        assert_eq!(result.unwrap(), WorkerReport::default());
        // EVALSHA sha 2 due dead prefix lease batch message_id batch_bytes
        // retention: no job key is declared and the message id is empty.
        let args = &commands[0];
        assert_eq!(args[1], RedisArg::Int(2));
        assert_eq!(args.get(args.len() - 3), Some(&RedisArg::from("")));
    }

    #[test]
    fn redis_failure_is_returned() {
        let (result, _) = run(b"x", vec![Err(RedisError::Unavailable("refused".into()))]);
        assert_eq!(result, Err(PipelineError::Unavailable("refused".into())));
    }

    #[test]
    fn blob_outage_is_a_retryable_failure_and_unknown_types_are_permanent() {
        let id = "0b7c3f3e-1111-4222-8333-444455556666";
        let b = |s: &str| RedisValue::Bytes(s.as_bytes().to_vec());
        let claim = vec![
            RedisValue::Int(0),
            b(id),
            b("acme"),
            b("text-stats"),
            RedisValue::Int(1),
            RedisValue::Int(1),
            b(r#"{"text":"hi"}"#),
            b(id),
            b("acme"),
            b("no-such-type"),
            RedisValue::Int(1),
            RedisValue::Int(4),
            b("{}"),
        ];
        let (result, commands) = run(
            id.as_bytes(),
            vec![
                Ok(claim),
                Ok(vec![b("queued"), RedisValue::Int(1)]),
                Ok(vec![b("failed")]),
            ],
        );
        assert_eq!(
            result.unwrap(),
            WorkerReport {
                claimed: 2,
                retrying: 1,
                failed: 1,
                ..WorkerReport::default()
            }
        );
        // EVALSHA sha 3 job due dead, then ARGV: prefix id token error retryable backoff
        assert_eq!(
            commands[1][9],
            RedisArg::from("1"),
            "blob outage is retryable"
        );
        assert_eq!(
            commands[2][9],
            RedisArg::from("0"),
            "unknown type is permanent"
        );
    }
}
