//! The `api` component: every `/...` request goes to [`platform_core::api`].
//!
//! This crate only adapts: it reads the Spin variables the route uses, reads the request body
//! (only when the core's `body_limit` asks for it, up to `max_body_bytes + 1`
//! bytes), opens Redis lazily through the Spin SDK and
//! sends Blob Storage requests over Spin's outbound HTTP. It always returns a
//! response: errors become problem bodies in the core, never an `Err` that the
//! SDK would turn into a `500` carrying the error text.

use futures::StreamExt;
use platform_core::api::{self, ApiConfig, ApiContext, ApiRequest, ApiResponse};
use spin_adapters::{variable, SpinHttp, SpinRedis};
use spin_sdk::http::{IncomingRequest, Response};

/// The export glue the SDK's macro generates is `unsafe`; it is allowed here only.
#[allow(unsafe_code)]
mod export {
    use spin_sdk::http::{IncomingRequest, Response};

    #[spin_sdk::http_component]
    async fn handle(request: IncomingRequest) -> Response {
        super::serve(request).await
    }
}

async fn serve(request: IncomingRequest) -> Response {
    let (mut head, body) = read_head(request);
    // Only the variables this route uses: each read is a host call that
    // costs Spin's variable provider a thread hand-off (see `api::Reads`).
    let config = ApiConfig::for_route(api::route_of(&head), variable);
    let response = match &config {
        Ok(config) => {
            // The core decides whether the body is read at all: only for a
            // route that takes one, after authentication.
            if let Some(limit) = api::body_limit(config, &head) {
                let declared = head
                    .header("content-length")
                    .and_then(|v| v.trim().parse::<usize>().ok());
                head.body = read_body(body, limit, declared).await;
            }
            let open = || Ok(SpinRedis::lazy(variable("redis_address")));
            let http = SpinHttp::new(config.http_timeouts);
            let ctx = ApiContext {
                config,
                redis: &open,
                http: &http,
            };
            api::handle(head, &ctx).await
        }
        // Misconfigured: no route takes a body.
        Err(error) => api::handle_unconfigured(head, error),
    };
    into_response(response)
}

/// The request line and headers, with an empty body, and the unread request.
fn read_head(request: IncomingRequest) -> (ApiRequest, IncomingRequest) {
    let method = request.method().to_string();
    let path_with_query = request.path_with_query().unwrap_or_else(|| "/".into());
    let (path, query) = match path_with_query.split_once('?') {
        Some((path, query)) => (path.to_string(), query.to_string()),
        None => (path_with_query, String::new()),
    };
    let headers: Vec<(String, String)> = request
        .headers()
        .entries()
        .into_iter()
        .map(|(name, value)| (name, String::from_utf8_lossy(&value).into_owned()))
        .collect();
    let head = ApiRequest {
        method,
        path,
        query,
        headers,
        body: Vec::new(),
    };
    (head, request)
}

/// Read at most `limit` body bytes: the core's limit plus one, enough for it
/// to see that a body is too large without buffering all of it. With a
/// `Content-Length` the buffer is allocated once at that size, so it never
/// holds two copies while growing.
async fn read_body(request: IncomingRequest, limit: usize, declared: Option<usize>) -> Vec<u8> {
    let mut body = Vec::with_capacity(declared.unwrap_or(0).min(limit));
    let mut stream = request.into_body_stream();
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(chunk) => {
                body.extend_from_slice(&chunk);
                if body.len() >= limit {
                    break;
                }
            }
            // A client that goes away mid-body: what arrived is judged as the body.
            Err(_) => break,
        }
    }
    body
}

fn into_response(response: ApiResponse) -> Response {
    let mut builder = Response::builder();
    builder.status(response.status);
    for (name, value) in response.headers {
        builder.header(name, value);
    }
    builder.body(response.body).build()
}
