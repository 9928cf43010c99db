//! Kernel state (SPEC §1) plus owner state (SPEC §2): records, ops, the ops list,
//! direct_functions, trampolines, livepatch/kprobe/tracer/direct-user bookkeeping, modules and the
//! lock table. Everything here is plain data: cloneable, comparable, hashable.
//!
//! The helpers in this file are the atomic pieces of kernel code that run between two lock
//! boundaries (`__ftrace_hash_rec_update`, the IPMODIFY flag pass, the code update). The resumable
//! entry points that call them live in [`crate::ftrace`], [`crate::direct`] and [`crate::owners`].

use crate::errno::Errno;
use crate::hash::{copy_small, DirectHash, IpHash};
pub use crate::ids::CallSite;
use crate::ids::{Addr, FnId, ModId, OpsId, OpsLayout, OpsOwner, ProgId, ProgKind, Tid};
use crate::locks::Lock;
use crate::property::{Property, Violation};
use crate::protocol::{BpfDirectApi, BpfShareState, Protocol};
use crate::slots::Slots;
use crate::step::{Event, EventKind};
use crate::world::World;
use smallvec::SmallVec;
use std::sync::Arc;

/// ftrace_ops flags (the ones that matter here, SPEC §1).
pub mod fl {
    pub const ENABLED: u16 = 1 << 0;
    pub const IPMODIFY: u16 = 1 << 1;
    pub const DIRECT: u16 = 1 << 2;
    pub const PERMANENT: u16 = 1 << 3;
    pub const STUB: u16 = 1 << 4;
    /// v2 only (SPEC §5.2).
    pub const SHARE_IPMODIFY: u16 = 1 << 5;

    pub fn names(flags: u16) -> String {
        let mut v = Vec::new();
        for (bit, name) in [
            (ENABLED, "ENABLED"),
            (IPMODIFY, "IPMODIFY"),
            (DIRECT, "DIRECT"),
            (PERMANENT, "PERMANENT"),
            (STUB, "STUB"),
            (SHARE_IPMODIFY, "SHARE_IPMODIFY"),
        ] {
            if flags & bit != 0 {
                v.push(name);
            }
        }
        if v.is_empty() {
            "0".into()
        } else {
            v.join("|")
        }
    }
}

/// A `dyn_ftrace` record (SPEC §1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Record {
    /// The function's text is loaded (built-in, or its module is loaded).
    pub present: bool,
    /// `FTRACE_FL_DISABLED`: module text not live yet; skipped by all accounting.
    pub disabled: bool,
    pub count: u16,
    /// `FTRACE_FL_IPMODIFY`.
    pub ipmodify: bool,
    /// `FTRACE_FL_DIRECT`.
    pub direct: bool,
    /// The call site; `Direct` is `FTRACE_FL_DIRECT_EN`.
    pub site: CallSite,
}

/// A `struct ftrace_ops` (SPEC §1).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Ops {
    pub flags: u16,
    pub filter: IpHash,
    pub notrace: IpHash,
    /// `tmp_ops.func_hash = ops->func_hash`: this ops reads the hashes of another one.
    pub hash_of: Option<OpsId>,
    /// `ops->func` is set (direct ops: `call_direct_funcs`).
    pub func_set: bool,
    /// `ops->trampoline` is set.
    pub trampoline_set: bool,
    /// `ops->direct_call` (rcu-hash-2023 and later).
    pub direct_call: Option<Addr>,
}

impl Ops {
    pub fn has(&self, flag: u16) -> bool {
        self.flags & flag != 0
    }
}

/// `tr->flags` bits that matter (SPEC §2).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct TrampFlags {
    pub call_orig: bool,
    pub orig_stack: bool,
    pub share: bool,
}

/// A built trampoline image.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Image {
    pub serial: u32,
    pub call_orig: bool,
    pub orig_stack: bool,
    pub progs: SmallVec<[ProgId; 2]>,
}

