//! End-to-end test harness: runs the built `.wasm` components on a runtime
//! against a real Redis server and a real Azurite, each test with servers of
//! its own on free ports, so tests run in parallel and may stop and restart
//! any of them.
//!
//! The runtime is the project's local runtime (`target/runtime/spin-local`)
//! unless `E2E_RUNTIME=spin`, which runs the Spin CLI's `spin up` instead, so
//! the same suite checks real Spin wherever the CLI is installed.
//!
//! Every runtime runs in a process group of its own: `spin up` starts its
//! triggers as child processes (`spin trigger http ...`), so stopping a
//! platform kills the whole group and then checks that nothing of it is left.
//! A runtime process that outlives its test fails that test.
//!
//! Environment:
//! - `E2E_RUNTIME`: `local` (default) or `spin`.
//! - `SPIN_BIN`: the Spin CLI for `E2E_RUNTIME=spin` (default `spin` from `PATH`).
//! - `SPIN_LOCAL_BIN`: the local runtime binary (default `target/runtime/spin-local`).
//! - `E2E_PROCESS_GROUPS`: a file to which each runtime's process group id is
//!   appended, so that the caller can check after the suite that none is left.
//! - `AZURITE_BLOB_BIN`: Azurite's `azurite-blob` (default `.tools/azurite/node_modules/.bin/azurite-blob`).
//! - `REDIS_SERVER_BIN`: `redis-server` (default from `PATH`).

#![deny(missing_docs)]

use std::fs;
use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use platform_core::config::{BlobAuth, BlobConfig};
use platform_core::native::{block_on, NativeHttp};
use serde_json::{json, Value};

/// The Azurite storage emulator's published development account key.
pub const AZURITE_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
/// API key of tenant `demo` in the test configuration.
pub const DEMO_KEY: &str = "e2e-demo-key-0123456789";
/// API key of tenant `acme` in the test configuration.
pub const ACME_KEY: &str = "e2e-acme-key-0123456789";
/// The operator token in the test configuration.
pub const ADMIN_TOKEN: &str = "e2e-admin-token-0123456789";

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repository root")
}

/// A free TCP port on 127.0.0.1 (bound and released; good enough for tests).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free port")
}

/// Wait until something accepts connections on `port`, or panic with `what`.
pub fn wait_for_port(port: u16, timeout: Duration, what: &str) {
    let deadline = Instant::now() + timeout;
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "{what} did not listen on 127.0.0.1:{port} within {timeout:?}"
        );
        sleep(Duration::from_millis(50));
    }
}

/// Poll `f` until it returns `Some`, or panic with `what` after `timeout`.
pub fn eventually<T>(timeout: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = f() {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?}: {what}"
        );
        sleep(Duration::from_millis(100));
    }
}

