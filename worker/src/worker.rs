//! The certpool worker: registers every workflow and activity on the configured task queue.

use anyhow::{Context, Result};
use certpool_activities::{CertpoolActivityImpls, Services};
use certpool_domain::config::LoadedConfig;
use certpool_workflows::{
    AssignCertificate, CertificateRenewal, ClusterSync, ExpiryScan, IssueCertificate, PoolReplenish,
};
use std::future::Future;
use std::sync::Arc;
use temporalio_sdk::runtime::PollerBehavior;
use temporalio_sdk::{Runtime, Worker, WorkerOptions};

/// Tuning knobs of one worker process.
#[derive(Debug, Clone)]
pub struct WorkerSettings {
    /// Identity shown in the Temporal UI.
    pub identity: String,
}

impl Default for WorkerSettings {
    fn default() -> Self {
        Self {
            identity: format!("certpool@{}", std::process::id()),
        }
    }
}

/// Runs a worker until `shutdown` resolves, then drains in-flight tasks. The worker future is
/// `!Send` (workflows run on a local set), so this must be awaited on the calling task.
pub async fn run(cfg: Arc<LoadedConfig>, settings: WorkerSettings, shutdown: impl Future<Output = ()>) -> Result<()> {
    let services = Arc::new(Services::from_config(cfg.clone()).map_err(|f| anyhow::anyhow!("{f}"))?);
    let runtime = Runtime::from_current_tokio(Default::default()).context("cannot start the Temporal runtime")?;
    let client = crate::temporal::connect(&cfg.config.temporal, &settings.identity).await?;
    let tuning = &cfg.config.worker;
    let options = WorkerOptions::new(cfg.config.temporal.task_queue.clone())
        .workflow_task_poller_behavior(PollerBehavior::SimpleMaximum(tuning.workflow_pollers as usize))
        .nonsticky_to_sticky_poll_ratio(tuning.nonsticky_ratio)
        .activity_task_poller_behavior(PollerBehavior::SimpleMaximum(tuning.activity_pollers as usize))
        .register_workflow::<PoolReplenish>()?
        .register_workflow::<IssueCertificate>()?
        .register_workflow::<AssignCertificate>()?
        .register_workflow::<ClusterSync>()?
        .register_workflow::<CertificateRenewal>()?
        .register_workflow::<ExpiryScan>()?
        .register_activities(CertpoolActivityImpls::new(services.clone()))
        .build();
    let mut worker = Worker::new(&runtime, client, options).context("cannot create the worker")?;
    let stop = worker.shutdown_handle();
    tracing::info!(task_queue = %cfg.config.temporal.task_queue, "worker started");
    // The outbox relay runs beside the worker in every worker process: events reach the sinks
    // as long as any worker is up.
    let (relay_stop, relay_rx) = tokio::sync::oneshot::channel::<()>();
    let relay = tokio::spawn(certpool_activities::outbox::run(services.clone(), async {
        let _ = relay_rx.await;
    }));
    let run = worker.run();
    tokio::pin!(run);
    tokio::pin!(shutdown);
    let early = tokio::select! {
        result = &mut run => Some(result),
        () = &mut shutdown => None,
    };
    let _ = relay_stop.send(());
    let _ = relay.await;
    if let Some(result) = early {
        return result.context("worker stopped with an error");
    }
    tracing::info!("shutting down: finishing in-flight tasks");
    stop();
    run.await.context("worker stopped with an error")
}
