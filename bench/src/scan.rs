//! The expiry scan at scale: an inventory seeded with synthetic certificates, the scan's paging
//! loop through the inventory API (what the `scan.due` activity runs), and the renewal starts
//! (what `scan.start_renewals` sends to Temporal), capped like `[scan] max_starts`.

use crate::stats::{proc_cpu_secs, proc_peak_rss_kib, write_json};
use anyhow::{Context, Result, anyhow};
use certpool_activities::inventory::EventSettings;
use certpool_activities::inventory::postgres::PostgresInventory;
use certpool_activities::inventory::sqlite::SqliteInventory;
use certpool_domain::config::PostgresInventoryConfig;
use certpool_domain::contracts::{RenewalRequest, workflow_ids};
use certpool_domain::plugins::Inventory;
use certpool_workflows::CertificateRenewal;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use sqlx::{Connection, Executor, PgConnection};
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;
use temporalio_client::errors::WorkflowStartError;
use temporalio_client::{WorkflowIdConflictPolicy, WorkflowIdReusePolicy, WorkflowStartOptions};

const LIFETIME_SECS: i64 = 90 * 86_400;
/// Renewal times are spread over this window around "now"; `--due-permille` of it lies in the
/// past.
const SPREAD_SECS: i64 = 60 * 86_400;

/// Where `--pg-url` may come from instead, so the password stays out of `ps`.
const PG_URL_ENV: &str = "CERTPOOL_BENCH_PG_URL";

/// Inventory backends the scan is measured on: each has its own seeding and an `Inventory` to
/// open; the measurement itself only sees the trait.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
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
    /// PostgreSQL server for `--backend postgres` (a role that may create schemas); each seeded
    /// inventory is a schema of its own there.
    #[arg(long, env = PG_URL_ENV, hide_env_values = true)]
    pg_url: Option<String>,
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

/// One synthetic inventory row; both backends load the same rows.
struct SynthRow<'a> {
    id: String,
    pool: String,
    der: &'a DerInfo,
    serial: String,
    not_before: i64,
    state: &'static str,
    renew_at: i64,
}

fn synth_row<'a>(a: &SeedArgs, ders: &'a [DerInfo], now: i64, i: i64, rows: i64) -> Result<SynthRow<'a>> {
    let der = &ders[usize::try_from(i)? % ders.len()];
    // A permutation of 0..rows (7919 is prime), so renewal times are spread evenly but
    // not in id order.
    let u = (i * 7919) % rows;
    let renew_at = now - SPREAD_SECS * a.due_permille / 1000 + SPREAD_SECS * u / rows;
    Ok(SynthRow {
        id: format!("scan{}-{i:08}", a.rows),
        pool: format!("scan-pool-{}", i % 50),
        der,
        serial: format!("{}{i:08x}", der.serial),
        not_before: renew_at - LIFETIME_SECS * 2 / 3,
        state: if i % 10 == 0 { "pooled" } else { "assigned" },
        renew_at,
    })
}

async fn open(a: &SeedArgs) -> Result<Box<dyn Inventory>> {
    match a.backend {
        Backend::Sqlite => Ok(Box::new(
            SqliteInventory::open(&inventory_path(a), EventSettings::default()).map_err(|f| anyhow!(f.message))?,
        )),
        Backend::Postgres => {
            let inv = pg_inventory(a)?;
            // The first call would migrate (here: find the schema current); SQLite does that in
            // its open, so neither backend's first scan pays for it.
            inv.migrate().await.map_err(|f| anyhow!(f.message))?;
            Ok(Box::new(inv))
        }
    }
}

pub(crate) async fn seed(a: &SeedArgs) -> Result<()> {
    match a.backend {
        Backend::Sqlite => seed_sqlite(a),
        Backend::Postgres => seed_postgres(a).await,
    }
}

/// Bytes the inventory takes: the SQLite file, or the schema's tables with their indexes and
/// TOAST in PostgreSQL.
async fn db_bytes(a: &SeedArgs) -> Result<u64> {
    match a.backend {
        Backend::Sqlite => Ok(std::fs::metadata(inventory_path(a))?.len()),
        Backend::Postgres => {
            let mut conn = PgConnection::connect(pg_url(a)?).await?;
            let bytes: i64 = sqlx::query_scalar(
                "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint FROM pg_class c \
                 JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relkind = 'r'",
            )
            .bind(pg_schema(a))
            .fetch_one(&mut conn)
            .await?;
            conn.close().await?;
            Ok(u64::try_from(bytes)?)
        }
    }
}

fn pg_url(a: &SeedArgs) -> Result<&str> {
    a.pg_url
        .as_deref()
        .with_context(|| format!("--backend postgres needs --pg-url or {PG_URL_ENV}"))
}

/// One schema per seeded inventory, like one SQLite file each.
fn pg_schema(a: &SeedArgs) -> String {
    format!("scan_{}_{}_{}", a.rows, a.distinct_der, a.due_permille)
}

