//! A real moto server (`moto_server`, Route 53, Secrets Manager and IAM APIs) on a free loopback
//! port, one per test binary.
//!
//! moto accepts any credentials unless IAM authentication is on. The server is started with it
//! off, IAM users with their access keys and policies are created, and then authentication is
//! switched on (`/moto-api/reset-auth`), so from then on every request must be signed with one
//! of those keys and is checked against the user's policy actions. (moto checks actions only:
//! every resource is `*` to it, so resource ARNs and condition keys in a policy are not
//! enforced.)
//!
//! moto 5.2.5 computes the signature of a Route 53 request with a query string differently from
//! the SDKs (boto3 as well as Rust's get `SignatureDoesNotMatch`), so Route 53 cannot be used
//! with IAM authentication on. [`moto_open`] is a second server with authentication off, for
//! Route 53; the rejected-credentials checks use [`moto`].

use crate::{Proc, free_port, repo_root, wait_until};
use anyhow::{Context, Result, bail};
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

/// An IAM user's access key on the moto server.
#[derive(Debug, Clone)]
pub struct AccessKey {
    /// `AKIA…`
    pub id: String,
    /// The secret access key.
    pub secret: String,
}

/// The moto server of this test binary and the principals created on it.
pub struct MotoServer {
    port: u16,
    /// Allowed every action.
    pub admin: AccessKey,
    /// The Route 53 policy of `docs/dns-route53.md`.
    pub dns: AccessKey,
    /// Every Secrets Manager action certpool uses.
    pub secrets: AccessKey,
    /// Secrets Manager read actions only (`GetSecretValue`, `ListSecrets`).
    pub secrets_read_only: AccessKey,
    /// A user with no policy at all.
    pub nobody: AccessKey,
    _proc: Proc,
    _dir: tempfile::TempDir,
}

impl std::fmt::Debug for MotoServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MotoServer")
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

static MOTO: OnceLock<MotoServer> = OnceLock::new();
static MOTO_OPEN: OnceLock<MotoServer> = OnceLock::new();

/// The moto server of this test binary with IAM authentication on, started on first use.
pub fn moto() -> &'static MotoServer {
    MOTO.get_or_init(|| MotoServer::start(true).expect("start moto_server"))
}

/// A moto server with IAM authentication off (any key is accepted), for Route 53.
pub fn moto_open() -> &'static MotoServer {
    MOTO_OPEN.get_or_init(|| MotoServer::start(false).expect("start moto_server"))
}

/// The Route 53 policy from `docs/dns-route53.md`, for the zones given (hosted zone ids).
pub fn route53_policy(zone_ids: &[&str]) -> String {
    let zones: Vec<String> = if zone_ids.is_empty() {
        vec!["\"arn:aws:route53:::hostedzone/*\"".into()]
    } else {
        zone_ids
            .iter()
            .map(|z| format!("\"arn:aws:route53:::hostedzone/{z}\""))
            .collect()
    };
    format!(
        r#"{{"Version": "2012-10-17", "Statement": [
  {{"Effect": "Allow", "Action": ["route53:ListHostedZonesByName", "route53:GetChange"], "Resource": "*"}},
  {{"Effect": "Allow", "Action": ["route53:ListResourceRecordSets"], "Resource": [{zones}]}},
  {{"Effect": "Allow", "Action": ["route53:ChangeResourceRecordSets"], "Resource": [{zones}],
    "Condition": {{"ForAllValues:StringLike": {{"route53:ChangeResourceRecordSetsNormalizedRecordNames": ["_acme-challenge.*"]}},
                  "ForAllValues:StringEquals": {{"route53:ChangeResourceRecordSetsRecordTypes": ["TXT"],
                                                 "route53:ChangeResourceRecordSetsActions": ["CREATE", "UPSERT", "DELETE"]}}}}}}
]}}"#,
        zones = zones.join(", ")
    )
}

