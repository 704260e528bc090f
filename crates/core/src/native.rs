//! Native implementations of the [`ports`](crate::ports), for integration
//! tests, the end-to-end suite and benchmarks (feature `native`).
//!
//! [`NativeRedis`] maps replies exactly as Spin 3.6's outbound Redis host
//! does (`crates/factor-outbound-redis/src/host.rs`, `impl FromRedisValue for
//! RedisResults`, since spinframework/spin#3261 moved to `redis` 0.32):
//! - nested arrays and sets are flattened, depth first, into one list;
//! - nil → `Nil`; `OK` → `Status("OK")`; other simple strings → `Status`;
//! - integers → `Int`; bulk strings → `Bytes`; booleans → `Int(0|1)`;
//!   doubles and big numbers → `Bytes` of their decimal text;
//! - maps, attributes, verbatim strings and pushes are errors.
//!
//! Errors: Spin reports every failure as `other(String)` with the `redis`
//! crate's rendering (`An error was signalled by the server - ...`); here
//! I/O failures become [`RedisError::Unavailable`] and the rest
//! [`RedisError::Command`] with the same rendering. The local runtime must
//! map replies the same way.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use crate::ports::{
    Http, HttpError, HttpRequest, HttpResponse, Redis, RedisArg, RedisError, RedisValue,
};

/// A blocking Redis connection (reconnects after an I/O error).
pub struct NativeRedis {
    client: redis::Client,
    connection: Mutex<Option<redis::Connection>>,
}

impl NativeRedis {
    /// A connection to `url` (`redis://host:port[/db]`), opened on first use.
    pub fn new(url: &str) -> Result<Self, RedisError> {
        let client = redis::Client::open(url)
            .map_err(|e| RedisError::Unavailable(format!("invalid Redis URL: {e}")))?;
        Ok(Self {
            client,
            connection: Mutex::new(None),
        })
    }
}

fn map_error(error: redis::RedisError) -> RedisError {
    if error.is_io_error()
        || error.is_connection_dropped()
        || error.is_connection_refusal()
        || error.is_timeout()
    {
        RedisError::Unavailable(error.to_string())
    } else {
        RedisError::Command(error.to_string())
    }
}

/// Flatten a reply as Spin's `RedisResults` does.
pub fn flatten(value: &redis::Value, out: &mut Vec<RedisValue>) -> Result<(), RedisError> {
    use redis::Value as V;
    match value {
        V::Nil => out.push(RedisValue::Nil),
        V::Int(n) => out.push(RedisValue::Int(*n)),
        V::BulkString(bytes) => out.push(RedisValue::Bytes(bytes.clone())),
        V::SimpleString(s) => out.push(RedisValue::Status(s.clone())),
        V::Okay => out.push(RedisValue::Status("OK".into())),
        V::Array(values) | V::Set(values) => {
            for v in values {
                flatten(v, out)?;
            }
        }
        V::Double(d) => out.push(RedisValue::Bytes(d.to_string().into_bytes())),
        V::Boolean(b) => out.push(RedisValue::Int(i64::from(*b))),
        V::ServerError(e) => return Err(RedisError::Command(format!("{e:?}"))),
        other => {
            return Err(RedisError::Command(format!(
                "unsupported Redis reply type: {other:?}"
            )))
        }
    }
    Ok(())
}

impl Redis for NativeRedis {
    fn execute(&self, command: &str, args: &[RedisArg]) -> Result<Vec<RedisValue>, RedisError> {
        let mut guard = self.connection.lock().unwrap_or_else(|e| e.into_inner());
        if guard.is_none() {
            let connection = self
                .client
                .get_connection_with_timeout(Duration::from_secs(5))
                .map_err(map_error)?;
            connection
                .set_read_timeout(Some(Duration::from_secs(30)))
                .map_err(map_error)?;
            *guard = Some(connection);
        }
        let connection = guard.as_mut().expect("connected above");
        let mut cmd = redis::cmd(command);
        for arg in args {
            match arg {
                RedisArg::Int(n) => cmd.arg(*n),
                RedisArg::Bytes(b) => cmd.arg(b.as_slice()),
            };
        }
        match cmd.query::<redis::Value>(connection) {
            Ok(value) => {
                let mut out = Vec::new();
                flatten(&value, &mut out)?;
                Ok(out)
            }
            Err(error) => {
                let error = map_error(error);
                if matches!(error, RedisError::Unavailable(_)) {
                    *guard = None;
                }
                Err(error)
            }
        }
    }
}

/// Counts the commands (round trips) sent through a [`Redis`].
pub struct CountingRedis<R> {
    inner: R,
    count: AtomicU64,
}

