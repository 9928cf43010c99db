//! mainline 2026: every BPF trampoline on one shared `direct_ops` (`update_ftrace_direct_add/_del/_mod`,
//! `ops_func` by ip), the pass of `update_ftrace_direct_mod` over the whole shared filter and the
//! findings it leads to (README, Mainline 2026).

use super::*;

/// The scenarios of the seed thread give mainline-2026 the answers they give debian-6.12:
/// sharing one direct ops changes how the trampolines are attached, not what one trampoline
/// beside one livepatch does.
#[test]
fn mainline_2026_keeps_the_single_function_scenarios_of_debian_6_12() {
    let scripts: &[&[&str]] = &[
        &["bpf-link fentry f0", "klp-enable f0"],
        &["bpf-link fexit f0", "klp-enable f0"],
        &["klp-enable f0", "bpf-link fentry f0"],
        &["klp-enable f0", "bpf-link fexit f0"],
        &["klp-enable f0", "bpf-link fentry f0", "bpf-link fexit f0"],
        &["klp-enable f0", "bpf-link fexit f0", "klp-disable f0"],
        &["bpf-link fexit f0", "kprobe-arm f0", "kprobe-disarm f0"],
        &["bpf-link fexit f0", "kprobe-arm f1", "kprobe-arm f0"],
        &["bpf-link fexit f0", "bpf-unlink fexit f0", "klp-enable f0"],
    ];
    for ops in scripts {
        assert_eq!(
            run("mainline-2026", 2, ops),
            run("debian-6.12", 2, ops),
            "{ops:?}"
        );
    }
}

#[test]
fn mainline_2026_trampolines_share_one_direct_ops() {
    // kernel/bpf/trampoline.c (torvalds/linux 0253073fb7d7) direct_ops_alloc: `tr->fops =
    // &direct_ops`. The first update_ftrace_direct_add registers the ops, the second adds its ip
    // to the filter, the last update_ftrace_direct_del unregisters it and frees the filter; the
    // or-ed MULTI_FLAGS stay (kernel/trace/ftrace.c, kernel-patches/bpf 00c266387e36).
    let mut s = Sequential::new(&World::new(2), Protocol::preset("mainline-2026").unwrap());
    let dops = s.k.id(OpsOwner::BpfDirectOps);
    assert_eq!(s.k.bpf_fops(FnId(0)), dops);
    assert_eq!(s.k.bpf_fops(FnId(1)), dops);
    assert_eq!(s.k.owner(dops), OpsOwner::BpfDirectOps);
    assert_eq!(s.k.op(dops).flags, 0, "no flags before the first add");
    for op in ["bpf-link fentry f0", "bpf-link fexit f1"] {
        let out = s.apply(&op.parse().unwrap());
        assert_eq!(out.result, Ok(()), "{op}");
        assert!(out.violations.is_empty(), "{op}: {:?}", out.violations);
    }
    let o = s.k.op(dops);
    assert!(
        o.has(fl::ENABLED) && o.has(fl::DIRECT) && o.func_set,
        "{o:?}"
    );
    assert_eq!(
        s.k.filter(dops).ips().collect::<Vec<_>>(),
        [FnId(0), FnId(1)]
    );
    assert_eq!(s.k.ops_list.iter().filter(|x| **x == dops).count(), 1);
    for f in [FnId(0), FnId(1)] {
        // No trampoline has ops of its own.
        assert_eq!(*s.k.op(s.k.id(OpsOwner::Bpf(f))), Default::default());
        let want = s.k.tr(f).cur_image.as_ref().unwrap().serial;
        assert_eq!(
            s.k.direct_functions.lookup(f),
            Some(Addr::Image {
                tr: f,
                serial: want
            })
        );
        assert_eq!(call(&s.k, f).unwrap().progs().len(), 1);
    }
    let out = s.apply(&"bpf-unlink fentry f0".parse().unwrap());
    assert_eq!(out.result, Ok(()));
    assert!(
        s.k.op(dops).has(fl::ENABLED),
        "f1's trampoline still uses it"
    );
    assert_eq!(s.k.filter(dops).ips().collect::<Vec<_>>(), [FnId(1)]);
    let out = s.apply(&"bpf-unlink fexit f1".parse().unwrap());
    assert_eq!(out.result, Ok(()));
    assert!(out.violations.is_empty(), "{:?}", out.violations);
    let o = s.k.op(dops);
    assert_eq!(o.flags, fl::DIRECT, "MULTI_FLAGS stay or-ed in");
    assert!(
        !o.func_set && !o.trampoline_set && o.filter.is_empty(),
        "{o:?}"
    );
    assert!(s.k.direct_functions.entries().is_empty());
}

