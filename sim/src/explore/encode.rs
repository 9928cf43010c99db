//! Renamed fingerprints: the words the core fingerprint hashes, under a renaming of functions
//! and tracers ([`Perm`]), and the 128-bit hash of them.

use super::parts::{is_static, PrefixState, Statics};
use super::{FUNCTIONS_MAX, TRACERS_MAX};
use ftsim_core::fingerprint::{Canon, Fingerprint, StableHasher};
use ftsim_core::ids::{FnId, OpsId, ProgId, Tid, TracerId};
use ftsim_core::kernel::{CallSite, Kernel};
use ftsim_core::locks::Lock;
use ftsim_core::machine::Thread;
use ftsim_core::op::Op;
use ftsim_core::walk::{
    walk, walk_function, AddrView, Buf, Field, Fields, Identity, Rename, Section, Sink, Words,
};
use std::hash::Hash;

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
    /// The renaming is the identity (kept by [`Perm::set_inverse`]; the walk asks per field).
    pub(super) id: bool,
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
            id: true,
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

    /// Sets the inverse and the identity flag from `f` and `t` (call after changing them).
    pub(super) fn set_inverse(&mut self) {
        self.id = (0..self.n as usize).all(|i| self.f[i] == i as u16)
            && (0..self.nt as usize).all(|i| self.t[i] == i as u8);
        for old in 0..self.n as usize {
            self.finv[self.f[old] as usize] = old as u16;
        }
        for old in 0..self.nt as usize {
            self.tinv[self.t[old] as usize] = old as u8;
        }
    }

    pub fn is_identity(&self) -> bool {
        self.id
    }

    /// New function ids, by old id.
    pub fn functions(&self) -> &[u16] {
        &self.f[..self.n as usize]
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

/// Reusable buffers of one worker.
#[derive(Default)]
pub struct Scratch {
    pub(super) canon: Canon,
    pub(super) buf: Buf,
    pub(super) parts: super::parts::PartsBuf,
    pub(super) words: Vec<u64>,
    pub(super) best: Vec<u64>,
    pub(super) sig_f: Vec<u64>,
    pub(super) sig_t: Vec<u64>,
    pub(super) pristine_f: Vec<bool>,
    pub(super) pristine_t: Vec<bool>,
    pub(super) order: Vec<u16>,
    pub(super) torder: Vec<u8>,
    pub(super) perms: Vec<Perm>,
    pub(super) runs: Vec<(bool, usize, usize)>,
    pub(super) run_members: Vec<u16>,
    /// Renamings tried, for statistics.
    pub renamings: u64,
    /// Symmetric keys computed from per-function parts (quiescent states that are not
    /// tangled), and keys computed in all, for statistics.
    pub keys_from_parts: u64,
    pub keys: u64,
    /// Transitions skipped as owner-level refusals (self-loops).
    pub skipped: u64,
    /// The atomicity footprints of the state being expanded (taken at its first failed
    /// operation that changed the state, when `fp_parent_valid`; every entry point of the
    /// sequential space resets it) and of a successor.
    pub(super) fp_parent: ftsim_drive::check::Footprint,
    pub(super) fp_parent_valid: bool,
    pub(super) fp_child: ftsim_drive::check::Footprint,
    /// The own parts of the state being expanded (taken at its first successor's key, when
    /// `own_parent_valid`; every entry point of the sequential space resets it), see
    /// [`super::parts::gather_after`].
    pub(super) own_parent: Vec<super::parts::Own>,
    /// With no renaming possible: the functions' own words ([`plain_key`]) of the state keyed
    /// and of the state being expanded (valid with `own_parent_valid`, which covers both: a
    /// search keys every state one way).
    pub(super) plain_own: Vec<OwnWords>,
    pub(super) plain_parent: Vec<OwnWords>,
    pub(super) own_parent_valid: bool,
    /// The plain key's rest after the static ops slots of the state being expanded (see
    /// `super::parts::Prefix`).
    pub(super) plain_prefix: (PrefixState, Stream),
}

impl Scratch {
    /// The functions' own parts taken from a parent's and walked, for statistics (see
    /// [`super::Symmetry::key_after`]).
    pub fn own_parts(&self) -> (u64, u64) {
        (self.parts.own_kept, self.parts.own_walked)
    }
}

/// The words the core fingerprint hashes for π(k) with `threads`, in order: the core's
/// [`Fingerprint`] sink of the one state walk under the renaming `p`. Feeding them to a
/// [`StableHasher`] gives [`fingerprint`](ftsim_core::fingerprint::fingerprint) of π(k) (for the
/// identity: of `k`; a test checks it). Only meaningful for a non-identity `p` when no thread
/// has an operation in flight (frames are encoded as they are).
pub fn encode(k: &Kernel, threads: &[Thread], p: &Perm, sc: &mut Scratch, out: &mut Vec<u64>) {
    out.clear();
    let sink = &mut Fingerprint::new(out, &mut sc.canon);
    walk(k, threads, p, &mut sc.buf, sink);
}

/// The core fingerprint of π(k) with `threads` (see [`encode`]).
pub fn fingerprint_permuted(k: &Kernel, threads: &[Thread], p: &Perm) -> u128 {
    let mut sc = Scratch::default();
    let mut words = Vec::new();
    encode(k, threads, p, &mut sc, &mut words);
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

/// [`hash128`]'s mixing, fed one word at a time (the length is mixed in at the end, so the
/// values differ from [`hash128`]'s): the hash of a part of the state as the walk writes it.
#[derive(Clone, Copy, Debug)]
pub(super) struct Stream {
    a: u64,
    b: u64,
    pending: u64,
    n: u64,
}

impl Default for Stream {
    fn default() -> Self {
        Stream {
            a: SECRET[0],
            b: SECRET[1],
            pending: 0,
            n: 0,
        }
    }
}

impl Stream {
    #[inline(always)]
    pub(super) fn word(&mut self, w: u64) {
        if self.n & 1 == 0 {
            self.pending = w;
        } else {
            let w0 = self.pending;
            self.a = mum(w0 ^ SECRET[0], w ^ self.a ^ SECRET[1]);
            self.b = mum(w ^ self.b ^ SECRET[2], w0 ^ SECRET[3]);
        }
        self.n += 1;
    }

    pub(super) fn finish(&self) -> u128 {
        let (mut a, mut b) = (self.a, self.b);
        if self.n & 1 == 1 {
            let w = self.pending;
            a = mum(w ^ SECRET[0], a ^ SECRET[1]);
            b = mum(b ^ SECRET[2], w ^ SECRET[3]);
        }
        let lo = mix(mum(a ^ SECRET[2] ^ self.n, b ^ SECRET[3]));
        let hi = mix(mum(b ^ SECRET[0], a ^ SECRET[1]) ^ self.n);
        (hi as u128) << 64 | lo as u128
    }
}

#[inline]
pub(super) fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl Rename for Perm {
    #[inline]
    fn is_identity(&self) -> bool {
        Perm::is_identity(self)
    }
    #[inline]
    fn fun(&self, f: FnId) -> FnId {
        FnId(self.f[f.0 as usize])
    }
    #[inline]
    fn fun_inv(&self, new: u16) -> FnId {
        FnId(self.finv[new as usize])
    }
    #[inline]
    fn tracer(&self, t: TracerId) -> TracerId {
        TracerId(self.t[t.0 as usize])
    }
    #[inline]
    fn tracer_inv(&self, new: u8) -> TracerId {
        TracerId(self.tinv[new as usize])
    }
}

impl Words for Stream {
    #[inline(always)]
    fn word(&mut self, w: u64) {
        Stream::word(self, w);
    }
}

/// The first word of every key [`plain_key`] computes.
const PLAIN_DOMAIN: u64 = 0x706c_6169_6e5f_6b65;

/// One function's own words of the fingerprint (its record, owner state, trampoline and the ops
/// slots it owns, [`walk_function`]) under the identity, with programs and stale addresses
/// numbered within them, hashed; the programs met; whether an address is stale, and whether one
/// is another function's (whose `current` that function's state decides).
#[derive(Debug, Default)]
pub(super) struct OwnWords {
    stream: Stream,
    progs: Vec<ProgId>,
    stale: bool,
    foreign: bool,
}

impl OwnWords {
    /// `self = src.clone()`, keeping `self`'s allocation.
    fn copy_from(&mut self, src: &OwnWords) {
        self.stream = src.stream;
        self.progs.clone_from(&src.progs);
        (self.stale, self.foreign) = (src.stale, src.foreign);
    }
}

/// The fingerprint as a sink, into a [`Stream`], noting the programs, stale addresses and
/// addresses of functions other than `f` it meets. `PER_FUNCTION` false: a function's sections
/// are walked alone ([`walk_function`]).
struct Plain<'a> {
    inner: Fingerprint<'a, Stream>,
    f: Option<u16>,
    progs: &'a mut Vec<ProgId>,
    stale: bool,
    foreign: bool,
    /// In the rest: the static ops slots skipped (their words are in already), or walked and
    /// kept (whether one held an address, and the stream after them), as in `super::parts`.
    statics: Statics,
    static_addr: bool,
    in_static: bool,
    after_statics: Option<Stream>,
}

impl Plain<'_> {
    #[inline(always)]
    fn see(&mut self, a: Option<AddrView>) {
        if let Some(a) = a {
            self.static_addr |= self.in_static;
            self.stale |= !a.current;
            self.foreign |= self.f.is_some_and(|f| a.f.0 != f);
        }
    }
}

