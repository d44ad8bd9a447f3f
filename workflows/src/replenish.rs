//! `PoolReplenish`: keeps one pool at its target size.

use crate::failure::{FailureSummary, summarize_activity, summarize_child};
use crate::issue::IssueCertificate;
use crate::options;
use certpool_domain::contracts::{
    CertpoolActivities, IssueRequest, IssuedCertificate, PoolLevelRequest, ReplenishInput, ReplenishOutcome,
    ReplenishProgress, message_names, workflow_names,
};
use certpool_domain::pool::PoolSpec;
use std::cell::RefCell;
use std::time::Duration;
use temporalio_common::error::ApplicationFailure;
use temporalio_macros::{workflow, workflow_methods};
use temporalio_workflow::{
    ChildWorkflowOptions, ContinueAsNewOptions, ParentClosePolicy, SyncWorkflowContext, WorkflowContext,
    WorkflowContextView, WorkflowResult, join_all,
};

/// Continue as new after this many rounds, well before history gets large.
const ROUNDS_PER_RUN: u32 = 20;
/// Issuances at once while the pool holds at least half its target: a top-up behind claims
/// trickles instead of arriving as a burst of `fill_concurrency` orders that would take the CPU
/// (and the CA's rate limit) from the claims it refills for.
const TOP_UP_LANES: u32 = 2;
/// Patch id of the top-up limit.
const TOP_UP_TRICKLE: &str = "top-up-trickle";
/// Patch id of the switch to the pool's backup CA.
const BACKUP_CA: &str = "backup-ca";
/// Backoff after a round with transient failures: doubles from this…
const BACKOFF_START: Duration = Duration::from_secs(2);
/// …to this cap.
const BACKOFF_CAP: Duration = Duration::from_secs(300);

/// One per pool, with workflow id `pool-replenish/<pool>`. Reads the pool's level, issues the
/// deficit through child `IssueCertificate` workflows with bounded concurrency, and repeats until
/// the pool is full. Transient failures back off and retry; a permanent one (the CA rejects the
/// names, the DNS server refuses our key) fails the fill, because retrying cannot fix config.
#[workflow]
#[derive(Debug, Default)]
pub struct PoolReplenish {
    progress: ReplenishProgress,
    requested: bool,
}

