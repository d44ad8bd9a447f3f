//! ACME through instant-acme, one [`AcmeCa`] per configured CA.
//!
//! The account key never leaves this module: it is created once, kept in the secret store, and
//! loaded by whichever worker runs an activity. Orders are rebuilt from their URL
//! (`Account::order`), so every activity is stateless and any worker can resume any order.

use crate::secret_source;
use base64::Engine;
use bytes::Bytes;
use certpool_domain::Failure;
use certpool_domain::cert::paths;
use certpool_domain::config::CaConfig;
use certpool_domain::contracts::{Dns01Challenge, OrderHandle};
use certpool_domain::error::classify_acme_problem;
use certpool_domain::plugins::{SecretStore, TxtRecord};
use http::Request;
use instant_acme::{
    Account, AccountCredentials, AuthorizationStatus, BodyWrapper, BytesResponse, ChallengeStatus, ChallengeType,
    ExternalAccountKey, HttpClient, Identifier, Key, NewAccount, NewOrder, OrderStatus, RetryPolicy,
};
use rustls_pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use std::collections::HashSet;
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;

/// An HTTP client for instant-acme with TCP_NODELAY (Nagle costs ~40 ms per request otherwise)
/// and a timeout on every request, which instant-acme does not have and a loaded CA needs.
#[derive(Clone)]
struct AcmeHttp {
    inner: crate::http::HttpsClient<BodyWrapper<Bytes>>,
    timeout: Duration,
}

impl HttpClient for AcmeHttp {
    fn request(
        &self,
        req: Request<BodyWrapper<Bytes>>,
    ) -> Pin<Box<dyn Future<Output = Result<BytesResponse, instant_acme::Error>> + Send>> {
        let uri = req.uri().clone();
        let fut = self.inner.request(req);
        let timeout = self.timeout;
        Box::pin(async move {
            match tokio::time::timeout(timeout, fut).await {
                Ok(r) => r
                    .map(BytesResponse::from)
                    .map_err(|e| instant_acme::Error::Other(Box::new(e))),
                Err(_) => Err(instant_acme::Error::Other(
                    format!("request to {uri} timed out after {timeout:?}").into(),
                )),
            }
        })
    }
}

fn build_http(cfg: &CaConfig, base_dir: &Path, ca: &str) -> Result<AcmeHttp, Failure> {
    let root = cfg
        .trusted_root
        .as_ref()
        .map(|p| if p.is_absolute() { p.clone() } else { base_dir.join(p) });
    let inner = crate::http::https_client(root.as_deref(), cfg.request_timeout.get())
        .map_err(|m| Failure::permanent("config.ca", format!("ca.{ca}: {m}")))?;
    Ok(AcmeHttp {
        inner,
        timeout: cfg.request_timeout.get(),
    })
}

/// Decodes the PEM blocks labelled `label`.
pub(crate) fn pem_blocks(pem: &[u8], label: &str) -> Vec<Vec<u8>> {
    let text = String::from_utf8_lossy(pem);
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let mut out = Vec::new();
    let mut rest = text.as_ref();
    while let Some(start) = rest.find(&begin) {
        let after = &rest[start + begin.len()..];
        let Some(stop) = after.find(&end) else { break };
        let b64: String = after[..stop].chars().filter(|c| !c.is_whitespace()).collect();
        if let Ok(der) = base64::engine::general_purpose::STANDARD.decode(b64) {
            out.push(der);
        }
        rest = &after[stop + end.len()..];
    }
    out
}

/// Maps instant-acme errors onto classified failures, keeping the ACME problem type.
pub(crate) fn acme_failure(e: instant_acme::Error, step: &str) -> Failure {
    match e {
        instant_acme::Error::Api(p) => {
            let ptype = p.r#type.clone().unwrap_or_else(|| "about:blank".into());
            let short = ptype
                .strip_prefix("urn:ietf:params:acme:error:")
                .unwrap_or(&ptype)
                .to_owned();
            let mut message = format!("{step}: {} ({ptype})", p.detail.clone().unwrap_or_default());
            for sp in &p.subproblems {
                message.push_str(&format!(
                    "; {}: {}",
                    sp.identifier.as_ref().map(|i| format!("{i:?}")).unwrap_or_default(),
                    sp.detail.clone().unwrap_or_default()
                ));
            }
            Failure {
                class: classify_acme_problem(&ptype, p.status),
                kind: format!("acme.{short}"),
                message,
            }
        }
        other => Failure::transient("acme.transport", format!("{step}: {other}")),
    }
}

