//! The durable job pipeline on Redis (design: `docs/design/001-job-pipeline.md`).
//!
//! Every state transition is one Lua script, run with `EVALSHA` (falling back
//! to `EVAL` once when Redis answers `NOSCRIPT`, e.g. after a restart), so
//! each transition is one atomic round trip:
//!
//! | operation | round trips |
//! |---|---|
//! | [`submit`] | 1 ([`SUBMIT_ROUND_TRIPS`]) |
//! | one processed job: [`claim`] + [`complete`] or [`fail`] | 2 ([`PROCESS_ROUND_TRIPS`]); a claim that also picks up overdue jobs shares its round trip among them |
//! | [`get`], [`sweep`], [`dead_letters`], [`redrive`], [`release`], [`backlog`], [`ping`] | 1 each |
//!
//! plus one more the first time a script runs on a Redis server that has not
//! cached it. Times come from Redis `TIME` inside the scripts, one clock for
//! every replica. Scripts return flat arrays of strings and integers only,
//! because Spin's outbound Redis flattens nested arrays.
//!
//! Keys (prefix [`PipelineConfig::key_prefix`], `jobs` by default, used as
//! a hash tag in braces so that every key is in one cluster slot):
//! `{jobs}:job:{id}` (hash), `{jobs}:due` (sorted set: when each
//! unfinished job next needs attention), `{jobs}:dead` (sorted set:
//! dead-lettered ids), `{jobs}:idem:{tenant}:{key}` (idempotency keys, 24 h).
//! Every script declares in `KEYS` each key it knows before it runs; the job
//! keys that `claim` and `dead_letters` find in a sorted set share the tag,
//! so they are in the declared keys' slot.

use std::str::FromStr;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};
use sha1::{Digest, Sha1};

use crate::config::{PipelineConfig, SubmitLimits};
pub use crate::error::PipelineError;
use crate::ports::{Redis, RedisArg, RedisValue};

/// Redis round trips per submitted job (scripts cached).
pub const SUBMIT_ROUND_TRIPS: u32 = 1;
/// Redis round trips per processed job: claim, then complete or fail (scripts cached).
pub const PROCESS_ROUND_TRIPS: u32 = 2;
/// How long an `Idempotency-Key` is remembered.
pub const IDEMPOTENCY_TTL_SECONDS: i64 = 24 * 60 * 60;

/// A job to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewJob {
    /// The tenant that owns it.
    pub tenant: String,
    /// A registered job type name.
    pub job_type: String,
    /// The validated input, as canonical JSON.
    pub input_json: String,
    /// A hash of the request (type and input) for idempotency checks.
    pub request_hash: String,
    /// The client's `Idempotency-Key`, if any.
    pub idempotency_key: Option<String>,
}

/// What [`submit`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubmitOutcome {
    /// A new job was recorded and published.
    Created(JobRecord),
    /// The idempotency key was used before with the same request: the original job.
    Existing(JobRecord),
    /// The idempotency key was used before with a different request.
    IdempotencyConflict {
        /// The job the key belongs to.
        existing_id: String,
    },
    /// The tenant is over a submit limit; nothing was written.
    Limited(Limited),
}

/// Which submit limit a tenant hit, and when to come back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limited {
    /// `true`: too many unfinished jobs; `false`: over the submit rate.
    pub queued: bool,
    /// When a retry can succeed, in milliseconds.
    pub retry_after_ms: u64,
    /// The limit (bucket size, or the cap on unfinished jobs).
    pub limit: u64,
    /// What is left of it now (0).
    pub remaining: u64,
    /// Seconds until the limit is whole again.
    pub reset_seconds: u64,
}

/// A job's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    /// Waiting for a worker (first attempt, or backing off before a retry).
    Queued,
    /// Claimed by a worker.
    Running,
    /// Finished with a result.
    Succeeded,
    /// Finished without a result, dead-lettered.
    Failed,
}

impl JobStatus {
    /// The lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Queued => "queued",
            JobStatus::Running => "running",
            JobStatus::Succeeded => "succeeded",
            JobStatus::Failed => "failed",
        }
    }
}

