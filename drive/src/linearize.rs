//! The linearizability check of a concurrent execution (issue 6): every operation that failed
//! because a trylock found its lock taken (`-EAGAIN` from contention) must leave no trace; the
//! others must match some sequential order (respecting each thread's program order) run on the
//! sequential driver from the same start: the same result for every operation, the same projected
//! state, and no finding the sequential order does not have, except the tolerated
//! [`Property::ShareLeak`] (SPEC §3.6), which contention can cause and which is reported apart.
//! The reference oracle follows the explaining order and then judges the operations that failed
//! from contention with the calls of the final state.
//!
//! In the core, beside the executors, so that any driver of concurrent runs can use it: today
//! the thread driver over std/loom mutexes (`tests/src/conc.rs`), which supplies the executions
//! and the projection of the state.

use crate::checked::CheckedSeq;
use crate::findings::Findings;
use crate::observe::{call, calls, Body};
use crate::oracle::Reference;
use ftsim_core::errno::Errno;
use ftsim_core::ids::{FnId, OpsOwner};
use ftsim_core::kernel::{fl, Kernel};
use ftsim_core::op::Op;
use ftsim_core::property::{Property, Violation};
use ftsim_core::step::{Faults, OpResult};
use std::collections::{BTreeSet, HashMap};
use std::fmt::{self, Write as _};

/// What one operation of one thread did.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OpOutcome {
    pub op: Op,
    pub result: Result<(), Errno>,
    /// A trylock of the operation found its lock taken.
    pub contended: bool,
}

impl OpOutcome {
    /// Failed because of contention: must leave no trace.
    pub fn dropped(&self) -> bool {
        self.contended && self.result.is_err()
    }
}

