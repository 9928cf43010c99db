//! The reference oracle (issue 3): what the design *promises*, independent of the model.
//!
//! The core copies each version's code; this module says what the policy of SPEC §4 promises a
//! user of the owner-level operations (SPEC §7, the table in [`crate::op`]). Where the two
//! disagree, either the code has a flaw or the promise was never kept.
//!
//! # Independence
//!
//! The prediction side ([`Model`], [`Model::predict`], [`Model::expect`]) uses only `op`, `ids`,
//! `world`, `errno`, `property`, and from `protocol` only the *promise*: the `policy` switch
//! (exclusive or shared, SPEC §4), which no part of the model reads, and which operations exist
//! (the single-ip direct API is there or not, SPEC §7: its `direct-*` operations). It reads no
//! switch that says how the code keeps the promise, and never looks at records, hashes, the ops
//! list, flags, the kernel state or frames.
//! The comparison side ([`Model::step`]) reads the core's two observation types, the [`Outcome`]
//! of an operation and the [`Call`] of each function, and nothing else.
//!
//! # The abstract picture
//!
//! Per function: the livepatch stack (applied while the function's text is loaded, *pending*
//! otherwise), the linked BPF programs by kind (oldest first), the number of IPMODIFY kprobes
//! armed, and whether a single-ip direct user is registered. Per module: loaded or not. Per
//! tracer: registered or not, and its filter and notrace multisets. When a module unloads, the
//! first entry for each of its functions in each hash dies (it matches nothing, but keeps a
//! filter non-empty); further entries match the function again when the module reloads at the
//! same addresses (the owner-level table of [`crate::op`]). BPF programs are numbered `prog1`,
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
//! owner-level table of [`crate::op`]. An operation the policy allows must succeed; it may fail
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

use crate::errno::Errno;
use crate::ids::{Addr, FnId, ModId, OpsId, OpsLayout, OpsOwner, ProgId, ProgKind, TracerId};
use crate::observe::{Body, Call, Tramp};
use crate::op::{HashSel, Op};
use crate::property::{Property, Violation};
use crate::protocol::{Protocol, SharingPolicy, SingleDirectApi};
use crate::step::Outcome;
use crate::world::World;
use std::fmt;

/// Most programs one trampoline takes (owner-level, [`crate::op`]: `E2BIG` at 38 links).
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
pub enum Entry {
    Live(FnId),
    Dead,
}

/// A tracer: registered or not, and its hashes as sorted multisets.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TracerPicture {
    pub registered: bool,
    pub filter: Vec<Entry>,
    pub notrace: Vec<Entry>,
}

impl TracerPicture {
    /// Registered, f in the filter (or the filter empty: every function), f not in notrace.
    pub fn references(&self, f: FnId) -> bool {
        let e = Entry::Live(f);
        self.registered
            && (self.filter.is_empty() || self.filter.contains(&e))
            && !self.notrace.contains(&e)
    }

    fn hash_mut(&mut self, which: HashSel) -> &mut Vec<Entry> {
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
    /// when the owner itself refuses it (owner-level table of [`crate::op`]).
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
pub struct Expect {
    /// IPMODIFY owners; the body must be redirected by one of them iff non-empty.
    pub ipmodify: Vec<OpsOwner>,
    /// Owners whose callback must run (IPMODIFY owners and referencing tracers).
    pub callbacks: Vec<OpsOwner>,
    /// Programs that must run.
    pub progs: Vec<ProgId>,
    /// The direct user's trampoline must be reached.
    pub sample: bool,
}

/// What a call executes in owner terms, without addresses, serials and image flags: judged
/// against [`Expect`], and compared across a failed operation.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Seen {
    /// Callbacks of owners other than direct ones.
    callbacks: Vec<OpsOwner>,
    tramp: Option<Entered>,
    /// The owner whose redirect the body is; `None` for the original body or garbage.
    body: Option<OpsOwner>,
}

/// The trampoline a call enters.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Entered {
    /// A live image of the BPF trampoline of a function, with its programs (sorted).
    Image(FnId, Vec<ProgId>),
    /// The live trampoline of the direct user of a function.
    Sample(FnId),
    /// A freed image, or the trampoline of a user that went away.
    Freed,
}

