//! `IssueCertificate`: one ACME order through DNS-01 to a pooled certificate.

use crate::failure::summarize_activity;
use crate::options;
use certpool_domain::contracts::{
    CertpoolActivities, DnsChangeRequest, FinalizeRequest, IssueRequest, IssuedCertificate, KeyRequest,
    NewOrderRequest, RecordIssuedRequest, workflow_names,
};
use std::time::Duration;
use temporalio_common::error::ActivityExecutionError;
use temporalio_common::error::ApplicationFailure;
use temporalio_macros::{workflow, workflow_methods};
use temporalio_workflow::{WorkflowContext, WorkflowResult, join};

/// Patch id of the change that made key generation and recording local activities.
const LOCAL_KEY_AND_RECORD: &str = "local-key-and-record";

/// Issues one certificate: order, DNS-01 present, propagation check, validation, key and CSR,
/// finalize, store, record as pooled. DNS clean-up always runs once records were presented.
#[workflow]
#[derive(Debug, Default)]
pub struct IssueCertificate;

#[workflow_methods]
impl IssueCertificate {
    /// Runs the issuance.
    #[run(name = workflow_names::ISSUE_CERTIFICATE)]
    pub async fn run(ctx: &mut WorkflowContext<Self>, req: IssueRequest) -> WorkflowResult<IssuedCertificate> {
        // Runs from before this patch generated the key and recorded as regular activities.
        let local = ctx.patched(LOCAL_KEY_AND_RECORD);
        let order = ctx
            .execute_activity(
                CertpoolActivities::new_order,
                NewOrderRequest {
                    ca: req.ca.clone(),
                    identifiers: req.sans.clone(),
                },
                req.ca_attempts.map_or_else(options::acme, options::acme_attempts),
            )
            .await
            .map_err(|e| annotate(e, "new order"))?;

        let dns = DnsChangeRequest {
            provider: req.dns.clone(),
            records: order.challenges.iter().map(|c| c.record.clone()).collect(),
        };
        let has_challenges = !dns.records.is_empty();

        // The key does not depend on DNS, so it is made while the challenge records propagate.
        let key_req = KeyRequest {
            cert_id: req.cert_id.clone(),
            sans: req.sans.clone(),
            algorithm: req.key_algorithm,
        };
        let keygen = async {
            if local {
                ctx.execute_local_activity(CertpoolActivities::generate_key, key_req, options::local_work())
                    .await
            } else {
                ctx.execute_activity(CertpoolActivities::generate_key, key_req, options::local())
                    .await
            }
        };
        let deadline = req.challenge_deadline_ms.map(Duration::from_millis);
        let challenge = async {
            if !has_challenges {
                // The CA reused valid authorizations: nothing to publish or answer.
                return Ok(());
            }
            // Presenting is not raced against the deadline: clean-up must only start once the
            // records it removes are certainly in place.
            ctx.execute_activity(CertpoolActivities::dns_present, dns.clone(), options::dns())
                .await
                .map_err(|e| annotate(e, "DNS present"))?;
            let wait = async {
                ctx.execute_activity(
                    CertpoolActivities::await_propagation,
                    dns.clone(),
                    options::propagation(),
                )
                .await
                .map_err(|e| annotate(e, "propagation check"))?;
                ctx.execute_activity(CertpoolActivities::validate_order, order.clone(), options::acme())
                    .await
                    .map_err(|e| annotate(e, "challenge validation"))
            };
            match deadline {
                None => wait.await,
                Some(d) => {
                    let mut wait = std::pin::pin!(futures::FutureExt::fuse(wait));
                    temporalio_workflow::select! {
                        r = wait => r,
                        _ = ctx.timer(d) => Err(ApplicationFailure::builder(format!(
                            "DNS-01 challenges were not validated within {:?} (issuance.issue_timeout)",
                            d
                        ))
                        .type_name("issue.deadline".to_owned())
                        .build()
                        .into()),
                    }
                }
            }
        };
        let (key, challenged) = join!(keygen, challenge);

        let finish = async {
            challenged?;
            let key = key.map_err(|e| annotate(e, "key generation"))?;
            let chain = ctx
                .execute_activity(
                    CertpoolActivities::finalize_order,
                    FinalizeRequest {
                        order: order.clone(),
                        csr_der_b64: key.csr_der_b64,
                    },
                    options::acme(),
                )
                .await
                .map_err(|e| annotate(e, "finalize"))?;
            let record = RecordIssuedRequest {
                cert_id: req.cert_id.clone(),
                pool: req.pool.clone(),
                ca: req.ca.clone(),
                sans: req.sans.clone(),
                key_ref: key.key_ref,
                chain_pem: chain.pem,
                successor_of: req.successor_of.clone(),
            };
            if local {
                ctx.execute_local_activity(CertpoolActivities::record_issued, record, options::local_work())
                    .await
            } else {
                ctx.execute_activity(CertpoolActivities::record_issued, record, options::local())
                    .await
            }
            .map_err(|e| annotate(e, "record"))
        };
        // Once the order is ready (or has failed) the challenge records have served their purpose:
        // clean up while finalizing instead of after it.
        let cleanup = async {
            if has_challenges {
                Some(
                    ctx.execute_activity(CertpoolActivities::dns_cleanup, dns.clone(), options::dns_cleanup())
                        .await,
                )
            } else {
                None
            }
        };
        let (issued, cleaned) = join!(finish, cleanup);

        let mut issued = issued?;
        if let Some(Err(e)) = cleaned {
            // The certificate is good; a leftover TXT record is not worth discarding it. Report it
            // in the result so it shows in history and to the caller.
            issued.cleanup_error = Some(summarize_activity(&e).to_string());
        }
        Ok(issued)
    }
}

/// Turns an activity failure into the workflow's failure, keeping the type and retryability of
/// the root cause so the parent can tell a config problem from an outage.
fn annotate(err: ActivityExecutionError, step: &str) -> temporalio_workflow::WorkflowTermination {
    let s = summarize_activity(&err);
    let msg = format!("{step} failed: {}", s.message);
    let failure = temporalio_common::error::ApplicationFailure::builder(msg)
        .type_name(s.kind)
        .non_retryable(s.permanent)
        .build();
    failure.into()
}
