//! `sqlite`: the inventory in one SQLite file (WAL mode, versioned migrations).

use super::cert_event_data;
use async_trait::async_trait;
use certpool_domain::Failure;
use certpool_domain::cert::{
    AssignmentRecord, CertState, CertificateRecord, ClaimParams, ClaimResult, DeliveryRecord, OutboxEntry, PoolLevel,
};
use certpool_domain::events::EventType;
use certpool_domain::plugins::{CertFilter, Inventory};
use rusqlite::{Connection, OptionalExtension, params};
use std::path::Path;
use std::sync::{Arc, Mutex};

/// Migrations, applied in order; `PRAGMA user_version` records how many ran. Never edit one
/// that has shipped: add a new one.
const MIGRATIONS: &[&str] = &[
    r"
    CREATE TABLE certificates (
        id          TEXT PRIMARY KEY,
        pool        TEXT NOT NULL,
        sans        TEXT NOT NULL,
        serial      TEXT NOT NULL,
        issuer      TEXT NOT NULL,
        not_before  INTEGER NOT NULL,
        not_after   INTEGER NOT NULL,
        state       TEXT NOT NULL,
        ca          TEXT NOT NULL,
        key_ref     TEXT NOT NULL,
        chain_ref   TEXT NOT NULL,
        created_at  INTEGER NOT NULL
    );
    CREATE INDEX certificates_pool_state_not_after ON certificates (pool, state, not_after);
    CREATE INDEX certificates_not_after ON certificates (not_after);
",
    r"
    ALTER TABLE certificates ADD COLUMN renew_at INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE certificates ADD COLUMN renewal_error TEXT;
    ALTER TABLE certificates ADD COLUMN successor_id TEXT;
    ALTER TABLE certificates ADD COLUMN predecessor_id TEXT;
    -- Rows from before renewal tracking: due after 2/3 of their lifetime.
    UPDATE certificates SET renew_at = not_before + (not_after - not_before) * 2 / 3;
    CREATE INDEX certificates_state_renew_at ON certificates (state, renew_at);
    CREATE TABLE assignments (
        cluster     TEXT PRIMARY KEY,
        cert_id     TEXT NOT NULL,
        pool        TEXT NOT NULL,
        target      TEXT,
        assigned_at INTEGER NOT NULL
    );
    CREATE INDEX assignments_cert ON assignments (cert_id);
    CREATE TABLE deliveries (
        cluster    TEXT PRIMARY KEY,
        cert_id    TEXT NOT NULL,
        serial     TEXT NOT NULL,
        verified   INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    );
    CREATE TABLE outbox (
        id           INTEGER PRIMARY KEY AUTOINCREMENT,
        event_id     TEXT NOT NULL,
        sink         TEXT NOT NULL,
        event        TEXT NOT NULL,
        created_at   INTEGER NOT NULL,
        delivered_at INTEGER,
        attempts     INTEGER NOT NULL DEFAULT 0,
        retry_at     INTEGER NOT NULL DEFAULT 0,
        last_error   TEXT,
        UNIQUE (event_id, sink)
    );
    CREATE INDEX outbox_pending ON outbox (delivered_at, retry_at, id);
",
    r"
    CREATE TABLE pool_alerts (
        pool        TEXT PRIMARY KEY,
        last_low_at INTEGER NOT NULL
    );
",
];

/// A waiting claim retries every few hundred milliseconds; `pool.low` goes out once per pool
/// per this many seconds, not once per retry.
const POOL_LOW_EVERY_SECS: i64 = 60;

/// SQLite-backed inventory. One connection behind a mutex: SQLite serializes writers anyway, and
/// every statement here is a single indexed lookup or insert.
pub struct SqliteInventory {
    conn: Arc<Mutex<Connection>>,
    path: String,
    events: Arc<super::EventSettings>,
}

impl std::fmt::Debug for SqliteInventory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteInventory")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

