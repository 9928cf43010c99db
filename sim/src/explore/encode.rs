//! Renamed fingerprints: the words the core fingerprint hashes, under a renaming of functions
//! and tracers ([`Perm`]), and the 128-bit hash of them.

use super::{FUNCTIONS_MAX, TRACERS_MAX};
use ftsim_core::fingerprint::StableHasher;
use ftsim_core::hash::DEAD_IP;
use ftsim_core::ids::{Addr, FnId, OpsId, OpsOwner, ProgId, TracerId};
use ftsim_core::kernel::{CallSite, Kernel};
use ftsim_core::locks::Lock;
use ftsim_core::op::Op;
use std::hash::{Hash, Hasher};

/// A renaming of functions and tracers (old id -> new id), within their symmetry classes.
/// Fixed-size and `Copy`, so that trying renamings allocates nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Perm {
    pub(super) n: u8,
    pub(super) nt: u8,
    pub(super) f: [u16; FUNCTIONS_MAX as usize],
    pub(super) finv: [u16; FUNCTIONS_MAX as usize],
    pub(super) t: [u8; TRACERS_MAX as usize],
    pub(super) tinv: [u8; TRACERS_MAX as usize],
}

impl Perm {
    pub fn identity(functions: usize, tracers: usize) -> Perm {
        assert!(
            functions <= FUNCTIONS_MAX as usize && tracers <= TRACERS_MAX as usize,
            "[explore internal bug] world too large to rename"
        );
        let mut p = Perm {
            n: functions as u8,
            nt: tracers as u8,
            f: [0; FUNCTIONS_MAX as usize],
            finv: [0; FUNCTIONS_MAX as usize],
            t: [0; TRACERS_MAX as usize],
            tinv: [0; TRACERS_MAX as usize],
        };
        for i in 0..functions {
            p.f[i] = i as u16;
            p.finv[i] = i as u16;
        }
        for i in 0..tracers {
            p.t[i] = i as u8;
            p.tinv[i] = i as u8;
        }
        p
    }

    /// The renaming sending function `i` to `f[i]` and tracer `j` to `t[j]` (both permutations).
    pub fn new(f: Vec<u16>, t: Vec<u8>) -> Perm {
        let mut p = Perm::identity(f.len(), t.len());
        p.f[..f.len()].copy_from_slice(&f);
        p.t[..t.len()].copy_from_slice(&t);
        p.set_inverse();
        p
    }

    pub(super) fn set_inverse(&mut self) {
        for old in 0..self.n as usize {
            self.finv[self.f[old] as usize] = old as u16;
        }
        for old in 0..self.nt as usize {
            self.tinv[self.t[old] as usize] = old as u8;
        }
    }

    pub fn is_identity(&self) -> bool {
        (0..self.n as usize).all(|i| self.f[i] == i as u16)
            && (0..self.nt as usize).all(|i| self.t[i] == i as u8)
    }

    /// New function ids, by old id.
    pub fn functions(&self) -> &[u16] {
        &self.f[..self.n as usize]
    }

    /// Old function ids, by new id.
    fn finv(&self) -> &[u16] {
        &self.finv[..self.n as usize]
    }

    /// Old tracer ids, by new id.
    fn tinv(&self) -> &[u8] {
        &self.tinv[..self.nt as usize]
    }

    fn fun(&self, f: FnId) -> FnId {
        FnId(self.f[f.0 as usize])
    }

    fn owner(&self, o: OpsOwner) -> OpsOwner {
        match o {
            OpsOwner::Klp(f) => OpsOwner::Klp(self.fun(f)),
            OpsOwner::Bpf(f) => OpsOwner::Bpf(self.fun(f)),
            OpsOwner::Tracer(t) => OpsOwner::Tracer(TracerId(self.t[t.0 as usize])),
            other => other,
        }
    }

    fn owner_inv(&self, o: OpsOwner) -> OpsOwner {
        match o {
            OpsOwner::Klp(f) => OpsOwner::Klp(FnId(self.finv[f.0 as usize])),
            OpsOwner::Bpf(f) => OpsOwner::Bpf(FnId(self.finv[f.0 as usize])),
            OpsOwner::Tracer(t) => OpsOwner::Tracer(TracerId(self.tinv[t.0 as usize])),
            other => other,
        }
    }

    fn slot(&self, k: &Kernel, id: OpsId) -> OpsId {
        let l = &k.info.layout;
        l.id(self.owner(l.owner(id)))
    }

