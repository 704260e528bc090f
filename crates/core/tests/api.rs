//! The HTTP API against a real Redis and a real Azurite, through the native
//! ports: submit, status, results, idempotency, tenancy, admin routes, and
//! Redis or Blob Storage being unreachable.

#![cfg(feature = "native")]

mod common;

use platform_core::api::{self, ApiConfig, ApiContext, ApiRequest, ApiResponse};
use platform_core::log::{Level, Logger};
use platform_core::native::{block_on, NativeHttp, NativeRedis};
use platform_core::ports::{Redis, RedisValue};
use platform_core::worker;
use serde_json::{json, Value};

const DEMO: &str = "demo-key-0123456789";
const ACME: &str = "acme-key-0123456789";
const ADMIN: &str = "admin-token-0123456789";

struct Api {
    config: ApiConfig,
    /// The variables `config` was read from.
    vars: Vec<(&'static str, String)>,
    redis_url: String,
}

impl Api {
    /// An API on its own key prefix, channel and container.
    fn new(test: &str) -> Self {
        common::redis();
        let pipeline = common::pipeline_config(test);
        let blob = common::blob_config(test);
        let vars = vec![
            ("api_keys", format!("demo:{DEMO},acme:{ACME}")),
            ("admin_token", ADMIN.to_string()),
            ("max_body_bytes", "65536".to_string()),
            ("blob_endpoint", blob.endpoint.clone()),
            ("blob_account", blob.account.clone()),
            ("blob_container", blob.container.clone()),
            ("blob_auth", "shared-key".into()),
            ("blob_credential", common::AZURITE_KEY.into()),
            ("key_prefix", pipeline.key_prefix.clone()),
            ("channel", pipeline.channel.clone()),
            ("max_attempts", pipeline.max_attempts.to_string()),
            ("retry_backoff_ms", pipeline.retry_backoff_ms.to_string()),
            ("lease_ms", pipeline.lease_ms.to_string()),
            ("sweep_batch", pipeline.sweep_batch.to_string()),
            ("worker_concurrency", pipeline.concurrency.to_string()),
            (
                "job_retention_seconds",
                (pipeline.retention_ms / 1000).to_string(),
            ),
        ];
        let lookup = |name: &str| {
            vars.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.clone())
        };
        let config = ApiConfig::from_lookup(lookup).expect("test configuration is valid");
        assert_eq!(config.pipeline, pipeline);
        assert_eq!(config.blob, blob);
        Self {
            config,
            vars,
            redis_url: common::redis_url(),
        }
    }

    /// The same API with Redis at `url`.
    fn with_redis(mut self, url: &str) -> Self {
        self.redis_url = url.to_string();
        self
    }

    fn call(&self, req: ApiRequest) -> ApiResponse {
        self.call_with(req, &self.config)
    }

    /// As the `api` component serves it: with only the variables the
    /// request's route reads ([`ApiConfig::for_route`]).
    fn call_scoped(&self, req: ApiRequest) -> ApiResponse {
        let config = ApiConfig::for_route(api::route_of(&req), |name| {
            self.vars
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.clone())
        })
        .expect("test configuration is valid");
        self.call_with(req, &config)
    }

    fn call_with(&self, req: ApiRequest, config: &ApiConfig) -> ApiResponse {
        let open = || NativeRedis::new(&self.redis_url);
        let ctx: ApiContext<'_, NativeRedis, NativeHttp> = ApiContext {
            config,
            redis: &open,
            http: &NativeHttp::default(),
        };
        block_on(api::handle(req, &ctx))
    }

    fn keys(&self) -> Vec<String> {
        let pattern = format!("{{{}}}:*", self.config.pipeline.key_prefix);
        let reply = common::redis()
            .execute("KEYS", &[pattern.as_str().into()])
            .unwrap();
        reply
            .into_iter()
            .map(|v| match v {
                RedisValue::Bytes(b) => String::from_utf8(b).unwrap(),
                other => panic!("unexpected {other:?}"),
            })
            .collect()
    }

    /// Run the worker on one message, as the Redis trigger would.
    fn work(&self, message: &str) -> worker::WorkerReport {
        let redis = common::redis();
        block_on(worker::handle_message(
            message.as_bytes(),
            &self.config.pipeline,
            &self.config.blob,
            &redis,
            &NativeHttp::default(),
            &Logger::new("worker", Level::Error),
        ))
        .expect("worker ran")
    }
}

