//! `CertificateRenewal`: replaces an assigned certificate before it expires.

use crate::failure::{summarize_activity, summarize_child};
use crate::issue::IssueCertificate;
use crate::options;
use certpool_domain::contracts::{
    CertpoolActivities, NotifyRequest, RenewalFailedRequest, RenewalOutcome, RenewalRequest, SyncedRequest,
    workflow_names,
};
use std::time::Duration;
use temporalio_common::error::ApplicationFailure;
use temporalio_macros::{workflow, workflow_methods};
use temporalio_workflow::{ChildWorkflowOptions, ParentClosePolicy, WorkflowContext, WorkflowResult};

/// How often to check whether every cluster serves the successor.
const SYNC_POLL: Duration = Duration::from_secs(2);

/// Workflow id `renew/<cert>/<not_after>`. Issues a successor with the same SANs through
/// `IssueCertificate`; recording it moves every cluster association to it atomically and
/// publishes `certificate.renewed`. Then starts `ClusterSync` for each cluster and retires the
/// predecessor once all of them acknowledged it or the grace period passed. Issuance failures
/// are retried with backoff; after the configured attempts the certificate is marked
/// renewal-failed (the next scan sees it) and `certificate.renewal_failed` is published.
#[workflow]
#[derive(Debug, Default)]
pub struct CertificateRenewal;

#[workflow_methods]
impl CertificateRenewal {
    /// Renews.
    #[run(name = workflow_names::CERTIFICATE_RENEWAL)]
    pub async fn run(ctx: &mut WorkflowContext<Self>, req: RenewalRequest) -> WorkflowResult<RenewalOutcome> {
        let plan = ctx
            .execute_activity(CertpoolActivities::prepare_renewal, req.clone(), options::local())
            .await
            .map_err(|e| {
                let s = summarize_activity(&e);
                ApplicationFailure::builder(format!("prepare renewal of {}: {}", req.cert_id, s.message))
                    .type_name(s.kind)
                    .non_retryable(true)
                    .build()
            })?;

        let mut clusters = Vec::new();
        let successor = match plan.existing_successor.clone() {
            Some(s) => s,
            None => {
                let mut attempt = 0;
                let mut backoff = Duration::from_secs(5);
                loop {
                    attempt += 1;
                    let cert_id = ctx.uuid4();
                    let mut issue = plan.issue.clone();
                    issue.cert_id = cert_id.clone();
                    let opts = ChildWorkflowOptions::builder()
                        .workflow_id(format!("issue/{}/{cert_id}", issue.pool))
                        .execution_timeout(Duration::from_secs(plan.issue_timeout_secs))
                        .parent_close_policy(ParentClosePolicy::Abandon)
                        .build();
                    let result = async {
                        let started = ctx
                            .start_child_workflow(IssueCertificate::run, issue, opts)
                            .await
                            .map_err(|e| e.to_string())?;
                        started.result().await.map_err(|e| summarize_child(&e).to_string())
                    }
                    .await;
                    match result {
                        Ok(issued) => {
                            clusters = issued.clusters;
                            break cert_id;
                        }
                        Err(e) if attempt >= plan.max_attempts => {
                            let error = format!("renewal gave up after {attempt} attempts: {e}");
                            ctx.execute_activity(
                                CertpoolActivities::renewal_failed,
                                RenewalFailedRequest {
                                    cert_id: req.cert_id.clone(),
                                    error: error.clone(),
                                },
                                options::local(),
                            )
                            .await?;
                            return Err(ApplicationFailure::builder(error)
                                .type_name("renewal.failed".to_owned())
                                .non_retryable(true)
                                .build()
                                .into());
                        }
                        Err(_) => {
                            ctx.timer(backoff).await;
                            backoff = (backoff * 2).min(Duration::from_secs(600));
                        }
                    }
                }
            }
        };

        if !clusters.is_empty() {
            ctx.execute_local_activity(
                CertpoolActivities::notify,
                NotifyRequest {
                    sync_clusters: clusters.clone(),
                    replenish_pools: Vec::new(),
                    reason: format!("{} renewed as {successor}", req.cert_id),
                },
                options::notify(),
            )
            .await?;
        }

        // Retire the predecessor once every cluster has the successor, or after the grace period.
        let mut waited = Duration::ZERO;
        let grace = Duration::from_secs(plan.grace_secs);
        let mut all_synced = clusters.is_empty();
        while !all_synced && waited < grace {
            all_synced = ctx
                .execute_activity(
                    CertpoolActivities::synced,
                    SyncedRequest {
                        cert_id: successor.clone(),
                        clusters: clusters.clone(),
                    },
                    options::local(),
                )
                .await?;
            if !all_synced {
                ctx.timer(SYNC_POLL).await;
                waited += SYNC_POLL;
            }
        }
        ctx.execute_activity(
            CertpoolActivities::retire_certificate,
            req.cert_id.clone(),
            options::local(),
        )
        .await?;
        Ok(RenewalOutcome {
            predecessor: req.cert_id,
            successor,
            clusters,
            all_synced,
        })
    }
}
