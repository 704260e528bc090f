//! The HTTP trigger: a hyper server that routes each request like Spin 3.6 and
//! runs it in a fresh instance of the matched component through
//! `wasi:http/incoming-handler@0.2.0`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{anyhow, bail, Context, Result};
use bytes::Bytes;
use http::uri::{Authority, Scheme};
use http::{HeaderName, HeaderValue, Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use tokio::net::TcpListener;
use wasmtime_wasi_http::bindings::http::types::Scheme as WasiScheme;
use wasmtime_wasi_http::bindings::ProxyPre;
use wasmtime_wasi_http::body::HyperOutgoingBody;
use wasmtime_wasi_http::WasiHttpView;

use crate::host::{ComponentShared, State};
use crate::routes::{RouteMatch, Router};

/// A component ready to serve requests.
pub struct HttpComponent {
    pub pre: ProxyPre<State>,
    pub shared: Arc<ComponentShared>,
}

pub struct HttpServer {
    pub router: Router,
    pub components: HashMap<String, HttpComponent>,
    /// The body of `/.well-known/spin/info`.
    pub info: Bytes,
}

/// The body Spin 3.6.3 serves at `/.well-known/spin/info` (`spin_http::AppInfo`,
/// pretty-printed JSON): the application's name and version. A local app has
/// no OCI image digest.
pub fn app_info(name: &str, version: Option<&str>) -> Result<Bytes> {
    let mut info = serde_json::Map::new();
    info.insert("name".into(), name.into());
    if let Some(version) = version {
        info.insert("version".into(), version.into());
    }
    Ok(serde_json::to_vec_pretty(&info)?.into())
}

fn body(bytes: &'static [u8]) -> HyperOutgoingBody {
    Full::new(Bytes::from_static(bytes))
        .map_err(|never| match never {})
        .boxed_unsync()
}

fn status(code: StatusCode, text: &'static [u8]) -> Response<HyperOutgoingBody> {
    let mut r = Response::new(body(text));
    *r.status_mut() = code;
    r
}

/// Binds the listener (a clear error when the port is taken).
pub async fn bind(addr: SocketAddr) -> Result<TcpListener> {
    TcpListener::bind(addr).await.map_err(|e| {
        if e.kind() == std::io::ErrorKind::AddrInUse {
            anyhow!("{addr} is already in use. Stop whatever listens there or pass another --listen address")
        } else {
            anyhow!("Unable to listen on {addr}: {e}")
        }
    })
}

impl HttpServer {
    /// Prints the start-up lines like `spin up`.
    pub fn print_startup(&self, listener: &TcpListener) -> Result<()> {
        let base_url = format!("http://{}", listener.local_addr()?);
        eprintln!("\nServing {base_url}");
        eprintln!("Available Routes:");
        for (route, component) in self.router.listing() {
            eprintln!("  {component}: {base_url}{route}");
        }
        Ok(())
    }

    /// Serves forever.
    pub async fn serve(self: Arc<Self>, listener: TcpListener) -> Result<()> {
        loop {
            let (stream, client_addr) = match listener.accept().await {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("Error accepting a connection: {e}");
                    continue;
                }
            };
            let server = self.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                    let server = server.clone();
                    async move {
                        Ok::<_, std::convert::Infallible>(server.handle(req, client_addr).await)
                    }
                });
                if let Err(e) = Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await
                {
                    let msg = e.to_string();
                    if !msg.contains("connection closed") && !msg.contains("reset") {
                        eprintln!("Error serving HTTP connection: {msg}");
                    }
                }
            });
        }
    }

    async fn handle(
        &self,
        req: Request<Incoming>,
        client_addr: SocketAddr,
    ) -> Response<HyperOutgoingBody> {
        let path = req.uri().path().to_string();
        if let Some(well_known) = path.strip_prefix("/.well-known/spin/") {
            return match well_known {
                "health" => status(StatusCode::OK, b"OK"),
                "info" => {
                    let mut r = Response::new(
                        Full::new(self.info.clone())
                            .map_err(|never| match never {})
                            .boxed_unsync(),
                    );
                    r.headers_mut().insert(
                        http::header::CONTENT_TYPE,
                        HeaderValue::from_static("application/json"),
                    );
                    r
                }
                _ => status(StatusCode::NOT_FOUND, b""),
            };
        }
        let Some(route) = self.router.route(&path) else {
            return status(StatusCode::NOT_FOUND, b"");
        };
        match self.execute(req, &route, client_addr).await {
            Ok(resp) => resp,
            Err(e) => {
                eprintln!(
                    "Error processing request for component {}: {e:?}",
                    route.component
                );
                status(StatusCode::INTERNAL_SERVER_ERROR, b"")
            }
        }
    }

    async fn execute(
        &self,
        req: Request<Incoming>,
        route: &RouteMatch,
        client_addr: SocketAddr,
    ) -> Result<Response<HyperOutgoingBody>> {
        let component = self
            .components
            .get(&route.component)
            .with_context(|| format!("unknown component {:?}", route.component))?;

        let mut req = req.map(|b| b.map_err(wasmtime_wasi_http::hyper_request_error));
        set_req_uri(&mut req)?;
        // Spin 3.6.3 hands the component only UTF-8 header values
        // (`prepare_request_headers`): any other value fails the request
        // before the component runs, with a 500 and an empty body.
        check_header_values(req.headers())?;
        for (name, value) in spin_headers(req.uri(), route, client_addr)? {
            req.headers_mut().append(name, value);
        }

        let mut store = State::store(component.pre.engine(), component.shared.clone());
        let request = store
            .data_mut()
            .new_incoming_request(WasiScheme::Http, req)
            .map_err(|e| anyhow!("{e:?}"))?;
        let (tx, rx) = tokio::sync::oneshot::channel();
        let out = store
            .data_mut()
            .new_response_outparam(tx)
            .map_err(|e| anyhow!("{e:?}"))?;
        let pre = component.pre.clone();
        let id = component.shared.id.clone();

        // The guest runs in its own task so it can keep streaming the body
        // after the response head has been sent.
        let task = tokio::spawn(async move {
            let proxy = pre
                .instantiate_async(&mut store)
                .await
                .map_err(|e| anyhow!("{e:?}"))?;
            proxy
                .wasi_http_incoming_handler()
                .call_handle(&mut store, request, out)
                .await
                .map_err(|e| anyhow!("{e:?}"))
        });

        match rx.await {
            Ok(resp) => {
                tokio::spawn(async move {
                    match task.await {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => eprintln!("Component {id} error after response started: {e}"),
                        Err(e) => eprintln!("Component {id} panicked after response started: {e}"),
                    }
                });
                resp.map_err(|code| anyhow!("guest failed to produce a response: {code:?}"))
            }
            Err(_) => {
                task.await
                    .context("guest invocation panicked")?
                    .context("guest invocation failed")?;
                bail!("guest failed to produce a response prior to returning")
            }
        }
    }
}

