//! Redis-side accounting: `INFO stats` and `INFO commandstats` snapshots.
//!
//! Redis counts the commands a Lua script calls in `total_commands_processed`
//! and in `commandstats` under their own names, as if a client had sent
//! them. A *round trip* is a command a client sent: the commands of
//! `commandstats` minus those the pipeline scripts call
//! (`crates/core/src/pipeline/*.lua`, `redis.call('NAME', ...)`), minus
//! `INFO` and the commands the bench itself sent while measuring.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// One snapshot of the counters.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// `total_commands_processed`.
    pub total_commands: u64,
    /// `total_connections_received`.
    pub total_connections: u64,
    /// `commandstats` calls per command (lower case, `client|setinfo` style).
    pub calls: BTreeMap<String, u64>,
    /// Commands the bench had sent through its observer connection by then, by name.
    pub own: BTreeMap<String, u64>,
}

/// The difference between two snapshots.
#[derive(Debug, Clone, Default)]
pub struct Delta {
    /// Commands sent by clients other than the bench (round trips).
    pub round_trips: u64,
    /// Every command executed for them, including those inside scripts.
    pub commands: u64,
    /// Connections opened.
    pub connections: u64,
    /// Calls per command name (clients and scripts, without `info`).
    pub calls: BTreeMap<String, u64>,
}

/// A connection the bench uses to read counters and job records.
pub struct Observer {
    connection: redis::Connection,
    own: BTreeMap<String, u64>,
    script_commands: BTreeSet<String>,
}

impl Observer {
    /// Connect to `url`; `scripts` is the folder of the pipeline's Lua scripts.
    pub fn new(url: &str, scripts: &Path) -> Result<Self, String> {
        let connection = redis::Client::open(url)
            .and_then(|c| c.get_connection())
            .map_err(|e| format!("redis {url}: {e}"))?;
        Ok(Self {
            connection,
            own: BTreeMap::new(),
            script_commands: script_commands(scripts)?,
        })
    }

    /// Commands the pipeline scripts call.
    pub fn script_commands(&self) -> &BTreeSet<String> {
        &self.script_commands
    }

    /// Send one command (counted as the bench's own).
    pub fn query<T: redis::FromRedisValue>(
        &mut self,
        name: &str,
        args: &[&str],
    ) -> Result<T, String> {
        *self.own.entry(name.to_ascii_lowercase()).or_default() += 1;
        let mut cmd = redis::cmd(name);
        for arg in args {
            cmd.arg(*arg);
        }
        cmd.query(&mut self.connection)
            .map_err(|e| format!("{name}: {e}"))
    }

    /// Read the counters. `INFO` itself is excluded from every figure.
    pub fn snapshot(&mut self) -> Result<Snapshot, String> {
        let text: String = redis::cmd("INFO")
            .arg("stats")
            .arg("commandstats")
            .query(&mut self.connection)
            .map_err(|e| e.to_string())?;
        let mut snapshot = parse_info(&text);
        snapshot.own = self.own.clone();
        Ok(snapshot)
    }

    /// What happened between `before` and `after`, without the bench's own commands.
    pub fn delta(&self, before: &Snapshot, after: &Snapshot) -> Delta {
        let mut delta = Delta {
            connections: after.total_connections - before.total_connections,
            ..Delta::default()
        };
        for (name, calls) in &after.calls {
            if name == "info" {
                continue;
            }
            let own = after.own.get(name).copied().unwrap_or(0)
                - before.own.get(name).copied().unwrap_or(0);
            let n = (calls - before.calls.get(name).copied().unwrap_or(0)).saturating_sub(own);
            if n == 0 {
                continue;
            }
            delta.calls.insert(name.clone(), n);
            delta.commands += n;
            if !self.script_commands.contains(name) {
                delta.round_trips += n;
            }
        }
        delta
    }

    /// Empty the database (between sections).
    pub fn flush(&mut self) -> Result<(), String> {
        self.query::<()>("FLUSHALL", &[])
    }
}

/// Parse `INFO stats commandstats`.
pub fn parse_info(text: &str) -> Snapshot {
    let mut snapshot = Snapshot::default();
    for line in text.lines() {
        let line = line.trim();
        if let Some(v) = line.strip_prefix("total_commands_processed:") {
            snapshot.total_commands = v.parse().unwrap_or(0);
        } else if let Some(v) = line.strip_prefix("total_connections_received:") {
            snapshot.total_connections = v.parse().unwrap_or(0);
        } else if let Some(rest) = line.strip_prefix("cmdstat_") {
            if let Some((name, fields)) = rest.split_once(':') {
                let calls = fields
                    .split(',')
                    .find_map(|f| f.strip_prefix("calls="))
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                snapshot.calls.insert(name.to_ascii_lowercase(), calls);
            }
        }
    }
    snapshot
}

/// The command names `redis.call('NAME'`/`redis.pcall('NAME'` in the `.lua` files of `dir`.
pub fn script_commands(dir: &Path) -> Result<BTreeSet<String>, String> {
    let mut names = BTreeSet::new();
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "lua") {
            let text = std::fs::read_to_string(&path).map_err(|e| e.to_string())?;
            names.extend(lua_calls(&text));
        }
    }
    if names.is_empty() {
        return Err(format!("no redis.call in {}", dir.display()));
    }
    Ok(names)
}

fn lua_calls(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for marker in ["redis.call(", "redis.pcall("] {
        for (i, _) in text.match_indices(marker) {
            let rest = text[i + marker.len()..].trim_start();
            let Some(quote) = rest.chars().next().filter(|c| *c == '\'' || *c == '"') else {
                continue;
            };
            if let Some(end) = rest[1..].find(quote) {
                out.push(rest[1..=end].to_ascii_lowercase());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_is_parsed() {
        let s = parse_info(
            "# Stats\r\ntotal_connections_received:3\r\ntotal_commands_processed:5\r\n# Commandstats\r\n\
             cmdstat_evalsha:calls=2,usec=10,usec_per_call=5.00,rejected_calls=0,failed_calls=0\r\n\
             cmdstat_client|setinfo:calls=4,usec=1\r\n",
        );
        assert_eq!(s.total_commands, 5);
        assert_eq!(s.total_connections, 3);
        assert_eq!(s.calls["evalsha"], 2);
        assert_eq!(s.calls["client|setinfo"], 4);
    }

    #[test]
    fn lua_calls_are_found() {
        let names =
            lua_calls("local t = redis.call('TIME')\nredis.pcall( \"HSET\", k)\nredis.call(cmd)");
        assert_eq!(names, vec!["time", "hset"]);
    }
}
