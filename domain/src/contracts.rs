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
    /// Gives a cluster a certificate from a pool, waiting for replenishment if the pool says so.
    pub const ASSIGN_CERTIFICATE: &str = "AssignCertificate";
    /// Long-running: answers a pool's claims as updates (the fast path of a claim).
    pub const POOL_CLAIMS: &str = "PoolClaims";
    /// Pushes a cluster's current certificate to its target.
    pub const CLUSTER_SYNC: &str = "ClusterSync";
    /// Replaces an assigned certificate before it expires.
    pub const CERTIFICATE_RENEWAL: &str = "CertificateRenewal";
    /// Finds due certificates; started by a Temporal Schedule.
    pub const EXPIRY_SCAN: &str = "ExpiryScan";
}

/// Workflow ids, in one place so every caller derives the same id.
pub mod workflow_ids {
    /// `assign/<cluster>`
    pub fn assign(cluster: &str) -> String {
        format!("assign/{cluster}")
    }
    /// `claims/<pool>/<shard>`: the `PoolClaims` workflow that answers this cluster's claims.
    /// The shard is a stable hash of the cluster id (FNV-1a, the same in every process and
    /// version), so a retried claim meets the claim it repeats; any shard would give a correct
    /// answer, since the inventory alone decides who gets which certificate.
    pub fn claim_desk(pool: &str, cluster: &str, shards: u16) -> String {
        let hash = cluster.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
        format!("claims/{pool}/{}", hash % u64::from(shards.max(1)))
    }
    /// `cluster-sync/<cluster>`
    pub fn cluster_sync(cluster: &str) -> String {
        format!("cluster-sync/{cluster}")
    }
    /// `renew/<cert>/<not_after>`: derived from the certificate and its expiry, so repeated or
    /// overlapping scans can never start two renewals of one certificate.
    pub fn renewal(cert_id: &str, not_after: i64) -> String {
        format!("renew/{cert_id}/{not_after}")
    }
    /// Id of the expiry scan's Temporal Schedule.
    pub const EXPIRY_SCAN_SCHEDULE: &str = "certpool-expiry-scan";
}

/// Pinned signal and query names.
pub mod message_names {
    /// Signal to `PoolReplenish`: check the level again after the current round.
    pub const REPLENISH_REQUESTED: &str = "replenish_requested";
    /// Query on `PoolReplenish`: a [`super::ReplenishProgress`].
    pub const PROGRESS: &str = "progress";
    /// Signal to `ClusterSync`: the cluster's certificate changed, deliver again.
    pub const RESYNC: &str = "resync";
    /// Update on `AssignCertificate` and on `PoolClaims`: the claim's result.
    pub const CLAIM: &str = "claim";
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
    /// Set when this issuance renews that certificate: the new one takes over its clusters
    /// instead of entering the pool.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub successor_of: Option<String>,
    /// Give up on the DNS-01 challenges after this many milliseconds. Enforced inside the workflow so
    /// that DNS clean-up still runs (an execution timeout would skip it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub challenge_deadline_ms: Option<u64>,
    /// Attempts of the new-order call before the issuance fails; the default retry policy when
    /// absent. Set when a backup CA can take over, so that an unreachable CA is given up in
    /// seconds instead of minutes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_attempts: Option<u32>,
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
            successor_of: None,
            challenge_deadline_ms: Some(u64::try_from(pool.issue_timeout.get().as_millis()).unwrap_or(u64::MAX)),
            ca_attempts: None,
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
    /// For a successor: the clusters moved to it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub clusters: Vec<String>,
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
    /// Renewal: the certificate this one replaces.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub successor_of: Option<String>,
}

/// Input of `AssignCertificate`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssignRequest {
    /// Pool to claim from.
    pub pool: String,
    /// Cluster id.
    pub cluster: String,
    /// Cluster target; the pool's default when absent.
    #[serde(default)]
    pub target: Option<String>,
}

/// Input of the `claim` update. A claim that joins a running `assign/<cluster>` workflow may
/// name another pool than the one that started it; the update refuses that instead of
/// silently answering with the other pool's certificate.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimUpdate {
    /// Pool the caller claims from.
    pub pool: String,
}

/// Input of `PoolClaims`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimDeskInput {
    /// The pool whose claims this workflow answers.
    pub pool: String,
    /// Claims answered before the workflow continues as new, which bounds its history (and the
    /// server's per-run update limit, 2000 by default).
    #[serde(default = "default_claims_per_run")]
    pub claims_per_run: u32,
}