/// Field by field, the programs by [`copy_small`] (the derived clone goes item by item).
impl Clone for Image {
    fn clone(&self) -> Image {
        let Image {
            serial,
            call_orig,
            orig_stack,
            progs,
        } = self;
        Image {
            serial: *serial,
            call_orig: *call_orig,
            orig_stack: *orig_stack,
            progs: copy_small(progs),
        }
    }
}

/// A BPF trampoline for one function (SPEC §2).
#[derive(Debug, Default, PartialEq, Eq, Hash)]
pub struct Trampoline {
    /// Linked programs, oldest first.
    pub links: SmallVec<[(ProgKind, ProgId); 2]>,
    pub flags: TrampFlags,
    /// v2's "indirect call" sharing boolean.
    pub indirect_call: bool,
    pub cur_image: Option<Image>,
    pub selector: u32,
    pub next_serial: u32,
}

/// Field by field, the links by [`copy_small`] (see [`Image`]'s clone).
impl Clone for Trampoline {
    fn clone(&self) -> Trampoline {
        let Trampoline {
            links,
            flags,
            indirect_call,
            cur_image,
            selector,
            next_serial,
        } = self;
        Trampoline {
            links: copy_small(links),
            flags: *flags,
            indirect_call: *indirect_call,
            cur_image: cur_image.clone(),
            selector: *selector,
            next_serial: *next_serial,
        }
    }
}

/// Per-function owner bookkeeping.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FnState {
    pub rec: Record,
    /// Livepatch: number of stacked patches on this function.
    pub klp_stack: u16,
    /// Livepatch: its ops is registered with ftrace (false while the patch is pending on an
    /// unloaded module).
    pub klp_registered: bool,
    /// kprobes armed at this function (aggregated: only the first arms ftrace).
    pub kprobes: u16,
    /// The single-ip direct user at this function, and its trampoline.
    pub direct_user: Option<Addr>,
    /// The direct user's module init or exit is running (they never overlap).
    pub direct_busy: bool,
    pub tr: Trampoline,
    /// proposed `peer_disable_hands_off`: a DISABLE_PEER found tr->mutex taken and left the
    /// unsharing to the holder. An atomic bit beside the trampoline (`set_bit` without
    /// tr->mutex); cleared under tr->mutex by whoever does it, or by a PEER/SELF command that
    /// says what sharing should be now.
    pub unshare_pending: bool,
}

/// Module state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct ModState {
    /// Its records exist.
    pub loaded: bool,
    /// Fully loaded and not going: owners may attach to its functions.
    pub live: bool,
    /// A load or unload is in progress.
    pub busy: bool,
    /// livepatch has seen it come (klp_module_coming) and not go.
    pub klp_seen: bool,
}

/// Tracer owner state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct TracerState {
    pub registered: bool,
}

/// The immutable facts about the world, shared between clones.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct WorldInfo {
    pub world: World,
    pub module_of: Vec<Option<ModId>>,
    pub layout: OpsLayout,
}

/// What state a step touches, for the lock-coverage check (SPEC §3.8).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Guard {
    /// Records (counts, flags, call sites): ftrace_lock.
    Records,
    /// The ops list and the flags/hashes of registered ops: ftrace_lock.
    OpsList,
    /// direct_functions: direct_mutex.
    DirectFunctions,
    /// A trampoline's state: its tr->mutex.
    Tramp(FnId),
}

impl Guard {
    #[inline]
    fn lock(self) -> Lock {
        match self {
            Guard::Records | Guard::OpsList => Lock::Ftrace,
            Guard::DirectFunctions => Lock::Direct,
            Guard::Tramp(f) => Lock::Tr(f),
        }
    }
    fn what(self) -> String {
        match self {
            Guard::Records => "records".into(),
            Guard::OpsList => "a registered ops".into(),
            Guard::DirectFunctions => "direct_functions".into(),
            Guard::Tramp(f) => format!("trampoline of {f}"),
        }
    }
}

/// Marks record `f` as awaiting the code update and counts a change of the state
/// ([`Kernel::touch`], on the two fields alone, for a loop that borrows the others).
#[inline]
fn touch(dirty: &mut SmallVec<[FnId; 4]>, gen: &mut u64, f: FnId) {
    if !dirty.contains(&f) {
        dirty.push(f);
    }
    *gen += 1;
}

