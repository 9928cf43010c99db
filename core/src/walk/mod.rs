//! One walk over the state: [`walk`] visits every field of a [`Kernel`] and of the executor's
//! threads beside it ([`Thread`]) that any projection of the state may need, in one fixed order,
//! under a renaming of functions and tracers ([`Rename`]), and hands each field to a [`Sink`].
//! Every projection of the state is a sink of this walk: the canonical fingerprint
//! ([`crate::fingerprint`]), the explorer's renamed encoding and symmetric key, the failure
//! footprint (`crate::footprint`), the fuzz harness's snapshot comparison ([`Exact`]) and
//! the linearizer's observable state; `Kernel`'s equality compares field by field for speed, and is
//! held to the walk's fields by the same test. What a projection leaves out or canonicalises
//! (serials renumbered, flags masked, a field ignored) is the sink's behaviour, and each sink lists
//! the fields it ignores ([`Sink::IGNORES`]); a test mutates every field of a reachable state and
//! checks that every sink sees it unless it says it ignores it.
//!
//! A sink that ignores the threads walks the kernel alone ([`walk_kernel`]).
//!
//! The walk destructures every state struct without `..`: a new field of [`Kernel`], of
//! [`Thread`] or of the structs they hold does not compile until the walk visits it (give it a [`Field`]; the coverage
//! test then asks for a mutation of it). The walk allocates nothing: under a renaming it sorts
//! renamed hashes and `direct_functions` in the caller's [`Buf`].

use crate::hash::{DirectEntry, DEAD_IP};
use crate::ids::{Addr, FnId, OpsId, OpsOwner, ProgId, Tid, TracerId};
use crate::kernel::{
    CallSite, FnState, Image, Kernel, ModState, Ops, Record, TracerState, TrampFlags, Trampoline,
};
use crate::locks::Lock;
use crate::machine::Thread;
use std::hash::Hash;

macro_rules! fields {
    ($($name:ident,)*) => {
        /// A leaf of the walk: a field of the state (or the length of a sequence field, or one
        /// entry of it). The walk hands each to its sink with one of these names.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Field {
            $($name,)*
        }

        impl Field {
            /// Every field, in declaration (and walk) order.
            pub const ALL: &'static [Field] = &[$(Field::$name,)*];
        }
    };
}

fields! {
    // Per function: the record.
    RecPresent,
    RecDisabled,
    RecIpmodify,
    RecDirect,
    RecCount,
    RecSite,
    // Per function: owner bookkeeping.
    KlpStack,
    KlpRegistered,
    Kprobes,
    DirectUser,
    DirectBusy,
    // Per function: the trampoline.
    TrLinks,
    TrCallOrig,
    TrOrigStack,
    TrShare,
    TrIndirectCall,
    UnsharePending,
    LinkKind,
    LinkProg,
    TrImage,
    ImageSerial,
    ImageCallOrig,
    ImageOrigStack,
    ImageProgs,
    ImageProg,
    TrSelector,
    TrNextSerial,
    // Per ops slot.
    OpsFlags,
    OpsFuncSet,
    OpsTrampolineSet,
    OpsHashOf,
    OpsFilter,
    OpsNotrace,
    OpsDirectCall,
    // The rest of the kernel.
    OpsList,
    OpsListEntry,
    DirectFunctions,
    DirectIp,
    DirectAddr,
    ModLoaded,
    ModLive,
    ModBusy,
    ModKlpSeen,
    TracerRegistered,
    KprobeFtraceEnabled,
    Locks,
    LockHeld,
    Threads,
    ThreadStack,
    ThreadPending,
    ThreadInput,
    ThreadOp,
    ThreadContended,
    ThreadFaulted,
    ThreadStuck,
    Gen,
    NextProg,
    NextSample,
    Dirty,
    DirtyEntry,
    Proto,
}

/// A set of fields, as bits (`Field` has fewer than 128 variants).
pub type Fields = u128;

/// The set of `fields`.
pub const fn fields(fields: &[Field]) -> Fields {
    let mut m = 0;
    let mut i = 0;
    while i < fields.len() {
        m |= 1 << fields[i] as u32;
        i += 1;
    }
    m
}

/// Whether `f` is in the set.
#[inline]
pub const fn has(set: Fields, f: Field) -> bool {
    set >> f as u32 & 1 != 0
}

/// The threads in flight: the executor's, walked beside the kernel.
pub const THREADS: Fields = fields(&[
    Field::Threads,
    Field::ThreadStack,
    Field::ThreadPending,
    Field::ThreadInput,
    Field::ThreadOp,
    Field::ThreadContended,
    Field::ThreadFaulted,
    Field::ThreadStuck,
]);

