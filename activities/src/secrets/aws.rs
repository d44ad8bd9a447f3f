//! `aws-secrets-manager`: AWS Secrets Manager (aws-sdk-secretsmanager).
//!
//! Secret `p` is the Secrets Manager secret named `<prefix><p>`, its bytes in `SecretBinary`.
//! Writing puts a new version (the previous one stays as `AWSPREVIOUS`); the first write creates
//! the secret. Deleting uses `ForceDeleteWithoutRecovery`: a deleted private key must not be
//! recoverable during a recovery window, and the name must be free again at once (a secret
//! pending deletion blocks `CreateSecret` with that name). Values never appear in errors, logs or
//! `Debug`: errors name the secret path and the service's error code only.

use super::validate_path;
use crate::aws::{AwsError, AwsSettings, classify, sdk_config};
use async_trait::async_trait;
use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::primitives::Blob;
use aws_sdk_secretsmanager::types::{Filter, FilterNameStringType};
use certpool_domain::config::AwsSecretsManagerConfig;
use certpool_domain::plugins::SecretStore;
use certpool_domain::{ErrorClass, Failure};
use std::path::Path;
use tokio::sync::OnceCell;

/// AWS Secrets Manager secret store.
pub struct AwsSecretsManagerStore {
    prefix: String,
    kms_key_id: Option<String>,
    settings: AwsSettings,
    client: OnceCell<Client>,
}

impl std::fmt::Debug for AwsSecretsManagerStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsSecretsManagerStore")
            .field("prefix", &self.prefix)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl AwsSecretsManagerStore {
    /// Builds the store; static credentials are read now, relative files against `base_dir`.
    /// No request is sent until the first operation.
    pub fn new(cfg: &AwsSecretsManagerConfig, base_dir: &Path) -> Result<Self, Failure> {
        Ok(Self {
            prefix: cfg.prefix.clone(),
            kms_key_id: cfg.kms_key_id.clone(),
            settings: AwsSettings {
                region: cfg.region.clone(),
                endpoint: cfg.endpoint.clone(),
                credentials: crate::aws::credentials(cfg.credentials.as_ref(), base_dir, "secrets.credentials")?,
                timeout: cfg.timeout.get(),
            },
            client: OnceCell::new(),
        })
    }

    async fn client(&self) -> &Client {
        self.client
            .get_or_init(|| async { Client::new(&sdk_config(&self.settings).await) })
            .await
    }

    fn secret_name(&self, path: &str) -> String {
        format!("{}{path}", self.prefix)
    }

    fn failure(e: AwsError, what: &str, path: &str) -> Failure {
        let kind = if e.credentials {
            "secrets.auth"
        } else if e.denied {
            "secrets.permission"
        } else {
            match e.class {
                ErrorClass::Permanent => "secrets.rejected",
                _ => "secrets.unavailable",
            }
        };
        let context = if e.denied && !e.credentials {
            format!("permission denied for secret {path:?}: Secrets Manager {what}")
        } else {
            format!("Secrets Manager {what} (secret {path:?})")
        };
        e.into_failure(kind, &context)
    }
}

#[async_trait]
impl SecretStore for AwsSecretsManagerStore {
    async fn put(&self, path: &str, value: &[u8]) -> Result<(), Failure> {
        validate_path(path)?;
        let name = self.secret_name(path);
        let client = self.client().await;
        // Put first: after the first write every write is a new version of an existing secret.
        // The loop covers a writer that creates the secret between our two calls.
        for _ in 0..3 {
            let put = client
                .put_secret_value()
                .secret_id(&name)
                .secret_binary(Blob::new(value))
                .send()
                .await;
            let err = match put {
                Ok(_) => return Ok(()),
                Err(e) => classify(&e),
            };
            if err.code.as_deref() != Some("ResourceNotFoundException") {
                return Err(Self::failure(err, "PutSecretValue", path));
            }
            let created = client
                .create_secret()
                .name(&name)
                .secret_binary(Blob::new(value))
                .set_kms_key_id(self.kms_key_id.clone())
                .description("certpool")
                .send()
                .await;
            match created {
                Ok(_) => return Ok(()),
                Err(e) => {
                    let err = classify(&e);
                    if err.code.as_deref() != Some("ResourceExistsException") {
                        return Err(Self::failure(err, "CreateSecret", path));
                    }
                }
            }
        }
        Err(Failure::transient(
            "secrets.unavailable",
            format!("Secrets Manager: secret {path:?} kept appearing and disappearing while writing"),
        ))
    }

    async fn get(&self, path: &str) -> Result<Option<Vec<u8>>, Failure> {
        validate_path(path)?;
        let got = self
            .client()
            .await
            .get_secret_value()
            .secret_id(self.secret_name(path))
            .send()
            .await;
        match got {
            Ok(out) => {
                if let Some(b) = out.secret_binary() {
                    Ok(Some(b.as_ref().to_vec()))
                } else if let Some(s) = out.secret_string() {
                    // Written by another tool as a string: its bytes are the value.
                    Ok(Some(s.as_bytes().to_vec()))
                } else {
                    Err(Failure::permanent(
                        "secrets.corrupt",
                        format!("Secrets Manager secret {path:?} has neither a binary nor a string value"),
                    ))
                }
            }
            Err(e) => {
                let err = classify(&e);
                match err.code.as_deref() {
                    Some("ResourceNotFoundException") => Ok(None),
                    // A secret scheduled for deletion (by another tool) reads as absent.
                    Some("InvalidRequestException") if err.message.contains("deleted") => Ok(None),
                    _ => Err(Self::failure(err, "GetSecretValue", path)),
                }
            }
        }
    }

    async fn delete(&self, path: &str) -> Result<(), Failure> {
        validate_path(path)?;
        let deleted = self
            .client()
            .await
            .delete_secret()
            .secret_id(self.secret_name(path))
            .force_delete_without_recovery(true)
            .send()
            .await;
        match deleted {
            Ok(_) => Ok(()),
            Err(e) => {
                let err = classify(&e);
                if err.code.as_deref() == Some("ResourceNotFoundException") {
                    Ok(())
                } else {
                    Err(Self::failure(err, "DeleteSecret", path))
                }
            }
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, Failure> {
        let full = self.secret_name(prefix);
        let client = self.client().await;
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            // The `name` filter matches a prefix, without regard to case; the exact, case-sensitive
            // prefix is checked below.
            let filter = Filter::builder()
                .key(FilterNameStringType::Name)
                .values(full.clone())
                .build();
            let page = client
                .list_secrets()
                .filters(filter)
                .max_results(100)
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| Self::failure(classify(&e), "ListSecrets", prefix))?;
            for entry in page.secret_list() {
                let Some(path) = entry.name().and_then(|n| n.strip_prefix(&self.prefix)) else {
                    continue;
                };
                // Secrets some other writer made that certpool could not address are skipped.
                if path.starts_with(prefix) && validate_path(path).is_ok() {
                    out.push(path.to_owned());
                }
            }
            match page.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_owned()),
                _ => break,
            }
        }
        out.sort();
        out.dedup();
        Ok(out)
    }
}
