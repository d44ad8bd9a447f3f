//! The activity implementations, registered on every worker.

// The activities macro emits marker structs without `Debug`.
#![allow(missing_debug_implementations)]

use crate::failure::IntoActivity;
use crate::{Services, keys, now_unix};
use base64::Engine;
use certpool_domain::Failure;
use certpool_domain::cert::{CertState, CertificateRecord, PoolLevel, paths};
use certpool_domain::cert::{ClaimParams, ClaimResult, DeliveryRecord};
use certpool_domain::config::OnEmpty;
use certpool_domain::contracts::{
    AssignRequest, Assignment, ChainPem, ClaimOutcome, Delivered, DnsChangeRequest, FinalizeRequest, IssueRequest,
    IssuedCertificate, KeyAndCsr, KeyRequest, NewOrderRequest, NotifyRequest, OrderHandle, PoolLevelRequest,
    Reconciled, RecordIssuedRequest, RenewalFailedRequest, RenewalPlan, RenewalRequest, ReplenishInput, RetiredPooled,
    ScanPage, ScanPageRequest, StartedRenewals, SyncRequest, SyncedRequest, activity_defs as defs, workflow_ids,
};
use certpool_domain::plugins::Delivery;
use certpool_domain::pool::PoolSpec;
use certpool_domain::pool::replenish_workflow_id;
use certpool_workflows::{CertificateRenewal, ClusterSync, PoolReplenish};
use futures::StreamExt;
use std::sync::Arc;
use std::time::Duration;
use temporalio_client::errors::WorkflowStartError;
use temporalio_client::{WorkflowIdConflictPolicy, WorkflowIdReusePolicy, WorkflowStartOptions};
use temporalio_macros::activities;
use temporalio_sdk::activities::{ActivityContext, ActivityError};

/// The activity implementations registered on a worker.
#[derive(Debug)]
pub struct CertpoolActivityImpls {
    services: Arc<Services>,
}

impl CertpoolActivityImpls {
    /// Wraps the services.
    pub fn new(services: Arc<Services>) -> Self {
        Self { services }
    }
}

#[activities]
impl CertpoolActivityImpls {
    /// See [`certpool_domain::contracts::CertpoolActivities::describe_pool`].
    #[activity(definition = defs::DescribePool)]
    pub async fn describe_pool(
        self: Arc<Self>,
        _ctx: ActivityContext,
        pool: String,
    ) -> Result<PoolSpec, ActivityError> {
        self.services
            .config
            .pool(&pool)
            .cloned()
            .map_err(|m| Failure::permanent("config.unknown_pool", m))
            .act()
    }

    /// See [`certpool_domain::contracts::CertpoolActivities::pool_level`].
    #[activity(definition = defs::PoolLevel)]
    pub async fn pool_level(
        self: Arc<Self>,
        _ctx: ActivityContext,
        req: PoolLevelRequest,
    ) -> Result<PoolLevel, ActivityError> {
        self.services
            .inventory
            .pool_level(&req.pool, now_unix(), req.min_remaining_secs)
            .await
            .act()
    }

    /// See [`certpool_domain::contracts::CertpoolActivities::new_order`].
    #[activity(definition = defs::NewOrder)]
    pub async fn new_order(
        self: Arc<Self>,
        _ctx: ActivityContext,
        req: NewOrderRequest,
    ) -> Result<OrderHandle, ActivityError> {
        let ca = self.services.ca(&req.ca).act()?;
        ca.new_order(&req.identifiers).await.act()
    }

    /// See [`certpool_domain::contracts::CertpoolActivities::dns_present`].
    #[activity(definition = defs::DnsPresent)]
    pub async fn dns_present(
        self: Arc<Self>,
        _ctx: ActivityContext,
        req: DnsChangeRequest,
    ) -> Result<(), ActivityError> {
        let dns = self.services.dns(&req.provider).act()?;
        dns.present(&req.records).await.act()
    }

    /// See [`certpool_domain::contracts::CertpoolActivities::await_propagation`].
    #[activity(definition = defs::AwaitPropagation)]
    pub async fn await_propagation(
        self: Arc<Self>,
        ctx: ActivityContext,
        req: DnsChangeRequest,
    ) -> Result<(), ActivityError> {
        let services = self.services.clone();
        let wait = async move {
            for (zone, records) in services.records_by_zone(&req.provider, &req.records).await? {
                services.propagation.wait(&zone, &records).await?;
            }
            Ok::<(), Failure>(())
        };
        tokio::pin!(wait);
        loop {
            tokio::select! {
                r = &mut wait => return r.act(),
                () = ctx.cancelled() => return Err(ActivityError::cancelled()),
                () = tokio::time::sleep(Duration::from_secs(5)) => {
                    // Heartbeats are how a cancelled or timed-out check learns it should stop.
                    let _ = ctx.record_heartbeat(()).await;
                }
            }
        }
    }

