//! The certpool configuration file: one TOML document.
//!
//! Parsing is strict: unknown keys and bad values are rejected with the key's dotted path and the
//! line it is on, and cross-references (a pool naming a scheme, CA or DNS provider that does not
//! exist) are checked before anything runs. String values may use `${VAR}` or `${VAR:-default}`
//! so that one file serves several environments (ports of the dev stack, for example).

use crate::duration::Duration;
use crate::pool::{PoolSpec, PoolTemplateValues};
use crate::scheme::{Scheme, SchemeError};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The whole configuration file.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where the Temporal frontend is and which queue certpool's workers poll.
    pub temporal: TemporalConfig,
    /// Named ACME certificate authorities.
    pub ca: BTreeMap<String, CaConfig>,
    /// Named DNS providers that answer DNS-01 challenges.
    pub dns: BTreeMap<String, DnsProviderConfig>,
    /// How to check that challenge records are visible before answering the CA.
    #[serde(default)]
    pub propagation: PropagationConfig,
    /// Where private keys, chains and ACME account keys are kept.
    pub secrets: SecretStoreConfig,
    /// Where the certificate inventory is kept.
    pub inventory: InventoryConfig,
    /// Defaults for issuance.
    #[serde(default)]
    pub issuance: IssuanceConfig,
    /// Certificate schemes: named SAN templates.
    pub schemes: BTreeMap<String, SchemeConfig>,
    /// Pools: a scheme bound to a cloud and region, filled ahead of demand.
    #[serde(default)]
    pub pools: BTreeMap<String, PoolConfig>,
    /// When assigned certificates are renewed.
    #[serde(default)]
    pub renewal: RenewalConfig,
    /// The scheduled expiry scan.
    #[serde(default)]
    pub scan: ScanConfig,
    /// Where clusters get their certificates delivered, by name.
    #[serde(default)]
    pub targets: BTreeMap<String, TargetConfig>,
    /// Event sinks.
    #[serde(default)]
    pub events: EventsConfig,
    /// Worker tuning.
    #[serde(default)]
    pub worker: WorkerConfig,
}

/// `[worker]`: how a worker polls Temporal.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WorkerConfig {
    /// Concurrent workflow-task polls. certpool runs many short workflows (claims, syncs,
    /// issuances) that always start on the shared queue, so this is far above the SDK's 5.
    #[serde(default = "default_workflow_pollers")]
    pub workflow_pollers: u32,
    /// Share of the workflow-task polls that wait on the shared queue rather than the worker's
    /// sticky queue (SDK default 0.2, i.e. one poll for new workflows).
    #[serde(default = "default_nonsticky_ratio")]
    pub nonsticky_ratio: f32,
    /// Concurrent activity-task polls.
    #[serde(default = "default_activity_pollers")]
    pub activity_pollers: u32,
    /// Concurrent workflow-task polls on the claims queue.
    #[serde(default = "default_claim_pollers")]
    pub claim_pollers: u32,
}

fn default_workflow_pollers() -> u32 {
    16
}
fn default_nonsticky_ratio() -> f32 {
    0.5
}
fn default_activity_pollers() -> u32 {
    16
}
fn default_claim_pollers() -> u32 {
    8
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            workflow_pollers: default_workflow_pollers(),
            nonsticky_ratio: default_nonsticky_ratio(),
            activity_pollers: default_activity_pollers(),
            claim_pollers: default_claim_pollers(),
        }
    }
}

/// `[renewal]`: when an assigned certificate is due. Due at `not_after - renew_before` or at
/// `renew_at_fraction` of its lifetime, whichever comes first; when `renew_before` is not
/// shorter than the lifetime (6-day certificates and a 30-day default), only the fraction counts,
/// or every such certificate would be due the moment it is issued.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RenewalConfig {
    /// Renew this long before expiry.
    #[serde(default = "default_renew_before")]
    pub renew_before: Duration,
    /// Renew once this fraction of the lifetime has passed (0 < f < 1).
    #[serde(default = "default_renew_fraction")]
    pub renew_at_fraction: f64,
    /// Retire the predecessor when every cluster acknowledged its successor, or after this long.
    #[serde(default = "default_grace")]
    pub grace_period: Duration,
    /// Issuance attempts before a renewal is reported as failed.
    #[serde(default = "default_renew_attempts")]
    pub max_attempts: u32,
}

fn default_renew_before() -> Duration {
    Duration::from_secs(30 * 86_400)
}
fn default_renew_fraction() -> f64 {
    2.0 / 3.0
}
fn default_grace() -> Duration {
    Duration::from_secs(3_600)
}
fn default_renew_attempts() -> u32 {
    5
}

impl Default for RenewalConfig {
    fn default() -> Self {
        Self {
            renew_before: default_renew_before(),
            renew_at_fraction: default_renew_fraction(),
            grace_period: default_grace(),
            max_attempts: default_renew_attempts(),
        }
    }
}

impl RenewalConfig {
    /// Unix second at which a certificate valid from `not_before` to `not_after` is due.
    pub fn renew_at(&self, not_before: i64, not_after: i64) -> i64 {
        let lifetime = (not_after - not_before).max(0);
        #[allow(clippy::cast_possible_truncation, clippy::cast_precision_loss)]
        let by_fraction = not_before + (lifetime as f64 * self.renew_at_fraction) as i64;
        let before = i64::try_from(self.renew_before.get().as_secs()).unwrap_or(i64::MAX);
        if before < lifetime {
            (not_after - before).min(by_fraction)
        } else {
            by_fraction
        }
    }
}

/// `[scan]`: the expiry scan run by a Temporal Schedule.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ScanConfig {
    /// Time between scans.
    #[serde(default = "default_scan_interval")]
    pub interval: Duration,
    /// Random delay added to each scheduled run, so many deployments do not scan in lockstep.
    #[serde(default = "default_scan_jitter")]
    pub jitter: Duration,
    /// Rows read per batch (each batch is one activity; the scan continues as new between pages).
    #[serde(default = "default_scan_batch")]
    pub batch_size: u32,
    /// Most renewals one scan starts; the rest wait for the next scan.
    #[serde(default = "default_scan_max_starts")]
    pub max_starts: u32,
}

fn default_scan_interval() -> Duration {
    Duration::from_secs(3_600)
}
fn default_scan_jitter() -> Duration {
    Duration::from_secs(300)
}
fn default_scan_batch() -> u32 {
    500
}
fn default_scan_max_starts() -> u32 {
    10_000
}

impl Default for ScanConfig {
    fn default() -> Self {
        Self {
            interval: default_scan_interval(),
            jitter: default_scan_jitter(),
            batch_size: default_scan_batch(),
            max_starts: default_scan_max_starts(),
        }
    }
}

/// `[targets.<name>]`: how certificates reach a cluster, chosen by `type`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum TargetConfig {
    /// Write `<cluster>.key` and `<cluster>.crt` (key and chain PEM) into a directory, then run a
    /// reload command.
    Files {
        /// Directory; `{cluster}` is replaced by the cluster id.
        dir: PathBuf,
        /// Command and arguments run after writing (no shell); `{cluster}` is replaced.
        #[serde(default)]
        reload_command: Vec<String>,
        /// TLS endpoint that must serve the delivered certificate, `host:port`.
        #[serde(default)]
        verify_endpoint: Option<String>,
        /// SNI to send when verifying; `{cluster}` is replaced.
        #[serde(default)]
        verify_sni: Option<String>,
        /// How long to keep checking the endpoint.
        #[serde(default = "default_verify_timeout")]
        verify_timeout: Duration,
    },
    /// HTTPS POST of a JSON document signed with HMAC-SHA256.
    Webhook {
        /// URL; `{cluster}` is replaced.
        url: String,
        /// HMAC key.
        hmac_key: SecretSource,
        /// Whether the private key is included in the document.
        #[serde(default)]
        include_private_key: bool,
        /// Extra root certificate (PEM) to trust for the endpoint.
        #[serde(default)]
        trusted_root: Option<PathBuf>,
        /// TLS endpoint that must serve the delivered certificate, `host:port`.
        #[serde(default)]
        verify_endpoint: Option<String>,
        /// SNI to send when verifying; `{cluster}` is replaced.
        #[serde(default)]
        verify_sni: Option<String>,
        /// How long to keep checking the endpoint.
        #[serde(default = "default_verify_timeout")]
        verify_timeout: Duration,
    },
}

