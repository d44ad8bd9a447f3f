//! `ClusterSync`: delivers a cluster's current certificate and proves the cluster serves it.

use crate::failure::summarize_activity;
use crate::options;
use certpool_domain::contracts::{CertpoolActivities, SyncOutcome, SyncRequest, message_names, workflow_names};
use temporalio_common::error::ApplicationFailure;
use temporalio_macros::{workflow, workflow_methods};
use temporalio_workflow::{ContinueAsNewOptions, SyncWorkflowContext, WorkflowContext, WorkflowResult};

/// Patch id of the change that runs `deliver` as a local activity: a push to a target is a few
/// seconds at most, and as a regular activity it cost every sync a second workflow task and an
/// activity task through the server (a claim starts one sync, so this is per claim).
const DELIVER_LOCAL: &str = "deliver-local";

/// Rounds before continuing as new.
const ROUNDS_PER_RUN: u32 = 50;

/// Workflow id `cluster-sync/<cluster>`, started or signalled (`resync`) whenever the cluster's
/// certificate changes. Each round pushes the current version to the cluster's target (retried
/// until the target is back), waits until the endpoint serves the delivered serial when the
/// target verifies, and records the delivered version. Runs rounds until no resync is pending.
#[workflow]
#[derive(Debug, Default)]
pub struct ClusterSync {
    pending: bool,
}

#[workflow_methods]
impl ClusterSync {
    /// Syncs.
    #[run(name = workflow_names::CLUSTER_SYNC)]
    pub async fn run(ctx: &mut WorkflowContext<Self>, req: SyncRequest) -> WorkflowResult<SyncOutcome> {
        let mut outcome = SyncOutcome {
            cluster: req.cluster.clone(),
            delivered: None,
            rounds: 0,
        };
        loop {
            ctx.state_mut(|s| s.pending = false);
            let delivered = if ctx.patched(DELIVER_LOCAL) {
                ctx.execute_local_activity(
                    CertpoolActivities::deliver,
                    req.cluster.clone(),
                    options::deliver_local(),
                )
                .await
            } else {
                ctx.execute_activity(CertpoolActivities::deliver, req.cluster.clone(), options::deliver())
                    .await
            };
            let delivered = delivered.map_err(|e| {
                let s = summarize_activity(&e);
                ApplicationFailure::builder(format!("deliver to {} failed: {}", req.cluster, s.message))
                    .type_name(s.kind)
                    .non_retryable(true)
                    .build()
            })?;
            if let Some(d) = delivered {
                if d.verify {
                    ctx.execute_activity(CertpoolActivities::verify_delivery, d.clone(), options::verify())
                        .await
                        .map_err(|e| {
                            let s = summarize_activity(&e);
                            ApplicationFailure::builder(format!(
                                "cluster {} does not serve serial {}: {}",
                                d.cluster, d.serial, s.message
                            ))
                            .type_name(s.kind)
                            .non_retryable(true)
                            .build()
                        })?;
                }
                if !d.recorded {
                    ctx.execute_activity(CertpoolActivities::record_delivery, d.clone(), options::local())
                        .await?;
                }
                outcome.delivered = Some(d);
            }
            outcome.rounds += 1;
            if !ctx.state(|s| s.pending) {
                return Ok(outcome);
            }
            if outcome.rounds >= ROUNDS_PER_RUN {
                ctx.continue_as_new(req.clone(), ContinueAsNewOptions::default())?;
            }
        }
    }

    /// The cluster's certificate changed: deliver again after the current round.
    #[signal(name = message_names::RESYNC)]
    pub fn resync(&mut self, _ctx: &mut SyncWorkflowContext<Self>, _reason: String) {
        self.pending = true;
    }
}
