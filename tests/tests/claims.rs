//! Claims against a real Temporal dev server, pebble and BIND.

#![allow(clippy::unwrap_used)]

use anyhow::{Result, anyhow};
use certpool::client::{CertpoolClient, ClaimError};
use certpool::fill::{self, FillResult};
use certpool_domain::contracts::{AssignRequest, ClaimDeskInput};
use certpool_domain::plugins::CertFilter;
use certpool_tests::{Setup, WorkerGuard, ZONE, setup, unique_label};
use certpool_workflows::PoolClaims;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};
use temporalio_client::{
    WorkflowDescribeOptions, WorkflowExecuteUpdateOptions, WorkflowExecutionStatus, WorkflowStartOptions,
};

fn pool_toml(pool: &str, cloud: &str, size: u32, on_empty: &str, directory: Option<&str>) -> String {
    let _ = directory;
    format!(
        r#"
[schemes.regional]
sans = ["*.{{region}}.{{cloud}}.{ZONE}", "{{region}}.{{cloud}}.{ZONE}"]

[pools.{pool}]
scheme = "regional"
cloud = "{cloud}"
region = "r1"
target_size = {size}
min_remaining_lifetime = "1d"
ca = "pebble"
dns = "bind"
on_empty = "{on_empty}"
claim_timeout = "60s"
fill_concurrency = 8
"#
    )
}

async fn fill_pool(setup: &Setup, pool: &str) -> Result<()> {
    let c = certpool::temporal::connect(&setup.cfg.config.temporal, "it").await?;
    let pools = vec![pool.to_owned()];
    fill::start(&c, &setup.cfg, &pools).await?;
    match &fill::wait(&c, &pools, Some(Duration::from_secs(120)), |_| {}).await?[pool] {
        FillResult::Full(_) => Ok(()),
        FillResult::Failed(why) => Err(anyhow!("fill failed: {why}")),
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

/// 50 concurrent claims against a pool of 30, while the CA is down (so the pool cannot refill
/// mid-test): exactly 30 distinct certificates, 20 clear `pool.empty` errors, and no
/// certificate assigned twice. Claims keep being served from the pool during a CA outage.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_claims_against_thirty_never_double_assign() -> Result<()> {
    let pool = unique_label("claims-");
    let cloud = unique_label("c");
    let text = pool_toml(&pool, &cloud, 30, "fail", None);
    let good = setup("claims", None, &text)?;
    {
        let _worker = WorkerGuard::start(&good);
        fill_pool(&good, &pool).await?;
    }
    // Same inventory and secrets, but the CA is unreachable: refills cannot land while we claim.
    let outage = certpool_tests::setup_with_ca("claims", None, &text, "https://127.0.0.1:9/dir")?;
    let _worker = WorkerGuard::start(&outage);
    let client = CertpoolClient::connect(&outage.cfg.config.temporal, "it")
        .await
        .map_err(|e| anyhow!("{e}"))?;

    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..50 {
        let client = client.clone();
        let pool = pool.clone();
        tasks.spawn(async move {
            let cluster = format!("cluster-{i:02}");
            let started = Instant::now();
            let r = client.claim(&pool, &cluster, None).await;
            (cluster, r, started.elapsed())
        });
    }
    let mut certs = BTreeSet::new();
    let mut assigned = Vec::new();
    let mut empty = 0;
    while let Some(joined) = tasks.join_next().await {
        let (cluster, r, _) = joined?;
        match r {
            Ok(a) => {
                assert!(certs.insert(a.cert_id.clone()), "{} handed out twice", a.cert_id);
                assigned.push((cluster, a.cert_id));
            }
            Err(ClaimError::PoolEmpty { pool: p, message }) => {
                assert_eq!(p, pool);
                assert!(message.contains(&pool) && message.contains("target 30"), "{message}");
                empty += 1;
            }
            Err(e) => panic!("unexpected claim error: {e}"),
        }
    }
    assert_eq!((assigned.len(), empty), (30, 20));

    // Retrying a claim returns the same certificate.
    let (cluster, cert) = assigned[0].clone();
    let again = client.claim(&pool, &cluster, None).await.map_err(|e| anyhow!("{e}"))?;
    assert_eq!(again.cert_id, cert);
    assert!(!again.new);

    // The inventory agrees: 30 assignments to 30 distinct certificates, none left pooled.
    let inv = certpool_activities::inventory::from_config(
        &outage.cfg.config.inventory,
        &outage.cfg.base_dir,
        &outage.cfg.config.events,
    )
    .map_err(|f| anyhow!("{f}"))?;
    let all = inv.list(&CertFilter::default()).await.map_err(|f| anyhow!("{f}"))?;
    let assigned_rows = all
        .iter()
        .filter(|c| c.state == certpool_domain::cert::CertState::Assigned)
        .count();
    assert_eq!(assigned_rows, 30);
    let mut holders = BTreeSet::new();
    for c in all
        .iter()
        .filter(|c| c.state == certpool_domain::cert::CertState::Assigned)
    {
        let a = inv.assignments_of(&c.id).await.map_err(|f| anyhow!("{f}"))?;
        assert_eq!(a.len(), 1, "{} has {} clusters", c.id, a.len());
        assert!(holders.insert(a[0].cluster.clone()));
    }
    Ok(())
}

/// With `on_empty = "wait"`, a claim on an empty pool waits for the replenisher; warm claims are
/// fast (latency printed, not asserted: see the bench for numbers).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claim_on_empty_pool_waits_for_replenishment() -> Result<()> {
    let pool = unique_label("wait-");
    let cloud = unique_label("c");
    let setup = setup("wait", None, &pool_toml(&pool, &cloud, 2, "wait", None))?;
    let _worker = WorkerGuard::start(&setup);
    fill_pool(&setup, &pool).await?;
    let client = CertpoolClient::connect(&setup.cfg.config.temporal, "it")
        .await
        .map_err(|e| anyhow!("{e}"))?;
    let mut latencies = Vec::new();
    let mut seen = BTreeSet::new();
    for i in 0..4 {
        let started = Instant::now();
        let a = if i == 2 {
            // This claim waits for the refill; a second caller joining it with another pool
            // is refused instead of being handed this pool's certificate.
            let (c, p) = (client.clone(), pool.clone());
            let waiting = tokio::spawn(async move { c.claim(&p, "w-2", None).await });
            tokio::time::sleep(Duration::from_millis(300)).await;
            assert!(!waiting.is_finished(), "the pool should have been empty");
            // A claim for the same cluster from a pool that does not exist is refused with a
            // message naming that pool, and leaves the waiting claim alone.
            match client.claim("some-other-pool", "w-2", None).await {
                Err(ClaimError::Rejected { kind, message }) => {
                    assert_eq!(kind, "claim.unknown_pool", "{message}");
                    assert!(message.contains("some-other-pool"), "{message}");
                }
                other => panic!("claiming from an unknown pool: {other:?}"),
            }
            waiting.await?.map_err(|e| anyhow!("claim {i}: {e}"))?
        } else {
            client
                .claim(&pool, &format!("w-{i}"), None)
                .await
                .map_err(|e| anyhow!("claim {i}: {e}"))?
        };
        latencies.push(started.elapsed());
        assert!(seen.insert(a.cert_id), "distinct certificates");
    }
    latencies.sort();
    eprintln!(
        "claims: {:?} (the last two waited for replenishment)",
        latencies
            .iter()
            .map(|d| format!("{:.0}ms", d.as_secs_f64() * 1e3))
            .collect::<Vec<_>>()
    );
    let _ = percentile(&latencies, 0.5);
    Ok(())
}

