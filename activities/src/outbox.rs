//! The outbox relay: delivers events queued in the inventory to every sink, at least once.
//!
//! Events are written in the same transaction as the state change that caused them, so none is
//! lost when a sink is down or a worker crashes; the relay retries each (event, sink) pair with
//! backoff until the sink accepts it. Sinks see an event more than once only after a failure
//! between "accepted" and "marked delivered"; they deduplicate on the CloudEvents `id`.

use crate::Services;
use certpool_domain::events::CloudEvent;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

const POLL: Duration = Duration::from_millis(250);
const BATCH: u32 = 200;

fn now() -> i64 {
    crate::now_unix()
}

/// Delivers one batch of pending events; returns how many were delivered.
pub async fn relay_once(services: &Services) -> u32 {
    let pending = match services.inventory.pending_events(now(), BATCH).await {
        Ok(p) => p,
        Err(f) => {
            tracing::warn!("outbox: cannot read pending events: {f}");
            return 0;
        }
    };
    let mut delivered = 0;
    for entry in pending {
        let result = match services.sinks.get(&entry.sink) {
            None => Err(format!("sink {:?} is no longer configured", entry.sink)),
            Some(sink) => match serde_json::from_str::<CloudEvent>(&entry.event_json) {
                Ok(event) => sink.publish(&event).await.map_err(|f| f.to_string()),
                Err(e) => Err(format!("stored event does not parse: {e}")),
            },
        };
        match result {
            Ok(()) => {
                delivered += 1;
                if let Err(f) = services.inventory.event_delivered(entry.id, now()).await {
                    tracing::warn!("outbox: cannot mark event {} delivered: {f}", entry.id);
                }
            }
            Err(e) => {
                // 1 s doubling to a minute: a sink that is down costs one attempt a minute.
                let backoff = 1i64 << entry.attempts.min(6);
                tracing::warn!(sink = %entry.sink, attempts = entry.attempts + 1, "outbox: delivery failed: {e}");
                if let Err(f) = services.inventory.event_failed(entry.id, &e, now() + backoff).await {
                    tracing::warn!("outbox: cannot record failure of event {}: {f}", entry.id);
                }
            }
        }
    }
    delivered
}

/// Runs the relay until `shutdown` resolves.
pub async fn run(services: Arc<Services>, shutdown: impl Future<Output = ()>) {
    if services.sinks.is_empty() {
        shutdown.await;
        return;
    }
    tokio::pin!(shutdown);
    loop {
        // Dropping a half-done batch on shutdown is safe: delivery is at least once.
        tokio::select! {
            () = &mut shutdown => return,
            delivered = relay_once(&services) => {
                if delivered == 0 {
                    tokio::select! {
                        () = &mut shutdown => return,
                        () = tokio::time::sleep(POLL) => {}
                    }
                }
            }
        }
    }
}
