//! DNS providers for DNS-01 challenges, one module per product, plus the propagation check.

pub mod clouddns;
pub mod propagation;
pub mod rfc2136;
pub mod route53;

use crate::secret_source;
use certpool_domain::Failure;
use certpool_domain::config::DnsProviderConfig;
use certpool_domain::plugins::{DnsProvider, TxtRecord};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

/// Builds a configured provider.
pub fn from_config(name: &str, cfg: &DnsProviderConfig, base_dir: &Path) -> Result<Arc<dyn DnsProvider>, Failure> {
    match cfg {
        DnsProviderConfig::Rfc2136(c) => {
            let secret = secret_source::resolve(&c.tsig_secret, base_dir, &format!("dns.{name}.tsig_secret"))?;
            Ok(Arc::new(rfc2136::Rfc2136::new(name, c, &secret)?))
        }
        DnsProviderConfig::Clouddns(c) => {
            let key = c
                .credentials
                .as_ref()
                .map(|s| secret_source::resolve(s, base_dir, &format!("dns.{name}.credentials")))
                .transpose()?;
            Ok(Arc::new(clouddns::CloudDns::new(
                name,
                c,
                key.as_deref().map(|k| k.as_str()),
            )?))
        }
        DnsProviderConfig::Route53(c) => Ok(Arc::new(route53::from_config(name, c, base_dir)?)),
    }
}

/// Groups records by owner name, keeping first-seen order, so that every name becomes one RRset
/// in one update.
pub(crate) fn group_by_name(records: &[TxtRecord]) -> BTreeMap<&str, Vec<&str>> {
    let mut out: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for r in records {
        let values = out.entry(r.name.as_str()).or_default();
        if !values.contains(&r.value.as_str()) {
            values.push(r.value.as_str());
        }
    }
    out
}