/// The pool's claims workflows continue as new every few claims (2 here, 500 by default) while
/// 16 claims arrive at once: claims that reach a closing run are sent again by the client, and
/// every claim gets its own certificate. Also: a claims workflow refuses, before recording
/// anything, a claim for another pool; an unknown pool is refused and its workflow ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claims_survive_the_claims_workflows_continuing_as_new() -> Result<()> {
    let pool = unique_label("desk-");
    let cloud = unique_label("c");
    let setup = setup("desk", None, &pool_toml(&pool, &cloud, 16, "fail", None))?;
    let _worker = WorkerGuard::start(&setup);
    fill_pool(&setup, &pool).await?;
    let temporal = &setup.cfg.config.temporal;
    let client = CertpoolClient::connect(temporal, "it")
        .await
        .map_err(|e| anyhow!("{e}"))?;
    let t = client.temporal();

    // Start every claims workflow of the pool with a run length of 2.
    let mut first_runs = Vec::new();
    for shard in 0..temporal.claim_shards {
        let id = format!("claims/{pool}/{shard}");
        let h = t
            .start_workflow(
                PoolClaims::run,
                ClaimDeskInput {
                    pool: pool.clone(),
                    claims_per_run: 2,
                },
                WorkflowStartOptions::new(temporal.claims_queue(), id.clone()).build(),
            )
            .await?;
        first_runs.push((id, h.run_id().unwrap_or_default().to_owned()));
    }
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..16 {
        let (client, pool) = (client.clone(), pool.clone());
        tasks.spawn(async move { client.claim(&pool, &format!("desk-{i:02}"), None).await });
    }
    let mut certs = BTreeSet::new();
    while let Some(joined) = tasks.join_next().await {
        let a = joined?.map_err(|e| anyhow!("claim: {e}"))?;
        assert!(a.new);
        assert!(certs.insert(a.cert_id.clone()), "{} handed out twice", a.cert_id);
    }
    assert_eq!(certs.len(), 16);
    let mut continued = 0;
    for (id, first) in &first_runs {
        let now = t
            .get_workflow_handle::<PoolClaims>(id.clone())
            .describe(WorkflowDescribeOptions::default())
            .await?;
        if now.run_id() != first {
            continued += 1;
        }
    }
    assert!(continued > 0, "no claims workflow continued as new");

    // A claim for another pool sent straight to this pool's workflow: refused by the validator.
    let (id, _) = &first_runs[0];
    let refused = t
        .get_workflow_handle::<PoolClaims>(id.clone())
        .execute_update(
            PoolClaims::claim,
            AssignRequest {
                pool: "another-pool".into(),
                cluster: "x-1".into(),
                target: None,
            },
            WorkflowExecuteUpdateOptions::default(),
        )
        .await;
    let err = format!("{:?}", refused.expect_err("the validator should refuse"));
    assert!(
        err.contains("claim.wrong_workflow") && err.contains("another-pool"),
        "{err}"
    );

    // A bad cluster id is refused before anything is sent; an unknown pool by the claim, and
    // that pool's claims workflow ends instead of waiting forever.
    match client.claim(&pool, "Bad Cluster", None).await {
        Err(ClaimError::Rejected { kind, .. }) => assert_eq!(kind, "claim.bad_cluster"),
        other => panic!("bad cluster id: {other:?}"),
    }
    let unknown = unique_label("nopool-");
    match client.claim(&unknown, "x-2", None).await {
        Err(ClaimError::Rejected { kind, message }) => {
            assert_eq!(kind, "claim.unknown_pool");
            assert!(message.contains(&unknown), "{message}");
        }
        other => panic!("unknown pool: {other:?}"),
    }
    let desk = certpool_domain::contracts::workflow_ids::claim_desk(&unknown, "x-2", temporal.claim_shards);
    let deadline = Instant::now() + Duration::from_secs(10);
    let closed = loop {
        let d = t
            .get_workflow_handle::<PoolClaims>(desk.clone())
            .describe(WorkflowDescribeOptions::default())
            .await?;
        if d.status() != WorkflowExecutionStatus::Running {
            break true;
        }
        if Instant::now() > deadline {
            break false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(closed, "the unknown pool's claims workflow is still running");
    Ok(())
}

/// The worker that holds the pool's claims workflows in its cache dies without a goodbye
/// (SIGKILL): claims go on, answered by the other worker once the server gives up on the dead
/// one's sticky queue, and a repeated claim still returns the same certificate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claims_go_on_when_the_worker_holding_the_claims_workflows_is_killed() -> Result<()> {
    let pool = unique_label("kill-");
    let cloud = unique_label("c");
    let setup = setup("kill", None, &pool_toml(&pool, &cloud, 6, "fail", None))?;
    let log = std::fs::File::create(setup.path.with_extension("worker-a.log"))?;
    let mut worker_a = std::process::Command::new(env!("CARGO_BIN_EXE_certpool-test-worker"))
        .arg(&setup.path)
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()?;
    let result = async {
        fill_pool(&setup, &pool).await?;
        let client = CertpoolClient::connect(&setup.cfg.config.temporal, "it")
            .await
            .map_err(|e| anyhow!("{e}"))?;
        // Every shard's claims workflow is started and cached by worker A, the only worker.
        let mut first = None;
        for i in 0..3 {
            let a = client
                .claim(&pool, &format!("kill-{i}"), None)
                .await
                .map_err(|e| anyhow!("claim {i}: {e}"))?;
            first.get_or_insert(a);
        }
        let _b = WorkerGuard::start(&setup);
        worker_a.kill()?;
        worker_a.wait()?;
        let started = Instant::now();
        let mut certs = BTreeSet::new();
        for i in 3..6 {
            let a = client
                .claim(&pool, &format!("kill-{i}"), None)
                .await
                .map_err(|e| anyhow!("claim {i} after the kill: {e}"))?;
            assert!(a.new && certs.insert(a.cert_id));
        }
        let first = first.ok_or_else(|| anyhow!("no first claim"))?;
        let again = client
            .claim(&pool, &first.cluster, None)
            .await
            .map_err(|e| anyhow!("repeated claim: {e}"))?;
        assert_eq!((again.cert_id.as_str(), again.new), (first.cert_id.as_str(), false));
        eprintln!(
            "3 claims and a repeat after the kill took {:.1} s",
            started.elapsed().as_secs_f64()
        );
        anyhow::Ok(())
    }
    .await;
    let _ = worker_a.kill();
    let _ = worker_a.wait();
    result
}