#[test]
fn mainline_2026_ops_func_finds_the_trampoline_by_ip() {
    // bpf_tramp_ftrace_ops_func(ops, ip, cmd): `tr = direct_ops_ip_lookup(ops, ip)`. The
    // livepatch of f1 reaches the shared ops through prepare_direct_functions_for_ipmodify with
    // ip f1: f1's trampoline rebuilds with ORIG_STACK, f0's is left alone; DISABLE_PEER for f1
    // undoes it.
    let mut s = Sequential::new(&World::new(2), Protocol::preset("mainline-2026").unwrap());
    for op in ["bpf-link fexit f0", "bpf-link fexit f1", "klp-enable f1"] {
        let out = s.apply(&op.parse().unwrap());
        assert_eq!(out.result, Ok(()), "{op}");
        assert!(out.violations.is_empty(), "{op}: {:?}", out.violations);
    }
    let (t0, t1) = (s.k.tr(FnId(0)).flags, s.k.tr(FnId(1)).flags);
    assert!(!t0.share && !t0.orig_stack, "{t0:?}");
    assert!(t1.share && t1.orig_stack, "{t1:?}");
    assert!(matches!(
        call(&s.k, FnId(1)).unwrap().body,
        Body::Redirected(_)
    ));
    let out = s.apply(&"klp-disable f1".parse().unwrap());
    assert_eq!(out.result, Ok(()));
    assert!(out.violations.is_empty(), "{:?}", out.violations);
    let t1 = s.k.tr(FnId(1)).flags;
    assert!(!t1.share && !t1.orig_stack, "{t1:?}");
}

#[test]
fn mainline_2026_modify_sends_self_to_every_trampoline() {
    // update_ftrace_direct_mod runs `__ftrace_hash_update_ipmodify(ops, orig_hash, orig_hash,
    // true)` over the whole filter of the shared direct_ops (kernel/trace/ftrace.c,
    // kernel-patches/bpf 00c266387e36), so relinking f1's trampoline sends SELF for f0. f0 has
    // IPMODIFY from a kprobe that joined the registered kprobe ops without a PEER command
    // (fixes-2025's known flaw), and its fexit trampoline calls the original without
    // ORIG_STACK: SELF sets f0's SHARE without f0's trampoline lock (lock-coverage) and returns
    // -EAGAIN; f1's `goto again` retry meets f0 again, `WARN_ON_ONCE(tr->flags &
    // BPF_TRAMP_F_SHARE_IPMODIFY)` and -EBUSY: f1's link fails because of f0 (availability).
    // debian-6.12's per-trampoline ops never looks past f1.
    let ops = [
        "bpf-link fexit f0",
        "bpf-link fentry f1",
        "kprobe-arm f1",
        "kprobe-arm f0",
        "bpf-link fexit f1",
    ];
    // (The oracle's verdict on the -EBUSY, availability, is checked by the replay of
    // corpus/reproducers/readme-mainline-2026--availability.txt.)
    let (r, b, p, props) = run("mainline-2026", 2, &ops);
    let want: BTreeSet<&str> = ["ipmodify-honoured", "lock-coverage"].into();
    assert_eq!(
        (r.as_str(), b, p, &props),
        ("ok ok ok ok EBUSY", "orig", 1, &want)
    );
    let (r, b, p, props) = run("debian-6.12", 2, &ops);
    let want: BTreeSet<&str> = ["ipmodify-honoured"].into();
    assert_eq!(
        (r.as_str(), b, p, &props),
        ("ok ok ok ok ok", "orig", 1, &want)
    );
    // The SHARE written into f0's trampoline makes its next rebuild call through the stack.
    let mut s = Sequential::new(&World::new(2), Protocol::preset("mainline-2026").unwrap());
    for op in ops {
        s.apply(&op.parse().unwrap());
    }
    assert!(s.k.tr(FnId(0)).flags.share);
    let out = s.apply(&"bpf-link fentry f0".parse().unwrap());
    assert_eq!(out.result, Ok(()));
    assert!(matches!(
        call(&s.k, FnId(0)).unwrap().body,
        Body::Redirected(_)
    ));
}

