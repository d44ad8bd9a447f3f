//! The inventory conformance suite: every `Inventory` implementation must pass each check
//! against its real database. `tests/tests/inventory.rs` runs every check against SQLite and
//! PostgreSQL.
//!
//! Each check gets a [`Backend`] holding a fresh, empty store; `open` may be called more than
//! once (a second worker, a restart) and every call sees the same data. The store is opened
//! with two event sinks, `s1` and `s2`, so every event is queued twice.

use certpool_domain::Failure;
use certpool_domain::cert::{CertState, CertificateRecord, ClaimParams, ClaimResult, DeliveryRecord, OutboxEntry};
use certpool_domain::error::ErrorClass;
use certpool_domain::plugins::{CertFilter, Inventory};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Instant;

/// An empty store of one implementation.
pub struct Backend {
    /// `sqlite`, `postgres`.
    pub name: &'static str,
    open: Box<dyn Fn() -> Result<Arc<dyn Inventory>, Failure> + Send + Sync>,
    _keep: Box<dyn std::any::Any + Send + Sync>,
}

impl Backend {
    /// A backend whose `open` builds a new handle on the same store; `keep` lives as long as
    /// the backend (a temporary directory, say).
    pub fn new(
        name: &'static str,
        open: impl Fn() -> Result<Arc<dyn Inventory>, Failure> + Send + Sync + 'static,
        keep: impl std::any::Any + Send + Sync,
    ) -> Self {
        Self {
            name,
            open: Box::new(open),
            _keep: Box::new(keep),
        }
    }

    /// A new handle on the store, as a new worker process would open it.
    pub fn open(&self) -> Arc<dyn Inventory> {
        (self.open)().unwrap_or_else(|f| panic!("{}: open: {f}", self.name))
    }
}

/// The `[events]` section every suite store is opened with.
pub fn events_config() -> certpool_domain::config::EventsConfig {
    let sink = || certpool_domain::config::SinkConfig::Webhook {
        url: "http://127.0.0.1:9/".into(),
        hmac_key: None,
        trusted_root: None,
    };
    certpool_domain::config::EventsConfig {
        source: Some("urn:certpool:suite".into()),
        sinks: BTreeMap::from([("s1".to_owned(), sink()), ("s2".to_owned(), sink())]),
    }
}

/// A pooled certificate valid until `not_after`, due for renewal 10 s before.
pub fn cert(id: &str, pool: &str, not_after: i64) -> CertificateRecord {
    CertificateRecord {
        id: id.into(),
        pool: pool.into(),
        sans: vec![format!("*.{pool}.example.net"), format!("{pool}.example.net")],
        serial: format!("{:x}", id.len() * 7919),
        issuer: "CN=suite".into(),
        not_before: 0,
        not_after,
        state: CertState::Pooled,
        ca: "suite".into(),
        key_ref: format!("certs/{id}/key"),
        chain_ref: format!("certs/{id}/chain"),
        created_at: 1,
        renew_at: not_after - 10,
        renewal_error: None,
        successor_id: None,
        predecessor_id: None,
    }
}

fn claim_params(pool: &str, cluster: &str, now: i64) -> ClaimParams {
    ClaimParams {
        pool: pool.into(),
        cluster: cluster.into(),
        target: Some("t".into()),
        now,
        min_remaining_secs: 0,
    }
}

async fn claim(inv: &dyn Inventory, pool: &str, cluster: &str, now: i64) -> ClaimResult {
    inv.claim(&claim_params(pool, cluster, now)).await.expect("claim")
}

fn assigned(r: ClaimResult) -> (CertificateRecord, bool) {
    match r {
        ClaimResult::Assigned { cert, new } => (*cert, new),
        ClaimResult::Empty => panic!("expected an assignment, got Empty"),
    }
}

/// Each read leases what it returns for a minute of inventory time; every call reads a minute
/// past the last one, so it sees every undelivered event again.
static OUTBOX_CLOCK: AtomicI64 = AtomicI64::new(1 << 40);

