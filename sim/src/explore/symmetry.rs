//! Symmetry: the classes of interchangeable functions and tracers, and the canonical key of a
//! state (the least renamed fingerprint over the candidate renamings; with two or more, the least
//! combination of per-function parts, [`super::parts`]).

use ftsim_core::fingerprint::StableHasher;
use ftsim_core::hash::DEAD_IP;
use ftsim_core::ids::{Addr, FnId, OpsId, OpsOwner, TracerId};
use ftsim_core::kernel::{CallSite, FnState, Kernel, Ops, TracerState};
use ftsim_core::locks::LockOrder;
use ftsim_core::machine::Thread;
use ftsim_core::protocol::Protocol;
use ftsim_core::world::World;

use super::encode::{mix, mum, SECRET};
use super::parts::least_key;
use super::{encode, hash128, Perm, Scratch, FUNCTIONS_MAX, PERMS_MAX};

/// The symmetry classes of a world and its initial state.
pub struct Symmetry {
    /// Classes of interchangeable functions (built-in; one per module), each ascending.
    classes: Vec<Vec<u16>>,
    tracers: usize,
    functions: usize,
    init_fns: Vec<FnState>,
    init_ops: Vec<Ops>,
    enabled: bool,
    /// With two or more candidate renamings, the key from per-function parts
    /// ([`super::parts`]); off: one full encoding per renaming (the same counts; for measuring).
    parts: bool,
    identity: Perm,
    /// `permutations(n)` for small n.
    orders: Vec<Vec<Vec<u8>>>,
}

/// A cheap order-sensitive accumulation for signatures.
#[inline]
pub(super) fn acc(h: u64, w: u64) -> u64 {
    mum(h ^ w ^ SECRET[0], SECRET[1] ^ w.rotate_left(29))
}

/// How an address relates to function `f`, in words that name no function.
pub(super) fn rel(k: &Kernel, a: Addr, f: usize) -> u64 {
    match a {
        Addr::Image { tr, serial } => {
            let cur = k
                .tr(tr)
                .cur_image
                .as_ref()
                .is_some_and(|im| im.serial == serial);
            1 | ((tr.0 as usize == f) as u64) << 1 | (cur as u64) << 2
        }
        Addr::Sample { f: g, .. } => {
            let cur = k.fstate(g).direct_user == Some(a);
            8 | ((g.0 as usize == f) as u64) << 1 | (cur as u64) << 2
        }
    }
}

pub(super) fn addr_fn(a: Addr) -> usize {
    match a {
        Addr::Image { tr, .. } => tr.0 as usize,
        Addr::Sample { f, .. } => f.0 as usize,
    }
}

