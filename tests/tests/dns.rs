//! The DNS provider conformance suite (`certpool_tests::dns_suite`) against every provider with
//! its real backend: `rfc2136` against BIND, `route53` against moto.

#![allow(clippy::unwrap_used)]

use certpool_activities::dns::from_config;
use certpool_domain::config::{DnsProviderConfig, Rfc2136Config, TsigAlgorithm};
use certpool_domain::duration::Duration;
use certpool_tests::dns_suite::{BindBackend, DnsSuiteTarget, run_all};
use certpool_tests::{ZONE, stack};
use std::path::Path;
use std::sync::Arc;

fn rfc2136(server: &str, secret: &str) -> DnsProviderConfig {
    DnsProviderConfig::Rfc2136(Rfc2136Config {
        server: server.to_owned(),
        zone: format!("{ZONE}."),
        tsig_key_name: "certpool-key.".into(),
        tsig_algorithm: TsigAlgorithm::HmacSha256,
        tsig_secret: certpool_domain::config::SecretSource::Value(secret.to_owned()),
        ttl: 5,
        timeout: Duration::from_secs(5),
    })
}

#[tokio::test]
async fn rfc2136_conforms() {
    let s = stack();
    let server = s.dns_server.clone();
    let provider = from_config("bind", &rfc2136(&server, &s.tsig_secret), Path::new("/")).unwrap();
    let target = DnsSuiteTarget {
        label: "rfc2136 (BIND)".into(),
        provider,
        zone: ZONE.into(),
        backend: Arc::new(BindBackend {
            server: server.clone(),
            key_name: "certpool-key.".into(),
            secret: s.tsig_secret.clone(),
        }),
        bad_credentials: Box::new(move || {
            // A valid key of the right length that BIND does not know.
            let wrong = "d3JvbmctLXdyb25nLS13cm9uZy0td3JvbmctLXdyb25nIQ==";
            from_config("bind", &rfc2136(&server, wrong), Path::new("/")).map_err(anyhow::Error::from)
        }),
        provider_name: "bind".into(),
    };
    run_all(&target).await.unwrap();
}
