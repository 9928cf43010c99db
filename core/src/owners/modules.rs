//! Module load and unload (SPEC §1, §7): records appear (`ftrace_module_init`, DISABLED) and are
//! accounted (`ftrace_module_enable`), then livepatch applies pending patches
//! (`klp_module_coming`). Unloading is refused while a BPF trampoline or a direct user pins the
//! module; otherwise livepatch and kprobes let go of its functions (`klp_module_going`, kprobes
//! are killed), and `ftrace_release_mod` removes the records and zeroes the tracers' hash entries
//! for them.

use crate::errno::Errno;
use crate::frames::{Flow, Step};
use crate::ftrace::{call, wait};
use crate::ids::{FnId, ModId, OpsOwner, Tid, TracerId};
use crate::kernel::{fl, CallSite, Kernel, Record};
use crate::locks::Lock;
use crate::owners::kprobes::DisarmKprobeFtrace;
use crate::owners::livepatch::{KlpPatchFunc, KlpUnpatchFunc};
use crate::step::{EventKind, Input, Request};

fn fns_of(k: &Kernel, m: ModId) -> Vec<FnId> {
    k.world().modules[m.0 as usize].clone()
}

/// `ftrace_release_mod`: under ftrace_lock the module's records go; then, "outside of
/// ftrace_lock", `clear_mod_from_hashes` takes trace_types_lock and each trace array's regex_lock
/// and zeroes the first entry for each record in its filter and notrace hashes ("Do not allow
/// this rec to match again"). Other ops keep the stale ip: the model reloads a module at the same
/// addresses, so such an entry matches the function again after a reload, as it would in the
/// kernel when the module text lands at the same address.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FtraceReleaseMod {
    pub m: ModId,
    /// Run `clear_mod_from_hashes` (proposed `failed_load_keeps_hashes` skips it after a load
    /// that never went live).
    pub clear_hashes: bool,
    pc: FtraceReleaseModPc,
    tracer: u8,
}

/// Where [`FtraceReleaseMod`] resumes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
enum FtraceReleaseModPc {
    /// `mutex_lock(&ftrace_lock)`
    Entry = 0,
    /// the records go; then the tracers' hashes: `mutex_lock(&trace_types_lock)`
    Locked = 1,
    /// the next tracer: `mutex_lock(&ops->func_hash->regex_lock)`
    NextTracer = 2,
    /// kill the module's entries in its hashes
    RegexLocked = 3,
}

impl FtraceReleaseMod {
    pub fn new(m: ModId) -> Self {
        FtraceReleaseMod {
            m,
            clear_hashes: true,
            pc: FtraceReleaseModPc::Entry,
            tracer: 0,
        }
    }
}

impl Step for FtraceReleaseMod {
    const NAME: &'static str = "ftrace_release_mod";
    fn step(&mut self, k: &mut Kernel, t: Tid, _input: Input) -> Flow {
        use FtraceReleaseModPc as Pc;
        loop {
            match self.pc {
                Pc::Entry => wait!(self, Pc::Locked, Request::Lock(Lock::Ftrace)),
                Pc::Locked => {
                    k.guard(t, crate::kernel::Guard::Records);
                    for f in fns_of(k, self.m) {
                        k.fstate_mut(f).rec = Record {
                            present: false,
                            disabled: false,
                            count: 0,
                            ipmodify: false,
                            direct: false,
                            site: CallSite::Nop,
                        };
                    }
                    k.gen += 1;
                    k.unlock(t, Lock::Ftrace);
                    if !self.clear_hashes {
                        return Flow::Ret(Ok(0));
                    }
                    wait!(self, Pc::NextTracer, Request::Lock(Lock::TraceTypes));
                }
                Pc::NextTracer => {
                    if self.tracer >= k.world().tracers {
                        k.unlock(t, Lock::TraceTypes);
                        return Flow::Ret(Ok(0));
                    }
                    let ops = k.id(OpsOwner::Tracer(TracerId(self.tracer)));
                    wait!(self, Pc::RegexLocked, Request::Lock(Lock::Regex(ops)));
                }
                Pc::RegexLocked => {
                    let ops = k.id(OpsOwner::Tracer(TracerId(self.tracer)));
                    // In place under regex_lock only: the records these entries could match are
                    // gone, so nothing that ftrace_lock protects depends on them.
                    let fns = fns_of(k, self.m);
                    let o = k.op_mut(ops);
                    for f in fns {
                        o.filter.kill_one(f);
                        o.notrace.kill_one(f);
                    }
                    k.gen += 1;
                    k.unlock(t, Lock::Regex(ops));
                    self.tracer += 1;
                    self.pc = Pc::NextTracer;
                }
            }
        }
    }
}

