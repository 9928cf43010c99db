//! ftrace.c entry points as resumable frames (SPEC §5): registration, unregistration, the
//! IPMODIFY accounting, the prepare/cleanup peer scans, filter updates and owner callbacks.
//!
//! Each frame's comments name the kernel lines it mirrors. A frame suspends only where the
//! kernel takes a lock or allocates; everything between two suspensions is atomic.

use crate::errno::Errno;
use crate::hash::IpHash;
use crate::ids::{FnId, OpsId, OpsOwner, Tid};
use crate::kernel::{fl, Kernel, RETRIES_MAX};
use crate::locks::Lock;
use crate::machine::{AllocSite, EventKind, Flow, Input, Request, Ret, Step};
use crate::property::{Property, Violation};
use crate::protocol::{
    BpfShareState, DirectMeetsIpmodify, IpmodifyOwnerCall, PeerScan, RegisterTakesDirectMutex,
};

/// Suspends the frame at `pc` until the driver answers `req`.
macro_rules! wait {
    ($self:ident, $pc:expr, $req:expr) => {{
        $self.pc = $pc;
        return $crate::machine::Flow::Wait($req);
    }};
}
/// Calls a child frame; the frame resumes at `pc` with the child's return value.
macro_rules! call {
    ($self:ident, $pc:expr, $child:expr) => {{
        $self.pc = $pc;
        return $crate::machine::Flow::Call($crate::machine::Frame::from($child));
    }};
}
pub(crate) use {call, wait};

/// An owner command (`enum ftrace_ops_cmd`, SPEC §5.2, §5.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Cmd {
    /// merged `ENABLE_SHARE_IPMODIFY_SELF`: sent to a direct ops entering an IPMODIFY record.
    SelfEnable,
    /// v2 `ENABLE_SHARE_IPMODIFY`, merged `ENABLE_SHARE_IPMODIFY_PEER`.
    PeerEnable,
    /// v2 `DISABLE_SHARE_IPMODIFY`, merged `DISABLE_SHARE_IPMODIFY_PEER`.
    PeerDisable,
}

impl Cmd {
    pub fn name(self, share: BpfShareState) -> &'static str {
        match (self, share) {
            (Cmd::SelfEnable, _) => "ENABLE_SHARE_IPMODIFY_SELF",
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
    pc: u8,
    direct_locked: bool,
    prepare: bool,
}

impl RegisterFtraceFunction {
    pub fn new(ops: OpsId) -> Self {
        RegisterFtraceFunction {
            ops,
            pc: 0,
            direct_locked: false,
            prepare: false,
        }
    }
}

impl Step for RegisterFtraceFunction {
    const NAME: &'static str = "register_ftrace_function";
    fn step(&mut self, k: &mut Kernel, t: Tid, input: Input) -> Flow {
        loop {
            match self.pc {
                0 => {
                    let o = k.op(self.ops);
                    self.prepare = o.has(fl::IPMODIFY)
                        && !o.has(fl::DIRECT)
                        && k.proto.peer_scan != PeerScan::None;
                    let takes = k.proto.register_takes_direct_mutex
                        == RegisterTakesDirectMutex::Always
                        || self.prepare;
                    if takes {
                        self.direct_locked = true;
                        wait!(self, 1, Request::Lock(Lock::Direct));
                    }
                    self.pc = 1;
                }
                1 => {
                    if self.prepare {
                        call!(self, 2, PrepareForIpmodify::new(self.ops));
                    }
                    call!(self, 3, RegisterNolock::new(self.ops));
                }
                2 => {
                    if let Err(e) = input.ret() {
                        if self.direct_locked {
                            k.unlock(t, Lock::Direct);
                        }
                        return Flow::Ret(Err(e));
                    }
                    call!(self, 3, RegisterNolock::new(self.ops));
                }
                3 => {
                    if self.direct_locked {
                        k.unlock(t, Lock::Direct);
                    }
                    return Flow::Ret(input.ret().map(|_| 0));
                }
                _ => unreachable!(),
            }
        }
    }
}

/// `register_ftrace_function_nolock`: ftrace_lock + `ftrace_startup`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RegisterNolock {
    pub ops: OpsId,
    pc: u8,
}

impl RegisterNolock {
    pub fn new(ops: OpsId) -> Self {
        RegisterNolock { ops, pc: 0 }
    }
}

