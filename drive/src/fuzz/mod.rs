//! The fuzz harness (feature `fuzz`): input types and run functions shared by the cargo-fuzz
//! targets (`fuzz/fuzz_targets/{ops,schedule,parse}.rs`) and the stable corpus replay
//! (`tests/tests/corpus.rs`), so libFuzzer and `cargo test` run exactly the same code. The runs
//! are the checked runs: `ops` steps [`CheckedSeq`], `schedule` replays its script as
//! `ftsim replay` does ([`Script::replay`], through `CheckedRun`).
//!
//! Every input derives [`Arbitrary`] and decodes into a reproducer [`Script`]: the bytes choose a
//! preset, a small world, owner-level operations with injected faults and (for `schedule`) the
//! interleaving. Oversized inputs are rejected ([`HarnessVerdict::Rejected`]), never truncated, so the
//! reproducer of an input is always all of it. An input's `Debug` prints that reproducer, ready
//! to save as a file for `ftsim replay FILE`; for an input with findings it carries their
//! `expect` line (and, for `ops`, stops at the operation that found them).
//!
//! The run functions never panic on a finding: they return it in [`HarnessOutcome::findings`]. The
//! `fuzz_*` functions are what the targets call: they turn a finding into a panic whose message
//! names the property ids and prints the reproducer.
//!
//! Environment (read once by [`HarnessConfig::from_env`], the targets' configuration; the one
//! place where this crate reads the environment or a file, or keeps a global: the targets have
//! no other way to be configured, and the feature is off unless a fuzz build asks for it):
//! - `FTSIM_PROTOCOL=NAME|FILE`: pin every input to a preset or a protocol file
//!   (`base = "merged"` plus overrides) instead of the preset the bytes choose.
//! - `FTSIM_IGNORE=id,id|all`: property ids that are not findings (e.g. `share-leak`, or a
//!   known finding of the pinned preset, to search past it; `all`: look for panics only).
//! - `FTSIM_ONLY=id,id`: only these properties are findings (e.g. to keep `cargo fuzz tmin` on
//!   the property it is minimizing).
//! - `FTSIM_FAULTS=off`: no injected faults (allocation, image build, trylock failures).
//! - `FTSIM_ORACLE=off`: `ops` checks only the core's own properties, without the oracle.
//!
//! ```
//! use ftsim_drive::fuzz::{self, HarnessConfig, OpsInput, HarnessVerdict};
//! // The bytes of a corpus file or of a libFuzzer input decode the same way.
//! let input: OpsInput = fuzz::decode(&[2, 0, 0, 0]).unwrap();
//! match fuzz::run_ops(&input, &HarnessConfig::default()) {
//!     HarnessVerdict::Ran(out) => assert!(out.script.to_string().contains("protocol")),
//!     HarnessVerdict::Rejected(why) => panic!("{why}"),
//! }
//! ```

pub use arbitrary;

use crate::checked::CheckedSeq;
use crate::findings::Findings;
use crate::script::{Line, Script};
use crate::seq::Faults;
use arbitrary::{Arbitrary, Unstructured};
use ftsim_core::ids::{FnId, ModId, ProgKind, TracerId};
use ftsim_core::op::{HashSel, Op};
use ftsim_core::property::{Property, Violation};
use ftsim_core::protocol::{Protocol, PRESETS};
use ftsim_core::world::World;
use std::fmt;
use std::sync::OnceLock;

/// Most operations of an `ops` input.
pub const OPS_MAX: usize = 16;
/// Most functions of a fuzzed world (`f0`..`f3`).
pub const WORLD_FUNCTIONS_MAX: u8 = 4;
/// Most tracers of a fuzzed world.
pub const WORLD_TRACERS_MAX: u8 = 2;
/// Most entries of a tracer's filter or notrace set in one `tracer-register`.
pub const SET_MAX: usize = 4;
/// Most threads of a `schedule` input.
pub const SCHED_THREADS_MAX: u8 = 3;
/// Most operations of a `schedule` input, over all threads.
pub const SCHED_OPS_MAX: usize = 8;
/// Most scheduling decisions of a `schedule` input (later steps take the lowest runnable thread).
pub const SCHED_DECISIONS_MAX: usize = 512;
/// Most bytes of a `parse` input.
pub const PARSE_TEXT_MAX: usize = 4096;
/// A parsed script is also replayed when its world and operations are at most this large.
pub const PARSE_REPLAY_FUNCTIONS_MAX: u16 = 8;
pub const PARSE_REPLAY_OPS_MAX: usize = 16;
pub const PARSE_REPLAY_SCHEDULE_MAX: usize = 512;