impl Sink for Plain<'_> {
    const IGNORES: Fields = <Fingerprint<'static, Vec<u64>> as Sink>::IGNORES;
    const PER_FUNCTION: bool = false;
    #[inline(always)]
    fn wants(&mut self, s: Section) -> bool {
        self.statics != Statics::Reuse || !is_static(s)
    }
    #[inline(always)]
    fn begin(&mut self, s: Section) {
        self.in_static = is_static(s);
        if self.statics == Statics::Keep && self.after_statics.is_none() && !self.in_static {
            self.after_statics = Some(*self.inner.out);
        }
        self.inner.begin(s);
    }
    #[inline(always)]
    fn val(&mut self, f: Field, v: u64) {
        self.inner.val(f, v);
    }
    #[inline(always)]
    fn len(&mut self, f: Field, n: usize) {
        self.inner.len(f, n);
    }
    #[inline(always)]
    fn site(&mut self, f: Field, site: CallSite, a: Option<AddrView>) {
        self.see(a);
        self.inner.site(f, site, a);
    }
    #[inline(always)]
    fn addr(&mut self, f: Field, a: Option<AddrView>) {
        self.see(a);
        self.inner.addr(f, a);
    }
    #[inline(always)]
    fn prog(&mut self, f: Field, p: ProgId) {
        if !self.progs.contains(&p) {
            self.progs.push(p);
        }
        self.inner.prog(f, p);
    }
    #[inline(always)]
    fn ips(&mut self, f: Field, pairs: &[(u16, u16)]) {
        self.inner.ips(f, pairs);
    }
    #[inline(always)]
    fn ops_ref(&mut self, f: Field, id: Option<OpsId>) {
        self.inner.ops_ref(f, id);
    }
    #[inline(always)]
    fn lock(&mut self, l: Lock, holder: Tid) {
        self.inner.lock(l, holder);
    }
    #[inline(always)]
    fn hashed<T: Hash>(&mut self, f: Field, v: &T) {
        self.inner.hashed(f, v);
    }
    #[inline(always)]
    fn gen(&mut self, gen: u64, in_flight: bool) {
        self.inner.gen(gen, in_flight);
    }
}