fn get(path: &str, token: Option<&str>) -> ApiRequest {
    let mut req = ApiRequest {
        method: "GET".into(),
        path: path.into(),
        ..ApiRequest::default()
    };
    if let Some(token) = token {
        req.headers
            .push(("authorization".into(), format!("Bearer {token}")));
    }
    req
}

fn post(path: &str, token: &str, body: &str) -> ApiRequest {
    let mut req = get(path, Some(token));
    req.method = "POST".into();
    if !body.is_empty() {
        req.headers
            .push(("content-type".into(), "application/json".into()));
        req.body = body.as_bytes().to_vec();
    }
    req
}

fn submit(key: &str, body: &str, idempotency_key: Option<&str>) -> ApiRequest {
    let mut req = post("/api/v1/jobs", key, body);
    if let Some(k) = idempotency_key {
        req.headers.push(("idempotency-key".into(), k.into()));
    }
    req
}

fn json_body(response: &ApiResponse) -> Value {
    serde_json::from_slice(&response.body).expect("JSON body")
}

fn problem_slug(response: &ApiResponse) -> String {
    assert_eq!(
        response.header("content-type"),
        Some("application/problem+json")
    );
    json_body(response)["type"]
        .as_str()
        .unwrap()
        .trim_start_matches(api::TYPE_PREFIX)
        .to_string()
}

const HELLO: &str = r#"{"type": "text-stats", "input": {"text": "hello hello world", "top_n": 2}}"#;

#[test]
fn submit_poll_and_fetch_the_result() {
    common::require_azurite();
    let api = Api::new("api-flow");

    let response = api.call(submit(DEMO, HELLO, None));
    assert_eq!(response.status, 202, "{:?}", json_body(&response));
    let job = json_body(&response);
    let id = job["id"].as_str().unwrap().to_string();
    assert_eq!(
        response.header("location"),
        Some(format!("/api/v1/jobs/{id}").as_str())
    );
    assert_eq!(job["type"], "text-stats");
    assert_eq!(job["status"], "queued");
    assert_eq!(job["attempts"], 0);
    assert_eq!(job["links"]["result"], format!("/api/v1/jobs/{id}/result"));
    assert!(job["created_at"].as_str().unwrap().ends_with('Z'));

    // Durably recorded before the 202.
    let status = api.call(get(&format!("/api/v1/jobs/{id}"), Some(DEMO)));
    assert_eq!(status.status, 200);
    assert_eq!(json_body(&status)["status"], "queued");

    // Not finished yet.
    let early = api.call(get(&format!("/api/v1/jobs/{id}/result"), Some(DEMO)));
    assert_eq!(early.status, 409);
    assert_eq!(problem_slug(&early), "job-not-finished");
    assert_eq!(json_body(&early)["job_status"], "queued");

    let report = api.work(&id);
    assert_eq!(report.succeeded, 1, "{report:?}");

    let done = json_body(&api.call(get(&format!("/api/v1/jobs/{id}"), Some(DEMO))));
    assert_eq!(done["status"], "succeeded");
    assert_eq!(done["attempts"], 1);
    assert!(done["finished_at"].is_string() && done["started_at"].is_string());
    assert_eq!(done["result"]["content_type"], "application/json");

    let result = api.call(get(&format!("/api/v1/jobs/{id}/result"), Some(DEMO)));
    assert_eq!(result.status, 200);
    assert_eq!(result.header("content-type"), Some("application/json"));
    let stats = json_body(&result);
    assert_eq!(stats["words"], 3);
    assert_eq!(stats["top_words"][0], json!({"word": "hello", "count": 2}));
    assert_eq!(done["result"]["bytes"], result.body.len());
}