    /// See [`certpool_domain::contracts::CertpoolActivities::dns_cleanup`].
    #[activity(definition = defs::DnsCleanup)]
    pub async fn dns_cleanup(
        self: Arc<Self>,
        _ctx: ActivityContext,
        req: DnsChangeRequest,
    ) -> Result<(), ActivityError> {
        let dns = self.services.dns(&req.provider).act()?;
        dns.cleanup(&req.records).await.act()
    }

    /// See [`certpool_domain::contracts::CertpoolActivities::validate_order`].
    #[activity(definition = defs::ValidateOrder)]
    pub async fn validate_order(
        self: Arc<Self>,
        _ctx: ActivityContext,
        order: OrderHandle,
    ) -> Result<(), ActivityError> {
        let ca = self.services.ca(&order.ca).act()?;
        ca.validate(&order).await.act()
    }

    /// See [`certpool_domain::contracts::CertpoolActivities::generate_key`].
    #[activity(definition = defs::GenerateKey)]
    pub async fn generate_key(
        self: Arc<Self>,
        _ctx: ActivityContext,
        req: KeyRequest,
    ) -> Result<KeyAndCsr, ActivityError> {
        let (key_pem, csr) = keys::generate(&req.sans, req.algorithm).act()?;
        let key_ref = paths::cert_key(&req.cert_id);
        self.services.secrets.put(&key_ref, key_pem.as_bytes()).await.act()?;
        Ok(KeyAndCsr {
            key_ref,
            csr_der_b64: base64::engine::general_purpose::STANDARD.encode(csr),
        })
    }

    /// See [`certpool_domain::contracts::CertpoolActivities::finalize_order`].
    #[activity(definition = defs::FinalizeOrder)]
    pub async fn finalize_order(
        self: Arc<Self>,
        _ctx: ActivityContext,
        req: FinalizeRequest,
    ) -> Result<ChainPem, ActivityError> {
        let ca = self.services.ca(&req.order.ca).act()?;
        let csr = base64::engine::general_purpose::STANDARD
            .decode(&req.csr_der_b64)
            .map_err(|e| Failure::permanent("keys.bad_csr", e.to_string()))
            .act()?;
        ca.finalize(&req.order, &csr).await.map(|pem| ChainPem { pem }).act()
    }

    /// See [`certpool_domain::contracts::CertpoolActivities::record_issued`].
    #[activity(definition = defs::RecordIssued)]
    pub async fn record_issued(
        self: Arc<Self>,
        _ctx: ActivityContext,
        req: RecordIssuedRequest,
    ) -> Result<IssuedCertificate, ActivityError> {
        let leaf = keys::leaf_info(&req.chain_pem).act()?;
        let mut want: Vec<&str> = req.sans.iter().map(String::as_str).collect();
        let mut got: Vec<&str> = leaf.sans.iter().map(String::as_str).collect();
        want.sort_unstable();
        got.sort_unstable();
        if want != got {
            return Err(Failure::permanent(
                "certs.san_mismatch",
                format!("the CA issued SANs {got:?}, requested {want:?}"),
            ))
            .act();
        }
        let chain_ref = paths::cert_chain(&req.cert_id);
        self.services
            .secrets
            .put(&chain_ref, req.chain_pem.as_bytes())
            .await
            .act()?;
        let record = CertificateRecord {
            id: req.cert_id.clone(),
            pool: req.pool,
            sans: req.sans,
            serial: leaf.serial.clone(),
            issuer: leaf.issuer,
            not_before: leaf.not_before,
            not_after: leaf.not_after,
            state: CertState::Pooled,
            ca: req.ca,
            key_ref: req.key_ref,
            chain_ref,
            created_at: now_unix(),
            renew_at: self
                .services
                .config
                .config
                .renewal
                .renew_at(leaf.not_before, leaf.not_after),
            renewal_error: None,
            successor_id: None,
            predecessor_id: req.successor_of.clone(),
        };
        let clusters = match &req.successor_of {
            Some(old) => self.services.inventory.record_successor(old, &record).await.act()?,
            None => {
                self.services.inventory.record_issued(&record).await.act()?;
                Vec::new()
            }
        };
        tracing::info!(cert = %record.id, pool = %record.pool, serial = %record.serial, "certificate pooled");
        Ok(IssuedCertificate {
            id: record.id,
            serial: record.serial,
            not_after: record.not_after,
            cleanup_error: None,
            clusters,
        })
    }