fn default_verify_timeout() -> Duration {
    Duration::from_secs(60)
}

/// `[events]`
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct EventsConfig {
    /// CloudEvents `source` attribute.
    #[serde(default)]
    pub source: Option<String>,
    /// Sinks by name; every event goes to every sink, at least once.
    #[serde(default)]
    pub sinks: BTreeMap<String, SinkConfig>,
}

/// `[events.sinks.<name>]`, chosen by `type`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum SinkConfig {
    /// CloudEvents 1.0 structured JSON over HTTP(S) POST.
    Webhook {
        /// URL.
        url: String,
        /// Optional HMAC-SHA256 key; the signature goes in `X-Certpool-Signature`.
        #[serde(default)]
        hmac_key: Option<SecretSource>,
        /// Extra root certificate (PEM) to trust.
        #[serde(default)]
        trusted_root: Option<PathBuf>,
    },
    /// NATS JetStream: publish and wait for the stream's acknowledgement.
    Nats {
        /// Server URL, `nats://host:port`.
        url: String,
        /// Stream to publish into (created if missing, capturing `<subject_prefix>.>`).
        #[serde(default = "default_nats_stream")]
        stream: String,
        /// Subject prefix; the event type is appended (`certpool.certificate.renewed`).
        #[serde(default = "default_nats_prefix")]
        subject_prefix: String,
    },
}

fn default_nats_stream() -> String {
    "CERTPOOL".into()
}
fn default_nats_prefix() -> String {
    "certpool".into()
}

/// `[temporal]`
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TemporalConfig {
    /// Frontend gRPC address, e.g. `http://127.0.0.1:7233`.
    pub address: String,
    /// Namespace; `default` on the dev server.
    #[serde(default = "default_namespace")]
    pub namespace: String,
    /// Task queue the workers poll and the CLI starts workflows on.
    #[serde(default = "default_task_queue")]
    pub task_queue: String,
    /// Task queue of claims (`PoolClaims`, `AssignCertificate`); `<task_queue>-claims` when absent. Claims
    /// get a queue and worker slots of their own so that they never wait in line behind the
    /// issuance, sync and renewal tasks of a refill.
    #[serde(default)]
    pub claim_task_queue: Option<String>,
    /// Claims of one pool are answered by this many long-running `PoolClaims` workflows
    /// (`claims/<pool>/0` … `claims/<pool>/N-1`), a cluster always by the same one. More spreads
    /// bursts: the server admits only so many updates in flight per workflow (its dynamic config
    /// `history.maxInFlightUpdates`, 10 by default). Clients and workers should agree, but a
    /// mismatch only moves claims to other workflows; it never changes who gets which certificate.
    #[serde(default = "default_claim_shards")]
    pub claim_shards: u16,
    /// Address of the Temporal Web UI, printed by the CLI so operators can follow workflows.
    #[serde(default)]
    pub ui_address: Option<String>,
}

impl TemporalConfig {
    /// The queue claims run on.
    pub fn claims_queue(&self) -> String {
        self.claim_task_queue
            .clone()
            .unwrap_or_else(|| format!("{}-claims", self.task_queue))
    }
}

fn default_claim_shards() -> u16 {
    4
}

fn default_namespace() -> String {
    "default".into()
}
fn default_task_queue() -> String {
    "certpool".into()
}

/// `[ca.<name>]`: one ACME certificate authority.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct CaConfig {
    /// ACME directory URL.
    pub directory_url: String,
    /// Contact URIs for the ACME account (`mailto:ops@example.net`).
    #[serde(default)]
    pub contact: Vec<String>,
    /// External account binding, for CAs that require one.
    #[serde(default)]
    pub eab: Option<EabConfig>,
    /// Extra root certificate (PEM file) to trust for the CA's HTTPS endpoint; meant for test CAs
    /// such as pebble. Public CAs need nothing here.
    #[serde(default)]
    pub trusted_root: Option<PathBuf>,
    /// Per-request timeout for calls to the CA. instant-acme has none of its own.
    #[serde(default = "default_acme_timeout")]
    pub request_timeout: Duration,
}

fn default_acme_timeout() -> Duration {
    Duration::from_secs(30)
}

/// External account binding credentials.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct EabConfig {
    /// Key identifier given by the CA.
    pub kid: String,
    /// Base64url HMAC key given by the CA.
    pub hmac_key: SecretSource,
}

/// A secret value given indirectly so that the config file itself can be shared.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum SecretSource {
    /// Read from an environment variable of the worker.
    Env(String),
    /// Read from a file (trailing whitespace trimmed).
    File(PathBuf),
    /// Given inline. Fine for the dev stack, discouraged in production.
    Value(String),
}

/// `[dns.<name>]`: a DNS provider, chosen by `type`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum DnsProviderConfig {
    /// Dynamic updates (RFC 2136) signed with TSIG (RFC 8945), e.g. to BIND or Knot.
    Rfc2136(Rfc2136Config),
    /// Google Cloud DNS (API v1).
    Clouddns(ClouddnsConfig),
    /// Amazon Route 53 hosted zones, through the Route 53 API.
    Route53(Route53Config),
}

impl DnsProviderConfig {
    /// The single zone a provider is bound to, when it is bound to exactly one.
    pub fn zone(&self) -> Option<&str> {
        match self.zones().as_slice() {
            [one] => Some(one),
            _ => None,
        }
    }

    /// The zones a provider may change. Empty means any zone its credentials reach (a
    /// `route53` provider without a `zones` list finds the hosted zone per name).
    pub fn zones(&self) -> Vec<&str> {
        match self {
            Self::Rfc2136(r) => vec![r.zone.as_str()],
            Self::Route53(r) => r.zones.iter().map(String::as_str).collect(),
            // The managed zone's DNS name is known only to the API.
            Self::Clouddns(_) => Vec::new(),
        }
    }
}

/// Static AWS credentials, for workers that do not get theirs from the default AWS chain
/// (environment, profile, web identity, ECS or EC2 instance role).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AwsCredentialsConfig {
    /// Access key id (`AKIA…`).
    pub access_key_id: SecretSource,
    /// Secret access key.
    pub secret_access_key: SecretSource,
    /// Session token, for temporary credentials.
    #[serde(default)]
    pub session_token: Option<SecretSource>,
}

/// Settings of a Route 53 provider.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Route53Config {
    /// Hosted zones (`example.net.`) this provider may change. Empty: the hosted zone of each
    /// name is found by longest suffix among all zones the credentials can list.
    #[serde(default)]
    pub zones: Vec<String>,
    /// Signing region. Route 53 is global; `us-east-1` serves the `aws` partition.
    #[serde(default = "default_route53_region")]
    pub region: String,
    /// API endpoint override (`http://127.0.0.1:5000` for a test server).
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Static credentials; without them the default AWS credential chain is used.
    #[serde(default)]
    pub credentials: Option<AwsCredentialsConfig>,
    /// TTL of the challenge records.
    #[serde(default = "default_txt_ttl")]
    pub ttl: u32,
    /// Per-request timeout of API calls.
    #[serde(default = "default_aws_timeout")]
    pub timeout: Duration,
    /// How long `present` and `cleanup` wait for a change to reach `INSYNC`.
    #[serde(default = "default_insync_timeout")]
    pub insync_timeout: Duration,
    /// Time between two `GetChange` polls.
    #[serde(default = "default_insync_interval")]
    pub insync_interval: Duration,
}

fn default_route53_region() -> String {
    "us-east-1".into()
}
fn default_aws_timeout() -> Duration {
    Duration::from_secs(30)
}
fn default_insync_timeout() -> Duration {
    Duration::from_secs(180)
}
fn default_insync_interval() -> Duration {
    Duration::from_secs(2)
}

