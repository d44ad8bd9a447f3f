//! `vault`: HashiCorp Vault or OpenBao, KV version 2 secrets engine, over its HTTP API.
//!
//! Secret `p` lives at `{mount}/data/{path_prefix}/p` as `{"value": "<base64>"}` (KV v2 stores
//! strings, and keys and chains are bytes). Deleting removes the metadata, so every version goes:
//! a deleted private key must not be recoverable by undeleting an old version. Tokens and values
//! never appear in errors, logs or `Debug`: errors name the secret path only.

use super::validate_path;
use crate::secret_source;
use async_trait::async_trait;
use base64::Engine;
use bytes::Bytes;
use certpool_domain::Failure;
use certpool_domain::config::{VaultAuth, VaultConfig};
use certpool_domain::plugins::SecretStore;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;
use zeroize::Zeroizing;

type Client = crate::http::HttpsClient<Full<Bytes>>;
type Token = Arc<Zeroizing<String>>;

enum Auth {
    Token(Token),
    AppRole {
        role_id: Zeroizing<String>,
        secret_id: Zeroizing<String>,
        mount: String,
    },
}

/// Vault / OpenBao KV v2 secret store.
pub struct VaultSecretStore {
    client: Client,
    address: String,
    mount: String,
    prefix: String,
    timeout: Duration,
    auth: Auth,
    /// AppRole client token from the last login.
    token: Mutex<Option<Token>>,
}

impl std::fmt::Debug for VaultSecretStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let method = match &self.auth {
            Auth::Token(_) => "token",
            Auth::AppRole { .. } => "approle",
        };
        f.debug_struct("VaultSecretStore")
            .field("address", &self.address)
            .field("mount", &self.mount)
            .field("prefix", &self.prefix)
            .field("auth", &method)
            .finish_non_exhaustive()
    }
}

fn unavailable(message: String) -> Failure {
    Failure::transient("secrets.unavailable", message)
}

/// Vault's `{"errors": [...]}`, flattened to one line. Vault does not echo tokens or values.
fn vault_errors(body: &[u8]) -> String {
    let text = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| {
            v.get("errors")?
                .as_array()
                .map(|a| a.iter().filter_map(|e| e.as_str()).collect::<Vec<_>>().join("; "))
        })
        .unwrap_or_default();
    let flat: String = text
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .take(300)
        .collect();
    if flat.is_empty() {
        String::new()
    } else {
        format!(": {flat}")
    }
}

fn https_client(trusted_root: Option<&Path>, timeout: Duration) -> Result<Client, Failure> {
    crate::http::https_client(trusted_root, timeout)
        .map_err(|m| Failure::permanent("config.secrets", format!("secrets.{m}")))
}

impl VaultSecretStore {
    /// Builds the store from its config; secret sources are resolved now, relative files
    /// against `base_dir`. No request is sent until the first operation.
    pub fn new(cfg: &VaultConfig, base_dir: &Path) -> Result<Self, Failure> {
        let auth = match &cfg.auth {
            VaultAuth::Token { token } => {
                Auth::Token(Arc::new(secret_source::resolve(token, base_dir, "secrets.auth.token")?))
            }
            VaultAuth::Approle {
                role_id,
                secret_id,
                mount,
            } => Auth::AppRole {
                role_id: secret_source::resolve(role_id, base_dir, "secrets.auth.role_id")?,
                secret_id: secret_source::resolve(secret_id, base_dir, "secrets.auth.secret_id")?,
                mount: mount.trim_matches('/').to_owned(),
            },
        };
        let root = cfg
            .trusted_root
            .as_ref()
            .map(|p| if p.is_absolute() { p.clone() } else { base_dir.join(p) });
        let timeout = cfg.timeout.get();
        Ok(Self {
            client: https_client(root.as_deref(), timeout)?,
            address: cfg.address.trim_end_matches('/').to_owned(),
            mount: cfg.mount.trim_matches('/').to_owned(),
            prefix: cfg.path_prefix.trim_matches('/').to_owned(),
            timeout,
            auth,
            token: Mutex::new(None),
        })
    }

