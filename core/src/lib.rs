//! `ftsim-core`: a pure-state model of the Linux ftrace protocol that lets a livepatch (an
//! IPMODIFY ftrace_ops) and a BPF trampoline (a DIRECT ftrace_ops) share one kernel function, with
//! every protocol version as a set of named switches (`../shared/SPEC.md`).
//!
//! The core is the model and nothing that drives it: the vocabulary (what a frame returns and
//! asks, the switches and presets), the kernel state, one resumable frame per kernel function, the
//! interpreter that runs a thread's frames to its next request, and the one walk over the state
//! (ARCHITECTURE.md, Layers 1-5). It does no I/O, reads no clock, owns no random generator and no
//! global state. Every kernel entry point stops where the kernel takes a lock, allocates or builds
//! an image, and a driver decides: the executors, checks and oracle of `ftsim-drive`, the
//! simulator, loom and the explorer.
//!
//! ```
//! use ftsim_core::{machine::Thread, protocol::Protocol, step::{Request, Status}, world::World};
//! use ftsim_core::Kernel;
//! // A livepatch's enable runs to the kernel's first request: `klp_mutex`; a driver answers it.
//! let mut k = Kernel::new(&World::new(1), Protocol::MERGED);
//! let mut th = Thread::default();
//! th.start(&mut k, 0, "klp-enable f0".parse().unwrap());
//! assert!(matches!(th.run(&mut k, 0), Status::Wants(Request::Lock(_))));
//! ```

pub mod copy;
pub mod direct;
pub mod errno;
pub mod fingerprint;
pub mod footprint;
pub mod frames;
pub mod ftrace;
pub mod hash;
pub mod ids;
pub mod kernel;
pub mod locks;
pub mod machine;
pub mod op;
pub mod owners;
pub mod property;
pub mod protocol;
pub mod slots;
pub mod step;
pub mod walk;
pub mod world;

pub use errno::Errno;
pub use kernel::Kernel;
pub use op::Op;
pub use property::{Property, Violation};
pub use protocol::Protocol;
pub use world::World;