/// The retry bound of every retry loop (the BPF `goto again`, the rinse-and-repeat accounting).
/// Hitting it is a `livelock` finding, not a hang.
pub const RETRIES_MAX: u16 = 8;

/// Most BPF programs one trampoline takes (`BPF_MAX_TRAMP_LINKS` on x86).
pub const BPF_MAX_TRAMP_LINKS: usize = 38;

/// The kernel: kernel state, owner state and the lock table. The threads in flight are the
/// executor's (`machine::Thread`), kept beside it.
#[derive(Clone, Debug)]
pub struct Kernel {
    pub proto: Protocol,
    pub info: Arc<WorldInfo>,
    /// Per function (a [`Slots`]: it marks what a transition writes, for the explorer).
    pub fns: Slots<FnState>,
    /// Per ops slot, as `fns`.
    pub ops: Slots<Ops>,
    /// `ftrace_ops_list`, head first.
    pub ops_list: SmallVec<[OpsId; 8]>,
    pub direct_functions: DirectHash,
    pub modules: SmallVec<[ModState; 2]>,
    pub tracers: SmallVec<[TracerState; 2]>,
    /// `kprobe_ipmodify_enabled`: armed addresses using the shared IPMODIFY ops.
    pub kprobe_ftrace_enabled: u16,
    /// Held locks and their holders.
    pub locks: SmallVec<[(Lock, Tid); 8]>,
    /// Bumped on every change of ftrace state (records, ops list, hashes, direct_functions); the
    /// rinse-and-repeat alternative compares it around an unlocked callback.
    pub gen: u64,
    pub next_prog: u32,
    pub next_sample: u32,
    /// Findings raised inside steps (lock coverage, recursion, livelock), drained by drivers.
    pub violations: Vec<Violation>,
    /// Records touched since the last code update.
    pub dirty: SmallVec<[FnId; 4]>,
    /// The trace of events, when a driver asked for one.
    pub trace: Option<Vec<Event>>,
}

impl Kernel {
    /// The initial state: built-in functions present with count 0, modules unloaded, no owner.
    pub fn new(world: &World, proto: Protocol) -> Kernel {
        world
            .validate()
            .expect("[core internal bug] world must be validated by the caller");
        let layout = OpsLayout {
            functions: world.functions,
            tracers: world.tracers,
            bpf_direct_ops: proto.bpf_direct_api == BpfDirectApi::SharedOps,
        };
        let module_of: Vec<Option<ModId>> = world.fns().map(|f| world.module_of(f)).collect();
        let fns = module_of
            .iter()
            .map(|m| FnState {
                rec: Record {
                    present: m.is_none(),
                    disabled: false,
                    count: 0,
                    ipmodify: false,
                    direct: false,
                    site: CallSite::Nop,
                },
                klp_stack: 0,
                klp_registered: false,
                kprobes: 0,
                direct_user: None,
                direct_busy: false,
                tr: Trampoline::default(),
                unshare_pending: false,
            })
            .collect();
        let mut k = Kernel {
            proto,
            info: Arc::new(WorldInfo {
                world: world.clone(),
                module_of,
                layout,
            }),
            fns: Slots::new(fns),
            ops: Slots::new(vec![Ops::default(); layout.len()]),
            ops_list: SmallVec::new(),
            direct_functions: DirectHash::default(),
            modules: (0..world.modules.len())
                .map(|_| ModState::default())
                .collect(),
            tracers: (0..world.tracers).map(|_| TracerState::default()).collect(),
            kprobe_ftrace_enabled: 0,
            locks: SmallVec::new(),
            gen: 0,
            next_prog: 0,
            next_sample: 0,
            violations: Vec::new(),
            dirty: SmallVec::new(),
            trace: None,
        };
        k.init_static_ops();
        k
    }

