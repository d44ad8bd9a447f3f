//! The certpool binary's library half: config loading, Temporal wiring, the worker, and the
//! operations behind each CLI command, so that integration tests drive exactly what operators run.

pub mod client;
pub mod fill;
pub mod report;
pub mod schedules;
pub mod settings;
pub mod temporal;
pub mod worker;

pub use settings::load_config;
