//! ftrace.c entry points as resumable frames (SPEC §5): registration, unregistration, the
//! IPMODIFY accounting, the prepare/cleanup peer scans, filter updates and owner callbacks.
//!
//! Each frame's comments name the kernel lines it mirrors. A frame suspends only where the
//! kernel takes a lock or allocates; everything between two suspensions is atomic.

use crate::errno::Errno;
use crate::frames::{Flow, Frame, Step};
use crate::hash::IpHash;
use crate::ids::{FnId, OpsId, Tid};
use crate::kernel::{fl, Kernel, RETRIES_MAX};
use crate::locks::Lock;
use crate::property::{Property, Violation};
use crate::protocol::{
    BpfShareState, DirectMeetsIpmodify, IpmodifyOwnerCall, PeerScan, RegisterTakesDirectMutex,
};
use crate::step::{AllocSite, EventKind, Input, Request, Ret};

/// Suspends the frame at `pc` until the driver answers `req`.
macro_rules! wait {
    ($self:ident, $pc:expr, $req:expr) => {{
        $self.pc = $pc;
        return $crate::frames::Flow::Wait($req);
    }};
}
/// Calls a child frame; the frame resumes at `pc` with the child's return value.
macro_rules! call {
    ($self:ident, $pc:expr, $child:expr) => {{
        $self.pc = $pc;
        return $crate::frames::Flow::Call($crate::frames::Frame::from($child));
    }};
}
pub(crate) use {call, wait};

/// An owner command (`enum ftrace_ops_cmd`, SPEC §5.2, §5.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Cmd {
    /// merged `ENABLE_SHARE_IPMODIFY_SELF`: sent to a direct ops entering an IPMODIFY record.
    SelfEnable,
    /// proposed `DISABLE_SHARE_IPMODIFY_SELF` (`self_syncs_share`): sent to a direct ops entering
    /// a record without IPMODIFY.
    SelfDisable,
    /// v2 `ENABLE_SHARE_IPMODIFY`, merged `ENABLE_SHARE_IPMODIFY_PEER`.
    PeerEnable,
    /// v2 `DISABLE_SHARE_IPMODIFY`, merged `DISABLE_SHARE_IPMODIFY_PEER`.
    PeerDisable,
}

impl Cmd {
    pub fn name(self, share: BpfShareState) -> &'static str {
        match (self, share) {
            (Cmd::SelfEnable, _) => "ENABLE_SHARE_IPMODIFY_SELF",
            (Cmd::SelfDisable, _) => "DISABLE_SHARE_IPMODIFY_SELF",
            (Cmd::PeerEnable, BpfShareState::IndirectBool) => "ENABLE_SHARE_IPMODIFY",
            (Cmd::PeerDisable, BpfShareState::IndirectBool) => "DISABLE_SHARE_IPMODIFY",
            (Cmd::PeerEnable, _) => "ENABLE_SHARE_IPMODIFY_PEER",
            (Cmd::PeerDisable, _) => "DISABLE_SHARE_IPMODIFY_PEER",
        }
    }
}

/// The first direct ops the peer scan of `prepare_direct_functions_for_ipmodify` /
/// `cleanup_direct_functions_after_ipmodify` finds for `ip` (ftrace_lock held).
pub fn peer_scan(k: &Kernel, ip: FnId, mode: PeerScan) -> Option<OpsId> {
    for &op in &k.ops_list {
        let o = k.op(op);
        if !o.has(fl::DIRECT) {
            continue;
        }
        // v2: "if (op->flags & FTRACE_OPS_FL_SHARE_IPMODIFY) break;"
        if mode == PeerScan::StopAtSharing && o.has(fl::SHARE_IPMODIFY) {
            return None;
        }
        if k.references(op, ip) {
            return Some(op);
        }
    }
    None
}

/// `register_ftrace_function` (SPEC §5.2, §5.3): v2 takes direct_mutex in the prepare step of an
/// IPMODIFY ops; merged takes it for every ops, prepares, then `register_ftrace_function_nolock`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RegisterFtraceFunction {
    pub ops: OpsId,
    pc: RegisterFtraceFunctionPc,
    direct_locked: bool,
    prepare: bool,
}

/// Where [`RegisterFtraceFunction`] resumes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
enum RegisterFtraceFunctionPc {
    /// decide the prepare step; `lock_direct_mutex()` where the version takes it
    Entry = 0,
    /// `prepare_direct_functions_for_ipmodify(ops)` (or straight to the register)
    Prepare = 1,
    /// the prepare answered: `register_ftrace_function_nolock(ops)`
    RegisterNolock = 2,
    /// `out_unlock:` `unlock_direct_mutex()`
    OutUnlock = 3,
}

impl RegisterFtraceFunction {
    pub fn new(ops: OpsId) -> Self {
        RegisterFtraceFunction {
            ops,
            pc: RegisterFtraceFunctionPc::Entry,
            direct_locked: false,
            prepare: false,
        }
    }
}

impl Step for RegisterFtraceFunction {
    const NAME: &'static str = "register_ftrace_function";
    fn step(&mut self, k: &mut Kernel, t: Tid, input: Input) -> Flow {
        use RegisterFtraceFunctionPc as Pc;
        loop {
            match self.pc {
                Pc::Entry => {
                    let o = k.op(self.ops);
                    self.prepare = o.has(fl::IPMODIFY)
                        && !o.has(fl::DIRECT)
                        && k.proto.peer_scan != PeerScan::None;
                    let takes = k.proto.register_takes_direct_mutex
                        == RegisterTakesDirectMutex::Always
                        || self.prepare;
                    if takes {
                        self.direct_locked = true;
                        wait!(self, Pc::Prepare, Request::Lock(Lock::Direct));
                    }
                    self.pc = Pc::Prepare;
                }
                Pc::Prepare => {
                    if self.prepare {
                        call!(
                            self,
                            Pc::RegisterNolock,
                            PrepareDirectFunctionsForIpmodify::new(self.ops)
                        );
                    }
                    call!(
                        self,
                        Pc::OutUnlock,
                        RegisterFtraceFunctionNolock::new(self.ops)
                    );
                }
                Pc::RegisterNolock => {
                    if let Err(e) = input.ret() {
                        if self.direct_locked {
                            k.unlock(t, Lock::Direct);
                        }
                        return Flow::Ret(Err(e));
                    }
                    call!(
                        self,
                        Pc::OutUnlock,
                        RegisterFtraceFunctionNolock::new(self.ops)
                    );
                }
                Pc::OutUnlock => {
                    if self.direct_locked {
                        k.unlock(t, Lock::Direct);
                    }
                    return Flow::Ret(input.ret().map(|_| 0));
                }
            }
        }
    }
}

