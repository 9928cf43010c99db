//! The direct-call API (SPEC §5.1–5.4): `register/unregister/modify_ftrace_direct_multi` (plain
//! names from rcu-hash-2023 on) and the single-ip `register/modify/unregister_ftrace_direct` with
//! its shared `direct_ops`.

use crate::errno::Errno;
use crate::frames::{Flow, Step};
use crate::ftrace::{
    call, wait, FtraceHashUpdateIpmodify, FtraceSetHash, RegisterFtraceFunction,
    RegisterFtraceFunctionNolock, UnregisterFtraceFunction,
};
use crate::hash::IpHash;
use crate::ids::{Addr, FnId, OpsId, OpsOwner, Tid};
use crate::kernel::{fl, Kernel};
use crate::locks::Lock;
use crate::protocol::{DirectRegisterFailure, RegisterTakesDirectMutex, SingleDirectApi};
use crate::step::{AllocSite, EventKind, Input, Request, Ret};

/// `register_ftrace_direct_multi(ops, addr)` (SPEC §5.2–5.4).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RegisterFtraceDirectMulti {
    pub ops: OpsId,
    pub addr: Addr,
    pc: RegisterFtraceDirectMultiPc,
    idx: u16,
}

/// Where [`RegisterFtraceDirectMulti`] resumes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
enum RegisterFtraceDirectMultiPc {
    /// the ops checks, `mutex_lock(&direct_mutex)`
    Entry = 0,
    /// "Make sure requested entries are not already registered."
    Locked = 1,
    /// the next `ftrace_add_rec_direct`, or set the ops up and `register_ftrace_function_nolock`
    AddEntry = 2,
    /// the entry's allocation answered
    EntryAllocated = 3,
    /// the register returned: the failure cleanup per `direct_register_failure`, `out_unlock:`
    OutUnlock = 4,
}

impl RegisterFtraceDirectMulti {
    pub fn new(ops: OpsId, addr: Addr) -> Self {
        RegisterFtraceDirectMulti {
            ops,
            addr,
            pc: RegisterFtraceDirectMultiPc::Entry,
            idx: 0,
        }
    }
}

impl Step for RegisterFtraceDirectMulti {
    const NAME: &'static str = "register_ftrace_direct_multi";
    fn step(&mut self, k: &mut Kernel, t: Tid, input: Input) -> Flow {
        use RegisterFtraceDirectMultiPc as Pc;
        loop {
            match self.pc {
                Pc::Entry => {
                    let o = k.op(self.ops);
                    if o.func_set || o.trampoline_set || o.has(fl::ENABLED) {
                        return Flow::Ret(Err(Errno::EINVAL));
                    }
                    // v2: "if the ops does ipmodify, it cannot share the same fentry"
                    if k.proto.direct_keeps_flags
                        && o.has(fl::IPMODIFY)
                        && o.has(fl::SHARE_IPMODIFY)
                    {
                        return Flow::Ret(Err(Errno::EINVAL));
                    }
                    if k.filter(self.ops).is_empty() {
                        return Flow::Ret(Err(Errno::EINVAL));
                    }
                    wait!(self, Pc::Locked, Request::Lock(Lock::Direct));
                }
                Pc::Locked => {
                    // Make sure requested entries are not already registered.
                    if k.filter(self.ops)
                        .entries()
                        .any(|ip| k.direct_functions.lookup(ip).is_some())
                    {
                        k.unlock(t, Lock::Direct);
                        return Flow::Ret(Err(Errno::EBUSY));
                    }
                    self.pc = Pc::AddEntry;
                }
                Pc::AddEntry => {
                    if (self.idx as usize) < k.filter(self.ops).len() {
                        wait!(
                            self,
                            Pc::EntryAllocated,
                            Request::Alloc(AllocSite::DirectEntry)
                        );
                    }
                    let p = k.proto;
                    let ipm = if p.direct_is_ipmodify {
                        fl::IPMODIFY
                    } else {
                        0
                    };
                    let o = k.op_mut(self.ops);
                    o.func_set = true;
                    o.trampoline_set = true;
                    o.direct_call = Some(self.addr);
                    o.flags = if p.direct_keeps_flags {
                        o.flags | fl::DIRECT | ipm
                    } else {
                        fl::DIRECT | ipm
                    };
                    call!(
                        self,
                        Pc::OutUnlock,
                        RegisterFtraceFunctionNolock::new(self.ops)
                    );
                }
                Pc::EntryAllocated => {
                    if !input.ok() {
                        let filter = k.filter(self.ops).clone();
                        k.direct_remove_for_filter(t, &filter, self.addr);
                        k.unlock(t, Lock::Direct);
                        return Flow::Ret(Err(Errno::ENOMEM));
                    }
                    let ip = k
                        .filter(self.ops)
                        .nth_entry(self.idx as usize)
                        .expect("[core internal bug] entry index");
                    k.direct_add(t, ip, self.addr);
                    self.idx += 1;
                    self.pc = Pc::AddEntry;
                }
                Pc::OutUnlock => {
                    let r = input.ret();
                    if r.is_err() {
                        let filter = k.filter(self.ops).clone();
                        match k.proto.direct_register_failure {
                            DirectRegisterFailure::RemoveEntries => {
                                k.direct_remove_for_filter(t, &filter, self.addr)
                            }
                            DirectRegisterFailure::LeaveEntries => {}
                            DirectRegisterFailure::Reset => {
                                k.direct_remove_for_filter(t, &filter, self.addr);
                                let o = k.op_mut(self.ops);
                                o.func_set = false;
                                o.trampoline_set = false;
                                o.direct_call = None;
                            }
                        }
                    }
                    k.unlock(t, Lock::Direct);
                    return Flow::Ret(r);
                }
            }
        }
    }
}