/// The executor's part of the state: the lock table and the threads.
pub const EXECUTOR: Fields = fields(&[Field::Locks, Field::LockHeld]) | THREADS;

/// The counters: the state generation, the serial counters and the records awaiting a code
/// update.
pub const COUNTERS: Fields = fields(&[
    Field::Gen,
    Field::NextProg,
    Field::NextSample,
    Field::Dirty,
    Field::DirtyEntry,
]);

/// Where the walk is: the sections a sink may want to group fields by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Section {
    /// Function `new` (renamed id), which is `old` in the kernel walked.
    Fn {
        new: FnId,
        old: FnId,
    },
    /// Ops slot `new` (renamed), which is `old` in the kernel walked; `owner` renamed.
    Ops {
        new: OpsId,
        old: OpsId,
        owner: OpsOwner,
    },
    /// `ftrace_ops_list`, then `direct_functions`, then modules, tracers, the kprobe counter, the
    /// lock table, the threads and the counters.
    OpsList,
    DirectFunctions,
    Rest,
}

/// An address as the walk shows it: renamed, and whether it is the current one of its owner
/// (the current image of its trampoline, or the current sample trampoline of its direct user).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AddrView {
    /// The address in the kernel walked (not renamed).
    pub raw: Addr,
    /// Its trampoline's or direct user's function, renamed.
    pub f: FnId,
    /// A sample trampoline (`Addr::Sample`), not a BPF image.
    pub sample: bool,
    /// The current image of its trampoline, or the current sample of its direct user.
    pub current: bool,
}

/// What a projection does with each field. Monomorphised: a sink that ignores a field makes its
/// method a no-op for it, and the walk costs nothing there.
pub trait Sink {
    /// The fields this sink deliberately leaves out (the coverage test checks that mutating any
    /// other field changes what the sink produces, and mutating one of these does not).
    const IGNORES: Fields;
    /// Whether the walk visits the functions and the ops slots each function owns (its
    /// livepatch's and its trampoline's): a sink that has those parts already says no.
    const PER_FUNCTION: bool = true;
    /// Whether [`walk`] visits ops slot section `s` (it asks only of the ops slots): a sink that
    /// holds what the section would say already, from an earlier walk of an equal slot, says no
    /// and stands for it (the explorer's incremental key, `sim/src/explore/parts.rs`). Yes by
    /// default.
    #[inline(always)]
    fn wants(&mut self, _s: Section) -> bool {
        true
    }
    /// A new section begins.
    fn begin(&mut self, _s: Section) {}
    /// A scalar field (booleans, counters, flag words, kinds).
    fn val(&mut self, f: Field, v: u64);
    /// The length of the sequence field `f`, visited next entry by entry.
    fn len(&mut self, f: Field, n: usize);
    /// A call site (`RecSite`), with its address when direct.
    fn site(&mut self, f: Field, site: CallSite, a: Option<AddrView>);
    /// An address field that may be empty.
    fn addr(&mut self, f: Field, a: Option<AddrView>);
    /// A program id.
    fn prog(&mut self, f: Field, p: ProgId);
    /// A filter or notrace hash: (ip, multiplicity) sorted by renamed ip, dead entries as
    /// [`DEAD_IP`].
    fn ips(&mut self, f: Field, pairs: &[(u16, u16)]);
    /// A reference to an ops slot (renamed), or none.
    fn ops_ref(&mut self, f: Field, id: Option<OpsId>);
    /// A held lock (renamed) and its holder.
    fn lock(&mut self, l: Lock, holder: Tid);
    /// A field taken as a whole through its `Hash` (frames, requests, the protocol).
    fn hashed<T: Hash>(&mut self, f: Field, v: &T);
    /// The state generation; `in_flight`: some thread has an operation mid-way.
    fn gen(&mut self, gen: u64, in_flight: bool);
}

/// A renaming of functions and tracers (ops slots and locks follow their owners).
pub trait Rename {
    fn is_identity(&self) -> bool;
    /// The new id of function `f`.
    fn fun(&self, f: FnId) -> FnId;
    /// The old id of the function renamed to `new`.
    fn fun_inv(&self, new: u16) -> FnId;
    fn tracer(&self, t: TracerId) -> TracerId;
    fn tracer_inv(&self, new: u8) -> TracerId;
}

/// No renaming.
#[derive(Clone, Copy, Debug, Default)]
pub struct Identity;

