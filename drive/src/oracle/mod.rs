//! The reference oracle (issue 3): what the design *promises*, independent of the model.
//!
//! The core copies each version's code; this module says what the policy of SPEC §4 promises a
//! user of the owner-level operations (SPEC §7, the table in [`ftsim_core::op`]). Where the two
//! disagree, either the code has a flaw or the promise was never kept.
//!
//! # Independence
//!
//! The prediction side ([`Reference`], [`Reference::predict`], [`Reference::expect`]) uses only
//! `op`, `ids`, `world`, `errno`, `property`, and from `protocol` only the *promise*: the `policy`
//! switch (exclusive or shared, SPEC §4), which no part of the model reads, and which operations
//! exist (the single-ip direct API is there or not, SPEC §7: its `direct-*` operations). It reads
//! no switch that says how the code keeps the promise, and never looks at records, hashes, the ops
//! list, flags, the kernel state or frames.
//! The comparison side ([`Reference::step`], in `judge.rs`) reads the core's two observation types,
//! the [`OpResult`](ftsim_core::step::OpResult) of an operation and the
//! [`Call`](crate::observe::Call) of each function, and nothing else.
//!
//! # The abstract picture
//!
//! Per function: the livepatch stack (applied while the function's text is loaded, *pending*
//! otherwise), the linked BPF programs by kind (oldest first), the number of IPMODIFY kprobes
//! armed, and whether a single-ip direct user is registered. Per module: loaded or not. Per
//! tracer: registered or not, and its filter and notrace multisets. When a module unloads, the
//! first entry for each of its functions in each hash dies (it matches nothing, but keeps a
//! filter non-empty); further entries match the function again when the module reloads at the
//! same addresses (the owner-level table of [`ftsim_core::op`]). BPF programs are numbered `prog1`,
//! `prog2`, ... in the order the BPF owner loads them: every `bpf-link` that passes its
//! owner-level checks loads one, whether or not attaching it then succeeds.
//!
//! # The policy (SPEC §4)
//!
//! Owners of a function: *IPMODIFY owners* (an applied livepatch, armed IPMODIFY kprobes) and
//! *direct owners* (a BPF trampoline with at least one program, a single-ip direct user).
//!
//! | newcomer on f | refused with `EBUSY` when f already has |
//! |---|---|
//! | first livepatch, first kprobe | another IPMODIFY owner; a direct user (it has no owner callback, so it cannot share); in the exclusive policy also a BPF trampoline |
//! | first BPF program | a direct user (at most one direct owner); in the exclusive policy also an IPMODIFY owner |
//! | direct user | a BPF trampoline; an IPMODIFY owner |
//!
//! In the shared policy a BPF trampoline and one IPMODIFY owner must coexist, in either order of
//! arrival and for every program kind. Stacking a livepatch, aggregating a kprobe, adding a
//! program to an installed trampoline, and every release never conflict. Everything else is the
//! owner-level table of [`ftsim_core::op`]. An operation the policy allows must succeed; it may fail
//! with `EAGAIN` only if it met a contended trylock, and with `ENOMEM`/`E2BIG` only if a fault
//! was injected into it.
//!
//! What a call of a loaded function f must execute: its body redirected (by one of its IPMODIFY
//! owners) iff f has an IPMODIFY owner; every linked program of f's trampoline; the callback of
//! every tracer that references f and of every IPMODIFY owner of f; the direct user's trampoline.
//! Nothing else: no other owner's callback, program or trampoline.
//!
//! # Properties reported (SPEC §3 identifiers)
//!
//! - `availability`: a refusal of an allowed operation not explained by contention or a fault.
//!   A refusal the policy expects must carry one of the errnos it allows (`accounting`
//!   otherwise), unless contention (`EAGAIN`) or a fault (`ENOMEM`, `E2BIG`) explains it.
//! - `exclusivity`: a success the policy refuses because of another owner (a second IPMODIFY or
//!   direct owner, a direct user next to an IPMODIFY owner, both kinds under the exclusive policy).
//! - `atomicity`: a failed operation that changed the picture or what a call of some function
//!   executes. Owners leave two kinds of leftovers on failure paths: a release (`klp-disable`,
//!   `bpf-unlink`, `kprobe-disarm`, `tracer-unregister`, `direct-unregister`) that fails past its
//!   owner-level checks has let go all the same (the owner drops its state whatever ftrace
//!   answers). Nothing else is tolerated: a failed `module-load` in particular must leave the
//!   tracers' hashes as they were (SPEC §3.6; the module never went live).
//! - `ipmodify-honoured`: f has an IPMODIFY owner but a call does not end in its redirected body.
//! - `no-lost-program`: a linked program of f does not run on a call of f.
//! - `no-lost-callback`: a tracer or IPMODIFY owner of f gets no callback, or the direct user's
//!   trampoline is not reached.
//! - `accounting`: a call executes something no owner holds (a callback, program, trampoline or
//!   redirect of an owner that does not hold f, or a freed trampoline), f's text is live when the
//!   picture says unloaded or the reverse, the core accepted an operation its owner refuses, or
//!   refused one with an errno neither the policy nor the owner-level table gives.
//!
//! # Following the core
//!
//! One divergence must not cascade, so after each operation the oracle takes the core's actual
//! result as the truth about owner-level state: on success it applies the operation's effect
//! (even one the policy refuses: a second IPMODIFY owner then stays in the picture); on failure it
//! keeps its picture, except for the leftovers owners leave on their failure paths (above), which
//! it applies. Then it predicts each call from that picture. The
//! refusal-or-success verdict of the core is thus reported once, at the operation, and what the
//! calls execute is judged against what the owners actually hold.