/// `unregister_ftrace_direct_multi(ops, addr)`: under direct_mutex unregister, remove the entries,
/// then clear the callback/trampoline. The filter hash is left as it was.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct UnregisterFtraceDirectMulti {
    pub ops: OpsId,
    pub addr: Addr,
    pc: UnregisterFtraceDirectMultiPc,
}

/// Where [`UnregisterFtraceDirectMulti`] resumes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
enum UnregisterFtraceDirectMultiPc {
    /// the ops checks, `mutex_lock(&direct_mutex)`
    Entry = 0,
    /// `unregister_ftrace_function(ops)`
    Locked = 1,
    /// remove the entries, clear the callback and trampoline, unlock
    Unregistered = 2,
}

impl UnregisterFtraceDirectMulti {
    pub fn new(ops: OpsId, addr: Addr) -> Self {
        UnregisterFtraceDirectMulti {
            ops,
            addr,
            pc: UnregisterFtraceDirectMultiPc::Entry,
        }
    }
}

impl Step for UnregisterFtraceDirectMulti {
    const NAME: &'static str = "unregister_ftrace_direct_multi";
    fn step(&mut self, k: &mut Kernel, t: Tid, input: Input) -> Flow {
        use UnregisterFtraceDirectMultiPc as Pc;
        match self.pc {
            Pc::Entry => {
                let o = k.op(self.ops);
                if !o.has(fl::DIRECT) || !o.has(fl::ENABLED) {
                    return Flow::Ret(Err(Errno::EINVAL));
                }
                wait!(self, Pc::Locked, Request::Lock(Lock::Direct))
            }
            Pc::Locked => call!(
                self,
                Pc::Unregistered,
                UnregisterFtraceFunction::new(self.ops)
            ),
            Pc::Unregistered => {
                let r = input.ret();
                let filter = k.filter(self.ops).clone();
                k.direct_remove_for_filter(t, &filter, self.addr);
                k.unlock(t, Lock::Direct);
                let reset = k.proto.direct_register_failure == DirectRegisterFailure::Reset;
                let o = k.op_mut(self.ops);
                o.func_set = false;
                o.trampoline_set = false;
                if reset {
                    o.direct_call = None;
                }
                Flow::Ret(r)
            }
        }
    }
}

/// `modify_ftrace_direct_multi(_nolock)(ops, addr)`: register the static STUB `tmp_ops` with the
/// same hashes (forcing the list function), [fixes-2025: run the IPMODIFY accounting for the
/// direct ops with update-target semantics], change the addresses under ftrace_lock, unregister
/// the stub.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ModifyFtraceDirectMulti {
    pub ops: OpsId,
    pub addr: Addr,
    pub lock_direct: bool,
    pc: ModifyFtraceDirectMultiPc,
    err: Option<Errno>,
}

/// Where [`ModifyFtraceDirectMulti`] resumes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
enum ModifyFtraceDirectMultiPc {
    /// the ops checks, `mutex_lock(&direct_mutex)` unless `_nolock`
    Entry = 0,
    /// `tmp_ops.func_hash = ops->func_hash`, `register_ftrace_function_nolock(&tmp_ops)`
    Locked = 1,
    /// fixes-2025: `__ftrace_hash_update_ipmodify(ops, hash, hash, true)`; `mutex_lock(&ftrace_lock)`
    StubRegistered = 2,
    /// the accounting answered: `goto out` on failure, else `mutex_lock(&ftrace_lock)`
    Accounted = 4,
    /// ftrace_lock held: the new address into every entry, `mutex_unlock(&ftrace_lock)`; `out:` `unregister_ftrace_function(&tmp_ops)`
    Swap = 5,
    /// the stub is gone: unlock, return
    StubUnregistered = 7,
}

impl ModifyFtraceDirectMulti {
    pub fn new(ops: OpsId, addr: Addr, lock_direct: bool) -> Self {
        ModifyFtraceDirectMulti {
            ops,
            addr,
            lock_direct,
            pc: ModifyFtraceDirectMultiPc::Entry,
            err: None,
        }
    }
}