impl Rename for Identity {
    #[inline]
    fn is_identity(&self) -> bool {
        true
    }
    #[inline]
    fn fun(&self, f: FnId) -> FnId {
        f
    }
    #[inline]
    fn fun_inv(&self, new: u16) -> FnId {
        FnId(new)
    }
    #[inline]
    fn tracer(&self, t: TracerId) -> TracerId {
        t
    }
    #[inline]
    fn tracer_inv(&self, new: u8) -> TracerId {
        TracerId(new)
    }
}

/// The renamed owner of an ops slot.
pub fn rename_owner<R: Rename>(r: &R, o: OpsOwner) -> OpsOwner {
    match o {
        OpsOwner::Klp(f) => OpsOwner::Klp(r.fun(f)),
        OpsOwner::Bpf(f) => OpsOwner::Bpf(r.fun(f)),
        OpsOwner::Tracer(t) => OpsOwner::Tracer(r.tracer(t)),
        other => other,
    }
}

fn owner_inv<R: Rename>(r: &R, o: OpsOwner) -> OpsOwner {
    match o {
        OpsOwner::Klp(f) => OpsOwner::Klp(r.fun_inv(f.0)),
        OpsOwner::Bpf(f) => OpsOwner::Bpf(r.fun_inv(f.0)),
        OpsOwner::Tracer(t) => OpsOwner::Tracer(r.tracer_inv(t.0)),
        other => other,
    }
}

/// The renamed ops slot.
pub fn rename_slot<R: Rename>(k: &Kernel, r: &R, id: OpsId) -> OpsId {
    let l = &k.info.layout;
    l.id(rename_owner(r, l.owner(id)))
}

fn rename_lock<R: Rename>(k: &Kernel, r: &R, l: Lock) -> Lock {
    match l {
        Lock::Tr(f) => Lock::Tr(r.fun(f)),
        Lock::Regex(o) => Lock::Regex(rename_slot(k, r, o)),
        other => other,
    }
}

/// Reusable buffers of the walk (used only under a renaming).
#[derive(Clone, Debug, Default)]
pub struct Buf {
    pairs: Vec<(u16, u16)>,
    entries: Vec<(u16, usize)>,
}

/// Visits every field of the state, kernel `k` and the executor's `threads` beside it, under the
/// renaming `r`, in order: the functions (renamed order), the ops slots (renamed order), the ops
/// list, `direct_functions` (sorted stably by renamed ip), modules, tracers (renamed order), the
/// kprobe counter, the lock table, the threads and the counters. A renaming other than the
/// identity is only meaningful when no thread has an operation in flight: frames are visited as
/// they are.
///
/// Left out by the walk itself, for every projection: the world (`info`: fixed for a search and
/// shared by every clone), the findings not yet drained (`violations`) and the trace (`trace`):
/// what happened, not what the state is.
pub fn walk<R: Rename, S: Sink>(
    k: &Kernel,
    threads: &[Thread],
    r: &R,
    buf: &mut Buf,
    sink: &mut S,
) {
    let Kernel {
        proto,
        info: _,
        fns,
        ops,
        ops_list,
        direct_functions,
        modules,
        tracers,
        kprobe_ftrace_enabled,
        locks,
        gen,
        next_prog,
        next_sample,
        violations: _,
        dirty,
        trace: _,
    } = k;
    for new in (0..fns.len() as u16).filter(|_| S::PER_FUNCTION) {
        let old = r.fun_inv(new);
        sink.begin(Section::Fn {
            new: FnId(new),
            old,
        });
        walk_fn(k, r, &fns[old.0 as usize], sink);
    }
    let layout = k.info.layout;
    for new in 0..ops.len() as u16 {
        let owner = layout.owner(OpsId(new));
        if !S::PER_FUNCTION && matches!(owner, OpsOwner::Klp(_) | OpsOwner::Bpf(_)) {
            continue;
        }
        let old = if r.is_identity() {
            OpsId(new)
        } else {
            layout.id(owner_inv(r, owner))
        };
        let section = Section::Ops {
            new: OpsId(new),
            old,
            owner,
        };
        if !sink.wants(section) {
            continue;
        }
        sink.begin(section);
        walk_ops(k, r, buf, &ops[old.0 as usize], sink);
    }
    sink.begin(Section::OpsList);
    sink.len(Field::OpsList, ops_list.len());
    for id in ops_list {
        sink.ops_ref(Field::OpsListEntry, Some(rename_slot(k, r, *id)));
    }
    sink.begin(Section::DirectFunctions);
    walk_direct_functions(k, r, buf, direct_functions.entries(), sink);
    sink.begin(Section::Rest);
    for m in modules {
        let ModState {
            loaded,
            live,
            busy,
            klp_seen,
        } = *m;
        sink.val(Field::ModLoaded, loaded as u64);
        sink.val(Field::ModLive, live as u64);
        sink.val(Field::ModBusy, busy as u64);
        sink.val(Field::ModKlpSeen, klp_seen as u64);
    }
    for new in 0..tracers.len() as u8 {
        let TracerState { registered } = tracers[r.tracer_inv(new).0 as usize];
        sink.val(Field::TracerRegistered, registered as u64);
    }
    sink.val(Field::KprobeFtraceEnabled, *kprobe_ftrace_enabled as u64);
    sink.len(Field::Locks, locks.len());
    for &(l, t) in locks {
        sink.lock(rename_lock(k, r, l), t);
    }
    sink.len(Field::Threads, threads.len());
    for th in threads {
        walk_thread(th, sink);
    }
    sink.gen(*gen, threads.iter().any(|th| !th.stack.is_empty()));
    sink.val(Field::NextProg, *next_prog as u64);
    sink.val(Field::NextSample, *next_sample as u64);
    sink.len(Field::Dirty, dirty.len());
    for f in dirty {
        sink.val(Field::DirtyEntry, r.fun(*f).0 as u64);
    }
    sink.hashed(Field::Proto, proto);
}

