//! The `worker-health` component: HTTP probes deployed beside the worker,
//! whose Redis trigger SpinKube cannot probe.
//!
//! - `GET /worker/healthz`: `200 {"status":"ok"}` while the process runs.
//! - `GET /worker/readyz`: Redis `PING`; `200 {"status":"ready"}`, or `503`
//!   with an `application/problem+json` body and `Retry-After: 1`.
//!
//! Anything else under `/worker/` is a `404` or `405` problem.

use spin_sdk::http::{IncomingRequest, Method, Response};
use spin_sdk::{redis, variables};

/// The export glue the SDK's macro generates is `unsafe`; it is allowed here only.
#[allow(unsafe_code)]
mod export {
    use spin_sdk::http::{IncomingRequest, Response};

    #[spin_sdk::http_component]
    fn handle(request: IncomingRequest) -> Response {
        super::serve(&request)
    }
}

fn serve(request: &IncomingRequest) -> Response {
    let path_with_query = request.path_with_query().unwrap_or_default();
    let path = path_with_query.split('?').next().unwrap_or_default();
    let is_get = matches!(request.method(), Method::Get);
    match (path, is_get) {
        ("/worker/healthz", true) => json(200, r#"{"status":"ok"}"#),
        ("/worker/readyz", true) => match ping() {
            Ok(()) => json(200, r#"{"status":"ready"}"#),
            Err(cause) => {
                // The cause goes to the log only.
                println!(
                    r#"{{"level":"error","component":"worker-health","msg":"redis not ready","error":{}}}"#,
                    quote(&cause)
                );
                problem(
                    path,
                    503,
                    "unavailable",
                    "Service unavailable",
                    "the job store is unreachable",
                )
                .into_builder()
                .header("retry-after", "1")
                .build()
            }
        },
        ("/worker/healthz" | "/worker/readyz", false) => problem(
            path,
            405,
            "method-not-allowed",
            "Method not allowed",
            "only GET is allowed",
        )
        .into_builder()
        .header("allow", "GET")
        .build(),
        _ => problem(
            path,
            404,
            "not-found",
            "Not found",
            "no route matches this path",
        ),
    }
}

fn ping() -> Result<(), String> {
    let address = variables::get("redis_address").map_err(|e| format!("redis_address: {e}"))?;
    let connection = redis::Connection::open(&address).map_err(|e| format!("open: {e}"))?;
    connection
        .execute("PING", &[])
        .map(|_| ())
        .map_err(|e| format!("PING: {e}"))
}

fn json(status: u16, body: &str) -> Response {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .header("cache-control", "no-store")
        .body(body.to_string())
        .build()
}

fn problem(path: &str, status: u16, slug: &str, title: &str, detail: &str) -> Response {
    let body = format!(
        r#"{{"type":"urn:jobs-platform:problem:{slug}","title":{},"status":{status},"detail":{},"instance":{}}}"#,
        quote(title),
        quote(detail),
        quote(path)
    );
    Response::builder()
        .status(status)
        .header("content-type", "application/problem+json")
        .header("cache-control", "no-store")
        .body(body)
        .build()
}

/// A JSON string literal (escapes quotes, backslashes and control characters).
fn quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
