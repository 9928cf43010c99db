//! Plain tracers (SPEC §2): ops with neither IPMODIFY nor DIRECT, any filter (empty = every
//! function) and a notrace hash. They only observe. Serialized by `trace_types_lock`. A tracer
//! names functions through kallsyms (`set_ftrace_filter`), which cannot name a function of a
//! module that is not live: `-EINVAL`, as ftrace answers for an unknown function.

use crate::errno::Errno;
use crate::frames::{Flow, Step};
use crate::ftrace::{
    call, wait, FtraceSetFilterNotrace, FtraceSetHash, RegisterFtraceFunction,
    UnregisterFtraceFunction,
};
use crate::ids::{FnId, OpsOwner, Tid, TracerId};
use crate::kernel::Kernel;
use crate::locks::Lock;
use crate::op::HashSel;
use crate::step::{Input, Request};

/// Register tracer `t` with fresh filter and notrace hashes.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TracerRegister {
    pub t: TracerId,
    pub filter: Vec<FnId>,
    pub notrace: Vec<FnId>,
    pc: TracerRegisterPc,
}

/// Where [`TracerRegister`] resumes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
enum TracerRegisterPc {
    /// `mutex_lock(&trace_types_lock)`
    Entry = 0,
    /// the checks, both hashes
    Locked = 1,
    /// the hashes answered: `register_ftrace_function`
    HashesSet = 2,
    /// the register returned
    Registered = 3,
}

impl TracerRegister {
    pub fn new(t: TracerId, filter: Vec<FnId>, notrace: Vec<FnId>) -> Self {
        TracerRegister {
            t,
            filter,
            notrace,
            pc: TracerRegisterPc::Entry,
        }
    }
}

impl Step for TracerRegister {
    const NAME: &'static str = "tracer_register";
    fn step(&mut self, k: &mut Kernel, tid: Tid, input: Input) -> Flow {
        use TracerRegisterPc as Pc;
        let ops = k.id(OpsOwner::Tracer(self.t));
        match self.pc {
            Pc::Entry => wait!(self, Pc::Locked, Request::Lock(Lock::TraceTypes)),
            Pc::Locked => {
                if k.tracers[self.t.0 as usize].registered {
                    k.unlock(tid, Lock::TraceTypes);
                    return Flow::Ret(Err(Errno::EBUSY));
                }
                if self
                    .filter
                    .iter()
                    .chain(&self.notrace)
                    .any(|f| !k.fn_live(*f))
                {
                    k.unlock(tid, Lock::TraceTypes);
                    return Flow::Ret(Err(Errno::EINVAL));
                }
                call!(
                    self,
                    Pc::HashesSet,
                    FtraceSetFilterNotrace::new(ops, self.filter.clone(), self.notrace.clone())
                )
            }
            Pc::HashesSet => {
                if let Err(e) = input.ret() {
                    k.unlock(tid, Lock::TraceTypes);
                    return Flow::Ret(Err(e));
                }
                call!(self, Pc::Registered, RegisterFtraceFunction::new(ops))
            }
            Pc::Registered => {
                let r = input.ret();
                if r.is_ok() {
                    k.tracers[self.t.0 as usize].registered = true;
                }
                k.unlock(tid, Lock::TraceTypes);
                Flow::Ret(r)
            }
        }
    }
}

/// Add or remove one function in a tracer's filter or notrace hash (`echo [!]f >>
/// set_ftrace_filter` / `set_ftrace_notrace`), registered or not: an add of a present function
/// and a removal of an absent one change nothing and succeed ([`FtraceSetHash::regex`]).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TracerSetIp {
    pub t: TracerId,
    pub which: HashSel,
    pub add: bool,
    pub f: FnId,
    pc: TracerSetIpPc,
}

/// Where [`TracerSetIp`] resumes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
enum TracerSetIpPc {
    /// `mutex_lock(&trace_types_lock)`
    Entry = 0,
    /// the checks, the edit of the hash
    Locked = 1,
    /// the edit returned
    Set = 2,
}

impl TracerSetIp {
    pub fn new(t: TracerId, which: HashSel, add: bool, f: FnId) -> Self {
        TracerSetIp {
            t,
            which,
            add,
            f,
            pc: TracerSetIpPc::Entry,
        }
    }
}

impl Step for TracerSetIp {
    const NAME: &'static str = "tracer_set_ip";
    fn step(&mut self, k: &mut Kernel, tid: Tid, input: Input) -> Flow {
        use TracerSetIpPc as Pc;
        let ops = k.id(OpsOwner::Tracer(self.t));
        match self.pc {
            Pc::Entry => wait!(self, Pc::Locked, Request::Lock(Lock::TraceTypes)),
            Pc::Locked => {
                if !k.fn_live(self.f) {
                    k.unlock(tid, Lock::TraceTypes);
                    return Flow::Ret(Err(Errno::EINVAL));
                }
                // through the tracefs files, as the function tracer's users edit them
                let frame = match self.which {
                    HashSel::Filter => FtraceSetHash::filter(ops, self.f, !self.add, false),
                    HashSel::Notrace => FtraceSetHash::notrace(ops, self.f, !self.add),
                }
                .regex();
                call!(self, Pc::Set, frame)
            }
            Pc::Set => {
                k.unlock(tid, Lock::TraceTypes);
                Flow::Ret(input.ret())
            }
        }
    }
}

/// Unregister tracer `t` (its hashes stay, like the function tracer's filter files).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TracerUnregister {
    pub t: TracerId,
    pc: TracerUnregisterPc,
}

/// Where [`TracerUnregister`] resumes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
enum TracerUnregisterPc {
    /// `mutex_lock(&trace_types_lock)`
    Entry = 0,
    /// the checks, `unregister_ftrace_function`
    Locked = 1,
    /// the unregister returned
    Unregistered = 2,
}

impl TracerUnregister {
    pub fn new(t: TracerId) -> Self {
        TracerUnregister {
            t,
            pc: TracerUnregisterPc::Entry,
        }
    }
}

impl Step for TracerUnregister {
    const NAME: &'static str = "tracer_unregister";
    fn step(&mut self, k: &mut Kernel, tid: Tid, input: Input) -> Flow {
        use TracerUnregisterPc as Pc;
        let ops = k.id(OpsOwner::Tracer(self.t));
        match self.pc {
            Pc::Entry => wait!(self, Pc::Locked, Request::Lock(Lock::TraceTypes)),
            Pc::Locked => {
                if !k.tracers[self.t.0 as usize].registered {
                    k.unlock(tid, Lock::TraceTypes);
                    return Flow::Ret(Err(Errno::ENOENT));
                }
                call!(self, Pc::Unregistered, UnregisterFtraceFunction::new(ops))
            }
            Pc::Unregistered => {
                k.tracers[self.t.0 as usize].registered = false;
                k.unlock(tid, Lock::TraceTypes);
                Flow::Ret(input.ret())
            }
        }
    }
}