    /// See [`certpool_domain::contracts::CertpoolActivities::claim`].
    #[activity(definition = defs::Claim)]
    pub async fn claim(
        self: Arc<Self>,
        _ctx: ActivityContext,
        req: AssignRequest,
    ) -> Result<ClaimOutcome, ActivityError> {
        let s = &self.services;
        let spec = s
            .config
            .pool(&req.pool)
            .map_err(|m| Failure::permanent("claim.unknown_pool", m))
            .act()?;
        validate_cluster_id(&req.cluster).act()?;
        let target = req.target.clone().or_else(|| spec.target.clone());
        if let Some(t) = &target
            && !s.targets.contains_key(t)
        {
            return Err(Failure::permanent(
                "claim.unknown_target",
                format!("no cluster target named {t:?}"),
            ))
            .act();
        }
        let params = ClaimParams {
            pool: req.pool.clone(),
            cluster: req.cluster.clone(),
            target,
            now: now_unix(),
            min_remaining_secs: i64::try_from(spec.min_remaining_lifetime.get().as_secs()).unwrap_or(i64::MAX),
        };
        match s.inventory.claim(&params).await.act()? {
            ClaimResult::Assigned { cert, new } => {
                if new {
                    s.outbox_wake.notify_one();
                }
                Ok(ClaimOutcome::Assigned(Assignment {
                    cluster: req.cluster,
                    pool: cert.pool,
                    cert_id: cert.id,
                    serial: cert.serial,
                    sans: cert.sans,
                    not_after: cert.not_after,
                    key_ref: cert.key_ref,
                    chain_ref: cert.chain_ref,
                    new,
                }))
            }
            ClaimResult::Empty => Ok(ClaimOutcome::Empty {
                pool: spec.name.clone(),
                target: spec.target_size,
                wait: spec.on_empty == OnEmpty::Wait,
                wait_secs: spec.claim_timeout.get().as_secs(),
            }),
        }
    }

    /// See [`certpool_domain::contracts::CertpoolActivities::notify`].
    #[activity(definition = defs::Notify)]
    pub async fn notify(self: Arc<Self>, ctx: ActivityContext, req: NotifyRequest) -> Result<(), ActivityError> {
        notify_workflows(&ctx.client(), &self.services.config.config.temporal.task_queue, &req)
            .await
            .act()
    }

    /// See [`certpool_domain::contracts::CertpoolActivities::deliver`].
    #[activity(definition = defs::Deliver)]
    pub async fn deliver(
        self: Arc<Self>,
        _ctx: ActivityContext,
        cluster: String,
    ) -> Result<Option<Delivered>, ActivityError> {
        let s = &self.services;
        let Some(a) = s.inventory.assignment(&cluster).await.act()? else {
            return Ok(None);
        };
        let cert = s
            .inventory
            .get(&a.cert_id)
            .await
            .act()?
            .ok_or_else(|| Failure::permanent("inventory.unknown_cert", format!("no certificate {}", a.cert_id)))
            .act()?;
        let target_name = a
            .target
            .clone()
            .or_else(|| s.config.pools.get(&a.pool).and_then(|p| p.target.clone()));
        let mut verify = false;
        if let Some(name) = target_name {
            let target = s
                .targets
                .get(&name)
                .ok_or_else(|| Failure::permanent("sync.unknown_target", format!("no cluster target named {name:?}")))
                .act()?;
            let chain = s.secrets.get(&cert.chain_ref).await.act()?;
            let key = s.secrets.get(&cert.key_ref).await.act()?;
            let (Some(chain), Some(key)) = (chain, key) else {
                return Err(Failure::permanent(
                    "sync.missing_secret",
                    format!("key or chain of {} is missing", cert.id),
                ))
                .act();
            };
            let delivery = Delivery {
                cluster: cluster.clone(),
                cert_id: cert.id.clone(),
                serial: cert.serial.clone(),
                sans: cert.sans.clone(),
                chain_pem: String::from_utf8_lossy(&chain).into_owned(),
                key_pem: zeroize::Zeroizing::new(String::from_utf8_lossy(&key).into_owned()),
            };
            target.deliver(&delivery).await.act()?;
            verify = target.verify_endpoint(&cluster).is_some();
        }
        // Nothing left to prove: record now and save the workflow an activity round trip.
        if !verify {
            s.inventory
                .record_delivery(&DeliveryRecord {
                    cluster: cluster.clone(),
                    cert_id: cert.id.clone(),
                    serial: cert.serial.clone(),
                    verified: false,
                    updated_at: now_unix(),
                })
                .await
                .act()?;
        }
        Ok(Some(Delivered {
            cluster,
            cert_id: cert.id,
            serial: cert.serial,
            verify,
            recorded: !verify,
        }))
    }