    fn lock(&self, k: &Kernel, l: Lock) -> Lock {
        match l {
            Lock::Tr(f) => Lock::Tr(self.fun(f)),
            Lock::Regex(o) => Lock::Regex(self.slot(k, o)),
            other => other,
        }
    }

    /// The renamed op (for printing a path in another frame).
    pub fn op(&self, op: &Op) -> Op {
        let f = |x: &FnId| self.fun(*x);
        let t = |x: &TracerId| TracerId(self.t[x.0 as usize]);
        match op {
            Op::KlpEnable(x) => Op::KlpEnable(f(x)),
            Op::KlpDisable(x) => Op::KlpDisable(f(x)),
            Op::BpfLink(kd, x) => Op::BpfLink(*kd, f(x)),
            Op::BpfUnlink(kd, x) => Op::BpfUnlink(*kd, f(x)),
            Op::KprobeArm(x) => Op::KprobeArm(f(x)),
            Op::KprobeDisarm(x) => Op::KprobeDisarm(f(x)),
            Op::TracerRegister {
                tracer,
                filter,
                notrace,
            } => Op::TracerRegister {
                tracer: t(tracer),
                filter: filter.iter().map(f).collect(),
                notrace: notrace.iter().map(f).collect(),
            },
            Op::TracerSet {
                tracer,
                which,
                add,
                func,
            } => Op::TracerSet {
                tracer: t(tracer),
                which: *which,
                add: *add,
                func: f(func),
            },
            Op::TracerUnregister(x) => Op::TracerUnregister(t(x)),
            Op::DirectRegister(x) => Op::DirectRegister(f(x)),
            Op::DirectModify(x) => Op::DirectModify(f(x)),
            Op::DirectUnregister(x) => Op::DirectUnregister(f(x)),
            Op::ModuleLoad(m) => Op::ModuleLoad(*m),
            Op::ModuleUnload(m) => Op::ModuleUnload(*m),
        }
    }
}

/// Mirrors the serial renumbering of the core fingerprint, under a renaming.
#[derive(Default)]
pub(super) struct Canon {
    progs: Vec<ProgId>,
    addrs: Vec<Addr>,
}

impl Canon {
    fn clear(&mut self) {
        self.progs.clear();
        self.addrs.clear();
    }
    fn prog(&mut self, p: ProgId) -> u64 {
        match self.progs.iter().position(|x| *x == p) {
            Some(i) => i as u64,
            None => {
                self.progs.push(p);
                self.progs.len() as u64 - 1
            }
        }
    }
    fn addr(&mut self, k: &Kernel, p: &Perm, a: Addr) -> u64 {
        match a {
            Addr::Image { tr, serial }
                if k.tr(tr)
                    .cur_image
                    .as_ref()
                    .is_some_and(|im| im.serial == serial) =>
            {
                (1 << 40) | p.fun(tr).0 as u64
            }
            Addr::Sample { f, .. } if k.fstate(f).direct_user == Some(a) => {
                (2 << 40) | p.fun(f).0 as u64
            }
            _ => {
                let i = match self.addrs.iter().position(|x| *x == a) {
                    Some(i) => i,
                    None => {
                        self.addrs.push(a);
                        self.addrs.len() - 1
                    }
                };
                let tr = match a {
                    Addr::Image { tr, .. } => p.fun(tr).0 as u64,
                    Addr::Sample { f, .. } => 0x8000 | p.fun(f).0 as u64,
                };
                (3 << 40) | (tr << 16) | i as u64
            }
        }
    }
}

/// Reusable buffers of one worker.
#[derive(Default)]
pub struct Scratch {
    pub(super) canon: Canon,
    pub(super) pairs: Vec<(u16, u16)>,
    pub(super) entries: Vec<(u16, usize)>,
    pub(super) words: Vec<u64>,
    pub(super) best: Vec<u64>,
    pub(super) sig_f: Vec<u64>,
    pub(super) sig_t: Vec<u64>,
    pub(super) acc: Vec<u64>,
    pub(super) mentioned: Vec<bool>,
    pub(super) pristine_f: Vec<bool>,
    pub(super) pristine_t: Vec<bool>,
    pub(super) order: Vec<u16>,
    pub(super) torder: Vec<u8>,
    pub(super) perms: Vec<Perm>,
    pub(super) runs: Vec<(bool, usize, usize)>,
    pub(super) run_members: Vec<u16>,
    /// Renamings tried, for statistics.
    pub renamings: u64,
    /// Transitions skipped as owner-level refusals (self-loops).
    pub skipped: u64,
}

