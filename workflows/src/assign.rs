//! `AssignCertificate`: provisioning claims a ready certificate for a cluster.

use crate::failure::summarize_activity;
use crate::options;
use certpool_domain::contracts::{
    AssignRequest, Assignment, CertpoolActivities, ClaimOutcome, ClaimReply, ClaimUpdate, NotifyRequest, message_names,
    workflow_names,
};
use std::time::Duration;
use temporalio_common::error::ApplicationFailure;
use temporalio_macros::{workflow, workflow_methods};
use temporalio_workflow::{WorkflowContext, WorkflowContextView, WorkflowResult};

/// Patch id of the change that moved the post-claim sync and refill requests into the outbox.
const NOTIFY_THROUGH_OUTBOX: &str = "notify-through-outbox";

/// Workflow id `assign/<cluster>`. Takes one pooled certificate atomically (a local activity:
/// one inventory transaction, which also queues the cluster's `ClusterSync` start and the pool's
/// refill signal in the outbox; the relay carries them out). A retried claim for the same cluster returns the same certificate. On an empty
/// pool it waits for replenishment up to the pool's `claim_timeout`, or fails at once with
/// `pool.empty`, as the pool's `on_empty` says.
#[workflow]
#[derive(Debug, Default)]
pub struct AssignCertificate {
    /// The claim's outcome.
    outcome: Option<ClaimReply>,
    /// `claim` updates not yet answered; the workflow must not complete before they are.
    waiting_updates: u32,
    /// What this claim was started with; set by `init`, before any update handler runs.
    req: AssignRequest,
}

#[workflow_methods]
impl AssignCertificate {
    /// Keeps the request in state so that update handlers can check joining claims against it.
    #[init]
    pub fn new(_ctx: &WorkflowContextView, req: AssignRequest) -> Self {
        Self { req, ..Self::default() }
    }

    /// Claims, answers the `claim` update, then starts the cluster's sync and asks for a refill.
    #[run(name = workflow_names::ASSIGN_CERTIFICATE)]
    pub async fn run(ctx: &mut WorkflowContext<Self>) -> WorkflowResult<Assignment> {
        let req = ctx.state(|s| s.req.clone());
        let outcome = match claim_until_assigned(ctx, &req).await {
            Ok(a) => ClaimReply::Assigned(a),
            Err((kind, message, permanent)) => ClaimReply::Failed {
                kind,
                message,
                permanent,
            },
        };
        ctx.state_mut(|s| s.outcome = Some(outcome.clone()));
        // Let every waiting `claim` update answer before the workflow can end, or its caller
        // would get "workflow completed before the update" instead of the outcome.
        let _ = ctx.wait_condition(|s| s.waiting_updates == 0).await;
        let assignment = match outcome {
            ClaimReply::Assigned(a) => a,
            ClaimReply::Failed { kind, message, .. } => {
                return Err(ApplicationFailure::builder(message)
                    .type_name(kind)
                    .non_retryable(true)
                    .build()
                    .into());
            }
        };
        // The claim's transaction queued the cluster's sync and the pool's refill in the outbox
        // (the relay carries them out, batched), so the claim ends in the workflow task that
        // answers it. Runs started before that kept the notify activity; the patch keeps their
        // histories replaying.
        if !ctx.patched(NOTIFY_THROUGH_OUTBOX) {
            // Always, not only for a new assignment: a claim re-run after a crash finds the
            // assignment already committed, and the sync and refill must still be requested
            // (both are idempotent).
            ctx.execute_activity(
                CertpoolActivities::notify,
                NotifyRequest {
                    sync_clusters: vec![assignment.cluster.clone()],
                    replenish_pools: vec![assignment.pool.clone()],
                    reason: format!("assigned {} to {}", assignment.cert_id, assignment.cluster),
                },
                options::notify_activity(),
            )
            .await?;
        }
        Ok(assignment)
    }

    /// The claim's result, as soon as the claim is decided (update-with-start from
    /// `certpool::client`): the caller does not wait for the sync and refill requests.
    #[update(name = message_names::CLAIM)]
    pub async fn claim(ctx: &mut WorkflowContext<Self>, input: ClaimUpdate) -> ClaimReply {
        let started_for = ctx.state(|s| s.req.pool.clone());
        if input.pool != started_for {
            return ClaimReply::Failed {
                kind: "claim.other_pool".into(),
                message: format!(
                    "a claim for this cluster from pool {started_for} is in progress; it cannot also claim from {}",
                    input.pool
                ),
                permanent: true,
            };
        }
        ctx.state_mut(|s| s.waiting_updates += 1);
        let waited = ctx.wait_condition(|s| s.outcome.is_some()).await;
        ctx.state_mut(|s| s.waiting_updates -= 1);
        match (waited, ctx.state(|s| s.outcome.clone())) {
            (Ok(()), Some(reply)) => reply,
            _ => ClaimReply::Failed {
                kind: "claim.cancelled".into(),
                message: "the claim was cancelled before it was decided".into(),
                permanent: false,
            },
        }
    }
}

/// Claims; on an empty pool requests a refill and waits (or fails) as the pool says.
async fn claim_until_assigned(
    ctx: &mut WorkflowContext<AssignCertificate>,
    req: &AssignRequest,
) -> Result<Assignment, (String, String, bool)> {
    let mut waited = Duration::ZERO;
    let mut backoff = Duration::from_millis(200);
    let mut asked_for_refill = false;
    loop {
        let outcome = ctx
            .execute_local_activity(CertpoolActivities::claim, req.clone(), options::claim())
            .await
            .map_err(|e| {
                let s = summarize_activity(&e);
                (s.kind, format!("claim failed: {}", s.message), s.permanent)
            })?;
        match outcome {
            ClaimOutcome::Assigned(a) => return Ok(a),
            ClaimOutcome::Empty {
                pool,
                target,
                wait,
                wait_secs,
            } => {
                if !asked_for_refill {
                    asked_for_refill = true;
                    crate::claims::request_refill(ctx, &pool, &req.cluster)
                        .await
                        .map_err(|e| {
                            (
                                "claim.failed".to_owned(),
                                format!("request refill: {}", summarize_activity(&e)),
                                false,
                            )
                        })?;
                }
                let limit = Duration::from_secs(wait_secs);
                if !wait || waited >= limit {
                    let how = if wait {
                        format!("still empty after waiting {}s for replenishment", limit.as_secs())
                    } else {
                        "on_empty = \"fail\"".to_owned()
                    };
                    return Err((
                        "pool.empty".to_owned(),
                        format!(
                            "pool {pool} has no ready certificate (0 of target {target}; replenishment requested); {how}"
                        ),
                        true,
                    ));
                }
                ctx.timer(backoff).await;
                waited += backoff;
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
        }
    }
}
