//! Cluster targets: how a delivered certificate reaches a cluster, one module per product, plus
//! the check that the cluster's TLS endpoint actually serves it.

pub mod files;
pub mod verify;
pub mod webhook;

use crate::secret_source;
use certpool_domain::Failure;
use certpool_domain::config::TargetConfig;
use certpool_domain::plugins::ClusterTarget;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Builds a configured target. Relative paths are resolved against `base_dir`.
pub fn from_config(name: &str, cfg: &TargetConfig, base_dir: &Path) -> Result<Arc<dyn ClusterTarget>, Failure> {
    match cfg {
        TargetConfig::Files {
            dir,
            reload_command,
            verify_endpoint,
            verify_sni,
            verify_timeout,
        } => {
            let target = files::FilesTarget::new(name, &absolute(dir, base_dir), reload_command.clone())?.with_verify(
                verify_endpoint.clone(),
                verify_sni.clone(),
                verify_timeout.get(),
            );
            Ok(Arc::new(target))
        }
        TargetConfig::Webhook {
            url,
            hmac_key,
            include_private_key,
            trusted_root,
            verify_endpoint,
            verify_sni,
            verify_timeout,
        } => {
            let key = secret_source::resolve(hmac_key, base_dir, &format!("targets.{name}.hmac_key"))?;
            let root = trusted_root.as_ref().map(|p| absolute(p, base_dir));
            let target = webhook::WebhookTarget::new(name, url, key.as_bytes(), *include_private_key, root.as_deref())?
                .with_verify(verify_endpoint.clone(), verify_sni.clone(), verify_timeout.get());
            Ok(Arc::new(target))
        }
    }
}

fn absolute(path: &Path, base_dir: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_owned()
    } else {
        base_dir.join(path)
    }
}

/// Checks a cluster id against `[a-z0-9][a-z0-9._-]{0,99}`. Ids end up in file names, URLs and
/// command arguments, so anything that could climb out of a directory (`/`, a leading `.`) or
/// change how a URL parses is refused before it is used.
pub fn validate_cluster(cluster: &str) -> Result<(), Failure> {
    let bytes = cluster.as_bytes();
    let ok = matches!(bytes.first(), Some(b'a'..=b'z' | b'0'..=b'9'))
        && bytes.len() <= 100
        && bytes
            .iter()
            .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(Failure::permanent(
            "target.bad_cluster",
            format!("cluster id {cluster:?} must match [a-z0-9][a-z0-9._-]{{0,99}}"),
        ))
    }
}

/// Replaces every `{cluster}` in `template`, after checking the id with [`validate_cluster`].
pub fn substitute(template: &str, cluster: &str) -> Result<String, Failure> {
    validate_cluster(cluster)?;
    Ok(template.replace("{cluster}", cluster))
}

/// The `(endpoint, sni)` pair a target verifies for `cluster`, both with `{cluster}` replaced.
///
/// [`ClusterTarget::verify_endpoint`] cannot fail, and it is only ever asked about a cluster that
/// was just delivered to (so already validated); an invalid id still gets no substitution, so it
/// can never steer the check to another host.
pub(crate) fn verify_pair(
    endpoint: Option<&str>,
    sni: Option<&str>,
    cluster: &str,
) -> Option<(String, Option<String>)> {
    let fill = |t: &str| substitute(t, cluster).unwrap_or_else(|_| t.to_owned());
    endpoint.map(|e| (fill(e), sni.map(fill)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use certpool_domain::ErrorClass;

    #[test]
    fn cluster_ids_are_checked() {
        for good in ["a", "0", "eu-west-1.c42", "a_b", &"a".repeat(100)] {
            assert!(validate_cluster(good).is_ok(), "{good:?}");
        }
        for bad in [
            "",
            "../etc",
            ".hidden",
            "-x",
            "_x",
            "A",
            "a/b",
            "a b",
            "a\0",
            "ä",
            "a%2f",
            "a?b",
            &"a".repeat(101),
        ] {
            let e = validate_cluster(bad).expect_err(bad);
            assert_eq!(e.class, ErrorClass::Permanent);
            assert_eq!(e.kind, "target.bad_cluster");
        }
    }

    #[test]
    fn cluster_is_substituted_everywhere() {
        assert_eq!(
            substitute("/srv/{cluster}/tls/{cluster}", "c1").expect("valid"),
            "/srv/c1/tls/c1"
        );
        assert_eq!(substitute("no placeholder", "c1").expect("valid"), "no placeholder");
        assert!(substitute("/srv/{cluster}", "../x").is_err());
        assert_eq!(
            verify_pair(Some("{cluster}.example.net:443"), Some("sni.{cluster}"), "c1"),
            Some(("c1.example.net:443".into(), Some("sni.c1".into())))
        );
        assert_eq!(verify_pair(None, Some("x"), "c1"), None);
    }
}