    /// See [`certpool_domain::contracts::CertpoolActivities::verify_delivery`].
    #[activity(definition = defs::VerifyDelivery)]
    pub async fn verify_delivery(self: Arc<Self>, ctx: ActivityContext, d: Delivered) -> Result<(), ActivityError> {
        let s = &self.services;
        let a = s.inventory.assignment(&d.cluster).await.act()?;
        let target_name = a.as_ref().and_then(|a| {
            a.target
                .clone()
                .or_else(|| s.config.pools.get(&a.pool).and_then(|p| p.target.clone()))
        });
        let Some(target) = target_name.and_then(|n| s.targets.get(&n).cloned()) else {
            return Ok(());
        };
        let Some((endpoint, sni)) = target.verify_endpoint(&d.cluster) else {
            return Ok(());
        };
        let wait = crate::targets::verify::wait_for_serial(
            &endpoint,
            sni.as_deref(),
            &d.serial,
            target.verify_timeout(),
            Duration::from_millis(200),
        );
        tokio::pin!(wait);
        loop {
            tokio::select! {
                r = &mut wait => return r.act(),
                () = ctx.cancelled() => return Err(ActivityError::cancelled()),
                () = tokio::time::sleep(Duration::from_secs(5)) => { let _ = ctx.record_heartbeat(()).await; }
            }
        }
    }

    /// See [`certpool_domain::contracts::CertpoolActivities::record_delivery`].
    #[activity(definition = defs::RecordDelivery)]
    pub async fn record_delivery(self: Arc<Self>, _ctx: ActivityContext, d: Delivered) -> Result<(), ActivityError> {
        self.services
            .inventory
            .record_delivery(&DeliveryRecord {
                cluster: d.cluster,
                cert_id: d.cert_id,
                serial: d.serial,
                verified: d.verify,
                updated_at: now_unix(),
            })
            .await
            .act()
    }

    /// See [`certpool_domain::contracts::CertpoolActivities::prepare_renewal`].
    #[activity(definition = defs::PrepareRenewal)]
    pub async fn prepare_renewal(
        self: Arc<Self>,
        _ctx: ActivityContext,
        req: RenewalRequest,
    ) -> Result<RenewalPlan, ActivityError> {
        let s = &self.services;
        let cert = s
            .inventory
            .get(&req.cert_id)
            .await
            .act()?
            .ok_or_else(|| Failure::permanent("renewal.unknown_cert", format!("no certificate {}", req.cert_id)))
            .act()?;
        if cert.state != certpool_domain::cert::CertState::Assigned {
            return Err(Failure::permanent(
                "renewal.not_assigned",
                format!(
                    "certificate {} is {}; only assigned certificates are renewed (pooled ones are retired and replaced)",
                    cert.id, cert.state
                ),
            ))
            .act();
        }
        let spec = s
            .config
            .pool(&cert.pool)
            .map_err(|m| Failure::permanent("renewal.unknown_pool", format!("certificate {}: {m}", cert.id)))
            .act()?;
        let existing_clusters = match &cert.successor_id {
            Some(succ) => s
                .inventory
                .assignments_of(succ)
                .await
                .act()?
                .into_iter()
                .map(|a| a.cluster)
                .collect(),
            None => Vec::new(),
        };
        let r = &s.config.config.renewal;
        Ok(RenewalPlan {
            issue: IssueRequest {
                cert_id: String::new(),
                pool: cert.pool.clone(),
                // The successor carries the same names as the certificate the clusters use, even
                // if the scheme changed since.
                sans: cert.sans.clone(),
                ca: spec.ca.clone(),
                dns: spec.dns.clone(),
                key_algorithm: spec.key_algorithm,
                successor_of: Some(cert.id.clone()),
                challenge_deadline_ms: Some(u64::try_from(spec.issue_timeout.get().as_millis()).unwrap_or(u64::MAX)),
                ca_attempts: None,
            },
            existing_successor: cert.successor_id.clone(),
            backup_ca: spec.backup_ca.clone(),
            existing_clusters,
            max_attempts: r.max_attempts,
            grace_secs: r.grace_period.get().as_secs(),
            issue_timeout_secs: spec.issue_timeout.get().as_secs(),
        })
    }

