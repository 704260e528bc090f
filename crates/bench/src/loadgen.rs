//! `bench loadgen`: an open-loop, fixed-rate HTTP load generator.
//!
//! Request `i` is due at `start + i / rate`, whatever happened to the
//! requests before it. A pool of threads, each with its own keep-alive
//! connection, takes the next due request, sleeps until its time and sends
//! it. Latency is measured from the *scheduled* send time, so a stall that
//! delays later requests counts against them (no coordinated omission).
//! Bounded: exactly `rate * duration` requests, and nothing is sent after
//! `duration + timeout`.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::stats::{mean, percentile};

/// Options of `bench loadgen`.
#[derive(clap::Args, Debug, Clone)]
pub struct LoadgenArgs {
    /// Target URL; must be on 127.0.0.1.
    #[arg(long)]
    pub url: String,
    /// HTTP method.
    #[arg(long, default_value = "GET")]
    pub method: String,
    /// A request header, `name: value` (repeatable).
    #[arg(long = "header")]
    pub headers: Vec<String>,
    /// File holding the request body.
    #[arg(long)]
    pub body_file: Option<PathBuf>,
    /// Requests per second.
    #[arg(long)]
    pub rate: u32,
    /// Seconds of load.
    #[arg(long)]
    pub duration: f64,
    /// Threads (connections).
    #[arg(long, default_value_t = 64)]
    pub connections: usize,
    /// Per-request timeout in seconds; also the grace period after `duration`.
    #[arg(long, default_value_t = 5.0)]
    pub timeout: f64,
}

/// What `bench loadgen` prints (one JSON object on stdout).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LoadgenResult {
    /// Requests scheduled (`rate * duration`).
    pub scheduled: u64,
    /// Requests that got a response.
    pub completed: u64,
    /// Responses with a 2xx status.
    pub ok: u64,
    /// Responses with another status.
    pub non_2xx: u64,
    /// Requests that failed (connection error, timeout) or were never sent.
    pub errors: u64,
    /// Completed requests per second over the whole run.
    pub achieved_rps: f64,
    /// Latency percentiles from the scheduled send time, ms.
    pub p50_ms: f64,
    /// 90th percentile, ms.
    pub p90_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
    /// 99.9th percentile, ms.
    pub p999_ms: f64,
    /// Worst, ms.
    pub max_ms: f64,
    /// Mean, ms.
    pub mean_ms: f64,
    /// Service time (send to response) p99, ms: for comparison with the above.
    pub service_p99_ms: f64,
}

struct Sample {
    from_schedule_ms: f64,
    service_ms: f64,
    status: Option<u16>,
}

/// Run the generator and return its figures.
pub fn run(args: &LoadgenArgs) -> Result<LoadgenResult, String> {
    if !args.url.starts_with("http://127.0.0.1:") {
        return Err(format!(
            "loadgen only targets http://127.0.0.1: ({})",
            args.url
        ));
    }
    if args.rate == 0 || args.duration <= 0.0 {
        return Err("rate and duration must be positive".into());
    }
    let body = match &args.body_file {
        Some(path) => std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?,
        None => Vec::new(),
    };
    let mut headers = Vec::new();
    for header in &args.headers {
        let (name, value) = header
            .split_once(':')
            .ok_or_else(|| format!("header `{header}` is not `name: value`"))?;
        headers.push((name.trim().to_string(), value.trim().to_string()));
    }
    let scheduled = (f64::from(args.rate) * args.duration).round() as u64;
    let interval_ns = 1e9 / f64::from(args.rate);
    let timeout = Duration::from_secs_f64(args.timeout);
    let request = Arc::new((args.method.clone(), args.url.clone(), headers, body));
    let next = Arc::new(AtomicU64::new(0));
    let samples = Arc::new(Mutex::new(Vec::with_capacity(scheduled as usize)));
    // Every thread opens its connection with one unmeasured request first.
    let start = Instant::now() + Duration::from_millis(500);
    let stop_sending = start + Duration::from_secs_f64(args.duration) + timeout;

    let threads: Vec<_> = (0..args.connections.max(1))
        .map(|_| {
            let request = Arc::clone(&request);
            let next = Arc::clone(&next);
            let samples = Arc::clone(&samples);
            std::thread::spawn(move || {
                let agent: ureq::Agent = ureq::Agent::config_builder()
                    .http_status_as_error(false)
                    .timeout_global(Some(timeout))
                    .build()
                    .new_agent();
                let _ = send(&agent, &request);
                let mut mine = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= scheduled {
                        break;
                    }
                    let due = start + Duration::from_nanos((i as f64 * interval_ns) as u64);
                    let now = Instant::now();
                    if due > now {
                        std::thread::sleep(due - now);
                    }
                    if Instant::now() > stop_sending {
                        mine.push(Sample {
                            from_schedule_ms: f64::NAN,
                            service_ms: f64::NAN,
                            status: None,
                        });
                        continue;
                    }
                    let sent = Instant::now();
                    let status = send(&agent, &request);
                    let done = Instant::now();
                    mine.push(Sample {
                        from_schedule_ms: (done - due).as_secs_f64() * 1e3,
                        service_ms: (done - sent).as_secs_f64() * 1e3,
                        status,
                    });
                }
                samples
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .extend(mine);
            })
        })
        .collect();
    for thread in threads {
        thread.join().map_err(|_| "a loadgen thread panicked")?;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let samples = std::mem::take(&mut *samples.lock().unwrap_or_else(|e| e.into_inner()));

    let answered: Vec<&Sample> = samples.iter().filter(|s| s.status.is_some()).collect();
    let latencies: Vec<f64> = answered.iter().map(|s| s.from_schedule_ms).collect();
    let service: Vec<f64> = answered.iter().map(|s| s.service_ms).collect();
    let ok = answered
        .iter()
        .filter(|s| matches!(s.status, Some(200..=299)))
        .count() as u64;
    let completed = answered.len() as u64;
    let p = |q| percentile(&latencies, q).unwrap_or(f64::NAN);
    Ok(LoadgenResult {
        scheduled,
        completed,
        ok,
        non_2xx: completed - ok,
        errors: scheduled - completed,
        achieved_rps: completed as f64 / elapsed.max(1e-9),
        p50_ms: p(50.0),
        p90_ms: p(90.0),
        p99_ms: p(99.0),
        p999_ms: p(99.9),
        max_ms: p(100.0),
        mean_ms: mean(&latencies).unwrap_or(f64::NAN),
        service_p99_ms: percentile(&service, 99.0).unwrap_or(f64::NAN),
    })
}

type Request = (String, String, Vec<(String, String)>, Vec<u8>);

/// Send one request and read the whole response; its status, or `None` on failure.
fn send(agent: &ureq::Agent, (method, url, headers, body): &Request) -> Option<u16> {
    let mut builder = ureq::http::Request::builder()
        .method(method.as_str())
        .uri(url.as_str());
    for (name, value) in headers {
        builder = builder.header(name.as_str(), value.as_str());
    }
    let request = builder.body(body.clone()).ok()?;
    let response = agent.run(request).ok()?;
    let status = response.status().as_u16();
    response.into_body().read_to_vec().ok()?;
    Some(status)
}
