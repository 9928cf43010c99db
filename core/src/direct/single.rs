//! The single-ip direct API on its shared `direct_ops` (SPEC §5.3, §5.4):
//! `register_ftrace_direct`, `unregister_ftrace_direct`, `modify_ftrace_direct`.

use super::*;

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
pub(super) enum RegisterFtraceDirectPc {
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
pub(super) enum UnregisterFtraceDirectPc {
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
pub(super) enum ModifyFtraceDirectPc {
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
