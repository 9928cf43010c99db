//! `ftsim-cli`: the `ftsim` command line (the binary, `src/bin/ftsim/`) and the findings report
//! it writes (`report`, the library, so that the report's tests can call it). The searches it
//! runs are `ftsim-sim`'s; this crate adds the command-line types (clap, indicatif), JSON
//! output and the pages.

pub mod report;
