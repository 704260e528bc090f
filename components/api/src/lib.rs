//! The `api` component: every `/...` request goes to [`platform_core::api`].
//!
//! This crate only adapts: it reads the Spin variables, reads the request body
//! up to `max_body_bytes + 1` bytes, opens Redis lazily through the Spin SDK and
//! sends Blob Storage requests over Spin's outbound HTTP. It always returns a
//! response: errors become problem bodies in the core, never an `Err` that the
//! SDK would turn into a `500` carrying the error text.

use futures::StreamExt;
use platform_core::api::{self, ApiConfig, ApiContext, ApiRequest, ApiResponse};
use platform_core::ports::{
    Http, HttpError, HttpRequest, HttpResponse, Redis, RedisArg, RedisError, RedisValue,
};
use spin_sdk::http::{IncomingRequest, Method, Request, Response};
use spin_sdk::{redis, variables};

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
    let config = ApiConfig::from_lookup(|name| variables::get(name).ok());
    let limit = config
        .as_ref()
        .map(|c| c.max_body_bytes)
        .unwrap_or(api::DEFAULT_MAX_BODY_BYTES);
    let request = read_request(request, limit).await;
    let response = match &config {
        Ok(config) => {
            let address = variables::get("redis_address").ok();
            let open = || SpinRedis::open(address.as_deref());
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

/// Redis through Spin's outbound Redis (`fermyon:spin/redis@2.0.0`).
struct SpinRedis(redis::Connection);

impl SpinRedis {
    fn open(address: Option<&str>) -> Result<Self, RedisError> {
        let address =
            address.ok_or_else(|| RedisError::Unavailable("`redis_address` is not set".into()))?;
        // An unreachable address and one the allow-list blocks both come back
        // as `InvalidAddress` or `Other`: either way Redis is unavailable.
        redis::Connection::open(address)
            .map(SpinRedis)
            .map_err(|e| RedisError::Unavailable(describe(&e)))
    }
}

fn describe(error: &redis::Error) -> String {
    match error {
        redis::Error::InvalidAddress => "invalid or disallowed address".into(),
        redis::Error::TooManyConnections => "too many connections".into(),
        redis::Error::TypeError => "unexpected reply type".into(),
        redis::Error::Other(message) => message.clone(),
    }
}

/// Whether an `Other` error from `execute` is the server's reply to the
/// command (a script error, `NOSCRIPT`, a wrong type) rather than a lost
/// connection. Spin renders server errors through the `redis` crate, as
/// `An error was signalled by the server - <Kind>: <message>`, or with the
/// server's own `ERR`/`NOSCRIPT`/`WRONGTYPE` prefix.
fn is_command_error(message: &str) -> bool {
    let lower = message.to_ascii_lowercase();
    lower.contains("signalled by the server")
        || lower.contains("noscript")
        || lower.contains("no matching script")
        || [
            "err ",
            "wrongtype",
            "busy",
            "loading",
            "readonly",
            "execabort",
        ]
        .iter()
        .any(|prefix| lower.starts_with(prefix))
}

impl Redis for SpinRedis {
    fn execute(&self, command: &str, args: &[RedisArg]) -> Result<Vec<RedisValue>, RedisError> {
        let args: Vec<redis::RedisParameter> = args
            .iter()
            .map(|arg| match arg {
                RedisArg::Int(n) => redis::RedisParameter::Int64(*n),
                RedisArg::Bytes(b) => redis::RedisParameter::Binary(b.clone()),
            })
            .collect();
        match self.0.execute(command, &args) {
            Ok(values) => Ok(values
                .into_iter()
                .map(|value| match value {
                    redis::RedisResult::Nil => RedisValue::Nil,
                    redis::RedisResult::Status(s) => RedisValue::Status(s),
                    redis::RedisResult::Int64(n) => RedisValue::Int(n),
                    redis::RedisResult::Binary(b) => RedisValue::Bytes(b),
                })
                .collect()),
            Err(redis::Error::Other(message)) if is_command_error(&message) => {
                Err(RedisError::Command(message))
            }
            Err(redis::Error::TypeError) => {
                Err(RedisError::Command(describe(&redis::Error::TypeError)))
            }
            Err(error) => Err(RedisError::Unavailable(describe(&error))),
        }
    }
}

/// Outbound HTTP through Spin (`wasi:http/outgoing-handler`).
struct SpinHttp;

fn method(name: &str) -> Method {
    match name {
        "GET" => Method::Get,
        "HEAD" => Method::Head,
        "PUT" => Method::Put,
        "POST" => Method::Post,
        "DELETE" => Method::Delete,
        "PATCH" => Method::Patch,
        "OPTIONS" => Method::Options,
        other => Method::Other(other.to_string()),
    }
}

impl Http for SpinHttp {
    async fn send(&self, request: HttpRequest) -> Result<HttpResponse, HttpError> {
        let mut builder = Request::builder();
        builder.method(method(&request.method)).uri(request.url);
        for (name, value) in request.headers {
            builder.header(name, value);
        }
        let outgoing = builder.body(request.body).build();
        let response: Response = spin_sdk::http::send(outgoing)
            .await
            .map_err(|e| HttpError(e.to_string()))?;
        let headers = response
            .headers()
            .map(|(name, value)| {
                (
                    name.to_ascii_lowercase(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
            .collect();
        Ok(HttpResponse {
            status: *response.status(),
            headers,
            body: response.into_body(),
        })
    }
}
