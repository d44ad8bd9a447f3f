//! What every measurement produces: per-contender results, percentiles, and process accounting
//! read from `/proc` (the workspace forbids `unsafe`, so no `getrusage`).

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// One fill contender's run.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct FillResult {
    /// `floor`, `certpool`, `lego`, `certbot`.
    pub name: String,
    /// How it was run, for the results table.
    pub setup: String,
    /// Certificates asked for.
    pub target: usize,
    /// Certificates issued.
    pub issued: usize,
    /// Wall time of the whole fill.
    pub wall_secs: f64,
    /// Per-certificate latency, in issue order where known.
    pub latencies_secs: Vec<f64>,
    /// Latency of the first certificate, issued alone before the parallel rest: the one that
    /// pays DNS-01 (the CA reuses its authorizations afterwards).
    #[serde(default)]
    pub first_secs: Option<f64>,
    /// CPU seconds (user + system) of what `cpu_scope` names.
    pub cpu_secs: Option<f64>,
    /// Peak resident set size, KiB, of what `cpu_scope` names.
    pub peak_rss_kib: Option<u64>,
    /// What the CPU and RSS figures count.
    pub cpu_scope: String,
    /// Other measured numbers (e.g. the Temporal server's CPU during the fill).
    #[serde(default)]
    pub extra: BTreeMap<String, f64>,
    /// Why certificates are missing.
    #[serde(default)]
    pub errors: Vec<String>,
}

impl FillResult {
    /// Wall seconds per certificate once the first one is done: the steady rate, apart from
    /// the one DNS-01 validation each contender pays.
    #[allow(clippy::cast_precision_loss)]
    pub(crate) fn steady_secs_per_cert(&self) -> Option<f64> {
        let first = self.first_secs?;
        (self.issued == self.target && self.issued > 1).then(|| (self.wall_secs - first) / (self.issued - 1) as f64)
    }

    pub(crate) fn write(&self, path: &Path) -> Result<()> {
        write_json(path, self)
    }
}

pub(crate) fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let text = serde_json::to_string_pretty(value)?;
    std::fs::write(path, text).with_context(|| format!("write {}", path.display()))
}

pub(crate) fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T> {
    let text = std::fs::read(path).with_context(|| format!("read {}", path.display()))?;
    serde_json::from_slice(&text).with_context(|| format!("parse {}", path.display()))
}

/// Nearest-rank percentile of an unsorted sample, `None` when empty.
pub(crate) fn percentile(samples: &[f64], p: f64) -> Option<f64> {
    if samples.is_empty() {
        return None;
    }
    let mut v = samples.to_vec();
    v.sort_by(f64::total_cmp);
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    Some(v[i.min(v.len() - 1)])
}

pub(crate) fn mean(samples: &[f64]) -> Option<f64> {
    #[allow(clippy::cast_precision_loss)]
    (!samples.is_empty()).then(|| samples.iter().sum::<f64>() / samples.len() as f64)
}

/// Clock ticks per second for `/proc/<pid>/stat`; `getconf` because `sysconf` would need
/// `unsafe`. Linux has used 100 on every common architecture for decades.
fn clock_ticks() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// User + system CPU seconds of a live process (`self` for this one).
pub(crate) fn proc_cpu_secs(pid: &str) -> Result<f64> {
    let stat =
        std::fs::read_to_string(format!("/proc/{pid}/stat")).with_context(|| format!("read /proc/{pid}/stat"))?;
    // The command name may contain spaces; fields are counted after its closing parenthesis.
    let rest = stat.rsplit_once(") ").map(|(_, r)| r).context("odd /proc stat")?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state is field 3 of stat(5), so utime (14) and stime (15) are at 11 and 12.
    let utime: f64 = f.get(11).context("utime")?.parse()?;
    let stime: f64 = f.get(12).context("stime")?.parse()?;
    Ok((utime + stime) / clock_ticks())
}

/// Peak resident set size (VmHWM) of a live process, KiB.
pub(crate) fn proc_peak_rss_kib(pid: &str) -> Result<u64> {
    let status =
        std::fs::read_to_string(format!("/proc/{pid}/status")).with_context(|| format!("read /proc/{pid}/status"))?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .context("no VmHWM in /proc status")?;
    Ok(line.split_whitespace().nth(1).context("VmHWM value")?.parse()?)
}
