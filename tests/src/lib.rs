//! Shared helpers for the integration tests.

pub mod cases;
pub mod conc;
pub mod observable;