/// `register_ftrace_function_nolock`: ftrace_lock + `ftrace_startup`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RegisterFtraceFunctionNolock {
    pub ops: OpsId,
    pc: RegisterFtraceFunctionNolockPc,
}

/// Where [`RegisterFtraceFunctionNolock`] resumes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
enum RegisterFtraceFunctionNolockPc {
    /// `mutex_lock(&ftrace_lock)`
    Entry = 0,
    /// `ftrace_startup(ops, 0)`
    Startup = 1,
    /// `mutex_unlock(&ftrace_lock)`
    Unlock = 2,
}

impl RegisterFtraceFunctionNolock {
    pub fn new(ops: OpsId) -> Self {
        RegisterFtraceFunctionNolock {
            ops,
            pc: RegisterFtraceFunctionNolockPc::Entry,
        }
    }
}

impl Step for RegisterFtraceFunctionNolock {
    const NAME: &'static str = "register_ftrace_function_nolock";
    fn step(&mut self, k: &mut Kernel, t: Tid, input: Input) -> Flow {
        use RegisterFtraceFunctionNolockPc as Pc;
        match self.pc {
            Pc::Entry => wait!(self, Pc::Startup, Request::Lock(Lock::Ftrace)),
            Pc::Startup => call!(
                self,
                Pc::Unlock,
                FtraceStartup {
                    ops: self.ops,
                    pc: FtraceStartupPc::Entry
                }
            ),
            Pc::Unlock => {
                k.unlock(t, Lock::Ftrace);
                Flow::Ret(input.ret())
            }
        }
    }
}

/// `ftrace_startup` (ftrace_lock held): add to the list head, ENABLED, the IPMODIFY accounting
/// (rolled back on failure), the record accounting and the code update.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FtraceStartup {
    pub ops: OpsId,
    pc: FtraceStartupPc,
}

/// Where [`FtraceStartup`] resumes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
enum FtraceStartupPc {
    /// `__register_ftrace_function`, then `ftrace_hash_ipmodify_enable(ops)`
    Entry = 0,
    /// the accounting answered: "Rollback registration process" or `ftrace_hash_rec_enable` and the code update
    HashRecEnable = 1,
}

impl Step for FtraceStartup {
    const NAME: &'static str = "ftrace_startup";
    fn step(&mut self, k: &mut Kernel, t: Tid, input: Input) -> Flow {
        use FtraceStartupPc as Pc;
        match self.pc {
            Pc::Entry => {
                // __register_ftrace_function: WARN_ON(ops->flags & FTRACE_OPS_FL_ENABLED) -> -EBUSY
                if k.op(self.ops).has(fl::ENABLED) {
                    k.ev(
                        t,
                        EventKind::Warn("__register_ftrace_function: ops already enabled"),
                    );
                    return Flow::Ret(Err(Errno::EBUSY));
                }
                k.list_add(t, self.ops);
                k.set_ops_flags(t, self.ops, fl::ENABLED, 0);
                call!(
                    self,
                    Pc::HashRecEnable,
                    FtraceHashUpdateIpmodify::enable(k, self.ops)
                )
            }
            Pc::HashRecEnable => {
                if let Err(e) = input.ret() {
                    // Rollback registration process
                    k.list_remove(t, self.ops);
                    k.set_ops_flags(t, self.ops, 0, fl::ENABLED);
                    return Flow::Ret(Err(e));
                }
                k.hash_rec_update(t, self.ops, true, true);
                k.update_code(t);
                Flow::Ret(Ok(0))
            }
        }
    }
}

/// `ftrace_shutdown` (ftrace_lock held). Atomic: it takes no lock and calls no owner.
pub fn ftrace_shutdown(k: &mut Kernel, t: Tid, ops: OpsId) -> Ret {
    if !k.op(ops).has(fl::ENABLED) {
        k.ev(
            t,
            EventKind::Warn("__unregister_ftrace_function: ops not enabled"),
        );
        return Err(Errno::EBUSY);
    }
    k.list_remove(t, ops);
    ipmodify_disable(k, t, ops);
    k.hash_rec_update(t, ops, true, false);
    k.set_ops_flags(t, ops, 0, fl::ENABLED);
    k.update_code(t);
    Ok(0)
}

/// Whether the IPMODIFY accounting treats `ops` as IPMODIFY (merged warns about and skips an ops
/// that is both IPMODIFY and DIRECT).
fn accounted_ipmodify(k: &Kernel, ops: OpsId) -> Option<bool> {
    let o = k.op(ops);
    let (ipm, dir) = (o.has(fl::IPMODIFY), o.has(fl::DIRECT));
    if !ipm && !dir {
        return None;
    }
    if ipm && dir && k.proto.direct_meets_ipmodify == DirectMeetsIpmodify::SelfCmd {
        return None;
    }
    Some(ipm)
}

/// `ftrace_hash_ipmodify_disable`: "Disabling always succeeds".
fn ipmodify_disable(k: &mut Kernel, t: Tid, ops: OpsId) {
    if accounted_ipmodify(k, ops) != Some(true) {
        return;
    }
    let old = k.filter(ops).clone();
    if old.is_empty() {
        return; // old_hash == NULL: -EINVAL, ignored
    }
    let r = k.ipmodify_flag_pass(t, &old, &IpHash::new());
    debug_assert!(
        r.is_ok(),
        "[core internal bug] removing entries cannot conflict"
    );
}

/// `__ftrace_hash_update_ipmodify(ops, old, new[, update_target])` (ftrace_lock held on entry and
/// exit; the kernel's modify path holds only direct_mutex, a known deviation noted at
/// [`crate::direct::ModifyFtraceDirectMulti`]). `None` stands for the kernel's NULL hash ("all functions"). For an IPMODIFY ops it sets
/// and clears record IPMODIFY flags with rollback; for a DIRECT ops entering an IPMODIFY record it
/// fails, returns `-EAGAIN` or asks the owner (SELF) per `direct_meets_ipmodify`. With
/// `ipmodify_owner_call = unlock-and-retry` it first asks the direct owner of every entering DIRECT
/// record, dropping ftrace_lock around each callback, until a pass changes nothing.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FtraceHashUpdateIpmodify {
    pub ops: OpsId,
    old: Option<IpHash>,
    new: Option<IpHash>,
    update_target: bool,
    pc: FtraceHashUpdateIpmodifyPc,
    next: u16,
    changed: bool,
    retries: u16,
    gen0: u64,
    err: Option<Errno>,
}

