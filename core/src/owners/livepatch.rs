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
    pc: KlpEnablePatchPc,
}

/// Where [`KlpEnablePatch`] resumes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
enum KlpEnablePatchPc {
    /// `mutex_lock(&klp_mutex)`
    Entry = 0,
    /// the checks, `klp_patch_func` for a live function
    Locked = 1,
    /// `klp_patch_func` returned
    Patched = 2,
}

impl KlpEnablePatch {
    pub fn new(f: FnId) -> Self {
        KlpEnablePatch {
            f,
            pc: KlpEnablePatchPc::Entry,
        }
    }
}

impl Step for KlpEnablePatch {
    const NAME: &'static str = "klp_enable_patch";
    fn step(&mut self, k: &mut Kernel, t: Tid, input: Input) -> Flow {
        use KlpEnablePatchPc as Pc;
        let f = self.f;
        match self.pc {
            Pc::Entry => wait!(self, Pc::Locked, Request::Lock(Lock::Klp)),
            Pc::Locked => {
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
                call!(self, Pc::Patched, KlpPatchFunc::new(f))
            }
            Pc::Patched => {
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
    pc: KlpDisablePatchPc,
}

/// Where [`KlpDisablePatch`] resumes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
enum KlpDisablePatchPc {
    /// `mutex_lock(&klp_mutex)`
    Entry = 0,
    /// the checks, `klp_unpatch_func` for a registered patch
    Locked = 1,
    /// `klp_unpatch_func` returned
    Unpatched = 2,
}

impl KlpDisablePatch {
    pub fn new(f: FnId) -> Self {
        KlpDisablePatch {
            f,
            pc: KlpDisablePatchPc::Entry,
        }
    }
}

impl Step for KlpDisablePatch {
    const NAME: &'static str = "klp_disable_patch";
    fn step(&mut self, k: &mut Kernel, t: Tid, _input: Input) -> Flow {
        use KlpDisablePatchPc as Pc;
        let f = self.f;
        match self.pc {
            Pc::Entry => wait!(self, Pc::Locked, Request::Lock(Lock::Klp)),
            Pc::Locked => {
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
                call!(self, Pc::Unpatched, KlpUnpatchFunc::new(f))
            }
            Pc::Unpatched => {
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
    pc: KlpPatchFuncPc,
    err: Option<Errno>,
}

/// Where [`KlpPatchFunc`] resumes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
enum KlpPatchFuncPc {
    /// `kzalloc` of the ops
    Entry = 0,
    /// `ftrace_set_filter_ip(&ops->fops, ftrace_loc, 0, 0)`
    Allocated = 1,
    /// `register_ftrace_function(&ops->fops)`
    Filtered = 2,
    /// on failure `ftrace_set_filter_ip(&ops->fops, ftrace_loc, 1, 0)`
    Registered = 3,
    /// `err:` the filter entry is gone again
    Err = 4,
}

impl KlpPatchFunc {
    pub fn new(f: FnId) -> Self {
        KlpPatchFunc {
            f,
            pc: KlpPatchFuncPc::Entry,
            err: None,
        }
    }
}

impl Step for KlpPatchFunc {
    const NAME: &'static str = "klp_patch_func";
    fn step(&mut self, k: &mut Kernel, _t: Tid, input: Input) -> Flow {
        use KlpPatchFuncPc as Pc;
        let f = self.f;
        let ops = k.id(OpsOwner::Klp(f));
        match self.pc {
            Pc::Entry => wait!(self, Pc::Allocated, Request::Alloc(AllocSite::KlpOps)),
            Pc::Allocated => {
                if !input.ok() {
                    return Flow::Ret(Err(Errno::ENOMEM));
                }
                *k.op_mut(ops) = Ops {
                    flags: fl::IPMODIFY | fl::PERMANENT,
                    ..Ops::default()
                };
                call!(
                    self,
                    Pc::Filtered,
                    FtraceSetHash::filter(ops, f, false, false)
                )
            }
            Pc::Filtered => {
                if let Err(e) = input.ret() {
                    *k.op_mut(ops) = Ops::default();
                    return Flow::Ret(Err(e));
                }
                call!(self, Pc::Registered, RegisterFtraceFunction::new(ops))
            }
            Pc::Registered => {
                if let Err(e) = input.ret() {
                    self.err = Some(e);
                    call!(self, Pc::Err, FtraceSetHash::filter(ops, f, true, false));
                }
                k.fstate_mut(f).klp_registered = true;
                Flow::Ret(Ok(0))
            }
            Pc::Err => {
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
    pc: KlpUnpatchFuncPc,
}

/// Where [`KlpUnpatchFunc`] resumes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
enum KlpUnpatchFuncPc {
    /// `unregister_ftrace_function(&ops->fops)`
    Entry = 0,
    /// `ftrace_set_filter_ip(&ops->fops, ftrace_loc, 1, 0)`
    Unregistered = 1,
    /// the ops is freed
    Unfiltered = 2,
}

impl KlpUnpatchFunc {
    pub fn new(f: FnId) -> Self {
        KlpUnpatchFunc {
            f,
            pc: KlpUnpatchFuncPc::Entry,
        }
    }
}

impl Step for KlpUnpatchFunc {
    const NAME: &'static str = "klp_unpatch_func";
    fn step(&mut self, k: &mut Kernel, t: Tid, input: Input) -> Flow {
        use KlpUnpatchFuncPc as Pc;
        let f = self.f;
        let ops = k.id(OpsOwner::Klp(f));
        match self.pc {
            Pc::Entry => call!(self, Pc::Unregistered, UnregisterFtraceFunction::new(ops)),
            Pc::Unregistered => {
                if input.ret().is_err() {
                    k.ev(
                        t,
                        EventKind::Warn("klp_unpatch_func: unregister_ftrace_function failed"),
                    );
                }
                call!(
                    self,
                    Pc::Unfiltered,
                    FtraceSetHash::filter(ops, f, true, false)
                )
            }
            Pc::Unfiltered => {
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
