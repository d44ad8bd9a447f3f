//! `route53`: Amazon Route 53 through its API (aws-sdk-route53).
//!
//! Each name's hosted zone is the one whose name is the longest suffix of it, among the
//! configured `zones` or, without that list, among every zone the credentials can see. A TXT
//! record set holds all values at its name, and Route 53 replaces a set as a whole, so adding or
//! removing one value is a read-modify-write of the set (see [`Route53::apply`] for how that is
//! kept safe when several orders change one name at once). `present` and `cleanup` return once
//! the change is `INSYNC` on Route 53's authoritative servers.

use super::group_by_name;
use crate::aws::{AwsError, AwsSettings, classify, sdk_config};
use async_trait::async_trait;
use aws_sdk_route53::Client;
use aws_sdk_route53::types::{
    Change, ChangeAction, ChangeBatch, ChangeStatus, ResourceRecord, ResourceRecordSet, RrType,
};
use certpool_domain::config::Route53Config;
use certpool_domain::plugins::{DnsProvider, TxtRecord};
use certpool_domain::{ErrorClass, Failure};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{Mutex, OnceCell};

/// Attempts of one read-modify-write when Route 53 reports that the set changed under us.
const MAX_ATTEMPTS: u32 = 8;

/// A hosted zone: Route 53 id (without `/hostedzone/`) and name (lowercase, no trailing dot).
#[derive(Debug, Clone, PartialEq, Eq)]
struct HostedZone {
    id: String,
    name: String,
}

/// The TXT set at one name as read: its values in Route 53's order, and its TTL.
#[derive(Debug, Clone, PartialEq, Eq)]
struct TxtSet {
    ttl: i64,
    values: Vec<String>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Add,
    Remove,
}

/// A Route 53 provider.
pub struct Route53 {
    name: String,
    /// Allowed zones, lowercase, no trailing dot; empty: any zone.
    zones: Vec<String>,
    ttl: i64,
    insync_timeout: Duration,
    insync_interval: Duration,
    settings: AwsSettings,
    client: OnceCell<Client>,
    /// Zone name → hosted zone, filled by lookups; names with no zone are not cached.
    zone_cache: Mutex<HashMap<String, HostedZone>>,
    /// One lock per owner name, so that orders in this worker change a set one at a time.
    locks: std::sync::Mutex<HashMap<String, Arc<Mutex<()>>>>,
}

impl std::fmt::Debug for Route53 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Route53")
            .field("name", &self.name)
            .field("zones", &self.zones)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// Lowercase, no trailing dot, Route 53's octal escapes (`\052` for `*`) decoded.
fn normalize(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut chars = name.trim_end_matches('.').chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' {
            let digits: String = chars.clone().take(3).collect();
            if digits.len() == 3
                && digits.chars().all(|d| d.is_ascii_digit())
                && let Ok(code) = u8::from_str_radix(&digits, 8)
            {
                out.push(char::from(code));
                for _ in 0..3 {
                    chars.next();
                }
                continue;
            }
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

/// A TXT value in Route 53's zone-file form: quoted, `"` and `\` escaped, split into strings of
/// at most 255 characters (values here are ASCII key-authorization digests).
fn encode_txt(value: &str) -> String {
    let chunks: Vec<String> = value
        .as_bytes()
        .chunks(255)
        .map(|c| {
            let s = String::from_utf8_lossy(c);
            format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
        })
        .collect();
    if chunks.is_empty() {
        "\"\"".into()
    } else {
        chunks.join(" ")
    }
}

/// The value of a TXT record in zone-file form: its quoted strings concatenated.
fn decode_txt(text: &str) -> String {
    let mut out = String::new();
    let mut chars = text.chars();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match c {
            '"' => quoted = !quoted,
            '\\' => {
                let rest: String = chars.clone().take(3).collect();
                if rest.len() == 3
                    && rest.chars().all(|d| d.is_ascii_digit())
                    && let Ok(code) = u8::from_str_radix(&rest, 8)
                {
                    out.push(char::from(code));
                    for _ in 0..3 {
                        chars.next();
                    }
                } else if let Some(n) = chars.next() {
                    out.push(n);
                }
            }
            c if quoted => out.push(c),
            // Unquoted text (a server that does not quote) is taken as is; spaces separate strings.
            c if !c.is_whitespace() => out.push(c),
            _ => {}
        }
    }
    out
}