    fn init_static_ops(&mut self) {
        let p = self.proto;
        let kp = self.id(OpsOwner::Kprobe);
        self.ops[kp.0 as usize].flags = fl::IPMODIFY;
        let s = self.id(OpsOwner::StubMulti);
        self.ops[s.0 as usize].flags = fl::STUB;
        if self.info.layout.bpf_direct_ops {
            // BPF's `struct ftrace_ops direct_ops = { .ops_func = bpf_tramp_ftrace_ops_func }`:
            // no flags, no callback, no filter until update_ftrace_direct_add registers it.
            return;
        }
        let d = self.id(OpsOwner::DirectSingle);
        self.ops[d.0 as usize] = Ops {
            flags: fl::DIRECT
                | fl::PERMANENT
                | if p.single_direct_ops_ipmodify {
                    fl::IPMODIFY
                } else {
                    0
                },
            func_set: true,
            trampoline_set: true,
            ..Ops::default()
        };
    }

    pub fn world(&self) -> &World {
        &self.info.world
    }

    #[inline]
    pub fn id(&self, o: OpsOwner) -> OpsId {
        self.info.layout.id(o)
    }

    #[inline]
    pub fn owner(&self, id: OpsId) -> OpsOwner {
        self.info.layout.owner(id)
    }

    #[inline]
    pub fn op(&self, id: OpsId) -> &Ops {
        &self.ops[id.0 as usize]
    }

    #[inline]
    pub fn op_mut(&mut self, id: OpsId) -> &mut Ops {
        &mut self.ops[id.0 as usize]
    }

    #[inline]
    pub fn rec(&self, f: FnId) -> &Record {
        &self.fns[f.0 as usize].rec
    }

    #[inline]
    pub fn fstate(&self, f: FnId) -> &FnState {
        &self.fns[f.0 as usize]
    }

    #[inline]
    pub fn fstate_mut(&mut self, f: FnId) -> &mut FnState {
        &mut self.fns[f.0 as usize]
    }

    #[inline]
    pub fn tr(&self, f: FnId) -> &Trampoline {
        &self.fns[f.0 as usize].tr
    }

    /// The trampoline of `f`, for a write by thread `t` (checks tr->mutex is held).
    pub fn tr_mut(&mut self, t: Tid, f: FnId) -> &mut Trampoline {
        self.guard(t, Guard::Tramp(f));
        &mut self.fns[f.0 as usize].tr
    }

    /// The ops whose hashes `id` reads (itself, or the ops its hash is shared with).
    #[inline]
    pub fn hash_owner(&self, id: OpsId) -> OpsId {
        self.op(id).hash_of.unwrap_or(id)
    }

    #[inline]
    pub fn filter(&self, id: OpsId) -> &IpHash {
        &self.op(self.hash_owner(id)).filter
    }

    #[inline]
    pub fn notrace(&self, id: OpsId) -> &IpHash {
        &self.op(self.hash_owner(id)).notrace
    }

    /// Whether the owner of `id` has an `ops_func` callback.
    pub fn has_ops_func(&self, id: OpsId) -> bool {
        matches!(self.owner(id), OpsOwner::Bpf(_) | OpsOwner::BpfDirectOps)
            && self.proto.bpf_share_state != BpfShareState::None
    }

    /// The ftrace ops of the BPF trampoline of `f` (`tr->fops`): its own, or the shared
    /// `direct_ops` (`bpf_direct_api = shared-ops`).
    #[inline]
    pub fn bpf_fops(&self, f: FnId) -> OpsId {
        if self.info.layout.bpf_direct_ops {
            self.id(OpsOwner::BpfDirectOps)
        } else {
            self.id(OpsOwner::Bpf(f))
        }
    }

    /// The trampoline an owner command sent to `ops` for `ip` is about: the ops' own
    /// (`ops->private`), or the one `direct_ops_ip_lookup(ops, ip)` finds for the ip.
    pub fn cmd_target(&self, ops: OpsId, ip: FnId) -> FnId {
        match self.owner(ops) {
            OpsOwner::Bpf(f) => f,
            OpsOwner::BpfDirectOps => ip,
            other => panic!("[core internal bug] {other} has no ops_func"),
        }
    }