fn kill(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// A Redis server of the test's own.
pub struct RedisServer {
    /// Its port on 127.0.0.1.
    pub port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl RedisServer {
    /// Start a fresh, empty Redis (no persistence).
    pub fn start() -> Self {
        let mut server = Self {
            port: free_port(),
            dir: tempfile::tempdir().expect("tempdir"),
            child: None,
        };
        server.restart();
        server
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Start it again on the same port (after [`RedisServer::stop`]). Data is gone.
    pub fn restart(&mut self) {
        let bin = std::env::var("REDIS_SERVER_BIN").unwrap_or_else(|_| "redis-server".into());
        let child = Command::new(&bin)
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {bin} (run scripts/bootstrap.sh): {e}"));
        self.child = Some(child);
        wait_for_port(self.port, Duration::from_secs(10), "redis-server");
    }

    /// Stop it.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            kill(&mut child);
        }
    }

    /// A synchronous client connection for inspecting state.
    pub fn client(&self) -> redis::Connection {
        redis::Client::open(self.url())
            .and_then(|c| c.get_connection())
            .expect("connect to test redis")
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// An Azurite (blob service) of the test's own.
pub struct Azurite {
    /// Its port on 127.0.0.1.
    pub port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl Azurite {
    /// Start a fresh Azurite blob service.
    pub fn start() -> Self {
        let mut azurite = Self {
            port: free_port(),
            dir: tempfile::tempdir().expect("tempdir"),
            child: None,
        };
        azurite.restart();
        azurite
    }

    /// Path-style account endpoint: `http://127.0.0.1:<port>/devstoreaccount1`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}/devstoreaccount1", self.port)
    }

    /// Start it again on the same port with the same data (after [`Azurite::stop`]).
    pub fn restart(&mut self) {
        let bin = std::env::var("AZURITE_BLOB_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|_| repo_root().join(".tools/azurite/node_modules/.bin/azurite-blob"));
        let child = Command::new(&bin)
            .args([
                "--blobHost",
                "127.0.0.1",
                "--blobPort",
                &self.port.to_string(),
            ])
            .arg("--location")
            .arg(self.dir.path())
            .args(["--skipApiVersionCheck", "--disableTelemetry", "--silent"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start {} (run scripts/bootstrap.sh): {e}",
                    bin.display()
                )
            });
        self.child = Some(child);
        wait_for_port(self.port, Duration::from_secs(30), "azurite-blob");
    }

    /// Stop it.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            kill(&mut child);
        }
    }

    /// A Blob client configuration for container `results` with the dev account key.
    pub fn blob_config(&self) -> BlobConfig {
        BlobConfig {
            endpoint: self.endpoint(),
            account: "devstoreaccount1".into(),
            container: "results".into(),
            auth: BlobAuth::SharedKey {
                key: base64_decode(AZURITE_KEY),
            },
        }
    }

    /// Read a blob of the results container: `(content type, bytes)`, `None` if absent.
    pub fn read_blob(&self, path: &str) -> Option<(String, Vec<u8>)> {
        let config = self.blob_config();
        let http = NativeHttp::default();
        let client = platform_core::blob::BlobClient::new(&config, &http);
        block_on(client.get(path)).expect("read blob from azurite")
    }
}

impl Drop for Azurite {
    fn drop(&mut self) {
        self.stop();
    }
}

fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .expect("valid base64")
}

/// Which runtime runs the components.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runtime {
    /// The project's local runtime (wasmtime).
    Local,
    /// The Spin CLI (`spin up`).
    Spin,
}

impl Runtime {
    /// From `E2E_RUNTIME` (default local).
    pub fn from_env() -> Self {
        match std::env::var("E2E_RUNTIME").as_deref() {
            Ok("spin") => Runtime::Spin,
            Ok("local") | Err(_) => Runtime::Local,
            Ok(other) => panic!("E2E_RUNTIME must be `local` or `spin`, not {other:?}"),
        }
    }

    /// The command that starts this runtime's `up`.
    pub fn command(self) -> Command {
        match self {
            Runtime::Local => {
                let bin = std::env::var("SPIN_LOCAL_BIN")
                    .map(PathBuf::from)
                    .unwrap_or_else(|_| repo_root().join("target/runtime/spin-local"));
                assert!(
                    bin.exists(),
                    "{} not found: build it with scripts/build.sh --runtime",
                    bin.display()
                );
                Command::new(bin)
            }
            Runtime::Spin => {
                Command::new(std::env::var("SPIN_BIN").unwrap_or_else(|_| "spin".into()))
            }
        }
    }
}

/// The live (not yet reaped-and-gone, not zombie) processes of process group
/// `pgid`, as `(pid, command line)`.
pub fn live_processes_in_group(pgid: u32) -> Vec<(u32, String)> {
    let mut found = Vec::new();
    let Ok(entries) = fs::read_dir("/proc") else {
        return found;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // `pid (comm) state ppid pgrp ...`; comm may contain spaces and parentheses.
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let (Some(state), Some(pgrp)) = (fields.first(), fields.get(2)) else {
            continue;
        };
        if *state != "Z" && pgrp.parse::<u32>().ok() == Some(pgid) {
            let cmdline = fs::read(entry.path().join("cmdline"))
                .map(|b| {
                    String::from_utf8_lossy(&b)
                        .replace('\0', " ")
                        .trim()
                        .to_string()
                })
                .unwrap_or_default();
            found.push((pid, cmdline));
        }
    }
    found
}

