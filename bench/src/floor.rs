//! The floor: what pebble and BIND allow on this machine. A direct instant-acme loop with no
//! orchestration: one account, a TCP_NODELAY client, one TSIG-signed UPDATE per challenge,
//! challenges answered at once (BIND is the authoritative server, its UPDATE is synchronous), fast
//! polling. Same first-then-parallel shape as certpool's fill, so both profit equally from the
//! CA's authorization reuse.

use crate::stats::{FillResult, proc_cpu_secs, proc_peak_rss_kib};
use anyhow::{Context, Result, anyhow, bail};
use bytes::Bytes;
use certpool_domain::plugins::{DnsProvider, TxtRecord};
use futures::StreamExt;
use http::Request;
use instant_acme::{
    Account, AuthorizationStatus, BodyWrapper, BytesResponse, ChallengeType, HttpClient, Identifier, NewAccount,
    NewOrder, OrderStatus, RetryPolicy,
};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// certpool config: the CA, its trusted root and the DNS provider come from it.
    #[arg(long)]
    config: PathBuf,
    /// CA name in the config.
    #[arg(long, default_value = "pebble")]
    ca: String,
    /// DNS provider name in the config.
    #[arg(long, default_value = "bind")]
    dns: String,
    /// SANs of every certificate (repeat).
    #[arg(long = "san", required = true)]
    sans: Vec<String>,
    /// Certificates to issue.
    #[arg(long, default_value_t = 100)]
    count: usize,
    /// Orders in flight after the first.
    #[arg(long, default_value_t = 8)]
    parallel: usize,
    /// Limit for one certificate.
    #[arg(long, default_value_t = 120)]
    timeout_secs: u64,
    /// Where the JSON result goes.
    #[arg(long)]
    out: PathBuf,
}

type Https = hyper_util::client::legacy::Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    BodyWrapper<Bytes>,
>;

#[derive(Clone)]
struct NoDelayHttp(Https);

impl HttpClient for NoDelayHttp {
    fn request(
        &self,
        req: Request<BodyWrapper<Bytes>>,
    ) -> Pin<Box<dyn Future<Output = Result<BytesResponse, instant_acme::Error>> + Send>> {
        let fut = self.0.request(req);
        Box::pin(async move {
            fut.await
                .map(BytesResponse::from)
                .map_err(|e| instant_acme::Error::Other(Box::new(e)))
        })
    }
}

fn http_client(trusted_root: Option<&std::path::Path>) -> Result<NoDelayHttp> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
    if let Some(path) = trusted_root {
        for der in CertificateDer::pem_file_iter(path).with_context(|| format!("read {}", path.display()))? {
            roots.add(der?)?;
        }
    }
    // ring, as in certpool's own client: the same TLS cost on both sides of the comparison.
    #[allow(deprecated)]
    let provider = rustls::crypto::ring::default_provider();
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(provider))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let mut http = hyper_util::client::legacy::connect::HttpConnector::new();
    // Without it Nagle and delayed ACKs add ~40 ms to small requests.
    http.set_nodelay(true);
    http.enforce_http(false);
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_only()
        .enable_http1()
        .wrap_connector(http);
    Ok(NoDelayHttp(
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build(https),
    ))
}

fn fast_polling() -> RetryPolicy {
    RetryPolicy::new()
        .initial_delay(Duration::from_millis(5))
        .backoff(1.3)
        .timeout(Duration::from_secs(60))
}

