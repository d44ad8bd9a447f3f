//! Activity options in one place: timeouts and retry policies per kind of side effect.

use std::time::Duration;
use temporalio_common::RetryPolicy;
use temporalio_workflow::ActivityOptions;

/// Retries with backoff doubling from 500 ms to a 30 s cap. Non-retryable failures (permanent
/// ACME problems, refused DNS updates) stop at the first attempt whatever this says.
fn retry(max_attempts: u32) -> RetryPolicy {
    RetryPolicy::builder()
        .initial_interval(Duration::from_millis(500))
        .backoff_coefficient(2.0)
        .maximum_interval(Duration::from_secs(30))
        .maximum_attempts(max_attempts)
        .build()
}

/// No attempt limit, backoff from 1 s doubling to a minute: for steps that must eventually
/// happen (delivery to a target that is down, retiring a renewed certificate).
fn retry_until_done() -> RetryPolicy {
    RetryPolicy::builder()
        .initial_interval(Duration::from_secs(1))
        .backoff_coefficient(2.0)
        .maximum_interval(Duration::from_secs(60))
        .build()
}

/// Calls to the ACME CA. Each HTTP request has its own timeout inside the activity.
pub(crate) fn acme() -> ActivityOptions {
    ActivityOptions::with_start_to_close_timeout(Duration::from_secs(120))
        .retry_policy(retry(8))
        .build()
}

/// New-order attempts at a pool's own CA while a backup CA stands by (about 1.5 s of retries).
pub(crate) const CA_ATTEMPTS_WITH_BACKUP: u32 = 3;

/// The first order of a pool that has a backup CA: few retries, so that a CA that is down is
/// given up in seconds and the backup takes over.
pub(crate) fn acme_attempts(attempts: u32) -> ActivityOptions {
    ActivityOptions::with_start_to_close_timeout(Duration::from_secs(120))
        .retry_policy(retry(attempts))
        .build()
}

/// DNS updates.
pub(crate) fn dns() -> ActivityOptions {
    ActivityOptions::with_start_to_close_timeout(Duration::from_secs(60))
        .retry_policy(retry(8))
        .build()
}

/// Clean-up runs on failure paths too, so it retries longer: a leftover record is a leak.
pub(crate) fn dns_cleanup() -> ActivityOptions {
    ActivityOptions::with_start_to_close_timeout(Duration::from_secs(60))
        .retry_policy(retry(12))
        .build()
}

/// Propagation checks enforce their own timeout from config and heartbeat while they wait.
pub(crate) fn propagation() -> ActivityOptions {
    ActivityOptions::with_start_to_close_timeout(Duration::from_secs(900))
        .heartbeat_timeout(Duration::from_secs(30))
        .retry_policy(retry(3))
        .build()
}

/// Local work: key generation, inventory, config lookups.
pub(crate) fn local() -> ActivityOptions {
    ActivityOptions::with_start_to_close_timeout(Duration::from_secs(30))
        .retry_policy(retry(10))
        .build()
}

/// Key generation and recording the issued certificate, as local activities: each is a few
/// milliseconds of local work, and a regular activity would cost a workflow task round trip
/// through the server on top.
pub(crate) fn local_work() -> temporalio_workflow::LocalActivityOptions {
    temporalio_workflow::LocalActivityOptions::builder()
        .start_to_close_timeout(Duration::from_secs(30))
        .retry_policy(retry(10))
        .build()
}

/// The claim: one local transaction, retried briefly. Local so that a claim costs no extra
/// round trip through the server.
pub(crate) fn claim() -> temporalio_workflow::LocalActivityOptions {
    temporalio_workflow::LocalActivityOptions::builder()
        .start_to_close_timeout(Duration::from_secs(10))
        .retry_policy(retry(5))
        .build()
}

/// Starting and signalling other workflows through the client.
pub(crate) fn notify() -> temporalio_workflow::LocalActivityOptions {
    temporalio_workflow::LocalActivityOptions::builder()
        .start_to_close_timeout(Duration::from_secs(10))
        .retry_policy(retry(10))
        .build()
}

/// Delivery to a cluster target: retried until the target is back (no attempt limit), with
/// backoff capped at a minute.
pub(crate) fn deliver() -> ActivityOptions {
    ActivityOptions::with_start_to_close_timeout(Duration::from_secs(120))
        .retry_policy(retry_until_done())
        .build()
}

/// [`deliver`] as a local activity: the same timeout and unlimited retries; past the SDK's local
/// retry threshold the backoff becomes a workflow timer, so a target that stays down costs a
/// workflow task per attempt, as the regular activity did.
pub(crate) fn deliver_local() -> temporalio_workflow::LocalActivityOptions {
    temporalio_workflow::LocalActivityOptions::builder()
        .start_to_close_timeout(Duration::from_secs(120))
        .retry_policy(retry_until_done())
        .build()
}

/// Verification polls the endpoint inside the activity until its own timeout.
pub(crate) fn verify() -> ActivityOptions {
    ActivityOptions::with_start_to_close_timeout(Duration::from_secs(900))
        .heartbeat_timeout(Duration::from_secs(30))
        .retry_policy(retry_until_done())
        .build()
}

/// Steps that must eventually happen once a renewal has moved clusters (sync requests, retiring
/// the predecessor): retried without limit, backoff capped at a minute.
pub(crate) fn durable() -> ActivityOptions {
    ActivityOptions::with_start_to_close_timeout(Duration::from_secs(60))
        .retry_policy(retry_until_done())
        .build()
}

/// Scans: pages of the inventory and bulk starts.
pub(crate) fn scan() -> ActivityOptions {
    ActivityOptions::with_start_to_close_timeout(Duration::from_secs(300))
        .retry_policy(retry(5))
        .build()
}

/// Starting and signalling other workflows, as a regular activity (off the claim's critical path).
pub(crate) fn notify_activity() -> ActivityOptions {
    ActivityOptions::with_start_to_close_timeout(Duration::from_secs(30))
        .retry_policy(retry(20))
        .build()
}
