//! The figures, their targets, and the table and JSON they end up in.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::stats::{spread, Spread};

/// How a figure compares with its target.
#[derive(Debug, Clone, Copy)]
pub enum Target {
    /// The figure must be at least this.
    AtLeast(f64),
    /// The figure must be at most this.
    AtMost(f64),
}

/// One figure of the table.
pub struct Figure {
    /// Stable key (in results.json).
    pub key: &'static str,
    /// What it is.
    pub label: &'static str,
    /// Unit.
    pub unit: &'static str,
    /// The target, if it sets one.
    pub target: Option<Target>,
}

const fn f(key: &'static str, label: &'static str, unit: &'static str) -> Figure {
    Figure {
        key,
        label,
        unit,
        target: None,
    }
}

const fn t(key: &'static str, label: &'static str, unit: &'static str, target: Target) -> Figure {
    Figure {
        key,
        label,
        unit,
        target: Some(target),
    }
}

const MIB: f64 = 1024.0 * 1024.0;

/// Every figure, in table order.
#[rustfmt::skip]
pub const FIGURES: &[Figure] = &[
    f("api.floor.sat_rps", "Floor: a trivial component (worker-health GET /worker/healthz) in the same process, saturation", "req/s"),
    t("api.healthz.of_floor_pct", "API GET /healthz throughput, share of the floor", "%", Target::AtLeast(90.0)),
    t("api.submit.of_floor_pct", "API submit throughput, share of the floor", "%", Target::AtLeast(65.0)),
    f("api.get.of_floor_pct", "API GET job throughput, share of the floor", "%"),
    f("api.redis_floor.sat_rps", "Floor with Redis: worker-health GET /worker/readyz (1 variable, 1 new Redis connection, PING), saturation", "req/s"),
    f("api.redis_floor.of_floor_pct", "Floor with Redis, share of the floor", "%"),
    f("api.submit.of_redis_floor_pct", "API submit throughput, share of the floor with Redis", "%"),
    f("api.get.of_redis_floor_pct", "API GET job throughput, share of the floor with Redis", "%"),
    f("api.submit.sat_rps", "API submit (POST /api/v1/jobs), saturation", "req/s"),
    f("api.submit.fixed_p50_ms", "API submit at 1,000 req/s, p50", "ms"),
    t("api.submit.fixed_p99_ms", "API submit at 1,000 req/s, p99", "ms", Target::AtMost(5.0)),
    f("api.submit.fixed_achieved_rps", "API submit fixed-rate run, achieved", "req/s"),
    f("api.get.sat_rps", "API GET /api/v1/jobs/{id}, saturation", "req/s"),
    f("api.get.fixed_p50_ms", "API GET job at 1,000 req/s, p50", "ms"),
    f("api.get.fixed_p99_ms", "API GET job at 1,000 req/s, p99", "ms"),
    f("api.healthz.sat_rps", "API GET /healthz, saturation", "req/s"),
    f("api.healthz.fixed_p50_ms", "API /healthz at 1,000 req/s, p50", "ms"),
    f("api.healthz.fixed_p99_ms", "API /healthz at 1,000 req/s, p99", "ms"),
    f("api.submit.guest_mean_ms", "Guest time per submit at 1,000 req/s, mean", "ms"),
    f("api.get.guest_mean_ms", "Guest time per GET job at 1,000 req/s, mean", "ms"),
    f("api.submit.cpu_ms_per_req", "Runtime process CPU per submit at saturation", "ms"),
    f("api.get.cpu_ms_per_req", "Runtime process CPU per GET job at saturation", "ms"),
    f("api.healthz.cpu_ms_per_req", "Runtime process CPU per /healthz at saturation", "ms"),
    f("api.floor.cpu_ms_per_req", "Runtime process CPU per floor request at saturation", "ms"),
    f("api.redis_floor.cpu_ms_per_req", "Runtime process CPU per floor-with-Redis request at saturation", "ms"),
    f("api.submit.redis_cpu_ms_per_req", "Redis CPU per submit at saturation", "ms"),
    t("redis.submit.round_trips", "Redis round trips per submit", "", Target::AtMost(3.0)),
    f("redis.submit.commands", "Redis commands per submit, incl. inside scripts", ""),
    f("redis.submit.connections", "Redis connections opened per submit", ""),
    f("redis.get.round_trips", "Redis round trips per GET job", ""),
    f("redis.get.connections", "Redis connections opened per GET job", ""),
    t("pipeline.text_small.jobs_per_s", "Pipeline text-stats small (44 B text), one worker", "jobs/s", Target::AtLeast(400.0)),
    t("latency.overlapped.jobs_per_s", "Worker behind 20 ms of storage latency, text-stats small, worker_concurrency default", "jobs/s", Target::AtLeast(300.0)),
    f("latency.serial.jobs_per_s", "Worker behind 20 ms of storage latency, worker_concurrency=1 (one job after another)", "jobs/s"),
    f("latency.overlapped.peak_mib", "Runtime peak RSS (VmHWM), worker behind 20 ms storage latency", "MiB"),
    f("pipeline.text_small.p50_ms", "text-stats small submit→stored, p50", "ms"),
    f("pipeline.text_small.p99_ms", "text-stats small submit→stored, p99", "ms"),
    f("pipeline.text_small.guest_mean_ms", "Guest time per text-stats small job, mean", "ms"),
    f("pipeline.text_small.cpu_ms_runtime", "CPU per text-stats small job (burst): runtime", "ms"),
    f("pipeline.text_small.cpu_ms_azurite", "CPU per text-stats small job (burst): Azurite", "ms"),
    f("pipeline.text_small.cpu_ms_redis", "CPU per text-stats small job (burst): Redis", "ms"),
    f("pipeline.text_100k.jobs_per_s", "Pipeline text-stats 100 KiB, one worker", "jobs/s"),
    f("pipeline.text_100k.p50_ms", "text-stats 100 KiB submit→stored, p50", "ms"),
    f("pipeline.text_100k.p99_ms", "text-stats 100 KiB submit→stored, p99", "ms"),
    f("pipeline.text_100k.guest_mean_ms", "Guest time per text-stats 100 KiB job, mean", "ms"),
    f("pipeline.thumbnail.jobs_per_s", "Pipeline thumbnail 1 MP → 256×256, one worker", "jobs/s"),
    f("pipeline.thumbnail.p50_ms", "thumbnail 1 MP submit→stored, p50", "ms"),
    f("pipeline.thumbnail.p99_ms", "thumbnail 1 MP submit→stored, p99", "ms"),
    f("pipeline.thumbnail.guest_mean_ms", "Guest time per thumbnail job, mean", "ms"),
    t("redis.process.round_trips", "Redis round trips per processed job (text-stats, paced)", "", Target::AtMost(3.0)),
    f("redis.process.commands", "Redis commands per processed job, incl. inside scripts", ""),
    f("redis.process.connections", "Redis connections opened per processed job", ""),
    f("native.jobs_per_s", "Native reference: submit+claim+complete on one connection", "jobs/s"),
    f("native.round_trips", "Native reference: round trips per job", ""),
    f("native.full_jobs_per_s", "Native reference incl. text-stats and the Azurite PUT", "jobs/s"),
    f("native.blob_put_ms", "Native reference: Azurite PUT of the result, mean (keep-alive)", "ms"),
    f("native.blob_put_new_conn_ms", "Native reference: Azurite PUT on a new connection each, mean", "ms"),
    f("sustained.jobs", "Sustained run (8 s quick, 30 s full), 2 s retention: jobs", ""),
    f("sustained.used_memory_after_3s_mib", "Sustained run: Redis used_memory after 3 s", "MiB"),
    f("sustained.used_memory_end_mib", "Sustained run: Redis used_memory at the end", "MiB"),
    f("sustained.used_memory_max_mib", "Sustained run: Redis used_memory, highest sample", "MiB"),
    f("fairness.flood_accepted", "Fairness: of 1000 flooding submissions, accepted (cap 50 unfinished)", ""),
    t("fairness.jobs_ahead_of_other_tenant", "Fairness: jobs run before the other tenant's one job", "", Target::AtMost(50.0)),
    t("size.api_bytes", "api.wasm", "bytes", Target::AtMost(MIB)),
    t("size.worker_bytes", "worker.wasm (thumbnail-capable)", "bytes", Target::AtMost(2.0 * MIB)),
    t("size.worker_health_bytes", "worker_health.wasm", "bytes", Target::AtMost(MIB)),
    f("size.oci_bytes", "OCI artifact as pushed (layers + config + manifest, measured)", "bytes"),
    t("rss.api.total_after_mib", "Runtime RSS (VmRSS, all its processes) after the API load", "MiB", Target::AtMost(100.0)),
    f("rss.api_peak_mib", "Runtime peak RSS (VmHWM, all its processes), API under load", "MiB"),
    f("rss.api.total_after_threads", "Runtime threads (all its processes) after the API load", ""),
    f("rss.api.http_after_mib", "  of which `spin trigger http` (serves the API), RSS", "MiB"),
    f("rss.api.http_after_threads", "  of which `spin trigger http`, threads", ""),
    f("rss.api.parent_after_mib", "  of which the `spin up` parent (supervisor; no such process in the shim), RSS", "MiB"),
    f("rss.api.local_after_mib", "  of which `spin-local` (one process), RSS", "MiB"),
    f("rss.api.total_settled_mib", "Runtime RSS (all its processes) 12 s after the API load", "MiB"),
    f("rss.api.http_settled_mib", "  of which `spin trigger http`, RSS", "MiB"),
    f("rss.api.total_settled_threads", "Runtime threads (all its processes) 12 s after the API load", ""),
    t("rss.worker_peak_mib", "Runtime peak RSS (VmHWM, all its processes), worker under load", "MiB", Target::AtMost(100.0)),
    f("rss.worker.total_after_threads", "Runtime threads (all its processes) after the pipeline load", ""),
    f("rss.worker.redis_after_mib", "  of which `spin trigger redis` (runs the worker), RSS", "MiB"),
    f("rss.worker.http_after_mib", "  of which `spin trigger http` (worker-health), RSS", "MiB"),
    f("rss.worker.parent_after_mib", "  of which the `spin up` parent, RSS", "MiB"),
];

