//! Integration tests: `spin-local up` with the probe components in
//! tests/fixtures (built here for wasm32-wasip1) against a real Redis
//! (`REDIS_URL`, default redis://127.0.0.1:6379). A Redis that cannot be
//! reached fails the tests with a message saying how to start one.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// Builds the probe components once per test run.
fn build_fixtures() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let dir = fixtures_dir();
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let status = Command::new(cargo)
                .args(["build", "--target", "wasm32-wasip1", "--release", "--locked"])
                .current_dir(&dir)
                .env_remove("CARGO_TARGET_DIR")
                .env_remove("RUSTFLAGS")
                .status()
                .expect("cannot run cargo to build the probe components");
            assert!(
                status.success(),
                "building the probe components failed (is the wasm32-wasip1 target installed? `rustup target add wasm32-wasip1`)"
            );
            dir.join("spin.toml")
        })
        .clone()
}

fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// `host:port` of REDIS_URL, checked to answer PING.
fn redis_host() -> String {
    let url = redis_url();
    let client = redis::Client::open(url.as_str()).expect("REDIS_URL is not a valid Redis URL");
    let mut conn = client.get_connection_with_timeout(Duration::from_secs(3)).unwrap_or_else(|e| {
        panic!(
            "Redis at {url} is unreachable ({e}). Start one with `redis-server --port 6379 --save '' --appendonly no --daemonize yes` or set REDIS_URL"
        )
    });
    let _: String = redis::cmd("PING")
        .query(&mut conn)
        .expect("Redis PING failed");
    client.get_connection_info().addr.to_string()
}

fn redis_conn() -> redis::Connection {
    redis::Client::open(redis_url().as_str())
        .unwrap()
        .get_connection_with_timeout(Duration::from_secs(3))
        .unwrap()
}

fn unique(prefix: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{prefix}-{}-{}-{nanos}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(unique(name));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A running `spin-local up`, killed on drop.
struct Runtime {
    child: Child,
    stderr: Arc<Mutex<String>>,
    addr: String,
    log_dir: PathBuf,
    channel: String,
}

impl Drop for Runtime {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.log_dir);
    }
}

struct Options<'a> {
    args: Vec<String>,
    env: Vec<(&'a str, String)>,
    remove_env: Vec<&'a str>,
    /// Working directory; default: a fresh directory without a `.env` file.
    cwd: Option<PathBuf>,
}

impl Default for Options<'_> {
    fn default() -> Self {
        Self {
            args: Vec::new(),
            env: vec![("SPIN_VARIABLE_SECRET_TOKEN", "tok".to_string())],
            remove_env: Vec::new(),
            cwd: None,
        }
    }
}

fn spawn(manifest: &Path, opts: Options) -> Runtime {
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let log_dir = temp_dir("spin-local-logs");
    let channel = unique("probe");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_spin-local"));
    cmd.arg("up")
        .arg("--from")
        .arg(manifest)
        .arg("--log-dir")
        .arg(&log_dir)
        .args(&opts.args)
        // A directory without a stray .env file.
        .current_dir(opts.cwd.as_deref().unwrap_or(&log_dir))
        .env("SPIN_VARIABLE_REDIS_HOST", redis_host())
        .env("SPIN_VARIABLE_PROBE_CHANNEL", &channel)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if !opts.args.iter().any(|a| a == "--listen") {
        cmd.args(["--listen", &addr]);
    }
    for (k, v) in opts.env {
        cmd.env(k, v);
    }
    for k in opts.remove_env {
        cmd.env_remove(k);
    }
    let mut child = cmd.spawn().expect("cannot start spin-local");
    let stderr = Arc::new(Mutex::new(String::new()));
    let pipe = child.stderr.take().unwrap();
    let sink = stderr.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            let mut s = sink.lock().unwrap();
            s.push_str(&line);
            s.push('\n');
        }
    });
    Runtime {
        child,
        stderr,
        addr,
        log_dir,
        channel,
    }
}