mod judge;

use ftsim_core::errno::Errno;
use ftsim_core::ids::{FnId, ModId, OpsLayout, OpsOwner, ProgId, ProgKind, TracerId};
use ftsim_core::op::{HashSel, Op};
use ftsim_core::protocol::{Protocol, SharingPolicy, SingleDirectApi};
use ftsim_core::world::World;
use judge::Seen;
use std::fmt;

/// Most programs one trampoline takes (owner-level, [`ftsim_core::op`]: `E2BIG` at 38 links).
pub const BPF_LINKS_MAX: usize = 38;

/// What a protocol promises (SPEC §4), the only thing the oracle reads from it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policy {
    /// An IPMODIFY owner and a direct owner exclude each other (`pre`).
    pub exclusive: bool,
    /// The single-ip direct API (`direct-*` operations) exists.
    pub single_direct_api: bool,
}

impl Policy {
    pub fn of(p: &Protocol) -> Policy {
        Policy {
            exclusive: p.policy == SharingPolicy::Exclusive,
            single_direct_api: p.single_direct_api != SingleDirectApi::Absent,
        }
    }

    fn name(self) -> &'static str {
        if self.exclusive {
            "exclusive"
        } else {
            "shared"
        }
    }
}

/// The owners of one function.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FnPicture {
    /// Stacked livepatches (applied while the text is loaded, pending otherwise).
    pub klp: u16,
    /// Linked programs, oldest first.
    pub links: Vec<(ProgKind, ProgId)>,
    /// Armed IPMODIFY kprobes.
    pub kprobes: u16,
    /// A single-ip direct user is registered.
    pub direct_user: bool,
}

/// An entry of a tracer's hash: a function, or an entry killed by its module's unload.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum HashEntry {
    Live(FnId),
    Dead,
}

/// A tracer: registered or not, and its hashes as sorted multisets.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TracerPicture {
    pub registered: bool,
    pub filter: Vec<HashEntry>,
    pub notrace: Vec<HashEntry>,
}

impl TracerPicture {
    /// Registered, f in the filter (or the filter empty: every function), f not in notrace.
    pub fn references(&self, f: FnId) -> bool {
        let e = HashEntry::Live(f);
        self.registered
            && (self.filter.is_empty() || self.filter.contains(&e))
            && !self.notrace.contains(&e)
    }

    fn hash_mut(&mut self, which: HashSel) -> &mut Vec<HashEntry> {
        match which {
            HashSel::Filter => &mut self.filter,
            HashSel::Notrace => &mut self.notrace,
        }
    }
}