/// One configured ACME CA with a lazily loaded account.
pub struct AcmeCa {
    name: String,
    cfg: CaConfig,
    eab: Option<(String, Vec<u8>)>,
    http: AcmeHttp,
    secrets: Arc<dyn SecretStore>,
    account: Mutex<Option<Account>>,
}

impl std::fmt::Debug for AcmeCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AcmeCa")
            .field("name", &self.name)
            .field("directory_url", &self.cfg.directory_url)
            .finish_non_exhaustive()
    }
}

fn poll_policy() -> RetryPolicy {
    // Validation and issuance usually take tens of milliseconds on a local CA and seconds on a
    // public one: start fast, back off gently.
    RetryPolicy::new()
        .initial_delay(Duration::from_millis(25))
        .backoff(1.5)
        .timeout(Duration::from_secs(90))
}

impl AcmeCa {
    /// Builds the client; no network traffic until the first call.
    pub fn new(name: &str, cfg: &CaConfig, base_dir: &Path, secrets: Arc<dyn SecretStore>) -> Result<Self, Failure> {
        let eab = match &cfg.eab {
            Some(e) => {
                let key = secret_source::resolve(&e.hmac_key, base_dir, &format!("ca.{name}.eab.hmac_key"))?;
                let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(key.trim_end_matches('='))
                    .map_err(|_| Failure::permanent("config.ca", format!("ca.{name}.eab.hmac_key is not base64url")))?;
                Some((e.kid.clone(), bytes))
            }
            None => None,
        };
        Ok(Self {
            name: name.to_owned(),
            http: build_http(cfg, base_dir, name)?,
            cfg: cfg.clone(),
            eab,
            secrets,
            account: Mutex::new(None),
        })
    }

    /// The account, created on first use and kept in the secret store. A stored key is
    /// re-registered with `onlyReturnExisting: false`, so a CA that lost its accounts (pebble
    /// restarts) gets the same key back instead of failing every order.
    async fn account(&self) -> Result<Account, Failure> {
        let mut guard = self.account.lock().await;
        if let Some(a) = guard.as_ref() {
            return Ok(a.clone());
        }
        let path = paths::acme_account(&self.name);
        let account = match self.secrets.get(&path).await? {
            Some(json) => {
                let creds: AccountCredentials = serde_json::from_slice(&json).map_err(|_| {
                    Failure::permanent(
                        "acme.account_corrupt",
                        format!("stored ACME account at {path:?} does not parse"),
                    )
                })?;
                let pkcs8 = PrivatePkcs8KeyDer::from(creds.private_key().secret_pkcs8_der().to_vec());
                let key = Key::from_pkcs8_der(pkcs8.clone_key()).map_err(|e| acme_failure(e, "load account key"))?;
                let (account, _) = Account::builder_with_http(Box::new(self.http.clone()))
                    .create_from_key((key, PrivateKeyDer::Pkcs8(pkcs8)), self.cfg.directory_url.clone())
                    .await
                    .map_err(|e| acme_failure(e, "register account"))?;
                account
            }
            None => {
                let contact: Vec<&str> = self.cfg.contact.iter().map(String::as_str).collect();
                let eab = self
                    .eab
                    .as_ref()
                    .map(|(kid, key)| ExternalAccountKey::new(kid.clone(), key));
                let (account, creds) = Account::builder_with_http(Box::new(self.http.clone()))
                    .create(
                        &NewAccount {
                            contact: &contact,
                            terms_of_service_agreed: true,
                            only_return_existing: false,
                        },
                        self.cfg.directory_url.clone(),
                        eab.as_ref(),
                    )
                    .await
                    .map_err(|e| acme_failure(e, "create account"))?;
                let json =
                    serde_json::to_vec(&creds).map_err(|e| Failure::permanent("acme.account_encode", e.to_string()))?;
                self.secrets.put(&path, &json).await?;
                tracing::info!(ca = %self.name, "created ACME account");
                account
            }
        };
        *guard = Some(account.clone());
        Ok(account)
    }

    async fn forget_account_if(&self, f: &Failure) {
        if f.kind == "acme.accountDoesNotExist" || f.kind == "acme.unauthorized" {
            *self.account.lock().await = None;
        }
    }

    /// Creates an order; returns its pending DNS-01 challenges.
    pub async fn new_order(&self, identifiers: &[String]) -> Result<OrderHandle, Failure> {
        let r = self.new_order_inner(identifiers).await;
        if let Err(f) = &r {
            self.forget_account_if(f).await;
        }
        r
    }

