//! Test support for nats (to be written).
