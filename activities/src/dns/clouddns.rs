//! `clouddns`: Google Cloud DNS through the v1 API (`google-cloud-dns-v1`).
//!
//! Cloud DNS has no "append a value" operation: a change replaces whole record sets, and a
//! deletion must match the current set exactly (name, type, TTL and every value) or the whole
//! change is refused with `412 conditionNotMet`; an addition of a set that already exists is
//! refused with `409 alreadyExists`. So both `present` and `cleanup` read the TXT sets, compute
//! the new sets (other values kept verbatim) and submit one change per zone that deletes the
//! sets as read and adds the new ones. A concurrent writer makes that change fail as a whole,
//! and we read again and retry; the API's own check is the compare-and-swap. Then we poll the
//! change until Cloud DNS reports it `done`.

use super::group_by_name;
use async_trait::async_trait;
use certpool_domain::Failure;
use certpool_domain::config::ClouddnsConfig;
use certpool_domain::plugins::{DnsProvider, TxtRecord};
use google_cloud_auth::credentials::service_account::{self, AccessSpecifier};
use google_cloud_auth::credentials::{self, Credentials};
use google_cloud_dns_v1::client::{Changes, ManagedZones, ResourceRecordSets};
use google_cloud_dns_v1::model::{Change, ResourceRecordSet, change, managed_zone};
use google_cloud_gax::error::{CredentialsError, Error as GaxError};
use google_cloud_gax::retry_policy::{Aip194Strict, RetryPolicyExt};
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::sync::OnceCell;
use tokio::time::Instant;

/// Scope of the tokens minted from a service-account key: Cloud DNS read-write only, so a
/// leaked token cannot reach other APIs even if the account has more roles.
const SCOPE: &str = "https://www.googleapis.com/auth/ndev.clouddns.readwrite";

/// Attempts of one read-modify-write before the activity gives up and lets Temporal retry it.
const MAX_CONFLICT_ATTEMPTS: u32 = 12;

/// A Google Cloud DNS provider for one project.
pub struct CloudDns {
    name: String,
    project: String,
    managed_zone: Option<String>,
    endpoint: Option<String>,
    credentials: Credentials,
    ttl: i32,
    timeout: Duration,
    change_timeout: Duration,
    clients: OnceCell<Clients>,
    configured_zone: OnceCell<Zone>,
}

impl std::fmt::Debug for CloudDns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CloudDns")
            .field("name", &self.name)
            .field("project", &self.project)
            .field("managed_zone", &self.managed_zone)
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

#[derive(Debug)]
struct Clients {
    zones: ManagedZones,
    rrsets: ResourceRecordSets,
    changes: Changes,
}

/// A managed zone: its resource name and its DNS name (lowercase, trailing dot).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Zone {
    name: String,
    dns_name: String,
}

/// A fully qualified owner name and the challenge values of one call at it.
type NameValues<'a> = (String, Vec<&'a str>);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Add,
    Remove,
}

