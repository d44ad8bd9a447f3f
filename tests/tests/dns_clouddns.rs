//! The `clouddns` provider against the Cloud DNS fixture (`certpool_tests::clouddns_fixture`),
//! through the real google-cloud-dns-v1 client and a real service-account key, so requests,
//! JWT signing and error mapping are all the production code paths: first the shared DNS
//! conformance suite (`certpool_tests::dns_suite`), then what is particular to Cloud DNS (zone
//! lookup, conflicts forced by holding reads, the wait for `done`, each kind of bad credential).

#![allow(clippy::unwrap_used)]

use certpool_domain::config::{ClouddnsConfig, DnsProviderConfig, SecretSource};
use certpool_domain::duration::Duration as CfgDuration;
use certpool_domain::plugins::{DnsProvider, TxtRecord};
use certpool_domain::{ErrorClass, Failure};
use certpool_tests::clouddns_fixture::{CloudDnsFixture, Visibility};
use certpool_tests::dns_suite::{DnsBackend, DnsSuiteTarget, run_all};
use std::sync::Arc;
use std::time::{Duration, Instant};

const PROJECT: &str = "certpool-test";
const SA: &str = "certpool-dns@certpool-test.iam.gserviceaccount.com";

struct Env {
    fx: CloudDnsFixture,
    key: String,
}

/// A fixture with `certpool.test.` (public) and a service account allowed to use it. Changes
/// stay pending for 300 ms so that every write goes through the wait loop.
fn env() -> Env {
    let fx = CloudDnsFixture::start(PROJECT, Duration::from_millis(300)).unwrap();
    fx.add_zone("certpool-test", "certpool.test.", Visibility::Public);
    let key = fx.service_account(SA, true).unwrap();
    Env { fx, key }
}

fn config(fx: &CloudDnsFixture, key: Option<&str>) -> ClouddnsConfig {
    ClouddnsConfig {
        project: PROJECT.into(),
        managed_zone: None,
        credentials: key.map(|k| SecretSource::Value(k.to_owned())),
        endpoint: Some(fx.endpoint()),
        ttl: 30,
        timeout: CfgDuration::from_secs(5),
        change_timeout: CfgDuration::from_secs(10),
    }
}

fn provider_from(cfg: ClouddnsConfig) -> Result<Arc<dyn DnsProvider>, Failure> {
    certpool_activities::dns::from_config("gcp", &DnsProviderConfig::Clouddns(cfg), std::path::Path::new("."))
}

fn provider(e: &Env) -> Arc<dyn DnsProvider> {
    provider_from(config(&e.fx, Some(&e.key))).unwrap()
}

