//! `sqlite`: the inventory in one SQLite file (WAL mode, versioned migrations).

use async_trait::async_trait;
use certpool_domain::Failure;
use certpool_domain::cert::{CertState, CertificateRecord, PoolLevel};
use certpool_domain::plugins::{CertFilter, Inventory};
use rusqlite::{Connection, OptionalExtension, params};
use std::path::Path;
use std::sync::{Arc, Mutex};

/// Migrations, applied in order; `PRAGMA user_version` records how many ran. Never edit one
/// that has shipped: add a new one.
const MIGRATIONS: &[&str] = &[r"
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
"];

/// SQLite-backed inventory. One connection behind a mutex: SQLite serializes writers anyway, and
/// every statement here is a single indexed lookup or insert.
pub struct SqliteInventory {
    conn: Arc<Mutex<Connection>>,
    path: String,
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
    pub fn open(path: &Path) -> Result<Self, Failure> {
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
    let version: usize = conn
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
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version) {
        let tx = conn.transaction().map_err(|e| db_err(&e))?;
        tx.execute_batch(sql).map_err(|e| db_err(&e))?;
        tx.pragma_update(None, "user_version", i64::try_from(i + 1).unwrap_or(i64::MAX))
            .map_err(|e| db_err(&e))?;
        tx.commit().map_err(|e| db_err(&e))?;
    }
    Ok(())
}

const COLUMNS: &str =
    "id, pool, sans, serial, issuer, not_before, not_after, state, ca, key_ref, chain_ref, created_at";

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
    })
}

#[async_trait]
impl Inventory for SqliteInventory {
    async fn record_issued(&self, cert: &CertificateRecord) -> Result<(), Failure> {
        let c = cert.clone();
        self.with(move |conn| {
            let sans =
                serde_json::to_string(&c.sans).map_err(|e| Failure::permanent("inventory.encode", e.to_string()))?;
            conn.execute(
                &format!(
                    "INSERT INTO certificates ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
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
                    c.created_at
                ],
            )
            .map_err(|e| db_err(&e))?;
            Ok(())
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
        self.with(move |conn| {
            conn.query_row(
                &format!("SELECT {COLUMNS} FROM certificates WHERE id = ?1"),
                params![id],
                row_to_record,
            )
            .optional()
            .map_err(|e| db_err(&e))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert(id: &str, pool: &str, not_after: i64) -> CertificateRecord {
        CertificateRecord {
            id: id.into(),
            pool: pool.into(),
            sans: vec!["a.example.net".into()],
            serial: "01".into(),
            issuer: "CN=test".into(),
            not_before: 0,
            not_after,
            state: CertState::Pooled,
            ca: "test".into(),
            key_ref: format!("certs/{id}/key"),
            chain_ref: format!("certs/{id}/chain"),
            created_at: 0,
        }
    }

    #[tokio::test]
    async fn level_counts_only_fresh_pooled_certs_and_insert_is_idempotent() {
        let dir = tempfile::tempdir().expect("tempdir");
        let inv = SqliteInventory::open(&dir.path().join("db/inv.sqlite")).expect("open");
        inv.record_issued(&cert("a", "p", 1_000)).await.expect("a");
        inv.record_issued(&cert("a", "p", 1_000)).await.expect("a again");
        inv.record_issued(&cert("b", "p", 5_000)).await.expect("b");
        inv.record_issued(&cert("c", "q", 5_000)).await.expect("c");
        let level = inv.pool_level("p", 0, 500).await.expect("level");
        assert_eq!((level.ready, level.soonest_expiry), (2, Some(1_000)));
        let level = inv.pool_level("p", 0, 2_000).await.expect("level");
        assert_eq!((level.ready, level.soonest_expiry), (1, Some(5_000)));
        let all = inv.list(&CertFilter::default()).await.expect("list");
        assert_eq!(
            all.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(),
            vec!["a", "b", "c"]
        );
        assert_eq!(inv.get("b").await.expect("get").map(|c| c.not_after), Some(5_000));
        drop(inv);
        // Reopening must not re-run migrations.
        let inv = SqliteInventory::open(&dir.path().join("db/inv.sqlite")).expect("reopen");
        assert_eq!(
            inv.list(&CertFilter {
                pool: Some("q".into()),
                limit: None
            })
            .await
            .expect("list")
            .len(),
            1
        );
    }
}
