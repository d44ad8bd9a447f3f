//! The DNS provider conformance suite (`certpool_tests::dns_suite`) against every provider with
//! its real backend: `rfc2136` against BIND, `route53` against moto.

#![allow(clippy::unwrap_used)]

use certpool_activities::dns::from_config;
use certpool_domain::config::{
    AwsCredentialsConfig, DnsProviderConfig, Rfc2136Config, Route53Config, SecretSource, TsigAlgorithm,
};
use certpool_domain::duration::Duration;
use certpool_tests::dns_suite::{BindBackend, DnsSuiteTarget, run_all};
use certpool_tests::moto::{AccessKey, MotoServer, moto, moto_open};
use certpool_tests::route53_backend::Route53Backend;
use certpool_tests::{ZONE, stack, unique_label};
use std::path::Path;
use std::sync::Arc;

fn rfc2136(server: &str, secret: &str) -> DnsProviderConfig {
    DnsProviderConfig::Rfc2136(Rfc2136Config {
        server: server.to_owned(),
        zone: format!("{ZONE}."),
        tsig_key_name: "certpool-key.".into(),
        tsig_algorithm: TsigAlgorithm::HmacSha256,
        tsig_secret: SecretSource::Value(secret.to_owned()),
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

fn route53_config(server: &MotoServer, zones: &[&str], key: &AccessKey) -> DnsProviderConfig {
    DnsProviderConfig::Route53(Route53Config {
        zones: zones.iter().map(|z| (*z).to_owned()).collect(),
        region: "us-east-1".into(),
        endpoint: Some(server.endpoint()),
        credentials: Some(AwsCredentialsConfig {
            access_key_id: SecretSource::Value(key.id.clone()),
            secret_access_key: SecretSource::Value(key.secret.clone()),
            session_token: None,
        }),
        ttl: 5,
        timeout: Duration::from_secs(10),
        insync_timeout: Duration::from_secs(10),
        insync_interval: Duration::from_millis(200),
    })
}

#[tokio::test]
async fn route53_conforms() {
    let m = moto_open();
    let zone = format!("{}.r53.test", unique_label("z"));
    let zone_id = m.create_zone(&zone).await.unwrap();
    let provider = from_config("r53", &route53_config(m, &[], &m.dns), Path::new("/")).unwrap();
    let bad_key = AccessKey {
        id: "AKIAUNKNOWNKEY000000".into(),
        secret: "not-the-secret".into(),
    };
    let target = DnsSuiteTarget {
        label: "route53 (moto)".into(),
        provider,
        zone: zone.clone(),
        backend: Arc::new(Route53Backend::new(m, &zone_id).await),
        bad_credentials: Box::new(move || {
            // The server with IAM authentication: the open one accepts any key.
            from_config("r53", &route53_config(moto(), &[], &bad_key), Path::new("/")).map_err(anyhow::Error::from)
        }),
        provider_name: "r53".into(),
    };
    run_all(&target).await.unwrap();
}
