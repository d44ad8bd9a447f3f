//! Connecting to Temporal.

use anyhow::{Context, Result};
use certpool_domain::config::TemporalConfig;
use temporalio_client::{Client, ClientOptions, Connection, ConnectionOptions, Url};

/// Connects a client to the configured frontend and namespace.
pub async fn connect(cfg: &TemporalConfig, identity: &str) -> Result<Client> {
    let url = Url::parse(&cfg.address).with_context(|| format!("temporal.address {:?} is not a URL", cfg.address))?;
    let conn = Connection::connect(ConnectionOptions::new(url).identity(identity.to_owned()).build())
        .await
        .with_context(|| format!("cannot connect to Temporal at {}", cfg.address))?;
    Client::new(conn, ClientOptions::new(cfg.namespace.clone()).build()).context("cannot create Temporal client")
}