/// The abstract picture plus the policy.
#[derive(Clone, Debug)]
pub struct Model {
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

impl Model {
    /// The initial picture: no owners, modules unloaded, tracers unregistered with empty hashes.
    pub fn new(world: &World, proto: &Protocol) -> Model {
        let n = world.functions as usize;
        let mut m = Model {
            policy: Policy::of(proto),
            world: world.clone(),
            fns: vec![FnPicture::default(); n],
            loaded: vec![false; world.modules.len()],
            tracers: vec![TracerPicture::default(); world.tracers as usize],
            programs: 0,
            layout: OpsLayout {
                functions: world.functions,
                tracers: world.tracers,
                bpf_direct_ops: proto.bpf_direct_api == crate::protocol::BpfDirectApi::SharedOps,
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
                    let mut e: Vec<Entry> = v.iter().map(|f| Entry::Live(*f)).collect();
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
                let e = Entry::Live(*func);
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
                    if let Some(i) = h.iter().position(|x| *x == Entry::Live(f)) {
                        h[i] = Entry::Dead;
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
    pub fn expect(&self, f: FnId) -> Option<Expect> {
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
        Some(Expect {
            ipmodify,
            callbacks,
            progs,
            sample: p.direct_user,
        })
    }

    /// The reference transition: applies `op` as the policy predicts it (its effect when the
    /// policy allows it, nothing otherwise) and returns the prediction. For generators and
    /// reference state machines; judging the core uses [`Model::step`].
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

    /// Compares the core's outcome of `op` and the calls of every function after it (indexed by
    /// function) with the policy, follows the core's result (module docs), and returns the
    /// violated properties. A stuck outcome is not judged (the core reported why).
    pub fn step(&mut self, op: &Op, out: &Outcome, calls: &[Option<Call>]) -> Vec<Violation> {
        assert_eq!(
            calls.len(),
            self.fns.len(),
            "[oracle] one call per function"
        );
        let mut v = Vec::new();
        if out.stuck {
            return v;
        }
        let allowed = self.predict(op);
        self.judge_result(op, out, &allowed, &mut v);
        let before = self.clone_picture();
        if self.loads_program(op) {
            self.programs += 1;
        }
        match out.result {
            Ok(()) => self.apply_ok(op),
            Err(e) => {
                self.apply_failed(op, &allowed);
                if self.clone_picture() != before {
                    v.push(Violation::new(
                        Property::Atomicity,
                        op.func(),
                        format!("`{op}` failed with {e} but {}", self.leftover(op)),
                    ));
                }
            }
        }
        for f in self.world.fns() {
            let call = calls[f.0 as usize].as_ref();
            let seen = call.map(|c| self.seen_of(c));
            if out.result.is_err() && seen != self.seen[f.0 as usize] {
                let now = call.map_or("no text".to_string(), |c| self.show(c));
                v.push(Violation::new(
                    Property::Atomicity,
                    Some(f),
                    format!("`{op}` failed but a call of {f} changed: now {now}"),
                ));
            }
            self.seen[f.0 as usize] = seen;
            self.judge_call(f, call, &mut v);
        }
        v
    }

    /// A `bpf-link` loads a program once f is live and has room (its owner-level checks).
    fn loads_program(&self, op: &Op) -> bool {
        match op {
            Op::BpfLink(_, f) => self.loaded_fn(*f) && self.pic(*f).links.len() < BPF_LINKS_MAX,
            _ => false,
        }
    }

    fn clone_picture(&self) -> (Vec<FnPicture>, Vec<bool>, Vec<TracerPicture>) {
        (self.fns.clone(), self.loaded.clone(), self.tracers.clone())
    }

    fn leftover(&self, _op: &Op) -> &'static str {
        "its owner let go all the same"
    }

    fn judge_result(&self, op: &Op, out: &Outcome, allowed: &Allowed, v: &mut Vec<Violation>) {
        let f = op.func();
        let excused = |e: Errno| {
            (out.contended && e == Errno::EAGAIN)
                || (out.faulted && matches!(e, Errno::ENOMEM | Errno::E2BIG))
        };
        match (allowed, out.result) {
            (Allowed::Ok, Ok(())) => {}
            (Allowed::Ok, Err(e)) if excused(e) => {}
            (Allowed::Ok, Err(e)) => v.push(Violation::new(
                Property::Availability,
                f,
                format!(
                    "`{op}` failed with {e}, but the {} policy allows it{}",
                    self.policy.name(),
                    self.excuse_note(out)
                ),
            )),
            (
                Allowed::Refused {
                    conflict: Some(why),
                    ..
                },
                Ok(()),
            ) => v.push(Violation::new(
                Property::Exclusivity,
                f,
                format!(
                    "`{op}` succeeded, but the {} policy refuses it: {why}",
                    self.policy.name()
                ),
            )),
            (
                Allowed::Refused {
                    conflict: None,
                    errnos,
                },
                Ok(()),
            ) => v.push(Violation::new(
                Property::Accounting,
                f,
                format!(
                    "`{op}` succeeded, but its owner refuses it with {}",
                    names(errnos)
                ),
            )),
            (Allowed::Refused { errnos, .. }, Err(e)) if errnos.contains(&e) || excused(e) => {}
            (Allowed::Refused { errnos, conflict }, Err(e)) => v.push(Violation::new(
                Property::Accounting,
                f,
                format!(
                    "`{op}` was refused with {e}, but {} refuses it with {}{}",
                    if conflict.is_some() {
                        "the policy"
                    } else {
                        "its owner"
                    },
                    names(errnos),
                    self.excuse_note(out)
                ),
            )),
        }
    }

    fn excuse_note(&self, out: &Outcome) -> &'static str {
        match (out.contended, out.faulted) {
            (false, false) => " (no contention, no fault)",
            (true, false) => " (contention explains only EAGAIN)",
            (false, true) => " (a fault explains only ENOMEM and E2BIG)",
            (true, true) => " (contention and faults explain only EAGAIN, ENOMEM and E2BIG)",
        }
    }

    fn owner(&self, id: OpsId) -> OpsOwner {
        self.layout.owner(id)
    }

    fn seen_of(&self, c: &Call) -> Seen {
        let mut callbacks: Vec<OpsOwner> = c
            .callbacks
            .iter()
            .map(|o| self.owner(*o))
            .filter(|o| !is_direct_owner(*o))
            .collect();
        callbacks.sort();
        let tramp = c.tramp.as_ref().map(|t| match t {
            Tramp::Image {
                addr: Addr::Image { tr, .. },
                progs,
                ..
            } => {
                let mut p = progs.to_vec();
                p.sort();
                Entered::Image(*tr, p)
            }
            Tramp::Sample {
                addr: Addr::Sample { f, .. },
            } => Entered::Sample(*f),
            _ => Entered::Freed,
        });
        let body = match c.body {
            Body::Redirected(o) => Some(self.owner(o)),
            _ => None,
        };
        Seen {
            callbacks,
            tramp,
            body,
        }
    }

    /// Judges one call of f against [`Model::expect`].
    fn judge_call(&self, f: FnId, call: Option<&Call>, v: &mut Vec<Violation>) {
        let mut out = |p, d: String| v.push(Violation::new(p, Some(f), d));
        let (want, c) = match (self.expect(f), call) {
            (None, None) => return,
            (Some(_), None) => {
                return out(
                    Property::Accounting,
                    format!("{f} is loaded but has no live text"),
                )
            }
            (None, Some(_)) => {
                return out(
                    Property::Accounting,
                    format!("{f} is not loaded but has live text"),
                )
            }
            (Some(w), Some(c)) => (w, c),
        };
        // Rendered only when a violation is reported.
        let shown = Shown(self, c);
        let s = self.seen_of(c);
        // ipmodify-honoured, and no redirect without an IPMODIFY owner.
        match s.body {
            Some(o) if want.ipmodify.contains(&o) => {}
            Some(o) if want.ipmodify.is_empty() => out(
                Property::Accounting,
                format!("{o} redirects the call but holds no IPMODIFY claim on {f}: {shown}"),
            ),
            _ if !want.ipmodify.is_empty() => out(
                Property::IpmodifyHonoured,
                format!(
                    "{} holds {f} but the call does not end in its target: {shown}",
                    want.ipmodify[0]
                ),
            ),
            _ => {}
        }
        // no-lost-program, and no program that is not linked.
        let ran: Vec<ProgId> = match &s.tramp {
            Some(Entered::Image(tr, progs)) if *tr == f => progs.clone(),
            _ => Vec::new(),
        };
        let lost: Vec<String> = want
            .progs
            .iter()
            .filter(|p| !ran.contains(p))
            .map(|p| p.to_string())
            .collect();
        if !lost.is_empty() {
            out(
                Property::NoLostProgram,
                format!("{} linked to {f} but not run: {shown}", lost.join(", ")),
            );
        }
        let extra: Vec<String> = ran
            .iter()
            .filter(|p| !want.progs.contains(p))
            .map(|p| p.to_string())
            .collect();
        if !extra.is_empty() {
            out(
                Property::Accounting,
                format!("{} not linked to {f} but run: {shown}", extra.join(", ")),
            );
        }
        // no-lost-callback, and no callback of an owner that does not hold f.
        for o in want.callbacks.iter().filter(|o| !s.callbacks.contains(o)) {
            out(
                Property::NoLostCallback,
                format!("{o} holds {f} but gets no callback: {shown}"),
            );
        }
        for o in s.callbacks.iter().filter(|o| !want.callbacks.contains(o)) {
            out(
                Property::Accounting,
                format!("{o} does not hold {f} but gets a callback: {shown}"),
            );
        }
        if want.sample && s.tramp != Some(Entered::Sample(f)) {
            out(
                Property::NoLostCallback,
                format!("the direct user of {f} does not get its trampoline reached: {shown}"),
            );
        }
        // No trampoline but the direct owner's (a freed one where a direct owner holds f is
        // already a lost program or callback).
        let direct_owner = want.sample || !want.progs.is_empty();
        let owned = match &s.tramp {
            None => true,
            Some(Entered::Image(tr, _)) => *tr == f && !want.progs.is_empty(),
            Some(Entered::Sample(g)) => *g == f && want.sample,
            Some(Entered::Freed) => direct_owner,
        };
        if !owned {
            out(
                Property::Accounting,
                format!("the call enters a trampoline no direct owner of {f} holds: {shown}"),
            );
        }
    }

    /// A one-line rendering of a call in owner terms.
    fn show(&self, c: &Call) -> String {
        let cbs: Vec<String> = c
            .callbacks
            .iter()
            .map(|o| self.owner(*o).to_string())
            .collect();
        let mut s = format!("[{}]", cbs.join(", "));
        match &c.tramp {
            Some(Tramp::Image {
                addr,
                call_orig,
                orig_stack,
                progs,
            }) => {
                let p: Vec<String> = progs.iter().map(|p| p.to_string()).collect();
                let fl = match (call_orig, orig_stack) {
                    (true, true) => "CALL_ORIG|ORIG_STACK",
                    (true, false) => "CALL_ORIG",
                    (false, true) => "ORIG_STACK",
                    (false, false) => "0",
                };
                s += &format!(" -> {addr} ({fl}; {})", p.join(","));
            }
            Some(Tramp::Sample { addr }) => s += &format!(" -> {addr}"),
            Some(Tramp::Freed { addr }) => s += &format!(" -> {addr} (freed)"),
            None => {}
        }
        match c.body {
            Body::Original => s += " -> original body",
            Body::Redirected(o) => s += &format!(" -> target of {}", self.owner(o)),
            Body::Freed => s += " -> garbage",
        }
        s
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
fn is_direct_owner(o: OpsOwner) -> bool {
    matches!(
        o,
        OpsOwner::Bpf(_)
            | OpsOwner::BpfDirectOps
            | OpsOwner::DirectSingle
            | OpsOwner::StubMulti
            | OpsOwner::StubSingle
    )
}

impl Seen {
    fn nothing() -> Seen {
        Seen {
            callbacks: Vec::new(),
            tramp: None,
            body: None,
        }
    }
}

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

/// A call rendered in owner terms when displayed.
struct Shown<'a>(&'a Model, &'a Call);

impl std::fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.show(self.1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{PRESETS, SWITCHES};

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