    /// `ftrace_ops_test` / `hash_contains_ip`: the hashes of `id` select `f`.
    #[inline]
    pub fn hash_selects(&self, id: OpsId, f: FnId) -> bool {
        let filter = self.filter(id);
        let notrace = self.notrace(id);
        (filter.is_empty() || filter.contains(f)) && !notrace.contains(f)
    }

    /// `ops_references_ip`: enabled, and its hashes select `f`.
    #[inline]
    pub fn references(&self, id: OpsId, f: FnId) -> bool {
        self.op(id).has(fl::ENABLED) && self.hash_selects(id, f)
    }

    /// The module of `f`, if it lives in one.
    #[inline]
    pub fn module_of(&self, f: FnId) -> Option<ModId> {
        self.info.module_of[f.0 as usize]
    }

    /// The function can be attached to by an owner: built-in, or its module is live.
    #[inline]
    pub fn fn_live(&self, f: FnId) -> bool {
        match self.module_of(f) {
            None => true,
            Some(m) => self.modules[m.0 as usize].live,
        }
    }

    // ----- locks ---------------------------------------------------------------------------

    #[inline]
    pub fn lock_holder(&self, l: Lock) -> Option<Tid> {
        self.locks.iter().find(|(x, _)| *x == l).map(|(_, t)| *t)
    }

    #[inline]
    pub fn holds(&self, t: Tid, l: Lock) -> bool {
        self.locks.iter().any(|&(x, h)| x == l && h == t)
    }