#[workflow_methods]
impl PoolReplenish {
    /// Fills the pool.
    #[run(name = workflow_names::POOL_REPLENISH)]
    pub async fn run(ctx: &mut WorkflowContext<Self>, input: ReplenishInput) -> WorkflowResult<ReplenishOutcome> {
        let mut counters = input.carried.clone();
        ctx.state_mut(|s| {
            s.progress.pool = input.pool.clone();
            s.progress.phase = "loading".into();
            s.progress.counters = counters.clone();
        });
        let spec = ctx
            .execute_activity(CertpoolActivities::describe_pool, input.pool.clone(), options::local())
            .await
            .map_err(|e| fail(&summarize_activity(&e), "describe pool"))?;
        let mut backoff = BACKOFF_START;
        let mut rounds_this_run = 0;
        // Each run starts with the pool's own CA: a fill after an outage finds out whether it
        // is back with one quick order.
        let mut on_backup = false;

        loop {
            // Cleared before the level is read: a claim that signals while the read is in flight
            // leaves the flag set and forces another look instead of being lost.
            ctx.state_mut(|s| s.requested = false);
            let level = ctx
                .execute_activity(
                    CertpoolActivities::pool_level,
                    PoolLevelRequest {
                        pool: spec.name.clone(),
                        min_remaining_secs: i64::try_from(spec.min_remaining_lifetime.get().as_secs())
                            .unwrap_or(i64::MAX),
                    },
                    options::local(),
                )
                .await
                .map_err(|e| fail(&summarize_activity(&e), "read pool level"))?;
            let deficit = spec.target_size.saturating_sub(level.ready);
            ctx.state_mut(|s| {
                s.progress.target = spec.target_size;
                s.progress.ready = level.ready;
            });
            if deficit == 0 && ctx.state(|s| s.requested) {
                continue;
            }
            if deficit == 0 {
                ctx.state_mut(|s| s.progress.phase = "done".into());
                return Ok(ReplenishOutcome {
                    pool: spec.name.clone(),
                    ready: level.ready,
                    target: spec.target_size,
                    counters,
                });
            }

            ctx.state_mut(|s| s.progress.phase = "filling".into());
            // One order goes first: once it has validated the pool's names, the CA reuses those
            // authorizations and the parallel orders need no DNS-01 at all. Without this, every
            // order of a pool publishes values at the same `_acme-challenge` names at once, and
            // the TXT set grows past what a validator reads over UDP.
            let (ca, lead_attempts) = match &spec.backup_ca {
                Some(b) if on_backup => (b.clone(), None),
                Some(_) => (spec.ca.clone(), Some(options::CA_ATTEMPTS_WITH_BACKUP)),
                None => (spec.ca.clone(), None),
            };
            let mut round = fill_round(ctx, &spec, 1, spec.fill_concurrency, &ca, lead_attempts).await;
            if round.failed > 0
                && round.permanent.is_none()
                && lead_attempts.is_some()
                && let Some(backup) = spec.backup_ca.clone()
                && ctx.patched(BACKUP_CA)
            {
                on_backup = true;
                counters.failed += round.failed;
                let why = ctx.state(|s| s.progress.last_error.clone()).unwrap_or_default();
                ctx.state_mut(|s| {
                    s.progress.counters = counters.clone();
                    s.progress.last_error = Some(format!(
                        "CA {} failed ({why}); issuing through the backup CA {backup}",
                        spec.ca
                    ));
                });
                continue;
            }
            if round.failed == 0 && deficit > 1 {
                let lanes = if level.ready.saturating_mul(2) >= spec.target_size && ctx.patched(TOP_UP_TRICKLE) {
                    spec.fill_concurrency.min(TOP_UP_LANES)
                } else {
                    spec.fill_concurrency
                };
                let rest = fill_round(ctx, &spec, deficit - 1, lanes, &ca, None).await;
                round.issued += rest.issued;
                round.unusable += rest.unusable;
                round.failed += rest.failed;
                round.permanent = round.permanent.or(rest.permanent);
            }
            counters.issued += round.issued;
            counters.failed += round.failed;
            counters.rounds += 1;
            rounds_this_run += 1;
            ctx.state_mut(|s| s.progress.counters = counters.clone());

            if let Some(permanent) = round.permanent {
                ctx.state_mut(|s| s.progress.phase = "failed".into());
                return Err(fail(&permanent, "issue certificate"));
            }
            // Certificates that were issued but can never count as ready (the CA's lifetime is
            // shorter than min_remaining_lifetime) would make this loop issue forever.
            if round.issued > 0 && round.unusable == round.issued {
                ctx.state_mut(|s| s.progress.phase = "failed".into());
                return Err(ApplicationFailure::builder(format!(
                    "pool {}: the CA issues certificates with less lifetime than min_remaining_lifetime ({}); \
                     none of the {} just issued counts as ready",
                    spec.name, spec.min_remaining_lifetime, round.issued
                ))
                .type_name("pool.lifetime_too_short".to_owned())
                .non_retryable(true)
                .build()
                .into());
            }
            if round.failed > 0 {
                ctx.state_mut(|s| s.progress.phase = "backing_off".into());
                ctx.timer(backoff).await;
                backoff = (backoff * 2).min(BACKOFF_CAP);
            } else {
                backoff = BACKOFF_START;
            }
            if rounds_this_run >= ROUNDS_PER_RUN || ctx.continue_as_new_suggested() {
                ctx.continue_as_new(
                    ReplenishInput {
                        pool: spec.name.clone(),
                        carried: counters,
                    },
                    ContinueAsNewOptions::default(),
                )?;
                unreachable!("continue_as_new always returns Err");
            }
        }
    }

