//! Livepatch (kernel/livepatch/patch.c, SPEC §2): one IPMODIFY|PERMANENT ops per patched
//! function; stacked patches reuse it without calling ftrace; no retry on any error.
//! A patch of a function in a module that is not loaded stays pending until `klp_module_coming`.

use crate::errno::Errno;
use crate::frames::{Flow, Step};
use crate::ftrace::{call, wait, FtraceSetHash, RegisterFtraceFunction, UnregisterFtraceFunction};
use crate::ids::{FnId, OpsOwner, Tid};
use crate::kernel::{fl, Kernel, Ops};
use crate::locks::Lock;
use crate::step::{AllocSite, EventKind, Input, Request};

/// Enable a patch of `f` (klp_mutex; `klp_patch_func` for the first patch on a loaded function).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct KlpEnablePatch {
    pub f: FnId,
    pc: u8,
}

impl KlpEnablePatch {
    pub fn new(f: FnId) -> Self {
        KlpEnablePatch { f, pc: 0 }
    }
}

impl Step for KlpEnablePatch {
    const NAME: &'static str = "klp_enable_patch";
    fn step(&mut self, k: &mut Kernel, t: Tid, input: Input) -> Flow {
        let f = self.f;
        match self.pc {
            0 => wait!(self, 1, Request::Lock(Lock::Klp)),
            1 => {
                let st = k.fstate(f);
                let pending = k
                    .module_of(f)
                    .is_some_and(|m| !k.modules[m.0 as usize].klp_seen);
                if st.klp_stack > 0 || pending {
                    // Stacked (klp_find_ops found the ops) or pending on an unloaded module.
                    k.fstate_mut(f).klp_stack += 1;
                    k.unlock(t, Lock::Klp);
                    return Flow::Ret(Ok(0));
                }
                // The function joins the stack before ftrace is called.
                k.fstate_mut(f).klp_stack = 1;
                call!(self, 2, KlpPatchFunc::new(f))
            }
            _ => {
                let r = input.ret();
                if r.is_err() {
                    k.fstate_mut(f).klp_stack = 0;
                }
                k.unlock(t, Lock::Klp);
                Flow::Ret(r)
            }
        }
    }
}

/// Disable the top patch of `f` (klp_mutex; `klp_unpatch_func` when it was the last one).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct KlpDisablePatch {
    pub f: FnId,
    pc: u8,
}

impl KlpDisablePatch {
    pub fn new(f: FnId) -> Self {
        KlpDisablePatch { f, pc: 0 }
    }
}

impl Step for KlpDisablePatch {
    const NAME: &'static str = "klp_disable_patch";
    fn step(&mut self, k: &mut Kernel, t: Tid, _input: Input) -> Flow {
        let f = self.f;
        match self.pc {
            0 => wait!(self, 1, Request::Lock(Lock::Klp)),
            1 => {
                let st = k.fstate(f);
                if st.klp_stack == 0 {
                    k.unlock(t, Lock::Klp);
                    return Flow::Ret(Err(Errno::EINVAL));
                }
                if st.klp_stack > 1 || !st.klp_registered {
                    k.fstate_mut(f).klp_stack -= 1;
                    k.unlock(t, Lock::Klp);
                    return Flow::Ret(Ok(0));
                }
                call!(self, 2, KlpUnpatchFunc::new(f))
            }
            _ => {
                k.fstate_mut(f).klp_stack = 0;
                k.unlock(t, Lock::Klp);
                Flow::Ret(Ok(0))
            }
        }
    }
}

/// `klp_patch_func` for a function with no ops yet: allocate the ops, set its filter to `{f}`,
/// register; on a register failure remove the filter entry again. klp_mutex held.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct KlpPatchFunc {
    pub f: FnId,
    pc: u8,
    err: Option<Errno>,
}

impl KlpPatchFunc {
    pub fn new(f: FnId) -> Self {
        KlpPatchFunc {
            f,
            pc: 0,
            err: None,
        }
    }
}

impl Step for KlpPatchFunc {
    const NAME: &'static str = "klp_patch_func";
    fn step(&mut self, k: &mut Kernel, _t: Tid, input: Input) -> Flow {
        let f = self.f;
        let ops = k.id(OpsOwner::Klp(f));
        match self.pc {
            0 => wait!(self, 1, Request::Alloc(AllocSite::KlpOps)),
            1 => {
                if !input.ok() {
                    return Flow::Ret(Err(Errno::ENOMEM));
                }
                *k.op_mut(ops) = Ops {
                    flags: fl::IPMODIFY | fl::PERMANENT,
                    ..Ops::default()
                };
                call!(self, 2, FtraceSetHash::filter(ops, f, false, false))
            }
            2 => {
                if let Err(e) = input.ret() {
                    *k.op_mut(ops) = Ops::default();
                    return Flow::Ret(Err(e));
                }
                call!(self, 3, RegisterFtraceFunction::new(ops))
            }
            3 => {
                if let Err(e) = input.ret() {
                    self.err = Some(e);
                    call!(self, 4, FtraceSetHash::filter(ops, f, true, false));
                }
                k.fstate_mut(f).klp_registered = true;
                Flow::Ret(Ok(0))
            }
            _ => {
                *k.op_mut(ops) = Ops::default();
                Flow::Ret(Err(self
                    .err
                    .expect("[core internal bug] failure path without error")))
            }
        }
    }
}

/// `klp_unpatch_func` for the last patch: unregister, remove the filter entry (both WARN on
/// error and carry on), free the ops.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct KlpUnpatchFunc {
    pub f: FnId,
    pc: u8,
}

impl KlpUnpatchFunc {
    pub fn new(f: FnId) -> Self {
        KlpUnpatchFunc { f, pc: 0 }
    }
}

impl Step for KlpUnpatchFunc {
    const NAME: &'static str = "klp_unpatch_func";
    fn step(&mut self, k: &mut Kernel, t: Tid, input: Input) -> Flow {
        let f = self.f;
        let ops = k.id(OpsOwner::Klp(f));
        match self.pc {
            0 => call!(self, 1, UnregisterFtraceFunction::new(ops)),
            1 => {
                if input.ret().is_err() {
                    k.ev(
                        t,
                        EventKind::Warn("klp_unpatch_func: unregister_ftrace_function failed"),
                    );
                }
                call!(self, 2, FtraceSetHash::filter(ops, f, true, false))
            }
            _ => {
                if input.ret().is_err() {
                    k.ev(
                        t,
                        EventKind::Warn("klp_unpatch_func: ftrace_set_filter_ip failed"),
                    );
                }
                if !k.op(ops).has(fl::ENABLED) {
                    *k.op_mut(ops) = Ops::default();
                }
                k.fstate_mut(f).klp_registered = false;
                Flow::Ret(Ok(0))
            }
        }
    }
}