impl Step for ModifyFtraceDirectMulti {
    const NAME: &'static str = "modify_ftrace_direct_multi";
    fn step(&mut self, k: &mut Kernel, t: Tid, input: Input) -> Flow {
        use ModifyFtraceDirectMultiPc as Pc;
        let stub = k.id(OpsOwner::StubMulti);
        loop {
            match self.pc {
                Pc::Entry => {
                    let o = k.op(self.ops);
                    if !o.has(fl::DIRECT) || !o.has(fl::ENABLED) {
                        return Flow::Ret(Err(Errno::EINVAL));
                    }
                    if self.lock_direct {
                        wait!(self, Pc::Locked, Request::Lock(Lock::Direct));
                    }
                    self.pc = Pc::Locked;
                }
                Pc::Locked => {
                    // tmp_ops.func_hash = ops->func_hash
                    k.op_mut(stub).hash_of = Some(self.ops);
                    call!(
                        self,
                        Pc::StubRegistered,
                        RegisterFtraceFunctionNolock::new(stub)
                    );
                }
                Pc::StubRegistered => {
                    if let Err(e) = input.ret() {
                        k.op_mut(stub).hash_of = None;
                        if self.lock_direct {
                            k.unlock(t, Lock::Direct);
                        }
                        return Flow::Ret(Err(e));
                    }
                    // fixes-2025: `__ftrace_hash_update_ipmodify(ops, hash, hash, true)` runs
                    // after register_ftrace_function_nolock(&tmp_ops) has dropped ftrace_lock,
                    // with only direct_mutex held (it reads the records' IPMODIFY and may send
                    // SELF; it writes no record of a direct ops); ftrace_lock is taken again for
                    // the swap alone (Debian 6.1.192 `kernel/trace/ftrace.c:5804-5821`, 6.12.117
                    // `kernel/trace/ftrace.c:6127-6143`).
                    if k.proto.modify_checks_ipmodify {
                        call!(
                            self,
                            Pc::Accounted,
                            FtraceHashUpdateIpmodify::modify(k, self.ops)
                        );
                    }
                    wait!(self, Pc::Swap, Request::Lock(Lock::Ftrace));
                }
                Pc::Accounted => {
                    if let Err(e) = input.ret() {
                        self.err = Some(e);
                        call!(
                            self,
                            Pc::StubUnregistered,
                            UnregisterFtraceFunction::new(stub)
                        );
                    }
                    wait!(self, Pc::Swap, Request::Lock(Lock::Ftrace));
                }
                Pc::Swap => {
                    let ips: Vec<FnId> = k.filter(self.ops).entries().collect();
                    for ip in ips {
                        if k.direct_functions.lookup(ip).is_some() {
                            k.direct_set_first(t, ip, self.addr);
                        }
                    }
                    k.op_mut(self.ops).direct_call = Some(self.addr);
                    k.unlock(t, Lock::Ftrace);
                    call!(
                        self,
                        Pc::StubUnregistered,
                        UnregisterFtraceFunction::new(stub)
                    );
                }
                Pc::StubUnregistered => {
                    k.op_mut(stub).hash_of = None;
                    if self.lock_direct {
                        k.unlock(t, Lock::Direct);
                    }
                    return Flow::Ret(self.err.map_or(Ok(0), Err));
                }
            }
        }
    }
}

/// The single-ip `register_ftrace_direct(ip, addr)` on the shared `direct_ops`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RegisterFtraceDirect {
    pub ip: FnId,
    pub addr: Addr,
    pc: RegisterFtraceDirectPc,
    err: Option<Errno>,
}

/// Where [`RegisterFtraceDirect`] resumes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
enum RegisterFtraceDirectPc {
    /// `mutex_lock(&direct_mutex)`
    Entry = 0,
    /// the record checks, `ftrace_add_rec_direct`
    Locked = 1,
    /// the entry's allocation answered: `ftrace_set_filter_ip(&direct_ops, ip, 0, 0)`
    EntryAllocated = 2,
    /// the filter answered: register `direct_ops` if it is not yet
    Filtered = 3,
    /// the register answered (on failure remove the ip again)
    Registered = 4,
    /// the ip is out of the filter again after a failed register
    Unfiltered = 5,
}

impl RegisterFtraceDirect {
    pub fn new(ip: FnId, addr: Addr) -> Self {
        RegisterFtraceDirect {
            ip,
            addr,
            pc: RegisterFtraceDirectPc::Entry,
            err: None,
        }
    }
}

impl Step for RegisterFtraceDirect {
    const NAME: &'static str = "register_ftrace_direct";
    fn step(&mut self, k: &mut Kernel, t: Tid, input: Input) -> Flow {
        use RegisterFtraceDirectPc as Pc;
        let dops = k.id(OpsOwner::DirectSingle);
        match self.pc {
            Pc::Entry => wait!(self, Pc::Locked, Request::Lock(Lock::Direct)),
            Pc::Locked => {
                let fail = |k: &mut Kernel, e| {
                    k.unlock(t, Lock::Direct);
                    Flow::Ret(Err(e))
                };
                let r = *k.rec(self.ip);
                if !r.present {
                    return fail(k, Errno::ENODEV);
                }
                if k.direct_functions.lookup(self.ip).is_some() {
                    return fail(k, Errno::EBUSY);
                }
                if r.direct {
                    k.ev(
                        t,
                        EventKind::Warn("register_ftrace_direct: rec has DIRECT but no entry"),
                    );
                    return fail(k, Errno::ENODEV);
                }
                wait!(
                    self,
                    Pc::EntryAllocated,
                    Request::Alloc(AllocSite::DirectEntry)
                )
            }
            Pc::EntryAllocated => {
                if !input.ok() {
                    k.unlock(t, Lock::Direct);
                    return Flow::Ret(Err(Errno::ENOMEM));
                }
                k.direct_add(t, self.ip, self.addr);
                call!(
                    self,
                    Pc::Filtered,
                    FtraceSetHash::filter(dops, self.ip, false, false)
                )
            }
            Pc::Filtered => {
                let r = input.ret();
                if r.is_ok() && !k.op(dops).has(fl::ENABLED) {
                    // merged switched the callers holding direct_mutex to the _nolock register.
                    if k.proto.register_takes_direct_mutex == RegisterTakesDirectMutex::Always {
                        call!(
                            self,
                            Pc::Registered,
                            RegisterFtraceFunctionNolock::new(dops)
                        );
                    }
                    call!(self, Pc::Registered, RegisterFtraceFunction::new(dops));
                }
                self.finish(k, t, r.err())
            }
            Pc::Registered => {
                if let Err(e) = input.ret() {
                    self.err = Some(e);
                    call!(
                        self,
                        Pc::Unfiltered,
                        FtraceSetHash::filter(dops, self.ip, true, false)
                    );
                }
                self.finish(k, t, None)
            }
            Pc::Unfiltered => self.finish(k, t, self.err),
        }
    }
}