/// Figures of one run, by key.
pub type RunFigures = BTreeMap<String, f64>;

fn fmt(value: f64, unit: &str) -> String {
    if value.is_nan() {
        return "n/a".into();
    }
    match unit {
        "bytes" => format!("{:.0} ({:.0} KiB)", value, value / 1024.0),
        _ if value.abs() >= 100.0 => format!("{value:.0}"),
        _ if value.abs() >= 10.0 => format!("{value:.1}"),
        _ => format!("{value:.2}"),
    }
}

fn verdict(figure: &Figure, s: &Spread) -> String {
    match figure.target {
        None => String::new(),
        Some(Target::AtLeast(goal)) if s.median >= goal => format!("met (≥ {})", fmt(goal, "")),
        Some(Target::AtLeast(goal)) => format!(
            "missed: {:.0}% of ≥ {} (short by {})",
            100.0 * s.median / goal,
            fmt(goal, ""),
            fmt(goal - s.median, figure.unit)
        ),
        Some(Target::AtMost(goal)) if s.median <= goal => {
            format!("met (≤ {})", fmt(goal, figure.unit))
        }
        Some(Target::AtMost(goal)) => format!(
            "missed: {:.1}× the ≤ {} limit (over by {})",
            s.median / goal,
            fmt(goal, figure.unit),
            fmt(s.median - goal, figure.unit)
        ),
    }
}