impl FromStr for JobStatus {
    type Err = PipelineError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "queued" => Ok(JobStatus::Queued),
            "running" => Ok(JobStatus::Running),
            "succeeded" => Ok(JobStatus::Succeeded),
            "failed" => Ok(JobStatus::Failed),
            other => Err(PipelineError::Internal(format!(
                "unknown job status `{other}`"
            ))),
        }
    }
}

/// Where a job's result is stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResultRef {
    /// The blob name within the container, `{tenant}/{id}.{ext}`.
    pub blob: String,
    /// The result's media type.
    pub content_type: String,
    /// The result's size.
    pub bytes: u64,
}

/// A job as clients see it (its input excluded). Serializes to the fields of
/// the status body; times are milliseconds since the Unix epoch (Redis clock).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobRecord {
    /// The job id (UUID v4).
    pub id: String,
    /// The owning tenant.
    pub tenant: String,
    /// The job type.
    #[serde(rename = "type")]
    pub job_type: String,
    /// The state.
    pub status: JobStatus,
    /// Attempts started so far.
    pub attempts: u32,
    /// Attempts allowed.
    pub max_attempts: u32,
    /// When it was submitted.
    pub created_at: u64,
    /// When it last changed.
    pub updated_at: u64,
    /// When its latest attempt started.
    pub started_at: Option<u64>,
    /// When it succeeded or failed.
    pub finished_at: Option<u64>,
    /// The latest error (a failed job's reason; a queued job's last retryable error).
    pub error: Option<String>,
    /// The result, once succeeded.
    pub result: Option<ResultRef>,
}

/// A job claimed by a worker for one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedJob {
    /// The job id.
    pub id: String,
    /// The owning tenant.
    pub tenant: String,
    /// The job type.
    pub job_type: String,
    /// The attempt number (reset by a redrive).
    pub attempt: u32,
    /// The claim token: the job's claim count, which only ever grows (a
    /// redrive does not reset it). The fence of [`complete`], [`fail`] and
    /// [`release`].
    pub token: u64,
    /// The input JSON.
    pub input_json: String,
}

/// What [`redrive`] did.
// Returned once per admin request: boxing the record would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedriveOutcome {
    /// The job is queued again and was published.
    Requeued(JobRecord),
    /// No such job.
    NotFound,
    /// The job is not failed; nothing changed.
    NotFailed(JobStatus),
}

struct Script {
    source: &'static str,
    sha: OnceLock<String>,
}

impl Script {
    const fn new(source: &'static str) -> Self {
        Self {
            source,
            sha: OnceLock::new(),
        }
    }

    fn sha(&self) -> &str {
        self.sha
            .get_or_init(|| crate::jobs::text_stats::hex(&Sha1::digest(self.source.as_bytes())))
    }
}

macro_rules! script {
    ($name:ident, $file:literal) => {
        static $name: Script = Script::new(concat!(
            include_str!("pipeline/prelude.lua"),
            "\n",
            include_str!(concat!("pipeline/", $file))
        ));
    };
}

script!(SUBMIT, "submit.lua");
script!(GET, "get.lua");
script!(CLAIM, "claim.lua");
script!(COMPLETE, "complete.lua");
script!(FAIL, "fail.lua");
script!(SWEEP, "sweep.lua");
script!(DEAD_LETTERS, "dead_letters.lua");
script!(REDRIVE, "redrive.lua");
script!(RELEASE, "release.lua");
script!(BACKLOG, "backlog.lua");
script!(DEFER, "defer.lua");
script!(REDRIVE_ALL, "redrive_all.lua");

/// The key names of a pipeline, all sharing one hash tag (`{prefix}`), so
/// that every key a script touches is in one cluster slot.
struct Keys {
    tag: String,
}

impl Keys {
    fn new(cfg: &PipelineConfig) -> Self {
        Self {
            tag: format!("{{{}}}", cfg.key_prefix),
        }
    }

    /// `ARGV[1]` of every script: the prelude builds key names from it.
    fn prefix(&self) -> RedisArg {
        self.tag.as_str().into()
    }

    fn job(&self, id: &str) -> RedisArg {
        format!("{}:job:{id}", self.tag).into()
    }

    fn due(&self) -> RedisArg {
        format!("{}:due", self.tag).into()
    }

    fn dead(&self) -> RedisArg {
        format!("{}:dead", self.tag).into()
    }

