//! Reading failures that come back from activities and child workflows.

use temporalio_common::error::{ActivityExecutionError, ChildWorkflowExecutionError, IncomingError};
use temporalio_common::protos::temporal::api::failure::v1::failure::FailureInfo;

/// The innermost application failure of an activity or child workflow: its type, message and
/// whether retrying could help.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailureSummary {
    /// Failure type (`acme.rejectedIdentifier`, `dns.refused`, …) or a Temporal category.
    pub kind: String,
    /// Message.
    pub message: String,
    /// True when the cause was marked non-retryable: the same request will fail again.
    pub permanent: bool,
}

impl std::fmt::Display for FailureSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.kind, self.message)
    }
}

fn from_incoming(mut err: &IncomingError) -> FailureSummary {
    loop {
        let next = match err {
            IncomingError::Application(app) => {
                return FailureSummary {
                    kind: app.type_name().unwrap_or("application").to_owned(),
                    message: app
                        .failure()
                        .map_or_else(|| app.source_error().to_string(), |f| f.message.clone()),
                    permanent: app.is_non_retryable(),
                };
            }
            IncomingError::Activity(a) => a.cause(),
            IncomingError::ChildWorkflowExecution(c) => c.cause(),
            IncomingError::Timeout(t) => {
                return FailureSummary {
                    kind: "timeout".into(),
                    message: format!("{:?} timeout", t.timeout_type()),
                    permanent: false,
                };
            }
            other => {
                return FailureSummary {
                    kind: "temporal".into(),
                    message: other.failure().message.clone(),
                    permanent: false,
                };
            }
        };
        match next {
            Some(n) => err = n,
            None => {
                return FailureSummary {
                    kind: "temporal".into(),
                    message: err.failure().message.clone(),
                    permanent: false,
                };
            }
        }
    }
}

/// Summarizes an activity failure.
pub fn summarize_activity(err: &ActivityExecutionError) -> FailureSummary {
    // A local activity's failure is the application failure itself, with no cause under it.
    let local = err.failure().and_then(|f| match &f.failure_info {
        Some(FailureInfo::ApplicationFailureInfo(a)) if !a.r#type.is_empty() => Some(FailureSummary {
            kind: a.r#type.clone(),
            message: f.message.clone(),
            permanent: a.non_retryable,
        }),
        _ => None,
    });
    match (err.cause(), local) {
        (Some(c), _) => from_incoming(c),
        (None, Some(summary)) => summary,
        (None, None) => FailureSummary {
            kind: "activity".into(),
            message: err.to_string(),
            permanent: matches!(err, ActivityExecutionError::Serialization(_)),
        },
    }
}

/// Summarizes a child workflow failure.
pub fn summarize_child(err: &ChildWorkflowExecutionError) -> FailureSummary {
    match err.cause() {
        Some(c) => from_incoming(c),
        None => FailureSummary {
            kind: "child_workflow".into(),
            message: err.to_string(),
            permanent: matches!(err, ChildWorkflowExecutionError::Serialization(_)),
        },
    }
}