impl CloudDns {
    /// Builds the provider. `service_account_json` is the key file's content; without it the
    /// provider uses Application Default Credentials.
    pub fn new(name: &str, cfg: &ClouddnsConfig, service_account_json: Option<&str>) -> Result<Self, Failure> {
        let bad = |m: String| Failure::permanent("config.dns", format!("dns.{name}: {m}"));
        // The Google crates are built without their aws-lc-rs default; reqwest and the JWT signer
        // then use the process-wide rustls provider. Our own clients name ring explicitly, so
        // installing it as the default changes nothing else. An error means one is installed.
        #[allow(deprecated)]
        let _ = rustls::crypto::ring::default_provider().install_default();
        let credentials = match service_account_json {
            Some(json) => {
                let key: serde_json::Value = serde_json::from_str(json).map_err(|e| {
                    // serde_json's message can quote input; line and column are enough.
                    bad(format!(
                        "credentials is not a JSON service-account key (syntax error at line {} column {})",
                        e.line(),
                        e.column()
                    ))
                })?;
                match key.get("type").and_then(|t| t.as_str()) {
                    Some("service_account") => {}
                    other => {
                        return Err(bad(format!(
                            "credentials must be a service-account key (\"type\": \"service_account\"), found type {other:?}; \
                             leave credentials unset to use Application Default Credentials"
                        )));
                    }
                }
                service_account::Builder::new(key)
                    .with_access_specifier(AccessSpecifier::from_scopes([SCOPE]))
                    .build()
                    .map_err(|e| bad(format!("credentials: {e}")))?
            }
            None => credentials::Builder::default()
                .build()
                .map_err(|e| bad(format!("Application Default Credentials: {e}")))?,
        };
        let ttl = i32::try_from(cfg.ttl).map_err(|_| bad(format!("ttl {} is too large", cfg.ttl)))?;
        Ok(Self {
            name: name.to_owned(),
            project: cfg.project.clone(),
            managed_zone: cfg.managed_zone.clone(),
            endpoint: cfg.endpoint.as_ref().map(|e| e.trim_end_matches('/').to_owned()),
            credentials,
            ttl,
            timeout: cfg.timeout.get(),
            change_timeout: cfg.change_timeout.get(),
            clients: OnceCell::new(),
            configured_zone: OnceCell::new(),
        })
    }

    /// The API clients, built on first use because building is async (it may ask the metadata
    /// server for the universe domain) while providers are built when the config is loaded.
    async fn clients(&self) -> Result<&Clients, Failure> {
        macro_rules! build {
            ($client:ty) => {{
                let mut b = <$client>::builder()
                    .with_credentials(self.credentials.clone())
                    // Reads are retried a little inside the client; everything else is the
                    // activity's retry policy's business.
                    .with_retry_policy(Aip194Strict.with_attempt_limit(3).with_time_limit(self.timeout))
                    .with_attempt_timeout(self.timeout);
                if let Some(e) = &self.endpoint {
                    b = b.with_endpoint(e.clone());
                }
                b.build().await.map_err(|e| {
                    Failure::transient(
                        "dns.clouddns_client",
                        format!(
                            "DNS provider {:?}: cannot build the Cloud DNS client: {e}",
                            self.name
                        ),
                    )
                })?
            }};
        }
        self.clients
            .get_or_try_init(|| async {
                Ok(Clients {
                    zones: build!(ManagedZones),
                    rrsets: build!(ResourceRecordSets),
                    changes: build!(Changes),
                })
            })
            .await
    }

    /// Sorts an API error into what the caller should do. Messages carry the API's own message
    /// (which never contains the token) and never the request headers.
    fn classify(&self, e: &GaxError, what: &str) -> Failure {
        let ctx = format!(
            "Cloud DNS {what} for DNS provider {:?} (project {})",
            self.name, self.project
        );
        if e.is_authentication() {
            let transient = std::error::Error::source(e)
                .and_then(|s| s.downcast_ref::<CredentialsError>())
                .is_some_and(CredentialsError::is_transient);
            return if transient {
                Failure::transient(
                    "dns.clouddns_credentials",
                    format!("{ctx}: cannot get a token yet: {e}"),
                )
            } else {
                Failure::permanent(
                    "dns.clouddns_credentials",
                    format!("{ctx}: the credentials cannot produce a token: {e}"),
                )
            };
        }
        let message = e.status().map_or_else(|| e.to_string(), |s| s.message.clone());
        match e.http_status_code() {
            Some(401) => Failure::permanent(
                "dns.clouddns_unauthenticated",
                format!(
                    "{ctx}: credentials rejected (401 {message}); check the service-account key (revoked or deleted?) \
                     or the Application Default Credentials"
                ),
            ),
            Some(403) => Failure::permanent(
                "dns.clouddns_denied",
                format!(
                    "{ctx}: permission denied (403 {message}); the principal needs dns.managedZones.get/list, \
                     dns.resourceRecordSets.list/create/update/delete and dns.changes.create/get on the zone \
                     (see docs/dns-clouddns.md)"
                ),
            ),
            Some(404) => Failure::permanent("dns.clouddns_not_found", format!("{ctx}: not found (404 {message})")),
            Some(429) => Failure::retry_after(
                "dns.clouddns_rate_limited",
                format!("{ctx}: rate limited (429 {message})"),
                Duration::from_secs(30),
            ),
            Some(code) if code >= 500 => {
                Failure::transient("dns.clouddns_unavailable", format!("{ctx}: {code} {message}"))
            }
            Some(code) => Failure::permanent("dns.clouddns_rejected", format!("{ctx}: {code} {message}")),
            None => Failure::transient("dns.clouddns_unreachable", format!("{ctx}: {message}")),
        }
    }

