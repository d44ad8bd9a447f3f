//! `certpool pools fill`: start (or join) each pool's `PoolReplenish` and follow it.

use anyhow::{Result, anyhow};
use certpool_domain::config::LoadedConfig;
use certpool_domain::contracts::{ReplenishInput, ReplenishOutcome, ReplenishProgress};
use certpool_domain::pool::replenish_workflow_id;
use certpool_workflows::PoolReplenish;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use temporalio_client::errors::WorkflowGetResultError;
use temporalio_client::{
    Client, QueryRejectCondition, WorkflowGetResultOptions, WorkflowIdConflictPolicy, WorkflowQueryOptions,
    WorkflowStartOptions,
};

/// How one pool's fill ended.
#[derive(Debug, Clone)]
pub enum FillResult {
    /// The pool reached its target.
    Full(ReplenishOutcome),
    /// The fill failed; the message says why.
    Failed(String),
}

/// Starts `PoolReplenish` for each pool, or joins the one already running: the workflow id
/// `pool-replenish/<pool>` makes a second fill of the same pool impossible.
pub async fn start(client: &Client, cfg: &LoadedConfig, pools: &[String]) -> Result<()> {
    for pool in pools {
        cfg.pool(pool).map_err(|m| anyhow!(m))?;
        let opts = WorkflowStartOptions::new(cfg.config.temporal.task_queue.clone(), replenish_workflow_id(pool))
            .id_conflict_policy(WorkflowIdConflictPolicy::UseExisting)
            .build();
        client
            .start_workflow(
                PoolReplenish::run,
                ReplenishInput {
                    pool: pool.clone(),
                    carried: Default::default(),
                },
                opts,
            )
            .await
            .map_err(|e| anyhow!("cannot start the fill of pool {pool}: {e}"))?;
    }
    Ok(())
}

/// The progress of a running fill, or `None` when no fill is running.
pub async fn progress(client: &Client, pool: &str) -> Option<ReplenishProgress> {
    let handle = client.get_workflow_handle::<PoolReplenish>(replenish_workflow_id(pool));
    let opts = WorkflowQueryOptions::builder()
        .reject_condition(QueryRejectCondition::NotOpen)
        .build();
    handle.query(PoolReplenish::progress, (), opts).await.ok()
}

/// Waits for each pool's fill to end, calling `on_progress` about twice a second with what the
/// fills report. Gives up after `timeout` if one is given.
pub async fn wait(
    client: &Client,
    pools: &[String],
    timeout: Option<Duration>,
    mut on_progress: impl FnMut(&BTreeMap<String, ReplenishProgress>),
) -> Result<BTreeMap<String, FillResult>> {
    let started = Instant::now();
    let mut waiters = tokio::task::JoinSet::new();
    for pool in pools {
        let client = client.clone();
        let pool = pool.clone();
        waiters.spawn(async move {
            let handle = client.get_workflow_handle::<PoolReplenish>(replenish_workflow_id(&pool));
            let r = handle.get_result(WorkflowGetResultOptions::default()).await;
            let result = match r {
                Ok(outcome) => FillResult::Full(outcome),
                Err(WorkflowGetResultError::Failed(f)) => FillResult::Failed(f.failure().message.clone()),
                Err(e) => FillResult::Failed(e.to_string()),
            };
            (pool, result)
        });
    }
    let mut results = BTreeMap::new();
    let mut seen = BTreeMap::new();
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    while !waiters.is_empty() {
        tokio::select! {
            Some(joined) = waiters.join_next() => {
                let (pool, result) = joined.map_err(|e| anyhow!("waiting for a fill: {e}"))?;
                results.insert(pool, result);
            }
            _ = tick.tick() => {
                for pool in pools.iter().filter(|p| !results.contains_key(*p)) {
                    if let Some(p) = progress(client, pool).await {
                        seen.insert(pool.clone(), p);
                    }
                }
                on_progress(&seen);
                if let Some(t) = timeout && started.elapsed() > t {
                    waiters.abort_all();
                    let unfinished: Vec<&String> = pools.iter().filter(|p| !results.contains_key(*p)).collect();
                    for pool in unfinished {
                        let last = seen.get(pool).and_then(|p| p.last_error.clone());
                        results.insert(pool.clone(), FillResult::Failed(format!(
                            "not full after {t:?}{}",
                            last.map(|e| format!("; last error: {e}")).unwrap_or_default()
                        )));
                    }
                    break;
                }
            }
        }
    }
    Ok(results)
}
