//! Symmetry: the classes of interchangeable functions and tracers, and the canonical key of a
//! state: from the per-function parts of one walk, sorted within each class ([`super::parts`]);
//! for a tangled state, the least renamed fingerprint over the candidate renamings, which the
//! signatures of the same walk choose.

use ftsim_core::kernel::Kernel;
use ftsim_core::locks::LockOrder;
use ftsim_core::machine::Thread;
use ftsim_core::protocol::Protocol;
use ftsim_core::world::World;

use super::encode::{mix, mum, plain_key, Stream, SECRET};
pub use super::parts::SIGNATURE_IGNORES;
use super::parts::{self, gather, gather_after, own_parts};
use super::{encode, hash128, Perm, Scratch, FUNCTIONS_MAX, PERMS_MAX};

/// The symmetry classes of a world and its initial state.
pub struct Symmetry {
    /// Classes of interchangeable functions (built-in; one per module), each ascending.
    classes: Vec<Vec<u16>>,
    tracers: usize,
    functions: usize,
    enabled: bool,
    /// The key from per-function parts where the state is not tangled ([`super::parts`]); off:
    /// one full encoding per candidate renaming for every state (the same counts; for measuring
    /// and for the tests).
    parts: bool,
    identity: Perm,
    /// `permutations(n)` for small n.
    orders: Vec<Vec<Vec<u8>>>,
}

/// A cheap order-sensitive accumulation for signatures.
#[inline]
fn acc(h: u64, w: u64) -> u64 {
    mum(h ^ w ^ SECRET[0], SECRET[1] ^ w.rotate_left(29))
}

impl Symmetry {
    pub fn new(world: &World, _proto: Protocol, enabled: bool) -> Symmetry {
        let builtin: Vec<u16> = world
            .fns()
            .filter(|f| world.module_of(*f).is_none())
            .map(|f| f.0)
            .collect();
        let mut classes = vec![builtin];
        for m in &world.modules {
            classes.push(m.iter().map(|f| f.0).collect());
        }
        classes.retain(|c| c.len() > 1);
        Symmetry {
            classes,
            tracers: world.tracers as usize,
            functions: world.functions as usize,
            enabled,
            parts: true,
            identity: Perm::identity(world.functions as usize, world.tracers as usize),
            orders: (0..=6).map(permutations).collect(),
        }
    }

    /// The same symmetry, computing every key by one full encoding per renaming (`false`) or,
    /// where it can, from per-function parts (`true`, the default). Keys differ between the two;
    /// the equivalence they define, and so every count, does not.
    pub fn with_parts(mut self, on: bool) -> Symmetry {
        self.parts = on;
        self
    }

    /// Whether any renaming is possible at all.
    fn trivial(&self) -> bool {
        !self.enabled || (self.classes.is_empty() && self.tracers < 2)
    }

    /// The canonical key of a kernel and its threads (see the module docs): with an operation
    /// in flight (or no renaming possible and parts off), the hash of the fingerprint's words;
    /// with no renaming possible, the hash of the fingerprint's words per function and the
    /// rest's ([`plain_key`]; where that split loses what the fingerprint says, the hash of
    /// its words); otherwise, from one walk ([`gather`]), the key from the parts, or for a
    /// tangled state (or parts off) the hash of the least encoding over the candidate
    /// renamings. (With no renaming possible the key from parts, in their own order, is exact
    /// too, but costs more: callgrind, 3 functions, depth 4, `--no-symmetry`, 8.10 G
    /// instructions against 7.02 G for the fingerprint's words at 0f93650.)
    pub fn key(&self, k: &Kernel, threads: &[Thread], sc: &mut Scratch) -> u128 {
        self.key_with(None, k, threads, sc)
    }

    /// [`Symmetry::key`] of `k` with `threads`, a successor of `parent`, walking only the
    /// functions whose sections may have changed and the rest ([`super::parts::gather_after`]):
    /// the same key (for tests: the explorer keeps the parent's parts across its successors).
    pub fn key_after(
        &self,
        parent: &Kernel,
        k: &Kernel,
        threads: &[Thread],
        sc: &mut Scratch,
    ) -> u128 {
        sc.own_parent_valid = false;
        self.key_with(Some(parent), k, threads, sc)
    }