/// Kill every process of group `pgid` with SIGKILL, reap `leader`, and wait
/// up to ten seconds until none of the group is alive. Returns what is still
/// alive after that (empty when the group is gone).
fn kill_group(pgid: u32, leader: &mut Child) -> Vec<(u32, String)> {
    if let Some(pid) = rustix::process::Pid::from_raw(pgid as i32) {
        // ESRCH (the group is already gone) is fine.
        let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
    }
    let _ = leader.wait();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = live_processes_in_group(pgid);
        if left.is_empty() || Instant::now() >= deadline {
            return left;
        }
        sleep(Duration::from_millis(20));
    }
}

/// What to run and how to configure it.
#[derive(Debug, Clone, Default)]
pub struct PlatformOptions {
    /// Components to run (selective deployment); empty means all.
    pub components: Vec<&'static str>,
    /// Extra Spin variables (`SPIN_VARIABLE_<NAME>`).
    pub variables: Vec<(&'static str, String)>,
    /// The runtime; `None` means the one `E2E_RUNTIME` names.
    pub runtime: Option<Runtime>,
    /// `--max-instance-memory`: the most bytes an instance's memory may grow to.
    pub max_instance_memory: Option<usize>,
}

impl PlatformOptions {
    /// Only the API.
    pub fn api_only() -> Self {
        Self {
            components: vec!["api"],
            ..Self::default()
        }
    }

    /// Only the worker (and its health component).
    pub fn worker_only() -> Self {
        Self {
            components: vec!["worker", "worker-health"],
            ..Self::default()
        }
    }

    /// Limit every instance's memory to `bytes`, as the pods' instances are.
    pub fn max_instance_memory(mut self, bytes: usize) -> Self {
        self.max_instance_memory = Some(bytes);
        self
    }

    /// Run on `runtime`, whatever `E2E_RUNTIME` says.
    pub fn on(mut self, runtime: Runtime) -> Self {
        self.runtime = Some(runtime);
        self
    }

    /// Set a Spin variable.
    pub fn var(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.variables.push((name, value.into()));
        self
    }
}

/// One running platform process (the API, the worker, or both).
pub struct Platform {
    /// HTTP port on 127.0.0.1.
    pub port: u16,
    child: Option<Child>,
    logs: tempfile::TempDir,
    options: PlatformOptions,
    redis_port: u16,
    azurite_port: u16,
}

impl Platform {
    /// Start the components against `redis` and `azurite`, and wait until they listen.
    pub fn start(redis: &RedisServer, azurite: &Azurite, options: PlatformOptions) -> Self {
        let mut platform = Self {
            port: free_port(),
            child: None,
            logs: tempfile::tempdir().expect("tempdir"),
            options,
            redis_port: redis.port,
            azurite_port: azurite.port,
        };
        platform.restart();
        platform
    }

