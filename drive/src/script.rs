//! Reproducer files: the protocol, the world, the operations (with injected faults and, for
//! concurrent runs, their threads) and the schedule. Everything later prints and replays these.
//!
//! ```text
//! # ftsim reproducer
//! protocol merged
//! set modify_checks_ipmodify=false        # optional overrides, one per line
//! world functions=2 tracers=2 module=m0:f1
//! expect ipmodify-honoured                # what it reproduces (checked by `ftsim replay`)
//! klp-enable f0                           # thread 0
//! t1: bpf-link fexit f0 !alloc=0          # thread 1; its first allocation fails
//! schedule 0 1 1 0                        # which thread steps at each scheduling point
//! ```
//!
//! Without `tN:` prefixes and without `schedule` the operations run one after another through
//! the sequential driver. With them they run on the concurrent executor, which follows the
//! schedule (an entry naming a thread that cannot step is skipped) and then steps the lowest
//! runnable thread.

use crate::checked::{CheckedRun, CheckedSeq, Round};
use crate::decide::Decider;
use crate::findings::Findings;
use crate::seq::Faults;
use ftsim_core::errno::Errno;
use ftsim_core::ids::Tid;
use ftsim_core::locks::Lock;
use ftsim_core::op::Op;
use ftsim_core::property::{Property, Violation};
use ftsim_core::protocol::{self, Protocol, ProtocolError};
use ftsim_core::step::EventKind;
use ftsim_core::world::World;
use std::fmt;

