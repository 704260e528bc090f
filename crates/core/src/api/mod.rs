//! The HTTP API, independent of Spin: a plain [`ApiRequest`] goes in, a plain
//! [`ApiResponse`] comes out, and Redis and outbound HTTP come through the
//! [`ports`](crate::ports). The `api` component only converts to and from the
//! SDK's types.
//!
//! Routes are listed in [`routes::ROUTES`] and described by the OpenAPI 3.1
//! document [`OPENAPI_JSON`]; a unit test keeps the two in step. Every error is
//! an RFC 9457 problem ([`Problem`]) with a safe message; internal causes go
//! only to the request's log line.

mod auth;
mod config;
mod engine;
mod handlers;
#[cfg(test)]
mod openapi_tests;
mod problem;
mod request_id;
pub mod routes;
#[cfg(test)]
mod tests;
mod wire;

use std::time::Instant;

use serde_json::{json, Map, Value};

pub use auth::bearer_token;
pub use config::{ApiConfig, ConfigError, Credentials, Reads, DEFAULT_MAX_BODY_BYTES};
pub use problem::{Details, Problem, PROBLEM_JSON, TYPE_PREFIX};
pub use wire::{canonical_json, request_hash, request_hash_canonical, rfc3339_millis};

use crate::log::{Level, Logger};
use crate::ports::{Http, Redis, RedisError};
use routes::{Match, RouteId};

/// The OpenAPI 3.1 document, served at `GET /api/v1/openapi.json`.
pub const OPENAPI_JSON: &str = include_str!("../../openapi.json");

/// An incoming request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApiRequest {
    /// Upper-case method.
    pub method: String,
    /// Path, without the query string.
    pub path: String,
    /// Query string without the `?` (may be empty).
    pub query: String,
    /// Header names and values.
    pub headers: Vec<(String, String)>,
    /// The body: read by the component only when [`body_limit`] says so, and
    /// then at most that many bytes.
    pub body: Vec<u8>,
}

impl ApiRequest {
    /// The first value of a header, matched case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// An outgoing response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiResponse {
    /// Status code.
    pub status: u16,
    /// Header names (lower case) and values.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Vec<u8>,
}

impl ApiResponse {
    /// A JSON response.
    pub fn json(status: u16, body: &Value) -> Self {
        Self::json_with_type(status, "application/json", body)
    }

    pub(crate) fn json_with_type(status: u16, content_type: &str, body: &Value) -> Self {
        Self {
            status,
            headers: vec![("content-type".into(), content_type.into())],
            body: body.to_string().into_bytes(),
        }
    }

    /// The first value of a header, matched case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn with_header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_string(), value.into()));
        self
    }
}

/// What a request may use: settings, a lazily opened Redis connection and outbound HTTP.
pub struct ApiContext<'a, R, H> {
    /// Settings.
    pub config: &'a ApiConfig,
    /// Opens the Redis connection; called at most once per request, and only
    /// by routes that need Redis.
    pub redis: &'a dyn Fn() -> Result<R, RedisError>,
    /// Outbound HTTP, for Blob Storage.
    pub http: &'a H,
}

/// What the request's log line records besides method, status and timing.
#[derive(Debug, Default)]
pub(crate) struct RequestLog {
    pub(crate) route: Option<&'static str>,
    pub(crate) tenant: Option<String>,
    /// Replicas that acknowledged a new job (`WAIT`), when waited for.
    pub(crate) replicas_acked: Option<u32>,
}

/// The route a request matches, if any: what [`ApiConfig::for_route`] needs.
pub fn route_of(req: &ApiRequest) -> Option<RouteId> {
    match routes::find(&req.method, &req.path) {
        Match::Found(id, _) => Some(*id),
        Match::NotFound | Match::MethodNotAllowed(_) => None,
    }
}

/// How many body bytes the component should read into `req.body` before
/// calling [`handle`]: `Some(max_body_bytes + 1)` (enough to see that a body
/// is too large) only for a route that takes a body, called with a credential
/// valid for that route, without a `Content-Length` over the limit. `None`
/// otherwise: the body stays unread, so an unauthenticated, unrouted or
/// body-less request never makes the instance buffer a body.
pub fn body_limit(config: &ApiConfig, req: &ApiRequest) -> Option<usize> {
    let Match::Found(id, _) = routes::find(&req.method, &req.path) else {
        return None;
    };
    let route = routes::route(*id);
    if !route.body {
        return None;
    }
    let token = req.header("authorization").and_then(bearer_token);
    let authenticated = match route.access {
        routes::Access::Open => true,
        routes::Access::Tenant => token.is_some_and(|t| config.credentials.tenant_for(t).is_some()),
        routes::Access::Admin => token.is_some_and(|t| config.credentials.is_admin(t)),
    };
    let limit = config.max_body_bytes;
    let declared = req
        .header("content-length")
        .and_then(|v| v.trim().parse::<u64>().ok());
    (authenticated && declared.is_none_or(|n| n <= limit as u64)).then_some(limit + 1)
}

