//! Real kernels: run reproducer files on Linux under QEMU and compare, step by step, what the
//! model predicts with what the kernel did (`ftsim kernel`).
//!
//! The pieces, host side:
//! - [`map`]: the real owner behind every operation of the model, and the operations the real
//!   harness cannot perform (checked before anything boots, naming the line);
//! - [`plan`]: the guest plan (the command file `kernel/guest/ftsim-guest.c` performs);
//! - [`predict`]: the model's prediction, in the same terms as the guest's observation;
//! - [`observe`]: parsing what the guest printed;
//! - [`qemu`]: booting a kernel with a plan and collecting its answers;
//! - [`compare`]: prediction against observation, step by step;
//! - [`runner`]: many scripts per boot, a fresh boot after a dirty one;
//! - [`side`]: the side-by-side print of one file and the table of many;
//! - [`campaign`]: random sequential scripts and the agreement tally.
//!
//! The guest side lives in `kernel/` (pins, setup script, module and driver sources).

pub mod campaign;
pub mod compare;
pub mod map;
pub mod observe;
pub mod plan;
pub mod predict;
pub mod qemu;
pub mod runner;
pub mod side;

pub use map::{check_performable, RealKernel, FUNCTIONS};
pub use observe::{GuestBody, Observed, StepResult};
pub use predict::{predict, Prediction};
