//! `ftsim-sim`: the seeded discrete-event simulator and the searches over the model (sweep,
//! shrink, exhaustive exploration), the findings report, the fuzz harnesses and (feature
//! `linux`) the real-kernel side. The `ftsim` command line is the binary (`src/bin/ftsim/`,
//! feature `cli`, on by default); the library holds no command-line types.

pub mod explore;
pub mod harness;
#[cfg(feature = "linux")]
pub mod linux;
pub mod report;
pub mod shrink;
pub mod sim;
pub mod sweep;
pub mod trace;
