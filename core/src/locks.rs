//! The kernel's locks as named resources (SPEC §1), and lockdep's order rule.
//!
//! The core never blocks: a step that needs a lock yields a request naming it, and the driver
//! answers. Instances (`tr->mutex` of f0, of f1) matter for deadlock and for whether a recursion
//! hangs; lockdep reasons about classes (every `tr->mutex` is one class), and so do [`LockOrder`]
//! and the drivers' recursion check (`ftsim_drive::lockdep::validate`).

use crate::ids::{FnId, OpsId};
use std::fmt;

/// A lock instance.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Lock {
    /// `direct_mutex`: direct_functions and direct ops registration.
    Direct,
    /// `ftrace_lock`: records, the ops list, hashes of registered ops.
    Ftrace,
    /// `klp_mutex`: livepatch state.
    Klp,
    /// `kprobe_mutex`: kprobe state.
    Kprobe,
    /// `trace_types_lock`: tracer state.
    TraceTypes,
    /// `tr->mutex` of the BPF trampoline of a function.
    Tr(FnId),
    /// `ops->func_hash->regex_lock` of an ops.
    Regex(OpsId),
}

/// A lock class, as lockdep sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LockClass {
    Direct,
    Ftrace,
    Klp,
    Kprobe,
    TraceTypes,
    Tr,
    Regex,
}

impl LockClass {
    pub const ALL: [LockClass; 7] = [
        LockClass::Direct,
        LockClass::Ftrace,
        LockClass::Klp,
        LockClass::Kprobe,
        LockClass::TraceTypes,
        LockClass::Tr,
        LockClass::Regex,
    ];
    pub fn name(self) -> &'static str {
        match self {
            LockClass::Direct => "direct_mutex",
            LockClass::Ftrace => "ftrace_lock",
            LockClass::Klp => "klp_mutex",
            LockClass::Kprobe => "kprobe_mutex",
            LockClass::TraceTypes => "trace_types_lock",
            LockClass::Tr => "tr->mutex",
            LockClass::Regex => "regex_lock",
        }
    }
}

impl Lock {
    pub fn class(self) -> LockClass {
        match self {
            Lock::Direct => LockClass::Direct,
            Lock::Ftrace => LockClass::Ftrace,
            Lock::Klp => LockClass::Klp,
            Lock::Kprobe => LockClass::Kprobe,
            Lock::TraceTypes => LockClass::TraceTypes,
            Lock::Tr(_) => LockClass::Tr,
            Lock::Regex(_) => LockClass::Regex,
        }
    }
}

impl fmt::Display for Lock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Lock::Tr(fun) => write!(f, "tr({fun})->mutex"),
            Lock::Regex(o) => write!(f, "regex_lock#{}", o.0),
            other => f.write_str(other.class().name()),
        }
    }
}

/// Lockdep's rule over a whole run: every blocking acquisition of class B while holding class A
/// adds the edge A -> B; an acquisition that closes a cycle is a finding even if no run deadlocked.
/// Trylocks add no edge (they cannot wait). Same-class nesting adds no edge: the driver reports
/// it as recursion (`ftsim_drive::lockdep::validate`, lockdep's `check_deadlock`), whether it is
/// the same instance (the thread hangs) or another one.
#[derive(Clone, Debug, Default)]
pub struct LockOrder {
    /// edges[a][b]: a held while b acquired.
    edges: [[bool; 7]; 7],
}

impl LockOrder {
    fn idx(c: LockClass) -> usize {
        LockClass::ALL.iter().position(|x| *x == c).unwrap()
    }

    /// Records the acquisition of `new` while `held` are held. Returns the cycle closed by this
    /// acquisition, as a list of classes starting and ending at `new`, if any.
    pub fn acquire(
        &mut self,
        held: impl Iterator<Item = LockClass>,
        new: LockClass,
    ) -> Option<Vec<LockClass>> {
        let n = Self::idx(new);
        let mut cycle = None;
        for h in held {
            let a = Self::idx(h);
            if a == n || self.edges[a][n] {
                continue;
            }
            // Adding a -> n closes a cycle if n already reaches a.
            if cycle.is_none() {
                if let Some(path) = self.path(n, a) {
                    let mut c: Vec<LockClass> =
                        path.into_iter().map(|i| LockClass::ALL[i]).collect();
                    c.push(new);
                    cycle = Some(c);
                }
            }
            self.edges[a][n] = true;
        }
        cycle
    }

    fn path(&self, from: usize, to: usize) -> Option<Vec<usize>> {
        let mut prev = [usize::MAX; 7];
        let mut seen = [false; 7];
        // Each class enters the queue at most once: a fixed array, no allocation (lockdep runs
        // this at every acquisition that adds an edge).
        let mut queue = [0usize; 7];
        let mut len = 1;
        queue[0] = from;
        seen[from] = true;
        let mut qi = 0;
        while qi < len {
            let x = queue[qi];
            qi += 1;
            if x == to {
                let mut p = vec![to];
                let mut c = to;
                while c != from {
                    c = prev[c];
                    p.push(c);
                }
                p.reverse();
                return Some(p);
            }
            for y in 0..7 {
                if self.edges[x][y] && !seen[y] {
                    seen[y] = true;
                    prev[y] = x;
                    queue[len] = y;
                    len += 1;
                }
            }
        }
        None
    }

    /// The recorded edges as a bit mask: edge a -> b at bit `7a + b`, `a` and `b` the classes'
    /// positions in [`LockClass::ALL`] (a key for searches; no allocation, unlike [`LockOrder::edges`]).
    pub fn mask(&self) -> u64 {
        let mut m = 0u64;
        for (a, row) in self.edges.iter().enumerate() {
            for (b, &e) in row.iter().enumerate() {
                m |= (e as u64) << (a * 7 + b);
            }
        }
        m
    }

    /// Every recorded edge, for printing.
    pub fn edges(&self) -> Vec<(LockClass, LockClass)> {
        let mut v = Vec::new();
        for a in 0..7 {
            for b in 0..7 {
                if self.edges[a][b] {
                    v.push((LockClass::ALL[a], LockClass::ALL[b]));
                }
            }
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_cycle_is_reported_once_closed() {
        let mut o = LockOrder::default();
        assert_eq!(
            o.acquire([LockClass::Tr].into_iter(), LockClass::Direct),
            None
        );
        assert_eq!(
            o.acquire(
                [LockClass::Tr, LockClass::Direct].into_iter(),
                LockClass::Ftrace
            ),
            None
        );
        let c = o
            .acquire([LockClass::Direct].into_iter(), LockClass::Tr)
            .unwrap();
        assert_eq!(c, vec![LockClass::Tr, LockClass::Direct, LockClass::Tr]);
    }
}
