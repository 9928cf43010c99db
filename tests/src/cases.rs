//! The catalogue of concurrent scenarios (issue 6) and what is pinned for each preset: the data
//! the std and loom drivers of `conc.rs` run (`tests/tests/conc_std.rs`, `tests/tests/loom.rs`),
//! with the reports they produce and the check of a report against its pin.

use ftsim_core::op::Op;
use ftsim_core::protocol::Protocol;
use ftsim_core::world::World;
use ftsim_drive::checked::CheckedSeq;
use ftsim_drive::linearize::{finding_id, show_result, Execution, Verdict};
use ftsim_drive::seq::Faults;
use std::collections::BTreeSet;
use std::fmt::{self, Write as _};

// ----- scenarios ---------------------------------------------------------------------------------

/// A small concurrent scenario: a world, setup operations run sequentially first, then one list
/// of operations per thread.
#[derive(Clone, Debug)]
pub struct Scenario {
    pub world: World,
    pub setup: Vec<Op>,
    pub threads: Vec<Vec<Op>>,
}

impl Scenario {
    /// `threads` are `;`-separated operations per thread.
    pub fn new(functions: u16, setup: &[&str], threads: &[&str]) -> Scenario {
        let parse = |s: &str| {
            s.parse::<Op>()
                .unwrap_or_else(|e| panic!("bad op `{s}`: {e}"))
        };
        Scenario {
            world: World::new(functions),
            setup: setup.iter().map(|s| parse(s)).collect(),
            threads: threads
                .iter()
                .map(|t| t.split(';').map(|s| parse(s.trim())).collect())
                .collect(),
        }
    }

    /// The state after the setup, or the setup operation that failed (the scenario does not
    /// apply to this protocol). Findings of the setup are the protocol's own business: the
    /// sequential orders the verdict compares with start from the same state, and so does the
    /// reference oracle, which followed the setup.
    pub fn prepare(&self, proto: Protocol) -> Result<CheckedSeq, String> {
        let mut c = CheckedSeq::new(&self.world, proto);
        for op in &self.setup {
            let out = c.step(op, Faults::NONE);
            if out.result.is_err() {
                return Err(format!("setup `{op}` = {}", show_result(out.result)));
            }
        }
        Ok(c)
    }
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let setup: Vec<String> = self.setup.iter().map(|o| o.to_string()).collect();
        write!(f, "setup [{}]", setup.join("; "))?;
        for (t, ops) in self.threads.iter().enumerate() {
            let v: Vec<String> = ops.iter().map(|o| o.to_string()).collect();
            write!(f, " | t{t} [{}]", v.join("; "))?;
        }
        Ok(())
    }
}

/// Everything the executions of one scenario under one protocol produced.
#[derive(Debug, Default)]
pub struct Report {
    /// Executions run (loom's iterations, or the std iterations).
    pub executions: usize,
    /// The distinct verdicts, i.e. the distinct (outcomes, explaining order, findings).
    pub verdicts: BTreeSet<Verdict>,
    /// Executions that stalled with a wait-for cycle (a `deadlock`), with one cycle and its
    /// interleaving.
    pub deadlocks: usize,
    pub deadlock_example: Option<String>,
    /// Executions that stalled without one (a thread stuck on a lock it holds, the others done
    /// or waiting for its locks), with one interleaving.
    pub stalls: usize,
    pub stall_example: Option<String>,
    /// Every finding of the executions that stalled (`property@function`): they have no verdict.
    pub stall_findings: BTreeSet<String>,
    pub elapsed: std::time::Duration,
}

impl Report {
    /// Adds one execution: its verdict, or (`e.stalled`, no verdict) the stall; `interleaving`
    /// renders its journal for the first example of a kind.
    pub fn add(
        &mut self,
        e: &Execution,
        verdict: Option<Verdict>,
        interleaving: impl FnOnce() -> String,
    ) {
        self.executions += 1;
        if let Some(v) = verdict {
            assert!(
                !e.stalled,
                "[driver internal bug] a verdict on a stalled run"
            );
            self.verdicts.insert(v);
            return;
        }
        assert!(
            e.stalled,
            "[driver internal bug] a run to the end without a verdict"
        );
        self.stall_findings
            .extend(e.findings.iter().map(finding_id));
        match &e.deadlock {
            Some(d) => {
                self.deadlocks += 1;
                self.deadlock_example
                    .get_or_insert_with(|| format!("{d}\n{}", interleaving()));
            }
            None => {
                self.stalls += 1;
                self.stall_example.get_or_insert_with(interleaving);
            }
        }
    }

