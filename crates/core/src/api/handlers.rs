//! One function per route.

use serde_json::{json, Map, Value};

use super::auth::bearer_token;
use super::engine::{
    self, JobRecord, JobStatus, NewJob, PipelineError, RedriveOutcome, SubmitOutcome,
};
use super::problem::Problem;
use super::routes::{self, Access, RouteId};
use super::wire::{request_hash_canonical, rfc3339_millis};
use super::{ApiContext, ApiRequest, ApiResponse, RequestLog, OPENAPI_JSON};
use crate::jobs::object_members;
use crate::ports::{Http, Redis, RedisError};

/// Default and largest `limit` of the dead-letter list.
pub const DEFAULT_LIMIT: u32 = 20;
/// Largest `limit` of the dead-letter list.
pub const MAX_LIMIT: u32 = 100;
/// At most this many problems are listed in a `422` body.
const MAX_REPORTED_ERRORS: usize = 16;
/// Largest `offset` of the dead-letter list.
pub const MAX_OFFSET: u32 = 1_000_000;

type Handled = Result<ApiResponse, Problem>;

pub(super) async fn dispatch<R: Redis, H: Http>(
    id: RouteId,
    path_id: Option<String>,
    req: &ApiRequest,
    ctx: &ApiContext<'_, R, H>,
    log: &mut RequestLog,
) -> Handled {
    let tenant = match routes::route(id).access {
        Access::Open => None,
        Access::Tenant => {
            let tenant = authenticate_tenant(req, ctx)?;
            log.tenant = Some(tenant.clone());
            Some(tenant)
        }
        Access::Admin => {
            authenticate_admin(req, ctx)?;
            None
        }
    };
    let tenant = tenant.as_deref().unwrap_or_default();
    let job_id = path_id.as_deref().unwrap_or_default();
    match id {
        RouteId::Healthz => Ok(healthz()),
        RouteId::OpenApi => Ok(openapi()),
        RouteId::Readyz => readyz(ctx),
        RouteId::SubmitJob => submit(req, ctx, tenant, log),
        RouteId::GetJob => get_job(ctx, tenant, job_id),
        RouteId::GetResult => get_result(ctx, tenant, job_id).await,
        RouteId::DeadLetters => dead_letters(req, ctx),
        RouteId::Redrive => redrive(ctx, job_id),
        RouteId::Sweep => sweep(ctx),
        RouteId::Backlog => backlog(ctx),
        RouteId::RedriveAll => redrive_all(req, ctx),
    }
}

fn token(req: &ApiRequest) -> Result<&str, Problem> {
    req.header("authorization")
        .and_then(bearer_token)
        .ok_or_else(|| Problem::unauthorized(false))
}

fn authenticate_tenant<R, H>(
    req: &ApiRequest,
    ctx: &ApiContext<'_, R, H>,
) -> Result<String, Problem> {
    let token = token(req)?;
    ctx.config
        .credentials
        .tenant_for(token)
        .map(str::to_string)
        .ok_or_else(|| Problem::unauthorized(true))
}

fn authenticate_admin<R, H>(req: &ApiRequest, ctx: &ApiContext<'_, R, H>) -> Result<(), Problem> {
    if ctx.config.credentials.is_admin(token(req)?) {
        Ok(())
    } else {
        Err(Problem::unauthorized(true))
    }
}

fn open<R: Redis, H>(ctx: &ApiContext<'_, R, H>) -> Result<R, Problem> {
    (ctx.redis)().map_err(|e| match e {
        RedisError::Unavailable(_) => Problem::unavailable(e),
        RedisError::Command(_) => Problem::internal(e),
    })
}

fn pipeline_problem(error: PipelineError) -> Problem {
    match error {
        PipelineError::Unavailable(cause) => Problem::unavailable(cause),
        PipelineError::Internal(cause) => Problem::internal(cause),
    }
}

pub(super) fn openapi() -> ApiResponse {
    ApiResponse {
        status: 200,
        headers: vec![("content-type".into(), "application/json".into())],
        body: OPENAPI_JSON.as_bytes().to_vec(),
    }
}

pub(super) fn healthz() -> ApiResponse {
    ApiResponse::json(200, &json!({ "status": "ok" }))
}

fn readyz<R: Redis, H>(ctx: &ApiContext<'_, R, H>) -> Handled {
    let redis = open(ctx)?;
    engine::ping(&redis).map_err(|e| match e {
        // Readiness is about reachability: any failure means "not ready".
        PipelineError::Unavailable(cause) | PipelineError::Internal(cause) => {
            Problem::unavailable(cause)
        }
    })?;
    Ok(ApiResponse::json(200, &json!({ "status": "ready" })))
}

