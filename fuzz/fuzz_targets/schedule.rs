//! Threads of operations on the concurrent executor; the fuzzer's bytes choose which thread
//! steps at each point and which allocations, builds and trylocks fail. Pin the protocol with
//! `FTSIM_PROTOCOL=NAME|FILE`. The harness is `ftsim_drive::fuzz::run_schedule`.
#![no_main]

use ftsim_drive::fuzz::{fuzz_schedule, ScheduleInput};
use libfuzzer_sys::{fuzz_target, Corpus};

fuzz_target!(|input: ScheduleInput| -> Corpus {
    if fuzz_schedule(&input) {
        Corpus::Keep
    } else {
        Corpus::Reject
    }
});
