//! The `api` component: every `/...` request goes to [`platform_core::api`].
//!
//! This crate only adapts: it reads the Spin variables, reads the request body
//! up to `max_body_bytes + 1` bytes, opens Redis lazily through the Spin SDK and
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
    let config = ApiConfig::from_lookup(variable);
    let limit = config
        .as_ref()
        .map(|c| c.max_body_bytes)
        .unwrap_or(api::DEFAULT_MAX_BODY_BYTES);
    let request = read_request(request, limit).await;
    let response = match &config {
        Ok(config) => {
            let open = || Ok(SpinRedis::lazy(variable("redis_address")));
            let ctx = ApiContext {
                config,
                redis: &open,
                http: &SpinHttp,
            };
            api::handle(request, &ctx).await
        }
        Err(error) => api::handle_unconfigured(request, error),
    };
    into_response(response)
}

/// Convert the SDK request, reading at most `limit + 1` body bytes: enough for
/// the core to see that a body is too large without buffering all of it.
async fn read_request(request: IncomingRequest, limit: usize) -> ApiRequest {
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
    let declared = headers
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, value)| value.trim().parse::<u64>().ok());
    let mut body = Vec::new();
    if declared.is_some_and(|n| n > limit as u64) {
        // The core answers 413 from the header alone: do not read the body.
        return ApiRequest {
            method,
            path,
            query,
            headers,
            body,
        };
    }
    let mut stream = request.into_body_stream();
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(chunk) => {
                body.extend_from_slice(&chunk);
                if body.len() > limit {
                    break;
                }
            }
            // A client that goes away mid-body: what arrived is judged as the body.
            Err(_) => break,
        }
    }
    ApiRequest {
        method,
        path,
        query,
        headers,
        body,
    }
}

fn into_response(response: ApiResponse) -> Response {
    let mut builder = Response::builder();
    builder.status(response.status);
    for (name, value) in response.headers {
        builder.header(name, value);
    }
    builder.body(response.body).build()
}
