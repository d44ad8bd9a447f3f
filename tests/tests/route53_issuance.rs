//! DNS-01 end to end through Route 53: a pool fills with certificates whose challenges the
//! `route53` provider wrote into moto, pebble validated through a small authoritative DNS server
//! that answers from moto's record sets (`certpool_tests::route53_bridge`), and the propagation
//! check queried the same server.

#![allow(clippy::unwrap_used)]

use anyhow::Result;
use certpool::fill::{self, FillResult};
use certpool_tests::dns_suite::DnsBackend;
use certpool_tests::moto::moto_open;
use certpool_tests::route53_backend::Route53Backend;
use certpool_tests::{WorkerGuard, route53_bridge, setup_full, stack, txt_values_sync, unique_label};
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pool_fills_through_route53_and_pebble_validates_through_its_records() -> Result<()> {
    let started = Instant::now();
    let m = moto_open();
    let zone = format!("{}.r53.test", unique_label("e2e"));
    let zone_id = m.create_zone(&zone).await?;
    // A zone that is a suffix of ours: the provider must pick the longest one.
    m.create_zone("r53.test").await.ok();
    let bridge = route53_bridge::start(m)?;
    let pebble = stack().extra_pebble("pebble-r53", &bridge.addr)?;

    let pool = unique_label("r53-");
    let schemes_and_pools = format!(
        r#"
[schemes.regional]
sans = ["*.{{region}}.{{cloud}}.{zone}", "{{region}}.{{cloud}}.{zone}", "api.{{region}}.{{cloud}}.{zone}"]

[pools.{pool}]
scheme = "regional"
cloud = "aws"
region = "us-east-1"
target_size = 2
min_remaining_lifetime = "1d"
ca = "pebble"
dns = "r53"
"#
    );
    let extra = format!(
        r#"
[dns.r53]
type = "route53"
endpoint = "{endpoint}"
credentials = {{ access_key_id = {{ value = "{id}" }}, secret_access_key = {{ value = "{secret}" }} }}
ttl = 5
insync_interval = "200ms"

[propagation]
nameservers = ["{bridge}"]
timeout = "30s"
interval = "100ms"
"#,
        endpoint = m.endpoint(),
        id = m.dns.id,
        secret = m.dns.secret,
        bridge = bridge.addr,
    );
    let setup = setup_full("r53-e2e", None, &schemes_and_pools, &pebble.directory, &extra)?;
    let _worker = WorkerGuard::start(&setup);
    let client = certpool::temporal::connect(&setup.cfg.config.temporal, "it").await?;
    let pools = vec![pool.clone()];
    fill::start(&client, &setup.cfg, &pools).await?;
    let results = fill::wait(&client, &pools, Some(Duration::from_secs(120)), |_| {}).await?;
    match &results[&pool] {
        FillResult::Full(o) => assert_eq!((o.ready, o.target), (2, 2)),
        FillResult::Failed(why) => panic!("fill failed: {why}"),
    }
    eprintln!("route53 end to end: pool of 2 filled in {:?}", started.elapsed());

    // The certificates chain to this pebble's root and carry exactly the pool's SANs.
    certpool_tests::verify::pool_certificates(&setup, &pool, &pebble.issuing_root()?, 2).await?;

    // Clean-up left no challenge record: not in moto, and not served by the bridge.
    let backend = Route53Backend::new(m, &zone_id).await;
    for host in ["us-east-1.aws", "api.us-east-1.aws"] {
        let name = format!("_acme-challenge.{host}.{zone}");
        assert!(backend.read_txt(&name).await?.is_empty(), "{name} left in Route 53");
        let addr = bridge.addr.clone();
        let served = tokio::task::spawn_blocking(move || txt_values_sync(&addr, &name)).await??;
        assert!(served.is_empty(), "bridge still serves {served:?}");
    }
    Ok(())
}
