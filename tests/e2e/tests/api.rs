//! The HTTP API end to end: every route and error status of the OpenAPI
//! document, authentication, tenant isolation, idempotency and input limits,
//! against the built `api` component on a runtime with real Redis and Azurite.

use std::time::Duration;

use e2e::Platform;
use e2e::{
    text_job, Azurite, PlatformOptions, RedisServer, Stack, ACME_KEY, ADMIN_TOKEN, DEMO_KEY,
};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(60);

/// The API alone (no worker), for tests that need jobs to stay queued.
fn api_only(options: PlatformOptions) -> (RedisServer, Azurite, Platform) {
    let redis = RedisServer::start();
    let azurite = Azurite::start();
    let mut options = options;
    options.components = vec!["api"];
    let platform = Platform::start(&redis, &azurite, options);
    (redis, azurite, platform)
}

#[test]
fn health_and_openapi_are_open() {
    let (_redis, _azurite, platform) = api_only(PlatformOptions::default());
    let client = platform.client();

    let healthz = client.request("GET", "/healthz", &[], None);
    assert_eq!(healthz.status, 200);
    let readyz = client.request("GET", "/readyz", &[], None);
    assert_eq!(
        readyz.status,
        200,
        "{}",
        String::from_utf8_lossy(&readyz.body)
    );

    let doc = client.request("GET", "/api/v1/openapi.json", &[], None);
    assert_eq!(doc.status, 200);
    assert!(doc
        .header("content-type")
        .unwrap_or_default()
        .starts_with("application/json"));
    let doc = doc.json();
    assert!(
        doc["openapi"]
            .as_str()
            .unwrap_or_default()
            .starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    for path in [
        "/api/v1/jobs",
        "/api/v1/jobs/{id}",
        "/api/v1/jobs/{id}/result",
        "/healthz",
        "/readyz",
    ] {
        assert!(
            doc["paths"].get(path).is_some(),
            "OpenAPI document lacks {path}"
        );
    }
}

#[test]
fn submit_poll_and_fetch_result() {
    let stack = Stack::start();
    let client = stack.platform.client();
    let text = "the quick brown fox jumps over the lazy dog\nthe dog sleeps";

    let reply = client.submit(DEMO_KEY, &text_job(text));
    assert_eq!(
        reply.status,
        202,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    let body = reply.json();
    let id = body["id"].as_str().expect("id").to_string();
    assert_eq!(
        reply.header("location"),
        Some(format!("/api/v1/jobs/{id}").as_str())
    );
    assert_eq!(body["status"], "queued");
    assert_eq!(body["type"], "text-stats");

    let job = client.wait_final(DEMO_KEY, &id, WAIT);
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(job["attempts"], 1, "{job}");

    let result = client.get(&format!("/api/v1/jobs/{id}/result"), DEMO_KEY);
    assert_eq!(result.status, 200);
    assert!(result
        .header("content-type")
        .unwrap_or_default()
        .starts_with("application/json"));

    let expected = platform_core::jobs::find("text-stats")
        .expect("text-stats registered")
        .run(&json!({"text": text}).to_string())
        .expect("text-stats runs");
    assert_eq!(
        result.body, expected.bytes,
        "result differs from the core crate's output"
    );

    let stats: Value = result.json();
    assert_eq!(stats["words"], 12);
    assert_eq!(stats["lines"], 2);
}

#[test]
fn authentication_and_tenant_isolation() {
    let (_redis, _azurite, platform) = api_only(PlatformOptions::default());
    let client = platform.client();

    let missing = client.request(
        "POST",
        "/api/v1/jobs",
        &[("content-type", "application/json")],
        Some(text_job("x").to_string().as_bytes()),
    );
    missing.assert_problem(401);
    assert!(missing
        .header("www-authenticate")
        .unwrap_or_default()
        .starts_with("Bearer"));

    client
        .submit("not-a-key", &text_job("x"))
        .assert_problem(401);
    client.submit("", &text_job("x")).assert_problem(401);

    let id = client.submit_ok(DEMO_KEY, &text_job("private to demo"));
    assert_eq!(
        client.get(&format!("/api/v1/jobs/{id}"), DEMO_KEY).status,
        200
    );
    // Another tenant cannot tell the job exists.
    let other = client.get(&format!("/api/v1/jobs/{id}"), ACME_KEY);
    other.assert_problem(404);
    client
        .get(&format!("/api/v1/jobs/{id}/result"), ACME_KEY)
        .assert_problem(404);
    // A tenant key is no operator token, and the other way round.
    client
        .request(
            "POST",
            "/api/v1/admin/sweep",
            &[("authorization", &format!("Bearer {DEMO_KEY}"))],
            None,
        )
        .assert_problem(401);
    let admin_as_tenant = client.get(&format!("/api/v1/jobs/{id}"), ADMIN_TOKEN);
    admin_as_tenant.assert_problem(401);
}

#[test]
fn idempotency_key_returns_the_original_job_or_conflicts() {
    let (redis, _azurite, platform) = api_only(PlatformOptions::default());
    let client = platform.client();
    let body = text_job("once only");

    let first = client.submit_with(DEMO_KEY, &body, &[("idempotency-key", "order-42")]);
    assert_eq!(first.status, 202);
    let id = first.json()["id"].as_str().unwrap().to_string();

    let again = client.submit_with(DEMO_KEY, &body, &[("idempotency-key", "order-42")]);
    assert!(
        matches!(again.status, 200 | 202),
        "replay status {}",
        again.status
    );
    assert_eq!(
        again.json()["id"],
        id.as_str(),
        "replay must return the original job"
    );

    let different = client.submit_with(
        DEMO_KEY,
        &text_job("something else"),
        &[("idempotency-key", "order-42")],
    );
    assert!(
        matches!(different.status, 409 | 422),
        "conflict status {}",
        different.status
    );
    different.assert_problem(different.status);

    // The same key from another tenant is another job.
    let acme = client.submit_with(ACME_KEY, &body, &[("idempotency-key", "order-42")]);
    assert_eq!(acme.status, 202);
    assert_ne!(acme.json()["id"], id.as_str());

    // Exactly two jobs exist in Redis: the replay created nothing.
    let mut conn = redis.client();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("{jobs}:job:*")
        .query(&mut conn)
        .unwrap();
    assert_eq!(keys.len(), 2, "{keys:?}");
}

#[test]
fn bad_input_gets_problem_responses() {
    let (_redis, _azurite, platform) =
        api_only(PlatformOptions::default().var("max_body_bytes", "2048"));
    let client = platform.client();
    let auth = format!("Bearer {DEMO_KEY}");

    // 413: over the configured body limit.
    let big = text_job(&"a".repeat(4096));
    client.submit(DEMO_KEY, &big).assert_problem(413);
    // Far over it (and over the socket buffers): answered with the 413
    // before the client has finished sending, the rest never read.
    let huge = text_job(&"a".repeat(4 * 1024 * 1024)).to_string();
    client
        .request_early_reply(
            "POST",
            "/api/v1/jobs",
            &[
                ("authorization", auth.as_bytes()),
                ("content-type", b"application/json"),
            ],
            huge.as_bytes(),
        )
        .assert_problem(413);

    // 415: not JSON.
    client
        .request(
            "POST",
            "/api/v1/jobs",
            &[("authorization", &auth), ("content-type", "text/plain")],
            Some(b"hello"),
        )
        .assert_problem(415);

    // 400: malformed JSON.
    client
        .request(
            "POST",
            "/api/v1/jobs",
            &[
                ("authorization", &auth),
                ("content-type", "application/json"),
            ],
            Some(b"{\"type\": "),
        )
        .assert_problem(400);

    // 422: unknown job type, and invalid input for a known one.
    let unknown = client
        .submit(DEMO_KEY, &json!({"type": "mine-bitcoin", "input": {}}))
        .assert_problem(422);
    assert!(
        unknown.to_string().contains("text-stats"),
        "lists the known types: {unknown}"
    );
    client
        .submit(
            DEMO_KEY,
            &json!({"type": "text-stats", "input": {"txet": "typo"}}),
        )
        .assert_problem(422);
    client
        .submit(
            DEMO_KEY,
            &json!({"type": "text-stats", "input": {"text": "x", "top_n": 0}}),
        )
        .assert_problem(422);
    client
        .submit(DEMO_KEY, &json!({"type": "thumbnail", "input": {"image": "bm90IGFuIGltYWdl", "max_width": 10, "max_height": 10}}))
        .assert_problem(422);

    // 404: unknown route and unknown job.
    client
        .get("/api/v1/nothing-here", DEMO_KEY)
        .assert_problem(404);
    client
        .get(
            "/api/v1/jobs/00000000-0000-4000-8000-000000000000",
            DEMO_KEY,
        )
        .assert_problem(404);

    // 405 with Allow.
    let wrong = client.request("DELETE", "/api/v1/jobs", &[("authorization", &auth)], None);
    wrong.assert_problem(405);
    let allow = wrong
        .header("allow")
        .unwrap_or_default()
        .to_ascii_uppercase();
    assert!(allow.contains("POST"), "Allow: {allow}");

    // Problem bodies never leak internals.
    let wrong_shape = client.submit(DEMO_KEY, &json!({"type": 7}));
    assert!(
        matches!(wrong_shape.status, 400 | 422),
        "status {}",
        wrong_shape.status
    );
    let problem = wrong_shape.assert_problem(wrong_shape.status).to_string();
    assert!(
        !problem.contains("panicked") && !problem.contains("src/"),
        "{problem}"
    );
}

#[test]
fn result_of_an_unfinished_job_is_a_conflict() {
    let (_redis, _azurite, platform) = api_only(PlatformOptions::default());
    let client = platform.client();
    let id = client.submit_ok(DEMO_KEY, &text_job("waiting for a worker"));
    let reply = client.get(&format!("/api/v1/jobs/{id}/result"), DEMO_KEY);
    reply.assert_problem(409);
    assert_eq!(client.job(DEMO_KEY, &id)["status"], "queued");
}

#[test]
fn request_ids_are_honoured_or_generated() {
    let (_redis, _azurite, platform) = api_only(PlatformOptions::default());
    let client = platform.client();

    let given = client.request(
        "GET",
        "/api/v1/openapi.json",
        &[("x-request-id", "trace-abc.123")],
        None,
    );
    assert_eq!(given.header("x-request-id"), Some("trace-abc.123"));

    let generated = client.request("GET", "/healthz", &[], None);
    let id = generated
        .header("x-request-id")
        .expect("generated request id");
    assert!(!id.is_empty());

    // An unsafe id is replaced, not echoed.
    let unsafe_id = client.request("GET", "/healthz", &[("x-request-id", "<script>")], None);
    assert_ne!(unsafe_id.header("x-request-id"), Some("<script>"));

    // One JSON log line per request, carrying the id.
    std::thread::sleep(Duration::from_millis(200));
    let logs = platform.all_logs();
    assert!(
        logs.lines().any(|l| l.contains("trace-abc.123") && serde_json::from_str::<Value>(l.trim()).is_ok()),
        "no JSON request log line with the request id:\n{logs}"
    );
    // A liveness probe's success is not logged: probes would drown the rest.
    assert!(
        !logs.contains(id),
        "a successful /healthz was logged:\n{logs}"
    );
}

#[test]
fn admin_routes_need_the_operator_token() {
    let (_redis, _azurite, platform) = api_only(PlatformOptions::default());
    let client = platform.client();

    client
        .request("POST", "/api/v1/admin/sweep", &[], None)
        .assert_problem(401);
    let sweep = client.sweep();
    assert_eq!(
        sweep.status,
        200,
        "{}",
        String::from_utf8_lossy(&sweep.body)
    );

    let dead = client.get("/api/v1/admin/dead-letters", ADMIN_TOKEN);
    assert_eq!(dead.status, 200);
    assert!(dead.json().is_object() || dead.json().is_array());

    let redrive = client
        .admin_post("/api/v1/admin/dead-letters/00000000-0000-4000-8000-000000000000/redrive");
    redrive.assert_problem(404);

    // A bad page size is a 400; only failed jobs can be re-driven (409).
    client
        .get("/api/v1/admin/dead-letters?limit=0", ADMIN_TOKEN)
        .assert_problem(400);
    let id = client.submit_ok(DEMO_KEY, &text_job("still queued"));
    client
        .admin_post(&format!("/api/v1/admin/dead-letters/{id}/redrive"))
        .assert_problem(409);
}

#[test]
fn invalid_configuration_answers_500_without_internals() {
    let (_redis, _azurite, platform) =
        api_only(PlatformOptions::default().var("max_body_bytes", "a lot"));
    let client = platform.client();

    // Liveness does not depend on configuration; readiness does.
    assert_eq!(client.request("GET", "/healthz", &[], None).status, 200);
    client
        .request("GET", "/readyz", &[], None)
        .assert_problem(503);

    // The route that reads the bad variable answers a generic 500.
    let problem = client
        .submit(DEMO_KEY, &text_job("x"))
        .assert_problem(500)
        .to_string();
    assert!(
        !problem.contains("max_body_bytes") && !problem.contains("a lot"),
        "the problem leaks configuration details: {problem}"
    );
    // Routes that do not read it keep answering: a request reads only its
    // route's variables.
    client
        .get(
            "/api/v1/jobs/00000000-0000-4000-8000-000000000000",
            DEMO_KEY,
        )
        .assert_problem(404);
    assert_eq!(
        client.get("/api/v1/admin/dead-letters", ADMIN_TOKEN).status,
        200
    );
}