impl RegisterFtraceDirect {
    fn finish(&mut self, k: &mut Kernel, t: Tid, err: Option<Errno>) -> Flow {
        if err.is_some() {
            k.direct_remove_first(t, self.ip);
        }
        k.unlock(t, Lock::Direct);
        Flow::Ret(err.map_or(Ok(0), Err))
    }
}

/// The single-ip `unregister_ftrace_direct(ip, addr)`: unregister `direct_ops` if this is its last
/// ip, remove the ip from its filter, remove the entry found for the ip.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct UnregisterFtraceDirect {
    pub ip: FnId,
    pub addr: Addr,
    pc: UnregisterFtraceDirectPc,
}

/// Where [`UnregisterFtraceDirect`] resumes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
enum UnregisterFtraceDirectPc {
    /// `mutex_lock(&direct_mutex)`
    Entry = 0,
    /// the entry checks; the last ip unregisters `direct_ops`
    Locked = 1,
    /// `ftrace_set_filter_ip(&direct_ops, ip, 1, 0)`
    Unregistered = 2,
    /// remove the entry, unlock
    Unfiltered = 3,
}

impl UnregisterFtraceDirect {
    pub fn new(ip: FnId, addr: Addr) -> Self {
        UnregisterFtraceDirect {
            ip,
            addr,
            pc: UnregisterFtraceDirectPc::Entry,
        }
    }
}

impl Step for UnregisterFtraceDirect {
    const NAME: &'static str = "unregister_ftrace_direct";
    fn step(&mut self, k: &mut Kernel, t: Tid, input: Input) -> Flow {
        use UnregisterFtraceDirectPc as Pc;
        let dops = k.id(OpsOwner::DirectSingle);
        match self.pc {
            Pc::Entry => wait!(self, Pc::Locked, Request::Lock(Lock::Direct)),
            Pc::Locked => {
                if !k.rec(self.ip).present || k.direct_functions.lookup(self.ip).is_none() {
                    k.unlock(t, Lock::Direct);
                    return Flow::Ret(Err(Errno::ENODEV));
                }
                if k.filter(dops).len() == 1 {
                    call!(self, Pc::Unregistered, UnregisterFtraceFunction::new(dops));
                }
                call!(
                    self,
                    Pc::Unfiltered,
                    FtraceSetHash::filter(dops, self.ip, true, false)
                )
            }
            Pc::Unregistered => call!(
                self,
                Pc::Unfiltered,
                FtraceSetHash::filter(dops, self.ip, true, false)
            ),
            Pc::Unfiltered => {
                let r = input.ret();
                if r.is_err() {
                    k.ev(
                        t,
                        EventKind::Warn("unregister_ftrace_direct: removing the ip failed"),
                    );
                }
                k.direct_remove_first(t, self.ip);
                k.unlock(t, Lock::Direct);
                Flow::Ret(r)
            }
        }
    }
}

/// The single-ip `modify_ftrace_direct(ip, old, new)`. With other callbacks on the record it just
/// changes the entry; on a record with count 1 (`ftrace_modify_direct_caller`) it drops
/// ftrace_lock and swaps through the static `stub_ops`, registered with the locking
/// `register_ftrace_function` (`single_direct_api = locking-modify`) or the `_nolock` one
/// (`nolock-modify`), while direct_mutex stays held.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ModifyFtraceDirect {
    pub ip: FnId,
    pub old: Addr,
    pub new: Addr,
    pc: ModifyFtraceDirectPc,
    err: Option<Errno>,
}

/// Where [`ModifyFtraceDirect`] resumes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
enum ModifyFtraceDirectPc {
    /// `mutex_lock(&direct_mutex)`
    Entry = 0,
    /// `mutex_lock(&ftrace_lock)`
    DirectLocked = 1,
    /// the entry checks; with other callbacks just change the entry, else `ftrace_modify_direct_caller`
    Locked = 2,
    /// `ftrace_modify_direct_caller`: `stub_ops` has the ip; register it
    StubFiltered = 3,
    /// the list function runs the direct callers: change the entry, unregister `stub_ops`
    StubRegistered = 4,
    /// `ftrace_set_filter_ip(&stub_ops, ip, 1, 0)`
    StubUnregistered = 5,
    /// `mutex_lock(&ftrace_lock)` again
    StubUnfiltered = 6,
    /// ftrace_lock held again: unlock both, return
    Out = 7,
}

