//! Certificate inventories, one module per database.

pub mod postgres;
pub mod sqlite;

use certpool_domain::Failure;
use certpool_domain::config::{EventsConfig, InventoryConfig};
use certpool_domain::plugins::Inventory;
use std::path::Path;
use std::sync::Arc;

/// The outbox "sink" that is not a publisher but certpool itself: a `certificate.assigned` row
/// for it asks the relay to start the cluster's `ClusterSync` and to signal the pool's
/// replenisher. Queued in the claim's own transaction, so the request exists if and only if the
/// assignment does, and it costs the claim no extra workflow task.
pub const NOTIFY_SINK: &str = "certpool.notify";

/// Who events are for: their CloudEvents `source` and the sinks each event is queued for.
#[derive(Debug, Clone, Default)]
pub struct EventSettings {
    /// CloudEvents `source`.
    pub source: String,
    /// Sink names.
    pub sinks: Vec<String>,
}

impl EventSettings {
    /// A new event as the outbox stores it: its id, its CloudEvents JSON and its time.
    pub(crate) fn encode(
        &self,
        ty: certpool_domain::events::EventType,
        subject: &str,
        data: serde_json::Value,
    ) -> Result<(String, String, i64), Failure> {
        let now = crate::now_unix();
        let id = format!("{:032x}", rand::random::<u128>());
        let event = certpool_domain::events::CloudEvent {
            specversion: "1.0".into(),
            id: id.clone(),
            source: self.source.clone(),
            ty: format!("{}{}", certpool_domain::events::TYPE_PREFIX, ty.as_str()),
            subject: Some(subject.to_owned()),
            time: certpool_domain::time::rfc3339(now),
            datacontenttype: "application/json".into(),
            data,
        };
        let json = serde_json::to_string(&event).map_err(|e| Failure::permanent("inventory.encode", e.to_string()))?;
        Ok((id, json, now))
    }

    /// The outbox rows one event of type `ty` gets: every configured sink, plus
    /// [`NOTIFY_SINK`] for assignments.
    pub fn sinks_for(&self, ty: certpool_domain::events::EventType) -> Vec<&str> {
        let mut out: Vec<&str> = self.sinks.iter().map(String::as_str).collect();
        if ty == certpool_domain::events::EventType::Assigned {
            out.push(NOTIFY_SINK);
        }
        out
    }

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

/// The `data` of certificate events, the same for every inventory.
pub(crate) fn cert_event_data(c: &certpool_domain::cert::CertificateRecord) -> serde_json::Value {
    serde_json::json!({
        "id": c.id,
        "pool": c.pool,
        "sans": c.sans,
        "serial": c.serial,
        "not_before": certpool_domain::time::rfc3339(c.not_before),
        "not_after": certpool_domain::time::rfc3339(c.not_after),
    })
}
