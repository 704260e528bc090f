//! The bench's sections: API, pipeline, native reference, sizes.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use e2e::{
    repo_root, test_png, text_job, thumbnail_job, Azurite, Platform, PlatformOptions, RedisServer,
    Runtime, DEMO_KEY,
};
use platform_core::blob::BlobClient;
use platform_core::config::PipelineConfig;
use platform_core::jobs;
use platform_core::native::{block_on, CountingRedis, NativeHttp, NativeRedis};
use platform_core::pipeline::{self, NewJob, ResultRef, SubmitOutcome};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use crate::delay_proxy::DelayProxy;
use crate::loadgen::LoadgenResult;
use crate::redis_stats::Observer;
use crate::report::{self, RunFigures};
use crate::stats::{mean, percentile};
use crate::{command_output, procfs, wrk, RunArgs};

/// The small `text-stats` input (44 bytes).
pub const SMALL_TEXT: &str = "The quick brown fox jumps over the lazy dog.";

/// Phase lengths and counts: full or quick.
struct Plan {
    wrk_secs: u32,
    wrk_max_requests: u64,
    fixed_rate: u32,
    fixed_secs: f64,
    /// (burst jobs, paced jobs) for text small, text 100 KiB, thumbnail.
    jobs: [(usize, usize); 3],
    native_jobs: usize,
}

impl Plan {
    fn new(quick: bool) -> Self {
        if quick {
            Plan {
                wrk_secs: 3,
                wrk_max_requests: 100_000,
                fixed_rate: 1000,
                fixed_secs: 3.0,
                jobs: [(300, 100), (40, 20), (4, 3)],
                native_jobs: 1000,
            }
        } else {
            Plan {
                wrk_secs: 8,
                wrk_max_requests: 400_000,
                fixed_rate: 1000,
                fixed_secs: 8.0,
                jobs: [(2000, 400), (200, 60), (20, 10)],
                native_jobs: 5000,
            }
        }
    }
}

fn set(figures: &mut RunFigures, key: &str, value: f64) {
    figures.insert(key.to_string(), value);
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        f64::NAN
    } else {
        a as f64 / b as f64
    }
}

/// Run everything and write the results.
pub fn bench(args: &RunArgs) -> Result<(), String> {
    let root = repo_root();
    std::env::set_current_dir(&root).map_err(|e| e.to_string())?;
    let plan = Plan::new(args.quick);
    let sections = |name: &str| args.only.iter().any(|s| s == name);
    let runtime = match Runtime::from_env() {
        Runtime::Local => {
            let bin = std::env::var("SPIN_LOCAL_BIN")
                .unwrap_or_else(|_| "target/runtime/spin-local".into());
            let version = command_output(&bin, &["--version"]);
            format!("local runtime `{bin}` ({version})")
        }
        Runtime::Spin => {
            let bin = std::env::var("SPIN_BIN").unwrap_or_else(|_| "spin".into());
            format!(
                "Spin CLI `{bin} up` ({})",
                command_output(&bin, &["--version"])
            )
        }
    };
    eprintln!("bench: measuring {runtime}");
    let dirty =
        if command_output("git", &["status", "--porcelain", "--untracked-files=no"]).is_empty() {
            ""
        } else {
            " (with uncommitted changes)"
        };
    let mut ctx = report::Context {
        runtime,
        machine: procfs::machine(),
        commit: format!(
            "{}{dirty}",
            command_output("git", &["rev-parse", "--short", "HEAD"])
        ),
        date: command_output("date", &["-u", "+%Y-%m-%d %H:%M"]),
        mode: if args.quick { "quick" } else { "full" },
        load: Vec::new(),
        tuning: report::runtime_tuning(std::env::vars()),
    };

    let mut runs = Vec::new();
    let mut details = Vec::new();
    let mut failed = 0;
    for run in 1..=args.runs.max(1) {
        let load_start = procfs::loadavg();
        let started = Instant::now();
        let mut figures = RunFigures::new();
        let mut detail = Map::new();
        let mut errors = Vec::new();
        eprintln!(
            "bench: run {run}/{} (load average {load_start})",
            args.runs.max(1)
        );
        let redis = RedisServer::start();
        let azurite = Azurite::start();
        let mut observer = Observer::new(&redis.url(), &root.join("crates/core/src/pipeline"))?;
        detail.insert(
            "script_commands".into(),
            json!(observer.script_commands().iter().collect::<Vec<_>>()),
        );
        let section =
            |name: &str, errors: &mut Vec<String>, f: &mut dyn FnMut() -> Result<(), String>| {
                if !sections(name) {
                    return;
                }
                eprintln!("bench: run {run}: {name}");
                match catch_unwind(AssertUnwindSafe(f)) {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => errors.push(format!("{name}: {e}")),
                    Err(panic) => {
                        let message = panic
                            .downcast_ref::<String>()
                            .cloned()
                            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                            .unwrap_or_else(|| "panic".into());
                        errors.push(format!("{name}: {message}"));
                    }
                }
            };
        section("api", &mut errors, &mut || {
            api(
                &plan,
                &redis,
                &azurite,
                &mut observer,
                &mut figures,
                &mut detail,
            )
        });
        section("pipeline", &mut errors, &mut || {
            pipeline_section(
                &plan,
                &redis,
                &azurite,
                &mut observer,
                &mut figures,
                &mut detail,
            )
        });
        section("latency", &mut errors, &mut || {
            latency_section(
                &plan,
                &redis,
                &azurite,
                &mut observer,
                &mut figures,
                &mut detail,
            )
        });
        section("native", &mut errors, &mut || {
            native(&plan, &redis, &mut observer, &mut figures)
        });
        section("size", &mut errors, &mut || {
            sizes(&root, &mut figures, &mut detail)
        });
        for e in &errors {
            eprintln!("bench: run {run}: error: {e}");
        }
        failed += errors.len();
        let load_end = procfs::loadavg();
        ctx.load.push(format!("{load_start} → {load_end}"));
        detail.insert("errors".into(), json!(errors));
        detail.insert("seconds".into(), json!(started.elapsed().as_secs_f64()));
        detail.insert("figures".into(), json!(figures));
        details.push(Value::Object(detail));
        runs.push(figures);
    }

    let (md, doc) = report::render(&ctx, &runs, details);
    let out = if args.out.is_absolute() {
        args.out.clone()
    } else {
        root.join(&args.out)
    };
    std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    std::fs::write(out.join("results.md"), &md).map_err(|e| e.to_string())?;
    std::fs::write(
        out.join("results.json"),
        serde_json::to_string_pretty(&doc).expect("json"),
    )
    .map_err(|e| e.to_string())?;
    println!("{md}");
    eprintln!(
        "bench: wrote {} and {}",
        out.join("results.json").display(),
        out.join("results.md").display()
    );
    if failed > 0 {
        return Err(format!(
            "{failed} section(s) failed (see the errors above and results.json); their figures are missing"
        ));
    }
    Ok(())
}