/// Every undelivered event for sink `s1`, as `(type, subject, data)`, oldest first.
async fn events(inv: &dyn Inventory) -> Vec<(String, String, serde_json::Value)> {
    let now = OUTBOX_CLOCK.fetch_add(1_000, Ordering::SeqCst);
    inv.pending_events(now, 10_000)
        .await
        .expect("pending events")
        .into_iter()
        .filter(|e| e.sink == "s1")
        .map(|e| {
            let v: serde_json::Value = serde_json::from_str(&e.event_json).expect("event JSON");
            let ty = v["type"].as_str().expect("type").to_owned();
            let subject = v["subject"].as_str().unwrap_or_default().to_owned();
            (ty, subject, v["data"].clone())
        })
        .collect()
}

fn count(events: &[(String, String, serde_json::Value)], ty: &str) -> usize {
    events
        .iter()
        .filter(|(t, _, _)| t == &format!("net.certpool.{ty}"))
        .count()
}

fn ids(certs: &[CertificateRecord]) -> Vec<&str> {
    certs.iter().map(|c| c.id.as_str()).collect()
}

/// Recording is idempotent and emits `certificate.issued` once; levels count only pooled
/// certificates with enough lifetime left; `list` is soonest expiry first, filtered and
/// limited; `get` round-trips every field.
pub async fn records_and_reads(b: &Backend) {
    let inv = b.open();
    let a = cert("a", "p", 1_000);
    inv.record_issued(&a).await.expect("a");
    inv.record_issued(&a).await.expect("a again");
    inv.record_issued(&cert("b", "p", 5_000)).await.expect("b");
    inv.record_issued(&cert("c", "q", 3_000)).await.expect("c");
    let level = inv.pool_level("p", 0, 500).await.expect("level");
    assert_eq!(
        (level.pool.as_str(), level.ready, level.soonest_expiry),
        ("p", 2, Some(1_000))
    );
    let level = inv.pool_level("p", 0, 2_000).await.expect("level");
    assert_eq!((level.ready, level.soonest_expiry), (1, Some(5_000)));
    let level = inv.pool_level("empty", 0, 0).await.expect("level");
    assert_eq!((level.ready, level.soonest_expiry), (0, None));
    let all = inv.list(&CertFilter::default()).await.expect("list");
    assert_eq!(ids(&all), ["a", "c", "b"]);
    let p = inv
        .list(&CertFilter {
            pool: Some("p".into()),
            limit: Some(1),
        })
        .await
        .expect("list p");
    assert_eq!(ids(&p), ["a"]);
    assert_eq!(inv.get("a").await.expect("get"), Some(a.clone()));
    assert_eq!(inv.get("nope").await.expect("get"), None);
    // A certificate with every optional field set survives the round trip too.
    let mut full = cert("full", "p", 9_000);
    full.renewal_error = Some("CA said no".into());
    full.successor_id = Some("later".into());
    full.predecessor_id = Some("earlier".into());
    full.sans = vec!["ünïcode.example.net".into()];
    inv.record_issued(&full).await.expect("full");
    assert_eq!(inv.get("full").await.expect("get"), Some(full));
    let ev = events(&*inv).await;
    assert_eq!(
        count(&ev, "certificate.issued"),
        3,
        "once per new certificate without predecessor: {ev:?}"
    );
    let (_, subject, data) = ev.iter().find(|(_, s, _)| s == "a").expect("event for a");
    assert_eq!((subject.as_str(), data["pool"].as_str()), ("a", Some("p")));
}

/// Data survives reopening, and several handles opened at once on a fresh store (workers
/// starting together, each migrating) all work.
pub async fn reopens_and_migrates_concurrently(b: &Backend) {
    let handles: Vec<Arc<dyn Inventory>> = (0..6).map(|_| b.open()).collect();
    let mut tasks = tokio::task::JoinSet::new();
    for (i, inv) in handles.iter().enumerate() {
        let inv = inv.clone();
        tasks.spawn(async move { inv.record_issued(&cert(&format!("m{i}"), "p", 10_000)).await });
    }
    while let Some(r) = tasks.join_next().await {
        r.expect("join").expect("record on a fresh store");
    }
    drop(handles);
    let inv = b.open();
    assert_eq!(inv.pool_level("p", 0, 0).await.expect("level").ready, 6);
}