fn strip_id(id: &str) -> String {
    id.rsplit('/').next().unwrap_or(id).to_owned()
}

impl Route53 {
    /// Builds the provider; `settings` carry credentials already read from their sources. No
    /// request is sent until the first operation.
    fn new(name: &str, cfg: &Route53Config, settings: AwsSettings) -> Result<Self, Failure> {
        let ttl = i64::from(cfg.ttl);
        Ok(Self {
            name: name.to_owned(),
            zones: cfg.zones.iter().map(|z| normalize(z)).collect(),
            ttl,
            insync_timeout: cfg.insync_timeout.get(),
            insync_interval: cfg.insync_interval.get(),
            settings,
            client: OnceCell::new(),
            zone_cache: Mutex::new(HashMap::new()),
            locks: std::sync::Mutex::new(HashMap::new()),
        })
    }

    async fn client(&self) -> &Client {
        self.client
            .get_or_init(|| async { Client::new(&sdk_config(&self.settings).await) })
            .await
    }

    /// The failure for an SDK error during `what`.
    fn failure(&self, e: AwsError, what: &str) -> Failure {
        let kind = if e.credentials {
            "dns.credentials"
        } else if e.denied {
            "dns.permission"
        } else {
            match e.class {
                ErrorClass::Transient => "dns.unavailable",
                ErrorClass::RetryAfter(_) => "dns.throttled",
                ErrorClass::Permanent => "dns.rejected",
            }
        };
        let hint = if e.credentials && e.denied {
            " (check the access key of this provider, the worker's AWS credential chain and the IAM policy)"
        } else if e.credentials {
            " (check the access key of this provider or the worker's AWS credential chain)"
        } else if e.denied {
            " (the IAM policy does not allow this action; see docs/dns-route53.md)"
        } else {
            ""
        };
        let context = format!("Route 53 {what} for DNS provider {:?}{hint}", self.name);
        e.into_failure(kind, &context)
    }

    /// Hosted zones named exactly `zone`; a public one is preferred, as the CA resolves
    /// through public DNS (a private zone of the same name is split-horizon).
    async fn lookup_zone(&self, zone: &str) -> Result<Option<HostedZone>, Failure> {
        if let Some(z) = self.zone_cache.lock().await.get(zone) {
            return Ok(Some(z.clone()));
        }
        let out = self
            .client()
            .await
            .list_hosted_zones_by_name()
            .dns_name(format!("{zone}."))
            .max_items(20)
            .send()
            .await
            .map_err(|e| self.failure(classify(&e), &format!("ListHostedZonesByName {zone}")))?;
        let mut matching: Vec<_> = out
            .hosted_zones()
            .iter()
            .filter(|z| normalize(z.name()) == zone)
            .collect();
        matching.sort_by_key(|z| z.config().is_some_and(|c| c.private_zone()));
        let Some(found) = matching.first() else {
            return Ok(None);
        };
        let hz = HostedZone {
            id: strip_id(found.id()),
            name: zone.to_owned(),
        };
        self.zone_cache.lock().await.insert(zone.to_owned(), hz.clone());
        Ok(Some(hz))
    }

