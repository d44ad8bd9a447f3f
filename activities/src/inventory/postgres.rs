//! `postgres`: the inventory in PostgreSQL, shared by any number of workers (sqlx, versioned
//! migrations, claims with `FOR UPDATE SKIP LOCKED`).
//!
//! Semantics match [`super::sqlite`] call for call; the inventory conformance suite in
//! `tests/` runs against both. Where SQLite serializes writers with one lock, this module relies
//! on row locks and unique constraints, so concurrent workers never block each other on
//! unrelated rows.

use super::cert_event_data;
use async_trait::async_trait;
use certpool_domain::Failure;
use certpool_domain::cert::{
    AssignmentRecord, CertState, CertificateRecord, ClaimParams, ClaimResult, DeliveryRecord, OutboxEntry, PoolLevel,
};
use certpool_domain::config::PostgresInventoryConfig;
use certpool_domain::events::EventType;
use certpool_domain::plugins::{CertFilter, Inventory};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::{Executor, PgConnection, Row};
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use zeroize::Zeroizing;

/// Migrations, applied in order inside one transaction each run; the `certpool_migrations`
/// table records which ran. Never edit one that has shipped: add a new one.
///
/// Text keys use the `C` collation so that ordering and keyset paging compare bytes, as SQLite
/// does, whatever the database's locale.
const MIGRATIONS: &[&str] = &[r#"
    CREATE TABLE certificates (
        id             TEXT COLLATE "C" PRIMARY KEY,
        pool           TEXT COLLATE "C" NOT NULL,
        sans           TEXT[] NOT NULL,
        serial         TEXT NOT NULL,
        issuer         TEXT NOT NULL,
        not_before     BIGINT NOT NULL,
        not_after      BIGINT NOT NULL,
        state          TEXT NOT NULL CHECK (state IN ('pooled', 'assigned', 'retired')),
        ca             TEXT NOT NULL,
        key_ref        TEXT NOT NULL,
        chain_ref      TEXT NOT NULL,
        created_at     BIGINT NOT NULL,
        renew_at       BIGINT NOT NULL,
        renewal_error  TEXT,
        successor_id   TEXT COLLATE "C",
        predecessor_id TEXT COLLATE "C"
    );
    -- Claims and pool levels: the oldest ready certificate of a pool.
    CREATE INDEX certificates_pool_state_not_after ON certificates (pool, state, not_after, id);
    CREATE INDEX certificates_not_after ON certificates (not_after, id);
    -- The expiry scan's keyset pages: cost follows the due set, not the inventory.
    CREATE INDEX certificates_state_renew_at ON certificates (state, renew_at, id);

    -- A certificate serves one cluster and a cluster holds one certificate: both are enforced
    -- here, not only by the claim's locking.
    CREATE TABLE assignments (
        cluster     TEXT COLLATE "C" PRIMARY KEY,
        cert_id     TEXT COLLATE "C" NOT NULL REFERENCES certificates (id),
        pool        TEXT COLLATE "C" NOT NULL,
        target      TEXT,
        assigned_at BIGINT NOT NULL,
        CONSTRAINT assignments_cert_unique UNIQUE (cert_id)
    );

    CREATE TABLE deliveries (
        cluster    TEXT COLLATE "C" PRIMARY KEY,
        cert_id    TEXT COLLATE "C" NOT NULL,
        serial     TEXT NOT NULL,
        verified   BOOLEAN NOT NULL,
        updated_at BIGINT NOT NULL
    );

    CREATE TABLE outbox (
        id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        event_id     TEXT NOT NULL,
        sink         TEXT NOT NULL,
        event        TEXT NOT NULL,
        created_at   BIGINT NOT NULL,
        delivered_at BIGINT,
        attempts     INTEGER NOT NULL DEFAULT 0,
        retry_at     BIGINT NOT NULL DEFAULT 0,
        last_error   TEXT,
        UNIQUE (event_id, sink)
    );
    -- Relays only ever read undelivered rows, oldest first.
    CREATE INDEX outbox_pending ON outbox (id) WHERE delivered_at IS NULL;

    CREATE TABLE pool_alerts (
        pool        TEXT COLLATE "C" PRIMARY KEY,
        last_low_at BIGINT NOT NULL
    );
"#];

/// Key of the advisory lock that serializes migrations of one database across processes.
const MIGRATION_LOCK: i64 = 0x6365_7274_706f_6f6c; // "certpool"

/// A waiting claim retries every few hundred milliseconds; `pool.low` goes out once per pool
/// per this many seconds, not once per retry.
const POOL_LOW_EVERY_SECS: i64 = 60;

/// How long a relay holds outbox rows it is publishing before another relay may take them.
const OUTBOX_LEASE_SECS: i64 = 60;

/// A claim that loses a race for its own cluster (two claims for one cluster at once) starts
/// over and finds the winner's assignment; more rounds than this mean something else is wrong.
const CLAIM_ROUNDS: usize = 5;

const COLUMNS: &str = "id, pool, sans, serial, issuer, not_before, not_after, state, ca, key_ref, chain_ref, \
     created_at, renew_at, renewal_error, successor_id, predecessor_id";

/// PostgreSQL-backed inventory: a connection pool and the migrations it ran.
pub struct PostgresInventory {
    pool: PgPool,
    /// `host:port/database`, for logs and errors; never the user's password.
    target: String,
    /// The password, so that no error message can ever repeat it.
    password: Option<Zeroizing<String>>,
    migrated: AtomicBool,
    migrating: tokio::sync::Mutex<()>,
    events: Arc<super::EventSettings>,
}

impl std::fmt::Debug for PostgresInventory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresInventory")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

/// What a SQLSTATE means for the caller. Connection trouble, serialization failures, deadlocks
/// and an overloaded or restarting server pass; bad credentials, missing privileges, a missing
/// database and broken data or SQL do not get better by retrying.
fn sqlstate_failure(code: &str) -> (bool, &'static str) {
    let class = code.get(..2).unwrap_or("");
    match (class, code) {
        (_, "40001" | "40P01" | "55P03") => (true, "inventory.conflict"),
        ("08" | "53" | "57" | "58" | "XX", _) => (true, "inventory.unavailable"),
        ("28", _) => (false, "inventory.auth"),
        (_, "42501") => (false, "inventory.permission"),
        ("3D", _) => (false, "inventory.no_database"),
        ("3F", _) => (false, "inventory.no_schema"),
        ("23", _) => (false, "inventory.constraint"),
        ("22" | "42" | "0A", _) => (false, "inventory.postgres"),
        _ => (true, "inventory.postgres"),
    }
}

impl PostgresInventory {
    /// Builds the connection pool without connecting: the first call connects and applies
    /// pending migrations, so a worker starts while the database is briefly away and its
    /// activities retry. Must be called inside a Tokio runtime.
    pub fn open(url: &str, cfg: &PostgresInventoryConfig, events: super::EventSettings) -> Result<Self, Failure> {
        let password = password_of(url).map(Zeroizing::new);
        let mut options = PgConnectOptions::from_str(url).map_err(|e| {
            let msg = redact(&e.to_string(), password.as_deref().map(String::as_str));
            Failure::permanent(
                "inventory.config",
                format!("inventory.url is not a usable PostgreSQL URL: {msg}"),
            )
        })?;
        if options.get_application_name().is_none() {
            // Shows in pg_stat_activity, so DBAs can tell certpool's sessions apart.
            options = options.application_name("certpool");
        }
        if let Some(schema) = &cfg.schema {
            // The server takes `search_path` as a list: the plain-identifier rule (also checked
            // at config load) is what keeps this one schema.
            if !certpool_domain::config::is_plain_sql_identifier(schema) {
                return Err(Failure::permanent(
                    "inventory.config",
                    format!("inventory.schema {schema:?} must be lowercase letters, digits and '_'"),
                ));
            }
            options = options.options([("search_path", schema.as_str())]);
        }
        let target = format!(
            "{}:{}/{}",
            options.get_host(),
            options.get_port(),
            options.get_database().unwrap_or(options.get_username())
        );
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(Failure::permanent(
                "inventory.runtime",
                "the postgres inventory must be opened inside a Tokio runtime",
            ));
        }
        let pool = PgPoolOptions::new()
            .max_connections(cfg.max_connections)
            .acquire_timeout(cfg.connect_timeout.get())
            .connect_lazy_with(options);
        Ok(Self {
            pool,
            target,
            password,
            migrated: AtomicBool::new(false),
            migrating: tokio::sync::Mutex::new(()),
            events: Arc::new(events),
        })
    }

    /// Applies pending migrations now instead of on the first call.
    pub async fn migrate(&self) -> Result<(), Failure> {
        if self.migrated.load(Ordering::Acquire) {
            return Ok(());
        }
        // One migration run per process at a time; the others wait and then skip it.
        let _guard = self.migrating.lock().await;
        if !self.migrated.load(Ordering::Acquire) {
            migrate(&self.pool).await.map_err(|s| self.fail(s))?;
            self.migrated.store(true, Ordering::Release);
        }
        Ok(())
    }

    /// Runs one inventory operation after the migrations and classifies its error.
    async fn run<T>(&self, op: impl Future<Output = Result<T, Step>>) -> Result<T, Failure> {
        self.migrate().await?;
        op.await.map_err(|s| self.fail(s))
    }

    /// Maps a driver error onto the failure classes, naming the database but never the
    /// password.
    fn fail(&self, step: Step) -> Failure {
        let e = match step {
            Step::Fail(f) => return f,
            Step::Db(e) => e,
        };
        let (transient, kind, detail) = match &e {
            sqlx::Error::Database(db) => {
                let code = db.code().map(std::borrow::Cow::into_owned).unwrap_or_default();
                let (transient, kind) = sqlstate_failure(&code);
                (transient, kind, format!("{} (SQLSTATE {code})", db.message()))
            }
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::Protocol(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed => (true, "inventory.unavailable", e.to_string()),
            sqlx::Error::Configuration(_) => (false, "inventory.config", e.to_string()),
            _ => (false, "inventory.decode", e.to_string()),
        };
        let message = format!(
            "{}: {}",
            self.target,
            redact(&detail, self.password.as_deref().map(String::as_str))
        );
        if transient {
            Failure::transient(kind, message)
        } else {
            Failure::permanent(kind, message)
        }
    }
}

/// An error inside an operation: from the driver (classified once, by
/// [`PostgresInventory::fail`]) or already classified.
#[derive(Debug)]
enum Step {
    Db(sqlx::Error),
    Fail(Failure),
}

impl From<sqlx::Error> for Step {
    fn from(e: sqlx::Error) -> Self {
        Self::Db(e)
    }
}

impl From<Failure> for Step {
    fn from(f: Failure) -> Self {
        Self::Fail(f)
    }
}

async fn migrate(pool: &PgPool) -> Result<(), Step> {
    let target = i64::try_from(MIGRATIONS.len()).unwrap_or(i64::MAX);
    // Up to date: nothing to lock and no CREATE privilege needed, so workers may run with a
    // role that can only read and write the tables once an owner has migrated.
    {
        let mut conn = pool.acquire().await?;
        if applied_version(&mut conn).await? == Some(target) {
            return Ok(());
        }
    }
    let mut tx = pool.begin().await?;
    // Several workers may start on a fresh database at once: one migrates, the others wait here
    // and then find nothing left to do. The lock ends with the transaction.
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(MIGRATION_LOCK)
        .execute(&mut *tx)
        .await?;
    // `Executor::execute` with a bare string runs the simple-query protocol, which takes several
    // statements at once (`sqlx::raw_sql` would too, but its future is not `Send`).
    (&mut *tx)
        .execute(
            "CREATE TABLE IF NOT EXISTS certpool_migrations (
                 version    INTEGER PRIMARY KEY,
                 applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
             )",
        )
        .await?;
    let version = applied_version(&mut tx).await?.unwrap_or(0);
    if version > target {
        return Err(Failure::permanent(
            "inventory.version",
            format!("database schema version {version} is newer than this certpool ({target}); upgrade certpool"),
        )
        .into());
    }
    for (i, sql) in MIGRATIONS
        .iter()
        .enumerate()
        .skip(usize::try_from(version).unwrap_or(0))
    {
        (&mut *tx).execute(*sql).await?;
        sqlx::query("INSERT INTO certpool_migrations (version) VALUES ($1)")
            .bind(i32::try_from(i + 1).unwrap_or(i32::MAX))
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// The highest migration applied, `None` before the first.
async fn applied_version(conn: &mut PgConnection) -> Result<Option<i64>, sqlx::Error> {
    let exists: bool = sqlx::query_scalar("SELECT to_regclass('certpool_migrations') IS NOT NULL")
        .fetch_one(&mut *conn)
        .await?;
    if !exists {
        return Ok(None);
    }
    let v: Option<i32> = sqlx::query_scalar("SELECT MAX(version) FROM certpool_migrations")
        .fetch_one(&mut *conn)
        .await?;
    Ok(v.map(i64::from))
}

fn row_to_record(row: &PgRow) -> Result<CertificateRecord, Step> {
    let state: String = row.try_get("state")?;
    Ok(CertificateRecord {
        id: row.try_get("id")?,
        pool: row.try_get("pool")?,
        sans: row.try_get("sans")?,
        serial: row.try_get("serial")?,
        issuer: row.try_get("issuer")?,
        not_before: row.try_get("not_before")?,
        not_after: row.try_get("not_after")?,
        state: state
            .parse()
            .map_err(|e: String| Failure::permanent("inventory.decode", e))?,
        ca: row.try_get("ca")?,
        key_ref: row.try_get("key_ref")?,
        chain_ref: row.try_get("chain_ref")?,
        created_at: row.try_get("created_at")?,
        renew_at: row.try_get("renew_at")?,
        renewal_error: row.try_get("renewal_error")?,
        successor_id: row.try_get("successor_id")?,
        predecessor_id: row.try_get("predecessor_id")?,
    })
}

fn row_to_assignment(row: &PgRow) -> Result<AssignmentRecord, Step> {
    Ok(AssignmentRecord {
        cluster: row.try_get("cluster")?,
        cert_id: row.try_get("cert_id")?,
        pool: row.try_get("pool")?,
        target: row.try_get("target")?,
        assigned_at: row.try_get("assigned_at")?,
    })
}

/// Inserts a certificate unless its id exists; returns whether it did.
async fn insert_cert(conn: &mut PgConnection, c: &CertificateRecord) -> Result<bool, Step> {
    let n = sqlx::query(&format!(
        "INSERT INTO certificates ({COLUMNS})
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
         ON CONFLICT (id) DO NOTHING"
    ))
    .bind(&c.id)
    .bind(&c.pool)
    .bind(&c.sans)
    .bind(&c.serial)
    .bind(&c.issuer)
    .bind(c.not_before)
    .bind(c.not_after)
    .bind(c.state.as_str())
    .bind(&c.ca)
    .bind(&c.key_ref)
    .bind(&c.chain_ref)
    .bind(c.created_at)
    .bind(c.renew_at)
    .bind(&c.renewal_error)
    .bind(&c.successor_id)
    .bind(&c.predecessor_id)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    Ok(n > 0)
}

async fn get_cert(conn: &mut PgConnection, id: &str) -> Result<Option<CertificateRecord>, Step> {
    sqlx::query(&format!("SELECT {COLUMNS} FROM certificates WHERE id = $1"))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?
        .as_ref()
        .map(row_to_record)
        .transpose()
}

/// Writes one outbox row per sink, inside the caller's transaction, so the event exists if and
/// only if the state change that caused it committed.
async fn enqueue(
    conn: &mut PgConnection,
    settings: &super::EventSettings,
    ty: EventType,
    subject: &str,
    data: serde_json::Value,
) -> Result<(), Step> {
    let sinks = settings.sinks_for(ty);
    if sinks.is_empty() {
        return Ok(());
    }
    let (id, json, now) = settings.encode(ty, subject, data)?;
    sqlx::query(
        "INSERT INTO outbox (event_id, sink, event, created_at)
         SELECT $1, sink, $3, $4 FROM unnest($2::text[]) AS sink",
    )
    .bind(&id)
    .bind(&sinks)
    .bind(&json)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

impl PostgresInventory {
    async fn claim_once(&self, p: &ClaimParams) -> Result<Option<ClaimResult>, Step> {
        let mut tx = self.pool.begin().await?;
        let existing: Option<String> = sqlx::query_scalar("SELECT cert_id FROM assignments WHERE cluster = $1")
            .bind(&p.cluster)
            .fetch_optional(&mut *tx)
            .await?;
        if let Some(id) = existing {
            let cert = get_cert(&mut tx, &id)
                .await?
                .ok_or_else(|| Failure::permanent("inventory.dangling", format!("assignment to missing {id}")))?;
            if cert.pool != p.pool {
                return Err(Failure::permanent(
                    "claim.other_pool",
                    format!(
                        "cluster {} already holds certificate {} from pool {}",
                        p.cluster, cert.id, cert.pool
                    ),
                )
                .into());
            }
            return Ok(Some(ClaimResult::Assigned {
                cert: Box::new(cert),
                new: false,
            }));
        }
        // Oldest first, so the pool turns over. SKIP LOCKED: concurrent claimers each lock a
        // different row instead of queueing behind the first one's pick.
        let id: Option<String> = sqlx::query_scalar(
            "SELECT id FROM certificates WHERE pool = $1 AND state = 'pooled' AND not_after > $2
             ORDER BY not_after, id LIMIT 1 FOR UPDATE SKIP LOCKED",
        )
        .bind(&p.pool)
        .bind(p.now.saturating_add(p.min_remaining_secs))
        .fetch_optional(&mut *tx)
        .await?;
        let Some(id) = id else {
            // One upsert decides whether this claim raises the alert: concurrent empty claims
            // queue on the pool's row and all but one find it fresh.
            let raise = sqlx::query(
                "INSERT INTO pool_alerts (pool, last_low_at) VALUES ($1, $2)
                 ON CONFLICT (pool) DO UPDATE SET last_low_at = EXCLUDED.last_low_at
                 WHERE EXCLUDED.last_low_at - pool_alerts.last_low_at >= $3",
            )
            .bind(&p.pool)
            .bind(p.now)
            .bind(POOL_LOW_EVERY_SECS)
            .execute(&mut *tx)
            .await?
            .rows_affected()
                > 0;
            if raise {
                enqueue(
                    &mut tx,
                    &self.events,
                    EventType::PoolLow,
                    &p.pool,
                    serde_json::json!({"pool": p.pool, "ready": 0, "cluster": p.cluster}),
                )
                .await?;
            }
            tx.commit().await?;
            return Ok(Some(ClaimResult::Empty));
        };
        let inserted = sqlx::query(
            "INSERT INTO assignments (cluster, cert_id, pool, target, assigned_at) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (cluster) DO NOTHING",
        )
        .bind(&p.cluster)
        .bind(&id)
        .bind(&p.pool)
        .bind(&p.target)
        .bind(p.now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if inserted == 0 {
            // Another claim for this cluster committed first (the insert waited for it). Roll
            // back, which frees the certificate, and return that claim's assignment.
            tx.rollback().await?;
            return Ok(None);
        }
        let cert = sqlx::query(&format!(
            "UPDATE certificates SET state = 'assigned' WHERE id = $1 AND state = 'pooled' RETURNING {COLUMNS}"
        ))
        .bind(&id)
        .fetch_optional(&mut *tx)
        .await?
        .as_ref()
        .map(row_to_record)
        .transpose()?
        .ok_or_else(|| Failure::transient("inventory.race", format!("certificate {id} left the pool mid-claim")))?;
        let mut data = cert_event_data(&cert);
        data["cluster"] = serde_json::Value::String(p.cluster.clone());
        enqueue(&mut tx, &self.events, EventType::Assigned, &cert.id, data).await?;
        tx.commit().await?;
        Ok(Some(ClaimResult::Assigned {
            cert: Box::new(cert),
            new: true,
        }))
    }

    async fn record_successor_tx(&self, old: &str, new: &CertificateRecord) -> Result<Vec<String>, Step> {
        let mut tx = self.pool.begin().await?;
        // The predecessor's row lock serializes renewals of one certificate, as SQLite's
        // IMMEDIATE transaction does.
        let prev = sqlx::query(&format!("SELECT {COLUMNS} FROM certificates WHERE id = $1 FOR UPDATE"))
            .bind(old)
            .fetch_optional(&mut *tx)
            .await?
            .as_ref()
            .map(row_to_record)
            .transpose()?
            .ok_or_else(|| Failure::permanent("inventory.unknown_cert", format!("no certificate {old}")))?;
        match prev.successor_id.as_deref() {
            Some(s) if s == new.id => {}
            Some(s) => {
                return Err(Failure::permanent(
                    "renewal.already_renewed",
                    format!("certificate {old} was already replaced by {s}"),
                )
                .into());
            }
            None => {
                let mut succ = new.clone();
                succ.state = CertState::Assigned;
                succ.predecessor_id = Some(old.to_owned());
                insert_cert(&mut tx, &succ).await?;
                sqlx::query("UPDATE certificates SET successor_id = $2, renewal_error = NULL WHERE id = $1")
                    .bind(old)
                    .bind(&new.id)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query("UPDATE assignments SET cert_id = $2 WHERE cert_id = $1")
                    .bind(old)
                    .bind(&new.id)
                    .execute(&mut *tx)
                    .await?;
                let mut data = cert_event_data(&succ);
                data["predecessor"] = serde_json::Value::String(old.to_owned());
                enqueue(&mut tx, &self.events, EventType::Renewed, &succ.id, data).await?;
            }
        }
        let clusters: Vec<String> =
            sqlx::query_scalar("SELECT cluster FROM assignments WHERE cert_id = $1 ORDER BY cluster")
                .bind(&new.id)
                .fetch_all(&mut *tx)
                .await?;
        tx.commit().await?;
        Ok(clusters)
    }
}

#[async_trait]
impl Inventory for PostgresInventory {
    async fn record_issued(&self, cert: &CertificateRecord) -> Result<(), Failure> {
        self.run(async {
            let mut tx = self.pool.begin().await?;
            if insert_cert(&mut tx, cert).await? && cert.predecessor_id.is_none() {
                enqueue(
                    &mut tx,
                    &self.events,
                    EventType::Issued,
                    &cert.id,
                    cert_event_data(cert),
                )
                .await?;
            }
            tx.commit().await?;
            Ok(())
        })
        .await
    }

    async fn pool_level(&self, pool: &str, now: i64, min_remaining_secs: i64) -> Result<PoolLevel, Failure> {
        self.run(async {
            let row = sqlx::query(
                "SELECT COUNT(*) AS ready, MIN(not_after) AS soonest FROM certificates
                 WHERE pool = $1 AND state = 'pooled' AND not_after > $2",
            )
            .bind(pool)
            .bind(now.saturating_add(min_remaining_secs))
            .fetch_one(&self.pool)
            .await?;
            let ready: i64 = row.try_get("ready")?;
            Ok(PoolLevel {
                pool: pool.to_owned(),
                ready: u32::try_from(ready).unwrap_or(u32::MAX),
                soonest_expiry: row.try_get("soonest")?,
            })
        })
        .await
    }

    async fn list(&self, filter: &CertFilter) -> Result<Vec<CertificateRecord>, Failure> {
        self.run(async {
            sqlx::query(&format!(
                "SELECT {COLUMNS} FROM certificates WHERE ($1::text IS NULL OR pool = $1)
                 ORDER BY not_after, id LIMIT $2"
            ))
            .bind(&filter.pool)
            .bind(i64::from(filter.limit.unwrap_or(u32::MAX)))
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(row_to_record)
            .collect()
        })
        .await
    }

    async fn get(&self, id: &str) -> Result<Option<CertificateRecord>, Failure> {
        self.run(async { get_cert(&mut *self.pool.acquire().await?, id).await })
            .await
    }

    async fn claim(&self, p: &ClaimParams) -> Result<ClaimResult, Failure> {
        self.run(async {
            for _ in 0..CLAIM_ROUNDS {
                if let Some(result) = self.claim_once(p).await? {
                    return Ok(result);
                }
            }
            Err(Failure::transient(
                "inventory.race",
                format!("claims for cluster {} kept colliding", p.cluster),
            )
            .into())
        })
        .await
    }

    async fn assignment(&self, cluster: &str) -> Result<Option<AssignmentRecord>, Failure> {
        self.run(async {
            sqlx::query("SELECT cluster, cert_id, pool, target, assigned_at FROM assignments WHERE cluster = $1")
                .bind(cluster)
                .fetch_optional(&self.pool)
                .await?
                .as_ref()
                .map(row_to_assignment)
                .transpose()
        })
        .await
    }

    async fn assignments_of(&self, cert_id: &str) -> Result<Vec<AssignmentRecord>, Failure> {
        self.run(async {
            sqlx::query(
                "SELECT cluster, cert_id, pool, target, assigned_at FROM assignments WHERE cert_id = $1 ORDER BY cluster",
            )
            .bind(cert_id)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(row_to_assignment)
            .collect()
        })
        .await
    }

    async fn due_for_renewal(
        &self,
        now: i64,
        after: Option<(i64, String)>,
        limit: u32,
    ) -> Result<Vec<CertificateRecord>, Failure> {
        self.run(async {
            let (after_at, after_id) = after.unwrap_or((i64::MIN, String::new()));
            sqlx::query(&due_sql())
                .bind(now)
                .bind(after_at)
                .bind(after_id)
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await?
                .iter()
                .map(row_to_record)
                .collect()
        })
        .await
    }

    async fn retire_expiring_pooled(&self, pool: &str, threshold: i64) -> Result<u32, Failure> {
        self.run(async {
            let n = sqlx::query(
                "UPDATE certificates SET state = 'retired' WHERE pool = $1 AND state = 'pooled' AND not_after <= $2",
            )
            .bind(pool)
            .bind(threshold)
            .execute(&self.pool)
            .await?
            .rows_affected();
            Ok(u32::try_from(n).unwrap_or(u32::MAX))
        })
        .await
    }

    async fn record_successor(&self, predecessor: &str, successor: &CertificateRecord) -> Result<Vec<String>, Failure> {
        self.run(self.record_successor_tx(predecessor, successor)).await
    }

    async fn set_renewal_error(&self, cert_id: &str, error: Option<&str>) -> Result<(), Failure> {
        self.run(async {
            let mut tx = self.pool.begin().await?;
            let cert = sqlx::query(&format!(
                "UPDATE certificates SET renewal_error = $2 WHERE id = $1 RETURNING {COLUMNS}"
            ))
            .bind(cert_id)
            .bind(error)
            .fetch_optional(&mut *tx)
            .await?
            .as_ref()
            .map(row_to_record)
            .transpose()?;
            if let (Some(err), Some(c)) = (error, cert) {
                let mut data = cert_event_data(&c);
                data["error"] = serde_json::Value::String(err.to_owned());
                enqueue(&mut tx, &self.events, EventType::RenewalFailed, cert_id, data).await?;
            }
            tx.commit().await?;
            Ok(())
        })
        .await
    }

    async fn retire(&self, cert_id: &str) -> Result<(), Failure> {
        self.run(async {
            sqlx::query("UPDATE certificates SET state = 'retired' WHERE id = $1")
                .bind(cert_id)
                .execute(&self.pool)
                .await?;
            Ok(())
        })
        .await
    }

    async fn record_delivery(&self, d: &DeliveryRecord) -> Result<(), Failure> {
        self.run(async {
            let mut tx = self.pool.begin().await?;
            sqlx::query(
                "INSERT INTO deliveries (cluster, cert_id, serial, verified, updated_at) VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (cluster) DO UPDATE SET cert_id = $2, serial = $3, verified = $4, updated_at = $5",
            )
            .bind(&d.cluster)
            .bind(&d.cert_id)
            .bind(&d.serial)
            .bind(d.verified)
            .bind(d.updated_at)
            .execute(&mut *tx)
            .await?;
            enqueue(
                &mut tx,
                &self.events,
                EventType::Delivered,
                &d.cert_id,
                serde_json::json!({"cluster": d.cluster, "cert_id": d.cert_id, "serial": d.serial, "verified": d.verified}),
            )
            .await?;
            tx.commit().await?;
            Ok(())
        })
        .await
    }

    async fn delivery(&self, cluster: &str) -> Result<Option<DeliveryRecord>, Failure> {
        self.run(async {
            let row =
                sqlx::query("SELECT cluster, cert_id, serial, verified, updated_at FROM deliveries WHERE cluster = $1")
                    .bind(cluster)
                    .fetch_optional(&self.pool)
                    .await?;
            Ok(match row {
                Some(r) => Some(DeliveryRecord {
                    cluster: r.try_get("cluster")?,
                    cert_id: r.try_get("cert_id")?,
                    serial: r.try_get("serial")?,
                    verified: r.try_get("verified")?,
                    updated_at: r.try_get("updated_at")?,
                }),
                None => None,
            })
        })
        .await
    }

    async fn out_of_sync_clusters(&self, limit: u32) -> Result<Vec<String>, Failure> {
        self.run(async {
            Ok(sqlx::query_scalar(
                "SELECT a.cluster FROM assignments a LEFT JOIN deliveries d ON d.cluster = a.cluster
                 WHERE d.cert_id IS NULL OR d.cert_id <> a.cert_id ORDER BY a.cluster LIMIT $1",
            )
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?)
        })
        .await
    }

    async fn enqueue_event(&self, ty: EventType, subject: &str, data: serde_json::Value) -> Result<(), Failure> {
        self.run(async { enqueue(&mut *self.pool.acquire().await?, &self.events, ty, subject, data).await })
            .await
    }

    async fn pending_events(&self, now: i64, limit: u32) -> Result<Vec<OutboxEntry>, Failure> {
        self.run(async {
            // Lease what is handed out: another worker's relay skips these rows (locked now,
            // leased after commit) until the lease runs out, so one event is not published by
            // every worker at once.
            let rows = sqlx::query(
                "UPDATE outbox SET retry_at = $3 WHERE id IN (
                     SELECT id FROM outbox WHERE delivered_at IS NULL AND retry_at <= $1
                     ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED)
                 RETURNING id, sink, event, attempts",
            )
            .bind(now)
            .bind(i64::from(limit))
            .bind(now.saturating_add(OUTBOX_LEASE_SECS))
            .fetch_all(&self.pool)
            .await?;
            let mut out = rows
                .iter()
                .map(|r| {
                    let attempts: i32 = r.try_get("attempts")?;
                    Ok(OutboxEntry {
                        id: r.try_get("id")?,
                        sink: r.try_get("sink")?,
                        event_json: r.try_get("event")?,
                        attempts: u32::try_from(attempts).unwrap_or(0),
                    })
                })
                .collect::<Result<Vec<_>, Step>>()?;
            // RETURNING keeps no order.
            out.sort_by_key(|e| e.id);
            Ok(out)
        })
        .await
    }

    async fn event_delivered(&self, id: i64, now: i64) -> Result<(), Failure> {
        self.run(async {
            sqlx::query("UPDATE outbox SET delivered_at = $2 WHERE id = $1")
                .bind(id)
                .bind(now)
                .execute(&self.pool)
                .await?;
            Ok(())
        })
        .await
    }

    async fn event_failed(&self, id: i64, error: &str, retry_at: i64) -> Result<(), Failure> {
        self.run(async {
            sqlx::query("UPDATE outbox SET attempts = attempts + 1, last_error = $2, retry_at = $3 WHERE id = $1")
                .bind(id)
                .bind(error)
                .bind(retry_at)
                .execute(&self.pool)
                .await?;
            Ok(())
        })
        .await
    }
}

/// The due-for-renewal page: keyset pagination on `(renew_at, id)`, served by the
/// `(state, renew_at, id)` index.
pub fn due_sql() -> String {
    format!(
        "SELECT {COLUMNS} FROM certificates
         WHERE state = 'assigned' AND renew_at <= $1 AND (renew_at, id) > ($2, $3)
         ORDER BY renew_at, id LIMIT $4"
    )
}

/// The password in a URL (`postgres://user:password@host/db` or `?password=…`), to redact.
fn password_of(url: &str) -> Option<String> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?']).next().unwrap_or("");
    let from_userinfo = authority
        .rsplit_once('@')
        .and_then(|(userinfo, _)| userinfo.split_once(':'))
        .map(|(_, p)| p.to_owned());
    let from_query = url
        .split_once('?')
        .and_then(|(_, q)| q.split('&').find_map(|kv| kv.strip_prefix("password=")))
        .map(str::to_owned);
    from_userinfo.or(from_query).filter(|p| !p.is_empty())
}

/// Replaces the password, as written in the URL and percent-decoded, with `***`.
fn redact(text: &str, password: Option<&str>) -> String {
    let Some(p) = password else {
        return text.to_owned();
    };
    let decoded = percent_decode(p);
    let mut out = text.replace(p, "***");
    if !decoded.is_empty() {
        out = out.replace(&decoded, "***");
    }
    out
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlstates_are_sorted_into_retry_and_final() {
        for (code, transient, kind) in [
            ("08006", true, "inventory.unavailable"),
            ("57P01", true, "inventory.unavailable"),
            ("53300", true, "inventory.unavailable"),
            ("40001", true, "inventory.conflict"),
            ("40P01", true, "inventory.conflict"),
            ("28P01", false, "inventory.auth"),
            ("42501", false, "inventory.permission"),
            ("3D000", false, "inventory.no_database"),
            ("23505", false, "inventory.constraint"),
            ("42P01", false, "inventory.postgres"),
        ] {
            assert_eq!(sqlstate_failure(code), (transient, kind), "{code}");
        }
    }

    #[test]
    fn passwords_are_found_and_redacted() {
        assert_eq!(
            password_of("postgres://certpool:s3cr%2Ft@db.example.net:5432/certpool").as_deref(),
            Some("s3cr%2Ft")
        );
        assert_eq!(
            password_of("postgresql://db/certpool?user=c&password=hunter2&sslmode=require").as_deref(),
            Some("hunter2")
        );
        assert_eq!(password_of("postgres://certpool@db/certpool"), None);
        assert_eq!(
            redact("auth for x:hunter2 failed", Some("hunter2")),
            "auth for x:*** failed"
        );
    }

    #[tokio::test]
    async fn a_bad_url_fails_permanently_without_echoing_it() {
        let cfg = PostgresInventoryConfig {
            url: certpool_domain::config::SecretSource::Env("unused".into()),
            schema: None,
            max_connections: 1,
            connect_timeout: certpool_domain::duration::Duration::from_secs(1),
        };
        let err = PostgresInventory::open("postgres://u:hunter2@db:notaport/x", &cfg, Default::default())
            .expect_err("bad port");
        assert_eq!(err.kind, "inventory.config");
        assert!(!err.message.contains("hunter2"), "{err}");
    }
}