    /// The distinct compact outcomes (`ok EAGAIN*`).
    pub fn outcomes(&self) -> BTreeSet<String> {
        self.verdicts.iter().map(|v| v.compact.clone()).collect()
    }
    /// Every finding seen (`property@function`).
    pub fn findings(&self) -> BTreeSet<String> {
        self.verdicts
            .iter()
            .flat_map(|v| v.finding_ids.iter().cloned())
            .collect()
    }
    /// The tolerated findings that only contention caused.
    pub fn contention_tolerated(&self) -> BTreeSet<String> {
        self.verdicts
            .iter()
            .flat_map(|v| v.contention_tolerated.iter().cloned())
            .collect()
    }
    /// A summary for the test output: every distinct verdict with the order that explains it.
    pub fn summary(&self) -> String {
        let mut s = format!("{} executions in {:.2?}", self.executions, self.elapsed);
        for v in &self.verdicts {
            let _ = write!(s, "\n  {} ~ [{}]", v.outcomes, v.order);
            if !v.findings.is_empty() {
                let _ = write!(s, "\n      findings: {}", v.findings.join("; "));
            }
            if !v.oracle.is_empty() {
                let _ = write!(s, "\n      oracle: {}", v.oracle.join("; "));
            }
            if !v.contention_tolerated.is_empty() {
                let _ = write!(
                    s,
                    "\n      caused by contention only: {}",
                    v.contention_tolerated.join(", ")
                );
            }
        }
        if self.deadlocks > 0 {
            let _ = write!(
                s,
                "\n  {} deadlocks, e.g. {}",
                self.deadlocks,
                self.deadlock_example.as_deref().unwrap_or("")
            );
        }
        if self.stalls > 0 {
            let _ = write!(
                s,
                "\n  {} stalls without a wait-for cycle, e.g.\n{}",
                self.stalls,
                self.stall_example.as_deref().unwrap_or("")
            );
        }
        if !self.stall_findings.is_empty() {
            let _ = write!(
                s,
                "\n  findings of the stalled runs: {:?}",
                self.stall_findings
            );
        }
        s
    }
}

// ----- the catalogue ---------------------------------------------------------------------------

/// What a scenario does under one protocol, pinned: loom explores every interleaving (within the
/// bound) and must find exactly this; the std driver samples and must stay inside it.
#[derive(Clone, Copy, Debug)]
pub enum Expect {
    /// A setup operation fails under this protocol (e.g. `pre` cannot have a livepatch and a
    /// trampoline on one function), so the scenario does not apply.
    NotApplicable,
    /// Some interleaving deadlocks; loom reports it.
    Deadlock,
    /// Deadlock-free, with exactly these compact outcomes (thread order, `*` = contended), these
    /// findings over all executions, and these tolerated findings caused only by contention.
    Outcomes {
        outcomes: &'static [&'static str],
        findings: &'static [&'static str],
        contention: &'static [&'static str],
    },
}

/// `Expect::Outcomes`, short enough for one line of a table.
pub const fn out(
    outcomes: &'static [&'static str],
    findings: &'static [&'static str],
    contention: &'static [&'static str],
) -> Expect {
    Expect::Outcomes {
        outcomes,
        findings,
        contention,
    }
}

/// One scenario with its expectation per preset.
pub struct Case {
    pub name: &'static str,
    /// What it shows, for the test output.
    pub about: &'static str,
    pub functions: u16,
    pub setup: &'static [&'static str],
    /// One `;`-separated list of operations per thread.
    pub threads: &'static [&'static str],
    /// loom's preemption bound for this scenario (`LOOM_MAX_PREEMPTIONS` overrides it).
    pub preemptions: usize,
    /// Per preset (every preset of [`ftsim_core::protocol::PRESETS`] must be listed).
    pub expect: &'static [(&'static str, Expect)],
}