    /// Locks held by `t`, in acquisition order.
    #[inline]
    pub fn held_by(&self, t: Tid) -> impl Iterator<Item = Lock> + '_ {
        self.locks
            .iter()
            .filter(move |(_, h)| *h == t)
            .map(|(l, _)| *l)
    }

    /// Grants `l` to `t`: the driver found it free.
    #[inline]
    pub(crate) fn grant(&mut self, t: Tid, l: Lock) {
        assert!(
            self.lock_holder(l).is_none(),
            "[core internal bug] {l} granted while held"
        );
        self.locks.push((l, t));
        self.ev(t, EventKind::Acquire(l));
    }

    #[inline]
    pub fn unlock(&mut self, t: Tid, l: Lock) {
        // Most releases are of the lock taken last (a held lock is in the table once).
        if self.locks.last() == Some(&(l, t)) {
            self.locks.pop();
            self.ev(t, EventKind::Release(l));
            return;
        }
        self.unlock_inner(t, l);
    }

    /// [`Kernel::unlock`] of a lock not taken last.
    #[inline(never)]
    fn unlock_inner(&mut self, t: Tid, l: Lock) {
        let i = self
            .locks
            .iter()
            .position(|&(x, h)| x == l && h == t)
            .unwrap_or_else(|| {
                panic!("[core internal bug] thread {t} releases {l} it does not hold")
            });
        self.locks.remove(i);
        self.ev(t, EventKind::Release(l));
    }

    /// Records a lock-coverage finding when `t` touches `g` without its lock.
    #[inline]
    pub fn guard(&mut self, t: Tid, g: Guard) {
        if !self.holds(t, g.lock()) {
            self.unguarded(g);
        }
    }

    /// The lock-coverage finding of a touch of `g` without its lock (see [`Kernel::guard`]).
    #[cold]
    #[inline(never)]
    fn unguarded(&mut self, g: Guard) {
        let l = g.lock();
        let func = match g {
            Guard::Tramp(f) => Some(f),
            _ => None,
        };
        let detail = format!("{} changed without {l} held", g.what());
        self.violate(Violation::new(Property::LockCoverage, func, detail));
    }

    pub fn violate(&mut self, v: Violation) {
        if !self.violations.contains(&v) {
            self.violations.push(v);
        }
    }

    #[inline]
    pub fn ev(&mut self, t: Tid, kind: EventKind) {
        if let Some(tr) = self.trace.as_mut() {
            tr.push(Event { tid: t, kind });
        }
    }

    // ----- ops list --------------------------------------------------------------------------

    /// `add_ftrace_ops`: insert at the head.
    pub fn list_add(&mut self, t: Tid, id: OpsId) {
        self.guard(t, Guard::OpsList);
        self.ops_list.insert(0, id);
        self.gen += 1;
    }

    /// `remove_ftrace_ops`; false if not found.
    pub fn list_remove(&mut self, t: Tid, id: OpsId) -> bool {
        self.guard(t, Guard::OpsList);
        match self.ops_list.iter().position(|x| *x == id) {
            Some(i) => {
                self.ops_list.remove(i);
                self.gen += 1;
                true
            }
            None => false,
        }
    }

    /// Sets or clears flags of an ops; a registered ops needs ftrace_lock.
    pub fn set_ops_flags(&mut self, t: Tid, id: OpsId, set: u16, clear: u16) {
        let old = self.op(id).flags;
        let new = (old | set) & !clear;
        if new == old {
            return;
        }
        if self.ops_list.contains(&id) {
            self.guard(t, Guard::OpsList);
        }
        self.op_mut(id).flags = new;
        self.gen += 1;
    }

    // ----- direct_functions ------------------------------------------------------------------

    pub fn direct_add(&mut self, t: Tid, ip: FnId, addr: Addr) {
        self.guard(t, Guard::DirectFunctions);
        self.direct_functions.add(ip, addr);
        self.gen += 1;
    }

    pub fn direct_remove_for_filter(&mut self, t: Tid, filter: &IpHash, addr: Addr) {
        self.guard(t, Guard::DirectFunctions);
        self.direct_functions.remove_for_filter(filter, addr);
        self.gen += 1;
    }

    pub fn direct_set_first(&mut self, t: Tid, ip: FnId, addr: Addr) -> bool {
        self.guard(t, Guard::DirectFunctions);
        self.gen += 1;
        self.direct_functions.set_first(ip, addr)
    }

    pub fn direct_remove_first(&mut self, t: Tid, ip: FnId) -> bool {
        self.guard(t, Guard::DirectFunctions);
        self.gen += 1;
        self.direct_functions.remove_first(ip).is_some()
    }

    // ----- record accounting -----------------------------------------------------------------

    fn touch(&mut self, f: FnId) {
        touch(&mut self.dirty, &mut self.gen, f);
    }

    /// `__ftrace_hash_rec_update(ops, filter_hash, inc)`. The records the accounting covers:
    /// every present record when the filter hash is empty ("all"), else the live ips of the hash,
    /// in ip order. The hashes are read in place (the loop writes only records, the dirty list
    /// and the generation); a count that would go below zero is reported after the loop, in
    /// record order, as the loop met it.
    pub fn hash_rec_update(&mut self, t: Tid, id: OpsId, filter_hash: bool, inc: bool) {
        if !self.op(id).has(fl::ENABLED) {
            return;
        }
        self.guard(t, Guard::Records);
        let is_direct = self.op(id).has(fl::DIRECT);
        let o = &self.ops[self.hash_owner(id).0 as usize];
        let (hash, other) = if filter_hash {
            (&o.filter, &o.notrace)
        } else {
            (&o.notrace, &o.filter)
        };
        let inc = if filter_hash { inc } else { !inc };
        if !filter_hash && hash.is_empty() {
            return;
        }
        let all = filter_hash && hash.is_empty();
        let n = self.fns.len() as u16;
        let (fns, dirty, gen) = (&mut self.fns, &mut self.dirty, &mut self.gen);
        let mut below_zero: SmallVec<[FnId; 2]> = SmallVec::new();
        let mut account = |f: FnId| {
            let rec = &fns[f.0 as usize].rec;
            if !rec.present || rec.disabled {
                return;
            }
            // filter_hash: in the hash (or "all") and not in notrace; notrace: in the notrace hash
            // and in the filter (or the filter is empty).
            let matched = if filter_hash {
                !other.contains(f)
            } else {
                other.contains(f) || other.is_empty()
            };
            if !matched {
                return;
            }
            // A write from here on (a record the loop skips is not marked written).
            let rec = &mut fns[f.0 as usize].rec;
            if inc {
                rec.count += 1;
                if is_direct {
                    rec.direct = true;
                }
            } else {
                if rec.count == 0 {
                    // FTRACE_WARN_ON(ftrace_rec_count(rec) == 0): the kernel refuses and warns.
                    below_zero.push(f);
                    return;
                }
                rec.count -= 1;
                if is_direct {
                    rec.direct = false;
                }
            }
            touch(dirty, gen, f);
        };
        if all {
            (0..n).map(FnId).for_each(&mut account);
        } else {
            hash.ips().for_each(&mut account);
        }
        for f in below_zero {
            self.violate(Violation::new(
                Property::Accounting,
                Some(f),
                "record count would go below zero",
            ));
        }
    }

    /// The IPMODIFY flag pass of `__ftrace_hash_update_ipmodify` for an IPMODIFY ops, over the
    /// records in `old` or `new` (neither "all"), with the kernel's rollback on a conflict.
    /// Returns `-EBUSY` on a conflict (flags rolled back).
    pub fn ipmodify_flag_pass(&mut self, t: Tid, old: &IpHash, new: &IpHash) -> Result<(), Errno> {
        self.guard(t, Guard::Records);
        let mut fns: SmallVec<[FnId; 8]> = old.ips().chain(new.ips()).collect();
        fns.sort();
        fns.dedup();
        let mut done: SmallVec<[FnId; 8]> = SmallVec::new();
        for &f in &fns {
            let r = self.rec(f);
            if !r.present || r.disabled {
                continue;
            }
            let (in_old, in_new) = (old.contains(f), new.contains(f));
            if in_old == in_new {
                continue;
            }
            if in_new {
                if r.ipmodify {
                    // rollback: undo the records before this one.
                    for &g in &done {
                        let rec = &mut self.fns[g.0 as usize].rec;
                        rec.ipmodify = !new.contains(g);
                    }
                    return Err(Errno::EBUSY);
                }
                self.fns[f.0 as usize].rec.ipmodify = true;
            } else {
                self.fns[f.0 as usize].rec.ipmodify = false;
            }
            done.push(f);
            self.gen += 1;
        }
        Ok(())
    }

    /// The code update (`ftrace_run_update_code` over the touched records): each record's call
    /// site follows its flags the way `ftrace_check_record` decides, by flags and not by address:
    /// a record already `DIRECT_EN` that stays direct with count 1 keeps its old target.
    pub fn update_code(&mut self, t: Tid) {
        let dirty = std::mem::take(&mut self.dirty);
        for f in dirty {
            let r = *self.rec(f);
            if !r.present || r.disabled {
                continue;
            }
            let site = if r.count == 0 {
                CallSite::Nop
            } else if r.count == 1 && r.direct {
                match r.site {
                    CallSite::Direct(a) => CallSite::Direct(a),
                    _ => match self.direct_functions.lookup(f) {
                        Some(a) => CallSite::Direct(a),
                        None => CallSite::Caller,
                    },
                }
            } else {
                CallSite::Caller
            };
            if site != r.site {
                self.fns[f.0 as usize].rec.site = site;
                self.ev(t, EventKind::Site(f, site));
            }
        }
    }

    /// Marks a record for the next code update (used by paths that patch one call site).
    pub fn mark_dirty(&mut self, f: FnId) {
        self.touch(f);
    }

    /// A fresh trampoline address for the single-ip direct user at `f`.
    pub fn new_sample_addr(&mut self, f: FnId) -> Addr {
        self.next_sample += 1;
        Addr::Sample {
            f,
            serial: self.next_sample,
        }
    }

    /// A fresh program id.
    pub fn new_prog(&mut self) -> ProgId {
        self.next_prog += 1;
        ProgId(self.next_prog)
    }

    /// Sets a hash of an ops (`rcu_assign_pointer(*dst, new_hash)`); a registered ops needs
    /// ftrace_lock.
    pub fn assign_hash(&mut self, t: Tid, id: OpsId, notrace: bool, h: IpHash) {
        let owner = self.hash_owner(id);
        if self.ops_list.contains(&owner) {
            self.guard(t, Guard::OpsList);
        }
        let o = self.op_mut(owner);
        if notrace {
            o.notrace = h;
        } else {
            o.filter = h;
        }
        self.gen += 1;
    }
}
