//! Every scenario discussed in the seed thread, under every preset where it applies, with exact
//! errnos, the resulting call of the function and the exact set of properties violated along
//! the way. Where an expectation looks surprising, the comment says which code it copies.

use ftsim_core::direct::RegisterFtraceDirectMulti;
use ftsim_core::ftrace::{FtraceSetHash, RegisterFtraceFunction};
use ftsim_core::ids::{Addr, FnId, OpsOwner};
use ftsim_core::kernel::fl;
use ftsim_core::step::{EventKind, Faults};
use ftsim_core::{Errno, Op, Protocol, World};
use ftsim_drive::observe::{call, Body};
use ftsim_drive::seq::Sequential;
use std::collections::BTreeSet;

#[path = "scenarios/mainline_2026.rs"]
mod mainline_2026;

/// The results of the ops, how a call of f0 ends, how many programs it runs, and every property
/// violated on the way.
fn run(
    preset: &str,
    functions: u16,
    ops: &[&str],
) -> (String, &'static str, usize, BTreeSet<&'static str>) {
    let mut s = Sequential::new(&World::new(functions), Protocol::preset(preset).unwrap());
    let mut results = Vec::new();
    let mut props = BTreeSet::new();
    for line in ops {
        let out = s.apply(&line.parse::<Op>().unwrap());
        results.push(match out.result {
            Ok(()) => "ok".to_string(),
            Err(e) => e.to_string(),
        });
        props.extend(out.violations.iter().map(|v| v.property.id()));
    }
    let c = call(&s.k, FnId(0)).unwrap();
    let body = match c.body {
        Body::Original => "orig",
        Body::Redirected(_) => "redir",
        Body::Freed => "freed",
    };
    (results.join(" "), body, c.progs().len(), props)
}

fn expect(preset: &str, ops: &[&str], results: &str, body: &str, progs: usize, props: &[&str]) {
    let (r, b, p, found) = run(preset, 2, ops);
    let want: BTreeSet<&str> = props.iter().copied().collect();
    assert_eq!(
        (r.as_str(), b, p, &found),
        (results, body, progs, &want),
        "{preset}: {ops:?}"
    );
}

const SHARED: [&str; 5] = ["v2", "merged", "fixes-2022", "rcu-hash-2023", "fixes-2025"];

#[test]
fn pre_refuses_the_second_of_livepatch_and_bpf() {
    for kind in ["fentry", "fexit"] {
        let link = format!("bpf-link {kind} f0");
        expect("pre", &[&link, "klp-enable f0"], "ok EBUSY", "orig", 1, &[]);
        expect(
            "pre",
            &["klp-enable f0", &link],
            "ok EBUSY",
            "redir",
            0,
            &[],
        );
    }
}

#[test]
fn bpf_first_then_livepatch() {
    // Direct first: ftrace asks the direct owner (ENABLE / PEER) before the IPMODIFY ops goes live.
    for p in SHARED {
        for (kind, progs) in [("fentry", 1), ("fexit", 1)] {
            let link = format!("bpf-link {kind} f0");
            // v2's owner sets SHARE_IPMODIFY on its registered ops without ftrace_lock.
            let props: &[&str] = if p == "v2" { &["lock-coverage"] } else { &[] };
            expect(p, &[&link, "klp-enable f0"], "ok ok", "redir", progs, props);
        }
    }
}

#[test]
fn livepatch_first_then_bpf() {
    // IPMODIFY first: the direct owner learns of it while registering (v2: -EAGAIN and retry with
    // sharing; merged and later: SELF, which asks for a rebuild with ORIG_STACK when the image calls
    // the function).
    for p in SHARED {
        expect(
            p,
            &["klp-enable f0", "bpf-link fentry f0"],
            "ok ok",
            "redir",
            1,
            &[],
        );
        match p {
            // rcu-hash-2023: the -EAGAIN register leaves its direct_functions entries behind, so the
            // retry finds the ip "already registered" and the link fails.
            "rcu-hash-2023" => expect(
                p,
                &["klp-enable f0", "bpf-link fexit f0"],
                "ok EBUSY",
                "redir",
                0,
                &["atomicity"],
            ),
            _ => expect(
                p,
                &["klp-enable f0", "bpf-link fexit f0"],
                "ok ok",
                "redir",
                1,
                &[],
            ),
        }
    }
}

