//! The property checks of SPEC §3 over a quiescent state (no operation in flight), plus the
//! footprint that decides whether a failed operation left a trace (SPEC §3.6).

use crate::observe::{call_among, Body, Call, Show};
use ftsim_core::ids::{Addr, FnId, OpsId, OpsOwner};
use ftsim_core::kernel::{fl, CallSite, Kernel};
use ftsim_core::property::{Property, Violation};
use ftsim_core::protocol::{BpfShareState, DirectMeetsIpmodify};
use smallvec::SmallVec;

pub use ftsim_core::footprint::{footprint, footprint_into, Footprint};

/// The registered ops whose hashes select each function, in list order: one pass over the ops
/// list instead of one per function. Inline up to eight functions (no allocation per check).
type Index = SmallVec<[SmallVec<[OpsId; 4]>; 8]>;

/// For every function, the registered ops whose hashes select it, in list order.
fn index(k: &Kernel) -> Index {
    let n = k.fns.len();
    let mut per_fn = Index::new();
    for _ in 0..n {
        per_fn.push(SmallVec::new());
    }
    for &op in &k.ops_list {
        let filter = k.filter(op);
        if filter.is_empty() {
            for (f, list) in per_fn.iter_mut().enumerate() {
                if k.hash_selects(op, FnId(f as u16)) {
                    list.push(op);
                }
            }
        } else {
            for f in filter.ips() {
                if k.hash_selects(op, f) {
                    per_fn[f.0 as usize].push(op);
                }
            }
        }
    }
    per_fn
}

/// The trampoline address a direct ops is supposed to send calls of `f` to, per its owner.
fn intended_addr(k: &Kernel, op: OpsId, f: FnId) -> Option<Addr> {
    match k.owner(op) {
        OpsOwner::Bpf(g) => k.tr(g).cur_image.as_ref().map(|im| Addr::Image {
            tr: g,
            serial: im.serial,
        }),
        // BPF's shared direct_ops (mainline 2026): the current image of f's own trampoline.
        OpsOwner::BpfDirectOps => k.tr(f).cur_image.as_ref().map(|im| Addr::Image {
            tr: f,
            serial: im.serial,
        }),
        // The shared single-ip direct_ops: a direct user's trampoline, or (pre) the BPF trampoline.
        OpsOwner::DirectSingle => k.fstate(f).direct_user.or_else(|| {
            let bpf_single = k.proto.bpf_direct_api == ftsim_core::protocol::BpfDirectApi::Single;
            let im = k.tr(f).cur_image.as_ref().filter(|_| bpf_single);
            im.map(|im| Addr::Image {
                tr: f,
                serial: im.serial,
            })
        }),
        _ => None,
    }
}

/// Whether the IPMODIFY accounting counts `op` as IPMODIFY.
fn accounted_ipmodify(k: &Kernel, op: OpsId) -> bool {
    let o = k.op(op);
    o.has(fl::IPMODIFY)
        && !(o.has(fl::DIRECT) && k.proto.direct_meets_ipmodify == DirectMeetsIpmodify::SelfCmd)
}

/// Every violated property in a quiescent state, by function, each with a one-line explanation.
pub fn check(k: &Kernel) -> Vec<Violation> {
    let mut out = Vec::new();
    let idx = index(k);
    for f in (0..k.fns.len() as u16).map(FnId) {
        check_fn(k, f, &idx[f.0 as usize], &mut out);
    }
    check_global(k, &mut out);
    out
}

fn check_fn(k: &Kernel, f: FnId, selecting: &[OpsId], out: &mut Vec<Violation>) {
    if at_rest(k, f, selecting) {
        return;
    }
    let Some(c) = FnCheck::new(k, f, selecting) else {
        return;
    };
    c.ipmodify_honoured(out);
    c.no_lost_program(out);
    c.no_lost_callback(out);
    c.exclusivity(out);
    c.accounting(out);
    c.no_stale_direct_entry(out);
    c.share_leak(out);
}

/// A function nothing is on: no registered ops selects it, its trampoline has no image, no
/// direct_functions entry names it and its record is at rest (count 0, no flag, a nop call site).
/// No check of [`FnCheck`] can fire there: each needs a referencing ops, an image, an entry or a
/// record that disagrees with no ops (the accounting wants exactly this record), so the call is
/// not traced. Most functions of most states are so (one operation touches one or two).
fn at_rest(k: &Kernel, f: FnId, selecting: &[OpsId]) -> bool {
    let st = k.fstate(f);
    let rec = &st.rec;
    selecting.is_empty()
        && st.tr.cur_image.is_none()
        && rec.count == 0
        && !rec.ipmodify
        && !rec.direct
        && rec.site == CallSite::Nop
        && k.direct_functions.all_for(f).next().is_none()
}

/// What the checks of one function look at: a call of it, and the enabled ops that reference it
/// (all, the IPMODIFY ones that are not direct or stubs, the direct ones), in list order.
struct FnCheck<'a> {
    k: &'a Kernel,
    f: FnId,
    c: Call,
    refs: SmallVec<[OpsId; 4]>,
    ipm: SmallVec<[OpsId; 2]>,
    dir: SmallVec<[OpsId; 2]>,
}