fn db_err(e: &rusqlite::Error) -> Failure {
    match e {
        rusqlite::Error::SqliteFailure(code, _)
            if matches!(
                code.code,
                rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
            ) =>
        {
            Failure::transient("inventory.busy", e.to_string())
        }
        _ => Failure::transient("inventory.sqlite", e.to_string()),
    }
}

impl SqliteInventory {
    /// Opens or creates the database and migrates it.
    pub fn open(path: &Path, events: super::EventSettings) -> Result<Self, Failure> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| Failure::permanent("inventory.open", format!("cannot create {}: {e}", dir.display())))?;
        }
        let mut conn = Connection::open(path)
            .map_err(|e| Failure::permanent("inventory.open", format!("cannot open {}: {e}", path.display())))?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(|e| db_err(&e))?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(|e| db_err(&e))?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(|e| db_err(&e))?;
        migrate(&mut conn)?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
            path: path.display().to_string(),
            events: Arc::new(events),
        })
    }

    async fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, Failure> + Send + 'static,
    ) -> Result<T, Failure> {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = conn
                .lock()
                .map_err(|_| Failure::transient("inventory.poisoned", "inventory lock poisoned"))?;
            f(&mut guard)
        })
        .await
        .map_err(|e| Failure::transient("inventory.join", e.to_string()))?
    }
}

fn migrate(conn: &mut Connection) -> Result<(), Failure> {
    // One migration per IMMEDIATE transaction, with the version read inside it: several
    // processes (workers, the CLI) may open a fresh database at the same moment.
    loop {
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(|e| db_err(&e))?;
        let version: usize = tx
            .pragma_query_value(None, "user_version", |r| r.get::<_, i64>(0))
            .map_err(|e| db_err(&e))?
            .try_into()
            .unwrap_or(0);
        if version > MIGRATIONS.len() {
            return Err(Failure::permanent(
                "inventory.version",
                format!(
                    "database schema version {version} is newer than this certpool ({}); upgrade certpool",
                    MIGRATIONS.len()
                ),
            ));
        }
        if version == MIGRATIONS.len() {
            return Ok(());
        }
        tx.execute_batch(MIGRATIONS[version]).map_err(|e| db_err(&e))?;
        tx.pragma_update(None, "user_version", i64::try_from(version + 1).unwrap_or(i64::MAX))
            .map_err(|e| db_err(&e))?;
        tx.commit().map_err(|e| db_err(&e))?;
    }
}

/// The due-for-renewal page: keyset pagination on `(renew_at, id)`, served by the
/// `(state, renew_at)` index, so its cost follows the due set rather than the inventory.
fn due_sql() -> String {
    format!(
        "SELECT {COLUMNS} FROM certificates
         WHERE state = 'assigned' AND renew_at <= ?1
           AND (renew_at > ?2 OR (renew_at = ?2 AND id > ?3))
         ORDER BY renew_at, id LIMIT ?4"
    )
}

/// How long a relay holds outbox rows it is publishing before another relay may take them.
const OUTBOX_LEASE_SECS: i64 = 60;

const COLUMNS: &str = "id, pool, sans, serial, issuer, not_before, not_after, state, ca, key_ref, chain_ref, \
     created_at, renew_at, renewal_error, successor_id, predecessor_id";

fn row_to_record(row: &rusqlite::Row<'_>) -> rusqlite::Result<CertificateRecord> {
    let sans: String = row.get(2)?;
    let state: String = row.get(7)?;
    Ok(CertificateRecord {
        id: row.get(0)?,
        pool: row.get(1)?,
        sans: serde_json::from_str(&sans).unwrap_or_default(),
        serial: row.get(3)?,
        issuer: row.get(4)?,
        not_before: row.get(5)?,
        not_after: row.get(6)?,
        state: state.parse().unwrap_or(CertState::Retired),
        ca: row.get(8)?,
        key_ref: row.get(9)?,
        chain_ref: row.get(10)?,
        created_at: row.get(11)?,
        renew_at: row.get(12)?,
        renewal_error: row.get(13)?,
        successor_id: row.get(14)?,
        predecessor_id: row.get(15)?,
    })
}

