//! Claim latency from a warm pool through the public client API (`certpool::client`), one
//! claim at a time, as a provisioning system would call it.

use crate::stats::{percentile, write_json};
use anyhow::{Context, Result, bail};
use certpool::client::CertpoolClient;
use std::path::PathBuf;
use std::time::Instant;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// certpool config.
    #[arg(long)]
    config: PathBuf,
    /// Pool to claim from (must hold at least --count + --warmup ready certificates).
    #[arg(long)]
    pool: String,
    /// Number of measured claims.
    #[arg(long, default_value_t = 500)]
    count: usize,
    /// Claims before measuring (connection and worker warm-up).
    #[arg(long, default_value_t = 5)]
    warmup: usize,
    /// Cluster ids are `<prefix>-<n>`; the history reader finds these claims by it.
    #[arg(long)]
    cluster_prefix: Option<String>,
    /// Claims started per second (each at its slot, one at a time), as provisioning would
    /// send them; 0 sends each claim as soon as the previous one is answered, which keeps the
    /// server saturated with the claims' background work (syncs, refills) on a small machine.
    #[arg(long, default_value_t = 0.0)]
    rate: f64,
    /// Where the JSON result goes (latencies in seconds).
    #[arg(long)]
    out: Option<PathBuf>,
}

pub(crate) async fn run(args: Args) -> Result<()> {
    let cfg = certpool::load_config(&args.config)?;
    let client = CertpoolClient::connect(&cfg.config.temporal, "certpool-bench").await?;
    let prefix = args
        .cluster_prefix
        .clone()
        .unwrap_or_else(|| format!("bench-{}", std::process::id()));
    let mut samples = Vec::with_capacity(args.count);
    let t0 = tokio::time::Instant::now();
    for i in 0..args.warmup + args.count {
        if args.rate > 0.0 {
            tokio::time::sleep_until(t0 + std::time::Duration::from_secs_f64(i as f64 / args.rate)).await;
        }
        let cluster = format!("{prefix}-{i}");
        let started = Instant::now();
        let a = client
            .claim(&args.pool, &cluster, None)
            .await
            .with_context(|| format!("claim {i}"))?;
        let took = started.elapsed().as_secs_f64();
        if !a.new {
            bail!("cluster {cluster} already had a certificate");
        }
        if i >= args.warmup {
            samples.push(took);
        }
    }
    let ms = |p| percentile(&samples, p).unwrap_or(f64::NAN) * 1e3;
    println!(
        "claims: {} from pool {} (after {} warm-up claims), {}",
        samples.len(),
        args.pool,
        args.warmup,
        if args.rate > 0.0 {
            format!("{} per second", args.rate)
        } else {
            "back to back".to_owned()
        }
    );
    println!(
        "latency ms: p50 {:.1}  p95 {:.1}  p99 {:.1}  max {:.1}",
        ms(0.50),
        ms(0.95),
        ms(0.99),
        ms(1.0)
    );
    if let Some(out) = &args.out {
        write_json(
            out,
            &serde_json::json!({ "pool": args.pool, "rate_per_sec": args.rate, "latencies_secs": samples }),
        )?;
    }
    Ok(())
}
