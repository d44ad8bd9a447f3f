//! CloudEvents 1.0 over HTTP(S) POST, structured mode: the whole event is the JSON body.
//!
//! With an HMAC key, `X-Certpool-Signature: sha256=<hex>` carries HMAC-SHA256 of the exact body
//! bytes, so a receiver can authenticate the event before parsing it. Any 2xx means accepted;
//! redirects are not followed (a moved endpoint is a config change, not something to chase).

use bytes::Bytes;
use certpool_domain::Failure;
use certpool_domain::events::CloudEvent;
use certpool_domain::plugins::EventSink;
use http::{Request, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use std::path::Path;
use std::time::Duration;
use zeroize::Zeroizing;

/// `Content-Type` of CloudEvents structured mode (CloudEvents HTTP binding §3.2).
pub const CONTENT_TYPE: &str = "application/cloudevents+json; charset=utf-8";
/// Header carrying `sha256=<hex HMAC-SHA256 of the body>`.
pub const SIGNATURE_HEADER: &str = "X-Certpool-Signature";

const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// A `Retry-After` beyond this is treated as plain transient: the activity's own backoff is a
/// better judge than a receiver asking for hours.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);
/// Enough of an error body to say why the receiver refused, without buffering a whole page.
const MAX_ERROR_BODY: usize = 64 * 1024;

type Client = crate::http::HttpsClient<Full<Bytes>>;

/// Posts events to one webhook URL.
pub struct WebhookSink {
    name: String,
    uri: http::Uri,
    /// The URL without path, query or credentials: webhook URLs often embed a token.
    shown: String,
    key: Option<Zeroizing<Vec<u8>>>,
    client: Client,
    timeout: Duration,
}

impl std::fmt::Debug for WebhookSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookSink")
            .field("name", &self.name)
            .field("url", &self.shown)
            .field("signed", &self.key.is_some())
            .finish_non_exhaustive()
    }
}

/// `sha256=<lowercase hex HMAC-SHA256 of body>`, the value of [`SIGNATURE_HEADER`].
pub use crate::http::hmac_signature as sign;

impl WebhookSink {
    /// Builds the client; no network traffic until the first publish. `trusted_root` is a PEM
    /// file of extra roots, trusted in addition to the system's.
    pub fn new(name: &str, url: &str, hmac_key: Option<&[u8]>, trusted_root: Option<&Path>) -> Result<Self, Failure> {
        let shown = super::redact_url(url);
        let bad = |m: String| Failure::permanent("config.events", format!("events.sinks.{name}: {m}"));
        let uri: http::Uri = url.parse().map_err(|_| bad(format!("url {shown}…: not a valid URL")))?;
        if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.host().is_none() {
            return Err(bad(format!("url {shown}…: must be http(s)://host/…")));
        }
        if hmac_key.is_some_and(<[u8]>::is_empty) {
            return Err(bad("hmac_key is empty".into()));
        }
        Ok(Self {
            name: name.to_owned(),
            uri,
            shown,
            key: hmac_key.map(|k| Zeroizing::new(k.to_vec())),
            client: crate::http::https_client(trusted_root, REQUEST_TIMEOUT).map_err(bad)?,
            timeout: REQUEST_TIMEOUT,
        })
    }

    #[cfg(test)]
    fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    async fn post(&self, body: Vec<u8>) -> Result<(), Failure> {
        let mut req = Request::post(self.uri.clone())
            .header(header::CONTENT_TYPE, CONTENT_TYPE)
            .header(header::USER_AGENT, concat!("certpool/", env!("CARGO_PKG_VERSION")));
        if let Some(key) = &self.key {
            req = req.header(SIGNATURE_HEADER, sign(key, &body));
        }
        let req = req
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| Failure::permanent("webhook.request", format!("{}: {e}", self.shown)))?;
        let resp = self.client.request(req).await.map_err(|e| {
            Failure::transient(
                "webhook.transport",
                format!("{}: {}", self.shown, crate::http::error_chain(&e)),
            )
        })?;
        let status = resp.status();
        let retry_after = resp
            .headers()
            .get(header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        // Reading the body lets the connection go back to the pool; on errors it also says why.
        let body = Limited::new(resp.into_body(), MAX_ERROR_BODY)
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        if status.is_success() {
            return Ok(());
        }
        Err(classify(
            status,
            retry_after,
            &format!("{}: HTTP {status}{}", self.shown, excerpt(&body)),
        ))
    }
}

