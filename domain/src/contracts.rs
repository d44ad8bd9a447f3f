//! The contract between workflows and activities: pinned names and the payload types that travel
//! through Temporal history.
//!
//! Everything here is visible in history and in the Temporal UI. It carries references to secrets
//! (secret-store paths), public data (CSRs, chains, TXT values) and never key material.

// The activity-definition macro emits marker structs without `Debug`.
#![allow(missing_debug_implementations)]

use crate::cert::PoolLevel;
use crate::config::KeyAlgorithm;
use crate::plugins::TxtRecord;
use crate::pool::PoolSpec;
use serde::{Deserialize, Serialize};
use temporalio_common::ActivityError;
use temporalio_macros::activity_definitions;

/// Pinned workflow type names. Renaming a Rust type must never change these.
pub mod workflow_names {
    /// Fills one pool.
    pub const POOL_REPLENISH: &str = "PoolReplenish";
    /// Issues one certificate.
    pub const ISSUE_CERTIFICATE: &str = "IssueCertificate";
}

/// Pinned signal and query names.
pub mod message_names {
    /// Signal to `PoolReplenish`: check the level again after the current round.
    pub const REPLENISH_REQUESTED: &str = "replenish_requested";
    /// Query on `PoolReplenish`: a [`super::ReplenishProgress`].
    pub const PROGRESS: &str = "progress";
}

/// Input of `PoolReplenish`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplenishInput {
    /// Pool to fill.
    pub pool: String,
    /// Counters carried across continue-as-new.
    #[serde(default)]
    pub carried: ReplenishCounters,
}

/// Counters of one replenisher, kept across continue-as-new.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplenishCounters {
    /// Certificates issued.
    pub issued: u32,
    /// Issuances that failed.
    pub failed: u32,
    /// Rounds run.
    pub rounds: u32,
}

/// Result of `PoolReplenish`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplenishOutcome {
    /// Pool name.
    pub pool: String,
    /// Ready certificates at the end.
    pub ready: u32,
    /// Target size.
    pub target: u32,
    /// Counters over the whole fill.
    pub counters: ReplenishCounters,
}

/// What `PoolReplenish` is doing, for `certpool pools fill --wait`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplenishProgress {
    /// Pool name.
    pub pool: String,
    /// Target size (0 until the pool spec is loaded).
    pub target: u32,
    /// Ready certificates at the last level check, plus those issued since.
    pub ready: u32,
    /// Issuances running now.
    pub in_flight: u32,
    /// Counters.
    pub counters: ReplenishCounters,
    /// The most recent issuance failure, if any.
    pub last_error: Option<String>,
    /// `loading`, `filling`, `backing_off`, `done`.
    pub phase: String,
}

/// Input of `IssueCertificate`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssueRequest {
    /// Id the certificate will have (chosen by the caller so retries stay idempotent).
    pub cert_id: String,
    /// Pool it is for.
    pub pool: String,
    /// SANs to request.
    pub sans: Vec<String>,
    /// CA name.
    pub ca: String,
    /// DNS provider name.
    pub dns: String,
    /// Key algorithm.
    pub key_algorithm: KeyAlgorithm,
}

impl IssueRequest {
    /// Builds the request for one certificate of a pool.
    pub fn for_pool(pool: &PoolSpec, cert_id: String) -> Self {
        Self {
            cert_id,
            pool: pool.name.clone(),
            sans: pool.sans.clone(),
            ca: pool.ca.clone(),
            dns: pool.dns.clone(),
            key_algorithm: pool.key_algorithm,
        }
    }
}

/// Result of `IssueCertificate`: public facts about the new certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuedCertificate {
    /// Certificate id.
    pub id: String,
    /// Serial, lowercase hex.
    pub serial: String,
    /// End of validity, Unix seconds.
    pub not_after: i64,
    /// Set when the certificate was issued but removing the challenge records failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cleanup_error: Option<String>,
}

/// Input of `pool_level`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolLevelRequest {
    /// Pool name.
    pub pool: String,
    /// Minimum remaining lifetime that counts as ready, seconds.
    pub min_remaining_secs: i64,
}

/// Input of `new_order`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewOrderRequest {
    /// CA name.
    pub ca: String,
    /// DNS identifiers.
    pub identifiers: Vec<String>,
}

/// An ACME order as workflows see it: enough to resume it from any worker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderHandle {
    /// CA name.
    pub ca: String,
    /// Order URL (the account key is looked up by the activity, never passed).
    pub url: String,
    /// DNS-01 challenges still to answer. Empty when the CA reused valid authorizations.
    pub challenges: Vec<Dns01Challenge>,
}

