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
use certpool_domain::contracts::{
    AssignRequest, Assignment, ClaimDeskInput, ClaimReply, ClaimUpdate, DeskReply, check_cluster_id, workflow_ids,
};
use certpool_workflows::{AssignCertificate, PoolClaims};
use std::time::{Duration, Instant};
use temporalio_client::errors::{WorkflowStartError, WorkflowUpdateError, WorkflowUpdateWithStartError};
use temporalio_client::tonic::{self, Code};
use temporalio_client::{
    Client, ClientOptions, Connection, ConnectionOptions, Url, WorkflowIdConflictPolicy, WorkflowIdReusePolicy,
    WorkflowUpdateWithStartOptions,
};
use temporalio_common::protos::temporal::api::failure::v1::{Failure, failure::FailureInfo};

/// How long a claim keeps resending itself when the server turns it away for reasons that pass
/// (the claims workflow continuing as new, too many updates in flight, a frontend restart).
const RETRY_BUDGET: Duration = Duration::from_secs(30);

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
    shards: u16,
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
        Ok(Self::from_client(client, cfg))
    }

    /// Wraps an existing Temporal client, with the claims queue and shards of `cfg`.
    pub fn from_client(client: Client, cfg: &TemporalConfig) -> Self {
        Self {
            client,
            task_queue: cfg.claims_queue(),
            shards: cfg.claim_shards,
        }
    }

    /// Claims a ready certificate of `pool` for `cluster`. Idempotent: claiming again for the
    /// same cluster returns the same certificate.
    ///
    /// The claim is an update to the pool's long-running `PoolClaims` workflow
    /// (`claims/<pool>/<shard>`, started by the first claim). When the pool is empty and waits
    /// for replenishment, the claim continues as `AssignCertificate` (`assign/<cluster>`), which
    /// waits up to the pool's `claim_timeout`. Refusals that pass (the claims workflow continuing
    /// as new, too many claims in flight at once, Temporal briefly unreachable) are retried for
    /// up to 30 seconds with a fresh update id.
    pub async fn claim(&self, pool: &str, cluster: &str, target: Option<&str>) -> Result<Assignment, ClaimError> {
        check_cluster_id(cluster).map_err(|message| ClaimError::Rejected {
            kind: "claim.bad_cluster".into(),
            message,
        })?;
        let req = AssignRequest {
            pool: pool.to_owned(),
            cluster: cluster.to_owned(),
            target: target.map(str::to_owned),
        };
        let desk = workflow_ids::claim_desk(pool, cluster, self.shards);
        let deadline = Instant::now() + RETRY_BUDGET;
        let mut backoff = Duration::from_millis(10);
        loop {
            let why = match self.ask_desk(&desk, &req).await {
                Ok(DeskReply::Decided(reply)) => return decided(pool, reply),
                Ok(DeskReply::WaitForRefill) => return self.claim_waiting(req).await,
                Err(Ask::Final(e)) => return Err(e),
                Err(Ask::Again(why)) => why,
            };
            let pause = backoff.mul_f64(0.5 + rand::random::<f64>());
            if Instant::now() + pause >= deadline {
                return Err(ClaimError::Unavailable(format!(
                    "claim for {cluster} from pool {pool} kept being turned away for {}s; last: {why}",
                    RETRY_BUDGET.as_secs()
                )));
            }
            tracing::debug!(%cluster, %pool, %why, "claim turned away; sending it again");
            tokio::time::sleep(pause).await;
            backoff = (backoff * 2).min(Duration::from_secs(1));
        }
    }

    async fn ask_desk(&self, desk: &str, req: &AssignRequest) -> Result<DeskReply, Ask> {
        let opts = WorkflowUpdateWithStartOptions::new(
            self.task_queue.clone(),
            desk.to_owned(),
            WorkflowIdConflictPolicy::UseExisting,
        )
        // A desk that ended (a pool that did not exist then) may be started again.
        .id_reuse_policy(WorkflowIdReusePolicy::AllowDuplicate)
        // Fresh for every attempt: the server remembers an update id's outcome for the whole
        // run, and a retried claim must be decided again, not handed an old refusal.
        .update_id(format!("{}/{:016x}", req.cluster, rand::random::<u64>()))
        .build();
        let result = self
            .client
            .execute_update_with_start_workflow(
                PoolClaims::run,
                ClaimDeskInput::new(&req.pool),
                PoolClaims::claim,
                req.clone(),
                opts,
            )
            .await;
        result.map_err(|e| match e {
            WorkflowUpdateWithStartError::Update(WorkflowUpdateError::Failed(f)) => {
                let (kind, message) = innermost(&f);
                if kind == "UnprocessedUpdate" {
                    // Sent to the run just as it continued as new, or beyond the updates the
                    // server lets a workflow hold at once: the claim never ran.
                    return Ask::Again(message);
                }
                // The workflow's validator: `<kind>: <message>`.
                match message.split_once(": ") {
                    Some((kind, message)) if kind.starts_with("claim.") => Ask::Final(ClaimError::Rejected {
                        kind: kind.to_owned(),
                        message: message.to_owned(),
                    }),
                    _ => Ask::Final(ClaimError::Unavailable(format!("{kind}: {message}"))),
                }
            }
            WorkflowUpdateWithStartError::Update(WorkflowUpdateError::NotFound(s)) => {
                Ask::Again(s.message().to_owned())
            }
            WorkflowUpdateWithStartError::Update(WorkflowUpdateError::Rpc(s))
            | WorkflowUpdateWithStartError::Start(WorkflowStartError::Rpc(s))
            | WorkflowUpdateWithStartError::Rpc(s) => status(s),
            other => Ask::Final(ClaimError::Unavailable(other.to_string())),
        })
    }

    /// The slow path: `assign/<cluster>` waits for the refill (update-with-start, joining a
    /// claim already waiting for this cluster).
    async fn claim_waiting(&self, req: AssignRequest) -> Result<Assignment, ClaimError> {
        let pool = req.pool.clone();
        let opts = WorkflowUpdateWithStartOptions::new(
            self.task_queue.clone(),
            workflow_ids::assign(&req.cluster),
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
                req,
                AssignCertificate::claim,
                ClaimUpdate { pool: pool.clone() },
                opts,
            )
            .await;
        match result {
            Ok(reply) => decided(&pool, reply),
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

/// What one attempt at a claim came to.
enum Ask {
    /// Turned away for a reason that passes; the claim never ran.
    Again(String),
    /// The answer.
    Final(ClaimError),
}

/// Server refusals worth sending the claim again for: the frontend or history restarting,
/// overload, the workflow's run changing under the update.
fn status(s: tonic::Status) -> Ask {
    match s.code() {
        Code::Unavailable | Code::ResourceExhausted | Code::Aborted | Code::DeadlineExceeded | Code::NotFound => {
            Ask::Again(format!("{:?}: {}", s.code(), s.message()))
        }
        _ => Ask::Final(ClaimError::Unavailable(format!("{:?}: {}", s.code(), s.message()))),
    }
}

fn decided(pool: &str, reply: ClaimReply) -> Result<Assignment, ClaimError> {
    match reply {
        ClaimReply::Assigned(a) => Ok(a),
        ClaimReply::Failed { kind, message, .. } if kind == "pool.empty" => Err(ClaimError::PoolEmpty {
            pool: pool.to_owned(),
            message,
        }),
        ClaimReply::Failed {
            kind,
            message,
            permanent: true,
        } => Err(ClaimError::Rejected { kind, message }),
        ClaimReply::Failed { kind, message, .. } => Err(ClaimError::Unavailable(format!("{kind}: {message}"))),
    }
}

/// Claims with a one-off connection; see [`CertpoolClient::claim`].
pub async fn claim(cfg: &TemporalConfig, pool: &str, cluster: &str) -> Result<Assignment, ClaimError> {
    CertpoolClient::connect(cfg, "certpool-client")
        .await?
        .claim(pool, cluster, None)
        .await
}