    /// The zone that holds `fqdn`: the configured one (checked to contain the name), else the
    /// public zone whose DNS name is the longest suffix of the name.
    async fn zone_for(&self, c: &Clients, fqdn: &str) -> Result<Zone, Failure> {
        if let Some(zone_name) = &self.managed_zone {
            let zone = self
                .configured_zone
                .get_or_try_init(|| async {
                    let z = c
                        .zones
                        .get()
                        .set_project(&self.project)
                        .set_managed_zone(zone_name)
                        .send()
                        .await
                        .map_err(|e| self.classify(&e, &format!("managedZones.get {zone_name}")))?;
                    Ok::<_, Failure>(Zone {
                        name: zone_name.clone(),
                        dns_name: z.dns_name.unwrap_or_default().to_ascii_lowercase(),
                    })
                })
                .await?;
            if !in_zone(fqdn, &zone.dns_name) {
                return Err(Failure::permanent(
                    "dns.outside_zone",
                    format!(
                        "{} is outside managed zone {} ({}) of DNS provider {:?}",
                        fqdn.trim_end_matches('.'),
                        zone.name,
                        zone.dns_name,
                        self.name
                    ),
                ));
            }
            return Ok(zone.clone());
        }
        // Longest suffix first, so a delegated `_acme-challenge` or sub-zone wins over its parent.
        let mut candidate = fqdn;
        loop {
            let listed = c
                .zones
                .list()
                .set_project(&self.project)
                .set_dns_name(candidate)
                .send()
                .await
                .map_err(|e| self.classify(&e, &format!("managedZones.list dnsName={candidate}")))?;
            // A private zone of the same name is invisible to the CA's resolvers.
            let public = listed.managed_zones.into_iter().find(|z| {
                !matches!(z.visibility, Some(managed_zone::Visibility::Private))
                    && z.dns_name.as_deref().is_some_and(|d| d.eq_ignore_ascii_case(candidate))
            });
            if let Some(z) = public {
                return Ok(Zone {
                    name: z.name.unwrap_or_default(),
                    dns_name: candidate.to_owned(),
                });
            }
            match candidate.split_once('.') {
                Some((_, rest)) if !rest.is_empty() => candidate = rest,
                _ => {
                    return Err(Failure::permanent(
                        "dns.clouddns_no_zone",
                        format!(
                            "no public managed zone in project {} holds {} (DNS provider {:?}); create one or set managed_zone",
                            self.project,
                            fqdn.trim_end_matches('.'),
                            self.name
                        ),
                    ));
                }
            }
        }
    }

    /// The TXT set at `fqdn`, as the API returns it (so that it can be sent back as a deletion).
    async fn read_txt(&self, c: &Clients, zone: &Zone, fqdn: &str) -> Result<Option<ResourceRecordSet>, Failure> {
        let listed = c
            .rrsets
            .list()
            .set_project(&self.project)
            .set_managed_zone(&zone.name)
            .set_name(fqdn)
            .set_type("TXT")
            .send()
            .await
            .map_err(|e| self.classify(&e, &format!("resourceRecordSets.list {fqdn} TXT")))?;
        Ok(listed.rrsets.into_iter().find(|r| {
            r.r#type.as_deref() == Some("TXT") && r.name.as_deref().is_some_and(|n| n.eq_ignore_ascii_case(fqdn))
        }))
    }