/// The sections of one function alone, as [`walk`] visits them under `r`: function `new`
/// (renamed id) and then the ops slots it owns (its livepatch's, then its trampoline's). With a
/// sink whose [`Sink::PER_FUNCTION`] is false, [`walk`] visits every other field: the two
/// together see what one [`walk`] sees, so a sink that keeps per-function parts can walk only
/// the functions that changed and the rest. Only meaningful for a non-identity `r` when no
/// thread has an operation in flight, as [`walk`].
pub fn walk_function<R: Rename, S: Sink>(
    k: &Kernel,
    r: &R,
    buf: &mut Buf,
    new: FnId,
    sink: &mut S,
) {
    let old = r.fun_inv(new.0);
    sink.begin(Section::Fn { new, old });
    walk_fn(k, r, &k.fns[old.0 as usize], sink);
    let layout = k.info.layout;
    for (owner, old_owner) in [
        (OpsOwner::Klp(new), OpsOwner::Klp(old)),
        (OpsOwner::Bpf(new), OpsOwner::Bpf(old)),
    ] {
        let old = layout.id(old_owner);
        sink.begin(Section::Ops {
            new: layout.id(owner),
            old,
            owner,
        });
        walk_ops(k, r, buf, &k.ops[old.0 as usize], sink);
    }
}

/// The walk of the kernel alone, for a sink that ignores the threads ([`THREADS`]) and the state
/// generation (which the fingerprint reads only while a thread is mid-operation): [`walk`] with
/// no thread. A sink that does not ignore them does not compile here.
pub fn walk_kernel<R: Rename, S: Sink>(k: &Kernel, r: &R, buf: &mut Buf, sink: &mut S) {
    const {
        assert!(
            S::IGNORES & (THREADS | fields(&[Field::Gen])) == THREADS | fields(&[Field::Gen]),
            "a sink that sees the threads walks them: walk::walk"
        )
    };
    walk(k, &[], r, buf, sink);
}

/// An address as the walk shows it (see [`AddrView`]).
pub fn view<R: Rename>(k: &Kernel, r: &R, a: Addr) -> AddrView {
    match a {
        Addr::Image { tr, serial } => AddrView {
            raw: a,
            f: r.fun(tr),
            sample: false,
            current: k
                .tr(tr)
                .cur_image
                .as_ref()
                .is_some_and(|im| im.serial == serial),
        },
        Addr::Sample { f, .. } => AddrView {
            raw: a,
            f: r.fun(f),
            sample: true,
            current: k.fstate(f).direct_user == Some(a),
        },
    }
}