/// Load module `m`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct LoadModule {
    pub m: ModId,
    pc: LoadModulePc,
    err: Option<Errno>,
}

/// Where [`LoadModule`] resumes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
enum LoadModulePc {
    /// the checks, `mutex_lock(&ftrace_lock)`
    Entry = 0,
    /// `ftrace_module_init`: the records appear, DISABLED
    ModuleInit = 1,
    /// `ftrace_module_enable`: count the ops that reference each record
    ModuleEnable = 2,
    /// `klp_module_coming`: the next pending patch
    KlpComing = 3,
    /// a patch returned; on failure undo them
    Patched = 4,
    /// "refusing to load module": the next patch to undo
    Unpatch = 5,
    /// the module is gone again
    Released = 6,
}

impl LoadModule {
    pub fn new(m: ModId) -> Self {
        LoadModule {
            m,
            pc: LoadModulePc::Entry,
            err: None,
        }
    }
}

impl Step for LoadModule {
    const NAME: &'static str = "load_module";
    fn step(&mut self, k: &mut Kernel, t: Tid, input: Input) -> Flow {
        use LoadModulePc as Pc;
        let mi = self.m.0 as usize;
        loop {
            match self.pc {
                Pc::Entry => {
                    let st = k.modules[mi];
                    if st.loaded || st.busy {
                        return Flow::Ret(Err(Errno::EBUSY));
                    }
                    k.modules[mi].busy = true;
                    wait!(self, Pc::ModuleInit, Request::Lock(Lock::Ftrace));
                }
                Pc::ModuleInit => {
                    // ftrace_module_init: the records appear, DISABLED.
                    k.guard(t, crate::kernel::Guard::Records);
                    for f in fns_of(k, self.m) {
                        let rec = &mut k.fstate_mut(f).rec;
                        *rec = Record {
                            present: true,
                            disabled: true,
                            count: 0,
                            ipmodify: false,
                            direct: false,
                            site: CallSite::Nop,
                        };
                    }
                    k.modules[mi].loaded = true;
                    k.gen += 1;
                    k.unlock(t, Lock::Ftrace);
                    wait!(self, Pc::ModuleEnable, Request::Lock(Lock::Ftrace));
                }
                Pc::ModuleEnable => {
                    // ftrace_module_enable: count the ops that reference each record
                    // (referenced_filters warns about and skips DIRECT and IPMODIFY ops).
                    k.guard(t, crate::kernel::Guard::Records);
                    for f in fns_of(k, self.m) {
                        let mut cnt = 0;
                        for i in 0..k.ops_list.len() {
                            let op = k.ops_list[i];
                            if !k.references(op, f) {
                                continue;
                            }
                            if k.op(op).has(fl::DIRECT) || k.op(op).has(fl::IPMODIFY) {
                                k.ev(t, EventKind::Warn("referenced_filters: DIRECT or IPMODIFY ops on a module record"));
                                continue;
                            }
                            cnt += 1;
                        }
                        let rec = &mut k.fstate_mut(f).rec;
                        rec.disabled = false;
                        rec.count = cnt;
                        k.mark_dirty(f);
                    }
                    k.update_code(t);
                    k.unlock(t, Lock::Ftrace);
                    wait!(self, Pc::KlpComing, Request::Lock(Lock::Klp));
                }
                Pc::KlpComing => {
                    // klp_module_coming: apply the pending patches.
                    k.modules[mi].klp_seen = true;
                    let next = fns_of(k, self.m).into_iter().find(|f| {
                        let st = k.fstate(*f);
                        st.klp_stack > 0 && !st.klp_registered
                    });
                    match next {
                        Some(f) => call!(self, Pc::Patched, KlpPatchFunc::new(f)),
                        None => {
                            k.unlock(t, Lock::Klp);
                            let st = &mut k.modules[mi];
                            st.live = true;
                            st.busy = false;
                            return Flow::Ret(Ok(0));
                        }
                    }
                }
                Pc::Patched => {
                    if let Err(e) = input.ret() {
                        // "refusing to load module": undo the patches and let the module go.
                        self.err = Some(e);
                        self.pc = Pc::Unpatch;
                        continue;
                    }
                    self.pc = Pc::KlpComing;
                }
                Pc::Unpatch => {
                    let next = fns_of(k, self.m)
                        .into_iter()
                        .find(|f| k.fstate(*f).klp_registered);
                    match next {
                        Some(f) => call!(self, Pc::Unpatch, KlpUnpatchFunc::new(f)),
                        None => {
                            k.modules[mi].klp_seen = false;
                            k.unlock(t, Lock::Klp);
                            let mut r = FtraceReleaseMod::new(self.m);
                            r.clear_hashes = !k.proto.failed_load_keeps_hashes;
                            call!(self, Pc::Released, r);
                        }
                    }
                }
                Pc::Released => {
                    let st = &mut k.modules[mi];
                    st.loaded = false;
                    st.busy = false;
                    return Flow::Ret(Err(self
                        .err
                        .expect("[core internal bug] failed load without error")));
                }
            }
        }
    }
}

