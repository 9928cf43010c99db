//! Arbitrary text into the reproducer, protocol-file, operation and world parsers: they must
//! never panic, and what parses must print back to the same value. The harness is
//! `ftsim_drive::fuzz::run_parse`.
#![no_main]

use ftsim_drive::fuzz::{fuzz_parse, ParseInput};
use libfuzzer_sys::{fuzz_target, Corpus};

fuzz_target!(|input: ParseInput| -> Corpus {
    if fuzz_parse(&input) {
        Corpus::Keep
    } else {
        Corpus::Reject
    }
});