impl<R> CountingRedis<R> {
    /// Wrap `inner`.
    pub fn new(inner: R) -> Self {
        Self {
            inner,
            count: AtomicU64::new(0),
        }
    }

    /// Round trips so far.
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// Round trips so far, and start again from zero.
    pub fn take(&self) -> u64 {
        self.count.swap(0, Ordering::Relaxed)
    }

    /// The wrapped connection.
    pub fn inner(&self) -> &R {
        &self.inner
    }
}

impl<R: Redis> Redis for CountingRedis<R> {
    fn execute(&self, command: &str, args: &[RedisArg]) -> Result<Vec<RedisValue>, RedisError> {
        self.count.fetch_add(1, Ordering::Relaxed);
        self.inner.execute(command, args)
    }
}

/// Blocking outbound HTTP (plain `http://` only: enough for Azurite).
pub struct NativeHttp {
    agent: ureq::Agent,
}

impl Default for NativeHttp {
    fn default() -> Self {
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build();
        Self {
            agent: ureq::Agent::new_with_config(config),
        }
    }
}

impl NativeHttp {
    /// With the connect, first-byte and between-bytes timeouts that the
    /// components pass to Spin.
    pub fn with_timeouts(timeouts: crate::config::HttpTimeouts) -> Self {
        let ms = Duration::from_millis;
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(ms(timeouts.connect_ms)))
            .timeout_recv_response(Some(ms(timeouts.first_byte_ms)))
            .timeout_recv_body(Some(ms(timeouts.between_bytes_ms)))
            .timeout_global(Some(Duration::from_secs(60)))
            .build();
        Self {
            agent: ureq::Agent::new_with_config(config),
        }
    }
}

impl Http for NativeHttp {
    async fn send(&self, request: HttpRequest) -> Result<HttpResponse, HttpError> {
        let mut builder = ureq::http::Request::builder()
            .method(request.method.as_str())
            .uri(&request.url);
        for (name, value) in &request.headers {
            // ureq sets Content-Length from the body itself.
            if !name.eq_ignore_ascii_case("content-length") {
                builder = builder.header(name, value);
            }
        }
        let http_request = builder
            .body(request.body)
            .map_err(|e| HttpError(format!("invalid request: {e}")))?;
        let response = self
            .agent
            .run(http_request)
            .map_err(|e| HttpError(e.to_string()))?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_ascii_lowercase(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let body = response
            .into_body()
            .with_config()
            .limit(1 << 30)
            .read_to_vec()
            .map_err(|e| HttpError(format!("reading the response body: {e}")))?;
        Ok(HttpResponse {
            status,
            headers,
            body,
        })
    }
}

pub use crate::ports::block_on;

#[cfg(test)]
mod tests {
    use super::*;
    use redis::Value as V;

    #[test]
    fn replies_are_flattened_like_spin() {
        let reply = V::Array(vec![
            V::BulkString(b"a".to_vec()),
            V::Array(vec![V::Int(1), V::Nil, V::Array(vec![V::Okay])]),
            V::SimpleString("PONG".into()),
            V::Boolean(true),
            V::Double(1.5),
        ]);
        let mut out = Vec::new();
        flatten(&reply, &mut out).unwrap();
        assert_eq!(
            out,
            vec![
                RedisValue::Bytes(b"a".to_vec()),
                RedisValue::Int(1),
                RedisValue::Nil,
                RedisValue::Status("OK".into()),
                RedisValue::Status("PONG".into()),
                RedisValue::Int(1),
                RedisValue::Bytes(b"1.5".to_vec()),
            ]
        );
        assert!(flatten(&V::Map(vec![]), &mut Vec::new()).is_err());
    }

    #[test]
    fn counting_wrapper_counts_and_resets() {
        struct Echo;
        impl Redis for Echo {
            fn execute(&self, _: &str, _: &[RedisArg]) -> Result<Vec<RedisValue>, RedisError> {
                Ok(vec![RedisValue::Status("PONG".into())])
            }
        }
        let counting = CountingRedis::new(Echo);
        counting.execute("PING", &[]).unwrap();
        counting.execute("PING", &[]).unwrap();
        assert_eq!(counting.take(), 2);
        assert_eq!(counting.count(), 0);
    }

    #[test]
    fn unreachable_redis_is_unavailable() {
        let redis = NativeRedis::new("redis://127.0.0.1:1").unwrap();
        assert!(matches!(
            redis.execute("PING", &[]),
            Err(RedisError::Unavailable(_))
        ));
    }
}
