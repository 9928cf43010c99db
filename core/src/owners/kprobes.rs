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
    pc: u8,
}

impl RegisterKprobe {
    pub fn new(f: FnId) -> Self {
        RegisterKprobe { f, pc: 0 }
    }
}

impl Step for RegisterKprobe {
    const NAME: &'static str = "register_kprobe";
    fn step(&mut self, k: &mut Kernel, t: Tid, input: Input) -> Flow {
        let f = self.f;
        match self.pc {
            0 => wait!(self, 1, Request::Lock(Lock::Kprobe)),
            1 => {
                if !k.fn_live(f) {
                    k.unlock(t, Lock::Kprobe);
                    return Flow::Ret(Err(Errno::ENOENT));
                }
                if k.fstate(f).kprobes > 0 {
                    k.fstate_mut(f).kprobes += 1;
                    k.unlock(t, Lock::Kprobe);
                    return Flow::Ret(Ok(0));
                }
                call!(self, 2, ArmKprobeFtrace::new(f))
            }
            _ => {
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
    pc: u8,
}

impl UnregisterKprobe {
    pub fn new(f: FnId) -> Self {
        UnregisterKprobe { f, pc: 0 }
    }
}

impl Step for UnregisterKprobe {
    const NAME: &'static str = "unregister_kprobe";
    fn step(&mut self, k: &mut Kernel, t: Tid, input: Input) -> Flow {
        let f = self.f;
        match self.pc {
            0 => wait!(self, 1, Request::Lock(Lock::Kprobe)),
            1 => {
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
                call!(self, 2, DisarmKprobeFtrace::new(f))
            }
            _ => {
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
    pc: u8,
    err: Option<Errno>,
}

impl ArmKprobeFtrace {
    pub fn new(f: FnId) -> Self {
        ArmKprobeFtrace {
            f,
            pc: 0,
            err: None,
        }
    }
}

impl Step for ArmKprobeFtrace {
    const NAME: &'static str = "__arm_kprobe_ftrace";
    fn step(&mut self, k: &mut Kernel, t: Tid, input: Input) -> Flow {
        let ops = k.id(OpsOwner::Kprobe);
        match self.pc {
            0 => call!(self, 1, FtraceSetHash::filter(ops, self.f, false, false)),
            1 => {
                if let Err(e) = input.ret() {
                    k.ev(t, EventKind::Warn("Failed to arm kprobe-ftrace"));
                    return Flow::Ret(Err(e));
                }
                if k.kprobe_ftrace_enabled == 0 {
                    call!(self, 2, RegisterFtraceFunction::new(ops));
                }
                k.kprobe_ftrace_enabled += 1;
                Flow::Ret(Ok(0))
            }
            2 => {
                if let Err(e) = input.ret() {
                    k.ev(t, EventKind::Warn("Failed to register kprobe-ftrace"));
                    self.err = Some(e);
                    call!(self, 3, FtraceSetHash::filter(ops, self.f, true, false));
                }
                k.kprobe_ftrace_enabled += 1;
                Flow::Ret(Ok(0))
            }
            _ => Flow::Ret(Err(self
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
    pc: u8,
}

impl DisarmKprobeFtrace {
    pub fn new(f: FnId) -> Self {
        DisarmKprobeFtrace { f, pc: 0 }
    }
}

impl Step for DisarmKprobeFtrace {
    const NAME: &'static str = "__disarm_kprobe_ftrace";
    fn step(&mut self, k: &mut Kernel, t: Tid, input: Input) -> Flow {
        let ops = k.id(OpsOwner::Kprobe);
        loop {
            match self.pc {
                0 => {
                    if k.kprobe_ftrace_enabled == 1 {
                        call!(self, 1, UnregisterFtraceFunction::new(ops));
                    }
                    self.pc = 2;
                }
                1 => {
                    if let Err(e) = input.ret() {
                        k.ev(t, EventKind::Warn("Failed to unregister kprobe-ftrace"));
                        return Flow::Ret(Err(e));
                    }
                    self.pc = 2;
                }
                2 => {
                    k.kprobe_ftrace_enabled -= 1;
                    call!(self, 3, FtraceSetHash::filter(ops, self.f, true, false));
                }
                _ => {
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
