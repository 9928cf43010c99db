//! `__ftrace_hash_update_ipmodify` (the IPMODIFY accounting of a filter change) and the peer
//! scans around it: `prepare_direct_functions_for_ipmodify` before an IPMODIFY ops goes live,
//! `cleanup_direct_functions_after_ipmodify` after it leaves (SPEC §5.2, §5.3).

use super::*;

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
pub(super) fn ipmodify_disable(k: &mut Kernel, t: Tid, ops: OpsId) {
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
pub(super) enum FtraceHashUpdateIpmodifyPc {
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
pub(super) enum PrepareDirectFunctionsForIpmodifyPc {
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
pub(super) fn unshare_deferred(k: &Kernel, ops: OpsId, ips: &Option<Vec<FnId>>) -> Frame {
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
pub(super) enum CleanupDirectFunctionsAfterIpmodifyPc {
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