/// Decodes fuzzer bytes as libfuzzer-sys does for a typed `fuzz_target!` (which rejects input
/// shorter than the type's minimal size, then takes the rest).
pub fn decode<'a, T: Arbitrary<'a>>(bytes: &'a [u8]) -> arbitrary::Result<T> {
    if bytes.len() < T::size_hint(0).0 {
        return Err(arbitrary::Error::NotEnoughData);
    }
    T::arbitrary_take_rest(Unstructured::new(bytes))
}

// ---------------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------------

/// What the environment pins: the protocol, what counts as a finding, faults and oracle.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HarnessConfig {
    /// Overrides the preset the input chooses.
    pub protocol: Option<Protocol>,
    /// Violations of these properties are not findings.
    pub ignore: Vec<Property>,
    /// If not empty, only violations of these properties are findings.
    pub only: Vec<Property>,
    /// Drop the faults the input asks for: no allocation, build or trylock fails.
    pub no_faults: bool,
    /// Do not compare with the oracle (`ops`): only the core's own property checks.
    pub no_oracle: bool,
}

impl HarnessConfig {
    /// Reads `FTSIM_PROTOCOL`, `FTSIM_IGNORE`, `FTSIM_ONLY`, `FTSIM_FAULTS`, `FTSIM_ORACLE`.
    pub fn from_env() -> Result<HarnessConfig, String> {
        let protocol = match std::env::var("FTSIM_PROTOCOL") {
            Ok(v) if !v.trim().is_empty() => Some(resolve_protocol(v.trim())?),
            _ => None,
        };
        Ok(HarnessConfig {
            protocol,
            ignore: properties("FTSIM_IGNORE")?,
            only: properties("FTSIM_ONLY")?,
            no_faults: off("FTSIM_FAULTS")?,
            no_oracle: off("FTSIM_ORACLE")?,
        })
    }

    /// [`HarnessConfig::from_env`] once per process, announced on stderr; a bad value ends the process
    /// with exit code 2 (usage error), since a panic would look like a finding to libFuzzer.
    pub fn global() -> &'static HarnessConfig {
        static CONFIG: OnceLock<HarnessConfig> = OnceLock::new();
        CONFIG.get_or_init(|| match HarnessConfig::from_env() {
            Ok(c) => {
                c.announce();
                c
            }
            Err(e) => {
                eprintln!("ftsim harness: {e}");
                std::process::exit(2);
            }
        })
    }

    fn announce(&self) {
        let ids = |ps: &[Property]| ps.iter().map(|p| p.id()).collect::<Vec<_>>().join(",");
        if let Some(p) = self.protocol {
            eprintln!("ftsim harness: protocol pinned to {p} (FTSIM_PROTOCOL)");
        }
        if !self.ignore.is_empty() {
            eprintln!(
                "ftsim harness: not findings: {} (FTSIM_IGNORE)",
                ids(&self.ignore)
            );
        }
        if !self.only.is_empty() {
            eprintln!(
                "ftsim harness: only findings: {} (FTSIM_ONLY)",
                ids(&self.only)
            );
        }
        if self.no_faults {
            eprintln!("ftsim harness: no injected faults (FTSIM_FAULTS=off)");
        }
        if self.no_oracle {
            eprintln!("ftsim harness: no oracle comparison (FTSIM_ORACLE=off)");
        }
    }

    fn protocol_or(&self, choice: u8) -> Protocol {
        self.protocol.unwrap_or_else(|| preset_choice(choice))
    }

    fn keeps(&self, v: &Violation) -> bool {
        !self.ignore.contains(&v.property)
            && (self.only.is_empty() || self.only.contains(&v.property))
    }
}

