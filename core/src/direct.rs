//! The direct-call API (SPEC §5.1–5.4): `register/unregister/modify_ftrace_direct_multi` (plain
//! names from rcu-hash-2023 on) and the single-ip `register/modify/unregister_ftrace_direct` with
//! its shared `direct_ops`.

use crate::errno::Errno;
use crate::ftrace::{
    call, wait, RegisterFtraceFunction, RegisterNolock, SetHash, UnregisterFtraceFunction,
    UpdateIpmodify,
};
use crate::ids::{Addr, FnId, OpsId, OpsOwner, Tid};
use crate::kernel::{fl, Kernel};
use crate::locks::Lock;
use crate::machine::{AllocSite, EventKind, Flow, Input, Request, Step};
use crate::protocol::{DirectRegisterFailure, RegisterTakesDirectMutex, SingleDirectApi};

/// `register_ftrace_direct_multi(ops, addr)` (SPEC §5.2–5.4).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RegisterDirectMulti {
    pub ops: OpsId,
    pub addr: Addr,
    pc: u8,
    idx: u16,
}

impl RegisterDirectMulti {
    pub fn new(ops: OpsId, addr: Addr) -> Self {
        RegisterDirectMulti {
            ops,
            addr,
            pc: 0,
            idx: 0,
        }
    }
}

