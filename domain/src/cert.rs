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