/// A claim gives the oldest certificate with enough lifetime left, is idempotent per cluster,
/// refuses a second pool for the same cluster, and records the assignment.
pub async fn claims_oldest_ready_and_is_idempotent(b: &Backend) {
    let inv = b.open();
    inv.record_issued(&cert("short", "p", 100)).await.expect("short");
    inv.record_issued(&cert("young", "p", 9_000)).await.expect("young");
    inv.record_issued(&cert("old", "p", 5_000)).await.expect("old");
    inv.record_issued(&cert("other", "q", 9_000)).await.expect("other");
    let mut params = claim_params("p", "k1", 0);
    params.min_remaining_secs = 1_000;
    let (c, new) = assigned(inv.claim(&params).await.expect("claim"));
    assert_eq!((c.id.as_str(), new, c.state), ("old", true, CertState::Assigned));
    let (again, new) = assigned(inv.claim(&params).await.expect("claim again"));
    assert_eq!((again.id.as_str(), new), ("old", false));
    let err = inv.claim(&claim_params("q", "k1", 0)).await.expect_err("other pool");
    assert_eq!(
        (err.class, err.kind.as_str()),
        (ErrorClass::Permanent, "claim.other_pool")
    );
    let a = inv.assignment("k1").await.expect("assignment").expect("k1 assigned");
    assert_eq!(
        (
            a.cluster.as_str(),
            a.cert_id.as_str(),
            a.pool.as_str(),
            a.target.as_deref(),
            a.assigned_at
        ),
        ("k1", "old", "p", Some("t"), 0)
    );
    assert_eq!(inv.assignment("k2").await.expect("assignment"), None);
    assert_eq!(inv.assignments_of("old").await.expect("of"), vec![a]);
    assert_eq!(
        inv.get("old").await.expect("get").expect("old").state,
        CertState::Assigned
    );
    // "short" expires within min_remaining: the next claim gets "young", then nothing is left.
    let (c, _) = assigned(
        inv.claim(&ClaimParams {
            cluster: "k2".into(),
            ..params.clone()
        })
        .await
        .expect("k2"),
    );
    assert_eq!(c.id, "young");
    assert_eq!(
        claim(&*inv, "p", "k3", 200).await,
        ClaimResult::Empty,
        "short has expired by now = 200"
    );
    let level = inv.pool_level("p", 0, 0).await.expect("level");
    assert_eq!(level.ready, 1, "only the short-lived one stays pooled");
    let ev = events(&*inv).await;
    assert_eq!(count(&ev, "certificate.assigned"), 2, "{ev:?}");
    let (_, _, data) = ev
        .iter()
        .find(|(t, _, _)| t.ends_with("certificate.assigned"))
        .expect("assigned");
    assert_eq!(data["cluster"].as_str(), Some("k1"));
}

/// An empty pool raises `pool.low` once per pool per minute of claim time, not once per claim.
pub async fn pool_low_is_rate_limited(b: &Backend) {
    let inv = b.open();
    for now in [1_000, 1_010, 1_059] {
        assert_eq!(claim(&*inv, "dry", "k", now).await, ClaimResult::Empty);
    }
    assert_eq!(count(&events(&*inv).await, "pool.low"), 1);
    assert_eq!(claim(&*inv, "dry", "k", 1_060).await, ClaimResult::Empty);
    assert_eq!(claim(&*inv, "arid", "k", 1_060).await, ClaimResult::Empty);
    let ev = events(&*inv).await;
    assert_eq!(count(&ev, "pool.low"), 3, "a minute later, and another pool: {ev:?}");
    assert!(
        ev.iter()
            .any(|(t, s, d)| t.ends_with("pool.low") && s == "arid" && d["ready"] == 0)
    );
}