    /// The hosted zone of `name`: the longest suffix that is an allowed, existing zone.
    async fn zone_for(&self, name: &str) -> Result<HostedZone, Failure> {
        let labels: Vec<&str> = name.split('.').collect();
        let candidates: Vec<String> = (0..labels.len().saturating_sub(1))
            .map(|i| labels[i..].join("."))
            .filter(|c| self.zones.is_empty() || self.zones.contains(c))
            .collect();
        if candidates.is_empty() {
            return Err(Failure::permanent(
                "dns.outside_zone",
                format!(
                    "{name} is outside the zones {:?} of DNS provider {:?}",
                    self.zones, self.name
                ),
            ));
        }
        for c in &candidates {
            if let Some(z) = self.lookup_zone(c).await? {
                return Ok(z);
            }
        }
        Err(Failure::permanent(
            "dns.no_zone",
            format!(
                "no Route 53 hosted zone visible to DNS provider {:?} holds {name} (looked for {})",
                self.name,
                candidates.join(", ")
            ),
        ))
    }

    /// The TXT set at `name`, if there is one.
    async fn read(&self, zone: &HostedZone, name: &str) -> Result<Option<TxtSet>, Failure> {
        let out = self
            .client()
            .await
            .list_resource_record_sets()
            .hosted_zone_id(&zone.id)
            .start_record_name(format!("{name}."))
            .start_record_type(RrType::Txt)
            .max_items(1)
            .send()
            .await
            .map_err(|e| self.failure(classify(&e), &format!("ListResourceRecordSets {name}")))?;
        Ok(out
            .resource_record_sets()
            .iter()
            .find(|s| normalize(s.name()) == name && *s.r#type() == RrType::Txt && s.set_identifier().is_none())
            .map(|s| TxtSet {
                ttl: s.ttl().unwrap_or(self.ttl),
                values: s.resource_records().iter().map(|r| decode_txt(r.value())).collect(),
            }))
    }

    fn lock_for(&self, name: &str) -> Arc<Mutex<()>> {
        let mut locks = self.locks.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        locks.entry(name.to_owned()).or_default().clone()
    }

    /// Adds or removes `values` at every name of one zone, in one change batch, and waits for
    /// `INSYNC`.
    ///
    /// Why a guarded read-modify-write: Route 53 has no "add one value" operation; an UPSERT
    /// replaces the whole set, so two orders that each read the set and UPSERT it with their
    /// value added would drop each other's value. Two layers prevent that:
    /// - inside this worker, one lock per name makes changes to a set take turns;
    /// - across workers, the batch is DELETE(the set exactly as read) + CREATE(the new set), or
    ///   CREATE alone when there was none. Route 53 applies a batch atomically and rejects a
    ///   DELETE whose values no longer match (and a CREATE of a set that now exists) with
    ///   `InvalidChangeBatch`; we then read again and retry, so a concurrent change is merged,
    ///   never overwritten.
    ///
    /// One exception: when Route 53 rejects a batch although a fresh read shows every set
    /// unchanged, the rejection cannot be a concurrent change. moto 5.2.5 does this (it refuses a
    /// CREATE identical to one in its change journal while the set still exists), so the batch
    /// is then sent as UPSERTs of the freshly read sets; the only exposure is the few
    /// milliseconds between that read and the write, which the per-name lock covers in-process.
    async fn apply(&self, zone: &HostedZone, wanted: &BTreeMap<&str, Vec<&str>>, op: Op) -> Result<(), Failure> {
        // Locks in name order, so two calls sharing names cannot wait on each other.
        let locks: Vec<_> = wanted.keys().map(|n| self.lock_for(n)).collect();
        let mut guards = Vec::with_capacity(locks.len());
        for l in &locks {
            guards.push(l.lock().await);
        }
        let mut upsert_fallback = false;
        let mut last_conflict = String::new();
        for attempt in 0..MAX_ATTEMPTS {
            let mut current = BTreeMap::new();
            for name in wanted.keys() {
                current.insert(*name, self.read(zone, name).await?);
            }
            let changes = self.changes(wanted, &current, op, upsert_fallback)?;
            if changes.is_empty() {
                return Ok(());
            }
            let batch = ChangeBatch::builder()
                .comment(format!("certpool DNS-01 ({})", self.name))
                .set_changes(Some(changes))
                .build()
                .map_err(|e| Failure::permanent("dns.rejected", format!("building a Route 53 change: {e}")))?;
            let sent = self
                .client()
                .await
                .change_resource_record_sets()
                .hosted_zone_id(&zone.id)
                .change_batch(batch)
                .send()
                .await;
            match sent {
                Ok(out) => {
                    let Some(info) = out.change_info() else {
                        return Ok(());
                    };
                    return self.wait_insync(&strip_id(info.id()), info.status()).await;
                }
                Err(e) => {
                    let err = classify(&e);
                    let code = err.code.clone().unwrap_or_default();
                    if code == "InvalidChangeBatch" || code == "PriorRequestNotComplete" {
                        last_conflict = err.message.clone();
                        if code == "InvalidChangeBatch" {
                            let mut unchanged = true;
                            for (name, before) in &current {
                                if self.read(zone, name).await? != *before {
                                    unchanged = false;
                                }
                            }
                            upsert_fallback = unchanged;
                        }
                        tracing::debug!(provider = %self.name, attempt, "Route 53 change conflicted: {last_conflict}");
                        let backoff = Duration::from_millis(100 * 2u64.pow(attempt.min(5)))
                            + Duration::from_millis(u64::from(rand::random::<u8>()));
                        tokio::time::sleep(backoff).await;
                        continue;
                    }
                    let names = wanted.keys().copied().collect::<Vec<_>>().join(", ");
                    return Err(self.failure(err, &format!("ChangeResourceRecordSets {names}")));
                }
            }
        }
        Err(Failure::transient(
            "dns.conflict",
            format!(
                "Route 53 kept rejecting the change for DNS provider {:?} after {MAX_ATTEMPTS} attempts: {last_conflict}",
                self.name
            ),
        ))
    }

    /// The changes that turn `current` into `current ± wanted`; names already right need none.
    fn changes(
        &self,
        wanted: &BTreeMap<&str, Vec<&str>>,
        current: &BTreeMap<&str, Option<TxtSet>>,
        op: Op,
        upsert: bool,
    ) -> Result<Vec<Change>, Failure> {
        let set = |name: &str, ttl: i64, values: &[String]| -> Result<ResourceRecordSet, Failure> {
            let mut b = ResourceRecordSet::builder()
                .name(format!("{name}."))
                .r#type(RrType::Txt)
                .ttl(ttl);
            for v in values {
                b = b.resource_records(
                    ResourceRecord::builder()
                        .value(encode_txt(v))
                        .build()
                        .map_err(|e| Failure::permanent("dns.rejected", e.to_string()))?,
                );
            }
            b.build().map_err(|e| Failure::permanent("dns.rejected", e.to_string()))
        };
        let change = |action: ChangeAction, rrset: ResourceRecordSet| -> Result<Change, Failure> {
            Change::builder()
                .action(action)
                .resource_record_set(rrset)
                .build()
                .map_err(|e| Failure::permanent("dns.rejected", e.to_string()))
        };
        let mut out = Vec::new();
        for (name, values) in wanted {
            let old = current.get(name).cloned().flatten();
            let old_values = old.as_ref().map(|s| s.values.clone()).unwrap_or_default();
            let new_values: Vec<String> = match op {
                Op::Add => {
                    let mut v = old_values.clone();
                    for value in values {
                        if !v.iter().any(|x| x == value) {
                            v.push((*value).to_owned());
                        }
                    }
                    v
                }
                Op::Remove => old_values
                    .iter()
                    .filter(|x| !values.contains(&x.as_str()))
                    .cloned()
                    .collect(),
            };
            if new_values == old_values {
                continue;
            }
            match (&old, new_values.is_empty()) {
                (None, _) if upsert => out.push(change(ChangeAction::Upsert, set(name, self.ttl, &new_values)?)?),
                (None, _) => out.push(change(ChangeAction::Create, set(name, self.ttl, &new_values)?)?),
                (Some(o), true) => out.push(change(ChangeAction::Delete, set(name, o.ttl, &o.values)?)?),
                (Some(_), false) if upsert => {
                    out.push(change(ChangeAction::Upsert, set(name, self.ttl, &new_values)?)?)
                }
                (Some(o), false) => {
                    out.push(change(ChangeAction::Delete, set(name, o.ttl, &o.values)?)?);
                    out.push(change(ChangeAction::Create, set(name, self.ttl, &new_values)?)?);
                }
            }
        }
        Ok(out)
    }

    /// Polls `GetChange` until the change is `INSYNC` (served by all of Route 53's servers).
    async fn wait_insync(&self, change_id: &str, status: &ChangeStatus) -> Result<(), Failure> {
        if *status == ChangeStatus::Insync {
            return Ok(());
        }
        let deadline = Instant::now() + self.insync_timeout;
        loop {
            tokio::time::sleep(self.insync_interval).await;
            let out = self
                .client()
                .await
                .get_change()
                .id(change_id)
                .send()
                .await
                .map_err(|e| self.failure(classify(&e), &format!("GetChange {change_id}")))?;
            if out.change_info().is_some_and(|i| *i.status() == ChangeStatus::Insync) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(Failure::transient(
                    "dns.route53_pending",
                    format!(
                        "Route 53 change {change_id} of DNS provider {:?} not INSYNC after {:?}",
                        self.name, self.insync_timeout
                    ),
                ));
            }
        }
    }