/// Where [`FtraceHashUpdateIpmodify`] resumes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
enum FtraceHashUpdateIpmodifyPc {
    /// which pass the ops needs (the direct pass is atomic)
    Entry = 0,
    /// `unlock-and-retry`: a new pass over the entering DIRECT records
    RinseStart = 10,
    /// `unlock-and-retry`: the next entering DIRECT record and its owner
    NextDirect = 11,
    /// `unlock-and-retry`: the owner answered; take ftrace_lock again
    Relock = 12,
    /// `unlock-and-retry`: ftrace_lock held again; did anything change meanwhile
    Relocked = 13,
    /// the record flag pass with its `rollback:`
    FlagPass = 20,
}

fn none_if_empty(h: &IpHash) -> Option<IpHash> {
    (!h.is_empty()).then(|| h.clone())
}

impl FtraceHashUpdateIpmodify {
    /// `ftrace_hash_ipmodify_enable`: EMPTY_HASH -> filter.
    pub fn enable(k: &Kernel, ops: OpsId) -> Self {
        Self::with(
            ops,
            Some(IpHash::new()),
            none_if_empty(k.filter(ops)),
            false,
        )
    }
    /// `ftrace_hash_ipmodify_update`: filter -> new.
    pub fn update(k: &Kernel, ops: OpsId, new: &IpHash) -> Self {
        Self::with(ops, none_if_empty(k.filter(ops)), none_if_empty(new), false)
    }
    /// fixes-2025's modify path: filter -> filter with update-target semantics.
    pub fn modify(k: &Kernel, ops: OpsId) -> Self {
        let h = k.filter(ops).clone();
        Self::with(ops, Some(h.clone()), Some(h), true)
    }
    /// The modify path's pass over the given ips only (what-if `direct_mod_checks_its_ips`).
    pub fn modify_ips(ops: OpsId, ips: &[FnId]) -> Self {
        let h = IpHash::from_fns(ips);
        Self::with(ops, Some(h.clone()), Some(h), true)
    }
    fn with(ops: OpsId, old: Option<IpHash>, new: Option<IpHash>, update_target: bool) -> Self {
        FtraceHashUpdateIpmodify {
            ops,
            old,
            new,
            update_target,
            pc: FtraceHashUpdateIpmodifyPc::Entry,
            next: 0,
            changed: false,
            retries: 0,
            gen0: 0,
            err: None,
        }
    }

    /// The direct-ops pass: nothing is set, so nothing needs rolling back.
    fn direct_pass(&self, k: &mut Kernel, t: Tid, old: &IpHash, new: &IpHash) -> Ret {
        let mut fns: Vec<FnId> = old.ips().chain(new.ips()).collect();
        fns.sort();
        fns.dedup();
        for f in fns {
            let r = *k.rec(f);
            if !r.present || r.disabled {
                continue;
            }
            let (in_old, in_new) = (old.contains(f), new.contains(f));
            if in_old == in_new && !self.update_target {
                continue;
            }
            if !in_new {
                continue;
            }
            if !r.ipmodify {
                // proposed: at registration the owner learns that this record has no IPMODIFY
                // (any more). Not on modify: a PEER rebuild runs before its IPMODIFY goes live.
                if k.proto.self_syncs_share && !self.update_target && k.has_ops_func(self.ops) {
                    crate::owners::self_cmd(k, t, self.ops, f, Cmd::SelfDisable)?;
                }
                continue;
            }
            match k.proto.direct_meets_ipmodify {
                DirectMeetsIpmodify::Busy => return Err(Errno::EBUSY),
                // v2 combination #4: "let user enable share_ipmodify and retry"
                DirectMeetsIpmodify::Eagain => return Err(Errno::EAGAIN),
                DirectMeetsIpmodify::SelfCmd => {
                    // "If this is called by __modify_ftrace_direct() then it is only changing
                    // where the direct pointer is jumping to": `FTRACE_WARN_ON(!update_target &&
                    // (rec->flags & FTRACE_FL_DIRECT))` (Debian 6.1.192 ftrace.c:1974-1975,
                    // 6.12.117 ftrace.c:2047-2048). The update-target pass exists only in the
                    // trees that have this condition, so it is no switch of its own.
                    if r.direct && !self.update_target {
                        k.ev(
                            t,
                            EventKind::Warn("FTRACE_WARN_ON(rec->flags & FTRACE_FL_DIRECT)"),
                        );
                    }
                    if !k.has_ops_func(self.ops) {
                        return Err(Errno::EBUSY);
                    }
                    crate::owners::self_cmd(k, t, self.ops, f, Cmd::SelfEnable)?;
                }
            }
        }
        Ok(0)
    }

    /// The next record (from `self.next`) entering the new hash that has DIRECT, with the direct
    /// ops to ask about it.
    fn next_direct_peer(
        &mut self,
        k: &Kernel,
        old: &IpHash,
        new: &IpHash,
    ) -> Option<(FnId, Option<OpsId>)> {
        let ips: Vec<FnId> = new.ips().collect();
        while (self.next as usize) < ips.len() {
            let f = ips[self.next as usize];
            self.next += 1;
            let r = k.rec(f);
            if !r.present || r.disabled || old.contains(f) || !r.direct {
                continue;
            }
            return Some((f, peer_scan(k, f, PeerScan::FirstReferencing)));
        }
        None
    }
}