    /// Asks for another level check once the current round ends (claims send this).
    #[signal(name = message_names::REPLENISH_REQUESTED)]
    pub fn replenish_requested(&mut self, _ctx: &mut SyncWorkflowContext<Self>, _reason: String) {
        self.requested = true;
    }

    /// What the fill is doing now.
    #[query(name = message_names::PROGRESS)]
    pub fn progress(&self, _ctx: &WorkflowContextView) -> ReplenishProgress {
        self.progress.clone()
    }
}

#[derive(Debug, Default)]
struct RoundResult {
    issued: u32,
    /// Issued with less remaining lifetime than the pool requires.
    unusable: u32,
    failed: u32,
    permanent: Option<FailureSummary>,
}

/// Issues up to `deficit` certificates with at most `lanes` in flight. Each lane takes
/// the next ticket when its issuance ends, so one slow order does not hold up a whole wave. Lanes
/// stop taking tickets after any failure: the round ends and the loop backs off or gives up.
async fn fill_round(
    ctx: &WorkflowContext<PoolReplenish>,
    spec: &PoolSpec,
    deficit: u32,
    lanes: u32,
    ca: &str,
    ca_attempts: Option<u32>,
) -> RoundResult {
    let lanes = lanes.clamp(1, deficit);
    let shared = RefCell::new((deficit, RoundResult::default()));
    let lane = |_: u32| async {
        loop {
            {
                let mut st = shared.borrow_mut();
                if st.0 == 0 || st.1.failed > 0 {
                    return;
                }
                st.0 -= 1;
            }
            ctx.state_mut(|s| s.progress.in_flight += 1);
            let cert_id = ctx.uuid4();
            let child_opts = ChildWorkflowOptions::builder()
                .workflow_id(format!("issue/{}/{cert_id}", spec.name))
                // A safety net only: the issuance enforces issue_timeout itself, so that its DNS
                // clean-up still runs; this leaves time for that.
                .execution_timeout(spec.issue_timeout.get() + std::time::Duration::from_secs(900))
                // An issuance that is under way should finish and land in the pool even if the
                // replenisher is terminated: abandoning keeps its DNS clean-up running.
                .parent_close_policy(ParentClosePolicy::Abandon)
                .build();
            let outcome: Result<IssuedCertificate, FailureSummary> = async {
                let started = ctx
                    .start_child_workflow(
                        IssueCertificate::run,
                        IssueRequest {
                            ca: ca.to_owned(),
                            ca_attempts,
                            ..IssueRequest::for_pool(spec, cert_id.clone())
                        },
                        child_opts,
                    )
                    .await
                    .map_err(|e| FailureSummary {
                        kind: "child_start".into(),
                        message: e.to_string(),
                        permanent: false,
                    })?;
                started.result().await.map_err(|e| summarize_child(&e))
            }
            .await;
            ctx.state_mut(|s| {
                s.progress.in_flight -= 1;
                match &outcome {
                    Ok(_) => {
                        s.progress.ready += 1;
                        s.progress.counters.issued += 1;
                    }
                    Err(e) => {
                        s.progress.counters.failed += 1;
                        s.progress.last_error = Some(e.to_string());
                    }
                }
            });
            let mut st = shared.borrow_mut();
            match outcome {
                Ok(issued) => {
                    st.1.issued += 1;
                    let now = ctx
                        .workflow_time()
                        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
                    let min = i64::try_from(spec.min_remaining_lifetime.get().as_secs()).unwrap_or(i64::MAX);
                    if issued.not_after.saturating_sub(now) <= min {
                        st.1.unusable += 1;
                    }
                }
                Err(e) => {
                    st.1.failed += 1;
                    if e.permanent && st.1.permanent.is_none() {
                        st.1.permanent = Some(e);
                    }
                }
            }
        }
    };
    join_all((0..lanes).map(lane)).await;
    shared.into_inner().1
}

fn fail(s: &FailureSummary, step: &str) -> temporalio_workflow::WorkflowTermination {
    ApplicationFailure::builder(format!("{step} failed: {}", s.message))
        .type_name(s.kind.clone())
        .non_retryable(true)
        .build()
        .into()
}