impl Case {
    pub fn scenario(&self) -> Scenario {
        Scenario::new(self.functions, self.setup, self.threads)
    }

    /// The expectation for a preset.
    pub fn expect(&self, preset: &str) -> Expect {
        let e = self.expect.iter().find(|(p, _)| *p == preset);
        e.unwrap_or_else(|| {
            panic!(
                "case `{}` has no expectation for preset `{preset}`",
                self.name
            )
        })
        .1
    }

    /// Checks a report against the expectation for `preset`.
    pub fn check_report(&self, preset: &str, r: &Report, exhaustive: bool) -> Result<(), String> {
        let Expect::Outcomes {
            outcomes,
            findings,
            contention,
        } = self.expect(preset)
        else {
            return Err(format!(
                "`{}` under {preset}: expected {:?}, but it ran to the end",
                self.name,
                self.expect(preset)
            ));
        };
        let set = |v: &[&str]| -> BTreeSet<String> { v.iter().map(|s| s.to_string()).collect() };
        let (want_o, want_f, want_c) = (set(outcomes), set(findings), set(contention));
        let got_c = r.contention_tolerated();
        if r.deadlocks + r.stalls > 0 {
            return Err(format!(
                "`{}` under {preset}: pinned deadlock-free, but {} executions deadlocked and {} \
                 stalled otherwise\n{}",
                self.name,
                r.deadlocks,
                r.stalls,
                r.summary()
            ));
        }
        let ok = if exhaustive {
            r.outcomes() == want_o && r.findings() == want_f && got_c == want_c
        } else {
            r.outcomes().is_subset(&want_o)
                && r.findings().is_subset(&want_f)
                && got_c.is_subset(&want_c)
        };
        if ok {
            return Ok(());
        }
        Err(format!(
            "`{}` under {preset} ({}):\n  outcomes: got {:?}, pinned {:?}\n  findings: got {:?}, pinned {:?}\n  from contention: got {:?}, pinned {:?}\n{}",
            self.name,
            if exhaustive { "must equal" } else { "must be within" },
            r.outcomes(),
            want_o,
            r.findings(),
            want_f,
            got_c,
            want_c,
            r.summary()
        ))
    }
}

