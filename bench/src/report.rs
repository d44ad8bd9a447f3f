//! The results file: tables, ratios, targets, and the latency chart, all from the JSON the
//! measurements wrote. Nothing here is typed in by hand.

use crate::history::HistoryReport;
use crate::scan::ScanResult;
use crate::stats::{FillResult, mean, percentile, read_json};
use anyhow::{Result, bail};
use plotters::prelude::*;
use serde_json::Value;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Directory with the measurements' JSON files.
    #[arg(long)]
    dir: PathBuf,
    /// Machine description (free text, included verbatim).
    #[arg(long)]
    machine: PathBuf,
    /// Markdown output.
    #[arg(long)]
    out: PathBuf,
    /// SVG chart output (linked from the markdown by file name).
    #[arg(long)]
    chart: PathBuf,
}

const CONTENDERS: [&str; 4] = ["floor", "certpool", "lego", "certbot"];

fn f(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "–".into(), |x| format!("{x:.digits$}"))
}

#[allow(clippy::cast_precision_loss)]
fn per_cert(r: &FillResult) -> Option<f64> {
    (r.issued > 0).then(|| r.wall_secs / r.issued as f64)
}

fn chart(fills: &[FillResult], path: &Path) -> Result<()> {
    let all: Vec<f64> = fills.iter().flat_map(|r| r.latencies_secs.iter().copied()).collect();
    let lo = all.iter().copied().fold(f64::INFINITY, f64::min).max(1e-3) * 0.8;
    let hi = all.iter().copied().fold(0.0, f64::max).max(lo * 10.0) * 1.2;
    let root = SVGBackend::new(path, (900, 520)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "Per-certificate latency, cumulative share of certificates",
            ("sans-serif", 20),
        )
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(55)
        .build_cartesian_2d((lo..hi).log_scale(), 0.0..1.0)?;
    chart
        .configure_mesh()
        .x_desc("seconds per certificate (log scale)")
        .y_desc("share of certificates")
        .draw()?;
    let colors = [BLUE, RED, GREEN, MAGENTA, CYAN, RGBColor(255, 140, 0), BLACK];
    for (k, r) in fills.iter().enumerate() {
        let mut v = r.latencies_secs.clone();
        v.sort_by(f64::total_cmp);
        #[allow(clippy::cast_precision_loss)]
        let n = v.len() as f64;
        #[allow(clippy::cast_precision_loss)]
        let points: Vec<(f64, f64)> = v.iter().enumerate().map(|(i, x)| (*x, (i + 1) as f64 / n)).collect();
        let color = colors[k % colors.len()];
        chart
            .draw_series(LineSeries::new(points, color.stroke_width(2)))?
            .label(format!(
                "{} (p50 {} s)",
                r.name,
                f(percentile(&r.latencies_secs, 0.5), 2)
            ))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}

fn target_line(out: &mut String, what: &str, goal: &str, measured: Option<f64>, ok: impl Fn(f64) -> bool, unit: &str) {
    let (m, verdict) = match measured {
        Some(v) => (format!("{v:.2}{unit}"), if ok(v) { "met" } else { "**not met**" }),
        None => ("not measured".into(), "–"),
    };
    let _ = writeln!(out, "| {what} | {goal} | {m} | {verdict} |");
}

pub(crate) fn run(args: Args) -> Result<()> {
    let mut fills = Vec::new();
    for name in CONTENDERS {
        let p = args.dir.join(format!("fill-{name}.json"));
        if p.exists() {
            fills.push(read_json::<FillResult>(&p)?);
        }
    }
    // Extra certpool runs (other fill concurrencies) after the four contenders.
    let mut extra: Vec<PathBuf> = std::fs::read_dir(&args.dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let n = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            n.starts_with("fill-") && !CONTENDERS.iter().any(|c| n == format!("fill-{c}.json"))
        })
        .collect();
    extra.sort();
    for p in extra {
        fills.push(read_json::<FillResult>(&p)?);
    }
    let get = |name: &str| fills.iter().find(|r| r.name == name);
    let mut md = String::new();
    let _ = writeln!(md, "# certpool benchmark results\n");
    let machine = std::fs::read_to_string(&args.machine)?;
    let _ = writeln!(md, "## Machine and run\n\n```\n{}\n```\n", machine.trim_end());

    let n = fills.first().map_or(0, |r| r.target);
    let _ = writeln!(
        md,
        "## 1. Pool fill: {n} certificates, 3 SANs each, DNS-01 through RFC 2136 to BIND\n\n\
         pebble is restarted (fresh state) before each contender. Latency is per certificate: a \
         client process's run (lego, certbot), an `IssueCertificate` workflow's start to close \
         (certpool), one order loop (floor).\n"
    );
    let _ = writeln!(
        md,
        "| contender | how | issued | wall s | wall s / cert | certs / s | first cert s | after it: s / cert | p50 s | p95 s | max s | CPU s | CPU ms / cert | peak RSS MiB |"
    );
    let _ = writeln!(md, "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for r in &fills {
        #[allow(clippy::cast_precision_loss)]
        let rate = (r.wall_secs > 0.0).then(|| r.issued as f64 / r.wall_secs);
        #[allow(clippy::cast_precision_loss)]
        let cpu_per = r.cpu_secs.filter(|_| r.issued > 0).map(|c| c * 1e3 / r.issued as f64);
        #[allow(clippy::cast_precision_loss)]
        let rss = r.peak_rss_kib.map(|k| k as f64 / 1024.0);
        let _ = writeln!(
            md,
            "| {} | {} | {}/{} | {:.1} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            r.name,
            r.setup,
            r.issued,
            r.target,
            r.wall_secs,
            f(per_cert(r), 3),
            f(rate, 2),
            f(r.first_secs, 3),
            f(r.steady_secs_per_cert(), 4),
            f(percentile(&r.latencies_secs, 0.5), 3),
            f(percentile(&r.latencies_secs, 0.95), 3),
            f(percentile(&r.latencies_secs, 1.0), 3),
            f(r.cpu_secs, 2),
            f(cpu_per, 1),
            f(rss, 1),
        );
    }
    let _ = writeln!(md, "\nCPU and RSS count:");
    for r in &fills {
        let _ = writeln!(md, "- {}: {}", r.name, r.cpu_scope);
        for (k, v) in &r.extra {
            let _ = writeln!(md, "  - {k}: {v:.2}");
        }
    }
    let _ = writeln!(md, "\n### Ratios (throughput: certificates per wall second)\n");
    let _ = writeln!(
        md,
        "| ratio | throughput | throughput after the first certificate | p50 latency | CPU per certificate (worker) | CPU per certificate (worker + Temporal server) |"
    );
    let _ = writeln!(md, "|---|---|---|---|---|---|");
    let cp = get("certpool");
    for other in ["lego", "certbot", "floor"] {
        if let (Some(c), Some(o)) = (cp, get(other)) {
            let thr = per_cert(o).zip(per_cert(c)).map(|(o, c)| o / c);
            let steady = o
                .steady_secs_per_cert()
                .zip(c.steady_secs_per_cert())
                .map(|(o, c)| o / c);
            let p50 = percentile(&c.latencies_secs, 0.5)
                .zip(percentile(&o.latencies_secs, 0.5))
                .map(|(c, o)| c / o);
            #[allow(clippy::cast_precision_loss)]
            let cpu = c
                .cpu_secs
                .zip(o.cpu_secs)
                .filter(|_| c.issued > 0 && o.issued > 0)
                .map(|(c1, o1)| (c1 / c.issued as f64) / (o1 / o.issued as f64));
            let server = c.extra.get("temporal_server_cpu_secs").copied();
            #[allow(clippy::cast_precision_loss)]
            let cpu_all = c
                .cpu_secs
                .zip(server)
                .zip(o.cpu_secs)
                .filter(|_| c.issued > 0 && o.issued > 0)
                .map(|((c1, s1), o1)| ((c1 + s1) / c.issued as f64) / (o1 / o.issued as f64));
            let _ = writeln!(
                md,
                "| certpool / {other} | {}× | {}× | {}× | {}× | {}× |",
                f(thr, 2),
                f(steady, 2),
                f(p50, 2),
                f(cpu, 2),
                f(cpu_all, 2)
            );
        }
    }
    let _ = writeln!(
        md,
        "\nThroughput ratio above 1: certpool issues faster. Latency and CPU ratios above 1: certpool is slower or costs more. \
         Each contender issues its first certificate alone (the only one that needs DNS-01; pebble reuses the \
         valid authorizations for the rest), then the others in parallel; \"after the first\" is (wall − first) / (N − 1). \
         lego waits for a validation by polling the authorization with a pause of several seconds, so its \
         first certificate, and with it its wall time, varies from run to run.\n"
    );
    let chart_name = args
        .chart
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if !fills.is_empty() {
        chart(&fills, &args.chart)?;
        let _ = writeln!(md, "![per-certificate latency]({chart_name})\n");
    }
    let mut failed = Vec::new();
    for r in &fills {
        if r.issued < r.target {
            failed.push(format!("{} issued {}/{}", r.name, r.issued, r.target));
            let _ = writeln!(md, "**{} issued {}/{}**:", r.name, r.issued, r.target);
            for e in r.errors.iter().take(5) {
                let _ = writeln!(md, "- {e}");
            }
        }
    }

    let lat = |file: &str| -> Vec<f64> {
        read_json::<Value>(&args.dir.join(file))
            .ok()
            .and_then(|v| v["latencies_secs"].as_array().cloned())
            .unwrap_or_default()
            .iter()
            .filter_map(Value::as_f64)
            .collect()
    };
    let cl = lat("claims-refill.json");
    let cl_quiet = lat("claims-norefill.json");
    let cl_paced = lat("claims-refill-paced.json");
    let cl_quiet_paced = lat("claims-norefill-paced.json");
    let rate = read_json::<Value>(&args.dir.join("claims-refill-paced.json"))
        .ok()
        .and_then(|v| v["rate_per_sec"].as_f64())
        .unwrap_or(0.0);
    let od = lat("ondemand.json");
    let ms = |v: &[f64], p| percentile(v, p).map(|x| x * 1e3);
    let _ = writeln!(md, "## 2. Claim latency\n");
    let _ = writeln!(
        md,
        "Claims one at a time through `certpool::client::CertpoolClient::claim` from a pool \
         filled beforehand. *Refilling*: the pool is at its target, so every claim makes \
         `PoolReplenish` issue one certificate in the background, as in production. *No refill*: \
         the same pool after a worker restart with its target lowered below the ready count, so \
         claims run with nothing issuing behind them (each claim still starts its ClusterSync). \
         *Back to back*: each claim is sent as soon as the previous one is answered, so the \
         work claims leave behind (syncs, refills) piles up on the 2 cores. *Paced*: claims start \
         at a fixed rate, one at a time, as provisioning would send them. \
         On-demand: a pool of one certificate with names no other pool uses, filled and awaited: \
         what a provisioning system without a pool waits for (a fresh DNS-01).\n"
    );
    let _ = writeln!(md, "| what | n | p50 ms | p95 ms | p99 ms | max ms | mean ms |");
    let _ = writeln!(md, "|---|---|---|---|---|---|---|");
    let paced_refill = format!("claim, pool refilling, paced {rate}/s");
    let paced_quiet = format!("claim, no refill, paced {rate}/s");
    for (name, v) in [
        ("claim, pool refilling, back to back", &cl),
        ("claim, no refill, back to back", &cl_quiet),
        (paced_refill.as_str(), &cl_paced),
        (paced_quiet.as_str(), &cl_quiet_paced),
        ("on-demand issuance", &od),
    ] {
        let _ = writeln!(
            md,
            "| {name} | {} | {} | {} | {} | {} | {} |",
            v.len(),
            f(ms(v, 0.5), 1),
            f(ms(v, 0.95), 1),
            f(ms(v, 0.99), 1),
            f(ms(v, 1.0), 1),
            f(mean(v).map(|x| x * 1e3), 1)
        );
    }
    if let (Some(c), Some(o)) = (percentile(&cl, 0.5), percentile(&od, 0.5)) {
        let _ = writeln!(md, "\nOn-demand p50 / claim p50 (refilling): {:.1}×\n", o / c);
    }

    let mut scans: Vec<ScanResult> = Vec::new();
    for e in std::fs::read_dir(&args.dir)? {
        let p = e?.path();
        if p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("scan-")) {
            scans.push(read_json(&p)?);
        }
    }
    // Side by side: each size's SQLite row, then the other backends'.
    scans.sort_by_key(|s| (s.rows, s.backend != "sqlite", s.backend.clone()));
    let _ = writeln!(md, "## 3. Expiry scan at scale\n");
    let _ = writeln!(
        md,
        "The scan's paging loop (`Inventory::due_for_renewal`, pages of 500 as `ExpiryScan` asks) \
         over a seeded inventory, then `CertificateRenewal` starts for the first `max_starts` due \
         certificates with the same options and fan-out (32) as the `scan.start_renewals` \
         activity, on a task queue no worker polls. Runs in the certpool-bench process: CPU and \
         peak RSS are that process's (inventory code, Temporal client), not a worker's.\n"
    );
    let _ = writeln!(
        md,
        "| backend | rows | DB MiB | due | pages | scan s | again s | capped scan s | renewals started | start s | starts / s | CPU s | peak RSS MiB |"
    );
    let _ = writeln!(md, "|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for s in &scans {
        let starts = s.started + s.already_running;
        #[allow(clippy::cast_precision_loss)]
        let _ = writeln!(
            md,
            "| {} | {} | {:.0} | {} | {} | {:.3} | {:.3} | {:.3} | {} (cap {}) | {:.2} | {:.0} | {:.2} | {:.1} |",
            s.backend,
            s.rows,
            s.db_bytes as f64 / 1048576.0,
            s.due,
            s.pages,
            s.scan_secs,
            s.scan_again_secs,
            s.capped_scan_secs,
            starts,
            s.max_starts,
            s.start_secs,
            starts as f64 / s.start_secs.max(1e-9),
            s.cpu_secs,
            s.peak_rss_kib as f64 / 1024.0
        );
    }
    if let Some(s) = scans.first() {
        let _ = writeln!(
            md,
            "\nRows are synthetic: {} distinct rcgen certificates (ECDSA P-256, 3 SANs) are \
             generated once and cached; each row takes SANs and issuer from one of them and has \
             its own id, serial and validity (90 days, renewal times spread evenly over 60 days, \
             1% of them due when seeded; one row in ten is pooled, the rest assigned). Both \
             backends hold the same rows in the schema their own migrations create (SQLite: one \
             transaction of INSERTs; PostgreSQL: COPY, then VACUUM ANALYZE, as autovacuum would \
             leave it) and are measured through the same `Inventory` calls. PostgreSQL runs on \
             loopback with stock settings but `shared_buffers=256MB`; its DB MiB are the \
             schema's tables with indexes and TOAST, and the server's own memory is not in the \
             peak RSS, which is the bench process's alone.\n",
            s.distinct_der
        );
    }

    let hist: Option<HistoryReport> = read_json(&args.dir.join("history.json")).ok();
    let mut events_per_cert = None;
    if let Some(h) = &hist {
        let _ = writeln!(md, "## 4. Temporal cost, from the real histories\n");
        #[allow(clippy::cast_precision_loss)]
        let per = |c: &crate::history::Cost, n: usize| {
            (n > 0).then(|| (c.events as f64 / n as f64, c.payload_bytes as f64 / n as f64))
        };
        let _ = writeln!(
            md,
            "| what | runs | events | events per unit | payload bytes per unit |"
        );
        let _ = writeln!(md, "|---|---|---|---|---|");
        let mut row = |name: &str, c: &crate::history::Cost, n: usize, unit: &str| {
            let p = per(c, n);
            let _ = writeln!(
                md,
                "| {name} | {} | {} | {} per {unit} | {} |",
                c.runs,
                c.events,
                f(p.map(|x| x.0), 1),
                f(p.map(|x| x.1), 0)
            );
        };
        row("IssueCertificate (fill)", &h.issue_certificate, h.issued, "certificate");
        row("PoolReplenish (fill)", &h.pool_replenish, h.issued, "certificate");
        let mut total = h.issue_certificate.clone();
        total.events += h.pool_replenish.events;
        total.payload_bytes += h.pool_replenish.payload_bytes;
        row("issued certificate, all", &total, h.issued, "certificate");
        #[allow(clippy::cast_precision_loss)]
        {
            events_per_cert = (h.issued > 0).then(|| total.events as f64 / h.issued as f64);
        }
        row("CertificateRenewal", &h.certificate_renewal, h.renewals, "renewal");
        row("its IssueCertificate", &h.renewal_issues, h.renewals, "renewal");
        let mut rt = h.certificate_renewal.clone();
        rt.events += h.renewal_issues.events;
        rt.payload_bytes += h.renewal_issues.payload_bytes;
        row("renewal, all (ClusterSync apart)", &rt, h.renewals, "renewal");
        for (label, c) in &h.claims {
            row(
                &format!("PoolClaims tasks that answered claims ({label})"),
                &c.pool_claims,
                c.claims,
                "claim",
            );
            row(
                &format!("ClusterSync after a claim ({label})"),
                &c.cluster_sync,
                c.cluster_sync.runs,
                "claim",
            );
        }

        let _ = writeln!(
            md,
            "\n### Where an issuance spends its time (fill's IssueCertificate histories)\n\n\
             Mean `IssueCertificate` duration {:.0} ms; {:.1} workflow tasks per run, each waiting \
             {:.1} ms for a worker and running {:.1} ms; {:.1} local activities per run.\n",
            h.issue_duration_ms,
            h.issue_wft_per_run,
            h.issue_wft_queue_ms,
            h.issue_wft_run_ms,
            h.local_activities_per_issue
        );
        let _ = writeln!(
            md,
            "| activity | runs | retried | mean wait for worker ms | mean run ms |"
        );
        let _ = writeln!(md, "|---|---|---|---|---|");
        for (k, t) in &h.activities {
            let _ = writeln!(
                md,
                "| {k} | {} | {} | {:.1} | {:.1} |",
                t.count, t.attempts_over_one, t.mean_queue_ms, t.mean_run_ms
            );
        }
        for (label, c) in &h.claims {
            let _ = writeln!(
                md,
                "\nClaim path, {label} (PoolClaims histories, {} claims in {} workflow tasks): \
                 workflow task scheduled to claim update completed {:.1} ms; {:.2} claims per \
                 workflow task, each task waiting {:.1} ms for the worker and running {:.1} ms.",
                c.claims, c.pool_claims.runs, c.task_to_update_ms, c.claims_per_wft, c.wft_queue_ms, c.wft_run_ms
            );
        }
        let _ = writeln!(md);
    }

    let _ = writeln!(md, "## Targets (goals, not assertions)\n");
    let _ = writeln!(md, "| target | goal | measured | |");
    let _ = writeln!(md, "|---|---|---|---|");
    let thr = |o: &str| cp.and_then(per_cert).zip(get(o).and_then(per_cert)).map(|(c, o)| o / c);
    target_line(
        &mut md,
        "certpool / floor throughput",
        "≥ 0.5×",
        thr("floor"),
        |v| v >= 0.5,
        "×",
    );
    target_line(
        &mut md,
        "certpool / lego throughput",
        "≥ 20×",
        thr("lego"),
        |v| v >= 20.0,
        "×",
    );
    for (what, v) in [
        ("claim p99, pool refilling, back to back".to_owned(), &cl),
        ("claim p99, no refill, back to back".to_owned(), &cl_quiet),
        (format!("claim p99, pool refilling, paced {rate}/s"), &cl_paced),
        (format!("claim p99, no refill, paced {rate}/s"), &cl_quiet_paced),
    ] {
        target_line(&mut md, &what, "≤ 50 ms", ms(v, 0.99), |v| v <= 50.0, " ms");
    }
    let mut backends: Vec<&str> = scans.iter().map(|s| s.backend.as_str()).collect();
    backends.sort_by_key(|b| (*b != "sqlite", *b));
    backends.dedup();
    if backends.is_empty() {
        backends.push("sqlite");
    }
    for backend in backends {
        let million = scans.iter().find(|s| s.backend == backend && s.rows >= 1_000_000);
        target_line(
            &mut md,
            &format!("scan of 1M rows ({backend})"),
            "≤ 5 s",
            million.map(|s| s.scan_secs),
            |v| v <= 5.0,
            " s",
        );
        #[allow(clippy::cast_precision_loss)]
        target_line(
            &mut md,
            &format!("peak RSS, 1M scan ({backend})"),
            "≤ 200 MB",
            million.map(|s| s.peak_rss_kib as f64 * 1024.0 / 1e6),
            |v| v <= 200.0,
            " MB",
        );
    }
    target_line(
        &mut md,
        "history events per issued certificate",
        "≤ 40",
        events_per_cert,
        |v| v <= 40.0,
        "",
    );

    std::fs::write(&args.out, &md)?;
    println!("{md}");
    if !failed.is_empty() {
        bail!("not every contender issued all certificates: {}", failed.join("; "));
    }
    Ok(())
}