/// 100 claimers at once against a pool of 60, each through its own handle: exactly 60 distinct
/// certificates, 40 empty answers, one `pool.low`, 60 `certificate.assigned`, and every
/// assignment matches what its claimer was told. Then 20 concurrent claims for one new cluster
/// agree on one certificate, and exactly one of them made the assignment.
pub async fn many_concurrent_claimers_never_share(b: &Backend) {
    let setup = b.open();
    for i in 0..60 {
        setup
            .record_issued(&cert(&format!("c{i:02}"), "p", 10_000 + i))
            .await
            .expect("record");
    }
    let handles: Vec<Arc<dyn Inventory>> = (0..4).map(|_| b.open()).collect();
    let warm = Instant::now();
    for h in &handles {
        h.pool_level("p", 0, 0).await.expect("connect");
    }
    eprintln!("{}: first call on 4 handles {:?}", b.name, warm.elapsed());
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..100 {
        let inv = handles[i % handles.len()].clone();
        tasks.spawn(async move {
            let cluster = format!("k{i:03}");
            let t = Instant::now();
            let r = inv.claim(&claim_params("p", &cluster, 0)).await;
            (cluster, r, t.elapsed())
        });
    }
    let mut given = BTreeMap::new();
    let mut empty = 0;
    let mut latencies = Vec::new();
    while let Some(r) = tasks.join_next().await {
        let (cluster, r, took) = r.expect("join");
        latencies.push(took);
        match r.expect("claim") {
            ClaimResult::Assigned { cert, new } => {
                assert!(new, "{cluster} had no assignment before");
                if let Some(other) = given.insert(cert.id.clone(), cluster.clone()) {
                    panic!("{} given to {other} and {cluster}", cert.id);
                }
            }
            ClaimResult::Empty => empty += 1,
        }
    }
    let total = started.elapsed();
    latencies.sort();
    eprintln!(
        "{}: 100 concurrent claims against 60 in {total:?} (p50 {:?}, max {:?})",
        b.name, latencies[50], latencies[99]
    );
    assert_eq!((given.len(), empty), (60, 40));
    for (cert_id, cluster) in &given {
        let a = setup.assignment(cluster).await.expect("assignment").expect("assigned");
        assert_eq!(&a.cert_id, cert_id);
        assert_eq!(setup.assignments_of(cert_id).await.expect("of").len(), 1);
    }
    assert_eq!(setup.pool_level("p", 0, 0).await.expect("level").ready, 0);
    let ev = events(&*setup).await;
    assert_eq!(count(&ev, "certificate.assigned"), 60);
    // Each new assignment also queues certpool's own sync and refill request, in the same
    // transaction; nothing else does.
    let now = OUTBOX_CLOCK.fetch_add(1_000, Ordering::SeqCst);
    let requests: Vec<_> = setup
        .pending_events(now, 10_000)
        .await
        .expect("pending events")
        .into_iter()
        .filter(|e| e.sink == certpool_activities::inventory::NOTIFY_SINK)
        .collect();
    assert_eq!(requests.len(), 60, "one sync/refill request per assignment");
    assert!(requests.iter().all(|e| e.event_json.contains("certificate.assigned")));
    assert_eq!(
        count(&ev, "pool.low"),
        1,
        "40 empty claims within a minute raise pool.low once"
    );

    // One cluster, many claimers (a retried activity racing the original).
    for i in 0..20 {
        setup
            .record_issued(&cert(&format!("d{i:02}"), "p", 20_000 + i))
            .await
            .expect("record");
    }
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..20 {
        let inv = handles[i % handles.len()].clone();
        tasks.spawn(async move { inv.claim(&claim_params("p", "same", 0)).await });
    }
    let mut certs = BTreeSet::new();
    let mut news = 0;
    while let Some(r) = tasks.join_next().await {
        let (c, new) = assigned(r.expect("join").expect("claim"));
        certs.insert(c.id);
        news += usize::from(new);
    }
    eprintln!(
        "{}: 20 concurrent claims for one cluster in {:?}",
        b.name,
        started.elapsed()
    );
    assert_eq!((certs.len(), news), (1, 1), "one certificate, assigned once: {certs:?}");
    assert_eq!(setup.pool_level("p", 0, 0).await.expect("level").ready, 19);
}

