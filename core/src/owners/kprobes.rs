//! kprobes with IPMODIFY (kernel/kprobes.c, SPEC §2): one shared IPMODIFY ops. The first armed
//! address registers it; later ones add their ip to the filter of the registered ops; the last
//! disarm unregisters it first, then removes the ip. Probes at one address aggregate.

use crate::errno::Errno;
use crate::frames::{Flow, Step};
use crate::ftrace::{call, wait, FtraceSetHash, RegisterFtraceFunction, UnregisterFtraceFunction};
use crate::ids::{FnId, OpsOwner, Tid};
use crate::kernel::Kernel;
use crate::locks::Lock;
use crate::step::{EventKind, Input, Request};

/// Arm a kprobe at `f` (kprobe_mutex).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RegisterKprobe {
    pub f: FnId,
    pc: RegisterKprobePc,
}

/// Where [`RegisterKprobe`] resumes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
enum RegisterKprobePc {
    /// `mutex_lock(&kprobe_mutex)`
    Entry = 0,
    /// the checks, `arm_kprobe` -> `__arm_kprobe_ftrace`
    Locked = 1,
    /// `__arm_kprobe_ftrace` returned
    Armed = 2,
}

impl RegisterKprobe {
    pub fn new(f: FnId) -> Self {
        RegisterKprobe {
            f,
            pc: RegisterKprobePc::Entry,
        }
    }
}

impl Step for RegisterKprobe {
    const NAME: &'static str = "register_kprobe";
    fn step(&mut self, k: &mut Kernel, t: Tid, input: Input) -> Flow {
        use RegisterKprobePc as Pc;
        let f = self.f;
        match self.pc {
            Pc::Entry => wait!(self, Pc::Locked, Request::Lock(Lock::Kprobe)),
            Pc::Locked => {
                if !k.fn_live(f) {
                    k.unlock(t, Lock::Kprobe);
                    return Flow::Ret(Err(Errno::ENOENT));
                }
                if k.fstate(f).kprobes > 0 {
                    k.fstate_mut(f).kprobes += 1;
                    k.unlock(t, Lock::Kprobe);
                    return Flow::Ret(Ok(0));
                }
                call!(self, Pc::Armed, ArmKprobeFtrace::new(f))
            }
            Pc::Armed => {
                let r = input.ret();
                if r.is_ok() {
                    k.fstate_mut(f).kprobes = 1;
                }
                k.unlock(t, Lock::Kprobe);
                Flow::Ret(r)
            }
        }
    }
}

/// Disarm one kprobe at `f` (kprobe_mutex).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct UnregisterKprobe {
    pub f: FnId,
    pc: UnregisterKprobePc,
}

/// Where [`UnregisterKprobe`] resumes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
enum UnregisterKprobePc {
    /// `mutex_lock(&kprobe_mutex)`
    Entry = 0,
    /// the checks, `disarm_kprobe` -> `__disarm_kprobe_ftrace`
    Locked = 1,
    /// `__disarm_kprobe_ftrace` returned
    Disarmed = 2,
}

impl UnregisterKprobe {
    pub fn new(f: FnId) -> Self {
        UnregisterKprobe {
            f,
            pc: UnregisterKprobePc::Entry,
        }
    }
}

impl Step for UnregisterKprobe {
    const NAME: &'static str = "unregister_kprobe";
    fn step(&mut self, k: &mut Kernel, t: Tid, input: Input) -> Flow {
        use UnregisterKprobePc as Pc;
        let f = self.f;
        match self.pc {
            Pc::Entry => wait!(self, Pc::Locked, Request::Lock(Lock::Kprobe)),
            Pc::Locked => {
                let n = k.fstate(f).kprobes;
                if n == 0 {
                    k.unlock(t, Lock::Kprobe);
                    return Flow::Ret(Err(Errno::ENOENT));
                }
                if n > 1 {
                    k.fstate_mut(f).kprobes -= 1;
                    k.unlock(t, Lock::Kprobe);
                    return Flow::Ret(Ok(0));
                }
                call!(self, Pc::Disarmed, DisarmKprobeFtrace::new(f))
            }
            Pc::Disarmed => {
                k.fstate_mut(f).kprobes = 0;
                k.unlock(t, Lock::Kprobe);
                Flow::Ret(input.ret())
            }
        }
    }
}

/// `__arm_kprobe_ftrace`: add the ip to the shared ops' filter, register the ops if it is the first.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ArmKprobeFtrace {
    pub f: FnId,
    pc: ArmKprobeFtracePc,
    err: Option<Errno>,
}