impl Step for FtraceHashUpdateIpmodify {
    const NAME: &'static str = "__ftrace_hash_update_ipmodify";
    fn step(&mut self, k: &mut Kernel, t: Tid, input: Input) -> Flow {
        use FtraceHashUpdateIpmodifyPc as Pc;
        loop {
            match self.pc {
                Pc::Entry => {
                    if !k.op(self.ops).has(fl::ENABLED) {
                        return Flow::Ret(Ok(0));
                    }
                    let Some(is_ipmodify) = accounted_ipmodify(k, self.ops) else {
                        if k.op(self.ops).has(fl::IPMODIFY) && k.op(self.ops).has(fl::DIRECT) {
                            k.ev(
                                t,
                                EventKind::Warn(
                                    "__ftrace_hash_update_ipmodify: IPMODIFY and DIRECT",
                                ),
                            );
                        }
                        return Flow::Ret(Ok(0));
                    };
                    let (Some(old), Some(new)) = (&self.old, &self.new) else {
                        return Flow::Ret(Err(Errno::EINVAL));
                    };
                    // v2 combination #5: a direct ops that shares has nothing to do.
                    if !is_ipmodify && k.op(self.ops).has(fl::SHARE_IPMODIFY) {
                        return Flow::Ret(Ok(0));
                    }
                    if !is_ipmodify {
                        let (old, new) = (old.clone(), new.clone());
                        return Flow::Ret(self.direct_pass(k, t, &old, &new));
                    }
                    let rinse = k.proto.ipmodify_owner_call == IpmodifyOwnerCall::UnlockAndRetry
                        && !k.op(self.ops).has(fl::DIRECT);
                    self.pc = if rinse { Pc::RinseStart } else { Pc::FlagPass };
                }
                Pc::RinseStart => {
                    self.next = 0;
                    self.changed = false;
                    self.pc = Pc::NextDirect;
                }
                Pc::NextDirect => {
                    let (old, new) = (self.old.clone().unwrap(), self.new.clone().unwrap());
                    match self.next_direct_peer(k, &old, &new) {
                        None if self.changed => {
                            self.retries += 1;
                            if self.retries > RETRIES_MAX {
                                k.violate(Violation::new(
                                    Property::Livelock,
                                    None,
                                    "the rinse-and-repeat accounting hit its retry bound",
                                ));
                                return Flow::Ret(Err(Errno::EAGAIN));
                            }
                            self.pc = Pc::RinseStart;
                        }
                        None => self.pc = Pc::FlagPass,
                        Some((_, None)) => self.pc = Pc::NextDirect,
                        Some((f, Some(peer))) => {
                            if !k.has_ops_func(peer) {
                                return Flow::Ret(Err(Errno::EBUSY));
                            }
                            self.gen0 = k.gen;
                            k.unlock(t, Lock::Ftrace);
                            call!(self, Pc::Relock, OpsFunc::new(peer, f, Cmd::PeerEnable));
                        }
                    }
                }
                Pc::Relock => {
                    self.err = input.ret().err();
                    wait!(self, Pc::Relocked, Request::Lock(Lock::Ftrace));
                }
                Pc::Relocked => {
                    if let Some(e) = self.err {
                        return Flow::Ret(Err(e));
                    }
                    if k.gen != self.gen0 {
                        self.changed = true;
                    }
                    self.pc = Pc::NextDirect;
                }
                Pc::FlagPass => {
                    let (old, new) = (self.old.clone().unwrap(), self.new.clone().unwrap());
                    return Flow::Ret(k.ipmodify_flag_pass(t, &old, &new).map(|_| 0));
                }
            }
        }
    }
}

/// `prepare_direct_functions_for_ipmodify` (direct_mutex held by the caller): for each ip of the
/// new IPMODIFY ops' filter, under ftrace_lock find a direct ops per `peer_scan`; no owner callback
/// -> `-EBUSY`; else send it ENABLE (v2) / ENABLE_PEER (merged) and fail with its error.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PrepareDirectFunctionsForIpmodify {
    pub ops: OpsId,
    /// The ips to prepare; `None`: every entry of the ops' filter.
    pub ips: Option<Vec<FnId>>,
    idx: u16,
    pc: PrepareDirectFunctionsForIpmodifyPc,
}

/// Where [`PrepareDirectFunctionsForIpmodify`] resumes: the loop over the hash's entries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
enum PrepareDirectFunctionsForIpmodifyPc {
    /// the next entry, `mutex_lock(&ftrace_lock)`
    NextIp = 0,
    /// `do_for_each_ftrace_op` under ftrace_lock, then `op->ops_func(..., ENABLE_SHARE_IPMODIFY_PEER)`
    Scan = 1,
    /// `if (ret) return ret;`
    PeerAnswered = 2,
}

impl PrepareDirectFunctionsForIpmodify {
    pub fn new(ops: OpsId) -> Self {
        PrepareDirectFunctionsForIpmodify {
            ops,
            ips: None,
            idx: 0,
            pc: PrepareDirectFunctionsForIpmodifyPc::NextIp,
        }
    }
    /// Prepares only these ips (the ones a filter change adds; proposed `set_filter_notifies_peer`).
    pub fn for_ips(ops: OpsId, ips: Vec<FnId>) -> Self {
        PrepareDirectFunctionsForIpmodify {
            ops,
            ips: Some(ips),
            idx: 0,
            pc: PrepareDirectFunctionsForIpmodifyPc::NextIp,
        }
    }
}

/// The `i`-th ip a prepare or cleanup pass walks.
fn nth_ip(k: &Kernel, ops: OpsId, ips: &Option<Vec<FnId>>, i: usize) -> Option<FnId> {
    match ips {
        Some(v) => v.get(i).copied(),
        None => k.filter(ops).nth_entry(i),
    }
}

/// proposed (`peer_disable_deferred`): after direct_mutex is released, the DISABLE_PEERs a
/// cleanup of these ips left pending.
fn unshare_deferred(k: &Kernel, ops: OpsId, ips: &Option<Vec<FnId>>) -> Frame {
    let n = ips_len(k, ops, ips);
    crate::owners::unshare_deferred((0..n).filter_map(|i| nth_ip(k, ops, ips, i)).collect())
}

fn ips_len(k: &Kernel, ops: OpsId, ips: &Option<Vec<FnId>>) -> usize {
    match ips {
        Some(v) => v.len(),
        None => k.filter(ops).len(),
    }
}

/// The scan mode of the prepare and cleanup passes (where a version has none, e.g. a proposed
/// pass on a version without prepare, the merged scan).
fn scan_mode(k: &Kernel) -> PeerScan {
    match k.proto.peer_scan {
        PeerScan::None => PeerScan::FirstReferencing,
        m => m,
    }
}

impl Step for PrepareDirectFunctionsForIpmodify {
    const NAME: &'static str = "prepare_direct_functions_for_ipmodify";
    fn step(&mut self, k: &mut Kernel, t: Tid, input: Input) -> Flow {
        use PrepareDirectFunctionsForIpmodifyPc as Pc;
        loop {
            match self.pc {
                Pc::NextIp => {
                    if self.idx as usize >= ips_len(k, self.ops, &self.ips) {
                        return Flow::Ret(Ok(1));
                    }
                    wait!(self, Pc::Scan, Request::Lock(Lock::Ftrace));
                }
                Pc::Scan => {
                    let ip = nth_ip(k, self.ops, &self.ips, self.idx as usize);
                    let found = ip.and_then(|ip| peer_scan(k, ip, scan_mode(k)).map(|op| (op, ip)));
                    k.unlock(t, Lock::Ftrace);
                    self.idx += 1;
                    match found {
                        None => self.pc = Pc::NextIp,
                        Some((op, _)) if !k.has_ops_func(op) => {
                            return Flow::Ret(Err(Errno::EBUSY))
                        }
                        Some((op, ip)) => call!(
                            self,
                            Pc::PeerAnswered,
                            OpsFunc::new(op, ip, Cmd::PeerEnable)
                        ),
                    }
                }
                Pc::PeerAnswered => {
                    if let Err(e) = input.ret() {
                        return Flow::Ret(Err(e));
                    }
                    self.pc = Pc::NextIp;
                }
            }
        }
    }
}

