//! `certpool-bench`: certpool side by side with lego, certbot and a bare ACME floor, plus claim
//! latency, the expiry scan at scale and Temporal's cost per certificate. `bench/run.sh` drives
//! it end to end; each subcommand measures one thing and writes JSON, `report` turns the JSON
//! into the results file. Prints measured numbers; asserts nothing.

mod claims;
mod fill;
mod floor;
mod history;
mod procs;
mod report;
mod scan;
mod stats;
mod tctl;

use anyhow::Result;
use clap::Parser;

#[derive(Debug, Parser)]
#[command(name = "certpool-bench", about = "certpool benchmarks; each prints measured numbers")]
enum Cli {
    /// Claim latency through certpool::client, one claim at a time.
    Claims(claims::Args),
    /// The floor: a direct instant-acme loop, no orchestration.
    Floor(floor::Args),
    /// certpool fills a pool through a running worker.
    CertpoolFill(fill::Args),
    /// On-demand issuances through certpool, one after the other.
    OnDemand(fill::OnDemandArgs),
    /// An external ACME client, one process per certificate.
    Procs(procs::Args),
    /// History events, payload bytes and activity timings from the real histories.
    History(history::Args),
    /// Seeds (or finds cached) a synthetic inventory.
    ScanSeed(scan::SeedArgs),
    /// Measures the expiry scan and the renewal starts over a seeded inventory.
    Scan(scan::MeasureArgs),
    /// Writes the results markdown and chart from the JSON of a run.
    Report(report::Args),
}

#[tokio::main]
async fn main() -> Result<()> {
    match Cli::parse() {
        Cli::Claims(a) => claims::run(a).await,
        Cli::Floor(a) => floor::run(a).await,
        Cli::CertpoolFill(a) => fill::run(a).await,
        Cli::OnDemand(a) => fill::on_demand(a).await,
        Cli::Procs(a) => procs::run(a).await,
        Cli::History(a) => history::run(a).await,
        Cli::ScanSeed(a) => scan::seed(&a).await,
        Cli::Scan(a) => scan::measure(a).await,
        Cli::Report(a) => report::run(a),
    }
}