/// One pending DNS-01 challenge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dns01Challenge {
    /// Identifier being authorized (`*.example.net` for wildcards).
    pub identifier: String,
    /// Challenge URL.
    pub url: String,
    /// TXT record to publish.
    pub record: TxtRecord,
}

/// Input of `dns_present`, `dns_cleanup` and `await_propagation`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DnsChangeRequest {
    /// DNS provider name.
    pub provider: String,
    /// Records.
    pub records: Vec<TxtRecord>,
}

/// Input of `generate_key`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRequest {
    /// Certificate id; the key is stored under it.
    pub cert_id: String,
    /// SANs for the CSR.
    pub sans: Vec<String>,
    /// Algorithm.
    pub algorithm: KeyAlgorithm,
}

/// Output of `generate_key`: a reference to the stored key and the CSR. Never the key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyAndCsr {
    /// Secret-store path of the private key.
    pub key_ref: String,
    /// DER of the CSR, base64 (standard alphabet).
    pub csr_der_b64: String,
}

/// Input of `finalize_order`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FinalizeRequest {
    /// The order.
    pub order: OrderHandle,
    /// CSR DER, base64.
    pub csr_der_b64: String,
}

/// Output of `finalize_order`: the public chain, leaf first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainPem {
    /// PEM of the chain.
    pub pem: String,
}

/// Input of `record_issued`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordIssuedRequest {
    /// Certificate id.
    pub cert_id: String,
    /// Pool.
    pub pool: String,
    /// CA name.
    pub ca: String,
    /// SANs requested.
    pub sans: Vec<String>,
    /// Secret-store path of the key.
    pub key_ref: String,
    /// The chain.
    pub chain_pem: String,
}

/// Marker types of the activity definitions, for `#[activity(definition = …)]` in the
/// activities crate. The macro puts them in a private module.
pub mod activity_defs {
    pub use super::certpool_activities::{
        AwaitPropagation, DescribePool, DnsCleanup, DnsPresent, FinalizeOrder, GenerateKey, NewOrder, PoolLevel,
        RecordIssued, ValidateOrder,
    };
}

/// Activities, declared without implementation so the workflow crate can call them without
/// depending on any I/O crate. The activities crate implements each one with
/// `#[activity(definition = ...)]`, which checks the types at compile time.
#[derive(Debug)]
pub struct CertpoolActivities;

#[activity_definitions]
impl CertpoolActivities {
    /// The pool's spec as the worker's config defines it now.
    #[activity(name = "certpool.pool.describe")]
    pub fn describe_pool(pool: String) -> Result<PoolSpec, ActivityError> {
        unimplemented!()
    }

    /// How many ready certificates a pool has.
    #[activity(name = "certpool.inventory.pool_level")]
    pub fn pool_level(req: PoolLevelRequest) -> Result<PoolLevel, ActivityError> {
        unimplemented!()
    }

    /// Creates an ACME order and returns its pending DNS-01 challenges.
    #[activity(name = "certpool.acme.new_order")]
    pub fn new_order(req: NewOrderRequest) -> Result<OrderHandle, ActivityError> {
        unimplemented!()
    }

    /// Publishes challenge records (appending to existing TXT sets).
    #[activity(name = "certpool.dns.present")]
    pub fn dns_present(req: DnsChangeRequest) -> Result<(), ActivityError> {
        unimplemented!()
    }

    /// Waits until every authoritative server answers every record.
    #[activity(name = "certpool.dns.await_propagation")]
    pub fn await_propagation(req: DnsChangeRequest) -> Result<(), ActivityError> {
        unimplemented!()
    }

    /// Removes exactly the given challenge values.
    #[activity(name = "certpool.dns.cleanup")]
    pub fn dns_cleanup(req: DnsChangeRequest) -> Result<(), ActivityError> {
        unimplemented!()
    }

    /// Tells the CA the challenges are ready and waits for the order to become ready.
    #[activity(name = "certpool.acme.validate")]
    pub fn validate_order(order: OrderHandle) -> Result<(), ActivityError> {
        unimplemented!()
    }

    /// Generates a key, stores it, returns its reference and a CSR.
    #[activity(name = "certpool.keys.generate")]
    pub fn generate_key(req: KeyRequest) -> Result<KeyAndCsr, ActivityError> {
        unimplemented!()
    }

    /// Finalizes the order with the CSR and downloads the chain.
    #[activity(name = "certpool.acme.finalize")]
    pub fn finalize_order(req: FinalizeRequest) -> Result<ChainPem, ActivityError> {
        unimplemented!()
    }

    /// Stores the chain and records the certificate as pooled.
    #[activity(name = "certpool.inventory.record_issued")]
    pub fn record_issued(req: RecordIssuedRequest) -> Result<crate::contracts::IssuedCertificate, ActivityError> {
        unimplemented!()
    }
}
