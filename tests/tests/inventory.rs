//! The inventory conformance suite (`certpool_tests::inventory_suite`) against SQLite (a
//! temporary file) and PostgreSQL (a real server the test support starts, one database per
//! test), then what only PostgreSQL has: least-privilege roles, its error classes, refusing a
//! newer schema, and the due scan's index.

#![allow(clippy::unwrap_used)]

use certpool_activities::inventory::{from_config, postgres::due_sql};
use certpool_domain::config::{InventoryConfig, PostgresInventoryConfig, SecretSource};
use certpool_domain::duration::Duration as ConfigDuration;
use certpool_domain::error::ErrorClass;
use certpool_domain::plugins::Inventory;
use certpool_tests::inventory_suite::{self as suite, Backend, cert, events_config};
use certpool_tests::postgres::{PgServer, server};
use sqlx::Executor;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn sqlite() -> Backend {
    let dir = tempfile::tempdir().unwrap();
    let cfg = InventoryConfig::Sqlite {
        path: dir.path().join("inventory.sqlite"),
    };
    let base = dir.path().to_owned();
    Backend::new("sqlite", move || from_config(&cfg, &base, &events_config()), dir)
}

async fn pg_server() -> &'static PgServer {
    tokio::task::spawn_blocking(server).await.unwrap()
}

fn pg_config(url: String, schema: Option<&str>) -> InventoryConfig {
    InventoryConfig::Postgres(PostgresInventoryConfig {
        url: SecretSource::Value(url),
        schema: schema.map(str::to_owned),
        max_connections: 8,
        connect_timeout: ConfigDuration::from_secs(10),
    })
}

fn pg_backend(url: String, schema: Option<&str>) -> Backend {
    let cfg = pg_config(url, schema);
    Backend::new(
        "postgres",
        move || from_config(&cfg, Path::new("/"), &events_config()),
        (),
    )
}

/// A fresh database, used by the superuser.
async fn postgres() -> Backend {
    let s = pg_server().await;
    let db = s.create_database("inv_").await.unwrap();
    pg_backend(s.admin_url(&db), None)
}

macro_rules! conformance {
    ($($check:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $check() {
                    certpool_tests::inventory_suite::$check(&super::sqlite()).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $check() {
                    certpool_tests::inventory_suite::$check(&super::postgres().await).await;
                }
            )*
        }
    };
}

conformance!(
    records_and_reads,
    reopens_and_migrates_concurrently,
    claims_oldest_ready_and_is_idempotent,
    pool_low_is_rate_limited,
    many_concurrent_claimers_never_share,
    due_for_renewal_pages_by_keyset,
    successor_moves_clusters_once,
    concurrent_successors_pick_one,
    retires_and_marks_renewal_errors,
    deliveries_track_sync,
    outbox_leases_and_retries,
    concurrent_relays_split_the_outbox,
);

/// Runs `sql` (several statements allowed) as the superuser on `db`.
async fn admin_sql(s: &PgServer, db: &str, sql: &str) {
    let mut conn = s.admin(db).await.unwrap();
    conn.execute(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// The documented least privilege: a login role that may connect to the database and owns the
/// `certpool` schema, nothing else (no CREATE on `public`, no superuser). It migrates and runs
/// the claim checks, and every table lands in its schema.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_schema_owner_role_is_enough() {
    let s = pg_server().await;
    let db = s.create_database("priv_").await.unwrap();
    let role = certpool_tests::unique_label("certpool_");
    admin_sql(
        s,
        "postgres",
        &format!(
            "CREATE ROLE {role} LOGIN PASSWORD 'owner-pw';
             REVOKE ALL ON DATABASE {db} FROM PUBLIC;
             GRANT CONNECT ON DATABASE {db} TO {role};"
        ),
    )
    .await;
    admin_sql(
        s,
        &db,
        &format!("REVOKE CREATE ON SCHEMA public FROM PUBLIC; CREATE SCHEMA certpool AUTHORIZATION {role};"),
    )
    .await;
    let b = pg_backend(s.url(&role, "owner-pw", &db), Some("certpool"));
    suite::claims_oldest_ready_and_is_idempotent(&b).await;
    let mut conn = s.admin(&db).await.unwrap();
    let tables: Vec<String> =
        sqlx::query_scalar("SELECT tablename::text FROM pg_tables WHERE schemaname = 'certpool' ORDER BY 1")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    assert_eq!(
        tables,
        [
            "assignments",
            "certificates",
            "certpool_migrations",
            "deliveries",
            "outbox",
            "pool_alerts"
        ]
    );
    let public: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(public, 0);
}

/// Migrations by an owner, day-to-day work by a role with only CONNECT, USAGE on the schema and
/// SELECT, INSERT, UPDATE, DELETE on the owner's tables (default privileges, granted before the
/// tables exist, as documented): that role passes the claim and outbox checks, and on a schema
/// nobody migrated it fails permanently with `inventory.permission`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_dml_only_role_works_after_an_owner_migrated() {
    let s = pg_server().await;
    let db = s.create_database("split_").await.unwrap();
    let owner = certpool_tests::unique_label("owner_");
    let app = certpool_tests::unique_label("app_");
    admin_sql(
        s,
        "postgres",
        &format!(
            "CREATE ROLE {owner} LOGIN PASSWORD 'owner-pw';
             CREATE ROLE {app} LOGIN PASSWORD 'app-pw';
             REVOKE ALL ON DATABASE {db} FROM PUBLIC;
             GRANT CONNECT ON DATABASE {db} TO {owner}, {app};"
        ),
    )
    .await;
    admin_sql(
        s,
        &db,
        &format!(
            "REVOKE CREATE ON SCHEMA public FROM PUBLIC;
             CREATE SCHEMA certpool AUTHORIZATION {owner};
             CREATE SCHEMA empty AUTHORIZATION {owner};
             GRANT USAGE ON SCHEMA certpool, empty TO {app};
             ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA certpool
                 GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {app};"
        ),
    )
    .await;
    let owner_inv = from_config(
        &pg_config(s.url(&owner, "owner-pw", &db), Some("certpool")),
        Path::new("/"),
        &events_config(),
    )
    .unwrap();
    owner_inv.pool_level("p", 0, 0).await.expect("the owner migrates");
    let b = pg_backend(s.url(&app, "app-pw", &db), Some("certpool"));
    suite::claims_oldest_ready_and_is_idempotent(&b).await;
    suite::outbox_leases_and_retries(&b).await;

    let unmigrated = from_config(
        &pg_config(s.url(&app, "app-pw", &db), Some("empty")),
        Path::new("/"),
        &events_config(),
    )
    .unwrap();
    let err = unmigrated
        .pool_level("p", 0, 0)
        .await
        .expect_err("cannot create tables");
    assert_eq!(
        (err.class, err.kind.as_str()),
        (ErrorClass::Permanent, "inventory.permission"),
        "{err}"
    );
}

