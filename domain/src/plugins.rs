//! Plug-in families. Each is one small trait; implementations live in the activities crate, one
//! module per product, and are chosen by the `type` key of their config section.

use crate::cert::{
    AssignmentRecord, CertificateRecord, ClaimParams, ClaimResult, DeliveryRecord, OutboxEntry, PoolLevel,
};
use crate::error::Failure;
use crate::events::CloudEvent;
use crate::events::EventType;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// One TXT record of a DNS-01 challenge.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TxtRecord {
    /// Fully qualified owner name without trailing dot (`_acme-challenge.example.net`).
    pub name: String,
    /// The record value (a key authorization digest; public by design).
    pub value: String,
}

/// Publishes and removes DNS-01 challenge records.
///
/// `present` appends to any TXT set already at the name and `cleanup` removes only the given
/// values, so concurrent orders for the same name never clobber each other. Both are idempotent.
#[async_trait]
pub trait DnsProvider: Send + Sync + std::fmt::Debug {
    /// Adds the records, batched per zone.
    async fn present(&self, records: &[TxtRecord]) -> Result<(), Failure>;
    /// Removes exactly these values.
    async fn cleanup(&self, records: &[TxtRecord]) -> Result<(), Failure>;
    /// The zone apex (`example.net`) holding `name`, for providers that serve several zones and
    /// find the zone themselves; `None` when the provider's config names its one zone. The
    /// propagation check asks this zone's authoritative servers.
    async fn zone_of(&self, name: &str) -> Result<Option<String>, Failure> {
        let _ = name;
        Ok(None)
    }
}

/// Stores secret bytes by path.
#[async_trait]
pub trait SecretStore: Send + Sync + std::fmt::Debug {
    /// Writes (or overwrites) a secret.
    async fn put(&self, path: &str, value: &[u8]) -> Result<(), Failure>;
    /// Reads a secret; `None` when there is none at that path.
    async fn get(&self, path: &str) -> Result<Option<Vec<u8>>, Failure>;
    /// Deletes a secret; deleting a missing one is not an error.
    async fn delete(&self, path: &str) -> Result<(), Failure>;
    /// Paths under a prefix.
    async fn list(&self, prefix: &str) -> Result<Vec<String>, Failure>;
}

/// Filter for [`Inventory::list`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertFilter {
    /// Only this pool.
    pub pool: Option<String>,
    /// At most this many rows, soonest expiry first.
    pub limit: Option<u32>,
}

/// The certificate inventory.
#[async_trait]
pub trait Inventory: Send + Sync + std::fmt::Debug {
    /// Records a freshly issued certificate as pooled. Recording the same id twice is a no-op,
    /// which makes the activity that calls it safe to retry.
    async fn record_issued(&self, cert: &CertificateRecord) -> Result<(), Failure>;
    /// Ready certificates of a pool: pooled with at least `min_remaining_secs` left at `now`.
    async fn pool_level(&self, pool: &str, now: i64, min_remaining_secs: i64) -> Result<PoolLevel, Failure>;
    /// Certificates, soonest expiry first.
    async fn list(&self, filter: &CertFilter) -> Result<Vec<CertificateRecord>, Failure>;
    /// One certificate.
    async fn get(&self, id: &str) -> Result<Option<CertificateRecord>, Failure>;

