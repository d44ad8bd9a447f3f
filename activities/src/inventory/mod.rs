//! Certificate inventories, one module per database.

pub mod postgres;
pub mod sqlite;

use certpool_domain::Failure;
use certpool_domain::config::{EventsConfig, InventoryConfig};
use certpool_domain::plugins::Inventory;
use std::path::Path;
use std::sync::Arc;

/// Who events are for: their CloudEvents `source` and the sinks each event is queued for.
#[derive(Debug, Clone, Default)]
pub struct EventSettings {
    /// CloudEvents `source`.
    pub source: String,
    /// Sink names.
    pub sinks: Vec<String>,
}

impl EventSettings {
    /// From `[events]`.
    pub fn from_config(cfg: &EventsConfig) -> Self {
        Self {
            source: cfg.source.clone().unwrap_or_else(|| "urn:certpool".into()),
            sinks: cfg.sinks.keys().cloned().collect(),
        }
    }
}

/// Opens the configured inventory. SQLite applies pending migrations here; PostgreSQL connects
/// and migrates on first use (so this must run inside a Tokio runtime), and a bad URL fails here.
pub fn from_config(
    cfg: &InventoryConfig,
    base_dir: &Path,
    events: &EventsConfig,
) -> Result<Arc<dyn Inventory>, Failure> {
    match cfg {
        InventoryConfig::Sqlite { path } => {
            let path = if path.is_absolute() {
                path.clone()
            } else {
                base_dir.join(path)
            };
            Ok(Arc::new(sqlite::SqliteInventory::open(
                &path,
                EventSettings::from_config(events),
            )?))
        }
        InventoryConfig::Postgres(pg) => {
            let url = crate::secret_source::resolve(&pg.url, base_dir, "inventory.url")?;
            Ok(Arc::new(postgres::PostgresInventory::open(
                &url,
                pg,
                EventSettings::from_config(events),
            )?))
        }
    }
}