    /// See [`certpool_domain::contracts::CertpoolActivities::renewal_failed`].
    #[activity(definition = defs::RenewalFailed)]
    pub async fn renewal_failed(
        self: Arc<Self>,
        _ctx: ActivityContext,
        req: RenewalFailedRequest,
    ) -> Result<(), ActivityError> {
        self.services
            .inventory
            .set_renewal_error(&req.cert_id, Some(&req.error))
            .await
            .act()
    }

    /// See [`certpool_domain::contracts::CertpoolActivities::synced`].
    #[activity(definition = defs::Synced)]
    pub async fn synced(self: Arc<Self>, _ctx: ActivityContext, req: SyncedRequest) -> Result<bool, ActivityError> {
        for c in &req.clusters {
            match self.services.inventory.delivery(c).await.act()? {
                Some(d) if d.cert_id == req.cert_id => {}
                _ => return Ok(false),
            }
        }
        Ok(true)
    }

    /// See [`certpool_domain::contracts::CertpoolActivities::retire_certificate`].
    #[activity(definition = defs::RetireCertificate)]
    pub async fn retire_certificate(
        self: Arc<Self>,
        _ctx: ActivityContext,
        cert_id: String,
    ) -> Result<(), ActivityError> {
        self.services.inventory.retire(&cert_id).await.act()
    }

    /// See [`certpool_domain::contracts::CertpoolActivities::scan_due`].
    #[activity(definition = defs::ScanDue)]
    pub async fn scan_due(
        self: Arc<Self>,
        _ctx: ActivityContext,
        req: ScanPageRequest,
    ) -> Result<ScanPage, ActivityError> {
        let budget = self
            .services
            .config
            .config
            .scan
            .max_starts
            .saturating_sub(req.started_so_far);
        let limit = req.limit.min(budget);
        if limit == 0 {
            return Ok(ScanPage {
                due: Vec::new(),
                next: None,
            });
        }
        let rows = self
            .services
            .inventory
            .due_for_renewal(req.now, req.after, limit)
            .await
            .act()?;
        let next = (u32::try_from(rows.len()).unwrap_or(u32::MAX) == limit && limit < budget)
            .then(|| rows.last().map(|r| (r.renew_at, r.id.clone())))
            .flatten();
        Ok(ScanPage {
            due: rows.into_iter().map(|r| (r.id, r.not_after)).collect(),
            next,
        })
    }

    /// See [`certpool_domain::contracts::CertpoolActivities::start_renewals`].
    #[activity(definition = defs::StartRenewals)]
    pub async fn start_renewals(
        self: Arc<Self>,
        ctx: ActivityContext,
        due: Vec<(String, i64)>,
    ) -> Result<StartedRenewals, ActivityError> {
        let client = ctx.client();
        let queue = self.services.config.config.temporal.task_queue.clone();
        let results: Vec<Result<bool, Failure>> = futures::stream::iter(due)
            .map(|(id, not_after)| {
                let client = client.clone();
                let queue = queue.clone();
                async move {
                    // A failed renewal may be retried by the next scan; a running or completed
                    // one for this expiry is never started twice.
                    let opts = WorkflowStartOptions::new(queue, workflow_ids::renewal(&id, not_after))
                        .id_reuse_policy(WorkflowIdReusePolicy::AllowDuplicateFailedOnly)
                        .id_conflict_policy(WorkflowIdConflictPolicy::Fail)
                        .build();
                    match client
                        .start_workflow(CertificateRenewal::run, RenewalRequest { cert_id: id.clone() }, opts)
                        .await
                    {
                        Ok(_) => Ok(true),
                        Err(WorkflowStartError::AlreadyStarted { .. }) => Ok(false),
                        Err(e) => Err(Failure::transient(
                            "temporal.start",
                            format!("start renewal of {id}: {e}"),
                        )),
                    }
                }
            })
            .buffer_unordered(32)
            .collect()
            .await;
        let mut out = StartedRenewals::default();
        for r in results {
            if r.act()? {
                out.started += 1;
            } else {
                out.already_running += 1;
            }
        }
        Ok(out)
    }

