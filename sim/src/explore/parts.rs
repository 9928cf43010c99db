//! The symmetric key from per-function parts, and the symmetry's signatures, from one walk.
//!
//! [`gather`] walks the state once under the identity and splits what the fingerprint sees into
//! *parts*: one per function, one per tracer and the rest. A function's part is everything the
//! fingerprint says about it or about a reference to it, written so that it names no function:
//! its record, owner state and trampoline, the ops slots it owns (its livepatch's and its
//! trampoline's), and every reference to it from elsewhere (a static ops slot's hash entries,
//! `hash_of` or direct call; its slots' places on the ops list; the `direct_functions` entries of
//! its ip), with the function itself as "this function" and its programs numbered within the
//! part. A tracer's part is its ops slot, its place on the list and its registration; what a
//! tracer's slot says about a function (hash entries, `hash_of`, direct call) is kept aside as
//! (function, tracer, word). The rest (the static slots but for their references, the list's and
//! `direct_functions`' shape, modules, the kprobe counter, the executor's part) names nothing
//! that is renamed. Each part is hashed once (128 bits).
//!
//! **The key.** For each order of the tracers (one when there are fewer than two), each
//! function's hash is extended by what each tracer, in that order, says about it; within each
//! class of interchangeable functions the hashes are sorted; the key of that order is the hash
//! of the function hashes, the tracers' part hashes in that order and the rest's; the state's key
//! is the least over the orders. No renaming is encoded and no candidate is searched: sorting
//! the parts is the canonical renaming (ties are interchangeable functions with equal parts, and
//! any order of them gives the same words).
//!
//! Exactness: the parts, the tracer order and the function order together say what the
//! fingerprint of that renaming of the state says, so two states share a key exactly when a
//! renaming of one has the other's fingerprint; renaming a state permutes its parts and its
//! tracer orders, which the sort and the least over the orders undo. That holds when every part
//! can be written without naming another function or tracer. A state where it cannot is
//! *tangled*: a function's part names another function (its call site, a hash entry, `hash_of`
//! or a direct call naming another function's, a `direct_functions` entry of its ip holding
//! another function's address), a tracer's slot names another tracer's, two functions share a
//! program, or an address is stale (stale addresses are numbered across the whole state). A
//! tangled state takes the full encoding per candidate renaming ([`super::symmetry`]). Being
//! tangled is a property of the orbit, and the two kinds of key are hashed apart ([`DOMAIN`]).
//!
//! **The signatures** the candidates of a tangled state are chosen by come from the same walk:
//! written with "another function" (or "another tracer") where a part names one, every part
//! names no function in any state, so its hash is a signature; a function or tracer whose part
//! names nothing else and that nothing else names is *free*, and free ones with equal parts are
//! interchangeable by an automorphism of the state ([`SIGNATURE_IGNORES`]).

//!
//! **Successors.** A function's part is its *own* part (its own sections: record, owner state,
//! trampoline and the two ops slots it owns, walked alone by [`walk_function`]) followed by the
//! references to it that the walk of the rest (every other section, [`Sink::PER_FUNCTION`]
//! false) records. An own part that names nothing else and holds no stale address depends on
//! its sections alone, so the explorer keys a successor from its parent's own parts
//! ([`gather_after`]): it re-walks only the functions whose sections differ from the parent's
//! (those the transition wrote, as the kernel's marks say, compared with `==`, far cheaper than
//! a walk with hashing), and the rest; of the rest, the static ops slots (walked first) are
//! taken from the parent too when they equal its and hold no address ([`Prefix`]). The words, and so
//! the key, are the ones [`gather`] takes from scratch (`sim/tests/explore.rs` compares the
//! two over every transition of small searches; the walk's coverage test mutates every field
//! under a successor of the base state).

use ftsim_core::fingerprint::{Canon, Fingerprint};
use ftsim_core::hash::DEAD_IP;
use ftsim_core::ids::{FnId, OpsId, OpsLayout, OpsOwner, ProgId, Tid};
use ftsim_core::kernel::{CallSite, Kernel};
use ftsim_core::locks::Lock;
use ftsim_core::machine::Thread;
use ftsim_core::walk::{
    fields, walk, walk_function, AddrView, Buf, Field, Fields, Identity, Section, Sink, Words,
    EXECUTOR,
};
use std::hash::Hash;

