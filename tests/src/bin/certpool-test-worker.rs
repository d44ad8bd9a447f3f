//! A certpool worker in a process of its own, for tests that kill one with SIGKILL to show
//! that another worker takes over. Cargo builds it for the integration tests of this package
//! (`CARGO_BIN_EXE_certpool-test-worker`), so no test depends on the `certpool` binary having
//! been built first. It runs the same code as `certpool worker`.
//!
//!     certpool-test-worker CONFIG

use anyhow::{Context, Result};
use std::path::PathBuf;

#[tokio::main]
async fn main() -> Result<()> {
    let path: PathBuf = std::env::args_os()
        .nth(1)
        .context("usage: certpool-test-worker CONFIG")?
        .into();
    let cfg = certpool::load_config(&path)?;
    certpool::worker::run(cfg, certpool::worker::WorkerSettings::default(), async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
}