/// `cleanup_direct_functions_after_ipmodify`: direct_mutex; for each ip, the same scan under
/// ftrace_lock, then DISABLE_PEER to the direct ops found; errors ignored.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CleanupDirectFunctionsAfterIpmodify {
    pub ops: OpsId,
    /// The ips to clean up; `None`: every entry of the ops' filter.
    pub ips: Option<Vec<FnId>>,
    /// The caller already holds direct_mutex (proposed `unregister_holds_direct_mutex`,
    /// `set_filter_notifies_peer`).
    pub holds_direct: bool,
    idx: u16,
    pc: CleanupDirectFunctionsAfterIpmodifyPc,
    retries: u16,
}

/// Where [`CleanupDirectFunctionsAfterIpmodify`] resumes: the loop over the hash's entries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
enum CleanupDirectFunctionsAfterIpmodifyPc {
    /// `mutex_lock(&direct_mutex)` unless the caller holds it
    Entry = 0,
    /// the next entry, `mutex_lock(&ftrace_lock)`; after the last, `mutex_unlock(&direct_mutex)`
    NextIp = 1,
    /// `do_for_each_ftrace_op` under ftrace_lock, then `op->ops_func(..., DISABLE_SHARE_IPMODIFY_PEER)`
    Scan = 2,
    /// errors ignored (proposed `cleanup_retries_busy_peer`: a busy peer is asked again)
    PeerAnswered = 3,
    /// proposed: slept after a busy peer; take direct_mutex again
    Relock = 4,
    /// proposed: direct_mutex held again; ask the same ip again unless handed off
    Relocked = 5,
    /// proposed `peer_disable_deferred`: the deferred DISABLE_PEERs are done
    DeferredDone = 6,
}

impl CleanupDirectFunctionsAfterIpmodify {
    pub fn new(ops: OpsId) -> Self {
        CleanupDirectFunctionsAfterIpmodify {
            ops,
            ips: None,
            holds_direct: false,
            idx: 0,
            pc: CleanupDirectFunctionsAfterIpmodifyPc::Entry,
            retries: 0,
        }
    }
}

impl Step for CleanupDirectFunctionsAfterIpmodify {
    const NAME: &'static str = "cleanup_direct_functions_after_ipmodify";
    fn step(&mut self, k: &mut Kernel, t: Tid, input: Input) -> Flow {
        use CleanupDirectFunctionsAfterIpmodifyPc as Pc;
        loop {
            match self.pc {
                Pc::Entry if self.holds_direct => self.pc = Pc::NextIp,
                Pc::Entry => wait!(self, Pc::NextIp, Request::Lock(Lock::Direct)),
                // proposed (`cleanup_retries_busy_peer`): DISABLE_PEER found tr->mutex taken. Let
                // the others run (the tr->mutex holder may be waiting for direct_mutex), then ask
                // again. Other errors (a failed rebuild) are ignored as before.
                Pc::PeerAnswered => {
                    if input.ret() != Err(Errno::EAGAIN) || !k.proto.cleanup_retries_busy_peer {
                        self.pc = Pc::NextIp;
                        continue;
                    }
                    self.retries += 1;
                    if self.retries > RETRIES_MAX {
                        k.violate(Violation::new(
                            Property::Livelock,
                            None,
                            "cleanup: DISABLE_PEER kept finding tr->mutex taken",
                        ));
                        self.pc = Pc::NextIp;
                        continue;
                    }
                    self.idx -= 1;
                    k.unlock(t, Lock::Direct);
                    wait!(self, Pc::Relock, Request::Sleep);
                }
                Pc::Relock => wait!(self, Pc::Relocked, Request::Lock(Lock::Direct)),
                // proposed (`peer_disable_hands_off`): the holder of tr->mutex has done the
                // DISABLE left pending (or a PEER/SELF superseded it): no retry.
                Pc::Relocked => {
                    let ip = nth_ip(k, self.ops, &self.ips, self.idx as usize);
                    if k.proto.peer_disable_hands_off
                        && ip.is_some_and(|f| !k.fns[f.0 as usize].unshare_pending)
                    {
                        self.idx += 1;
                    }
                    self.pc = Pc::NextIp;
                }
                Pc::NextIp => {
                    if self.idx as usize >= ips_len(k, self.ops, &self.ips) {
                        if !self.holds_direct {
                            k.unlock(t, Lock::Direct);
                            if k.proto.peer_disable_deferred {
                                call!(
                                    self,
                                    Pc::DeferredDone,
                                    unshare_deferred(k, self.ops, &self.ips)
                                );
                            }
                        }
                        return Flow::Ret(Ok(0));
                    }
                    wait!(self, Pc::Scan, Request::Lock(Lock::Ftrace));
                }
                // proposed (`peer_disable_deferred`): the deferred DISABLE_PEERs are done.
                Pc::DeferredDone => return Flow::Ret(Ok(0)),
                Pc::Scan => {
                    let ip = nth_ip(k, self.ops, &self.ips, self.idx as usize);
                    let found = ip.and_then(|ip| peer_scan(k, ip, scan_mode(k)).map(|op| (op, ip)));
                    k.unlock(t, Lock::Ftrace);
                    self.idx += 1;
                    match found {
                        Some((op, ip)) if k.has_ops_func(op) => {
                            call!(
                                self,
                                Pc::PeerAnswered,
                                OpsFunc::new(op, ip, Cmd::PeerDisable)
                            )
                        }
                        _ => self.pc = Pc::NextIp,
                    }
                }
            }
        }
    }
}

/// `unregister_ftrace_function`: ftrace_lock + `ftrace_shutdown`; then, where the version has it,
/// `cleanup_direct_functions_after_ipmodify` for an IPMODIFY ops (even if shutdown failed).
/// proposed (`unregister_holds_direct_mutex`): direct_mutex is taken first for a non-direct
/// IPMODIFY ops and held through the cleanup, so no direct ops registers and no IPMODIFY ops
/// arrives between the shutdown and the DISABLE_PEER.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct UnregisterFtraceFunction {
    pub ops: OpsId,
    pc: UnregisterFtraceFunctionPc,
    r: Option<Errno>,
    holds_direct: bool,
}