use super::encode::Stream;

/// The function a part belongs to; its livepatch and trampoline ops slots.
const SELF: u16 = 0x7fff;
const SELF_KLP: u16 = 0x7ffe;
const SELF_BPF: u16 = 0x7ffd;
/// Another function, its ops slots, a tracer's slot (in a tangled part), the tracer's own slot.
const OTHER: u16 = 0x7ffc;
const OTHER_KLP: u16 = 0x7ffb;
const OTHER_BPF: u16 = 0x7ffa;
const OTHER_TRACER: u16 = 0x7ff9;
const SELF_TRACER: u16 = 0x7ff8;
/// In the rest or a tracer's part: a slot or address of a function (or tracer) whose own part
/// records the reference.
const REF: u16 = 0x7ff7;
/// The first word of every key computed from parts.
const DOMAIN: u64 = 0x7061_7274_735f_6b65;
/// The top byte of a reference word (one reference, recorded in the part of what it names) and
/// of a section marker. No fingerprint word of a part reaches it.
const REF_WORD: u64 = 0xf0 << 56;
const MARK: u64 = 0xf1 << 56;

/// The fields the signatures leave out: what the fingerprint leaves out, the executor's (the
/// signatures are taken only when no thread is mid-operation), the state generation and the
/// dirty list (which the fingerprint reads only mid-operation), the modules and the kprobe counter (the same under every renaming: they are in the rest).
pub const SIGNATURE_IGNORES: Fields = <Fingerprint<'static, Vec<u64>> as Sink>::IGNORES
    | EXECUTOR
    | fields(&[
        Field::Gen,
        Field::Dirty,
        Field::DirtyEntry,
        Field::ModLoaded,
        Field::ModLive,
        Field::ModBusy,
        Field::ModKlpSeen,
        Field::KprobeFtraceEnabled,
    ]);

/// The fingerprint's words, routed to the part being written and hashed as they come: `cur`
/// is that part's hash, taken out of `parts` while it is written (`at`; [`Router::NONE`]: every
/// part is in `parts`).
struct Router {
    /// Per function, then per tracer, then the rest.
    parts: Vec<Stream>,
    cur: Stream,
    at: usize,
}

impl Default for Router {
    fn default() -> Self {
        Router {
            parts: Vec::new(),
            cur: Stream::default(),
            at: Router::NONE,
        }
    }
}

impl Router {
    const NONE: usize = usize::MAX;

    #[inline]
    fn switch(&mut self, i: usize) {
        if i != self.at {
            self.park();
            self.cur = self.parts[i];
            self.at = i;
        }
    }

    /// Puts the part being written back.
    #[inline]
    fn park(&mut self) {
        if self.at != Router::NONE {
            self.parts[self.at] = self.cur;
            self.at = Router::NONE;
        }
    }

    /// Part `i`'s hash as far as it is written.
    #[inline]
    fn peek(&self, i: usize) -> Stream {
        if i == self.at {
            self.cur
        } else {
            self.parts[i]
        }
    }

    /// A word into part `i`, which is not the one being written.
    #[inline]
    fn other(&mut self, i: usize, w: u64) {
        debug_assert_ne!(i, self.at, "a reference into the part being written");
        self.parts[i].word(w);
    }
}

impl Words for Router {
    #[inline]
    fn word(&mut self, w: u64) {
        self.cur.word(w);
    }
}

/// One function's own part: what its own sections say (its record, owner state and trampoline,
/// and the ops slots it owns), hashed as far as they go (the walk of the rest adds the references
/// to it from elsewhere), and what it names. It depends on nothing but those sections unless it
/// is `open` (an address of another function, whose `current` the other's state decides, or a
/// stale one): a successor whose sections of a function equal its parent's, where the parent's
/// part is not open, has the parent's part of that function ([`gather_after`]).
#[derive(Debug, Default)]
pub(super) struct Own {
    stream: Stream,
    /// The part names another function or tracer (those of `names`, a bit per function, then
    /// per tracer) or holds a stale address.
    open: bool,
    names: u32,
    /// The programs the part holds, each once, in walk order.
    progs: Vec<ProgId>,
}