/// Due certificates are the assigned ones with `renew_at <= now`, paged by `(renew_at, id)`
/// without skipping or repeating rows that share a `renew_at`.
pub async fn due_for_renewal_pages_by_keyset(b: &Backend) {
    let inv = b.open();
    // renew_at = not_after - 10: five share 990, then 1990, 2990; one is not due; one pooled.
    let mut want = Vec::new();
    for (i, not_after) in [1_000, 1_000, 1_000, 1_000, 1_000, 2_000, 3_000, 50_000]
        .iter()
        .enumerate()
    {
        let id = format!("x{}", 7 - i);
        inv.record_issued(&cert(&id, "p", *not_after)).await.expect("record");
        assigned(claim(&*inv, "p", &format!("k{i}"), 0).await);
        if *not_after < 50_000 {
            want.push((not_after - 10, id));
        }
    }
    inv.record_issued(&cert("pooled", "p", 1_000)).await.expect("pooled");
    want.sort();
    let mut got = Vec::new();
    let mut after = None;
    loop {
        let page = inv.due_for_renewal(10_000, after.clone(), 3).await.expect("due");
        assert!(page.len() <= 3);
        let Some(last) = page.last() else { break };
        after = Some((last.renew_at, last.id.clone()));
        got.extend(page.iter().map(|c| (c.renew_at, c.id.clone())));
    }
    assert_eq!(got, want);
    let early = inv.due_for_renewal(1_500, None, 100).await.expect("due");
    assert_eq!(early.len(), 5, "only renew_at <= now");
}

/// Recording a successor moves the clusters in one step, emits `certificate.renewed` once, is
/// idempotent, refuses a different second successor, and leaves the predecessor due until it
/// is retired.
pub async fn successor_moves_clusters_once(b: &Backend) {
    let inv = b.open();
    inv.record_issued(&cert("old", "p", 1_000)).await.expect("old");
    assigned(claim(&*inv, "p", "k1", 0).await);
    inv.set_renewal_error("old", Some("attempt 1 failed"))
        .await
        .expect("error");
    let mut succ = cert("new", "p", 2_000);
    succ.predecessor_id = None;
    assert_eq!(inv.record_successor("old", &succ).await.expect("successor"), ["k1"]);
    assert_eq!(
        inv.record_successor("old", &succ).await.expect("again"),
        ["k1"],
        "idempotent"
    );
    let err = inv
        .record_successor("old", &cert("newer", "p", 3_000))
        .await
        .expect_err("second successor");
    assert_eq!(
        (err.class, err.kind.as_str()),
        (ErrorClass::Permanent, "renewal.already_renewed")
    );
    let err = inv.record_successor("ghost", &succ).await.expect_err("unknown");
    assert_eq!(
        (err.class, err.kind.as_str()),
        (ErrorClass::Permanent, "inventory.unknown_cert")
    );
    let old = inv.get("old").await.expect("get").expect("old");
    assert_eq!(
        (old.successor_id.as_deref(), old.renewal_error.as_deref()),
        (Some("new"), None)
    );
    let new = inv.get("new").await.expect("get").expect("new");
    assert_eq!(
        (new.state, new.predecessor_id.as_deref()),
        (CertState::Assigned, Some("old"))
    );
    assert_eq!(inv.assignment("k1").await.expect("a").expect("k1").cert_id, "new");
    assert!(inv.assignments_of("old").await.expect("of").is_empty());
    // A renewal that recorded its successor but did not finish is found again by the scan.
    let due = inv.due_for_renewal(5_000, None, 10).await.expect("due");
    assert_eq!(ids(&due), ["old", "new"]);
    inv.retire("old").await.expect("retire");
    assert_eq!(ids(&inv.due_for_renewal(5_000, None, 10).await.expect("due")), ["new"]);
    assert_eq!(
        inv.get("old").await.expect("get").expect("old").state,
        CertState::Retired
    );
    let ev = events(&*inv).await;
    assert_eq!(count(&ev, "certificate.renewed"), 1);
    assert_eq!(
        count(&ev, "certificate.issued"),
        1,
        "a successor is renewed, not issued"
    );
    let (_, _, data) = ev
        .iter()
        .find(|(t, _, _)| t.ends_with("certificate.renewed"))
        .expect("renewed");
    assert_eq!(data["predecessor"].as_str(), Some("old"));
}

