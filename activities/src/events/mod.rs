//! Event sinks, one module per product: CloudEvents over an HTTP webhook, NATS JetStream.
//!
//! Building a sink never touches the network, so a sink that is down when a worker starts only
//! delays its events (the outbox keeps them) instead of stopping the worker.

pub mod nats;
pub mod webhook;

use crate::secret_source;
use certpool_domain::Failure;
use certpool_domain::config::SinkConfig;
use certpool_domain::plugins::EventSink;
use std::path::Path;
use std::sync::Arc;

/// Builds a configured sink. Fails only on configuration errors (bad URL, unreadable HMAC key or
/// trusted root, invalid stream name), all permanent.
pub fn from_config(name: &str, cfg: &SinkConfig, base_dir: &Path) -> Result<Arc<dyn EventSink>, Failure> {
    match cfg {
        SinkConfig::Webhook {
            url,
            hmac_key,
            trusted_root,
        } => {
            let key = hmac_key
                .as_ref()
                .map(|k| secret_source::resolve(k, base_dir, &format!("events.sinks.{name}.hmac_key")))
                .transpose()?;
            let root = trusted_root
                .as_ref()
                .map(|p| if p.is_absolute() { p.clone() } else { base_dir.join(p) });
            Ok(Arc::new(webhook::WebhookSink::new(
                name,
                url,
                key.as_ref().map(|k| k.as_bytes()),
                root.as_deref(),
            )?))
        }
        SinkConfig::Nats {
            url,
            stream,
            subject_prefix,
        } => Ok(Arc::new(nats::NatsSink::new(name, url, stream, subject_prefix)?)),
    }
}

/// `scheme://host[:port]` of a URL, for errors and logs: webhook URLs often carry a token in
/// their path or query, and NATS URLs may carry `user:password@`.
pub(crate) fn redact_url(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if scheme.is_empty() {
        host.to_owned()
    } else {
        format!("{scheme}://{host}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacted_urls_keep_only_scheme_and_host() {
        assert_eq!(
            redact_url("https://hooks.example.net:8443/services/T0/B0/s3cr3t?token=x"),
            "https://hooks.example.net:8443"
        );
        assert_eq!(redact_url("nats://user:pa@ss@127.0.0.1:4222"), "nats://127.0.0.1:4222");
        assert_eq!(redact_url("127.0.0.1:4222"), "127.0.0.1:4222");
    }

    #[test]
    fn building_sinks_needs_no_network() {
        let dir = Path::new("/nonexistent");
        let webhook = SinkConfig::Webhook {
            url: "http://127.0.0.1:9/hook".into(),
            hmac_key: Some(certpool_domain::config::SecretSource::Value("k".into())),
            trusted_root: None,
        };
        let nats = SinkConfig::Nats {
            url: "nats://127.0.0.1:9".into(),
            stream: "CERTPOOL".into(),
            subject_prefix: "certpool".into(),
        };
        assert!(from_config("w", &webhook, dir).is_ok());
        assert!(from_config("n", &nats, dir).is_ok());
    }

    #[test]
    fn missing_trusted_root_is_permanent() {
        let cfg = SinkConfig::Webhook {
            url: "https://127.0.0.1:9/hook".into(),
            hmac_key: None,
            trusted_root: Some("missing.pem".into()),
        };
        let e = from_config("w", &cfg, Path::new("/nonexistent")).expect_err("must fail");
        assert_eq!(e.class, certpool_domain::ErrorClass::Permanent);
    }
}