#[test]
fn every_route_answers_alike_from_its_own_variables_and_from_all_of_them() {
    common::require_azurite();
    let api = Api::new("route-reads");
    let submitted = api.call_scoped(submit(DEMO, HELLO, None));
    assert_eq!(submitted.status, 202, "{:?}", json_body(&submitted));
    let id = json_body(&submitted)["id"].as_str().unwrap().to_string();
    assert_eq!(api.work(&id).succeeded, 1);

    let job = format!("/api/v1/jobs/{id}");
    let result = format!("/api/v1/jobs/{id}/result");
    let redrive = format!("/api/v1/admin/dead-letters/{id}/redrive");
    let too_large = "x".repeat(70_000);
    let requests = [
        get("/healthz", None),
        get("/readyz", None),
        get("/api/v1/openapi.json", None),
        get("/no/such/route", Some(DEMO)),
        get(&job, Some(DEMO)),
        get(&job, Some(ACME)),
        get(&job, Some(ADMIN)),
        get(&job, None),
        get(&result, Some(DEMO)),
        get(&result, Some(ACME)),
        submit(DEMO, "{not json", None),
        submit(DEMO, &too_large, None),
        submit(ADMIN, HELLO, None),
        get("/api/v1/admin/backlog", Some(ADMIN)),
        get("/api/v1/admin/backlog", Some(DEMO)),
        get("/api/v1/admin/dead-letters", Some(ADMIN)),
        post(&redrive, ADMIN, ""),
        post("/api/v1/admin/sweep", ADMIN, ""),
        post("/api/v1/admin/sweep", DEMO, ""),
    ];
    let mut statuses = Vec::new();
    for req in requests {
        let label = format!("{} {}", req.method, req.path);
        let mut req = req;
        req.headers
            .push(("x-request-id".into(), "route-reads-1".into()));
        let full = api.call(req.clone());
        let scoped = api.call_scoped(req);
        assert_eq!(
            (full.status, &full.headers, &full.body),
            (scoped.status, &scoped.headers, &scoped.body),
            "{label}: {}",
            String::from_utf8_lossy(&scoped.body)
        );
        statuses.push(scoped.status);
    }
    // The requests reach every kind of answer, not only errors.
    for status in [200, 400, 401, 404, 413] {
        assert!(statuses.contains(&status), "no {status} among {statuses:?}");
    }
}

#[test]
fn tenants_never_see_each_others_jobs() {
    let api = Api::new("api-tenancy");
    let created = api.call(submit(DEMO, HELLO, None));
    let id = json_body(&created)["id"].as_str().unwrap().to_string();
    for path in [
        format!("/api/v1/jobs/{id}"),
        format!("/api/v1/jobs/{id}/result"),
    ] {
        let other = api.call(get(&path, Some(ACME)));
        assert_eq!(other.status, 404, "{path}");
        let unknown = api.call(get(
            &path.replace(&id, "00000000-0000-4000-8000-000000000000"),
            Some(ACME),
        ));
        assert_eq!(unknown.status, 404);
        // Same body for "someone else's" and "does not exist", apart from the request id.
        let mut a = json_body(&other);
        let mut b = json_body(&unknown);
        for body in [&mut a, &mut b] {
            body.as_object_mut().unwrap().remove("request_id");
            body.as_object_mut().unwrap().remove("instance");
        }
        assert_eq!(a, b);
    }
}

#[test]
fn idempotency_key_replays_or_conflicts() {
    let api = Api::new("api-idem");
    let first = api.call(submit(DEMO, HELLO, Some("order-42")));
    assert_eq!(first.status, 202);
    let id = json_body(&first)["id"].clone();

    // Same key, same body with other member order and spacing: the original job.
    let same = r#"{ "input": {"top_n": 2, "text": "hello hello world"}, "type": "text-stats" }"#;
    let replay = api.call(submit(DEMO, same, Some("order-42")));
    assert_eq!(replay.status, 200);
    assert_eq!(replay.header("idempotent-replayed"), Some("true"));
    assert_eq!(json_body(&replay)["id"], id);
    assert_eq!(replay.header("location"), first.header("location"));

    // Same key, different body: 409, nothing new written.
    let keys_before = api.keys().len();
    let conflict = api.call(submit(
        DEMO,
        r#"{"type": "text-stats", "input": {"text": "other"}}"#,
        Some("order-42"),
    ));
    assert_eq!(conflict.status, 409);
    assert_eq!(problem_slug(&conflict), "idempotency-conflict");
    assert_eq!(json_body(&conflict)["job_id"], id);
    assert_eq!(api.keys().len(), keys_before);

    // Keys are per tenant: another tenant's identical key is a new job.
    let acme = api.call(submit(ACME, HELLO, Some("order-42")));
    assert_eq!(acme.status, 202);
    assert_ne!(json_body(&acme)["id"], id);

    // Without a key, every submission is a new job.
    let a = json_body(&api.call(submit(DEMO, HELLO, None)))["id"].clone();
    let b = json_body(&api.call(submit(DEMO, HELLO, None)))["id"].clone();
    assert_ne!(a, b);
}

