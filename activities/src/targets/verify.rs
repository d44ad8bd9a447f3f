//! Checking that a cluster's TLS endpoint serves the certificate just delivered to it.
//!
//! The check compares serials and nothing else. It is not authentication: the handshake accepts
//! whatever certificate the endpoint presents (self-signed, expired, for another name), because
//! the question is "which certificate is being served", not "may we trust this server". Nothing
//! is ever sent over these connections.

use certpool_domain::{ErrorClass, Failure};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::{DigitallySignedStruct, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// Bounds on one attempt of [`wait_for_serial`]: long enough for a loaded server's handshake,
/// short enough that one stuck connection does not use up the whole wait.
const MIN_ATTEMPT: Duration = Duration::from_millis(500);
const MAX_ATTEMPT: Duration = Duration::from_secs(10);
const MIN_POLL: Duration = Duration::from_millis(10);

/// Connects to `endpoint` (`host:port`, `[v6]:port`), completes a TLS handshake and returns the
/// serial of the leaf certificate it presents, lowercase hex without separators (the format of
/// [`crate::keys::leaf_info`]).
///
/// SNI is `sni` if given, else the endpoint's host when it is a DNS name, else `localhost` (an
/// IP address cannot be sent as SNI, and servers pick their default certificate without one
/// anyway). A malformed endpoint or SNI is a permanent failure; everything about the server
/// (refused, reset, handshake failure, `timeout` passed) is transient.
pub async fn served_serial(endpoint: &str, sni: Option<&str>, timeout: Duration) -> Result<String, Failure> {
    let (host, port) = split_endpoint(endpoint)?;
    let name = server_name(&host, sni)?;
    let connector = TlsConnector::from(client_config()?);
    let attempt = async {
        let tcp = TcpStream::connect((host.as_str(), port)).await.map_err(|e| {
            Failure::transient(
                "target.verify_unreachable",
                format!("cannot connect to {endpoint}: {e}"),
            )
        })?;
        // The handshake is a few small round trips; Nagle would only delay them.
        let _ = tcp.set_nodelay(true);
        let mut tls = connector.connect(name, tcp).await.map_err(|e| {
            Failure::transient(
                "target.verify_handshake",
                format!("TLS handshake with {endpoint} failed: {e}"),
            )
        })?;
        let leaf = tls
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|chain| chain.first())
            .ok_or_else(|| {
                Failure::transient(
                    "target.verify_handshake",
                    format!("{endpoint} presented no certificate"),
                )
            })?;
        let serial = serial_of(leaf).map_err(|e| {
            Failure::transient(
                "target.verify_bad_certificate",
                format!("{endpoint} presented a certificate that does not parse: {e}"),
            )
        })?;
        // A polite close_notify, so that servers do not log an aborted connection; the serial is
        // already known, so this must not turn into a failure.
        let _ = tokio::time::timeout(Duration::from_millis(200), tls.shutdown()).await;
        Ok(serial)
    };
    tokio::time::timeout(timeout, attempt).await.map_err(|_| {
        Failure::transient(
            "target.verify_timeout",
            format!("no TLS handshake with {endpoint} within {timeout:?}"),
        )
    })?
}

/// Polls [`served_serial`] every `poll` until the endpoint serves `expected`, for at most about
/// `timeout`. Servers pick up a new certificate some time after their reload command returns
/// (nginx starts new workers, old ones drain), hence the polling.
///
/// Gives up at once on a permanent failure (bad endpoint or SNI). After `timeout` the failure is
/// transient and says what was served instead, or why nothing was.
pub async fn wait_for_serial(
    endpoint: &str,
    sni: Option<&str>,
    expected: &str,
    timeout: Duration,
    poll: Duration,
) -> Result<(), Failure> {
    let expected: String = expected
        .chars()
        .filter(|c| *c != ':')
        .map(|c| c.to_ascii_lowercase())
        .collect();
    let poll = poll.max(MIN_POLL);
    let started = Instant::now();
    loop {
        let remaining = timeout.saturating_sub(started.elapsed());
        let outcome = served_serial(endpoint, sni, remaining.clamp(MIN_ATTEMPT, MAX_ATTEMPT)).await;
        match &outcome {
            Ok(served) if *served == expected => return Ok(()),
            Err(e) if e.class == ErrorClass::Permanent => return Err(e.clone()),
            _ => {}
        }
        let remaining = timeout.saturating_sub(started.elapsed());
        if remaining.is_zero() {
            let sni = sni.map(|s| format!(" (SNI {s})")).unwrap_or_default();
            return Err(match outcome {
                Ok(served) => Failure::transient(
                    "target.verify_mismatch",
                    format!("{endpoint}{sni} still serves serial {served}, not {expected}, after {timeout:?}"),
                ),
                Err(e) => Failure::transient(
                    "target.verify_timeout",
                    format!(
                        "{endpoint}{sni} did not serve serial {expected} within {timeout:?}; last attempt: {}",
                        e.message
                    ),
                ),
            });
        }
        tokio::time::sleep(poll.min(remaining)).await;
    }
}

fn split_endpoint(endpoint: &str) -> Result<(String, u16), Failure> {
    let bad = || {
        Failure::permanent(
            "target.verify_endpoint",
            format!("verify endpoint {endpoint:?} must be host:port"),
        )
    };
    let (host, port) = endpoint.rsplit_once(':').ok_or_else(bad)?;
    let port: u16 = port.parse().map_err(|_| bad())?;
    let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    if host.is_empty() || host.contains(['/', ' ', '[', ']']) {
        return Err(bad());
    }
    Ok((host.to_owned(), port))
}