async fn issue_one(account: &Account, dns: &dyn DnsProvider, sans: &[String]) -> Result<()> {
    let ids: Vec<Identifier> = sans.iter().map(|n| Identifier::Dns(n.clone())).collect();
    let mut order = account.new_order(&NewOrder::new(&ids)).await.context("new order")?;
    let mut presented = Vec::new();
    let mut authzs = order.authorizations();
    while let Some(authz) = authzs.next().await {
        let mut authz = authz.context("fetch authorization")?;
        match authz.status {
            AuthorizationStatus::Valid => continue,
            AuthorizationStatus::Pending => {}
            other => bail!("authorization for {} is {other:?}", authz.identifier()),
        }
        let base = authz.identifier().to_string().trim_start_matches("*.").to_owned();
        let mut ch = authz
            .challenge(ChallengeType::Dns01)
            .ok_or_else(|| anyhow!("no dns-01 challenge"))?;
        let record = TxtRecord {
            name: format!("_acme-challenge.{base}"),
            value: ch.key_authorization().dns_value(),
        };
        dns.present(std::slice::from_ref(&record))
            .await
            .map_err(|f| anyhow!("present: {}", f.message))?;
        presented.push(record);
        ch.set_ready().await.context("answer challenge")?;
    }
    let status = order.poll_ready(&fast_polling()).await.context("wait for validation");
    if !presented.is_empty() {
        dns.cleanup(&presented)
            .await
            .map_err(|f| anyhow!("cleanup: {}", f.message))?;
    }
    let status = status?;
    if status != OrderStatus::Ready {
        bail!("order is {status:?} after validation");
    }
    let key = rcgen::KeyPair::generate().context("generate key")?;
    let csr = rcgen::CertificateParams::new(sans.to_vec())?
        .serialize_request(&key)
        .context("CSR")?;
    order.finalize_csr(csr.der()).await.context("finalize")?;
    let chain = order
        .poll_certificate(&fast_polling())
        .await
        .context("download certificate")?;
    if !chain.contains("BEGIN CERTIFICATE") {
        bail!("the CA returned no certificate");
    }
    Ok(())
}

pub(crate) async fn run(args: Args) -> Result<()> {
    let cfg = certpool::load_config(&args.config)?;
    let ca = cfg
        .config
        .ca
        .get(&args.ca)
        .with_context(|| format!("no CA {:?} in the config", args.ca))?;
    let root = ca.trusted_root.as_ref().map(|p| cfg.base_dir.join(p));
    let dns_cfg = cfg
        .config
        .dns
        .get(&args.dns)
        .with_context(|| format!("no DNS provider {:?} in the config", args.dns))?;
    let dns = certpool_activities::dns::from_config(&args.dns, dns_cfg, &cfg.base_dir)
        .map_err(|f| anyhow!("dns: {}", f.message))?;
    let cpu0 = proc_cpu_secs("self")?;
    let started = Instant::now();
    let (account, _) = Account::builder_with_http(Box::new(http_client(root.as_deref())?))
        .create(
            &NewAccount {
                contact: &[],
                terms_of_service_agreed: true,
                only_return_existing: false,
            },
            ca.directory_url.clone(),
            None,
        )
        .await
        .context("register account")?;
    let timeout = Duration::from_secs(args.timeout_secs);
    let one = |i: usize| {
        let account = account.clone();
        let dns = dns.clone();
        let sans = args.sans.clone();
        async move {
            let t = Instant::now();
            let r = match tokio::time::timeout(timeout, issue_one(&account, dns.as_ref(), &sans)).await {
                Ok(r) => r.map_err(|e| format!("certificate {i}: {e:#}")),
                Err(_) => Err(format!("certificate {i}: no certificate after {timeout:?}")),
            };
            (t.elapsed().as_secs_f64(), r)
        }
    };
    let mut outcomes = Vec::with_capacity(args.count);
    if args.count > 0 {
        outcomes.push(one(0).await);
    }
    let rest: Vec<_> = futures::stream::iter(1..args.count)
        .map(one)
        .buffer_unordered(args.parallel.max(1))
        .collect()
        .await;
    outcomes.extend(rest);
    let wall = started.elapsed().as_secs_f64();
    let cpu = proc_cpu_secs("self")? - cpu0;
    let mut result = FillResult {
        name: "floor".into(),
        setup: format!(
            "instant-acme loop in certpool-bench, 1 then {} in parallel, TCP_NODELAY, polling from 5 ms",
            args.parallel
        ),
        target: args.count,
        wall_secs: wall,
        cpu_secs: Some(cpu),
        peak_rss_kib: Some(proc_peak_rss_kib("self")?),
        cpu_scope: "the certpool-bench process".into(),
        ..Default::default()
    };
    result.first_secs = outcomes.first().filter(|o| o.1.is_ok()).map(|o| o.0);
    for (secs, r) in outcomes {
        match r {
            Ok(()) => {
                result.issued += 1;
                result.latencies_secs.push(secs);
            }
            Err(e) => result.errors.push(e),
        }
    }
    eprintln!(
        "floor: {}/{} certificates in {wall:.1} s{}",
        result.issued,
        result.target,
        result
            .errors
            .first()
            .map(|e| format!("; first error: {e}"))
            .unwrap_or_default()
    );
    result.write(&args.out)
}