/// Concurrent `record_successor` calls for one predecessor: one successor wins, every other
/// call either agrees (same successor) or fails permanently, and the cluster ends on the
/// winner.
pub async fn concurrent_successors_pick_one(b: &Backend) {
    let inv = b.open();
    inv.record_issued(&cert("old", "p", 1_000)).await.expect("old");
    assigned(claim(&*inv, "p", "k1", 0).await);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..8 {
        let inv = b.open();
        tasks.spawn(async move {
            (
                i,
                inv.record_successor("old", &cert(&format!("s{i}"), "p", 2_000)).await,
            )
        });
    }
    let mut won = Vec::new();
    while let Some(r) = tasks.join_next().await {
        match r.expect("join") {
            (i, Ok(clusters)) => {
                assert_eq!(clusters, ["k1"]);
                won.push(format!("s{i}"));
            }
            (_, Err(e)) => assert_eq!(e.kind, "renewal.already_renewed", "{e}"),
        }
    }
    assert_eq!(won.len(), 1, "{won:?}");
    assert_eq!(inv.assignment("k1").await.expect("a").expect("k1").cert_id, won[0]);
    assert_eq!(count(&events(&*inv).await, "certificate.renewed"), 1);
}

/// Retiring expiring pooled certificates touches only pooled ones of that pool below the
/// threshold; a renewal error is set (with an event) and cleared (without one).
pub async fn retires_and_marks_renewal_errors(b: &Backend) {
    let inv = b.open();
    for (id, pool, not_after) in [("a", "p", 100), ("b", "p", 200), ("c", "p", 900), ("d", "q", 100)] {
        inv.record_issued(&cert(id, pool, not_after)).await.expect("record");
    }
    assigned(claim(&*inv, "p", "k", 0).await); // takes "a", the oldest
    assert_eq!(inv.retire_expiring_pooled("p", 200).await.expect("retire"), 1, "only b");
    assert_eq!(inv.retire_expiring_pooled("p", 200).await.expect("retire"), 0);
    let states: Vec<(String, CertState)> = inv
        .list(&CertFilter::default())
        .await
        .expect("list")
        .into_iter()
        .map(|c| (c.id, c.state))
        .collect();
    assert_eq!(
        states,
        [
            ("a".to_owned(), CertState::Assigned),
            ("d".to_owned(), CertState::Pooled),
            ("b".to_owned(), CertState::Retired),
            ("c".to_owned(), CertState::Pooled),
        ]
    );
    inv.set_renewal_error("a", Some("gave up")).await.expect("set");
    assert_eq!(
        inv.get("a").await.expect("get").expect("a").renewal_error.as_deref(),
        Some("gave up")
    );
    inv.set_renewal_error("a", None).await.expect("clear");
    assert_eq!(inv.get("a").await.expect("get").expect("a").renewal_error, None);
    inv.set_renewal_error("ghost", Some("x"))
        .await
        .expect("unknown id is a no-op");
    let ev = events(&*inv).await;
    assert_eq!(count(&ev, "certificate.renewal_failed"), 1);
    let (_, subject, data) = ev
        .iter()
        .find(|(t, _, _)| t.ends_with("renewal_failed"))
        .expect("failed");
    assert_eq!((subject.as_str(), data["error"].as_str()), ("a", Some("gave up")));
}

/// Deliveries are upserted per cluster; clusters whose last delivery is not their assigned
/// certificate (or that were never delivered) are out of sync, until delivered again.
pub async fn deliveries_track_sync(b: &Backend) {
    let inv = b.open();
    for id in ["a", "b"] {
        inv.record_issued(&cert(id, "p", 10_000)).await.expect("record");
    }
    for cluster in ["y", "x"] {
        assigned(claim(&*inv, "p", cluster, 0).await);
    }
    assert_eq!(
        inv.out_of_sync_clusters(10).await.expect("lag"),
        ["x", "y"],
        "never delivered"
    );
    assert_eq!(inv.out_of_sync_clusters(1).await.expect("lag"), ["x"], "limited");
    let x = inv.assignment("x").await.expect("x").expect("assigned");
    let d = DeliveryRecord {
        cluster: "x".into(),
        cert_id: x.cert_id.clone(),
        serial: "01".into(),
        verified: false,
        updated_at: 1,
    };
    inv.record_delivery(&d).await.expect("delivery");
    assert_eq!(inv.delivery("x").await.expect("get"), Some(d.clone()));
    let d2 = DeliveryRecord {
        verified: true,
        updated_at: 2,
        ..d
    };
    inv.record_delivery(&d2).await.expect("upsert");
    assert_eq!(inv.delivery("x").await.expect("get"), Some(d2));
    assert_eq!(inv.delivery("nobody").await.expect("get"), None);
    assert_eq!(inv.out_of_sync_clusters(10).await.expect("lag"), ["y"]);
    // A renewal moves x to a successor: x lags again until that is delivered.
    inv.record_successor(&x.cert_id, &cert("x2", "p", 20_000))
        .await
        .expect("successor");
    assert_eq!(inv.out_of_sync_clusters(10).await.expect("lag"), ["x", "y"]);
    let ev = events(&*inv).await;
    assert_eq!(count(&ev, "certificate.delivered"), 2);
    let (_, _, data) = ev.iter().find(|(t, _, _)| t.ends_with("delivered")).expect("delivered");
    assert_eq!(
        (data["cluster"].as_str(), data["verified"].as_bool()),
        (Some("x"), Some(false))
    );
}

