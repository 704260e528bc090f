//! The runtime process's memory, from `/proc` (Linux).

use std::fs;

/// A runtime's processes: its whole process group. `spin up` is a small
/// parent that runs each trigger in a child process (`spin trigger http`,
/// `spin trigger redis`), so the work, the memory and the threads are in the
/// children; the local runtime is one process.
pub fn group_pids(pgid: u32) -> Vec<u32> {
    e2e::live_processes_in_group(pgid)
        .into_iter()
        .map(|(pid, _)| pid)
        .collect()
}

/// CPU seconds of every live process of the group.
pub fn group_cpu_seconds(pgid: u32) -> Option<f64> {
    group_pids(pgid).into_iter().map(cpu_seconds).sum()
}

/// A `kB` field of `/proc/<pid>/status` (in MiB), summed over the group.
pub fn group_status_mib(pgid: u32, field: &str) -> Option<f64> {
    group_pids(pgid)
        .into_iter()
        .map(|pid| status_mib(pid, field))
        .sum()
}

/// `Threads:` of `/proc/<pid>/status`.
pub fn threads(pid: u32) -> Option<f64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|v| v.trim().parse::<f64>().ok())
}

/// Each process of the group by role (`spin up`'s parent, `trigger http`,
/// `trigger redis`, or the local runtime), with its VmRSS in MiB and threads.
pub fn group_breakdown(pgid: u32) -> Vec<(&'static str, f64, f64)> {
    group_pids(pgid)
        .into_iter()
        .filter_map(|pid| {
            let cmdline = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            let args: Vec<String> = cmdline
                .split(|b| *b == 0)
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect();
            let role = match (
                args.get(1).map(String::as_str),
                args.get(2).map(String::as_str),
            ) {
                (Some("trigger"), Some("http")) => "http",
                (Some("trigger"), Some("redis")) => "redis",
                (Some("up"), _) if args[0].ends_with("spin-local") => "local",
                (Some("up"), _) => "parent",
                _ => "other",
            };
            Some((role, status_mib(pid, "VmRSS")?, threads(pid)?))
        })
        .collect()
}

/// The pid of our child process whose command line contains `needle`
/// (the runtime started by the e2e harness, found by its `--listen` address).
pub fn child_with_arg(needle: &str) -> Option<u32> {
    let me = std::process::id();
    for entry in fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // `pid (comm) state ppid ...`: comm may hold spaces, so split after the last `)`.
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        if ppid != Some(me) {
            continue;
        }
        let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(needle) {
            return Some(pid);
        }
    }
    None
}

/// A `kB` field of `/proc/<pid>/status` (`VmHWM`, `VmRSS`), in MiB.
pub fn status_mib(pid: u32, field: &str) -> Option<f64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|line| {
        let rest = line.strip_prefix(field)?.strip_prefix(':')?;
        let kb: f64 = rest.split_whitespace().next()?.parse().ok()?;
        Some(kb / 1024.0)
    })
}

/// CPU time (user + system) of a process so far, in seconds.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After `)`: state(0) ppid(1) ... utime(11) stime(12), in clock ticks (100 Hz on Linux).
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

/// `/proc/loadavg`'s first three numbers.
pub fn loadavg() -> String {
    fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// CPU model and count, and memory.
pub fn machine() -> String {
    let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, m)| m.trim().to_string())
        .unwrap_or_else(|| "unknown CPU".into());
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem_gib = fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0 / 1024.0);
    format!("{cpus} CPUs ({model}), {mem_gib:.0} GiB RAM")
}
