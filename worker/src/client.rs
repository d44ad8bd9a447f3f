//! The typed client API that provisioning services use to claim certificates.
//!
//! ```no_run
//! # async fn f(cfg: &certpool_domain::config::TemporalConfig) -> Result<(), certpool::client::ClaimError> {
//! let client = certpool::client::CertpoolClient::connect(cfg, "provisioner").await?;
//! let a = client.claim("aws-us-east-1", "cluster-42", None).await?;
//! println!("cluster-42 uses certificate {} (serial {})", a.cert_id, a.serial);
//! # Ok(()) }
//! ```

use certpool_domain::config::TemporalConfig;
use certpool_domain::contracts::{AssignRequest, Assignment, ClaimReply, ClaimUpdate, workflow_ids};
use certpool_workflows::AssignCertificate;
use temporalio_client::errors::{WorkflowUpdateError, WorkflowUpdateWithStartError};
use temporalio_client::{
    Client, ClientOptions, Connection, ConnectionOptions, Url, WorkflowIdConflictPolicy, WorkflowIdReusePolicy,
    WorkflowUpdateWithStartOptions,
};
use temporalio_common::protos::temporal::api::failure::v1::{Failure, failure::FailureInfo};

/// Why a claim did not return a certificate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClaimError {
    /// The pool had no ready certificate (after waiting, if the pool waits).
    #[error("{message}")]
    PoolEmpty {
        /// Pool.
        pool: String,
        /// What certpool said, naming the pool and its state.
        message: String,
    },
    /// The claim was refused: unknown pool or target, bad cluster id, the cluster holds a
    /// certificate of another pool.
    #[error("claim refused ({kind}): {message}")]
    Rejected {
        /// Failure type, e.g. `claim.unknown_pool`.
        kind: String,
        /// Message.
        message: String,
    },
    /// Temporal could not be reached or the workflow ended abnormally; retrying is safe.
    #[error("claim did not complete: {0}")]
    Unavailable(String),
}

/// Connection to certpool through Temporal.
#[derive(Debug, Clone)]
pub struct CertpoolClient {
    client: Client,
    task_queue: String,
}

fn innermost(f: &Failure) -> (String, String) {
    let mut cur = f;
    let mut best = (String::new(), f.message.clone());
    loop {
        if let Some(FailureInfo::ApplicationFailureInfo(a)) = &cur.failure_info
            && !a.r#type.is_empty()
        {
            best = (a.r#type.clone(), cur.message.clone());
        }
        match cur.cause.as_deref() {
            Some(c) => cur = c,
            None => return best,
        }
    }
}

impl CertpoolClient {
    /// Connects to the configured Temporal frontend.
    pub async fn connect(cfg: &TemporalConfig, identity: &str) -> Result<Self, ClaimError> {
        let url = Url::parse(&cfg.address).map_err(|e| ClaimError::Unavailable(format!("temporal.address: {e}")))?;
        let conn = Connection::connect(ConnectionOptions::new(url).identity(identity.to_owned()).build())
            .await
            .map_err(|e| ClaimError::Unavailable(format!("cannot connect to Temporal at {}: {e}", cfg.address)))?;
        let client = Client::new(conn, ClientOptions::new(cfg.namespace.clone()).build())
            .map_err(|e| ClaimError::Unavailable(e.to_string()))?;
        Ok(Self::from_client(client, cfg.claims_queue()))
    }

    /// Wraps an existing Temporal client; `task_queue` is the claims queue
    /// ([`TemporalConfig::claims_queue`]).
    pub fn from_client(client: Client, task_queue: String) -> Self {
        Self { client, task_queue }
    }

    /// Claims a ready certificate of `pool` for `cluster` (workflow `assign/<cluster>`).
    /// Idempotent: claiming again for the same cluster returns the same certificate.
    ///
    /// Sent as update-with-start: the answer comes back as soon as the claim is decided, and the
    /// workflow starts the cluster's sync and the pool's refill after that.
    pub async fn claim(&self, pool: &str, cluster: &str, target: Option<&str>) -> Result<Assignment, ClaimError> {
        let opts = WorkflowUpdateWithStartOptions::new(
            self.task_queue.clone(),
            workflow_ids::assign(cluster),
            // A claim already running for this cluster is joined.
            WorkflowIdConflictPolicy::UseExisting,
        )
        // A finished one runs again and returns the cluster's existing assignment.
        .id_reuse_policy(WorkflowIdReusePolicy::AllowDuplicate)
        .build();
        let result = self
            .client
            .execute_update_with_start_workflow(
                AssignCertificate::run,
                AssignRequest {
                    pool: pool.to_owned(),
                    cluster: cluster.to_owned(),
                    target: target.map(str::to_owned),
                },
                AssignCertificate::claim,
                ClaimUpdate { pool: pool.to_owned() },
                opts,
            )
            .await;
        match result {
            Ok(ClaimReply::Assigned(a)) => Ok(a),
            Ok(ClaimReply::Failed { kind, message, .. }) if kind == "pool.empty" => Err(ClaimError::PoolEmpty {
                pool: pool.to_owned(),
                message,
            }),
            Ok(ClaimReply::Failed {
                kind,
                message,
                permanent: true,
            }) => Err(ClaimError::Rejected { kind, message }),
            Ok(ClaimReply::Failed { kind, message, .. }) => Err(ClaimError::Unavailable(format!("{kind}: {message}"))),
            Err(WorkflowUpdateWithStartError::Update(WorkflowUpdateError::Failed(f))) => {
                let (kind, message) = innermost(&f);
                Err(ClaimError::Unavailable(format!("{kind}: {message}")))
            }
            Err(e) => Err(ClaimError::Unavailable(e.to_string())),
        }
    }

    /// The underlying Temporal client.
    pub fn temporal(&self) -> &Client {
        &self.client
    }
}

/// Claims with a one-off connection; see [`CertpoolClient::claim`].
pub async fn claim(cfg: &TemporalConfig, pool: &str, cluster: &str) -> Result<Assignment, ClaimError> {
    CertpoolClient::connect(cfg, "certpool-client")
        .await?
        .claim(pool, cluster, None)
        .await
}
