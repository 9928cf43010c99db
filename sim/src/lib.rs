//! `ftsim-sim`: the seeded discrete-event simulator and the `ftsim` command line.

pub mod cli;
pub mod explore;
pub mod harness;
pub mod linux;
pub mod report;
pub mod shrink;
pub mod sim;
pub mod sweep;
pub mod trace;
