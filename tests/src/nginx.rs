//! Test support for nginx (to be written).