/// Records the words a [`StableHasher`] would mix, with the same mapping of `write_*` calls to
/// words, so that derived `Hash` impls (locks, frames) contribute exactly what they contribute
/// to the core fingerprint.
pub(super) struct Words<'a>(&'a mut Vec<u64>);

impl Hasher for Words<'_> {
    fn finish(&self) -> u64 {
        0
    }
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut w = [0u8; 8];
            w[..chunk.len()].copy_from_slice(chunk);
            self.0
                .push(u64::from_le_bytes(w) ^ ((chunk.len() as u64) << 56));
        }
    }
    fn write_u8(&mut self, i: u8) {
        self.0.push(i as u64 | 0x100);
    }
    fn write_u16(&mut self, i: u16) {
        self.0.push(i as u64 | 0x2_0000);
    }
    fn write_u32(&mut self, i: u32) {
        self.0.push(i as u64 | 0x4_0000_0000);
    }
    fn write_u64(&mut self, i: u64) {
        self.0.push(i);
    }
    fn write_usize(&mut self, i: usize) {
        self.0.push(i as u64);
    }
}

pub(super) fn push_pairs(
    out: &mut Vec<u64>,
    raw: &[(u16, u16)],
    p: &Perm,
    tag: u64,
    buf: &mut Vec<(u16, u16)>,
) {
    buf.clear();
    buf.extend(raw.iter().map(|&(ip, n)| {
        if ip == DEAD_IP {
            (ip, n)
        } else {
            (p.f[ip as usize], n)
        }
    }));
    buf.sort_unstable();
    for &(ip, n) in buf.iter() {
        out.push(ip as u64 | (n as u64) << 16 | tag << 40);
    }
}

/// The words the core fingerprint hashes for π(k), in order: the encoding of [`fingerprint`](ftsim_core::fingerprint::fingerprint)
/// with every function, tracer, ops slot, lock and address renamed by `p`. Feeding them to a
/// [`StableHasher`] gives [`fingerprint`](ftsim_core::fingerprint::fingerprint) of π(k) (for the identity: of `k`; a test checks it).
/// Only meaningful for a non-identity `p` when no thread has an operation in flight (frames are
/// encoded as they are).
pub fn encode(k: &Kernel, p: &Perm, sc: &mut Scratch, out: &mut Vec<u64>) {
    out.clear();
    sc.canon.clear();
    encode_functions(k, p, &mut sc.canon, out);
    encode_ops(k, p, sc, out);
    let c = &mut sc.canon;
    out.push(0xabcd);
    for op in &k.ops_list {
        out.push(p.slot(k, *op).0 as u64);
    }
    out.push(0xbcde);
    // direct_functions is kept sorted by ip, newest first within an ip: renamed, sort stably by
    // the new ip.
    let entries = k.direct_functions.entries();
    sc.entries.clear();
    sc.entries
        .extend(entries.iter().enumerate().map(|(i, e)| (p.fun(e.ip).0, i)));
    sc.entries.sort_unstable();
    for &(ip, i) in &sc.entries {
        let x = c.addr(k, p, entries[i].addr);
        out.push(ip as u64 | x << 16);
    }
    for m in &k.modules {
        out.push(
            m.loaded as u64
                | (m.live as u64) << 1
                | (m.busy as u64) << 2
                | (m.klp_seen as u64) << 3,
        );
    }
    for &old in p.tinv() {
        out.push(k.tracers[old as usize].registered as u64);
    }
    out.push(k.kprobe_ftrace_enabled as u64);
    for (l, t) in &k.locks {
        p.lock(k, *l).hash(&mut Words(out));
        out.push(*t as u64);
    }
    for th in &k.threads {
        let mut w = Words(out);
        th.stack.hash(&mut w);
        th.pending.hash(&mut w);
        th.stuck.hash(&mut w);
    }
    if k.threads.iter().any(|th| !th.stack.is_empty()) {
        out.push(k.gen);
    }
}