fn txt(name: &str, value: &str) -> TxtRecord {
    TxtRecord {
        name: name.into(),
        value: value.into(),
    }
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// The fixture's state, read and written without the provider.
struct FixtureBackend(Arc<CloudDnsFixture>);

#[async_trait::async_trait]
impl DnsBackend for FixtureBackend {
    async fn read_txt(&self, name: &str) -> anyhow::Result<Vec<String>> {
        Ok(self.0.txt(name))
    }

    async fn add_foreign(&self, name: &str, value: &str) -> anyhow::Result<()> {
        self.0.add_foreign_txt(name, value)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn clouddns_conforms() {
    let Env { fx, key } = env();
    let fx = Arc::new(fx);
    let stranger = fx
        .unknown_service_account("deleted@certpool-test.iam.gserviceaccount.com")
        .unwrap();
    let bad_cfg = config(&fx, Some(&stranger));
    let target = DnsSuiteTarget {
        label: "clouddns (fixture)".into(),
        provider: provider_from(config(&fx, Some(&key))).unwrap(),
        zone: "certpool.test".into(),
        backend: Arc::new(FixtureBackend(fx.clone())),
        bad_credentials: Box::new(move || provider_from(bad_cfg.clone()).map_err(anyhow::Error::from)),
        provider_name: "gcp".into(),
    };
    run_all(&target).await.unwrap();
}

#[tokio::test]
async fn present_publishes_the_value_and_waits_until_the_change_is_done() {
    let e = env();
    let p = provider(&e);
    let name = "_acme-challenge.present.certpool.test";
    let started = Instant::now();
    p.present(&[txt(name, "v1")]).await.unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "returned before the change was done"
    );
    assert_eq!(e.fx.txt(name), ["v1"]);
    assert_eq!(e.fx.txt_ttl(name), Some(30));
    let calls = e.fx.calls();
    assert!(
        calls.iter().any(|c| c.starts_with("GET ") && c.contains("/changes/")),
        "change never polled: {calls:?}"
    );
}

#[tokio::test]
async fn other_values_at_the_name_survive_present_and_cleanup() {
    let e = env();
    let p = provider(&e);
    let name = "_acme-challenge.keep.certpool.test";
    e.fx.add_foreign_txt(name, "someone-else").unwrap();
    p.present(&[txt(name, "ours")]).await.unwrap();
    assert_eq!(sorted(e.fx.txt(name)), ["ours", "someone-else"]);
    p.cleanup(&[txt(name, "ours")]).await.unwrap();
    assert_eq!(e.fx.txt(name), ["someone-else"]);
}

#[tokio::test]
async fn cleanup_removes_only_its_own_value_and_the_set_when_it_was_the_last() {
    let e = env();
    let p = provider(&e);
    let name = "_acme-challenge.own.certpool.test";
    p.present(&[txt(name, "order-a")]).await.unwrap();
    p.present(&[txt(name, "order-b")]).await.unwrap();
    p.cleanup(&[txt(name, "order-a")]).await.unwrap();
    assert_eq!(e.fx.txt(name), ["order-b"]);
    p.cleanup(&[txt(name, "order-b")]).await.unwrap();
    assert!(e.fx.txt(name).is_empty(), "{:?}", e.fx.txt(name));
}

#[tokio::test]
async fn present_and_cleanup_are_safe_to_repeat() {
    let e = env();
    let p = provider(&e);
    let name = "_acme-challenge.again.certpool.test";
    let recs = [txt(name, "v"), txt("_acme-challenge.again2.certpool.test", "w")];
    p.present(&recs).await.unwrap();
    p.present(&recs).await.unwrap();
    assert_eq!(e.fx.txt(name), ["v"]);
    let changes_before = e.fx.calls().iter().filter(|c| c.starts_with("POST")).count();
    assert_eq!(
        changes_before, 1,
        "both names of one zone go in one change; a repeat changes nothing"
    );
    p.cleanup(&recs).await.unwrap();
    p.cleanup(&recs).await.unwrap();
    assert!(e.fx.txt(name).is_empty());
    assert!(e.fx.refused_changes().is_empty(), "{:?}", e.fx.refused_changes());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_orders_presenting_at_one_name_at_once_both_succeed() {
    let e = env();
    let (p1, p2) = (provider(&e), provider(&e));
    let name = "_acme-challenge.race.certpool.test";
    // Both read the (empty) set before either writes, so one of the changes must be refused.
    let (r1, r2) = ([txt(name, "order-1")], [txt(name, "order-2")]);
    e.fx.hold_reads(2);
    let (a, b) = tokio::join!(p1.present(&r1), p2.present(&r2));
    a.unwrap();
    b.unwrap();
    assert_eq!(sorted(e.fx.txt(name)), ["order-1", "order-2"]);
    assert!(
        e.fx.refused_changes().contains(&409),
        "no conflict happened, so the retry was not exercised: {:?}",
        e.fx.refused_changes()
    );

    // And both clean-ups at once: one deletes a set the other is also deleting (412, or 404
    // once it is gone).
    e.fx.hold_reads(2);
    let (a, b) = tokio::join!(p1.cleanup(&r1), p2.cleanup(&r2));
    a.unwrap();
    b.unwrap();
    assert!(e.fx.txt(name).is_empty(), "{:?}", e.fx.txt(name));
    let refused = e.fx.refused_changes();
    assert!(refused.iter().any(|c| *c == 412 || *c == 404), "{refused:?}");
}

fn assert_permanent(f: &Failure, kind: &str) {
    assert_eq!(f.class, ErrorClass::Permanent, "{f}");
    assert_eq!(f.kind, kind, "{f}");
    assert!(!f.message.contains("PRIVATE KEY"), "key material in the error: {f}");
}

#[tokio::test]
async fn a_key_the_project_does_not_know_is_a_clear_permanent_failure() {
    let e = env();
    let stranger =
        e.fx.unknown_service_account("gone@certpool-test.iam.gserviceaccount.com")
            .unwrap();
    let p = provider_from(config(&e.fx, Some(&stranger))).unwrap();
    let err = p
        .present(&[txt("_acme-challenge.x.certpool.test", "v")])
        .await
        .unwrap_err();
    assert_permanent(&err, "dns.clouddns_unauthenticated");
    assert!(err.message.contains("credentials rejected"), "{err}");
}

#[tokio::test]
async fn an_account_without_the_role_is_a_clear_permanent_failure() {
    let e = env();
    let key =
        e.fx.service_account("no-role@certpool-test.iam.gserviceaccount.com", false)
            .unwrap();
    let p = provider_from(config(&e.fx, Some(&key))).unwrap();
    let err = p
        .cleanup(&[txt("_acme-challenge.x.certpool.test", "v")])
        .await
        .unwrap_err();
    assert_permanent(&err, "dns.clouddns_denied");
    assert!(err.message.contains("dns.changes.create"), "{err}");
}

#[tokio::test]
async fn a_broken_key_file_is_rejected_without_echoing_it() {
    let e = env();
    let mut key: serde_json::Value = serde_json::from_str(&e.key).unwrap();
    // A broken key made from the fixture's run-time key: its armour kept, its body cut short.
    let real = key["private_key"].as_str().unwrap().to_owned();
    let lines: Vec<&str> = real.lines().collect();
    let fragment = &lines[1][..16];
    key["private_key"] = format!("{}\n{fragment}\n{}\n", lines[0], lines[lines.len() - 1]).into();
    // Parsing the key happens when a token is first needed.
    let err = match provider_from(config(&e.fx, Some(&key.to_string()))) {
        Err(f) => f,
        Ok(p) => p
            .present(&[txt("_acme-challenge.x.certpool.test", "v")])
            .await
            .unwrap_err(),
    };
    assert_eq!(err.class, ErrorClass::Permanent, "{err}");
    assert!(!err.message.contains(fragment), "{err}");

    let err = provider_from(config(&e.fx, Some("{\"type\": \"authorized_user\"}"))).unwrap_err();
    assert_permanent(&err, "config.dns");
    assert!(err.message.contains("service-account key"), "{err}");
    let err = provider_from(config(&e.fx, Some("not json at all"))).unwrap_err();
    assert_permanent(&err, "config.dns");
    assert!(!err.message.contains("not json"), "{err}");
}

#[tokio::test]
async fn records_go_to_the_longest_matching_public_zone() {
    let e = env();
    e.fx.add_zone("acme-delegated", "acme.certpool.test.", Visibility::Public);
    // Split horizon: a private zone of the same name must not be chosen.
    e.fx.add_zone("deep-private", "deep.acme.certpool.test.", Visibility::Private);
    let p = provider(&e);
    let delegated = "_acme-challenge.deep.acme.certpool.test";
    let parent = "_acme-challenge.other.certpool.test";
    p.present(&[txt(delegated, "a"), txt(parent, "b")]).await.unwrap();
    let calls = e.fx.calls();
    let posts: Vec<&String> = calls.iter().filter(|c| c.starts_with("POST")).collect();
    assert_eq!(posts.len(), 2, "one change per zone: {posts:?}");
    assert!(
        posts.iter().any(|c| c.contains("/managedZones/acme-delegated/")),
        "{posts:?}"
    );
    assert!(
        posts.iter().any(|c| c.contains("/managedZones/certpool-test/")),
        "{posts:?}"
    );
    assert_eq!(e.fx.txt(delegated), ["a"]);

    let err = p.present(&[txt("_acme-challenge.example.org", "v")]).await.unwrap_err();
    assert_permanent(&err, "dns.clouddns_no_zone");
}

#[tokio::test]
async fn a_configured_zone_is_used_and_checked() {
    let e = env();
    let mut cfg = config(&e.fx, Some(&e.key));
    cfg.managed_zone = Some("certpool-test".into());
    let p = provider_from(cfg.clone()).unwrap();
    p.present(&[txt("_acme-challenge.cfg.certpool.test", "v")])
        .await
        .unwrap();
    assert!(
        !e.fx.calls().iter().any(|c| c.ends_with("/managedZones")),
        "listed zones although one is configured"
    );
    let err = p.present(&[txt("_acme-challenge.example.org", "v")]).await.unwrap_err();
    assert_permanent(&err, "dns.outside_zone");

    cfg.managed_zone = Some("no-such-zone".into());
    let err = provider_from(cfg)
        .unwrap()
        .present(&[txt("_acme-challenge.cfg.certpool.test", "v")])
        .await
        .unwrap_err();
    assert_permanent(&err, "dns.clouddns_not_found");
}

#[tokio::test]
async fn a_change_that_stays_pending_is_a_transient_failure() {
    let fx = CloudDnsFixture::start(PROJECT, Duration::from_secs(30)).unwrap();
    fx.add_zone("certpool-test", "certpool.test.", Visibility::Public);
    let key = fx.service_account(SA, true).unwrap();
    let mut cfg = config(&fx, Some(&key));
    cfg.change_timeout = CfgDuration::from_millis(700);
    let name = "_acme-challenge.slow.certpool.test";
    let err = provider_from(cfg.clone())
        .unwrap()
        .present(&[txt(name, "v")])
        .await
        .unwrap_err();
    assert_eq!(err.class, ErrorClass::Transient, "{err}");
    assert_eq!(err.kind, "dns.clouddns_change_pending", "{err}");
    // The change was accepted, so the activity's retry finds the value and changes nothing.
    assert_eq!(fx.txt(name), ["v"]);
    provider_from(cfg).unwrap().present(&[txt(name, "v")]).await.unwrap();
    assert_eq!(fx.calls().iter().filter(|c| c.starts_with("POST")).count(), 1);
}

#[tokio::test]
async fn an_unreachable_endpoint_is_transient() {
    let e = env();
    let mut cfg = config(&e.fx, Some(&e.key));
    cfg.endpoint = Some(format!("http://127.0.0.1:{}", certpool_tests::free_port()));
    cfg.timeout = CfgDuration::from_secs(1);
    let err = provider_from(cfg)
        .unwrap()
        .present(&[txt("_acme-challenge.x.certpool.test", "v")])
        .await
        .unwrap_err();
    assert_eq!(err.class, ErrorClass::Transient, "{err}");
}
