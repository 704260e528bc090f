//! Parity: real Spin (`spin up`) and the local runtime answer the same
//! scripted requests alike. Every route, good and bad input, invalid header
//! bytes, unknown routes and methods; compared on status, body and the
//! headers clients rely on.
//!
//! Needs a Spin CLI (`SPIN_BIN`, else `spin` on `PATH`); `scripts/test-e2e.sh`
//! runs it whenever one is found. Prints the parity table it checked.

use std::time::Duration;

use e2e::*;
use serde_json::{json, Value};

/// `max_body_bytes` of both runtimes.
const BODY_LIMIT: usize = 64 * 1024;

/// One scripted request. `{job}` in the path stands for the job that the
/// runtime's own `submit` case created.
struct Case {
    name: &'static str,
    method: &'static str,
    path: &'static str,
    headers: Vec<(&'static str, Vec<u8>)>,
    body: Option<Vec<u8>>,
    /// The server answers before reading the whole body (see
    /// [`Client::request_early_reply`]).
    early_reply: bool,
}

fn case(name: &'static str, method: &'static str, path: &'static str) -> Case {
    Case {
        name,
        method,
        path,
        headers: Vec::new(),
        body: None,
        early_reply: false,
    }
}

impl Case {
    fn header(mut self, name: &'static str, value: impl AsRef<[u8]>) -> Self {
        self.headers.push((name, value.as_ref().to_vec()));
        self
    }

    fn tenant(self) -> Self {
        self.header("authorization", format!("Bearer {DEMO_KEY}"))
    }

    fn admin(self) -> Self {
        self.header("authorization", format!("Bearer {ADMIN_TOKEN}"))
    }

    fn json(self, body: impl AsRef<[u8]>) -> Self {
        let mut case = self.header("content-type", "application/json");
        case.body = Some(body.as_ref().to_vec());
        case
    }

