//! Resolving `{ env = … }`, `{ file = … }` and `{ value = … }` secret sources from the config.

use certpool_domain::Failure;
use certpool_domain::config::SecretSource;
use std::path::Path;
use zeroize::Zeroizing;

/// Reads a secret source. Relative files are resolved against `base_dir` (the config's
/// directory). Errors name where the secret was expected, never its value.
pub fn resolve(source: &SecretSource, base_dir: &Path, what: &str) -> Result<Zeroizing<String>, Failure> {
    let value = match source {
        SecretSource::Env(var) => std::env::var(var).map_err(|_| {
            Failure::permanent(
                "config.secret",
                format!("{what}: environment variable {var} is not set"),
            )
        })?,
        SecretSource::File(path) => {
            let path = if path.is_absolute() {
                path.clone()
            } else {
                base_dir.join(path)
            };
            std::fs::read_to_string(&path).map_err(|e| {
                Failure::permanent("config.secret", format!("{what}: cannot read {}: {e}", path.display()))
            })?
        }
        SecretSource::Value(v) => v.clone(),
    };
    let trimmed = value.trim().to_owned();
    if trimmed.is_empty() {
        return Err(Failure::permanent("config.secret", format!("{what} is empty")));
    }
    Ok(Zeroizing::new(trimmed))
}