impl Runtime {
    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits for a line on stderr; panics with the output on timeout or exit.
    fn wait_for(&mut self, needle: &str) {
        let deadline = Instant::now() + Duration::from_secs(120);
        while Instant::now() < deadline {
            if self.stderr().contains(needle) {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                std::thread::sleep(Duration::from_millis(200));
                panic!(
                    "spin-local exited ({status}) before {needle:?}:\n{}",
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("timed out waiting for {needle:?}:\n{}", self.stderr());
    }

    fn wait_started(mut self) -> Self {
        self.wait_for("Started in");
        self
    }

    /// Waits for the process to exit; returns (success, stderr).
    fn exit(mut self) -> (bool, String) {
        let deadline = Instant::now() + Duration::from_secs(120);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                std::thread::sleep(Duration::from_millis(200));
                return (status.success(), self.stderr());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("spin-local did not exit:\n{}", self.stderr());
    }

    fn get(&self, path: &str) -> (u16, String) {
        http(&self.addr, "GET", path, "")
    }
}

/// A minimal HTTP/1.1 client (Connection: close, chunked bodies).
fn http(addr: &str, method: &str, path: &str, body: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, rest) = text.split_once("\r\n\r\n").expect("no header end");
    let status: u16 = head.split(' ').nth(1).unwrap().parse().unwrap();
    let chunked = head.lines().any(|l| {
        l.to_ascii_lowercase()
            .starts_with("transfer-encoding: chunked")
    });
    let body = if chunked {
        let mut out = String::new();
        let mut rest = rest;
        loop {
            let (size, after) = rest.split_once("\r\n").unwrap();
            let size = usize::from_str_radix(size.trim(), 16).unwrap();
            if size == 0 {
                break;
            }
            out.push_str(&after[..size]);
            rest = &after[size + 2..];
        }
        out
    } else {
        rest.to_string()
    };
    (status, body)
}

fn wait_key(key: &str) -> Option<String> {
    let mut conn = redis_conn();
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        let v: Option<String> = redis::cmd("GET").arg(key).query(&mut conn).unwrap();
        if v.is_some() {
            return v;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

#[test]
fn http_request_reaches_the_component_with_spin_headers() {
    let rt = spawn(&build_fixtures(), Options::default()).wait_started();
    let err = rt.stderr();
    assert!(
        err.contains(&format!("Serving http://{}", rt.addr)),
        "{err}"
    );
    assert!(
        err.contains(&format!("  probe-http: http://{} (wildcard)", rt.addr)),
        "{err}"
    );

    let (status, body) = rt.get("/headers?a=1");
    assert_eq!(status, 200, "{body}");
    for line in [
        "spin-path-info: /headers".to_string(),
        "spin-matched-route: /...".to_string(),
        "spin-raw-component-route: /...".to_string(),
        "spin-base-path: /".to_string(),
        format!("spin-full-url: http://{}/headers?a=1", rt.addr),
        "spin-client-addr: 127.0.0.1:".to_string(),
    ] {
        assert!(body.contains(&line), "missing {line:?} in:\n{body}");
    }
    let (_, body) = rt.get("/exact");
    assert!(body.contains("spin-matched-route: /exact"), "{body}");

    let (status, body) = http(&rt.addr, "POST", "/echo", "round trip");
    assert_eq!((status, body.as_str()), (200, "round trip"));

    // Component stdout goes to the log file and the terminal, like spin up.
    let log = std::fs::read_to_string(rt.log_dir.join("probe-http_stdout.txt")).unwrap();
    assert!(log.contains("probe-http GET /headers"), "{log}");
    rt.get("/stderr");
    std::thread::sleep(Duration::from_millis(200));
    assert!(rt.stderr().contains("probe-http to stderr"));
    let log = std::fs::read_to_string(rt.log_dir.join("probe-http_stderr.txt")).unwrap();
    assert!(log.contains("probe-http to stderr"), "{log}");
}

#[test]
fn variables_resolve_in_spins_order() {
    // Default provider (SPIN_VARIABLE_*) and manifest defaults.
    let rt = spawn(&build_fixtures(), Options::default()).wait_started();
    assert_eq!(rt.get("/var?name=token"), (200, "tok".to_string()));
    assert_eq!(
        rt.get("/var?name=message"),
        (200, "hello, world".to_string())
    );
    let (status, body) = rt.get("/var?name=nope");
    assert_eq!(status, 500);
    assert!(body.contains("Undefined"), "{body}");
    let (_, body) = rt.get("/var?name=Bad-Name");
    assert!(body.contains("InvalidName"), "{body}");
    drop(rt);

    // A runtime config env provider with a dotenv file beats the default
    // provider; --variable beats both.
    let dir = temp_dir("spin-local-rc");
    std::fs::write(
        dir.join("probe.env"),
        "PROBE_GREETING=from-dotenv\nPROBE_SECRET_TOKEN=dotenv-tok\n",
    )
    .unwrap();
    let rc = dir.join("rc.toml");
    std::fs::write(
        &rc,
        format!(
            "[[config_provider]]\ntype = \"env\"\nprefix = \"PROBE\"\ndotenv_path = \"{}\"\n",
            dir.join("probe.env").display()
        ),
    )
    .unwrap();
    let rt = spawn(
        &build_fixtures(),
        Options {
            args: vec!["--runtime-config-file".into(), rc.display().to_string()],
            ..Default::default()
        },
    )
    .wait_started();
    assert_eq!(
        rt.get("/var?name=message"),
        (200, "from-dotenv, world".to_string())
    );
    assert_eq!(rt.get("/var?name=token"), (200, "dotenv-tok".to_string()));
    drop(rt);
    let rt = spawn(
        &build_fixtures(),
        Options {
            args: vec![
                "--runtime-config-file".into(),
                rc.display().to_string(),
                "--variable".into(),
                "greeting=from-cli".into(),
            ],
            ..Default::default()
        },
    )
    .wait_started();
    assert_eq!(
        rt.get("/var?name=message"),
        (200, "from-cli, world".to_string())
    );
    drop(rt);
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn publish_reaches_the_redis_handler() {
    let rt = spawn(&build_fixtures(), Options::default()).wait_started();
    assert!(rt
        .stderr()
        .contains(&format!("/{}: [probe-redis]", rt.channel)));
    let msg = unique("msg");
    let mut conn = redis_conn();
    let receivers: i64 = redis::cmd("PUBLISH")
        .arg(&rt.channel)
        .arg(&msg)
        .query(&mut conn)
        .unwrap();
    assert_eq!(receivers, 1);
    assert_eq!(
        wait_key(&format!("probe:{msg}")).as_deref(),
        Some("seen"),
        "{}",
        rt.stderr()
    );

    // Published by the HTTP component through outbound Redis.
    let msg2 = unique("msg");
    let (status, body) = rt.get(&format!(
        "/redis/publish?addr=redis://{}&channel={}&msg={msg2}",
        redis_host(),
        rt.channel
    ));
    assert_eq!((status, body.as_str()), (200, "published"));
    assert_eq!(wait_key(&format!("probe:{msg2}")).as_deref(), Some("seen"));

    // A failing handler is logged and the trigger keeps going.
    let _: i64 = redis::cmd("PUBLISH")
        .arg(&rt.channel)
        .arg("fail")
        .query(&mut conn)
        .unwrap();
    let msg3 = unique("msg");
    let _: i64 = redis::cmd("PUBLISH")
        .arg(&rt.channel)
        .arg(&msg3)
        .query(&mut conn)
        .unwrap();
    assert_eq!(wait_key(&format!("probe:{msg3}")).as_deref(), Some("seen"));
    assert!(rt
        .stderr()
        .contains("Component probe-redis handler failed: Redis handler returned an error"));

    // execute flattens replies like Spin.
    let (_, body) = rt.get(&format!(
        "/redis/execute?addr=redis://{}&cmd=MGET+probe:{msg}+{}",
        redis_host(),
        unique("absent")
    ));
    assert_eq!(
        body,
        "[RedisResult::Binary([115, 101, 101, 110]), RedisResult::Nil]"
    );
    let (_, body) = rt.get(&format!(
        "/redis/execute?addr=redis://{}&cmd=SET+{}+v",
        redis_host(),
        unique("k")
    ));
    assert_eq!(body, "[RedisResult::Status(\"OK\")]");
}

#[test]
fn denied_outbound_hosts_fail_like_spin() {
    let rt = spawn(&build_fixtures(), Options::default()).wait_started();
    let (status, body) = rt.get("/redis/publish?addr=redis://127.0.0.1:6390&channel=x&msg=y");
    assert_eq!(
        (status, body.as_str()),
        (502, "open: Error::InvalidAddress")
    );
    let (status, body) = rt.get("/http?url=http://127.0.0.1:2/x");
    assert_eq!(status, 502);
    assert!(body.contains("HttpRequestDenied"), "{body}");
    // Allowed (but closed) destination: a connection error, not a denial.
    let (_, body) = rt.get("/http?url=http://127.0.0.1:1/x");
    assert!(!body.contains("HttpRequestDenied"), "{body}");
    let err = rt.stderr();
    assert!(
        err.contains("Outbound network destination not allowed: redis://127.0.0.1:6390"),
        "{err}"
    );
    assert!(
        err.contains("Outbound network destination not allowed: http://127.0.0.1:2"),
        "{err}"
    );
}

#[test]
fn selective_deployment_runs_only_the_chosen_component() {
    let mut rt = spawn(
        &build_fixtures(),
        Options {
            args: vec!["--component-id".into(), "probe-redis".into()],
            ..Default::default()
        },
    );
    rt.wait_for("Started in");
    assert!(!rt.stderr().contains("Serving"), "{}", rt.stderr());
    let msg = unique("msg");
    let _: i64 = redis::cmd("PUBLISH")
        .arg(&rt.channel)
        .arg(&msg)
        .query(&mut redis_conn())
        .unwrap();
    assert_eq!(wait_key(&format!("probe:{msg}")).as_deref(), Some("seen"));
    // The HTTP component was not selected, so its variable is not needed
    // either way; an unknown id is an error.
    let (ok, err) = spawn(
        &build_fixtures(),
        Options {
            args: vec!["--component-id".into(), "nope".into()],
            ..Default::default()
        },
    )
    .exit();
    assert!(!ok && err.contains("\"nope\""), "{err}");
}

#[test]
fn missing_required_variable_fails_start_up() {
    let (ok, err) = spawn(
        &build_fixtures(),
        Options {
            remove_env: vec!["SPIN_VARIABLE_SECRET_TOKEN"],
            env: vec![],
            ..Default::default()
        },
    )
    .exit();
    assert!(!ok);
    assert!(
        err.contains("no provider resolved required variable(s): secret_token"),
        "{err}"
    );
    assert!(err.contains("SPIN_VARIABLE_SECRET_TOKEN"), "{err}");
}

#[test]
fn start_up_errors_are_clear() {
    let manifest = build_fixtures();
    let text = std::fs::read_to_string(&manifest).unwrap();
    let dir = temp_dir("spin-local-bad");
    let fixtures = fixtures_dir();

    // A bad manifest names the field.
    let bad = dir.join("bad.toml");
    std::fs::write(&bad, text.replace("channel = \"{{ probe_channel }}\"", "")).unwrap();
    let (ok, err) = spawn(&bad, Options::default()).exit();
    assert!(
        !ok && err.contains("`trigger.redis[0].channel` is missing"),
        "{err}"
    );

    // A missing .wasm names the path and says how to build.
    let missing = fixtures.join(format!("{}.toml", unique("missing")));
    std::fs::write(
        &missing,
        text.replace("probe_http.wasm", "nothing_here.wasm"),
    )
    .unwrap();
    let (ok, err) = spawn(&missing, Options::default()).exit();
    std::fs::remove_file(&missing).ok();
    assert!(
        !ok && err.contains("nothing_here.wasm") && err.contains("spin build"),
        "{err}"
    );

    // Redis that cannot be reached: the address without its password.
    let closed = free_port();
    let (ok, err) = spawn(
        &manifest,
        Options {
            args: vec![
                "--variable".into(),
                format!("redis_host=:hunter2@127.0.0.1:{closed}"),
            ],
            ..Default::default()
        },
    )
    .exit();
    assert!(!ok, "{err}");
    assert!(
        err.contains(&format!("failed to connect to 127.0.0.1:{closed}")),
        "{err}"
    );
    assert!(!err.contains("hunter2"), "{err}");

    // Port in use.
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let rt = spawn(
        &manifest,
        Options {
            args: vec!["--listen".into(), format!("127.0.0.1:{port}")],
            ..Default::default()
        },
    );
    let (ok, err) = rt.exit();
    assert!(!ok && err.contains("is already in use"), "{err}");
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn losing_the_redis_subscription_ends_the_process() {
    let port = free_port();
    let dir = temp_dir("spin-local-redis");
    let mut redis_server = Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .arg("--dir")
        .arg(&dir)
        .stdout(Stdio::null())
        .spawn()
        .expect("redis-server is not installed (apt-get install -y redis-server)");
    let url = format!("redis://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while redis::Client::open(url.as_str())
        .unwrap()
        .get_connection_with_timeout(Duration::from_millis(200))
        .is_err()
    {
        assert!(
            Instant::now() < deadline,
            "redis-server on port {port} did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let rt = spawn(
        &build_fixtures(),
        Options {
            args: vec![
                "--component-id".into(),
                "probe-redis".into(),
                "--variable".into(),
                format!("redis_host=127.0.0.1:{port}"),
            ],
            ..Default::default()
        },
    )
    .wait_started();
    redis_server.kill().unwrap();
    redis_server.wait().unwrap();
    let (ok, err) = rt.exit();
    std::fs::remove_dir_all(dir).ok();
    assert!(!ok, "{err}");
    assert!(
        err.contains(&format!("Redis trigger disconnected from 127.0.0.1:{port}")),
        "{err}"
    );
}

/// The project's own components (built here if needed) load and serve.
#[test]
fn the_project_components_start_and_answer() {
    redis_host();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args([
            "build",
            "--target",
            "wasm32-wasip1",
            "--release",
            "-p",
            "api",
            "-p",
            "worker",
            "-p",
            "worker-health",
        ])
        .current_dir(&root)
        .env_remove("RUSTFLAGS")
        .status()
        .expect("cannot run cargo to build the components");
    assert!(
        status.success(),
        "building api, worker and worker-health failed"
    );
    let redis = redis_host();
    let rt = spawn(
        &root.join("spin.toml"),
        Options {
            // Not the worker: it would take jobs of other test suites that
            // share this Redis.
            args: vec![
                "--runtime-config-file".into(),
                "runtime-config/local.toml".into(),
                "--component-id".into(),
                "api".into(),
                "--component-id".into(),
                "worker-health".into(),
            ],
            env: vec![("SPIN_VARIABLE_REDIS_ADDRESS", format!("redis://{redis}"))],
            cwd: Some(root.clone()),
            ..Default::default()
        },
    )
    .wait_started();
    let err = rt.stderr();
    assert!(err.contains("  api: http://"), "{err}");
    assert!(err.contains("  worker-health: http://"), "{err}");
    assert!(!err.contains("Active Channels"), "{err}");
    for path in [
        "/healthz",
        "/readyz",
        "/worker/healthz",
        "/worker/readyz",
        "/api/v1/openapi.json",
    ] {
        let (status, body) = rt.get(path);
        assert_eq!(status, 200, "{path}: {body}\n{}", rt.stderr());
    }
    let (status, _) = rt.get("/api/v1/jobs/00000000-0000-0000-0000-000000000000");
    assert_eq!(status, 401);
}

#[test]
fn sigterm_stops_the_runtime_cleanly() {
    let rt = spawn(&build_fixtures(), Options::default()).wait_started();
    let status = Command::new("kill")
        .args(["-TERM", &rt.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let (ok, err) = rt.exit();
    assert!(ok, "{err}");
    assert!(err.contains("Shutting down (SIGTERM)"), "{err}");
}