    /// A per-tenant key: `queued` (unfinished jobs), `bucket` (submit rate).
    fn tenant(&self, kind: &str, tenant: &str) -> RedisArg {
        format!("{}:{kind}:{tenant}", self.tag).into()
    }

    fn idempotency(&self, tenant: &str, key: &str) -> RedisArg {
        format!("{}:idem:{tenant}:{key}", self.tag).into()
    }
}

/// Run a script with its declared `keys`: `EVALSHA`, or `EVAL` if Redis
/// does not have it cached.
fn eval(
    redis: &impl Redis,
    script: &Script,
    keys: Vec<RedisArg>,
    args: Vec<RedisArg>,
) -> Result<Vec<RedisValue>, PipelineError> {
    let mut full = Vec::with_capacity(keys.len() + args.len() + 2);
    full.push(RedisArg::from(script.sha()));
    full.push(RedisArg::Int(keys.len() as i64));
    full.extend(keys);
    full.extend(args);
    match redis.execute("EVALSHA", &full) {
        Err(error) if error.is_noscript() => {
            full[0] = RedisArg::from(script.source);
            Ok(redis.execute("EVAL", &full)?)
        }
        other => Ok(other?),
    }
}

fn text(value: &RedisValue) -> Result<String, PipelineError> {
    match value {
        RedisValue::Bytes(bytes) => String::from_utf8(bytes.clone())
            .map_err(|_| PipelineError::Internal("a reply is not UTF-8".into())),
        RedisValue::Status(s) => Ok(s.clone()),
        RedisValue::Int(n) => Ok(n.to_string()),
        RedisValue::Nil => Ok(String::new()),
    }
}

fn integer(value: &RedisValue) -> Result<i64, PipelineError> {
    match value {
        RedisValue::Int(n) => Ok(*n),
        other => text(other)?.parse().map_err(|_| {
            PipelineError::Internal(format!("expected an integer reply, got {other:?}"))
        }),
    }
}

fn optional_u64(value: &RedisValue) -> Result<Option<u64>, PipelineError> {
    let s = text(value)?;
    if s.is_empty() {
        return Ok(None);
    }
    s.parse()
        .map(Some)
        .map_err(|_| PipelineError::Internal(format!("expected a number, got `{s}`")))
}

fn required_u64(value: &RedisValue, field: &str) -> Result<u64, PipelineError> {
    optional_u64(value)?
        .ok_or_else(|| PipelineError::Internal(format!("job field `{field}` is missing")))
}

/// Values per record in script replies (see `FIELDS` in `prelude.lua`).
const RECORD_LEN: usize = 14;

fn record(values: &[RedisValue]) -> Result<JobRecord, PipelineError> {
    if values.len() != RECORD_LEN {
        return Err(PipelineError::Internal(format!(
            "expected {RECORD_LEN} job fields, got {}",
            values.len()
        )));
    }
    let optional_text = |v: &RedisValue| -> Result<Option<String>, PipelineError> {
        let s = text(v)?;
        Ok((!s.is_empty()).then_some(s))
    };
    let result = match optional_text(&values[11])? {
        Some(blob) => Some(ResultRef {
            blob,
            content_type: text(&values[12])?,
            bytes: optional_u64(&values[13])?.unwrap_or(0),
        }),
        None => None,
    };
    Ok(JobRecord {
        id: text(&values[0])?,
        tenant: text(&values[1])?,
        job_type: text(&values[2])?,
        status: text(&values[3])?.parse()?,
        attempts: required_u64(&values[4], "attempts")? as u32,
        max_attempts: required_u64(&values[5], "max_attempts")? as u32,
        created_at: required_u64(&values[6], "created_at")?,
        updated_at: required_u64(&values[7], "updated_at")?,
        started_at: optional_u64(&values[8])?,
        finished_at: optional_u64(&values[9])?,
        error: optional_text(&values[10])?,
        result,
    })
}

fn tag(reply: &[RedisValue]) -> Result<String, PipelineError> {
    reply
        .first()
        .map(text)
        .transpose()?
        .ok_or_else(|| PipelineError::Internal("empty script reply".into()))
}

fn retention_ms(cfg: &PipelineConfig) -> i64 {
    i64::try_from(cfg.retention_ms).unwrap_or(i64::MAX)
}

