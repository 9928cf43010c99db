//! Owner-level operations with injected faults through the sequential driver; the properties
//! are checked after every operation. Pin the protocol with `FTSIM_PROTOCOL=NAME|FILE`.
//! The harness is `ftsim_drive::fuzz::run_ops`, also replayed on stable by tests/tests/corpus.rs.
#![no_main]

use ftsim_drive::fuzz::{fuzz_ops, OpsInput};
use libfuzzer_sys::{fuzz_target, Corpus};

fuzz_target!(|input: OpsInput| -> Corpus {
    if fuzz_ops(&input) {
        Corpus::Keep
    } else {
        Corpus::Reject
    }
});