impl MotoServer {
    fn start(iam_auth: bool) -> Result<Self> {
        let bin = crate::find_binary(
            "CERTPOOL_MOTO_BIN",
            &[repo_root().join(".venv/bin/moto_server")],
            "moto_server",
        )?;
        let dir = tempfile::Builder::new().prefix("certpool-moto-").tempdir()?;
        let port = free_port();
        let mut proc = Proc::spawn(
            "moto_server",
            &bin,
            &["-H", "127.0.0.1", "-p", &port.to_string()],
            &[("HOME", dir.path().to_str().unwrap_or("/tmp"))],
            dir.path().join("moto.log"),
        )?;
        let base = format!("http://127.0.0.1:{port}");
        wait_until("moto_server", &mut [&mut proc], Duration::from_secs(60), || {
            Command::new("curl")
                .args(["-sf", "-o", "/dev/null", &format!("{base}/moto-api/")])
                .status()
                .is_ok_and(|s| s.success())
        })?;
        let user = |name: &str, policy: Option<&str>| -> Result<AccessKey> {
            iam(&base, &[("Action", "CreateUser"), ("UserName", name)])?;
            if let Some(p) = policy {
                iam(
                    &base,
                    &[
                        ("Action", "PutUserPolicy"),
                        ("UserName", name),
                        ("PolicyName", "certpool"),
                        ("PolicyDocument", p),
                    ],
                )?;
            }
            let out = iam(&base, &[("Action", "CreateAccessKey"), ("UserName", name)])?;
            Ok(AccessKey {
                id: xml_field(&out, "AccessKeyId")?,
                secret: xml_field(&out, "SecretAccessKey")?,
            })
        };
        let admin = user(
            "admin",
            Some(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#),
        )?;
        let dns = user("certpool-dns", Some(&route53_policy(&[])))?;
        let secrets = user(
            "certpool-secrets",
            Some(
                r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["secretsmanager:CreateSecret","secretsmanager:PutSecretValue","secretsmanager:GetSecretValue","secretsmanager:DeleteSecret","secretsmanager:ListSecrets"],"Resource":"*"}]}"#,
            ),
        )?;
        let secrets_read_only = user(
            "certpool-secrets-ro",
            Some(
                r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["secretsmanager:GetSecretValue","secretsmanager:ListSecrets"],"Resource":"*"}]}"#,
            ),
        )?;
        let nobody = user("nobody", None)?;
        if !iam_auth {
            return Ok(Self {
                port,
                admin,
                dns,
                secrets,
                secrets_read_only,
                nobody,
                _proc: proc,
                _dir: dir,
            });
        }
        // From here on every request must be signed by one of the keys above.
        let out = Command::new("curl")
            .args([
                "-sS",
                "-f",
                "-X",
                "POST",
                "-H",
                "Content-Type: text/plain",
                "--data",
                "0",
            ])
            .arg(format!("{base}/moto-api/reset-auth"))
            .output()?;
        if !out.status.success() {
            bail!(
                "enabling IAM authentication on moto failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(Self {
            port,
            admin,
            dns,
            secrets,
            secrets_read_only,
            nobody,
            _proc: proc,
            _dir: dir,
        })
    }

    /// `http://127.0.0.1:<port>`
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// SDK config signing with `key`, for test-side clients.
    pub async fn sdk_config(&self, key: &AccessKey) -> SdkConfig {
        aws_config::defaults(BehaviorVersion::latest())
            .http_client(aws_smithy_http_client::Builder::new().build_http())
            .region(Region::new("us-east-1"))
            .endpoint_url(self.endpoint())
            .credentials_provider(Credentials::new(&key.id, &key.secret, None, None, "moto-test"))
            .load()
            .await
    }

    /// A Route 53 client with the admin key.
    pub async fn route53_admin(&self) -> aws_sdk_route53::Client {
        aws_sdk_route53::Client::new(&self.sdk_config(&self.admin).await)
    }

    /// A Secrets Manager client with the admin key.
    pub async fn secrets_admin(&self) -> aws_sdk_secretsmanager::Client {
        aws_sdk_secretsmanager::Client::new(&self.sdk_config(&self.admin).await)
    }

    /// Creates a public hosted zone and returns its id (without `/hostedzone/`).
    pub async fn create_zone(&self, name: &str) -> Result<String> {
        let out = self
            .route53_admin()
            .await
            .create_hosted_zone()
            .name(format!("{}.", name.trim_end_matches('.')))
            .caller_reference(crate::unique_label("ref"))
            .send()
            .await
            .with_context(|| format!("create hosted zone {name}"))?;
        let id = out.hosted_zone().context("no hosted zone in the answer")?.id();
        Ok(id.rsplit('/').next().unwrap_or(id).to_owned())
    }
}

/// One unsigned IAM query-API call (authentication is still off); returns the XML answer.
fn iam(base: &str, params: &[(&str, &str)]) -> Result<String> {
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "-w", "\n%{http_code}", "-X", "POST", base])
        // moto routes a request to a service by the credential scope of its signature.
        .args([
            "-H",
            "Authorization: AWS4-HMAC-SHA256 Credential=AKIAMOTOSETUP/20240101/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=0",
        ])
        .args(["--data-urlencode", "Version=2010-05-08"]);
    for (k, v) in params {
        cmd.args(["--data-urlencode", &format!("{k}={v}")]);
    }
    let out = cmd.output()?;
    let text = String::from_utf8(out.stdout)?;
    let (body, code) = text.rsplit_once('\n').unwrap_or((&text, ""));
    if !out.status.success() || code != "200" {
        bail!("IAM {params:?}: HTTP {code}: {body}");
    }
    Ok(body.to_owned())
}

fn xml_field(xml: &str, field: &str) -> Result<String> {
    let open = format!("<{field}>");
    let start = xml.find(&open).with_context(|| format!("no {field} in {xml}"))? + open.len();
    let end = xml[start..].find("</").context("unterminated field")? + start;
    Ok(xml[start..end].to_owned())
}