impl ModifyFtraceDirect {
    pub fn new(ip: FnId, old: Addr, new: Addr) -> Self {
        ModifyFtraceDirect {
            ip,
            old,
            new,
            pc: ModifyFtraceDirectPc::Entry,
            err: None,
        }
    }
}

impl Step for ModifyFtraceDirect {
    const NAME: &'static str = "modify_ftrace_direct";
    fn step(&mut self, k: &mut Kernel, t: Tid, input: Input) -> Flow {
        use ModifyFtraceDirectPc as Pc;
        let stub = k.id(OpsOwner::StubSingle);
        match self.pc {
            Pc::Entry => wait!(self, Pc::DirectLocked, Request::Lock(Lock::Direct)),
            Pc::DirectLocked => wait!(self, Pc::Locked, Request::Lock(Lock::Ftrace)),
            Pc::Locked => {
                let fail = |k: &mut Kernel, e| {
                    k.unlock(t, Lock::Ftrace);
                    k.unlock(t, Lock::Direct);
                    Flow::Ret(Err(e))
                };
                let r = *k.rec(self.ip);
                let Some(cur) = k.direct_functions.lookup(self.ip).filter(|_| r.present) else {
                    return fail(k, Errno::ENODEV);
                };
                if cur != self.old {
                    return fail(k, Errno::EINVAL);
                }
                if r.count == 1 {
                    k.unlock(t, Lock::Ftrace);
                    call!(
                        self,
                        Pc::StubFiltered,
                        FtraceSetHash::filter(stub, self.ip, false, false)
                    );
                }
                k.direct_set_first(t, self.ip, self.new);
                k.unlock(t, Lock::Ftrace);
                k.unlock(t, Lock::Direct);
                Flow::Ret(Ok(0))
            }
            Pc::StubFiltered => {
                if let Err(e) = input.ret() {
                    self.err = Some(e);
                    wait!(self, Pc::Out, Request::Lock(Lock::Ftrace));
                }
                match k.proto.single_direct_api {
                    SingleDirectApi::NolockModify => {
                        call!(
                            self,
                            Pc::StubRegistered,
                            RegisterFtraceFunctionNolock::new(stub)
                        )
                    }
                    _ => call!(self, Pc::StubRegistered, RegisterFtraceFunction::new(stub)),
                }
            }
            Pc::StubRegistered => {
                if let Err(e) = input.ret() {
                    self.err = Some(e);
                    call!(
                        self,
                        Pc::StubUnfiltered,
                        FtraceSetHash::filter(stub, self.ip, true, false)
                    );
                }
                // Now the list function runs the direct callers: change the entry.
                k.direct_set_first(t, self.ip, self.new);
                call!(
                    self,
                    Pc::StubUnregistered,
                    UnregisterFtraceFunction::new(stub)
                )
            }
            Pc::StubUnregistered => call!(
                self,
                Pc::StubUnfiltered,
                FtraceSetHash::filter(stub, self.ip, true, false)
            ),
            Pc::StubUnfiltered => wait!(self, Pc::Out, Request::Lock(Lock::Ftrace)),
            Pc::Out => {
                k.unlock(t, Lock::Ftrace);
                k.unlock(t, Lock::Direct);
                Flow::Ret(self.err.map_or(Ok(0), Err))
            }
        }
    }
}

/// `update_ftrace_direct_add(ops, {ip -> addr})` (mainline 2026, `kernel/trace/ftrace.c` at
/// kernel-patches/bpf 00c266387e36, called by BPF's `direct_ops_add` with the one-entry hash of
/// `hash_from_ip`; `bpf_direct_api = shared-ops`): under direct_mutex, an ip already in
/// `direct_functions` is `-EINVAL`; the new `direct_functions` is published first; the first add
/// (the ops' filter is empty: "If there's nothing in filter_hash we need to register the ops")
/// sets `ops->func`, or-s in `MULTI_FLAGS`, sets the trampoline and the filter and registers with
/// `register_ftrace_function_nolock`, undoing all of it on failure; a later add changes the
/// filter of the registered ops with `ftrace_update_ops` under ftrace_lock (the IPMODIFY
/// accounting for the entering ip, which sends SELF, then the record accounting and the code
/// update). Any failure restores `direct_functions`. The three allocations (BPF's
/// `hash_from_ip`, the two `hash_add` copies) fail alike, `-ENOMEM` with nothing changed: one
/// fault point stands for them.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct UpdateFtraceDirectAdd {
    pub ops: OpsId,
    pub ip: FnId,
    pub addr: Addr,
    pc: UpdateFtraceDirectAddPc,
    new: IpHash,
}

/// Where [`UpdateFtraceDirectAdd`] resumes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
enum UpdateFtraceDirectAddPc {
    /// `mutex_lock(&direct_mutex)`
    Entry = 0,
    /// the entry and ops checks, the hash copies
    Locked = 1,
    /// publish `direct_functions`; the first add registers the ops, a later one takes ftrace_lock
    HashCopied = 2,
    /// the first add's register answered (undone on failure)
    Registered = 3,
    /// ftrace_lock held: `ftrace_update_ops`, the IPMODIFY accounting of the filter change
    Update = 4,
    /// the accounting answered: the record accounting and the code update, or undo
    Accounted = 5,
}

