//! One conformance suite for every secret store: `local` on a temp directory, `vault` against a
//! real OpenBao dev server with token and with AppRole auth. Vault-only tests cover what only a
//! server can do: a denying policy, a server that is gone, and KV v2 versions.

#![allow(clippy::unwrap_used)]

use certpool_activities::secrets::from_config;
use certpool_domain::ErrorClass;
use certpool_domain::config::{SecretSource, SecretStoreConfig, VaultAuth, VaultConfig};
use certpool_domain::plugins::SecretStore;
use certpool_tests::bao::BaoServer;
use std::path::Path;
use std::sync::Arc;

async fn conformance(store: &dyn SecretStore) {
    // Binary data, including bytes that are not UTF-8, round-trips.
    let key: Vec<u8> = (0..=255u8).chain([0, 0xff, 0xfe]).collect();
    store.put("certs/a1/key", &key).await.unwrap();
    assert_eq!(store.get("certs/a1/key").await.unwrap().as_deref(), Some(&key[..]));

    // Overwriting returns the new value.
    store.put("certs/a1/key", b"second").await.unwrap();
    assert_eq!(
        store.get("certs/a1/key").await.unwrap().as_deref(),
        Some(&b"second"[..])
    );

    // A missing path reads None.
    assert_eq!(store.get("certs/nope/key").await.unwrap(), None);

    // Listing by prefix returns exactly what is under it.
    store.put("certs/a1/chain", b"chain").await.unwrap();
    store.put("certs/a2/key", b"k2").await.unwrap();
    store.put("certsx/other", b"x").await.unwrap();
    store.put("acme/accounts/test", b"acct").await.unwrap();
    assert_eq!(
        store.list("certs/").await.unwrap(),
        vec!["certs/a1/chain", "certs/a1/key", "certs/a2/key"]
    );
    assert_eq!(
        store.list("certs/a1/").await.unwrap(),
        vec!["certs/a1/chain", "certs/a1/key"]
    );
    assert_eq!(store.list("acme/").await.unwrap(), vec!["acme/accounts/test"]);
    assert!(store.list("nothing/").await.unwrap().is_empty());

    // Delete removes; deleting again is fine.
    store.delete("certs/a1/key").await.unwrap();
    assert_eq!(store.get("certs/a1/key").await.unwrap(), None);
    store.delete("certs/a1/key").await.unwrap();
    assert_eq!(store.list("certs/a1/").await.unwrap(), vec!["certs/a1/chain"]);

    // Bad paths are rejected permanently, before anything is sent.
    for bad in ["../x", "a/../../b", "", "a//b", "a b"] {
        let err = store.put(bad, b"v").await.expect_err(bad);
        assert_eq!(
            (err.class, err.kind.as_str()),
            (ErrorClass::Permanent, "secrets.bad_path"),
            "{bad:?}"
        );
        assert!(store.get(bad).await.is_err(), "{bad:?}");
        assert!(store.delete(bad).await.is_err(), "{bad:?}");
    }
}

fn vault_config(address: &str, auth: VaultAuth) -> SecretStoreConfig {
    SecretStoreConfig::Vault(VaultConfig {
        address: address.to_owned(),
        mount: "secret".into(),
        path_prefix: "certpool".into(),
        auth,
        trusted_root: None,
        timeout: certpool_domain::duration::Duration::from_secs(5),
    })
}

fn token(t: &str) -> VaultAuth {
    VaultAuth::Token {
        token: SecretSource::Value(t.to_owned()),
    }
}

fn vault(server: &BaoServer, auth: VaultAuth) -> Arc<dyn SecretStore> {
    from_config(&vault_config(&server.address(), auth), Path::new("/")).unwrap()
}

#[tokio::test]
async fn local_conforms() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = SecretStoreConfig::Local {
        path: dir.path().join("secrets"),
        encryption_key: SecretSource::Value("MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=".into()),
    };
    conformance(&*from_config(&cfg, dir.path()).unwrap()).await;
}

#[tokio::test]
async fn vault_with_token_conforms() {
    let server = BaoServer::start().unwrap();
    server
        .put_policy("certpool", &BaoServer::store_policy("secret", "certpool"))
        .unwrap();
    let t = server.token_with(&["certpool"]).unwrap();
    let store = vault(&server, token(&t));
    conformance(&*store).await;
    // Debug shows neither the token nor anything secret.
    assert!(!format!("{store:?}").contains(&t));
}

#[tokio::test]
async fn vault_with_approle_conforms() {
    let server = BaoServer::start().unwrap();
    server
        .put_policy("certpool", &BaoServer::store_policy("secret", "certpool"))
        .unwrap();
    let (role_id, secret_id) = server.approle("certpool", "certpool").unwrap();
    let store = vault(
        &server,
        VaultAuth::Approle {
            role_id: SecretSource::Value(role_id),
            secret_id: SecretSource::Value(secret_id.clone()),
            mount: "approle".into(),
        },
    );
    conformance(&*store).await;
    assert!(!format!("{store:?}").contains(&secret_id));
}

#[tokio::test]
async fn vault_denied_path_is_a_clear_permanent_error() {
    let server = BaoServer::start().unwrap();
    // A policy for another prefix only.
    server
        .put_policy("elsewhere", &BaoServer::store_policy("secret", "elsewhere"))
        .unwrap();
    let t = server.token_with(&["elsewhere"]).unwrap();
    let store = vault(&server, token(&t));
    for err in [
        store.put("certs/x/key", b"v").await.unwrap_err(),
        store.get("certs/x/key").await.unwrap_err(),
    ] {
        assert_eq!(
            (err.class, err.kind.as_str()),
            (ErrorClass::Permanent, "secrets.permission"),
            "{err}"
        );
        assert!(err.message.contains("certs/x/key"), "{err}");
        assert!(!err.to_string().contains(&t), "token leaked: {err}");
    }
}

#[tokio::test]
async fn vault_stopped_server_is_transient() {
    let mut server = BaoServer::start().unwrap();
    let store = vault(&server, token(server.root_token()));
    store.put("certs/a/key", b"v").await.unwrap();
    server.stop();
    let err = store.get("certs/a/key").await.unwrap_err();
    assert_eq!(
        (err.class, err.kind.as_str()),
        (ErrorClass::Transient, "secrets.unavailable"),
        "{err}"
    );
}

#[tokio::test]
async fn vault_keeps_versions() {
    let server = BaoServer::start().unwrap();
    let store = vault(&server, token(server.root_token()));
    store.put("certs/v/key", b"one").await.unwrap();
    store.put("certs/v/key", b"two").await.unwrap();
    let meta = server.api("GET", "secret/metadata/certpool/certs/v/key", None).unwrap();
    assert_eq!(meta["data"]["current_version"], 2, "{meta}");
    assert_eq!(store.get("certs/v/key").await.unwrap().as_deref(), Some(&b"two"[..]));
}