    async fn run(&self, records: &[TxtRecord], op: Op) -> Result<(), Failure> {
        let mut by_zone: BTreeMap<String, (HostedZone, BTreeMap<String, Vec<&str>>)> = BTreeMap::new();
        for (name, values) in group_by_name(records) {
            let name = normalize(name);
            let zone = self.zone_for(&name).await?;
            by_zone
                .entry(zone.id.clone())
                .or_insert_with(|| (zone, BTreeMap::new()))
                .1
                .entry(name)
                .or_default()
                .extend(values);
        }
        for (zone, names) in by_zone.values() {
            let wanted: BTreeMap<&str, Vec<&str>> = names.iter().map(|(n, v)| (n.as_str(), v.clone())).collect();
            self.apply(zone, &wanted, op).await?;
        }
        Ok(())
    }
}

#[async_trait]
impl DnsProvider for Route53 {
    async fn present(&self, records: &[TxtRecord]) -> Result<(), Failure> {
        self.run(records, Op::Add).await
    }

    async fn cleanup(&self, records: &[TxtRecord]) -> Result<(), Failure> {
        self.run(records, Op::Remove).await
    }

    async fn zone_of(&self, name: &str) -> Result<Option<String>, Failure> {
        Ok(Some(self.zone_for(&normalize(name)).await?.name))
    }
}

/// Builds the provider from its config section.
pub fn from_config(name: &str, cfg: &Route53Config, base_dir: &Path) -> Result<Route53, Failure> {
    let settings = AwsSettings {
        region: Some(cfg.region.clone()),
        endpoint: cfg.endpoint.clone(),
        credentials: crate::aws::credentials(cfg.credentials.as_ref(), base_dir, &format!("dns.{name}.credentials"))?,
        timeout: cfg.timeout.get(),
    };
    Route53::new(name, cfg, settings)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn txt_values_round_trip_through_zone_file_form() {
        for v in ["abc", "with \"quotes\" and \\", &"x".repeat(600)] {
            assert_eq!(decode_txt(&encode_txt(v)), v, "{v}");
        }
        assert_eq!(encode_txt(&"y".repeat(300)).matches('"').count(), 4);
        assert_eq!(decode_txt("\"a\\052b\""), "a*b");
    }

    #[test]
    fn names_are_normalized() {
        assert_eq!(normalize("\\052.Example.NET."), "*.example.net");
        assert_eq!(normalize("_acme-challenge.a.b"), "_acme-challenge.a.b");
    }
}
