//! `certpool`: keeps a platform's TLS certificates issued, pooled and ready.

use anyhow::{Context, Result, anyhow};
use certpool::fill::{self, FillResult};
use certpool::report::{self, PoolStatusRow};
use certpool::worker::WorkerSettings;
use certpool_activities::inventory;
use certpool_domain::config::LoadedConfig;
use certpool_domain::plugins::CertFilter;
use clap::{Parser, Subcommand, ValueEnum};
use serde::Serialize;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

/// certpool issues TLS certificates over ACME DNS-01 ahead of demand, keeps them in per-region
/// pools, and hands them out in milliseconds. All orchestration runs as Temporal workflows.
#[derive(Debug, Parser)]
#[command(name = "certpool", version, about, long_about = None)]
struct Cli {
    /// Configuration file (TOML).
    #[arg(short, long, env = "CERTPOOL_CONFIG", default_value = "certpool.toml", global = true)]
    config: PathBuf,
    /// Log format on stderr.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
enum Output {
    Table,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a worker: executes certpool's workflows and activities. Run as many as you like.
    Worker,
    /// Pools: fill them and see how full they are.
    #[command(subcommand)]
    Pools(PoolsCommand),
    /// Certificates in the inventory.
    #[command(subcommand)]
    Certs(CertsCommand),
    /// Claim a ready certificate of a pool for a cluster (idempotent per cluster).
    Claim {
        /// Pool to claim from.
        #[arg(long)]
        pool: String,
        /// Cluster id.
        #[arg(long)]
        cluster: String,
        /// Cluster target (default: the pool's).
        #[arg(long)]
        target: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Output::Table)]
        output: Output,
    },
    /// Renew a certificate now (operator-forced), and wait for the renewal.
    Renew {
        /// Certificate id.
        id: String,
        /// Renew now even if it is not due (required: renewal is otherwise automatic).
        #[arg(long)]
        now: bool,
    },
    /// The expiry scan's Temporal Schedule.
    #[command(subcommand)]
    Schedules(SchedulesCommand),
    /// Print each pool's materialized SAN list. Validates the config; touches nothing.
    Plan {
        /// Output format.
        #[arg(long, value_enum, default_value_t = Output::Table)]
        output: Output,
    },
}

#[derive(Debug, Subcommand)]
enum PoolsCommand {
    /// Start (or join) the fill of pools up to their target size.
    Fill {
        /// Pool to fill; repeat for several. Default: every pool.
        #[arg(long = "pool")]
        pools: Vec<String>,
        /// Follow progress until the pools are full or the fill fails.
        #[arg(long)]
        wait: bool,
        /// With --wait: give up after this long (e.g. 5m).
        #[arg(long)]
        timeout: Option<certpool_domain::Duration>,
    },
    /// Table of pool, target, ready, in flight and soonest expiry.
    Status {
        /// Output format.
        #[arg(long, value_enum, default_value_t = Output::Table)]
        output: Output,
    },
}

#[derive(Debug, Subcommand)]
enum SchedulesCommand {
    /// Create or update the expiry-scan schedule from `[scan]` (interval, jitter; overlap: skip).
    Apply,
    /// Schedules and their next runs.
    List {
        /// Output format.
        #[arg(long, value_enum, default_value_t = Output::Table)]
        output: Output,
    },
}

#[derive(Debug, Subcommand)]
enum CertsCommand {
    /// SANs, serial, validity, issuer, renewal state, clusters and delivery per cluster.
    Show {
        /// Certificate id.
        id: String,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Output::Table)]
        output: Output,
    },
    /// Id, pool, SANs, serial, expiry and state of every certificate, soonest expiry first.
    List {
        /// Only this pool.
        #[arg(long)]
        pool: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Output::Table)]
        output: Output,
    },
}

fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,temporalio_sdk_core=warn,temporalio_sdk=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Opens the inventory for a read-mostly CLI command. Refuses to create one: on a host that is
/// not the worker's, an empty new database would report empty pools instead of an error.
fn open_inventory(cfg: &LoadedConfig) -> Result<Arc<dyn certpool_domain::plugins::Inventory>> {
    match &cfg.config.inventory {
        certpool_domain::config::InventoryConfig::Sqlite { path } => {
            let path = cfg.resolve(path);
            if !path.exists() {
                return Err(anyhow!(
                    "no inventory at {} (run this on the worker's host, or fill a pool first)",
                    path.display()
                ));
            }
        }
        // A shared server: there is no wrong host to run this on.
        certpool_domain::config::InventoryConfig::Postgres(_) => {}
    }
    inventory::from_config(&cfg.config.inventory, &cfg.base_dir, &cfg.config.events).map_err(|f| anyhow!("{f}"))
}

fn print_json<T: Serialize>(value: &T) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.log_format);
    match run(cli).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<ExitCode> {
    let cfg = certpool::load_config(&cli.config)?;
    match cli.command {
        Command::Worker => {
            certpool::worker::run(cfg, WorkerSettings::default(), async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Plan { output } => plan(&cfg, output),
        Command::Claim {
            pool,
            cluster,
            target,
            output,
        } => {
            let client = certpool::client::CertpoolClient::connect(&cfg.config.temporal, "certpool-cli").await?;
            let started = std::time::Instant::now();
            let a = client.claim(&pool, &cluster, target.as_deref()).await?;
            let took = started.elapsed();
            match output {
                Output::Json => print_json(&a)?,
                Output::Table => {
                    println!(
                        "cluster {} -> certificate {} (serial {}, expires {}){}",
                        a.cluster,
                        a.cert_id,
                        a.serial,
                        report::rfc3339(a.not_after),
                        if a.new { "" } else { " [already assigned]" }
                    );
                    println!("  SANs: {}", a.sans.join(", "));
                    println!("  key: {}  chain: {}", a.key_ref, a.chain_ref);
                    eprintln!(
                        "claimed in {:.1} ms (an update to the workflow {})",
                        took.as_secs_f64() * 1e3,
                        certpool_domain::contracts::workflow_ids::claim_desk(
                            &pool,
                            &cluster,
                            cfg.config.temporal.claim_shards
                        )
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Renew { id, now } => {
            if !now {
                return Err(anyhow!("renewal is automatic; pass --now to force one for {id}"));
            }
            let inv = open_inventory(&cfg)?;
            let cert = inv
                .get(&id)
                .await
                .map_err(|f| anyhow!("{f}"))?
                .ok_or_else(|| anyhow!("no certificate {id}"))?;
            let client = certpool::temporal::connect(&cfg.config.temporal, "certpool-cli").await?;
            let wf_id = certpool_domain::contracts::workflow_ids::renewal(&cert.id, cert.not_after);
            let handle = client
                .start_workflow(
                    certpool_workflows::CertificateRenewal::run,
                    certpool_domain::contracts::RenewalRequest {
                        cert_id: cert.id.clone(),
                    },
                    temporalio_client::WorkflowStartOptions::new(cfg.config.temporal.task_queue.clone(), wf_id.clone())
                        .id_conflict_policy(temporalio_client::WorkflowIdConflictPolicy::UseExisting)
                        .id_reuse_policy(temporalio_client::WorkflowIdReusePolicy::AllowDuplicateFailedOnly)
                        .build(),
                )
                .await
                .with_context(|| format!("starting {wf_id}"))?;
            eprintln!("renewing {id} ({wf_id}) ...");
            let outcome = handle
                .get_result(Default::default())
                .await
                .map_err(|e| anyhow!("renewal of {id} failed: {e}"))?;
            println!(
                "{} renewed as {} for {} cluster(s){}",
                outcome.predecessor,
                outcome.successor,
                outcome.clusters.len(),
                if outcome.all_synced {
                    ""
                } else {
                    " (not every cluster acknowledged within the grace period)"
                }
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Schedules(SchedulesCommand::Apply) => {
            let client = certpool::temporal::connect(&cfg.config.temporal, "certpool-cli").await?;
            let created = certpool::schedules::apply(&client, &cfg).await?;
            println!(
                "{} schedule {} (every {}, jitter {}, overlap: skip)",
                if created { "created" } else { "updated" },
                certpool_domain::contracts::workflow_ids::EXPIRY_SCAN_SCHEDULE,
                cfg.config.scan.interval,
                cfg.config.scan.jitter
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Schedules(SchedulesCommand::List { output }) => {
            let client = certpool::temporal::connect(&cfg.config.temporal, "certpool-cli").await?;
            let rows = certpool::schedules::list(&client).await?;
            match output {
                Output::Json => print_json(&rows)?,
                Output::Table => {
                    let body: Vec<Vec<String>> = rows
                        .iter()
                        .map(|r| vec![r.id.clone(), r.workflow_type.clone(), r.next_runs.join(", ")])
                        .collect();
                    print!("{}", report::table(&["SCHEDULE", "WORKFLOW", "NEXT RUNS"], &body));
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Certs(CertsCommand::Show { id, output }) => {
            let inv = open_inventory(&cfg)?;
            let cert = inv
                .get(&id)
                .await
                .map_err(|f| anyhow!("{f}"))?
                .ok_or_else(|| anyhow!("no certificate {id}"))?;
            let mut clusters = Vec::new();
            for a in inv.assignments_of(&id).await.map_err(|f| anyhow!("{f}"))? {
                let d = inv.delivery(&a.cluster).await.map_err(|f| anyhow!("{f}"))?;
                clusters.push(serde_json::json!({
                    "cluster": a.cluster,
                    "target": a.target,
                    "assigned_at": report::rfc3339(a.assigned_at),
                    "delivered_serial": d.as_ref().map(|d| d.serial.clone()),
                    "delivered_cert": d.as_ref().map(|d| d.cert_id.clone()),
                    "verified": d.as_ref().map(|d| d.verified),
                    "in_sync": d.as_ref().is_some_and(|d| d.cert_id == id),
                }));
            }
            let doc = serde_json::json!({
                "id": cert.id, "pool": cert.pool, "state": cert.state, "sans": cert.sans, "serial": cert.serial,
                "issuer": cert.issuer, "not_before": report::rfc3339(cert.not_before),
                "not_after": report::rfc3339(cert.not_after), "renew_at": report::rfc3339(cert.renew_at),
                "renewal_error": cert.renewal_error, "successor": cert.successor_id, "predecessor": cert.predecessor_id,
                "key_ref": cert.key_ref, "chain_ref": cert.chain_ref, "clusters": clusters,
            });
            match output {
                Output::Json => print_json(&doc)?,
                Output::Table => {
                    for (k, v) in doc.as_object().into_iter().flatten() {
                        if k != "clusters" {
                            println!("{k:<14} {}", v.as_str().map_or_else(|| v.to_string(), str::to_owned));
                        }
                    }
                    println!("clusters:");
                    for c in &clusters {
                        println!("  {c}");
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Pools(PoolsCommand::Fill { pools, wait, timeout }) => fill_pools(cfg, pools, wait, timeout).await,
        Command::Pools(PoolsCommand::Status { output }) => {
            let rows = pool_status(&cfg).await?;
            match output {
                Output::Json => print_json(&rows)?,
                Output::Table => print!("{}", report::pools_table(&rows)),
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Certs(CertsCommand::List { pool, output }) => {
            let inv = open_inventory(&cfg)?;
            let certs = inv
                .list(&CertFilter { pool, limit: None })
                .await
                .map_err(|f| anyhow!("{f}"))?;
            match output {
                Output::Json => print_json(&report::cert_rows(&certs))?,
                Output::Table => print!("{}", report::certs_table(&certs)),
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn plan(cfg: &LoadedConfig, output: Output) -> Result<ExitCode> {
    #[derive(Serialize)]
    struct PlanRow<'a> {
        pool: &'a str,
        scheme: &'a str,
        target_size: u32,
        ca: &'a str,
        dns: &'a str,
        sans: &'a [String],
    }
    let rows: Vec<PlanRow<'_>> = cfg
        .pools
        .values()
        .map(|p| PlanRow {
            pool: &p.name,
            scheme: &p.scheme,
            target_size: p.target_size,
            ca: &p.ca,
            dns: &p.dns,
            sans: &p.sans,
        })
        .collect();
    match output {
        Output::Json => print_json(&rows)?,
        Output::Table => {
            for r in &rows {
                println!(
                    "pool {} (scheme {}, target {}, ca {}, dns {}): {} SANs",
                    r.pool,
                    r.scheme,
                    r.target_size,
                    r.ca,
                    r.dns,
                    r.sans.len()
                );
                for s in r.sans {
                    println!("  {s}");
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn pool_status(cfg: &LoadedConfig) -> Result<Vec<PoolStatusRow>> {
    let inv = open_inventory(cfg)?;
    // Fill progress is best effort: status must work when Temporal is down.
    let client = certpool::temporal::connect(&cfg.config.temporal, "certpool-cli")
        .await
        .ok();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    let mut rows = Vec::new();
    for pool in cfg.pools.values() {
        let min = i64::try_from(pool.min_remaining_lifetime.get().as_secs()).unwrap_or(i64::MAX);
        let level = inv.pool_level(&pool.name, now, min).await.map_err(|f| anyhow!("{f}"))?;
        let progress = match &client {
            Some(c) => fill::progress(c, &pool.name).await,
            None => None,
        };
        rows.push(PoolStatusRow {
            pool: pool.name.clone(),
            target: pool.target_size,
            ready: level.ready,
            in_flight: progress.as_ref().map_or(0, |p| p.in_flight),
            soonest_expiry: level.soonest_expiry.map(report::rfc3339),
            last_error: progress.and_then(|p| p.last_error),
        });
    }
    Ok(rows)
}

async fn fill_pools(
    cfg: Arc<LoadedConfig>,
    pools: Vec<String>,
    wait: bool,
    timeout: Option<certpool_domain::Duration>,
) -> Result<ExitCode> {
    let pools = if pools.is_empty() {
        cfg.pools.keys().cloned().collect()
    } else {
        pools
    };
    if pools.is_empty() {
        return Err(anyhow!("the config defines no pools"));
    }
    let client = certpool::temporal::connect(&cfg.config.temporal, "certpool-cli").await?;
    fill::start(&client, &cfg, &pools).await?;
    if let Some(ui) = &cfg.config.temporal.ui_address {
        eprintln!(
            "filling {} pool(s); follow the workflows at {ui}/namespaces/{}/workflows",
            pools.len(),
            cfg.config.temporal.namespace
        );
    }
    if !wait {
        for p in &pools {
            println!("started {}", certpool_domain::pool::replenish_workflow_id(p));
        }
        return Ok(ExitCode::SUCCESS);
    }
    let started = std::time::Instant::now();
    let mut last_line = String::new();
    let results = fill::wait(&client, &pools, timeout.map(|t| t.get()), |seen| {
        let line = seen
            .values()
            .map(|p| {
                format!(
                    "{}: {}/{} ready, {} in flight, {} failed",
                    p.pool, p.ready, p.target, p.in_flight, p.counters.failed
                )
            })
            .collect::<Vec<_>>()
            .join(" | ");
        if !line.is_empty() && line != last_line {
            eprintln!("[{:>5.1}s] {line}", started.elapsed().as_secs_f64());
            last_line = line;
        }
    })
    .await
    .context("following the fill")?;
    let mut failed = false;
    for (pool, r) in &results {
        match r {
            FillResult::Full(o) => eprintln!(
                "pool {pool}: full ({}/{} ready, {} issued in this fill) after {:.1}s",
                o.ready,
                o.target,
                o.counters.issued,
                started.elapsed().as_secs_f64()
            ),
            FillResult::Failed(why) => {
                failed = true;
                eprintln!("pool {pool}: FAILED: {why}");
            }
        }
    }
    let rows = pool_status(&cfg).await?;
    print!("{}", report::pools_table(&rows));
    Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}