/// A comma-separated list of property ids, or `all`.
fn properties(var: &str) -> Result<Vec<Property>, String> {
    let Ok(v) = std::env::var(var) else {
        return Ok(Vec::new());
    };
    if v.trim() == "all" {
        return Ok(Property::ALL.to_vec());
    }
    v.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<Property>().map_err(|e| format!("{var}: {e}")))
        .collect()
}

/// Whether an on/off variable is off (unset means on).
fn off(var: &str) -> Result<bool, String> {
    match std::env::var(var).as_deref() {
        Err(_) | Ok("" | "1" | "on") => Ok(false),
        Ok("0" | "off") => Ok(true),
        Ok(v) => Err(format!("{var}={v}: expected on or off")),
    }
}

/// A preset name, else a protocol file path.
pub fn resolve_protocol(name: &str) -> Result<Protocol, String> {
    if let Some(p) = Protocol::preset(name) {
        return Ok(p);
    }
    match std::fs::read_to_string(name) {
        Ok(text) => Protocol::parse_file(&text).map_err(|e| format!("FTSIM_PROTOCOL={name}: {e}")),
        Err(_) => {
            let names: Vec<&str> = PRESETS.iter().map(|(n, _)| *n).collect();
            Err(format!(
                "FTSIM_PROTOCOL={name}: neither a preset ({}) nor a readable protocol file",
                names.join(", ")
            ))
        }
    }
}

/// The preset an input byte chooses (wrapping, so adding a preset moves only the high bytes).
fn preset_choice(choice: u8) -> Protocol {
    let (name, _) = PRESETS[choice as usize % PRESETS.len()];
    Protocol::preset(name)
        .expect("[sim internal bug] PRESETS lists a name Protocol::preset does not know")
}

// ---------------------------------------------------------------------------------------------
// Input pieces shared by `ops` and `schedule`
// ---------------------------------------------------------------------------------------------

/// A small world: 1..=4 functions, 1..=2 tracers, up to two modules.
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq)]
pub struct WorldInput {
    pub functions: u8,
    pub tracers: u8,
    /// Two bits per function: 1 puts it in the first module, 2 in the second, else built in.
    pub modules: u8,
}

impl WorldInput {
    pub fn world(&self) -> World {
        let functions = 1 + self.functions % WORLD_FUNCTIONS_MAX;
        let tracers = 1 + self.tracers % WORLD_TRACERS_MAX;
        let mut w = World {
            functions: functions as u16,
            tracers,
            modules: Vec::new(),
        };
        for m in 1..=2u8 {
            let fns: Vec<FnId> = (0..functions)
                .filter(|&f| (self.modules >> (2 * f)) & 3 == m)
                .map(|f| FnId(f as u16))
                .collect();
            if !fns.is_empty() {
                w.modules.push(fns);
            }
        }
        w
    }
}

/// A BPF program kind.
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq)]
pub enum KindInput {
    Fentry,
    Fexit,
    FmodRet,
}

impl From<KindInput> for ProgKind {
    fn from(k: KindInput) -> ProgKind {
        match k {
            KindInput::Fentry => ProgKind::Fentry,
            KindInput::Fexit => ProgKind::Fexit,
            KindInput::FmodRet => ProgKind::FmodRet,
        }
    }
}

/// One owner-level operation (SPEC §7); numbers wrap into the world's ranges.
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub enum OpInput {
    KlpEnable(u8),
    KlpDisable(u8),
    BpfLink(KindInput, u8),
    BpfUnlink(KindInput, u8),
    KprobeArm(u8),
    KprobeDisarm(u8),
    TracerRegister {
        tracer: u8,
        filter: Vec<u8>,
        notrace: Vec<u8>,
    },
    TracerSet {
        tracer: u8,
        notrace: bool,
        add: bool,
        func: u8,
    },
    TracerUnregister(u8),
    DirectRegister(u8),
    DirectModify(u8),
    DirectUnregister(u8),
    ModuleLoad(u8),
    ModuleUnload(u8),
}