/// The outcomes the policy allows for one operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Allowed {
    /// It must succeed.
    Ok,
    /// It must fail with one of `errnos`; `conflict` names the owner it conflicts with, `None`
    /// when the owner itself refuses it (owner-level table of [`ftsim_core::op`]).
    Refused {
        errnos: &'static [Errno],
        conflict: Option<String>,
    },
}

fn invalid(errnos: &'static [Errno]) -> Allowed {
    Allowed::Refused {
        errnos,
        conflict: None,
    }
}

/// What a call of a loaded function must execute.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExpectedCall {
    /// IPMODIFY owners; the body must be redirected by one of them iff non-empty.
    pub ipmodify: Vec<OpsOwner>,
    /// Owners whose callback must run (IPMODIFY owners and referencing tracers).
    pub callbacks: Vec<OpsOwner>,
    /// Programs that must run.
    pub progs: Vec<ProgId>,
    /// The direct user's trampoline must be reached.
    pub sample: bool,
}

/// The reference oracle's state machine: the abstract picture plus the policy.
#[derive(Clone, Debug)]
pub struct Reference {
    pub policy: Policy,
    pub world: World,
    pub fns: Vec<FnPicture>,
    /// Per module: loaded.
    pub loaded: Vec<bool>,
    pub tracers: Vec<TracerPicture>,
    /// Programs loaded so far (the last one is `ProgId(programs)`).
    pub programs: u32,
    layout: OpsLayout,
    /// What each function's call executed after the last operation (`None`: no text).
    seen: Vec<Option<Seen>>,
}

impl Reference {
    /// The initial picture: no owners, modules unloaded, tracers unregistered with empty hashes.
    pub fn new(world: &World, proto: &Protocol) -> Reference {
        let n = world.functions as usize;
        let mut m = Reference {
            policy: Policy::of(proto),
            world: world.clone(),
            fns: vec![FnPicture::default(); n],
            loaded: vec![false; world.modules.len()],
            tracers: vec![TracerPicture::default(); world.tracers as usize],
            programs: 0,
            layout: OpsLayout {
                functions: world.functions,
                tracers: world.tracers,
                bpf_direct_ops: proto.bpf_direct_api
                    == ftsim_core::protocol::BpfDirectApi::SharedOps,
            },
            seen: Vec::new(),
        };
        m.seen = world
            .fns()
            .map(|f| m.loaded_fn(f).then(Seen::nothing))
            .collect();
        m
    }

    fn pic(&self, f: FnId) -> &FnPicture {
        &self.fns[f.0 as usize]
    }

    fn pic_mut(&mut self, f: FnId) -> &mut FnPicture {
        &mut self.fns[f.0 as usize]
    }

    /// f's text is loaded: built in, or its module is loaded.
    pub fn loaded_fn(&self, f: FnId) -> bool {
        match self.world.module_of(f) {
            None => true,
            Some(m) => self.loaded[m.0 as usize],
        }
    }

    /// The IPMODIFY owners of f.
    pub fn ipmodify_owners(&self, f: FnId) -> Vec<OpsOwner> {
        let p = self.pic(f);
        let mut v = Vec::new();
        if p.klp > 0 && self.loaded_fn(f) {
            v.push(OpsOwner::Klp(f));
        }
        if p.kprobes > 0 {
            v.push(OpsOwner::Kprobe);
        }
        v
    }

    /// Why a newcomer of the given kind conflicts with f's owners under the policy, if it does.
    fn conflict(&self, f: FnId, newcomer: Newcomer) -> Option<String> {
        let p = self.pic(f);
        let ipm = self.ipmodify_owners(f);
        let excl = self.policy.exclusive;
        let why = match newcomer {
            Newcomer::Ipmodify if !ipm.is_empty() => {
                format!("{f} already has an IPMODIFY owner ({})", ipm[0])
            }
            Newcomer::Ipmodify if p.direct_user => {
                format!("{f} has a direct user, which cannot share (no owner callback)")
            }
            Newcomer::Ipmodify if excl && !p.links.is_empty() => {
                format!("{f} has a BPF trampoline (exclusive policy)")
            }
            Newcomer::Bpf if p.direct_user => {
                format!("{f} has a direct user (one direct owner per function)")
            }
            Newcomer::Bpf if excl && !ipm.is_empty() => {
                format!("{f} has an IPMODIFY owner, {} (exclusive policy)", ipm[0])
            }
            Newcomer::DirectUser if !p.links.is_empty() => {
                format!("{f} has a BPF trampoline (one direct owner per function)")
            }
            Newcomer::DirectUser if !ipm.is_empty() => format!(
                "{f} has an IPMODIFY owner, {}; a direct user cannot share",
                ipm[0]
            ),
            _ => return None,
        };
        Some(why)
    }