    /// Start it again (after [`Platform::kill`]) with the same configuration and port.
    pub fn restart(&mut self) {
        let root = repo_root();
        let runtime = self.options.runtime.unwrap_or_else(Runtime::from_env);
        let mut command = runtime.command();
        match runtime {
            Runtime::Local => {
                command.arg("up");
                for component in &self.options.components {
                    command.args(["--component", component]);
                }
            }
            Runtime::Spin => {
                command.args(["up", "--quiet"]);
                for component in &self.options.components {
                    command.args(["--component-id", component]);
                }
            }
        }
        if let Some(bytes) = self.options.max_instance_memory {
            command.args(["--max-instance-memory", &bytes.to_string()]);
        }
        command
            .current_dir(&root)
            .arg("--from")
            .arg(root.join("spin.toml"))
            .arg("--runtime-config-file")
            .arg(root.join("runtime-config/local.toml"))
            .args(["--listen", &format!("127.0.0.1:{}", self.port)])
            .arg("--log-dir")
            .arg(self.logs.path())
            .env(
                "SPIN_VARIABLE_REDIS_ADDRESS",
                format!("redis://127.0.0.1:{}", self.redis_port),
            )
            .env(
                "SPIN_VARIABLE_REDIS_HOST",
                format!("127.0.0.1:{}", self.redis_port),
            )
            .env(
                "SPIN_VARIABLE_BLOB_ENDPOINT",
                format!("http://127.0.0.1:{}/devstoreaccount1", self.azurite_port),
            )
            .env(
                "SPIN_VARIABLE_BLOB_HOST",
                format!("127.0.0.1:{}", self.azurite_port),
            )
            .env("SPIN_VARIABLE_BLOB_AUTH", "shared-key")
            .env("SPIN_VARIABLE_BLOB_CREDENTIAL", AZURITE_KEY)
            .env(
                "SPIN_VARIABLE_API_KEYS",
                format!("demo:{DEMO_KEY},acme:{ACME_KEY}"),
            )
            .env("SPIN_VARIABLE_ADMIN_TOKEN", ADMIN_TOKEN)
            .stdin(Stdio::null())
            .stdout(Stdio::from(self.log_file("runtime_stdout.txt")))
            .stderr(Stdio::from(self.log_file("runtime_stderr.txt")));
        for (name, value) in &self.options.variables {
            command.env(
                format!("SPIN_VARIABLE_{}", name.to_ascii_uppercase()),
                value,
            );
        }
        // A process group of its own, so that stopping it stops `spin up`'s
        // trigger processes too.
        command.process_group(0);
        let child = command.spawn().expect("start the runtime");
        record_process_group(child.id());
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(120);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!(
                    "the runtime exited with {status} before listening:\n{}",
                    self.runtime_log()
                );
            }
            assert!(
                Instant::now() < deadline,
                "the runtime did not listen on port {} in time:\n{}",
                self.port,
                self.runtime_log()
            );
            sleep(Duration::from_millis(50));
        }
        if self.runs_worker() {
            self.wait_subscribed(deadline);
        }
    }

    /// Whether this platform runs the Redis-triggered worker.
    fn runs_worker(&self) -> bool {
        self.options.components.is_empty() || self.options.components.contains(&"worker")
    }

    /// The HTTP port answers before the Redis trigger has subscribed, and a
    /// message published before then is lost: wait until the `jobs` channel
    /// has a subscriber.
    fn wait_subscribed(&mut self, deadline: Instant) {
        let mut conn = redis::Client::open(format!("redis://127.0.0.1:{}", self.redis_port))
            .and_then(|c| c.get_connection())
            .expect("connect to test redis");
        loop {
            let (_, subscribers): (String, i64) = redis::cmd("PUBSUB")
                .arg("NUMSUB")
                .arg("jobs")
                .query(&mut conn)
                .expect("PUBSUB NUMSUB");
            if subscribers >= 1 {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the worker did not subscribe to `jobs` in time:\n{}",
                self.runtime_log()
            );
            sleep(Duration::from_millis(50));
        }
    }

    fn log_file(&self, name: &str) -> fs::File {
        fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.logs.path().join(name))
            .expect("log file")
    }

    /// The runtime's own stdout and stderr so far (for failure messages).
    pub fn runtime_log(&self) -> String {
        let read = |name: &str| fs::read_to_string(self.logs.path().join(name)).unwrap_or_default();
        format!(
            "--- stdout\n{}\n--- stderr\n{}",
            read("runtime_stdout.txt"),
            read("runtime_stderr.txt")
        )
    }

    /// What `component` wrote to stdout so far (the runtime's
    /// `<log-dir>/<component>_stdout.txt`, as `spin up` writes it).
    pub fn component_stdout(&self, component: &str) -> String {
        fs::read_to_string(self.logs.path().join(format!("{component}_stdout.txt")))
            .unwrap_or_default()
    }

    /// Everything the components and the runtime logged so far.
    pub fn all_logs(&self) -> String {
        let mut out = String::new();
        if let Ok(entries) = fs::read_dir(self.logs.path()) {
            let mut paths: Vec<_> = entries.flatten().map(|e| e.path()).collect();
            paths.sort();
            for path in paths {
                let mut text = String::new();
                if fs::File::open(&path)
                    .and_then(|mut f| f.read_to_string(&mut text))
                    .is_ok()
                {
                    out.push_str(&format!("--- {}\n{text}\n", path.display()));
                }
            }
        }
        out
    }

    /// Kill the runtime abruptly (SIGKILL to its whole process group), as a
    /// crashed pod, and check that none of its processes is left. Panics if
    /// one survives.
    pub fn kill(&mut self) {
        if let Some(left) = self.stop_group() {
            panic!("runtime processes outlived their platform: {left:?}");
        }
    }

    /// The process group id of the running runtime (its leader's pid).
    pub fn process_group(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Kills the process group; `Some(survivors)` when any process is left.
    fn stop_group(&mut self) -> Option<Vec<(u32, String)>> {
        let mut child = self.child.take()?;
        let left = kill_group(child.id(), &mut child);
        (!left.is_empty()).then_some(left)
    }

    /// `http://127.0.0.1:<port>`.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// An HTTP client for this platform.
    pub fn client(&self) -> Client {
        Client::new(self.base_url())
    }
}