/// A new job id: a random (version 4) UUID.
pub fn new_job_id() -> Result<String, PipelineError> {
    let mut b = [0u8; 16];
    getrandom::getrandom(&mut b)
        .map_err(|e| PipelineError::Internal(format!("no randomness: {e}")))?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = crate::jobs::text_stats::hex(&b);
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    ))
}

/// Whether `id` has the shape of a job id (a lower-case hyphenated UUID).
pub fn is_valid_id(id: &str) -> bool {
    id.len() == 36
        && id.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_digit() || ('a'..='f').contains(&c),
        })
}

/// Record a job as `queued` and publish its id, atomically (1 round trip),
/// with no submit limits.
pub fn submit(
    redis: &impl Redis,
    cfg: &PipelineConfig,
    job: NewJob,
) -> Result<SubmitOutcome, PipelineError> {
    submit_limited(redis, cfg, job, &SubmitLimits::UNLIMITED)
}

/// Record a job as `queued` and publish its id, atomically (1 round trip),
/// unless the tenant is over one of `limits` (checked in the same script).
pub fn submit_limited(
    redis: &impl Redis,
    cfg: &PipelineConfig,
    job: NewJob,
    limits: &SubmitLimits,
) -> Result<SubmitOutcome, PipelineError> {
    let id = new_job_id()?;
    let k = Keys::new(cfg);
    let mut keys = vec![
        k.job(&id),
        k.due(),
        k.tenant("queued", &job.tenant),
        k.tenant("bucket", &job.tenant),
    ];
    if let Some(idem) = &job.idempotency_key {
        keys.push(k.idempotency(&job.tenant, idem));
    }
    let reply = eval(
        redis,
        &SUBMIT,
        keys,
        vec![
            k.prefix(),
            cfg.channel.as_str().into(),
            id.into(),
            job.tenant.into(),
            job.job_type.into(),
            job.input_json.into(),
            job.request_hash.into(),
            job.idempotency_key.unwrap_or_default().into(),
            RedisArg::Int(cfg.max_attempts.into()),
            RedisArg::Int(IDEMPOTENCY_TTL_SECONDS),
            RedisArg::Int(limits.rate_per_second.into()),
            RedisArg::Int(limits.burst.into()),
            RedisArg::Int(limits.max_queued.into()),
        ],
    )?;
    match tag(&reply)?.as_str() {
        "created" => Ok(SubmitOutcome::Created(record(&reply[1..])?)),
        "existing" => Ok(SubmitOutcome::Existing(record(&reply[1..])?)),
        "conflict" if reply.len() == 2 => Ok(SubmitOutcome::IdempotencyConflict {
            existing_id: text(&reply[1])?,
        }),
        "limited" if reply.len() == 6 => {
            let n = |v: &RedisValue| {
                u64::try_from(integer(v)?)
                    .map_err(|_| PipelineError::Internal("negative number in a limit reply".into()))
            };
            Ok(SubmitOutcome::Limited(Limited {
                queued: text(&reply[1])? == "queued",
                retry_after_ms: n(&reply[2])?,
                limit: n(&reply[3])?,
                remaining: n(&reply[4])?,
                reset_seconds: n(&reply[5])?,
            }))
        }
        other => Err(PipelineError::Internal(format!(
            "unexpected submit reply `{other}`"
        ))),
    }
}

/// The job `id`, if it exists (1 round trip). Tenancy is the caller's check.
pub fn get(
    redis: &impl Redis,
    cfg: &PipelineConfig,
    id: &str,
) -> Result<Option<JobRecord>, PipelineError> {
    let k = Keys::new(cfg);
    let reply = eval(redis, &GET, vec![k.job(id)], vec![k.prefix(), id.into()])?;
    if reply.is_empty() {
        return Ok(None);
    }
    record(&reply).map(Some)
}

/// At most this many bytes of job inputs are claimed by one [`claim`] beyond
/// the message's own job: a backlog of large inputs (base64 images) is taken
/// a few at a time instead of `sweep_batch` at once, which bounds the reply
/// and the worker instance's memory.
pub const CLAIM_BATCH_BYTES: i64 = 4 * 1024 * 1024;

