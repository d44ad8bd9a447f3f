//! Secret stores, one module per product.

pub mod aws;
pub mod local;
pub mod vault;

use crate::secret_source;
use certpool_domain::Failure;
use certpool_domain::config::SecretStoreConfig;
use certpool_domain::plugins::SecretStore;
use std::path::Path;
use std::sync::Arc;

/// Builds the configured secret store.
pub fn from_config(cfg: &SecretStoreConfig, base_dir: &Path) -> Result<Arc<dyn SecretStore>, Failure> {
    match cfg {
        SecretStoreConfig::Local { path, encryption_key } => {
            let key = secret_source::resolve(encryption_key, base_dir, "secrets.encryption_key")?;
            let root = if path.is_absolute() {
                path.clone()
            } else {
                base_dir.join(path)
            };
            Ok(Arc::new(local::LocalSecretStore::open(root, &key)?))
        }
        SecretStoreConfig::Vault(v) => Ok(Arc::new(vault::VaultSecretStore::new(v, base_dir)?)),
        SecretStoreConfig::AwsSecretsManager(a) => Ok(Arc::new(aws::AwsSecretsManagerStore::new(a, base_dir)?)),
    }
}

/// Secret paths are `/`-separated segments of `[A-Za-z0-9._-]`, never `.` or `..`, so that no
/// path can escape the store's root or collide with temp files.
pub(crate) fn validate_path(path: &str) -> Result<(), Failure> {
    let bad = |why: &str| Failure::permanent("secrets.bad_path", format!("secret path {path:?}: {why}"));
    if path.is_empty() || path.len() > 512 {
        return Err(bad("must be 1 to 512 characters"));
    }
    for seg in path.split('/') {
        if seg.is_empty() || seg == "." || seg == ".." {
            return Err(bad("empty, '.' or '..' segment"));
        }
        if seg.starts_with(".tmp") {
            return Err(bad("segments may not start with .tmp"));
        }
        if !seg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        {
            return Err(bad("only A-Z, a-z, 0-9, '.', '_' and '-' are allowed"));
        }
    }
    Ok(())
}