impl Own {
    /// `self = src.clone()`, keeping `self`'s allocation.
    fn copy_from(&mut self, src: &Own) {
        self.stream = src.stream;
        self.open = src.open;
        self.names = src.names;
        self.progs.clone_from(&src.progs);
    }
}

/// What the static ops slots (those no function or tracer owns, the rest's first sections) of
/// the state being expanded say: the rest's hash after them and the reference words they record
/// into function parts, in order. That depends on the slots alone unless one holds an address
/// (whose `current` the function's state decides), so a successor whose static slots are its
/// parent's takes it instead of walking them ([`gather_after`]); it is not kept when a slot holds
/// an address.
#[derive(Default)]
struct Prefix {
    state: PrefixState,
    stream: Stream,
    refs: Vec<(u16, u64)>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) enum PrefixState {
    /// Not taken yet for the state being expanded.
    #[default]
    Unknown,
    Kept,
    /// A static slot holds an address.
    Unkept,
}

/// How [`rest`] (and the plain key's rest, `super::encode`) walks the static ops slots.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Statics {
    Walk,
    /// Walk them, and keep what they say as the parent's [`Prefix`] (they are the parent's).
    Keep,
    /// Take them from the parent's [`Prefix`] (they are the parent's).
    Reuse,
}

impl Statics {
    /// How a successor `k` of `parent` (restored from it, as [`gather_after`]'s) walks its static
    /// slots, with the parent's prefix in `state`.
    pub(super) fn after(parent: &Kernel, k: &Kernel, state: PrefixState) -> Statics {
        if !k.ops_eq_parent(parent, 0..k.info.layout.statics()) {
            return Statics::Walk;
        }
        match state {
            PrefixState::Unknown => Statics::Keep,
            PrefixState::Kept => Statics::Reuse,
            PrefixState::Unkept => Statics::Walk,
        }
    }
}

/// What one walk under the identity gathers (see the module docs), and the key's buffers.
#[derive(Default)]
pub struct PartsBuf {
    router: Router,
    canon: Canon,
    pairs: Vec<(u16, u16)>,
    /// Each function's own part.
    pub(super) own: Vec<Own>,
    /// Each program met, and the function whose part holds it.
    progs: Vec<(ProgId, u16)>,
    /// The part hashes: per function, per tracer, then the rest's.
    pub(super) hashes: Vec<u128>,
    /// What a tracer's slot says about a function, with two or more tracers: (function,
    /// tracer, word), in walk order.
    pub(super) ftr: Vec<(u16, u8, u64)>,
    /// A bit per function, then per tracer: some other part names it.
    mentioned: u32,
    /// A bit per function, then per tracer: its part names another function or tracer or holds
    /// a stale address.
    open: u32,
    /// Some part cannot be written without naming another (see the module docs).
    pub(super) tangled: bool,
    /// The functions and tracers of the state gathered.
    pub(super) n: usize,
    pub(super) nt: usize,
    q: Vec<u128>,
    /// The parent's static slots, for [`gather_after`] (reset by [`PartsBuf::new_parent`]).
    prefix: Prefix,
    /// Own parts walked, and taken from the parent's ([`gather_after`]), for statistics.
    pub(super) own_walked: u64,
    pub(super) own_kept: u64,
}

impl PartsBuf {
    /// The state being expanded changed: what was kept of the last one's static slots goes.
    pub(super) fn new_parent(&mut self) {
        self.prefix.state = PrefixState::Unknown;
    }

    /// Function `f` (or tracer `n + t`) is free: its part names nothing else and nothing else
    /// names it (see the module docs).
    pub(super) fn free(&self, i: usize, n: usize) -> bool {
        self.mentioned >> i & 1 == 0
            && self.open >> i & 1 == 0
            && !self.ftr.iter().any(|e| {
                if i < n {
                    e.0 as usize == i
                } else {
                    e.1 as usize == i - n
                }
            })
    }
}

