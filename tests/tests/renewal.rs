//! The whole lifecycle after the pool, with no manual step: a claimed certificate is renewed by
//! the scheduled expiry scan and nginx ends up serving the new serial, while the cluster target
//! and the event sink are down for part of the time.

#![allow(clippy::unwrap_used)]

use anyhow::{Result, anyhow, bail};
use certpool::client::CertpoolClient;
use certpool::fill::{self, FillResult};
use certpool_activities::targets::verify::served_serial;
use certpool_domain::cert::CertState;
use certpool_tests::nats::NatsServer;
use certpool_tests::nginx::Nginx;
use certpool_tests::{WorkerGuard, ZONE, setup_full, stack_with_validity, unique_label};
use std::time::{Duration, Instant};

/// pebble's certificate lifetime in this binary.
const VALIDITY: u64 = 120;

async fn until<T>(what: &str, timeout: Duration, mut f: impl AsyncFnMut() -> Result<Option<T>>) -> Result<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f().await? {
            return Ok(v);
        }
        if Instant::now() > deadline {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduled_scan_renews_and_nginx_serves_the_new_serial_despite_outages() -> Result<()> {
    let stack = stack_with_validity(VALIDITY);
    let cluster = "edge-1";
    let nginx = Nginx::start(cluster)?;
    let mut nats = NatsServer::start()?;
    let pool = unique_label("renew-");
    let cloud = unique_label("c");
    let flags = tempfile::tempdir()?;
    let down = flags.path().join("target-down");
    // The reload fails while the flag file exists: a cluster target that is down.
    let reload = format!(
        "test ! -e '{}' && exec {}",
        down.display(),
        nginx
            .reload_command()
            .iter()
            .map(|a| format!("'{a}'"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    let pools = format!(
        r#"
[schemes.regional]
sans = ["{{region}}.{{cloud}}.{ZONE}", "*.{{region}}.{{cloud}}.{ZONE}"]

[pools.{pool}]
scheme = "regional"
cloud = "{cloud}"
region = "r1"
target_size = 1
min_remaining_lifetime = "20s"
ca = "pebble"
dns = "bind"
target = "edge"
"#
    );
    let extra = format!(
        r#"
[renewal]
renew_before = "90s"
grace_period = "8s"
max_attempts = 3

[scan]
interval = "3s"
jitter = "0s"

[targets.edge]
type = "files"
dir = "{dir}"
reload_command = ["sh", "-c", "{reload}"]
verify_endpoint = "{endpoint}"
verify_timeout = "20s"

[events]
source = "urn:certpool:it"

[events.sinks.bus]
type = "nats"
url = "{nats}"
stream = "CERTPOOL_IT"
subject_prefix = "certpool"
"#,
        dir = nginx.cert_dir.display(),
        reload = reload.replace('"', "\\\""),
        endpoint = nginx.endpoint(),
        nats = nats.url(),
    );
    let setup = setup_full("renewal", None, &pools, &stack.pebble_directory, &extra)?;
    let _worker = WorkerGuard::start(&setup);
    let temporal = certpool::temporal::connect(&setup.cfg.config.temporal, "it").await?;
    let inv = certpool_activities::inventory::from_config(
        &setup.cfg.config.inventory,
        &setup.cfg.base_dir,
        &setup.cfg.config.events,
    )
    .map_err(|f| anyhow!("{f}"))?;

    // Fill, claim, and see nginx serve the claimed certificate.
    fill::start(&temporal, &setup.cfg, std::slice::from_ref(&pool)).await?;
    if let FillResult::Failed(why) = &fill::wait(
        &temporal,
        std::slice::from_ref(&pool),
        Some(Duration::from_secs(60)),
        |_| {},
    )
    .await?[&pool]
    {
        bail!("fill failed: {why}");
    }
    let client = CertpoolClient::connect(&setup.cfg.config.temporal, "it")
        .await
        .map_err(|e| anyhow!("{e}"))?;
    let first = client.claim(&pool, cluster, None).await.map_err(|e| anyhow!("{e}"))?;
    let endpoint = nginx.endpoint();
    until(
        "nginx to serve the claimed certificate",
        Duration::from_secs(30),
        async || {
            Ok(
                (served_serial(&endpoint, None, Duration::from_secs(2)).await.ok() == Some(first.serial.clone()))
                    .then_some(()),
            )
        },
    )
    .await?;
    until("the delivery record", Duration::from_secs(10), async || {
        Ok(inv
            .delivery(cluster)
            .await
            .map_err(|f| anyhow!("{f}"))?
            .filter(|d| d.serial == first.serial && d.verified))
    })
    .await?;

    // From here the target is down and so is the event sink; the scan runs every 3 s.
    std::fs::write(&down, b"")?;
    nats.stop()?;
    certpool::schedules::apply(&temporal, &setup.cfg).await?;
    let successor = until("the scheduled renewal", Duration::from_secs(VALIDITY), async || {
        Ok(inv
            .get(&first.cert_id)
            .await
            .map_err(|f| anyhow!("{f}"))?
            .and_then(|c| c.successor_id))
    })
    .await?;
    let new = inv.get(&successor).await.map_err(|f| anyhow!("{f}"))?.unwrap();
    assert_ne!(new.serial, first.serial);
    assert_eq!(new.sans, first.sans, "same SANs");
    assert_eq!(new.state, CertState::Assigned);
    assert_eq!(
        inv.assignment(cluster)
            .await
            .map_err(|f| anyhow!("{f}"))?
            .unwrap()
            .cert_id,
        successor
    );
    // The renewal completes (predecessor retired after the grace period) although the target is down.
    until("the predecessor to retire", Duration::from_secs(30), async || {
        Ok(inv
            .get(&first.cert_id)
            .await
            .map_err(|f| anyhow!("{f}"))?
            .filter(|c| c.state == CertState::Retired))
    })
    .await?;
    assert_eq!(
        served_serial(&endpoint, None, Duration::from_secs(2))
            .await
            .map_err(|f| anyhow!("{f}"))?,
        first.serial,
        "nginx still serves the old certificate while the target is down"
    );

    // The target comes back: delivery is retried until nginx serves the new serial.
    std::fs::remove_file(&down)?;
    until(
        "nginx to serve the renewed certificate",
        Duration::from_secs(90),
        async || {
            Ok(
                (served_serial(&endpoint, None, Duration::from_secs(2)).await.ok() == Some(new.serial.clone()))
                    .then_some(()),
            )
        },
    )
    .await?;
    until("the renewed delivery record", Duration::from_secs(30), async || {
        Ok(inv
            .delivery(cluster)
            .await
            .map_err(|f| anyhow!("{f}"))?
            .filter(|d| d.serial == new.serial && d.verified))
    })
    .await?;

    // Overlapping scans ran while the renewal was in progress, and started exactly one renewal.
    let listed = stack.temporal_cli(&[
        "workflow",
        "list",
        "--query",
        &format!(
            "WorkflowType = 'CertificateRenewal' AND TaskQueue = '{}'",
            setup.cfg.config.temporal.task_queue
        ),
        "--output",
        "json",
    ])?;
    let renewals: Vec<serde_json::Value> = serde_json::from_str(&listed).unwrap_or_default();
    let of_first: Vec<_> = renewals
        .iter()
        .filter(|w| {
            w["execution"]["workflowId"]
                .as_str()
                .is_some_and(|id| id.contains(&first.cert_id))
        })
        .collect();
    assert_eq!(
        of_first.len(),
        1,
        "one renewal of the claimed certificate: {of_first:?}"
    );

    // The sink comes back: nothing was lost.
    nats.start_again()?;
    let wanted = [
        "certificate.issued",
        "certificate.assigned",
        "certificate.renewed",
        "certificate.delivered",
    ];
    let url = nats.url();
    let types = until("all events in JetStream", Duration::from_secs(60), async || {
        let msgs = certpool_activities::events::nats::read_stream(&url, "CERTPOOL_IT", 1000).await;
        let Ok(msgs) = msgs else { return Ok(None) };
        let types: Vec<String> = msgs
            .iter()
            .filter_map(|m| serde_json::from_slice::<serde_json::Value>(m).ok())
            .filter_map(|v| v["type"].as_str().map(str::to_owned))
            .collect();
        Ok(wanted
            .iter()
            .all(|w| types.iter().any(|t| t.ends_with(w)))
            .then_some(types))
    })
    .await?;
    let renewed = types.iter().filter(|t| t.ends_with("certificate.renewed")).count();
    assert!(renewed >= 1, "{types:?}");
    Ok(())
}
