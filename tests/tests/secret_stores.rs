//! One conformance suite for every secret store: `local` on a temp directory, `vault` against a
//! real OpenBao dev server with token and with AppRole auth, `aws-secrets-manager` against a real
//! moto server with IAM authentication on. Server-only tests cover what only a server can do: a
//! denying policy, rejected credentials, a server that is gone, and versions.

#![allow(clippy::unwrap_used)]

use certpool_activities::secrets::from_config;
use certpool_domain::ErrorClass;
use certpool_domain::config::{
    AwsCredentialsConfig, AwsSecretsManagerConfig, SecretSource, SecretStoreConfig, VaultAuth, VaultConfig,
};
use certpool_domain::plugins::SecretStore;
use certpool_tests::bao::BaoServer;
use certpool_tests::moto::{AccessKey, moto};
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

fn aws(endpoint: &str, key: &AccessKey, prefix: &str) -> Arc<dyn SecretStore> {
    let cfg = SecretStoreConfig::AwsSecretsManager(AwsSecretsManagerConfig {
        region: Some("us-east-1".into()),
        endpoint: Some(endpoint.to_owned()),
        credentials: Some(AwsCredentialsConfig {
            access_key_id: SecretSource::Value(key.id.clone()),
            secret_access_key: SecretSource::Value(key.secret.clone()),
            session_token: None,
        }),
        prefix: prefix.to_owned(),
        kms_key_id: None,
        timeout: certpool_domain::duration::Duration::from_secs(5),
    });
    from_config(&cfg, Path::new("/")).unwrap()
}

/// A prefix of its own per test: the tests share one moto server.
fn aws_prefix() -> String {
    format!("certpool/{}/", certpool_tests::unique_label("t"))
}

#[tokio::test]
async fn aws_secrets_manager_conforms() {
    let m = moto();
    let store = aws(&m.endpoint(), &m.secrets, &aws_prefix());
    conformance(&*store).await;
    assert!(!format!("{store:?}").contains(&m.secrets.secret));
}

#[tokio::test]
async fn aws_secrets_manager_lists_only_its_prefix_and_pages() {
    let m = moto();
    let (p1, p2) = (aws_prefix(), aws_prefix());
    let (a, b) = (aws(&m.endpoint(), &m.secrets, &p1), aws(&m.endpoint(), &m.secrets, &p2));
    // More than one page of ListSecrets (100 per page).
    for i in 0..105 {
        a.put(&format!("certs/c{i:03}/key"), b"k").await.unwrap();
    }
    b.put("certs/other/key", b"k").await.unwrap();
    let listed = a.list("certs/").await.unwrap();
    assert_eq!(listed.len(), 105, "{listed:?}");
    assert_eq!(listed[0], "certs/c000/key");
    assert_eq!(b.list("").await.unwrap(), vec!["certs/other/key"]);
}

#[tokio::test]
async fn aws_secrets_manager_keeps_versions_and_deletes_without_recovery() {
    let m = moto();
    let prefix = aws_prefix();
    let store = aws(&m.endpoint(), &m.secrets, &prefix);
    store.put("certs/v/key", b"one").await.unwrap();
    store.put("certs/v/key", b"two").await.unwrap();
    let admin = m.secrets_admin().await;
    let versions = admin
        .list_secret_version_ids()
        .secret_id(format!("{prefix}certs/v/key"))
        .send()
        .await
        .unwrap();
    let stages: Vec<Vec<String>> = versions
        .versions()
        .iter()
        .map(|v| v.version_stages().to_vec())
        .collect();
    assert_eq!(stages.len(), 2, "{stages:?}");
    assert!(
        stages.iter().any(|s| s.contains(&"AWSCURRENT".to_owned())),
        "{stages:?}"
    );
    assert!(
        stages.iter().any(|s| s.contains(&"AWSPREVIOUS".to_owned())),
        "{stages:?}"
    );
    assert_eq!(store.get("certs/v/key").await.unwrap().as_deref(), Some(&b"two"[..]));
    // Deleted without a recovery window: gone at once, and the name can be written again.
    store.delete("certs/v/key").await.unwrap();
    let err = admin
        .describe_secret()
        .secret_id(format!("{prefix}certs/v/key"))
        .send()
        .await
        .expect_err("deleted secret still described");
    assert!(format!("{err:?}").contains("ResourceNotFound"), "{err:?}");
    store.put("certs/v/key", b"three").await.unwrap();
    assert_eq!(store.get("certs/v/key").await.unwrap().as_deref(), Some(&b"three"[..]));
}

#[tokio::test]
async fn aws_secrets_manager_denied_action_is_a_clear_permanent_error() {
    let m = moto();
    let prefix = aws_prefix();
    aws(&m.endpoint(), &m.secrets, &prefix)
        .put("certs/x/key", b"v")
        .await
        .unwrap();
    let read_only = aws(&m.endpoint(), &m.secrets_read_only, &prefix);
    assert_eq!(read_only.get("certs/x/key").await.unwrap().as_deref(), Some(&b"v"[..]));
    let nobody = aws(&m.endpoint(), &m.nobody, &prefix);
    for err in [
        read_only.put("certs/x/key", b"w").await.unwrap_err(),
        read_only.delete("certs/x/key").await.unwrap_err(),
        nobody.get("certs/x/key").await.unwrap_err(),
        nobody.list("certs/").await.unwrap_err(),
    ] {
        assert_eq!(
            (err.class, err.kind.as_str()),
            (ErrorClass::Permanent, "secrets.permission"),
            "{err}"
        );
        assert!(err.message.contains("permission denied for secret"), "{err}");
        assert!(err.message.contains("AccessDenied"), "{err}");
        assert!(!err.to_string().contains(&m.secrets_read_only.secret), "{err}");
    }
}

#[tokio::test]
async fn aws_secrets_manager_rejected_key_and_missing_server() {
    let m = moto();
    let bad = AccessKey {
        id: "AKIAUNKNOWNKEY000000".into(),
        secret: "wrong-secret".into(),
    };
    let err = aws(&m.endpoint(), &bad, &aws_prefix())
        .get("certs/a/key")
        .await
        .unwrap_err();
    assert_eq!(
        (err.class, err.kind.as_str()),
        (ErrorClass::Permanent, "secrets.auth"),
        "{err}"
    );
    assert!(err.message.contains("certs/a/key"), "{err}");
    assert!(!err.to_string().contains("wrong-secret"), "{err}");
    // A known key with the wrong secret fails the signature check.
    let forged = AccessKey {
        id: m.secrets.id.clone(),
        secret: "wrong-secret".into(),
    };
    let err = aws(&m.endpoint(), &forged, &aws_prefix())
        .put("certs/a/key", b"v")
        .await
        .unwrap_err();
    assert_eq!(
        (err.class, err.kind.as_str()),
        (ErrorClass::Permanent, "secrets.auth"),
        "{err}"
    );
    // Nothing listens there: transient.
    let gone = format!("http://127.0.0.1:{}", certpool_tests::free_port());
    let err = aws(&gone, &m.secrets, &aws_prefix())
        .get("certs/a/key")
        .await
        .unwrap_err();
    assert_eq!(
        (err.class, err.kind.as_str()),
        (ErrorClass::Transient, "secrets.unavailable"),
        "{err}"
    );
}