    /// [`Symmetry::key`]; with `parent`, of a successor of it: the parent's own parts are taken
    /// into `sc.own_parent` at the first call after `sc.own_parent_valid` was reset (every
    /// entry point of the sequential space resets it) and kept for the next.
    pub(super) fn key_with(
        &self,
        parent: Option<&Kernel>,
        k: &Kernel,
        threads: &[Thread],
        sc: &mut Scratch,
    ) -> u128 {
        let quiet = k.locks.is_empty()
            && threads
                .iter()
                .all(|th| th.stack.is_empty() && th.pending.is_none());
        let mut best = std::mem::take(&mut sc.best);
        sc.keys += 1;
        let trivial = self.trivial();
        if !quiet || (trivial && !self.parts) {
            encode(k, threads, &self.identity, sc, &mut best);
        } else if trivial {
            let key = plain_key(parent, k, threads, sc);
            if let Some(key) = key {
                sc.best = best;
                return key;
            }
            encode(k, threads, &self.identity, sc, &mut best);
        } else {
            match parent {
                Some(p) => {
                    if !sc.own_parent_valid {
                        own_parts(p, &mut sc.buf, &mut sc.parts);
                        std::mem::swap(&mut sc.own_parent, &mut sc.parts.own);
                        sc.parts.new_parent();
                        sc.own_parent_valid = true;
                    }
                    gather_after(p, &sc.own_parent, k, threads, &mut sc.buf, &mut sc.parts);
                }
                None => gather(k, threads, &mut sc.buf, &mut sc.parts),
            }
            if self.parts && !sc.parts.tangled {
                let orders = &self.orders[self.tracers.min(self.orders.len() - 1)];
                sc.keys_from_parts += 1;
                sc.renamings += orders.len() as u64;
                sc.best = best;
                return parts::key(&mut sc.parts, &self.classes, orders);
            }
            self.least_encoding(k, threads, sc, &mut best);
        }
        let key = hash128(&best);
        sc.best = best;
        key
    }

    /// The least encoding of `k` with `threads` over the candidate renamings, into `best`.
    fn least_encoding(
        &self,
        k: &Kernel,
        threads: &[Thread],
        sc: &mut Scratch,
        best: &mut Vec<u64>,
    ) {
        self.signatures(sc);
        self.candidates(sc);
        let perms = std::mem::take(&mut sc.perms);
        sc.renamings += perms.len() as u64;
        let mut words = std::mem::take(&mut sc.words);
        for (i, p) in perms.iter().enumerate() {
            if i == 0 {
                encode(k, threads, p, sc, best);
            } else {
                encode(k, threads, p, sc, &mut words);
                if words < *best {
                    std::mem::swap(&mut words, best);
                }
            }
        }
        sc.words = words;
        sc.perms = perms;
    }

