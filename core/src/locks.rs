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
#[derive(Clone, Default)]
pub struct LockOrder {
    /// Edge a -> b (a held while b acquired) at bit `7a + b`, `a` and `b` the classes' positions
    /// in [`LockClass::ALL`]: the graph is 49 bits of one word (the mask itself).
    edges: u64,
}

/// The seven bits of one class's row of [`LockOrder`]'s edges.
const ROW: u64 = (1 << 7) - 1;

impl LockOrder {
    /// The class's position in [`LockClass::ALL`] (its declaration order; the test holds them
    /// equal).
    #[inline]
    fn idx(c: LockClass) -> usize {
        c as usize
    }

    #[inline]
    fn has(&self, a: usize, b: usize) -> bool {
        self.edges & 1 << (a * 7 + b) != 0
    }

    /// Whether the edge `a -> b` is recorded.
    #[inline]
    pub fn has_edge(&self, a: LockClass, b: LockClass) -> bool {
        self.has(Self::idx(a), Self::idx(b))
    }

    /// Records the acquisition of `new` while `held` are held. Returns the cycle closed by this
    /// acquisition, as a list of classes starting and ending at `new`, if any.
    #[inline]
    pub fn acquire(
        &mut self,
        held: impl Iterator<Item = LockClass>,
        new: LockClass,
    ) -> Option<Vec<LockClass>> {
        let n = Self::idx(new);
        let mut cycle = None;
        for h in held {
            let a = Self::idx(h);
            if a == n || self.has(a, n) {
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
            self.edges |= 1 << (a * 7 + n);
        }
        cycle
    }

    /// The shortest path `from` -> `to` breadth first, successors in class order (the first one
    /// found): `None` if `to` is not reachable.
    fn path(&self, from: usize, to: usize) -> Option<Vec<usize>> {
        let mut prev = [usize::MAX; 7];
        let mut seen = 1u8 << from;
        // Each class enters the queue at most once: a fixed array, no allocation (lockdep runs
        // this at every acquisition that adds an edge).
        let mut queue = [0usize; 7];
        let mut len = 1;
        queue[0] = from;
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
            let mut next = (self.edges >> (x * 7)) as u8 & ROW as u8 & !seen;
            while next != 0 {
                let y = next.trailing_zeros() as usize;
                next &= next - 1;
                seen |= 1 << y;
                prev[y] = x;
                queue[len] = y;
                len += 1;
            }
        }
        None
    }

    /// The recorded edges as a bit mask: edge a -> b at bit `7a + b`, `a` and `b` the classes'
    /// positions in [`LockClass::ALL`] (a key for searches; no allocation, unlike [`LockOrder::edges`]).
    #[inline]
    pub fn mask(&self) -> u64 {
        self.edges
    }

    /// Every recorded edge, for printing.
    pub fn edges(&self) -> Vec<(LockClass, LockClass)> {
        let mut v = Vec::new();
        for a in 0..7 {
            for b in 0..7 {
                if self.has(a, b) {
                    v.push((LockClass::ALL[a], LockClass::ALL[b]));
                }
            }
        }
        v
    }
}

/// As the derived `Debug` of the adjacency matrix it replaced: `edges[a][b]` for `a -> b`.
impl fmt::Debug for LockOrder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m: [[bool; 7]; 7] = std::array::from_fn(|a| std::array::from_fn(|b| self.has(a, b)));
        f.debug_struct("LockOrder").field("edges", &m).finish()
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

    /// `LockOrder::idx` is a class's declaration order: its position in `LockClass::ALL`.
    #[test]
    fn class_index_is_its_position_in_all() {
        for (i, c) in LockClass::ALL.iter().enumerate() {
            assert_eq!(LockOrder::idx(*c), i, "{c:?}");
        }
    }

    /// The mask is bit `7a + b` for `a -> b`; the path the cycle reports is the shortest, found
    /// breadth first with successors in class order.
    #[test]
    fn mask_bits_and_the_shortest_cycle() {
        let mut o = LockOrder::default();
        let (d, f, k, tr) = (
            LockClass::Direct,
            LockClass::Ftrace,
            LockClass::Klp,
            LockClass::Tr,
        );
        assert_eq!(o.acquire([d].into_iter(), f), None);
        assert_eq!(o.acquire([f].into_iter(), k), None);
        assert_eq!(o.acquire([d].into_iter(), k), None);
        assert_eq!(o.mask(), 1 << 1 | 1 << (7 + 2) | 1 << 2);
        assert_eq!(o.acquire([k].into_iter(), tr), None);
        // tr -> d closes d -> k -> tr (shorter than d -> f -> k -> tr).
        let c = o.acquire([tr].into_iter(), d).unwrap();
        assert_eq!(c, vec![d, k, tr, d]);
        assert_eq!(o.edges().len(), 5);
        assert!(format!("{o:?}").starts_with("LockOrder { edges: [[false, true, true,"));
    }
}
