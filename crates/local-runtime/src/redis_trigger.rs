//! The Redis trigger, as Spin 3.6's `crates/trigger-redis`: one plain
//! `SUBSCRIBE` connection per server address; messages are handled one at a
//! time, each in a fresh instance of every component subscribed to the
//! channel (those run concurrently); a handler error is logged, never retried;
//! losing the connection ends the trigger with an error.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use anyhow::{anyhow, Context, Result};
use futures::StreamExt;

use crate::host::redis_handler::RedisHandlerPre;
use crate::host::{ComponentShared, State};

pub struct RedisComponent {
    pub pre: RedisHandlerPre<State>,
    pub shared: Arc<ComponentShared>,
}

/// The subscriptions of one Redis server.
pub struct Subscriber {
    pub address: String,
    /// channel -> component ids
    pub channels: BTreeMap<String, Vec<String>>,
}

/// `host:port` of a Redis URL, without user name or password.
pub fn display_addr(address: &str) -> String {
    match redis::Client::open(address) {
        Ok(c) => c.get_connection_info().addr.to_string(),
        Err(_) => "<invalid redis address>".to_string(),
    }
}

impl Subscriber {
    /// Connects and subscribes; errors here are start-up errors.
    pub async fn connect(&self) -> Result<redis::aio::PubSub> {
        let client = redis::Client::open(self.address.as_str()).map_err(|e| {
            anyhow!(
                "invalid Redis trigger address {}: {:?}",
                display_addr(&self.address),
                e.kind()
            )
        })?;
        let server = display_addr(&self.address);
        let mut pubsub = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            client.get_async_pubsub(),
        )
        .await
        .map_err(|_| anyhow!("timed out"))
        .and_then(|r| r.map_err(|e| anyhow!("{e}")))
        .with_context(|| {
            format!("Redis trigger failed to connect to {server}. Is Redis running there?")
        })?;
        eprintln!("Active Channels on {server}:");
        for (channel, components) in &self.channels {
            pubsub.subscribe(channel).await.with_context(|| {
                format!("Redis trigger failed to subscribe to channel {channel:?} on {server}")
            })?;
            eprintln!("\t{server}/{channel}: [{}]", components.join(","));
        }
        Ok(pubsub)
    }

    /// Handles messages until the connection is lost.
    pub async fn run(
        self,
        pubsub: redis::aio::PubSub,
        components: Arc<HashMap<String, RedisComponent>>,
    ) -> Result<()> {
        let server = display_addr(&self.address);
        let mut messages = pubsub.into_on_message();
        while let Some(msg) = messages.next().await {
            let channel = msg.get_channel_name().to_string();
            let Some(ids) = self.channels.get(&channel) else {
                eprintln!("Error handling message from {server}: message from unexpected channel {channel:?}");
                continue;
            };
            let payload = msg.get_payload_bytes().to_vec();
            let runs = ids.iter().map(|id| {
                let payload = payload.clone();
                let components = components.clone();
                async move {
                    let Some(c) = components.get(id) else {
                        return;
                    };
                    if let Err(e) = handle(c, payload).await {
                        eprintln!("Component {id} handler failed: {e:#}");
                    }
                }
            });
            futures::future::join_all(runs).await;
        }
        Err(anyhow!("Redis trigger disconnected from {server}"))
    }
}

async fn handle(c: &RedisComponent, payload: Vec<u8>) -> Result<()> {
    let mut store = State::store(c.pre.engine(), c.shared.clone());
    let handler = c
        .pre
        .instantiate_async(&mut store)
        .await
        .map_err(|e| anyhow!("{e:?}"))?;
    let result = handler
        .fermyon_spin_inbound_redis()
        .call_handle_message(&mut store, &payload)
        .await
        .map_err(|e| anyhow!("{e:?}"))?;
    match result {
        Ok(()) => Ok(()),
        Err(_) => Err(anyhow!("Redis handler returned an error")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_shown_without_passwords() {
        assert_eq!(display_addr("redis://:secret@cache:6380/0"), "cache:6380");
        assert_eq!(display_addr("redis://127.0.0.1:6379"), "127.0.0.1:6379");
        assert_eq!(display_addr("not a url"), "<invalid redis address>");
    }
}