/// Serve one request. Never fails: every error is a problem response.
pub async fn handle<R: Redis, H: Http>(req: ApiRequest, ctx: &ApiContext<'_, R, H>) -> ApiResponse {
    let started = Instant::now();
    let request_id = request_id::from_header(req.header("x-request-id"));
    let mut log = RequestLog::default();
    let result = match routes::find(&req.method, &req.path) {
        Match::NotFound => Err(Problem::not_found("no route matches this path")),
        Match::MethodNotAllowed(allow) => Err(Problem::method_not_allowed(&req.method, &allow)),
        Match::Found(id, path_id) => {
            let route = routes::route(*id);
            log.route = Some(route.template);
            handlers::dispatch(*id, path_id, &req, ctx, &mut log).await
        }
    };
    let logger = Logger::new("api", ctx.config.log_level);
    finish(&req, request_id, started, result, &log, &logger)
}

/// Serve one request when the API's variables are invalid: `/healthz` and the
/// OpenAPI document still answer `200`, `/readyz` `503`, any other route a
/// generic `500`; `error`
/// (which names the variable, never its value) is logged.
pub fn handle_unconfigured(req: ApiRequest, error: &dyn std::fmt::Display) -> ApiResponse {
    let started = Instant::now();
    let request_id = request_id::from_header(req.header("x-request-id"));
    let mut log = RequestLog::default();
    let cause = format!("configuration: {error}");
    let result = match routes::find(&req.method, &req.path) {
        Match::NotFound => Err(Problem::not_found("no route matches this path")),
        Match::MethodNotAllowed(allow) => Err(Problem::method_not_allowed(&req.method, &allow)),
        Match::Found(id, _) => {
            log.route = Some(routes::route(*id).template);
            match id {
                RouteId::Healthz => Ok(handlers::healthz()),
                RouteId::OpenApi => Ok(handlers::openapi()),
                RouteId::Readyz => Err(Problem::new(
                    503,
                    "not-configured",
                    "Service unavailable",
                    "the service is not configured",
                )
                .header("retry-after", "1")
                .cause(cause)),
                _ => Err(Problem::new(
                    500,
                    "not-configured",
                    "Internal server error",
                    "the service is not configured; quote the request id when reporting it",
                )
                .cause(cause)),
            }
        }
    };
    finish(
        &req,
        request_id,
        started,
        result,
        &log,
        &Logger::new("api", Level::Info),
    )
}

/// The fields of a request's log line. Headers and bodies are never logged,
/// so neither are API keys.
pub(crate) fn log_fields(
    req: &ApiRequest,
    log: &RequestLog,
    status: u16,
    duration: std::time::Duration,
    request_id: &str,
    cause: Option<&str>,
) -> Map<String, Value> {
    let mut fields = Map::new();
    fields.insert("method".into(), json!(req.method));
    fields.insert("route".into(), json!(log.route.unwrap_or("unmatched")));
    fields.insert("status".into(), json!(status));
    fields.insert("duration_ms".into(), json!(duration.as_millis() as u64));
    fields.insert("duration_us".into(), json!(duration.as_micros() as u64));
    fields.insert("request_id".into(), json!(request_id));
    if let Some(tenant) = &log.tenant {
        fields.insert("tenant".into(), json!(tenant));
    }
    if let Some(cause) = cause {
        fields.insert("error".into(), json!(cause));
    }
    if let Some(acked) = log.replicas_acked {
        fields.insert("replicas_acked".into(), json!(acked));
    }
    fields
}

fn finish(
    req: &ApiRequest,
    request_id: String,
    started: Instant,
    result: Result<ApiResponse, Problem>,
    log: &RequestLog,
    logger: &Logger,
) -> ApiResponse {
    let (response, cause) = match result {
        Ok(response) => (response, None),
        Err(mut problem) => {
            let cause = problem.take_cause();
            (problem.to_response(&req.path, &request_id), cause)
        }
    };
    if let Some(template) = log.route {
        if let Some(route) = routes::ROUTES
            .iter()
            .find(|r| r.template == template && r.method == req.method)
        {
            debug_assert!(
                route.statuses.contains(&response.status),
                "{} {} returned undocumented status {}",
                route.method,
                route.template,
                response.status
            );
        }
    }
    let fields = log_fields(
        req,
        log,
        response.status,
        started.elapsed(),
        &request_id,
        cause.as_deref(),
    );
    let level = if response.status >= 500 {
        Level::Error
    } else {
        Level::Info
    };
    // A liveness probe's success is not logged: a line every few seconds per
    // probe would drown the rest.
    let probe = log.route == Some(routes::route(RouteId::Healthz).template);
    if !(probe && response.status < 400) {
        logger.log(level, "request", fields);
    }
    response
        .with_header("x-request-id", request_id)
        .with_header("cache-control", "no-store")
}