#[test]
fn redis_unreachable_is_503_and_writes_nothing() {
    let api = Api::new("api-down").with_redis("redis://127.0.0.1:1");
    let response = api.call(submit(DEMO, HELLO, Some("k-1")));
    assert_eq!(response.status, 503);
    assert_eq!(response.header("retry-after"), Some("1"));
    assert_eq!(problem_slug(&response), "unavailable");
    let text = String::from_utf8(response.body.clone()).unwrap();
    assert!(!text.to_lowercase().contains("refused"), "{text}");
    // The real Redis holds nothing under this API's prefix.
    assert!(api.keys().is_empty());

    let ready = api.call(get("/readyz", None));
    assert_eq!(ready.status, 503);
    assert_eq!(ready.header("retry-after"), Some("1"));
    // Liveness does not depend on Redis.
    assert_eq!(api.call(get("/healthz", None)).status, 200);
}

#[test]
fn readyz_pings_redis() {
    let api = Api::new("api-ready");
    let ready = api.call(get("/readyz", None));
    assert_eq!(ready.status, 200);
    assert_eq!(json_body(&ready), json!({"status": "ready"}));
}

#[test]
fn failed_jobs_are_listed_and_redriven_by_the_operator() {
    let mut api = Api::new("api-admin");
    api.config.pipeline.max_attempts = 1;
    // Fail the job as a worker would: claim it, then fail it permanently.
    let created = json_body(&api.call(submit(DEMO, HELLO, None)));
    let id = created["id"].as_str().unwrap().to_string();
    let redis = common::redis();
    let claimed = platform_core::pipeline::claim(&redis, &api.config.pipeline, Some(&id)).unwrap();
    assert_eq!(claimed.len(), 1);
    platform_core::pipeline::fail(&redis, &api.config.pipeline, &claimed[0], "boom", false)
        .unwrap();

    let status = json_body(&api.call(get(&format!("/api/v1/jobs/{id}"), Some(DEMO))));
    assert_eq!(status["status"], "failed");
    assert_eq!(status["error"], "boom");

    let result = api.call(get(&format!("/api/v1/jobs/{id}/result"), Some(DEMO)));
    assert_eq!(result.status, 409);
    assert_eq!(problem_slug(&result), "job-failed");
    assert_eq!(json_body(&result)["job_error"], "boom");

    let mut list = get("/api/v1/admin/dead-letters", Some(ADMIN));
    list.query = "offset=0&limit=10".into();
    let page = api.call(list);
    assert_eq!(page.status, 200);
    let page = json_body(&page);
    assert_eq!(page["offset"], 0);
    assert_eq!(page["limit"], 10);
    assert_eq!(page["items"][0]["id"], id.as_str());
    assert_eq!(page["items"][0]["tenant"], "demo");

    // Tenants cannot use operator routes.
    let denied = api.call(post(
        &format!("/api/v1/admin/dead-letters/{id}/redrive"),
        DEMO,
        "",
    ));
    assert_eq!(denied.status, 401);

    let redriven = api.call(post(
        &format!("/api/v1/admin/dead-letters/{id}/redrive"),
        ADMIN,
        "",
    ));
    assert_eq!(redriven.status, 200);
    assert_eq!(json_body(&redriven)["status"], "queued");
    assert_eq!(json_body(&redriven)["attempts"], 0);

    let again = api.call(post(
        &format!("/api/v1/admin/dead-letters/{id}/redrive"),
        ADMIN,
        "",
    ));
    assert_eq!(again.status, 409);
    assert_eq!(problem_slug(&again), "job-not-failed");
    assert_eq!(json_body(&again)["job_status"], "queued");

    let unknown = api.call(post(
        "/api/v1/admin/dead-letters/00000000-0000-4000-8000-000000000000/redrive",
        ADMIN,
        "",
    ));
    assert_eq!(unknown.status, 404);
}

