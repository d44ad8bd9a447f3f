//! What a caller should do about a failure. Every plug-in error maps onto one of these classes,
//! and the activity layer maps the classes onto Temporal retry semantics in one place.

use serde::{Deserialize, Serialize};

/// What the caller should do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ErrorClass {
    /// Try again with backoff: network errors, 5xx, `badNonce`, timeouts.
    Transient,
    /// Try again, but not before this delay: rate limits, `Retry-After`.
    RetryAfter(std::time::Duration),
    /// Trying again cannot help: bad input, CA rejected the identifier, wrong credentials.
    Permanent,
}

/// A classified failure with a stable machine-readable kind (`acme.rejectedIdentifier`,
/// `dns.refused`, …) that becomes the Temporal failure type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[error("{kind}: {message}")]
pub struct Failure {
    /// What to do about it.
    pub class: ErrorClass,
    /// Stable kind, dotted.
    pub kind: String,
    /// Human-readable message. Never contains key material.
    pub message: String,
}

impl Failure {
    /// A transient failure.
    pub fn transient(kind: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            class: ErrorClass::Transient,
            kind: kind.into(),
            message: message.into(),
        }
    }

    /// A permanent failure.
    pub fn permanent(kind: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            class: ErrorClass::Permanent,
            kind: kind.into(),
            message: message.into(),
        }
    }

    /// A failure to retry after a delay.
    pub fn retry_after(kind: impl Into<String>, message: impl Into<String>, after: std::time::Duration) -> Self {
        Self {
            class: ErrorClass::RetryAfter(after),
            kind: kind.into(),
            message: message.into(),
        }
    }
}

/// Classifies an ACME problem type URN (RFC 8555 §6.7) into what to do about it.
pub fn classify_acme_problem(problem_type: &str, status: Option<u16>) -> ErrorClass {
    let short = problem_type
        .strip_prefix("urn:ietf:params:acme:error:")
        .unwrap_or(problem_type);
    match short {
        "badNonce" | "serverInternal" | "connection" | "dns" | "incorrectResponse" => ErrorClass::Transient,
        "rateLimited" => ErrorClass::RetryAfter(std::time::Duration::from_secs(60)),
        "rejectedIdentifier"
        | "unauthorized"
        | "caa"
        | "badCSR"
        | "malformed"
        | "badSignatureAlgorithm"
        | "badPublicKey"
        | "badRevocationReason"
        | "invalidContact"
        | "unsupportedContact"
        | "unsupportedIdentifier"
        | "externalAccountRequired"
        | "accountDoesNotExist"
        | "userActionRequired"
        | "orderNotReady"
        | "compound" => ErrorClass::Permanent,
        _ => match status {
            Some(s) if s >= 500 => ErrorClass::Transient,
            Some(429) => ErrorClass::RetryAfter(std::time::Duration::from_secs(60)),
            Some(s) if (400..500).contains(&s) => ErrorClass::Permanent,
            _ => ErrorClass::Transient,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acme_problems_are_sorted() {
        let p = |t| classify_acme_problem(t, Some(400));
        assert_eq!(
            p("urn:ietf:params:acme:error:rejectedIdentifier"),
            ErrorClass::Permanent
        );
        assert_eq!(p("urn:ietf:params:acme:error:caa"), ErrorClass::Permanent);
        assert_eq!(p("urn:ietf:params:acme:error:badCSR"), ErrorClass::Permanent);
        assert_eq!(p("urn:ietf:params:acme:error:badNonce"), ErrorClass::Transient);
        assert!(matches!(
            p("urn:ietf:params:acme:error:rateLimited"),
            ErrorClass::RetryAfter(_)
        ));
        assert_eq!(classify_acme_problem("about:blank", Some(503)), ErrorClass::Transient);
        assert_eq!(classify_acme_problem("about:blank", Some(404)), ErrorClass::Permanent);
    }
}