/// Most operations a script may hold.
pub const SCRIPT_OPS_MAX: usize = 10_000;
/// Most threads a concurrent script may use.
pub const THREADS_MAX: usize = 16;
/// Most scheduling steps a replay takes before it stops (a guard against runaway schedules).
pub const STEPS_MAX: u64 = 1_000_000;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Line {
    pub tid: Tid,
    pub op: Op,
    pub faults: Faults,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Script {
    pub proto: Protocol,
    pub world: World,
    pub expect: Vec<Property>,
    pub lines: Vec<Line>,
    /// Present for concurrent scripts.
    pub schedule: Option<Vec<Tid>>,
}

/// What replaying a script produced.
#[derive(Clone, Debug, Default)]
pub struct Replay {
    pub results: Vec<(Tid, Op, Result<(), Errno>)>,
    pub findings: Findings,
    /// The scheduling decisions actually taken (concurrent scripts).
    pub schedule: Vec<Tid>,
    /// For each decision taken, the index in [`Script::lines`] of the operation that step ran
    /// (concurrent scripts): what a shrinker removes with an operation.
    pub step_lines: Vec<usize>,
    /// With [`Script::replay_traced`]: per step (per operation for sequential scripts) the thread,
    /// its events, the locks it holds afterwards, and the findings that appeared.
    pub timeline: Vec<TimelineStep>,
}

/// One step of a traced replay.
#[derive(Clone, Debug, Default)]
pub struct TimelineStep {
    /// The thread that stepped; `None` for the stall that ends a concurrent run (no thread could
    /// step, and the findings are the wait-for cycle's).
    pub tid: Option<Tid>,
    pub events: Vec<EventKind>,
    pub held: Vec<Lock>,
    pub findings: Vec<Violation>,
}

impl Replay {
    pub fn has(&self, p: Property) -> bool {
        self.findings.has(p)
    }
}

impl Script {
    pub fn sequential(proto: Protocol, world: World, ops: Vec<(Op, Faults)>) -> Script {
        let lines = ops
            .into_iter()
            .map(|(op, faults)| Line { tid: 0, op, faults })
            .collect();
        Script {
            proto,
            world,
            expect: Vec::new(),
            lines,
            schedule: None,
        }
    }

    pub fn is_concurrent(&self) -> bool {
        self.schedule.is_some() || self.lines.iter().any(|l| l.tid != 0)
    }

    pub fn threads(&self) -> usize {
        self.lines
            .iter()
            .map(|l| l.tid as usize + 1)
            .max()
            .unwrap_or(1)
    }

    /// Replays the script and returns every finding.
    pub fn replay(&self) -> Replay {
        self.replay_with(false)
    }

    /// Replays the script recording the timeline of every step.
    pub fn replay_traced(&self) -> Replay {
        self.replay_with(true)
    }

    fn replay_with(&self, trace: bool) -> Replay {
        if self.is_concurrent() {
            self.replay_concurrent(trace)
        } else {
            self.replay_sequential(trace)
        }
    }

    /// Sequential scripts run through the sequential driver, and the reference oracle judges
    /// every operation (availability, and what the policy promises about each call).
    fn replay_sequential(&self, trace: bool) -> Replay {
        let mut c = CheckedSeq::new(&self.world, self.proto);
        if trace {
            c.seq_mut().k.trace = Some(Vec::new());
        }
        let mut r = Replay::default();
        for l in &self.lines {
            let out = c.step(&l.op, l.faults);
            r.results.push((0, l.op.clone(), out.result));
            let mut new = Vec::new();
            for v in out.all() {
                if r.findings.insert(v.clone()) {
                    new.push(v.clone());
                }
            }
            if let Some(events) = c.seq_mut().k.trace.as_mut() {
                let events = std::mem::take(events).into_iter().map(|e| e.kind).collect();
                let held = c.seq().k.held_by(0).collect();
                r.timeline.push(TimelineStep {
                    tid: Some(0),
                    events,
                    held,
                    findings: new,
                });
            }
            if out.stuck {
                break;
            }
        }
        r
    }

    fn replay_concurrent(&self, trace: bool) -> Replay {
        let mut s = CheckedRun::new(&self.world, self.proto, self.threads());
        if trace {
            s.k.trace = Some(Vec::new());
        }
        for l in &self.lines {
            s.push(l.tid, l.op.clone(), l.faults);
        }
        let mut recorded = Recorded {
            schedule: self.schedule.clone().unwrap_or_default(),
            next: 0,
        };
        // Per thread, the indices of its lines in order, and how many it has started.
        let mut of_thread: Vec<Vec<usize>> = vec![Vec::new(); self.threads()];
        for (i, l) in self.lines.iter().enumerate() {
            of_thread[l.tid as usize].push(i);
        }
        let mut started = vec![0usize; self.threads()];
        let mut step_lines = Vec::new();
        let mut taken = Vec::new();
        let mut timeline = Vec::new();
        while s.steps < STEPS_MAX {
            let before = s.findings.len();
            let (t, start) = match s.round(&mut recorded) {
                Round::Stepped { t, started, .. } => (t, started),
                Round::Stalled => {
                    if trace && s.findings.len() > before {
                        let findings = s.findings[before..].to_vec();
                        timeline.push(TimelineStep {
                            tid: None,
                            events: Vec::new(),
                            held: Vec::new(),
                            findings,
                        });
                    }
                    break;
                }
                Round::Idle => break,
            };
            taken.push(t);
            let ti = t as usize;
            if start {
                started[ti] += 1;
            }
            step_lines.push(of_thread[ti][started[ti].max(1) - 1]);
            if let Some(events) = s.k.trace.as_mut() {
                let events = std::mem::take(events).into_iter().map(|e| e.kind).collect();
                let held = s.k.held_by(t).collect();
                let findings = s.findings[before..].to_vec();
                timeline.push(TimelineStep {
                    tid: Some(t),
                    events,
                    held,
                    findings,
                });
            }
        }
        let mut r = Replay {
            findings: s.findings.clone(),
            schedule: taken,
            step_lines,
            timeline,
            ..Replay::default()
        };
        for (t, lane) in s.lanes.iter().enumerate() {
            for (op, res) in &lane.done {
                r.results.push((t as Tid, op.clone(), *res));
            }
        }
        r
    }

    /// Parses a reproducer file, with errors naming the line.
    pub fn parse(text: &str) -> Result<Script, String> {
        let mut base: Option<String> = None;
        let mut sets: Vec<(String, String)> = Vec::new();
        let mut world: Option<World> = None;
        let mut expect = Vec::new();
        let mut lines = Vec::new();
        let mut schedule = None;
        for (i, raw) in text.lines().enumerate() {
            let at = |e: String| format!("line {}: {e}", i + 1);
            let line = raw.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let (head, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
            let rest = rest.trim();
            match head {
                "protocol" => {
                    if base.is_some() {
                        return Err(at("`protocol` given twice".into()));
                    }
                    base = Some(
                        rest.trim_start_matches('=')
                            .trim()
                            .trim_matches('"')
                            .to_string(),
                    );
                }
                "set" => {
                    sets.push(protocol::parse_assignment(rest).map_err(|e| at(e.to_string()))?)
                }
                "world" => world = Some(line.parse::<World>().map_err(at)?),
                "expect" => {
                    for w in rest.split_whitespace() {
                        expect.push(w.parse::<Property>().map_err(at)?);
                    }
                }
                "schedule" | "schedule:" => {
                    let s: Result<Vec<Tid>, _> = rest
                        .split_whitespace()
                        .map(|w| w.trim_start_matches('t').parse::<Tid>())
                        .collect();
                    schedule = Some(s.map_err(|_| {
                        at(format!("bad schedule `{rest}` (expected thread numbers)"))
                    })?);
                }
                _ => {
                    let (tid, body) = match head.strip_prefix('t').and_then(|x| x.strip_suffix(':'))
                    {
                        Some(n) => (
                            n.parse::<Tid>()
                                .map_err(|_| at(format!("bad thread `{head}`")))?,
                            rest,
                        ),
                        None => (0, line),
                    };
                    if tid as usize >= THREADS_MAX {
                        return Err(at(format!(
                            "thread t{tid} out of range (at most {THREADS_MAX} threads)"
                        )));
                    }
                    let mut words: Vec<&str> = body.split_whitespace().collect();
                    let mut faults = Faults::NONE;
                    while let Some(w) = words.last().filter(|w| w.starts_with('!')) {
                        faults.parse_word(w).map_err(at)?;
                        words.pop();
                    }
                    let op: Op = words.join(" ").parse().map_err(at)?;
                    lines.push(Line { tid, op, faults });
                    if lines.len() > SCRIPT_OPS_MAX {
                        return Err(at(format!(
                            "too many operations (at most {SCRIPT_OPS_MAX})"
                        )));
                    }
                }
            }
        }
        let base = base.ok_or("missing `protocol NAME` line")?;
        let proto = protocol::resolve(&base, &sets).map_err(|e: ProtocolError| e.to_string())?;
        let world = world.ok_or("missing `world functions=N ...` line")?;
        for l in &lines {
            l.op.check_world(&world)?;
        }
        Ok(Script {
            proto,
            world,
            expect,
            lines,
            schedule,
        })
    }
}

impl fmt::Display for Script {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "# ftsim reproducer")?;
        let (base, sets) = match self.proto.preset_name() {
            Some(n) => (n.to_string(), Vec::new()),
            None => {
                let d = self.proto.describe();
                let base = d.split('+').next().unwrap().to_string();
                let sets = self.proto.diff(&Protocol::preset(&base).unwrap());
                (base, sets)
            }
        };
        writeln!(f, "protocol {base}")?;
        for (k, v) in sets {
            writeln!(f, "set {k}={v}")?;
        }
        writeln!(f, "{}", self.world)?;
        if !self.expect.is_empty() {
            let e: Vec<&str> = self.expect.iter().map(|p| p.id()).collect();
            writeln!(f, "expect {}", e.join(" "))?;
        }
        let conc = self.is_concurrent();
        for l in &self.lines {
            if conc {
                write!(f, "t{}: ", l.tid)?;
            }
            writeln!(f, "{}{}", l.op, l.faults)?;
        }
        if let Some(s) = &self.schedule {
            let v: Vec<String> = s.iter().map(|t| t.to_string()).collect();
            writeln!(f, "schedule {}", v.join(" "))?;
        }
        Ok(())
    }
}