/// Settings of an RFC 2136 provider.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Rfc2136Config {
    /// Primary server accepting updates, `host:port`.
    pub server: String,
    /// Zone apex the updates go to, e.g. `example.net.`.
    pub zone: String,
    /// TSIG key name.
    pub tsig_key_name: String,
    /// TSIG algorithm.
    #[serde(default)]
    pub tsig_algorithm: TsigAlgorithm,
    /// TSIG secret (base64).
    pub tsig_secret: SecretSource,
    /// TTL of the challenge records.
    #[serde(default = "default_txt_ttl")]
    pub ttl: u32,
    /// Per-update timeout.
    #[serde(default = "default_dns_timeout")]
    pub timeout: Duration,
}

/// Settings of a Google Cloud DNS provider.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ClouddnsConfig {
    /// Project id that owns the managed zones.
    pub project: String,
    /// Managed zone name (not its DNS name). Without it, each record goes to the public zone of
    /// the project whose DNS name is the longest suffix of the record's name.
    #[serde(default)]
    pub managed_zone: Option<String>,
    /// Service-account key (the JSON file downloaded from IAM). Without it, Application Default
    /// Credentials: `GOOGLE_APPLICATION_CREDENTIALS`, gcloud's user credentials, then the
    /// metadata server (workload identity on GKE, the VM's service account on GCE).
    #[serde(default)]
    pub credentials: Option<SecretSource>,
    /// API endpoint instead of `https://dns.googleapis.com` (a private endpoint, a test fixture).
    #[serde(default)]
    pub endpoint: Option<String>,
    /// TTL of the challenge records.
    #[serde(default = "default_txt_ttl")]
    pub ttl: u32,
    /// Per-request timeout.
    #[serde(default = "default_dns_timeout")]
    pub timeout: Duration,
    /// How long to wait for a submitted change to be done (live on Cloud DNS's servers).
    #[serde(default = "default_change_timeout")]
    pub change_timeout: Duration,
}

fn default_change_timeout() -> Duration {
    Duration::from_secs(120)
}

fn validate_clouddns(name: &str, c: &ClouddnsConfig, invalid: &Invalid<'_>) -> Result<(), ConfigError> {
    // Project ids are 6-30 lowercase letters, digits and hyphens; older projects may carry a
    // `domain.com:` prefix. Anything with a slash would change the request path.
    if c.project.is_empty() || c.project.contains(['/', '?', '#']) || c.project.chars().any(char::is_whitespace) {
        return Err(invalid(
            &["dns", name, "project"],
            format!("{:?} is not a Google Cloud project id", c.project),
        ));
    }
    if let Some(z) = &c.managed_zone
        && (z.is_empty() || z.ends_with('.') || !z.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '-'))
    {
        return Err(invalid(
            &["dns", name, "managed_zone"],
            format!("{z:?} is not a managed zone name (the zone's name, e.g. \"acme-example-net\", not its DNS name)"),
        ));
    }
    if let Some(e) = &c.endpoint
        && !(e.starts_with("https://") || e.starts_with("http://"))
    {
        return Err(invalid(
            &["dns", name, "endpoint"],
            format!("{e:?} is not an http(s) URL"),
        ));
    }
    if c.ttl == 0 {
        return Err(invalid(&["dns", name, "ttl"], "must be at least 1".into()));
    }
    if c.timeout.get().is_zero() || c.change_timeout.get().is_zero() {
        return Err(invalid(
            &["dns", name],
            "timeout and change_timeout must be positive".into(),
        ));
    }
    Ok(())
}

fn default_txt_ttl() -> u32 {
    60
}
fn default_dns_timeout() -> Duration {
    Duration::from_secs(10)
}

/// TSIG HMAC algorithms.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Default)]
pub enum TsigAlgorithm {
    /// `hmac-sha256`, the usual choice.
    #[default]
    #[serde(rename = "hmac-sha256")]
    HmacSha256,
    /// `hmac-sha384`.
    #[serde(rename = "hmac-sha384")]
    HmacSha384,
    /// `hmac-sha512`.
    #[serde(rename = "hmac-sha512")]
    HmacSha512,
}

/// `[propagation]`
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PropagationConfig {
    /// Query these servers (`host:port`) instead of the zone's NS set. Needed when the
    /// authoritative servers are not reachable under their public names, as on the dev stack.
    #[serde(default)]
    pub nameservers: Vec<String>,
    /// Give up after this long.
    #[serde(default = "default_propagation_timeout")]
    pub timeout: Duration,
    /// Time between two rounds of queries.
    #[serde(default = "default_propagation_interval")]
    pub interval: Duration,
}

fn default_propagation_timeout() -> Duration {
    Duration::from_secs(120)
}
fn default_propagation_interval() -> Duration {
    Duration::from_millis(500)
}

impl Default for PropagationConfig {
    fn default() -> Self {
        Self {
            nameservers: Vec::new(),
            timeout: default_propagation_timeout(),
            interval: default_propagation_interval(),
        }
    }
}

/// `[secrets]`: the secret store, chosen by `type`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum SecretStoreConfig {
    /// Encrypted files in a local directory (AES-256-GCM, files 0600).
    Local {
        /// Directory holding the secrets.
        path: PathBuf,
        /// 32-byte key, base64 or hex, that encrypts everything at rest.
        encryption_key: SecretSource,
    },
    /// HashiCorp Vault or OpenBao, KV version 2 secrets engine.
    Vault(VaultConfig),
    /// AWS Secrets Manager, one binary secret per path.
    #[serde(rename = "aws-secrets-manager")]
    AwsSecretsManager(AwsSecretsManagerConfig),
}

/// Settings of the `aws-secrets-manager` secret store.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AwsSecretsManagerConfig {
    /// Region; without it the default AWS chain's region (`AWS_REGION`, profile, instance).
    #[serde(default)]
    pub region: Option<String>,
    /// API endpoint override (`http://127.0.0.1:5000` for a test server).
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Static credentials; without them the default AWS credential chain is used.
    #[serde(default)]
    pub credentials: Option<AwsCredentialsConfig>,
    /// Secret `p` is stored under the name `<prefix><p>`.
    #[serde(default = "default_aws_secrets_prefix")]
    pub prefix: String,
    /// KMS key (id, alias or ARN) that encrypts new secrets; the account's default
    /// `aws/secretsmanager` key when absent.
    #[serde(default)]
    pub kms_key_id: Option<String>,
    /// Per-request timeout.
    #[serde(default = "default_vault_timeout")]
    pub timeout: Duration,
}

fn default_aws_secrets_prefix() -> String {
    "certpool/".into()
}

/// Settings of the `vault` secret store.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct VaultConfig {
    /// Server URL, e.g. `https://vault.example.net:8200`.
    pub address: String,
    /// Mount path of the KV v2 engine.
    #[serde(default = "default_vault_mount")]
    pub mount: String,
    /// Every secret lives under this path inside the mount.
    #[serde(default = "default_vault_prefix")]
    pub path_prefix: String,
    /// How the store authenticates.
    pub auth: VaultAuth,
    /// Extra root certificate (PEM file) to trust for the server.
    #[serde(default)]
    pub trusted_root: Option<PathBuf>,
    /// Per-request timeout.
    #[serde(default = "default_vault_timeout")]
    pub timeout: Duration,
}

/// Vault authentication, chosen by `method`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(tag = "method", rename_all = "snake_case", deny_unknown_fields)]
pub enum VaultAuth {
    /// A fixed token, sent as `X-Vault-Token`.
    Token {
        /// The token.
        token: SecretSource,
    },
    /// AppRole login; the client token is cached and renewed by logging in again.
    Approle {
        /// Role id.
        role_id: SecretSource,
        /// Secret id.
        secret_id: SecretSource,
        /// Mount path of the AppRole auth method.
        #[serde(default = "default_approle_mount")]
        mount: String,
    },
}

fn default_vault_mount() -> String {
    "secret".into()
}
fn default_vault_prefix() -> String {
    "certpool".into()
}
fn default_approle_mount() -> String {
    "approle".into()
}
fn default_vault_timeout() -> Duration {
    Duration::from_secs(10)
}

