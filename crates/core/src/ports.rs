//! The ports through which the core talks to the outside world.
//!
//! They mirror what a Spin 3.x component can do, so that the components are
//! thin adapters: [`Redis`] is shaped like `fermyon:spin/redis@2.0.0`'s
//! `connection.execute` (flat results), [`Http`] like outbound `wasi:http`.
//! Native implementations for tests live behind the `native` feature.

/// A parameter of a Redis command, as Spin's `redis-parameter`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedisArg {
    /// A 64-bit integer.
    Int(i64),
    /// A binary-safe string.
    Bytes(Vec<u8>),
}

impl From<&str> for RedisArg {
    fn from(value: &str) -> Self {
        RedisArg::Bytes(value.as_bytes().to_vec())
    }
}

impl From<String> for RedisArg {
    fn from(value: String) -> Self {
        RedisArg::Bytes(value.into_bytes())
    }
}

impl From<i64> for RedisArg {
    fn from(value: i64) -> Self {
        RedisArg::Int(value)
    }
}

/// One value of a Redis reply, as Spin's `redis-result`.
///
/// Spin flattens nested arrays into one list, so scripts return flat arrays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedisValue {
    /// A nil reply.
    Nil,
    /// A status reply such as `OK`.
    Status(String),
    /// An integer reply.
    Int(i64),
    /// A bulk string reply.
    Bytes(Vec<u8>),
}

/// Why a Redis command failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RedisError {
    /// Redis could not be reached (connection refused, closed, timed out).
    #[error("redis unavailable: {0}")]
    Unavailable(String),
    /// Redis answered with an error.
    #[error("redis command failed: {0}")]
    Command(String),
}

impl RedisError {
    /// Whether the error is Redis' `NOSCRIPT` reply to an `EVALSHA` of an unknown script.
    ///
    /// Matched loosely: Spin passes the `redis` crate's rendering of the error
    /// (`An error was signalled by the server - NoScriptError: No matching
    /// script. Please use EVAL.`), not the raw `NOSCRIPT ...` line.
    pub fn is_noscript(&self) -> bool {
        match self {
            RedisError::Command(message) => {
                let message = message.to_ascii_lowercase();
                message.contains("noscript") || message.contains("no matching script")
            }
            RedisError::Unavailable(_) => false,
        }
    }
}

/// A Redis connection: one command, one round trip.
pub trait Redis {
    /// Execute one command and return its reply, flattened.
    fn execute(&self, command: &str, args: &[RedisArg]) -> Result<Vec<RedisValue>, RedisError>;
}

/// An outbound HTTP request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRequest {
    /// Upper-case method, e.g. `PUT`.
    pub method: String,
    /// Absolute URL.
    pub url: String,
    /// Header names and values, in order.
    pub headers: Vec<(String, String)>,
    /// Request body.
    pub body: Vec<u8>,
}

/// An HTTP response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// Header names (lower case) and values.
    pub headers: Vec<(String, String)>,
    /// Response body.
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The first value of a header, matched case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Why an outbound HTTP request got no response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("outbound http request failed: {0}")]
pub struct HttpError(pub String);

/// Outbound HTTP.
#[allow(async_fn_in_trait)]
pub trait Http {
    /// Send a request and read the whole response.
    async fn send(&self, request: HttpRequest) -> Result<HttpResponse, HttpError>;
}

/// Run a future to completion on this thread. The native ports and the test
/// fakes never return `Pending`, so this simply polls (yielding the thread if something does).
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    loop {
        if let std::task::Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
        std::thread::yield_now();
    }
}