/// Makes the URI absolute (scheme and authority from the `Host` header), as
/// Spin's `set_req_uri` does.
fn set_req_uri<B>(req: &mut Request<B>) -> Result<()> {
    let mut parts = req.uri().clone().into_parts();
    let header = req
        .headers()
        .get(http::header::HOST)
        .map(|h| -> Result<Authority> {
            h.to_str()
                .context("'Host' header is not valid UTF-8")?
                .parse()
                .context("'Host' header contains an invalid authority")
        })
        .transpose()?;
    let authority = match (header, parts.authority.take()) {
        (None, None) => bail!("no 'Host' header present in request"),
        (Some(a), None) | (None, Some(a)) => a,
        (Some(a1), Some(a2)) => {
            if a1 != a2 {
                bail!("authority in 'Host' header does not match authority in URI");
            }
            a1
        }
    };
    parts.scheme = Some(Scheme::HTTP);
    parts.authority = Some(authority);
    if parts.path_and_query.is_none() {
        parts.path_and_query = Some("/".parse()?);
    }
    *req.uri_mut() = Uri::from_parts(parts)?;
    Ok(())
}

/// Fails on the first header value that is not UTF-8 (`invalid utf-8
/// sequence ...`, the error Spin 3.6.3 logs).
fn check_header_values(headers: &http::HeaderMap) -> Result<()> {
    for value in headers.values() {
        std::str::from_utf8(value.as_bytes())?;
    }
    Ok(())
}