#[test]
fn fentry_then_fexit_on_a_livepatched_function() {
    // SELF returned 0 for the fentry-only image without setting SHARE; the fexit rebuild is installed
    // by modify, which makes no IPMODIFY check until fixes-2025: the trampoline calls the original.
    let ops = ["klp-enable f0", "bpf-link fentry f0", "bpf-link fexit f0"];
    for p in ["merged", "fixes-2022"] {
        expect(p, &ops, "ok ok ok", "orig", 2, &["ipmodify-honoured"]);
    }
    expect("fixes-2025", &ops, "ok ok ok", "redir", 2, &[]);
    expect("debian-6.12", &ops, "ok ok ok", "redir", 2, &[]);
    // v2 shares from the first image on (ORIG_STACK whenever sharing is on).
    expect("v2", &ops, "ok ok ok", "redir", 2, &[]);
    // Debian 6.1.192 has the modify path's SELF check (ftrace.c:5813) but its BPF still clears
    // fops->func and fops->trampoline on every -EAGAIN (trampoline.c:494-501), here on the
    // registered ops: the list function meets the NULL func first (the trampoline's ops is newest)
    // and stops (ftrace.c:7660-7663), so neither the livepatch nor the programs run.
    expect(
        "debian-6.1",
        &ops,
        "ok ok ok",
        "orig",
        0,
        &["ipmodify-honoured", "no-lost-program", "no-lost-callback"],
    );
}

#[test]
fn modify_on_a_livepatched_function_warns_only_off_the_update_target_path() {
    // FTRACE_WARN_ON(!update_target && (rec->flags & FTRACE_FL_DIRECT)) (Debian 6.1.192
    // ftrace.c:1974-1975, 6.12.117 ftrace.c:2047-2048): the modify path's pass is the update-target
    // one, so relinking a trampoline on a livepatched function warns nowhere.
    for p in ["fixes-2025", "debian-6.12", "debian-6.1"] {
        let mut s = Sequential::new(&World::new(1), Protocol::preset(p).unwrap());
        s.k.trace = Some(Vec::new());
        for op in ["klp-enable f0", "bpf-link fentry f0", "bpf-link fexit f0"] {
            assert_eq!(s.apply(&op.parse().unwrap()).result, Ok(()), "{p}: {op}");
        }
        let warns: Vec<_> =
            s.k.trace
                .take()
                .unwrap()
                .into_iter()
                .filter(|e| matches!(e.kind, EventKind::Warn(_)))
                .collect();
        assert!(warns.is_empty(), "{p}: {warns:?}");
    }
}

#[test]
fn modify_checks_ipmodify_without_ftrace_lock() {
    // __modify_ftrace_direct(_multi) runs __ftrace_hash_update_ipmodify(ops, hash, hash, true)
    // after register_ftrace_function_nolock(&tmp_ops) has dropped ftrace_lock and takes it again
    // only for the swap (Debian 6.1.192 ftrace.c:5804-5821, 6.12.117 ftrace.c:6127-6143).
    for p in ["fixes-2025", "debian-6.1", "debian-6.12"] {
        let mut s = Sequential::new(&World::new(1), Protocol::preset(p).unwrap());
        s.apply(&"klp-enable f0".parse().unwrap());
        s.apply(&"bpf-link fentry f0".parse().unwrap());
        s.k.trace = Some(Vec::new());
        s.apply(&"bpf-link fexit f0".parse().unwrap());
        let trace = s.k.trace.take().unwrap();
        let mut held = false;
        let mut checked = 0;
        for e in &trace {
            match &e.kind {
                EventKind::Acquire(l) if l.to_string() == "ftrace_lock" => held = true,
                EventKind::Release(l) if l.to_string() == "ftrace_lock" => held = false,
                EventKind::Callback(_, cmd) if cmd.contains("SELF") => {
                    assert!(
                        !held,
                        "{p}: SELF sent on the modify path with ftrace_lock held"
                    );
                    checked += 1;
                }
                _ => {}
            }
        }
        // The first modify meets the livepatch (SELF -> -EAGAIN), the retry shares (SELF -> 0).
        assert_eq!(checked, 2, "{p}: {trace:?}");
    }
}