impl Step for RegisterDirectMulti {
    const NAME: &'static str = "register_ftrace_direct_multi";
    fn step(&mut self, k: &mut Kernel, t: Tid, input: Input) -> Flow {
        loop {
            match self.pc {
                0 => {
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
                    wait!(self, 1, Request::Lock(Lock::Direct));
                }
                1 => {
                    // Make sure requested entries are not already registered.
                    if k.filter(self.ops)
                        .entries()
                        .any(|ip| k.direct_functions.lookup(ip).is_some())
                    {
                        k.unlock(t, Lock::Direct);
                        return Flow::Ret(Err(Errno::EBUSY));
                    }
                    self.pc = 2;
                }
                2 => {
                    if (self.idx as usize) < k.filter(self.ops).len() {
                        wait!(self, 3, Request::Alloc(AllocSite::DirectEntry));
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
                    call!(self, 4, RegisterNolock::new(self.ops));
                }
                3 => {
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
                    self.pc = 2;
                }
                _ => {
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
pub struct UnregisterDirectMulti {
    pub ops: OpsId,
    pub addr: Addr,
    pc: u8,
}

impl UnregisterDirectMulti {
    pub fn new(ops: OpsId, addr: Addr) -> Self {
        UnregisterDirectMulti { ops, addr, pc: 0 }
    }
}

impl Step for UnregisterDirectMulti {
    const NAME: &'static str = "unregister_ftrace_direct_multi";
    fn step(&mut self, k: &mut Kernel, t: Tid, input: Input) -> Flow {
        match self.pc {
            0 => {
                let o = k.op(self.ops);
                if !o.has(fl::DIRECT) || !o.has(fl::ENABLED) {
                    return Flow::Ret(Err(Errno::EINVAL));
                }
                wait!(self, 1, Request::Lock(Lock::Direct))
            }
            1 => call!(self, 2, UnregisterFtraceFunction::new(self.ops)),
            _ => {
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
pub struct ModifyDirectMulti {
    pub ops: OpsId,
    pub addr: Addr,
    pub lock_direct: bool,
    pc: u8,
    err: Option<Errno>,
}

impl ModifyDirectMulti {
    pub fn new(ops: OpsId, addr: Addr, lock_direct: bool) -> Self {
        ModifyDirectMulti {
            ops,
            addr,
            lock_direct,
            pc: 0,
            err: None,
        }
    }
}

impl Step for ModifyDirectMulti {
    const NAME: &'static str = "modify_ftrace_direct_multi";
    fn step(&mut self, k: &mut Kernel, t: Tid, input: Input) -> Flow {
        let stub = k.id(OpsOwner::StubMulti);
        loop {
            match self.pc {
                0 => {
                    let o = k.op(self.ops);
                    if !o.has(fl::DIRECT) || !o.has(fl::ENABLED) {
                        return Flow::Ret(Err(Errno::EINVAL));
                    }
                    if self.lock_direct {
                        wait!(self, 1, Request::Lock(Lock::Direct));
                    }
                    self.pc = 1;
                }
                1 => {
                    // tmp_ops.func_hash = ops->func_hash
                    k.op_mut(stub).hash_of = Some(self.ops);
                    call!(self, 2, RegisterNolock::new(stub));
                }
                2 => {
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
                        call!(self, 4, UpdateIpmodify::modify(k, self.ops));
                    }
                    wait!(self, 5, Request::Lock(Lock::Ftrace));
                }
                4 => {
                    if let Err(e) = input.ret() {
                        self.err = Some(e);
                        call!(self, 7, UnregisterFtraceFunction::new(stub));
                    }
                    wait!(self, 5, Request::Lock(Lock::Ftrace));
                }
                5 => {
                    let ips: Vec<FnId> = k.filter(self.ops).entries().collect();
                    for ip in ips {
                        if k.direct_functions.lookup(ip).is_some() {
                            k.direct_set_first(t, ip, self.addr);
                        }
                    }
                    k.op_mut(self.ops).direct_call = Some(self.addr);
                    k.unlock(t, Lock::Ftrace);
                    call!(self, 7, UnregisterFtraceFunction::new(stub));
                }
                _ => {
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
pub struct RegisterDirectSingle {
    pub ip: FnId,
    pub addr: Addr,
    pc: u8,
    err: Option<Errno>,
}

impl RegisterDirectSingle {
    pub fn new(ip: FnId, addr: Addr) -> Self {
        RegisterDirectSingle {
            ip,
            addr,
            pc: 0,
            err: None,
        }
    }
}

impl Step for RegisterDirectSingle {
    const NAME: &'static str = "register_ftrace_direct";
    fn step(&mut self, k: &mut Kernel, t: Tid, input: Input) -> Flow {
        let dops = k.id(OpsOwner::DirectSingle);
        match self.pc {
            0 => wait!(self, 1, Request::Lock(Lock::Direct)),
            1 => {
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
                wait!(self, 2, Request::Alloc(AllocSite::DirectEntry))
            }
            2 => {
                if !input.ok() {
                    k.unlock(t, Lock::Direct);
                    return Flow::Ret(Err(Errno::ENOMEM));
                }
                k.direct_add(t, self.ip, self.addr);
                call!(self, 3, SetHash::filter(dops, self.ip, false, false))
            }
            3 => {
                let r = input.ret();
                if r.is_ok() && !k.op(dops).has(fl::ENABLED) {
                    // merged switched the callers holding direct_mutex to the _nolock register.
                    if k.proto.register_takes_direct_mutex == RegisterTakesDirectMutex::Always {
                        call!(self, 4, RegisterNolock::new(dops));
                    }
                    call!(self, 4, RegisterFtraceFunction::new(dops));
                }
                self.finish(k, t, r.err())
            }
            4 => {
                if let Err(e) = input.ret() {
                    self.err = Some(e);
                    call!(self, 5, SetHash::filter(dops, self.ip, true, false));
                }
                self.finish(k, t, None)
            }
            _ => self.finish(k, t, self.err),
        }
    }
}

impl RegisterDirectSingle {
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
pub struct UnregisterDirectSingle {
    pub ip: FnId,
    pub addr: Addr,
    pc: u8,
}

impl UnregisterDirectSingle {
    pub fn new(ip: FnId, addr: Addr) -> Self {
        UnregisterDirectSingle { ip, addr, pc: 0 }
    }
}

impl Step for UnregisterDirectSingle {
    const NAME: &'static str = "unregister_ftrace_direct";
    fn step(&mut self, k: &mut Kernel, t: Tid, input: Input) -> Flow {
        let dops = k.id(OpsOwner::DirectSingle);
        match self.pc {
            0 => wait!(self, 1, Request::Lock(Lock::Direct)),
            1 => {
                if !k.rec(self.ip).present || k.direct_functions.lookup(self.ip).is_none() {
                    k.unlock(t, Lock::Direct);
                    return Flow::Ret(Err(Errno::ENODEV));
                }
                if k.filter(dops).len() == 1 {
                    call!(self, 2, UnregisterFtraceFunction::new(dops));
                }
                call!(self, 3, SetHash::filter(dops, self.ip, true, false))
            }
            2 => call!(self, 3, SetHash::filter(dops, self.ip, true, false)),
            _ => {
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
pub struct ModifyDirectSingle {
    pub ip: FnId,
    pub old: Addr,
    pub new: Addr,
    pc: u8,
    err: Option<Errno>,
}

impl ModifyDirectSingle {
    pub fn new(ip: FnId, old: Addr, new: Addr) -> Self {
        ModifyDirectSingle {
            ip,
            old,
            new,
            pc: 0,
            err: None,
        }
    }
}

impl Step for ModifyDirectSingle {
    const NAME: &'static str = "modify_ftrace_direct";
    fn step(&mut self, k: &mut Kernel, t: Tid, input: Input) -> Flow {
        let stub = k.id(OpsOwner::StubSingle);
        match self.pc {
            0 => wait!(self, 1, Request::Lock(Lock::Direct)),
            1 => wait!(self, 2, Request::Lock(Lock::Ftrace)),
            2 => {
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
                    call!(self, 3, SetHash::filter(stub, self.ip, false, false));
                }
                k.direct_set_first(t, self.ip, self.new);
                k.unlock(t, Lock::Ftrace);
                k.unlock(t, Lock::Direct);
                Flow::Ret(Ok(0))
            }
            3 => {
                if let Err(e) = input.ret() {
                    self.err = Some(e);
                    wait!(self, 7, Request::Lock(Lock::Ftrace));
                }
                match k.proto.single_direct_api {
                    SingleDirectApi::NolockModify => call!(self, 4, RegisterNolock::new(stub)),
                    _ => call!(self, 4, RegisterFtraceFunction::new(stub)),
                }
            }
            4 => {
                if let Err(e) = input.ret() {
                    self.err = Some(e);
                    call!(self, 6, SetHash::filter(stub, self.ip, true, false));
                }
                // Now the list function runs the direct callers: change the entry.
                k.direct_set_first(t, self.ip, self.new);
                call!(self, 5, UnregisterFtraceFunction::new(stub))
            }
            5 => call!(self, 6, SetHash::filter(stub, self.ip, true, false)),
            6 => wait!(self, 7, Request::Lock(Lock::Ftrace)),
            _ => {
                k.unlock(t, Lock::Ftrace);
                k.unlock(t, Lock::Direct);
                Flow::Ret(self.err.map_or(Ok(0), Err))
            }
        }
    }
}