impl OpInput {
    /// The operation in `w`; `None` for a module operation in a world without modules.
    /// `Err` for an oversized tracer set.
    fn op(&self, w: &World) -> Result<Option<Op>, &'static str> {
        let f = |x: u8| FnId(x as u16 % w.functions);
        let t = |x: u8| TracerId(x % w.tracers);
        let set = |xs: &[u8]| -> Result<Vec<FnId>, &'static str> {
            if xs.len() > SET_MAX {
                return Err("tracer set larger than SET_MAX");
            }
            Ok(xs.iter().map(|&x| f(x)).collect())
        };
        let m = |x: u8| (!w.modules.is_empty()).then(|| ModId(x % w.modules.len() as u8));
        Ok(Some(match *self {
            OpInput::KlpEnable(x) => Op::KlpEnable(f(x)),
            OpInput::KlpDisable(x) => Op::KlpDisable(f(x)),
            OpInput::BpfLink(k, x) => Op::BpfLink(k.into(), f(x)),
            OpInput::BpfUnlink(k, x) => Op::BpfUnlink(k.into(), f(x)),
            OpInput::KprobeArm(x) => Op::KprobeArm(f(x)),
            OpInput::KprobeDisarm(x) => Op::KprobeDisarm(f(x)),
            OpInput::TracerRegister {
                tracer,
                ref filter,
                ref notrace,
            } => Op::TracerRegister {
                tracer: t(tracer),
                filter: set(filter)?,
                notrace: set(notrace)?,
            },
            OpInput::TracerSet {
                tracer,
                notrace,
                add,
                func,
            } => Op::TracerSet {
                tracer: t(tracer),
                which: if notrace {
                    HashSel::Notrace
                } else {
                    HashSel::Filter
                },
                add,
                func: f(func),
            },
            OpInput::TracerUnregister(x) => Op::TracerUnregister(t(x)),
            OpInput::DirectRegister(x) => Op::DirectRegister(f(x)),
            OpInput::DirectModify(x) => Op::DirectModify(f(x)),
            OpInput::DirectUnregister(x) => Op::DirectUnregister(f(x)),
            OpInput::ModuleLoad(x) => match m(x) {
                Some(m) => Op::ModuleLoad(m),
                None => return Ok(None),
            },
            OpInput::ModuleUnload(x) => match m(x) {
                Some(m) => Op::ModuleUnload(m),
                None => return Ok(None),
            },
        }))
    }
}

/// Which of an operation's first eight allocations, image builds and trylocks fail.
#[derive(Arbitrary, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FaultInput {
    pub allocs: u8,
    pub builds: u8,
    pub trylocks: u8,
}

impl From<FaultInput> for Faults {
    fn from(f: FaultInput) -> Faults {
        Faults {
            allocs: f.allocs as u32,
            builds: f.builds as u32,
            trylocks: f.trylocks as u32,
        }
    }
}

/// An operation and its injected faults (most operations have none).
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub struct LineInput {
    pub op: OpInput,
    pub faults: Option<FaultInput>,
}

impl LineInput {
    fn line(&self, w: &World, tid: u8, cfg: &HarnessConfig) -> Result<Option<Line>, &'static str> {
        let faults = match self.faults {
            Some(f) if !cfg.no_faults => f.into(),
            _ => Faults::NONE,
        };
        Ok(self.op.op(w)?.map(|op| Line { tid, op, faults }))
    }
}

// ---------------------------------------------------------------------------------------------
// Results
// ---------------------------------------------------------------------------------------------

/// What running an input produced.
#[derive(Clone, Debug)]
pub struct HarnessOutcome {
    /// The reproducer: the decoded script, with an `expect` line naming the findings and, for
    /// concurrent runs, the schedule actually taken. Replays to the same findings.
    pub script: Script,
    /// Findings, deduplicated by (property, function), minus the ignored properties.
    pub findings: Findings,
}

