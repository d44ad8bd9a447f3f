//! The outbox relay: delivers events queued in the inventory to every sink, at least once, and
//! carries out the workflow requests queued beside them ([`NOTIFY_SINK`]: start a claimed
//! cluster's sync, refill its pool).
//!
//! Events are written in the same transaction as the state change that caused them, so none is
//! lost when a sink is down or a worker crashes; the relay retries each (event, sink) pair with
//! backoff until the sink accepts it. Sinks see an event more than once only after a failure
//! between "accepted" and "marked delivered"; they deduplicate on the CloudEvents `id`.

use crate::Services;
use crate::impls::notify_workflows;
use crate::inventory::NOTIFY_SINK;
use certpool_domain::cert::OutboxEntry;
use certpool_domain::contracts::NotifyRequest;
use certpool_domain::events::CloudEvent;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

const POLL: Duration = Duration::from_millis(250);
const BATCH: u32 = 200;
const COALESCE: Duration = Duration::from_millis(100);

fn now() -> i64 {
    crate::now_unix()
}

/// Where the relay sends workflow requests.
#[derive(Debug, Clone)]
pub struct Notifier {
    /// Temporal client of the worker.
    pub client: temporalio_client::Client,
    /// Task queue of the sync and replenish workflows.
    pub task_queue: String,
}

/// Delivers one batch of pending events; returns how many were delivered.
pub async fn relay_once(services: &Services, notifier: &Notifier) -> u32 {
    let pending = match services.inventory.pending_events(now(), BATCH).await {
        Ok(p) => p,
        Err(f) => {
            tracing::warn!("outbox: cannot read pending events: {f}");
            return 0;
        }
    };
    let (requests, events): (Vec<_>, Vec<_>) = pending.into_iter().partition(|e| e.sink == NOTIFY_SINK);
    // The workflow requests and each sink go side by side, each sink's rows in order: a sink
    // that hangs until its timeout holds up only its own rows.
    let mut by_sink: std::collections::BTreeMap<String, Vec<OutboxEntry>> = std::collections::BTreeMap::new();
    for entry in events {
        by_sink.entry(entry.sink.clone()).or_default().push(entry);
    }
    let sinks = futures::future::join_all(by_sink.into_values().map(|rows| publish_rows(services, rows)));
    let (requested, published) = futures::future::join(notify(services, notifier, requests), sinks).await;
    requested + published.into_iter().sum::<u32>()
}

/// Publishes one sink's rows in order; returns how many it accepted.
async fn publish_rows(services: &Services, rows: Vec<OutboxEntry>) -> u32 {
    let mut delivered = 0;
    for entry in rows {
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
            Err(e) => failed(services, &entry, &e).await,
        }
    }
    delivered
}

async fn failed(services: &Services, entry: &OutboxEntry, error: &str) {
    // 1 s doubling to a minute: a sink that is down costs one attempt a minute.
    let backoff = 1i64 << entry.attempts.min(6);
    tracing::warn!(sink = %entry.sink, attempts = entry.attempts + 1, "outbox: delivery failed: {error}");
    if let Err(f) = services.inventory.event_failed(entry.id, error, now() + backoff).await {
        tracing::warn!("outbox: cannot record failure of event {}: {f}", entry.id);
    }
}

/// Carries out a batch of assignment requests with one signal per pool, however many claims
/// drew from it, and one sync start per cluster.
async fn notify(services: &Services, notifier: &Notifier, entries: Vec<OutboxEntry>) -> u32 {
    if entries.is_empty() {
        return 0;
    }
    let mut req = NotifyRequest::default();
    let mut usable = Vec::with_capacity(entries.len());
    for entry in entries {
        let parsed = serde_json::from_str::<CloudEvent>(&entry.event_json)
            .ok()
            .and_then(|ev| {
                let field = |k: &str| ev.data.get(k).and_then(|v| v.as_str()).map(str::to_owned);
                Some((field("cluster")?, field("pool")?))
            });
        let Some((cluster, pool)) = parsed else {
            failed(services, &entry, "stored assignment request does not parse").await;
            continue;
        };
        if !req.sync_clusters.contains(&cluster) {
            req.sync_clusters.push(cluster);
        }
        if !req.replenish_pools.contains(&pool) {
            req.replenish_pools.push(pool);
        }
        usable.push(entry);
    }
    req.reason = format!("{} claim(s) assigned certificates", usable.len());
    match notify_workflows(&notifier.client, &notifier.task_queue, &req).await {
        Ok(()) => {
            for entry in &usable {
                if let Err(f) = services.inventory.event_delivered(entry.id, now()).await {
                    tracing::warn!("outbox: cannot mark request {} done: {f}", entry.id);
                }
            }
            u32::try_from(usable.len()).unwrap_or(u32::MAX)
        }
        Err(f) => {
            // Every request of the batch again: starting a sync or signalling a refill twice is
            // harmless, missing one is not.
            for entry in &usable {
                failed(services, entry, &f.to_string()).await;
            }
            0
        }
    }
}

/// Runs the relay until `shutdown` resolves. It polls every 250 ms, and 100 ms after a claim in
/// this process wakes it ([`Services::outbox_wake`]).
pub async fn run(services: Arc<Services>, notifier: Notifier, shutdown: impl Future<Output = ()>) {
    tokio::pin!(shutdown);
    loop {
        // Dropping a half-done batch on shutdown is safe: delivery is at least once.
        tokio::select! {
            () = &mut shutdown => return,
            delivered = relay_once(&services, &notifier) => {
                if delivered == 0 {
                    tokio::select! {
                        () = &mut shutdown => return,
                        () = tokio::time::sleep(POLL) => {}
                        () = services.outbox_wake.notified() => {
                            // A burst of claims becomes one batch: one refill signal per pool
                            // instead of one per claim. Syncs start this much later.
                            tokio::time::sleep(COALESCE).await;
                        }
                    }
                }
            }
        }
    }
}