#[test]
fn mainline_2026_failed_unregister_keeps_the_image() {
    // unregister_fentry: `ret = direct_ops_del(tr, old_addr); ... if (ret) return ret;` before
    // the image is put (trampoline.c, torvalds/linux 0253073fb7d7), and direct_ops_del allocates
    // (hash_from_ip): the last unlink can fail with -ENOMEM and the image, which ftrace still
    // calls, stays installed, running the program the unlink took away (the link is gone
    // whatever the update returns). debian-6.12's unregister allocates nothing.
    let ops = ["bpf-link fentry f0", "bpf-link fentry f1"];
    let mut s = Sequential::new(&World::new(2), Protocol::preset("mainline-2026").unwrap());
    for op in ops {
        assert_eq!(s.apply(&op.parse().unwrap()).result, Ok(()));
    }
    let faults = ftsim_drive::seq::Faults {
        allocs: 1,
        ..Default::default()
    };
    let out = s.apply_with(&"bpf-unlink fentry f0".parse().unwrap(), faults);
    assert_eq!(out.result, Err(Errno::ENOMEM));
    assert!(s.k.tr(FnId(0)).cur_image.is_some());
    assert!(s.k.tr(FnId(0)).links.is_empty());
    let c = call(&s.k, FnId(0)).unwrap();
    assert_eq!(
        c.progs().len(),
        1,
        "the image still runs the unlinked program"
    );
    let props: BTreeSet<&str> = out.violations.iter().map(|v| v.property.id()).collect();
    // The model's own checks; the oracle adds accounting (a program run that is not linked).
    assert_eq!(props, ["atomicity"].into());
    // Without the switch the image would be dropped while ftrace still calls it.
    let mut p = Protocol::preset("mainline-2026").unwrap();
    p.set("bpf_unregister_keeps_image", "false").unwrap();
    let mut s = Sequential::new(&World::new(2), p);
    for op in ops {
        assert_eq!(s.apply(&op.parse().unwrap()).result, Ok(()));
    }
    let out = s.apply_with(&"bpf-unlink fentry f0".parse().unwrap(), faults);
    assert_eq!(out.result, Err(Errno::ENOMEM));
    assert!(s.k.tr(FnId(0)).cur_image.is_none());
}