fn default_claims_per_run() -> u32 {
    ClaimDeskInput::CLAIMS_PER_RUN
}

impl ClaimDeskInput {
    /// Default of `claims_per_run`: about 3000 history events per run.
    pub const CLAIMS_PER_RUN: u32 = 500;

    /// A desk for `pool` with the default run length.
    pub fn new(pool: &str) -> Self {
        Self {
            pool: pool.to_owned(),
            claims_per_run: Self::CLAIMS_PER_RUN,
        }
    }
}

/// Answer of the `claim` update on `PoolClaims`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeskReply {
    /// Decided: the cluster's certificate, or why there is none.
    Decided(ClaimReply),
    /// The pool is empty and its `on_empty` is `wait`: the caller continues with
    /// `AssignCertificate` (`assign/<cluster>`), which requests the refill and waits for it up to
    /// the pool's `claim_timeout`. Waiting there keeps long waits out of the shared workflow.
    WaitForRefill,
}

/// Cluster ids end up in workflow ids, file names and URLs: 1 to 100 of `a-z`, `0-9`, `.`, `_`,
/// `-`, starting with a letter or digit. `Err` is the message naming what is wrong.
pub fn check_cluster_id(id: &str) -> Result<(), String> {
    let ok = !id.is_empty()
        && id.len() <= 100
        && id
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "cluster id {id:?} must be 1 to 100 of a-z, 0-9, '.', '_', '-', starting with a letter or digit"
        ))
    }
}

/// A cluster's certificate, as returned to provisioning.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assignment {
    /// Cluster id.
    pub cluster: String,
    /// Pool.
    pub pool: String,
    /// Certificate id.
    pub cert_id: String,
    /// Serial, lowercase hex.
    pub serial: String,
    /// SANs.
    pub sans: Vec<String>,
    /// End of validity, Unix seconds.
    pub not_after: i64,
    /// Secret-store path of the key.
    pub key_ref: String,
    /// Secret-store path of the chain.
    pub chain_ref: String,
    /// False when the cluster already held this certificate (a retried claim).
    pub new: bool,
}

/// Answer of the `claim` update on `AssignCertificate`, and what `PoolClaims` decided.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClaimReply {
    /// The cluster's certificate.
    Assigned(Assignment),
    /// The claim failed.
    Failed {
        /// Failure type: `pool.empty`, `claim.unknown_pool`, `inventory.busy` …
        kind: String,
        /// Message naming the pool and what went wrong.
        message: String,
        /// False when retrying the claim later can succeed.
        permanent: bool,
    },
}

/// Output of the claim activity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClaimOutcome {
    /// The cluster has a certificate.
    Assigned(Assignment),
    /// The pool had no ready certificate.
    Empty {
        /// Pool.
        pool: String,
        /// Target size.
        target: u32,
        /// Whether to wait for replenishment.
        wait: bool,
        /// How long to wait, seconds.
        wait_secs: u64,
    },
}

/// Input of `notify`: workflows to start or signal.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotifyRequest {
    /// Clusters whose `ClusterSync` should (re)deliver.
    #[serde(default)]
    pub sync_clusters: Vec<String>,
    /// Pools whose `PoolReplenish` should check its level.
    #[serde(default)]
    pub replenish_pools: Vec<String>,
    /// Why, for the signal payload.
    #[serde(default)]
    pub reason: String,
}

/// Input of `ClusterSync`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncRequest {
    /// Cluster id.
    pub cluster: String,
}

/// What `deliver` pushed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivered {
    /// Cluster.
    pub cluster: String,
    /// Certificate id.
    pub cert_id: String,
    /// Serial.
    pub serial: String,
    /// Whether the target verifies via a TLS endpoint.
    pub verify: bool,
    /// `deliver` already recorded the delivery (targets that do not verify): the workflow skips
    /// `record_delivery`. Absent in histories from before this field, where it means false.
    #[serde(default)]
    pub recorded: bool,
}

/// Result of `ClusterSync`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncOutcome {
    /// Cluster.
    pub cluster: String,
    /// Last delivered, if the cluster has a certificate.
    pub delivered: Option<Delivered>,
    /// Deliveries made by this run.
    pub rounds: u32,
}

/// Input of `CertificateRenewal`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RenewalRequest {
    /// Certificate to replace.
    pub cert_id: String,
}

