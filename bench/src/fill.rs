//! certpool as a fill contender: one running worker fills one pool through `PoolReplenish`
//! (the same library calls as `certpool pools fill --wait`). Per-certificate latency is each
//! `IssueCertificate` run's start-to-close time from Temporal's visibility.

use crate::stats::{FillResult, proc_cpu_secs, proc_peak_rss_kib};
use crate::tctl::Temporal;
use anyhow::{Context, Result, anyhow};
use certpool::fill::{self, FillResult as PoolFill};
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// certpool config (the worker's).
    #[arg(long)]
    config: PathBuf,
    /// Pool to fill; its target_size is the certificate count.
    #[arg(long)]
    pool: String,
    /// The worker's PID, for its CPU time and peak RSS.
    #[arg(long)]
    worker_pid: String,
    /// The Temporal dev server's PID, for its CPU time (reported apart).
    #[arg(long)]
    server_pid: Option<String>,
    /// The `temporal` CLI.
    #[arg(long)]
    temporal_cli: PathBuf,
    /// Limit for the whole fill.
    #[arg(long, default_value_t = 900)]
    timeout_secs: u64,
    /// Name in the report.
    #[arg(long, default_value = "certpool")]
    name: String,
    /// Where the JSON result goes.
    #[arg(long)]
    out: PathBuf,
}

pub(crate) async fn run(args: Args) -> Result<()> {
    let cfg = certpool::load_config(&args.config)?;
    let spec = cfg.pool(&args.pool).map_err(|m| anyhow!(m))?;
    let target = spec.target_size as usize;
    let fill_concurrency = spec.fill_concurrency;
    let client = certpool::temporal::connect(&cfg.config.temporal, "certpool-bench").await?;
    let worker0 = proc_cpu_secs(&args.worker_pid)?;
    let server0 = args.server_pid.as_deref().map(proc_cpu_secs).transpose()?;
    let started = Instant::now();
    let pools = vec![args.pool.clone()];
    fill::start(&client, &cfg, &pools).await?;
    let results = fill::wait(&client, &pools, Some(Duration::from_secs(args.timeout_secs)), |_| {}).await?;
    let wall = started.elapsed().as_secs_f64();
    let worker_cpu = proc_cpu_secs(&args.worker_pid)? - worker0;
    let mut result = FillResult {
        name: args.name.clone(),
        setup: format!("one worker, PoolReplenish with fill_concurrency {fill_concurrency}"),
        target,
        wall_secs: wall,
        cpu_secs: Some(worker_cpu),
        peak_rss_kib: Some(proc_peak_rss_kib(&args.worker_pid)?),
        cpu_scope: "the worker process (Temporal server apart, below)".into(),
        ..Default::default()
    };
    if let (Some(pid), Some(s0)) = (&args.server_pid, server0) {
        result
            .extra
            .insert("temporal_server_cpu_secs".into(), proc_cpu_secs(pid)? - s0);
        result
            .extra
            .insert("temporal_server_peak_rss_kib".into(), proc_peak_rss_kib(pid)? as f64);
    }
    if let Some(PoolFill::Failed(why)) = results.get(&args.pool) {
        result.errors.push(format!("fill of {}: {why}", args.pool));
    }
    // Visibility lags the workflow by about a second on the dev server.
    let temporal = Temporal::new(&args.temporal_cli, &cfg.config.temporal.address);
    let prefix = format!("issue/{}/", args.pool);
    let mut issued = Vec::new();
    for _ in 0..40 {
        issued = temporal
            .list("WorkflowType = 'IssueCertificate'")?
            .into_iter()
            .filter(|e| e.workflow_id.starts_with(&prefix) && e.completed())
            .collect();
        if issued.len() >= target {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    issued.sort_by_key(|e| e.start);
    result.latencies_secs = issued.iter().filter_map(|e| e.duration_secs()).collect();
    // PoolReplenish issues one certificate alone before the others: the earliest started.
    result.first_secs = issued.first().and_then(|e| e.duration_secs());
    result.issued = issued.len().min(target);
    if result.issued < target && result.errors.is_empty() {
        result
            .errors
            .push(format!("only {} IssueCertificate runs completed", issued.len()));
    }
    eprintln!(
        "{}: {}/{} certificates in {wall:.1} s",
        args.name, result.issued, target
    );
    result.write(&args.out)
}

#[derive(Debug, clap::Args)]
pub(crate) struct OnDemandArgs {
    /// certpool config.
    #[arg(long)]
    config: PathBuf,
    /// Pools of one certificate each, with names no other pool uses (so every issuance pays
    /// DNS-01); filled one after the other.
    #[arg(long = "pool", required = true)]
    pools: Vec<String>,
    /// Where the JSON result goes.
    #[arg(long)]
    out: PathBuf,
}

/// What a provisioning system without a pool waits for: one issuance of the same scheme,
/// started and awaited through certpool.
pub(crate) async fn on_demand(args: OnDemandArgs) -> Result<()> {
    let cfg = certpool::load_config(&args.config)?;
    let client = certpool::temporal::connect(&cfg.config.temporal, "certpool-bench").await?;
    let mut latencies = Vec::new();
    for pool in &args.pools {
        let started = Instant::now();
        let one = vec![pool.clone()];
        fill::start(&client, &cfg, &one).await?;
        let r = fill::wait(&client, &one, Some(Duration::from_secs(180)), |_| {}).await?;
        if let Some(PoolFill::Failed(why)) = r.get(pool) {
            return Err(anyhow!("on-demand issuance for pool {pool}: {why}"));
        }
        latencies.push(started.elapsed().as_secs_f64());
    }
    crate::stats::write_json(&args.out, &serde_json::json!({ "latencies_secs": latencies }))
        .context("write on-demand result")
}
