//! Lifecycle events, published as CloudEvents 1.0 through an outbox in the inventory.

use serde::{Deserialize, Serialize};

/// Event types certpool publishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EventType {
    /// A certificate was issued into a pool.
    #[serde(rename = "certificate.issued")]
    Issued,
    /// A certificate was assigned to a cluster.
    #[serde(rename = "certificate.assigned")]
    Assigned,
    /// A certificate was replaced by its successor.
    #[serde(rename = "certificate.renewed")]
    Renewed,
    /// A cluster serves (or received) a certificate.
    #[serde(rename = "certificate.delivered")]
    Delivered,
    /// Renewal gave up after its attempts; the certificate stays due.
    #[serde(rename = "certificate.renewal_failed")]
    RenewalFailed,
    /// A pool could not serve a claim.
    #[serde(rename = "pool.low")]
    PoolLow,
}

impl EventType {
    /// The dotted name (`certificate.renewed`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Issued => "certificate.issued",
            Self::Assigned => "certificate.assigned",
            Self::Renewed => "certificate.renewed",
            Self::Delivered => "certificate.delivered",
            Self::RenewalFailed => "certificate.renewal_failed",
            Self::PoolLow => "pool.low",
        }
    }

    /// Parses the dotted name.
    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Issued,
            Self::Assigned,
            Self::Renewed,
            Self::Delivered,
            Self::RenewalFailed,
            Self::PoolLow,
        ]
        .into_iter()
        .find(|t| t.as_str() == s)
    }
}

/// A CloudEvents 1.0 event in structured JSON mode.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CloudEvent {
    /// Always `1.0`.
    pub specversion: String,
    /// Unique id; sinks deduplicate on it (delivery is at least once).
    pub id: String,
    /// Producer, from `[events] source`.
    pub source: String,
    /// `net.certpool.<type>`, e.g. `net.certpool.certificate.renewed`.
    #[serde(rename = "type")]
    pub ty: String,
    /// Subject: a certificate id, cluster or pool.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// RFC 3339 time the event was recorded.
    pub time: String,
    /// Always `application/json`.
    pub datacontenttype: String,
    /// Event data. Never key material.
    pub data: serde_json::Value,
}

/// Prefix of CloudEvents `type` attributes.
pub const TYPE_PREFIX: &str = "net.certpool.";