/// Claim the message's job (if given and due) plus up to `sweep_batch`
/// overdue jobs (within [`CLAIM_BATCH_BYTES`] of inputs), in one round trip. Jobs whose lease expired on their last
/// attempt are failed and dead-lettered by the same script.
pub fn claim(
    redis: &impl Redis,
    cfg: &PipelineConfig,
    job_id: Option<&str>,
) -> Result<Vec<ClaimedJob>, PipelineError> {
    let lease_ms = i64::try_from(cfg.lease_ms).unwrap_or(i64::MAX);
    let k = Keys::new(cfg);
    // The overdue jobs' keys are found in the due set by the script; they
    // share the hash tag, so they are in the declared keys' slot.
    let mut keys = vec![k.due(), k.dead()];
    if let Some(id) = job_id {
        keys.push(k.job(id));
    }
    let reply = eval(
        redis,
        &CLAIM,
        keys,
        vec![
            k.prefix(),
            RedisArg::Int(lease_ms),
            RedisArg::Int(cfg.sweep_batch.into()),
            job_id.unwrap_or("").into(),
            RedisArg::Int(CLAIM_BATCH_BYTES),
            RedisArg::Int(retention_ms(cfg)),
        ],
    )?;
    let Some((_expired, jobs)) = reply.split_first() else {
        return Err(PipelineError::Internal("empty claim reply".into()));
    };
    if jobs.len() % 6 != 0 {
        return Err(PipelineError::Internal(format!(
            "malformed claim reply of {} values",
            reply.len()
        )));
    }
    jobs.chunks(6)
        .map(|c| {
            Ok(ClaimedJob {
                id: text(&c[0])?,
                tenant: text(&c[1])?,
                job_type: text(&c[2])?,
                attempt: u32::try_from(integer(&c[3])?)
                    .map_err(|_| PipelineError::Internal("attempt out of range".into()))?,
                token: u64::try_from(integer(&c[4])?)
                    .map_err(|_| PipelineError::Internal("claim token out of range".into()))?,
                input_json: text(&c[5])?,
            })
        })
        .collect()
}

/// Mark the job succeeded with its result, if `job` still holds it (same
/// claim token, still running). `Ok(false)`: fenced out, nothing changed.
pub fn complete(
    redis: &impl Redis,
    cfg: &PipelineConfig,
    job: &ClaimedJob,
    result: &ResultRef,
) -> Result<bool, PipelineError> {
    let k = Keys::new(cfg);
    let reply = eval(
        redis,
        &COMPLETE,
        vec![k.job(&job.id), k.due()],
        vec![
            k.prefix(),
            job.id.as_str().into(),
            job.token.to_string().into(),
            result.blob.as_str().into(),
            result.content_type.as_str().into(),
            result.bytes.to_string().into(),
            RedisArg::Int(retention_ms(cfg)),
        ],
    )?;
    match reply.first() {
        Some(value) => Ok(integer(value)? == 1),
        None => Err(PipelineError::Internal("empty complete reply".into())),
    }
}

/// Record a failed attempt, if `job` still holds the job. A retryable error
/// with attempts left re-queues it with exponential backoff
/// (`Some(Queued)`); otherwise it fails and is dead-lettered (`Some(Failed)`).
/// `None`: fenced out, nothing changed.
pub fn fail(
    redis: &impl Redis,
    cfg: &PipelineConfig,
    job: &ClaimedJob,
    error: &str,
    retryable: bool,
) -> Result<Option<JobStatus>, PipelineError> {
    let backoff = i64::try_from(cfg.retry_backoff_ms).unwrap_or(i64::MAX);
    let k = Keys::new(cfg);
    let reply = eval(
        redis,
        &FAIL,
        vec![k.job(&job.id), k.due(), k.dead()],
        vec![
            k.prefix(),
            job.id.as_str().into(),
            job.token.to_string().into(),
            error.into(),
            if retryable { "1" } else { "0" }.into(),
            RedisArg::Int(backoff),
            RedisArg::Int(retention_ms(cfg)),
        ],
    )?;
    match tag(&reply)?.as_str() {
        "queued" => Ok(Some(JobStatus::Queued)),
        "failed" => Ok(Some(JobStatus::Failed)),
        "fenced" => Ok(None),
        other => Err(PipelineError::Internal(format!(
            "unexpected fail reply `{other}`"
        ))),
    }
}

