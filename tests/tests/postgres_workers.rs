//! Two workers sharing one PostgreSQL inventory, against the real Temporal dev server, pebble and
//! BIND: the worker wiring of the `postgres` inventory end to end.

#![allow(clippy::unwrap_used)]

use anyhow::{Result, anyhow};
use certpool::client::{CertpoolClient, ClaimError};
use certpool::fill::{self, FillResult};
use certpool_domain::cert::CertState;
use certpool_domain::plugins::CertFilter;
use certpool_tests::{WorkerGuard, ZONE, setup_full, stack, unique_label};
use std::collections::BTreeSet;
use std::time::Duration;

/// A pool of 6 filled through a worker whose inventory is PostgreSQL; then, with the CA
/// unreachable so nothing refills, two workers on the same database serve 12 concurrent claims:
/// exactly 6 distinct certificates and 6 `pool.empty`, and the database agrees.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_share_a_postgres_inventory() -> Result<()> {
    let pg = tokio::task::spawn_blocking(certpool_tests::postgres::server).await?;
    let db = pg.create_database("workers_").await?;
    let pool = unique_label("pg-");
    let cloud = unique_label("c");
    let pools = format!(
        r#"
[schemes.regional]
sans = ["*.{{region}}.{{cloud}}.{ZONE}", "{{region}}.{{cloud}}.{ZONE}"]

[pools.{pool}]
scheme = "regional"
cloud = "{cloud}"
region = "r1"
target_size = 6
min_remaining_lifetime = "1d"
ca = "pebble"
dns = "bind"
on_empty = "fail"
"#
    );
    let inventory = format!(
        "[inventory]\ntype = \"postgres\"\nurl = {{ value = \"{}\" }}\nmax_connections = 4\n",
        pg.admin_url(&db)
    );
    let good = setup_full("pgworkers", None, &pools, &stack().pebble_directory, &inventory)?;
    {
        let _worker = WorkerGuard::start(&good);
        let c = certpool::temporal::connect(&good.cfg.config.temporal, "it").await?;
        let names = vec![pool.clone()];
        fill::start(&c, &good.cfg, &names).await?;
        match &fill::wait(&c, &names, Some(Duration::from_secs(120)), |_| {}).await?[&pool] {
            FillResult::Full(_) => {}
            FillResult::Failed(why) => return Err(anyhow!("fill failed: {why}")),
        }
    }
    let outage = setup_full("pgworkers", None, &pools, "https://127.0.0.1:9/dir", &inventory)?;
    let _w1 = WorkerGuard::start(&outage);
    let _w2 = WorkerGuard::start(&outage);
    let client = CertpoolClient::connect(&outage.cfg.config.temporal, "it")
        .await
        .map_err(|e| anyhow!("{e}"))?;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..12 {
        let client = client.clone();
        let pool = pool.clone();
        tasks.spawn(async move { client.claim(&pool, &format!("pgc-{i:02}"), None).await });
    }
    let mut certs = BTreeSet::new();
    let mut empty = 0;
    while let Some(r) = tasks.join_next().await {
        match r? {
            Ok(a) => assert!(certs.insert(a.cert_id.clone()), "{} handed out twice", a.cert_id),
            Err(ClaimError::PoolEmpty { .. }) => empty += 1,
            Err(e) => panic!("unexpected claim error: {e}"),
        }
    }
    assert_eq!((certs.len(), empty), (6, 6));

    let inv = certpool_activities::inventory::from_config(
        &outage.cfg.config.inventory,
        &outage.cfg.base_dir,
        &outage.cfg.config.events,
    )
    .map_err(|f| anyhow!("{f}"))?;
    let all = inv
        .list(&CertFilter {
            pool: Some(pool.clone()),
            limit: None,
        })
        .await
        .map_err(|f| anyhow!("{f}"))?;
    let assigned: BTreeSet<String> = all
        .iter()
        .filter(|c| c.state == CertState::Assigned)
        .map(|c| c.id.clone())
        .collect();
    assert_eq!(assigned, certs);
    Ok(())
}