/// Where [`ArmKprobeFtrace`] resumes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
enum ArmKprobeFtracePc {
    /// `ftrace_set_filter_ip(ops, p->addr, 0, 0)`
    Entry = 0,
    /// the first probe: `register_ftrace_function(ops)`
    Filtered = 1,
    /// on failure `goto err_ftrace`
    Registered = 2,
    /// `err_ftrace:` `ftrace_set_filter_ip(ops, p->addr, 1, 0)` returned
    ErrFtrace = 3,
}

impl ArmKprobeFtrace {
    pub fn new(f: FnId) -> Self {
        ArmKprobeFtrace {
            f,
            pc: ArmKprobeFtracePc::Entry,
            err: None,
        }
    }
}

impl Step for ArmKprobeFtrace {
    const NAME: &'static str = "__arm_kprobe_ftrace";
    fn step(&mut self, k: &mut Kernel, t: Tid, input: Input) -> Flow {
        use ArmKprobeFtracePc as Pc;
        let ops = k.id(OpsOwner::Kprobe);
        match self.pc {
            Pc::Entry => call!(
                self,
                Pc::Filtered,
                FtraceSetHash::filter(ops, self.f, false, false)
            ),
            Pc::Filtered => {
                if let Err(e) = input.ret() {
                    k.ev(t, EventKind::Warn("Failed to arm kprobe-ftrace"));
                    return Flow::Ret(Err(e));
                }
                if k.kprobe_ftrace_enabled == 0 {
                    call!(self, Pc::Registered, RegisterFtraceFunction::new(ops));
                }
                k.kprobe_ftrace_enabled += 1;
                Flow::Ret(Ok(0))
            }
            Pc::Registered => {
                if let Err(e) = input.ret() {
                    k.ev(t, EventKind::Warn("Failed to register kprobe-ftrace"));
                    self.err = Some(e);
                    call!(
                        self,
                        Pc::ErrFtrace,
                        FtraceSetHash::filter(ops, self.f, true, false)
                    );
                }
                k.kprobe_ftrace_enabled += 1;
                Flow::Ret(Ok(0))
            }
            Pc::ErrFtrace => Flow::Ret(Err(self
                .err
                .expect("[core internal bug] failure path without error"))),
        }
    }
}

/// `__disarm_kprobe_ftrace`: unregister the shared ops if this is its last address, then remove
/// the ip from its filter.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct DisarmKprobeFtrace {
    pub f: FnId,
    pc: DisarmKprobeFtracePc,
}

/// Where [`DisarmKprobeFtrace`] resumes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
enum DisarmKprobeFtracePc {
    /// the last probe: `unregister_ftrace_function(ops)`
    Entry = 0,
    /// the unregister answered
    Unregistered = 1,
    /// `(*cnt)--`, `ftrace_set_filter_ip(ops, p->addr, 1, 0)`
    ClearFilter = 2,
    /// the filter answered
    FilterCleared = 3,
}

impl DisarmKprobeFtrace {
    pub fn new(f: FnId) -> Self {
        DisarmKprobeFtrace {
            f,
            pc: DisarmKprobeFtracePc::Entry,
        }
    }
}

impl Step for DisarmKprobeFtrace {
    const NAME: &'static str = "__disarm_kprobe_ftrace";
    fn step(&mut self, k: &mut Kernel, t: Tid, input: Input) -> Flow {
        use DisarmKprobeFtracePc as Pc;
        let ops = k.id(OpsOwner::Kprobe);
        loop {
            match self.pc {
                Pc::Entry => {
                    if k.kprobe_ftrace_enabled == 1 {
                        call!(self, Pc::Unregistered, UnregisterFtraceFunction::new(ops));
                    }
                    self.pc = Pc::ClearFilter;
                }
                Pc::Unregistered => {
                    if let Err(e) = input.ret() {
                        k.ev(t, EventKind::Warn("Failed to unregister kprobe-ftrace"));
                        return Flow::Ret(Err(e));
                    }
                    self.pc = Pc::ClearFilter;
                }
                Pc::ClearFilter => {
                    k.kprobe_ftrace_enabled -= 1;
                    call!(
                        self,
                        Pc::FilterCleared,
                        FtraceSetHash::filter(ops, self.f, true, false)
                    );
                }
                Pc::FilterCleared => {
                    let r = input.ret();
                    if r.is_err() {
                        k.ev(t, EventKind::Warn("Failed to disarm kprobe-ftrace"));
                    }
                    return Flow::Ret(r);
                }
            }
        }
    }
}
