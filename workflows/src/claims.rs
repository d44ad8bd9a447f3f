//! `PoolClaims`: the fast path of a claim. A long-running workflow per pool shard answers
//! claims as updates, so a claim costs one workflow task on a worker that already holds the
//! workflow in its cache, instead of creating a workflow per cluster.
//!
//! Measured on the dev stack (2 cores): an update-with-start that creates a fresh workflow takes
//! about 50 ms at the median whatever the workflow does, an update to a running, cached workflow
//! about 15 ms. The claim itself is the same local activity `AssignCertificate` runs: one
//! inventory transaction that takes the certificate, records the association and queues the
//! cluster's `ClusterSync` and the pool's refill in the outbox.

use crate::failure::summarize_activity;
use crate::options;
use certpool_domain::contracts::{
    AssignRequest, CertpoolActivities, ClaimDeskInput, ClaimOutcome, ClaimReply, DeskReply, NotifyRequest,
    check_cluster_id, message_names, workflow_names,
};
use temporalio_common::error::ApplicationFailure;
use temporalio_macros::{workflow, workflow_methods};
use temporalio_workflow::{ContinueAsNewOptions, WorkflowContext, WorkflowContextView, WorkflowResult};

/// Workflow id `claims/<pool>/<shard>` ([`certpool_domain::contracts::workflow_ids::claim_desk`]).
#[workflow]
#[derive(Debug)]
pub struct PoolClaims {
    input: ClaimDeskInput,
    /// Claims answered in this run.
    answered: u32,
    /// Claims being answered now; the run must not continue as new under them.
    in_flight: u32,
    /// Set when the pool turned out not to exist: the workflow ends instead of waiting forever.
    unknown_pool: Option<String>,
}

#[workflow_methods]
impl PoolClaims {
    /// Keeps the input in state, so that the validator can check the pool before any handler.
    #[init]
    pub fn new(_ctx: &WorkflowContextView, input: ClaimDeskInput) -> Self {
        Self {
            input,
            answered: 0,
            in_flight: 0,
            unknown_pool: None,
        }
    }

    /// Answers claims until `claims_per_run`, then continues as new. Claims that reach the
    /// server while the run closes are refused as unprocessed, and the client sends them again
    /// to the next run (a claim is idempotent per cluster).
    #[run(name = workflow_names::POOL_CLAIMS)]
    pub async fn run(ctx: &mut WorkflowContext<Self>) -> WorkflowResult<()> {
        let _ = ctx
            .wait_condition(|s| {
                s.in_flight == 0 && (s.answered >= s.input.claims_per_run.max(1) || s.unknown_pool.is_some())
            })
            .await;
        if let Some(message) = ctx.state(|s| s.unknown_pool.clone()) {
            return Err(ApplicationFailure::builder(message)
                .type_name("claim.unknown_pool".to_owned())
                .non_retryable(true)
                .build()
                .into());
        }
        let input = ctx.state(|s| s.input.clone());
        ctx.continue_as_new(input, ContinueAsNewOptions::default())?;
        unreachable!("continue_as_new always returns Err")
    }

    /// Refuses, before anything is recorded, a claim for another pool or with a bad cluster id.
    #[update_validator(claim)]
    fn validate_claim(
        &self,
        _ctx: &WorkflowContextView,
        req: &AssignRequest,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        if req.pool != self.input.pool {
            return Err(format!(
                "claim.wrong_workflow: this workflow answers claims of pool {}, not {}",
                self.input.pool, req.pool
            )
            .into());
        }
        check_cluster_id(&req.cluster).map_err(|m| format!("claim.bad_cluster: {m}").into())
    }

    /// One claim: the inventory transaction, and on an empty pool the refill request.
    #[update(name = message_names::CLAIM)]
    pub async fn claim(ctx: &mut WorkflowContext<Self>, req: AssignRequest) -> DeskReply {
        ctx.state_mut(|s| s.in_flight += 1);
        let reply = answer(ctx, &req).await;
        if let DeskReply::Decided(ClaimReply::Failed { kind, message, .. }) = &reply
            && kind == "claim.unknown_pool"
        {
            let message = message.clone();
            ctx.state_mut(|s| s.unknown_pool = Some(message));
        }
        ctx.state_mut(|s| {
            s.in_flight -= 1;
            s.answered += 1;
        });
        reply
    }
}

async fn answer(ctx: &mut WorkflowContext<PoolClaims>, req: &AssignRequest) -> DeskReply {
    let outcome = match ctx
        .execute_local_activity(CertpoolActivities::claim, req.clone(), options::claim())
        .await
    {
        Ok(o) => o,
        Err(e) => {
            let s = summarize_activity(&e);
            return DeskReply::Decided(ClaimReply::Failed {
                kind: s.kind,
                message: format!("claim failed: {}", s.message),
                permanent: s.permanent,
            });
        }
    };
    match outcome {
        ClaimOutcome::Assigned(a) => DeskReply::Decided(ClaimReply::Assigned(a)),
        ClaimOutcome::Empty { wait: true, .. } => DeskReply::WaitForRefill,
        ClaimOutcome::Empty { pool, target, .. } => {
            let refill = request_refill(ctx, &pool, &req.cluster).await;
            let refill = match refill {
                Ok(()) => "replenishment requested".to_owned(),
                Err(e) => format!("requesting replenishment failed: {}", summarize_activity(&e).message),
            };
            DeskReply::Decided(ClaimReply::Failed {
                kind: "pool.empty".into(),
                message: format!(
                    "pool {pool} has no ready certificate (0 of target {target}; {refill}); on_empty = \"fail\""
                ),
                permanent: true,
            })
        }
    }
}

/// Asks the pool's replenisher for a refill (a local activity: signal-with-start).
pub(crate) async fn request_refill<W>(
    ctx: &WorkflowContext<W>,
    pool: &str,
    cluster: &str,
) -> Result<(), temporalio_common::error::ActivityExecutionError> {
    ctx.execute_local_activity(
        CertpoolActivities::notify,
        NotifyRequest {
            replenish_pools: vec![pool.to_owned()],
            reason: format!("claim by {cluster} found the pool empty"),
            ..Default::default()
        },
        options::notify(),
    )
    .await
}