#[test]
fn sweep_republishes_due_jobs() {
    let api = Api::new("api-sweep");
    let mut subscriber = common::Subscriber::new(&api.config.pipeline.channel);
    let id = json_body(&api.call(submit(DEMO, HELLO, None)))["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(subscriber.next(1), vec![id.clone()]);

    let swept = api.call(post("/api/v1/admin/sweep", ADMIN, ""));
    assert_eq!(swept.status, 200);
    assert_eq!(json_body(&swept), json!({"published": 1}));
    assert_eq!(subscriber.next(1), vec![id]);
}

#[test]
fn backlog_counts_due_scheduled_and_dead_jobs() {
    let api = Api::new("api-backlog");
    let counts = |api: &Api| {
        let response = api.call(get("/api/v1/admin/backlog", Some(ADMIN)));
        assert_eq!(response.status, 200);
        assert_eq!(response.header("content-type"), Some("application/json"));
        json_body(&response)
    };
    assert_eq!(counts(&api), json!({"due": 0, "scheduled": 0, "dead": 0}));

    let mut ids = Vec::new();
    for _ in 0..3 {
        let response = api.call(submit(DEMO, HELLO, None));
        ids.push(json_body(&response)["id"].as_str().unwrap().to_string());
    }
    assert_eq!(counts(&api), json!({"due": 3, "scheduled": 3, "dead": 0}));

    // One job scheduled in the future (as a running job's lease or a retry's
    // backoff is) and one dead-lettered.
    let redis = common::redis();
    let prefix = format!("{{{}}}", api.config.pipeline.key_prefix);
    let due = format!("{prefix}:due");
    let later = "99999999999999";
    redis
        .execute(
            "ZADD",
            &[due.as_str().into(), later.into(), ids[0].as_str().into()],
        )
        .unwrap();
    redis
        .execute("ZREM", &[due.as_str().into(), ids[1].as_str().into()])
        .unwrap();
    redis
        .execute(
            "ZADD",
            &[
                format!("{prefix}:dead").into(),
                "1".into(),
                ids[1].as_str().into(),
            ],
        )
        .unwrap();
    assert_eq!(counts(&api), json!({"due": 1, "scheduled": 2, "dead": 1}));

    let tenant = api.call(get("/api/v1/admin/backlog", Some(DEMO)));
    assert_eq!(tenant.status, 401);
}

#[test]
fn a_succeeded_job_whose_result_is_gone_is_410() {
    common::require_azurite();
    let mut api = Api::new("api-blob-gone");
    let id = json_body(&api.call(submit(DEMO, HELLO, None)))["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(api.work(&id).succeeded, 1);
    // The results now live elsewhere: this job's blob is gone for good.
    api.config.blob.container = format!("{}-moved", api.config.blob.container);
    let response = api.call(get(&format!("/api/v1/jobs/{id}/result"), Some(DEMO)));
    assert_eq!(response.status, 410);
    assert_eq!(problem_slug(&response), "result-gone");
}

/// A Redis of this test's own, for states the shared one must not be put in.
struct OwnRedis {
    child: std::process::Child,
    url: String,
    dir: std::path::PathBuf,
}

impl OwnRedis {
    fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let bin = std::env::var("REDIS_SERVER_BIN").unwrap_or_else(|_| "redis-server".into());
        // Its own directory: a replica writes the primary's snapshot there.
        let dir = std::env::temp_dir().join(format!("api-redis-{}", common::unique()));
        std::fs::create_dir_all(&dir).unwrap();
        let child = std::process::Command::new(&bin)
            .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {bin}: {e}"));
        let url = format!("redis://127.0.0.1:{port}");
        let redis = NativeRedis::new(&url).unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while redis.execute("PING", &[]).is_err() {
            assert!(std::time::Instant::now() < deadline, "redis did not start");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Self { child, url, dir }
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn redis_out_of_memory_or_read_only_is_503_with_retry_after() {
    let own = OwnRedis::start();
    let redis = NativeRedis::new(&own.url).unwrap();
    let api = Api::new("api-oom").with_redis(&own.url);
    assert_eq!(api.call(submit(DEMO, HELLO, None)).status, 202);
    let assert_unavailable = |what: &str| {
        let response = api.call(submit(DEMO, HELLO, None));
        assert_eq!(
            response.status,
            503,
            "{what}: {}",
            String::from_utf8_lossy(&response.body)
        );
        assert_eq!(problem_slug(&response), "unavailable", "{what}");
        assert_eq!(response.header("retry-after"), Some("1"), "{what}");
    };
    // At maxmemory under noeviction, Redis refuses writes with OOM.
    redis
        .execute(
            "CONFIG",
            &["SET".into(), "maxmemory-policy".into(), "noeviction".into()],
        )
        .unwrap();
    redis
        .execute("CONFIG", &["SET".into(), "maxmemory".into(), "1".into()])
        .unwrap();
    assert_unavailable("OOM");
    redis
        .execute("CONFIG", &["SET".into(), "maxmemory".into(), "0".into()])
        .unwrap();
    // A replica (a primary demoted by a failover) refuses them with READONLY.
    redis
        .execute("REPLICAOF", &["127.0.0.1".into(), "1".into()])
        .unwrap();
    assert_unavailable("READONLY");
}

#[test]
fn result_store_unreachable_is_502() {
    common::require_azurite();
    let mut api = Api::new("api-blob-down");
    let id = json_body(&api.call(submit(DEMO, HELLO, None)))["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(api.work(&id).succeeded, 1);
    api.config.blob.endpoint = "http://127.0.0.1:1/devstoreaccount1".into();
    let response = api.call(get(&format!("/api/v1/jobs/{id}/result"), Some(DEMO)));
    assert_eq!(response.status, 502);
    assert_eq!(problem_slug(&response), "result-store");
    let text = String::from_utf8(response.body).unwrap();
    assert!(!text.contains("127.0.0.1"), "{text}");
}

#[test]
fn every_response_carries_a_request_id() {
    let api = Api::new("api-reqid");
    let mut req = submit(DEMO, HELLO, None);
    req.headers
        .push(("x-request-id".into(), "trace-abc.1".into()));
    let response = api.call(req);
    assert_eq!(response.header("x-request-id"), Some("trace-abc.1"));
}

fn text_submit(key: &str, text: &str) -> ApiRequest {
    submit(
        key,
        &json!({"type": "text-stats", "input": {"text": text}}).to_string(),
        None,
    )
}

#[test]
fn over_a_submit_limit_is_429_with_rate_limit_headers() {
    use platform_core::config::SubmitLimits;
    let mut api = Api::new("api-limits");
    // demo: 1 per second in bursts of 2; acme: at most 3 unfinished jobs.
    api.config.tenant_submit_limits = vec![
        ("demo".into(), SubmitLimits::parse("1/2/0").unwrap()),
        ("acme".into(), SubmitLimits::parse("0/0/3").unwrap()),
    ];
    for i in 0..2 {
        assert_eq!(api.call(text_submit(DEMO, &format!("d{i}"))).status, 202);
    }
    let limited = api.call(text_submit(DEMO, "d2"));
    assert_eq!(limited.status, 429);
    assert_eq!(problem_slug(&limited), "rate-limited");
    assert_eq!(limited.header("retry-after"), Some("1"));
    assert_eq!(limited.header("ratelimit-limit"), Some("2"));
    assert_eq!(limited.header("ratelimit-remaining"), Some("0"));
    assert!(limited.header("ratelimit-reset").is_some());
    // An idempotent replay is never limited.
    let first = api.call(submit(DEMO, HELLO, Some("k")));
    assert_eq!(first.status, 429, "still over the rate");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    assert_eq!(api.call(submit(DEMO, HELLO, Some("k"))).status, 202);
    assert_eq!(api.call(submit(DEMO, HELLO, Some("k"))).status, 200);

    let mut ids = Vec::new();
    for i in 0..3 {
        let response = api.call(text_submit(ACME, &format!("a{i}")));
        assert_eq!(response.status, 202);
        ids.push(json_body(&response)["id"].as_str().unwrap().to_string());
    }
    let capped = api.call(text_submit(ACME, "a3"));
    assert_eq!(capped.status, 429);
    assert_eq!(problem_slug(&capped), "too-many-queued");
    assert_eq!(capped.header("ratelimit-limit"), Some("3"));
    // Once they finish (the worker takes every due job), there is room again.
    assert_eq!(api.work(&ids[0]).succeeded, 6);
    for i in 3..6 {
        assert_eq!(api.call(text_submit(ACME, &format!("a{i}"))).status, 202);
    }
    assert_eq!(api.call(text_submit(ACME, "a6")).status, 429);
}

#[test]
fn a_flooding_tenant_delays_another_by_at_most_its_own_cap() {
    use platform_core::config::SubmitLimits;
    common::require_azurite();
    let mut api = Api::new("api-fair");
    api.config.submit_limits = SubmitLimits::parse("0/0/5").unwrap();
    api.config.pipeline.sweep_batch = 1;
    // demo floods: only its first 5 jobs get in.
    let accepted = (0..50)
        .filter(|i| api.call(text_submit(DEMO, &format!("flood {i}"))).status == 202)
        .count();
    assert_eq!(accepted, 5);
    let acme = api.call(text_submit(ACME, "mine"));
    assert_eq!(acme.status, 202);
    let acme_id = json_body(&acme)["id"].as_str().unwrap().to_string();
    // One worker takes the oldest due job at a time: acme's job runs after
    // at most demo's 5, however many demo tried to submit.
    let mut processed = 0;
    loop {
        let report = api.work("next");
        assert_eq!(report.claimed, 1, "a job was due");
        processed += 1;
        let status = json_body(&api.call(get(&format!("/api/v1/jobs/{acme_id}"), Some(ACME))))
            ["status"]
            .clone();
        if status == "succeeded" {
            break;
        }
        assert!(processed < 6, "acme's job waited behind {processed} jobs");
    }
    assert_eq!(processed, 6);
}

#[test]
fn the_operator_redrives_dead_letters_in_bulk() {
    let mut api = Api::new("api-redrive-all");
    api.config.pipeline.max_attempts = 1;
    let redis = common::redis();
    let mut ids = Vec::new();
    for i in 0..5 {
        let created = json_body(&api.call(text_submit(DEMO, &format!("bulk {i}"))));
        let id = created["id"].as_str().unwrap().to_string();
        let claimed = platform_core::pipeline::claim(&redis, &api.config.pipeline, Some(&id))
            .unwrap()
            .remove(0);
        platform_core::pipeline::fail(&redis, &api.config.pipeline, &claimed, "x", false).unwrap();
        ids.push(id);
    }
    let redrive = |limit: u32| {
        let mut req = post("/api/v1/admin/dead-letters/redrive", ADMIN, "");
        req.query = format!("limit={limit}");
        api.call(req)
    };
    assert_eq!(
        api.call(post("/api/v1/admin/dead-letters/redrive", DEMO, ""))
            .status,
        401
    );
    assert_eq!(redrive(0).status, 400);
    let first = redrive(3);
    assert_eq!(first.status, 200);
    assert_eq!(json_body(&first), json!({"redriven": 3}));
    assert_eq!(json_body(&redrive(100)), json!({"redriven": 2}));
    assert_eq!(json_body(&redrive(100)), json!({"redriven": 0}));
    for id in &ids {
        let job = json_body(&api.call(get(&format!("/api/v1/jobs/{id}"), Some(DEMO))));
        assert_eq!(
            (job["status"].as_str(), job["attempts"].as_u64()),
            (Some("queued"), Some(0))
        );
    }
}

fn info(redis: &NativeRedis, section: &str) -> String {
    match &redis.execute("INFO", &[section.into()]).unwrap()[0] {
        RedisValue::Bytes(b) => String::from_utf8_lossy(b).into_owned(),
        other => panic!("{other:?}"),
    }
}

#[test]
fn with_a_replica_a_submit_waits_for_its_acknowledgement_within_a_bound() {
    let primary = OwnRedis::start();
    let replica = OwnRedis::start();
    let p = NativeRedis::new(&primary.url).unwrap();
    let r = NativeRedis::new(&replica.url).unwrap();
    let port = primary.url.rsplit(':').next().unwrap().to_string();
    r.execute("REPLICAOF", &["127.0.0.1".into(), port.into()])
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !info(&r, "replication").contains("master_link_status:up") {
        assert!(
            std::time::Instant::now() < deadline,
            "the replica never synced"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }

    let mut api = Api::new("api-wait").with_redis(&primary.url);
    api.config.wait_replicas = 1;
    api.config.wait_timeout_ms = 200;
    let created = api.call(submit(DEMO, HELLO, None));
    assert_eq!(created.status, 202);
    assert!(
        info(&p, "commandstats").contains("cmdstat_wait:calls=1"),
        "the submit did not WAIT"
    );
    // Acknowledged: the replica has the job already.
    let id = json_body(&created)["id"].as_str().unwrap().to_string();
    let key = format!("{{{}}}:job:{id}", api.config.pipeline.key_prefix);
    assert_eq!(
        r.execute("EXISTS", &[key.into()]).unwrap(),
        vec![RedisValue::Int(1)]
    );

    // Asking for more replicas than there are: the wait is bounded.
    api.config.wait_replicas = 2;
    let started = std::time::Instant::now();
    assert_eq!(api.call(submit(DEMO, HELLO, None)).status, 202);
    let waited = started.elapsed();
    assert!(
        waited >= std::time::Duration::from_millis(200)
            && waited < std::time::Duration::from_secs(2),
        "{waited:?}"
    );
}
