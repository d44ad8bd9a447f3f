//! What the AWS plug-ins (`route53`, `aws-secrets-manager`) share: SDK configuration and the
//! sorting of SDK errors into certpool's error classes.
//!
//! The SDK's HTTPS client is built here with rustls on ring, the TLS stack every other client in
//! certpool uses, instead of the SDK default (rustls on aws-lc), so one crypto library is built.
//! Credentials come from config (`credentials = { … }`) or from the default AWS chain. The SDK's
//! `Credentials` redacts its secret in `Debug`, and the errors built here carry only the service's
//! error code and message, never a request, a header or a credential.

use crate::secret_source;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;
use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_runtime_api::http::Response;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use aws_smithy_types::timeout::TimeoutConfig;
use certpool_domain::config::AwsCredentialsConfig;
use certpool_domain::{ErrorClass, Failure};
use std::path::Path;
use std::time::Duration;
use zeroize::Zeroizing;

/// Where and as whom an AWS client talks, resolved from config (secrets already read).
pub(crate) struct AwsSettings {
    /// `None`: the default chain's region.
    pub(crate) region: Option<String>,
    pub(crate) endpoint: Option<String>,
    pub(crate) credentials: Option<Credentials>,
    pub(crate) timeout: Duration,
}

impl std::fmt::Debug for AwsSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsSettings")
            .field("region", &self.region)
            .field("endpoint", &self.endpoint)
            .field("static_credentials", &self.credentials.is_some())
            .finish_non_exhaustive()
    }
}

/// Reads the static credentials of a config section, if it has any. `key` names the section in
/// errors (`dns.r53.credentials`).
pub(crate) fn credentials(
    cfg: Option<&AwsCredentialsConfig>,
    base_dir: &Path,
    key: &str,
) -> Result<Option<Credentials>, Failure> {
    let Some(c) = cfg else { return Ok(None) };
    let id = secret_source::resolve(&c.access_key_id, base_dir, &format!("{key}.access_key_id"))?;
    let secret: Zeroizing<String> =
        secret_source::resolve(&c.secret_access_key, base_dir, &format!("{key}.secret_access_key"))?;
    let token = c
        .session_token
        .as_ref()
        .map(|t| secret_source::resolve(t, base_dir, &format!("{key}.session_token")))
        .transpose()?;
    Ok(Some(Credentials::new(
        id.as_str(),
        secret.as_str(),
        token.map(|t| t.as_str().to_owned()),
        None,
        "certpool-config",
    )))
}

/// Loads the SDK config: static credentials or the default chain, region, endpoint, timeouts.
/// Retries are left to the SDK's standard mode (3 attempts with backoff on throttling and 5xx),
/// and what still fails is classified for Temporal's retries on top.
pub(crate) async fn sdk_config(s: &AwsSettings) -> SdkConfig {
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https();
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .http_client(http)
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(s.timeout.min(Duration::from_secs(10)))
                .operation_attempt_timeout(s.timeout)
                .build(),
        );
    if let Some(r) = &s.region {
        loader = loader.region(Region::new(r.clone()));
    }
    if let Some(e) = &s.endpoint {
        loader = loader.endpoint_url(e.trim_end_matches('/'));
    }
    if let Some(c) = &s.credentials {
        loader = loader.credentials_provider(c.clone());
    }
    loader.load().await
}

/// An SDK error sorted into certpool's classes. `code` is the AWS error code (`AccessDenied`,
/// `Throttling`, `InvalidChangeBatch` …) when the service answered.
#[derive(Debug)]
pub(crate) struct AwsError {
    pub(crate) class: ErrorClass,
    pub(crate) code: Option<String>,
    pub(crate) message: String,
    /// Credentials are missing, unknown or do not sign correctly.
    pub(crate) credentials: bool,
    /// The caller lacks permission for the action.
    pub(crate) denied: bool,
}

