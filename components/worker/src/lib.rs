//! The `worker` component: each message on the `jobs` channel goes to
//! [`platform_core::worker::handle_message`].
//!
//! This crate only adapts: it reads the Spin variables, implements the core's
//! [`Redis`] port with Spin's outbound Redis (opened on first use) and its
//! [`Http`] port with Spin's outbound HTTP. A returned error is only logged by
//! Spin (no retry), so everything is logged as JSON here first; jobs claimed
//! before a Redis failure are recovered by lease expiry and the sweep.

use std::cell::RefCell;

use anyhow::Context as _;
use platform_core::config::{BlobConfig, PipelineConfig};
use platform_core::log::{Level, Logger};
use platform_core::ports::{
    Http, HttpError, HttpRequest, HttpResponse, Redis, RedisArg, RedisError, RedisValue,
};
use platform_core::worker;
use serde_json::{json, Map};
use spin_sdk::http::{Method, Request, Response};
use spin_sdk::{redis, variables};

/// The export glue the SDK's macro generates is `unsafe`; it is allowed here only.
#[allow(unsafe_code)]
mod export {
    #[spin_sdk::redis_component]
    async fn on_message(message: Vec<u8>) -> anyhow::Result<()> {
        super::handle(&message).await
    }
}

fn lookup(name: &str) -> Option<String> {
    variables::get(name).ok()
}

async fn handle(message: &[u8]) -> anyhow::Result<()> {
    let level = lookup("log_level")
        .and_then(|l| l.parse().ok())
        .unwrap_or(Level::Info);
    let log = Logger::new("worker", level);
    let configs = PipelineConfig::from_lookup(lookup)
        .and_then(|pipeline| BlobConfig::from_lookup(lookup).map(|blob| (pipeline, blob)));
    let (pipeline, blob) = match configs {
        Ok(configs) => configs,
        Err(error) => {
            log.log(
                Level::Error,
                "invalid configuration",
                fields([("error", json!(error.to_string()))]),
            );
            return Err(error).context("invalid worker configuration");
        }
    };
    let redis = LazyRedis::new(lookup("redis_address"));
    match worker::handle_message(message, &pipeline, &blob, &redis, &SpinHttp, &log).await {
        Ok(report) => {
            log.log(
                Level::Debug,
                "message handled",
                fields([
                    ("claimed", json!(report.claimed)),
                    ("succeeded", json!(report.succeeded)),
                    ("retrying", json!(report.retrying)),
                    ("failed", json!(report.failed)),
                    ("fenced", json!(report.fenced)),
                ]),
            );
            Ok(())
        }
        Err(error) => {
            log.log(
                Level::Error,
                "message not handled: job store failed",
                fields([("error", json!(error.to_string()))]),
            );
            Err(error).context("failed to handle a jobs message")
        }
    }
}

fn fields<const N: usize>(pairs: [(&str, serde_json::Value); N]) -> Map<String, serde_json::Value> {
    pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

/// Redis through Spin's outbound Redis (`fermyon:spin/redis@2.0.0`), opened
/// on the first command.
struct LazyRedis {
    address: Option<String>,
    connection: RefCell<Option<redis::Connection>>,
}

impl LazyRedis {
    fn new(address: Option<String>) -> Self {
        Self {
            address,
            connection: RefCell::new(None),
        }
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

/// Whether an `Other` error from `execute` is the server's answer to the
/// command (a script error, `NOSCRIPT`) rather than a lost connection. Spin
/// renders server errors through the `redis` crate, as `An error was signalled
/// by the server - <Kind>: <message>`, or with the server's own prefix.
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
        .any(|p| lower.starts_with(p))
}

impl Redis for LazyRedis {
    fn execute(&self, command: &str, args: &[RedisArg]) -> Result<Vec<RedisValue>, RedisError> {
        let mut connection = self.connection.borrow_mut();
        if connection.is_none() {
            let address = self
                .address
                .as_deref()
                .ok_or_else(|| RedisError::Unavailable("`redis_address` is not set".into()))?;
            // An unreachable address and one the allow-list blocks both come
            // back as `InvalidAddress` or `Other`: either way Redis is unavailable.
            let opened = redis::Connection::open(address)
                .map_err(|e| RedisError::Unavailable(describe(&e)))?;
            *connection = Some(opened);
        }
        let connection = connection.as_ref().expect("opened above");
        let args: Vec<redis::RedisParameter> = args
            .iter()
            .map(|arg| match arg {
                RedisArg::Int(n) => redis::RedisParameter::Int64(*n),
                RedisArg::Bytes(b) => redis::RedisParameter::Binary(b.clone()),
            })
            .collect();
        match connection.execute(command, &args) {
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