/// The part being walked.
#[derive(Clone, Copy)]
enum Part {
    Fn(u16),
    /// A function's livepatch or trampoline ops slot.
    Own(u16),
    Static(u16),
    Tracer(u8),
    List,
    Direct,
    Rest,
}

/// The walk's sink that splits the state into parts.
struct Parts<'a> {
    inner: Fingerprint<'a, Router>,
    layout: OpsLayout,
    n: usize,
    nt: usize,
    part: Part,
    pairs: &'a mut Vec<(u16, u16)>,
    /// In a function's own sections: the programs its part holds.
    progs: &'a mut Vec<ProgId>,
    ftr: &'a mut Vec<(u16, u8, u64)>,
    /// Bits as [`PartsBuf`]'s, of what this walk saw.
    mentioned: u32,
    open: u32,
    tangled: bool,
    /// On the ops list: the place; in the rest: the tracer.
    pos: u64,
    /// In `direct_functions`: the entry's ip, and its index among the entries of that ip.
    ip: u16,
    idx: u64,
    /// The static slots: skipped (their words are in already), or walked and kept: the
    /// reference words they record (`keep`), whether one held an address and the rest's hash
    /// after them.
    statics: Statics,
    keep: &'a mut Vec<(u16, u64)>,
    static_addr: bool,
    after_statics: Option<Stream>,
}

impl Parts<'_> {
    /// Part `i` names another (`other`: function or tracer index) or holds a stale address.
    #[cold]
    #[inline(never)]
    fn tangle(&mut self, i: usize, other: Option<usize>) {
        self.tangled = true;
        self.open |= 1 << i;
        if let Some(o) = other {
            self.mentioned |= 1 << o;
        }
    }

    /// A reference word into part `i` (a function's or a tracer's).
    #[inline]
    fn record(&mut self, i: usize, w: u64) {
        if self.statics == Statics::Keep && matches!(self.part, Part::Static(_)) {
            self.keep.push((i as u16, REF_WORD | w));
        }
        self.inner.out.other(i, REF_WORD | w);
    }

    /// What tracer `t`'s slot says about function `f`: with two or more tracers, aside (the
    /// key reads it in each tracer order); with one, in the function's part (a reference word,
    /// as from a static slot).
    #[inline]
    fn told(&mut self, f: u16, t: u8, w: u64) {
        if self.nt < 2 {
            self.record(f as usize, w);
        } else {
            self.ftr.push((f, t, REF_WORD | w));
        }
    }

    /// An address in function `c`'s own part: "this function" when it is `c`'s.
    #[inline]
    fn own(&mut self, c: u16, a: AddrView) -> AddrView {
        if !a.current {
            self.tangle(c as usize, None);
        }
        if a.f.0 == c {
            AddrView { f: FnId(SELF), ..a }
        } else {
            self.tangle(c as usize, Some(a.f.0 as usize));
            AddrView {
                f: FnId(OTHER),
                ..a
            }
        }
    }

    /// An address in a part that is not its function's: recorded in its function's part, and
    /// here a placeholder that says nothing about it (in `direct_functions` the entries are in
    /// the order of their functions).
    #[inline]
    fn placeholder(a: AddrView) -> AddrView {
        AddrView {
            f: FnId(REF),
            current: true,
            sample: false,
            ..a
        }
    }

    /// The word of a function address seen from outside its part.
    #[inline]
    fn addr_word(a: AddrView) -> u64 {
        (a.sample as u64) << 1 | a.current as u64
    }

    #[inline]
    fn target(&mut self, i: usize) {
        self.inner.out.switch(i);
    }

    fn rest(&self) -> usize {
        self.n + self.nt
    }
}

/// An ops slot no function or tracer owns (walked first, in id order: [`Prefix`]).
#[inline(always)]
pub(super) fn is_static(s: Section) -> bool {
    matches!(s, Section::Ops { owner, .. }
        if !matches!(owner, OpsOwner::Klp(_) | OpsOwner::Bpf(_) | OpsOwner::Tracer(_)))
}

