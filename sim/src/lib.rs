//! `ftsim-sim`: the seeded discrete-event simulator and the searches over the model (sweep,
//! shrink, exhaustive exploration), the fuzz harnesses and (feature `linux`, on by default) the
//! real-kernel side. The `ftsim` command line and the findings report are `ftsim-cli`
//! (`cli/`); this crate holds no command-line types.

pub mod explore;
pub mod harness;
#[cfg(feature = "linux")]
pub mod linux;
pub mod shrink;
pub mod sim;
pub mod sweep;
pub mod trace;