fn job_path(id: &str) -> String {
    format!("/api/v1/jobs/{id}")
}

/// The job resource as the API shows it; `with_tenant` for operator views.
pub(super) fn job_json(job: &JobRecord, with_tenant: bool) -> Value {
    let mut body = Map::new();
    body.insert("id".into(), json!(job.id));
    if with_tenant {
        body.insert("tenant".into(), json!(job.tenant));
    }
    body.insert("type".into(), json!(job.job_type));
    body.insert("status".into(), json!(job.status.as_str()));
    body.insert("attempts".into(), json!(job.attempts));
    body.insert("max_attempts".into(), json!(job.max_attempts));
    body.insert("created_at".into(), json!(rfc3339_millis(job.created_at)));
    body.insert("updated_at".into(), json!(rfc3339_millis(job.updated_at)));
    if let Some(at) = job.started_at {
        body.insert("started_at".into(), json!(rfc3339_millis(at)));
    }
    if let Some(at) = job.finished_at {
        body.insert("finished_at".into(), json!(rfc3339_millis(at)));
    }
    if let Some(error) = &job.error {
        body.insert("error".into(), json!(error));
    }
    if let Some(result) = &job.result {
        body.insert(
            "result".into(),
            json!({ "content_type": result.content_type, "bytes": result.bytes }),
        );
    }
    let path = job_path(&job.id);
    body.insert(
        "links".into(),
        json!({ "self": path, "result": format!("{path}/result") }),
    );
    Value::Object(body)
}

fn is_json_media_type(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    essence.eq_ignore_ascii_case("application/json")
}

fn valid_idempotency_key(key: &str) -> bool {
    (1..=255).contains(&key.len()) && key.bytes().all(|b| (0x21..=0x7e).contains(&b))
}

fn invalid_input(detail: &str, errors: Vec<Value>) -> Problem {
    Problem::new(422, "invalid-input", "Invalid input", detail).with("errors", Value::Array(errors))
}

fn input_error(pointer: &str, message: &str) -> Value {
    json!({ "pointer": pointer, "message": message })
}