    /// The change that takes every name of one zone to its wanted TXT set, or `None` when every
    /// set already is as wanted (which makes both operations idempotent).
    async fn plan(
        &self,
        c: &Clients,
        zone: &Zone,
        names: &[NameValues<'_>],
        op: Op,
    ) -> Result<Option<Change>, Failure> {
        let mut deletions = Vec::new();
        let mut additions = Vec::new();
        for (fqdn, values) in names {
            let current = self.read_txt(c, zone, fqdn).await?;
            let have = current.as_ref().map(|r| r.rrdatas.clone()).unwrap_or_default();
            // Other values are kept exactly as Cloud DNS returned them; only ours are touched.
            let mut want: Vec<String> = match op {
                Op::Add => have.clone(),
                Op::Remove => have
                    .iter()
                    .filter(|d| !values.contains(&unquote(d).as_str()))
                    .cloned()
                    .collect(),
            };
            if op == Op::Add {
                for v in values {
                    if !want.iter().any(|d| unquote(d) == *v) {
                        want.push(format!("\"{v}\""));
                    }
                }
            }
            if want == have {
                continue;
            }
            if let Some(cur) = current {
                deletions.push(cur);
            }
            if !want.is_empty() {
                additions.push(
                    ResourceRecordSet::new()
                        .set_name(fqdn.clone())
                        .set_type("TXT")
                        .set_ttl(self.ttl)
                        .set_rrdatas(want),
                );
            }
        }
        if deletions.is_empty() && additions.is_empty() {
            return Ok(None);
        }
        Ok(Some(Change::new().set_deletions(deletions).set_additions(additions)))
    }

    async fn apply(&self, records: &[TxtRecord], op: Op) -> Result<(), Failure> {
        if records.is_empty() {
            return Ok(());
        }
        let c = self.clients().await?;
        let mut by_zone: BTreeMap<String, (Zone, Vec<NameValues<'_>>)> = BTreeMap::new();
        for (name, values) in group_by_name(records) {
            let fqdn = fqdn(name)?;
            let zone = self.zone_for(c, &fqdn).await?;
            by_zone
                .entry(zone.name.clone())
                .or_insert_with(|| (zone, Vec::new()))
                .1
                .push((fqdn, values));
        }
        for (zone, names) in by_zone.values() {
            self.apply_zone(c, zone, names, op).await?;
        }
        Ok(())
    }

    /// Read, modify, write, and on a conflict read again. Two orders presenting at one name at
    /// once both read the same set; the first change wins and the second is refused (409 when
    /// both saw no set, 412 when the set it deletes has changed, 404 when it is gone), so it
    /// re-reads, now sees the winner's value, and adds its own next to it. Backoff with jitter
    /// keeps several losers from colliding again in lockstep.
    async fn apply_zone(&self, c: &Clients, zone: &Zone, names: &[NameValues<'_>], op: Op) -> Result<(), Failure> {
        let mut backoff = Duration::from_millis(50);
        for attempt in 1..=MAX_CONFLICT_ATTEMPTS {
            let Some(change) = self.plan(c, zone, names, op).await? else {
                return Ok(());
            };
            match c
                .changes
                .create()
                .set_project(&self.project)
                .set_managed_zone(&zone.name)
                .set_body(change)
                .send()
                .await
            {
                Ok(created) => return self.wait_done(c, zone, created).await,
                Err(e) if is_conflict(&e) => {
                    tracing::debug!(
                        provider = %self.name, zone = %zone.name, attempt,
                        "Cloud DNS change conflicted with a concurrent one; reading again"
                    );
                    let jitter = rand::random_range(0..=backoff.as_millis() as u64);
                    tokio::time::sleep(backoff + Duration::from_millis(jitter)).await;
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                }
                Err(e) => return Err(self.classify(&e, &format!("changes.create in zone {}", zone.name))),
            }
        }
        Err(Failure::transient(
            "dns.clouddns_conflict",
            format!(
                "DNS provider {:?}: zone {} kept changing under {MAX_CONFLICT_ATTEMPTS} attempts to update its TXT records",
                self.name, zone.name
            ),
        ))
    }

    /// Polls the change until Cloud DNS has applied it on its name servers.
    async fn wait_done(&self, c: &Clients, zone: &Zone, mut current: Change) -> Result<(), Failure> {
        let deadline = Instant::now() + self.change_timeout;
        let mut interval = Duration::from_millis(100);
        loop {
            if matches!(current.status, Some(change::Status::Done)) {
                return Ok(());
            }
            let Some(id) = current.id.clone() else {
                return Err(Failure::transient(
                    "dns.clouddns_change",
                    format!(
                        "Cloud DNS returned a pending change without an id in zone {}",
                        zone.name
                    ),
                ));
            };
            if Instant::now() + interval > deadline {
                return Err(Failure::transient(
                    "dns.clouddns_change_pending",
                    format!(
                        "Cloud DNS change {id} in zone {} still pending after {:?} (DNS provider {:?})",
                        zone.name, self.change_timeout, self.name
                    ),
                ));
            }
            tokio::time::sleep(interval).await;
            interval = (interval * 2).min(Duration::from_secs(2));
            current = c
                .changes
                .get()
                .set_project(&self.project)
                .set_managed_zone(&zone.name)
                .set_change_id(&id)
                .send()
                .await
                .map_err(|e| self.classify(&e, &format!("changes.get {id} in zone {}", zone.name)))?;
        }
    }
}

#[async_trait]
impl DnsProvider for CloudDns {
    async fn present(&self, records: &[TxtRecord]) -> Result<(), Failure> {
        self.apply(records, Op::Add).await
    }

    async fn cleanup(&self, records: &[TxtRecord]) -> Result<(), Failure> {
        self.apply(records, Op::Remove).await
    }
}

/// Whether a refused change lost a race with another writer (and reading again will help).
fn is_conflict(e: &GaxError) -> bool {
    match e.http_status_code() {
        Some(409 | 412) => true,
        // A deletion of a set that no longer exists is "not found"; the zone itself missing is
        // also 404 but names no deletion.
        Some(404) => e
            .status()
            .is_some_and(|s| s.message.contains("entity.change.deletions")),
        _ => false,
    }
}

/// Lowercase, with the trailing dot Cloud DNS uses in names.
fn fqdn(name: &str) -> Result<String, Failure> {
    let n = name.trim_end_matches('.').to_ascii_lowercase();
    if n.is_empty() || n.split('.').any(str::is_empty) {
        return Err(Failure::permanent(
            "dns.bad_name",
            format!("{name:?} is not a valid DNS name"),
        ));
    }
    Ok(format!("{n}."))
}

fn in_zone(fqdn: &str, zone_dns_name: &str) -> bool {
    fqdn == zone_dns_name || fqdn.strip_suffix(zone_dns_name).is_some_and(|head| head.ends_with('.'))
}

/// One TXT rdata in presentation format (`"abc"`, possibly `"ab" "c"`) as the value it carries.
fn unquote(rdata: &str) -> String {
    let t = rdata.trim();
    if !t.starts_with('"') {
        return t.to_owned();
    }
    // Long values are split into several character-strings; they concatenate.
    t.split('"')
        .enumerate()
        .filter(|(i, _)| i % 2 == 1)
        .map(|(_, s)| s)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_values_are_normalised() {
        assert_eq!(
            fqdn("_acme-challenge.Example.NET").ok(),
            Some("_acme-challenge.example.net.".into())
        );
        assert_eq!(fqdn("a.example.net.").ok(), Some("a.example.net.".into()));
        assert!(fqdn("a..example.net").is_err());
        assert!(in_zone("_acme-challenge.example.net.", "example.net."));
        assert!(in_zone("example.net.", "example.net."));
        assert!(!in_zone("_acme-challenge.badexample.net.", "example.net."));
        assert_eq!(unquote("\"abc\""), "abc");
        assert_eq!(unquote("\"ab\" \"c\""), "abc");
        assert_eq!(unquote("abc"), "abc");
    }
}