impl Sink for Parts<'_> {
    const IGNORES: Fields = <Fingerprint<'static, Vec<u64>> as Sink>::IGNORES;
    /// The functions' own sections are walked one function at a time ([`walk_function`]).
    const PER_FUNCTION: bool = false;

    #[inline(always)]
    fn wants(&mut self, s: Section) -> bool {
        self.statics != Statics::Reuse || !is_static(s)
    }
    #[inline(always)]
    fn begin(&mut self, s: Section) {
        if self.statics == Statics::Keep && self.after_statics.is_none() && !is_static(s) {
            // The static slots come first: the rest's hash after them.
            self.after_statics = Some(self.inner.out.peek(self.rest()));
        }
        self.pos = 0;
        let (part, target, mark) = match s {
            Section::Fn { old, .. } => (Part::Fn(old.0), old.0 as usize, 1),
            Section::Ops { owner, old, .. } => match owner {
                OpsOwner::Klp(f) => (Part::Own(f.0), f.0 as usize, 2),
                OpsOwner::Bpf(f) => (Part::Own(f.0), f.0 as usize, 3),
                OpsOwner::Tracer(t) => (Part::Tracer(t.0), self.n + t.0 as usize, 4),
                _ => (Part::Static(old.0), self.rest(), 0),
            },
            Section::OpsList => (Part::List, self.rest(), 0),
            Section::DirectFunctions => (Part::Direct, self.rest(), 0),
            Section::Rest => (Part::Rest, self.rest(), 0),
        };
        self.part = part;
        self.ip = DEAD_IP;
        self.target(target);
        if mark != 0 {
            // Programs (and, in signatures, stale addresses) are numbered within their section.
            self.inner.canon.clear();
            self.inner.out.word(MARK | mark);
        }
        self.inner.begin(s);
    }
    #[inline(always)]
    fn val(&mut self, f: Field, v: u64) {
        match (self.part, f) {
            (Part::Direct, Field::DirectIp) => {
                // Entries of one ip are adjacent, newest first.
                let ip = v as u16;
                self.idx = if self.ip == ip { self.idx + 1 } else { 0 };
                self.ip = ip;
                self.inner.val(f, REF as u64);
            }
            (Part::Rest, Field::TracerRegistered) => {
                self.target(self.n + self.pos as usize);
                self.inner.val(f, v);
                self.target(self.rest());
                self.pos += 1;
            }
            _ => self.inner.val(f, v),
        }
    }
    #[inline(always)]
    fn len(&mut self, f: Field, n: usize) {
        self.inner.len(f, n);
    }
    #[inline(always)]
    fn site(&mut self, f: Field, site: CallSite, a: Option<AddrView>) {
        let a = match self.part {
            Part::Fn(c) => a.map(|a| self.own(c, a)),
            _ => a,
        };
        self.inner.site(f, site, a);
    }
    #[inline(always)]
    fn addr(&mut self, f: Field, a: Option<AddrView>) {
        let Some(a) = a else {
            return self.inner.addr(f, None);
        };
        let a = match self.part {
            Part::Fn(c) | Part::Own(c) => self.own(c, a),
            Part::Static(s) => {
                self.static_addr = true;
                if !a.current {
                    self.tangle(a.f.0 as usize, None);
                }
                self.record(
                    a.f.0 as usize,
                    3 << 48 | (s as u64) << 32 | Self::addr_word(a),
                );
                Self::placeholder(a)
            }
            Part::Tracer(t) => {
                if !a.current {
                    self.tangle(self.n + t as usize, None);
                }
                self.told(a.f.0, t, 8 << 48 | Self::addr_word(a));
                Self::placeholder(a)
            }
            Part::Direct => {
                let g = self.ip;
                if !a.current {
                    self.tangle(g as usize, None);
                }
                if a.f.0 != g {
                    self.tangle(g as usize, Some(a.f.0 as usize));
                }
                let w = self.idx << 16 | Self::addr_word(a) << 1 | (a.f.0 == g) as u64;
                self.record(g as usize, 5 << 48 | w);
                Self::placeholder(a)
            }
            _ => a,
        };
        self.inner.addr(f, Some(a));
    }
    #[inline(always)]
    fn prog(&mut self, f: Field, p: ProgId) {
        if matches!(self.part, Part::Fn(_)) && !self.progs.contains(&p) {
            self.progs.push(p);
        }
        self.inner.prog(f, p);
    }
    #[inline(always)]
    fn ips(&mut self, f: Field, pairs: &[(u16, u16)]) {
        if pairs.is_empty() {
            return; // the fingerprint writes nothing for an empty hash
        }
        let tag: u64 = if f == Field::OpsFilter { 1 } else { 2 };
        let mut buf = std::mem::take(self.pairs);
        buf.clear();
        for &(ip, n) in pairs {
            match self.part {
                _ if ip == DEAD_IP => buf.push((ip, n)),
                Part::Own(c) if ip == c => buf.push((SELF, n)),
                Part::Own(c) => {
                    self.tangle(c as usize, Some(ip as usize));
                    buf.push((OTHER, n));
                }
                Part::Static(s) => self.record(
                    ip as usize,
                    1 << 48 | (s as u64) << 32 | tag << 24 | n as u64,
                ),
                Part::Tracer(t) => self.told(ip, t, 6 << 48 | tag << 24 | n as u64),
                _ => buf.push((ip, n)),
            }
        }
        buf.sort_unstable();
        self.inner.ips(f, &buf);
        *self.pairs = buf;
    }
    #[inline(always)]
    fn ops_ref(&mut self, f: Field, id: Option<OpsId>) {
        let Some(x) = id else {
            return self.inner.ops_ref(f, None);
        };
        let owner = self.layout.owner(x);
        let n = self.n;
        let mapped = match (self.part, owner) {
            (_, OpsOwner::Klp(_) | OpsOwner::Bpf(_) | OpsOwner::Tracer(_)) => {
                let (g, kind) = match owner {
                    OpsOwner::Klp(g) => (g.0 as usize, 1u64),
                    OpsOwner::Bpf(g) => (g.0 as usize, 2),
                    OpsOwner::Tracer(t) => (n + t.0 as usize, 3),
                    _ => unreachable!(),
                };
                match self.part {
                    Part::Own(c) if g == c as usize => {
                        if kind == 1 {
                            SELF_KLP
                        } else {
                            SELF_BPF
                        }
                    }
                    Part::Own(c) => {
                        self.tangle(c as usize, Some(g));
                        [0, OTHER_KLP, OTHER_BPF, OTHER_TRACER][kind as usize]
                    }
                    Part::Tracer(t) if kind == 3 && g == n + t as usize => SELF_TRACER,
                    Part::Tracer(t) if kind == 3 => {
                        self.tangle(n + t as usize, Some(g));
                        OTHER_TRACER
                    }
                    Part::Tracer(t) => {
                        self.told(g as u16, t, 7 << 48 | kind);
                        REF
                    }
                    Part::Static(s) => {
                        self.record(g, 2 << 48 | (s as u64) << 32 | kind);
                        REF
                    }
                    Part::List => {
                        self.record(g, 4 << 48 | kind << 32 | self.pos);
                        REF
                    }
                    _ => x.0,
                }
            }
            _ => x.0,
        };
        if let Part::List = self.part {
            self.pos += 1;
        }
        self.inner.ops_ref(f, Some(OpsId(mapped)));
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

/// Walks `k` (with `threads`) once under the identity into `pb`: the part hashes, what tracers
/// say about functions, what names what, and whether the state is tangled (see the module docs).
pub(super) fn gather(k: &Kernel, threads: &[Thread], buf: &mut Buf, pb: &mut PartsBuf) {
    own_parts(k, buf, pb);
    rest(k, threads, buf, pb, Statics::Walk);
}

/// The own parts of `k`'s functions, into `pb.own` (the rest of `pb` is left as it was).
pub(super) fn own_parts(k: &Kernel, buf: &mut Buf, pb: &mut PartsBuf) {
    prepare(k, pb);
    for f in 0..k.fns.len() {
        own(k, buf, pb, f);
    }
}

/// [`gather`] of `k`, a successor of `parent` whose own parts are `parent_own`, built in a
/// buffer restored from it ([`Kernel::restore_from`]: its marks say what the transition wrote,
/// so [`Kernel::own_sections_eq_parent`] compares only that): a function whose own sections
/// (its [`FnState`](ftsim_core::kernel::FnState) and the two ops slots it owns) equal the
/// parent's keeps the parent's own part unless that is open (see [`Own`]); the other functions
/// and the rest are walked, but for the static ops slots when they equal the parent's and what
/// they say was kept ([`Prefix`]: the first such successor of a parent keeps it).
pub(super) fn gather_after(
    parent: &Kernel,
    parent_own: &[Own],
    k: &Kernel,
    threads: &[Thread],
    buf: &mut Buf,
    pb: &mut PartsBuf,
) {
    prepare(k, pb);
    for (f, kept) in parent_own.iter().enumerate().take(k.fns.len()) {
        if !kept.open && k.own_sections_eq_parent(parent, FnId(f as u16)) {
            pb.own[f].copy_from(kept);
            pb.own_kept += 1;
        } else {
            own(k, buf, pb, f);
        }
    }
    let statics = Statics::after(parent, k, pb.prefix.state);
    rest(k, threads, buf, pb, statics);
}

/// Sizes `pb` for `k`'s functions and tracers.
fn prepare(k: &Kernel, pb: &mut PartsBuf) {
    let (n, nt) = (k.fns.len(), k.tracers.len());
    pb.router.park();
    pb.router.parts.clear();
    pb.router.parts.resize(n + nt + 1, Stream::default());
    pb.own.resize_with(n, Own::default);
    (pb.n, pb.nt) = (n, nt);
}

/// A sink of the walk into `pb`'s buffers, its bits clear; `progs` receives the programs met.
fn sink<'a>(
    k: &Kernel,
    router: &'a mut Router,
    canon: &'a mut Canon,
    pairs: &'a mut Vec<(u16, u16)>,
    progs: &'a mut Vec<ProgId>,
    ftr: &'a mut Vec<(u16, u8, u64)>,
    (statics, keep): (Statics, &'a mut Vec<(u16, u64)>),
) -> Parts<'a> {
    Parts {
        inner: Fingerprint::new(router, canon),
        layout: k.info.layout,
        n: k.fns.len(),
        nt: k.tracers.len(),
        part: Part::Rest,
        pairs,
        progs,
        ftr,
        mentioned: 0,
        open: 0,
        tangled: false,
        pos: 0,
        ip: DEAD_IP,
        idx: 0,
        statics,
        keep,
        static_addr: false,
        after_statics: None,
    }
}