/// `[inventory]`, chosen by `type`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum InventoryConfig {
    /// A SQLite database file.
    Sqlite {
        /// Database file; created on first use.
        path: PathBuf,
    },
    /// A PostgreSQL database shared by every worker.
    Postgres(PostgresInventoryConfig),
}

/// Settings of the `postgres` inventory.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PostgresInventoryConfig {
    /// Connection URL, `postgres://user:password@host:5432/db?sslmode=verify-full`. A secret
    /// source because the URL usually carries the password.
    pub url: SecretSource,
    /// Schema holding certpool's tables. Unset: the role's `search_path` decides (by default a
    /// schema named like the role, if there is one).
    #[serde(default)]
    pub schema: Option<String>,
    /// Connections each worker keeps open at most.
    #[serde(default = "default_pg_max_connections")]
    pub max_connections: u32,
    /// How long a query waits for a connection, connecting included, before it fails (and its
    /// activity retries).
    #[serde(default = "default_pg_connect_timeout")]
    pub connect_timeout: Duration,
}

fn default_pg_max_connections() -> u32 {
    8
}
fn default_pg_connect_timeout() -> Duration {
    Duration::from_secs(10)
}

/// Whether `name` is usable as a PostgreSQL schema name without quoting: lowercase letters,
/// digits and `_`, not starting with a digit, at most 63 bytes.
pub fn is_plain_sql_identifier(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// `[issuance]`: defaults that pools may override.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct IssuanceConfig {
    /// How many `IssueCertificate` workflows one pool fill runs at once.
    #[serde(default = "default_fill_concurrency")]
    pub fill_concurrency: u32,
    /// Private key algorithm of issued certificates.
    #[serde(default)]
    pub key_algorithm: KeyAlgorithm,
    /// Give up on one issuance after this long (child workflow execution timeout).
    #[serde(default = "default_issue_timeout")]
    pub issue_timeout: Duration,
}

fn default_fill_concurrency() -> u32 {
    8
}
fn default_issue_timeout() -> Duration {
    Duration::from_secs(600)
}

impl Default for IssuanceConfig {
    fn default() -> Self {
        Self {
            fill_concurrency: default_fill_concurrency(),
            key_algorithm: KeyAlgorithm::default(),
            issue_timeout: default_issue_timeout(),
        }
    }
}

/// Private key algorithms.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "kebab-case")]
pub enum KeyAlgorithm {
    /// ECDSA on P-256 with SHA-256.
    #[default]
    EcdsaP256,
    /// ECDSA on P-384 with SHA-384.
    EcdsaP384,
    /// Ed25519. Few CAs accept it yet.
    Ed25519,
}

/// `[schemes.<name>]`
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SchemeConfig {
    /// What the scheme is for.
    #[serde(default)]
    pub description: Option<String>,
    /// SAN templates with `{cloud}`, `{region}`, `{network_id}` and `{zone}` placeholders.
    pub sans: Vec<String>,
}

/// `[pools.<name>]`
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PoolConfig {
    /// Scheme name.
    pub scheme: String,
    /// Cloud provider label bound to `{cloud}`.
    pub cloud: String,
    /// Region label bound to `{region}`.
    pub region: String,
    /// Network id bound to `{network_id}`.
    #[serde(default)]
    pub network_id: Option<String>,
    /// Zone labels; a template with `{zone}` yields one SAN per zone.
    #[serde(default)]
    pub zones: Vec<String>,
    /// How many ready certificates the pool keeps.
    pub target_size: u32,
    /// A pooled certificate with less remaining lifetime than this does not count as ready.
    #[serde(default = "default_min_remaining")]
    pub min_remaining_lifetime: Duration,
    /// CA name from `[ca]`.
    pub ca: String,
    /// A second CA from `[ca]` that takes over when `ca` fails with a transient error (down,
    /// unreachable, rate limited): the fill's first order tries `ca` with few retries and the
    /// fill goes on through the backup; a renewal's later attempts use the backup.
    #[serde(default)]
    pub backup_ca: Option<String>,
    /// DNS provider name from `[dns]`.
    pub dns: String,
    /// Overrides `issuance.fill_concurrency` for this pool.
    #[serde(default)]
    pub fill_concurrency: Option<u32>,
    /// What a claim does when the pool is empty.
    #[serde(default)]
    pub on_empty: OnEmpty,
    /// With `on_empty = "wait"`: how long a claim waits for replenishment.
    #[serde(default = "default_claim_timeout")]
    pub claim_timeout: Duration,
    /// Cluster target (from `[targets]`) that clusters of this pool use unless the claim names one.
    #[serde(default)]
    pub target: Option<String>,
}

/// What a claim does when its pool has no ready certificate.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum OnEmpty {
    /// Wait, up to `claim_timeout`, for the replenisher.
    #[default]
    Wait,
    /// Fail at once with an error naming the pool and its state.
    Fail,
}

fn default_claim_timeout() -> Duration {
    Duration::from_secs(30)
}

fn default_min_remaining() -> Duration {
    Duration::from_secs(45 * 86_400)
}

/// Why a configuration was rejected.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Syntax error, unknown key or bad value type.
    #[error("{origin}: {message}")]
    Parse {
        /// File name or `<string>`.
        origin: String,
        /// Message naming the key and line.
        message: String,
    },
    /// A value is well-formed but wrong (unknown reference, invalid scheme…).
    #[error("{origin}:{line}: {key}: {message}", line = line.map_or_else(|| "?".to_owned(), |l| l.to_string()))]
    Invalid {
        /// File name or `<string>`.
        origin: String,
        /// Dotted key path.
        key: String,
        /// 1-based line of the key, when it could be found.
        line: Option<usize>,
        /// What is wrong.
        message: String,
    },
    /// `${VAR}` named an unset variable with no default.
    #[error("{origin}:{line}: environment variable {var} is not set and has no default (write ${{{var}:-default}})")]
    UnsetVariable {
        /// File name or `<string>`.
        origin: String,
        /// 1-based line.
        line: usize,
        /// Variable name.
        var: String,
    },
}

/// A warning that does not stop certpool but that an operator should see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigWarning {
    /// Dotted key path.
    pub key: String,
    /// What to look at.
    pub message: String,
}

/// A config that parsed and validated, with every pool materialized.
#[derive(Debug, Clone)]
pub struct LoadedConfig {
    /// The parsed file.
    pub config: Config,
    /// Directory relative paths are resolved against (the config file's directory).
    pub base_dir: PathBuf,
    /// Pools with their materialized SAN lists, by name.
    pub pools: BTreeMap<String, PoolSpec>,
    /// Things worth an operator's attention.
    pub warnings: Vec<ConfigWarning>,
}

impl LoadedConfig {
    /// Reads, interpolates, parses and validates a config file.
    pub fn from_file(path: &Path, env: &dyn Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let base_dir = path
            .parent()
            .map(Path::to_path_buf)
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or_else(|| PathBuf::from("."));
        Self::from_str(&text, &path.display().to_string(), base_dir, env)
    }

    /// Same as [`LoadedConfig::from_file`] for text already in memory.
    pub fn from_str(
        text: &str,
        origin: &str,
        base_dir: PathBuf,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let text = interpolate(text, origin, env)?;
        let config: Config = toml::from_str(&text).map_err(|e| ConfigError::Parse {
            origin: origin.to_owned(),
            message: describe_toml_error(&e, &text),
        })?;
        let locate = |path: &[&str]| key_line(&text, path);
        let invalid = |path: &[&str], message: String| ConfigError::Invalid {
            origin: origin.to_owned(),
            key: path.join("."),
            line: locate(path),
            message,
        };
        let (pools, warnings) = validate(&config, &invalid)?;
        Ok(Self {
            config,
            base_dir,
            pools,
            warnings,
        })
    }

    /// Resolves a path from the config against the config file's directory.
    pub fn resolve(&self, path: &Path) -> PathBuf {
        if path.is_absolute() {
            path.to_owned()
        } else {
            self.base_dir.join(path)
        }
    }