/// Put a claimed job back in the queue without spending an attempt, due in
/// `delay_ms`, with `error` as its reason: for failures that are not the
/// job's (the result storage refusing the credentials). `Ok(false)`: fenced
/// out, nothing changed (1 round trip).
pub fn defer(
    redis: &impl Redis,
    cfg: &PipelineConfig,
    job: &ClaimedJob,
    delay_ms: u64,
    error: &str,
) -> Result<bool, PipelineError> {
    let k = Keys::new(cfg);
    let reply = eval(
        redis,
        &DEFER,
        vec![k.job(&job.id), k.due()],
        vec![
            k.prefix(),
            job.id.as_str().into(),
            job.token.to_string().into(),
            RedisArg::Int(i64::try_from(delay_ms).unwrap_or(i64::MAX)),
            error.into(),
        ],
    )?;
    match reply.first() {
        Some(value) => Ok(integer(value)? == 1),
        None => Err(PipelineError::Internal("empty defer reply".into())),
    }
}

/// Hand back claimed jobs that this worker will not start: each one still
/// held under its claim token returns to `queued`, due now, with the claim's attempt
/// undone, and is published so another worker picks it up (1 round trip).
/// Returns how many were released.
pub fn release(
    redis: &impl Redis,
    cfg: &PipelineConfig,
    jobs: &[ClaimedJob],
) -> Result<u32, PipelineError> {
    if jobs.is_empty() {
        return Ok(0);
    }
    let k = Keys::new(cfg);
    let mut keys = vec![k.due()];
    let mut args: Vec<RedisArg> = vec![k.prefix(), cfg.channel.as_str().into()];
    for job in jobs {
        keys.push(k.job(&job.id));
        args.push(job.id.as_str().into());
        args.push(job.token.to_string().into());
    }
    let reply = eval(redis, &RELEASE, keys, args)?;
    let count = reply.first().map(integer).transpose()?.unwrap_or(0);
    Ok(u32::try_from(count).unwrap_or(0))
}

/// Publish the ids of up to `sweep_batch` due jobs (1 round trip); returns
/// how many were published.
pub fn sweep(redis: &impl Redis, cfg: &PipelineConfig) -> Result<u32, PipelineError> {
    let k = Keys::new(cfg);
    let reply = eval(
        redis,
        &SWEEP,
        vec![k.due()],
        vec![
            k.prefix(),
            cfg.channel.as_str().into(),
            RedisArg::Int(cfg.sweep_batch.into()),
        ],
    )?;
    let count = reply.first().map(integer).transpose()?.unwrap_or(0);
    Ok(u32::try_from(count).unwrap_or(0))
}

/// Dead-lettered jobs, newest first (1 round trip).
pub fn dead_letters(
    redis: &impl Redis,
    cfg: &PipelineConfig,
    offset: u32,
    limit: u32,
) -> Result<Vec<JobRecord>, PipelineError> {
    let k = Keys::new(cfg);
    let reply = eval(
        redis,
        &DEAD_LETTERS,
        vec![k.dead()],
        vec![
            k.prefix(),
            RedisArg::Int(offset.into()),
            RedisArg::Int(limit.into()),
        ],
    )?;
    if reply.len() % RECORD_LEN != 0 {
        return Err(PipelineError::Internal(format!(
            "malformed dead-letter reply of {} values",
            reply.len()
        )));
    }
    reply.chunks(RECORD_LEN).map(record).collect()
}

/// Put a failed job back in the queue with its attempts reset, and publish it
/// (1 round trip).
pub fn redrive(
    redis: &impl Redis,
    cfg: &PipelineConfig,
    id: &str,
) -> Result<RedriveOutcome, PipelineError> {
    let k = Keys::new(cfg);
    let reply = eval(
        redis,
        &REDRIVE,
        vec![k.job(id), k.due(), k.dead()],
        vec![k.prefix(), cfg.channel.as_str().into(), id.into()],
    )?;
    match tag(&reply)?.as_str() {
        "requeued" => Ok(RedriveOutcome::Requeued(record(&reply[1..])?)),
        "notfound" => Ok(RedriveOutcome::NotFound),
        "notfailed" if reply.len() == 2 => Ok(RedriveOutcome::NotFailed(text(&reply[1])?.parse()?)),
        other => Err(PipelineError::Internal(format!(
            "unexpected redrive reply `{other}`"
        ))),
    }
}

