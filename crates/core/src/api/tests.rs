//! Handler tests that need no server: every path that answers before Redis
//! is touched, and Redis failures through a fake.

use std::cell::Cell;
use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use serde_json::{json, Value};

use super::*;
use crate::ports::{HttpError, HttpRequest, HttpResponse, RedisArg, RedisValue};

const DEMO_KEY: &str = "demo-key-0123456789";
const ACME_KEY: &str = "acme-key-0123456789";
const ADMIN: &str = "admin-token-0123456789";

pub(crate) fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
    }
}

fn config(max_body_bytes: usize) -> ApiConfig {
    let vars = [
        ("api_keys", format!("demo:{DEMO_KEY},acme:{ACME_KEY}")),
        ("admin_token", ADMIN.to_string()),
        ("max_body_bytes", max_body_bytes.to_string()),
        (
            "blob_endpoint",
            "http://127.0.0.1:1/devstoreaccount1".into(),
        ),
        ("blob_account", "devstoreaccount1".into()),
        ("blob_container", "results".into()),
        ("blob_auth", "shared-key".into()),
        ("blob_credential", "a2V5".into()),
    ];
    ApiConfig::from_lookup(|name| {
        vars.iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.clone())
    })
    .unwrap()
}

/// A Redis that fails every command the same way and counts opens and commands.
struct FailingRedis<'a> {
    error: RedisError,
    commands: &'a Cell<u32>,
}

impl Redis for FailingRedis<'_> {
    fn execute(&self, _: &str, _: &[RedisArg]) -> Result<Vec<RedisValue>, RedisError> {
        self.commands.set(self.commands.get() + 1);
        Err(self.error.clone())
    }
}

struct NoHttp;

impl Http for NoHttp {
    async fn send(&self, _: HttpRequest) -> Result<HttpResponse, HttpError> {
        Err(HttpError("no network in unit tests".into()))
    }
}

struct Outcome {
    response: ApiResponse,
    opens: u32,
    commands: u32,
}

impl Outcome {
    fn body(&self) -> Value {
        serde_json::from_slice(&self.response.body).unwrap()
    }

    fn problem(&self, status: u16, slug: &str) -> Value {
        assert_eq!(self.response.status, status, "{:?}", self.body());
        assert_eq!(self.response.header("content-type"), Some(PROBLEM_JSON));
        let body = self.body();
        assert_eq!(body["type"], format!("{TYPE_PREFIX}{slug}"), "{body}");
        assert_eq!(body["status"], status);
        assert!(body["title"].is_string() && body["detail"].is_string());
        assert_eq!(
            body["request_id"].as_str(),
            self.response.header("x-request-id")
        );
        body
    }
}

fn run_with(req: ApiRequest, config: &ApiConfig, error: RedisError) -> Outcome {
    let opens = Cell::new(0);
    let commands = Cell::new(0);
    let open = || {
        opens.set(opens.get() + 1);
        Ok(FailingRedis {
            error: error.clone(),
            commands: &commands,
        })
    };
    let ctx = ApiContext {
        config,
        redis: &open,
        http: &NoHttp,
    };
    let response = block_on(handle(req, &ctx));
    assert!(response.header("x-request-id").is_some());
    Outcome {
        response,
        opens: opens.get(),
        commands: commands.get(),
    }
}

fn run(req: ApiRequest) -> Outcome {
    run_with(
        req,
        &config(1024),
        RedisError::Unavailable("connection refused".into()),
    )
}

fn request(method: &str, path: &str) -> ApiRequest {
    ApiRequest {
        method: method.into(),
        path: path.into(),
        ..ApiRequest::default()
    }
}

fn authed(mut req: ApiRequest, token: &str) -> ApiRequest {
    req.headers
        .push(("Authorization".into(), format!("Bearer {token}")));
    req
}

fn submission(body: &str) -> ApiRequest {
    let mut req = authed(request("POST", "/api/v1/jobs"), DEMO_KEY);
    req.headers.push((
        "Content-Type".into(),
        "application/json; charset=utf-8".into(),
    ));
    req.body = body.as_bytes().to_vec();
    req
}

