//! The core's ports ([`Redis`], [`Http`]) implemented with the Spin SDK, so
//! that each component only wires its trigger to the core.
//!
//! - [`SpinRedis`]: Spin's outbound Redis (`fermyon:spin/redis@2.0.0`), one
//!   connection opened on the first command.
//! - [`SpinHttp`]: Spin's outbound HTTP (`wasi:http/outgoing-handler`).
//! - [`variable`]: a Spin variable of the component, `None` when unset.

#![deny(missing_docs)]

use std::cell::RefCell;

use futures::SinkExt as _;
use platform_core::config::HttpTimeouts;
use platform_core::ports::{
    Http, HttpError, HttpRequest, HttpResponse, Redis, RedisArg, RedisError, RedisValue,
};
use spin_sdk::http::conversions::{TryFromIncomingResponse as _, TryIntoOutgoingRequest as _};
use spin_sdk::http::{Method, Request, Response};
use spin_sdk::wit::wasi::http0_2_0::outgoing_handler;
use spin_sdk::wit::wasi::http0_2_0::types::RequestOptions;
use spin_sdk::{redis, variables};

/// A Spin variable of this component (`[component.x.variables]`), `None` if unset.
pub fn variable(name: &str) -> Option<String> {
    variables::get(name).ok()
}

/// Redis through Spin's outbound Redis, opened on the first command, so
/// requests that never touch Redis never connect.
pub struct SpinRedis {
    address: Option<String>,
    connection: RefCell<Option<redis::Connection>>,
}

impl SpinRedis {
    /// A connection to `address` (`redis://...`), opened on first use; `None`
    /// makes every command fail as unavailable.
    pub fn lazy(address: Option<String>) -> Self {
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
        let mut connection = self.connection.borrow_mut();
        let connection = match &mut *connection {
            Some(connection) => connection,
            slot => {
                let address = self
                    .address
                    .as_deref()
                    .ok_or_else(|| RedisError::Unavailable("`redis_address` is not set".into()))?;
                // An unreachable address and one the allow-list blocks both
                // come back as `InvalidAddress` or `Other`: either way Redis
                // is unavailable.
                let opened = redis::Connection::open(address)
                    .map_err(|e| RedisError::Unavailable(describe(&e)))?;
                slot.insert(opened)
            }
        };
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

/// Outbound HTTP through Spin, with connect, first-byte and between-bytes
/// timeouts passed as wasi:http `request-options` (Spin 3.6 honours them;
/// without them it waits up to 600 s for each).
#[derive(Debug, Clone, Copy, Default)]
pub struct SpinHttp {
    timeouts: HttpTimeouts,
}

impl SpinHttp {
    /// Outbound HTTP with these timeouts.
    pub fn new(timeouts: HttpTimeouts) -> Self {
        Self { timeouts }
    }

    fn options(&self) -> Result<RequestOptions, HttpError> {
        let options = RequestOptions::new();
        let ns = |ms: u64| Some(ms.saturating_mul(1_000_000));
        options
            .set_connect_timeout(ns(self.timeouts.connect_ms))
            .and_then(|()| options.set_first_byte_timeout(ns(self.timeouts.first_byte_ms)))
            .and_then(|()| options.set_between_bytes_timeout(ns(self.timeouts.between_bytes_ms)))
            .map_err(|()| HttpError("the runtime refused the request timeouts".into()))?;
        Ok(options)
    }
}

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
        // What `spin_sdk::http::send` does, but with request options: the
        // SDK's `send` passes none.
        let (outgoing, body) = builder
            .body(request.body)
            .build()
            .try_into_outgoing_request()
            .map_err(|e| HttpError(format!("invalid request: {e}")))?;
        let mut sink = outgoing.take_body();
        let future = outgoing_handler::handle(outgoing, Some(self.options()?))
            .map_err(|e| HttpError(format!("{e:?}")))?;
        if let Some(body) = body {
            sink.send(body)
                .await
                .map_err(|e| HttpError(format!("sending the body: {e:?}")))?;
        }
        drop(sink);
        // Wait without blocking the instance: the SDK's executor polls this
        // pollable with every other pending one, so the worker's concurrent
        // jobs overlap their storage calls.
        let mut waiting: Option<spin_executor::CancelOnDropToken> = None;
        let incoming = std::future::poll_fn(|cx| match future.get() {
            Some(result) => std::task::Poll::Ready(result),
            None => {
                waiting = Some(
                    spin_executor::push_waker_and_get_token(future.subscribe(), cx.waker().clone())
                        .into(),
                );
                std::task::Poll::Pending
            }
        })
        .await;
        drop(waiting);
        let incoming = match incoming {
            Ok(Ok(response)) => response,
            Ok(Err(code)) => return Err(HttpError(format!("{code:?}"))),
            Err(()) => return Err(HttpError("the response was already taken".into())),
        };
        let response = Response::try_from_incoming_response(incoming)
            .await
            .map_err(|e| HttpError(format!("reading the response body: {e:?}")))?;
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

#[cfg(test)]
mod tests {
    use super::is_command_error;

    #[test]
    fn server_replies_are_command_errors_and_connection_failures_are_not() {
        assert!(is_command_error(
            "An error was signalled by the server - NoScriptError: No matching script"
        ));
        assert!(is_command_error("ERR Error running script"));
        assert!(is_command_error("WRONGTYPE Operation against a key"));
        assert!(!is_command_error("Connection refused (os error 111)"));
        assert!(!is_command_error("broken pipe"));
    }
}
