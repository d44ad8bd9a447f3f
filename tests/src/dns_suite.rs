//! The DNS provider conformance suite: one battery of checks that every `DnsProvider` must pass
//! against its real backend (BIND for `rfc2136`, moto for `route53`, the Cloud DNS fixture for
//! `clouddns`).
//!
//! A provider plugs in through a [`DnsSuiteTarget`]: the provider under test, a zone it may
//! change, a [`DnsBackend`] that reads and writes the backend *without* going through the
//! provider (so the suite sees what the provider really did), and a factory for the same provider
//! with credentials the backend rejects. Then:
//!
//! ```ignore
//! certpool_tests::dns_suite::run_all(&target).await?;
//! ```
//!
//! Every check works on fresh `_acme-challenge.<random>.<zone>` names, so checks and targets can
//! share a zone. What is checked:
//! - [`present`]: values presented at one name (as a wildcard and its apex share one) and at a
//!   second name are all served;
//! - [`foreign_values_survive`]: a TXT value another party put at the name stays through present
//!   and clean-up;
//! - [`cleanup_removes_only_its_own`]: of two orders at one name, cleaning up one leaves the
//!   other's value;
//! - [`repeat_is_safe`]: present twice leaves the value once; clean-up twice, and clean-up of a
//!   value never presented, succeed;
//! - [`concurrent_orders`]: several orders presenting (then cleaning up) at the same name at the
//!   same time all succeed and all values are there (then all gone);
//! - [`bad_credentials`]: a provider with rejected credentials fails permanently, with a message
//!   that names the provider, and writes nothing.

use anyhow::{Context, Result, bail, ensure};
use async_trait::async_trait;
use certpool_domain::ErrorClass;
use certpool_domain::plugins::{DnsProvider, TxtRecord};
use std::sync::Arc;
use std::time::Instant;

/// Direct access to a provider's backend, bypassing the provider.
#[async_trait]
pub trait DnsBackend: Send + Sync {
    /// The TXT values at `name` (no trailing dot) as the backend holds them, in any order.
    async fn read_txt(&self, name: &str) -> Result<Vec<String>>;
    /// Adds `value` to the TXT set at `name` the way another tool or person would.
    async fn add_foreign(&self, name: &str, value: &str) -> Result<()>;
}

/// Builds the provider under test with credentials its backend rejects.
pub type BadCredentialsFactory = Box<dyn Fn() -> Result<Arc<dyn DnsProvider>> + Send + Sync>;

/// One provider and its backend, as the suite sees them.
pub struct DnsSuiteTarget {
    /// Shown in failures (`rfc2136 (BIND)`).
    pub label: String,
    /// The provider under test.
    pub provider: Arc<dyn DnsProvider>,
    /// Zone apex the provider may change, without trailing dot (`certpool.test`).
    pub zone: String,
    /// Independent access to the backend.
    pub backend: Arc<dyn DnsBackend>,
    /// The provider with bad credentials.
    pub bad_credentials: BadCredentialsFactory,
    /// The config name of the provider (errors must name it), e.g. `"bind"`.
    pub provider_name: String,
}

impl std::fmt::Debug for DnsSuiteTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DnsSuiteTarget")
            .field("label", &self.label)
            .field("zone", &self.zone)
            .finish_non_exhaustive()
    }
}

/// Runs every check in order; fails with the name of the first check that did not hold. Prints
/// each check's duration.
pub async fn run_all(t: &DnsSuiteTarget) -> Result<()> {
    macro_rules! check {
        ($f:ident) => {{
            let started = Instant::now();
            $f(t)
                .await
                .with_context(|| format!("{}: check {}", t.label, stringify!($f)))?;
            eprintln!(
                "dns suite {}: {} ok in {:?}",
                t.label,
                stringify!($f),
                started.elapsed()
            );
        }};
    }
    check!(present);
    check!(foreign_values_survive);
    check!(cleanup_removes_only_its_own);
    check!(repeat_is_safe);
    check!(concurrent_orders);
    check!(bad_credentials);
    Ok(())
}

fn name(t: &DnsSuiteTarget) -> String {
    format!("_acme-challenge.{}.{}", crate::unique_label("s"), t.zone)
}

fn rec(name: &str, value: &str) -> TxtRecord {
    TxtRecord {
        name: name.to_owned(),
        value: value.to_owned(),
    }
}

