//! The comparison side of the oracle: the core's outcome of an operation and the calls of every
//! function after it, judged against the policy's prediction (properties of the module docs).

use super::{names, Allowed, FnPicture, Reference, TracerPicture};
use crate::observe::{Body, Call, Tramp};
use ftsim_core::errno::Errno;
use ftsim_core::ids::{Addr, FnId, OpsId, OpsOwner, ProgId};
use ftsim_core::op::Op;
use ftsim_core::property::{Property, Violation};
use ftsim_core::step::OpResult;

/// What a call executes in owner terms, without addresses, serials and image flags: judged
/// against [`ExpectedCall`], and compared across a failed operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Seen {
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

impl Seen {
    pub(super) fn nothing() -> Seen {
        Seen {
            callbacks: Vec::new(),
            tramp: None,
            body: None,
        }
    }
}

impl Reference {
    /// Compares the core's outcome of `op` and the calls of every function after it (indexed by
    /// function) with the policy, follows the core's result (module docs), and returns the
    /// violated properties. A stuck outcome is not judged (the core reported why).
    pub fn step(&mut self, op: &Op, out: &OpResult, calls: &[Option<Call>]) -> Vec<Violation> {
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

    fn clone_picture(&self) -> (Vec<FnPicture>, Vec<bool>, Vec<TracerPicture>) {
        (self.fns.clone(), self.loaded.clone(), self.tracers.clone())
    }

    fn leftover(&self, _op: &Op) -> &'static str {
        "its owner let go all the same"
    }

    fn judge_result(&self, op: &Op, out: &OpResult, allowed: &Allowed, v: &mut Vec<Violation>) {
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

    fn excuse_note(&self, out: &OpResult) -> &'static str {
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

    /// Judges one call of f against [`Reference::expect`].
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

/// A call rendered in owner terms when displayed.
struct Shown<'a>(&'a Reference, &'a Call);

impl std::fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.show(self.1))
    }
}
