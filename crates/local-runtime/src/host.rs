//! Per-instance host state and the Spin host interfaces: WASI p2, wasi:http
//! (outbound requests checked against the allow-list), and
//! `fermyon:spin/variables@2.0.0` and `fermyon:spin/redis@2.0.0`.

use std::collections::HashMap;
use std::sync::Arc;

use redis::aio::MultiplexedConnection;
use redis::{AsyncCommands, FromRedisValue, Value};
use wasmtime::component::{Resource, ResourceTable};
use wasmtime::{Engine, Store, StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::bindings::http::types::ErrorCode;
use wasmtime_wasi_http::body::HyperOutgoingBody;
use wasmtime_wasi_http::types::{HostFutureIncomingResponse, OutgoingRequestConfig};
use wasmtime_wasi_http::{HttpResult, WasiHttpCtx, WasiHttpView};

use crate::allowed_hosts::{report_denied, AllowedHosts, OutboundUrl};
use crate::logs::ComponentStdio;

pub mod bindings {
    wasmtime::component::bindgen!({
        path: "wit",
        world: "spin-local:host/spin-imports",
        imports: { default: async },
        additional_derives: [PartialEq],
        with: {
            "fermyon:spin/redis@2.0.0.connection": super::RedisConnection,
        },
    });
}

pub mod redis_handler {
    wasmtime::component::bindgen!({
        path: "wit",
        world: "spin-local:host/redis-handler",
        exports: { default: async },
    });
}

use bindings::fermyon::spin2_0_0::redis as spin_redis;
use bindings::fermyon::spin2_0_0::variables as spin_variables;

/// What every instance of one component shares.
pub struct ComponentShared {
    pub id: String,
    pub variables: HashMap<String, String>,
    pub allowed_hosts: AllowedHosts,
    pub environment: Vec<(String, String)>,
    pub stdout: ComponentStdio,
    pub stderr: ComponentStdio,
    /// `--max-instance-memory`: the most bytes one linear memory of an
    /// instance may grow to; beyond it `memory.grow` fails (Spin 3.6.3's
    /// `StoreLimitsAsync`).
    pub max_instance_memory: Option<usize>,
}

/// Spin's cap on what the host buffers of one Redis reply
/// (`spin_world::MAX_HOST_BUFFERED_BYTES`, 128 MiB, in Spin 3.6.3).
const MAX_HOST_BUFFERED_BYTES: usize = 128 << 20;

/// The error Spin 3.6.3 returns for a reply over [`MAX_HOST_BUFFERED_BYTES`].
fn over_buffer_limit() -> spin_redis::Error {
    spin_redis::Error::Other(format!(
        "query result exceeds limit of {MAX_HOST_BUFFERED_BYTES} bytes"
    ))
}

/// The `connection` resource: like Spin 3.6.3, every `open` makes a new TCP
/// connection, closed when the guest drops the resource; nothing is pooled
/// across instances.
pub struct RedisConnection {
    conn: MultiplexedConnection,
}

/// The data of one `Store`: one instance handling one request or message.
pub struct State {
    pub shared: Arc<ComponentShared>,
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
    limits: StoreLimits,
}

impl State {
    /// A store for one instance of the component, with its memory limit.
    pub fn store(engine: &Engine, shared: Arc<ComponentShared>) -> Store<State> {
        let mut builder = WasiCtx::builder();
        builder
            .stdout(shared.stdout.clone())
            .stderr(shared.stderr.clone())
            .envs(&shared.environment);
        let mut limits = StoreLimitsBuilder::new();
        if let Some(bytes) = shared.max_instance_memory {
            limits = limits.memory_size(bytes);
        }
        let state = Self {
            wasi: builder.build(),
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
            limits: limits.build(),
            shared,
        };
        let mut store = Store::new(engine, state);
        store.limiter(|state| &mut state.limits);
        store
    }
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for State {
    fn ctx(&mut self) -> &mut WasiHttpCtx {
        &mut self.http
    }

    fn table(&mut self) -> &mut ResourceTable {
        &mut self.table
    }

    fn send_request(
        &mut self,
        request: hyper::Request<HyperOutgoingBody>,
        config: OutgoingRequestConfig,
    ) -> HttpResult<HostFutureIncomingResponse> {
        let uri = request.uri();
        let allowed = match (uri.scheme_str(), uri.authority()) {
            (Some(scheme), Some(authority)) => {
                let url = OutboundUrl {
                    scheme: scheme.to_ascii_lowercase(),
                    host: authority.host().to_ascii_lowercase(),
                    port: authority.port_u16(),
                };
                let ok = self.shared.allowed_hosts.allows(&url);
                if !ok {
                    report_denied(&self.shared.id, &url.scheme, &url.authority());
                }
                ok
            }
            // A relative URL is a request to the app itself ("self"), which
            // this runtime does not provide.
            _ => {
                report_denied(&self.shared.id, "http", "self");
                false
            }
        };
        if !allowed {
            return Err(ErrorCode::HttpRequestDenied.into());
        }
        Ok(crate::outbound_http::send(request, config))
    }
}

impl spin_variables::Host for State {
    async fn get(&mut self, name: String) -> Result<String, spin_variables::Error> {
        crate::variables::validate_name(&name).map_err(spin_variables::Error::InvalidName)?;
        self.shared.variables.get(&name).cloned().ok_or_else(|| {
            spin_variables::Error::Undefined(format!(
                "no variable for {:?}.{name:?}",
                self.shared.id
            ))
        })
    }
}

fn other(e: redis::RedisError) -> spin_redis::Error {
    spin_redis::Error::Other(e.to_string())
}

impl State {
    fn conn(
        &mut self,
        c: &Resource<RedisConnection>,
    ) -> Result<MultiplexedConnection, spin_redis::Error> {
        self.table
            .get(c)
            .map(|c| c.conn.clone())
            .map_err(|_| spin_redis::Error::Other("could not find connection for resource".into()))
    }

    /// Runs a command on the resource's connection.
    async fn run<T>(
        &mut self,
        c: &Resource<RedisConnection>,
        f: impl AsyncFnOnce(&mut MultiplexedConnection) -> redis::RedisResult<T>,
    ) -> Result<T, spin_redis::Error> {
        let mut conn = self.conn(c)?;
        f(&mut conn).await.map_err(other)
    }
}

impl spin_redis::Host for State {}

impl spin_redis::HostConnection for State {
    async fn open(
        &mut self,
        address: String,
    ) -> Result<Resource<RedisConnection>, spin_redis::Error> {
        if !self
            .shared
            .allowed_hosts
            .check(&self.shared.id, &address, "redis")
        {
            return Err(spin_redis::Error::InvalidAddress);
        }
        let conn = redis::Client::open(address.as_str())
            .map_err(|_| spin_redis::Error::InvalidAddress)?
            .get_multiplexed_async_connection()
            .await
            .map_err(other)?;
        self.table
            .push(RedisConnection { conn })
            .map_err(|_| spin_redis::Error::TooManyConnections)
    }

    async fn publish(
        &mut self,
        c: Resource<RedisConnection>,
        channel: String,
        payload: Vec<u8>,
    ) -> Result<(), spin_redis::Error> {
        self.run(&c, async |conn| {
            conn.publish::<_, _, ()>(&channel, &payload).await
        })
        .await
    }

    async fn get(
        &mut self,
        c: Resource<RedisConnection>,
        key: String,
    ) -> Result<Option<Vec<u8>>, spin_redis::Error> {
        let value = self
            .run(&c, async |conn| conn.get::<_, Option<Vec<u8>>>(&key).await)
            .await?;
        if std::mem::size_of::<Option<Vec<u8>>>() + value.as_ref().map_or(0, Vec::len)
            > MAX_HOST_BUFFERED_BYTES
        {
            return Err(over_buffer_limit());
        }
        Ok(value)
    }

    async fn set(
        &mut self,
        c: Resource<RedisConnection>,
        key: String,
        value: Vec<u8>,
    ) -> Result<(), spin_redis::Error> {
        self.run(&c, async |conn| conn.set::<_, _, ()>(&key, &value).await)
            .await
    }

    async fn incr(
        &mut self,
        c: Resource<RedisConnection>,
        key: String,
    ) -> Result<i64, spin_redis::Error> {
        self.run(&c, async |conn| conn.incr::<_, _, i64>(&key, 1).await)
            .await
    }

    async fn del(
        &mut self,
        c: Resource<RedisConnection>,
        keys: Vec<String>,
    ) -> Result<u32, spin_redis::Error> {
        self.run(&c, async |conn| conn.del::<_, u32>(&keys).await)
            .await
    }

    async fn sadd(
        &mut self,
        c: Resource<RedisConnection>,
        key: String,
        values: Vec<String>,
    ) -> Result<u32, spin_redis::Error> {
        let mut conn = self.conn(&c)?;
        conn.sadd::<_, _, u32>(&key, &values)
            .await
            .map_err(|e| match e.kind() {
                redis::ErrorKind::TypeError => spin_redis::Error::TypeError,
                _ => other(e),
            })
    }

    async fn smembers(
        &mut self,
        c: Resource<RedisConnection>,
        key: String,
    ) -> Result<Vec<String>, spin_redis::Error> {
        self.run(&c, async |conn| conn.smembers::<_, Vec<String>>(&key).await)
            .await
    }

    async fn srem(
        &mut self,
        c: Resource<RedisConnection>,
        key: String,
        values: Vec<String>,
    ) -> Result<u32, spin_redis::Error> {
        self.run(&c, async |conn| conn.srem::<_, _, u32>(&key, &values).await)
            .await
    }

    async fn execute(
        &mut self,
        c: Resource<RedisConnection>,
        command: String,
        arguments: Vec<spin_redis::RedisParameter>,
    ) -> Result<Vec<spin_redis::RedisResult>, spin_redis::Error> {
        let mut cmd = redis::cmd(&command);
        for a in arguments {
            match a {
                spin_redis::RedisParameter::Int64(v) => cmd.arg(v),
                spin_redis::RedisParameter::Binary(v) => cmd.arg(v),
            };
        }
        let results = self
            .run(&c, async |conn| cmd.query_async::<RedisResults>(conn).await)
            .await?
            .0;
        let size = std::mem::size_of::<Vec<spin_redis::RedisResult>>()
            + results.iter().map(memory_size).sum::<usize>();
        if size > MAX_HOST_BUFFERED_BYTES {
            return Err(over_buffer_limit());
        }
        Ok(results)
    }

    async fn drop(&mut self, c: Resource<RedisConnection>) -> wasmtime::Result<()> {
        self.table.delete(c)?;
        Ok(())
    }
}

/// What one reply value counts against [`MAX_HOST_BUFFERED_BYTES`], as Spin 3.6.3 counts it.
fn memory_size(value: &spin_redis::RedisResult) -> usize {
    use spin_redis::RedisResult as R;
    std::mem::size_of::<R>()
        + match value {
            R::Nil | R::Int64(_) => 0,
            R::Binary(b) => b.len(),
            R::Status(s) => s.len(),
        }
}

/// A reply of `execute`, flattened exactly as Spin 3.6 does
/// (`crates/factor-outbound-redis/src/host.rs`): nested arrays and sets are
/// flattened into one list, `OK` becomes a status, doubles and big numbers
/// become their decimal text, booleans 1/0; maps, attributes, verbatim
/// strings and pushes are errors.
pub struct RedisResults(pub Vec<spin_redis::RedisResult>);

impl FromRedisValue for RedisResults {
    fn from_redis_value(value: &Value) -> redis::RedisResult<Self> {
        use spin_redis::RedisResult as R;
        fn type_error(what: &str) -> redis::RedisError {
            redis::RedisError::from((
                redis::ErrorKind::TypeError,
                "Could not convert Redis response",
                what.to_string(),
            ))
        }
        fn append(values: &mut Vec<R>, value: &Value) -> redis::RedisResult<()> {
            match value {
                Value::Nil => values.push(R::Nil),
                Value::Int(v) => values.push(R::Int64(*v)),
                Value::BulkString(b) => values.push(R::Binary(b.clone())),
                Value::SimpleString(s) => values.push(R::Status(s.clone())),
                Value::Okay => values.push(R::Status("OK".to_string())),
                Value::Map(_) => return Err(type_error("Redis Map type is not supported")),
                Value::Attribute { .. } => {
                    return Err(type_error("Redis Attribute type is not supported"))
                }
                Value::Array(a) | Value::Set(a) => {
                    for v in a {
                        append(values, v)?;
                    }
                }
                Value::Double(v) => values.push(R::Binary(v.to_string().into_bytes())),
                Value::VerbatimString { .. } => {
                    return Err(type_error(
                        "Redis string with format attribute is not supported",
                    ))
                }
                Value::Boolean(v) => values.push(R::Int64(if *v { 1 } else { 0 })),
                Value::BigNumber(v) => values.push(R::Binary(v.to_string().into_bytes())),
                Value::Push { .. } => {
                    return Err(type_error("Redis Pub/Sub types are not supported"))
                }
                Value::ServerError(e) => {
                    return Err(redis::RedisError::from((
                        redis::ErrorKind::ResponseError,
                        "Server error",
                        format!("{e:?}"),
                    )))
                }
            }
            Ok(())
        }
        let mut values = Vec::new();
        append(&mut values, value)?;
        Ok(RedisResults(values))
    }
}

#[cfg(test)]
mod tests {
    use super::spin_redis::RedisResult as R;
    use super::*;

    fn flat(v: Value) -> Vec<R> {
        RedisResults::from_redis_value(&v).unwrap().0
    }

    #[test]
    fn flattens_like_spin() {
        assert_eq!(flat(Value::Okay), vec![R::Status("OK".into())]);
        assert_eq!(flat(Value::Nil), vec![R::Nil]);
        assert_eq!(flat(Value::Int(3)), vec![R::Int64(3)]);
        assert_eq!(
            flat(Value::SimpleString("PONG".into())),
            vec![R::Status("PONG".into())]
        );
        assert_eq!(
            flat(Value::Array(vec![
                Value::BulkString(b"a".to_vec()),
                Value::Array(vec![
                    Value::Int(1),
                    Value::Nil,
                    Value::Array(vec![Value::Okay])
                ]),
                Value::Set(vec![Value::BulkString(b"s".to_vec())]),
            ])),
            vec![
                R::Binary(b"a".to_vec()),
                R::Int64(1),
                R::Nil,
                R::Status("OK".into()),
                R::Binary(b"s".to_vec()),
            ]
        );
        assert_eq!(flat(Value::Array(vec![])), vec![]);
        assert_eq!(flat(Value::Double(1.5)), vec![R::Binary(b"1.5".to_vec())]);
        assert_eq!(flat(Value::Boolean(true)), vec![R::Int64(1)]);
        assert_eq!(flat(Value::Boolean(false)), vec![R::Int64(0)]);
    }

    #[test]
    fn unsupported_replies_are_errors() {
        assert!(RedisResults::from_redis_value(&Value::Map(vec![])).is_err());
        assert!(RedisResults::from_redis_value(&Value::Array(vec![
            Value::Int(1),
            Value::Map(vec![])
        ]))
        .is_err());
    }
}
