//! Pure types shared by every certpool crate.
//!
//! Nothing in here performs I/O: the workflow crate depends on it and must stay deterministic,
//! and the activity crate implements the plug-in traits declared here.

pub mod cert;
pub mod config;
pub mod contracts;
pub mod duration;
pub mod error;
pub mod events;
pub mod plugins;
pub mod pool;
pub mod scheme;
pub mod time;

pub use config::{Config, ConfigError};
pub use duration::Duration;
pub use error::{ErrorClass, Failure};