fn submit<R: Redis, H>(
    req: &ApiRequest,
    ctx: &ApiContext<'_, R, H>,
    tenant: &str,
    log: &mut RequestLog,
) -> Handled {
    let limit = ctx.config.max_body_bytes;
    let declared = req
        .header("content-length")
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) || req.body.len() > limit {
        return Err(Problem::payload_too_large(limit));
    }
    if !req.header("content-type").is_some_and(is_json_media_type) {
        return Err(Problem::unsupported_media_type());
    }
    let idempotency_key = match req.header("idempotency-key") {
        None => None,
        Some(key) if valid_idempotency_key(key) => Some(key.to_string()),
        Some(_) => {
            return Err(Problem::invalid_header(
                "`Idempotency-Key` must be 1 to 255 visible ASCII characters",
            ))
        }
    };
    // Parsed in place: `input` stays raw JSON text borrowed from the body
    // until its job type parses it into typed fields, so a hostile body costs
    // no more than its own size.
    let text = std::str::from_utf8(&req.body)
        .map_err(|_| Problem::malformed_json("the body is not valid JSON: it is not UTF-8"))?;
    let members = match object_members(text, ["type", "input"], MAX_REPORTED_ERRORS) {
        Ok(members) => members,
        Err(Some(e)) => {
            return Err(Problem::malformed_json(format!(
                "the body is not valid JSON: {e}"
            )))
        }
        Err(None) => {
            return Err(invalid_input(
                "the body must be a JSON object",
                vec![input_error("", "must be an object with `type` and `input`")],
            ))
        }
    };
    let mut errors: Vec<Value> = members
        .unknown
        .iter()
        .map(|name| {
            let pointer = format!("/{}", name.replace('~', "~0").replace('/', "~1"));
            input_error(&pointer, "unknown member")
        })
        .collect();
    let [job_type, input] = members.values;
    let job_type = match job_type.map(|raw| serde_json::from_str::<String>(raw.get())) {
        Some(Ok(name)) => Some(name),
        Some(Err(_)) => {
            errors.push(input_error("/type", "must be a string"));
            None
        }
        None => {
            errors.push(input_error("/type", "is required"));
            None
        }
    };
    if input.is_none() {
        errors.push(input_error("/input", "is required"));
    }
    let (Some(job_type), Some(input), true) = (job_type, input, errors.is_empty()) else {
        errors.truncate(MAX_REPORTED_ERRORS);
        return Err(invalid_input("the body does not describe a job", errors));
    };
    let Some(kind) = engine::find(&job_type) else {
        let known: Vec<&str> = engine::names().collect();
        return Err(Problem::new(
            422,
            "unknown-job-type",
            "Unknown job type",
            format!("unknown job type; known types: {}", known.join(", ")),
        )
        .with("known_types", json!(known))
        .with("errors", json!([input_error("/type", "unknown job type")])));
    };
    let input_json = match kind.validate(input.get()) {
        Ok(canonical) => canonical,
        Err(e) => {
            let errors = vec![input_error(&format!("/input{}", e.pointer), &e.message)];
            return Err(invalid_input(
                &format!("the input is not valid for job type `{}`", kind.name()),
                errors,
            ));
        }
    };
    let new_job = NewJob {
        tenant: tenant.to_string(),
        job_type: kind.name().to_string(),
        request_hash: request_hash_canonical(kind.name(), &input_json),
        input_json,
        idempotency_key,
    };
    let redis = open(ctx)?;
    let limits = ctx.config.limits_for(tenant);
    match engine::submit_limited(&redis, &ctx.config.pipeline, new_job, &limits)
        .map_err(pipeline_problem)?
    {
        SubmitOutcome::Limited(limited) => {
            let (slug, title, detail) = if limited.queued {
                (
                    "too-many-queued",
                    "Too many unfinished jobs",
                    "this tenant has as many unfinished jobs as it may have; submit more once some finish",
                )
            } else {
                (
                    "rate-limited",
                    "Too many submissions",
                    "this tenant is over its submission rate; retry after `Retry-After` seconds",
                )
            };
            Err(Problem::new(429, slug, title, detail)
                .header(
                    "retry-after",
                    limited.retry_after_ms.div_ceil(1000).max(1).to_string(),
                )
                .header("ratelimit-limit", limited.limit.to_string())
                .header("ratelimit-remaining", limited.remaining.to_string())
                .header("ratelimit-reset", limited.reset_seconds.max(1).to_string()))
        }
        SubmitOutcome::Created(job) => {
            // With a replica, a failover right after the 202 could lose the
            // job: wait (bounded) for the replicas to have it first. Still
            // 202 if they are late (logged): the job is on the primary, and
            // a 503 would invite a duplicate submission.
            if ctx.config.wait_replicas > 0 {
                let acked = engine::wait_for_replicas(
                    &redis,
                    ctx.config.wait_replicas,
                    ctx.config.wait_timeout_ms,
                )
                .map_err(pipeline_problem)?;
                log.replicas_acked = Some(acked);
            }
            Ok(ApiResponse::json(202, &job_json(&job, false))
                .with_header("location", job_path(&job.id)))
        }
        SubmitOutcome::Existing(job) => Ok(ApiResponse::json(200, &job_json(&job, false))
            .with_header("location", job_path(&job.id))
            .with_header("idempotent-replayed", "true")),
        SubmitOutcome::IdempotencyConflict { existing_id } => Err(Problem::new(
            409,
            "idempotency-conflict",
            "Idempotency key reused",
            "this `Idempotency-Key` was already used with a different request body",
        )
        .with("job_id", json!(existing_id))),
    }
}

/// The tenant's job, or `404` for an unknown job and another tenant's job alike.
fn tenant_job<R: Redis, H>(
    ctx: &ApiContext<'_, R, H>,
    tenant: &str,
    id: &str,
) -> Result<JobRecord, Problem> {
    if !engine::is_valid_id(id) {
        return Err(Problem::not_found("no such job"));
    }
    let redis = open(ctx)?;
    match engine::get(&redis, &ctx.config.pipeline, id).map_err(pipeline_problem)? {
        Some(job) if job.tenant == tenant => Ok(job),
        _ => Err(Problem::not_found("no such job")),
    }
}

fn get_job<R: Redis, H>(ctx: &ApiContext<'_, R, H>, tenant: &str, id: &str) -> Handled {
    let job = tenant_job(ctx, tenant, id)?;
    Ok(ApiResponse::json(200, &job_json(&job, false)))
}