fn pg_inventory(a: &SeedArgs) -> Result<PostgresInventory> {
    // `url` is only read by the worker's config loading; `open` takes the resolved URL.
    let cfg: PostgresInventoryConfig = serde_json::from_value(serde_json::json!({
        "url": { "env": PG_URL_ENV },
        "schema": pg_schema(a),
    }))
    .context("postgres inventory config")?;
    PostgresInventory::open(pg_url(a)?, &cfg, EventSettings::default()).map_err(|f| anyhow!(f.message))
}

/// A field of COPY's text format.
fn copy_text(out: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
}

/// A `TEXT[]` literal with every element quoted, so SANs need no further thought.
fn pg_array(items: &[String]) -> String {
    let quoted: Vec<String> = items
        .iter()
        .map(|s| format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\"")))
        .collect();
    format!("{{{}}}", quoted.join(","))
}

/// The schema comes from the inventory's own migrations (same tables and indexes as a worker
/// gets), the rows through COPY, which is what a bulk load into PostgreSQL would use. A marker
/// table written last says the schema holds a complete seeding of this size; without it the
/// schema is dropped and seeded again.
async fn seed_postgres(a: &SeedArgs) -> Result<()> {
    std::fs::create_dir_all(&a.cache_dir)?;
    let schema = pg_schema(a);
    let rows = i64::try_from(a.rows)?;
    let mut conn = PgConnection::connect(pg_url(a)?)
        .await
        .context("connect to PostgreSQL")?;
    let seeded: Option<i64> = sqlx::query_scalar(&format!("SELECT rows FROM {schema}.bench_seeded"))
        .fetch_optional(&mut conn)
        .await
        .ok()
        .flatten();
    if seeded == Some(rows) {
        eprintln!("scan: using cached PostgreSQL schema {schema}");
        return Ok(());
    }
    let ders = ders(&a.cache_dir, a.distinct_der)?;
    let started = Instant::now();
    conn.execute(format!("DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}").as_str())
        .await?;
    let inv = pg_inventory(a)?;
    inv.migrate().await.map_err(|f| anyhow!(f.message))?;
    drop(inv);
    let now = now_unix();
    let mut copy = conn
        .copy_in_raw(&format!(
            "COPY {schema}.certificates (id, pool, sans, serial, issuer, not_before, not_after, state, ca, key_ref, \
             chain_ref, created_at, renew_at) FROM STDIN"
        ))
        .await?;
    let mut buf = String::with_capacity(1 << 21);
    for i in 0..rows {
        let r = synth_row(a, &ders, now, i, rows)?;
        for field in [r.id.as_str(), &r.pool, &pg_array(&r.der.sans), &r.serial, &r.der.issuer] {
            copy_text(&mut buf, field);
            buf.push('\t');
        }
        let _ = writeln!(
            buf,
            "{nb}\t{na}\t{state}\tpebble\tcerts/{id}/key\tcerts/{id}/chain\t{nb}\t{renew_at}",
            nb = r.not_before,
            na = r.not_before + LIFETIME_SECS,
            state = r.state,
            id = r.id,
            renew_at = r.renew_at,
        );
        if buf.len() >= 1 << 20 {
            copy.send(std::mem::take(&mut buf).into_bytes()).await?;
        }
    }
    if !buf.is_empty() {
        copy.send(buf.into_bytes()).await?;
    }
    copy.finish().await?;
    let loaded = started.elapsed().as_secs_f64();
    // A table that was just bulk-loaded has no visibility map and unset hint bits: the first
    // reader would write them back and index-only scans would visit the heap. Autovacuum gets
    // there on its own in a running deployment; the bench measures that state, not the
    // minutes right after a load.
    conn.execute(format!("VACUUM (ANALYZE) {schema}.certificates").as_str())
        .await?;
    conn.execute(
        format!("CREATE TABLE {schema}.bench_seeded (rows BIGINT NOT NULL); INSERT INTO {schema}.bench_seeded VALUES ({rows})")
            .as_str(),
    )
    .await?;
    conn.close().await?;
    eprintln!(
        "scan: seeded {} rows in {:.1} s (COPY {loaded:.1} s, then VACUUM ANALYZE) into PostgreSQL schema {schema}",
        a.rows,
        started.elapsed().as_secs_f64(),
    );
    Ok(())
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
            let r = synth_row(a, &ders, now, i, rows)?;
            stmt.execute(rusqlite::params![
                r.id,
                r.pool,
                serde_json::to_string(&r.der.sans)?,
                r.serial,
                r.der.issuer,
                r.not_before,
                r.not_before + LIFETIME_SECS,
                r.state,
                "pebble",
                format!("certs/{}/key", r.id),
                format!("certs/{}/chain", r.id),
                r.not_before,
                r.renew_at,
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
    seed(&a.seed).await?;
    let db_bytes = db_bytes(&a.seed).await?;
    let cpu0 = proc_cpu_secs("self")?;
    let inv = open(&a.seed).await?;
    let inv = inv.as_ref();
    let now = now_unix();
    let mut r = ScanResult {
        rows: a.seed.rows,
        backend: a.seed.backend.name().into(),
        distinct_der: a.seed.distinct_der,
        db_bytes,
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