/// How much work is waiting, from the due and dead sets (one script, 1 round trip).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Backlog {
    /// Jobs whose time has come: queued and due, backing off no longer, or
    /// running with an expired lease. What an autoscaler should scale on.
    pub due: u64,
    /// Every unfinished job in the due set, due now or later (running jobs
    /// included, scored at their lease's end).
    pub scheduled: u64,
    /// Dead-lettered jobs.
    pub dead: u64,
}

/// Count due, scheduled and dead-lettered jobs (1 round trip).
pub fn backlog(redis: &impl Redis, cfg: &PipelineConfig) -> Result<Backlog, PipelineError> {
    let k = Keys::new(cfg);
    let reply = eval(redis, &BACKLOG, vec![k.due(), k.dead()], vec![k.prefix()])?;
    let [due, scheduled, dead] = reply.as_slice() else {
        return Err(PipelineError::Internal(format!(
            "malformed backlog reply of {} values",
            reply.len()
        )));
    };
    let count = |v: &RedisValue| {
        u64::try_from(integer(v)?)
            .map_err(|_| PipelineError::Internal("negative count in backlog reply".into()))
    };
    Ok(Backlog {
        due: count(due)?,
        scheduled: count(scheduled)?,
        dead: count(dead)?,
    })
}

/// Re-drive up to `limit` dead-lettered jobs, oldest first (1 round trip):
/// after an outage (expired credentials, say) dead-lettered many. Returns
/// how many were re-driven.
pub fn redrive_all(
    redis: &impl Redis,
    cfg: &PipelineConfig,
    limit: u32,
) -> Result<u32, PipelineError> {
    let k = Keys::new(cfg);
    let reply = eval(
        redis,
        &REDRIVE_ALL,
        vec![k.due(), k.dead()],
        vec![
            k.prefix(),
            cfg.channel.as_str().into(),
            RedisArg::Int(limit.into()),
        ],
    )?;
    let count = reply.first().map(integer).transpose()?.unwrap_or(0);
    Ok(u32::try_from(count).unwrap_or(0))
}

/// Wait until `replicas` replicas have acknowledged this connection's
/// writes, or `timeout_ms` (Redis `WAIT`, 1 round trip); returns how many
/// did. Run on the connection that submitted, right after it.
pub fn wait_for_replicas(
    redis: &impl Redis,
    replicas: u32,
    timeout_ms: u64,
) -> Result<u32, PipelineError> {
    let reply = redis.execute(
        "WAIT",
        &[
            RedisArg::Int(replicas.into()),
            RedisArg::Int(i64::try_from(timeout_ms).unwrap_or(i64::MAX)),
        ],
    )?;
    let acked = reply.first().map(integer).transpose()?.unwrap_or(0);
    Ok(u32::try_from(acked).unwrap_or(0))
}