/// Walks function `f`'s sections of `k` into `o`.
fn own_words(k: &Kernel, f: usize, buf: &mut Buf, canon: &mut Canon, o: &mut OwnWords) {
    o.progs.clear();
    o.stream = Stream::default();
    let mut s = Plain {
        inner: Fingerprint::new(&mut o.stream, canon),
        f: Some(f as u16),
        progs: &mut o.progs,
        stale: false,
        foreign: false,
        statics: Statics::Walk,
        static_addr: false,
        in_static: false,
        after_statics: None,
    };
    walk_function(k, &Identity, buf, FnId(f as u16), &mut s);
    (o.stale, o.foreign) = (s.stale, s.foreign);
}

/// The key of `k` with `threads` when no renaming is possible, from the fingerprint's words
/// split into each function's own words and the rest's, each hashed; `None` where that split
/// loses what the fingerprint says: a program held by two functions or a stale address (both
/// numbered across the whole state). Elsewhere the fingerprint's numbering is each function's
/// own, shifted by the programs of the functions before it, so two such states have one key
/// exactly when they have one fingerprint (being split so is a property of the fingerprint).
/// With `parent` (of which `k` is a successor, built in a buffer restored from it by
/// [`Kernel::restore_from`], so that its marks say what the transition wrote), a function whose
/// sections equal the parent's keeps the parent's own words, unless they hold another function's
/// address or a stale one; the parent's are taken once, at the first call after
/// `sc.own_parent_valid` was reset.
pub(super) fn plain_key(
    parent: Option<&Kernel>,
    k: &Kernel,
    threads: &[Thread],
    sc: &mut Scratch,
) -> Option<u128> {
    let n = k.fns.len();
    let mut statics = Statics::Walk;
    let mut own = std::mem::take(&mut sc.plain_own);
    own.resize_with(n, OwnWords::default);
    match parent {
        Some(p) => {
            let mut kept = std::mem::take(&mut sc.plain_parent);
            if !sc.own_parent_valid {
                kept.resize_with(n, OwnWords::default);
                sc.parts.own_walked += n as u64;
                for (f, o) in kept.iter_mut().enumerate() {
                    own_words(p, f, &mut sc.buf, &mut sc.canon, o);
                }
                sc.plain_prefix.0 = PrefixState::Unknown;
                sc.own_parent_valid = true;
            }
            for (f, (o, q)) in own.iter_mut().zip(&kept).enumerate() {
                if !q.stale && !q.foreign && k.own_sections_eq_parent(p, FnId(f as u16)) {
                    o.copy_from(q);
                    sc.parts.own_kept += 1;
                } else {
                    own_words(k, f, &mut sc.buf, &mut sc.canon, o);
                    sc.parts.own_walked += 1;
                }
            }
            sc.plain_parent = kept;
            statics = Statics::after(p, k, sc.plain_prefix.0);
        }
        None => {
            sc.parts.own_walked += n as u64;
            for (f, o) in own.iter_mut().enumerate() {
                own_words(k, f, &mut sc.buf, &mut sc.canon, o);
            }
        }
    }
    let key = plain_rest(k, threads, sc, &own, statics);
    sc.plain_own = own;
    key
}