impl<'a> FnCheck<'a> {
    /// `None` when the function has no text to call.
    fn new(k: &'a Kernel, f: FnId, selecting: &[OpsId]) -> Option<Self> {
        let c = call_among(k, f, selecting.iter().copied())?;
        // One pass, each list in list order (pushes, not collects: this runs per state).
        let mut refs = SmallVec::new();
        let mut ipm = SmallVec::new();
        let mut dir = SmallVec::new();
        for &o in selecting {
            if !k.references(o, f) {
                continue;
            }
            refs.push(o);
            let op = k.op(o);
            if op.has(fl::IPMODIFY) && !op.has(fl::DIRECT) && !op.has(fl::STUB) {
                ipm.push(o);
            }
            if op.has(fl::DIRECT) {
                dir.push(o);
            }
        }
        Some(FnCheck {
            k,
            f,
            c,
            refs,
            ipm,
            dir,
        })
    }

    fn v(&self, p: Property, d: String) -> Violation {
        Violation::new(p, Some(self.f), d)
    }

    fn show(&self) -> Show<'_> {
        Show(self.k, &self.c)
    }

    /// IPMODIFY honoured (1): an enabled IPMODIFY ops and the call ends in a redirected body.
    fn ipmodify_honoured(&self, out: &mut Vec<Violation>) {
        if let Some(&o) = self.ipm.first() {
            if !matches!(self.c.body, Body::Redirected(_)) {
                out.push(self.v(
                    Property::IpmodifyHonoured,
                    format!(
                        "{} is enabled but the call runs {}",
                        self.k.owner(o),
                        self.show()
                    ),
                ));
            }
        }
    }

    /// No lost program (2): every linked program of an installed trampoline runs.
    fn no_lost_program(&self, out: &mut Vec<Violation>) {
        let tr = self.k.tr(self.f);
        if tr.cur_image.is_none() {
            return;
        }
        let lost: Vec<String> = tr
            .links
            .iter()
            .filter(|(_, p)| !self.c.progs().contains(p))
            .map(|(kind, p)| format!("{p} ({kind})"))
            .collect();
        if !lost.is_empty() {
            out.push(self.v(
                Property::NoLostProgram,
                format!("{} linked but not run: {}", lost.join(", "), self.show()),
            ));
        }
    }

    /// No lost callback (3): every referencing ops' callback runs, every direct ops' trampoline
    /// is reached.
    fn no_lost_callback(&self, out: &mut Vec<Violation>) {
        let (k, f, c) = (self.k, self.f, &self.c);
        for &o in &self.refs {
            let op = k.op(o);
            if op.has(fl::STUB) {
                continue;
            }
            if op.has(fl::DIRECT) {
                let Some(want) = intended_addr(k, o, f) else {
                    continue;
                };
                if c.tramp.as_ref().map(|t| t.addr()) != Some(want) {
                    out.push(self.v(
                        Property::NoLostCallback,
                        format!(
                            "{} is enabled but its trampoline {want} is not reached: {}",
                            k.owner(o),
                            self.show()
                        ),
                    ));
                }
            } else if !c.callbacks.contains(&o) {
                out.push(self.v(
                    Property::NoLostCallback,
                    format!(
                        "{} is enabled but its callback does not run: {}",
                        k.owner(o),
                        self.show()
                    ),
                ));
            }
        }
    }

    /// Exclusivity (4): at most one IPMODIFY ops, one direct ops and one trampoline address.
    fn exclusivity(&self, out: &mut Vec<Violation>) {
        let k = self.k;
        if self.ipm.len() > 1 {
            let names: Vec<String> = self.ipm.iter().map(|o| k.owner(*o).to_string()).collect();
            out.push(self.v(
                Property::Exclusivity,
                format!("two IPMODIFY ops enabled: {}", names.join(", ")),
            ));
        }
        if self.dir.len() > 1 {
            let names: Vec<String> = self.dir.iter().map(|o| k.owner(*o).to_string()).collect();
            out.push(self.v(
                Property::Exclusivity,
                format!("two direct ops enabled: {}", names.join(", ")),
            ));
        }
        // The list of addresses only when there are two (the message names them).
        let mut all = k.direct_functions.all_for(self.f).map(|e| e.addr);
        let first = all.next();
        if all.any(|a| Some(a) != first) {
            let mut addrs: SmallVec<[Addr; 2]> =
                k.direct_functions.all_for(self.f).map(|e| e.addr).collect();
            addrs.sort();
            addrs.dedup();
            let names: Vec<String> = addrs.iter().map(|a| a.to_string()).collect();
            out.push(self.v(
                Property::Exclusivity,
                format!(
                    "direct_functions holds {} trampolines: {}",
                    addrs.len(),
                    names.join(", ")
                ),
            ));
        }
    }

    /// Accounting (5): the record's count and flags and the call site follow the enabled ops.
    fn accounting(&self, out: &mut Vec<Violation>) {
        let k = self.k;
        let rec = *k.rec(self.f);
        let want_count = self.refs.len() as u16;
        let want_ipm = self.refs.iter().any(|&o| accounted_ipmodify(k, o));
        let want_dir = !self.dir.is_empty();
        if rec.count != want_count {
            out.push(self.v(
                Property::Accounting,
                format!(
                    "record count is {} but {} enabled ops reference it",
                    rec.count, want_count
                ),
            ));
        }
        if rec.ipmodify != want_ipm {
            out.push(self.v(
                Property::Accounting,
                format!(
                    "record IPMODIFY flag is {} but should be {want_ipm}",
                    rec.ipmodify
                ),
            ));
        }
        if rec.direct != want_dir {
            out.push(self.v(
                Property::Accounting,
                format!(
                    "record DIRECT flag is {} but should be {want_dir}",
                    rec.direct
                ),
            ));
        }
        let want_site = if rec.count == 0 {
            Some(CallSite::Nop)
        } else if rec.count == 1 && rec.direct {
            k.direct_functions.lookup(self.f).map(CallSite::Direct)
        } else {
            Some(CallSite::Caller)
        };
        if let Some(want) = want_site {
            if rec.site != want {
                out.push(self.v(
                    Property::Accounting,
                    format!("call site is {:?} but the record says {:?}", rec.site, want),
                ));
            }
        }
    }

    /// Atomicity as state (6): no stale direct_functions entry.
    fn no_stale_direct_entry(&self, out: &mut Vec<Violation>) {
        let (k, f) = (self.k, self.f);
        for e in k.direct_functions.all_for(f) {
            let owned = self
                .dir
                .iter()
                .any(|&o| intended_addr(k, o, f) == Some(e.addr));
            if !owned {
                out.push(self.v(
                    Property::Atomicity,
                    format!(
                        "direct_functions keeps {f} -> {} that no enabled direct ops owns",
                        e.addr
                    ),
                ));
            }
        }
    }

    /// share-leak: an installed trampoline still sharing with no IPMODIFY ops on the function.
    fn share_leak(&self, out: &mut Vec<Violation>) {
        let k = self.k;
        let tr = k.tr(self.f);
        if tr.cur_image.is_none() || !self.ipm.is_empty() {
            return;
        }
        let fops = k.op(k.bpf_fops(self.f));
        let sharing = match k.proto.bpf_share_state {
            BpfShareState::TrampFlags => tr.flags.share,
            BpfShareState::IndirectBool => tr.indirect_call || fops.has(fl::SHARE_IPMODIFY),
            BpfShareState::None => false,
        };
        if sharing {
            out.push(self.v(
                Property::ShareLeak,
                "the trampoline stays in sharing mode with no IPMODIFY ops on the function".into(),
            ));
        }
    }
}

