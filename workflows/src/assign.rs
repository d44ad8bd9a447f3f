//! `AssignCertificate`: provisioning claims a ready certificate for a cluster.

use crate::failure::summarize_activity;
use crate::options;
use certpool_domain::contracts::{
    AssignRequest, Assignment, CertpoolActivities, ClaimOutcome, NotifyRequest, workflow_names,
};
use std::time::Duration;
use temporalio_common::error::ApplicationFailure;
use temporalio_macros::{workflow, workflow_methods};
use temporalio_workflow::{WorkflowContext, WorkflowResult, WorkflowTermination};

/// Workflow id `assign/<cluster>`. Takes one pooled certificate atomically (a local activity:
/// one SQLite transaction), starts `ClusterSync` for the cluster and asks the pool's replenisher
/// to refill. A retried claim for the same cluster returns the same certificate. On an empty
/// pool it waits for replenishment up to the pool's `claim_timeout`, or fails at once with
/// `pool.empty`, as the pool's `on_empty` says.
#[workflow]
#[derive(Debug, Default)]
pub struct AssignCertificate;

#[workflow_methods]
impl AssignCertificate {
    /// Claims.
    #[run(name = workflow_names::ASSIGN_CERTIFICATE)]
    pub async fn run(ctx: &mut WorkflowContext<Self>, req: AssignRequest) -> WorkflowResult<Assignment> {
        let mut waited = Duration::ZERO;
        let mut backoff = Duration::from_millis(200);
        let mut asked_for_refill = false;
        loop {
            let outcome = ctx
                .execute_local_activity(CertpoolActivities::claim, req.clone(), options::claim())
                .await
                .map_err(|e| {
                    fail(
                        &summarize_activity(&e).to_string(),
                        "claim",
                        summarize_activity(&e).permanent,
                    )
                })?;
            match outcome {
                ClaimOutcome::Assigned(a) => {
                    let notify = NotifyRequest {
                        sync_clusters: if a.new { vec![a.cluster.clone()] } else { Vec::new() },
                        replenish_pools: if a.new { vec![a.pool.clone()] } else { Vec::new() },
                        reason: format!("assigned {} to {}", a.cert_id, a.cluster),
                    };
                    if !notify.sync_clusters.is_empty() {
                        ctx.execute_local_activity(CertpoolActivities::notify, notify, options::notify())
                            .await
                            .map_err(|e| fail(&summarize_activity(&e).to_string(), "start cluster sync", false))?;
                    }
                    return Ok(a);
                }
                ClaimOutcome::Empty {
                    pool,
                    target,
                    wait,
                    wait_secs,
                } => {
                    if !asked_for_refill {
                        asked_for_refill = true;
                        ctx.execute_local_activity(
                            CertpoolActivities::notify,
                            NotifyRequest {
                                replenish_pools: vec![pool.clone()],
                                reason: format!("claim by {} found the pool empty", req.cluster),
                                ..Default::default()
                            },
                            options::notify(),
                        )
                        .await
                        .map_err(|e| fail(&summarize_activity(&e).to_string(), "request refill", false))?;
                    }
                    let limit = Duration::from_secs(wait_secs);
                    if !wait || waited >= limit {
                        let how = if wait {
                            format!("still empty after waiting {}s for replenishment", limit.as_secs())
                        } else {
                            "on_empty = \"fail\"".to_owned()
                        };
                        return Err(ApplicationFailure::builder(format!(
                            "pool {pool} has no ready certificate (0 of target {target}; replenishment requested); {how}"
                        ))
                        .type_name("pool.empty".to_owned())
                        .non_retryable(true)
                        .build()
                        .into());
                    }
                    ctx.timer(backoff).await;
                    waited += backoff;
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                }
            }
        }
    }
}

fn fail(msg: &str, step: &str, permanent: bool) -> WorkflowTermination {
    ApplicationFailure::builder(format!("{step} failed: {msg}"))
        .type_name("claim.failed".to_owned())
        .non_retryable(permanent)
        .build()
        .into()
}