/// [`plain_key`] from the functions' own words `own`: the rest walked (the static ops slots as
/// `statics` says, from or into `sc.plain_prefix`: `super::parts::Prefix`), and the hashes
/// combined.
fn plain_rest(
    k: &Kernel,
    threads: &[Thread],
    sc: &mut Scratch,
    own: &[OwnWords],
    statics: Statics,
) -> Option<u128> {
    for (f, o) in own.iter().enumerate() {
        let shared = o
            .progs
            .iter()
            .any(|p| own[..f].iter().any(|e| e.progs.contains(p)));
        if o.stale || shared {
            return None;
        }
    }
    let mut rest = if statics == Statics::Reuse {
        debug_assert!(sc.plain_prefix.0 == PrefixState::Kept);
        sc.plain_prefix.1
    } else {
        Stream::default()
    };
    let mut none = Vec::new();
    let mut s = Plain {
        inner: Fingerprint::new(&mut rest, &mut sc.canon),
        f: None,
        progs: &mut none,
        stale: false,
        foreign: false,
        statics,
        static_addr: false,
        in_static: false,
        after_statics: None,
    };
    walk(k, threads, &Identity, &mut sc.buf, &mut s);
    if statics == Statics::Keep {
        // Without an address the static slots number nothing: what they say is their words.
        sc.plain_prefix = match s.after_statics {
            Some(stream) if !s.static_addr => (PrefixState::Kept, stream),
            _ => (PrefixState::Unkept, Stream::default()),
        };
    }
    if s.stale {
        return None;
    }
    let mut h = Stream::default();
    h.word(PLAIN_DOMAIN);
    for p in own.iter().map(|o| o.stream.finish()).chain([rest.finish()]) {
        h.word(p as u64);
        h.word((p >> 64) as u64);
    }
    Some(h.finish())
}
