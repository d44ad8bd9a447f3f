//! Certificate inventories, one module per database.

pub mod sqlite;

use certpool_domain::Failure;
use certpool_domain::config::InventoryConfig;
use certpool_domain::plugins::Inventory;
use std::path::Path;
use std::sync::Arc;

/// Opens the configured inventory, applying pending migrations.
pub fn from_config(cfg: &InventoryConfig, base_dir: &Path) -> Result<Arc<dyn Inventory>, Failure> {
    match cfg {
        InventoryConfig::Sqlite { path } => {
            let path = if path.is_absolute() {
                path.clone()
            } else {
                base_dir.join(path)
            };
            Ok(Arc::new(sqlite::SqliteInventory::open(&path)?))
        }
    }
}