impl HarnessOutcome {
    fn new(mut script: Script, findings: Findings) -> HarnessOutcome {
        script.expect = expect_of(&findings);
        HarnessOutcome { script, findings }
    }

    /// The property ids found, sorted, without repeats.
    pub fn properties(&self) -> Vec<Property> {
        expect_of(&self.findings)
    }
}

/// What a harness function did with an input.
#[derive(Clone, Debug)]
pub enum HarnessVerdict {
    /// Oversized or undecodable; libFuzzer should not keep it.
    Rejected(&'static str),
    Ran(HarnessOutcome),
}

impl HarnessVerdict {
    pub fn outcome(&self) -> Option<&HarnessOutcome> {
        match self {
            HarnessVerdict::Ran(o) => Some(o),
            HarnessVerdict::Rejected(_) => None,
        }
    }
}

fn expect_of(findings: &[Violation]) -> Vec<Property> {
    let mut e: Vec<Property> = findings.iter().map(|v| v.property).collect();
    e.sort();
    e.dedup();
    e
}

fn record(findings: &mut Findings, cfg: &HarnessConfig, v: Violation) {
    if cfg.keeps(&v) {
        findings.insert(v);
    }
}

/// Panics with the property ids, the findings and the reproducer, if there are findings.
/// Returns whether libFuzzer should keep the input (`false`: rejected).
pub fn fail_on_findings(target: &str, verdict: &HarnessVerdict) -> bool {
    let HarnessVerdict::Ran(out) = verdict else {
        return false;
    };
    if out.findings.is_empty() {
        return true;
    }
    let ids: Vec<&str> = out.properties().iter().map(|p| p.id()).collect();
    let lines: Vec<String> = out.findings.iter().map(|v| format!("  {v}")).collect();
    panic!(
        "ftsim {target}: found {}\n{}\n--- reproducer: save as FILE, run `ftsim replay FILE` ---\n{}--- end of reproducer ---",
        ids.join(" "),
        lines.join("\n"),
        out.script
    );
}

// ---------------------------------------------------------------------------------------------
// Target `ops`: a sequence of operations through the sequential driver
// ---------------------------------------------------------------------------------------------

/// Input of the `ops` target: a preset, a small world, at most [`OPS_MAX`] operations.
#[derive(Arbitrary, Clone, PartialEq, Eq)]
pub struct OpsInput {
    pub protocol: u8,
    pub world: WorldInput,
    pub ops: Vec<LineInput>,
}

impl OpsInput {
    /// The reproducer script of this input (every operation, no `expect`).
    pub fn script(&self, cfg: &HarnessConfig) -> Result<Script, &'static str> {
        if self.ops.len() > OPS_MAX {
            return Err("more than OPS_MAX operations");
        }
        let world = self.world.world();
        let mut lines = Vec::with_capacity(self.ops.len());
        for l in &self.ops {
            lines.extend(l.line(&world, 0, cfg)?);
        }
        Ok(Script {
            proto: cfg.protocol_or(self.protocol),
            world,
            expect: Vec::new(),
            lines,
            schedule: None,
        })
    }
}

impl fmt::Debug for OpsInput {
    /// The reproducer, as `run_ops` leaves it: cut after the first operation with a finding.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match run_ops(self, HarnessConfig::global()) {
            HarnessVerdict::Ran(out) => write!(f, "{}", out.script),
            HarnessVerdict::Rejected(why) => write!(f, "# rejected input: {why}"),
        }
    }
}