fn walk_fn<R: Rename, S: Sink>(k: &Kernel, r: &R, s: &FnState, sink: &mut S) {
    let FnState {
        rec,
        klp_stack,
        klp_registered,
        kprobes,
        direct_user,
        direct_busy,
        tr,
        unshare_pending,
    } = s;
    let Record {
        present,
        disabled,
        count,
        ipmodify,
        direct,
        site,
    } = *rec;
    sink.val(Field::RecPresent, present as u64);
    sink.val(Field::RecDisabled, disabled as u64);
    sink.val(Field::RecIpmodify, ipmodify as u64);
    sink.val(Field::RecDirect, direct as u64);
    sink.val(Field::RecCount, count as u64);
    let a = match site {
        CallSite::Direct(a) => Some(view(k, r, a)),
        _ => None,
    };
    sink.site(Field::RecSite, site, a);
    sink.val(Field::KlpStack, *klp_stack as u64);
    sink.val(Field::KlpRegistered, *klp_registered as u64);
    sink.val(Field::Kprobes, *kprobes as u64);
    sink.addr(Field::DirectUser, direct_user.map(|a| view(k, r, a)));
    sink.val(Field::DirectBusy, *direct_busy as u64);
    let Trampoline {
        links,
        flags:
            TrampFlags {
                call_orig,
                orig_stack,
                share,
            },
        indirect_call,
        cur_image,
        selector,
        next_serial,
    } = tr;
    sink.len(Field::TrLinks, links.len());
    sink.val(Field::TrCallOrig, *call_orig as u64);
    sink.val(Field::TrOrigStack, *orig_stack as u64);
    sink.val(Field::TrShare, *share as u64);
    sink.val(Field::TrIndirectCall, *indirect_call as u64);
    sink.val(Field::UnsharePending, *unshare_pending as u64);
    for (kind, p) in links {
        sink.val(Field::LinkKind, *kind as u64);
        sink.prog(Field::LinkProg, *p);
    }
    sink.val(Field::TrImage, cur_image.is_some() as u64);
    if let Some(Image {
        serial,
        call_orig,
        orig_stack,
        progs,
    }) = cur_image
    {
        sink.val(Field::ImageSerial, *serial as u64);
        sink.val(Field::ImageCallOrig, *call_orig as u64);
        sink.val(Field::ImageOrigStack, *orig_stack as u64);
        sink.len(Field::ImageProgs, progs.len());
        for p in progs {
            sink.prog(Field::ImageProg, *p);
        }
    }
    sink.val(Field::TrSelector, *selector as u64);
    sink.val(Field::TrNextSerial, *next_serial as u64);
}

fn walk_ops<R: Rename, S: Sink>(k: &Kernel, r: &R, buf: &mut Buf, o: &Ops, sink: &mut S) {
    let Ops {
        flags,
        filter,
        notrace,
        hash_of,
        func_set,
        trampoline_set,
        direct_call,
    } = o;
    sink.val(Field::OpsFlags, *flags as u64);
    sink.val(Field::OpsFuncSet, *func_set as u64);
    sink.val(Field::OpsTrampolineSet, *trampoline_set as u64);
    sink.ops_ref(Field::OpsHashOf, hash_of.map(|x| rename_slot(k, r, x)));
    for (f, h) in [(Field::OpsFilter, filter), (Field::OpsNotrace, notrace)] {
        if r.is_identity() {
            sink.ips(f, h.raw());
        } else {
            buf.pairs.clear();
            buf.pairs.extend(h.raw().iter().map(|&(ip, n)| {
                if ip == DEAD_IP {
                    (ip, n)
                } else {
                    (r.fun(FnId(ip)).0, n)
                }
            }));
            buf.pairs.sort_unstable();
            sink.ips(f, &buf.pairs);
        }
    }
    sink.addr(Field::OpsDirectCall, direct_call.map(|a| view(k, r, a)));
}

/// `direct_functions` is kept sorted by ip, newest first within an ip: renamed, it is sorted
/// stably by the new ip.
fn walk_direct_functions<R: Rename, S: Sink>(
    k: &Kernel,
    r: &R,
    buf: &mut Buf,
    entries: &[DirectEntry],
    sink: &mut S,
) {
    sink.len(Field::DirectFunctions, entries.len());
    let mut entry = |e: &DirectEntry| {
        let DirectEntry { ip, addr } = *e;
        sink.val(Field::DirectIp, r.fun(ip).0 as u64);
        sink.addr(Field::DirectAddr, Some(view(k, r, addr)));
    };
    if r.is_identity() {
        entries.iter().for_each(entry);
    } else {
        buf.entries.clear();
        buf.entries
            .extend(entries.iter().enumerate().map(|(i, e)| (r.fun(e.ip).0, i)));
        buf.entries.sort_unstable();
        for &(_, i) in &buf.entries {
            entry(&entries[i]);
        }
    }
}

fn walk_thread<S: Sink>(th: &Thread, sink: &mut S) {
    let Thread {
        stack,
        pending,
        input,
        op,
        contended,
        faulted,
        stuck,
    } = th;
    sink.hashed(Field::ThreadStack, stack);
    sink.hashed(Field::ThreadPending, pending);
    sink.hashed(Field::ThreadStuck, stuck);
    sink.hashed(Field::ThreadInput, input);
    sink.hashed(Field::ThreadOp, op);
    sink.val(Field::ThreadContended, *contended as u64);
    sink.val(Field::ThreadFaulted, *faulted as u64);
}

mod sinks;
pub use sinks::*;
