//! The `webhook` target: an HTTP(S) POST of a JSON document signed with HMAC-SHA256, for
//! clusters that take their certificate through an API of their own.
//!
//! The document is `{"cluster", "cert_id", "serial", "sans", "chain_pem"}`, plus
//! `"private_key_pem"` when the target is configured to include it. The header
//! `X-Certpool-Signature: sha256=<hex>` carries the HMAC of the exact body bytes, keyed with the
//! UTF-8 bytes of the configured secret, so a receiver can authenticate the sender before parsing.

use super::{substitute, validate_cluster, verify_pair};
use async_trait::async_trait;
use bytes::Bytes;
use certpool_domain::Failure;
use certpool_domain::plugins::{ClusterTarget, Delivery};
use http::{HeaderValue, Method, Request, StatusCode, Uri, header};
use http_body_util::{BodyExt, Full};
use serde::Serialize;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use zeroize::Zeroizing;

/// How long one POST may take, connecting and reading the answer included.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Header carrying the body's signature.
pub const SIGNATURE_HEADER: &str = "x-certpool-signature";

/// How much of an error answer's body a failure quotes.
const ANSWER_SNIPPET_BYTES: usize = 300;

type Client = crate::http::HttpsClient<Full<Bytes>>;

/// Delivers by POSTing a signed JSON document.
#[derive(Clone)]
pub struct WebhookTarget {
    name: String,
    url: String,
    hmac_key: Arc<Zeroizing<Vec<u8>>>,
    include_private_key: bool,
    client: Client,
    request_timeout: Duration,
    verify_endpoint: Option<String>,
    verify_sni: Option<String>,
    verify_timeout: Duration,
}

impl std::fmt::Debug for WebhookTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookTarget")
            .field("name", &self.name)
            .field("url", &self.url)
            .field("include_private_key", &self.include_private_key)
            .field("request_timeout", &self.request_timeout)
            .field("verify_endpoint", &self.verify_endpoint)
            .finish_non_exhaustive()
    }
}

/// The document; borrowed so that the key is never copied into a value that outlives the body.
#[derive(Serialize)]
struct Document<'a> {
    cluster: &'a str,
    cert_id: &'a str,
    serial: &'a str,
    sans: &'a [String],
    chain_pem: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    private_key_pem: Option<&'a str>,
}

impl WebhookTarget {
    /// A target POSTing to `url` (`{cluster}` replaced), signing with `hmac_key`, trusting the
    /// system roots plus `trusted_root` (a PEM file) if given.
    pub fn new(
        name: &str,
        url: &str,
        hmac_key: &[u8],
        include_private_key: bool,
        trusted_root: Option<&Path>,
    ) -> Result<Self, Failure> {
        let bad = |m: String| Failure::permanent("config.target", format!("targets.{name}: {m}"));
        let probe = url.replace("{cluster}", "cluster");
        let uri: Uri = probe.parse().map_err(|e| bad(format!("url {url:?}: {e}")))?;
        if !matches!(uri.scheme_str(), Some("https" | "http")) || uri.host().is_none() {
            return Err(bad(format!("url {url:?} is not an absolute http(s) URL")));
        }
        if hmac_key.is_empty() {
            return Err(bad("hmac_key is empty".into()));
        }
        Ok(Self {
            name: name.to_owned(),
            url: url.to_owned(),
            hmac_key: Arc::new(Zeroizing::new(hmac_key.to_vec())),
            include_private_key,
            client: crate::http::https_client(trusted_root, DEFAULT_REQUEST_TIMEOUT).map_err(bad)?,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            verify_endpoint: None,
            verify_sni: None,
            verify_timeout: Duration::from_secs(60),
        })
    }

    /// Sets the TLS endpoint (`host:port`, `{cluster}` replaced) that must serve a delivered
    /// certificate, the SNI to send (`{cluster}` replaced) and how long to keep checking.
    #[must_use]
    pub fn with_verify(mut self, endpoint: Option<String>, sni: Option<String>, timeout: Duration) -> Self {
        self.verify_endpoint = endpoint;
        self.verify_sni = sni;
        self.verify_timeout = timeout;
        self
    }