/// Where [`UnregisterFtraceFunction`] resumes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
enum UnregisterFtraceFunctionPc {
    /// proposed `unregister_holds_direct_mutex`: `mutex_lock(&direct_mutex)`
    Entry = 0,
    /// `mutex_lock(&ftrace_lock)`
    LockFtrace = 1,
    /// `ftrace_shutdown(ops, 0)`, `mutex_unlock(&ftrace_lock)`, `cleanup_direct_functions_after_ipmodify(ops)`
    Shutdown = 2,
    /// the cleanup returned: release direct_mutex, run the deferred DISABLE_PEERs
    CleanedUp = 3,
    /// the deferred DISABLE_PEERs are done
    DeferredDone = 4,
}

impl UnregisterFtraceFunction {
    pub fn new(ops: OpsId) -> Self {
        UnregisterFtraceFunction {
            ops,
            pc: UnregisterFtraceFunctionPc::Entry,
            r: None,
            holds_direct: false,
        }
    }
}

impl Step for UnregisterFtraceFunction {
    const NAME: &'static str = "unregister_ftrace_function";
    fn step(&mut self, k: &mut Kernel, t: Tid, _input: Input) -> Flow {
        use UnregisterFtraceFunctionPc as Pc;
        loop {
            match self.pc {
                Pc::Entry => {
                    let o = k.op(self.ops);
                    if k.proto.unregister_holds_direct_mutex
                        && o.has(fl::IPMODIFY)
                        && !o.has(fl::DIRECT)
                    {
                        self.holds_direct = true;
                        wait!(self, Pc::LockFtrace, Request::Lock(Lock::Direct));
                    }
                    self.pc = Pc::LockFtrace;
                }
                Pc::LockFtrace => wait!(self, Pc::Shutdown, Request::Lock(Lock::Ftrace)),
                Pc::Shutdown => {
                    self.r = ftrace_shutdown(k, t, self.ops).err();
                    k.unlock(t, Lock::Ftrace);
                    if k.proto.cleanup_after_ipmodify && k.op(self.ops).has(fl::IPMODIFY) {
                        let mut c = CleanupDirectFunctionsAfterIpmodify::new(self.ops);
                        c.holds_direct = self.holds_direct;
                        call!(self, Pc::CleanedUp, c);
                    }
                    self.pc = Pc::CleanedUp;
                }
                Pc::CleanedUp => {
                    if self.holds_direct {
                        k.unlock(t, Lock::Direct);
                        if k.proto.peer_disable_deferred
                            && k.proto.cleanup_after_ipmodify
                            && k.op(self.ops).has(fl::IPMODIFY)
                        {
                            call!(self, Pc::DeferredDone, unshare_deferred(k, self.ops, &None));
                        }
                    }
                    return Flow::Ret(self.r.map_or(Ok(0), Err));
                }
                Pc::DeferredDone => return Flow::Ret(self.r.map_or(Ok(0), Err)),
            }
        }
    }
}

/// `ftrace_set_filter_ip` / `ftrace_set_notrace_ip` (`ftrace_set_hash` with one ip): regex_lock,
/// copy the hash (an allocation), add or remove the ip, then under ftrace_lock
/// `ftrace_hash_move_and_update_ops`: the IPMODIFY accounting for a filter change, the record
/// accounting and the code update. It sends no command to anyone.
///
/// proposed (`set_filter_notifies_peer`): for an enabled non-direct IPMODIFY ops, direct_mutex is
/// taken first; the ips the change adds go through the prepare pass (ENABLE_PEER) before the new
/// filter goes live, and the ips it removes through the cleanup pass (DISABLE_PEER) after.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FtraceSetHash {
    pub ops: OpsId,
    pub ip: FnId,
    pub notrace: bool,
    pub remove: bool,
    pub reset: bool,
    /// The tracefs path (`set_ftrace_filter` / `set_ftrace_notrace`: `ftrace_regex_write` ->
    /// `match_records` -> `enter_record`), not `ftrace_set_filter_ip`: adding an ip already in
    /// the hash and removing one that is absent change nothing and succeed (6.1
    /// `kernel/trace/ftrace.c` `enter_record`: `if (entry) return 0` / `if (!entry) return 0`;
    /// the same in 6.12). Found by `ftsim kernel --random` on 6.12.117.
    pub regex: bool,
    pc: FtraceSetHashPc,
    new: IpHash,
    holds_direct: bool,
    leaving: Vec<FnId>,
}

/// Where [`FtraceSetHash`] resumes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
enum FtraceSetHashPc {
    /// proposed `set_filter_notifies_peer`: `mutex_lock(&direct_mutex)`; `mutex_lock(&ops->func_hash->regex_lock)`
    Entry = 0,
    /// direct_mutex held: `mutex_lock(&ops->func_hash->regex_lock)`
    LockRegex = 10,
    /// regex_lock held: `alloc_and_copy_ftrace_hash`
    CopyHash = 1,
    /// the copy answered (proposed `filter_remove_in_place`: reserve the removal slot)
    HashCopied = 11,
    /// proposed `filter_remove_in_place`: the removal slot answered
    SlotReserved = 12,
    /// `ftrace_match_addr`: add or remove the ip in the copy
    Edit = 2,
    /// proposed: the prepare pass over the entering ips answered
    Prepared = 5,
    /// ftrace_lock held: `ftrace_hash_move_and_update_ops`, the IPMODIFY accounting first
    Move = 3,
    /// the accounting answered
    Accounted = 4,
    /// the record accounting around the swap, the code update, the unlocks
    Update = 6,
    /// proposed: the cleanup pass over the leaving ips returned
    CleanedUp = 7,
    /// proposed `peer_disable_deferred`: the deferred DISABLE_PEERs are done
    DeferredDone = 8,
}

impl FtraceSetHash {
    /// The same edit through the tracefs files (see [`FtraceSetHash::regex`]).
    pub fn regex(mut self) -> Self {
        self.regex = true;
        self
    }
    pub fn filter(ops: OpsId, ip: FnId, remove: bool, reset: bool) -> Self {
        FtraceSetHash {
            ops,
            ip,
            notrace: false,
            remove,
            reset,
            regex: false,
            pc: FtraceSetHashPc::Entry,
            new: IpHash::new(),
            holds_direct: false,
            leaving: Vec::new(),
        }
    }
    pub fn notrace(ops: OpsId, ip: FnId, remove: bool) -> Self {
        FtraceSetHash {
            ops,
            ip,
            notrace: true,
            remove,
            reset: false,
            regex: false,
            pc: FtraceSetHashPc::Entry,
            new: IpHash::new(),
            holds_direct: false,
            leaving: Vec::new(),
        }
    }
    fn fail(&self, k: &mut Kernel, t: Tid, ftrace: bool, e: Errno) -> Flow {
        if ftrace {
            k.unlock(t, Lock::Ftrace);
        }
        k.unlock(t, Lock::Regex(self.ops));
        if self.holds_direct {
            k.unlock(t, Lock::Direct);
        }
        Flow::Ret(Err(e))
    }
}

