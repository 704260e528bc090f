//! What the worker does with one message from the jobs channel.
//!
//! The message body is a job id. The worker claims that job plus up to
//! `sweep_batch` overdue ones (one round trip), then for each claimed job runs
//! its type, writes the result to `{tenant}/{id}.{ext}` with `If-None-Match: *`
//! and completes the job, fenced by its attempt number (one round trip).
//! Jobs not started once half the lease has passed are handed back with
//! [`pipeline::release`] (one more round trip, only then). Failures are
//! recorded with [`pipeline::fail`]: transient job errors and
//! Blob Storage outages are retried with backoff, permanent errors fail the
//! job. If Redis itself fails, the handler stops and returns the error: the
//! claimed jobs' leases expire and a later claim or sweep picks them up again.

use std::time::{Duration, Instant};

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
}

/// How one claimed job ended, for the log line.
enum Outcome {
    Succeeded {
        blob: String,
        existed: bool,
    },
    Failed {
        status: Option<JobStatus>,
        error: String,
    },
    Fenced,
}

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

    let handled_since = Instant::now();
    let budget = Duration::from_millis(cfg.lease_ms / 2);
    for (index, job) in claimed.iter().enumerate() {
        // Jobs claimed together share one lease length. Once half of it has
        // gone, hand the rest back rather than start them late and have
        // their leases expire (which would cost them an attempt).
        if index > 0 && handled_since.elapsed() >= budget {
            let rest = &claimed[index..];
            report.released = pipeline::release(redis, cfg, rest)?;
            log.log(
                Level::Info,
                "released claimed jobs: half the lease has passed",
                fields([
                    ("released", json!(report.released)),
                    (
                        "ids",
                        json!(rest.iter().map(|j| j.id.as_str()).collect::<Vec<_>>()),
                    ),
                ]),
            );
            break;
        }
        let started = Instant::now();
        let outcome = process(job, cfg, &client, redis).await;
        let duration_ms = started.elapsed().as_millis() as u64;
        let mut line = fields([
            ("job_id", json!(job.id)),
            ("job_type", json!(job.job_type)),
            ("tenant", json!(job.tenant)),
            ("attempt", json!(job.attempt)),
            ("duration_ms", json!(duration_ms)),
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
            Outcome::Failed { status, error } => {
                line.insert("error".into(), json!(error));
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
            Outcome::Fenced => {
                report.fenced += 1;
                line.insert("outcome".into(), json!("fenced"));
                Level::Warn
            }
        };
        log.log(level, "job", line);
    }
    Ok(report)
}

async fn process<H: Http>(
    job: &ClaimedJob,
    cfg: &PipelineConfig,
    client: &BlobClient<'_, H>,
    redis: &impl Redis,
) -> Result<Outcome, PipelineError> {
    let failed = |error: String, retryable: bool| -> Result<Outcome, PipelineError> {
        let status = pipeline::fail(redis, cfg, job, &error, retryable)?;
        Ok(Outcome::Failed { status, error })
    };

    let Some(job_type) = jobs::find(&job.job_type) else {
        return failed(format!("unknown job type `{}`", job.job_type), false);
    };
    let input: Value = match serde_json::from_str(&job.input_json) {
        Ok(input) => input,
        Err(e) => return failed(format!("the stored input is not JSON: {e}"), false),
    };
    let output = match job_type.run(&input) {
        Ok(output) => output,
        Err(JobError::Permanent(e)) => return failed(e, false),
        Err(JobError::Transient(e)) => return failed(e, true),
    };

    let name = format!("{}/{}.{}", job.tenant, job.id, output.extension);
    let existed = match client
        .put_if_absent(&name, output.content_type, &output.bytes)
        .await
    {
        Ok(PutOutcome::Created) => false,
        Ok(PutOutcome::AlreadyExists) => true,
        Err(e) => return failed(format!("storing the result failed: {e}"), e.is_transient()),
    };
    let result = ResultRef {
        blob: name.clone(),
        content_type: output.content_type.into(),
        bytes: output.bytes.len() as u64,
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