impl UpdateFtraceDirectAdd {
    pub fn new(ops: OpsId, ip: FnId, addr: Addr) -> Self {
        UpdateFtraceDirectAdd {
            ops,
            ip,
            addr,
            pc: UpdateFtraceDirectAddPc::Entry,
            new: IpHash::new(),
        }
    }
}

impl Step for UpdateFtraceDirectAdd {
    const NAME: &'static str = "update_ftrace_direct_add";
    fn step(&mut self, k: &mut Kernel, t: Tid, input: Input) -> Flow {
        use UpdateFtraceDirectAddPc as Pc;
        let fail = |k: &mut Kernel, e| {
            k.unlock(t, Lock::Direct);
            Flow::Ret(Err(e))
        };
        match self.pc {
            Pc::Entry => wait!(self, Pc::Locked, Request::Lock(Lock::Direct)),
            Pc::Locked => {
                // "Make sure requested entries are not already registered." (err = -EINVAL)
                if k.direct_functions.lookup(self.ip).is_some() {
                    return fail(k, Errno::EINVAL);
                }
                let o = k.op(self.ops);
                let reg = k.filter(self.ops).is_empty();
                if reg && (o.func_set || o.trampoline_set || o.has(fl::ENABLED)) {
                    return fail(k, Errno::EINVAL);
                }
                wait!(self, Pc::HashCopied, Request::Alloc(AllocSite::HashCopy))
            }
            Pc::HashCopied => {
                if !input.ok() {
                    return fail(k, Errno::ENOMEM);
                }
                let mut new = k.filter(self.ops).clone();
                new.add(self.ip);
                // rcu_assign_pointer(direct_functions, new_direct_functions)
                k.direct_add(t, self.ip, self.addr);
                if k.filter(self.ops).is_empty() {
                    let o = k.op_mut(self.ops);
                    o.func_set = true;
                    o.trampoline_set = true;
                    o.flags |= fl::DIRECT;
                    // ops->local_hash.filter_hash = new_filter_hash (not registered yet)
                    k.assign_hash(t, self.ops, false, new);
                    call!(
                        self,
                        Pc::Registered,
                        RegisterFtraceFunctionNolock::new(self.ops)
                    );
                }
                self.new = new;
                wait!(self, Pc::Update, Request::Lock(Lock::Ftrace))
            }
            Pc::Registered => {
                let r = input.ret();
                if r.is_err() {
                    // "restore old filter on error", "cleanup for possible another register call"
                    k.assign_hash(t, self.ops, false, IpHash::new());
                    let o = k.op_mut(self.ops);
                    o.func_set = false;
                    o.trampoline_set = false;
                    k.direct_remove_first(t, self.ip);
                }
                k.unlock(t, Lock::Direct);
                Flow::Ret(r)
            }
            // ftrace_update_ops -> ftrace_hash_move: the IPMODIFY accounting of the filter change.
            Pc::Update => call!(
                self,
                Pc::Accounted,
                FtraceHashUpdateIpmodify::update(k, self.ops, &self.new)
            ),
            Pc::Accounted => {
                if let Err(e) = input.ret() {
                    k.unlock(t, Lock::Ftrace);
                    k.direct_remove_first(t, self.ip);
                    return fail(k, e);
                }
                apply_filter(k, t, self.ops, std::mem::take(&mut self.new));
                k.unlock(t, Lock::Ftrace);
                k.unlock(t, Lock::Direct);
                Flow::Ret(Ok(0))
            }
        }
    }
}

/// `ftrace_hash_move` + `ftrace_ops_update_code` for the filter of a registered ops
/// (ftrace_lock held): the record accounting around the swap, then the code update.
fn apply_filter(k: &mut Kernel, t: Tid, ops: OpsId, new: IpHash) {
    k.hash_rec_update(t, ops, true, false);
    k.assign_hash(t, ops, false, new);
    k.hash_rec_update(t, ops, true, true);
    k.update_code(t);
}

/// `update_ftrace_direct_del(ops, {ip -> addr})` (mainline 2026, `kernel/trace/ftrace.c` at
/// kernel-patches/bpf 00c266387e36, from BPF's `direct_ops_del`): the ops must be a registered
/// direct ops (`-EINVAL`); under direct_mutex the entry must be in `direct_functions` with this
/// address (`-EINVAL`); the last ip unregisters the ops (`unregister_ftrace_function`, then
/// `ops->func`/`ops->trampoline` cleared and `ftrace_free_filter`; the or-ed `MULTI_FLAGS` stay),
/// others shrink its filter with `ftrace_update_ops` under ftrace_lock. `direct_functions` is
/// replaced only on success. BPF's `hash_from_ip` and the two `hash_sub` copies: one fault point.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct UpdateFtraceDirectDel {
    pub ops: OpsId,
    pub ip: FnId,
    pub addr: Addr,
    pc: UpdateFtraceDirectDelPc,
    new: IpHash,
}