    fn conflict_or_ok(&self, f: FnId, newcomer: Newcomer) -> Allowed {
        match self.conflict(f, newcomer) {
            Some(why) => Allowed::Refused {
                errnos: &[Errno::EBUSY],
                conflict: Some(why),
            },
            None => Allowed::Ok,
        }
    }

    /// The outcomes the policy allows for `op` in the current picture (no faults, no contention).
    pub fn predict(&self, op: &Op) -> Allowed {
        use Errno::*;
        match op {
            Op::KlpEnable(f) if self.pic(*f).klp > 0 || !self.loaded_fn(*f) => Allowed::Ok,
            Op::KlpEnable(f) => self.conflict_or_ok(*f, Newcomer::Ipmodify),
            Op::KlpDisable(f) if self.pic(*f).klp == 0 => invalid(&[EINVAL]),
            Op::KlpDisable(_) => Allowed::Ok,
            Op::BpfLink(_, f) if !self.loaded_fn(*f) => invalid(&[ENOENT]),
            Op::BpfLink(_, f) if self.pic(*f).links.len() >= BPF_LINKS_MAX => invalid(&[E2BIG]),
            Op::BpfLink(_, f) if !self.pic(*f).links.is_empty() => Allowed::Ok,
            Op::BpfLink(_, f) => self.conflict_or_ok(*f, Newcomer::Bpf),
            Op::BpfUnlink(k, f) if !self.pic(*f).links.iter().any(|l| l.0 == *k) => {
                invalid(&[ENOENT])
            }
            Op::BpfUnlink(..) => Allowed::Ok,
            Op::KprobeArm(f) if !self.loaded_fn(*f) => invalid(&[ENOENT]),
            Op::KprobeArm(f) if self.pic(*f).kprobes > 0 => Allowed::Ok,
            Op::KprobeArm(f) => self.conflict_or_ok(*f, Newcomer::Ipmodify),
            Op::KprobeDisarm(f) if self.pic(*f).kprobes == 0 => invalid(&[ENOENT]),
            Op::KprobeDisarm(_) => Allowed::Ok,
            Op::TracerRegister { tracer, .. } if self.tracer(*tracer).registered => {
                invalid(&[EBUSY])
            }
            Op::TracerRegister {
                filter, notrace, ..
            } if filter.iter().chain(notrace).any(|f| !self.loaded_fn(*f)) => invalid(&[EINVAL]),
            Op::TracerRegister { .. } => Allowed::Ok,
            Op::TracerSet { func, .. } if !self.loaded_fn(*func) => invalid(&[EINVAL]),
            // Tracers edit their hashes through the tracefs files: removing an absent function
            // changes nothing and succeeds (`enter_record`).
            Op::TracerSet { .. } => Allowed::Ok,
            Op::TracerUnregister(t) if !self.tracer(*t).registered => invalid(&[ENOENT]),
            Op::TracerUnregister(_) => Allowed::Ok,
            Op::DirectRegister(_) | Op::DirectModify(_) | Op::DirectUnregister(_)
                if !self.policy.single_direct_api =>
            {
                invalid(&[ENODEV])
            }
            Op::DirectRegister(f) if self.pic(*f).direct_user => invalid(&[EBUSY]),
            // The sample names its target by symbol: not while the module is not live.
            Op::DirectRegister(f) if !self.loaded_fn(*f) => invalid(&[ENODEV]),
            Op::DirectRegister(f) => self.conflict_or_ok(*f, Newcomer::DirectUser),
            Op::DirectModify(f) | Op::DirectUnregister(f) if !self.pic(*f).direct_user => {
                invalid(&[ENOENT])
            }
            Op::DirectModify(_) | Op::DirectUnregister(_) => Allowed::Ok,
            Op::ModuleLoad(m) if self.loaded[m.0 as usize] => invalid(&[EBUSY]),
            Op::ModuleLoad(_) => Allowed::Ok,
            Op::ModuleUnload(m) if !self.loaded[m.0 as usize] => invalid(&[ENOENT]),
            Op::ModuleUnload(m) if self.pinned(*m) => invalid(&[EBUSY]),
            Op::ModuleUnload(_) => Allowed::Ok,
        }
    }

