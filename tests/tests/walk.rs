//! The one state walk (`ftsim_core::walk`) and its sinks: every field of the state reaches every
//! projection, unless the projection lists it among the fields it deliberately ignores.
//!
//! For every [`Field`], a mutation of a reachable state (a kernel and the threads beside it) that
//! changes that field (and nothing the walk visits besides it); then each sink's output must
//! change exactly when the field is not in its `IGNORES` list. A new field of `Kernel` or
//! `Thread` (or of a struct they hold) does not compile until the walk visits it; a new [`Field`]
//! does not compile until it has a mutation here.

use ftsim_core::fingerprint::{fingerprint, Fingerprint};
use ftsim_core::footprint::{footprint, FootprintSink};
use ftsim_core::hash::IpHash;
use ftsim_core::ids::{Addr, FnId, OpsOwner, ProgId, ProgKind, TracerId};
use ftsim_core::kernel::{fl, CallSite, Image, Kernel};
use ftsim_core::locks::Lock;
use ftsim_core::machine::Threads;
use ftsim_core::op::Op;
use ftsim_core::protocol::Protocol;
use ftsim_core::step::{Input, Request, Status};
use ftsim_core::walk::{has, EqScope, Field, Fields, Scope, Sink, COUNTERS};
use ftsim_core::world::World;
use ftsim_drive::seq::Sequential;
use ftsim_sim::explore::{Scratch, Symmetry, SIGNATURE_IGNORES};
use ftsim_sim::harness::{snapshot_footprint, snapshot_same, Checked};
use ftsim_tests::observable::{observable, Observable};

fn world() -> World {
    let mut w = World::new(4).with_module(&[3]);
    w.tracers = 2;
    w
}

const PROTO: Protocol = Protocol::MERGED;

/// A state: the kernel and the executor's threads beside it.
#[derive(Clone, Debug)]
struct State {
    k: Kernel,
    th: Threads,
}

/// A quiescent state with something in every part: records with every kind of site, a
/// livepatch, a trampoline with two links and an image, a kprobe, a single-ip direct user, a
/// tracer with a filter, a loaded module.
fn quiet() -> State {
    let mut s = Sequential::new(&world(), PROTO);
    for line in [
        "module-load m0",
        "klp-enable f0",
        "bpf-link fentry f1",
        "bpf-link fexit f1",
        "kprobe-arm f1",
        "direct-register f2",
        "tracer-register t0 filter={f3} notrace={}",
        "bpf-link fentry f3",
    ] {
        let op: Op = line.parse().unwrap();
        let out = s.apply(&op);
        assert_eq!(out.result, Ok(()), "{line}");
    }
    State {
        k: s.k,
        th: Threads::from(vec![s.th]),
    }
}

/// The state above with thread 0 in the middle of an operation, holding a lock, and a record
/// waiting for the code update.
fn mid_operation() -> State {
    let State { mut k, mut th } = quiet();
    th.start(&mut k, 0, "klp-enable f2".parse().unwrap());
    let mut answered = 0;
    while answered < 2 {
        match th.run(&mut k, 0) {
            Status::Wants(_) => {
                th.answer(&mut k, 0, true);
                answered += 1;
            }
            other => panic!("klp-enable f2 ended early: {other:?}"),
        }
    }
    k.mark_dirty(FnId(1));
    assert!(!k.locks.is_empty() && !th[0].stack.is_empty());
    State { k, th }
}

fn uses_mid_operation(f: Field) -> bool {
    use Field::*;
    matches!(
        f,
        Locks
            | LockHeld
            | Threads
            | ThreadStack
            | ThreadPending
            | ThreadInput
            | ThreadOp
            | ThreadContended
            | ThreadFaulted
            | ThreadStuck
            | Gen
            | Dirty
            | DirtyEntry
    )
}

fn flip(b: &mut bool) {
    *b = !*b;
}