async fn get_result<R: Redis, H: Http>(
    ctx: &ApiContext<'_, R, H>,
    tenant: &str,
    id: &str,
) -> Handled {
    let job = tenant_job(ctx, tenant, id)?;
    match job.status {
        JobStatus::Succeeded => {}
        JobStatus::Failed => {
            let mut problem = Problem::new(
                409,
                "job-failed",
                "Job failed",
                "the job failed and has no result",
            )
            .with("job_status", json!("failed"));
            if let Some(error) = &job.error {
                problem = problem.with("job_error", json!(error));
            }
            return Err(problem);
        }
        status => {
            return Err(Problem::new(
                409,
                "job-not-finished",
                "Job not finished",
                format!(
                    "the job is {}; its result is available once it has succeeded",
                    status.as_str()
                ),
            )
            .with("job_status", json!(status.as_str())))
        }
    }
    let Some(result) = &job.result else {
        return Err(Problem::internal(format!(
            "succeeded job {} has no result reference",
            job.id
        )));
    };
    let store_problem = |cause: String| {
        Problem::new(
            502,
            "result-store",
            "Bad gateway",
            "the result store did not return the result; retry later",
        )
        .cause(cause)
    };
    match engine::get_blob(ctx.http, &ctx.config.blob, &result.blob).await {
        Ok(Some((_content_type, bytes))) => Ok(ApiResponse {
            status: 200,
            headers: vec![("content-type".into(), result.content_type.clone())],
            body: bytes,
        }),
        // The result blob is gone (its lifecycle rule deleted it, or it
        // was removed): it will not come back, so not a 502 to retry.
        Ok(None) => Err(Problem::new(
            410,
            "result-gone",
            "Result gone",
            "the job's result is no longer stored",
        )
        .cause(format!("blob {} of job {} is missing", result.blob, job.id))),
        Err(e) => Err(store_problem(format!(
            "blob {} of job {}: {e}",
            result.blob, job.id
        ))),
    }
}

/// Parse `offset` and `limit` from a query string.
pub(super) fn page(query: &str) -> Result<(u32, u32), Problem> {
    let mut offset = 0;
    let mut limit = DEFAULT_LIMIT;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let parse = |max: u32, min: u32| {
            value
                .parse::<u32>()
                .ok()
                .filter(|n| (min..=max).contains(n) && value.bytes().all(|b| b.is_ascii_digit()))
        };
        match name {
            "offset" => {
                offset = parse(MAX_OFFSET, 0).ok_or_else(|| {
                    Problem::invalid_query(format!(
                        "`offset` must be an integer from 0 to {MAX_OFFSET}"
                    ))
                })?
            }
            "limit" => {
                limit = parse(MAX_LIMIT, 1).ok_or_else(|| {
                    Problem::invalid_query(format!(
                        "`limit` must be an integer from 1 to {MAX_LIMIT}"
                    ))
                })?
            }
            _ => {}
        }
    }
    Ok((offset, limit))
}

fn dead_letters<R: Redis, H>(req: &ApiRequest, ctx: &ApiContext<'_, R, H>) -> Handled {
    let (offset, limit) = page(&req.query)?;
    let redis = open(ctx)?;
    let jobs = engine::dead_letters(&redis, &ctx.config.pipeline, offset, limit)
        .map_err(pipeline_problem)?;
    let items: Vec<Value> = jobs.iter().map(|job| job_json(job, true)).collect();
    Ok(ApiResponse::json(
        200,
        &json!({ "items": items, "offset": offset, "limit": limit }),
    ))
}

fn redrive<R: Redis, H>(ctx: &ApiContext<'_, R, H>, id: &str) -> Handled {
    if !engine::is_valid_id(id) {
        return Err(Problem::not_found("no such job"));
    }
    let redis = open(ctx)?;
    match engine::redrive(&redis, &ctx.config.pipeline, id).map_err(pipeline_problem)? {
        RedriveOutcome::Requeued(job) => Ok(ApiResponse::json(200, &job_json(&job, true))),
        RedriveOutcome::NotFound => Err(Problem::not_found("no such job")),
        RedriveOutcome::NotFailed(status) => Err(Problem::new(
            409,
            "job-not-failed",
            "Job not failed",
            format!(
                "only failed jobs can be re-driven; this job is {}",
                status.as_str()
            ),
        )
        .with("job_status", json!(status.as_str()))),
    }
}

fn sweep<R: Redis, H>(ctx: &ApiContext<'_, R, H>) -> Handled {
    let redis = open(ctx)?;
    let published = engine::sweep(&redis, &ctx.config.pipeline).map_err(pipeline_problem)?;
    Ok(ApiResponse::json(200, &json!({ "published": published })))
}

fn redrive_all<R: Redis, H>(req: &ApiRequest, ctx: &ApiContext<'_, R, H>) -> Handled {
    let (_, limit) = page(&req.query)?;
    let redis = open(ctx)?;
    let redriven =
        engine::redrive_all(&redis, &ctx.config.pipeline, limit).map_err(pipeline_problem)?;
    Ok(ApiResponse::json(200, &json!({ "redriven": redriven })))
}

fn backlog<R: Redis, H>(ctx: &ApiContext<'_, R, H>) -> Handled {
    let redis = open(ctx)?;
    let counts = engine::backlog(&redis, &ctx.config.pipeline).map_err(pipeline_problem)?;
    Ok(ApiResponse::json(
        200,
        &json!({ "due": counts.due, "scheduled": counts.scheduled, "dead": counts.dead }),
    ))
}