/// What `prepare_renewal` found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RenewalPlan {
    /// Issuance of the successor (same SANs, CA and DNS as the predecessor's pool).
    pub issue: IssueRequest,
    /// Set when a successor already exists (a repeated renewal adopts it).
    pub existing_successor: Option<String>,
    /// The pool's backup CA: attempts after the first issue through it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_ca: Option<String>,
    /// Clusters of the existing successor.
    #[serde(default)]
    pub existing_clusters: Vec<String>,
    /// Attempts before reporting failure.
    pub max_attempts: u32,
    /// Grace period before retiring the predecessor, seconds.
    pub grace_secs: u64,
    /// Execution timeout of one issuance, seconds.
    pub issue_timeout_secs: u64,
}

/// Result of `CertificateRenewal`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RenewalOutcome {
    /// Predecessor.
    pub predecessor: String,
    /// Successor.
    pub successor: String,
    /// Clusters moved.
    pub clusters: Vec<String>,
    /// Whether every cluster acknowledged before the grace period ended.
    pub all_synced: bool,
}

/// Input of `renewal_failed`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RenewalFailedRequest {
    /// Certificate.
    pub cert_id: String,
    /// What went wrong.
    pub error: String,
}

/// Input of `synced`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncedRequest {
    /// Certificate every cluster should have.
    pub cert_id: String,
    /// Clusters.
    pub clusters: Vec<String>,
}

/// Input of `ExpiryScan`, also its continue-as-new state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanInput {
    /// Cursor `(renew_at, id)` of the last row handled.
    #[serde(default)]
    pub after: Option<(i64, String)>,
    /// Unix second the scan started at (fixed across continue-as-new).
    #[serde(default)]
    pub now: Option<i64>,
    /// Renewals started so far.
    #[serde(default)]
    pub started: u32,
    /// Due certificates whose renewal was already running.
    #[serde(default)]
    pub already_running: u32,
}

/// One page of due certificates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanPage {
    /// `(cert id, not_after)` of due certificates.
    pub due: Vec<(String, i64)>,
    /// Cursor after the page; `None` at the end.
    pub next: Option<(i64, String)>,
}

/// Input of `scan_page`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanPageRequest {
    /// Scan time.
    pub now: i64,
    /// Cursor.
    pub after: Option<(i64, String)>,
    /// Page size.
    pub limit: u32,
    /// Renewals this scan has started so far (the page shrinks to stay within `scan.max_starts`).
    #[serde(default)]
    pub started_so_far: u32,
}

/// Output of `start_renewals`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StartedRenewals {
    /// Newly started.
    pub started: u32,
    /// Already running or already done for this expiry.
    pub already_running: u32,
}

/// Result of `ExpiryScan`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanOutcome {
    /// Renewals started.
    pub started: u32,
    /// Due certificates whose renewal was already running.
    pub already_running: u32,
    /// Pooled certificates retired for too little remaining lifetime.
    pub retired_pooled: u32,
    /// What the scan repaired: lagging clusters and pools below target.
    #[serde(default)]
    pub reconciled: Reconciled,
}

/// Output of `reconcile`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reconciled {
    /// Clusters whose `ClusterSync` was started again because they lag their assignment.
    pub resynced_clusters: u32,
    /// Pools below target whose replenisher was signalled.
    pub refilled_pools: u32,
}

/// Output of `retire_expiring_pooled`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetiredPooled {
    /// Pools that lost certificates (their replenishers were signalled).
    pub pools: Vec<String>,
    /// Certificates retired.
    pub retired: u32,
}