    /// Overrides [`DEFAULT_REQUEST_TIMEOUT`].
    #[must_use]
    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    fn body(&self, d: &Delivery) -> Result<Zeroizing<Vec<u8>>, Failure> {
        let doc = Document {
            cluster: &d.cluster,
            cert_id: &d.cert_id,
            serial: &d.serial,
            sans: &d.sans,
            chain_pem: &d.chain_pem,
            private_key_pem: self.include_private_key.then_some(d.key_pem.as_str()),
        };
        serde_json::to_vec(&doc)
            .map(Zeroizing::new)
            .map_err(|e| Failure::permanent("target.webhook_encode", format!("targets.{}: {e}", self.name)))
    }
}

/// `sha256=<lowercase hex HMAC-SHA256 of body>`, the value of [`SIGNATURE_HEADER`].
pub use crate::http::hmac_signature as signature;

#[async_trait]
impl ClusterTarget for WebhookTarget {
    async fn deliver(&self, delivery: &Delivery) -> Result<(), Failure> {
        validate_cluster(&delivery.cluster)?;
        if self.include_private_key && delivery.key_pem.trim().is_empty() {
            return Err(Failure::permanent(
                "target.incomplete_delivery",
                format!(
                    "targets.{}: certificate {} for cluster {} comes without the key the webhook expects",
                    self.name, delivery.cert_id, delivery.cluster
                ),
            ));
        }
        let url = substitute(&self.url, &delivery.cluster)?;
        let uri: Uri = url
            .parse()
            .map_err(|e| Failure::permanent("config.target", format!("targets.{}: url {url:?}: {e}", self.name)))?;
        let what = format!("targets.{}: POST {url} for cluster {}", self.name, delivery.cluster);
        let body = self.body(delivery)?;
        let sig = HeaderValue::from_str(&signature(&self.hmac_key, &body))
            .map_err(|e| Failure::permanent("target.webhook_encode", format!("{what}: {e}")))?;
        let request = Request::builder()
            .method(Method::POST)
            .uri(uri)
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::USER_AGENT, concat!("certpool/", env!("CARGO_PKG_VERSION")))
            .header(SIGNATURE_HEADER, sig)
            // The body may hold the private key; handing hyper the zeroizing buffer itself (not a
            // copy) wipes it when hyper lets go. Best effort: hyper may buffer small bodies.
            .body(Full::new(Bytes::from_owner(body)))
            .map_err(|e| Failure::permanent("target.webhook_encode", format!("{what}: {e}")))?;

        let exchange = async {
            let response = self.client.request(request).await?;
            let status = response.status();
            let retry_after = response
                .headers()
                .get(header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            let mut body = response.into_body();
            let mut snippet = Vec::new();
            // Enough of the answer to explain a refusal; the rest is never needed.
            while snippet.len() < ANSWER_SNIPPET_BYTES {
                match body.frame().await {
                    Some(Ok(frame)) => {
                        if let Ok(data) = frame.into_data() {
                            snippet.extend_from_slice(&data);
                        }
                    }
                    _ => break,
                }
            }
            Ok::<_, hyper_util::client::legacy::Error>((status, retry_after, snippet))
        };
        let (status, retry_after, snippet) = match tokio::time::timeout(self.request_timeout, exchange).await {
            Err(_) => {
                return Err(Failure::transient(
                    "target.webhook_timeout",
                    format!("{what}: no answer within {:?}", self.request_timeout),
                ));
            }
            Ok(Err(e)) => {
                return Err(Failure::transient(
                    "target.webhook_unreachable",
                    format!("{what}: {}", crate::http::error_chain(&e)),
                ));
            }
            Ok(Ok(answer)) => answer,
        };
        if status.is_success() {
            return Ok(());
        }
        let message = format!("{what}: answered {status}{}", quote_answer(&snippet));
        Err(classify(status, retry_after, message))
    }

    fn verify_endpoint(&self, cluster: &str) -> Option<(String, Option<String>)> {
        verify_pair(self.verify_endpoint.as_deref(), self.verify_sni.as_deref(), cluster)
    }

    fn verify_timeout(&self) -> Duration {
        self.verify_timeout
    }
}

/// 2xx is handled by the caller; a receiver that refuses the request (4xx) will refuse it again,
/// except for a timeout (408) or throttling (429); anything else (5xx, odd codes) may pass later.
fn classify(status: StatusCode, retry_after: Option<Duration>, message: String) -> Failure {
    let kind = "target.webhook_rejected";
    match status.as_u16() {
        408 => Failure::transient(kind, message),
        429 | 503 if retry_after.is_some() => {
            Failure::retry_after(kind, message, retry_after.unwrap_or(Duration::from_secs(60)))
        }
        400..=499 if status != StatusCode::TOO_MANY_REQUESTS => Failure::permanent(kind, message),
        _ => Failure::transient(kind, message),
    }
}