fn insert_cert(tx: &rusqlite::Transaction<'_>, c: &CertificateRecord) -> Result<bool, Failure> {
    let sans = serde_json::to_string(&c.sans).map_err(|e| Failure::permanent("inventory.encode", e.to_string()))?;
    let n = tx
        .execute(
            &format!(
                "INSERT INTO certificates ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)
                 ON CONFLICT (id) DO NOTHING"
            ),
            params![
                c.id,
                c.pool,
                sans,
                c.serial,
                c.issuer,
                c.not_before,
                c.not_after,
                c.state.as_str(),
                c.ca,
                c.key_ref,
                c.chain_ref,
                c.created_at,
                c.renew_at,
                c.renewal_error,
                c.successor_id,
                c.predecessor_id
            ],
        )
        .map_err(|e| db_err(&e))?;
    Ok(n > 0)
}

fn get_cert(conn: &Connection, id: &str) -> Result<Option<CertificateRecord>, Failure> {
    conn.query_row(
        &format!("SELECT {COLUMNS} FROM certificates WHERE id = ?1"),
        params![id],
        row_to_record,
    )
    .optional()
    .map_err(|e| db_err(&e))
}

/// Writes one outbox row per sink, inside the caller's transaction, so the event exists if and
/// only if the state change that caused it committed.
fn enqueue(
    tx: &Connection,
    settings: &super::EventSettings,
    ty: EventType,
    subject: &str,
    data: serde_json::Value,
) -> Result<(), Failure> {
    let sinks = settings.sinks_for(ty);
    if sinks.is_empty() {
        return Ok(());
    }
    let (id, json, now) = settings.encode(ty, subject, data)?;
    for sink in sinks {
        tx.execute(
            "INSERT INTO outbox (event_id, sink, event, created_at) VALUES (?1, ?2, ?3, ?4)",
            params![id, sink, json, now],
        )
        .map_err(|e| db_err(&e))?;
    }
    Ok(())
}

fn row_to_assignment(row: &rusqlite::Row<'_>) -> rusqlite::Result<AssignmentRecord> {
    Ok(AssignmentRecord {
        cluster: row.get(0)?,
        cert_id: row.get(1)?,
        pool: row.get(2)?,
        target: row.get(3)?,
        assigned_at: row.get(4)?,
    })
}

#[async_trait]
impl Inventory for SqliteInventory {
    async fn record_issued(&self, cert: &CertificateRecord) -> Result<(), Failure> {
        let c = cert.clone();
        let events = self.events.clone();
        self.with(move |conn| {
            let tx = conn.transaction().map_err(|e| db_err(&e))?;
            if insert_cert(&tx, &c)? && c.predecessor_id.is_none() {
                enqueue(&tx, &events, EventType::Issued, &c.id, cert_event_data(&c))?;
            }
            tx.commit().map_err(|e| db_err(&e))
        })
        .await
    }

    async fn pool_level(&self, pool: &str, now: i64, min_remaining_secs: i64) -> Result<PoolLevel, Failure> {
        let pool = pool.to_owned();
        self.with(move |conn| {
            let threshold = now.saturating_add(min_remaining_secs);
            let (ready, soonest): (i64, Option<i64>) = conn
                .query_row(
                    "SELECT COUNT(*), MIN(not_after) FROM certificates
                     WHERE pool = ?1 AND state = 'pooled' AND not_after > ?2",
                    params![pool, threshold],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .map_err(|e| db_err(&e))?;
            Ok(PoolLevel {
                pool,
                ready: u32::try_from(ready).unwrap_or(u32::MAX),
                soonest_expiry: soonest,
            })
        })
        .await
    }

    async fn list(&self, filter: &CertFilter) -> Result<Vec<CertificateRecord>, Failure> {
        let filter = filter.clone();
        self.with(move |conn| {
            let limit = i64::from(filter.limit.unwrap_or(u32::MAX));
            let mut stmt = conn
                .prepare(&format!(
                    "SELECT {COLUMNS} FROM certificates WHERE (?1 IS NULL OR pool = ?1)
                     ORDER BY not_after, id LIMIT ?2"
                ))
                .map_err(|e| db_err(&e))?;
            let rows = stmt
                .query_map(params![filter.pool, limit], row_to_record)
                .map_err(|e| db_err(&e))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| db_err(&e))?;
            Ok(rows)
        })
        .await
    }