fn value() -> String {
    // Shaped like a key authorization digest: 43 base64url characters.
    let l = crate::unique_label("");
    format!("{l}{}", "A".repeat(43 - l.len()))
}

async fn sorted(t: &DnsSuiteTarget, name: &str) -> Result<Vec<String>> {
    let mut v = t.backend.read_txt(name).await?;
    v.sort();
    Ok(v)
}

fn sort(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// Values at one name (wildcard and apex) and at a second name are all served after `present`,
/// and gone after `cleanup`.
pub async fn present(t: &DnsSuiteTarget) -> Result<()> {
    let (n1, n2) = (name(t), name(t));
    let (a, b, c) = (value(), value(), value());
    let records = [rec(&n1, &a), rec(&n1, &b), rec(&n2, &c)];
    t.provider.present(&records).await?;
    ensure!(sorted(t, &n1).await? == sort(vec![a, b]), "{n1}: both values expected");
    ensure!(sorted(t, &n2).await? == vec![c], "{n2}: its value expected");
    t.provider.cleanup(&records).await?;
    ensure!(sorted(t, &n1).await?.is_empty(), "{n1} not cleaned up");
    ensure!(sorted(t, &n2).await?.is_empty(), "{n2} not cleaned up");
    Ok(())
}

/// A value someone else put at the name survives present and clean-up.
pub async fn foreign_values_survive(t: &DnsSuiteTarget) -> Result<()> {
    let n = name(t);
    let (foreign, ours) = ("foreign-value-kept".to_owned(), value());
    t.backend.add_foreign(&n, &foreign).await?;
    ensure!(
        sorted(t, &n).await? == vec![foreign.clone()],
        "backend did not take the foreign value"
    );
    t.provider.present(&[rec(&n, &ours)]).await?;
    ensure!(
        sorted(t, &n).await? == sort(vec![foreign.clone(), ours.clone()]),
        "present dropped the foreign value or missed ours"
    );
    t.provider.cleanup(&[rec(&n, &ours)]).await?;
    ensure!(
        sorted(t, &n).await? == vec![foreign],
        "clean-up removed more or less than our value"
    );
    Ok(())
}

/// Two orders at one name: cleaning up the first leaves the second's value.
pub async fn cleanup_removes_only_its_own(t: &DnsSuiteTarget) -> Result<()> {
    let n = name(t);
    let (a, b) = (value(), value());
    t.provider.present(&[rec(&n, &a)]).await?;
    t.provider.present(&[rec(&n, &b)]).await?;
    ensure!(
        sorted(t, &n).await? == sort(vec![a.clone(), b.clone()]),
        "both values expected"
    );
    t.provider.cleanup(&[rec(&n, &b)]).await?;
    ensure!(
        sorted(t, &n).await? == vec![a.clone()],
        "only the first order's value expected"
    );
    t.provider.cleanup(&[rec(&n, &a)]).await?;
    ensure!(sorted(t, &n).await?.is_empty(), "nothing expected after both clean-ups");
    Ok(())
}

/// Present twice leaves one value; clean-up twice and clean-up of an unknown value succeed.
pub async fn repeat_is_safe(t: &DnsSuiteTarget) -> Result<()> {
    let n = name(t);
    let v = value();
    t.provider.present(&[rec(&n, &v)]).await?;
    t.provider.present(&[rec(&n, &v)]).await?;
    ensure!(sorted(t, &n).await? == vec![v.clone()], "the value once expected");
    t.provider.cleanup(&[rec(&n, &v)]).await?;
    t.provider.cleanup(&[rec(&n, &v)]).await?;
    ensure!(sorted(t, &n).await?.is_empty(), "nothing expected after clean-up");
    t.provider.cleanup(&[rec(&name(t), &value())]).await?;
    // Presenting again after a clean-up (a retried issuance) works too.
    t.provider.present(&[rec(&n, &v)]).await?;
    ensure!(sorted(t, &n).await? == vec![v.clone()], "the value expected again");
    t.provider.cleanup(&[rec(&n, &v)]).await?;
    ensure!(
        sorted(t, &n).await?.is_empty(),
        "nothing expected after the second clean-up"
    );
    Ok(())
}

/// Orders presenting at one name at the same time (a wildcard and its apex in separate orders,
/// or two pools) all keep their values; concurrent clean-ups all succeed.
pub async fn concurrent_orders(t: &DnsSuiteTarget) -> Result<()> {
    const ORDERS: usize = 4;
    let n = name(t);
    let values: Vec<String> = (0..ORDERS).map(|_| value()).collect();
    let presents = values.iter().map(|v| {
        let p = t.provider.clone();
        let r = rec(&n, v);
        tokio::spawn(async move { p.present(&[r]).await })
    });
    for (i, r) in futures_join(presents).await.into_iter().enumerate() {
        r.with_context(|| format!("present of order {i}"))?;
    }
    ensure!(
        sorted(t, &n).await? == sort(values.clone()),
        "every concurrent order's value expected"
    );
    let cleanups = values.iter().map(|v| {
        let p = t.provider.clone();
        let r = rec(&n, v);
        tokio::spawn(async move { p.cleanup(&[r]).await })
    });
    for (i, r) in futures_join(cleanups).await.into_iter().enumerate() {
        r.with_context(|| format!("clean-up of order {i}"))?;
    }
    ensure!(
        sorted(t, &n).await?.is_empty(),
        "nothing expected after concurrent clean-ups"
    );
    Ok(())
}

async fn futures_join(
    handles: impl Iterator<Item = tokio::task::JoinHandle<Result<(), certpool_domain::Failure>>>,
) -> Vec<Result<()>> {
    let mut out = Vec::new();
    for h in handles.collect::<Vec<_>>() {
        out.push(match h.await {
            Ok(r) => r.map_err(anyhow::Error::from),
            Err(e) => Err(anyhow::anyhow!("task failed: {e}")),
        });
    }
    out
}

/// A provider whose credentials the backend rejects fails permanently, naming the provider,
/// and changes nothing.
pub async fn bad_credentials(t: &DnsSuiteTarget) -> Result<()> {
    let bad = (t.bad_credentials)()?;
    let n = name(t);
    let err = match bad.present(&[rec(&n, &value())]).await {
        Ok(()) => bail!("present with bad credentials succeeded"),
        Err(e) => e,
    };
    ensure!(
        err.class == ErrorClass::Permanent,
        "expected a permanent failure, got {err:?}"
    );
    ensure!(
        err.message.contains(&t.provider_name),
        "the failure should name provider {:?}: {err}",
        t.provider_name
    );
    ensure!(sorted(t, &n).await?.is_empty(), "a rejected present wrote something");
    let err = bad
        .cleanup(&[rec(&n, &value())])
        .await
        .err()
        .context("clean-up with bad credentials succeeded")?;
    ensure!(
        err.class == ErrorClass::Permanent,
        "clean-up: expected a permanent failure, got {err:?}"
    );
    Ok(())
}

/// BIND as a [`DnsBackend`]: reads with `dig`, writes foreign values with `nsupdate` and the
/// zone's TSIG key, both independent of certpool's `rfc2136` code.
#[derive(Debug, Clone)]
pub struct BindBackend {
    /// `ip:port`
    pub server: String,
    /// TSIG key name (`certpool-key.`).
    pub key_name: String,
    /// TSIG secret, base64.
    pub secret: String,
}

#[async_trait]
impl DnsBackend for BindBackend {
    async fn read_txt(&self, name: &str) -> Result<Vec<String>> {
        let (server, name) = (self.server.clone(), name.to_owned());
        tokio::task::spawn_blocking(move || crate::txt_values_sync(&server, &name)).await?
    }

    async fn add_foreign(&self, name: &str, value: &str) -> Result<()> {
        use std::io::Write;
        let (host, port) = self.server.rsplit_once(':').context("server is ip:port")?;
        let script = format!("server {host} {port}\nupdate add {name}. 60 IN TXT \"{value}\"\nsend\n");
        let key = format!("hmac-sha256:{}:{}", self.key_name.trim_end_matches('.'), self.secret);
        let output = tokio::task::spawn_blocking(move || -> Result<std::process::Output> {
            let mut child = std::process::Command::new("nsupdate")
                .args(["-v", "-y", &key])
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .context("spawn nsupdate")?;
            child.stdin.take().context("stdin")?.write_all(script.as_bytes())?;
            Ok(child.wait_with_output()?)
        })
        .await??;
        ensure!(
            output.status.success(),
            "nsupdate failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        Ok(())
    }
}