    /// The pool named `name`, or an error listing the configured pools.
    pub fn pool(&self, name: &str) -> Result<&PoolSpec, String> {
        self.pools.get(name).ok_or_else(|| {
            let known: Vec<&str> = self.pools.keys().map(String::as_str).collect();
            format!("no pool named {name:?}; configured pools: {}", known.join(", "))
        })
    }
}

type Invalid<'a> = dyn Fn(&[&str], String) -> ConfigError + 'a;

fn validate(
    config: &Config,
    invalid: &Invalid<'_>,
) -> Result<(BTreeMap<String, PoolSpec>, Vec<ConfigWarning>), ConfigError> {
    let mut warnings = Vec::new();
    if config.temporal.task_queue.trim().is_empty() {
        return Err(invalid(&["temporal", "task_queue"], "must not be empty".into()));
    }
    if let Some(q) = &config.temporal.claim_task_queue {
        // The claims worker registers only the claim workflows: sharing the main queue would
        // hand it tasks of workflows it cannot run.
        if q.trim().is_empty() || *q == config.temporal.task_queue {
            return Err(invalid(
                &["temporal", "claim_task_queue"],
                format!("{q:?} must be non-empty and differ from task_queue"),
            ));
        }
    }
    if !(1..=64).contains(&config.temporal.claim_shards) {
        return Err(invalid(
            &["temporal", "claim_shards"],
            format!("{} is out of range 1 to 64", config.temporal.claim_shards),
        ));
    }
    if config.issuance.fill_concurrency == 0 {
        return Err(invalid(&["issuance", "fill_concurrency"], "must be at least 1".into()));
    }
    for (name, ca) in &config.ca {
        if !(ca.directory_url.starts_with("https://") || ca.directory_url.starts_with("http://")) {
            return Err(invalid(
                &["ca", name, "directory_url"],
                format!("{:?} is not an http(s) URL", ca.directory_url),
            ));
        }
        for c in &ca.contact {
            if !c.starts_with("mailto:") {
                return Err(invalid(
                    &["ca", name, "contact"],
                    format!("{c:?} must be a mailto: URI"),
                ));
            }
        }
    }
    for (name, dns) in &config.dns {
        match dns {
            DnsProviderConfig::Rfc2136(r) => {
                if !r.zone.ends_with('.') {
                    return Err(invalid(
                        &["dns", name, "zone"],
                        format!("{:?} must be fully qualified (end with a dot)", r.zone),
                    ));
                }
                if r.server.rsplit_once(':').is_none_or(|(_, p)| p.parse::<u16>().is_err()) {
                    return Err(invalid(
                        &["dns", name, "server"],
                        format!("{:?} must be host:port", r.server),
                    ));
                }
            }
            DnsProviderConfig::Clouddns(c) => validate_clouddns(name, c, invalid)?,
            DnsProviderConfig::Route53(r) => {
                for zone in &r.zones {
                    let bare = zone.trim_end_matches('.');
                    if bare.is_empty() || bare.split('.').any(str::is_empty) {
                        return Err(invalid(
                            &["dns", name, "zones"],
                            format!("{zone:?} is not a DNS zone name"),
                        ));
                    }
                }
                validate_aws(&["dns", name], &r.region, r.endpoint.as_deref(), invalid)?;
                if r.timeout.get().is_zero() || r.insync_interval.get().is_zero() {
                    return Err(invalid(
                        &["dns", name],
                        "timeout and insync_interval must be positive".into(),
                    ));
                }
            }
        }
    }
    for ns in &config.propagation.nameservers {
        if ns.rsplit_once(':').is_none_or(|(_, p)| p.parse::<u16>().is_err()) {
            return Err(invalid(
                &["propagation", "nameservers"],
                format!("{ns:?} must be host:port"),
            ));
        }
    }
    let w = &config.worker;
    if w.workflow_pollers < 2 || w.activity_pollers < 1 {
        return Err(invalid(
            &["worker"],
            "workflow_pollers must be at least 2 and activity_pollers at least 1".into(),
        ));
    }
    if !(w.nonsticky_ratio > 0.0 && w.nonsticky_ratio <= 1.0) {
        return Err(invalid(&["worker", "nonsticky_ratio"], "must be in (0, 1]".into()));
    }
    let r = &config.renewal;
    if !(r.renew_at_fraction > 0.0 && r.renew_at_fraction < 1.0) {
        return Err(invalid(
            &["renewal", "renew_at_fraction"],
            "must be between 0 and 1".into(),
        ));
    }
    if r.max_attempts == 0 {
        return Err(invalid(&["renewal", "max_attempts"], "must be at least 1".into()));
    }
    if config.scan.batch_size == 0 || config.scan.interval.get().is_zero() {
        return Err(invalid(&["scan"], "batch_size and interval must be positive".into()));
    }
    for (name, t) in &config.targets {
        let endpoint = match t {
            TargetConfig::Files { verify_endpoint, .. } | TargetConfig::Webhook { verify_endpoint, .. } => {
                verify_endpoint
            }
        };
        if let Some(ep) = endpoint
            && ep.rsplit_once(':').is_none_or(|(_, p)| p.parse::<u16>().is_err())
        {
            return Err(invalid(
                &["targets", name, "verify_endpoint"],
                format!("{ep:?} must be host:port"),
            ));
        }
        if let TargetConfig::Webhook { url, .. } = t
            && !(url.starts_with("https://") || url.starts_with("http://"))
        {
            return Err(invalid(
                &["targets", name, "url"],
                format!("{url:?} is not an http(s) URL"),
            ));
        }
    }
    for (name, sink) in &config.events.sinks {
        // Outbox rows name their sink; this one is certpool's own sync and refill requests.
        if name == "certpool.notify" {
            return Err(invalid(
                &["events", "sinks", name],
                "the sink name \"certpool.notify\" is reserved".into(),
            ));
        }
        match sink {
            SinkConfig::Webhook { url, .. } if !(url.starts_with("https://") || url.starts_with("http://")) => {
                return Err(invalid(
                    &["events", "sinks", name, "url"],
                    format!("{url:?} is not an http(s) URL"),
                ));
            }
            SinkConfig::Nats { url, .. } if !url.starts_with("nats://") => {
                return Err(invalid(
                    &["events", "sinks", name, "url"],
                    format!("{url:?} must start with nats://"),
                ));
            }
            _ => {}
        }
    }
    if let SecretStoreConfig::Vault(v) = &config.secrets {
        if !(v.address.starts_with("https://") || v.address.starts_with("http://")) {
            return Err(invalid(
                &["secrets", "address"],
                format!("{:?} is not an http(s) URL", v.address),
            ));
        }
        for (key, value) in [("mount", &v.mount), ("path_prefix", &v.path_prefix)] {
            if value.trim_matches('/').is_empty() || value.split('/').any(|s| s == "." || s == "..") {
                return Err(invalid(
                    &["secrets", key],
                    format!("{value:?} must be a non-empty path without '.' or '..' segments"),
                ));
            }
        }
        if v.timeout.get().is_zero() {
            return Err(invalid(&["secrets", "timeout"], "must be positive".into()));
        }
    }
    if let SecretStoreConfig::AwsSecretsManager(a) = &config.secrets {
        validate_aws(
            &["secrets"],
            a.region.as_deref().unwrap_or("default"),
            a.endpoint.as_deref(),
            invalid,
        )?;
        // Secrets Manager names allow these characters; `..` would make paths ambiguous.
        if a.prefix.contains("..")
            || !a
                .prefix
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "/_+=.@-".contains(c))
        {
            return Err(invalid(
                &["secrets", "prefix"],
                format!(
                    "{:?} may only contain A-Z, a-z, 0-9 and /_+=.@- (and no '..')",
                    a.prefix
                ),
            ));
        }
        if a.timeout.get().is_zero() {
            return Err(invalid(&["secrets", "timeout"], "must be positive".into()));
        }
    }
    if let InventoryConfig::Postgres(pg) = &config.inventory {
        if let SecretSource::Value(url) = &pg.url
            && !(url.starts_with("postgres://") || url.starts_with("postgresql://"))
        {
            // The value may hold a password: say what is wrong without repeating it.
            return Err(invalid(
                &["inventory", "url"],
                "must be a postgres:// or postgresql:// URL".into(),
            ));
        }
        if let Some(schema) = &pg.schema
            && !is_plain_sql_identifier(schema)
        {
            return Err(invalid(
                &["inventory", "schema"],
                format!("{schema:?} must be lowercase letters, digits and '_', not starting with a digit"),
            ));
        }
        if pg.max_connections == 0 {
            return Err(invalid(&["inventory", "max_connections"], "must be at least 1".into()));
        }
        if pg.connect_timeout.get().is_zero() {
            return Err(invalid(&["inventory", "connect_timeout"], "must be positive".into()));
        }
    }
    let mut schemes = BTreeMap::new();
    for (name, s) in &config.schemes {
        let scheme = Scheme::parse(name, &s.sans).map_err(|e| invalid(&["schemes", name, "sans"], e.to_string()))?;
        schemes.insert(name.clone(), scheme);
    }
    let mut pools = BTreeMap::new();
    for (name, p) in &config.pools {
        crate::pool::validate_pool_name(name).map_err(|m| invalid(&["pools", name], m))?;
        let scheme = schemes.get(&p.scheme).ok_or_else(|| {
            invalid(
                &["pools", name, "scheme"],
                format!("unknown scheme {:?}; defined: {}", p.scheme, keys(&config.schemes)),
            )
        })?;
        if !config.ca.contains_key(&p.ca) {
            return Err(invalid(
                &["pools", name, "ca"],
                format!("unknown CA {:?}; defined: {}", p.ca, keys(&config.ca)),
            ));
        }
        if !config.dns.contains_key(&p.dns) {
            return Err(invalid(
                &["pools", name, "dns"],
                format!("unknown DNS provider {:?}; defined: {}", p.dns, keys(&config.dns)),
            ));
        }
        if let Some(b) = &p.backup_ca {
            if !config.ca.contains_key(b) {
                return Err(invalid(
                    &["pools", name, "backup_ca"],
                    format!("unknown CA {b:?}; defined: {}", keys(&config.ca)),
                ));
            }
            if *b == p.ca {
                return Err(invalid(
                    &["pools", name, "backup_ca"],
                    format!("{b:?} is the pool's ca itself; a backup must be another CA"),
                ));
            }
        }
        if let Some(t) = &p.target
            && !config.targets.contains_key(t)
        {
            return Err(invalid(
                &["pools", name, "target"],
                format!("unknown cluster target {t:?}; defined: {}", keys(&config.targets)),
            ));
        }
        if p.target_size == 0 {
            return Err(invalid(&["pools", name, "target_size"], "must be at least 1".into()));
        }
        if p.fill_concurrency == Some(0) {
            return Err(invalid(
                &["pools", name, "fill_concurrency"],
                "must be at least 1".into(),
            ));
        }
        let values = PoolTemplateValues {
            cloud: p.cloud.clone(),
            region: p.region.clone(),
            network_id: p.network_id.clone(),
            zones: p.zones.clone(),
        };
        let sans = scheme.materialize(&values).map_err(|e| match &e {
            SchemeError::Template { .. } | SchemeError::Materialized { .. } | SchemeError::TooMany { .. } => {
                invalid(&["pools", name], format!("scheme {:?}: {e}", p.scheme))
            }
            _ => invalid(&["pools", name], e.to_string()),
        })?;
        if sans.len() > crate::scheme::SAN_WARN_THRESHOLD {
            warnings.push(ConfigWarning {
                key: format!("pools.{name}"),
                message: format!(
                    "{} SANs; Let's Encrypt's short-lived profiles accept at most {}",
                    sans.len(),
                    crate::scheme::SAN_WARN_THRESHOLD
                ),
            });
        }
        let zones: Vec<&str> = config.dns[&p.dns]
            .zones()
            .into_iter()
            .map(|z| z.trim_end_matches('.'))
            .collect();
        if !zones.is_empty() {
            for san in &sans {
                let host = san.trim_start_matches("*.");
                let inside = |zone: &&str| {
                    host.eq_ignore_ascii_case(zone)
                        || host.len() > zone.len()
                            && host
                                .to_ascii_lowercase()
                                .ends_with(&format!(".{}", zone.to_ascii_lowercase()))
                };
                if !zones.iter().any(inside) {
                    return Err(invalid(
                        &["pools", name, "dns"],
                        format!(
                            "SAN {san:?} is outside zone {} served by DNS provider {:?}",
                            zones.iter().map(|z| format!("{z:?}")).collect::<Vec<_>>().join(", "),
                            p.dns
                        ),
                    ));
                }
            }
        }
        pools.insert(
            name.clone(),
            PoolSpec {
                name: name.clone(),
                scheme: p.scheme.clone(),
                sans,
                target_size: p.target_size,
                min_remaining_lifetime: p.min_remaining_lifetime,
                ca: p.ca.clone(),
                backup_ca: p.backup_ca.clone(),
                dns: p.dns.clone(),
                fill_concurrency: p.fill_concurrency.unwrap_or(config.issuance.fill_concurrency),
                on_empty: p.on_empty,
                claim_timeout: p.claim_timeout,
                target: p.target.clone(),
                key_algorithm: config.issuance.key_algorithm,
                issue_timeout: config.issuance.issue_timeout,
            },
        );
    }
    Ok((pools, warnings))
}