    /// One HTTP exchange; connection errors and timeouts are transient.
    async fn send(
        &self,
        method: Method,
        api_path: &str,
        body: Option<Bytes>,
        token: Option<&str>,
    ) -> Result<(StatusCode, Bytes), Failure> {
        let url = format!("{}/v1/{api_path}", self.address);
        let mut builder = Request::builder()
            .method(method.clone())
            .uri(&url)
            .header("X-Vault-Request", "true");
        if let Some(t) = token {
            let mut value = http::HeaderValue::from_str(t)
                .map_err(|_| Failure::permanent("config.secret", "vault token is not a valid header value"))?;
            value.set_sensitive(true);
            builder = builder.header("X-Vault-Token", value);
        }
        if body.is_some() {
            builder = builder.header(http::header::CONTENT_TYPE, "application/json");
        }
        let request = builder
            .body(Full::new(body.unwrap_or_default()))
            .map_err(|e| Failure::permanent("secrets.bad_request", format!("{method} {url}: {e}")))?;
        let exchange = async {
            let response = self.client.request(request).await?;
            let status = response.status();
            let body = response.into_body().collect().await?.to_bytes();
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>((status, body))
        };
        match tokio::time::timeout(self.timeout, exchange).await {
            Ok(Ok(r)) => Ok(r),
            Ok(Err(e)) => Err(unavailable(format!(
                "vault {method} {url}: {}",
                crate::http::error_chain(&*e)
            ))),
            Err(_) => Err(unavailable(format!(
                "vault {method} {url}: no answer within {:?}",
                self.timeout
            ))),
        }
    }

    /// AppRole login; returns the client token.
    async fn login(&self) -> Result<Token, Failure> {
        let Auth::AppRole {
            role_id,
            secret_id,
            mount,
        } = &self.auth
        else {
            return Err(Failure::permanent(
                "secrets.auth",
                "vault login without AppRole credentials",
            ));
        };
        let body = Zeroizing::new(
            serde_json::json!({ "role_id": role_id.as_str(), "secret_id": secret_id.as_str() }).to_string(),
        );
        let (status, response) = self
            .send(
                Method::POST,
                &format!("auth/{mount}/login"),
                Some(Bytes::from(body.as_bytes().to_vec())),
                None,
            )
            .await?;
        if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
            return Err(unavailable(format!(
                "vault AppRole login at auth/{mount}: HTTP {status}{}",
                vault_errors(&response)
            )));
        }
        if !status.is_success() {
            return Err(Failure::permanent(
                "secrets.auth",
                format!(
                    "vault AppRole login at auth/{mount} refused: HTTP {status}{}",
                    vault_errors(&response)
                ),
            ));
        }
        let token = serde_json::from_slice::<serde_json::Value>(&response)
            .ok()
            .and_then(|v| v.pointer("/auth/client_token")?.as_str().map(str::to_owned))
            .ok_or_else(|| {
                Failure::permanent(
                    "secrets.auth",
                    format!("vault AppRole login at auth/{mount}: no client token in the answer"),
                )
            })?;
        Ok(Arc::new(Zeroizing::new(token)))
    }

    /// The token to use; for AppRole the cached one, logging in when there is none.
    async fn token(&self) -> Result<Token, Failure> {
        if let Auth::Token(t) = &self.auth {
            return Ok(t.clone());
        }
        let mut cached = self.token.lock().await;
        if let Some(t) = cached.as_ref() {
            return Ok(t.clone());
        }
        let fresh = self.login().await?;
        *cached = Some(fresh.clone());
        Ok(fresh)
    }

    /// Sends an authenticated request about secret `path` and sorts the outcome. Returns 2xx and
    /// 404 answers; a 403 under AppRole logs in again once (the token may have expired).
    async fn call(
        &self,
        method: Method,
        api_path: &str,
        body: Option<Bytes>,
        path: &str,
    ) -> Result<(StatusCode, Bytes), Failure> {
        let mut token = self.token().await?;
        let (mut status, mut response) = (StatusCode::OK, Bytes::new());
        for attempt in 0..2 {
            (status, response) = self
                .send(method.clone(), api_path, body.clone(), Some(token.as_str()))
                .await?;
            if status != StatusCode::FORBIDDEN || attempt == 1 || matches!(self.auth, Auth::Token(_)) {
                break;
            }
            let mut cached = self.token.lock().await;
            if cached.as_ref().is_some_and(|c| Arc::ptr_eq(c, &token)) {
                *cached = None;
            }
            drop(cached);
            token = self.token().await?;
        }
        let what = format!("vault {method} {}/{api_path} (secret {path:?})", self.address);
        if status.is_success() || status == StatusCode::NOT_FOUND {
            Ok((status, response))
        } else if status == StatusCode::FORBIDDEN {
            Err(Failure::permanent(
                "secrets.permission",
                format!(
                    "permission denied for secret {path:?}: {what}: HTTP 403{}",
                    vault_errors(&response)
                ),
            ))
        } else if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
            Err(unavailable(format!("{what}: HTTP {status}{}", vault_errors(&response))))
        } else {
            Err(Failure::permanent(
                "secrets.rejected",
                format!("{what}: HTTP {status}{}", vault_errors(&response)),
            ))
        }
    }

    fn data_path(&self, path: &str) -> String {
        format!("{}/data/{}/{path}", self.mount, self.prefix)
    }

    fn metadata_path(&self, path: &str) -> String {
        if path.is_empty() {
            format!("{}/metadata/{}/", self.mount, self.prefix)
        } else {
            format!("{}/metadata/{}/{path}", self.mount, self.prefix)
        }
    }
}