/// Header facts printed above the table.
pub struct Context {
    /// `local` or `spin`, with the binary.
    pub runtime: String,
    /// The machine.
    pub machine: String,
    /// `git describe`.
    pub commit: String,
    /// UTC date.
    pub date: String,
    /// `full` or `quick`.
    pub mode: &'static str,
    /// Load average before and after each run.
    pub load: Vec<String>,
    /// The runtime tuning set in the environment the runtime inherits
    /// ([`runtime_tuning`]); empty: the runtime's defaults.
    pub tuning: Vec<String>,
}

/// Environment variables (`NAME=value`, sorted) that change how the runtime
/// allocates and schedules, and so its figures: Spin's pooling-allocator
/// knobs (`SPIN_WASMTIME_*`, read by `spin-core` at `v3.6.3`), its instance
/// limits (`SPIN_MAX_INSTANCE_*`) and glibc's `MALLOC_*`. A run with any of
/// them set does not measure what the shim runs by default, so the report
/// says so.
pub fn runtime_tuning(vars: impl IntoIterator<Item = (String, String)>) -> Vec<String> {
    const PREFIXES: &[&str] = &["SPIN_WASMTIME_", "SPIN_MAX_INSTANCE_", "MALLOC_"];
    let mut tuning: Vec<String> = vars
        .into_iter()
        .filter(|(name, _)| PREFIXES.iter().any(|p| name.starts_with(p)))
        .map(|(name, value)| format!("{name}={value}"))
        .collect();
    tuning.sort();
    tuning
}