/// Where [`UpdateFtraceDirectDel`] resumes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
enum UpdateFtraceDirectDelPc {
    /// the ops checks, `mutex_lock(&direct_mutex)`
    Entry = 0,
    /// "Make sure requested entries are already registered.", the hash copies
    Locked = 1,
    /// the last ip unregisters the ops, others take ftrace_lock
    HashCopied = 2,
    /// the unregister answered: clear the ops, `ftrace_free_filter`
    Unregistered = 3,
    /// ftrace_lock held: `ftrace_update_ops`, the IPMODIFY accounting of the filter change
    Update = 4,
    /// the accounting answered: the record accounting and the code update
    Accounted = 5,
}

impl UpdateFtraceDirectDel {
    pub fn new(ops: OpsId, ip: FnId, addr: Addr) -> Self {
        UpdateFtraceDirectDel {
            ops,
            ip,
            addr,
            pc: UpdateFtraceDirectDelPc::Entry,
            new: IpHash::new(),
        }
    }
}

impl Step for UpdateFtraceDirectDel {
    const NAME: &'static str = "update_ftrace_direct_del";
    fn step(&mut self, k: &mut Kernel, t: Tid, input: Input) -> Flow {
        use UpdateFtraceDirectDelPc as Pc;
        let fail = |k: &mut Kernel, e| {
            k.unlock(t, Lock::Direct);
            Flow::Ret(Err(e))
        };
        match self.pc {
            Pc::Entry => {
                let o = k.op(self.ops);
                if !o.has(fl::DIRECT) || !o.has(fl::ENABLED) {
                    return Flow::Ret(Err(Errno::EINVAL));
                }
                wait!(self, Pc::Locked, Request::Lock(Lock::Direct))
            }
            Pc::Locked => {
                if k.direct_functions.entries().is_empty() || k.filter(self.ops).is_empty() {
                    return fail(k, Errno::EINVAL);
                }
                // "Make sure requested entries are already registered."
                if k.direct_functions.lookup(self.ip) != Some(self.addr) {
                    return fail(k, Errno::EINVAL);
                }
                wait!(self, Pc::HashCopied, Request::Alloc(AllocSite::HashCopy))
            }
            Pc::HashCopied => {
                if !input.ok() {
                    return fail(k, Errno::ENOMEM);
                }
                let mut new = k.filter(self.ops).clone();
                if new.remove(self.ip).is_err() {
                    // hash_sub: WARN_ON_ONCE(!del) -> NULL -> -ENOMEM
                    k.ev(t, EventKind::Warn("hash_sub: WARN_ON_ONCE(!del)"));
                    return fail(k, Errno::ENOMEM);
                }
                if new.is_empty() {
                    call!(
                        self,
                        Pc::Unregistered,
                        UnregisterFtraceFunction::new(self.ops)
                    );
                }
                self.new = new;
                wait!(self, Pc::Update, Request::Lock(Lock::Ftrace))
            }
            Pc::Unregistered => {
                let r = input.ret();
                if r.is_ok() {
                    let o = k.op_mut(self.ops);
                    o.func_set = false;
                    o.trampoline_set = false;
                    // ftrace_free_filter(ops); ops->func_hash->filter_hash = NULL
                    k.assign_hash(t, self.ops, false, IpHash::new());
                    k.direct_remove_first(t, self.ip);
                }
                k.unlock(t, Lock::Direct);
                Flow::Ret(r)
            }
            Pc::Update => call!(
                self,
                Pc::Accounted,
                FtraceHashUpdateIpmodify::update(k, self.ops, &self.new)
            ),
            Pc::Accounted => {
                if let Err(e) = input.ret() {
                    k.unlock(t, Lock::Ftrace);
                    return fail(k, e);
                }
                apply_filter(k, t, self.ops, std::mem::take(&mut self.new));
                k.unlock(t, Lock::Ftrace);
                k.direct_remove_first(t, self.ip);
                k.unlock(t, Lock::Direct);
                Flow::Ret(Ok(0))
            }
        }
    }
}

/// `update_ftrace_direct_mod(ops, {ip -> addr}, do_direct_lock)` (mainline 2026,
/// `kernel/trace/ftrace.c` at kernel-patches/bpf 00c266387e36, from BPF's `direct_ops_mod`):
/// a registered direct ops (`-EINVAL`); direct_mutex taken (or already held by an owner
/// callback); the static STUB `tmp_ops` gets the *argument* hash as its filter (only the
/// modified ip: "Use hash argument for tmp_ops in update_ftrace_direct_mod", kernel-patches/bpf
/// PR #11375) and is registered with `register_ftrace_function_nolock`, which drops ftrace_lock
/// again; then `__ftrace_hash_update_ipmodify(ops, orig_hash, orig_hash, true)` runs over the
/// *whole* filter of the ops, without ftrace_lock: with the shared `direct_ops` that is the ip
/// of every trampoline, so SELF goes to every trampoline whose function has IPMODIFY; then the
/// entry is changed under ftrace_lock and the stub unregistered. BPF's `hash_from_ip`
/// allocation is its fault point.
///
/// Finding (README "Findings worth reading", `corpus/reproducers/readme-mainline-2026--race.txt`
/// and `--availability.txt`): because the pass covers `orig_hash`, SELF reaches a trampoline on
/// another function whose lock nobody here holds; if it calls the original without ORIG_STACK
/// under IPMODIFY (mid-update, or after the silent kprobe of fixes-2025) SELF writes its SHARE
/// and answers `-EAGAIN`, the caller's `goto again` gets `WARN_ON_ONCE` and `-EBUSY`: the link,
/// unlink or livepatch (PEER rebuild) of *this* function fails because of that one. The what-if
/// `direct_mod_checks_its_ips` runs the pass over `hash` instead.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct UpdateFtraceDirectMod {
    pub ops: OpsId,
    pub ip: FnId,
    pub addr: Addr,
    pub lock_direct: bool,
    pc: UpdateFtraceDirectModPc,
    err: Option<Errno>,
}