#[async_trait::async_trait]
impl EventSink for WebhookSink {
    async fn publish(&self, event: &CloudEvent) -> Result<(), Failure> {
        let body = serde_json::to_vec(event).map_err(|e| Failure::permanent("webhook.encode", e.to_string()))?;
        match tokio::time::timeout(self.timeout, self.post(body)).await {
            Ok(r) => r,
            Err(_) => Err(Failure::transient(
                "webhook.timeout",
                format!("{}: no response within {:?}", self.shown, self.timeout),
            )),
        }
    }
}

/// 408 and 429 mean "later", like 5xx; every other 4xx means the receiver will never take this
/// event as sent, and 1xx/3xx mean the URL is not a webhook endpoint.
fn classify(status: StatusCode, retry_after: Option<Duration>, message: &str) -> Failure {
    let later = status.is_server_error() || matches!(status.as_u16(), 408 | 429);
    if !later {
        return Failure::permanent("webhook.rejected", message);
    }
    match retry_after {
        Some(d) if !d.is_zero() && d <= MAX_RETRY_AFTER => Failure::retry_after("webhook.unavailable", message, d),
        _ => Failure::transient("webhook.unavailable", message),
    }
}

/// The start of a response body, on one line.
fn excerpt(body: &[u8]) -> String {
    let text: String = String::from_utf8_lossy(body)
        .chars()
        .take(200)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let text = text.trim();
    if text.is_empty() {
        String::new()
    } else {
        format!(": {text}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use certpool_domain::ErrorClass;
    use hmac::{Hmac, Mac};
    use sha2::Sha256;
    use std::collections::HashMap;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    #[derive(Debug)]
    struct Received {
        request_line: String,
        headers: HashMap<String, String>,
        body: Vec<u8>,
    }

    /// A one-shot HTTP/1.1 server: reads one request, answers `status` (or never, with `None`).
    async fn serve_once(
        status: Option<u16>,
        extra_headers: &'static str,
    ) -> (String, tokio::task::JoinHandle<Received>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let task = tokio::spawn(async move {
            let (mut sock, _) = listener.accept().await.expect("accept");
            let mut buf = Vec::new();
            let head_end = loop {
                let mut chunk = [0u8; 4096];
                let n = sock.read(&mut chunk).await.expect("read");
                assert!(n > 0, "client closed before sending a full request");
                buf.extend_from_slice(&chunk[..n]);
                if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    break i + 4;
                }
            };
            let head = String::from_utf8(buf[..head_end].to_vec()).expect("utf-8 head");
            let mut lines = head.split("\r\n");
            let request_line = lines.next().expect("request line").to_owned();
            let headers: HashMap<String, String> = lines
                .filter_map(|l| l.split_once(':'))
                .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
                .collect();
            let len: usize = headers
                .get("content-length")
                .expect("content-length")
                .parse()
                .expect("length");
            let mut body = buf[head_end..].to_vec();
            while body.len() < len {
                let mut chunk = [0u8; 4096];
                let n = sock.read(&mut chunk).await.expect("read body");
                assert!(n > 0, "client closed mid-body");
                body.extend_from_slice(&chunk[..n]);
            }
            match status {
                Some(code) => {
                    let reply = format!(
                        "HTTP/1.1 {code} X\r\nContent-Length: 4\r\nConnection: close\r\n{extra_headers}\r\nnope"
                    );
                    sock.write_all(reply.as_bytes()).await.expect("write");
                    sock.shutdown().await.ok();
                }
                None => tokio::time::sleep(Duration::from_secs(30)).await,
            }
            Received {
                request_line,
                headers,
                body,
            }
        });
        (format!("http://{addr}/hook?tenant=a"), task)
    }

    fn event() -> CloudEvent {
        CloudEvent {
            specversion: "1.0".into(),
            id: "0190b6a3-7c1e-7000-8000-000000000001".into(),
            source: "certpool/test".into(),
            ty: "net.certpool.certificate.renewed".into(),
            subject: Some("cert-1".into()),
            time: "2025-01-01T00:00:00Z".into(),
            datacontenttype: "application/json".into(),
            data: serde_json::json!({"pool": "p", "serial": "0a1b", "sans": ["*.x.example.net"]}),
        }
    }

    #[tokio::test]
    async fn posts_the_cloudevent_signed() {
        let (url, server) = serve_once(Some(200), "").await;
        let key = b"webhook-key";
        let sink = WebhookSink::new("t", &url, Some(key), None).expect("sink");
        sink.publish(&event()).await.expect("accepted");
        let got = server.await.expect("server");
        assert_eq!(got.request_line, "POST /hook?tenant=a HTTP/1.1");
        assert_eq!(
            got.headers["content-type"],
            "application/cloudevents+json; charset=utf-8"
        );
        assert_eq!(got.body, serde_json::to_vec(&event()).expect("json"));
        let parsed: CloudEvent = serde_json::from_slice(&got.body).expect("CloudEvent JSON");
        assert_eq!(parsed, event());
        // Recomputed here rather than with `sign`, so a bug there cannot hide itself.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("key");
        mac.update(&got.body);
        let expected = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
        assert_eq!(got.headers["x-certpool-signature"], expected);
    }

    #[tokio::test]
    async fn unsigned_without_a_key() {
        let (url, server) = serve_once(Some(204), "").await;
        let sink = WebhookSink::new("t", &url, None, None).expect("sink");
        sink.publish(&event()).await.expect("accepted");
        let got = server.await.expect("server");
        assert!(!got.headers.contains_key("x-certpool-signature"));
    }

    #[tokio::test]
    async fn server_errors_are_transient() {
        let (url, server) = serve_once(Some(503), "").await;
        let sink = WebhookSink::new("t", &url, Some(b"k"), None).expect("sink");
        let e = sink.publish(&event()).await.expect_err("503");
        assert_eq!(e.class, ErrorClass::Transient, "{e}");
        assert!(e.message.contains("503"), "{e}");
        server.await.expect("server");
    }

    #[tokio::test]
    async fn client_errors_are_permanent() {
        let (url, server) = serve_once(Some(400), "").await;
        let sink = WebhookSink::new("t", &url, None, None).expect("sink");
        let e = sink.publish(&event()).await.expect_err("400");
        assert_eq!(e.class, ErrorClass::Permanent, "{e}");
        assert!(
            !e.message.contains("tenant"),
            "the URL's path and query stay out of errors: {e}"
        );
        server.await.expect("server");
    }

    #[tokio::test]
    async fn rate_limits_carry_retry_after() {
        let (url, server) = serve_once(Some(429), "Retry-After: 7\r\n").await;
        let sink = WebhookSink::new("t", &url, None, None).expect("sink");
        let e = sink.publish(&event()).await.expect_err("429");
        assert_eq!(e.class, ErrorClass::RetryAfter(Duration::from_secs(7)), "{e}");
        server.await.expect("server");

        let (url, server) = serve_once(Some(408), "").await;
        let sink = WebhookSink::new("t", &url, None, None).expect("sink");
        let e = sink.publish(&event()).await.expect_err("408");
        assert_eq!(e.class, ErrorClass::Transient, "{e}");
        server.await.expect("server");
    }

    #[tokio::test]
    async fn connection_refused_is_transient() {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            l.local_addr().expect("addr").port()
        };
        let sink = WebhookSink::new("t", &format!("http://127.0.0.1:{port}/hook"), None, None).expect("sink");
        let e = sink.publish(&event()).await.expect_err("refused");
        assert_eq!(e.class, ErrorClass::Transient, "{e}");
        assert_eq!(e.kind, "webhook.transport", "{e}");
    }

    #[tokio::test]
    async fn a_silent_receiver_times_out_as_transient() {
        let (url, server) = serve_once(None, "").await;
        let sink = WebhookSink::new("t", &url, None, None)
            .expect("sink")
            .with_timeout(Duration::from_millis(300));
        let started = std::time::Instant::now();
        let e = sink.publish(&event()).await.expect_err("timeout");
        assert!(started.elapsed() < Duration::from_secs(5));
        assert_eq!(
            (e.class, e.kind.as_str()),
            (ErrorClass::Transient, "webhook.timeout"),
            "{e}"
        );
        server.abort();
    }

    #[test]
    fn bad_urls_and_keys_are_config_errors() {
        for url in ["ftp://example.net/x", "not a url", "http:///path"] {
            let e = WebhookSink::new("t", url, None, None).expect_err(url);
            assert_eq!(e.class, ErrorClass::Permanent);
        }
        let e = WebhookSink::new("t", "https://example.net/h", Some(b""), None).expect_err("empty key");
        assert_eq!(e.class, ErrorClass::Permanent);
    }

    #[test]
    fn debug_hides_key_and_path() {
        let sink =
            WebhookSink::new("t", "https://example.net/services/s3cr3t", Some(b"hmac-s3cr3t"), None).expect("sink");
        let shown = format!("{sink:?}");
        assert!(!shown.contains("s3cr3t"), "{shown}");
    }
}
