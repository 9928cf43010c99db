//! `ftsim-sim`: the seeded discrete-event simulator and the `ftsim` command line.

pub mod harness;
pub mod sim;
pub mod shrink;
pub mod trace;
pub mod sweep;
pub mod cli;