impl Drop for Platform {
    fn drop(&mut self) {
        if let Some(left) = self.stop_group() {
            // A panic while the test is already failing would abort the
            // process; the caller's check of the recorded groups catches it.
            if std::thread::panicking() {
                eprintln!("runtime processes outlived their platform: {left:?}");
            } else {
                panic!("runtime processes outlived their platform: {left:?}");
            }
        }
    }
}

/// Appends `pgid` to the file named by `E2E_PROCESS_GROUPS`, if set.
fn record_process_group(pgid: u32) {
    let Ok(path) = std::env::var("E2E_PROCESS_GROUPS") else {
        return;
    };
    use std::io::Write;
    let written = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut f| writeln!(f, "{pgid}"));
    if let Err(e) = written {
        panic!("cannot record the process group in {path}: {e}");
    }
}

/// A response as the tests see it.
#[derive(Debug, Clone)]
pub struct Reply {
    /// Status code.
    pub status: u16,
    /// Headers (names lower case).
    pub headers: Vec<(String, String)>,
    /// Body bytes.
    pub body: Vec<u8>,
}

impl Reply {
    /// The first value of a header.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether the body contains `needle` as text.
    pub fn body_contains(&self, needle: &str) -> bool {
        String::from_utf8_lossy(&self.body).contains(needle)
    }

    /// The body as JSON (panics with the body if it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "status {} body is not JSON ({e}): {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// Assert an RFC 9457 problem body with `status`.
    pub fn assert_problem(&self, status: u16) -> Value {
        assert_eq!(
            self.status,
            status,
            "unexpected status, body: {}",
            String::from_utf8_lossy(&self.body)
        );
        let content_type = self.header("content-type").unwrap_or_default();
        assert!(
            content_type.starts_with("application/problem+json"),
            "problem responses are application/problem+json, got {content_type:?}"
        );
        let problem = self.json();
        assert_eq!(
            problem["status"],
            json!(status),
            "problem status member: {problem}"
        );
        assert!(problem["title"].is_string(), "problem title: {problem}");
        problem
    }
}

/// A small blocking HTTP client for the platform's API.
pub struct Client {
    base: String,
    agent: ureq::Agent,
}

impl Client {
    /// A client for `base` (`http://host:port`).
    pub fn new(base: String) -> Self {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .new_agent();
        Self { base, agent }
    }