/// Check that Redis answers (1 round trip).
pub fn ping(redis: &impl Redis) -> Result<(), PipelineError> {
    redis.execute("PING", &[])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use super::*;
    use crate::ports::RedisError;

    /// A fake that answers from a queue and records the commands.
    #[derive(Default)]
    struct Fake {
        replies: RefCell<Vec<Result<Vec<RedisValue>, RedisError>>>,
        commands: RefCell<Vec<(String, Vec<RedisArg>)>>,
    }

    impl Redis for Fake {
        fn execute(&self, command: &str, args: &[RedisArg]) -> Result<Vec<RedisValue>, RedisError> {
            self.commands
                .borrow_mut()
                .push((command.to_string(), args.to_vec()));
            self.replies.borrow_mut().remove(0)
        }
    }

    fn b(s: &str) -> RedisValue {
        RedisValue::Bytes(s.as_bytes().to_vec())
    }

    fn record_values(status: &str) -> Vec<RedisValue> {
        [
            "0b7c3f3e-1111-4222-8333-444455556666",
            "acme",
            "text-stats",
            status,
            "2",
            "5",
            "1700000000000",
            "1700000000500",
            "1700000000100",
            "",
            "",
            "acme/x.json",
            "application/json",
            "42",
        ]
        .iter()
        .map(|s| b(s))
        .collect()
    }

    #[test]
    fn record_parses_and_serializes_to_the_status_body() {
        let rec = record(&record_values("succeeded")).unwrap();
        assert_eq!(rec.status, JobStatus::Succeeded);
        assert_eq!(rec.started_at, Some(1_700_000_000_100));
        assert_eq!(rec.finished_at, None);
        assert_eq!(rec.error, None);
        let json = serde_json::to_value(&rec).unwrap();
        assert_eq!(json["type"], "text-stats");
        assert_eq!(json["status"], "succeeded");
        assert_eq!(json["result"]["bytes"], 42);
        assert!(json["finished_at"].is_null());
        assert!(record(&record_values("bogus")).is_err());
        assert!(record(&record_values("queued")[..13]).is_err());
    }

    #[test]
    fn evalsha_falls_back_to_eval_on_noscript() {
        let fake = Fake::default();
        fake.replies.borrow_mut().extend([
            Err(RedisError::Command(
                "An error was signalled by the server - NoScriptError: No matching script. Please use EVAL.".into(),
            )),
            Ok(vec![b("requeued")].into_iter().chain(record_values("queued")).collect()),
        ]);
        let out = redrive(&fake, &PipelineConfig::default(), "x").unwrap();
        assert!(matches!(out, RedriveOutcome::Requeued(r) if r.status == JobStatus::Queued));
        let commands = fake.commands.borrow();
        assert_eq!(commands[0].0, "EVALSHA");
        assert_eq!(commands[0].1[0], RedisArg::from(REDRIVE.sha()));
        assert_eq!(commands[1].0, "EVAL");
        assert_eq!(commands[1].1[0], RedisArg::from(REDRIVE.source));
        assert_eq!(commands[1].1[1..], commands[0].1[1..]);
    }

    #[test]
    fn unavailable_redis_is_reported_as_such() {
        let fake = Fake::default();
        fake.replies
            .borrow_mut()
            .push(Err(RedisError::Unavailable("connection refused".into())));
        let job = NewJob {
            tenant: "t".into(),
            job_type: "text-stats".into(),
            input_json: "{}".into(),
            request_hash: "h".into(),
            idempotency_key: None,
        };
        assert!(matches!(
            submit(&fake, &PipelineConfig::default(), job),
            Err(PipelineError::Unavailable(_))
        ));
        assert_eq!(
            fake.commands.borrow().len(),
            1,
            "no EVAL retry when Redis is down"
        );
    }

    #[test]
    fn claim_reply_is_parsed_in_sixes() {
        let fake = Fake::default();
        fake.replies.borrow_mut().push(Ok(vec![
            RedisValue::Int(0),
            b("id1"),
            b("t"),
            b("thumbnail"),
            RedisValue::Int(3),
            RedisValue::Int(7),
            b("{\"a\":1}"),
        ]));
        let jobs = claim(&fake, &PipelineConfig::default(), Some("id1")).unwrap();
        assert_eq!(
            jobs,
            vec![ClaimedJob {
                id: "id1".into(),
                tenant: "t".into(),
                job_type: "thumbnail".into(),
                attempt: 3,
                token: 7,
                input_json: "{\"a\":1}".into(),
            }]
        );
        fake.replies
            .borrow_mut()
            .push(Ok(vec![RedisValue::Int(0), b("id1")]));
        assert!(claim(&fake, &PipelineConfig::default(), None).is_err());
    }

    #[test]
    fn ids_are_uuid_v4() {
        let a = new_job_id().unwrap();
        let b = new_job_id().unwrap();
        assert_ne!(a, b);
        assert!(is_valid_id(&a), "{a}");
        assert_eq!(&a[14..15], "4");
        assert!(matches!(&a[19..20], "8" | "9" | "a" | "b"));
        assert!(!is_valid_id("not-an-id"));
        assert!(!is_valid_id(&a.to_uppercase()));
    }

    #[test]
    fn script_hashes_are_sha1_hex() {
        assert_eq!(SUBMIT.sha().len(), 40);
        assert_ne!(SUBMIT.sha(), CLAIM.sha());
        assert!(CLAIM
            .source
            .starts_with("-- Shared by every pipeline script"));
    }
}
