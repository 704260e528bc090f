//! Structured logs: one JSON object per line on stdout, which Spin (and
//! SpinKube, through Container Insights) collects as the component's output.

use std::fmt;
use std::str::FromStr;

use serde_json::{Map, Value};

/// Log severity, lowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Detail for debugging.
    Debug,
    /// Normal operation.
    Info,
    /// Something unexpected that was handled.
    Warn,
    /// Something failed.
    Error,
}

impl Level {
    /// The lower-case name used in log lines and in the `log_level` variable.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown `log_level` value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid log level `{0}`: expected debug, info, warn or error")]
pub struct InvalidLevel(pub String);

impl FromStr for Level {
    type Err = InvalidLevel;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "debug" => Ok(Level::Debug),
            "info" => Ok(Level::Info),
            "warn" | "warning" => Ok(Level::Warn),
            "error" => Ok(Level::Error),
            _ => Err(InvalidLevel(s.to_string())),
        }
    }
}

/// Writes JSON log lines for one component at or above a minimum level.
#[derive(Debug, Clone, Copy)]
pub struct Logger {
    component: &'static str,
    min: Level,
}

impl Logger {
    /// A logger for `component` that drops lines below `min`.
    pub fn new(component: &'static str, min: Level) -> Self {
        Self { component, min }
    }

    /// Whether a line at `level` would be written.
    pub fn enabled(&self, level: Level) -> bool {
        level >= self.min
    }

    /// Format one log line (without the newline); `fields` are merged in.
    pub fn format(&self, level: Level, msg: &str, fields: Map<String, Value>) -> String {
        let mut line = Map::with_capacity(fields.len() + 4);
        line.insert("ts".into(), Value::from(unix_millis()));
        line.insert("level".into(), Value::from(level.as_str()));
        line.insert("component".into(), Value::from(self.component));
        line.insert("msg".into(), Value::from(msg));
        for (key, value) in fields {
            line.insert(key, value);
        }
        Value::Object(line).to_string()
    }

    /// Write one line to stdout if `level` is enabled.
    pub fn log(&self, level: Level, msg: &str, fields: Map<String, Value>) {
        if self.enabled(level) {
            println!("{}", self.format(level, msg, fields));
        }
    }
}

/// Milliseconds since the Unix epoch by the wall clock (0 if the clock is before 1970).
pub fn unix_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn levels_parse_and_order() {
        assert_eq!("WARN".parse::<Level>(), Ok(Level::Warn));
        assert!("verbose".parse::<Level>().is_err());
        assert!(Level::Error > Level::Info);
    }

    #[test]
    fn line_is_one_json_object_with_fields() {
        let logger = Logger::new("api", Level::Info);
        let mut fields = Map::new();
        fields.insert("status".into(), json!(202));
        let line = logger.format(Level::Info, "request", fields);
        let parsed: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(parsed["component"], "api");
        assert_eq!(parsed["msg"], "request");
        assert_eq!(parsed["status"], 202);
        assert!(!line.contains('\n'));
        assert!(!logger.enabled(Level::Debug));
    }
}
