//! The `worker` component: each message on the `jobs` channel goes to
//! [`platform_core::worker::handle_message`].
//!
//! This crate only adapts: it reads the Spin variables and hands the core
//! Spin's outbound Redis (opened on first use) and HTTP, through the
//! `spin-adapters` crate. A returned error is only logged by
//! Spin (no retry), so everything is logged as JSON here first; jobs claimed
//! before a Redis failure are recovered by lease expiry and the sweep.

use anyhow::Context as _;
use platform_core::config::{BlobConfig, HttpTimeouts, PipelineConfig};
use platform_core::log::{Level, Logger};
use platform_core::worker;
use serde_json::{json, Map};
use spin_adapters::{variable as lookup, SpinHttp, SpinRedis};

/// The export glue the SDK's macro generates is `unsafe`; it is allowed here only.
#[allow(unsafe_code)]
mod export {
    #[spin_sdk::redis_component]
    async fn on_message(message: Vec<u8>) -> anyhow::Result<()> {
        super::handle(&message).await
    }
}

async fn handle(message: &[u8]) -> anyhow::Result<()> {
    let level = lookup("log_level")
        .and_then(|l| l.parse().ok())
        .unwrap_or(Level::Info);
    let log = Logger::new("worker", level);
    let configs = PipelineConfig::from_lookup(lookup).and_then(|pipeline| {
        let blob = BlobConfig::from_lookup(lookup)?;
        let timeouts = HttpTimeouts::from_lookup(lookup)?.within_lease(pipeline.lease_ms);
        Ok((pipeline, blob, timeouts))
    });
    let (pipeline, blob, timeouts) = match configs {
        Ok(configs) => configs,
        Err(error) => {
            log.log(
                Level::Error,
                "invalid configuration",
                fields([("error", json!(error.to_string()))]),
            );
            return Err(error).context("invalid worker configuration");
        }
    };
    let redis = SpinRedis::lazy(lookup("redis_address"));
    match worker::handle_message(
        message,
        &pipeline,
        &blob,
        &redis,
        &SpinHttp::new(timeouts),
        &log,
    )
    .await
    {
        Ok(report) => {
            log.log(
                Level::Debug,
                "message handled",
                fields([
                    ("claimed", json!(report.claimed)),
                    ("succeeded", json!(report.succeeded)),
                    ("retrying", json!(report.retrying)),
                    ("failed", json!(report.failed)),
                    ("fenced", json!(report.fenced)),
                ]),
            );
            Ok(())
        }
        Err(error) => {
            log.log(
                Level::Error,
                "message not handled: job store failed",
                fields([("error", json!(error.to_string()))]),
            );
            Err(error).context("failed to handle a jobs message")
        }
    }
}

fn fields<const N: usize>(pairs: [(&str, serde_json::Value); N]) -> Map<String, serde_json::Value> {
    pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}