const UUID: &str = "0b6f4a52-3c1d-4e8f-9a7b-2c3d4e5f6a7b";

#[test]
fn healthz_and_openapi_touch_nothing() {
    let out = run(request("GET", "/healthz"));
    assert_eq!(out.response.status, 200);
    assert_eq!(out.body(), json!({"status": "ok"}));
    assert_eq!((out.opens, out.commands), (0, 0));

    let out = run(request("GET", "/api/v1/openapi.json"));
    assert_eq!(out.response.status, 200);
    assert_eq!(
        out.response.header("content-type"),
        Some("application/json")
    );
    assert!(out.body()["openapi"].as_str().unwrap().starts_with("3.1"));
    assert_eq!(out.opens, 0);
}

#[test]
fn readyz_is_503_with_retry_after_when_redis_is_down() {
    let out = run(request("GET", "/readyz"));
    let body = out.problem(503, "unavailable");
    assert_eq!(out.response.header("retry-after"), Some("1"));
    assert!(!body.to_string().contains("refused"));
    // A command error is not "ready" either.
    let out = run_with(
        request("GET", "/readyz"),
        &config(1024),
        RedisError::Command("LOADING".into()),
    );
    out.problem(503, "unavailable");
}

#[test]
fn unknown_routes_and_methods() {
    let out = run(request("GET", "/nope"));
    out.problem(404, "not-found");
    assert_eq!(out.opens, 0);
    let out = run(request("DELETE", "/api/v1/jobs"));
    out.problem(405, "method-not-allowed");
    assert_eq!(out.response.header("allow"), Some("POST"));
    let out = run(request("PUT", "/healthz"));
    assert_eq!(out.response.header("allow"), Some("GET"));
}

