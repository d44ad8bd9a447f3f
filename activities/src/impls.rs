//! The activity implementations, registered on every worker.

// The activities macro emits marker structs without `Debug`.
#![allow(missing_debug_implementations)]

use crate::failure::IntoActivity;
use crate::{Services, keys, now_unix};
use base64::Engine;
use certpool_domain::Failure;
use certpool_domain::cert::{CertState, CertificateRecord, PoolLevel, paths};
use certpool_domain::contracts::{
    ChainPem, DnsChangeRequest, FinalizeRequest, IssuedCertificate, KeyAndCsr, KeyRequest, NewOrderRequest,
    OrderHandle, PoolLevelRequest, RecordIssuedRequest, activity_defs as defs,
};
use certpool_domain::pool::PoolSpec;
use std::sync::Arc;
use std::time::Duration;
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
        let zone = self.services.zone_of(&req.provider).act()?;
        let wait = self.services.propagation.wait(&zone, &req.records);
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
        };
        self.services.inventory.record_issued(&record).await.act()?;
        tracing::info!(cert = %record.id, pool = %record.pool, serial = %record.serial, "certificate pooled");
        Ok(IssuedCertificate {
            id: record.id,
            serial: record.serial,
            not_after: record.not_after,
            cleanup_error: None,
        })
    }
}