/// Runs an `ops` input through the checked sequential run ([`CheckedSeq`]: the property check
/// and the failure footprint after every operation, and the oracle unless `FTSIM_ORACLE=off`);
/// stops at the first operation with a finding and cuts the reproducer there. The findings are
/// those of `ftsim replay` on the reproducer (the corpus test checks they agree).
pub fn run_ops(input: &OpsInput, cfg: &HarnessConfig) -> HarnessVerdict {
    let mut script = match input.script(cfg) {
        Ok(s) => s,
        Err(why) => return HarnessVerdict::Rejected(why),
    };
    // One checked run per thread, started over for each input: its snapshot's buffers are
    // kept from one input to the next, so that a run allocates none of them once warm.
    CHECKED.with_borrow_mut(|slot| {
        let c = match slot {
            Some(c) => {
                c.restart(&script.world, script.proto, !cfg.no_oracle);
                c
            }
            None => {
                let c = slot.insert(CheckedSeq::new(&script.world, script.proto));
                c.consult_oracle = !cfg.no_oracle;
                c
            }
        };
        let mut findings = Findings::new();
        for i in 0..script.lines.len() {
            let Line { op, faults, .. } = &script.lines[i];
            let out = c.step_keeping(op, *faults, &|v| cfg.keeps(v));
            for v in out.core.into_iter().chain(out.oracle) {
                findings.insert(v);
            }
            if out.stuck || !findings.is_empty() {
                script.lines.truncate(i + 1);
                break;
            }
        }
        HarnessVerdict::Ran(HarnessOutcome::new(script, findings))
    })
}

thread_local! {
    /// [`run_ops`]'s checked run between inputs (started over before it is read).
    static CHECKED: std::cell::RefCell<Option<CheckedSeq>> =
        const { std::cell::RefCell::new(None) };
}

/// The reference for [`run_ops`] and [`run_schedule`], the slow and plain way: `Script::replay`
/// (what `ftsim replay` runs): a sequential script through `Sequential::apply_with` with the
/// oracle judging every operation, a concurrent one on the concurrent executor (the oracle
/// judging until two operations overlap). Findings deduplicated by (property, function).
pub fn replay_reference(script: &Script) -> Vec<Violation> {
    script.replay().findings.into_vec()
}

/// The `ops` target: panics on a finding; `false` for a rejected input.
pub fn fuzz_ops(input: &OpsInput) -> bool {
    fail_on_findings("ops", &run_ops(input, HarnessConfig::global()))
}

// ---------------------------------------------------------------------------------------------
// Target `schedule`: threads of operations, fuzzer bytes as the interleaving
// ---------------------------------------------------------------------------------------------

/// One operation of a thread.
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub struct ThreadLine {
    /// Wraps into 0..[`SCHED_THREADS_MAX`].
    pub thread: u8,
    pub line: LineInput,
}

/// Input of the `schedule` target: a preset, a small world, at most [`SCHED_OPS_MAX`]
/// operations on up to [`SCHED_THREADS_MAX`] threads, and the scheduling decisions: at each
/// point, decision `d` asks for thread `d % threads` (a thread that cannot step then is skipped
/// and the lowest runnable thread steps, as `ftsim replay` does).
#[derive(Arbitrary, Clone, PartialEq, Eq)]
pub struct ScheduleInput {
    pub protocol: u8,
    pub world: WorldInput,
    pub lines: Vec<ThreadLine>,
    pub decisions: Vec<u8>,
}

impl ScheduleInput {
    /// The concurrent reproducer script of this input, with the schedule as requested.
    pub fn script(&self, cfg: &HarnessConfig) -> Result<Script, &'static str> {
        if self.lines.len() > SCHED_OPS_MAX {
            return Err("more than SCHED_OPS_MAX operations");
        }
        if self.decisions.len() > SCHED_DECISIONS_MAX {
            return Err("more than SCHED_DECISIONS_MAX decisions");
        }
        let world = self.world.world();
        let mut lines = Vec::with_capacity(self.lines.len());
        for l in &self.lines {
            lines.extend(l.line.line(&world, l.thread % SCHED_THREADS_MAX, cfg)?);
        }
        let threads = lines.iter().map(|l| l.tid + 1).max().unwrap_or(1);
        let schedule = self.decisions.iter().map(|d| d % threads).collect();
        Ok(Script {
            proto: cfg.protocol_or(self.protocol),
            world,
            expect: Vec::new(),
            lines,
            schedule: Some(schedule),
        })
    }
}