#[async_trait]
impl SecretStore for VaultSecretStore {
    async fn put(&self, path: &str, value: &[u8]) -> Result<(), Failure> {
        validate_path(path)?;
        let encoded = Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(value));
        let body = Zeroizing::new(serde_json::json!({ "data": { "value": encoded.as_str() } }).to_string());
        let (status, response) = self
            .call(
                Method::POST,
                &self.data_path(path),
                Some(Bytes::from(body.as_bytes().to_vec())),
                path,
            )
            .await?;
        if status == StatusCode::NOT_FOUND {
            return Err(Failure::permanent(
                "secrets.rejected",
                format!(
                    "vault has no KV v2 engine at {:?} (writing secret {path:?}){}",
                    self.mount,
                    vault_errors(&response)
                ),
            ));
        }
        Ok(())
    }

    async fn get(&self, path: &str) -> Result<Option<Vec<u8>>, Failure> {
        validate_path(path)?;
        let (status, response) = self.call(Method::GET, &self.data_path(path), None, path).await?;
        if status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let corrupt = || {
            Failure::permanent(
                "secrets.corrupt",
                format!("vault secret {path:?} has no base64 \"value\" field written by certpool"),
            )
        };
        let doc: serde_json::Value = serde_json::from_slice(&response).map_err(|_| corrupt())?;
        let encoded = doc
            .pointer("/data/data/value")
            .and_then(|v| v.as_str())
            .ok_or_else(corrupt)?;
        base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .map(Some)
            .map_err(|_| corrupt())
    }

    async fn delete(&self, path: &str) -> Result<(), Failure> {
        validate_path(path)?;
        self.call(Method::DELETE, &self.metadata_path(path), None, path).await?;
        Ok(())
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, Failure> {
        // `prefix` is a string prefix, as in `local`: walk from its last directory down.
        let start = prefix.rfind('/').map_or("", |i| &prefix[..=i]);
        if !start.is_empty() {
            validate_path(start.trim_end_matches('/'))?;
        }
        let mut out = Vec::new();
        let mut dirs = vec![start.to_owned()];
        while let Some(dir) = dirs.pop() {
            let api_path = format!("{}?list=true", self.metadata_path(&dir));
            let (status, response) = self.call(Method::GET, &api_path, None, &dir).await?;
            if status == StatusCode::NOT_FOUND {
                continue;
            }
            let doc: serde_json::Value = serde_json::from_slice(&response).map_err(|e| {
                Failure::permanent("secrets.rejected", format!("vault listing of {dir:?} is not JSON: {e}"))
            })?;
            let keys = doc
                .pointer("/data/keys")
                .and_then(|k| k.as_array())
                .cloned()
                .unwrap_or_default();
            for key in keys.iter().filter_map(|k| k.as_str()) {
                let full = format!("{dir}{key}");
                // Entries some other writer made that certpool could not address are skipped.
                if validate_path(full.trim_end_matches('/')).is_err() {
                    continue;
                }
                if key.ends_with('/') {
                    if full.starts_with(prefix) || prefix.starts_with(&full) {
                        dirs.push(full);
                    }
                } else if full.starts_with(prefix) {
                    out.push(full);
                }
            }
        }
        out.sort();
        Ok(out)
    }
}