    async fn get(&self, id: &str) -> Result<Option<CertificateRecord>, Failure> {
        let id = id.to_owned();
        self.with(move |conn| get_cert(conn, &id)).await
    }

    async fn claim(&self, p: &ClaimParams) -> Result<ClaimResult, Failure> {
        let p = p.clone();
        let events = self.events.clone();
        self.with(move |conn| {
            // IMMEDIATE takes the write lock up front: two claimers can never both read the same
            // pooled row as free.
            let tx = conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(|e| db_err(&e))?;
            let existing: Option<String> = tx
                .query_row(
                    "SELECT cert_id FROM assignments WHERE cluster = ?1",
                    params![p.cluster],
                    |r| r.get(0),
                )
                .optional()
                .map_err(|e| db_err(&e))?;
            if let Some(id) = existing {
                let cert = get_cert(&tx, &id)?
                    .ok_or_else(|| Failure::permanent("inventory.dangling", format!("assignment to missing {id}")))?;
                if cert.pool != p.pool {
                    return Err(Failure::permanent(
                        "claim.other_pool",
                        format!(
                            "cluster {} already holds certificate {} from pool {}",
                            p.cluster, cert.id, cert.pool
                        ),
                    ));
                }
                return Ok(ClaimResult::Assigned {
                    cert: Box::new(cert),
                    new: false,
                });
            }
            // Oldest first: the pool turns over and nothing sits in it until it expires.
            let id: Option<String> = tx
                .query_row(
                    "SELECT id FROM certificates WHERE pool = ?1 AND state = 'pooled' AND not_after > ?2
                     ORDER BY not_after, id LIMIT 1",
                    params![p.pool, p.now.saturating_add(p.min_remaining_secs)],
                    |r| r.get(0),
                )
                .optional()
                .map_err(|e| db_err(&e))?;
            let Some(id) = id else {
                let last: Option<i64> = tx
                    .query_row(
                        "SELECT last_low_at FROM pool_alerts WHERE pool = ?1",
                        params![p.pool],
                        |r| r.get(0),
                    )
                    .optional()
                    .map_err(|e| db_err(&e))?;
                if last.is_none_or(|t| p.now - t >= POOL_LOW_EVERY_SECS) {
                    tx.execute(
                        "INSERT INTO pool_alerts (pool, last_low_at) VALUES (?1, ?2)
                         ON CONFLICT (pool) DO UPDATE SET last_low_at = ?2",
                        params![p.pool, p.now],
                    )
                    .map_err(|e| db_err(&e))?;
                    enqueue(
                        &tx,
                        &events,
                        EventType::PoolLow,
                        &p.pool,
                        serde_json::json!({"pool": p.pool, "ready": 0, "cluster": p.cluster}),
                    )?;
                }
                tx.commit().map_err(|e| db_err(&e))?;
                return Ok(ClaimResult::Empty);
            };
            tx.execute(
                "UPDATE certificates SET state = 'assigned' WHERE id = ?1 AND state = 'pooled'",
                params![id],
            )
            .map_err(|e| db_err(&e))?;
            tx.execute(
                "INSERT INTO assignments (cluster, cert_id, pool, target, assigned_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![p.cluster, id, p.pool, p.target, p.now],
            )
            .map_err(|e| db_err(&e))?;
            let cert =
                get_cert(&tx, &id)?.ok_or_else(|| Failure::transient("inventory.race", "claimed row vanished"))?;
            let mut data = cert_event_data(&cert);
            data["cluster"] = serde_json::Value::String(p.cluster.clone());
            enqueue(&tx, &events, EventType::Assigned, &cert.id, data)?;
            tx.commit().map_err(|e| db_err(&e))?;
            Ok(ClaimResult::Assigned {
                cert: Box::new(cert),
                new: true,
            })
        })
        .await
    }