/// Region and endpoint of an AWS plug-in: a region is a non-empty label, an endpoint an
/// http(s) URL.
fn validate_aws(
    section: &[&str],
    region: &str,
    endpoint: Option<&str>,
    invalid: &Invalid<'_>,
) -> Result<(), ConfigError> {
    if region.is_empty() || !region.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        let key: Vec<&str> = section.iter().copied().chain(["region"]).collect();
        return Err(invalid(&key, format!("{region:?} is not an AWS region name")));
    }
    if let Some(ep) = endpoint
        && !(ep.starts_with("https://") || ep.starts_with("http://"))
    {
        let key: Vec<&str> = section.iter().copied().chain(["endpoint"]).collect();
        return Err(invalid(&key, format!("{ep:?} is not an http(s) URL")));
    }
    Ok(())
}

fn keys<V>(m: &BTreeMap<String, V>) -> String {
    if m.is_empty() {
        "none".into()
    } else {
        m.keys().map(String::as_str).collect::<Vec<_>>().join(", ")
    }
}

/// Expands `${VAR}` and `${VAR:-default}`; `$$` is a literal dollar sign.
fn interpolate(text: &str, origin: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, ConfigError> {
    let mut out = String::with_capacity(text.len());
    for (idx, line) in text.split_inclusive('\n').enumerate() {
        let is_comment = line.trim_start().starts_with('#');
        let mut rest = line;
        while let Some(pos) = rest.find('$') {
            out.push_str(&rest[..pos]);
            let after = &rest[pos + 1..];
            if is_comment {
                out.push('$');
                rest = after;
            } else if let Some(tail) = after.strip_prefix('$') {
                out.push('$');
                rest = tail;
            } else if let Some(body) = after.strip_prefix('{')
                && let Some(end) = body.find('}')
            {
                let expr = &body[..end];
                let (var, default) = match expr.split_once(":-") {
                    Some((v, d)) => (v, Some(d)),
                    None => (expr, None),
                };
                match env(var)
                    .filter(|v| !v.is_empty())
                    .or_else(|| default.map(str::to_owned))
                {
                    Some(v) => out.push_str(&v),
                    None => {
                        return Err(ConfigError::UnsetVariable {
                            origin: origin.to_owned(),
                            line: idx + 1,
                            var: var.to_owned(),
                        });
                    }
                }
                rest = &body[end + 1..];
            } else {
                out.push('$');
                rest = after;
            }
        }
        out.push_str(rest);
    }
    Ok(out)
}

fn describe_toml_error(e: &toml::de::Error, text: &str) -> String {
    let msg = e.message().trim();
    match e.span() {
        Some(span) => {
            let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
            let key = key_at(text, span.start);
            match key {
                Some(k) => format!("line {line}: {k}: {msg}"),
                None => format!("line {line}: {msg}"),
            }
        }
        None => msg.to_owned(),
    }
}

/// The dotted path of the innermost key whose value span contains `offset`.
fn key_at(text: &str, offset: usize) -> Option<String> {
    use toml::de::{DeTable, DeValue};
    let doc = DeTable::parse(text).ok()?;
    // Header-defined tables (`[pools.x]`) do not span their keys, so every table is searched and
    // only leaf spans are compared.
    fn walk(table: &DeTable<'_>, offset: usize, path: &mut Vec<String>) -> bool {
        for (k, v) in table {
            path.push(k.get_ref().to_string());
            let hit = match v.get_ref() {
                DeValue::Table(t) => k.span().contains(&offset) || walk(t, offset, path),
                _ => k.span().contains(&offset) || v.span().contains(&offset),
            };
            if hit {
                return true;
            }
            path.pop();
        }
        false
    }
    let mut path = Vec::new();
    if !walk(doc.get_ref(), offset, &mut path) {
        return None;
    }
    Some(path.join("."))
}

/// 1-based line where the key at `path` is defined.
fn key_line(text: &str, path: &[&str]) -> Option<usize> {
    use toml::de::{DeTable, DeValue};
    let doc = DeTable::parse(text).ok()?;
    let mut table = doc.get_ref();
    let mut found = None;
    for (i, seg) in path.iter().enumerate() {
        let (k, v) = table.iter().find(|(k, _)| k.get_ref().as_ref() == *seg)?;
        let span = k.span();
        found = Some(span.start);
        if i + 1 < path.len() {
            match v.get_ref() {
                DeValue::Table(t) => table = t,
                _ => break,
            }
        }
    }
    found.map(|off| text[..off.min(text.len())].matches('\n').count() + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
[temporal]
address = "http://127.0.0.1:7233"

[ca.test]
directory_url = "https://127.0.0.1:14000/dir"

[dns.bind]
type = "rfc2136"
server = "127.0.0.1:15353"
zone = "certpool.test."
tsig_key_name = "certpool-key."
tsig_secret = { value = "c2VjcmV0" }

[secrets]
type = "local"
path = "secrets"
encryption_key = { env = "KEY" }

[inventory]
type = "sqlite"
path = "inv.sqlite"

[schemes.regional]
sans = ["*.{region}.{cloud}.certpool.test", "{region}.{cloud}.certpool.test"]

[pools.aws-use1]
scheme = "regional"
cloud = "aws"
region = "us-east-1"
target_size = 3
ca = "test"
dns = "bind"
"#;

    fn load(text: &str) -> Result<LoadedConfig, ConfigError> {
        LoadedConfig::from_str(text, "test.toml", PathBuf::from("/etc/certpool"), &|v| {
            (v == "PORT").then(|| "9999".to_owned())
        })
    }

    #[test]
    fn minimal_config_materializes_pool() {
        let c = load(MINIMAL).expect("valid");
        let pool = c.pool("aws-use1").expect("pool");
        assert_eq!(
            pool.sans,
            vec!["*.us-east-1.aws.certpool.test", "us-east-1.aws.certpool.test"]
        );
        assert_eq!(pool.fill_concurrency, 8);
        assert_eq!(
            c.resolve(Path::new("inv.sqlite")),
            PathBuf::from("/etc/certpool/inv.sqlite")
        );
    }

    #[test]
    fn claims_get_their_own_queue() {
        let c = load(MINIMAL).expect("valid");
        assert_eq!(c.config.temporal.claims_queue(), "certpool-claims");
        let text = MINIMAL.replace(
            "address = \"http://127.0.0.1:7233\"",
            "address = \"http://127.0.0.1:7233\"\nclaim_task_queue = \"certpool\"",
        );
        let err = load(&text).expect_err("same queue").to_string();
        assert!(
            err.contains("temporal.claim_task_queue: \"certpool\" must be non-empty and differ from task_queue"),
            "{err}"
        );
    }

    #[test]
    fn backup_ca_must_be_another_configured_ca() {
        let with =
            |backup: &str| MINIMAL.replace("target_size = 3", &format!("target_size = 3\nbackup_ca = {backup:?}"));
        let err = load(&with("nope")).expect_err("unknown").to_string();
        assert!(
            err.contains("backup_ca") && err.contains("unknown CA \"nope\""),
            "{err}"
        );
        let own = load(MINIMAL)
            .expect("valid")
            .config
            .pools
            .values()
            .next()
            .map(|p| p.ca.clone());
        let own = own.expect("a pool");
        let err = load(&with(&own)).expect_err("same as ca").to_string();
        assert!(err.contains("a backup must be another CA"), "{err}");
        let c = load(MINIMAL).expect("valid");
        assert!(c.pools.values().all(|p| p.backup_ca.is_none()));
    }

    #[test]
    fn claim_shards_default_and_range() {
        let c = load(MINIMAL).expect("valid");
        assert_eq!(c.config.temporal.claim_shards, 4);
        for (value, ok) in [("1", true), ("64", true), ("0", false), ("65", false)] {
            let text = MINIMAL.replace(
                "address = \"http://127.0.0.1:7233\"",
                &format!("address = \"http://127.0.0.1:7233\"\nclaim_shards = {value}"),
            );
            match load(&text) {
                Ok(c) => assert!(ok, "{value} accepted: {:?}", c.config.temporal.claim_shards),
                Err(e) => {
                    assert!(!ok, "{value} refused: {e}");
                    assert!(e.to_string().contains("temporal.claim_shards"), "{e}");
                }
            }
        }
    }

    #[test]
    fn unknown_key_is_named_with_its_line() {
        let text = MINIMAL.replace("target_size = 3", "target_size = 3\ntarget_sise = 4");
        let err = load(&text).expect_err("unknown key").to_string();
        assert!(err.contains("target_sise"), "{err}");
        assert!(err.contains("line 32: pools.aws-use1.target_sise"), "{err}");
    }

    #[test]
    fn bad_value_is_named_with_its_line() {
        let text = MINIMAL.replace("target_size = 3", "target_size = \"three\"");
        let err = load(&text).expect_err("bad type").to_string();
        assert!(
            err.contains("line 31: pools.aws-use1.target_size: invalid type"),
            "{err}"
        );
    }

    #[test]
    fn bad_duration_is_rejected() {
        let text = MINIMAL.replace(
            "target_size = 3",
            "target_size = 3\nmin_remaining_lifetime = \"30 days\"",
        );
        let err = load(&text).expect_err("bad duration").to_string();
        assert!(err.contains("line 32: pools.aws-use1.min_remaining_lifetime"), "{err}");
        assert!(err.contains("invalid duration"), "{err}");
    }

    #[test]
    fn unknown_reference_names_pool_key_and_line() {
        let text = MINIMAL.replace("scheme = \"regional\"", "scheme = \"zonal\"");
        let err = load(&text).expect_err("unknown scheme").to_string();
        assert_eq!(
            err,
            "test.toml:28: pools.aws-use1.scheme: unknown scheme \"zonal\"; defined: regional"
        );
    }

    const CLOUDDNS: &str = r#"[dns.bind]
type = "clouddns"
project = "certpool-dns"
credentials = { file = "sa.json" }
"#;

    fn with_clouddns(extra: &str) -> String {
        let start = MINIMAL.find("[dns.bind]").expect("dns section");
        let end = MINIMAL.find("[secrets]").expect("secrets section");
        format!("{}{CLOUDDNS}{extra}\n{}", &MINIMAL[..start], &MINIMAL[end..])
    }

    #[test]
    fn clouddns_section_parses_with_defaults() {
        let cfg = load(&with_clouddns("")).expect("clouddns config");
        let DnsProviderConfig::Clouddns(c) = &cfg.config.dns["bind"] else {
            panic!("not clouddns: {:?}", cfg.config.dns["bind"]);
        };
        assert_eq!(c.project, "certpool-dns");
        assert_eq!(c.managed_zone, None);
        assert_eq!(c.credentials, Some(SecretSource::File("sa.json".into())));
        assert_eq!(
            (c.ttl, c.timeout, c.change_timeout),
            (60, Duration::from_secs(10), Duration::from_secs(120))
        );
        // No zone is known before the API is asked, so SANs are not checked against one.
        assert_eq!(cfg.config.dns["bind"].zone(), None);
    }

    #[test]
    fn clouddns_errors_name_the_key() {
        let err = load(&with_clouddns("managed_zne = \"z\""))
            .expect_err("typo")
            .to_string();
        assert!(err.contains("managed_zne"), "{err}");
        let err = load(&with_clouddns("managed_zone = \"certpool.test.\""))
            .expect_err("dns name")
            .to_string();
        assert!(
            err.contains("dns.bind.managed_zone") && err.contains("not its DNS name"),
            "{err}"
        );
        let err = load(&with_clouddns("endpoint = \"dns.googleapis.com\""))
            .expect_err("no scheme")
            .to_string();
        assert!(err.contains("dns.bind.endpoint"), "{err}");
        let err = load(&MINIMAL.replace("[dns.bind]\ntype = \"rfc2136\"", "[dns.bind]\ntype = \"clouddns\""))
            .expect_err("rfc2136 keys under clouddns")
            .to_string();
        assert!(err.contains("server") || err.contains("project"), "{err}");
    }

    #[test]
    fn unknown_dns_type_is_rejected() {
        let text = MINIMAL.replace("type = \"rfc2136\"", "type = \"carrier-pigeon\"");
        let err = load(&text).expect_err("unknown type").to_string();
        assert!(err.contains("carrier-pigeon"), "{err}");
        assert!(err.contains("line 9"), "{err}");
    }

    #[test]
    fn san_outside_zone_is_rejected() {
        let text = MINIMAL.replace("{region}.{cloud}.certpool.test\"]", "{region}.{cloud}.example.org\"]");
        let err = load(&text).expect_err("outside zone").to_string();
        assert!(err.contains("outside zone"), "{err}");
    }

    #[test]
    fn interpolation_uses_env_and_defaults() {
        let text = MINIMAL
            .replace("127.0.0.1:7233", "127.0.0.1:${PORT}")
            .replace("127.0.0.1:14000", "127.0.0.1:${NOPE:-14001}");
        let c = load(&text).expect("valid");
        assert_eq!(c.config.temporal.address, "http://127.0.0.1:9999");
        assert_eq!(c.config.ca["test"].directory_url, "https://127.0.0.1:14001/dir");
        let err = load(&MINIMAL.replace("7233", "${UNSET_VAR}"))
            .expect_err("unset")
            .to_string();
        assert!(err.contains("UNSET_VAR") && err.contains("test.toml:3"), "{err}");
    }

    const VAULT: &str = r#"[secrets]
type = "vault"
address = "https://vault.example.net:8200"
auth = { method = "approle", role_id = { env = "ROLE_ID" }, secret_id = { file = "secret-id" } }
timeout = "5s"
"#;

    fn with_secrets(section: &str) -> String {
        MINIMAL.replace(
            "[secrets]\ntype = \"local\"\npath = \"secrets\"\nencryption_key = { env = \"KEY\" }\n",
            section,
        )
    }

    #[test]
    fn vault_secret_store_parses_with_defaults() {
        let c = load(&with_secrets(VAULT)).expect("valid");
        let SecretStoreConfig::Vault(v) = &c.config.secrets else {
            panic!("not vault: {:?}", c.config.secrets);
        };
        assert_eq!(v.address, "https://vault.example.net:8200");
        assert_eq!((v.mount.as_str(), v.path_prefix.as_str()), ("secret", "certpool"));
        assert_eq!(v.timeout.get(), std::time::Duration::from_secs(5));
        assert_eq!(
            v.auth,
            VaultAuth::Approle {
                role_id: SecretSource::Env("ROLE_ID".into()),
                secret_id: SecretSource::File("secret-id".into()),
                mount: "approle".into(),
            }
        );
        let token = with_secrets(
            "[secrets]\ntype = \"vault\"\naddress = \"http://127.0.0.1:8200\"\nauth = { method = \"token\", token = { env = \"T\" } }\n",
        );
        let c = load(&token).expect("valid");
        assert!(matches!(
            &c.config.secrets,
            SecretStoreConfig::Vault(VaultConfig {
                auth: VaultAuth::Token { .. },
                ..
            })
        ));
    }

    fn with_inventory(section: &str) -> String {
        MINIMAL.replace("[inventory]\ntype = \"sqlite\"\npath = \"inv.sqlite\"\n", section)
    }

    #[test]
    fn postgres_inventory_parses_with_defaults() {
        let c = load(&with_inventory(
            "[inventory]\ntype = \"postgres\"\nurl = { env = \"CERTPOOL_PG_URL\" }\n",
        ))
        .expect("valid");
        assert_eq!(
            c.config.inventory,
            InventoryConfig::Postgres(PostgresInventoryConfig {
                url: SecretSource::Env("CERTPOOL_PG_URL".into()),
                schema: None,
                max_connections: 8,
                connect_timeout: Duration::from_secs(10),
            })
        );
        let c = load(&with_inventory(
            "[inventory]\ntype = \"postgres\"\nurl = { file = \"pg-url\" }\nschema = \"certpool\"\nmax_connections = 3\nconnect_timeout = \"2s\"\n",
        ))
        .expect("valid");
        let InventoryConfig::Postgres(pg) = &c.config.inventory else {
            panic!("not postgres: {:?}", c.config.inventory);
        };
        assert_eq!(
            (pg.schema.as_deref(), pg.max_connections, pg.connect_timeout.get()),
            (Some("certpool"), 3, std::time::Duration::from_secs(2))
        );
    }

    #[test]
    fn postgres_inventory_bad_values_are_rejected() {
        let base = "[inventory]\ntype = \"postgres\"\nurl = { env = \"U\" }\n";
        let err = load(&with_inventory(&format!("{base}max_conections = 3\n")))
            .expect_err("unknown key")
            .to_string();
        assert!(err.contains("max_conections") && err.contains("line"), "{err}");
        let err = load(&with_inventory(&format!("{base}max_connections = 0\n")))
            .expect_err("zero connections")
            .to_string();
        assert!(err.contains("inventory.max_connections: must be at least 1"), "{err}");
        let err = load(&with_inventory(&format!("{base}connect_timeout = \"0s\"\n")))
            .expect_err("zero timeout")
            .to_string();
        assert!(err.contains("inventory.connect_timeout: must be positive"), "{err}");
        let err = load(&with_inventory(&format!("{base}schema = \"Cert-Pool\"\n")))
            .expect_err("bad schema")
            .to_string();
        assert!(err.contains("inventory.schema"), "{err}");
        // A DSN given inline is checked without echoing it (it may carry a password).
        let err = load(&with_inventory(
            "[inventory]\ntype = \"postgres\"\nurl = { value = \"mysql://u:hunter2@db/x\" }\n",
        ))
        .expect_err("bad url")
        .to_string();
        assert!(err.contains("inventory.url") && !err.contains("hunter2"), "{err}");
        let err = load(&with_inventory("[inventory]\ntype = \"postgres\"\n"))
            .expect_err("no url")
            .to_string();
        assert!(err.contains("url"), "{err}");
    }

    #[test]
    fn vault_unknown_key_and_bad_address_are_rejected() {
        let text = with_secrets(&VAULT.replace("timeout = \"5s\"", "timeout = \"5s\"\nnamespace = \"x\""));
        let err = load(&text).expect_err("unknown key").to_string();
        assert!(err.contains("namespace"), "{err}");
        let text = with_secrets(&VAULT.replace("method = \"approle\",", "method = \"approle\", roleid = \"x\","));
        let err = load(&text).expect_err("unknown auth key").to_string();
        assert!(err.contains("roleid"), "{err}");
        let text = with_secrets(&VAULT.replace("https://vault", "ftp://vault"));
        let err = load(&text).expect_err("bad scheme").to_string();
        assert!(
            err.contains("secrets.address") && err.contains("not an http(s) URL"),
            "{err}"
        );
    }
}