/// A short, single-line quote of an error answer. An answer that looks like it echoes key
/// material is not quoted at all, since failures end up in workflow history and logs.
fn quote_answer(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(ANSWER_SNIPPET_BYTES)]);
    if text.contains("PRIVATE KEY") {
        return " (answer withheld: it looks like it contains a private key)".into();
    }
    let flat: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    if flat.is_empty() {
        String::new()
    } else {
        format!(": {flat}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use certpool_domain::ErrorClass;
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
    use tokio::net::TcpListener;
    use tokio::sync::mpsc;

    fn delivery() -> Delivery {
        Delivery {
            cluster: "c1".into(),
            cert_id: "cert-1".into(),
            serial: "0a1b".into(),
            sans: vec!["a.example.net".into(), "*.b.example.net".into()],
            chain_pem: "-----BEGIN CERTIFICATE-----\nY2hhaW4=\n-----END CERTIFICATE-----\n".into(),
            key_pem: Zeroizing::new(crate::test_key_pem().into()),
        }
    }

    /// One received request: path, headers (lowercase names), body.
    #[derive(Debug)]
    struct Received {
        path: String,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
        signature_ok: bool,
    }

    impl Received {
        fn header(&self, name: &str) -> Option<&str> {
            self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
        }
    }

    /// A minimal HTTP/1.1 server that checks the signature with `key` and answers 200 when it is
    /// valid, or `status` for every request if given, else 401.
    async fn server(key: &'static [u8], status: Option<u16>) -> (String, mpsc::UnboundedReceiver<Received>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let tx = tx.clone();
                tokio::spawn(async move {
                    let mut stream = BufReader::new(stream);
                    loop {
                        let mut line = String::new();
                        if stream.read_line(&mut line).await.unwrap_or(0) == 0 {
                            return;
                        }
                        let path = line.split_whitespace().nth(1).unwrap_or_default().to_owned();
                        let mut headers = Vec::new();
                        loop {
                            let mut h = String::new();
                            stream.read_line(&mut h).await.expect("header");
                            let h = h.trim_end();
                            if h.is_empty() {
                                break;
                            }
                            let (n, v) = h.split_once(':').expect("header line");
                            headers.push((n.trim().to_ascii_lowercase(), v.trim().to_owned()));
                        }
                        let len: usize = headers
                            .iter()
                            .find(|(n, _)| n == "content-length")
                            .map_or(0, |(_, v)| v.parse().expect("length"));
                        let mut body = vec![0; len];
                        stream.read_exact(&mut body).await.expect("body");
                        let expected = signature(key, &body);
                        let signature_ok = headers.iter().any(|(n, v)| n == SIGNATURE_HEADER && *v == expected);
                        let code = status.unwrap_or(if signature_ok { 200 } else { 401 });
                        let answer = format!("status {code}");
                        let response = format!(
                            "HTTP/1.1 {code} X\r\ncontent-length: {}\r\nretry-after: 7\r\n\r\n{answer}",
                            answer.len()
                        );
                        stream.get_mut().write_all(response.as_bytes()).await.expect("write");
                        let _ = tx.send(Received {
                            path,
                            headers,
                            body,
                            signature_ok,
                        });
                    }
                });
            }
        });
        (format!("http://{addr}"), rx)
    }

    #[test]
    fn signature_is_hmac_sha256_hex() {
        // RFC 4231 test case 2.
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[tokio::test]
    async fn posts_a_signed_document_without_the_key_by_default() {
        let (base, mut rx) = server(b"s3cret", None).await;
        let target = WebhookTarget::new("w", &format!("{base}/hook/{{cluster}}"), b"s3cret", false, None).expect("t");
        target.deliver(&delivery()).await.expect("deliver");
        let got = rx.recv().await.expect("request");
        assert!(got.signature_ok);
        assert_eq!(got.path, "/hook/c1");
        assert_eq!(got.header("content-type"), Some("application/json"));
        let doc: serde_json::Value = serde_json::from_slice(&got.body).expect("json");
        assert_eq!(
            doc,
            serde_json::json!({
                "cluster": "c1",
                "cert_id": "cert-1",
                "serial": "0a1b",
                "sans": ["a.example.net", "*.b.example.net"],
                "chain_pem": delivery().chain_pem,
            })
        );
    }

    #[tokio::test]
    async fn includes_the_key_only_when_configured() {
        let (base, mut rx) = server(b"k", None).await;
        let target = WebhookTarget::new("w", &base, b"k", true, None).expect("t");
        target.deliver(&delivery()).await.expect("deliver");
        let got = rx.recv().await.expect("request");
        assert!(got.signature_ok);
        let doc: serde_json::Value = serde_json::from_slice(&got.body).expect("json");
        assert_eq!(doc["private_key_pem"], crate::test_key_pem());
    }

    #[tokio::test]
    async fn wrong_key_is_rejected_permanently() {
        let (base, mut rx) = server(b"right", None).await;
        let target = WebhookTarget::new("w", &base, b"wrong", true, None).expect("t");
        let e = target.deliver(&delivery()).await.expect_err("401");
        assert_eq!(e.class, ErrorClass::Permanent);
        assert!(e.message.contains("401"), "{}", e.message);
        assert!(!e.message.contains("PRIVATE KEY"), "{}", e.message);
        assert!(!rx.recv().await.expect("request").signature_ok);
    }

    #[tokio::test]
    async fn server_errors_and_throttling_are_retried() {
        let (base, _rx) = server(b"k", Some(500)).await;
        let target = WebhookTarget::new("w", &base, b"k", false, None).expect("t");
        let e = target.deliver(&delivery()).await.expect_err("500");
        assert_eq!(e.class, ErrorClass::Transient);
        assert!(
            e.message.contains("500") && e.message.contains("status 500"),
            "{}",
            e.message
        );

        let (base, _rx) = server(b"k", Some(429)).await;
        let target = WebhookTarget::new("w", &base, b"k", false, None).expect("t");
        let e = target.deliver(&delivery()).await.expect_err("429");
        assert_eq!(e.class, ErrorClass::RetryAfter(Duration::from_secs(7)));

        let (base, _rx) = server(b"k", Some(408)).await;
        let target = WebhookTarget::new("w", &base, b"k", false, None).expect("t");
        assert_eq!(
            target.deliver(&delivery()).await.expect_err("408").class,
            ErrorClass::Transient
        );

        let (base, _rx) = server(b"k", Some(404)).await;
        let target = WebhookTarget::new("w", &base, b"k", false, None).expect("t");
        assert_eq!(
            target.deliver(&delivery()).await.expect_err("404").class,
            ErrorClass::Permanent
        );
    }

    #[tokio::test]
    async fn unreachable_and_silent_endpoints_are_transient() {
        let closed = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = closed.local_addr().expect("addr");
        drop(closed);
        let target = WebhookTarget::new("w", &format!("http://{addr}/"), b"k", false, None).expect("t");
        let e = target.deliver(&delivery()).await.expect_err("refused");
        assert_eq!(
            (e.class, e.kind.as_str()),
            (ErrorClass::Transient, "target.webhook_unreachable")
        );

        // Accepts, never answers.
        let silent = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = silent.local_addr().expect("addr");
        let target = WebhookTarget::new("w", &format!("http://{addr}/"), b"k", false, None)
            .expect("t")
            .with_request_timeout(Duration::from_millis(300));
        let e = target.deliver(&delivery()).await.expect_err("timeout");
        assert_eq!(
            (e.class, e.kind.as_str()),
            (ErrorClass::Transient, "target.webhook_timeout")
        );
        drop(silent);
    }

    #[tokio::test]
    async fn bad_config_and_cluster_ids_are_permanent() {
        assert!(WebhookTarget::new("w", "ftp://x/", b"k", false, None).is_err());
        assert!(WebhookTarget::new("w", "/relative", b"k", false, None).is_err());
        assert!(WebhookTarget::new("w", "https://x/", b"", false, None).is_err());
        let target = WebhookTarget::new("w", "http://127.0.0.1:9/{cluster}", b"topsecret", false, None).expect("t");
        let mut d = delivery();
        d.cluster = "../admin".into();
        let e = target.deliver(&d).await.expect_err("bad id");
        assert_eq!(
            (e.class, e.kind.as_str()),
            (ErrorClass::Permanent, "target.bad_cluster")
        );
        assert!(!format!("{target:?}").contains("topsecret"));
    }

    #[test]
    fn echoed_keys_are_not_quoted() {
        let key = crate::test_key_pem();
        let body = key.lines().nth(1).expect("a base64 line");
        assert!(!quote_answer(key.as_bytes()).contains(&body[..20]));
        assert_eq!(quote_answer(b"bad\r\n  request"), ": bad request");
        assert_eq!(quote_answer(b""), "");
    }
}