impl fmt::Display for OpOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}` = {}", self.op, show_result(self.result))?;
        if self.contended {
            write!(f, " (contended)")?;
        }
        Ok(())
    }
}

/// `ok` or the errno's name.
pub fn show_result(r: Result<(), Errno>) -> &'static str {
    match r {
        Ok(()) => "ok",
        Err(e) => e.name(),
    }
}

/// The result of one concurrent execution.
pub struct Execution {
    /// Per thread, its operations in program order (shorter if the thread was aborted).
    pub outcomes: Vec<Vec<OpOutcome>>,
    /// The final state.
    pub k: Kernel,
    /// Findings raised inside steps, lockdep's order rule, and `check` on the final state;
    /// deduplicated by (property, function).
    pub findings: Findings,
    /// The run stalled (the core's stall rule, `Sched`: no thread could step while some had
    /// work): a deadlock, or a thread stuck on a lock it holds. It is over with operations
    /// unfinished, so it has no linearization; its findings say why.
    pub stalled: bool,
    /// The wait-for cycle of the stall, if it had one (`Sched::detect_deadlock`).
    pub deadlock: Option<String>,
}

/// A finding as `property@function` (or just the property).
pub fn finding_id(v: &Violation) -> String {
    match v.func {
        Some(f) => format!("{}@{f}", v.property),
        None => v.property.to_string(),
    }
}

impl Execution {
    /// The outcomes in thread order: `ok`, an errno name, `*` when contended.
    pub fn compact(&self) -> String {
        let v: Vec<String> = self
            .outcomes
            .iter()
            .flatten()
            .map(|o| {
                format!(
                    "{}{}",
                    show_result(o.result),
                    if o.contended { "*" } else { "" }
                )
            })
            .collect();
        v.join(" ")
    }

    /// One line per operation.
    pub fn outcome_line(&self) -> String {
        let v: Vec<String> = self
            .outcomes
            .iter()
            .enumerate()
            .flat_map(|(t, ops)| ops.iter().map(move |o| format!("t{t} {o}")))
            .collect();
        v.join(", ")
    }
}

/// One sequential order of the operations that did not fail from contention.
#[derive(Clone, Debug)]
struct Candidate {
    /// (thread, index in the thread) in the order run.
    order: Vec<(usize, usize)>,
    results: HashMap<(usize, usize), Result<(), Errno>>,
    observable: String,
    findings: Findings,
    /// The reference oracle after the order, and what it found along it.
    reference: Reference,
    oracle: Vec<Violation>,
}

/// How an execution was explained.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Verdict {
    /// The outcomes in thread order, compact: `ok`, an errno name, with `*` when the operation
    /// was contended (a trylock found its lock taken), e.g. `ok EAGAIN*`.
    pub compact: String,
    /// The findings, compact: property identifier and function, e.g. `share-leak@f0`.
    pub finding_ids: BTreeSet<String>,
    /// The outcomes, in thread order.
    pub outcomes: String,
    /// The sequential order that explains the execution, e.g. `t1 klp-enable f0; t0 bpf-link fexit f0`.
    pub order: String,
    /// Operations that failed from contention and left no trace.
    pub dropped: Vec<String>,
    /// Findings of the execution (those explained by the order, and the tolerated ones).
    pub findings: Vec<String>,
    /// Tolerated findings (`share-leak`) the sequential order does not have, as
    /// `property@function`: caused by contention.
    pub contention_tolerated: Vec<String>,
    /// What the reference oracle (`crate::oracle`) says about the outcomes and the calls
    /// along the explaining order (in `finding_ids` as `oracle:property@function`).
    pub oracle: Vec<String>,
}

/// The linearizability verdict for one scenario: built once from the setup state and the threads'
/// operations, then asked about every execution. Sequential orders are computed once per set of
/// dropped operations and cached.
pub struct Linearizer {
    /// The checked sequential run after the setup: the state every order starts from.
    start: CheckedSeq,
    threads: Vec<Vec<Op>>,
    /// The state a linearization must reproduce, as one canonical text.
    project: fn(&Kernel) -> String,
    cache: std::sync::Mutex<HashMap<Vec<bool>, std::sync::Arc<Vec<Candidate>>>>,
}

impl Linearizer {
    /// `start` is the state after the setup operations; `project` the state a linearization must
    /// reproduce (the same text for the execution's final state and the order's).
    pub fn new(
        start: &CheckedSeq,
        threads: &[Vec<Op>],
        project: fn(&Kernel) -> String,
    ) -> Linearizer {
        Linearizer {
            start: start.clone(),
            threads: threads.to_vec(),
            project,
            cache: Default::default(),
        }
    }

    fn candidates(&self, dropped: &[bool]) -> std::sync::Arc<Vec<Candidate>> {
        if let Some(c) = self.cache.lock().unwrap().get(dropped) {
            return c.clone();
        }
        let mut included: Vec<Vec<usize>> = vec![Vec::new(); self.threads.len()];
        let mut n = 0;
        for (t, ops) in self.threads.iter().enumerate() {
            for i in 0..ops.len() {
                if !dropped[n] {
                    included[t].push(i);
                }
                n += 1;
            }
        }
        let mut out = Vec::new();
        let mut order = Vec::new();
        let mut next = vec![0usize; self.threads.len()];
        self.interleavings(&included, &mut next, &mut order, &mut out);
        let out = std::sync::Arc::new(out);
        self.cache
            .lock()
            .unwrap()
            .insert(dropped.to_vec(), out.clone());
        out
    }

    fn interleavings(
        &self,
        inc: &[Vec<usize>],
        next: &mut [usize],
        order: &mut Vec<(usize, usize)>,
        out: &mut Vec<Candidate>,
    ) {
        let mut any = false;
        for t in 0..inc.len() {
            if next[t] < inc[t].len() {
                any = true;
                order.push((t, inc[t][next[t]]));
                next[t] += 1;
                self.interleavings(inc, next, order, out);
                next[t] -= 1;
                order.pop();
            }
        }
        if !any {
            out.push(self.run_order(order));
        }
    }

    fn run_order(&self, order: &[(usize, usize)]) -> Candidate {
        let mut c = self.start.clone();
        let mut results = HashMap::new();
        let mut findings = Findings::new();
        let mut oracle = Vec::new();
        for &(t, i) in order {
            let out = c.step(&self.threads[t][i], Faults::NONE);
            results.insert((t, i), out.result);
            findings.extend(out.core);
            oracle.extend(out.oracle);
        }
        Candidate {
            order: order.to_vec(),
            results,
            observable: (self.project)(&c.seq().k),
            findings,
            reference: c.model,
            oracle,
        }
    }

    fn show_order(&self, order: &[(usize, usize)]) -> String {
        let v: Vec<String> = order
            .iter()
            .map(|&(t, i)| format!("t{t} {}", self.threads[t][i]))
            .collect();
        v.join("; ")
    }

    /// The reference oracle's verdict (`crate::oracle`, issue 3) on the execution explained
    /// by candidate `c`: what it found along the order, then the operations that failed from
    /// contention, judged last (they left no trace, so where they go does not matter) with the
    /// calls of the final state.
    fn reference_verdict(&self, c: &Candidate, e: &Execution) -> Vec<Violation> {
        let mut v = c.oracle.clone();
        let mut reference = c.reference.clone();
        let final_calls = calls(&e.k);
        for o in e.outcomes.iter().flatten().filter(|o| o.dropped()) {
            let out = OpResult {
                result: o.result,
                violations: Vec::new(),
                contended: true,
                faulted: false,
                stuck: false,
            };
            v.extend(reference.step(&o.op, &out, &final_calls));
        }
        v
    }

    /// Explains `e` by a sequential order, or says why none fits.
    pub fn judge(&self, e: &Execution) -> Result<Verdict, String> {
        if e.stalled {
            return Err(format!(
                "stalled: {}",
                e.deadlock.as_deref().unwrap_or("no wait-for cycle")
            ));
        }
        let mut dropped = Vec::new();
        let mut dropped_names = Vec::new();
        for (t, ops) in self.threads.iter().enumerate() {
            assert_eq!(
                e.outcomes[t].len(),
                ops.len(),
                "[driver internal bug] thread {t} did not finish"
            );
            for o in &e.outcomes[t] {
                dropped.push(o.dropped());
                if o.dropped() {
                    dropped_names.push(format!("t{t} {}", o.op));
                }
            }
        }
        let obs = (self.project)(&e.k);
        let cands = self.candidates(&dropped);
        // `livelock` is judged only on fair schedules, by the executor that records it
        // (`Sched::record`, `sched::SLEEP_STEPS_MAX`): on real threads a loaded machine can leave
        // a woken sleeper off the CPU for every retry window, and such a run has none.
        let tolerated = |p: Property| p == Property::ShareLeak;
        let mut near = Vec::new();
        for c in cands.iter() {
            let results_match = c
                .order
                .iter()
                .all(|(t, i)| Some(&e.outcomes[*t][*i].result) == c.results.get(&(*t, *i)));
            if !results_match {
                continue;
            }
            if c.observable != obs {
                near.push(format!(
                    "order `{}`: same results, different state:\n{}",
                    self.show_order(&c.order),
                    diff(&c.observable, &obs)
                ));
                continue;
            }
            let extra: Vec<&Violation> = e
                .findings
                .iter()
                .filter(|v| !tolerated(v.property) && !c.findings.contains(v.property, v.func))
                .collect();
            if !extra.is_empty() {
                let ex: Vec<String> = extra.iter().map(|v| v.to_string()).collect();
                near.push(format!(
                    "order `{}`: same state, but findings only the concurrent run has: {}",
                    self.show_order(&c.order),
                    ex.join("; ")
                ));
                continue;
            }
            let contention_tolerated = e
                .findings
                .iter()
                .filter(|v| tolerated(v.property) && !c.findings.contains(v.property, v.func))
                .map(finding_id)
                .collect();
            let oracle = self.reference_verdict(c, e);
            let mut finding_ids: BTreeSet<String> = e.findings.iter().map(finding_id).collect();
            finding_ids.extend(oracle.iter().map(|v| format!("oracle:{}", finding_id(v))));
            return Ok(Verdict {
                compact: e.compact(),
                finding_ids,
                oracle: oracle.iter().map(|v| v.to_string()).collect(),
                outcomes: e.outcome_line(),
                order: self.show_order(&c.order),
                dropped: dropped_names,
                findings: e.findings.iter().map(|v| v.to_string()).collect(),
                contention_tolerated,
            });
        }
        Err(format!(
            "no sequential order of the operations that did not fail from contention explains the execution\n  outcomes: {}\n  findings: {:?}\n{}",
            e.outcome_line(),
            e.findings.iter().map(|v| v.to_string()).collect::<Vec<_>>(),
            if near.is_empty() { "  (no order gives the same results)".to_string() } else { near.join("\n") }
        ))
    }
}

/// The lines of `b` that differ from `a`.
fn diff(a: &str, b: &str) -> String {
    let mut s = String::new();
    for (x, y) in a.lines().zip(b.lines()) {
        if x != y {
            let _ = writeln!(s, "    sequential: {x}\n    concurrent: {y}");
        }
    }
    s
}

/// The verdict the owners can check themselves, from their own bookkeeping and the outcomes
/// they observed:
/// - an operation fails from contention only with `-EAGAIN`, and leaves no trace: a livepatch
///   that failed so is not on its function's stack and its ops is not registered; a kprobe that
///   failed so is not armed;
/// - every function with an enabled livepatch or an armed IPMODIFY kprobe ends its calls in the
///   redirected target, never in the original body (SPEC §3.1);
/// - a call of a function with an installed trampoline runs every linked program (SPEC §3.2).
pub fn expectations(e: &Execution) -> Result<(), String> {
    let k = &e.k;
    for o in e.outcomes.iter().flatten().filter(|o| o.dropped()) {
        if o.result != Err(Errno::EAGAIN) {
            return Err(format!("{o}: contention must fail with EAGAIN"));
        }
        let trace = match o.op {
            Op::KlpEnable(f) => {
                let st = k.fstate(f);
                let ops = k.op(k.id(OpsOwner::Klp(f)));
                (st.klp_stack > 0 || st.klp_registered || ops.flags != 0).then(|| {
                    format!(
                        "klp_stack={} klp_registered={} ops flags={}",
                        st.klp_stack,
                        st.klp_registered,
                        fl::names(ops.flags)
                    )
                })
            }
            Op::KprobeArm(f) => {
                (k.fstate(f).kprobes > 0).then(|| format!("{} kprobes armed", k.fstate(f).kprobes))
            }
            _ => None,
        };
        if let Some(t) = trace {
            return Err(format!("{o} left a trace: {t}"));
        }
    }
    for i in 0..k.fns.len() {
        let f = FnId(i as u16);
        let Some(c) = call(k, f) else { continue };
        let st = k.fstate(f);
        let patched = st.klp_stack > 0 && st.klp_registered;
        if (patched || st.kprobes > 0) && !matches!(c.body, Body::Redirected(_)) {
            return Err(format!(
                "{f} has {} but its call ends in {:?}",
                if patched {
                    "an enabled livepatch"
                } else {
                    "an armed kprobe"
                },
                c.body
            ));
        }
        if st.tr.cur_image.is_some() {
            let lost: Vec<String> = st
                .tr
                .links
                .iter()
                .filter(|(_, p)| !c.progs().contains(p))
                .map(|(kind, _)| kind.to_string())
                .collect();
            if !lost.is_empty() {
                return Err(format!("{f}: linked {lost:?} programs do not run"));
            }
        }
    }
    Ok(())
}
