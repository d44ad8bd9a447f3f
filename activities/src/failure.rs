//! The one place where certpool's error classes become Temporal retry semantics.

use certpool_domain::{ErrorClass, Failure};
use temporalio_common::error::ApplicationFailure;
use temporalio_sdk::activities::ActivityError;

/// Maps a classified failure onto an activity error: permanent failures are non-retryable,
/// rate limits carry their delay, and the failure kind becomes the Temporal failure type so it
/// shows in history and in the parent workflow.
pub fn to_activity_error(f: Failure) -> ActivityError {
    let builder = ApplicationFailure::builder(format!("{}: {}", f.kind, f.message)).type_name(f.kind);
    let failure = match f.class {
        ErrorClass::Transient => builder.build(),
        ErrorClass::Permanent => builder.non_retryable(true).build(),
        ErrorClass::RetryAfter(d) => builder.next_retry_delay(d).build(),
    };
    ActivityError::application(failure)
}

/// Shorthand for activities.
pub(crate) trait IntoActivity<T> {
    fn act(self) -> Result<T, ActivityError>;
}

impl<T> IntoActivity<T> for Result<T, Failure> {
    fn act(self) -> Result<T, ActivityError> {
        self.map_err(|f| {
            tracing::warn!(kind = %f.kind, class = ?f.class, "activity failed: {}", f.message);
            to_activity_error(f)
        })
    }
}