    /// Send a request; `headers` are added as given.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Reply {
        let headers: Vec<(&str, &[u8])> = headers.iter().map(|(n, v)| (*n, v.as_bytes())).collect();
        self.request_bytes(method, path, &headers, body)
    }

    /// Send a request whose header values are raw bytes (which need not be
    /// UTF-8: HTTP allows obs-text, octets 0x80-0xFF).
    pub fn request_bytes(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &[u8])],
        body: Option<&[u8]>,
    ) -> Reply {
        let mut builder = ureq::http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        for (name, value) in headers {
            let value = ureq::http::HeaderValue::from_bytes(value)
                .unwrap_or_else(|e| panic!("header {name}: {e}"));
            builder = builder.header(*name, value);
        }
        let request = builder
            .body(body.map(<[u8]>::to_vec).unwrap_or_default())
            .expect("valid request");
        let response = self
            .agent
            .run(request)
            .unwrap_or_else(|e| panic!("{method} {path} failed: {e}"));
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_string(),
                    v.to_str().unwrap_or_default().to_string(),
                )
            })
            .collect();
        let body = response
            .into_body()
            .with_config()
            .limit(64 * 1024 * 1024)
            .read_to_vec()
            .expect("read response body");
        Reply {
            status,
            headers,
            body,
        }
    }

    /// Send a request whose body the server may refuse before reading all
    /// of it, as the API does with a `413` for an oversize body. A server
    /// that answers early and closes makes the rest of the client's write
    /// fail (`EPIPE`, `ECONNRESET`, depending on how far the body got into
    /// the socket buffers); an HTTP client should still read the response
    /// that was sent before, as curl does. ureq gives up on the write error,
    /// so this speaks HTTP/1.1 (`connection: close`) on a plain socket.
    pub fn request_early_reply(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &[u8])],
        body: &[u8],
    ) -> Reply {
        use std::io::{ErrorKind, Write};
        let authority = self
            .base
            .strip_prefix("http://")
            .unwrap_or_else(|| panic!("not an http:// base URL: {}", self.base));
        let mut stream =
            TcpStream::connect(authority).unwrap_or_else(|e| panic!("connect to {authority}: {e}"));
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .and_then(|()| stream.set_write_timeout(Some(Duration::from_secs(30))))
            .expect("socket timeouts");
        let mut request = format!(
            "{method} {path} HTTP/1.1\r\nhost: {authority}\r\nconnection: close\r\ncontent-length: {}\r\n",
            body.len()
        )
        .into_bytes();
        for (name, value) in headers {
            request.extend_from_slice(name.as_bytes());
            request.extend_from_slice(b": ");
            request.extend_from_slice(value);
            request.extend_from_slice(b"\r\n");
        }
        request.extend_from_slice(b"\r\n");
        request.extend_from_slice(body);
        match stream.write_all(&request) {
            Ok(()) => {}
            Err(e) if matches!(e.kind(), ErrorKind::BrokenPipe | ErrorKind::ConnectionReset) => {}
            Err(e) => panic!("{method} {path}: writing the request: {e}"),
        }
        // Until the server closes; a reset after its response (it closed
        // with our unread body in its buffer) ends the response too. What
        // arrived before an error stays in `raw`.
        let mut raw = Vec::new();
        match stream.read_to_end(&mut raw) {
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::ConnectionReset && !raw.is_empty() => {}
            Err(e) => panic!("{method} {path}: reading the response: {e}"),
        }
        parse_response(&raw).unwrap_or_else(|e| {
            panic!(
                "{method} {path}: {e}; the server sent: {}",
                String::from_utf8_lossy(&raw)
            )
        })
    }

    /// `GET path` with a bearer key.
    pub fn get(&self, path: &str, key: &str) -> Reply {
        let auth = format!("Bearer {key}");
        self.request("GET", path, &[("authorization", &auth)], None)
    }

    /// `POST /api/v1/jobs` with a JSON body and a bearer key.
    pub fn submit(&self, key: &str, body: &Value) -> Reply {
        self.submit_with(key, body, &[])
    }

    /// `POST /api/v1/jobs` with extra headers.
    pub fn submit_with(&self, key: &str, body: &Value, extra: &[(&str, &str)]) -> Reply {
        let auth = format!("Bearer {key}");
        let mut headers = vec![
            ("authorization", auth.as_str()),
            ("content-type", "application/json"),
        ];
        headers.extend_from_slice(extra);
        self.request(
            "POST",
            "/api/v1/jobs",
            &headers,
            Some(body.to_string().as_bytes()),
        )
    }

    /// Submit and return the new job's id (asserting `202`).
    pub fn submit_ok(&self, key: &str, body: &Value) -> String {
        let reply = self.submit(key, body);
        assert_eq!(
            reply.status,
            202,
            "submit failed: {}",
            String::from_utf8_lossy(&reply.body)
        );
        reply.json()["id"].as_str().expect("job id").to_string()
    }

    /// `POST` an admin route with the operator token.
    pub fn admin_post(&self, path: &str) -> Reply {
        let auth = format!("Bearer {ADMIN_TOKEN}");
        self.request("POST", path, &[("authorization", &auth)], None)
    }

    /// Trigger a sweep, as the Kubernetes CronJob does.
    pub fn sweep(&self) -> Reply {
        self.admin_post("/api/v1/admin/sweep")
    }

    /// The job's status document.
    pub fn job(&self, key: &str, id: &str) -> Value {
        let reply = self.get(&format!("/api/v1/jobs/{id}"), key);
        assert_eq!(
            reply.status,
            200,
            "GET job {id}: {}",
            String::from_utf8_lossy(&reply.body)
        );
        reply.json()
    }

    /// Wait until the job reaches a final status (`succeeded` or `failed`),
    /// calling the sweep route every second meanwhile; returns the job.
    pub fn wait_final(&self, key: &str, id: &str, timeout: Duration) -> Value {
        let mut last_sweep = Instant::now();
        eventually(timeout, &format!("job {id} to finish"), || {
            let job = self.job(key, id);
            match job["status"].as_str() {
                Some("succeeded" | "failed") => Some(job),
                _ => {
                    if last_sweep.elapsed() > Duration::from_secs(1) {
                        self.sweep();
                        last_sweep = Instant::now();
                    }
                    None
                }
            }
        })
    }
}

