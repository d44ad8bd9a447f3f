//! Waits until every authoritative server of a zone answers every challenge value.
//!
//! Servers are queried directly (no recursive resolver, no cache), because a CA's validator
//! asks the authoritative servers too. By default the zone's NS set is looked up through the
//! system resolver; `propagation.nameservers` overrides it.

use super::group_by_name;
use certpool_domain::Failure;
use certpool_domain::config::PropagationConfig;
use certpool_domain::plugins::TxtRecord;
use hickory_client::client::{Client, ClientHandle};
use hickory_proto::rr::{DNSClass, Name, RData, RecordType};
use hickory_proto::runtime::TokioRuntimeProvider;
use hickory_proto::udp::UdpClientStream;
use hickory_resolver::TokioResolver;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Propagation settings resolved from config.
#[derive(Debug, Clone)]
pub struct PropagationChecker {
    overrides: Vec<SocketAddr>,
    timeout: Duration,
    interval: Duration,
}

impl PropagationChecker {
    /// From `[propagation]`.
    pub fn new(cfg: &PropagationConfig) -> Result<Self, Failure> {
        let overrides = cfg
            .nameservers
            .iter()
            .map(|s| {
                s.parse::<SocketAddr>().map_err(|_| {
                    Failure::permanent(
                        "config.propagation",
                        format!("nameserver {s:?} must be an IP address and port"),
                    )
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            overrides,
            timeout: cfg.timeout.get(),
            interval: cfg.interval.get(),
        })
    }

    async fn servers(&self, zone: &str) -> Result<Vec<SocketAddr>, Failure> {
        if !self.overrides.is_empty() {
            return Ok(self.overrides.clone());
        }
        let resolver = TokioResolver::builder_tokio()
            .map_err(|e| Failure::transient("dns.resolver", e.to_string()))?
            .build();
        let ns = resolver
            .ns_lookup(zone)
            .await
            .map_err(|e| Failure::transient("dns.ns_lookup", format!("NS lookup of {zone}: {e}")))?;
        let mut out = Vec::new();
        for n in ns.iter() {
            if let Ok(ips) = resolver.lookup_ip(n.0.clone()).await {
                out.extend(ips.iter().map(|ip| SocketAddr::new(ip, 53)));
            }
        }
        if out.is_empty() {
            return Err(Failure::transient(
                "dns.ns_lookup",
                format!("no reachable NS addresses for {zone}"),
            ));
        }
        Ok(out)
    }

    /// Returns once all servers answer all values.
    pub async fn wait(&self, zone: &str, records: &[TxtRecord]) -> Result<(), Failure> {
        let servers = self.servers(zone).await?;
        let grouped = group_by_name(records);
        let deadline = Instant::now() + self.timeout;
        let mut pending: Vec<(SocketAddr, &str)> = servers
            .iter()
            .flat_map(|s| grouped.keys().map(move |n| (*s, *n)))
            .collect();
        let mut last_error = String::new();
        loop {
            let mut still = Vec::new();
            for (server, name) in pending {
                match query_txt(server, name, self.interval.max(Duration::from_secs(2))).await {
                    Ok(values) if grouped[name].iter().all(|v| values.iter().any(|got| got == v)) => {}
                    Ok(_) => still.push((server, name)),
                    Err(e) => {
                        last_error = e;
                        still.push((server, name));
                    }
                }
            }
            pending = still;
            if pending.is_empty() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                let (server, name) = pending[0];
                return Err(Failure::transient(
                    "dns.propagation_timeout",
                    format!(
                        "after {:?}, {} of {} checks still missing, e.g. {name} at {server}{}",
                        self.timeout,
                        pending.len(),
                        servers.len() * grouped.len(),
                        if last_error.is_empty() {
                            String::new()
                        } else {
                            format!(" (last error: {last_error})")
                        }
                    ),
                ));
            }
            tokio::time::sleep(self.interval).await;
        }
    }
}

async fn query_txt(server: SocketAddr, name: &str, timeout: Duration) -> Result<Vec<String>, String> {
    let owner = Name::from_ascii(format!("{}.", name.trim_end_matches('.'))).map_err(|e| e.to_string())?;
    let stream = UdpClientStream::builder(server, TokioRuntimeProvider::default())
        .with_timeout(Some(timeout))
        .build();
    let (mut client, bg) = Client::connect(stream).await.map_err(|e| e.to_string())?;
    let bg = tokio::spawn(bg);
    let result = client.query(owner, DNSClass::IN, RecordType::TXT).await;
    bg.abort();
    let response = result.map_err(|e| e.to_string())?;
    Ok(response
        .answers()
        .iter()
        .filter_map(|r| match r.data() {
            RData::TXT(txt) => Some(
                txt.txt_data()
                    .iter()
                    .map(|d| String::from_utf8_lossy(d).into_owned())
                    .collect::<String>(),
            ),
            _ => None,
        })
        .collect())
}
