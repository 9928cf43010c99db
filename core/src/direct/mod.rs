//! The direct-call API (SPEC §5.1–5.4): `register/unregister/modify_ftrace_direct_multi` (plain
//! names from rcu-hash-2023 on) here; the single-ip `register/modify/unregister_ftrace_direct`
//! with its shared `direct_ops` in `single.rs`; mainline 2026's `update_ftrace_direct_add/_del/_mod`
//! on BPF's shared `direct_ops` in `shared_ops.rs`.

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

mod shared_ops;
mod single;

pub use shared_ops::*;
pub use single::*;

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