fn server_name(host: &str, sni: Option<&str>) -> Result<ServerName<'static>, Failure> {
    let name = match sni {
        Some(s) => s.to_owned(),
        None if host.parse::<IpAddr>().is_ok() => "localhost".to_owned(),
        None => host.to_owned(),
    };
    ServerName::try_from(name.clone())
        .map_err(|e| Failure::permanent("target.verify_sni", format!("{name:?} cannot be sent as SNI: {e}")))
}

fn serial_of(der: &CertificateDer<'_>) -> Result<String, String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).map_err(|e| e.to_string())?;
    Ok(cert.raw_serial().iter().map(|b| format!("{b:02x}")).collect())
}

fn client_config() -> Result<Arc<rustls::ClientConfig>, Failure> {
    // ring, as everywhere in certpool: no cmake/C toolchain for aws-lc-rs.
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = Arc::new(AnyServerCert(provider.signature_verification_algorithms));
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Failure::permanent("target.verify_tls", e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Accepts every server certificate: we only read its serial, we do not authenticate the
/// server (see the module docs). The handshake signature is still checked against the presented
/// certificate, which costs nothing and proves the server holds the key of the certificate it
/// shows, so a served certificate is one that is actually usable.
#[derive(Debug)]
struct AnyServerCert(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for AnyServerCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls_pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
    use tokio::net::TcpListener;
    use tokio_rustls::TlsAcceptor;

    /// A TLS server presenting a fresh self-signed certificate for `san`; returns its address,
    /// the serial as `leaf_info` reads it, and a receiver of the SNI each client sent.
    async fn tls_server(san: &str) -> (String, String, tokio::sync::mpsc::UnboundedReceiver<Option<String>>) {
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = rcgen::CertificateParams::new(vec![san.to_owned()])
            .expect("params")
            .self_signed(&key)
            .expect("cert");
        let serial = crate::keys::leaf_info(&cert.pem()).expect("leaf").serial;
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_no_client_auth()
            .with_single_cert(
                vec![cert.der().clone()],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
            )
            .expect("server config");
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                let tx = tx.clone();
                tokio::spawn(async move {
                    if let Ok(tls) = acceptor.accept(tcp).await {
                        let _ = tx.send(tls.get_ref().1.server_name().map(str::to_owned));
                    }
                });
            }
        });
        (addr, serial, rx)
    }

    #[tokio::test]
    async fn reads_the_serial_of_any_certificate_and_sends_sni() {
        let (addr, serial, mut sni) = tls_server("nobody-trusts-this.test").await;
        let got = served_serial(&addr, Some("c1.example.net"), Duration::from_secs(5))
            .await
            .expect("serial");
        assert_eq!(got, serial);
        assert!(got.chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert_eq!(sni.recv().await.expect("sni"), Some("c1.example.net".into()));

        // An IP endpoint without SNI sends `localhost`.
        served_serial(&addr, None, Duration::from_secs(5))
            .await
            .expect("serial");
        assert_eq!(sni.recv().await.expect("sni"), Some("localhost".into()));
    }

    #[tokio::test]
    async fn waits_for_the_expected_serial_and_says_what_was_served_instead() {
        let (addr, serial, _sni) = tls_server("x.test").await;
        wait_for_serial(
            &addr,
            None,
            &serial.to_uppercase(),
            Duration::from_secs(5),
            Duration::from_millis(50),
        )
        .await
        .expect("matches");
        let e = wait_for_serial(&addr, None, "01", Duration::from_millis(300), Duration::from_millis(50))
            .await
            .expect_err("mismatch");
        assert_eq!(
            (e.class, e.kind.as_str()),
            (ErrorClass::Transient, "target.verify_mismatch")
        );
        assert!(
            e.message.contains(&serial) && e.message.contains("not 01"),
            "{}",
            e.message
        );
    }

    #[tokio::test]
    async fn closed_ports_and_silent_servers_time_out_clearly() {
        let closed = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = closed.local_addr().expect("addr").to_string();
        drop(closed);
        let started = Instant::now();
        let e = wait_for_serial(&addr, None, "01", Duration::from_millis(500), Duration::from_millis(50))
            .await
            .expect_err("closed");
        assert!(started.elapsed() < Duration::from_secs(5));
        assert_eq!(
            (e.class, e.kind.as_str()),
            (ErrorClass::Transient, "target.verify_timeout")
        );
        assert!(e.message.contains("did not serve serial 01"), "{}", e.message);
        assert!(e.message.contains("cannot connect"), "{}", e.message);

        // Accepts TCP, never speaks TLS.
        let silent = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = silent.local_addr().expect("addr").to_string();
        let e = served_serial(&addr, None, Duration::from_millis(300))
            .await
            .expect_err("silent");
        assert_eq!(
            (e.class, e.kind.as_str()),
            (ErrorClass::Transient, "target.verify_timeout")
        );
        drop(silent);
    }

    #[tokio::test]
    async fn malformed_endpoints_and_sni_fail_permanently_without_waiting() {
        for (endpoint, sni) in [
            ("no-port", None),
            ("host:http", None),
            (":443", None),
            ("127.0.0.1:1", Some("not a name")),
        ] {
            let e = wait_for_serial(endpoint, sni, "01", Duration::from_secs(30), Duration::from_millis(10))
                .await
                .expect_err(endpoint);
            assert_eq!(e.class, ErrorClass::Permanent, "{endpoint}: {e}");
        }
        assert_eq!(split_endpoint("[::1]:8443").expect("v6"), ("::1".to_owned(), 8443));
    }
}