    /// See [`certpool_domain::contracts::CertpoolActivities::reconcile`].
    #[activity(definition = defs::Reconcile)]
    pub async fn reconcile(self: Arc<Self>, ctx: ActivityContext, now: i64) -> Result<Reconciled, ActivityError> {
        let s = &self.services;
        let lagging = s.inventory.out_of_sync_clusters(1_000).await.act()?;
        let mut low = Vec::new();
        for spec in s.config.pools.values() {
            let min = i64::try_from(spec.min_remaining_lifetime.get().as_secs()).unwrap_or(i64::MAX);
            if s.inventory.pool_level(&spec.name, now, min).await.act()?.ready < spec.target_size {
                low.push(spec.name.clone());
            }
        }
        let req = NotifyRequest {
            sync_clusters: lagging,
            replenish_pools: low,
            reason: "expiry scan: reconciling clusters and pools".into(),
        };
        notify_workflows(&ctx.client(), &s.config.config.temporal.task_queue, &req)
            .await
            .act()?;
        Ok(Reconciled {
            resynced_clusters: u32::try_from(req.sync_clusters.len()).unwrap_or(u32::MAX),
            refilled_pools: u32::try_from(req.replenish_pools.len()).unwrap_or(u32::MAX),
        })
    }

    /// See [`certpool_domain::contracts::CertpoolActivities::retire_expiring_pooled`].
    #[activity(definition = defs::RetireExpiringPooled)]
    pub async fn retire_expiring_pooled(
        self: Arc<Self>,
        ctx: ActivityContext,
        now: i64,
    ) -> Result<RetiredPooled, ActivityError> {
        let s = &self.services;
        let mut out = RetiredPooled::default();
        for spec in s.config.pools.values() {
            let min = i64::try_from(spec.min_remaining_lifetime.get().as_secs()).unwrap_or(i64::MAX);
            let n = s
                .inventory
                .retire_expiring_pooled(&spec.name, now.saturating_add(min))
                .await
                .act()?;
            if n > 0 {
                out.retired += n;
                out.pools.push(spec.name.clone());
            }
        }
        if !out.pools.is_empty() {
            let req = NotifyRequest {
                replenish_pools: out.pools.clone(),
                reason: "pooled certificates retired by the expiry scan".into(),
                ..Default::default()
            };
            notify_workflows(&ctx.client(), &s.config.config.temporal.task_queue, &req)
                .await
                .act()?;
        }
        Ok(out)
    }
}

/// Starts or signals `ClusterSync` per cluster and `PoolReplenish` per pool (signal-with-start:
/// a running workflow gets the signal, a finished one is started again).
pub(crate) async fn notify_workflows(
    client: &temporalio_client::Client,
    queue: &str,
    req: &NotifyRequest,
) -> Result<(), Failure> {
    for cluster in &req.sync_clusters {
        client
            .signal_with_start_workflow(
                ClusterSync::run,
                SyncRequest {
                    cluster: cluster.clone(),
                },
                ClusterSync::resync,
                req.reason.clone(),
                WorkflowStartOptions::new(queue.to_owned(), workflow_ids::cluster_sync(cluster)).build(),
            )
            .await
            .map_err(|e| Failure::transient("temporal.signal", format!("start sync of {cluster}: {e}")))?;
    }
    for pool in &req.replenish_pools {
        client
            .signal_with_start_workflow(
                PoolReplenish::run,
                ReplenishInput {
                    pool: pool.clone(),
                    carried: Default::default(),
                },
                PoolReplenish::replenish_requested,
                req.reason.clone(),
                WorkflowStartOptions::new(queue.to_owned(), replenish_workflow_id(pool)).build(),
            )
            .await
            .map_err(|e| Failure::transient("temporal.signal", format!("start refill of {pool}: {e}")))?;
    }
    Ok(())
}

/// See [`certpool_domain::contracts::check_cluster_id`].
fn validate_cluster_id(id: &str) -> Result<(), Failure> {
    certpool_domain::contracts::check_cluster_id(id).map_err(|m| Failure::permanent("claim.bad_cluster", m))
}