/// Walks function `f`'s own sections into `pb.own[f]`.
fn own(k: &Kernel, buf: &mut Buf, pb: &mut PartsBuf, f: usize) {
    pb.own_walked += 1;
    let o = &mut pb.own[f];
    o.progs.clear();
    pb.router.parts[f] = Stream::default();
    let mut s = sink(
        k,
        &mut pb.router,
        &mut pb.canon,
        &mut pb.pairs,
        &mut o.progs,
        &mut pb.ftr,
        (Statics::Walk, &mut pb.prefix.refs),
    );
    walk_function(k, &Identity, buf, FnId(f as u16), &mut s);
    debug_assert_eq!(s.open & !(1 << f), 0, "an own part opens only itself");
    (o.open, o.names) = (s.open != 0, s.mentioned);
    pb.router.park();
    o.stream = pb.router.parts[f];
}

/// Walks everything but the functions' own sections, whose parts are in `pb.own`, and finishes
/// `pb`: the part hashes, what names what, whether the state is tangled.
/// `statics`: how the static ops slots are walked (see [`Prefix`]; `Reuse` only when
/// `pb.prefix` is kept and the slots are the ones it was taken from).
fn rest(k: &Kernel, threads: &[Thread], buf: &mut Buf, pb: &mut PartsBuf, statics: Statics) {
    let n = pb.n;
    for (part, o) in pb.router.parts.iter_mut().zip(&pb.own) {
        *part = o.stream;
    }
    match statics {
        Statics::Reuse => {
            debug_assert!(pb.prefix.state == PrefixState::Kept);
            let rest = pb.router.parts.len() - 1;
            pb.router.parts[rest] = pb.prefix.stream;
            for &(i, w) in &pb.prefix.refs {
                pb.router.parts[i as usize].word(w);
            }
        }
        Statics::Keep => pb.prefix.refs.clear(),
        Statics::Walk => {}
    }
    pb.ftr.clear();
    let mut none = Vec::new();
    let mut s = sink(
        k,
        &mut pb.router,
        &mut pb.canon,
        &mut pb.pairs,
        &mut none,
        &mut pb.ftr,
        (statics, &mut pb.prefix.refs),
    );
    walk(k, threads, &Identity, buf, &mut s);
    let (mut mentioned, mut open, mut tangled) = (s.mentioned, s.open, s.tangled);
    if statics == Statics::Keep {
        // Without an address the static slots tangle nothing and number nothing: what they
        // say is their words alone.
        (pb.prefix.state, pb.prefix.stream) = match s.after_statics {
            Some(stream) if !s.static_addr => (PrefixState::Kept, stream),
            _ => (PrefixState::Unkept, Stream::default()),
        };
    }
    debug_assert!(none.is_empty(), "programs are met only in own sections");
    // Two functions that hold one program: the later names the earlier.
    pb.progs.clear();
    for (c, o) in pb.own.iter().enumerate() {
        mentioned |= o.names;
        if o.open {
            open |= 1 << c;
            tangled = true;
        }
        for &p in &o.progs {
            match pb.progs.iter().find(|e| e.0 == p) {
                None => pb.progs.push((p, c as u16)),
                Some(&(_, d)) => {
                    debug_assert_ne!(d as usize, c, "an own part lists a program once");
                    tangled = true;
                    open |= 1 << c;
                    mentioned |= 1 << d;
                }
            }
        }
    }
    debug_assert!(n + pb.nt <= 32);
    (pb.mentioned, pb.open, pb.tangled) = (mentioned, open, tangled);
    pb.router.park();
    pb.hashes.clear();
    pb.hashes.extend(pb.router.parts.iter().map(Stream::finish));
}

