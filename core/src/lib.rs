//! `ftsim-core`: a pure-state model of the Linux ftrace protocol that lets a livepatch (an
//! IPMODIFY ftrace_ops) and a BPF trampoline (a DIRECT ftrace_ops) share one kernel function, with
//! every protocol version as a set of named switches (`../shared/SPEC.md`).
//!
//! The core does no I/O, reads no clock, owns no random generator and no global state. Every
//! kernel entry point is a resumable frame that stops where the kernel takes a lock, allocates or
//! builds an image, and a driver decides: the [`seq::Sequential`] driver here, the simulator,
//! loom and the explorer elsewhere.
//!
//! ```
//! use ftsim_core::{op::Op, protocol::Protocol, seq::Sequential, world::World, property::Property};
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
pub mod direct;
pub mod errno;
pub mod exec;
pub mod findings;
pub mod fingerprint;
pub mod footprint;
pub mod frames;
pub mod ftrace;
pub mod hash;
pub mod ids;
pub mod kernel;
pub mod linearize;
pub mod lockdep;
pub mod locks;
pub mod machine;
pub mod observe;
pub mod op;
pub mod oracle;
pub mod owners;
pub mod property;
pub mod protocol;
pub mod sched;
pub mod script;
pub mod seq;
pub mod step;
pub mod walk;
pub mod world;

pub use errno::Errno;
pub use kernel::Kernel;
pub use op::Op;
pub use property::{Property, Violation};
pub use protocol::Protocol;
pub use world::World;