#[test]
fn mainline_2026_peer_rebuild_of_an_emptied_trampoline_recurses_on_direct_mutex() {
    // After the failed last unlink above, the trampoline has no programs but keeps its image
    // and its CALL_ORIG flag. A kprobe on its function sends ENABLE_SHARE_IPMODIFY_PEER under
    // the direct_mutex of register_ftrace_function; the rebuild finds no programs and
    // unregisters: update_ftrace_direct_del takes direct_mutex again. Without the switch the
    // image is gone and PEER finds nothing to rebuild.
    let faults = ftsim_drive::seq::Faults {
        allocs: 1,
        ..Default::default()
    };
    for (keeps, want) in [(true, &["lock-recursion"][..]), (false, &[][..])] {
        let mut p = Protocol::preset("mainline-2026").unwrap();
        p.set("bpf_unregister_keeps_image", &keeps.to_string())
            .unwrap();
        let mut s = Sequential::new(&World::new(1), p);
        assert_eq!(
            s.apply(&"bpf-link fmod_ret f0".parse().unwrap()).result,
            Ok(())
        );
        let out = s.apply_with(&"bpf-unlink fmod_ret f0".parse().unwrap(), faults);
        assert_eq!(out.result, Err(Errno::ENOMEM));
        let out = s.apply(&"kprobe-arm f0".parse().unwrap());
        let props: BTreeSet<&str> = out.violations.iter().map(|v| v.property.id()).collect();
        let want: BTreeSet<&str> = want.iter().copied().collect();
        assert!(want.is_subset(&props), "keeps={keeps}: {props:?}");
        assert_eq!(props.contains("lock-recursion"), keeps, "{props:?}");
    }
}

#[test]
fn mainline_2026_modify_pass_over_its_own_ips_stays_on_its_trampoline() {
    // What-if `direct_mod_checks_its_ips`: the update-target pass of update_ftrace_direct_mod
    // covers the modified ip only, so the relink of f1 no longer asks f0: the link succeeds and
    // nothing is written without its lock (f0's own flaw, the silent kprobe, stays).
    let ops = [
        "bpf-link fexit f0",
        "bpf-link fentry f1",
        "kprobe-arm f1",
        "kprobe-arm f0",
        "bpf-link fexit f1",
    ];
    let mut p = Protocol::preset("mainline-2026").unwrap();
    p.set("direct_mod_checks_its_ips", "true").unwrap();
    let mut s = Sequential::new(&World::new(2), p);
    let mut props = BTreeSet::new();
    let mut results = Vec::new();
    for op in ops {
        let out = s.apply(&op.parse().unwrap());
        results.push(out.result);
        props.extend(out.violations.iter().map(|v| v.property.id()));
    }
    assert!(results.iter().all(|r| r.is_ok()), "{results:?}");
    assert_eq!(props, ["ipmodify-honoured"].into());
    assert!(!s.k.tr(FnId(0)).flags.share);
}

#[test]
fn mainline_modify_asks_another_functions_trampoline_without_its_lock() {
    // The simplest route to mainline-2026's shared-modify finding, with no other flaw: f0 is
    // livepatched and has a trampoline; relinking f1 runs update_ftrace_direct_mod, whose
    // update-target IPMODIFY pass covers the whole shared filter, so
    // ENABLE_SHARE_IPMODIFY_SELF reaches f0's trampoline while only f1's lock is held:
    // `lockdep_assert_held_once(select_trampoline_lock(tr))` fires (a WARN on lockdep
    // kernels). Nothing is written (f0's trampoline already calls through the stack), so no
    // property breaks; with per-trampoline ops (debian-6.12) the pass never looks past f1.
    let warn = "bpf_tramp_ftrace_ops_func: SELF without the trampoline's lock (lockdep)";
    for (p, warns) in [("mainline-2026", true), ("debian-6.12", false)] {
        let mut s = Sequential::new(&World::new(2), Protocol::preset(p).unwrap());
        for op in ["klp-enable f0", "bpf-link fentry f0", "bpf-link fentry f1"] {
            let out = s.apply(&op.parse().unwrap());
            assert_eq!((out.result, out.violations.len()), (Ok(()), 0), "{p}: {op}");
        }
        s.k.trace = Some(Vec::new());
        let out = s.apply(&"bpf-link fexit f1".parse().unwrap());
        let trace = s.k.trace.take().unwrap();
        assert_eq!((out.result, out.violations.len()), (Ok(()), 0), "{p}");
        let seen = trace
            .iter()
            .any(|e| matches!(&e.kind, EventKind::Warn(w) if *w == warn));
        assert_eq!(seen, warns, "{p}: {trace:?}");
    }
}
