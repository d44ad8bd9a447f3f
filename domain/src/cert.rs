//! Certificates as the inventory knows them.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Lifecycle state of a certificate in the inventory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CertState {
    /// Issued and waiting in its pool to be claimed.
    Pooled,
    /// Claimed by a cluster.
    Assigned,
    /// Replaced or expired; kept for audit.
    Retired,
}

impl CertState {
    /// Name as stored and printed.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pooled => "pooled",
            Self::Assigned => "assigned",
            Self::Retired => "retired",
        }
    }
}

impl fmt::Display for CertState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for CertState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "pooled" => Self::Pooled,
            "assigned" => Self::Assigned,
            "retired" => Self::Retired,
            other => return Err(format!("unknown certificate state {other:?}")),
        })
    }
}

/// A certificate row. Holds references to key and chain, never the key itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertificateRecord {
    /// certpool's id for the certificate (a UUID chosen by the workflow that issued it).
    pub id: String,
    /// Pool it was issued for.
    pub pool: String,
    /// SANs, in the order of the scheme.
    pub sans: Vec<String>,
    /// Serial number, lowercase hex.
    pub serial: String,
    /// Issuer distinguished name.
    pub issuer: String,
    /// Start of validity, Unix seconds.
    pub not_before: i64,
    /// End of validity, Unix seconds.
    pub not_after: i64,
    /// Lifecycle state.
    pub state: CertState,
    /// CA that issued it.
    pub ca: String,
    /// Secret-store path of the private key.
    pub key_ref: String,
    /// Secret-store path of the chain.
    pub chain_ref: String,
    /// When it was recorded, Unix seconds.
    pub created_at: i64,
    /// When it is due for renewal, Unix seconds (from the renewal policy when it was issued).
    #[serde(default)]
    pub renew_at: i64,
    /// The last renewal gave up; the next scan tries again.
    #[serde(default)]
    pub renewal_error: Option<String>,
    /// The certificate that replaced this one.
    #[serde(default)]
    pub successor_id: Option<String>,
    /// The certificate this one replaced.
    #[serde(default)]
    pub predecessor_id: Option<String>,
}

/// A cluster's association with a certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssignmentRecord {
    /// Cluster id.
    pub cluster: String,
    /// Certificate currently assigned.
    pub cert_id: String,
    /// Pool it was claimed from.
    pub pool: String,
    /// Cluster target name, if any.
    pub target: Option<String>,
    /// Unix seconds.
    pub assigned_at: i64,
}

/// What a cluster has been sent and whether it serves it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryRecord {
    /// Cluster id.
    pub cluster: String,
    /// Certificate delivered.
    pub cert_id: String,
    /// Serial delivered.
    pub serial: String,
    /// The endpoint was seen serving that serial (false when the target does not verify).
    pub verified: bool,
    /// Unix seconds.
    pub updated_at: i64,
}

/// Parameters of an atomic claim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimParams {
    /// Pool.
    pub pool: String,
    /// Cluster.
    pub cluster: String,
    /// Cluster target.
    pub target: Option<String>,
    /// Now, Unix seconds.
    pub now: i64,
    /// Minimum remaining lifetime of a claimable certificate, seconds.
    pub min_remaining_secs: i64,
}

/// Result of an atomic claim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClaimResult {
    /// The cluster holds this certificate; `new` is false when it already held it.
    Assigned {
        /// The certificate.
        cert: Box<CertificateRecord>,
        /// Whether this call made the assignment.
        new: bool,
    },
    /// No ready certificate in the pool.
    Empty,
}

/// An event waiting in the outbox for one sink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEntry {
    /// Row id.
    pub id: i64,
    /// Sink name.
    pub sink: String,
    /// CloudEvent JSON.
    pub event_json: String,
    /// Delivery attempts so far.
    pub attempts: u32,
}

/// How full a pool is right now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolLevel {
    /// Pool name.
    pub pool: String,
    /// Pooled certificates with enough remaining lifetime.
    pub ready: u32,
    /// Earliest `not_after` among ready certificates, Unix seconds.
    pub soonest_expiry: Option<i64>,
}

/// Secret-store paths, in one place so every store lays secrets out the same way.
pub mod paths {
    /// Private key of a certificate.
    pub fn cert_key(cert_id: &str) -> String {
        format!("certs/{cert_id}/key")
    }
    /// Chain (leaf first) of a certificate.
    pub fn cert_chain(cert_id: &str) -> String {
        format!("certs/{cert_id}/chain")
    }
    /// ACME account credentials for a CA.
    pub fn acme_account(ca: &str) -> String {
        format!("acme/accounts/{ca}")
    }
}
