//! The expiry scan at scale: an inventory seeded with synthetic certificates, the scan's paging
//! loop through the inventory API (what the `scan.due` activity runs), and the renewal starts
//! (what `scan.start_renewals` sends to Temporal), capped like `[scan] max_starts`.

use crate::stats::{proc_cpu_secs, proc_peak_rss_kib, write_json};
use anyhow::{Context, Result, anyhow};
use certpool_activities::inventory::EventSettings;
use certpool_activities::inventory::sqlite::SqliteInventory;
use certpool_domain::contracts::{RenewalRequest, workflow_ids};
use certpool_domain::plugins::Inventory;
use certpool_workflows::CertificateRenewal;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;
use temporalio_client::errors::WorkflowStartError;
use temporalio_client::{WorkflowIdConflictPolicy, WorkflowIdReusePolicy, WorkflowStartOptions};

const LIFETIME_SECS: i64 = 90 * 86_400;
/// Renewal times are spread over this window around "now"; `--due-permille` of it lies in the
/// past.
const SPREAD_SECS: i64 = 60 * 86_400;

/// Inventory backends the scan is measured on. PostgreSQL joins as one more variant: a seeding
/// function and an `Inventory` to open; the measurement itself only sees the trait.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Backend {
    Sqlite,
}

impl Backend {
    fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
        }
    }
}

#[derive(Debug, clap::Args)]
pub(crate) struct SeedArgs {
    /// Inventory backend.
    #[arg(long, value_enum, default_value = "sqlite")]
    backend: Backend,
    /// Inventory rows.
    #[arg(long)]
    rows: usize,
    /// Generated DER and seeded inventories are kept here across runs.
    #[arg(long)]
    cache_dir: PathBuf,
    /// Distinct rcgen certificates; rows reuse them round-robin with their own id, serial and
    /// validity.
    #[arg(long, default_value_t = 4096)]
    distinct_der: usize,
    /// Per mille of assigned rows already due when seeded.
    #[arg(long, default_value_t = 10)]
    due_permille: i64,
}

#[derive(Debug, clap::Args)]
pub(crate) struct MeasureArgs {
    #[command(flatten)]
    seed: SeedArgs,
    /// Temporal frontend (http://host:port).
    #[arg(long)]
    address: String,
    /// Task queue for the renewal starts: one no worker polls, so the started renewals wait
    /// instead of issuing a thousand certificates during the bench.
    #[arg(long, default_value = "certpool-scan-bench")]
    task_queue: String,
    /// Renewals started, like `[scan] max_starts`.
    #[arg(long, default_value_t = 1000)]
    max_starts: usize,
    /// Rows per page, as the ExpiryScan workflow asks for.
    #[arg(long, default_value_t = 500)]
    page: u32,
    /// Where the JSON result goes.
    #[arg(long)]
    out: PathBuf,
}

#[derive(Debug, Clone)]
struct DerInfo {
    serial: String,
    issuer: String,
    sans: Vec<String>,
}

fn now_unix() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// Distinct self-signed leaves with spread validity, generated once and cached as
/// length-prefixed DER.
fn ders(cache: &Path, count: usize) -> Result<Vec<DerInfo>> {
    let path = cache.join(format!("der-{count}.bin"));
    if !path.exists() {
        let started = Instant::now();
        let key = rcgen::KeyPair::generate()?;
        let now = time::OffsetDateTime::now_utc();
        let tmp = path.with_extension("tmp");
        let mut f = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
        for k in 0..count {
            let mut p = rcgen::CertificateParams::new(vec![
                format!("h{k}.scan.certpool.test"),
                format!("*.h{k}.scan.certpool.test"),
                format!("www.h{k}.scan.certpool.test"),
            ])?;
            #[allow(clippy::cast_possible_wrap)]
            let offset = time::Duration::seconds((k as i64 * 7919) % LIFETIME_SECS);
            p.not_before = now - offset;
            p.not_after = p.not_before + time::Duration::seconds(LIFETIME_SECS);
            p.serial_number = Some(rcgen::SerialNumber::from(k as u64 + 1));
            let der = p.self_signed(&key)?.der().to_vec();
            f.write_all(&u32::try_from(der.len())?.to_le_bytes())?;
            f.write_all(&der)?;
        }
        f.flush()?;
        drop(f);
        std::fs::rename(&tmp, &path)?;
        eprintln!(
            "scan: generated {count} DER certificates in {:.1} s",
            started.elapsed().as_secs_f64()
        );
    }
    let mut bytes = Vec::new();
    std::fs::File::open(&path)?.read_to_end(&mut bytes)?;
    let mut out = Vec::with_capacity(count);
    let mut rest = bytes.as_slice();
    while rest.len() >= 4 {
        let len = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        let der = rest.get(4..4 + len).context("truncated DER cache")?;
        rest = &rest[4 + len..];
        let (_, cert) = x509_parser::parse_x509_certificate(der).map_err(|e| anyhow!("cached DER: {e}"))?;
        let mut sans = Vec::new();
        if let Ok(Some(ext)) = cert.subject_alternative_name() {
            for n in &ext.value.general_names {
                if let x509_parser::extensions::GeneralName::DNSName(d) = n {
                    sans.push((*d).to_owned());
                }
            }
        }
        out.push(DerInfo {
            serial: cert.raw_serial().iter().map(|b| format!("{b:02x}")).collect(),
            issuer: cert.issuer().to_string(),
            sans,
        });
    }
    Ok(out)
}