    async fn assignment(&self, cluster: &str) -> Result<Option<AssignmentRecord>, Failure> {
        let cluster = cluster.to_owned();
        self.with(move |conn| {
            conn.query_row(
                "SELECT cluster, cert_id, pool, target, assigned_at FROM assignments WHERE cluster = ?1",
                params![cluster],
                row_to_assignment,
            )
            .optional()
            .map_err(|e| db_err(&e))
        })
        .await
    }

    async fn assignments_of(&self, cert_id: &str) -> Result<Vec<AssignmentRecord>, Failure> {
        let id = cert_id.to_owned();
        self.with(move |conn| {
            let mut stmt = conn
                .prepare(
                    "SELECT cluster, cert_id, pool, target, assigned_at FROM assignments WHERE cert_id = ?1 ORDER BY cluster",
                )
                .map_err(|e| db_err(&e))?;
            let rows = stmt
                .query_map(params![id], row_to_assignment)
                .map_err(|e| db_err(&e))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| db_err(&e))?;
            Ok(rows)
        })
        .await
    }

    async fn due_for_renewal(
        &self,
        now: i64,
        after: Option<(i64, String)>,
        limit: u32,
    ) -> Result<Vec<CertificateRecord>, Failure> {
        self.with(move |conn| {
            let (after_at, after_id) = after.unwrap_or((i64::MIN, String::new()));
            // Served by the (state, renew_at) index: cost follows the size of the due set, not
            // of the inventory.
            let mut stmt = conn.prepare(&due_sql()).map_err(|e| db_err(&e))?;
            let rows = stmt
                .query_map(params![now, after_at, after_id, i64::from(limit)], row_to_record)
                .map_err(|e| db_err(&e))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| db_err(&e))?;
            Ok(rows)
        })
        .await
    }

    async fn retire_expiring_pooled(&self, pool: &str, threshold: i64) -> Result<u32, Failure> {
        let pool = pool.to_owned();
        self.with(move |conn| {
            let n = conn
                .execute(
                    "UPDATE certificates SET state = 'retired' WHERE pool = ?1 AND state = 'pooled' AND not_after <= ?2",
                    params![pool, threshold],
                )
                .map_err(|e| db_err(&e))?;
            Ok(u32::try_from(n).unwrap_or(u32::MAX))
        })
        .await
    }

    async fn record_successor(&self, predecessor: &str, successor: &CertificateRecord) -> Result<Vec<String>, Failure> {
        let old = predecessor.to_owned();
        let new = successor.clone();
        let events = self.events.clone();
        self.with(move |conn| {
            let tx = conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(|e| db_err(&e))?;
            let prev = get_cert(&tx, &old)?
                .ok_or_else(|| Failure::permanent("inventory.unknown_cert", format!("no certificate {old}")))?;
            match prev.successor_id.as_deref() {
                Some(s) if s == new.id => {}
                Some(s) => {
                    return Err(Failure::permanent(
                        "renewal.already_renewed",
                        format!("certificate {old} was already replaced by {s}"),
                    ));
                }
                None => {
                    let mut succ = new.clone();
                    succ.state = CertState::Assigned;
                    succ.predecessor_id = Some(old.clone());
                    insert_cert(&tx, &succ)?;
                    tx.execute(
                        "UPDATE certificates SET successor_id = ?2, renewal_error = NULL WHERE id = ?1",
                        params![old, new.id],
                    )
                    .map_err(|e| db_err(&e))?;
                    tx.execute(
                        "UPDATE assignments SET cert_id = ?2 WHERE cert_id = ?1",
                        params![old, new.id],
                    )
                    .map_err(|e| db_err(&e))?;
                    let mut data = cert_event_data(&succ);
                    data["predecessor"] = serde_json::Value::String(old.clone());
                    enqueue(&tx, &events, EventType::Renewed, &succ.id, data)?;
                }
            }
            let clusters = {
                let mut stmt = tx
                    .prepare("SELECT cluster FROM assignments WHERE cert_id = ?1 ORDER BY cluster")
                    .map_err(|e| db_err(&e))?;
                stmt.query_map(params![new.id], |r| r.get::<_, String>(0))
                    .map_err(|e| db_err(&e))?
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| db_err(&e))?
            };
            tx.commit().map_err(|e| db_err(&e))?;
            Ok(clusters)
        })
        .await
    }

    async fn set_renewal_error(&self, cert_id: &str, error: Option<&str>) -> Result<(), Failure> {
        let id = cert_id.to_owned();
        let error = error.map(str::to_owned);
        let events = self.events.clone();
        self.with(move |conn| {
            let tx = conn.transaction().map_err(|e| db_err(&e))?;
            tx.execute(
                "UPDATE certificates SET renewal_error = ?2 WHERE id = ?1",
                params![id, error],
            )
            .map_err(|e| db_err(&e))?;
            if let Some(err) = &error
                && let Some(c) = get_cert(&tx, &id)?
            {
                let mut data = cert_event_data(&c);
                data["error"] = serde_json::Value::String(err.clone());
                enqueue(&tx, &events, EventType::RenewalFailed, &id, data)?;
            }
            tx.commit().map_err(|e| db_err(&e))
        })
        .await
    }

    async fn retire(&self, cert_id: &str) -> Result<(), Failure> {
        let id = cert_id.to_owned();
        self.with(move |conn| {
            conn.execute("UPDATE certificates SET state = 'retired' WHERE id = ?1", params![id])
                .map_err(|e| db_err(&e))?;
            Ok(())
        })
        .await
    }

    async fn record_delivery(&self, d: &DeliveryRecord) -> Result<(), Failure> {
        let d = d.clone();
        let events = self.events.clone();
        self.with(move |conn| {
            let tx = conn.transaction().map_err(|e| db_err(&e))?;
            tx.execute(
                "INSERT INTO deliveries (cluster, cert_id, serial, verified, updated_at) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (cluster) DO UPDATE SET cert_id = ?2, serial = ?3, verified = ?4, updated_at = ?5",
                params![d.cluster, d.cert_id, d.serial, d.verified, d.updated_at],
            )
            .map_err(|e| db_err(&e))?;
            enqueue(
                &tx,
                &events,
                EventType::Delivered,
                &d.cert_id,
                serde_json::json!({"cluster": d.cluster, "cert_id": d.cert_id, "serial": d.serial, "verified": d.verified}),
            )?;
            tx.commit().map_err(|e| db_err(&e))
        })
        .await
    }

    async fn delivery(&self, cluster: &str) -> Result<Option<DeliveryRecord>, Failure> {
        let cluster = cluster.to_owned();
        self.with(move |conn| {
            conn.query_row(
                "SELECT cluster, cert_id, serial, verified, updated_at FROM deliveries WHERE cluster = ?1",
                params![cluster],
                |r| {
                    Ok(DeliveryRecord {
                        cluster: r.get(0)?,
                        cert_id: r.get(1)?,
                        serial: r.get(2)?,
                        verified: r.get(3)?,
                        updated_at: r.get(4)?,
                    })
                },
            )
            .optional()
            .map_err(|e| db_err(&e))
        })
        .await
    }

    async fn out_of_sync_clusters(&self, limit: u32) -> Result<Vec<String>, Failure> {
        self.with(move |conn| {
            let mut stmt = conn
                .prepare(
                    "SELECT a.cluster FROM assignments a LEFT JOIN deliveries d ON d.cluster = a.cluster
                     WHERE d.cert_id IS NULL OR d.cert_id != a.cert_id ORDER BY a.cluster LIMIT ?1",
                )
                .map_err(|e| db_err(&e))?;
            let rows = stmt
                .query_map(params![i64::from(limit)], |r| r.get::<_, String>(0))
                .map_err(|e| db_err(&e))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| db_err(&e))?;
            Ok(rows)
        })
        .await
    }

    async fn enqueue_event(&self, ty: EventType, subject: &str, data: serde_json::Value) -> Result<(), Failure> {
        let subject = subject.to_owned();
        let events = self.events.clone();
        self.with(move |conn| enqueue(conn, &events, ty, &subject, data)).await
    }

    async fn pending_events(&self, now: i64, limit: u32) -> Result<Vec<OutboxEntry>, Failure> {
        self.with(move |conn| {
            // Lease what is handed out: another worker's relay skips these rows until the lease
            // runs out, so one event is not published by every worker at once.
            let tx = conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(|e| db_err(&e))?;
            let rows = {
                let mut stmt = tx
                    .prepare(
                        "SELECT id, sink, event, attempts FROM outbox
                         WHERE delivered_at IS NULL AND retry_at <= ?1 ORDER BY id LIMIT ?2",
                    )
                    .map_err(|e| db_err(&e))?;
                stmt.query_map(params![now, i64::from(limit)], |r| {
                    Ok(OutboxEntry {
                        id: r.get(0)?,
                        sink: r.get(1)?,
                        event_json: r.get(2)?,
                        attempts: r.get(3)?,
                    })
                })
                .map_err(|e| db_err(&e))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| db_err(&e))?
            };
            for r in &rows {
                tx.execute(
                    "UPDATE outbox SET retry_at = ?2 WHERE id = ?1",
                    params![r.id, now + OUTBOX_LEASE_SECS],
                )
                .map_err(|e| db_err(&e))?;
            }
            tx.commit().map_err(|e| db_err(&e))?;
            Ok(rows)
        })
        .await
    }

    async fn event_delivered(&self, id: i64, now: i64) -> Result<(), Failure> {
        self.with(move |conn| {
            conn.execute("UPDATE outbox SET delivered_at = ?2 WHERE id = ?1", params![id, now])
                .map_err(|e| db_err(&e))?;
            Ok(())
        })
        .await
    }

    async fn event_failed(&self, id: i64, error: &str, retry_at: i64) -> Result<(), Failure> {
        let error = error.to_owned();
        self.with(move |conn| {
            conn.execute(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ?2, retry_at = ?3 WHERE id = ?1",
                params![id, error, retry_at],
            )
            .map_err(|e| db_err(&e))?;
            Ok(())
        })
        .await
    }
}

// Behaviour shared with every inventory is checked by the conformance suite
// (tests/src/inventory_suite.rs, run by tests/tests/inventory.rs); what is here is SQLite's own.
#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> crate::inventory::EventSettings {
        crate::inventory::EventSettings {
            source: "test".into(),
            sinks: vec!["s1".into()],
        }
    }

    #[test]
    fn due_scan_uses_the_renew_at_index() {
        let dir = tempfile::tempdir().expect("tempdir");
        let inv = SqliteInventory::open(&dir.path().join("inv.sqlite"), settings()).expect("open");
        let conn = inv.conn.lock().expect("lock");
        let plan: Vec<String> = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {}", due_sql()))
            .expect("prepare")
            .query_map(params![0, 0, "", 10], |r| r.get::<_, String>(3))
            .expect("plan")
            .collect::<Result<_, _>>()
            .expect("rows");
        let text = plan.join(" | ");
        assert!(
            text.contains("certificates_state_renew_at"),
            "the due scan must not read the whole table: {text}"
        );
        assert!(!text.contains("SCAN certificates"), "{text}");
    }
}