/// Changes field `f` of the state, `k` and its `threads` (and nothing else the walk visits).
fn mutate(k: &mut Kernel, threads: &mut Threads, f: Field) {
    use Field::*;
    let f0 = FnId(0);
    let f1 = FnId(1);
    let klp0 = k.id(OpsOwner::Klp(f0));
    let s1 = &mut k.fns[1];
    let tr = &mut s1.tr;
    match f {
        RecPresent => flip(&mut k.fns[0].rec.present),
        RecDisabled => flip(&mut k.fns[0].rec.disabled),
        RecIpmodify => flip(&mut k.fns[0].rec.ipmodify),
        RecDirect => flip(&mut k.fns[0].rec.direct),
        RecCount => k.fns[0].rec.count += 1,
        RecSite => {
            let r = &mut k.fns[2].rec;
            assert!(matches!(r.site, CallSite::Direct(_)));
            r.site = CallSite::Caller;
        }
        KlpStack => k.fns[0].klp_stack += 1,
        KlpRegistered => flip(&mut k.fns[0].klp_registered),
        Kprobes => k.fns[0].kprobes += 1,
        DirectUser => {
            assert!(k.fns[0].direct_user.is_none());
            k.fns[0].direct_user = Some(Addr::Sample { f: f0, serial: 99 });
        }
        DirectBusy => flip(&mut k.fns[2].direct_busy),
        TrLinks => tr.links.push((ProgKind::FmodRet, ProgId(77))),
        TrCallOrig => flip(&mut tr.flags.call_orig),
        TrOrigStack => flip(&mut tr.flags.orig_stack),
        TrShare => flip(&mut tr.flags.share),
        TrIndirectCall => flip(&mut tr.indirect_call),
        UnsharePending => flip(&mut s1.unshare_pending),
        LinkKind => tr.links[0].0 = ProgKind::FmodRet,
        LinkProg => tr.links[0].1 = ProgId(999),
        TrImage => assert!(tr.cur_image.take().is_some()),
        ImageSerial => image(tr).serial += 100,
        ImageCallOrig => flip(&mut image(tr).call_orig),
        ImageOrigStack => flip(&mut image(tr).orig_stack),
        ImageProgs => image(tr).progs.push(ProgId(555)),
        ImageProg => image(tr).progs[0] = ProgId(556),
        TrSelector => tr.selector += 1,
        TrNextSerial => tr.next_serial += 1,
        OpsFlags => k.op_mut(klp0).flags ^= fl::PERMANENT,
        OpsFuncSet => flip(&mut k.op_mut(klp0).func_set),
        OpsTrampolineSet => flip(&mut k.op_mut(klp0).trampoline_set),
        OpsHashOf => {
            let kp = k.id(OpsOwner::Kprobe);
            let o = k.op_mut(klp0);
            assert!(o.hash_of.is_none());
            o.hash_of = Some(kp);
        }
        OpsFilter => k.op_mut(klp0).filter.add(FnId(2)),
        OpsNotrace => k.op_mut(klp0).notrace = IpHash::from_fns(&[FnId(2)]),
        OpsDirectCall => {
            let o = k.op_mut(klp0);
            assert!(o.direct_call.is_none());
            o.direct_call = Some(Addr::Image {
                tr: f1,
                serial: 12345,
            });
        }
        OpsList => {
            let t1 = k.id(OpsOwner::Tracer(TracerId(1)));
            k.ops_list.push(t1);
        }
        OpsListEntry => {
            let t1 = k.id(OpsOwner::Tracer(TracerId(1)));
            assert!(!k.ops_list.contains(&t1));
            k.ops_list[0] = t1;
        }
        DirectFunctions => k
            .direct_functions
            .add(FnId(3), Addr::Sample { f: f0, serial: 7 }),
        DirectIp => {
            let e = k
                .direct_functions
                .remove_first(f1)
                .expect("an entry for f1");
            k.direct_functions.add(f0, e.addr);
        }
        DirectAddr => {
            assert!(k.direct_functions.set_first(
                f1,
                Addr::Image {
                    tr: f1,
                    serial: 4242
                }
            ));
        }
        ModLoaded => flip(&mut k.modules[0].loaded),
        ModLive => flip(&mut k.modules[0].live),
        ModBusy => flip(&mut k.modules[0].busy),
        ModKlpSeen => flip(&mut k.modules[0].klp_seen),
        TracerRegistered => flip(&mut k.tracers[1].registered),
        KprobeFtraceEnabled => k.kprobe_ftrace_enabled += 1,
        Locks => k.locks.push((Lock::TraceTypes, 1)),
        LockHeld => k.locks[0].1 = 1,
        Threads | ThreadStack | ThreadPending | ThreadInput | ThreadOp | ThreadContended
        | ThreadFaulted | ThreadStuck => mutate_thread(threads, f),
        Gen => k.gen += 1,
        NextProg => k.next_prog += 1,
        NextSample => k.next_sample += 1,
        Dirty => k.dirty.push(FnId(3)),
        DirtyEntry => k.dirty[0] = FnId(2),
        Proto => flip(&mut k.proto.direct_mod_checks_its_ips),
    }
}

/// Changes field `f` of the threads (and nothing else the walk visits).
fn mutate_thread(threads: &mut Threads, f: Field) {
    use Field::*;
    match f {
        Threads => threads.ensure(threads.len() + 1),
        ThreadStack => {
            let top = threads[0].stack[0].clone();
            threads[0].stack.push(top);
        }
        ThreadPending => {
            let th = &mut threads[0];
            th.pending = match th.pending {
                None => Some(Request::Sleep),
                Some(_) => None,
            };
        }
        ThreadInput => {
            let th = &mut threads[0];
            th.input = match th.input {
                Some(Input::Answer(ok)) => Some(Input::Answer(!ok)),
                _ => Some(Input::Answer(false)),
            };
        }
        ThreadOp => assert!(threads[0].op.take().is_some()),
        ThreadContended => flip(&mut threads[0].contended),
        ThreadFaulted => flip(&mut threads[0].faulted),
        ThreadStuck => flip(&mut threads[0].stuck),
        other => unreachable!("{other:?} is not a field of the threads"),
    }
}

