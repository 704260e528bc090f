//! Outbound HTTP with connection reuse, as Spin 3.6 does by default
//! (`[outbound_http] connection_pooling = true`): idle HTTP/1.1 connections
//! are kept per `host:port` and shared by every instance, instead of one new
//! TCP connection per request (`wasmtime_wasi_http`'s default sender, still
//! used for `https`).
//!
//! A connection goes back to the pool as soon as the response head arrived;
//! it is only reused once hyper reports it ready (the previous body was read
//! to the end) and it has been idle for less than [`MAX_IDLE`], well below
//! the 5 s keep-alive timeout of Node.js servers such as Azurite.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

use http_body_util::BodyExt;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::time::timeout;
use wasmtime_wasi_http::bindings::http::types::ErrorCode;
use wasmtime_wasi_http::body::HyperOutgoingBody;
use wasmtime_wasi_http::hyper_request_error;
use wasmtime_wasi_http::types::{
    HostFutureIncomingResponse, IncomingResponse, OutgoingRequestConfig,
};

/// Idle connections kept per `host:port`.
const MAX_IDLE_PER_HOST: usize = 32;
/// How long an idle connection may be reused.
const MAX_IDLE: Duration = Duration::from_secs(2);

type Idle = (SendRequest<HyperOutgoingBody>, Instant);

static POOL: LazyLock<Mutex<HashMap<String, Vec<Idle>>>> = LazyLock::new(Default::default);

/// Send `request` on a pooled connection (plain `http`), or as
/// `wasmtime_wasi_http` does by default (`https`).
pub fn send(
    request: hyper::Request<HyperOutgoingBody>,
    config: OutgoingRequestConfig,
) -> HostFutureIncomingResponse {
    if config.use_tls {
        return wasmtime_wasi_http::types::default_send_request(request, config);
    }
    let handle =
        wasmtime_wasi::runtime::spawn(async move { Ok(send_pooled(request, config).await) });
    HostFutureIncomingResponse::pending(handle)
}

fn take_idle(authority: &str) -> Option<SendRequest<HyperOutgoingBody>> {
    let mut pool = POOL.lock().unwrap_or_else(|e| e.into_inner());
    let idle = pool.get_mut(authority)?;
    // Newest first; drop what is closed or idle too long; skip what is busy.
    let mut found = None;
    let mut keep = Vec::with_capacity(idle.len());
    while let Some((sender, since)) = idle.pop() {
        if sender.is_closed() || since.elapsed() > MAX_IDLE {
            continue;
        }
        if found.is_none() && sender.is_ready() {
            found = Some(sender);
        } else {
            keep.push((sender, since));
        }
    }
    keep.reverse();
    *idle = keep;
    found
}

fn put_idle(authority: String, sender: SendRequest<HyperOutgoingBody>) {
    let mut pool = POOL.lock().unwrap_or_else(|e| e.into_inner());
    let idle = pool.entry(authority).or_default();
    if idle.len() < MAX_IDLE_PER_HOST {
        idle.push((sender, Instant::now()));
    }
}

async fn connect(
    authority: &str,
    connect_timeout: Duration,
) -> Result<SendRequest<HyperOutgoingBody>, ErrorCode> {
    let stream = timeout(connect_timeout, TcpStream::connect(authority))
        .await
        .map_err(|_| ErrorCode::ConnectionTimeout)?
        .map_err(|_| ErrorCode::ConnectionRefused)?;
    let _ = stream.set_nodelay(true);
    let (sender, connection) = timeout(
        connect_timeout,
        hyper::client::conn::http1::handshake(TokioIo::new(stream)),
    )
    .await
    .map_err(|_| ErrorCode::ConnectionTimeout)?
    .map_err(hyper_request_error)?;
    // The connection lives as long as a sender for it (in the pool or in use).
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(sender)
}

async fn send_pooled(
    mut request: hyper::Request<HyperOutgoingBody>,
    config: OutgoingRequestConfig,
) -> Result<IncomingResponse, ErrorCode> {
    let authority = match request.uri().authority() {
        Some(a) if a.port().is_some() => a.to_string(),
        Some(a) => format!("{a}:80"),
        None => return Err(ErrorCode::HttpRequestUriInvalid),
    };
    let mut sender = match take_idle(&authority) {
        Some(sender) => sender,
        None => connect(&authority, config.connect_timeout).await?,
    };
    // The request carries scheme and authority; on the wire only the path.
    *request.uri_mut() = http::Uri::builder()
        .path_and_query(
            request
                .uri()
                .path_and_query()
                .map(|p| p.as_str())
                .unwrap_or("/"),
        )
        .build()
        .map_err(|_| ErrorCode::HttpRequestUriInvalid)?;
    let response = timeout(config.first_byte_timeout, sender.send_request(request))
        .await
        .map_err(|_| ErrorCode::ConnectionReadTimeout)?
        .map_err(hyper_request_error)?;
    put_idle(authority, sender);
    Ok(IncomingResponse {
        resp: response.map(|body| body.map_err(hyper_request_error).boxed_unsync()),
        worker: None,
        between_bytes_timeout: config.between_bytes_timeout,
    })
}