    fn tracer(&self, t: TracerId) -> &TracerPicture {
        &self.tracers[t.0 as usize]
    }

    fn module_fns(&self, m: ModId) -> Vec<FnId> {
        self.world.modules[m.0 as usize].clone()
    }

    /// A BPF trampoline or a direct user holds one of the module's functions.
    fn pinned(&self, m: ModId) -> bool {
        self.module_fns(m)
            .into_iter()
            .any(|f| !self.pic(f).links.is_empty() || self.pic(f).direct_user)
    }

    /// Applies the effect of a successful `op`.
    fn apply_ok(&mut self, op: &Op) {
        match op {
            Op::KlpEnable(f) => self.pic_mut(*f).klp += 1,
            Op::KlpDisable(f) => self.pic_mut(*f).klp = self.pic(*f).klp.saturating_sub(1),
            Op::BpfLink(k, f) => {
                let prog = ProgId(self.programs);
                self.pic_mut(*f).links.push((*k, prog));
            }
            Op::BpfUnlink(k, f) => self.unlink_oldest(*k, *f),
            Op::KprobeArm(f) => self.pic_mut(*f).kprobes += 1,
            Op::KprobeDisarm(f) => {
                self.pic_mut(*f).kprobes = self.pic(*f).kprobes.saturating_sub(1)
            }
            Op::TracerRegister {
                tracer,
                filter,
                notrace,
            } => {
                let entries = |v: &[FnId]| {
                    let mut e: Vec<HashEntry> = v.iter().map(|f| HashEntry::Live(*f)).collect();
                    e.sort();
                    e
                };
                self.tracers[tracer.0 as usize] = TracerPicture {
                    registered: true,
                    filter: entries(filter),
                    notrace: entries(notrace),
                };
            }
            Op::TracerSet {
                tracer,
                which,
                add,
                func,
            } => {
                let h = self.tracers[tracer.0 as usize].hash_mut(*which);
                let e = HashEntry::Live(*func);
                if *add {
                    // tracefs: a function already in the hash is not added twice
                    if !h.contains(&e) {
                        h.push(e);
                        h.sort();
                    }
                } else if let Some(i) = h.iter().position(|x| *x == e) {
                    h.remove(i);
                }
            }
            Op::TracerUnregister(t) => self.tracers[t.0 as usize].registered = false,
            Op::DirectRegister(f) => self.pic_mut(*f).direct_user = true,
            Op::DirectModify(_) => {}
            Op::DirectUnregister(f) => self.pic_mut(*f).direct_user = false,
            Op::ModuleLoad(m) => self.loaded[m.0 as usize] = true,
            Op::ModuleUnload(m) => {
                self.loaded[m.0 as usize] = false;
                for f in self.module_fns(*m) {
                    self.pic_mut(f).kprobes = 0;
                }
                self.kill_entries(*m);
            }
        }
    }

    fn unlink_oldest(&mut self, k: ProgKind, f: FnId) {
        let links = &mut self.pic_mut(f).links;
        if let Some(i) = links.iter().position(|l| l.0 == k) {
            links.remove(i);
        }
    }

    /// `clear_mod_from_hashes`: the first entry for each function of the module dies in each
    /// tracer's hashes; other entries match again when the module reloads (same addresses).
    fn kill_entries(&mut self, m: ModId) {
        for f in self.module_fns(m) {
            for t in &mut self.tracers {
                for h in [&mut t.filter, &mut t.notrace] {
                    if let Some(i) = h.iter().position(|x| *x == HashEntry::Live(f)) {
                        h[i] = HashEntry::Dead;
                        h.sort();
                    }
                }
            }
        }
    }

