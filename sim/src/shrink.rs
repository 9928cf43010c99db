//! Shrinking a failing run to a minimal reproducer: fewer operations, fewer threads, no needless
//! faults, a shorter schedule, smaller tracer sets, as long as the property still reproduces.
//! Delta debugging over each of operations, threads and schedule steps, to a fixpoint, bounded
//! by a replay budget.
//!
//! A concurrent script's schedule names a thread per step, so removing an operation alone would
//! hand its steps to the thread's next operation and scramble the interleaving. The shrinker
//! first pins the schedule to the decisions actually taken (one entry per step), then removes an
//! operation together with the entries of the steps it ran ([`Replay::step_lines`]), a thread
//! with all its operations and their steps, and chunks of schedule entries. Threads are numbered
//! in order of their first line, and a sequential script (one thread, no schedule) is preferred
//! whenever it still shows the property.

use ftsim_core::property::Property;
use ftsim_core::Op;
use ftsim_drive::script::{Line, Replay, Script};
use ftsim_drive::seq::Faults;

/// Most replays one shrink may spend.
pub const REPLAYS_MAX: usize = 12_000;

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
    loop {
        let before = cur.clone();
        try_sequential(&mut sh, &mut cur);
        if cur.schedule.is_some() {
            pin_schedule(&mut sh, &mut cur);
            canonical_threads(&mut sh, &mut cur);
            drop_threads(&mut sh, &mut cur);
            drop_ops_with_steps(&mut sh, &mut cur);
            drop_steps(&mut sh, &mut cur);
            shorten_schedule(&mut sh, &mut cur);
            merge_threads(&mut sh, &mut cur);
        }
        drop_lines(&mut sh, &mut cur);
        drop_faults(&mut sh, &mut cur);
        shrink_sets(&mut sh, &mut cur);
        if cur == before || sh.replays >= REPLAYS_MAX {
            break;
        }
    }
    if cur.schedule.is_some() {
        // Print the decisions actually taken, so the file says exactly what happens.
        pin_schedule(&mut sh, &mut cur);
        shorten_schedule(&mut sh, &mut cur);
        canonical_threads(&mut sh, &mut cur);
    }
    (cur, sh.replays)
}

/// One thread, no schedule: the operations one after another.
fn try_sequential(sh: &mut Shrinker, cur: &mut Script) {
    if cur.schedule.is_none() && cur.lines.iter().all(|l| l.tid == 0) {
        return;
    }
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
    sh.attempt(cur, seq);
}

/// The schedule becomes the decisions the replay takes (same run, one entry per step), so that
/// entry `i` is step `i` and [`Replay::step_lines`] says which operation it ran.
fn pin_schedule(sh: &mut Shrinker, cur: &mut Script) -> Option<Replay> {
    let r = cur.replay();
    let pinned = Script {
        schedule: Some(r.schedule.clone()),
        ..cur.clone()
    };
    if pinned == *cur {
        return Some(r);
    }
    if sh.reproduces(&pinned) {
        *cur = pinned;
        return Some(cur.replay());
    }
    None
}

/// The script without the lines in `drop` and without the schedule entries of their steps
/// (`r` is the replay of the pinned `cur`).
fn without(cur: &Script, r: &Replay, drop: &[usize]) -> Script {
    let schedule = cur.schedule.as_ref().map(|s| {
        s.iter()
            .enumerate()
            .filter(|(i, _)| r.step_lines.get(*i).is_none_or(|l| !drop.contains(l)))
            .map(|(_, t)| *t)
            .collect()
    });
    Script {
        lines: cur
            .lines
            .iter()
            .enumerate()
            .filter(|(i, _)| !drop.contains(i))
            .map(|(_, l)| l.clone())
            .collect(),
        schedule,
        ..cur.clone()
    }
}

/// Threads numbered 0, 1, ... in order of their first line; the schedule follows.
fn canonical_threads(sh: &mut Shrinker, cur: &mut Script) {
    let mut order: Vec<u8> = Vec::new();
    for l in &cur.lines {
        if !order.contains(&l.tid) {
            order.push(l.tid);
        }
    }
    let map = |t: u8| order.iter().position(|x| *x == t).map_or(t, |p| p as u8);
    let cand = Script {
        lines: cur
            .lines
            .iter()
            .map(|l| Line {
                tid: map(l.tid),
                ..l.clone()
            })
            .collect(),
        schedule: cur.schedule.as_ref().map(|s| {
            s.iter()
                .filter(|t| order.contains(t))
                .map(|t| map(*t))
                .collect()
        }),
        ..cur.clone()
    };
    sh.attempt(cur, cand);
}

/// Removes whole threads: their operations and the steps they ran.
fn drop_threads(sh: &mut Shrinker, cur: &mut Script) {
    let mut t = cur.threads();
    while t > 0 {
        t -= 1;
        let Some(r) = pin_schedule(sh, cur) else {
            return;
        };
        let drop: Vec<usize> = (0..cur.lines.len())
            .filter(|&i| cur.lines[i].tid as usize == t)
            .collect();
        if !drop.is_empty() && drop.len() < cur.lines.len() {
            let cand = without(cur, &r, &drop);
            sh.attempt(cur, cand);
        }
    }
}

/// ddmin over operations, each removed with the steps it ran.
fn drop_ops_with_steps(sh: &mut Shrinker, cur: &mut Script) {
    let mut chunk = cur.lines.len().div_ceil(2).max(1);
    loop {
        let mut i = 0;
        while i < cur.lines.len() {
            let Some(r) = pin_schedule(sh, cur) else {
                return;
            };
            let end = (i + chunk).min(cur.lines.len());
            let drop: Vec<usize> = (i..end).collect();
            let cand = without(cur, &r, &drop);
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

/// ddmin over schedule entries (any of them, not only a suffix).
fn drop_steps(sh: &mut Shrinker, cur: &mut Script) {
    let len = cur.schedule.as_ref().map_or(0, |s| s.len());
    let mut chunk = len.div_ceil(2).max(1);
    loop {
        let mut i = 0;
        while i < cur.schedule.as_ref().map_or(0, |s| s.len()) {
            let mut cand = cur.clone();
            let s = cand.schedule.as_mut().unwrap();
            let end = (i + chunk).min(s.len());
            s.drain(i..end);
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
        for to in 0..cur.threads() as u8 {
            if cur.lines[i].tid == to {
                continue;
            }
            let mut cand = cur.clone();
            cand.lines[i].tid = to;
            if sh.attempt(cur, cand) {
                break;
            }
        }
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
