//! Module load and unload (SPEC §1, §7): records appear (`ftrace_module_init`, DISABLED) and are
//! accounted (`ftrace_module_enable`), then livepatch applies pending patches
//! (`klp_module_coming`). Unloading is refused while a BPF trampoline or a direct user pins the
//! module; otherwise livepatch and kprobes let go of its functions (`klp_module_going`, kprobes
//! are killed), and `ftrace_release_mod` zeroes the tracers' hash entries for them and removes the
//! records.

use crate::errno::Errno;
use crate::ftrace::{call, wait};
use crate::ids::{FnId, ModId, Tid};
use crate::kernel::{fl, CallSite, Kernel, Record};
use crate::locks::Lock;
use crate::machine::{EventKind, Flow, Input, Request, Step};
use crate::owners::kprobes::DisarmKprobeFtrace;
use crate::owners::livepatch::{KlpPatchFunc, KlpUnpatchFunc};

fn ops_id(i: usize) -> crate::ids::OpsId {
    crate::ids::OpsId(i as u16)
}

fn fns_of(k: &Kernel, m: ModId) -> Vec<FnId> {
    k.world().modules[m.0 as usize].clone()
}

/// `ftrace_release_mod` (ftrace_lock held).
fn release_records(k: &mut Kernel, t: Tid, m: ModId) {
    let fns = fns_of(k, m);
    // clear_mod_from_hashes zeroes the first entry for each record in the trace arrays' hashes
    // ("Do not allow this rec to match again"); other ops keep the stale address, which could only
    // match again if a later module reused the text address. The model never reuses module
    // addresses (a reloaded module's functions are new), so every entry for them dies.
    for i in 0..k.ops.len() {
        let id = ops_id(i);
        if k.op(id).hash_of.is_some()
            || !fns
                .iter()
                .any(|f| k.op(id).filter.contains(*f) || k.op(id).notrace.contains(*f))
        {
            continue;
        }
        let mut o = k.op(id).clone();
        for &f in &fns {
            o.filter.kill_all(f);
            o.notrace.kill_all(f);
        }
        k.assign_hash(t, id, false, o.filter);
        k.assign_hash(t, id, true, o.notrace);
    }
    for f in fns {
        k.guard(t, crate::kernel::Guard::Records);
        k.fstate_mut(f).rec = Record {
            present: false,
            disabled: false,
            count: 0,
            ipmodify: false,
            direct: false,
            site: CallSite::Nop,
        };
        k.gen += 1;
    }
}

/// Load module `m`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ModuleLoad {
    pub m: ModId,
    pc: u8,
    err: Option<Errno>,
}

impl ModuleLoad {
    pub fn new(m: ModId) -> Self {
        ModuleLoad {
            m,
            pc: 0,
            err: None,
        }
    }
}

impl Step for ModuleLoad {
    const NAME: &'static str = "load_module";
    fn step(&mut self, k: &mut Kernel, t: Tid, input: Input) -> Flow {
        let mi = self.m.0 as usize;
        loop {
            match self.pc {
                0 => {
                    let st = k.modules[mi];
                    if st.loaded || st.busy {
                        return Flow::Ret(Err(Errno::EBUSY));
                    }
                    k.modules[mi].busy = true;
                    wait!(self, 1, Request::Lock(Lock::Ftrace));
                }
                1 => {
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
                    wait!(self, 2, Request::Lock(Lock::Ftrace));
                }
                2 => {
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
                    wait!(self, 3, Request::Lock(Lock::Klp));
                }
                3 => {
                    // klp_module_coming: apply the pending patches.
                    k.modules[mi].klp_seen = true;
                    let next = fns_of(k, self.m).into_iter().find(|f| {
                        let st = k.fstate(*f);
                        st.klp_stack > 0 && !st.klp_registered
                    });
                    match next {
                        Some(f) => call!(self, 4, KlpPatchFunc::new(f)),
                        None => {
                            k.unlock(t, Lock::Klp);
                            let st = &mut k.modules[mi];
                            st.live = true;
                            st.busy = false;
                            return Flow::Ret(Ok(0));
                        }
                    }
                }
                4 => {
                    if let Err(e) = input.ret() {
                        // "refusing to load module": undo the patches and let the module go.
                        self.err = Some(e);
                        self.pc = 5;
                        continue;
                    }
                    self.pc = 3;
                }
                5 => {
                    let next = fns_of(k, self.m)
                        .into_iter()
                        .find(|f| k.fstate(*f).klp_registered);
                    match next {
                        Some(f) => call!(self, 5, KlpUnpatchFunc::new(f)),
                        None => {
                            k.modules[mi].klp_seen = false;
                            k.unlock(t, Lock::Klp);
                            wait!(self, 6, Request::Lock(Lock::Ftrace));
                        }
                    }
                }
                _ => {
                    release_records(k, t, self.m);
                    k.unlock(t, Lock::Ftrace);
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
pub struct ModuleUnload {
    pub m: ModId,
    pc: u8,
}

impl ModuleUnload {
    pub fn new(m: ModId) -> Self {
        ModuleUnload { m, pc: 0 }
    }
}

impl Step for ModuleUnload {
    const NAME: &'static str = "delete_module";
    fn step(&mut self, k: &mut Kernel, t: Tid, _input: Input) -> Flow {
        let mi = self.m.0 as usize;
        match self.pc {
            0 => {
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
                wait!(self, 1, Request::Lock(Lock::Klp));
            }
            1 => {
                // klp_module_going: unpatch, keep the patches pending.
                k.modules[mi].klp_seen = false;
                let next = fns_of(k, self.m)
                    .into_iter()
                    .find(|f| k.fstate(*f).klp_registered);
                match next {
                    Some(f) => call!(self, 1, KlpUnpatchFunc::new(f)),
                    None => {
                        k.unlock(t, Lock::Klp);
                        wait!(self, 2, Request::Lock(Lock::Kprobe));
                    }
                }
            }
            2 => {
                // kprobes_module_callback: kill the probes on the module's functions.
                let next = fns_of(k, self.m)
                    .into_iter()
                    .find(|f| k.fstate(*f).kprobes > 0);
                match next {
                    Some(f) => {
                        k.fstate_mut(f).kprobes = 0;
                        call!(self, 2, DisarmKprobeFtrace::new(f));
                    }
                    None => {
                        k.unlock(t, Lock::Kprobe);
                        wait!(self, 3, Request::Lock(Lock::Ftrace));
                    }
                }
            }
            _ => {
                release_records(k, t, self.m);
                k.unlock(t, Lock::Ftrace);
                let st = &mut k.modules[mi];
                st.loaded = false;
                st.busy = false;
                Flow::Ret(Ok(0))
            }
        }
    }
}
