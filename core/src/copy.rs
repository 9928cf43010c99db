//! The copies and comparisons of `Kernel` the explorer makes per transition
//! ([`Kernel::copy_from`], [`Kernel::restore_from`], [`Kernel::own_sections_eq`],
//! [`Kernel::own_sections_eq_parent`], `Kernel`'s `PartialEq` and [`Kernel::eq_parent`]), beside
//! the kernel's definition for its size: the marks they read are [`Slots`](crate::slots::Slots)'.

use crate::ids::{FnId, OpsOwner};
use crate::kernel::Kernel;
use crate::slots::copy_if_changed;

impl Kernel {
    /// `*self = src.clone()`, reusing `self`'s allocations (the explorer runs every transition in
    /// one buffer per expanded state). Every field is named, so a new field cannot be forgotten.
    #[inline]
    pub fn copy_from(&mut self, src: &Kernel) {
        self.copy_with(src, false);
    }

    /// [`Kernel::copy_from`] for a `self` that was a copy of `src` before the writes the marks
    /// of its functions and ops slots record ([`Slots`](crate::slots::Slots)): the explorer's buffer after one
    /// transition from `src`. Only the marked functions and slots are copied, and the marks
    /// are cleared, so that they record the next transition's writes.
    #[inline]
    pub fn restore_from(&mut self, src: &Kernel) {
        self.copy_with(src, true);
    }

    #[inline]
    fn copy_with(&mut self, src: &Kernel, restore: bool) {
        let Kernel {
            proto,
            info,
            fns,
            ops,
            ops_list,
            direct_functions,
            modules,
            tracers,
            kprobe_ftrace_enabled,
            locks,
            gen,
            next_prog,
            next_sample,
            violations,
            dirty,
            trace,
        } = src;
        self.proto = *proto;
        if !std::sync::Arc::ptr_eq(&self.info, info) {
            assert!(!restore, "[core internal bug] restore_from across worlds");
            self.info = info.clone();
        }
        if restore {
            self.fns.restore_from(fns);
            self.ops.restore_from(ops);
        } else {
            self.fns.copy_from(fns);
            self.ops.copy_from(ops);
        }
        copy_if_changed(&mut self.ops_list, ops_list);
        copy_if_changed(&mut self.direct_functions, direct_functions);
        copy_if_changed(&mut self.modules, modules);
        copy_if_changed(&mut self.tracers, tracers);
        self.kprobe_ftrace_enabled = *kprobe_ftrace_enabled;
        copy_if_changed(&mut self.locks, locks);
        self.gen = *gen;
        self.next_prog = *next_prog;
        self.next_sample = *next_sample;
        self.violations.clone_from(violations);
        copy_if_changed(&mut self.dirty, dirty);
        self.trace.clone_from(trace);
    }

    /// The two ops slots function `f` owns: its livepatch's and its trampoline's (the
    /// function's own sections beside its `FnState`, as `walk::walk_function` walks them).
    #[inline(always)]
    pub fn own_slots(&self, f: FnId) -> [usize; 2] {
        let layout = &self.info.layout;
        [
            layout.id(OpsOwner::Klp(f)).0 as usize,
            layout.id(OpsOwner::Bpf(f)).0 as usize,
        ]
    }

    /// Whether function `f`'s own sections (its `FnState` and the two ops slots it owns) are
    /// equal in `self` and `other`, a kernel of the same world.
    #[inline(always)]
    pub fn own_sections_eq(&self, other: &Kernel, f: FnId) -> bool {
        let [klp, bpf] = self.own_slots(f);
        self.fns[f.0 as usize] == other.fns[f.0 as usize]
            && self.ops[klp] == other.ops[klp]
            && self.ops[bpf] == other.ops[bpf]
    }

    /// Whether the ops slots `ids` are equal in `self` and `parent`, for a `self` that was a copy
    /// of `parent` before the writes its marks record (as [`Kernel::own_sections_eq_parent`]):
    /// only the marked slots are compared (debug builds compare the others too).
    #[inline]
    pub fn ops_eq_parent(&self, parent: &Kernel, ids: std::ops::Range<usize>) -> bool {
        ids.into_iter()
            .all(|i| self.ops.eq_at_parent(&parent.ops, i))
    }

    /// [`Kernel::own_sections_eq`] against `parent`, for a `self` that was a copy of `parent`
    /// before the writes its marks record (as [`Kernel::restore_from`]'s): unmarked sections are
    /// equal without a comparison (debug builds compare them anyway).
    #[inline(always)]
    pub fn own_sections_eq_parent(&self, parent: &Kernel, f: FnId) -> bool {
        let [klp, bpf] = self.own_slots(f);
        self.fns.eq_at_parent(&parent.fns, f.0 as usize)
            && self.ops.eq_at_parent(&parent.ops, klp)
            && self.ops.eq_at_parent(&parent.ops, bpf)
    }
}

/// Equality of kernels: every field of the kernel but the counters ([`EqScope`](crate::walk::EqScope); the threads are
/// not the kernel's, `Thread` derives its equality), compared field by field with
/// the derived equality of the structs the state holds: the explorer compares states on every
/// failed operation, and a derived comparison stops at the first difference where two walks and
/// a comparison of their words would not. It destructures `Kernel` without `..`
/// like the walk, and `tests/tests/walk.rs` checks that it sees exactly the fields the walk
/// visits outside [`EqScope`](crate::walk::EqScope).
impl PartialEq for Kernel {
    fn eq(&self, o: &Kernel) -> bool {
        self.eq_with(o, false)
    }
}

impl Kernel {
    /// `self == parent` for a `self` that was a copy of `parent` before the writes its marks
    /// record (as [`Kernel::restore_from`]'s): only the marked functions and ops slots are
    /// compared (debug builds compare the others too, and check them equal).
    #[inline]
    pub fn eq_parent(&self, parent: &Kernel) -> bool {
        self.eq_with(parent, true)
    }

    /// The equality of both: with `marked`, the unmarked items of `fns` and `ops` are taken as
    /// equal.
    #[inline]
    fn eq_with(&self, o: &Kernel, marked: bool) -> bool {
        let Kernel {
            proto,
            info: _,
            fns,
            ops,
            ops_list,
            direct_functions,
            modules,
            tracers,
            kprobe_ftrace_enabled,
            locks,
            gen: _,
            next_prog: _,
            next_sample: _,
            violations: _,
            dirty: _,
            trace: _,
        } = self;
        *proto == o.proto
            && if marked {
                fns.eq_marked(&o.fns) && ops.eq_marked(&o.ops)
            } else {
                *fns == o.fns && *ops == o.ops
            }
            && *ops_list == o.ops_list
            && *direct_functions == o.direct_functions
            && *modules == o.modules
            && *tracers == o.tracers
            && *kprobe_ftrace_enabled == o.kprobe_ftrace_enabled
            && *locks == o.locks
    }
}
