//! Pools: a scheme bound to a cloud and region, with a target size.

use crate::config::{KeyAlgorithm, OnEmpty};
use crate::duration::Duration;
use serde::{Deserialize, Serialize};

/// Values a pool binds to scheme placeholders.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PoolTemplateValues {
    /// `{cloud}`
    pub cloud: String,
    /// `{region}`
    pub region: String,
    /// `{network_id}`
    pub network_id: Option<String>,
    /// `{zone}`, one SAN per element.
    pub zones: Vec<String>,
}

/// A validated pool with its materialized SAN list. This travels to workflows, so it holds no
/// secrets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolSpec {
    /// Pool name (also part of workflow ids).
    pub name: String,
    /// Scheme the SANs came from.
    pub scheme: String,
    /// Materialized SANs.
    pub sans: Vec<String>,
    /// Ready certificates to keep.
    pub target_size: u32,
    /// Pooled certificates closer than this to expiry do not count as ready.
    pub min_remaining_lifetime: Duration,
    /// CA name.
    pub ca: String,
    /// CA that takes over when `ca` fails transiently.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_ca: Option<String>,
    /// DNS provider name.
    pub dns: String,
    /// Concurrent issuances while filling.
    pub fill_concurrency: u32,
    /// Key algorithm of new certificates.
    pub key_algorithm: KeyAlgorithm,
    /// Execution timeout of one issuance.
    pub issue_timeout: Duration,
    /// What a claim does on an empty pool.
    pub on_empty: OnEmpty,
    /// How long a waiting claim waits.
    pub claim_timeout: Duration,
    /// Default cluster target of the pool's clusters.
    pub target: Option<String>,
}

/// Pool names end up in workflow ids and secret paths, so they are kept to a safe alphabet.
pub fn validate_pool_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 100 {
        return Err("pool names must be 1 to 100 characters".into());
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.')))
    {
        return Err(format!(
            "pool name {name:?} contains {c:?}; use a-z, 0-9, '-', '_' and '.'"
        ));
    }
    Ok(())
}

/// Workflow id of a pool's replenisher: one per pool, which is what keeps two fills of the same
/// pool from running at once.
pub fn replenish_workflow_id(pool: &str) -> String {
    format!("pool-replenish/{pool}")
}