/// The functions' words, in renamed order (records, owner state, trampolines).
fn encode_functions(k: &Kernel, p: &Perm, c: &mut Canon, out: &mut Vec<u64>) {
    for &old in p.finv() {
        let s = &k.fns[old as usize];
        let r = &s.rec;
        out.push(
            r.present as u64
                | (r.disabled as u64) << 1
                | (r.ipmodify as u64) << 2
                | (r.direct as u64) << 3
                | (r.count as u64) << 8,
        );
        match r.site {
            CallSite::Nop => out.push(0),
            CallSite::Caller => out.push(1),
            CallSite::Direct(a) => {
                let x = c.addr(k, p, a);
                out.push(2 | x << 2)
            }
        }
        out.push(s.klp_stack as u64 | (s.klp_registered as u64) << 16 | (s.kprobes as u64) << 20);
        out.push(s.direct_user.is_some() as u64 | (s.direct_busy as u64) << 1);
        let tr = &s.tr;
        out.push(
            tr.links.len() as u64
                | (tr.flags.call_orig as u64) << 8
                | (tr.flags.orig_stack as u64) << 9
                | (tr.flags.share as u64) << 10
                | (tr.indirect_call as u64) << 11
                | (s.unshare_pending as u64) << 12,
        );
        for (kind, pr) in &tr.links {
            let x = c.prog(*pr);
            out.push(*kind as u64 | x << 4);
        }
        match &tr.cur_image {
            None => out.push(0xdead),
            Some(im) => {
                out.push(
                    im.call_orig as u64
                        | (im.orig_stack as u64) << 1
                        | (im.progs.len() as u64) << 2,
                );
                for pr in &im.progs {
                    let x = c.prog(*pr);
                    out.push(x);
                }
            }
        }
    }
}

/// The ops slots' words, in renamed order (flags, hashes, direct call).
fn encode_ops(k: &Kernel, p: &Perm, sc: &mut Scratch, out: &mut Vec<u64>) {
    let layout = k.info.layout;
    let ident = p.is_identity();
    for j in 0..k.ops.len() {
        let old = if ident {
            j
        } else {
            layout.id(p.owner_inv(layout.owner(OpsId(j as u16)))).0 as usize
        };
        let o = &k.ops[old];
        out.push(
            o.flags as u64
                | (o.func_set as u64) << 16
                | (o.trampoline_set as u64) << 17
                | (o.hash_of.map_or(0xffff, |x| p.slot(k, x).0) as u64) << 18,
        );
        if ident {
            for &(ip, n) in o.filter.raw() {
                out.push(ip as u64 | (n as u64) << 16 | 1 << 40);
            }
            for &(ip, n) in o.notrace.raw() {
                out.push(ip as u64 | (n as u64) << 16 | 2 << 40);
            }
        } else {
            push_pairs(out, o.filter.raw(), p, 1, &mut sc.pairs);
            push_pairs(out, o.notrace.raw(), p, 2, &mut sc.pairs);
        }
        match o.direct_call {
            None => out.push(0),
            Some(a) => {
                let x = sc.canon.addr(k, p, a);
                out.push(1 | x << 1)
            }
        }
    }
}

/// The core fingerprint of π(k) (see [`encode`]).
pub fn fingerprint_permuted(k: &Kernel, p: &Perm) -> u128 {
    let mut sc = Scratch::default();
    let mut words = Vec::new();
    encode(k, p, &mut sc, &mut words);
    let mut h = StableHasher::default();
    for w in words {
        h.word(w);
    }
    h.finish128()
}

pub(super) const SECRET: [u64; 4] = [
    0xa076_1d64_78bd_642f,
    0xe703_7ed1_a0b4_28db,
    0x8ebc_6af0_9c88_c6e3,
    0x5899_65cc_7537_4cc3,
];

#[inline]
pub(super) fn mum(a: u64, b: u64) -> u64 {
    let r = (a as u128).wrapping_mul(b as u128);
    (r as u64) ^ ((r >> 64) as u64)
}

/// A fast 128-bit hash of a word sequence (two multiply-fold lanes, wyhash style, with a full
/// final mix): the deduplication key of an encoding.
pub fn hash128(words: &[u64]) -> u128 {
    let mut a = SECRET[0] ^ words.len() as u64;
    let mut b = SECRET[1];
    let mut it = words.chunks_exact(2);
    for pair in &mut it {
        let (w0, w1) = (pair[0], pair[1]);
        a = mum(w0 ^ SECRET[0], w1 ^ a ^ SECRET[1]);
        b = mum(w1 ^ b ^ SECRET[2], w0 ^ SECRET[3]);
    }
    if let [w] = it.remainder() {
        a = mum(*w ^ SECRET[0], a ^ SECRET[1]);
        b = mum(b ^ SECRET[2], *w ^ SECRET[3]);
    }
    let lo = mix(mum(a ^ SECRET[2], b ^ SECRET[3]));
    let hi = mix(mum(b ^ SECRET[0], a ^ SECRET[1]) ^ words.len() as u64);
    (hi as u128) << 64 | lo as u128
}

#[inline]
pub(super) fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