/// A wrong password fails permanently as `inventory.auth`; neither the error nor the
/// inventory's `Debug` shows the password.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_wrong_password_is_permanent_and_never_shown() {
    let s = pg_server().await;
    let secret = "Wr0ng-hunter2-pw";
    let inv = from_config(
        &pg_config(s.url(certpool_tests::postgres::ADMIN, secret, "postgres"), None),
        Path::new("/"),
        &events_config(),
    )
    .unwrap();
    let err = inv.get("x").await.expect_err("bad password");
    assert_eq!(
        (err.class, err.kind.as_str()),
        (ErrorClass::Permanent, "inventory.auth"),
        "{err}"
    );
    assert!(!err.to_string().contains(secret), "{err}");
    assert!(!format!("{inv:?}").contains(secret), "{inv:?}");
}

/// Nothing listening: transient `inventory.unavailable` within about `connect_timeout`, so the
/// activity retries.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_unreachable_is_transient() {
    let port = certpool_tests::free_port();
    let cfg = InventoryConfig::Postgres(PostgresInventoryConfig {
        url: SecretSource::Value(format!("postgres://u:pw-not-shown@127.0.0.1:{port}/db")),
        schema: None,
        max_connections: 2,
        connect_timeout: ConfigDuration::from_secs(1),
    });
    let inv = from_config(&cfg, Path::new("/"), &events_config()).unwrap();
    let started = Instant::now();
    let err = inv.get("x").await.expect_err("nothing listens");
    assert_eq!(
        (err.class, err.kind.as_str()),
        (ErrorClass::Transient, "inventory.unavailable"),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    assert!(!err.to_string().contains("pw-not-shown"), "{err}");
}

/// A database migrated by a newer certpool is refused, permanently, rather than written with
/// an old idea of the schema.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_newer_schema_is_refused() {
    let s = pg_server().await;
    let db = s.create_database("newer_").await.unwrap();
    let b = pg_backend(s.admin_url(&db), None);
    b.open().pool_level("p", 0, 0).await.expect("migrate");
    admin_sql(s, &db, "INSERT INTO certpool_migrations (version) VALUES (999)").await;
    let err = b.open().pool_level("p", 0, 0).await.expect_err("newer schema");
    assert_eq!(
        (err.class, err.kind.as_str()),
        (ErrorClass::Permanent, "inventory.version"),
        "{err}"
    );
    assert!(err.message.contains("999"), "{err}");
}

/// With 20,000 certificates of which 200 are assigned, the due scan reads the
/// `(state, renew_at, id)` index, not the table.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_due_scan_uses_the_renew_at_index() {
    let s = pg_server().await;
    let db = s.create_database("plan_").await.unwrap();
    let inv: Arc<dyn Inventory> = pg_backend(s.admin_url(&db), None).open();
    inv.record_issued(&cert("seed", "p", 1)).await.unwrap();
    admin_sql(
        s,
        &db,
        "INSERT INTO certificates (id, pool, sans, serial, issuer, not_before, not_after, state, ca,
                                   key_ref, chain_ref, created_at, renew_at)
         SELECT 'c' || i, 'p', ARRAY['a.example.net'], '01', 'CN=x', 0, 100000 + i,
                CASE WHEN i % 100 = 0 THEN 'assigned' WHEN i % 2 = 0 THEN 'retired' ELSE 'pooled' END,
                'ca', 'k', 'c', 0, 50000 + i
         FROM generate_series(1, 20000) AS i;
         ANALYZE certificates;",
    )
    .await;
    let mut conn = s.admin(&db).await.unwrap();
    conn.execute(format!("PREPARE due (bigint, bigint, text, bigint) AS {}", due_sql()).as_str())
        .await
        .unwrap();
    let plan: Vec<String> = sqlx::query_scalar("EXPLAIN EXECUTE due (60000, -9223372036854775808, '', 500)")
        .fetch_all(&mut conn)
        .await
        .unwrap();
    let plan = plan.join("\n");
    assert!(plan.contains("certificates_state_renew_at"), "{plan}");
    assert!(!plan.contains("Seq Scan"), "{plan}");
    let due = inv.due_for_renewal(60_000, None, 500).await.unwrap();
    assert_eq!(
        due.len(),
        100,
        "assigned with renew_at <= 60000: every 100th of 1..=10000"
    );
}