#[test]
fn match_addr_dedups_keeps_one_entry() {
    // __ftrace_match_addr returns early for an ip already in the hash (Debian 6.1.192
    // ftrace.c:5162-5165, 6.12.117 ftrace.c:5814-5817). merged's BPF sets its filter with reset=0
    // and sets it again on the -EAGAIN retry: without the check (SPEC §1's multiset) the filter,
    // and so direct_functions, get a second entry for f0, which the DISABLE_PEER rebuild does not
    // update (exclusivity: two trampolines). With it there is one entry and nothing is left.
    let ops = ["klp-enable f0", "bpf-link fexit f0", "klp-disable f0"];
    let mut dedup = Protocol::MERGED;
    dedup.set("match_addr_dedups", "true").unwrap();
    for (p, entries, props) in [
        (Protocol::MERGED, 2, &["atomicity", "exclusivity"][..]),
        (dedup, 1, &[][..]),
    ] {
        let mut s = Sequential::new(&World::new(1), p);
        let mut found = BTreeSet::new();
        for (i, op) in ops.iter().enumerate() {
            let out = s.apply(&op.parse().unwrap());
            assert_eq!(out.result, Ok(()), "{p}: {op}");
            found.extend(out.violations.iter().map(|v| v.property.id()));
            if i == 1 {
                let fops = s.k.id(OpsOwner::Bpf(FnId(0)));
                assert_eq!(s.k.filter(fops).len(), entries, "{p}");
            }
        }
        let want: BTreeSet<&str> = props.iter().copied().collect();
        assert_eq!(found, want, "{p}");
    }
}

#[test]
fn bpf_retry_allocates_a_new_image() {
    // Debian 6.12.117 trampoline.c:486-493 frees the image on -EAGAIN and allocates a new one
    // after `again:` (461): the installed image is the second, and failing that allocation
    // fails the link with -ENOMEM. Debian 6.1.192 (trampoline.c:503-506) rebuilds the same one.
    let link = "bpf-link fexit f0";
    let setup = |p: &str| {
        let mut s = Sequential::new(&World::new(1), Protocol::preset(p).unwrap());
        s.apply(&"klp-enable f0".parse().unwrap());
        s
    };
    // The installed image and the number of single failing allocations that fail the link
    // cleanly with -ENOMEM.
    let run = |p: &str| {
        let mut s = setup(p);
        assert_eq!(s.apply(&link.parse().unwrap()).result, Ok(()), "{p}");
        let serial = s.k.tr(FnId(0)).cur_image.as_ref().unwrap().serial;
        let failing = (0..16)
            .filter(|i| {
                let mut s = setup(p);
                let faults = ftsim_drive::seq::Faults {
                    allocs: 1 << i,
                    ..Default::default()
                };
                let out = s.apply_with(&link.parse().unwrap(), faults);
                out.result == Err(Errno::ENOMEM) && s.k.tr(FnId(0)).cur_image.is_none()
            })
            .count();
        (serial, failing)
    };
    let (old, new) = (run("fixes-2025"), run("debian-6.12"));
    assert_eq!((old.0, new.0), (1, 2));
    assert_eq!(new.1, old.1 + 1, "the retry's allocation can fail");
    assert_eq!(run("debian-6.1"), run("fixes-2022"));
    assert_eq!(run("debian-6.1").0, 1);
}