impl Step for FtraceSetHash {
    const NAME: &'static str = "ftrace_set_hash";
    fn step(&mut self, k: &mut Kernel, t: Tid, input: Input) -> Flow {
        use FtraceSetHashPc as Pc;
        loop {
            match self.pc {
                Pc::Entry => {
                    let o = k.op(self.ops);
                    if k.proto.set_filter_notifies_peer
                        && !self.notrace
                        && o.has(fl::ENABLED)
                        && o.has(fl::IPMODIFY)
                        && !o.has(fl::DIRECT)
                    {
                        self.holds_direct = true;
                        wait!(self, Pc::LockRegex, Request::Lock(Lock::Direct));
                    }
                    wait!(self, Pc::CopyHash, Request::Lock(Lock::Regex(self.ops)));
                }
                Pc::LockRegex => wait!(self, Pc::CopyHash, Request::Lock(Lock::Regex(self.ops))),
                Pc::CopyHash if self.remove && k.proto.filter_remove_in_place => self.pc = Pc::Edit,
                Pc::CopyHash => wait!(self, Pc::HashCopied, Request::Alloc(AllocSite::HashCopy)),
                Pc::HashCopied => {
                    if !input.ok() {
                        return self.fail(k, t, false, Errno::ENOMEM);
                    }
                    // proposed (`filter_remove_in_place`): the slot the removal of this ip will
                    // need is allocated now, so the removal cannot fail and an add can.
                    if !self.remove && k.proto.filter_remove_in_place {
                        wait!(
                            self,
                            Pc::SlotReserved,
                            Request::Alloc(AllocSite::RemoveSlot)
                        );
                    }
                    self.pc = Pc::Edit;
                }
                Pc::SlotReserved => {
                    if !input.ok() {
                        return self.fail(k, t, false, Errno::ENOMEM);
                    }
                    self.pc = Pc::Edit;
                }
                Pc::Edit => {
                    let orig = if self.notrace {
                        k.notrace(self.ops)
                    } else {
                        k.filter(self.ops)
                    };
                    let mut new = if self.reset {
                        IpHash::new()
                    } else {
                        orig.clone()
                    };
                    // __ftrace_match_addr: ftrace_location(ip) must find a record.
                    if !k.rec(self.ip).present {
                        return self.fail(k, t, false, Errno::EINVAL);
                    }
                    let present = new.contains(self.ip);
                    if self.remove {
                        if self.regex && !present {
                            // enter_record with clear_filter: nothing to clear
                        } else if let Err(e) = new.remove(self.ip) {
                            return self.fail(k, t, false, e);
                        }
                    } else if !((self.regex || k.proto.match_addr_dedups) && present) {
                        // enter_record (tracefs) never adds a present function; without
                        // `match_addr_dedups`, `ftrace_set_filter_ip` adds a second entry (SPEC §1);
                        // with it "Already exists" returns 0 (Debian 6.1.192 ftrace.c:5162-5165).
                        new.add(self.ip);
                    }
                    if self.holds_direct {
                        let old = k.filter(self.ops);
                        let entering: Vec<FnId> = new.ips().filter(|f| !old.contains(*f)).collect();
                        self.leaving = old.ips().filter(|f| !new.contains(*f)).collect();
                        self.new = new;
                        if !entering.is_empty() {
                            call!(
                                self,
                                Pc::Prepared,
                                PrepareDirectFunctionsForIpmodify::for_ips(self.ops, entering)
                            );
                        }
                    } else {
                        self.new = new;
                    }
                    wait!(self, Pc::Move, Request::Lock(Lock::Ftrace))
                }
                Pc::Prepared => {
                    if let Err(e) = input.ret() {
                        return self.fail(k, t, false, e);
                    }
                    wait!(self, Pc::Move, Request::Lock(Lock::Ftrace))
                }
                Pc::Move => {
                    // ftrace_hash_move: "Reject setting notrace hash on IPMODIFY ftrace_ops"
                    if self.notrace {
                        if k.op(self.ops).has(fl::IPMODIFY) {
                            return self.fail(k, t, true, Errno::EINVAL);
                        }
                        self.pc = Pc::Update;
                        continue;
                    }
                    call!(
                        self,
                        Pc::Accounted,
                        FtraceHashUpdateIpmodify::update(k, self.ops, &self.new)
                    )
                }
                Pc::Accounted => {
                    if let Err(e) = input.ret() {
                        return self.fail(k, t, true, e);
                    }
                    self.pc = Pc::Update;
                }
                Pc::Update => {
                    let filter_hash = !self.notrace;
                    k.hash_rec_update(t, self.ops, filter_hash, false);
                    k.assign_hash(t, self.ops, self.notrace, std::mem::take(&mut self.new));
                    k.hash_rec_update(t, self.ops, filter_hash, true);
                    if k.op(self.ops).has(fl::ENABLED) {
                        k.update_code(t);
                    }
                    k.unlock(t, Lock::Ftrace);
                    k.unlock(t, Lock::Regex(self.ops));
                    if self.holds_direct && !self.leaving.is_empty() {
                        let mut c = CleanupDirectFunctionsAfterIpmodify::new(self.ops);
                        c.ips = Some(if k.proto.peer_disable_deferred {
                            self.leaving.clone()
                        } else {
                            std::mem::take(&mut self.leaving)
                        });
                        c.holds_direct = true;
                        call!(self, Pc::CleanedUp, c);
                    }
                    self.pc = Pc::CleanedUp;
                }
                Pc::CleanedUp => {
                    if self.holds_direct {
                        k.unlock(t, Lock::Direct);
                        if k.proto.peer_disable_deferred && !self.leaving.is_empty() {
                            let ips = Some(std::mem::take(&mut self.leaving));
                            call!(self, Pc::DeferredDone, unshare_deferred(k, self.ops, &ips));
                        }
                    }
                    return Flow::Ret(Ok(0));
                }
                Pc::DeferredDone => return Flow::Ret(Ok(0)),
            }
        }
    }
}