fn inventory_path(a: &SeedArgs) -> PathBuf {
    a.cache_dir.join(format!(
        "inventory-{}-{}-{}.sqlite",
        a.rows, a.distinct_der, a.due_permille
    ))
}

fn open(a: &SeedArgs) -> Result<Box<dyn Inventory>> {
    match a.backend {
        Backend::Sqlite => Ok(Box::new(
            SqliteInventory::open(&inventory_path(a), EventSettings::default()).map_err(|f| anyhow!(f.message))?,
        )),
    }
}

pub(crate) fn seed(a: &SeedArgs) -> Result<()> {
    match a.backend {
        Backend::Sqlite => seed_sqlite(a),
    }
}

/// Bulk insert in one transaction; through the inventory's API this would be a million
/// transactions.
fn seed_sqlite(a: &SeedArgs) -> Result<()> {
    std::fs::create_dir_all(&a.cache_dir)?;
    let path = inventory_path(a);
    if path.exists() {
        eprintln!("scan: using cached {}", path.display());
        return Ok(());
    }
    let ders = ders(&a.cache_dir, a.distinct_der)?;
    let started = Instant::now();
    let tmp = path.with_extension("seeding");
    let _ = std::fs::remove_file(&tmp);
    // The inventory's own open creates and migrates the schema.
    drop(SqliteInventory::open(&tmp, EventSettings::default()).map_err(|f| anyhow!(f.message))?);
    let mut conn = rusqlite::Connection::open(&tmp)?;
    conn.pragma_update(None, "synchronous", "OFF")?;
    let now = now_unix();
    let tx = conn.transaction()?;
    {
        let mut stmt = tx.prepare(
            "INSERT INTO certificates (id, pool, sans, serial, issuer, not_before, not_after, state, ca, key_ref, \
             chain_ref, created_at, renew_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
        )?;
        let rows = i64::try_from(a.rows)?;
        for i in 0..rows {
            let d = &ders[usize::try_from(i)? % ders.len()];
            // A permutation of 0..rows (7919 is prime), so renewal times are spread evenly but
            // not in id order.
            let u = (i * 7919) % rows;
            let renew_at = now - SPREAD_SECS * a.due_permille / 1000 + SPREAD_SECS * u / rows;
            let not_before = renew_at - LIFETIME_SECS * 2 / 3;
            let id = format!("scan{}-{i:08}", a.rows);
            let state = if i % 10 == 0 { "pooled" } else { "assigned" };
            stmt.execute(rusqlite::params![
                id,
                format!("scan-pool-{}", i % 50),
                serde_json::to_string(&d.sans)?,
                format!("{}{i:08x}", d.serial),
                d.issuer,
                not_before,
                not_before + LIFETIME_SECS,
                state,
                "pebble",
                format!("certs/{id}/key"),
                format!("certs/{id}/chain"),
                not_before,
                renew_at,
            ])?;
        }
    }
    tx.commit()?;
    drop(conn);
    std::fs::rename(&tmp, &path)?;
    eprintln!(
        "scan: seeded {} rows in {:.1} s into {}",
        a.rows,
        started.elapsed().as_secs_f64(),
        path.display()
    );
    Ok(())
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct ScanResult {
    pub rows: usize,
    pub backend: String,
    pub distinct_der: usize,
    pub db_bytes: u64,
    pub due: usize,
    pub pages: usize,
    /// First scan of the whole due set, and a second one right after.
    pub scan_secs: f64,
    pub scan_again_secs: f64,
    /// Pages up to `max_starts` rows: what one capped scan reads.
    pub capped_scan_secs: f64,
    pub max_starts: usize,
    pub started: usize,
    pub already_running: usize,
    pub start_secs: f64,
    pub cpu_secs: f64,
    pub peak_rss_kib: u64,
}

async fn scan_once(inv: &dyn Inventory, now: i64, page: u32, stop_after: usize) -> Result<(Vec<(String, i64)>, usize)> {
    let mut after = None;
    let mut due = Vec::new();
    let mut pages = 0;
    loop {
        let rows = inv
            .due_for_renewal(now, after.clone(), page)
            .await
            .map_err(|f| anyhow!(f.message))?;
        pages += 1;
        let full = rows.len() == page as usize;
        after = rows.last().map(|r| (r.renew_at, r.id.clone()));
        due.extend(rows.into_iter().map(|r| (r.id, r.not_after)));
        if !full || due.len() >= stop_after {
            return Ok((due, pages));
        }
    }
}

pub(crate) async fn measure(a: MeasureArgs) -> Result<()> {
    seed(&a.seed)?;
    let path = inventory_path(&a.seed);
    let cpu0 = proc_cpu_secs("self")?;
    let inv = open(&a.seed)?;
    let inv = inv.as_ref();
    let now = now_unix();
    let mut r = ScanResult {
        rows: a.seed.rows,
        backend: a.seed.backend.name().into(),
        distinct_der: a.seed.distinct_der,
        db_bytes: std::fs::metadata(&path)?.len(),
        max_starts: a.max_starts,
        ..Default::default()
    };
    let t = Instant::now();
    let (due, pages) = scan_once(inv, now, a.page, usize::MAX).await?;
    r.scan_secs = t.elapsed().as_secs_f64();
    r.due = due.len();
    r.pages = pages;
    let t = Instant::now();
    scan_once(inv, now, a.page, usize::MAX).await?;
    r.scan_again_secs = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let (capped, _) = scan_once(inv, now, a.page, a.max_starts).await?;
    r.capped_scan_secs = t.elapsed().as_secs_f64();

    // Only the address is given: namespace and task-queue defaults stay certpool's own.
    let cfg: certpool_domain::config::TemporalConfig =
        serde_json::from_value(serde_json::json!({ "address": a.address })).context("temporal config")?;
    let client = certpool::temporal::connect(&cfg, "certpool-bench-scan").await?;
    let t = Instant::now();
    let outcomes: Vec<Result<bool>> = futures::stream::iter(capped.into_iter().take(a.max_starts))
        .map(|(id, not_after)| {
            let client = client.clone();
            let opts = WorkflowStartOptions::new(a.task_queue.clone(), workflow_ids::renewal(&id, not_after))
                .id_reuse_policy(WorkflowIdReusePolicy::AllowDuplicateFailedOnly)
                .id_conflict_policy(WorkflowIdConflictPolicy::Fail)
                .build();
            async move {
                match client
                    .start_workflow(CertificateRenewal::run, RenewalRequest { cert_id: id.clone() }, opts)
                    .await
                {
                    Ok(_) => Ok(true),
                    Err(WorkflowStartError::AlreadyStarted { .. }) => Ok(false),
                    Err(e) => Err(anyhow!("start renewal of {id}: {e}")),
                }
            }
        })
        // The same fan-out as the scan.start_renewals activity.
        .buffer_unordered(32)
        .collect()
        .await;
    r.start_secs = t.elapsed().as_secs_f64();
    for o in outcomes {
        if o? {
            r.started += 1;
        } else {
            r.already_running += 1;
        }
    }
    r.cpu_secs = proc_cpu_secs("self")? - cpu0;
    r.peak_rss_kib = proc_peak_rss_kib("self")?;
    eprintln!(
        "scan: {} rows, {} due in {:.2} s ({} pages), {} renewals started in {:.2} s, peak RSS {} MiB",
        r.rows,
        r.due,
        r.scan_secs,
        r.pages,
        r.started + r.already_running,
        r.start_secs,
        r.peak_rss_kib / 1024
    );
    write_json(&a.out, &r)
}
