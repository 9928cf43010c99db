//! Target `parse`: arbitrary text into every parser (reproducer scripts and protocol files).

use super::{
    PARSE_REPLAY_FUNCTIONS_MAX, PARSE_REPLAY_OPS_MAX, PARSE_REPLAY_SCHEDULE_MAX, PARSE_TEXT_MAX,
};
use crate::script::Script;
use arbitrary::Arbitrary;
use ftsim_core::op::Op;
use ftsim_core::protocol::Protocol;
use ftsim_core::world::World;
use std::fmt;

/// Input of the `parse` target: text (the bytes up to the first invalid UTF-8 sequence), so
/// corpus files are plain reproducer and protocol files.
#[derive(Arbitrary, Clone, PartialEq, Eq)]
pub struct ParseInput(pub String);

impl fmt::Debug for ParseInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What the parsers made of a `parse` input.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Parsed {
    pub script: bool,
    pub protocol_file: bool,
    /// Lines that parsed as an operation, as a world line.
    pub op_lines: usize,
    pub world_lines: usize,
    /// The script was small enough to replay, and was replayed.
    pub replayed: bool,
}

/// Feeds the text to `Script::parse`, `Protocol::parse_file`, and each line to `Op::from_str`
/// and `World::from_str`. None of them may panic, and whatever parses must print back to text
/// that parses to the same value (panics otherwise: a parser bug). A small parsed script is also
/// replayed (findings are fine here; a panic is not).
pub fn run_parse(input: &ParseInput) -> Result<Parsed, &'static str> {
    let text = &input.0;
    if text.len() > PARSE_TEXT_MAX {
        return Err("more than PARSE_TEXT_MAX bytes");
    }
    let mut p = Parsed::default();
    if let Ok(s) = Script::parse(text) {
        p.script = true;
        let printed = s.to_string();
        let again = Script::parse(&printed).unwrap_or_else(|e| {
            panic!(
                "ftsim parse: a parsed script prints as text that does not parse ({e}):\n{printed}"
            )
        });
        assert_eq!(
            again, s,
            "ftsim parse: script round trip changed the script:\n{printed}"
        );
        if replayable(&s) {
            s.replay();
            p.replayed = true;
        }
    }
    if let Ok(proto) = Protocol::parse_file(text) {
        p.protocol_file = true;
        let printed = protocol_file_text(&proto);
        let again = Protocol::parse_file(&printed)
            .unwrap_or_else(|e| panic!("ftsim parse: protocol {proto} prints as a file that does not parse ({e}):\n{printed}"));
        assert_eq!(
            again, proto,
            "ftsim parse: protocol file round trip changed the protocol:\n{printed}"
        );
    }
    for line in text.lines() {
        if let Ok(op) = line.parse::<Op>() {
            p.op_lines += 1;
            let printed = op.to_string();
            assert_eq!(
                printed.parse::<Op>().as_ref(),
                Ok(&op),
                "ftsim parse: operation round trip of `{line}`"
            );
        }
        if let Ok(w) = line.parse::<World>() {
            p.world_lines += 1;
            let printed = w.to_string();
            assert_eq!(
                printed.parse::<World>().as_ref(),
                Ok(&w),
                "ftsim parse: world round trip of `{line}`"
            );
        }
    }
    Ok(p)
}

fn replayable(s: &Script) -> bool {
    s.world.functions <= PARSE_REPLAY_FUNCTIONS_MAX
        && s.lines.len() <= PARSE_REPLAY_OPS_MAX
        && s.schedule
            .as_ref()
            .is_none_or(|x| x.len() <= PARSE_REPLAY_SCHEDULE_MAX)
}

/// A protocol as a protocol file: its closest preset and the overrides.
pub fn protocol_file_text(p: &Protocol) -> String {
    let base = p
        .describe()
        .split('+')
        .next()
        .unwrap_or_default()
        .to_string();
    let mut text = format!("base = \"{base}\"\n");
    if let Some(b) = Protocol::preset(&base) {
        for (k, v) in p.diff(&b) {
            text.push_str(&format!("{k} = {v}\n"));
        }
    }
    text
}

/// The `parse` target: panics on a parser bug; `false` for a rejected input.
pub fn fuzz_parse(input: &ParseInput) -> bool {
    run_parse(input).is_ok()
}