/// A tracer setting both hashes of its (unregistered) ops at once: `ftrace_set_filter` +
/// `ftrace_set_notrace` with reset, as the function tracer's files do.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FtraceSetFilterNotrace {
    pub ops: OpsId,
    pub filter: Vec<FnId>,
    pub notrace: Vec<FnId>,
    pc: FtraceSetFilterNotracePc,
}

/// Where [`FtraceSetFilterNotrace`] resumes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
enum FtraceSetFilterNotracePc {
    /// `mutex_lock(&ops->func_hash->regex_lock)`
    Entry = 0,
    /// `alloc_and_copy_ftrace_hash`
    CopyHash = 1,
    /// the copy answered (proposed `filter_remove_in_place`: reserve the removal slots)
    HashCopied = 4,
    /// the ips must have records; `mutex_lock(&ftrace_lock)`
    SlotReserved = 2,
    /// ftrace_lock held: both hashes with the record accounting, the code update
    Assign = 3,
}

impl FtraceSetFilterNotrace {
    pub fn new(ops: OpsId, filter: Vec<FnId>, notrace: Vec<FnId>) -> Self {
        FtraceSetFilterNotrace {
            ops,
            filter,
            notrace,
            pc: FtraceSetFilterNotracePc::Entry,
        }
    }
}

impl Step for FtraceSetFilterNotrace {
    const NAME: &'static str = "ftrace_set_filter+notrace";
    fn step(&mut self, k: &mut Kernel, t: Tid, input: Input) -> Flow {
        use FtraceSetFilterNotracePc as Pc;
        match self.pc {
            Pc::Entry => wait!(self, Pc::CopyHash, Request::Lock(Lock::Regex(self.ops))),
            Pc::CopyHash => wait!(self, Pc::HashCopied, Request::Alloc(AllocSite::HashCopy)),
            Pc::HashCopied => {
                if !input.ok() {
                    k.unlock(t, Lock::Regex(self.ops));
                    return Flow::Ret(Err(Errno::ENOMEM));
                }
                // proposed (`filter_remove_in_place`): one allocation holds the removal slots of
                // every entry the registration adds.
                let adds = !(self.filter.is_empty() && self.notrace.is_empty());
                if adds && k.proto.filter_remove_in_place {
                    wait!(
                        self,
                        Pc::SlotReserved,
                        Request::Alloc(AllocSite::RemoveSlot)
                    );
                }
                self.pc = Pc::SlotReserved;
                self.step(k, t, Input::Answer(true))
            }
            Pc::SlotReserved => {
                if !input.ok() {
                    k.unlock(t, Lock::Regex(self.ops));
                    return Flow::Ret(Err(Errno::ENOMEM));
                }
                if self
                    .filter
                    .iter()
                    .chain(&self.notrace)
                    .any(|f| !k.rec(*f).present)
                {
                    k.unlock(t, Lock::Regex(self.ops));
                    return Flow::Ret(Err(Errno::EINVAL));
                }
                wait!(self, Pc::Assign, Request::Lock(Lock::Ftrace))
            }
            Pc::Assign => {
                let enabled = k.op(self.ops).has(fl::ENABLED);
                for (notrace, list) in [(false, &self.filter), (true, &self.notrace)] {
                    k.hash_rec_update(t, self.ops, !notrace, false);
                    k.assign_hash(t, self.ops, notrace, IpHash::from_fns(list));
                    k.hash_rec_update(t, self.ops, !notrace, true);
                }
                if enabled {
                    k.update_code(t);
                }
                k.unlock(t, Lock::Ftrace);
                k.unlock(t, Lock::Regex(self.ops));
                Flow::Ret(Ok(0))
            }
        }
    }
}

/// `op->ops_func(op, ip, cmd)`: ftrace asks the owner of a direct ops to change mode for the
/// function at `ip` (the ip argument since "ftrace: Factor ftrace_ops ops_func interface"; before,
/// `op->ops_func(op, cmd)` and the owner used `ops->private`, the same trampoline, since a
/// per-trampoline ops only ever references its own function).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct OpsFunc {
    pub target: OpsId,
    pub ip: FnId,
    pub cmd: Cmd,
    pc: OpsFuncPc,
}

/// Where [`OpsFunc`] resumes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
enum OpsFuncPc {
    /// the call to the owner
    Entry = 0,
    /// the owner answered
    Answered = 1,
}

impl OpsFunc {
    pub fn new(target: OpsId, ip: FnId, cmd: Cmd) -> Self {
        OpsFunc {
            target,
            ip,
            cmd,
            pc: OpsFuncPc::Entry,
        }
    }
}

impl Step for OpsFunc {
    const NAME: &'static str = "ops->ops_func";
    fn step(&mut self, k: &mut Kernel, t: Tid, input: Input) -> Flow {
        use OpsFuncPc as Pc;
        match self.pc {
            Pc::Entry => {
                k.ev(
                    t,
                    EventKind::Callback(self.target, self.cmd.name(k.proto.bpf_share_state)),
                );
                call!(
                    self,
                    Pc::Answered,
                    crate::owners::ops_func(k, self.target, self.ip, self.cmd)
                )
            }
            Pc::Answered => Flow::Ret(input.ret()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::{Hash, Hasher};

    /// The bytes a value feeds a hasher.
    #[derive(Default)]
    struct Fed(Vec<u8>);

    impl Hasher for Fed {
        fn finish(&self) -> u64 {
            0
        }
        fn write(&mut self, bytes: &[u8]) {
            self.0.extend_from_slice(bytes);
        }
    }

    fn fed(x: &impl Hash) -> Vec<u8> {
        let mut h = Fed::default();
        x.hash(&mut h);
        h.0
    }

    /// A frame's program counter feeds the state fingerprints (`fingerprint.rs`, explore's
    /// encoding) exactly the byte the numeric `pc: u8` fed before the labels had names: the
    /// enums are `repr(u8)` with those numbers, so no fingerprint and no pinned count moves.
    #[test]
    fn a_pc_hashes_as_its_number() {
        assert_eq!(fed(&RegisterFtraceFunctionPc::OutUnlock), fed(&3u8));
        assert_eq!(fed(&FtraceHashUpdateIpmodifyPc::RinseStart), fed(&10u8));
        assert_eq!(fed(&FtraceHashUpdateIpmodifyPc::FlagPass), fed(&20u8));
        assert_eq!(fed(&FtraceSetHashPc::SlotReserved), fed(&12u8));
        assert_eq!(
            fed(&RegisterFtraceFunction::new(OpsId(2))),
            fed(&(OpsId(2), 0u8, false, false))
        );
    }
}