/// JSON log lines of one component's stdout (`<component>_stdout.txt`) with `msg`.
fn log_lines(platform: &Platform, component: &str, msg: &str) -> Vec<Value> {
    let logs = platform.all_logs();
    let header = format!("{component}_stdout.txt\n");
    let mut out = Vec::new();
    for section in logs.split("--- ").filter(|s| {
        s.lines()
            .next()
            .is_some_and(|l| format!("{l}\n").ends_with(&header))
    }) {
        for line in section.lines().skip(1) {
            if let Ok(value) = serde_json::from_str::<Value>(line) {
                if value["msg"] == msg {
                    out.push(value);
                }
            }
        }
    }
    out
}

fn guest_ms(lines: &[Value], filter: impl Fn(&Value) -> bool) -> Vec<f64> {
    lines
        .iter()
        .filter(|l| filter(l))
        .filter_map(|l| {
            // Microseconds where the log has them, else whole milliseconds.
            l["duration_us"]
                .as_f64()
                .map(|us| us / 1000.0)
                .or_else(|| l["duration_ms"].as_f64())
        })
        .collect()
}

fn run_loadgen(
    url: &str,
    method: &str,
    headers: &[(&str, String)],
    body: Option<&[u8]>,
    rate: u32,
    secs: f64,
) -> Result<LoadgenResult, String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut command = Command::new(exe);
    command
        .args(["loadgen", "--url", url, "--method", method])
        .args(["--rate", &rate.to_string(), "--duration", &secs.to_string()])
        .args(["--connections", "64", "--timeout", "5"]);
    for (name, value) in headers {
        command.args(["--header", &format!("{name}: {value}")]);
    }
    if let Some(body) = body {
        let path = dir.path().join("body");
        std::fs::write(&path, body).map_err(|e| e.to_string())?;
        command.arg("--body-file").arg(path);
    }
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start loadgen: {e}"))?;
    let deadline = Instant::now() + Duration::from_secs_f64(secs + 30.0);
    while child.try_wait().map_err(|e| e.to_string())?.is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err("loadgen did not finish in time".into());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let output = child.wait_with_output().map_err(|e| e.to_string())?;
    if !output.status.success() {
        return Err(format!(
            "loadgen failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    serde_json::from_slice(&output.stdout).map_err(|e| format!("loadgen output: {e}"))
}

/// One API endpoint under load.
struct Endpoint<'a> {
    name: &'a str,
    method: &'a str,
    path: &'a str,
    route: &'a str,
    headers: Vec<(&'a str, String)>,
    body: Option<&'a [u8]>,
}

/// API: saturation with wrk, then 1,000 req/s open loop, per endpoint.
fn api(
    plan: &Plan,
    redis: &RedisServer,
    azurite: &Azurite,
    observer: &mut Observer,
    figures: &mut RunFigures,
    detail: &mut Map<String, Value>,
) -> Result<(), String> {
    observer.flush()?;
    // The API beside the worker-health component: its `/worker/healthz` does
    // no I/O and reads no variable, so it measures the runtime's own floor
    // per request in the same process, for the API's routes to compare with.
    // The bench measures the API itself, not the tenants' submit limits.
    let platform = Platform::start(
        redis,
        azurite,
        PlatformOptions {
            components: vec!["api", "worker-health"],
            ..PlatformOptions::default()
        }
        .var("submit_limits", "0/0/0"),
    );
    let group = platform
        .process_group()
        .ok_or("cannot find the runtime process")?;
    let redis_pid = procfs::child_with_arg(&format!("127.0.0.1:{}", redis.port));
    let client = platform.client();
    let body = text_job(SMALL_TEXT).to_string().into_bytes();
    let mut job_id = String::new();
    for _ in 0..50 {
        job_id = client.submit_ok(DEMO_KEY, &text_job(SMALL_TEXT));
        client.get(&format!("/api/v1/jobs/{job_id}"), DEMO_KEY);
        client.request("GET", "/healthz", &[], None);
    }
    let auth = format!("Bearer {DEMO_KEY}");
    let get_path = format!("/api/v1/jobs/{job_id}");
    let endpoints = [
        Endpoint {
            name: "submit",
            method: "POST",
            path: "/api/v1/jobs",
            route: "/api/v1/jobs",
            headers: vec![
                ("Authorization", auth.clone()),
                ("Content-Type", "application/json".into()),
            ],
            body: Some(&body),
        },
        Endpoint {
            name: "get",
            method: "GET",
            path: &get_path,
            route: "/api/v1/jobs/{id}",
            headers: vec![("Authorization", auth.clone())],
            body: None,
        },
        Endpoint {
            name: "healthz",
            method: "GET",
            path: "/healthz",
            route: "/healthz",
            headers: vec![],
            body: None,
        },
        Endpoint {
            name: "floor",
            method: "GET",
            path: "/worker/healthz",
            route: "/worker/healthz",
            headers: vec![],
            body: None,
        },
        // The floor of a route that uses Redis at all: one variable read,
        // one new connection (Spin opens one per `Connection::open`), one
        // PING.
        Endpoint {
            name: "redis_floor",
            method: "GET",
            path: "/worker/readyz",
            route: "/worker/readyz",
            headers: vec![],
            body: None,
        },
    ];
    let mut api_detail = Map::new();
    for endpoint in &endpoints {
        let Endpoint {
            name,
            method,
            path,
            route,
            headers,
            body,
        } = endpoint;
        let url = format!("{}{path}", platform.base_url());
        // Saturation, closed loop.
        let due_before: u64 = observer.query("ZCARD", &["{jobs}:due"])?;
        let before = observer.snapshot()?;
        let cpu_before = procfs::group_cpu_seconds(group);
        let redis_cpu_before = redis_pid.and_then(procfs::cpu_seconds);
        let sat = wrk::run(&wrk::WrkRun {
            url: &url,
            method,
            headers,
            body: *body,
            threads: 2,
            connections: 32,
            duration_secs: plan.wrk_secs,
            max_requests: plan.wrk_max_requests,
        })?;
        let after = observer.snapshot()?;
        let cpu_after = procfs::group_cpu_seconds(group);
        let redis_cpu_after = redis_pid.and_then(procfs::cpu_seconds);
        let due_after: u64 = observer.query("ZCARD", &["{jobs}:due"])?;
        let delta = observer.delta(&before, &after);
        let good = sat.requests.saturating_sub(sat.non_2xx + sat.socket_errors);
        let good_rps = if sat.requests == 0 {
            0.0
        } else {
            sat.rps * good as f64 / sat.requests as f64
        };
        set(figures, &format!("api.{name}.sat_rps"), good_rps);
        let per_request = match *name {
            "submit" => due_after - due_before,
            _ => sat.requests,
        };
        if !matches!(*name, "healthz" | "floor" | "redis_floor") {
            set(
                figures,
                &format!("redis.{name}.round_trips"),
                ratio(delta.round_trips, per_request),
            );
            set(
                figures,
                &format!("redis.{name}.connections"),
                ratio(delta.connections, sat.requests),
            );
        }
        if let (Some(a), Some(b)) = (cpu_before, cpu_after) {
            set(
                figures,
                &format!("api.{name}.cpu_ms_per_req"),
                (b - a) * 1e3 / sat.requests.max(1) as f64,
            );
        }
        if let (Some(a), Some(b)) = (redis_cpu_before, redis_cpu_after) {
            set(
                figures,
                &format!("api.{name}.redis_cpu_ms_per_req"),
                (b - a) * 1e3 / sat.requests.max(1) as f64,
            );
        }
        if *name == "submit" {
            set(
                figures,
                "redis.submit.commands",
                ratio(delta.commands, per_request),
            );
        }
        // Fixed rate, open loop.
        let lines_before = log_lines(&platform, "api", "request").len();
        let fixed = run_loadgen(
            &url,
            method,
            headers,
            *body,
            plan.fixed_rate,
            plan.fixed_secs,
        )?;
        let lines = log_lines(&platform, "api", "request");
        let guest = guest_ms(&lines[lines_before.min(lines.len())..], |l| {
            l["route"] == *route && l["method"] == *method
        });
        set(figures, &format!("api.{name}.fixed_p50_ms"), fixed.p50_ms);
        set(figures, &format!("api.{name}.fixed_p99_ms"), fixed.p99_ms);
        if *name == "submit" {
            set(figures, "api.submit.fixed_achieved_rps", fixed.achieved_rps);
        }
        if let Some(m) = mean(&guest) {
            set(figures, &format!("api.{name}.guest_mean_ms"), m);
        }
        api_detail.insert(
            (*name).into(),
            json!({
                "wrk": sat,
                "requests_counted": per_request,
                "redis_delta": {
                    "round_trips": delta.round_trips, "commands": delta.commands,
                    "connections": delta.connections, "calls": delta.calls,
                },
                "runtime_cpu_s": cpu_after.zip(cpu_before).map(|(a, b)| a - b),
                "redis_cpu_s": redis_cpu_after.zip(redis_cpu_before).map(|(a, b)| a - b),
                "fixed_rate": fixed,
                "guest_ms": {
                    "count": guest.len(), "mean": mean(&guest),
                    "p50": percentile(&guest, 50.0), "p99": percentile(&guest, 99.0),
                    "max": percentile(&guest, 100.0),
                },
            }),
        );
        eprintln!(
            "bench:   {name}: {good_rps:.0} req/s saturated; at {} req/s p50 {:.2} ms p99 {:.2} ms ({} of {} ok)",
            plan.fixed_rate, fixed.p50_ms, fixed.p99_ms, fixed.ok, fixed.scheduled
        );
    }
    // Each route against the floors of the same run.
    for (floor, suffix) in [
        ("floor", "of_floor_pct"),
        ("redis_floor", "of_redis_floor_pct"),
    ] {
        let Some(&floor) = figures.get(&format!("api.{floor}.sat_rps")) else {
            continue;
        };
        for name in ["healthz", "submit", "get", "redis_floor"] {
            if let Some(&rps) = figures.get(&format!("api.{name}.sat_rps")) {
                set(
                    figures,
                    &format!("api.{name}.{suffix}"),
                    100.0 * rps / floor,
                );
            }
        }
    }
    if let Some(hwm) = procfs::group_status_mib(group, "VmHWM") {
        set(figures, "rss.api_peak_mib", hwm);
    }
    record_breakdown(group, "api", "after", figures, &mut api_detail);
    // Tokio's blocking threads (Spin's variable reads hand off to them) exit
    // after 10 s idle: what the process keeps once the load is over.
    std::thread::sleep(Duration::from_secs(12));
    record_breakdown(group, "api", "settled", figures, &mut api_detail);
    detail.insert("api".into(), Value::Object(api_detail));
    Ok(())
}

/// The RSS and threads of each of the runtime's processes (`rss.{section}.{role}_{when}_mib`
/// and `..._threads`), and their sums at `when`.
fn record_breakdown(
    group: u32,
    section: &str,
    when: &str,
    figures: &mut RunFigures,
    detail: &mut Map<String, Value>,
) {
    let processes = procfs::group_breakdown(group);
    for (role, rss, threads) in &processes {
        set(figures, &format!("rss.{section}.{role}_{when}_mib"), *rss);
        set(
            figures,
            &format!("rss.{section}.{role}_{when}_threads"),
            *threads,
        );
    }
    let total: f64 = processes.iter().map(|p| p.1).sum();
    let threads: f64 = processes.iter().map(|p| p.2).sum();
    set(figures, &format!("rss.{section}.total_{when}_mib"), total);
    set(
        figures,
        &format!("rss.{section}.total_{when}_threads"),
        threads,
    );
    detail.insert(
        format!("processes_{when}"),
        json!(processes
            .iter()
            .map(
                |(role, rss, threads)| json!({"role": role, "vm_rss_mib": rss, "threads": threads})
            )
            .collect::<Vec<_>>()),
    );
}

/// One pipeline case.
struct Case {
    key: &'static str,
    job_type: &'static str,
    input: Value,
    burst: usize,
    paced: usize,
    timeout: Duration,
}

fn new_job(job_type: &str, input: &Value) -> NewJob {
    NewJob {
        tenant: "demo".into(),
        job_type: job_type.into(),
        input_json: input.to_string(),
        request_hash: platform_core::api::request_hash(job_type, input),
        idempotency_key: None,
    }
}

fn submit_one(
    redis: &CountingRedis<NativeRedis>,
    cfg: &PipelineConfig,
    case: &Case,
) -> Result<String, String> {
    match pipeline::submit(redis, cfg, new_job(case.job_type, &case.input)) {
        Ok(SubmitOutcome::Created(record)) => Ok(record.id),
        other => Err(format!("submit: {other:?}")),
    }
}

/// Wait until nothing is due (every job finished), at most `timeout`.
fn wait_drained(observer: &mut Observer, timeout: Duration) -> Result<bool, String> {
    let deadline = Instant::now() + timeout;
    loop {
        let due: u64 = observer.query("ZCARD", &["{jobs}:due"])?;
        if due == 0 {
            return Ok(true);
        }
        if Instant::now() > deadline {
            return Ok(false);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Wait until the worker stops sending commands (it still handles messages
/// for jobs a batched claim already took): `EVALSHA` calls unchanged for
/// 300 ms, at most `timeout`.
fn wait_quiet(observer: &mut Observer, timeout: Duration) -> Result<bool, String> {
    let deadline = Instant::now() + timeout;
    let calls = |observer: &mut Observer| -> Result<u64, String> {
        Ok(observer
            .snapshot()?
            .calls
            .get("evalsha")
            .copied()
            .unwrap_or(0))
    };
    let mut last = calls(observer)?;
    let mut still = 0;
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        let now = calls(observer)?;
        if now == last {
            still += 1;
            if still >= 3 {
                return Ok(true);
            }
        } else {
            still = 0;
            last = now;
        }
    }
    Ok(false)
}

/// `(created_at, started_at, finished_at)` of the jobs that succeeded.
fn job_times(observer: &mut Observer, ids: &[String]) -> Result<Vec<(f64, f64, f64)>, String> {
    let mut out = Vec::new();
    for id in ids {
        let key = format!("{{jobs}}:job:{id}");
        let values: Vec<Option<String>> = observer.query(
            "HMGET",
            &[&key, "status", "created_at", "started_at", "finished_at"],
        )?;
        if values.first().and_then(|s| s.as_deref()) != Some("succeeded") {
            continue;
        }
        let n = |i: usize| {
            values
                .get(i)
                .and_then(|v| v.as_deref())
                .and_then(|v| v.parse::<f64>().ok())
        };
        if let (Some(c), Some(s), Some(f)) = (n(1), n(2), n(3)) {
            out.push((c, s, f));
        }
    }
    Ok(out)
}

/// Pipeline: jobs through one worker process (`worker` + `worker-health`).
fn pipeline_section(
    plan: &Plan,
    redis: &RedisServer,
    azurite: &Azurite,
    observer: &mut Observer,
    figures: &mut RunFigures,
    detail: &mut Map<String, Value>,
) -> Result<(), String> {
    let cfg = PipelineConfig::default();
    let submitter = CountingRedis::new(NativeRedis::new(&redis.url()).map_err(|e| e.to_string())?);
    let cases = [
        Case {
            key: "text_small",
            job_type: "text-stats",
            input: json!({"text": SMALL_TEXT}),
            burst: plan.jobs[0].0,
            paced: plan.jobs[0].1,
            timeout: Duration::from_secs(60),
        },
        Case {
            key: "text_100k",
            job_type: "text-stats",
            input: json!({"text": "lorem ipsum dolor sit amet, consectetur adipiscing elit. "
                .repeat(2000)[..100 * 1024]}),
            burst: plan.jobs[1].0,
            paced: plan.jobs[1].1,
            timeout: Duration::from_secs(90),
        },
        Case {
            key: "thumbnail",
            job_type: "thumbnail",
            input: thumbnail_job(&test_png(1000, 1000), 256, 256)["input"].clone(),
            burst: plan.jobs[2].0,
            paced: plan.jobs[2].1,
            timeout: Duration::from_secs(150),
        },
    ];

    // Calibrate the commands one native submit costs (nobody subscribed yet).
    observer.flush()?;
    submit_one(&submitter, &cfg, &cases[0])?;
    let before = observer.snapshot()?;
    let calibration = 50;
    for _ in 0..calibration {
        submit_one(&submitter, &cfg, &cases[0])?;
    }
    let after = observer.snapshot()?;
    let submit_commands = ratio(observer.delta(&before, &after).commands, calibration);
    observer.flush()?;

    let (platform, group) = start_worker(redis, azurite, PlatformOptions::worker_only())?;
    let azurite_pid = procfs::child_with_arg(&format!("--blobPort {}", azurite.port));
    let redis_pid = procfs::child_with_arg(&format!("127.0.0.1:{}", redis.port));
    let cpu = || {
        [
            procfs::group_cpu_seconds(group),
            redis_pid.and_then(procfs::cpu_seconds),
            azurite_pid.and_then(procfs::cpu_seconds),
        ]
    };
    // Warm-up: a few jobs of each type.
    for case in &cases {
        for _ in 0..3 {
            submit_one(&submitter, &cfg, case)?;
        }
        if !wait_drained(observer, case.timeout)? {
            return Err(format!("warm-up {} jobs did not finish", case.key));
        }
        wait_quiet(observer, case.timeout)?;
    }

    let mut pipeline_detail = Map::new();
    for case in &cases {
        // Throughput: a burst, all submitted at once.
        let lines_before = log_lines(&platform, "worker", "job").len();
        let cpu_before = cpu();
        let mut ids = Vec::with_capacity(case.burst);
        for _ in 0..case.burst {
            ids.push(submit_one(&submitter, &cfg, case)?);
        }
        let drained = wait_drained(observer, case.timeout)?;
        let cpu_after = cpu();
        let times = job_times(observer, &ids)?;
        let quiet = wait_quiet(observer, case.timeout)?;
        // CPU per job of the runtime, Redis and Azurite during the burst.
        let cpu_ms: Vec<Option<f64>> = cpu_before
            .iter()
            .zip(&cpu_after)
            .map(|(b, a)| Some((a.as_ref()? - b.as_ref()?) * 1e3 / times.len().max(1) as f64))
            .collect();
        for (process, value) in ["runtime", "redis", "azurite"].iter().zip(&cpu_ms) {
            if let Some(v) = value {
                set(
                    figures,
                    &format!("pipeline.{}.cpu_ms_{process}", case.key),
                    *v,
                );
            }
        }
        let (window_ms, jobs_per_s) = throughput(&times);
        set(
            figures,
            &format!("pipeline.{}.jobs_per_s", case.key),
            jobs_per_s,
        );
        let burst_lines = log_lines(&platform, "worker", "job");
        let burst_guest = guest_ms(&burst_lines[lines_before.min(burst_lines.len())..], |l| {
            l["outcome"] == "succeeded"
        });

        // Latency: paced at half the measured throughput (at most 200/s).
        let rate = (jobs_per_s / 2.0).clamp(0.5, 200.0);
        let lines_before = burst_lines.len();
        let submitted_before = submitter.count();
        let before = observer.snapshot()?;
        let start = Instant::now();
        let mut paced_ids = Vec::with_capacity(case.paced);
        for i in 0..case.paced {
            let due = start + Duration::from_secs_f64(i as f64 / rate);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            paced_ids.push(submit_one(&submitter, &cfg, case)?);
        }
        let paced_drained = wait_drained(observer, case.timeout)?;
        wait_quiet(observer, case.timeout)?;
        let after = observer.snapshot()?;
        let own_round_trips = submitter.count() - submitted_before;
        let delta = observer.delta(&before, &after);
        let paced_times = job_times(observer, &paced_ids)?;
        let latencies: Vec<f64> = paced_times.iter().map(|t| t.2 - t.0).collect();
        let queue_ms: Vec<f64> = paced_times.iter().map(|t| t.1 - t.0).collect();
        let lines = log_lines(&platform, "worker", "job");
        let paced_guest = guest_ms(&lines[lines_before.min(lines.len())..], |l| {
            l["outcome"] == "succeeded"
        });
        if let Some(p) = percentile(&latencies, 50.0) {
            set(figures, &format!("pipeline.{}.p50_ms", case.key), p);
        }
        if let Some(p) = percentile(&latencies, 99.0) {
            set(figures, &format!("pipeline.{}.p99_ms", case.key), p);
        }
        let all_guest: Vec<f64> = burst_guest.iter().chain(&paced_guest).copied().collect();
        if let Some(m) = mean(&all_guest) {
            set(figures, &format!("pipeline.{}.guest_mean_ms", case.key), m);
        }
        let processed = paced_times.len() as u64;
        let worker_round_trips = delta.round_trips.saturating_sub(own_round_trips);
        let worker_commands = delta.commands as f64 - submit_commands * paced_ids.len() as f64;
        if case.key == "text_small" {
            set(
                figures,
                "redis.process.round_trips",
                ratio(worker_round_trips, processed),
            );
            set(
                figures,
                "redis.process.commands",
                worker_commands / processed.max(1) as f64,
            );
            set(
                figures,
                "redis.process.connections",
                ratio(delta.connections, processed),
            );
        }
        pipeline_detail.insert(
            case.key.into(),
            json!({
                "input_bytes": case.input.to_string().len(),
                "burst": {
                    "submitted": ids.len(), "succeeded": times.len(), "drained": drained, "quiet_after": quiet,
                    "window_ms": window_ms, "jobs_per_s": jobs_per_s,
                    "cpu_ms_per_job": {"runtime": cpu_ms[0], "redis": cpu_ms[1], "azurite": cpu_ms[2]},
                    "guest_ms_mean": mean(&burst_guest),
                },
                "paced": {
                    "rate_per_s": rate, "submitted": paced_ids.len(), "succeeded": processed,
                    "drained": paced_drained,
                    "latency_ms": {"p50": percentile(&latencies, 50.0), "p99": percentile(&latencies, 99.0),
                                   "max": percentile(&latencies, 100.0), "mean": mean(&latencies)},
                    "queued_ms_mean": mean(&queue_ms),
                    "guest_ms": {"mean": mean(&paced_guest), "p50": percentile(&paced_guest, 50.0),
                                 "p99": percentile(&paced_guest, 99.0)},
                    "redis_delta": {
                        "round_trips_total": delta.round_trips, "submit_round_trips": own_round_trips,
                        "commands_total": delta.commands, "submit_commands_each": submit_commands,
                        "connections": delta.connections, "calls": delta.calls,
                    },
                },
            }),
        );
        eprintln!(
            "bench:   {}: {jobs_per_s:.1} jobs/s; paced at {rate:.1}/s p50 {:?} ms p99 {:?} ms",
            case.key,
            percentile(&latencies, 50.0),
            percentile(&latencies, 99.0)
        );
        observer.flush()?;
        if let Some(entry) = pipeline_detail.get_mut(case.key) {
            entry["vm_hwm_mib_after"] = json!(procfs::group_status_mib(group, "VmHWM"));
            entry["vm_rss_mib_after"] = json!(procfs::group_status_mib(group, "VmRSS"));
        }
    }
    record_breakdown(group, "worker", "after", figures, &mut pipeline_detail);
    if let Some(hwm) = procfs::group_status_mib(group, "VmHWM") {
        set(figures, "rss.worker_peak_mib", hwm);
    }
    detail.insert("pipeline".into(), Value::Object(pipeline_detail));
    drop(platform);
    observer.flush()?;
    Ok(())
}

/// Start a worker platform, find its process group and wait until its
/// `/worker/readyz` answers.
fn start_worker(
    redis: &RedisServer,
    azurite: &Azurite,
    options: PlatformOptions,
) -> Result<(Platform, u32), String> {
    let platform = Platform::start(redis, azurite, options);
    let group = platform
        .process_group()
        .ok_or("cannot find the runtime process")?;
    let client = platform.client();
    e2e::eventually(Duration::from_secs(30), "the worker to be ready", || {
        (client.request("GET", "/worker/readyz", &[], None).status == 200).then_some(())
    });
    Ok((platform, group))
}

/// A burst's window (first `created_at` to last `finished_at`, ms) and jobs/s.
fn throughput(times: &[(f64, f64, f64)]) -> (f64, f64) {
    if times.is_empty() {
        return (0.0, 0.0);
    }
    let first_created = times.iter().map(|t| t.0).fold(f64::INFINITY, f64::min);
    let last_finished = times.iter().map(|t| t.2).fold(0.0, f64::max);
    let window = last_finished - first_created;
    (window, times.len() as f64 * 1e3 / window.max(1.0))
}

/// The one-way delay of the storage latency proxy: a round trip gains 20 ms.
pub const STORAGE_ONE_WAY: Duration = Duration::from_millis(10);

/// The worker behind 20 ms of storage latency: a burst of small text jobs,
/// with the worker's jobs overlapped (`worker_concurrency` at its default)
/// and one after another (`worker_concurrency=1`), through [`DelayProxy`]
/// between the runtime and Azurite.
fn latency_section(
    plan: &Plan,
    redis: &RedisServer,
    azurite: &Azurite,
    observer: &mut Observer,
    figures: &mut RunFigures,
    detail: &mut Map<String, Value>,
) -> Result<(), String> {
    let cfg = PipelineConfig::default();
    let submitter = CountingRedis::new(NativeRedis::new(&redis.url()).map_err(|e| e.to_string())?);
    let proxy = DelayProxy::start(azurite.port, STORAGE_ONE_WAY).map_err(|e| e.to_string())?;
    let case = Case {
        key: "latency",
        job_type: "text-stats",
        input: json!({"text": SMALL_TEXT}),
        burst: plan.jobs[0].0,
        paced: 0,
        timeout: Duration::from_secs(120),
    };
    let mut section_detail = Map::new();
    let default_concurrency = cfg.concurrency;
    for (key, concurrency, burst) in [
        ("overlapped", default_concurrency, case.burst),
        ("serial", 1, (case.burst / 5).max(20)),
    ] {
        observer.flush()?;
        let options = PlatformOptions::worker_only()
            .var(
                "blob_endpoint",
                format!("http://127.0.0.1:{}/devstoreaccount1", proxy.port),
            )
            .var("blob_host", format!("127.0.0.1:{}", proxy.port))
            .var("worker_concurrency", concurrency.to_string());
        let (platform, group) = start_worker(redis, azurite, options)?;
        for _ in 0..3 {
            submit_one(&submitter, &cfg, &case)?;
        }
        if !wait_drained(observer, case.timeout)? {
            return Err("latency warm-up jobs did not finish".into());
        }
        wait_quiet(observer, case.timeout)?;
        let cpu_before = procfs::group_cpu_seconds(group);
        let mut ids = Vec::with_capacity(burst);
        for _ in 0..burst {
            ids.push(submit_one(&submitter, &cfg, &case)?);
        }
        let drained = wait_drained(observer, case.timeout)?;
        let cpu_after = procfs::group_cpu_seconds(group);
        let times = job_times(observer, &ids)?;
        wait_quiet(observer, case.timeout)?;
        let (window_ms, jobs_per_s) = throughput(&times);
        set(figures, &format!("latency.{key}.jobs_per_s"), jobs_per_s);
        let peak = procfs::group_status_mib(group, "VmHWM");
        if key == "overlapped" {
            if let Some(peak) = peak {
                set(figures, "latency.overlapped.peak_mib", peak);
            }
        }
        section_detail.insert(
            key.into(),
            json!({
                "worker_concurrency": concurrency, "submitted": ids.len(), "succeeded": times.len(),
                "drained": drained, "window_ms": window_ms, "jobs_per_s": jobs_per_s,
                "runtime_cpu_ms_per_job": cpu_before.zip(cpu_after)
                    .map(|(b, a)| (a - b) * 1e3 / times.len().max(1) as f64),
                "vm_hwm_mib": peak,
            }),
        );
        eprintln!(
            "bench:   storage +20 ms, worker_concurrency={concurrency}: {jobs_per_s:.1} jobs/s"
        );
        drop(platform);
    }
    section_detail.insert(
        "one_way_delay_ms".into(),
        json!(STORAGE_ONE_WAY.as_millis() as u64),
    );
    detail.insert("latency".into(), Value::Object(section_detail));
    observer.flush()?;
    Ok(())
}

/// The same Redis operations per job from native Rust on one connection.
fn native(
    plan: &Plan,
    redis: &RedisServer,
    observer: &mut Observer,
    figures: &mut RunFigures,
) -> Result<(), String> {
    observer.flush()?;
    let cfg = PipelineConfig::default();
    let conn = CountingRedis::new(NativeRedis::new(&redis.url()).map_err(|e| e.to_string())?);
    let input = json!({"text": SMALL_TEXT});
    let result = ResultRef {
        blob: "demo/x.json".into(),
        content_type: "application/json".into(),
        bytes: 100,
    };
    let one = || -> Result<(), String> {
        let job = new_job("text-stats", &input);
        let id = match pipeline::submit(&conn, &cfg, job).map_err(|e| e.to_string())? {
            SubmitOutcome::Created(record) => record.id,
            other => return Err(format!("submit: {other:?}")),
        };
        let claimed = pipeline::claim(&conn, &cfg, Some(&id)).map_err(|e| e.to_string())?;
        let job = claimed.first().ok_or("nothing claimed")?;
        if !pipeline::complete(&conn, &cfg, job, &result).map_err(|e| e.to_string())? {
            return Err("fenced".into());
        }
        Ok(())
    };
    for _ in 0..100 {
        one()?;
    }
    conn.take();
    let start = Instant::now();
    for _ in 0..plan.native_jobs {
        one()?;
    }
    let elapsed = start.elapsed().as_secs_f64();
    set(
        figures,
        "native.jobs_per_s",
        plan.native_jobs as f64 / elapsed,
    );
    set(
        figures,
        "native.round_trips",
        ratio(conn.count(), plan.native_jobs as u64),
    );

    // The worker's whole job natively: the same Redis operations, the
    // text-stats computation and the result's PUT to Azurite.
    observer.flush()?;
    // A fresh Azurite: it slows down as blobs accumulate.
    let azurite = Azurite::start();
    let blob = azurite.blob_config();
    let http = NativeHttp::default();
    let client = BlobClient::new(&blob, &http);
    let kind = jobs::find("text-stats").ok_or("no text-stats job type")?;
    let put_seconds = std::cell::Cell::new(0.0);
    let full = || -> Result<(), String> {
        let job = new_job("text-stats", &input);
        let id = match pipeline::submit(&conn, &cfg, job).map_err(|e| e.to_string())? {
            SubmitOutcome::Created(record) => record.id,
            other => return Err(format!("submit: {other:?}")),
        };
        let claimed = pipeline::claim(&conn, &cfg, Some(&id)).map_err(|e| e.to_string())?;
        let job = claimed.first().ok_or("nothing claimed")?;
        let output = kind.run(&job.input_json).map_err(|e| format!("{e:?}"))?;
        let name = format!("{}/{}.{}", job.tenant, job.id, output.extension);
        let put = Instant::now();
        block_on(client.put_if_absent(&name, output.content_type, &output.bytes))
            .map_err(|e| e.to_string())?;
        put_seconds.set(put_seconds.get() + put.elapsed().as_secs_f64());
        let result = ResultRef {
            blob: name,
            content_type: output.content_type.into(),
            bytes: output.bytes.len() as u64,
        };
        if !pipeline::complete(&conn, &cfg, job, &result).map_err(|e| e.to_string())? {
            return Err("fenced".into());
        }
        Ok(())
    };
    for _ in 0..50 {
        full()?;
    }
    let n = plan.native_jobs / 5;
    put_seconds.set(0.0);
    let start = Instant::now();
    for _ in 0..n {
        full()?;
    }
    set(
        figures,
        "native.full_jobs_per_s",
        n as f64 / start.elapsed().as_secs_f64(),
    );
    set(
        figures,
        "native.blob_put_ms",
        put_seconds.get() * 1e3 / n.max(1) as f64,
    );
    // The same PUTs, each on a new connection (what a runtime without
    // outbound connection reuse does).
    let start = Instant::now();
    for i in 0..n {
        let http = NativeHttp::default();
        let client = BlobClient::new(&blob, &http);
        let name = format!("demo/fresh-connection-{i}.json");
        block_on(client.put_if_absent(&name, "application/json", b"{}"))
            .map_err(|e| e.to_string())?;
    }
    set(
        figures,
        "native.blob_put_new_conn_ms",
        start.elapsed().as_secs_f64() * 1e3 / n.max(1) as f64,
    );
    observer.flush()?;
    sustained_memory(plan, redis, figures)?;
    fairness(redis, figures)?;
    observer.flush()?;
    Ok(())
}

/// Redis `used_memory` in bytes.
fn used_memory(redis: &NativeRedis) -> Result<f64, String> {
    use platform_core::ports::Redis as _;
    let reply = redis
        .execute("INFO", &["memory".into()])
        .map_err(|e| e.to_string())?;
    let text = match reply.first() {
        Some(platform_core::ports::RedisValue::Bytes(b)) => {
            String::from_utf8_lossy(b.as_slice()).into_owned()
        }
        other => return Err(format!("INFO memory: {other:?}")),
    };
    text.lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| "no used_memory in INFO".into())
}

/// A sustained run of submit+claim+complete with a short retention (2 s):
/// finished jobs expire, so Redis `used_memory` stays flat instead of
/// growing with every job. Reports it at the end of the first retention
/// period and at the end of the run.
fn sustained_memory(
    plan: &Plan,
    redis: &RedisServer,
    figures: &mut RunFigures,
) -> Result<(), String> {
    let cfg = PipelineConfig {
        key_prefix: "sustained".into(),
        channel: "sustained".into(),
        retention_ms: 2_000,
        ..PipelineConfig::default()
    };
    let conn = NativeRedis::new(&redis.url()).map_err(|e| e.to_string())?;
    let input = json!({"text": SMALL_TEXT});
    let result = ResultRef {
        blob: "demo/x.json".into(),
        content_type: "application/json".into(),
        bytes: 100,
    };
    let secs = if plan.native_jobs <= 1000 { 8.0 } else { 30.0 };
    let start = Instant::now();
    let (mut jobs, mut early, mut max) = (0u64, None, 0f64);
    let mut next_sample = 1.0;
    while start.elapsed().as_secs_f64() < secs {
        let job = new_job("text-stats", &input);
        let id = match pipeline::submit(&conn, &cfg, job).map_err(|e| e.to_string())? {
            SubmitOutcome::Created(record) => record.id,
            other => return Err(format!("submit: {other:?}")),
        };
        let claimed = pipeline::claim(&conn, &cfg, Some(&id)).map_err(|e| e.to_string())?;
        let job = claimed.first().ok_or("nothing claimed")?;
        pipeline::complete(&conn, &cfg, job, &result).map_err(|e| e.to_string())?;
        jobs += 1;
        let t = start.elapsed().as_secs_f64();
        if t >= next_sample {
            next_sample += 1.0;
            let used = used_memory(&conn)?;
            max = max.max(used);
            if t >= 3.0 && early.is_none() {
                early = Some(used);
            }
        }
    }
    let last = used_memory(&conn)?;
    let mib = 1024.0 * 1024.0;
    set(figures, "sustained.jobs", jobs as f64);
    set(
        figures,
        "sustained.used_memory_after_3s_mib",
        early.unwrap_or(last) / mib,
    );
    set(figures, "sustained.used_memory_end_mib", last / mib);
    set(
        figures,
        "sustained.used_memory_max_mib",
        max.max(last) / mib,
    );
    Ok(())
}

/// One tenant floods (1000 submissions, capped at 50 unfinished jobs), then
/// another submits one job; one worker takes the oldest due job at a time.
/// Reports how many jobs ran before the other tenant's: at most the
/// flooder's cap, not its flood.
fn fairness(redis: &RedisServer, figures: &mut RunFigures) -> Result<(), String> {
    let cfg = PipelineConfig {
        key_prefix: "fairness".into(),
        channel: "fairness".into(),
        sweep_batch: 1,
        ..PipelineConfig::default()
    };
    let conn = NativeRedis::new(&redis.url()).map_err(|e| e.to_string())?;
    let limits = platform_core::config::SubmitLimits {
        rate_per_second: 0,
        burst: 0,
        max_queued: 50,
    };
    let input = json!({"text": SMALL_TEXT});
    let mut accepted = 0;
    for _ in 0..1000 {
        let job = new_job("text-stats", &input);
        if let SubmitOutcome::Created(_) =
            pipeline::submit_limited(&conn, &cfg, job, &limits).map_err(|e| e.to_string())?
        {
            accepted += 1;
        }
    }
    let mut other = new_job("text-stats", &input);
    other.tenant = "acme".into();
    let other =
        match pipeline::submit_limited(&conn, &cfg, other, &limits).map_err(|e| e.to_string())? {
            SubmitOutcome::Created(record) => record.id,
            outcome => return Err(format!("the other tenant's submit: {outcome:?}")),
        };
    let result = ResultRef {
        blob: "x".into(),
        content_type: "application/json".into(),
        bytes: 1,
    };
    let mut ahead = 0;
    loop {
        let claimed = pipeline::claim(&conn, &cfg, None).map_err(|e| e.to_string())?;
        let job = claimed.first().ok_or("nothing due")?;
        pipeline::complete(&conn, &cfg, job, &result).map_err(|e| e.to_string())?;
        if job.id == other {
            break;
        }
        ahead += 1;
    }
    set(figures, "fairness.flood_accepted", f64::from(accepted));
    set(
        figures,
        "fairness.jobs_ahead_of_other_tenant",
        f64::from(ahead),
    );
    Ok(())
}

/// Sizes of the `.wasm` files, and of the OCI artifact as `scripts/check-artifact.sh`
/// measured it in a registry.
fn sizes(
    root: &Path,
    figures: &mut RunFigures,
    detail: &mut Map<String, Value>,
) -> Result<(), String> {
    let manifest_text =
        std::fs::read_to_string(root.join("spin.toml")).map_err(|e| e.to_string())?;
    let manifest: toml::Value = toml::from_str(&manifest_text).map_err(|e| e.to_string())?;
    let components = manifest
        .get("component")
        .and_then(|c| c.as_table())
        .ok_or("spin.toml has no components")?;
    for (id, component) in components {
        let source = component
            .get("source")
            .and_then(|s| s.as_str())
            .ok_or_else(|| format!("component {id} has no local source"))?;
        let bytes = std::fs::metadata(root.join(source))
            .map_err(|e| format!("{source}: {e} (build with scripts/build.sh)"))?
            .len();
        let key = match id.as_str() {
            "api" => "size.api_bytes",
            "worker" => "size.worker_bytes",
            "worker-health" => "size.worker_health_bytes",
            _ => continue,
        };
        set(figures, key, bytes as f64);
    }
    match measured_oci(root, &root.join(OCI_REPORT)) {
        Ok(report) => {
            set(
                figures,
                "size.oci_bytes",
                report["total_bytes"].as_f64().unwrap_or(f64::NAN),
            );
            detail.insert("oci".into(), report);
        }
        Err(why) => {
            eprintln!("bench: OCI artifact size not measured: {why}");
            detail.insert("oci".into(), json!({ "not_measured": why }));
        }
    }
    Ok(())
}

/// Where `scripts/check-artifact.sh` writes what the registry served.
const OCI_REPORT: &str = "target/artifact/oci.json";

/// The report of the last artifact check, if it was made of the `.wasm` files
/// there are now (each layer's source has the SHA-256 recorded at the push).
fn measured_oci(root: &Path, report: &Path) -> Result<Value, String> {
    let text = std::fs::read_to_string(report).map_err(|e| {
        format!(
            "{}: {e} (scripts/check-artifact.sh pushes the app and measures it; it needs the Spin CLI)",
            report.display()
        )
    })?;
    let value: Value =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", report.display()))?;
    value["total_bytes"]
        .as_u64()
        .ok_or_else(|| format!("{}: no total_bytes", report.display()))?;
    let layers = value["layers"]
        .as_array()
        .filter(|l| !l.is_empty())
        .ok_or_else(|| format!("{}: no layers", report.display()))?;
    for layer in layers {
        let source = layer["source"].as_str().unwrap_or_default();
        let bytes = std::fs::read(root.join(source)).map_err(|e| format!("{source}: {e}"))?;
        let now = format!("sha256:{}", hex(&Sha256::digest(&bytes)));
        if layer["source_sha256"].as_str() != Some(now.as_str()) {
            return Err(format!(
                "{} was measured for another build of {source}; run scripts/check-artifact.sh again",
                report.display()
            ));
        }
    }
    Ok(value)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(dir: &Path, source_sha256: &str) -> std::path::PathBuf {
        let path = dir.join("oci.json");
        let layer = json!({"component": "api", "source": "api.wasm", "bytes": 9, "source_sha256": source_sha256});
        std::fs::write(
            &path,
            json!({"total_bytes": 1234, "layers": [layer]}).to_string(),
        )
        .unwrap();
        path
    }

    #[test]
    fn measured_oci_takes_a_report_of_the_current_build() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("api.wasm"), b"\0asm").unwrap();
        let sha = format!("sha256:{}", hex(&Sha256::digest(b"\0asm")));
        let value = measured_oci(dir.path(), &report(dir.path(), &sha)).unwrap();
        assert_eq!(value["total_bytes"], 1234);
    }

    #[test]
    fn measured_oci_refuses_a_report_of_another_build() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("api.wasm"), b"\0asm rebuilt").unwrap();
        let sha = format!("sha256:{}", hex(&Sha256::digest(b"\0asm")));
        let err = measured_oci(dir.path(), &report(dir.path(), &sha)).unwrap_err();
        assert!(
            err.contains("was measured for another build of api.wasm"),
            "{err}"
        );
    }

    #[test]
    fn measured_oci_says_how_to_measure_when_there_is_no_report() {
        let dir = tempfile::tempdir().unwrap();
        let err = measured_oci(dir.path(), &dir.path().join("oci.json")).unwrap_err();
        assert!(err.contains("scripts/check-artifact.sh"), "{err}");
    }
}
