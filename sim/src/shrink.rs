//! Shrinking a failing run to a minimal reproducer: fewer operations, fewer threads, no needless
//! faults, a shorter schedule, smaller tracer sets, as long as the property still reproduces.
//! Greedy passes to a fixpoint, bounded by a replay budget.

use ftsim_core::property::Property;
use ftsim_core::script::{Line, Script};
use ftsim_core::seq::Faults;
use ftsim_core::Op;

/// Most replays one shrink may spend.
pub const REPLAYS_MAX: usize = 4_000;

struct Shrinker {
    target: Property,
    replays: usize,
}

impl Shrinker {
    fn reproduces(&mut self, s: &Script) -> bool {
        if self.replays >= REPLAYS_MAX {
            return false;
        }
        self.replays += 1;
        s.replay().has(self.target)
    }

    /// Tries `candidate`; adopts it if it still reproduces.
    fn attempt(&mut self, cur: &mut Script, candidate: Script) -> bool {
        if candidate != *cur && self.reproduces(&candidate) {
            *cur = candidate;
            true
        } else {
            false
        }
    }
}

/// The shortest script found that still shows `target`, and the replays it took.
pub fn shrink(script: &Script, target: Property) -> (Script, usize) {
    let mut sh = Shrinker { target, replays: 0 };
    let mut cur = script.clone();
    cur.expect = vec![target];
    if !sh.reproduces(&cur) {
        return (cur, sh.replays);
    }
    // Sequential first: one thread, no schedule.
    let seq = Script {
        lines: cur
            .lines
            .iter()
            .map(|l| Line {
                tid: 0,
                ..l.clone()
            })
            .collect(),
        schedule: None,
        ..cur.clone()
    };
    sh.attempt(&mut cur, seq);
    loop {
        let before = cur.clone();
        if cur.schedule.is_some() && cur.lines.iter().all(|l| l.tid == 0) {
            let seq = Script {
                schedule: None,
                ..cur.clone()
            };
            sh.attempt(&mut cur, seq);
        }
        drop_lines(&mut sh, &mut cur);
        if cur.schedule.is_some() {
            shorten_schedule(&mut sh, &mut cur);
            merge_threads(&mut sh, &mut cur);
        }
        drop_faults(&mut sh, &mut cur);
        shrink_sets(&mut sh, &mut cur);
        if cur == before || sh.replays >= REPLAYS_MAX {
            break;
        }
    }
    if cur.schedule.is_some() {
        // Print the decisions actually taken, so the file says exactly what happens.
        let taken = cur.replay().schedule;
        let exact = Script {
            schedule: Some(taken),
            ..cur.clone()
        };
        if sh.reproduces(&exact) {
            cur = exact;
            shorten_schedule(&mut sh, &mut cur);
        }
    }
    (cur, sh.replays)
}

/// ddmin-style: remove chunks of lines, halving the chunk size down to one.
fn drop_lines(sh: &mut Shrinker, cur: &mut Script) {
    let mut chunk = cur.lines.len().div_ceil(2).max(1);
    loop {
        let mut i = 0;
        while i < cur.lines.len() {
            let mut cand = cur.clone();
            let end = (i + chunk).min(cand.lines.len());
            cand.lines.drain(i..end);
            if !sh.attempt(cur, cand) {
                i += chunk;
            }
        }
        if chunk == 1 {
            break;
        }
        chunk = chunk.div_ceil(2);
    }
}

fn shorten_schedule(sh: &mut Shrinker, cur: &mut Script) {
    // Binary search for the shortest prefix that still reproduces.
    let Some(s) = cur.schedule.clone() else {
        return;
    };
    let (mut lo, mut hi) = (0usize, s.len());
    while lo < hi {
        let mid = (lo + hi) / 2;
        let cand = Script {
            schedule: Some(s[..mid].to_vec()),
            ..cur.clone()
        };
        if sh.reproduces(&cand) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    let cand = Script {
        schedule: Some(s[..hi].to_vec()),
        ..cur.clone()
    };
    sh.attempt(cur, cand);
}

fn merge_threads(sh: &mut Shrinker, cur: &mut Script) {
    for i in 0..cur.lines.len() {
        if cur.lines[i].tid == 0 {
            continue;
        }
        let mut cand = cur.clone();
        cand.lines[i].tid = 0;
        sh.attempt(cur, cand);
    }
}

fn drop_faults(sh: &mut Shrinker, cur: &mut Script) {
    for i in 0..cur.lines.len() {
        if cur.lines[i].faults.is_none() {
            continue;
        }
        let mut cand = cur.clone();
        cand.lines[i].faults = Faults::NONE;
        if sh.attempt(cur, cand) {
            continue;
        }
        for bit in 0..32 {
            let f = cur.lines[i].faults;
            for which in 0..3 {
                let mut g = f;
                let m = match which {
                    0 => &mut g.allocs,
                    1 => &mut g.builds,
                    _ => &mut g.trylocks,
                };
                if *m & (1 << bit) == 0 {
                    continue;
                }
                *m &= !(1 << bit);
                let mut cand = cur.clone();
                cand.lines[i].faults = g;
                sh.attempt(cur, cand);
            }
        }
    }
}

fn shrink_sets(sh: &mut Shrinker, cur: &mut Script) {
    for i in 0..cur.lines.len() {
        let Op::TracerRegister {
            filter, notrace, ..
        } = &cur.lines[i].op
        else {
            continue;
        };
        let (nf, nn) = (filter.len(), notrace.len());
        for j in (0..nf).rev() {
            let mut cand = cur.clone();
            if let Op::TracerRegister { filter, .. } = &mut cand.lines[i].op {
                if j < filter.len() {
                    filter.remove(j);
                }
            }
            sh.attempt(cur, cand);
        }
        for j in (0..nn).rev() {
            let mut cand = cur.clone();
            if let Op::TracerRegister { notrace, .. } = &mut cand.lines[i].op {
                if j < notrace.len() {
                    notrace.remove(j);
                }
            }
            sh.attempt(cur, cand);
        }
    }
}