    /// The candidate renamings (into `sc.perms`), from the signatures and free flags
    /// ([`Symmetry::signatures`]).
    fn candidates(&self, sc: &mut Scratch) {
        let nt = self.tracers;
        // Base renaming: each class sorted by (free last, signature, id); runs of equal
        // signatures (members kept in `sc.run_members`) are tried in every order, but among
        // free ones (interchangeable by an automorphism, [`super::parts`]) one order does.
        let mut base = self.identity;
        sc.runs.clear();
        sc.run_members.clear();
        for class in &self.classes {
            sc.order.clear();
            sc.order.extend(class.iter().copied());
            let (sig, pr) = (&sc.sig_f, &sc.pristine_f);
            sc.order
                .sort_unstable_by_key(|&f| (pr[f as usize], sig[f as usize], f));
            for (j, &f) in sc.order.iter().enumerate() {
                base.f[f as usize] = class[j];
            }
            let mut j = 0;
            while j < sc.order.len() {
                let f = sc.order[j] as usize;
                let mut e = j + 1;
                while e < sc.order.len()
                    && !pr[f]
                    && !pr[sc.order[e] as usize]
                    && sig[sc.order[e] as usize] == sig[f]
                {
                    e += 1;
                }
                if e - j > 1 {
                    sc.runs.push((false, sc.run_members.len(), e - j));
                    sc.run_members.extend_from_slice(&sc.order[j..e]);
                }
                j = e;
            }
        }
        if nt > 1 {
            sc.torder.clear();
            sc.torder.extend(0..nt as u8);
            let (sig, pr) = (&sc.sig_t, &sc.pristine_t);
            sc.torder
                .sort_unstable_by_key(|&t| (pr[t as usize], sig[t as usize], t));
            for (j, &t) in sc.torder.iter().enumerate() {
                base.t[t as usize] = j as u8;
            }
            let mut j = 0;
            while j < nt {
                let t = sc.torder[j] as usize;
                let mut e = j + 1;
                while e < nt
                    && !pr[t]
                    && !pr[sc.torder[e] as usize]
                    && sig[sc.torder[e] as usize] == sig[t]
                {
                    e += 1;
                }
                if e - j > 1 {
                    sc.runs.push((true, sc.run_members.len(), e - j));
                    sc.run_members
                        .extend(sc.torder[j..e].iter().map(|&x| x as u16));
                }
                j = e;
            }
        }
        base.set_inverse();
        sc.perms.clear();
        sc.perms.push(base);
        // For each run, every order of its members over the slots the base gives them.
        for r in 0..sc.runs.len() {
            let (is_t, off, len) = sc.runs[r];
            let members = &sc.run_members[off..off + len];
            let mut slots = [0usize; FUNCTIONS_MAX as usize];
            for (i, &m) in members.iter().enumerate() {
                slots[i] = if is_t {
                    base.t[m as usize] as usize
                } else {
                    base.f[m as usize] as usize
                };
            }
            let orders = self.orders(len);
            let before = sc.perms.len();
            'grow: for pi in 0..before {
                for ord in orders.iter().skip(1) {
                    if sc.perms.len() >= PERMS_MAX {
                        break 'grow;
                    }
                    let mut q = sc.perms[pi];
                    for (i, &m) in members.iter().enumerate() {
                        if is_t {
                            q.t[m as usize] = slots[ord[i] as usize] as u8;
                        } else {
                            q.f[m as usize] = slots[ord[i] as usize] as u16;
                        }
                    }
                    q.set_inverse();
                    sc.perms.push(q);
                }
            }
        }
    }

    /// Every order of `len` items (the identity first).
    fn orders(&self, len: usize) -> std::borrow::Cow<'_, [Vec<u8>]> {
        match self.orders.get(len) {
            Some(v) => std::borrow::Cow::Borrowed(v.as_slice()),
            None => std::borrow::Cow::Owned(permutations(len)),
        }
    }

    /// Per function and tracer, from what [`gather`] took (`sc.parts`): a signature that names
    /// no function or tracer, and whether it is free (see [`super::parts`]). A function's
    /// signature is its part's hash and an order-free sum over what tracers say about it; a
    /// tracer's, its part's hash and an order-free sum over what it says about each function,
    /// with that function's signature.
    fn signatures(&self, sc: &mut Scratch) {
        let pb = &sc.parts;
        let n = self.functions;
        sc.sig_f.clear();
        sc.pristine_f.clear();
        for f in 0..n {
            let h = pb.hashes[f];
            let told = pb.ftr.iter().filter(|e| e.0 as usize == f);
            let sum = told.fold(0u64, |s, e| s.wrapping_add(mix(e.2)));
            sc.sig_f
                .push(acc(acc(acc(0, h as u64), (h >> 64) as u64), sum));
            sc.pristine_f.push(pb.free(f, n));
        }
        sc.sig_t.clear();
        sc.pristine_t.clear();
        for t in 0..self.tracers {
            let h = pb.hashes[n + t];
            let says = pb.ftr.iter().filter(|e| e.1 as usize == t);
            let sum = says.fold(0u64, |s, e| {
                s.wrapping_add(mix(e.2 ^ mix(sc.sig_f[e.0 as usize])))
            });
            sc.sig_t
                .push(acc(acc(acc(0, h as u64), (h >> 64) as u64), sum));
            sc.pristine_t.push(pb.free(n + t, n));
        }
    }

    /// The signatures and free flags of the functions of `k`, then of its tracers, as words (for
    /// the walk's coverage test, which lists [`SIGNATURE_IGNORES`]).
    pub fn signatures_of(&self, k: &Kernel, threads: &[Thread]) -> Vec<u64> {
        let mut sc = Scratch::default();
        gather(k, threads, &mut sc.buf, &mut sc.parts);
        self.signatures(&mut sc);
        let flags = |v: &[bool]| v.iter().map(|&b| b as u64).collect::<Vec<_>>();
        [
            sc.sig_f.clone(),
            flags(&sc.pristine_f),
            sc.sig_t.clone(),
            flags(&sc.pristine_t),
        ]
        .concat()
    }
}

/// Every permutation of `0..n`, in lexicographic order (the identity first), at most
/// [`PERMS_MAX`].
pub(super) fn permutations(n: usize) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut cur: Vec<u8> = (0..n as u8).collect();
    while out.len() < PERMS_MAX {
        out.push(cur.clone());
        // next_permutation
        let Some(i) = (0..n.saturating_sub(1))
            .rev()
            .find(|&i| cur[i] < cur[i + 1])
        else {
            return out;
        };
        let j = (i + 1..n).rev().find(|&j| cur[j] > cur[i]).unwrap();
        cur.swap(i, j);
        cur[i + 1..].reverse();
    }
    out
}

/// The lockdep order graph as a bit mask (edge a -> b at bit 7a + b).
pub fn order_mask(o: &LockOrder) -> u64 {
    o.mask()
}

/// A key with the explorer's bookkeeping beside it (`fp` alone when that is all zero): hashed
/// by [`Stream`], the parts' multiply-fold hash, which costs a fraction of a [`StableHasher`]
/// (two full mixes per word).
///
/// [`StableHasher`]: ftsim_core::fingerprint::StableHasher
pub(super) fn combine(fp: u128, extra: &[u64]) -> u128 {
    if extra.iter().all(|&x| x == 0) {
        return fp;
    }
    let mut h = Stream::default();
    h.word(COMBINED);
    h.word(fp as u64);
    h.word((fp >> 64) as u64);
    for &x in extra {
        h.word(x);
    }
    h.finish()
}

/// The first word of a key [`combine`]d with bookkeeping.
const COMBINED: u64 = 0x636f_6d62_696e_6564;
