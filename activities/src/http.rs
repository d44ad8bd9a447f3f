//! The HTTPS client every plug-in that speaks HTTP uses (ACME, webhooks, Vault), so TLS roots,
//! crypto provider, TCP_NODELAY and pooling are decided once.

use hmac::{Hmac, Mac};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use sha2::Sha256;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// A pooled HTTP/1.1 + HTTP/2 client over rustls.
pub(crate) type HttpsClient<B> = Client<HttpsConnector<HttpConnector>, B>;

/// Builds a client that trusts the system roots plus, optionally, the PEM certificates in
/// `trusted_root` (test CAs). The error is a message for the caller's own failure kind.
pub(crate) fn https_client<B>(trusted_root: Option<&Path>, connect_timeout: Duration) -> Result<HttpsClient<B>, String>
where
    B: hyper::body::Body + Send,
    B::Data: Send,
{
    let mut roots = rustls::RootCertStore::empty();
    roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
    if let Some(path) = trusted_root {
        let pem = std::fs::read(path).map_err(|e| format!("trusted_root {}: {e}", path.display()))?;
        let ders = crate::acme::pem_blocks(&pem, "CERTIFICATE");
        if ders.is_empty() {
            return Err(format!("trusted_root {} holds no PEM certificate", path.display()));
        }
        for der in ders {
            roots
                .add(rustls_pki_types::CertificateDer::from(der))
                .map_err(|e| format!("trusted_root {}: {e}", path.display()))?;
        }
    }
    // ring rather than aws-lc-rs keeps the build free of cmake; the post-quantum key exchange
    // it lacks is not needed here.
    #[allow(deprecated)]
    let provider = rustls::crypto::ring::default_provider();
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let mut http = HttpConnector::new();
    // Nagle plus delayed ACK costs ~40 ms per small request.
    http.set_nodelay(true);
    http.enforce_http(false);
    http.set_connect_timeout(Some(connect_timeout));
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .wrap_connector(http);
    Ok(Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(60))
        .build(https))
}

/// `sha256=<hex>` HMAC-SHA256 of `body`, the signature header of certpool's webhooks.
pub fn hmac_signature(key: &[u8], body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// hyper's errors say only "client error (Connect)"; the cause ("Connection refused") is in
/// the source chain.
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        out.push_str(": ");
        out.push_str(&s.to_string());
        cur = s.source();
    }
    out
}