/// The `spin-*` request headers of Spin 3.6 (`crates/trigger-http/src/headers.rs`).
pub fn spin_headers(
    uri: &Uri,
    route: &RouteMatch,
    client_addr: SocketAddr,
) -> Result<Vec<(HeaderName, HeaderValue)>> {
    let host = uri.authority().map(|a| a.as_str()).unwrap_or("localhost");
    let abs_path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let scheme = uri.scheme_str().unwrap_or("http");
    let mut pairs = vec![
        ("spin-path-info".to_string(), route.path_info.clone()),
        (
            "spin-full-url".to_string(),
            format!("{scheme}://{host}{abs_path}"),
        ),
        ("spin-matched-route".to_string(), route.based_route.clone()),
        ("spin-base-path".to_string(), "/".to_string()),
        (
            "spin-raw-component-route".to_string(),
            route.raw_route.clone(),
        ),
        (
            "spin-component-route".to_string(),
            route.component_route.clone(),
        ),
        ("spin-client-addr".to_string(), client_addr.to_string()),
    ];
    for (name, value) in &route.params {
        pairs.push((
            format!(
                "spin-path-match-{}",
                name.to_ascii_lowercase().replace('_', "-")
            ),
            value.clone(),
        ));
    }
    pairs
        .into_iter()
        .map(|(n, v)| Ok((HeaderName::try_from(n)?, HeaderValue::try_from(v)?)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_like_spin() {
        let router = Router::build([("/foo/...", "c")]).unwrap();
        let m = router.route("/foo/bar").unwrap();
        let uri: Uri = "https://fermyon.dev/foo/bar?key1=value1&key2=value2"
            .parse()
            .unwrap();
        let h: HashMap<String, String> = spin_headers(&uri, &m, "127.0.0.1:8777".parse().unwrap())
            .unwrap()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_string()))
            .collect();
        assert_eq!(
            h["spin-full-url"],
            "https://fermyon.dev/foo/bar?key1=value1&key2=value2"
        );
        assert_eq!(h["spin-path-info"], "/bar");
        assert_eq!(h["spin-matched-route"], "/foo/...");
        assert_eq!(h["spin-base-path"], "/");
        assert_eq!(h["spin-raw-component-route"], "/foo/...");
        assert_eq!(h["spin-component-route"], "/foo");
        assert_eq!(h["spin-client-addr"], "127.0.0.1:8777");
        assert_eq!(h.len(), 7);

        let router = Router::build([("/foo/:userid/...", "c")]).unwrap();
        let m = router.route("/foo/42/bar").unwrap();
        let h = spin_headers(&uri, &m, "127.0.0.1:1".parse().unwrap()).unwrap();
        assert!(h
            .iter()
            .any(|(k, v)| k == "spin-path-match-userid" && v == "42"));
    }

    #[test]
    fn only_utf8_header_values_reach_the_component() {
        let mut headers = http::HeaderMap::new();
        headers.insert("x-ok", HeaderValue::from_static("plain"));
        headers.insert(
            "x-utf8",
            HeaderValue::from_bytes("r\u{e9}sum\u{e9}".as_bytes()).unwrap(),
        );
        check_header_values(&headers).unwrap();
        headers.insert("x-bad", HeaderValue::from_bytes(b"\xff\xfe").unwrap());
        let err = check_header_values(&headers).unwrap_err();
        assert!(err.to_string().contains("invalid utf-8 sequence"), "{err}");
    }

    #[test]
    fn app_info_like_spin() {
        let info = app_info("jobs-platform", Some("0.1.0")).unwrap();
        assert_eq!(
            std::str::from_utf8(&info).unwrap(),
            "{\n  \"name\": \"jobs-platform\",\n  \"version\": \"0.1.0\"\n}"
        );
        let info = app_info("x", None).unwrap();
        assert_eq!(
            std::str::from_utf8(&info).unwrap(),
            "{\n  \"name\": \"x\"\n}"
        );
    }

    #[test]
    fn request_uri_from_host_header() {
        let mut req = Request::builder()
            .uri("/a?b=1")
            .header("host", "127.0.0.1:3000")
            .body(())
            .unwrap();
        set_req_uri(&mut req).unwrap();
        assert_eq!(req.uri().to_string(), "http://127.0.0.1:3000/a?b=1");
        let mut no_host = Request::builder().uri("/a").body(()).unwrap();
        assert!(set_req_uri(&mut no_host).is_err());
    }
}