fn image(tr: &mut ftsim_core::kernel::Trampoline) -> &mut Image {
    tr.cur_image.as_mut().expect("f1's trampoline has an image")
}

/// Every projection of a state, as one comparable value each.
#[derive(Debug, PartialEq)]
struct Projections {
    fingerprint: u128,
    key: u128,
    /// The symmetric key as the explorer takes it for a successor of the base state: from the
    /// base's parts, walking only the functions whose sections differ from the base's.
    key_after: u128,
    /// The key without symmetry (the fingerprint's words per function and the rest), from
    /// scratch and from the base's words.
    plain_key: u128,
    plain_key_after: u128,
    footprint: ftsim_core::footprint::Footprint,
    /// The footprint as the fuzz harness takes it, beside its words in one walk (a tee).
    snapshot_footprint: ftsim_core::footprint::Footprint,
    /// The symmetry's signatures and free flags (what candidate renamings are chosen by).
    signatures: Vec<u64>,
    observable: String,
}

fn project(s: &State, sym: &Symmetry, base: &State) -> Projections {
    let k = &s.k;
    let plain = Symmetry::new(&world(), PROTO, false);
    Projections {
        plain_key: plain.key(k, &s.th, &mut Scratch::default()),
        plain_key_after: plain.key_after(&base.k, k, &s.th, &mut Scratch::default()),
        fingerprint: fingerprint(k, &s.th),
        key: sym.key(k, &s.th, &mut Scratch::default()),
        key_after: sym.key_after(&base.k, k, &s.th, &mut Scratch::default()),
        footprint: footprint(k),
        snapshot_footprint: snapshot_footprint(k),
        signatures: sym.signatures_of(k, &s.th),
        observable: observable(k),
    }
}

#[test]
fn field_list_is_in_declaration_order() {
    for (i, f) in Field::ALL.iter().enumerate() {
        assert_eq!(*f as usize, i, "Field::ALL[{i}] is {f:?}");
    }
}

#[test]
fn every_sink_sees_every_field_it_does_not_ignore() {
    let sym = Symmetry::new(&world(), PROTO, true);
    let bases = [quiet(), mid_operation()];
    let projected = [
        project(&bases[0], &sym, &bases[0]),
        project(&bases[1], &sym, &bases[1]),
    ];
    type Fp = Fingerprint<'static, Vec<u64>>;
    let mut failures = Vec::new();
    for &f in Field::ALL {
        let b = uses_mid_operation(f) as usize;
        let base = &bases[b];
        let mut s = base.clone();
        mutate(&mut s.k, &mut s.th, f);
        let before = &projected[b];
        let after = project(&s, &sym, base);
        let k = &s.k;
        let sinks: [(&str, Fields, bool); 12] = [
            (
                "fingerprint",
                <Fp as Sink>::IGNORES,
                before.fingerprint != after.fingerprint,
            ),
            (
                "symmetric key",
                <Fp as Sink>::IGNORES,
                before.key != after.key,
            ),
            (
                "symmetric key from the base's parts",
                <Fp as Sink>::IGNORES,
                before.key_after != after.key_after,
            ),
            (
                "key without symmetry",
                <Fp as Sink>::IGNORES,
                before.plain_key != after.plain_key,
            ),
            (
                "key without symmetry from the base's words",
                <Fp as Sink>::IGNORES,
                before.plain_key_after != after.plain_key_after,
            ),
            (
                "footprint",
                <FootprintSink as Sink>::IGNORES,
                before.footprint != after.footprint,
            ),
            (
                "symmetry signatures",
                SIGNATURE_IGNORES,
                before.signatures != after.signatures,
            ),
            (
                "harness footprint",
                <FootprintSink as Sink>::IGNORES,
                before.snapshot_footprint != after.snapshot_footprint,
            ),
            (
                "observable",
                <Observable as Sink>::IGNORES,
                before.observable != after.observable,
            ),
            ("Kernel::eq", EqScope::IGNORES, base.k != *k),
            (
                "Kernel::eq and the threads' equality",
                COUNTERS,
                base.k != *k || base.th != s.th,
            ),
            (
                "harness snapshot",
                Checked::IGNORES,
                !snapshot_same(&base.k, k),
            ),
        ];
        assert!(
            *k == k.clone() && s.th == s.th.clone() && snapshot_same(k, k),
            "{f:?}: not reflexive"
        );
        for (name, ignores, changed) in sinks {
            let ignored = has(ignores, f);
            if changed == ignored {
                failures.push(format!(
                    "{f:?}: {name} {}",
                    if ignored {
                        "changed, but lists the field as ignored"
                    } else {
                        "did not change, and does not list the field as ignored"
                    }
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
