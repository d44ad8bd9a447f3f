//! Runs an external client (lego, certbot) once per certificate, each run under GNU time so its
//! CPU and peak RSS are counted even though the process is gone when we look.

use crate::stats::FillResult;
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::process::Command;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Contender name for the report.
    #[arg(long)]
    name: String,
    /// How it is run, for the report.
    #[arg(long)]
    setup: String,
    /// Runs (one certificate each).
    #[arg(long, default_value_t = 100)]
    count: usize,
    /// Runs at once after the first.
    #[arg(long, default_value_t = 1)]
    parallel: usize,
    /// Shell command run once after the first run and before the parallel ones, untimed
    /// (lego: copy the account the first run registered into every lane's --path).
    #[arg(long)]
    after_first: Option<String>,
    /// Limit for one run; a run that exceeds it is killed and counts as failed.
    #[arg(long, default_value_t = 120)]
    timeout_secs: u64,
    /// Per-run logs and GNU time output.
    #[arg(long)]
    log_dir: PathBuf,
    /// Where the JSON result goes.
    #[arg(long)]
    out: PathBuf,
    /// The command; `{i}` is replaced by the run number, `{lane}` by the lane (0..parallel).
    #[arg(last = true, required = true)]
    command: Vec<String>,
}

#[derive(Debug)]
struct RunOutcome {
    secs: f64,
    cpu_secs: f64,
    rss_kib: u64,
    error: Option<String>,
}

async fn run_one(args: &Args, i: usize, lane: usize) -> RunOutcome {
    let argv: Vec<String> = args
        .command
        .iter()
        .map(|a| a.replace("{i}", &i.to_string()).replace("{lane}", &lane.to_string()))
        .collect();
    let time_file = args.log_dir.join(format!("time-{i}"));
    let log_file = args.log_dir.join(format!("run-{i}.log"));
    let started = Instant::now();
    let r = spawn_and_wait(&argv, &time_file, &log_file, Duration::from_secs(args.timeout_secs)).await;
    let secs = started.elapsed().as_secs_f64();
    // GNU time writes "%e %U %S %M" as its last line (before it, a note if the child failed).
    let (cpu_secs, rss_kib) = std::fs::read_to_string(&time_file)
        .ok()
        .and_then(|t| {
            let last = t.lines().last()?.to_owned();
            let f: Vec<&str> = last.split_whitespace().collect();
            let user: f64 = f.get(1)?.parse().ok()?;
            let sys: f64 = f.get(2)?.parse().ok()?;
            let rss: u64 = f.get(3)?.parse().ok()?;
            Some((user + sys, rss))
        })
        .unwrap_or((0.0, 0));
    let error = match r {
        Ok(()) => None,
        Err(e) => Some(format!("run {i}: {e:#}; {}", tail(&log_file, 3))),
    };
    RunOutcome {
        secs,
        cpu_secs,
        rss_kib,
        error,
    }
}

async fn spawn_and_wait(argv: &[String], time_file: &Path, log_file: &Path, timeout: Duration) -> Result<()> {
    let log = std::fs::File::create(log_file)?;
    let mut child = Command::new("/usr/bin/time")
        .arg("-f")
        .arg("%e %U %S %M")
        .arg("-o")
        .arg(time_file)
        .args(argv)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .context("spawn /usr/bin/time")?;
    match tokio::time::timeout(timeout, child.wait()).await {
        Ok(status) => {
            let status = status?;
            if !status.success() {
                bail!("exited with {status}");
            }
            Ok(())
        }
        Err(_) => {
            // Killing time's child is not ours to do by name; killing time ends the run's
            // accounting, and kill_on_drop reaps it.
            let _ = child.kill().await;
            bail!("no certificate after {timeout:?}, killed")
        }
    }
}

fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let v: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    format!(
        "last lines of {}: {}",
        path.display(),
        v[v.len().saturating_sub(lines)..].join(" | ")
    )
}

pub(crate) async fn run(args: Args) -> Result<()> {
    std::fs::create_dir_all(&args.log_dir)?;
    let args = Arc::new(args);
    let started = Instant::now();
    let mut outcomes = Vec::with_capacity(args.count);
    if args.count > 0 {
        outcomes.push(run_one(&args, 0, 0).await);
    }
    if let Some(hook) = &args.after_first {
        let status = Command::new("sh").arg("-c").arg(hook).status().await?;
        if !status.success() {
            bail!("--after-first hook failed with {status}");
        }
    }
    let next = Arc::new(AtomicUsize::new(1));
    let mut lanes = tokio::task::JoinSet::new();
    for lane in 0..args.parallel.max(1) {
        let args = args.clone();
        let next = next.clone();
        lanes.spawn(async move {
            let mut mine = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= args.count {
                    return mine;
                }
                mine.push(run_one(&args, i, lane).await);
            }
        });
    }
    while let Some(r) = lanes.join_next().await {
        outcomes.extend(r?);
    }
    let wall = started.elapsed().as_secs_f64();
    let mut result = FillResult {
        name: args.name.clone(),
        setup: args.setup.clone(),
        target: args.count,
        wall_secs: wall,
        cpu_secs: Some(outcomes.iter().map(|o| o.cpu_secs).sum()),
        peak_rss_kib: outcomes.iter().map(|o| o.rss_kib).max(),
        cpu_scope: format!("all {} processes together; RSS: the largest one", args.name),
        ..Default::default()
    };
    result.first_secs = outcomes.first().filter(|o| o.error.is_none()).map(|o| o.secs);
    for o in outcomes {
        match o.error {
            None => {
                result.issued += 1;
                result.latencies_secs.push(o.secs);
            }
            Some(e) => result.errors.push(e),
        }
    }
    eprintln!(
        "{}: {}/{} certificates in {wall:.1} s{}",
        result.name,
        result.issued,
        result.target,
        result
            .errors
            .first()
            .map(|e| format!("; first error: {e}"))
            .unwrap_or_default()
    );
    result.write(&args.out)
}
