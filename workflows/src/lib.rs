//! certpool's Temporal workflows.
//!
//! Deterministic code only: no clock, randomness, I/O or tokio here. Time comes from
//! `ctx.workflow_time()`, ids from `ctx.uuid4()`, and every side effect is an activity declared in
//! [`certpool_domain::contracts`]. Workflow, signal and query names are pinned there too, so that
//! renaming a Rust type never breaks running histories.

// The workflow macros emit marker structs without `Debug`.
#![allow(missing_debug_implementations)]

mod assign;
mod claims;
mod failure;
mod issue;
mod options;
mod renewal;
mod replenish;
mod scan;
mod sync;

pub use assign::AssignCertificate;
pub use claims::PoolClaims;
pub use failure::{FailureSummary, summarize_activity, summarize_child};
pub use issue::IssueCertificate;
pub use renewal::CertificateRenewal;
pub use replenish::PoolReplenish;
pub use scan::ExpiryScan;
pub use sync::ClusterSync;
