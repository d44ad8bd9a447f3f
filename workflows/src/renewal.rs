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

/// Patch id of the switch to the pool's backup CA on later attempts.
const BACKUP_CA: &str = "backup-ca";

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

        let mut clusters = plan.existing_clusters.clone();
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
                    // With a backup CA, the first attempt gives the pool's CA few retries and
                    // every later attempt goes to the backup.
                    if let Some(backup) = &plan.backup_ca
                        && ctx.patched(BACKUP_CA)
                    {
                        if attempt == 1 {
                            issue.ca_attempts = Some(options::CA_ATTEMPTS_WITH_BACKUP);
                        } else {
                            issue.ca = backup.clone();
                        }
                    }
                    let opts = ChildWorkflowOptions::builder()
                        .workflow_id(format!("issue/{}/{cert_id}", issue.pool))
                        .execution_timeout(Duration::from_secs(plan.issue_timeout_secs + 900))
                        .parent_close_policy(ParentClosePolicy::Abandon)
                        .build();
                    let result = async {
                        let started = ctx
                            .start_child_workflow(IssueCertificate::run, issue, opts)
                            .await
                            .map_err(|e| crate::FailureSummary {
                                kind: "child_start".into(),
                                message: e.to_string(),
                                permanent: false,
                            })?;
                        started.result().await.map_err(|e| summarize_child(&e))
                    }
                    .await;
                    match result {
                        Ok(issued) => {
                            clusters = issued.clusters;
                            break cert_id;
                        }
                        Err(e) if e.kind == "renewal.already_renewed" => {
                            // An earlier run recorded a successor: adopt it.
                            let again = ctx
                                .execute_activity(CertpoolActivities::prepare_renewal, req.clone(), options::local())
                                .await?;
                            if let Some(s) = again.existing_successor {
                                clusters = again.existing_clusters;
                                break s;
                            }
                            return Err(ApplicationFailure::builder(e.to_string())
                                .type_name(e.kind)
                                .non_retryable(true)
                                .build()
                                .into());
                        }
                        Err(e) if e.permanent || attempt >= plan.max_attempts => {
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

        // From here on the clusters already point at the successor: every step is retried until
        // it succeeds, or the predecessor would never be retired.
        if !clusters.is_empty() {
            ctx.execute_activity(
                CertpoolActivities::notify,
                NotifyRequest {
                    sync_clusters: clusters.clone(),
                    replenish_pools: Vec::new(),
                    reason: format!("{} renewed as {successor}", req.cert_id),
                },
                options::durable(),
            )
            .await?;
        }

        // Retire the predecessor once every cluster has the successor, or after the grace period.
        // The poll backs off so that a long grace period keeps history small.
        let mut waited = Duration::ZERO;
        let mut poll = SYNC_POLL;
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
                    options::durable(),
                )
                .await?;
            if !all_synced {
                let step = poll.min(grace.saturating_sub(waited)).max(Duration::from_secs(1));
                ctx.timer(step).await;
                waited += step;
                poll = (poll * 2).min(Duration::from_secs(60));
            }
        }
        ctx.execute_activity(
            CertpoolActivities::retire_certificate,
            req.cert_id.clone(),
            options::durable(),
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