/// An HTTP/1.1 response read to the end of the connection: status line,
/// headers, and a body framed by `content-length`, chunked, or the close.
fn parse_response(raw: &[u8]) -> Result<Reply, String> {
    let mut slots = [httparse::EMPTY_HEADER; 64];
    let mut response = httparse::Response::new(&mut slots);
    let head_len = match response.parse(raw) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Err("incomplete response head".into()),
        Err(e) => return Err(format!("malformed response head: {e}")),
    };
    let status = response.code.ok_or("no status code")?;
    let headers: Vec<(String, String)> = response
        .headers
        .iter()
        .map(|h| {
            (
                h.name.to_ascii_lowercase(),
                String::from_utf8_lossy(h.value).into_owned(),
            )
        })
        .collect();
    let mut reply = Reply {
        status,
        headers,
        body: Vec::new(),
    };
    let rest = &raw[head_len..];
    let chunked = reply
        .header("transfer-encoding")
        .is_some_and(|te| te.trim().to_ascii_lowercase().ends_with("chunked"));
    reply.body = if chunked {
        dechunk(rest)?
    } else if let Some(length) = reply.header("content-length") {
        let length: usize = length
            .trim()
            .parse()
            .map_err(|_| format!("content-length {length:?}"))?;
        rest.get(..length)
            .ok_or_else(|| format!("body of {} bytes, content-length {length}", rest.len()))?
            .to_vec()
    } else {
        rest.to_vec()
    };
    Ok(reply)
}

/// The body of a chunked transfer coding, up to its last (empty) chunk.
fn dechunk(mut rest: &[u8]) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    loop {
        let line_end = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("chunk size line without CRLF")?;
        let size_text = String::from_utf8_lossy(&rest[..line_end]);
        let size_text = size_text.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| format!("chunk size {size_text:?}"))?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            return Ok(body);
        }
        let chunk = rest.get(..size).ok_or("truncated chunk")?;
        body.extend_from_slice(chunk);
        rest = rest.get(size + 2..).ok_or("chunk without trailing CRLF")?;
    }
}