#[test]
fn unregistering_the_livepatch() {
    // merged sends DISABLE_PEER: the trampoline drops ORIG_STACK. v2 sends nothing: it stays shared.
    expect(
        "v2",
        &["klp-enable f0", "bpf-link fexit f0", "klp-disable f0"],
        "ok ok ok",
        "orig",
        1,
        &["share-leak"],
    );
    expect(
        "fixes-2025",
        &["klp-enable f0", "bpf-link fexit f0", "klp-disable f0"],
        "ok ok ok",
        "orig",
        1,
        &[],
    );
    // merged: the retried registration set the filter twice (reset=0), so the DISABLE_PEER rebuild
    // updates only the first of two direct_functions entries; the second keeps the old image.
    expect(
        "merged",
        &["klp-enable f0", "bpf-link fexit f0", "klp-disable f0"],
        "ok ok ok",
        "orig",
        1,
        &["atomicity", "exclusivity"],
    );
    // fixes-2022 resets the filter: one entry, clean.
    expect(
        "fixes-2022",
        &["klp-enable f0", "bpf-link fexit f0", "klp-disable f0"],
        "ok ok ok",
        "orig",
        1,
        &[],
    );
}

#[test]
fn two_livepatches_on_one_function_stack() {
    for p in ["pre", "v2", "merged", "fixes-2025"] {
        // The second patch reuses the registered ops; disabling the top one makes no ftrace call.
        expect(
            p,
            &["klp-enable f0", "klp-enable f0", "klp-disable f0"],
            "ok ok ok",
            "redir",
            0,
            &[],
        );
        expect(
            p,
            &[
                "klp-enable f0",
                "klp-enable f0",
                "klp-disable f0",
                "klp-disable f0",
            ],
            "ok ok ok ok",
            "orig",
            0,
            &[],
        );
    }
}

#[test]
fn second_ipmodify_owner_is_refused() {
    for p in ["pre", "v2", "merged", "fixes-2025"] {
        expect(
            p,
            &["klp-enable f0", "kprobe-arm f0"],
            "ok EBUSY",
            "redir",
            0,
            &[],
        );
        expect(
            p,
            &["kprobe-arm f0", "klp-enable f0"],
            "ok EBUSY",
            "redir",
            0,
            &[],
        );
    }
}

#[test]
fn a_direct_ops_without_owner_callback_beside_a_livepatch() {
    // The single-ip API's shared direct_ops has no ops_func: it can never share.
    for p in ["v2", "merged", "fixes-2022"] {
        expect(
            p,
            &["direct-register f0", "klp-enable f0"],
            "ok EBUSY",
            "orig",
            0,
            &[],
        );
        expect(
            p,
            &["klp-enable f0", "direct-register f0"],
            "ok EBUSY",
            "redir",
            0,
            &[],
        );
    }
    for p in ["rcu-hash-2023", "fixes-2025"] {
        expect(p, &["direct-register f0"], "ENODEV", "orig", 0, &[]);
    }
}

#[test]
fn merged_single_ip_modify_recurses_on_direct_mutex() {
    // ftrace_modify_direct_caller registers its stub with the locking register_ftrace_function,
    // which takes direct_mutex for every ops since merged, while direct_mutex is held.
    let (r, _, _, props) = run("merged", 1, &["direct-register f0", "direct-modify f0"]);
    assert_eq!(r, "ok EBUSY");
    assert_eq!(props, BTreeSet::from(["lock-recursion"]));
    for p in ["pre", "v2", "fixes-2022"] {
        expect(
            p,
            &[
                "direct-register f0",
                "direct-modify f0",
                "direct-unregister f0",
            ],
            "ok ok ok",
            "orig",
            0,
            &[],
        );
    }
}

#[test]
fn kprobe_added_to_a_registered_ops_is_not_announced() {
    // Later kprobes add their ip to the already registered ops: ftrace_set_filter_ip sends no command,
    // so a BPF trampoline that calls the original keeps doing so.
    for p in ["merged", "fixes-2025"] {
        expect(
            p,
            &["kprobe-arm f1", "bpf-link fexit f0", "kprobe-arm f0"],
            "ok ok ok",
            "orig",
            1,
            &["ipmodify-honoured"],
        );
    }
}