/// Where [`UpdateFtraceDirectMod`] resumes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
enum UpdateFtraceDirectModPc {
    /// BPF's `direct_ops_mod`: `hash_from_ip`
    Entry = 0,
    /// the ops checks, `mutex_lock(&direct_mutex)` if `do_direct_lock`
    HashCopied = 1,
    /// `tmp_ops` gets the argument hash, `register_ftrace_function_nolock(&tmp_ops)`
    Locked = 2,
    /// `__ftrace_hash_update_ipmodify(ops, orig_hash, orig_hash, true)`
    StubRegistered = 3,
    /// the accounting answered: `goto out` on failure, else `mutex_lock(&ftrace_lock)`
    Accounted = 4,
    /// ftrace_lock held: change the entry; `out:` `unregister_ftrace_function(&tmp_ops)`
    Swap = 5,
    /// the stub is gone: unlock, return
    StubUnregistered = 6,
}

impl UpdateFtraceDirectMod {
    pub fn new(ops: OpsId, ip: FnId, addr: Addr, lock_direct: bool) -> Self {
        UpdateFtraceDirectMod {
            ops,
            ip,
            addr,
            lock_direct,
            pc: UpdateFtraceDirectModPc::Entry,
            err: None,
        }
    }

    fn done(&self, k: &mut Kernel, t: Tid, r: Ret) -> Flow {
        if self.lock_direct {
            k.unlock(t, Lock::Direct);
        }
        Flow::Ret(r)
    }
}

impl Step for UpdateFtraceDirectMod {
    const NAME: &'static str = "update_ftrace_direct_mod";
    fn step(&mut self, k: &mut Kernel, t: Tid, input: Input) -> Flow {
        use UpdateFtraceDirectModPc as Pc;
        let stub = k.id(OpsOwner::StubMulti);
        loop {
            match self.pc {
                // direct_ops_mod: hash_from_ip
                Pc::Entry => wait!(self, Pc::HashCopied, Request::Alloc(AllocSite::HashCopy)),
                Pc::HashCopied => {
                    if !input.ok() {
                        return Flow::Ret(Err(Errno::ENOMEM));
                    }
                    let o = k.op(self.ops);
                    if !o.has(fl::DIRECT) || !o.has(fl::ENABLED) {
                        return Flow::Ret(Err(Errno::EINVAL));
                    }
                    if self.lock_direct {
                        wait!(self, Pc::Locked, Request::Lock(Lock::Direct));
                    }
                    self.pc = Pc::Locked;
                }
                Pc::Locked => {
                    if k.direct_functions.entries().is_empty() || k.filter(self.ops).is_empty() {
                        return self.done(k, t, Err(Errno::EINVAL));
                    }
                    // rcu_assign_pointer(tmp_ops.func_hash->filter_hash, hash)
                    k.assign_hash(t, stub, false, IpHash::from_fns(&[self.ip]));
                    call!(
                        self,
                        Pc::StubRegistered,
                        RegisterFtraceFunctionNolock::new(stub)
                    );
                }
                Pc::StubRegistered => {
                    if let Err(e) = input.ret() {
                        k.assign_hash(t, stub, false, IpHash::new());
                        return self.done(k, t, Err(e));
                    }
                    if k.proto.direct_mod_checks_its_ips {
                        call!(
                            self,
                            Pc::Accounted,
                            FtraceHashUpdateIpmodify::modify_ips(self.ops, &[self.ip])
                        );
                    }
                    call!(
                        self,
                        Pc::Accounted,
                        FtraceHashUpdateIpmodify::modify(k, self.ops)
                    );
                }
                Pc::Accounted => {
                    if let Err(e) = input.ret() {
                        self.err = Some(e);
                        call!(
                            self,
                            Pc::StubUnregistered,
                            UnregisterFtraceFunction::new(stub)
                        );
                    }
                    wait!(self, Pc::Swap, Request::Lock(Lock::Ftrace));
                }
                Pc::Swap => {
                    if k.direct_functions.lookup(self.ip).is_some() {
                        k.direct_set_first(t, self.ip, self.addr);
                    }
                    k.unlock(t, Lock::Ftrace);
                    call!(
                        self,
                        Pc::StubUnregistered,
                        UnregisterFtraceFunction::new(stub)
                    );
                }
                Pc::StubUnregistered => {
                    k.assign_hash(t, stub, false, IpHash::new());
                    return self.done(k, t, self.err.map_or(Ok(0), Err));
                }
            }
        }
    }
}