    async fn new_order_inner(&self, identifiers: &[String]) -> Result<OrderHandle, Failure> {
        let account = self.account().await?;
        let ids: Vec<Identifier> = identifiers.iter().map(|n| Identifier::Dns(n.clone())).collect();
        let mut order = account
            .new_order(&NewOrder::new(&ids))
            .await
            .map_err(|e| acme_failure(e, "new order"))?;
        let url = order.url().to_owned();
        let mut challenges = Vec::new();
        let mut authzs = order.authorizations();
        while let Some(authz) = authzs.next().await {
            let mut authz = authz.map_err(|e| acme_failure(e, "fetch authorization"))?;
            match authz.status {
                AuthorizationStatus::Valid => continue,
                AuthorizationStatus::Pending => {}
                other => {
                    return Err(Failure::permanent(
                        "acme.authorization_state",
                        format!("authorization for {} is {other:?}", authz.identifier()),
                    ));
                }
            }
            let ident = authz.identifier().to_string();
            let base = ident.trim_start_matches("*.").to_owned();
            let challenge = authz.challenge(ChallengeType::Dns01).ok_or_else(|| {
                Failure::permanent(
                    "acme.no_dns01",
                    format!("the CA offers no dns-01 challenge for {ident}"),
                )
            })?;
            challenges.push(Dns01Challenge {
                identifier: ident,
                url: challenge.url.clone(),
                record: TxtRecord {
                    name: format!("_acme-challenge.{base}"),
                    value: challenge.key_authorization().dns_value(),
                },
            });
        }
        Ok(OrderHandle {
            ca: self.name.clone(),
            url,
            challenges,
        })
    }

    /// Answers the challenges and waits for the order to become ready.
    pub async fn validate(&self, handle: &OrderHandle) -> Result<(), Failure> {
        let account = self.account().await?;
        let mut order = account
            .order(handle.url.clone())
            .await
            .map_err(|e| acme_failure(e, "load order"))?;
        if order.state().status == OrderStatus::Ready {
            return Ok(());
        }
        let wanted: HashSet<&str> = handle.challenges.iter().map(|c| c.url.as_str()).collect();
        let mut authzs = order.authorizations();
        while let Some(authz) = authzs.next().await {
            let mut authz = authz.map_err(|e| acme_failure(e, "fetch authorization"))?;
            if authz.status != AuthorizationStatus::Pending {
                continue;
            }
            if let Some(mut ch) = authz.challenge(ChallengeType::Dns01)
                && wanted.contains(ch.url.as_str())
                && ch.status == ChallengeStatus::Pending
            {
                ch.set_ready().await.map_err(|e| acme_failure(e, "answer challenge"))?;
            }
        }
        let status = order
            .poll_ready(&poll_policy())
            .await
            .map_err(|e| acme_failure(e, "wait for validation"))?;
        if status == OrderStatus::Invalid {
            // Find out which identifier failed and why, so the failure names it.
            let mut reasons = Vec::new();
            let mut authzs = order.authorizations();
            while let Some(Ok(mut authz)) = authzs.next().await {
                if let Ok(state) = authz.refresh().await {
                    for c in &state.challenges {
                        if let Some(err) = &c.error {
                            reasons.push(format!(
                                "{}: {} ({})",
                                state.identifier(),
                                err.detail.clone().unwrap_or_default(),
                                err.r#type.clone().unwrap_or_default()
                            ));
                        }
                    }
                }
            }
            return Err(Failure::permanent(
                "acme.order_invalid",
                format!("order {} became invalid: {}", handle.url, reasons.join("; ")),
            ));
        }
        Ok(())
    }

    /// Finalizes with the CSR (unless already finalized) and downloads the chain.
    pub async fn finalize(&self, handle: &OrderHandle, csr_der: &[u8]) -> Result<String, Failure> {
        let account = self.account().await?;
        let mut order = account
            .order(handle.url.clone())
            .await
            .map_err(|e| acme_failure(e, "load order"))?;
        match order.state().status {
            OrderStatus::Ready => order
                .finalize_csr(csr_der)
                .await
                .map_err(|e| acme_failure(e, "finalize"))?,
            // A retried activity finds the order already finalized: just fetch the chain.
            OrderStatus::Processing | OrderStatus::Valid => {}
            other => {
                return Err(Failure::permanent(
                    "acme.order_state",
                    format!("order {} is {other:?}, cannot finalize", handle.url),
                ));
            }
        }
        order
            .poll_certificate(&poll_policy())
            .await
            .map_err(|e| acme_failure(e, "download certificate"))
    }
}