impl Step for RegisterNolock {
    const NAME: &'static str = "register_ftrace_function_nolock";
    fn step(&mut self, k: &mut Kernel, t: Tid, input: Input) -> Flow {
        match self.pc {
            0 => wait!(self, 1, Request::Lock(Lock::Ftrace)),
            1 => call!(
                self,
                2,
                FtraceStartup {
                    ops: self.ops,
                    pc: 0
                }
            ),
            _ => {
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
    pc: u8,
}

impl Step for FtraceStartup {
    const NAME: &'static str = "ftrace_startup";
    fn step(&mut self, k: &mut Kernel, t: Tid, input: Input) -> Flow {
        match self.pc {
            0 => {
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
                call!(self, 1, UpdateIpmodify::enable(k, self.ops))
            }
            _ => {
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
/// exit). `None` stands for the kernel's NULL hash ("all functions"). For an IPMODIFY ops it sets
/// and clears record IPMODIFY flags with rollback; for a DIRECT ops entering an IPMODIFY record it
/// fails, returns `-EAGAIN` or asks the owner (SELF) per `direct_meets_ipmodify`. With
/// `ipmodify_owner_call = unlock-and-retry` it first asks the direct owner of every entering DIRECT
/// record, dropping ftrace_lock around each callback, until a pass changes nothing.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct UpdateIpmodify {
    pub ops: OpsId,
    old: Option<IpHash>,
    new: Option<IpHash>,
    update_target: bool,
    pc: u8,
    next: u16,
    changed: bool,
    retries: u16,
    gen0: u64,
    err: Option<Errno>,
}

fn none_if_empty(h: &IpHash) -> Option<IpHash> {
    (!h.is_empty()).then(|| h.clone())
}

impl UpdateIpmodify {
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
    fn with(ops: OpsId, old: Option<IpHash>, new: Option<IpHash>, update_target: bool) -> Self {
        UpdateIpmodify {
            ops,
            old,
            new,
            update_target,
            pc: 0,
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
            if !(in_new && r.ipmodify) {
                continue;
            }
            match k.proto.direct_meets_ipmodify {
                DirectMeetsIpmodify::Busy => return Err(Errno::EBUSY),
                // v2 combination #4: "let user enable share_ipmodify and retry"
                DirectMeetsIpmodify::Eagain => return Err(Errno::EAGAIN),
                DirectMeetsIpmodify::SelfCmd => {
                    if r.direct {
                        k.ev(
                            t,
                            EventKind::Warn("FTRACE_WARN_ON(rec->flags & FTRACE_FL_DIRECT)"),
                        );
                    }
                    if !k.has_ops_func(self.ops) {
                        return Err(Errno::EBUSY);
                    }
                    crate::owners::bpf::self_cmd(k, t, self.ops)?;
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

impl Step for UpdateIpmodify {
    const NAME: &'static str = "__ftrace_hash_update_ipmodify";
    fn step(&mut self, k: &mut Kernel, t: Tid, input: Input) -> Flow {
        loop {
            match self.pc {
                0 => {
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
                    self.pc = if rinse { 10 } else { 20 };
                }
                10 => {
                    self.next = 0;
                    self.changed = false;
                    self.pc = 11;
                }
                11 => {
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
                            self.pc = 10;
                        }
                        None => self.pc = 20,
                        Some((_, None)) => self.pc = 11,
                        Some((_, Some(peer))) => {
                            if !k.has_ops_func(peer) {
                                return Flow::Ret(Err(Errno::EBUSY));
                            }
                            self.gen0 = k.gen;
                            k.unlock(t, Lock::Ftrace);
                            call!(self, 12, OpsFunc::new(peer, Cmd::PeerEnable));
                        }
                    }
                }
                12 => {
                    self.err = input.ret().err();
                    wait!(self, 13, Request::Lock(Lock::Ftrace));
                }
                13 => {
                    if let Some(e) = self.err {
                        return Flow::Ret(Err(e));
                    }
                    if k.gen != self.gen0 {
                        self.changed = true;
                    }
                    self.pc = 11;
                }
                20 => {
                    let (old, new) = (self.old.clone().unwrap(), self.new.clone().unwrap());
                    return Flow::Ret(k.ipmodify_flag_pass(t, &old, &new).map(|_| 0));
                }
                _ => unreachable!(),
            }
        }
    }
}

/// `prepare_direct_functions_for_ipmodify` (direct_mutex held by the caller): for each ip of the
/// new IPMODIFY ops' filter, under ftrace_lock find a direct ops per `peer_scan`; no owner callback
/// -> `-EBUSY`; else send it ENABLE (v2) / ENABLE_PEER (merged) and fail with its error.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PrepareForIpmodify {
    pub ops: OpsId,
    idx: u16,
    pc: u8,
}

impl PrepareForIpmodify {
    pub fn new(ops: OpsId) -> Self {
        PrepareForIpmodify { ops, idx: 0, pc: 0 }
    }
}

impl Step for PrepareForIpmodify {
    const NAME: &'static str = "prepare_direct_functions_for_ipmodify";
    fn step(&mut self, k: &mut Kernel, t: Tid, input: Input) -> Flow {
        loop {
            match self.pc {
                0 => {
                    if self.idx as usize >= k.filter(self.ops).len() {
                        return Flow::Ret(Ok(1));
                    }
                    wait!(self, 1, Request::Lock(Lock::Ftrace));
                }
                1 => {
                    let ip = k.filter(self.ops).nth_entry(self.idx as usize);
                    let found = ip.and_then(|ip| peer_scan(k, ip, k.proto.peer_scan));
                    k.unlock(t, Lock::Ftrace);
                    self.idx += 1;
                    match found {
                        None => self.pc = 0,
                        Some(op) if !k.has_ops_func(op) => return Flow::Ret(Err(Errno::EBUSY)),
                        Some(op) => call!(self, 2, OpsFunc::new(op, Cmd::PeerEnable)),
                    }
                }
                2 => {
                    if let Err(e) = input.ret() {
                        return Flow::Ret(Err(e));
                    }
                    self.pc = 0;
                }
                _ => unreachable!(),
            }
        }
    }
}

/// `cleanup_direct_functions_after_ipmodify`: direct_mutex; for each ip, the same scan under
/// ftrace_lock, then DISABLE_PEER to the direct ops found; errors ignored.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CleanupAfterIpmodify {
    pub ops: OpsId,
    idx: u16,
    pc: u8,
}

impl Step for CleanupAfterIpmodify {
    const NAME: &'static str = "cleanup_direct_functions_after_ipmodify";
    fn step(&mut self, k: &mut Kernel, t: Tid, _input: Input) -> Flow {
        loop {
            match self.pc {
                0 => wait!(self, 1, Request::Lock(Lock::Direct)),
                1 => {
                    if self.idx as usize >= k.filter(self.ops).len() {
                        k.unlock(t, Lock::Direct);
                        return Flow::Ret(Ok(0));
                    }
                    wait!(self, 2, Request::Lock(Lock::Ftrace));
                }
                2 => {
                    let mode = match k.proto.peer_scan {
                        PeerScan::None => PeerScan::FirstReferencing,
                        m => m,
                    };
                    let ip = k.filter(self.ops).nth_entry(self.idx as usize);
                    let found = ip.and_then(|ip| peer_scan(k, ip, mode));
                    k.unlock(t, Lock::Ftrace);
                    self.idx += 1;
                    match found {
                        Some(op) if k.has_ops_func(op) => {
                            call!(self, 1, OpsFunc::new(op, Cmd::PeerDisable))
                        }
                        _ => self.pc = 1,
                    }
                }
                _ => unreachable!(),
            }
        }
    }
}

/// `unregister_ftrace_function`: ftrace_lock + `ftrace_shutdown`; then, where the version has it,
/// `cleanup_direct_functions_after_ipmodify` for an IPMODIFY ops (even if shutdown failed).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct UnregisterFtraceFunction {
    pub ops: OpsId,
    pc: u8,
    r: Option<Errno>,
}

impl UnregisterFtraceFunction {
    pub fn new(ops: OpsId) -> Self {
        UnregisterFtraceFunction {
            ops,
            pc: 0,
            r: None,
        }
    }
}

impl Step for UnregisterFtraceFunction {
    const NAME: &'static str = "unregister_ftrace_function";
    fn step(&mut self, k: &mut Kernel, t: Tid, _input: Input) -> Flow {
        match self.pc {
            0 => wait!(self, 1, Request::Lock(Lock::Ftrace)),
            1 => {
                self.r = ftrace_shutdown(k, t, self.ops).err();
                k.unlock(t, Lock::Ftrace);
                if k.proto.cleanup_after_ipmodify && k.op(self.ops).has(fl::IPMODIFY) {
                    call!(
                        self,
                        2,
                        CleanupAfterIpmodify {
                            ops: self.ops,
                            idx: 0,
                            pc: 0
                        }
                    );
                }
                Flow::Ret(self.r.map_or(Ok(0), Err))
            }
            _ => Flow::Ret(self.r.map_or(Ok(0), Err)),
        }
    }
}

/// `ftrace_set_filter_ip` / `ftrace_set_notrace_ip` (`ftrace_set_hash` with one ip): regex_lock,
/// copy the hash (an allocation), add or remove the ip, then under ftrace_lock
/// `ftrace_hash_move_and_update_ops`: the IPMODIFY accounting for a filter change, the record
/// accounting and the code update. It sends no command to anyone.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SetHash {
    pub ops: OpsId,
    pub ip: FnId,
    pub notrace: bool,
    pub remove: bool,
    pub reset: bool,
    pc: u8,
    new: IpHash,
}

impl SetHash {
    pub fn filter(ops: OpsId, ip: FnId, remove: bool, reset: bool) -> Self {
        SetHash {
            ops,
            ip,
            notrace: false,
            remove,
            reset,
            pc: 0,
            new: IpHash::new(),
        }
    }
    pub fn notrace(ops: OpsId, ip: FnId, remove: bool) -> Self {
        SetHash {
            ops,
            ip,
            notrace: true,
            remove,
            reset: false,
            pc: 0,
            new: IpHash::new(),
        }
    }
    fn unlock_all(&self, k: &mut Kernel, t: Tid) {
        k.unlock(t, Lock::Ftrace);
        k.unlock(t, Lock::Regex(self.ops));
    }
}

impl Step for SetHash {
    const NAME: &'static str = "ftrace_set_hash";
    fn step(&mut self, k: &mut Kernel, t: Tid, input: Input) -> Flow {
        match self.pc {
            0 => wait!(self, 1, Request::Lock(Lock::Regex(self.ops))),
            1 => wait!(self, 2, Request::Alloc(AllocSite::HashCopy)),
            2 => {
                let fail = |k: &mut Kernel, e| {
                    k.unlock(t, Lock::Regex(self.ops));
                    Flow::Ret(Err(e))
                };
                if !input.ok() {
                    return fail(k, Errno::ENOMEM);
                }
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
                    return fail(k, Errno::EINVAL);
                }
                if self.remove {
                    if let Err(e) = new.remove(self.ip) {
                        return fail(k, e);
                    }
                } else {
                    new.add(self.ip);
                }
                self.new = new;
                wait!(self, 3, Request::Lock(Lock::Ftrace))
            }
            3 => {
                // ftrace_hash_move: "Reject setting notrace hash on IPMODIFY ftrace_ops"
                if self.notrace {
                    if k.op(self.ops).has(fl::IPMODIFY) {
                        self.unlock_all(k, t);
                        return Flow::Ret(Err(Errno::EINVAL));
                    }
                    return self.finish(k, t);
                }
                call!(self, 4, UpdateIpmodify::update(k, self.ops, &self.new))
            }
            _ => {
                if let Err(e) = input.ret() {
                    self.unlock_all(k, t);
                    return Flow::Ret(Err(e));
                }
                self.finish(k, t)
            }
        }
    }
}

impl SetHash {
    fn finish(&mut self, k: &mut Kernel, t: Tid) -> Flow {
        let filter_hash = !self.notrace;
        k.hash_rec_update(t, self.ops, filter_hash, false);
        k.assign_hash(t, self.ops, self.notrace, std::mem::take(&mut self.new));
        k.hash_rec_update(t, self.ops, filter_hash, true);
        if k.op(self.ops).has(fl::ENABLED) {
            k.update_code(t);
        }
        self.unlock_all(k, t);
        Flow::Ret(Ok(0))
    }
}

/// A tracer setting both hashes of its (unregistered) ops at once: `ftrace_set_filter` +
/// `ftrace_set_notrace` with reset, as the function tracer's files do.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SetHashes {
    pub ops: OpsId,
    pub filter: Vec<FnId>,
    pub notrace: Vec<FnId>,
    pc: u8,
}

impl SetHashes {
    pub fn new(ops: OpsId, filter: Vec<FnId>, notrace: Vec<FnId>) -> Self {
        SetHashes {
            ops,
            filter,
            notrace,
            pc: 0,
        }
    }
}

impl Step for SetHashes {
    const NAME: &'static str = "ftrace_set_filter+notrace";
    fn step(&mut self, k: &mut Kernel, t: Tid, input: Input) -> Flow {
        match self.pc {
            0 => wait!(self, 1, Request::Lock(Lock::Regex(self.ops))),
            1 => wait!(self, 2, Request::Alloc(AllocSite::HashCopy)),
            2 => {
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
                wait!(self, 3, Request::Lock(Lock::Ftrace))
            }
            _ => {
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

/// `op->ops_func(op, cmd)`: ftrace asks the owner of a direct ops to change mode.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct OpsFunc {
    pub target: OpsId,
    pub cmd: Cmd,
    pc: u8,
}

impl OpsFunc {
    pub fn new(target: OpsId, cmd: Cmd) -> Self {
        OpsFunc { target, cmd, pc: 0 }
    }
}

impl Step for OpsFunc {
    const NAME: &'static str = "ops->ops_func";
    fn step(&mut self, k: &mut Kernel, t: Tid, input: Input) -> Flow {
        match self.pc {
            0 => {
                k.ev(
                    t,
                    EventKind::Callback(self.target, self.cmd.name(k.proto.bpf_share_state)),
                );
                match k.owner(self.target) {
                    OpsOwner::Bpf(f) => {
                        call!(self, 1, crate::owners::bpf::BpfOpsFunc::new(f, self.cmd))
                    }
                    other => panic!("[core internal bug] {other} has no ops_func"),
                }
            }
            _ => Flow::Ret(input.ret()),
        }
    }
}