/// The outbox: one row per sink, a CloudEvents 1.0 envelope, oldest first; a read leases rows
/// for a minute; a failure counts the attempt and defers the row; delivered rows are gone.
pub async fn outbox_leases_and_retries(b: &Backend) {
    let inv = b.open();
    for i in 0..3 {
        inv.enqueue_event(
            certpool_domain::events::EventType::PoolLow,
            &format!("s{i}"),
            serde_json::json!({"n": i}),
        )
        .await
        .expect("enqueue");
    }
    let t = 1_000_000;
    let rows = inv.pending_events(t, 100).await.expect("pending");
    assert_eq!(rows.len(), 6, "3 events × 2 sinks");
    assert!(rows.windows(2).all(|w| w[0].id < w[1].id), "oldest first");
    assert_eq!(
        rows.iter().filter(|r| r.sink == "s1").count(),
        rows.iter().filter(|r| r.sink == "s2").count()
    );
    let v: serde_json::Value = serde_json::from_str(&rows[0].event_json).expect("json");
    assert_eq!(
        (
            v["specversion"].as_str(),
            v["source"].as_str(),
            v["type"].as_str(),
            v["subject"].as_str()
        ),
        (
            Some("1.0"),
            Some("urn:certpool:suite"),
            Some("net.certpool.pool.low"),
            Some("s0")
        )
    );
    assert_eq!(v["data"]["n"], 0);
    assert!(rows.iter().all(|r| r.attempts == 0));
    assert!(
        inv.pending_events(t, 100).await.expect("leased").is_empty(),
        "leased rows are skipped"
    );
    assert!(inv.pending_events(t + 59, 100).await.expect("leased").is_empty());
    let (first, rest) = rows.split_first().expect("rows");
    inv.event_failed(first.id, "sink down", t + 500).await.expect("failed");
    for r in rest {
        inv.event_delivered(r.id, t + 1).await.expect("delivered");
    }
    assert!(inv.pending_events(t + 100, 100).await.expect("deferred").is_empty());
    let again = inv.pending_events(t + 500, 100).await.expect("retry");
    assert_eq!(
        again,
        vec![OutboxEntry {
            attempts: 1,
            ..first.clone()
        }]
    );
    assert_eq!(
        inv.pending_events(t + 500, 1).await.expect("limit").len(),
        0,
        "leased again by the read above"
    );
}

/// Two relays reading at once never get the same row.
pub async fn concurrent_relays_split_the_outbox(b: &Backend) {
    let inv = b.open();
    for i in 0..40 {
        inv.enqueue_event(
            certpool_domain::events::EventType::PoolLow,
            &format!("s{i}"),
            serde_json::json!({}),
        )
        .await
        .expect("enqueue");
    }
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let inv = b.open();
        tasks.spawn(async move { inv.pending_events(5_000_000, 25).await });
    }
    let mut seen = BTreeSet::new();
    let mut total = 0;
    while let Some(r) = tasks.join_next().await {
        for e in r.expect("join").expect("pending") {
            total += 1;
            assert!(seen.insert(e.id), "row {} handed to two relays", e.id);
        }
    }
    assert_eq!(
        (total, seen.len()),
        (80, 80),
        "4 × 25 reads cover all 80 rows exactly once"
    );
}