/// The scenarios of issue 6, with what loom found for every preset (outcomes in thread order;
/// `*`: a trylock of the operation found its lock taken). What the pins say:
/// - the trylock presets never deadlock; the livepatch or kprobe side fails with `-EAGAIN` when
///   its PEER trylock finds `tr->mutex` taken, and leaves no trace (`ok EAGAIN*`); a contended
///   livepatch disable still succeeds (`ok*`) but its DISABLE_PEER is lost, so the trampoline stays
///   in sharing mode (`share-leak`, caused only by contention) in merged .. fixes-2025,
///   alt-rinse-repeat and the Debian trees; `proposed` retries the DISABLE_PEER and has none;
/// - `alt-blocking-peer` deadlocks when the trampoline is already registered (a second link, or
///   an unlink, holds `tr->mutex` and waits for `direct_mutex`, while the livepatch holds
///   `direct_mutex` and waits for `tr->mutex` in PEER / DISABLE_PEER); a first link cannot
///   deadlock (its ops is not enabled while it waits for `direct_mutex`, so no PEER is sent to it),
///   but lockdep's order rule reports the cycle (`lock-order`);
/// - findings that sequential runs have as well, pinned here as the protocol's own (`oracle:`
///   marks what the reference oracle of `ftsim_drive::oracle` reports): `v2`'s
///   trampoline sets `SHARE_IPMODIFY` on its registered ops without `ftrace_lock`
///   (`lock-coverage`), and never sends DISABLE (`share-leak`); `rcu-hash-2023`'s register failure
///   leaves its direct_functions entry, so a fexit link after a livepatch fails with `EBUSY` on
///   the retry (`atomicity`, and `oracle:availability`: the shared policy allows it).
pub const CASES: &[Case] = &[
    Case {
        name: "link_fexit_vs_klp_enable",
        about:
            "BPF fexit link (first image) against livepatch enable on f0; both orders of arrival",
        functions: 1,
        setup: &[],
        threads: &["bpf-link fexit f0", "klp-enable f0"],
        preemptions: 3,
        expect: &[
            ("pre", out(&["EBUSY ok", "ok EBUSY"], &[], &[])),
            ("v2", out(&["ok EAGAIN*", "ok ok"], &["lock-coverage"], &[])),
            ("merged", out(&["ok EAGAIN*", "ok ok"], &[], &[])),
            ("fixes-2022", out(&["ok EAGAIN*", "ok ok"], &[], &[])),
            (
                "rcu-hash-2023",
                out(
                    &["EBUSY ok", "ok EAGAIN*", "ok ok"],
                    &["atomicity@f0", "oracle:availability@f0"],
                    &[],
                ),
            ),
            ("fixes-2025", out(&["ok EAGAIN*", "ok ok"], &[], &[])),
            ("alt-rinse-repeat", out(&["ok EAGAIN*", "ok ok"], &[], &[])),
            ("alt-blocking-peer", out(&["ok ok"], &["lock-order"], &[])),
            ("proposed", out(&["ok EAGAIN*", "ok ok"], &[], &[])),
            ("debian-6.1", out(&["ok EAGAIN*", "ok ok"], &[], &[])),
            ("debian-6.12", out(&["ok EAGAIN*", "ok ok"], &[], &[])),
            ("mainline-2026", out(&["ok EAGAIN*", "ok ok"], &[], &[])),
        ],
    },
    Case {
        name: "link_fentry_vs_klp_enable",
        about: "BPF fentry link (no CALL_ORIG) against livepatch enable on f0",
        functions: 1,
        setup: &[],
        threads: &["bpf-link fentry f0", "klp-enable f0"],
        preemptions: 3,
        expect: &[
            ("pre", out(&["EBUSY ok", "ok EBUSY"], &[], &[])),
            ("v2", out(&["ok EAGAIN*", "ok ok"], &["lock-coverage"], &[])),
            ("merged", out(&["ok EAGAIN*", "ok ok"], &[], &[])),
            ("fixes-2022", out(&["ok EAGAIN*", "ok ok"], &[], &[])),
            ("rcu-hash-2023", out(&["ok EAGAIN*", "ok ok"], &[], &[])),
            ("fixes-2025", out(&["ok EAGAIN*", "ok ok"], &[], &[])),
            ("alt-rinse-repeat", out(&["ok EAGAIN*", "ok ok"], &[], &[])),
            ("alt-blocking-peer", out(&["ok ok"], &["lock-order"], &[])),
            ("proposed", out(&["ok EAGAIN*", "ok ok"], &[], &[])),
            ("debian-6.1", out(&["ok EAGAIN*", "ok ok"], &[], &[])),
            ("debian-6.12", out(&["ok EAGAIN*", "ok ok"], &[], &[])),
            ("mainline-2026", out(&["ok EAGAIN*", "ok ok"], &[], &[])),
        ],
    },
    Case {
        name: "modify_vs_klp_enable",
        about: "a second link (fexit, modify of a registered trampoline) against livepatch enable",
        functions: 1,
        setup: &["bpf-link fentry f0"],
        threads: &["bpf-link fexit f0", "klp-enable f0"],
        preemptions: 3,
        expect: &[
            ("pre", out(&["ok EBUSY"], &[], &[])),
            ("v2", out(&["ok EAGAIN*", "ok ok"], &["lock-coverage"], &[])),
            ("merged", out(&["ok EAGAIN*", "ok ok"], &[], &[])),
            ("fixes-2022", out(&["ok EAGAIN*", "ok ok"], &[], &[])),
            ("rcu-hash-2023", out(&["ok EAGAIN*", "ok ok"], &[], &[])),
            ("fixes-2025", out(&["ok EAGAIN*", "ok ok"], &[], &[])),
            ("alt-rinse-repeat", out(&["ok EAGAIN*", "ok ok"], &[], &[])),
            ("alt-blocking-peer", Expect::Deadlock),
            ("proposed", out(&["ok EAGAIN*", "ok ok"], &[], &[])),
            ("debian-6.1", out(&["ok EAGAIN*", "ok ok"], &[], &[])),
            ("debian-6.12", out(&["ok EAGAIN*", "ok ok"], &[], &[])),
            ("mainline-2026", out(&["ok EAGAIN*", "ok ok"], &[], &[])),
        ],
    },
    Case {
        name: "unlink_vs_klp_disable",
        about: "livepatch disable against BPF unlink (the trampoline keeps an fexit image)",
        functions: 1,
        setup: &["bpf-link fentry f0", "bpf-link fexit f0", "klp-enable f0"],
        threads: &["klp-disable f0", "bpf-unlink fentry f0"],
        preemptions: 3,
        expect: &[
            ("pre", Expect::NotApplicable),
            ("v2", out(&["ok ok"], &["share-leak@f0"], &[])),
            (
                "merged",
                out(&["ok ok", "ok* ok"], &["share-leak@f0"], &["share-leak@f0"]),
            ),
            (
                "fixes-2022",
                out(&["ok ok", "ok* ok"], &["share-leak@f0"], &["share-leak@f0"]),
            ),
            (
                "rcu-hash-2023",
                out(&["ok ok", "ok* ok"], &["share-leak@f0"], &["share-leak@f0"]),
            ),
            (
                "fixes-2025",
                out(&["ok ok", "ok* ok"], &["share-leak@f0"], &["share-leak@f0"]),
            ),
            (
                "alt-rinse-repeat",
                out(&["ok ok", "ok* ok"], &["share-leak@f0"], &["share-leak@f0"]),
            ),
            ("alt-blocking-peer", Expect::Deadlock),
            ("proposed", out(&["ok ok", "ok* ok"], &[], &[])),
            (
                "debian-6.1",
                out(&["ok ok", "ok* ok"], &["share-leak@f0"], &["share-leak@f0"]),
            ),
            (
                "debian-6.12",
                out(&["ok ok", "ok* ok"], &["share-leak@f0"], &["share-leak@f0"]),
            ),
            (
                "mainline-2026",
                out(&["ok ok", "ok* ok"], &["share-leak@f0"], &["share-leak@f0"]),
            ),
        ],
    },
    Case {
        name: "link_fexit_vs_kprobe_arm",
        about: "BPF fexit link against an IPMODIFY kprobe arm on f0",
        functions: 1,
        setup: &[],
        threads: &["bpf-link fexit f0", "kprobe-arm f0"],
        preemptions: 3,
        expect: &[
            ("pre", out(&["EBUSY ok", "ok EBUSY"], &[], &[])),
            ("v2", out(&["ok EAGAIN*", "ok ok"], &["lock-coverage"], &[])),
            ("merged", out(&["ok EAGAIN*", "ok ok"], &[], &[])),
            ("fixes-2022", out(&["ok EAGAIN*", "ok ok"], &[], &[])),
            (
                "rcu-hash-2023",
                out(
                    &["EBUSY ok", "ok EAGAIN*", "ok ok"],
                    &["atomicity@f0", "oracle:availability@f0"],
                    &[],
                ),
            ),
            ("fixes-2025", out(&["ok EAGAIN*", "ok ok"], &[], &[])),
            ("alt-rinse-repeat", out(&["ok EAGAIN*", "ok ok"], &[], &[])),
            ("alt-blocking-peer", out(&["ok ok"], &["lock-order"], &[])),
            ("proposed", out(&["ok EAGAIN*", "ok ok"], &[], &[])),
            ("debian-6.1", out(&["ok EAGAIN*", "ok ok"], &[], &[])),
            ("debian-6.12", out(&["ok EAGAIN*", "ok ok"], &[], &[])),
            ("mainline-2026", out(&["ok EAGAIN*", "ok ok"], &[], &[])),
        ],
    },
    Case {
        name: "three_owners",
        about: "BPF fexit link, livepatch enable and IPMODIFY kprobe arm on f0, three threads",
        functions: 1,
        setup: &[],
        threads: &["bpf-link fexit f0", "klp-enable f0", "kprobe-arm f0"],
        preemptions: 2,
        expect: &[
            (
                "pre",
                out(
                    &["EBUSY EBUSY ok", "EBUSY ok EBUSY", "ok EBUSY EBUSY"],
                    &[],
                    &[],
                ),
            ),
            (
                "v2",
                out(
                    &[
                        "ok EAGAIN* EAGAIN*",
                        "ok EAGAIN* ok",
                        "ok EBUSY ok",
                        "ok ok EAGAIN*",
                        "ok ok EBUSY",
                    ],
                    &["lock-coverage"],
                    &[],
                ),
            ),
            (
                "merged",
                out(
                    &[
                        "ok EAGAIN* EAGAIN*",
                        "ok EAGAIN* ok",
                        "ok EBUSY ok",
                        "ok ok EAGAIN*",
                        "ok ok EBUSY",
                    ],
                    &[],
                    &[],
                ),
            ),
            (
                "fixes-2022",
                out(
                    &[
                        "ok EAGAIN* EAGAIN*",
                        "ok EAGAIN* ok",
                        "ok EBUSY ok",
                        "ok ok EAGAIN*",
                        "ok ok EBUSY",
                    ],
                    &[],
                    &[],
                ),
            ),
            (
                "rcu-hash-2023",
                out(
                    &[
                        "EBUSY EBUSY ok",
                        "EBUSY ok EBUSY",
                        "ok EAGAIN* EAGAIN*",
                        "ok EAGAIN* ok",
                        "ok EBUSY ok",
                        "ok ok EAGAIN*",
                        "ok ok EBUSY",
                    ],
                    &["atomicity@f0", "oracle:availability@f0"],
                    &[],
                ),
            ),
            (
                "fixes-2025",
                out(
                    &[
                        "ok EAGAIN* EAGAIN*",
                        "ok EAGAIN* ok",
                        "ok EBUSY ok",
                        "ok ok EAGAIN*",
                        "ok ok EBUSY",
                    ],
                    &[],
                    &[],
                ),
            ),
            (
                "alt-rinse-repeat",
                out(
                    &[
                        "ok EAGAIN* EAGAIN*",
                        "ok EAGAIN* ok",
                        "ok EBUSY ok",
                        "ok ok EAGAIN*",
                        "ok ok EBUSY",
                    ],
                    &[],
                    &[],
                ),
            ),
            (
                "alt-blocking-peer",
                out(&["ok EBUSY ok", "ok ok EBUSY"], &["lock-order"], &[]),
            ),
            (
                "proposed",
                out(
                    &[
                        "ok EAGAIN* EAGAIN*",
                        "ok EAGAIN* ok",
                        "ok EBUSY ok",
                        "ok ok EAGAIN*",
                        "ok ok EBUSY",
                    ],
                    &[],
                    &[],
                ),
            ),
            (
                "debian-6.1",
                out(
                    &[
                        "ok EAGAIN* EAGAIN*",
                        "ok EAGAIN* ok",
                        "ok EBUSY ok",
                        "ok ok EAGAIN*",
                        "ok ok EBUSY",
                    ],
                    &[],
                    &[],
                ),
            ),
            (
                "debian-6.12",
                out(
                    &[
                        "ok EAGAIN* EAGAIN*",
                        "ok EAGAIN* ok",
                        "ok EBUSY ok",
                        "ok ok EAGAIN*",
                        "ok ok EBUSY",
                    ],
                    &[],
                    &[],
                ),
            ),
            (
                "mainline-2026",
                out(
                    &[
                        "ok EAGAIN* EAGAIN*",
                        "ok EAGAIN* ok",
                        "ok EBUSY ok",
                        "ok ok EAGAIN*",
                        "ok ok EBUSY",
                    ],
                    &[],
                    &[],
                ),
            ),
        ],
    },
];
