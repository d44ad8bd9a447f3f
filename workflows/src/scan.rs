//! `ExpiryScan`: finds certificates that are due, started by a Temporal Schedule.

use crate::options;
use certpool_domain::contracts::{CertpoolActivities, ScanInput, ScanOutcome, ScanPageRequest, workflow_names};
use temporalio_macros::{workflow, workflow_methods};
use temporalio_workflow::{ContinueAsNewOptions, WorkflowContext, WorkflowResult};

/// Rows per page.
const PAGE: u32 = 500;
/// Pages per run before continuing as new, which keeps history bounded however large the due
/// set is.
const PAGES_PER_RUN: u32 = 20;

/// Retires pooled certificates whose remaining lifetime fell below their pool's minimum (their
/// replenishers refill), then pages through assigned certificates due for renewal, in
/// `(renew_at, id)` order from an index, and starts `CertificateRenewal` for each through one
/// activity per page. Renewal workflow ids are derived from certificate and expiry, so a scan
/// that overlaps a running renewal starts nothing twice.
#[workflow]
#[derive(Debug, Default)]
pub struct ExpiryScan;

#[workflow_methods]
impl ExpiryScan {
    /// Scans.
    #[run(name = workflow_names::EXPIRY_SCAN)]
    pub async fn run(ctx: &mut WorkflowContext<Self>, input: ScanInput) -> WorkflowResult<ScanOutcome> {
        let now = match input.now {
            Some(n) => n,
            None => ctx
                .workflow_time()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX)),
        };
        let mut outcome = ScanOutcome {
            started: input.started,
            already_running: input.already_running,
            ..Default::default()
        };
        if input.after.is_none() {
            let retired = ctx
                .execute_activity(CertpoolActivities::retire_expiring_pooled, now, options::scan())
                .await?;
            outcome.retired_pooled = retired.retired;
            outcome.reconciled = ctx
                .execute_activity(CertpoolActivities::reconcile, now, options::scan())
                .await?;
        }
        let mut after = input.after.clone();
        for _ in 0..PAGES_PER_RUN {
            let page = ctx
                .execute_activity(
                    CertpoolActivities::scan_due,
                    ScanPageRequest {
                        now,
                        after: after.clone(),
                        limit: PAGE,
                        started_so_far: outcome.started,
                    },
                    options::scan(),
                )
                .await?;
            if !page.due.is_empty() {
                let r = ctx
                    .execute_activity(CertpoolActivities::start_renewals, page.due, options::scan())
                    .await?;
                outcome.started += r.started;
                outcome.already_running += r.already_running;
            }
            match page.next {
                Some(next) => after = Some(next),
                None => return Ok(outcome),
            }
        }
        ctx.continue_as_new(
            ScanInput {
                after,
                now: Some(now),
                started: outcome.started,
                already_running: outcome.already_running,
            },
            ContinueAsNewOptions::default(),
        )?;
        unreachable!("continue_as_new always returns Err")
    }
}
