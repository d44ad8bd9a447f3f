//! Loading the config file with the process environment.

use anyhow::{Context, Result};
use certpool_domain::config::LoadedConfig;
use std::path::Path;
use std::sync::Arc;

/// Reads, interpolates and validates the config, printing its warnings to stderr.
pub fn load_config(path: &Path) -> Result<Arc<LoadedConfig>> {
    let cfg = LoadedConfig::from_file(path, &|v| std::env::var(v).ok())
        .with_context(|| format!("invalid configuration {}", path.display()))?;
    for w in &cfg.warnings {
        tracing::warn!(key = %w.key, "{}", w.message);
        eprintln!("warning: {}: {}", w.key, w.message);
    }
    Ok(Arc::new(cfg))
}
