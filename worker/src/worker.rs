//! The certpool worker: registers every workflow and activity on the configured task queue.

use anyhow::{Context, Result};
use certpool_activities::{CertpoolActivityImpls, Services};
use certpool_domain::config::LoadedConfig;
use certpool_workflows::{
    AssignCertificate, CertificateRenewal, ClusterSync, ExpiryScan, IssueCertificate, PoolClaims, PoolReplenish,
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
        .register_workflow::<ClusterSync>()?
        .register_workflow::<CertificateRenewal>()?
        .register_workflow::<ExpiryScan>()?
        .register_activities(CertpoolActivityImpls::new(services.clone()))
        .build();
    // Claims have a queue, pollers and task slots of their own: a refill behind a burst of
    // claims queues dozens of issuance tasks, and a claim must not wait behind them.
    let claims_queue = cfg.config.temporal.claims_queue();
    let claim_options = WorkerOptions::new(claims_queue.clone())
        .workflow_task_poller_behavior(PollerBehavior::SimpleMaximum(tuning.claim_pollers as usize))
        .nonsticky_to_sticky_poll_ratio(tuning.nonsticky_ratio)
        // A claim's task normally reaches the worker that caches the pool's claims workflow in
        // a millisecond or two. If that worker died, the server hands the task to any worker
        // only after this long (the SDK's default is 10 s, which every claim of the dead
        // worker's shards would wait).
        .sticky_queue_schedule_to_start_timeout(std::time::Duration::from_secs(2))
        .activity_task_poller_behavior(PollerBehavior::SimpleMaximum(2))
        .register_workflow::<PoolClaims>()?
        .register_workflow::<AssignCertificate>()?
        .register_activities(CertpoolActivityImpls::new(services.clone()))
        .build();
    let mut worker = Worker::new(&runtime, client.clone(), options).context("cannot create the worker")?;
    let mut claims = Worker::new(&runtime, client.clone(), claim_options).context("cannot create the claims worker")?;
    let stop = worker.shutdown_handle();
    let stop_claims = claims.shutdown_handle();
    tracing::info!(task_queue = %cfg.config.temporal.task_queue, claims_queue = %claims_queue, "worker started");
    // The outbox relay runs beside the worker in every worker process: events reach the sinks
    // as long as any worker is up.
    let (relay_stop, relay_rx) = tokio::sync::oneshot::channel::<()>();
    let notifier = certpool_activities::outbox::Notifier {
        client: client.clone(),
        task_queue: cfg.config.temporal.task_queue.clone(),
    };
    let relay = tokio::spawn(certpool_activities::outbox::run(services.clone(), notifier, async {
        let _ = relay_rx.await;
    }));
    // Both workers are !Send and share this task. try_join: if either fails, the process stops
    // rather than running on with half its queues unserved.
    let run = async { tokio::try_join!(worker.run(), claims.run()).map(|_| ()) };
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
    stop_claims();
    run.await.context("worker stopped with an error")
}