/// Runs a raw kernel-level frame on thread 0 to completion (no contention, no faults).
fn raw(s: &mut Sequential, frame: ftsim_core::frames::Frame) -> Result<(), Errno> {
    s.run_frame(frame, Faults::NONE).result
}

#[test]
fn ipmodify_ops_with_an_empty_filter_is_refused() {
    for p in ["pre", "v2", "merged", "fixes-2025"] {
        let mut s = Sequential::new(&World::new(2), Protocol::preset(p).unwrap());
        let ops = s.k.id(OpsOwner::Test(0));
        s.k.op_mut(ops).flags = fl::IPMODIFY;
        // "we do not allow ftrace_ops to set all functions to new hash"
        assert_eq!(
            raw(&mut s, RegisterFtraceFunction::new(ops).into()),
            Err(Errno::EINVAL),
            "{p}"
        );
        assert!(!s.k.op(ops).has(fl::ENABLED));
        assert!(s.k.ops_list.is_empty(), "{p}: rolled back");
    }
}

#[test]
fn ipmodify_conflict_rolls_back_flags_already_set() {
    for p in ["pre", "v2", "merged", "fixes-2025"] {
        let mut s = Sequential::new(&World::new(3), Protocol::preset(p).unwrap());
        assert_eq!(s.apply(&"klp-enable f1".parse().unwrap()).result, Ok(()));
        let ops = s.k.id(OpsOwner::Test(0));
        s.k.op_mut(ops).flags = fl::IPMODIFY;
        for f in [0, 1, 2] {
            assert_eq!(
                raw(
                    &mut s,
                    FtraceSetHash::filter(ops, FnId(f), false, false).into()
                ),
                Ok(())
            );
        }
        // f0 gets IPMODIFY first, then f1 conflicts: f0 must be rolled back, f2 never touched.
        assert_eq!(
            raw(&mut s, RegisterFtraceFunction::new(ops).into()),
            Err(Errno::EBUSY),
            "{p}"
        );
        assert!(
            !s.k.rec(FnId(0)).ipmodify && s.k.rec(FnId(1)).ipmodify && !s.k.rec(FnId(2)).ipmodify,
            "{p}"
        );
        assert!(ftsim_drive::check::check(&s.k).is_empty(), "{p}");
    }
}

#[test]
fn v2_rejects_ipmodify_with_share_ipmodify() {
    let mut s = Sequential::new(&World::new(1), Protocol::V2);
    let ops = s.k.id(OpsOwner::Test(0));
    assert_eq!(
        raw(
            &mut s,
            FtraceSetHash::filter(ops, FnId(0), false, false).into()
        ),
        Ok(())
    );
    s.k.op_mut(ops).flags = fl::IPMODIFY | fl::SHARE_IPMODIFY;
    let addr = Addr::Sample {
        f: FnId(0),
        serial: 99,
    };
    assert_eq!(
        raw(&mut s, RegisterFtraceDirectMulti::new(ops, addr).into()),
        Err(Errno::EINVAL)
    );
    // merged assigns the flags instead, so the same ops registers as a plain direct ops.
    let mut s = Sequential::new(&World::new(1), Protocol::MERGED);
    assert_eq!(
        raw(
            &mut s,
            FtraceSetHash::filter(ops, FnId(0), false, false).into()
        ),
        Ok(())
    );
    s.k.op_mut(ops).flags = fl::IPMODIFY | fl::SHARE_IPMODIFY;
    assert_eq!(
        raw(&mut s, RegisterFtraceDirectMulti::new(ops, addr).into()),
        Ok(())
    );
    assert_eq!(s.k.op(ops).flags, fl::DIRECT | fl::ENABLED);
}