impl fmt::Debug for ScheduleInput {
    /// The reproducer with the schedule actually taken.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match run_schedule(self, HarnessConfig::global()) {
            HarnessVerdict::Ran(out) => write!(f, "{}", out.script),
            HarnessVerdict::Rejected(why) => write!(f, "# rejected input: {why}"),
        }
    }
}

/// Runs a `schedule` input on the concurrent executor exactly as `ftsim replay` runs its script,
/// and rewrites the reproducer's schedule to the decisions actually taken.
pub fn run_schedule(input: &ScheduleInput, cfg: &HarnessConfig) -> HarnessVerdict {
    let mut script = match input.script(cfg) {
        Ok(s) => s,
        Err(why) => return HarnessVerdict::Rejected(why),
    };
    let replay = script.replay();
    let mut findings = Findings::new();
    for v in replay.findings {
        record(&mut findings, cfg, v);
    }
    script.schedule = Some(replay.schedule);
    HarnessVerdict::Ran(HarnessOutcome::new(script, findings))
}

/// The `schedule` target: panics on a finding; `false` for a rejected input.
pub fn fuzz_schedule(input: &ScheduleInput) -> bool {
    fail_on_findings("schedule", &run_schedule(input, HarnessConfig::global()))
}

mod parse;

pub use parse::{fuzz_parse, protocol_file_text, run_parse, ParseInput, Parsed};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn world_input_wraps_into_small_worlds() {
        let w = WorldInput {
            functions: 7,
            tracers: 3,
            modules: 0b10_01_00_01,
        }
        .world();
        assert_eq!(
            w.to_string(),
            "world functions=4 tracers=2 module=m0:f0,f2 module=m1:f3"
        );
        w.validate().unwrap();
        let w = WorldInput {
            functions: 1,
            tracers: 0,
            modules: 0b1000,
        }
        .world();
        assert_eq!(w.to_string(), "world functions=2 tracers=1 module=m0:f1");
    }

    #[test]
    fn ops_stop_at_the_first_finding() {
        // merged: livepatch, fentry, then fexit: the rebuilt trampoline calls the original
        // function (the crate example of ftsim-drive).
        let ops = [
            OpInput::KlpEnable(0),
            OpInput::BpfLink(KindInput::Fentry, 0),
            OpInput::BpfLink(KindInput::Fexit, 0),
            OpInput::KlpDisable(0),
        ];
        let input = OpsInput {
            protocol: 2,
            world: WorldInput {
                functions: 0,
                tracers: 0,
                modules: 0,
            },
            ops: ops
                .into_iter()
                .map(|op| LineInput { op, faults: None })
                .collect(),
        };
        let out = run_ops(&input, &HarnessConfig::default())
            .outcome()
            .cloned()
            .unwrap();
        assert_eq!(out.script.proto, Protocol::MERGED);
        assert!(!out.findings.is_empty());
        assert_eq!(out.script.lines.len(), 3, "{}", out.script);
        assert!(
            out.properties().contains(&Property::IpmodifyHonoured),
            "{}",
            out.script
        );
        let again = Script::parse(&out.script.to_string()).unwrap().replay();
        assert_eq!(expect_of(&again.findings), out.properties());
    }

    #[test]
    fn oversized_inputs_are_rejected() {
        let line = LineInput {
            op: OpInput::KlpEnable(0),
            faults: None,
        };
        let input = OpsInput {
            protocol: 0,
            world: WorldInput {
                functions: 0,
                tracers: 0,
                modules: 0,
            },
            ops: vec![line; OPS_MAX + 1],
        };
        assert!(matches!(
            run_ops(&input, &HarnessConfig::default()),
            HarnessVerdict::Rejected(_)
        ));
        assert!(run_parse(&ParseInput("x".repeat(PARSE_TEXT_MAX + 1))).is_err());
    }

    #[test]
    fn protocol_files_round_trip() {
        let mut p = Protocol::FIXES_2025;
        p.set("modify_checks_ipmodify", "false").unwrap();
        assert_eq!(Protocol::parse_file(&protocol_file_text(&p)).unwrap(), p);
    }
}