/// The Markdown table (and header) and the JSON document.
pub fn render(ctx: &Context, runs: &[RunFigures], details: Vec<Value>) -> (String, Value) {
    let mut md = String::new();
    md.push_str(&format!(
        "Runtime: **{}**. Machine: {}. Commit {}, {} UTC, {} mode, {} run(s): median (min–max).\n\
         Runtime tuning from the environment: {}.\n\
         Load average (1/5/15 min) at the start → end of each run: {}.\n\n",
        ctx.runtime,
        ctx.machine,
        ctx.commit,
        ctx.date,
        ctx.mode,
        runs.len(),
        if ctx.tuning.is_empty() {
            "none (the runtime's defaults)".to_string()
        } else {
            format!("`{}`", ctx.tuning.join(" "))
        },
        ctx.load.join("; ")
    ));
    md.push_str("| figure | median | min – max | unit | target |\n|---|---:|---:|---|---|\n");
    let mut figures = Vec::new();
    for figure in FIGURES {
        let values: Vec<f64> = runs
            .iter()
            .filter_map(|r| r.get(figure.key).copied())
            .filter(|v| !v.is_nan())
            .collect();
        let target = match figure.target {
            Some(Target::AtLeast(v)) => json!({"at_least": v}),
            Some(Target::AtMost(v)) => json!({"at_most": v}),
            None => Value::Null,
        };
        match spread(&values) {
            Some(s) => {
                let verdict = verdict(figure, &s);
                md.push_str(&format!(
                    "| {} | {} | {} – {} | {} | {} |\n",
                    figure.label,
                    fmt(s.median, figure.unit),
                    fmt(s.min, figure.unit),
                    fmt(s.max, figure.unit),
                    figure.unit,
                    verdict
                ));
                figures.push(json!({
                    "key": figure.key, "label": figure.label, "unit": figure.unit,
                    "median": s.median, "min": s.min, "max": s.max, "values": values,
                    "target": target, "verdict": verdict,
                }));
            }
            None => {
                md.push_str(&format!(
                    "| {} | not measured | | {} | |\n",
                    figure.label, figure.unit
                ));
                figures.push(json!({
                    "key": figure.key, "label": figure.label, "unit": figure.unit,
                    "median": null, "values": [], "target": target, "verdict": "not measured",
                }));
            }
        }
    }
    let doc = json!({
        "runtime": ctx.runtime,
        "machine": ctx.machine,
        "commit": ctx.commit,
        "date": ctx.date,
        "mode": ctx.mode,
        "runs": runs.len(),
        "load_average": ctx.load,
        "runtime_tuning": ctx.tuning,
        "figures": figures,
        "details": details,
    });
    (md, doc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runtime_tuning_keeps_the_allocator_and_instance_knobs_only() {
        let vars = [
            ("SPIN_WASMTIME_POOLING", "0"),
            ("PATH", "/usr/bin"),
            ("SPIN_VARIABLE_REDIS_ADDRESS", "redis://127.0.0.1"),
            ("MALLOC_ARENA_MAX", "2"),
            ("SPIN_MAX_INSTANCE_MEMORY", "10485760"),
            ("SPIN_WASMTIME_LINEAR_MEMORY_KEEP_RESIDENT", "0"),
        ]
        .map(|(n, v)| (n.to_string(), v.to_string()));
        assert_eq!(
            runtime_tuning(vars),
            [
                "MALLOC_ARENA_MAX=2",
                "SPIN_MAX_INSTANCE_MEMORY=10485760",
                "SPIN_WASMTIME_LINEAR_MEMORY_KEEP_RESIDENT=0",
                "SPIN_WASMTIME_POOLING=0",
            ]
        );
        assert!(runtime_tuning([("HOME".to_string(), "/root".to_string())]).is_empty());
    }
}