/// A recorded schedule as a decider: each step, the next recorded thread that can step, entries
/// naming a thread that cannot step skipped (a sleeping thread can: the schedule was recorded
/// when nothing else could); after the schedule, the lowest runnable thread.
struct Recorded {
    schedule: Vec<Tid>,
    next: usize,
}

impl Decider for Recorded {
    fn pick(&mut self, runnable: &[Tid], ready: &dyn Fn(Tid) -> bool) -> Tid {
        while self.schedule.get(self.next).is_some_and(|&w| !ready(w)) {
            self.next += 1;
        }
        let t = self.schedule.get(self.next).copied().unwrap_or(runnable[0]);
        self.next += 1;
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_replay() {
        let text = "# x\nprotocol merged\nworld functions=1 tracers=2\nexpect ipmodify-honoured\nklp-enable f0\nbpf-link fentry f0\nbpf-link fexit f0 !alloc=0\nbpf-link fexit f0\n";
        let s = Script::parse(text).unwrap();
        assert_eq!(s.lines[2].faults.allocs, 1);
        let again = Script::parse(&s.to_string()).unwrap();
        assert_eq!(s, again);
        let r = s.replay();
        assert_eq!(r.results[2].2, Err(Errno::ENOMEM));
        assert!(r.has(Property::IpmodifyHonoured));
    }

    #[test]
    fn errors_name_the_line() {
        let e = Script::parse("protocol merged\nworld functions=1\nklp-enable f3\n").unwrap_err();
        assert!(e.contains("only 1 functions"), "{e}");
        let e = Script::parse("protocol nope\nworld functions=1\n").unwrap_err();
        assert!(e.contains("unknown protocol"), "{e}");
        let e = Script::parse("protocol merged\nworld functions=1\nklp-enable f0 !oops=1\n")
            .unwrap_err();
        assert!(e.starts_with("line 3") && e.contains("fault kind"), "{e}");
        let e = Script::parse("world functions=1\n").unwrap_err();
        assert!(e.contains("protocol"), "{e}");
    }

    #[test]
    fn concurrent_blocking_peer_deadlocks() {
        // BPF holds tr->mutex and wants direct_mutex; livepatch holds direct_mutex and, through
        // the PEER callback, wants tr->mutex with a blocking lock.
        let text = "protocol alt-blocking-peer\nworld functions=1\nt0: bpf-link fexit f0\nt1: klp-enable f0\nt0: bpf-link fentry f0\n";
        let s = Script::parse(text).unwrap();
        assert!(s.is_concurrent());
        // Sequentially (default schedule: lowest runnable thread) nothing deadlocks...
        let r = s.replay();
        assert!(!r.has(Property::Deadlock), "{:?}", r.findings);
        // ...but the lock order closes a cycle: tr->mutex -> direct_mutex -> tr->mutex.
        assert!(r.has(Property::LockOrder), "{:?}", r.findings);
    }
}
