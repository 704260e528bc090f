//! Closed-loop saturation with `wrk` (a separate process on loopback).

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// One `wrk` run.
pub struct WrkRun<'a> {
    /// Target URL (http://127.0.0.1:...).
    pub url: &'a str,
    /// HTTP method.
    pub method: &'a str,
    /// Extra headers.
    pub headers: &'a [(&'a str, String)],
    /// Request body, if any.
    pub body: Option<&'a [u8]>,
    /// wrk threads.
    pub threads: u32,
    /// Open connections.
    pub connections: u32,
    /// Seconds of load.
    pub duration_secs: u32,
    /// Upper bound on requests (each thread stops after its share).
    pub max_requests: u64,
}

/// What `wrk --latency` reported.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct WrkResult {
    /// Requests completed.
    pub requests: u64,
    /// Requests per second.
    pub rps: f64,
    /// Latency percentiles (closed loop: for information only), ms.
    pub p50_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
    /// Responses that were not 2xx/3xx.
    pub non_2xx: u64,
    /// Connect/read/write/timeout errors.
    pub socket_errors: u64,
}

/// Run wrk and parse its report.
pub fn run(run: &WrkRun<'_>) -> Result<WrkResult, String> {
    if !run.url.starts_with("http://127.0.0.1:") {
        return Err(format!("wrk only targets http://127.0.0.1: ({})", run.url));
    }
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let body_path = dir.path().join("body");
    std::fs::write(&body_path, run.body.unwrap_or_default()).map_err(|e| e.to_string())?;
    let per_thread = run.max_requests.div_ceil(u64::from(run.threads.max(1)));
    let mut lua = String::new();
    lua.push_str(&format!("wrk.method = {}\n", lua_string(run.method)));
    if run.body.is_some() {
        lua.push_str(&format!(
            "local f = assert(io.open({}, \"rb\"))\nwrk.body = f:read(\"*a\")\nf:close()\n",
            lua_string(&body_path.to_string_lossy())
        ));
    }
    for (name, value) in run.headers {
        lua.push_str(&format!(
            "wrk.headers[{}] = {}\n",
            lua_string(name),
            lua_string(value)
        ));
    }
    // Bound the request count: each thread stops after its share.
    lua.push_str(&format!(
        "local limit, count = {per_thread}, 0\n\
         function response(status, headers, body)\n  \
           count = count + 1\n  \
           if count >= limit then wrk.thread:stop() end\n\
         end\n"
    ));
    let script = dir.path().join("bench.lua");
    std::fs::File::create(&script)
        .and_then(|mut f| f.write_all(lua.as_bytes()))
        .map_err(|e| e.to_string())?;

    let mut child = Command::new("wrk")
        .args(["-t", &run.threads.to_string()])
        .args(["-c", &run.connections.to_string()])
        .args(["-d", &format!("{}s", run.duration_secs)])
        .args(["--timeout", "5s", "--latency", "-s"])
        .arg(&script)
        .arg(run.url)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run wrk (scripts/bootstrap.sh installs it): {e}"))?;
    let deadline = Instant::now() + Duration::from_secs(u64::from(run.duration_secs) + 20);
    loop {
        if child.try_wait().map_err(|e| e.to_string())?.is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err("wrk did not finish in time".into());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let output = child.wait_with_output().map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(format!(
            "wrk failed ({}): {text}{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    parse(&text).ok_or_else(|| format!("cannot parse wrk's report:\n{text}"))
}

fn lua_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `512.00us`, `1.23ms`, `2.00s` → milliseconds.
fn duration_ms(s: &str) -> Option<f64> {
    let s = s.trim();
    let (number, factor) = if let Some(n) = s.strip_suffix("us") {
        (n, 1e-3)
    } else if let Some(n) = s.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60e3)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1e3)
    } else {
        return None;
    };
    number.trim().parse::<f64>().ok().map(|n| n * factor)
}

/// Parse `wrk --latency` output.
pub fn parse(text: &str) -> Option<WrkResult> {
    let mut result = WrkResult::default();
    let mut seen_rps = false;
    for line in text.lines() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("Requests/sec:") {
            result.rps = rest.trim().parse().ok()?;
            seen_rps = true;
        } else if let Some(rest) = line.strip_prefix("50%") {
            result.p50_ms = duration_ms(rest)?;
        } else if let Some(rest) = line.strip_prefix("99%") {
            result.p99_ms = duration_ms(rest)?;
        } else if let Some(rest) = line.strip_prefix("Non-2xx or 3xx responses:") {
            result.non_2xx = rest.trim().parse().ok()?;
        } else if let Some(rest) = line.strip_prefix("Socket errors:") {
            result.socket_errors = rest
                .split(',')
                .filter_map(|part| part.split_whitespace().last()?.parse::<u64>().ok())
                .sum();
        } else if line.contains(" requests in ") {
            result.requests = line.split_whitespace().next()?.parse().ok()?;
        }
    }
    seen_rps.then_some(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_wrk_report() {
        let text = "Running 2s test @ http://127.0.0.1:1/healthz
  2 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     3.10ms    1.20ms  20.00ms   80.00%
    Req/Sec     5.00k   300.00     5.50k    70.00%
  Latency Distribution
     50%  812.00us
     75%    3.00ms
     90%    4.00ms
     99%    1.20s
  20000 requests in 2.00s, 3.00MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 7
Requests/sec:   9999.50
Transfer/sec:      1.50MB
";
        let r = parse(text).unwrap();
        assert_eq!(r.requests, 20000);
        assert_eq!(r.rps, 9999.5);
        assert!((r.p50_ms - 0.812).abs() < 1e-9);
        assert_eq!(r.p99_ms, 1200.0);
        assert_eq!(r.non_2xx, 7);
        assert_eq!(r.socket_errors, 3);
        assert!(parse("garbage").is_none());
    }
}