/// A `text-stats` job body.
pub fn text_job(text: &str) -> Value {
    json!({"type": "text-stats", "input": {"text": text}})
}

/// A PNG image of `width` x `height` with a deterministic pattern.
pub fn test_png(width: u32, height: u32) -> Vec<u8> {
    let image = image::RgbImage::from_fn(width, height, |x, y| {
        image::Rgb([
            (x % 256) as u8,
            (y % 256) as u8,
            ((x * 7 + y * 13) % 256) as u8,
        ])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    image
        .write_to(&mut out, image::ImageFormat::Png)
        .expect("encode png");
    out.into_inner()
}

/// A `thumbnail` job body.
pub fn thumbnail_job(png: &[u8], max_width: u32, max_height: u32) -> Value {
    use base64::Engine;
    json!({
        "type": "thumbnail",
        "input": {
            "image": base64::engine::general_purpose::STANDARD.encode(png),
            "max_width": max_width,
            "max_height": max_height,
        }
    })
}

/// A full local stack: Redis, Azurite and one platform process with every component.
pub struct Stack {
    /// The Redis server.
    pub redis: RedisServer,
    /// The Azurite server.
    pub azurite: Azurite,
    /// The platform (API + worker).
    pub platform: Platform,
}

impl Stack {
    /// Start everything with default options.
    pub fn start() -> Self {
        Self::start_with(PlatformOptions::default())
    }

    /// Start everything with `options`.
    pub fn start_with(options: PlatformOptions) -> Self {
        let redis = RedisServer::start();
        let azurite = Azurite::start();
        let platform = Platform::start(&redis, &azurite, options);
        Self {
            redis,
            azurite,
            platform,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn parse_response_frames_the_body_by_length_chunks_or_close() {
        let sized = parse_response(
            b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: 2\r\nX-A: b\r\n\r\n{}trailing",
        )
        .unwrap();
        assert_eq!(sized.status, 413);
        assert_eq!(sized.header("x-a"), Some("b"));
        assert_eq!(sized.body, b"{}");

        let chunked = parse_response(
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\na\r\n0123456789\r\n0\r\n\r\n",
        )
        .unwrap();
        assert_eq!(chunked.body, b"abc0123456789");

        let closed = parse_response(b"HTTP/1.1 200 OK\r\n\r\nuntil the close").unwrap();
        assert_eq!(closed.body, b"until the close");

        assert!(parse_response(b"HTTP/1.1 200 OK\r\ncontent-length: 9\r\n\r\nshort").is_err());
        assert!(
            parse_response(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n").is_err()
        );
        assert!(parse_response(b"HTTP/1.1 200 OK\r\n").is_err());
    }

    /// A server that reads a little of the request, answers and closes: the
    /// client's write fails part way, and the answer is still read.
    #[test]
    fn request_early_reply_reads_the_answer_of_a_server_that_stops_reading() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let (mut socket, _) = listener.accept().unwrap();
            let mut head = [0u8; 4096];
            let n = socket.read(&mut head).unwrap();
            // One write, as an HTTP server sends a small response: closing
            // with the request unread resets the connection and drops
            // whatever the kernel still held back (Nagle).
            let body = r#"{"status":413,"title":"too large"}"#;
            let response = format!(
                "HTTP/1.1 413 Payload Too Large\r\ncontent-type: application/problem+json\r\ncontent-length: {}\r\n\r\n{body}",
                body.len()
            );
            socket.write_all(response.as_bytes()).unwrap();
            n
        });
        let client = Client::new(format!("http://127.0.0.1:{port}"));
        let reply =
            client.request_early_reply("POST", "/x", &[("x-a", b"b")], &vec![b'a'; 16 << 20]);
        assert!(server.join().unwrap() > 0);
        reply.assert_problem(413);
    }
}
