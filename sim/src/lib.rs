//! `ftsim-sim`: the seeded discrete-event simulator and the `ftsim` command line.

pub mod harness;