    fn early_reply(mut self) -> Self {
        self.early_reply = true;
        self
    }
}

/// The script, in order: later cases see the state earlier ones left. The job
/// that `submit` creates has finished before the next case runs.
fn script() -> Vec<Case> {
    let text = json!({"type": "text-stats", "input": {"text": "to be or not to be"}}).to_string();
    let oversize = format!(
        r#"{{"type":"text-stats","input":{{"text":"{}"}}}}"#,
        // Far over the socket buffers: the runtime answers and closes long
        // before the client has written it all.
        "a".repeat(16 * BODY_LIMIT)
    );
    vec![
        case("liveness", "GET", "/healthz"),
        case("readiness", "GET", "/readyz"),
        case("openapi document", "GET", "/api/v1/openapi.json"),
        case("spin health", "GET", "/.well-known/spin/health"),
        case("spin app info", "GET", "/.well-known/spin/info"),
        case("spin unknown well-known", "GET", "/.well-known/spin/nope"),
        case("worker liveness", "GET", "/worker/healthz"),
        case("worker readiness", "GET", "/worker/readyz"),
        case("worker unknown route", "GET", "/worker/nope"),
        case("unknown route", "GET", "/nope"),
        case("unknown api route", "GET", "/api/v1/nope").tenant(),
        case("wrong method on jobs", "DELETE", "/api/v1/jobs").tenant(),
        case("wrong method on healthz", "POST", "/healthz"),
        case("HEAD on healthz", "HEAD", "/healthz"),
        case("submit without key", "POST", "/api/v1/jobs").json(&text),
        case("submit with a bad key", "POST", "/api/v1/jobs")
            .header("authorization", "Bearer not-a-key")
            .json(&text),
        case("submit", "POST", "/api/v1/jobs")
            .tenant()
            .header("idempotency-key", "parity-1")
            .json(&text),
        case("submit replayed", "POST", "/api/v1/jobs")
            .tenant()
            .header("idempotency-key", "parity-1")
            .json(&text),
        case("submit same key other body", "POST", "/api/v1/jobs")
            .tenant()
            .header("idempotency-key", "parity-1")
            .json(r#"{"type":"text-stats","input":{"text":"other"}}"#),
        case("submit malformed JSON", "POST", "/api/v1/jobs")
            .tenant()
            .json(r#"{"type": "text-stats", "input": "#),
        case("submit wrong types", "POST", "/api/v1/jobs")
            .tenant()
            .json(r#"{"type": 7, "input": []}"#),
        case("submit unknown type", "POST", "/api/v1/jobs")
            .tenant()
            .json(r#"{"type": "nope", "input": {}}"#),
        case("submit invalid input", "POST", "/api/v1/jobs")
            .tenant()
            .json(r#"{"type": "text-stats", "input": {"text": 5}}"#),
        case("submit bad thumbnail", "POST", "/api/v1/jobs")
            .tenant()
            .json(r#"{"type": "thumbnail", "input": {"image": "AAAA", "max_width": 8, "max_height": 8}}"#),
        case("submit not JSON", "POST", "/api/v1/jobs")
            .tenant()
            .header("content-type", "text/plain")
            .json(&text),
        case("submit oversize body", "POST", "/api/v1/jobs")
            .tenant()
            .json(&oversize)
            .early_reply(),
        case("invalid header bytes (x-request-id)", "POST", "/api/v1/jobs")
            .tenant()
            .header("x-request-id", b"r\xff\xfe")
            .json(&text),
        case("invalid header bytes (idempotency-key)", "POST", "/api/v1/jobs")
            .tenant()
            .header("idempotency-key", b"cl\xe9")
            .json(&text),
        case("invalid header bytes (unknown header)", "GET", "/healthz")
            .header("x-anything", b"\x80"),
        case("non-ASCII UTF-8 request id", "GET", "/healthz")
            .header("x-request-id", "r\u{e9}sum\u{e9}"),
        case("client request id", "GET", "/healthz").header("x-request-id", "parity-req-1"),
        case("job status", "GET", "/api/v1/jobs/{job}").tenant(),
        case("job of another tenant", "GET", "/api/v1/jobs/{job}")
            .header("authorization", format!("Bearer {ACME_KEY}")),
        case(
            "unknown job",
            "GET",
            "/api/v1/jobs/00000000-0000-4000-8000-000000000000",
        )
        .tenant(),
        case("malformed job id", "GET", "/api/v1/jobs/not-an-id").tenant(),
        case("result", "GET", "/api/v1/jobs/{job}/result").tenant(),
        case("dead letters", "GET", "/api/v1/admin/dead-letters").admin(),
        case(
            "dead letters bad query",
            "GET",
            "/api/v1/admin/dead-letters?limit=abc",
        )
        .admin(),
        case("dead letters with a tenant key", "GET", "/api/v1/admin/dead-letters").tenant(),
        case("sweep", "POST", "/api/v1/admin/sweep").admin(),
        case("backlog", "GET", "/api/v1/admin/backlog").admin(),
        case("backlog without the token", "GET", "/api/v1/admin/backlog"),
        case(
            "bulk redrive",
            "POST",
            "/api/v1/admin/dead-letters/redrive?limit=10",
        )
        .admin(),
        case(
            "bulk redrive bad limit",
            "POST",
            "/api/v1/admin/dead-letters/redrive?limit=none",
        )
        .admin(),
        case(
            "redrive unknown job",
            "POST",
            "/api/v1/admin/dead-letters/00000000-0000-4000-8000-000000000000/redrive",
        )
        .admin(),
        case(
            "redrive a succeeded job",
            "POST",
            "/api/v1/admin/dead-letters/{job}/redrive",
        )
        .admin(),
    ]
}

/// What the comparison looks at in one reply.
#[derive(Debug, PartialEq)]
struct Seen {
    status: u16,
    content_type: Option<String>,
    location: Option<String>,
    allow: Option<String>,
    retry_after: Option<String>,
    has_request_id: bool,
    body: Value,
}

/// Replace what legitimately differs between two runs (job ids, times,
/// generated request ids) with placeholders.
fn normalize(value: Value, job: &str) -> Value {
    const TIMES: &[&str] = &["created_at", "updated_at", "started_at", "finished_at"];
    match value {
        Value::String(s) => Value::String(s.replace(job, "{job}")),
        Value::Array(items) => Value::Array(items.into_iter().map(|v| normalize(v, job)).collect()),
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| {
                    let v = if TIMES.contains(&k.as_str()) && !v.is_null() {
                        json!("<time>")
                    } else if k == "request_id" && v.is_string() {
                        json!("<request id>")
                    } else {
                        normalize(v, job)
                    };
                    (k, v)
                })
                .collect(),
        ),
        other => other,
    }
}

fn seen(reply: &Reply, job: &str) -> Seen {
    let body = if reply.body.is_empty() {
        Value::Null
    } else if let Ok(json) = serde_json::from_slice::<Value>(&reply.body) {
        normalize(json, job)
    } else {
        json!({"bytes": reply.body.len(), "sha256": sha256_hex(&reply.body)})
    };
    Seen {
        status: reply.status,
        content_type: reply.header("content-type").map(str::to_string),
        location: reply.header("location").map(|l| l.replace(job, "{job}")),
        allow: reply.header("allow").map(str::to_string),
        retry_after: reply.header("retry-after").map(str::to_string),
        has_request_id: reply.header("x-request-id").is_some(),
        body,
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    use std::fmt::Write;
    sha2::Sha256::digest(bytes)
        .iter()
        .fold(String::new(), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// Runs the script against one stack; returns what each case saw.
fn run(stack: &Stack) -> Vec<Seen> {
    let client = stack.platform.client();
    let mut job = String::new();
    let mut out = Vec::new();
    for case in script() {
        let path = case.path.replace("{job}", &job);
        let headers: Vec<(&str, &[u8])> = case
            .headers
            .iter()
            .map(|(n, v)| (*n, v.as_slice()))
            .collect();
        let reply = if case.early_reply {
            let body = case.body.as_deref().unwrap_or_default();
            client.request_early_reply(case.method, &path, &headers, body)
        } else {
            client.request_bytes(case.method, &path, &headers, case.body.as_deref())
        };
        if case.name == "submit" {
            assert_eq!(
                reply.status,
                202,
                "submit: {}",
                String::from_utf8_lossy(&reply.body)
            );
            job = reply.json()["id"].as_str().expect("job id").to_string();
            // Let the job finish on this runtime before the next case, so
            // that every later case sees the same (final) state on both.
            let done = client.wait_final(DEMO_KEY, &job, Duration::from_secs(60));
            assert_eq!(done["status"], "succeeded", "job on this runtime: {done}");
        }
        out.push(seen(&reply, &job));
    }
    out
}

#[test]
fn spin_and_the_local_runtime_answer_alike() {
    let options = |runtime| {
        PlatformOptions::default()
            .on(runtime)
            .var("max_body_bytes", BODY_LIMIT.to_string())
    };
    let spin = Stack::start_with(options(Runtime::Spin));
    let local = Stack::start_with(options(Runtime::Local));
    let on_spin = run(&spin);
    let on_local = run(&local);

    let mut differences = Vec::new();
    println!("| case | spin | spin-local | same |");
    println!("|---|---:|---:|---|");
    for ((case, s), l) in script().iter().zip(&on_spin).zip(&on_local) {
        let same = s == l;
        println!(
            "| {} | {} | {} | {} |",
            case.name,
            s.status,
            l.status,
            if same { "yes" } else { "NO" }
        );
        if !same {
            differences.push(format!("{}:\n  spin:  {s:?}\n  local: {l:?}", case.name));
        }
    }
    assert!(
        differences.is_empty(),
        "the runtimes differ on {} case(s):\n{}",
        differences.len(),
        differences.join("\n")
    );
}