    /// Atomically gives `cluster` a ready certificate of `pool`, or returns the one it already
    /// holds. Never hands one certificate to two clusters. Enqueues `certificate.assigned`.
    async fn claim(&self, params: &ClaimParams) -> Result<ClaimResult, Failure>;
    /// The cluster's assignment.
    async fn assignment(&self, cluster: &str) -> Result<Option<AssignmentRecord>, Failure>;
    /// Clusters that use a certificate.
    async fn assignments_of(&self, cert_id: &str) -> Result<Vec<AssignmentRecord>, Failure>;
    /// Assigned certificates due for renewal at `now`, ordered by `(renew_at, id)` after the
    /// cursor. Includes predecessors whose renewal recorded a successor but did not finish
    /// (their renewal is started again and adopts the successor).
    async fn due_for_renewal(
        &self,
        now: i64,
        after: Option<(i64, String)>,
        limit: u32,
    ) -> Result<Vec<CertificateRecord>, Failure>;
    /// Retires pooled certificates of `pool` expiring before `threshold`; returns how many.
    async fn retire_expiring_pooled(&self, pool: &str, threshold: i64) -> Result<u32, Failure>;
    /// Records `successor` (already issued) as the replacement of `predecessor` and moves every
    /// cluster association to it, in one transaction. Idempotent. Returns the clusters moved.
    async fn record_successor(&self, predecessor: &str, successor: &CertificateRecord) -> Result<Vec<String>, Failure>;
    /// Marks a renewal as given up (`None` clears the mark).
    async fn set_renewal_error(&self, cert_id: &str, error: Option<&str>) -> Result<(), Failure>;
    /// Retires a certificate.
    async fn retire(&self, cert_id: &str) -> Result<(), Failure>;
    /// Records what a cluster was sent.
    async fn record_delivery(&self, delivery: &DeliveryRecord) -> Result<(), Failure>;
    /// What a cluster was last sent.
    async fn delivery(&self, cluster: &str) -> Result<Option<DeliveryRecord>, Failure>;
    /// Clusters whose last delivery is not their assigned certificate (or that were never
    /// delivered), at most `limit`.
    async fn out_of_sync_clusters(&self, limit: u32) -> Result<Vec<String>, Failure>;
    /// Enqueues an event for every configured sink.
    async fn enqueue_event(&self, ty: EventType, subject: &str, data: serde_json::Value) -> Result<(), Failure>;
    /// Events not yet delivered, oldest first, skipping those still backing off at `now`.
    async fn pending_events(&self, now: i64, limit: u32) -> Result<Vec<OutboxEntry>, Failure>;
    /// Marks an outbox entry delivered.
    async fn event_delivered(&self, id: i64, now: i64) -> Result<(), Failure>;
    /// Records a failed delivery attempt; the entry is retried after `retry_at`.
    async fn event_failed(&self, id: i64, error: &str, retry_at: i64) -> Result<(), Failure>;
}

/// What a cluster target receives. The key is present only when the target's config allows it.
pub struct Delivery {
    /// Cluster id.
    pub cluster: String,
    /// Certificate id.
    pub cert_id: String,
    /// Serial, lowercase hex.
    pub serial: String,
    /// SANs.
    pub sans: Vec<String>,
    /// Chain PEM, leaf first.
    pub chain_pem: String,
    /// Private key PEM.
    pub key_pem: zeroize::Zeroizing<String>,
}

impl std::fmt::Debug for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delivery")
            .field("cluster", &self.cluster)
            .field("cert_id", &self.cert_id)
            .field("serial", &self.serial)
            .finish_non_exhaustive()
    }
}

/// Where a cluster gets its certificate: files on disk, a webhook, …
#[async_trait]
pub trait ClusterTarget: Send + Sync + std::fmt::Debug {
    /// Pushes the certificate. Idempotent: delivering the same certificate twice is harmless.
    async fn deliver(&self, delivery: &Delivery) -> Result<(), Failure>;
    /// The TLS endpoint (`host:port`) and SNI that must serve the delivered certificate, if the
    /// target is configured to verify.
    fn verify_endpoint(&self, cluster: &str) -> Option<(String, Option<String>)>;
    /// How long verification may keep retrying.
    fn verify_timeout(&self) -> std::time::Duration;
}

/// Receives lifecycle events.
#[async_trait]
pub trait EventSink: Send + Sync + std::fmt::Debug {
    /// Publishes one event; returns once the sink has accepted it.
    async fn publish(&self, event: &CloudEvent) -> Result<(), Failure>;
}