#[test]
fn v2_eagain_and_retry_with_share_ipmodify() {
    let mut s = Sequential::new(&World::new(1), Protocol::V2);
    s.apply(&"klp-enable f0".parse().unwrap());
    s.k.trace = Some(Vec::new());
    let out = s.apply(&"bpf-link fexit f0".parse().unwrap());
    assert_eq!(out.result, Ok(()));
    let trace = s.k.trace.take().unwrap();
    let regs: Vec<_> = trace
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Leave("register_ftrace_direct_multi", r) => Some(*r),
            _ => None,
        })
        .collect();
    // The first registration meets the IPMODIFY record: -EAGAIN; the retry shares and succeeds.
    assert_eq!(regs, vec![Err(Errno::EAGAIN), Ok(0)]);
    let fops = s.k.id(OpsOwner::Bpf(FnId(0)));
    assert!(s.k.op(fops).has(fl::SHARE_IPMODIFY));
    let c = call(&s.k, FnId(0)).unwrap();
    assert!(matches!(c.body, Body::Redirected(_)));
}

#[test]
fn merged_livepatch_fails_with_eagain_when_the_trampoline_is_busy() {
    // The PEER trylock finds tr->mutex taken: -EAGAIN, and the livepatch leaves no trace.
    let mut s = Sequential::new(&World::new(1), Protocol::MERGED);
    assert_eq!(
        s.apply(&"bpf-link fexit f0".parse().unwrap()).result,
        Ok(())
    );
    let faults = ftsim_drive::seq::Faults {
        trylocks: 1,
        ..Default::default()
    };
    let out = s.apply_with(&"klp-enable f0".parse().unwrap(), faults);
    assert_eq!(out.result, Err(Errno::EAGAIN));
    assert!(out.contended);
    assert!(out.violations.is_empty(), "{:?}", out.violations);
    let c = call(&s.k, FnId(0)).unwrap();
    assert_eq!(c.body, Body::Original);
}

#[test]
fn module_functions_come_and_go() {
    let world = World::new(3).with_module(&[2]);
    let mut s = Sequential::new(&world, Protocol::FIXES_2025);
    let ap = |s: &mut Sequential, l: &str| s.apply(&l.parse().unwrap());
    // A patch on an unloaded module's function is pending, applied on load, pending again on unload.
    assert_eq!(ap(&mut s, "klp-enable f2").result, Ok(()));
    assert!(call(&s.k, FnId(2)).is_none());
    assert_eq!(ap(&mut s, "bpf-link fentry f2").result, Err(Errno::ENOENT));
    let out = ap(&mut s, "module-load m0");
    assert_eq!((out.result, out.violations.len()), (Ok(()), 0));
    assert!(matches!(
        call(&s.k, FnId(2)).unwrap().body,
        Body::Redirected(_)
    ));
    assert_eq!(ap(&mut s, "bpf-link fexit f2").result, Ok(()));
    assert_eq!(
        ap(&mut s, "module-unload m0").result,
        Err(Errno::EBUSY),
        "pinned by the trampoline"
    );
    assert_eq!(ap(&mut s, "bpf-unlink fexit f2").result, Ok(()));
    let out = ap(&mut s, "module-unload m0");
    assert_eq!((out.result, out.violations.len()), (Ok(()), 0));
    assert_eq!(s.k.fstate(FnId(2)).klp_stack, 1);
    assert!(!s.k.fstate(FnId(2)).klp_registered);
    // A tracer's filter entry for the module's function is zeroed: it never matches again.
    assert_eq!(ap(&mut s, "module-load m0").result, Ok(()));
    assert_eq!(
        ap(&mut s, "tracer-register t0 filter={f2} notrace={}").result,
        Ok(())
    );
    assert_eq!(ap(&mut s, "module-unload m0").result, Ok(()));
    assert_eq!(ap(&mut s, "module-load m0").result, Ok(()));
    let t0 = s.k.id(OpsOwner::Tracer(ftsim_core::ids::TracerId(0)));
    assert!(!call(&s.k, FnId(2)).unwrap().callbacks.contains(&t0));
    assert!(
        call(&s.k, FnId(0)).unwrap().callbacks.is_empty(),
        "a dead entry keeps the filter non-empty"
    );
}