    /// Applies what a failed `op` leaves behind at owner level (see the module docs): a release
    /// past its owner-level checks has let go whatever ftrace answered.
    fn apply_failed(&mut self, op: &Op, allowed: &Allowed) {
        if *allowed != Allowed::Ok {
            return;
        }
        match op {
            Op::KlpDisable(_)
            | Op::BpfUnlink(..)
            | Op::KprobeDisarm(_)
            | Op::TracerUnregister(_)
            | Op::DirectUnregister(_) => self.apply_ok(op),
            _ => {}
        }
    }

    /// What a call of f must execute; `None` when f's text is not loaded.
    pub fn expect(&self, f: FnId) -> Option<ExpectedCall> {
        if !self.loaded_fn(f) {
            return None;
        }
        let p = self.pic(f);
        let ipmodify = self.ipmodify_owners(f);
        let mut callbacks = ipmodify.clone();
        for (i, t) in self.tracers.iter().enumerate() {
            if t.references(f) {
                callbacks.push(OpsOwner::Tracer(TracerId(i as u8)));
            }
        }
        callbacks.sort();
        let progs = p.links.iter().map(|l| l.1).collect();
        Some(ExpectedCall {
            ipmodify,
            callbacks,
            progs,
            sample: p.direct_user,
        })
    }

    /// The reference transition: applies `op` as the policy predicts it (its effect when the
    /// policy allows it, nothing otherwise) and returns the prediction. For generators and
    /// reference state machines; judging the core uses [`Reference::step`].
    pub fn apply(&mut self, op: &Op) -> Allowed {
        let allowed = self.predict(op);
        if self.loads_program(op) {
            self.programs += 1;
        }
        if allowed == Allowed::Ok {
            self.apply_ok(op);
        }
        allowed
    }

    /// A `bpf-link` loads a program once f is live and has room (its owner-level checks).
    fn loads_program(&self, op: &Op) -> bool {
        match op {
            Op::BpfLink(_, f) => self.loaded_fn(*f) && self.pic(*f).links.len() < BPF_LINKS_MAX,
            _ => false,
        }
    }
}

/// The kinds of newcomer the conflict table distinguishes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Newcomer {
    Ipmodify,
    Bpf,
    DirectUser,
}

/// Direct ops show up in a call's callback list as part of the direct path (and stubs not at
/// all); the oracle judges them by the trampoline the call reaches instead.
fn names(errnos: &[Errno]) -> String {
    let v: Vec<&str> = errnos.iter().map(|e| e.name()).collect();
    v.join("/")
}

impl fmt::Display for Allowed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Allowed::Ok => write!(f, "ok"),
            Allowed::Refused {
                errnos,
                conflict: Some(why),
            } => write!(f, "-{} ({why})", names(errnos)),
            Allowed::Refused {
                errnos,
                conflict: None,
            } => write!(f, "-{}", names(errnos)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ftsim_core::protocol::{PRESETS, SWITCHES};

    /// The oracle reads the promise, not how the code keeps it: no switch but `policy` changes
    /// its policy, and `single_direct_api` only by whether the `direct-*` operations exist.
    #[test]
    fn policy_reads_no_implementation_switch() {
        for (name, _) in PRESETS {
            let base = Protocol::preset(name).unwrap();
            for sw in SWITCHES.iter().filter(|s| s.name != "policy") {
                for v in sw.values {
                    let mut p = base;
                    p.set(sw.name, v).unwrap();
                    if sw.name == "single_direct_api"
                        && (*v == "absent") != (base.single_direct_api == SingleDirectApi::Absent)
                    {
                        continue;
                    }
                    assert_eq!(
                        Policy::of(&p),
                        Policy::of(&base),
                        "{name} with {}={v}: the oracle's policy changed",
                        sw.name
                    );
                }
            }
            let mut p = base;
            p.set("policy", "exclusive").unwrap();
            assert!(Policy::of(&p).exclusive, "{name}");
            p.set("policy", "shared").unwrap();
            assert!(!Policy::of(&p).exclusive, "{name}");
        }
    }
}
