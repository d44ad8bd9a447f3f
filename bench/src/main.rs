//! `certpool-bench claims`: claim latency from a warm pool through the public client API.
//!
//! Prints measured numbers; asserts nothing. Needs a running stack and worker (see
//! `bench/claims.sh`, which brings both up).

use anyhow::{Context, Result, bail};
use certpool::client::CertpoolClient;
use clap::Parser;
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(Debug, Parser)]
#[command(name = "certpool-bench", about = "certpool benchmarks; each prints measured numbers")]
enum Cli {
    /// Claim latency through certpool::client, one claim at a time.
    Claims(Args),
}

#[derive(Debug, clap::Args)]
struct Args {
    /// certpool config.
    #[arg(long)]
    config: PathBuf,
    /// Pool to claim from (must hold at least --count ready certificates).
    #[arg(long)]
    pool: String,
    /// Number of claims.
    #[arg(long, default_value_t = 100)]
    count: usize,
    /// Claims before measuring (connection and worker warm-up).
    #[arg(long, default_value_t = 5)]
    warmup: usize,
    /// Pause between claims, so that each claim's background work (refill and sync requests)
    /// is over before the next one starts; 0 claims back to back.
    #[arg(long, default_value_t = 0)]
    pause_ms: u64,
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1e3
}

#[tokio::main]
async fn main() -> Result<()> {
    let Cli::Claims(args) = Cli::parse();
    let cfg = certpool::load_config(&args.config)?;
    let client = CertpoolClient::connect(&cfg.config.temporal, "certpool-bench").await?;
    let run = format!("{}", std::process::id());
    let mut samples = Vec::with_capacity(args.count);
    for i in 0..args.warmup + args.count {
        let cluster = format!("bench-{run}-{i}");
        let started = Instant::now();
        let a = client
            .claim(&args.pool, &cluster, None)
            .await
            .with_context(|| format!("claim {i}"))?;
        let took = started.elapsed();
        if !a.new {
            bail!("cluster {cluster} already had a certificate");
        }
        if i >= args.warmup {
            samples.push(took);
        }
        if args.pause_ms > 0 {
            tokio::time::sleep(Duration::from_millis(args.pause_ms)).await;
        }
    }
    samples.sort();
    let mean = samples.iter().map(Duration::as_secs_f64).sum::<f64>() * 1e3 / samples.len().max(1) as f64;
    println!(
        "claims: {} from pool {} (after {} warm-up claims)",
        samples.len(),
        args.pool,
        args.warmup
    );
    println!(
        "latency ms: p50 {:.1}  p95 {:.1}  p99 {:.1}  max {:.1}  mean {:.1}",
        pct(&samples, 0.50),
        pct(&samples, 0.95),
        pct(&samples, 0.99),
        pct(&samples, 1.0),
        mean
    );
    Ok(())
}