fn check_global(k: &Kernel, out: &mut Vec<Violation>) {
    // Half-registered ops: callback/trampoline set on a direct ops that is not registered (each
    // ops once: consecutive functions may share one).
    let mut last = None;
    for f in (0..k.fns.len() as u16).map(FnId) {
        let id = k.bpf_fops(f);
        if last == Some(id) {
            continue;
        }
        last = Some(id);
        let o = k.op(id);
        if (o.func_set || o.trampoline_set) && !o.has(fl::ENABLED) {
            // The shared direct_ops (mainline 2026) belongs to no one function.
            let who = (!k.info.layout.bpf_direct_ops).then_some(f);
            out.push(Violation::new(
                Property::Atomicity,
                who,
                format!("{} keeps its callback/trampoline while not registered (a later register gets -EINVAL)", k.owner(id)),
            ));
        }
    }
    // Stale direct_functions entries for functions whose text is gone.
    for e in k.direct_functions.entries() {
        if !k.rec(e.ip).present {
            out.push(Violation::new(
                Property::Atomicity,
                Some(e.ip),
                format!(
                    "direct_functions keeps {} -> {} for a function that is not loaded",
                    e.ip, e.addr
                ),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seq::Sequential;
    use ftsim_core::protocol::Protocol;
    use ftsim_core::world::World;

    /// Whether DIRECT left in the flags of an unregistered ops of `owner` counts as a trace.
    fn flags_left_count(p: Protocol, owner: OpsOwner) -> bool {
        let mut s = Sequential::new(&World::new(1), p);
        let before = footprint(&s.k);
        let id = s.k.id(owner);
        s.k.op_mut(id).flags |= fl::DIRECT;
        footprint(&s.k) != before
    }

    #[test]
    fn only_assigned_flags_are_exempt() {
        let bpf = OpsOwner::Bpf(FnId(0));
        // register_ftrace_direct(_multi) assigns MULTI_FLAGS: leftovers cannot matter.
        for p in [Protocol::MERGED, Protocol::FIXES_2025, Protocol::DEBIAN_6_1] {
            assert!(!flags_left_count(p, bpf), "{p}");
        }
        // v2 or-s DIRECT into the caller's flags: what a failure leaves stays.
        assert!(flags_left_count(Protocol::V2, bpf));
        // No other owner's flags are assigned by ftrace.
        for p in [Protocol::V2, Protocol::FIXES_2025] {
            assert!(flags_left_count(p, OpsOwner::Klp(FnId(0))), "{p}");
        }
    }
}