/// The key of an untangled state from the parts [`gather`] took (see the module docs): the
/// least over `tracer_orders` (each lists the old tracer at each new place) of the hash of the
/// function hashes sorted within each of `classes`, the tracers' in that order and the rest's.
pub(super) fn key(pb: &mut PartsBuf, classes: &[Vec<u16>], tracer_orders: &[Vec<u8>]) -> u128 {
    debug_assert!(!pb.tangled);
    let (n, nt) = (pb.n, pb.nt);
    let mut best = u128::MAX;
    for order in tracer_orders {
        let mut q = std::mem::take(&mut pb.q);
        q.clear();
        q.extend_from_slice(&pb.hashes[..n]);
        let mut told = 0u32;
        for &(f, _, _) in pb.ftr.iter() {
            // What the tracers say about f, in this tracer order (once per function).
            let f = f as usize;
            if told >> f & 1 != 0 {
                continue;
            }
            told |= 1 << f;
            let mut h = Stream::default();
            h.word(q[f] as u64);
            h.word((q[f] >> 64) as u64);
            for (j, &t) in order.iter().enumerate() {
                h.word(MARK | 5 << 48 | j as u64);
                for e in pb.ftr.iter().filter(|e| e.0 as usize == f && e.1 == t) {
                    h.word(e.2);
                }
            }
            q[f] = h.finish();
        }
        for class in classes {
            // Insertion sort of the class's hashes over its places (ascending ids).
            for i in 1..class.len() {
                let h = q[class[i] as usize];
                let mut j = i;
                while j > 0 && q[class[j - 1] as usize] > h {
                    q[class[j] as usize] = q[class[j - 1] as usize];
                    j -= 1;
                }
                q[class[j] as usize] = h;
            }
        }
        let mut h = Stream::default();
        h.word(DOMAIN);
        let tracer_parts = order.iter().map(|&t| pb.hashes[n + t as usize]);
        for p in q
            .iter()
            .copied()
            .chain(tracer_parts)
            .chain([pb.hashes[n + nt]])
        {
            h.word(p as u64);
            h.word((p >> 64) as u64);
        }
        best = best.min(h.finish());
        pb.q = q;
    }
    best
}
