//! Every example config shipped under `deploy/` parses and validates.

#![allow(clippy::unwrap_used)]

use certpool_domain::config::LoadedConfig;
use std::path::{Path, PathBuf};

fn tomls(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            tomls(&p, out);
        } else if p.extension().is_some_and(|x| x == "toml") {
            out.push(p);
        }
    }
}

#[test]
fn every_example_config_parses() {
    let deploy = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy");
    let mut files = Vec::new();
    tomls(&deploy, &mut files);
    assert!(!files.is_empty(), "no example configs found under {}", deploy.display());
    for f in &files {
        // Defaults only: examples must not depend on the caller's environment to be valid.
        let cfg = LoadedConfig::from_file(f, &|_| None).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        assert!(!cfg.pools.is_empty(), "{} defines no pools", f.display());
    }
}

#[test]
fn dev_example_has_a_zonal_scheme() {
    let f = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/examples/dev.toml");
    let cfg = LoadedConfig::from_file(&f, &|_| None).unwrap();
    let zonal = cfg.pools.values().find(|p| p.scheme == "zonal").expect("a zonal pool");
    assert!(zonal.sans.len() > 2, "zones expand to one SAN each: {:?}", zonal.sans);
}

#[test]
fn unknown_key_in_an_example_is_rejected_with_its_name() {
    let f = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/examples/dev.toml");
    let text = std::fs::read_to_string(f)
        .unwrap()
        .replace("[inventory]\n", "[inventory]\npaht = \"x\"\n");
    let err = LoadedConfig::from_str(&text, "dev.toml", ".".into(), &|_| None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("paht") && err.contains("line"), "{err}");
}

#[test]
fn aws_examples_select_route53_and_secrets_manager() {
    use certpool_domain::config::{DnsProviderConfig, SecretStoreConfig};
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/examples");
    let cfg = LoadedConfig::from_file(&dir.join("route53.toml"), &|_| None).unwrap();
    let DnsProviderConfig::Route53(r) = &cfg.config.dns["route53"] else {
        panic!("not route53")
    };
    assert_eq!(r.zones, vec!["aws.example.net."]);
    assert!(matches!(cfg.config.secrets, SecretStoreConfig::AwsSecretsManager(_)));
    let cfg = LoadedConfig::from_file(&dir.join("aws-secrets-manager.toml"), &|_| None).unwrap();
    assert!(matches!(cfg.config.secrets, SecretStoreConfig::AwsSecretsManager(_)));
    // Strict: an unknown key is named with its line.
    let text = std::fs::read_to_string(dir.join("route53.toml")).unwrap().replace(
        "insync_interval = \"2s\"",
        "insync_interval = \"2s\"\nhosted_zone = \"Z1\"",
    );
    let err = LoadedConfig::from_str(&text, "route53.toml", ".".into(), &|_| None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("hosted_zone") && err.contains("line"), "{err}");
    // A SAN outside the configured zones is rejected.
    let text = std::fs::read_to_string(dir.join("route53.toml"))
        .unwrap()
        .replace("{cloud}.aws.example.net\"]", "{cloud}.example.org\"]");
    let err = LoadedConfig::from_str(&text, "route53.toml", ".".into(), &|_| None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("outside zone"), "{err}");
}

#[test]
fn postgres_example_uses_the_postgres_inventory() {
    let f = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/examples/postgres.toml");
    let cfg = LoadedConfig::from_file(&f, &|_| None).unwrap();
    let certpool_domain::config::InventoryConfig::Postgres(pg) = &cfg.config.inventory else {
        panic!("not postgres: {:?}", cfg.config.inventory);
    };
    assert_eq!(
        pg.url,
        certpool_domain::config::SecretSource::Env("CERTPOOL_INVENTORY_URL".into())
    );
    assert_eq!(pg.schema.as_deref(), Some("certpool"));
}