/// Marker types of the activity definitions, for `#[activity(definition = …)]` in the
/// activities crate. The macro puts them in a private module.
pub mod activity_defs {
    pub use super::certpool_activities::{
        AwaitPropagation, Claim, Deliver, DescribePool, DnsCleanup, DnsPresent, FinalizeOrder, GenerateKey, NewOrder,
        Notify, PoolLevel, PrepareRenewal, Reconcile, RecordDelivery, RecordIssued, RenewalFailed, RetireCertificate,
        RetireExpiringPooled, ScanDue, StartRenewals, Synced, ValidateOrder, VerifyDelivery,
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
    /// Atomically assigns a ready certificate of the pool to the cluster (or returns the one
    /// it holds). Run as a local activity: it is one SQLite transaction.
    #[activity(name = "certpool.claim")]
    pub fn claim(req: AssignRequest) -> Result<ClaimOutcome, ActivityError> {
        unimplemented!()
    }

    /// Starts or signals `ClusterSync` and `PoolReplenish` workflows (signal-with-start).
    #[activity(name = "certpool.lifecycle.notify")]
    pub fn notify(req: NotifyRequest) -> Result<(), ActivityError> {
        unimplemented!()
    }

    /// Pushes the cluster's current certificate to its target; `None` if it has none.
    #[activity(name = "certpool.sync.deliver")]
    pub fn deliver(cluster: String) -> Result<Option<Delivered>, ActivityError> {
        unimplemented!()
    }

    /// Waits until the cluster's endpoint serves the delivered serial.
    #[activity(name = "certpool.sync.verify")]
    pub fn verify_delivery(delivered: Delivered) -> Result<(), ActivityError> {
        unimplemented!()
    }

    /// Records the delivered version and serial for the cluster.
    #[activity(name = "certpool.sync.record")]
    pub fn record_delivery(delivered: Delivered) -> Result<(), ActivityError> {
        unimplemented!()
    }

    /// Looks up what renewing a certificate takes.
    #[activity(name = "certpool.renewal.prepare")]
    pub fn prepare_renewal(req: RenewalRequest) -> Result<RenewalPlan, ActivityError> {
        unimplemented!()
    }

    /// Marks a renewal as failed and publishes `certificate.renewal_failed`.
    #[activity(name = "certpool.renewal.failed")]
    pub fn renewal_failed(req: RenewalFailedRequest) -> Result<(), ActivityError> {
        unimplemented!()
    }

    /// Whether every cluster has been delivered the certificate.
    #[activity(name = "certpool.renewal.synced")]
    pub fn synced(req: SyncedRequest) -> Result<bool, ActivityError> {
        unimplemented!()
    }

    /// Retires a certificate.
    #[activity(name = "certpool.inventory.retire")]
    pub fn retire_certificate(cert_id: String) -> Result<(), ActivityError> {
        unimplemented!()
    }

    /// One page of assigned certificates due for renewal.
    #[activity(name = "certpool.scan.due")]
    pub fn scan_due(req: ScanPageRequest) -> Result<ScanPage, ActivityError> {
        unimplemented!()
    }

    /// Starts `CertificateRenewal` for each due certificate; ids make repeats no-ops.
    #[activity(name = "certpool.scan.start_renewals")]
    pub fn start_renewals(due: Vec<(String, i64)>) -> Result<StartedRenewals, ActivityError> {
        unimplemented!()
    }

    /// Level-triggered repair: restarts `ClusterSync` for clusters that lag their assignment and
    /// signals the replenisher of every pool below target, so a lost signal costs one scan
    /// interval at most.
    #[activity(name = "certpool.scan.reconcile")]
    pub fn reconcile(now: i64) -> Result<Reconciled, ActivityError> {
        unimplemented!()
    }

    /// Retires pooled certificates below their pool's minimum remaining lifetime.
    #[activity(name = "certpool.scan.retire_expiring_pooled")]
    pub fn retire_expiring_pooled(now: i64) -> Result<RetiredPooled, ActivityError> {
        unimplemented!()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shard of a cluster must never change between versions or processes: a retried claim
    /// goes to the same workflow as the claim it repeats. These values pin the hash.
    #[test]
    fn claim_desk_is_stable_and_spread() {
        assert_eq!(workflow_ids::claim_desk("p", "cluster-42", 4), "claims/p/2");
        assert_eq!(workflow_ids::claim_desk("p", "cluster-43", 4), "claims/p/1");
        assert_eq!(workflow_ids::claim_desk("p", "cluster-42", 1), "claims/p/0");
        // Zero shards would divide by zero; it means one.
        assert_eq!(workflow_ids::claim_desk("p", "cluster-42", 0), "claims/p/0");
        let mut per_shard = [0_u32; 4];
        for i in 0..400 {
            let id = workflow_ids::claim_desk("p", &format!("c-{i}"), 4);
            let shard: usize = id.rsplit('/').next().and_then(|s| s.parse().ok()).unwrap_or(99);
            per_shard[shard] += 1;
        }
        assert!(per_shard.iter().all(|&n| (60..=140).contains(&n)), "{per_shard:?}");
    }

    #[test]
    fn cluster_ids() {
        for ok in ["a", "cluster-42", "x.y_z-1", &"a".repeat(100)] {
            assert!(check_cluster_id(ok).is_ok(), "{ok}");
        }
        for bad in ["", "-a", "A", "a b", "a/b", &"a".repeat(101)] {
            let err = check_cluster_id(bad).expect_err(bad);
            assert!(err.contains("must be 1 to 100"), "{err}");
        }
    }
}
