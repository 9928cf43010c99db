//! Shared by the oracle state machine and the reproducer replay: one owner-level operation through
//! the core's sequential driver, judged by the core's own property checks and by the oracle.

// Each test binary that includes this module uses a different part of it.
#![allow(dead_code)]

use ftsim_core::property::Violation;
use ftsim_drive::findings::Findings;
use ftsim_drive::script::Script;

/// The core under the sequential driver and the oracle that follows it: the core's checked
/// sequential run.
pub use ftsim_drive::checked::CheckedSeq as Checked;

/// Replays a sequential script through [`Checked`]: every finding of the core and of the oracle,
/// one per property and function, in order of appearance.
pub fn replay(script: &Script) -> Vec<Violation> {
    assert!(
        !script.is_concurrent(),
        "the oracle judges sequential scripts only"
    );
    let mut c = Checked::new(&script.world, script.proto);
    let mut found = Findings::new();
    for l in &script.lines {
        let s = c.step(&l.op, l.faults);
        found.extend(s.all().cloned());
        if s.stuck {
            break;
        }
    }
    found.into_vec()
}