/// Error codes that mean the credentials themselves are bad.
const CREDENTIAL_CODES: &[&str] = &[
    "InvalidClientTokenId",
    "UnrecognizedClientException",
    "SignatureDoesNotMatch",
    "IncompleteSignature",
    "InvalidSignatureException",
    "MissingAuthenticationToken",
    "ExpiredToken",
    "ExpiredTokenException",
    "InvalidAccessKeyId",
];

/// Error codes that mean "slow down".
const THROTTLING_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "PriorRequestNotComplete",
];

/// Sorts an SDK error. Service errors are classified by code and HTTP status; failures to reach
/// the service are transient, except a credential chain that found no credentials at all.
pub(crate) fn classify<E>(err: &SdkError<E, Response>) -> AwsError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match err {
        SdkError::ServiceError(se) => {
            let e = se.err();
            let status = se.raw().status().as_u16();
            // A server whose error document the SDK cannot read for this protocol (moto answers
            // IAM denials as `<ErrorResponse><Errors><Error>` XML to every service) still names
            // the code in the body.
            let body = se.raw().body().bytes().map(String::from_utf8_lossy).unwrap_or_default();
            let code = e.code().map(str::to_owned).or_else(|| xml_element(&body, "Code"));
            let text = e
                .message()
                .map(str::to_owned)
                .or_else(|| xml_element(&body, "Message"))
                .unwrap_or_default()
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ");
            let message = match &code {
                Some(c) => format!("{c} (HTTP {status}): {text}"),
                None => format!("HTTP {status}: {text}"),
            };
            let c = code.as_deref().unwrap_or("");
            let credentials = CREDENTIAL_CODES.contains(&c);
            let denied = c == "AccessDenied" || c == "AccessDeniedException";
            let class = if credentials || denied {
                ErrorClass::Permanent
            } else if THROTTLING_CODES.contains(&c) || status == 429 {
                ErrorClass::RetryAfter(Duration::from_secs(5))
            } else if status >= 500 {
                ErrorClass::Transient
            } else if status == 403 {
                // A 403 whose code the SDK could not read: the key was refused or the action is
                // not allowed; either way retrying cannot help.
                return AwsError {
                    class: ErrorClass::Permanent,
                    message: format!("{message}credentials refused or action not allowed"),
                    code,
                    credentials: true,
                    denied: true,
                };
            } else {
                ErrorClass::Permanent
            };
            AwsError {
                class,
                code,
                message,
                credentials,
                denied,
            }
        }
        SdkError::TimeoutError(_) => AwsError {
            class: ErrorClass::Transient,
            code: None,
            message: "no answer in time".into(),
            credentials: false,
            denied: false,
        },
        other => {
            let message = DisplayErrorContext(other).to_string();
            let lower = message.to_ascii_lowercase();
            // The default chain found nothing: a deployment problem that retrying cannot fix.
            let no_credentials = lower.contains("no credentials") || lower.contains("credentialsnotloaded");
            let construction = matches!(other, SdkError::ConstructionFailure(_));
            AwsError {
                class: if no_credentials || construction {
                    ErrorClass::Permanent
                } else {
                    ErrorClass::Transient
                },
                code: None,
                message,
                credentials: no_credentials,
                denied: false,
            }
        }
    }
}

/// The text of the first `<name>…</name>` in an XML document, if short and plain.
fn xml_element(body: &str, name: &str) -> Option<String> {
    let open = format!("<{name}>");
    let start = body.find(&open)? + open.len();
    let len = body[start..].find('<')?;
    let text = body[start..start + len].trim();
    (!text.is_empty() && text.len() <= 300).then(|| text.to_owned())
}

impl AwsError {
    /// The failure to report, with `kind` chosen by the caller for this error's situation.
    pub(crate) fn into_failure(self, kind: &str, context: &str) -> Failure {
        Failure {
            class: self.class,
            kind: kind.to_owned(),
            message: format!("{context}: {}", self.message),
        }
    }
}
