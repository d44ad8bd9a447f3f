//! certpool's activities and the plug-in implementations behind them.
//!
//! Every side effect of certpool happens here. Activities implement the definitions pinned in
//! [`certpool_domain::contracts`]; the `definition = …` attribute makes the compiler check that
//! names and payload types match what the workflows call.

pub mod acme;
mod aws;
pub mod dns;
pub mod events;
pub mod failure;
pub mod http;
mod impls;

/// A real private key in PEM, generated once per test run: fixtures never carry key material.
#[cfg(test)]
pub(crate) fn test_key_pem() -> &'static str {
    static KEY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    KEY.get_or_init(|| rcgen::KeyPair::generate().expect("generate a test key").serialize_pem())
}
pub mod inventory;
pub mod keys;
pub mod outbox;
pub mod secret_source;
pub mod secrets;
pub mod targets;

pub use impls::CertpoolActivityImpls;

use acme::AcmeCa;
use certpool_domain::Failure;
use certpool_domain::config::LoadedConfig;
use certpool_domain::plugins::{ClusterTarget, DnsProvider, EventSink, Inventory, SecretStore};
use dns::propagation::PropagationChecker;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Everything activities need, built once per worker from the config.
#[derive(Debug)]
pub struct Services {
    /// The loaded config.
    pub config: Arc<LoadedConfig>,
    /// Secret store.
    pub secrets: Arc<dyn SecretStore>,
    /// Inventory.
    pub inventory: Arc<dyn Inventory>,
    /// DNS providers by name.
    pub dns: BTreeMap<String, Arc<dyn DnsProvider>>,
    /// ACME CAs by name.
    pub cas: BTreeMap<String, Arc<AcmeCa>>,
    /// Propagation checker.
    pub propagation: PropagationChecker,
    /// Cluster targets by name.
    pub targets: BTreeMap<String, Arc<dyn ClusterTarget>>,
    /// Event sinks by name.
    pub sinks: BTreeMap<String, Arc<dyn EventSink>>,
    /// Wakes this process's outbox relay after a claim queued a sync and refill request.
    pub outbox_wake: tokio::sync::Notify,
}

impl Services {
    /// Builds every plug-in named in the config. Fails on the first misconfigured one.
    pub fn from_config(config: Arc<LoadedConfig>) -> Result<Self, Failure> {
        let base = config.base_dir.clone();
        let secrets = secrets::from_config(&config.config.secrets, &base)?;
        let inventory = inventory::from_config(&config.config.inventory, &base, &config.config.events)?;
        let dns = config
            .config
            .dns
            .iter()
            .map(|(n, c)| dns::from_config(n, c, &base).map(|p| (n.clone(), p)))
            .collect::<Result<_, _>>()?;
        let cas = config
            .config
            .ca
            .iter()
            .map(|(n, c)| AcmeCa::new(n, c, &base, secrets.clone()).map(|ca| (n.clone(), Arc::new(ca))))
            .collect::<Result<_, _>>()?;
        let propagation = PropagationChecker::new(&config.config.propagation)?;
        let targets = config
            .config
            .targets
            .iter()
            .map(|(n, c)| targets::from_config(n, c, &base).map(|t| (n.clone(), t)))
            .collect::<Result<_, _>>()?;
        let sinks = config
            .config
            .events
            .sinks
            .iter()
            .map(|(n, c)| events::from_config(n, c, &base).map(|t| (n.clone(), t)))
            .collect::<Result<_, _>>()?;
        Ok(Self {
            config,
            secrets,
            inventory,
            dns,
            cas,
            propagation,
            targets,
            sinks,
            outbox_wake: tokio::sync::Notify::new(),
        })
    }

    pub(crate) fn ca(&self, name: &str) -> Result<&Arc<AcmeCa>, Failure> {
        self.cas
            .get(name)
            .ok_or_else(|| Failure::permanent("config.unknown_ca", format!("this worker's config has no CA {name:?}")))
    }

    pub(crate) fn dns(&self, name: &str) -> Result<&Arc<dyn DnsProvider>, Failure> {
        self.dns.get(name).ok_or_else(|| {
            Failure::permanent(
                "config.unknown_dns",
                format!("this worker's config has no DNS provider {name:?}"),
            )
        })
    }

    /// The records grouped by the zone (fully qualified) that holds them: the provider's one configured zone, or,
    /// for a provider serving several zones, the zone it finds for each name.
    pub(crate) async fn records_by_zone(
        &self,
        provider: &str,
        records: &[certpool_domain::plugins::TxtRecord],
    ) -> Result<BTreeMap<String, Vec<certpool_domain::plugins::TxtRecord>>, Failure> {
        let unknown = || {
            Failure::permanent(
                "config.unknown_dns",
                format!("no zone known for DNS provider {provider:?}"),
            )
        };
        let cfg = self.config.config.dns.get(provider).ok_or_else(unknown)?;
        let mut out: BTreeMap<String, Vec<_>> = BTreeMap::new();
        if let Some(zone) = cfg.zone() {
            out.insert(format!("{}.", zone.trim_end_matches('.')), records.to_vec());
            return Ok(out);
        }
        let dns = self.dns(provider)?;
        for r in records {
            let zone = dns.zone_of(&r.name).await?.ok_or_else(unknown)?;
            out.entry(format!("{}.", zone.trim_end_matches('.')))
                .or_default()
                .push(r.clone());
        }
        Ok(out)
    }
}

pub(crate) fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}