#[test]
fn v2_retries_only_the_first_registration() {
    // v2's retry: "should only retry on the first register": `if (WARN_ON_ONCE(tr->cur_image))
    // goto out;` (PATCH v2 bpf-next 5/5). v2's modify makes no IPMODIFY check, so compose one in:
    // a kprobe added to the registered kprobe ops gives f0 IPMODIFY without telling the
    // trampoline, and the fexit rebuild's modify then meets it with -EAGAIN.
    let ops = [
        "bpf-link fentry f0",
        "kprobe-arm f1",
        "kprobe-arm f0",
        "bpf-link fexit f0",
    ];
    let mut guarded = Protocol::V2;
    guarded.set("modify_checks_ipmodify", "true").unwrap();
    let mut unguarded = guarded;
    unguarded.set("bpf_retry_guarded", "false").unwrap();
    for (p, last, warned) in [
        (guarded, Err(Errno::EAGAIN), true),
        (unguarded, Ok(()), false),
    ] {
        let mut s = Sequential::new(&World::new(2), p);
        let mut results = Vec::new();
        for op in &ops[..3] {
            results.push(s.apply(&op.parse().unwrap()).result);
        }
        assert_eq!(results, vec![Ok(()); 3], "{p}");
        s.k.trace = Some(Vec::new());
        assert_eq!(s.apply(&ops[3].parse().unwrap()).result, last, "{p}");
        let warns = s.k.trace.take().unwrap().iter().any(|e| {
            e.kind == EventKind::Warn("bpf_trampoline_update: WARN_ON_ONCE(tr->cur_image)")
        });
        assert_eq!(warns, warned, "{p}");
    }
}

#[test]
fn proposed_defers_a_busy_disable_peer_to_after_direct_mutex() {
    // The kprobe's unregistration sends DISABLE_PEER under direct_mutex and its trylock finds
    // tr->mutex taken (forced). proposed (`peer_disable_deferred`) leaves the pending bit and
    // does the unsharing itself once direct_mutex is released (tr->mutex, then direct_mutex):
    // the trampoline stops sharing. Handing it to a holder that does not exist
    // (`peer_disable_hands_off` without the retry) leaves it sharing (`share-leak`).
    let mut hands_off = Protocol::PROPOSED;
    hands_off.set("peer_disable_deferred", "false").unwrap();
    hands_off.set("peer_disable_hands_off", "true").unwrap();
    for (p, leak) in [(Protocol::PROPOSED, false), (hands_off, true)] {
        let mut s = Sequential::new(&World::new(1), p);
        for op in ["bpf-link fexit f0", "kprobe-arm f0"] {
            let out = s.apply(&op.parse().unwrap());
            assert_eq!((out.result, out.violations.len()), (Ok(()), 0), "{p}: {op}");
        }
        assert!(s.k.tr(FnId(0)).flags.share, "{p}: sharing with the kprobe");
        s.k.trace = Some(Vec::new());
        let faults = ftsim_drive::seq::Faults {
            trylocks: 1,
            ..Default::default()
        };
        let out = s.apply_with(&"kprobe-disarm f0".parse().unwrap(), faults);
        let trace = s.k.trace.take().unwrap();
        assert_eq!(out.result, Ok(()), "{p}");
        assert!(
            out.contended,
            "{p}: the DISABLE_PEER trylock was forced to fail"
        );
        let found: Vec<&str> = out.violations.iter().map(|v| v.property.id()).collect();
        assert_eq!(found.contains(&"share-leak"), leak, "{p}: {found:?}");
        assert_eq!(s.k.tr(FnId(0)).flags.share, leak, "{p}");
        assert_eq!(s.k.fns[0].unshare_pending, leak, "{p}: the pending bit");
        let deferred = trace.iter().any(|e| {
            matches!(&e.kind, EventKind::Enter(name) if *name == "bpf_trampoline_unshare_deferred")
        });
        assert_eq!(deferred, !leak, "{p}: {trace:?}");
    }
}