/// Unload module `m`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct DeleteModule {
    pub m: ModId,
    pc: DeleteModulePc,
}

/// Where [`DeleteModule`] resumes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
enum DeleteModulePc {
    /// the checks, `try_stop_module`, `mutex_lock(&klp_mutex)`
    Entry = 0,
    /// `klp_module_going`: the next patch to unpatch
    KlpGoing = 1,
    /// `kprobes_module_callback`: the next probe to kill
    KprobesGoing = 2,
    /// `ftrace_release_mod` returned
    Released = 3,
}

impl DeleteModule {
    pub fn new(m: ModId) -> Self {
        DeleteModule {
            m,
            pc: DeleteModulePc::Entry,
        }
    }
}

impl Step for DeleteModule {
    const NAME: &'static str = "delete_module";
    fn step(&mut self, k: &mut Kernel, t: Tid, _input: Input) -> Flow {
        use DeleteModulePc as Pc;
        let mi = self.m.0 as usize;
        match self.pc {
            Pc::Entry => {
                let st = k.modules[mi];
                if st.busy {
                    return Flow::Ret(Err(Errno::EBUSY));
                }
                if !st.loaded {
                    return Flow::Ret(Err(Errno::ENOENT));
                }
                // try_stop_module: a BPF trampoline or a direct user holds a reference.
                let pinned = fns_of(k, self.m).into_iter().any(|f| {
                    let s = k.fstate(f);
                    !s.tr.links.is_empty() || s.tr.cur_image.is_some() || s.direct_user.is_some()
                });
                if pinned {
                    return Flow::Ret(Err(Errno::EBUSY));
                }
                let st = &mut k.modules[mi];
                st.busy = true;
                st.live = false;
                wait!(self, Pc::KlpGoing, Request::Lock(Lock::Klp));
            }
            Pc::KlpGoing => {
                // klp_module_going: unpatch, keep the patches pending.
                k.modules[mi].klp_seen = false;
                let next = fns_of(k, self.m)
                    .into_iter()
                    .find(|f| k.fstate(*f).klp_registered);
                match next {
                    Some(f) => call!(self, Pc::KlpGoing, KlpUnpatchFunc::new(f)),
                    None => {
                        k.unlock(t, Lock::Klp);
                        wait!(self, Pc::KprobesGoing, Request::Lock(Lock::Kprobe));
                    }
                }
            }
            Pc::KprobesGoing => {
                // kprobes_module_callback: kill the probes on the module's functions.
                let next = fns_of(k, self.m)
                    .into_iter()
                    .find(|f| k.fstate(*f).kprobes > 0);
                match next {
                    Some(f) => {
                        k.fstate_mut(f).kprobes = 0;
                        call!(self, Pc::KprobesGoing, DisarmKprobeFtrace::new(f));
                    }
                    None => {
                        k.unlock(t, Lock::Kprobe);
                        call!(self, Pc::Released, FtraceReleaseMod::new(self.m));
                    }
                }
            }
            Pc::Released => {
                let st = &mut k.modules[mi];
                st.loaded = false;
                st.busy = false;
                Flow::Ret(Ok(0))
            }
        }
    }
}
