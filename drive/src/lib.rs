//! `ftsim-drive`: what drives and judges the `ftsim-core` model (ARCHITECTURE.md, Layers 6-8).
//! The property checks, what a call executes, the reference oracle, the one lock policy and the
//! one findings set (judging); the one executor step and its deciders, the sequential and the
//! concurrent executor (executors); the checked runs, the linearizer and reproducer files.
//!
//! Like the core, it does no I/O, reads no clock, owns no random generator and no global state:
//! a decider decides which thread steps and which allocation, build or trylock fails. Feature
//! `fuzz` adds the fuzz targets' inputs and run functions ([`fuzz`], with `arbitrary`), which read
//! their configuration from the environment once.
//!
//! ```
//! use ftsim_core::{op::Op, protocol::Protocol, world::World, property::Property};
//! use ftsim_drive::seq::Sequential;
//! // merged: a livepatch, then a BPF fentry program, then an fexit program on the same function.
//! let mut s = Sequential::new(&World::new(2), Protocol::MERGED);
//! for line in ["klp-enable f0", "bpf-link fentry f0", "bpf-link fexit f0"] {
//!     let out = s.apply(&line.parse::<Op>().unwrap());
//!     assert_eq!(out.result, Ok(()));
//!     if line == "bpf-link fexit f0" {
//!         // The rebuilt trampoline calls the original function: the livepatch is bypassed.
//!         assert!(out.violations.iter().any(|v| v.property == Property::IpmodifyHonoured));
//!     }
//! }
//! ```

pub mod check;
pub mod checked;
pub mod decide;
pub mod exec;
pub mod findings;
#[cfg(feature = "fuzz")]
pub mod fuzz;
pub mod linearize;
pub mod lockdep;
pub mod observe;
pub mod oracle;
pub mod sched;
pub mod script;
pub mod seq;
