//! Shared by the oracle state machine and the reproducer replay: one owner-level operation through
//! the core's sequential driver, judged by the core's own property checks and by the oracle.

// Each test binary that includes this module uses a different part of it.
#![allow(dead_code)]

use ftsim_core::findings::Findings;
use ftsim_core::observe;
use ftsim_core::op::Op;
use ftsim_core::oracle::Model;
use ftsim_core::property::Violation;
use ftsim_core::protocol::Protocol;
use ftsim_core::script::Script;
use ftsim_core::seq::{Faults, Sequential};
use ftsim_core::world::World;
use ftsim_core::Errno;

/// The core under the sequential driver (the system under test) and the oracle that follows it.
pub struct Checked {
    pub seq: Sequential,
    pub model: Model,
}

/// What one operation produced.
pub struct Stepped {
    pub result: Result<(), Errno>,
    /// Found by the core's checks (SPEC §3 over the state, atomicity footprint, locks).
    pub core: Vec<Violation>,
    /// Found by comparing with the oracle.
    pub oracle: Vec<Violation>,
    /// The core is stuck (lock recursion): nothing further can run.
    pub stuck: bool,
}

impl Stepped {
    pub fn all(&self) -> impl Iterator<Item = &Violation> {
        self.core.iter().chain(&self.oracle)
    }
}

impl Checked {
    pub fn new(world: &World, proto: Protocol) -> Checked {
        Checked {
            seq: Sequential::new(world, proto),
            model: Model::new(world, &proto),
        }
    }

    /// Runs `op` with `faults` on the core, then lets the oracle judge the outcome and the call of
    /// every function.
    pub fn step(&mut self, op: &Op, faults: Faults) -> Stepped {
        let out = self.seq.apply_with(op, faults);
        let calls = observe::calls(&self.seq.k);
        let oracle = self.model.step(op, &out, &calls);
        Stepped {
            result: out.result,
            core: out.violations,
            oracle,
            stuck: out.stuck,
        }
    }
}

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