impl Symmetry {
    pub fn new(world: &World, proto: Protocol, enabled: bool) -> Symmetry {
        let k0 = Kernel::new(world, proto);
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
            init_fns: k0.fns.clone(),
            init_ops: k0.ops.clone(),
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

    /// The canonical key of a kernel and its threads (see the module docs): the hash of the
    /// smallest encoding over the candidate renamings, or with two or more candidates (and parts
    /// on) the least key from per-function parts.
    pub fn key(&self, k: &Kernel, threads: &[Thread], sc: &mut Scratch) -> u128 {
        let quiet = k.locks.is_empty()
            && threads
                .iter()
                .all(|th| th.stack.is_empty() && th.pending.is_none());
        let mut best = std::mem::take(&mut sc.best);
        if self.trivial() || !quiet {
            encode(k, threads, &self.identity, sc, &mut best);
        } else {
            self.candidates(k, sc);
            let perms = std::mem::take(&mut sc.perms);
            sc.renamings += perms.len() as u64;
            // Two or more candidates: the key from the per-function parts, hashed once.
            let from_parts = (self.parts && perms.len() > 1)
                .then(|| least_key(k, threads, &perms, &mut sc.buf, &mut sc.parts))
                .flatten();
            if let Some(key) = from_parts {
                sc.keys_from_parts += 1;
                sc.keys += 1;
                sc.perms = perms;
                sc.best = best;
                return key;
            }
            let mut words = std::mem::take(&mut sc.words);
            for (i, p) in perms.iter().enumerate() {
                if i == 0 {
                    encode(k, threads, p, sc, &mut best);
                } else {
                    encode(k, threads, p, sc, &mut words);
                    if words < best {
                        std::mem::swap(&mut words, &mut best);
                    }
                }
            }
            sc.words = words;
            sc.perms = perms;
        }
        sc.keys += 1;
        let key = hash128(&best);
        sc.best = best;
        key
    }

    /// Signatures, pristine flags, and the candidate renamings (into `sc.perms`).
    fn candidates(&self, k: &Kernel, sc: &mut Scratch) {
        self.signatures(k, sc);
        let nt = self.tracers;
        // Base renaming: each class sorted by (pristine last, signature, id); runs of equal
        // signatures (members kept in `sc.run_members`) are tried in every order.
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

    /// Per function and tracer: a signature that names no function or tracer, and whether it
    /// is pristine (see the module docs).
    fn signatures(&self, k: &Kernel, sc: &mut Scratch) {
        references(k, self.functions, sc);
        sc.sig_f.clear();
        sc.pristine_f.clear();
        for f in 0..self.functions {
            let pristine = !sc.mentioned[f] && self.fn_pristine(k, f);
            sc.pristine_f.push(pristine);
            if pristine {
                sc.sig_f.push(0);
                continue;
            }
            sc.sig_f.push(fn_signature(k, f).wrapping_add(sc.acc[f]));
        }
        self.tracer_signatures(k, sc);
    }

    /// Function `f` is in its initial state with its initial ops (mentions aside).
    fn fn_pristine(&self, k: &Kernel, f: usize) -> bool {
        let layout = k.info.layout;
        let fid = FnId(f as u16);
        let klp = layout.id(OpsOwner::Klp(fid));
        let bpf = layout.id(OpsOwner::Bpf(fid));
        k.fns[f] == self.init_fns[f]
            && *k.op(klp) == self.init_ops[klp.0 as usize]
            && *k.op(bpf) == self.init_ops[bpf.0 as usize]
    }

    /// Per tracer: its signature (from the signatures of the functions its hashes name) and
    /// whether it is pristine.
    fn tracer_signatures(&self, k: &Kernel, sc: &mut Scratch) {
        let layout = k.info.layout;
        sc.sig_t.clear();
        sc.pristine_t.clear();
        for t in 0..self.tracers {
            let id = layout.id(OpsOwner::Tracer(TracerId(t as u8)));
            let o = k.op(id);
            sc.pristine_t
                .push(k.tracers[t] == TracerState::default() && *o == self.init_ops[id.0 as usize]);
            let mut sum = 0u64;
            for (tag, raw) in [(1u64, o.filter.raw()), (2u64, o.notrace.raw())] {
                for &(ip, cnt) in raw {
                    let who = if ip == DEAD_IP {
                        0
                    } else {
                        sc.sig_f[ip as usize] ^ (sc.pristine_f[ip as usize] as u64)
                    };
                    sum = sum.wrapping_add(mix(who ^ mix(tag << 20 | cnt as u64)));
                }
            }
            let h = acc(
                acc(
                    0,
                    k.tracers[t].registered as u64 | (o.flags as u64) << 8 | pos(k, id) << 24,
                ),
                sum,
            );
            sc.sig_t.push(h);
        }
    }
}

/// The order-free sums over every reference to each function (`sc.acc`), and which functions
/// anything mentions (`sc.mentioned`).
fn references(k: &Kernel, n: usize, sc: &mut Scratch) {
    let layout = k.info.layout;
    sc.acc.clear();
    sc.acc.resize(n, 0);
    sc.mentioned.clear();
    sc.mentioned.resize(n, false);
    // References from every ops' hashes, as order-free sums.
    for (j, o) in k.ops.iter().enumerate() {
        if o.filter.is_empty() && o.notrace.is_empty() && o.direct_call.is_none() {
            continue;
        }
        let owner = layout.owner(OpsId(j as u16));
        for (tag, raw) in [(1u64, o.filter.raw()), (2u64, o.notrace.raw())] {
            for &(ip, cnt) in raw {
                if ip == DEAD_IP {
                    continue;
                }
                let f = ip as usize;
                sc.mentioned[f] = true;
                let who = match owner {
                    OpsOwner::Klp(g) => 100 + (g.0 as usize == f) as u64,
                    OpsOwner::Bpf(g) => 102 + (g.0 as usize == f) as u64,
                    OpsOwner::Tracer(_) => 104 + (o.flags as u64) * 8,
                    _ => j as u64,
                };
                sc.acc[f] = sc.acc[f].wrapping_add(mix(who | tag << 20 | (cnt as u64) << 24));
            }
        }
        if let Some(a) = o.direct_call {
            sc.mentioned[addr_fn(a)] = true;
        }
    }
    let mut prev: Option<FnId> = None;
    let mut idx = 0u64;
    for e in k.direct_functions.entries() {
        idx = if prev == Some(e.ip) { idx + 1 } else { 0 };
        prev = Some(e.ip);
        let f = e.ip.0 as usize;
        sc.mentioned[f] = true;
        sc.mentioned[addr_fn(e.addr)] = true;
        sc.acc[f] = sc.acc[f].wrapping_add(mix(0x300 | idx << 12 | rel(k, e.addr, f) << 24));
    }
    for s in &k.fns {
        if let CallSite::Direct(a) = s.rec.site {
            sc.mentioned[addr_fn(a)] = true;
        }
        if let Some(a) = s.direct_user {
            sc.mentioned[addr_fn(a)] = true;
        }
    }
}

/// The position of `id` in the ops list (0xff when not on it).
fn pos(k: &Kernel, id: OpsId) -> u64 {
    k.ops_list
        .iter()
        .position(|x| *x == id)
        .map_or(0xff, |i| i as u64)
}

/// The signature of a function that is not pristine, without the sums of references to it.
fn fn_signature(k: &Kernel, f: usize) -> u64 {
    let layout = k.info.layout;
    let s = &k.fns[f];
    let fid = FnId(f as u16);
    let klp = layout.id(OpsOwner::Klp(fid));
    let bpf = layout.id(OpsOwner::Bpf(fid));
    let r = &s.rec;
    let mut h = acc(
        0,
        r.present as u64
            | (r.disabled as u64) << 1
            | (r.ipmodify as u64) << 2
            | (r.direct as u64) << 3
            | (r.count as u64) << 8,
    );
    h = acc(
        h,
        match r.site {
            CallSite::Nop => 0,
            CallSite::Caller => 1,
            CallSite::Direct(a) => 2 | rel(k, a, f) << 2,
        },
    );
    h = acc(
        h,
        s.klp_stack as u64 | (s.klp_registered as u64) << 16 | (s.kprobes as u64) << 20,
    );
    h = acc(h, s.direct_user.map_or(0, |a| 1 | rel(k, a, f) << 1));
    let tr = &s.tr;
    h = acc(
        h,
        tr.links.len() as u64
            | (tr.flags.call_orig as u64) << 8
            | (tr.flags.orig_stack as u64) << 9
            | (tr.flags.share as u64) << 10
            | (tr.indirect_call as u64) << 11
            | (s.unshare_pending as u64) << 12,
    );
    for (kind, _) in &tr.links {
        h = acc(h, *kind as u64);
    }
    h = acc(
        h,
        match &tr.cur_image {
            None => 0xdead,
            Some(im) => {
                im.call_orig as u64 | (im.orig_stack as u64) << 1 | (im.progs.len() as u64) << 2
            }
        },
    );
    for id in [klp, bpf] {
        let o = k.op(id);
        let hash_of = match o.hash_of {
            None => 0,
            Some(x) if x == id => 1,
            Some(x) => match layout.owner(x) {
                OpsOwner::Klp(g) | OpsOwner::Bpf(g) if g == fid => 2,
                _ => 3, // another function's ops or a static one
            },
        };
        h = acc(
            h,
            o.flags as u64
                | (o.func_set as u64) << 16
                | (o.trampoline_set as u64) << 17
                | hash_of << 18
                | (o.filter.len() as u64) << 24
                | (o.filter.dead() as u64) << 36
                | (o.notrace.len() as u64) << 44
                | (o.notrace.dead() as u64) << 52,
        );
        h = acc(
            h,
            o.direct_call.map_or(0, |a| 1 | rel(k, a, f) << 1) | pos(k, id) << 8,
        );
    }
    h
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

pub(super) fn combine(fp: u128, extra: &[u64]) -> u128 {
    if extra.iter().all(|&x| x == 0) {
        return fp;
    }
    let mut h = StableHasher::default();
    h.word(fp as u64);
    h.word((fp >> 64) as u64);
    for &x in extra {
        h.word(x);
    }
    h.finish128()
}