#[test]
fn tenant_routes_need_a_tenant_key() {
    for (token, challenge) in [
        (None, r#"Bearer realm="jobs-platform""#),
        (
            Some("wrong"),
            r#"Bearer realm="jobs-platform", error="invalid_token""#,
        ),
        (
            Some(ADMIN),
            r#"Bearer realm="jobs-platform", error="invalid_token""#,
        ),
    ] {
        for (method, path) in [
            ("POST", "/api/v1/jobs"),
            ("GET", &*format!("/api/v1/jobs/{UUID}")),
            ("GET", &*format!("/api/v1/jobs/{UUID}/result")),
        ] {
            let mut req = request(method, path);
            if let Some(token) = token {
                req = authed(req, token);
            }
            let out = run(req);
            out.problem(401, "unauthorized");
            assert_eq!(out.response.header("www-authenticate"), Some(challenge));
            assert_eq!(out.opens, 0, "{path}");
        }
    }
    let mut req = request("GET", &format!("/api/v1/jobs/{UUID}"));
    req.headers
        .push(("authorization".into(), format!("Basic {DEMO_KEY}")));
    run(req).problem(401, "unauthorized");
}

#[test]
fn admin_routes_need_the_admin_token() {
    for token in [None, Some(DEMO_KEY), Some("nope")] {
        for (method, path) in [
            ("GET", "/api/v1/admin/dead-letters"),
            ("POST", "/api/v1/admin/sweep"),
            ("GET", "/api/v1/admin/backlog"),
            (
                "POST",
                &*format!("/api/v1/admin/dead-letters/{UUID}/redrive"),
            ),
        ] {
            let mut req = request(method, path);
            if let Some(token) = token {
                req = authed(req, token);
            }
            let out = run(req);
            out.problem(401, "unauthorized");
            assert_eq!(out.opens, 0);
        }
    }
}

#[test]
fn redis_down_is_503_on_every_redis_route() {
    let cases = [
        submission(r#"{"type": "text-stats", "input": {"text": "hi"}}"#),
        authed(request("GET", &format!("/api/v1/jobs/{UUID}")), DEMO_KEY),
        authed(
            request("GET", &format!("/api/v1/jobs/{UUID}/result")),
            DEMO_KEY,
        ),
        authed(request("GET", "/api/v1/admin/dead-letters"), ADMIN),
        authed(request("POST", "/api/v1/admin/sweep"), ADMIN),
        authed(request("GET", "/api/v1/admin/backlog"), ADMIN),
        authed(
            request(
                "POST",
                &format!("/api/v1/admin/dead-letters/{UUID}/redrive"),
            ),
            ADMIN,
        ),
    ];
    for req in cases {
        let path = req.path.clone();
        let out = run(req);
        let body = out.problem(503, "unavailable");
        assert_eq!(out.response.header("retry-after"), Some("1"), "{path}");
        assert!(!body.to_string().contains("refused"));
    }
}

#[test]
fn redis_command_errors_are_generic_500s() {
    let out = run_with(
        submission(r#"{"type": "text-stats", "input": {"text": "hi"}}"#),
        &config(1024),
        RedisError::Command("ERR Error running script (call to f_abc): @user_script:12".into()),
    );
    let body = out.problem(500, "internal");
    assert!(!body.to_string().contains("script"), "{body}");
}

#[test]
fn job_ids_that_cannot_exist_are_404_without_redis() {
    for path in [
        "/api/v1/jobs/abc",
        "/api/v1/jobs/0B6F4A52-3C1D-4E8F-9A7B-2C3D4E5F6A7B/result",
    ] {
        let out = run(authed(request("GET", path), DEMO_KEY));
        out.problem(404, "not-found");
        assert_eq!(out.opens, 0);
    }
    let out = run(authed(
        request("POST", "/api/v1/admin/dead-letters/abc/redrive"),
        ADMIN,
    ));
    out.problem(404, "not-found");
}

#[test]
fn oversized_bodies_are_413_by_header_and_by_length() {
    let mut req = submission("{}");
    req.headers.push(("Content-Length".into(), "1025".into()));
    let body = run(req).problem(413, "payload-too-large");
    assert_eq!(body["max_body_bytes"], 1024);

    let big = format!(
        r#"{{"type": "text-stats", "input": {{"text": "{}"}}}}"#,
        "a".repeat(1024)
    );
    let out = run(submission(&big));
    out.problem(413, "payload-too-large");
    assert_eq!(out.opens, 0);
}

#[test]
fn content_type_must_be_json() {
    for content_type in [
        None,
        Some("text/plain"),
        Some("application/jsonx"),
        Some("application/problem+json"),
    ] {
        let mut req = submission(r#"{"type": "text-stats", "input": {"text": "hi"}}"#);
        req.headers.retain(|(n, _)| n != "Content-Type");
        if let Some(value) = content_type {
            req.headers.push(("content-type".into(), value.into()));
        }
        run(req).problem(415, "unsupported-media-type");
    }
    let mut req = submission(r#"{"type": "text-stats", "input": {"text": "hi"}}"#);
    req.headers.retain(|(n, _)| n != "Content-Type");
    req.headers
        .push(("content-type".into(), "Application/JSON".into()));
    // Accepted as JSON: reaches Redis, which is down here.
    run(req).problem(503, "unavailable");
}

#[test]
fn malformed_json_is_400() {
    for body in ["", "{", "{\"type\": }", "nul"] {
        let out = run(submission(body));
        out.problem(400, "malformed-json");
        assert_eq!(out.opens, 0);
    }
}

#[test]
fn invalid_idempotency_keys_are_400() {
    for key in [String::new(), "a b".into(), "é".into(), "k".repeat(256)] {
        let mut req = submission(r#"{"type": "text-stats", "input": {"text": "hi"}}"#);
        req.headers.push(("Idempotency-Key".into(), key));
        run(req).problem(400, "invalid-header");
    }
}

#[test]
fn bodies_that_are_not_jobs_are_422_with_pointers() {
    let cases: [(&str, &[&str]); 6] = [
        ("[]", &[""]),
        ("{}", &["/type", "/input"]),
        (r#"{"type": 1, "input": {}}"#, &["/type"]),
        (r#"{"type": "text-stats"}"#, &["/input"]),
        (
            r#"{"type": "text-stats", "input": {"text": "hi"}, "x/y": 1}"#,
            &["/x~1y"],
        ),
        (
            r#"{"type": "text-stats", "input": {"text": 5}}"#,
            &["/input/text"],
        ),
    ];
    for (body, pointers) in cases {
        let out = run(submission(body));
        let problem = out.problem(422, "invalid-input");
        let found: Vec<&str> = problem["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["pointer"].as_str().unwrap())
            .collect();
        assert_eq!(found, pointers, "{body}");
        assert_eq!(out.opens, 0);
    }
    let out = run(submission(
        r#"{"type": "thumbnail", "input": {"image": "aGk=", "max_width": 10, "max_height": 10}}"#,
    ));
    let problem = out.problem(422, "invalid-input");
    assert_eq!(problem["errors"][0]["pointer"], "/input/image");
}

#[test]
fn unknown_job_types_are_422_listing_the_known_ones() {
    let out = run(submission(r#"{"type": "nope", "input": {}}"#));
    let problem = out.problem(422, "unknown-job-type");
    assert_eq!(problem["known_types"], json!(["text-stats", "thumbnail"]));
    assert_eq!(problem["errors"][0]["pointer"], "/type");
}

#[test]
fn dead_letter_paging_is_validated() {
    for query in [
        "limit=0",
        "limit=101",
        "offset=-1",
        "offset=x",
        "limit=",
        "limit=+5",
        "offset=1000001",
    ] {
        let mut req = authed(request("GET", "/api/v1/admin/dead-letters"), ADMIN);
        req.query = query.into();
        let out = run(req);
        out.problem(400, "invalid-query");
        assert_eq!(out.opens, 0, "{query}");
    }
    assert_eq!(handlers::page("").unwrap(), (0, 20));
    assert_eq!(handlers::page("offset=5&limit=100&x=y").unwrap(), (5, 100));
}

#[test]
fn request_ids_are_honoured_or_generated() {
    let mut req = request("GET", "/healthz");
    req.headers
        .push(("X-Request-Id".into(), "abc-123.x_y".into()));
    assert_eq!(
        run(req).response.header("x-request-id"),
        Some("abc-123.x_y")
    );

    let mut req = request("GET", "/nope");
    req.headers.push(("X-Request-Id".into(), "bad id\n".into()));
    let out = run(req);
    let id = out.response.header("x-request-id").unwrap().to_string();
    assert_eq!(id.len(), 32);
    assert_eq!(out.body()["request_id"], id);
    assert_eq!(out.body()["instance"], "/nope");
}

#[test]
fn unconfigured_service_still_answers_health() {
    let error = ConfigError::Missing { name: "api_keys" };
    let response = handle_unconfigured(request("GET", "/healthz"), &error);
    assert_eq!(response.status, 200);
    let response = handle_unconfigured(request("GET", "/readyz"), &error);
    assert_eq!(response.status, 503);
    let response = handle_unconfigured(request("GET", "/api/v1/openapi.json"), &error);
    assert_eq!(response.status, 200);
    let response = handle_unconfigured(request("POST", "/api/v1/jobs"), &error);
    assert_eq!(response.status, 500);
    let body = String::from_utf8(response.body).unwrap();
    assert!(!body.contains("api_keys"), "{body}");
    assert!(response.headers.iter().any(|(n, _)| n == "x-request-id"));
}

#[test]
fn job_bodies_use_rfc3339_and_links() {
    use crate::pipeline::{JobRecord, JobStatus, ResultRef};
    let job = JobRecord {
        id: UUID.into(),
        tenant: "demo".into(),
        job_type: "text-stats".into(),
        status: JobStatus::Succeeded,
        attempts: 1,
        max_attempts: 5,
        created_at: 1_795_617_588_123,
        updated_at: 1_795_617_589_000,
        started_at: Some(1_795_617_588_500),
        finished_at: Some(1_795_617_589_000),
        error: None,
        result: Some(ResultRef {
            blob: format!("demo/{UUID}.json"),
            content_type: "application/json".into(),
            bytes: 42,
        }),
    };
    let body = handlers::job_json(&job, false);
    assert_eq!(
        body,
        json!({
            "id": UUID, "type": "text-stats", "status": "succeeded", "attempts": 1, "max_attempts": 5,
            "created_at": "2026-11-25T14:39:48.123Z", "updated_at": "2026-11-25T14:39:49.000Z",
            "started_at": "2026-11-25T14:39:48.500Z", "finished_at": "2026-11-25T14:39:49.000Z",
            "result": {"content_type": "application/json", "bytes": 42},
            "links": {"self": format!("/api/v1/jobs/{UUID}"), "result": format!("/api/v1/jobs/{UUID}/result")}
        })
    );
    assert_eq!(handlers::job_json(&job, true)["tenant"], "demo");
}

#[test]
fn log_lines_name_the_route_template_and_tenant_but_no_secrets() {
    let req = authed(request("GET", &format!("/api/v1/jobs/{UUID}")), DEMO_KEY);
    let log = RequestLog {
        route: Some("/api/v1/jobs/{id}"),
        tenant: Some("demo".into()),
        replicas_acked: None,
    };
    let fields = log_fields(
        &req,
        &log,
        503,
        std::time::Duration::from_micros(7_250),
        "req-1",
        Some("redis unavailable: refused"),
    );
    assert_eq!(
        Value::Object(fields.clone()),
        json!({
            "method": "GET", "route": "/api/v1/jobs/{id}", "status": 503, "duration_ms": 7, "duration_us": 7250,
            "request_id": "req-1", "tenant": "demo", "error": "redis unavailable: refused"
        })
    );
    let line = crate::log::Logger::new("api", crate::log::Level::Info).format(
        crate::log::Level::Error,
        "request",
        fields,
    );
    assert!(!line.contains(DEMO_KEY) && !line.contains('\n'));
    let unmatched = log_fields(
        &request("GET", "/x"),
        &RequestLog::default(),
        404,
        std::time::Duration::ZERO,
        "r",
        None,
    );
    assert_eq!(unmatched["route"], "unmatched");
    assert!(!unmatched.contains_key("tenant") && !unmatched.contains_key("error"));
}

#[test]
fn only_authenticated_requests_to_routes_with_a_body_have_it_read() {
    let cfg = config(1024);
    let submit = |token: Option<&str>| {
        let req = request("POST", "/api/v1/jobs");
        match token {
            Some(token) => authed(req, token),
            None => req,
        }
    };
    assert_eq!(body_limit(&cfg, &submit(Some(DEMO_KEY))), Some(1025));
    for req in [
        submit(None),
        submit(Some("not-a-key")),
        // The operator token is not a tenant key.
        submit(Some(ADMIN)),
        authed(request("POST", "/api/v1/nope"), DEMO_KEY),
        authed(request("PUT", "/api/v1/jobs"), DEMO_KEY),
        authed(request("POST", "/api/v1/admin/sweep"), ADMIN),
        authed(
            request(
                "POST",
                &format!("/api/v1/admin/dead-letters/{UUID}/redrive"),
            ),
            ADMIN,
        ),
        authed(request("GET", &format!("/api/v1/jobs/{UUID}")), DEMO_KEY),
    ] {
        assert_eq!(body_limit(&cfg, &req), None, "{} {}", req.method, req.path);
    }
    // A declared length over the limit: the core answers 413 from the header.
    let mut big = submit(Some(DEMO_KEY));
    big.headers.push(("Content-Length".into(), "1025".into()));
    assert_eq!(body_limit(&cfg, &big), None);
    let mut fits = submit(Some(DEMO_KEY));
    fits.headers.push(("Content-Length".into(), "1024".into()));
    assert_eq!(body_limit(&cfg, &fits), Some(1025));
}
