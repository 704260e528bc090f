//! Shared helpers for the integration tests: a real Redis (`REDIS_URL`,
//! default `redis://127.0.0.1:6379`) and a real Azurite
//! (`AZURITE_BLOB_ENDPOINT`, default `http://127.0.0.1:10000/devstoreaccount1`).
//! Each test uses its own key prefix, channel and container, so tests run in
//! parallel on one server. An unreachable server fails the test.

#![allow(dead_code)]

use std::time::Duration;

use base64::Engine as _;
use platform_core::config::{BlobAuth, BlobConfig, PipelineConfig};
use platform_core::native::NativeRedis;
use platform_core::pipeline::{self, NewJob};
use platform_core::ports::{Redis, RedisArg, RedisValue};

pub const AZURITE_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

pub fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// A connection to the test Redis; panics with instructions if it is down.
pub fn redis() -> NativeRedis {
    let url = redis_url();
    let redis = NativeRedis::new(&url).expect("REDIS_URL is a valid URL");
    if let Err(e) = redis.execute("PING", &[]) {
        panic!(
            "Redis is not reachable at {url} ({e}). Start one with \
             `redis-server --port 6379 --save '' --appendonly no --daemonize yes` or set REDIS_URL."
        );
    }
    redis
}

/// A unique suffix for keys, channels and containers.
pub fn unique() -> String {
    pipeline::new_job_id().unwrap()[..8].to_string()
}

/// A pipeline config with its own key prefix and channel.
pub fn pipeline_config(test: &str) -> PipelineConfig {
    let prefix = format!("test-{test}-{}", unique());
    PipelineConfig {
        key_prefix: prefix.clone(),
        channel: prefix,
        max_attempts: 3,
        retry_backoff_ms: 100,
        lease_ms: 30_000,
        sweep_batch: 16,
        retention_ms: 3_600_000,
        concurrency: 4,
    }
}

pub fn azurite_endpoint() -> String {
    std::env::var("AZURITE_BLOB_ENDPOINT")
        .unwrap_or_else(|_| "http://127.0.0.1:10000/devstoreaccount1".into())
}

/// A Blob config for Azurite with a fresh container name (not created yet).
pub fn blob_config(test: &str) -> BlobConfig {
    BlobConfig {
        endpoint: azurite_endpoint(),
        account: "devstoreaccount1".into(),
        container: format!("t-{test}-{}", unique()),
        auth: BlobAuth::SharedKey {
            key: base64::engine::general_purpose::STANDARD
                .decode(AZURITE_KEY)
                .unwrap(),
        },
    }
}

/// Fail clearly if Azurite does not answer.
pub fn require_azurite() {
    let endpoint = azurite_endpoint();
    let authority = endpoint
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap()
        .to_string();
    let addr = std::net::ToSocketAddrs::to_socket_addrs(&authority)
        .ok()
        .and_then(|mut a| a.next());
    let reachable = addr.is_some_and(|addr| {
        std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_ok()
    });
    assert!(
        reachable,
        "Azurite is not reachable at {endpoint}. Start it with `npx --prefix /tmp/azurite azurite-blob \
         --blobHost 127.0.0.1 --blobPort 10000 --location /tmp/azurite-data --skipApiVersionCheck \
         --disableTelemetry --silent &` or set AZURITE_BLOB_ENDPOINT."
    );
}

pub fn text_job(tenant: &str, text: &str, idempotency_key: Option<&str>) -> NewJob {
    let input = serde_json::json!({ "text": text }).to_string();
    NewJob {
        tenant: tenant.into(),
        job_type: "text-stats".into(),
        request_hash: format!("hash-of-{input}"),
        input_json: input,
        idempotency_key: idempotency_key.map(Into::into),
    }
}

/// A subscriber to `channel`, ready when returned.
pub struct Subscriber {
    connection: redis::Connection,
}

impl Subscriber {
    pub fn new(channel: &str) -> Self {
        let client = redis::Client::open(redis_url()).unwrap();
        let mut connection = client
            .get_connection()
            .expect("subscriber connects to Redis");
        connection
            .set_read_timeout(Some(Duration::from_secs(3)))
            .unwrap();
        redis::cmd("SUBSCRIBE")
            .arg(channel)
            .exec(&mut connection)
            .unwrap();
        Self { connection }
    }

    /// The next `n` message payloads (panics after a 3 s silence).
    pub fn next(&mut self, n: usize) -> Vec<String> {
        (0..n)
            .map(|_| {
                // RESP2 push: ["message", channel, payload].
                let reply = self
                    .connection
                    .recv_response()
                    .expect("a message was published");
                match reply {
                    redis::Value::Array(parts) if parts.len() == 3 => match &parts[2] {
                        redis::Value::BulkString(payload) => {
                            String::from_utf8(payload.clone()).unwrap()
                        }
                        other => panic!("unexpected payload {other:?}"),
                    },
                    other => panic!("unexpected pub/sub reply {other:?}"),
                }
            })
            .collect()
    }

    /// Publish `sentinel` on `channel` and check it is the next message:
    /// nothing else was published in between.
    pub fn nothing_else(&mut self, channel: &str) -> bool {
        let sentinel = format!("sentinel-{}", unique());
        redis()
            .execute("PUBLISH", &[channel.into(), sentinel.as_str().into()])
            .unwrap();
        self.next(1) == vec![sentinel]
    }
}

/// The score of `id` in the due set, if any.
pub fn due_score(redis: &impl Redis, cfg: &PipelineConfig, id: &str) -> Option<i64> {
    let reply = redis
        .execute(
            "ZSCORE",
            &[
                RedisArg::from(format!("{{{}}}:due", cfg.key_prefix)),
                RedisArg::from(id),
            ],
        )
        .unwrap();
    match reply.first() {
        Some(RedisValue::Bytes(b)) => {
            Some(String::from_utf8_lossy(b).parse::<f64>().unwrap() as i64)
        }
        _ => None,
    }
}

/// Redis server time in ms.
pub fn redis_now(redis: &impl Redis) -> i64 {
    let reply = redis.execute("TIME", &[]).unwrap();
    let part = |v: &RedisValue| match v {
        RedisValue::Bytes(b) => String::from_utf8_lossy(b).parse::<i64>().unwrap(),
        other => panic!("unexpected {other:?}"),
    };
    part(&reply[0]) * 1000 + part(&reply[1]) / 1000
}
