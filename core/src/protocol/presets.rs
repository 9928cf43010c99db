//! The presets: the kernel's states, the alternatives of the thread, `proposed`, the Debian trees
//! and mainline 2026, each a [`Protocol`] value, and how a protocol is named after them.

use super::*;
use std::fmt;

/// The presets: the kernel's states (SPEC §5.1–5.4, §6) and the alternatives of the thread (§5.5).
pub const PRESETS: &[(&str, &str)] = &[
    ("pre", "before the series: direct ops carry IPMODIFY, livepatch and BPF exclude each other (SPEC §5.1)"),
    ("v2", "the series as posted in the seed: SHARE_IPMODIFY flag, -EAGAIN and retry (SPEC §5.2)"),
    ("merged", "the series as merged into bpf-next at 00963a2e75a8, never released (v6.0-rc1 already has fixes-2022's BPF reset=1, dc81f8d1e8ea): SELF/PEER/DISABLE_PEER commands (SPEC §5.3)"),
    ("fixes-2022", "BPF resets the filter; the single-ip modify uses the _nolock register (SPEC §5.4)"),
    ("rcu-hash-2023", "single-ip API gone, direct_functions published by RCU, addresses in the ops (SPEC §5.4)"),
    ("fixes-2025", "failure/unregister reset the ops, modify checks IPMODIFY, BPF checks set_filter (SPEC §5.4)"),
    ("alt-rinse-repeat", "merged with Steven's first proposal: the accounting drops ftrace_lock to call the owner and repeats (SPEC §5.5)"),
    ("alt-blocking-peer", "merged with the owner callback taking tr->mutex with a blocking lock (SPEC §5.5)"),
    ("proposed", "fixes-2025 plus the switches that keep every promise: peers told of IPMODIFY filter changes, direct_mutex held through unregister, sharing synced at registration, a busy DISABLE_PEER deferred until direct_mutex is released (see README)"),
    ("debian-6.1", "Debian linux-source-6.1 6.1.192-3 as read: fixes-2022 plus the stable backports of modify's IPMODIFY check and __ftrace_match_addr's duplicate check"),
    ("debian-6.12", "Debian linux-source-6.12 6.12.117-1~deb12u1 as read: fixes-2025 plus __ftrace_match_addr's duplicate check and the BPF retry on a new image"),
    ("mainline-2026", "bpf-next/mainline 2026 as read: debian-6.12 with every BPF trampoline on one shared direct_ops (update_ftrace_direct_add/_del/_mod, ops_func by ip), call_direct_funcs by ip, a failed unregister keeps the image"),
];

/// The presets README calls clean: no finding in any search. The one list of them: `.ci/run`
/// fails when the commit-seeded sweep finds anything in one (`ftsim run --assert-clean`), and the
/// tests check that README's verdict tables and its CI section agree with it. A preset added
/// later that keeps every promise goes here, and only here.
pub const CLEAN_PRESETS: &[&str] = &["proposed"];

/// The six kernel states of SPEC §6, in history order.
pub const KERNEL_PRESETS: &[&str] = &[
    "pre",
    "v2",
    "merged",
    "fixes-2022",
    "rcu-hash-2023",
    "fixes-2025",
];

impl Protocol {
    /// The state before the series (SPEC §5.1).
    pub const PRE: Protocol = Protocol {
        direct_is_ipmodify: true,
        direct_meets_ipmodify: DirectMeetsIpmodify::Busy,
        peer_scan: PeerScan::None,
        register_takes_direct_mutex: RegisterTakesDirectMutex::IpmodifyOnly,
        cleanup_after_ipmodify: false,
        modify_checks_ipmodify: false,
        direct_register_failure: DirectRegisterFailure::RemoveEntries,
        single_direct_api: SingleDirectApi::LockingModify,
        bpf_direct_api: BpfDirectApi::Single,
        bpf_share_state: BpfShareState::None,
        bpf_peer_lock: BpfPeerLock::Trylock,
        bpf_filter_reset: false,
        bpf_checks_set_filter: false,
        single_direct_ops_ipmodify: true,
        direct_keeps_flags: false,
        direct_call_source: DirectCallSource::FunctionsHash,
        ipmodify_owner_call: IpmodifyOwnerCall::None,
        bpf_unfilter_on_failure: false,
        set_filter_notifies_peer: false,
        unregister_holds_direct_mutex: false,
        bpf_peer_restores_share: false,
        filter_remove_in_place: false,
        self_syncs_share: false,
        cleanup_retries_busy_peer: false,
        bpf_unlink_reserves_image: false,
        failed_load_keeps_hashes: false,
        policy: SharingPolicy::Exclusive,
        match_addr_dedups: false,
        bpf_retry_new_image: false,
        bpf_busy_peer_sleeps: false,
        bpf_retry_guarded: false,
        peer_disable_hands_off: false,
        peer_disable_deferred: false,
        bpf_unregister_keeps_image: false,
        direct_mod_checks_its_ips: false,
    };

    /// The v2 posting in the seed (SPEC §5.2).
    pub const V2: Protocol = Protocol {
        direct_is_ipmodify: false,
        direct_meets_ipmodify: DirectMeetsIpmodify::Eagain,
        peer_scan: PeerScan::StopAtSharing,
        bpf_direct_api: BpfDirectApi::Multi,
        bpf_share_state: BpfShareState::IndirectBool,
        direct_keeps_flags: true,
        bpf_unfilter_on_failure: true,
        bpf_retry_guarded: true,
        policy: SharingPolicy::Shared,
        ..Protocol::PRE
    };

    /// The series as merged (SPEC §5.3).
    pub const MERGED: Protocol = Protocol {
        direct_meets_ipmodify: DirectMeetsIpmodify::SelfCmd,
        peer_scan: PeerScan::FirstReferencing,
        register_takes_direct_mutex: RegisterTakesDirectMutex::Always,
        cleanup_after_ipmodify: true,
        bpf_share_state: BpfShareState::TrampFlags,
        single_direct_ops_ipmodify: false,
        direct_keeps_flags: false,
        bpf_unfilter_on_failure: false,
        bpf_busy_peer_sleeps: true,
        bpf_retry_guarded: false,
        ..Protocol::V2
    };

    /// SPEC §5.4 fixes-2022.
    pub const FIXES_2022: Protocol = Protocol {
        bpf_filter_reset: true,
        single_direct_api: SingleDirectApi::NolockModify,
        ..Protocol::MERGED
    };

    /// SPEC §5.4 rcu-hash-2023.
    pub const RCU_HASH_2023: Protocol = Protocol {
        single_direct_api: SingleDirectApi::Absent,
        direct_register_failure: DirectRegisterFailure::LeaveEntries,
        direct_call_source: DirectCallSource::Ops,
        ..Protocol::FIXES_2022
    };

    /// SPEC §5.4 fixes-2025.
    pub const FIXES_2025: Protocol = Protocol {
        direct_register_failure: DirectRegisterFailure::Reset,
        modify_checks_ipmodify: true,
        bpf_checks_set_filter: true,
        ..Protocol::RCU_HASH_2023
    };

    /// SPEC §5.5: Steven's "wash, rinse, repeat" instead of the prepare step.
    pub const ALT_RINSE_REPEAT: Protocol = Protocol {
        peer_scan: PeerScan::None,
        ipmodify_owner_call: IpmodifyOwnerCall::UnlockAndRetry,
        ..Protocol::MERGED
    };

    /// SPEC §5.5: the owner callback takes `tr->mutex` with a blocking lock.
    pub const ALT_BLOCKING_PEER: Protocol = Protocol {
        bpf_peer_lock: BpfPeerLock::Blocking,
        ..Protocol::MERGED
    };

    /// The smallest change to fixes-2025 that keeps every promise (see README, "proposed"):
    /// IPMODIFY filter changes are announced to the direct peer like registrations, the
    /// unregistration holds direct_mutex through its cleanup, a failed PEER rebuild leaves the
    /// trampoline's sharing state as it was, and a DISABLE_PEER that finds tr->mutex taken is
    /// done by its sender once direct_mutex is released (`peer_disable_deferred`).
    pub const PROPOSED: Protocol = Protocol {
        set_filter_notifies_peer: true,
        unregister_holds_direct_mutex: true,
        bpf_peer_restores_share: true,
        filter_remove_in_place: true,
        self_syncs_share: true,
        bpf_unlink_reserves_image: true,
        bpf_unfilter_on_failure: true,
        failed_load_keeps_hashes: true,
        peer_disable_deferred: true,
        ..Protocol::FIXES_2025
    };

    /// Debian's `linux-source-6.1` 6.1.192-3 (`/usr/src/linux-source-6.1.tar.xz`), read switch by
    /// switch; paths are relative to `linux-source-6.1/`. It is no mainline state: it is
    /// `fixes-2022` plus two fixes that reached 6.1.y through stable, the modify path's IPMODIFY
    /// accounting with update-target semantics and the duplicate check of `__ftrace_match_addr`.
    /// Together with a BPF that still clears `fops->func`/`fops->trampoline` on every `-EAGAIN`
    /// (a combination mainline never had: the modify check is 3e9a18e1c3e9, and its companion
    /// 56b3c85e153b, which moved that reset into ftrace's failure path, is not in 6.1.y, as
    /// `corpus/kernel/README.md` reads the stable history), a modify that meets a livepatch
    /// leaves the registered ops with a NULL `func` (seen on the real 6.1.192: `ftrace_kill`).
    pub const DEBIAN_6_1: Protocol = Protocol {
        // kernel/trace/ftrace.c:5641 `MULTI_FLAGS (DIRECT | SAVE_REGS)`, 5731 `ops->flags = MULTI_FLAGS`.
        direct_is_ipmodify: false,
        // kernel/trace/ftrace.c:1958-1988: a direct ops entering an IPMODIFY record gets -EBUSY
        // without ops_func, else the answer of ENABLE_SHARE_IPMODIFY_SELF.
        direct_meets_ipmodify: DirectMeetsIpmodify::SelfCmd,
        // kernel/trace/ftrace.c:8224-8241 (first DIRECT ops with ops_references_ip, which skips
        // disabled ops: 6909-6912).
        peer_scan: PeerScan::FirstReferencing,
        // kernel/trace/ftrace.c:8340-8354: lock_direct_mutex() around prepare + _nolock register.
        register_takes_direct_mutex: RegisterTakesDirectMutex::Always,
        // kernel/trace/ftrace.c:8363-8372, 8254-8290.
        cleanup_after_ipmodify: true,
        // kernel/trace/ftrace.c:5813 `__ftrace_hash_update_ipmodify(ops, hash, hash, true)` in
        // __modify_ftrace_direct_multi, between the tmp_ops registration and the locked swap.
        modify_checks_ipmodify: true,
        // kernel/trace/ftrace.c:5730-5738: on failure remove_direct_functions_hash(); ops->func and
        // ops->trampoline stay set (cleared only by unregister, 5780-5781).
        direct_register_failure: DirectRegisterFailure::RemoveEntries,
        // kernel/trace/ftrace.c:5321-5404 (register_ftrace_direct), 5572-5639 (modify), the stub
        // registered with register_ftrace_function_nolock at 5537.
        single_direct_api: SingleDirectApi::NolockModify,
        // kernel/bpf/trampoline.c:201, 218-220, 246: *_ftrace_direct_multi with tr->fops.
        bpf_direct_api: BpfDirectApi::Multi,
        // kernel/bpf/trampoline.c:36-105 (SELF/PEER/DISABLE_PEER), 453-474 (flags kept and set).
        bpf_share_state: BpfShareState::TrampFlags,
        // kernel/bpf/trampoline.c:76-82: mutex_trylock, msleep(1), -EAGAIN.
        bpf_peer_lock: BpfPeerLock::Trylock,
        // kernel/bpf/trampoline.c:245 `ftrace_set_filter_ip(tr->fops, ip, 0, 1)`.
        bpf_filter_reset: true,
        // kernel/bpf/trampoline.c:245: the result is ignored.
        bpf_checks_set_filter: false,
        // kernel/trace/ftrace.c:2532-2535: direct_ops is DIRECT | SAVE_REGS | PERMANENT.
        single_direct_ops_ipmodify: false,
        // kernel/trace/ftrace.c:5731: the flags are assigned.
        direct_keeps_flags: false,
        // kernel/trace/ftrace.c:2519-2529: call_direct_funcs looks the ip up in direct_functions.
        direct_call_source: DirectCallSource::FunctionsHash,
        // kernel/trace/ftrace.c:1911-2022: the accounting calls no owner but SELF.
        ipmodify_owner_call: IpmodifyOwnerCall::None,
        // kernel/bpf/trampoline.c:244-253: a failed register leaves the filter.
        bpf_unfilter_on_failure: false,
        // kernel/trace/ftrace.c:5190-5238: ftrace_set_hash takes regex_lock and ftrace_lock only.
        set_filter_notifies_peer: false,
        // kernel/trace/ftrace.c:8363-8372: direct_mutex is taken only inside the cleanup.
        unregister_holds_direct_mutex: false,
        // kernel/bpf/trampoline.c:86-90, 516-518: SHARE is set before the rebuild, and the
        // restored orig_flags already have it.
        bpf_peer_restores_share: false,
        // kernel/trace/ftrace.c:5212: removing an ip works on an allocated copy.
        filter_remove_in_place: false,
        // kernel/bpf/trampoline.c:41-61: SELF only ever enables sharing.
        self_syncs_share: false,
        // kernel/trace/ftrace.c:8284-8286: "The cleanup is optional, ignore any errors".
        cleanup_retries_busy_peer: false,
        // kernel/bpf/trampoline.c:447-451, 631-651: the unlink's rebuild allocates.
        bpf_unlink_reserves_image: false,
        // kernel/trace/ftrace.c:7079-7081: ftrace_release_mod always runs clear_mod_from_hashes.
        failed_load_keeps_hashes: false,
        // kernel/trace/ftrace.c:5162-5165 "Already exists".
        match_addr_dedups: true,
        // kernel/bpf/trampoline.c:494-507: the retry rebuilds into the same image.
        bpf_retry_new_image: false,
        // kernel/bpf/trampoline.c:76-82: msleep(1) before -EAGAIN.
        bpf_busy_peer_sleeps: true,
        // kernel/bpf/trampoline.c:494-507: retried whenever -EAGAIN comes back.
        bpf_retry_guarded: false,
        // The sharing design of the series (SPEC §4): a livepatch and a trampoline may share.
        policy: SharingPolicy::Shared,
        // proposed only.
        peer_disable_hands_off: false,
        peer_disable_deferred: false,
        // kernel/bpf/trampoline.c:440-444: cur_image is put and cleared whatever
        // unregister_fentry returned.
        bpf_unregister_keeps_image: false,
        direct_mod_checks_its_ips: false,
    };

    /// Debian's `linux-source-6.12` 6.12.117-1~deb12u1 (`/usr/src/linux-source-6.12.tar.xz`),
    /// read switch by switch; paths are relative to `linux-source-6.12/`. Its ftrace and BPF
    /// switches are `fixes-2025`'s, plus the duplicate check of `__ftrace_match_addr` and the
    /// BPF retry that allocates a new image.
    pub const DEBIAN_6_12: Protocol = Protocol {
        // kernel/trace/ftrace.c:5910-5914 `MULTI_FLAGS (DIRECT | SAVE_REGS)` on x86, 6050.
        direct_is_ipmodify: false,
        // kernel/trace/ftrace.c:2030-2062.
        direct_meets_ipmodify: DirectMeetsIpmodify::SelfCmd,
        // kernel/trace/ftrace.c:8598-8624; ops_references_ip skips disabled ops (7298-7302).
        peer_scan: PeerScan::FirstReferencing,
        // kernel/trace/ftrace.c:8720-8734.
        register_takes_direct_mutex: RegisterTakesDirectMutex::Always,
        // kernel/trace/ftrace.c:8743-8752, 8634-8670.
        cleanup_after_ipmodify: true,
        // kernel/trace/ftrace.c:6135, outside ftrace_lock (taken at 6143 for the swap).
        modify_checks_ipmodify: true,
        // kernel/trace/ftrace.c:6055-6056 and 6098: reset_direct (5949-5957) removes the entries
        // and clears ops->func and ops->trampoline.
        direct_register_failure: DirectRegisterFailure::Reset,
        // kernel/trace/ftrace.c: no register_ftrace_direct(ip, addr), no stub_ops, no direct_ops.
        single_direct_api: SingleDirectApi::Absent,
        // kernel/bpf/trampoline.c:184, 197-201, 226: the plain-named direct API with tr->fops.
        bpf_direct_api: BpfDirectApi::Multi,
        // kernel/bpf/trampoline.c:35-103 (SELF/PEER/DISABLE_PEER), 426-447 (flags kept and set).
        bpf_share_state: BpfShareState::TrampFlags,
        // kernel/bpf/trampoline.c:75-81.
        bpf_peer_lock: BpfPeerLock::Trylock,
        // kernel/bpf/trampoline.c:223 `ftrace_set_filter_ip(tr->fops, ip, 0, 1)`.
        bpf_filter_reset: true,
        // kernel/bpf/trampoline.c:223-225: `if (ret) return ret;`.
        bpf_checks_set_filter: true,
        // No single-ip direct_ops.
        single_direct_ops_ipmodify: false,
        // kernel/trace/ftrace.c:6050: the flags are assigned.
        direct_keeps_flags: false,
        // kernel/trace/ftrace.c:2613-2622: call_direct_funcs reads ops->direct_call.
        direct_call_source: DirectCallSource::Ops,
        // kernel/trace/ftrace.c:1984-2095: no owner call but SELF.
        ipmodify_owner_call: IpmodifyOwnerCall::None,
        // kernel/bpf/trampoline.c:209-232: a failed register leaves the filter.
        bpf_unfilter_on_failure: false,
        // kernel/trace/ftrace.c:5844-5890: regex_lock and ftrace_lock only.
        set_filter_notifies_peer: false,
        // kernel/trace/ftrace.c:8743-8752.
        unregister_holds_direct_mutex: false,
        // kernel/bpf/trampoline.c:85-89 and 502-504: SHARE is set before the rebuild, and the
        // restored orig_flags already have it.
        bpf_peer_restores_share: false,
        // kernel/trace/ftrace.c:5865: removing works on an allocated copy.
        filter_remove_in_place: false,
        // kernel/bpf/trampoline.c:40-61: SELF only ever enables sharing.
        self_syncs_share: false,
        // kernel/trace/ftrace.c:8664-8666: errors ignored.
        cleanup_retries_busy_peer: false,
        // kernel/bpf/trampoline.c:461-465: the unlink's rebuild allocates.
        bpf_unlink_reserves_image: false,
        // kernel/trace/ftrace.c:7467-7469.
        failed_load_keeps_hashes: false,
        // kernel/trace/ftrace.c:5814-5817 "Already exists".
        match_addr_dedups: true,
        // kernel/bpf/trampoline.c:443 `again:`, 461 the allocation after it, 486-493
        // `bpf_tramp_image_free(im); goto again;`.
        bpf_retry_new_image: true,
        // kernel/bpf/trampoline.c:75-81: msleep(1) before -EAGAIN.
        bpf_busy_peer_sleeps: true,
        // kernel/bpf/trampoline.c:486-493: retried whenever -EAGAIN comes back.
        bpf_retry_guarded: false,
        // The sharing design of the series (SPEC §4).
        policy: SharingPolicy::Shared,
        // proposed only.
        peer_disable_hands_off: false,
        peer_disable_deferred: false,
        // kernel/bpf/trampoline.c:419-423: cur_image is put and cleared whatever
        // unregister_fentry returned.
        bpf_unregister_keeps_image: false,
        direct_mod_checks_its_ips: false,
    };

    /// Mainline as of 2026 (bpf-next with Jiri Olsa's "ftrace,bpf: Use single direct ops for bpf
    /// trampolines", PATCHv6 Message-ID 20251230145010.103439-1-jolsa@kernel.org, and the fixes
    /// after it), read from `kernel/bpf/trampoline.c` at torvalds/linux 0253073fb7d7 and
    /// `kernel/trace/ftrace.c` at kernel-patches/bpf 00c266387e36 on x86
    /// (`CONFIG_HAVE_SINGLE_FTRACE_DIRECT_OPS`). The stored copies carry no line numbers, so the
    /// comments name the function; the series touches neither kprobes nor livepatch, whose
    /// switches stay `debian-6.12`'s. (tracing_multi links, attached in one
    /// `update_ftrace_direct_add` under `trampoline_lock_all()` and not retried on `-EAGAIN`,
    /// are not modelled: the BPF owner has single links only.)
    pub const MAINLINE_2026: Protocol = Protocol {
        // ftrace.c MULTI_FLAGS (DIRECT | SAVE_REGS), or-ed in by update_ftrace_direct_add.
        direct_is_ipmodify: false,
        // ftrace.c __ftrace_hash_update_ipmodify: -EBUSY without ops_func, else
        // `ops->ops_func(ops, rec->ip, FTRACE_OPS_CMD_ENABLE_SHARE_IPMODIFY_SELF)`.
        direct_meets_ipmodify: DirectMeetsIpmodify::SelfCmd,
        // ftrace.c prepare_direct_functions_for_ipmodify: the first DIRECT op with
        // ops_references_ip; `op->ops_func(op, ip, ...PEER)`.
        peer_scan: PeerScan::FirstReferencing,
        // ftrace.c register_ftrace_function: lock_direct_mutex(), prepare, _nolock register.
        register_takes_direct_mutex: RegisterTakesDirectMutex::Always,
        // ftrace.c unregister_ftrace_function -> cleanup_direct_functions_after_ipmodify.
        cleanup_after_ipmodify: true,
        // ftrace.c update_ftrace_direct_mod: `__ftrace_hash_update_ipmodify(ops, orig_hash,
        // orig_hash, true)` over the whole filter of the shared ops, after
        // register_ftrace_function_nolock(&tmp_ops) dropped ftrace_lock.
        modify_checks_ipmodify: true,
        // ftrace.c update_ftrace_direct_add: on a failed registration the old filter is
        // restored, ops->func/trampoline cleared and direct_functions restored.
        direct_register_failure: DirectRegisterFailure::Reset,
        // No single-ip register_ftrace_direct(ip, addr) (gone since rcu-hash-2023).
        single_direct_api: SingleDirectApi::Absent,
        // trampoline.c direct_ops, direct_ops_alloc, direct_ops_add/_del/_mod, hash_from_ip,
        // direct_ops_ip_lookup.
        bpf_direct_api: BpfDirectApi::SharedOps,
        // trampoline.c bpf_tramp_ftrace_ops_func: SELF/PEER/DISABLE_PEER on tr->flags.
        bpf_share_state: BpfShareState::TrampFlags,
        // trampoline.c bpf_tramp_ftrace_ops_func: mutex_trylock(select_trampoline_lock(tr)).
        bpf_peer_lock: BpfPeerLock::Trylock,
        // Not read with shared-ops (no ftrace_set_filter_ip in the BPF path); debian-6.12's.
        bpf_filter_reset: true,
        // Not read with shared-ops; debian-6.12's.
        bpf_checks_set_filter: true,
        // No single-ip direct_ops in ftrace.c.
        single_direct_ops_ipmodify: false,
        // The shared ops has no other flags: `ops->flags |= MULTI_FLAGS` and assigning agree.
        direct_keeps_flags: false,
        // ftrace.c call_direct_funcs under CONFIG_HAVE_SINGLE_FTRACE_DIRECT_OPS:
        // `addr = ftrace_find_rec_direct(ip)`.
        direct_call_source: DirectCallSource::FunctionsHash,
        // ftrace.c __ftrace_hash_update_ipmodify: no owner call but SELF.
        ipmodify_owner_call: IpmodifyOwnerCall::None,
        // Not read with shared-ops (no filter to undo: register_fentry just returns the error).
        bpf_unfilter_on_failure: false,
        // ftrace.c ftrace_set_hash: regex_lock and ftrace_lock only.
        set_filter_notifies_peer: false,
        // ftrace.c unregister_ftrace_function: direct_mutex only inside the cleanup.
        unregister_holds_direct_mutex: false,
        // trampoline.c bpf_tramp_ftrace_ops_func: SHARE set before bpf_trampoline_update, whose
        // restored orig_flags have it.
        bpf_peer_restores_share: false,
        // ftrace.c ftrace_set_hash: alloc_and_copy_ftrace_hash for a removal too.
        filter_remove_in_place: false,
        // trampoline.c bpf_tramp_ftrace_ops_func: SELF only enables sharing.
        self_syncs_share: false,
        // ftrace.c cleanup_direct_functions_after_ipmodify: "The cleanup is optional, ignore
        // any errors".
        cleanup_retries_busy_peer: false,
        // trampoline.c bpf_trampoline_update: the unlink's rebuild allocates.
        bpf_unlink_reserves_image: false,
        // Module code not touched by the series; debian-6.12's.
        failed_load_keeps_hashes: false,
        // ftrace.c __ftrace_match_addr: "Already exists".
        match_addr_dedups: true,
        // trampoline.c bpf_trampoline_update: `bpf_tramp_image_free(im); goto again;` with
        // bpf_tramp_image_alloc after the label.
        bpf_retry_new_image: true,
        // trampoline.c bpf_tramp_ftrace_ops_func: msleep(1) before -EAGAIN.
        bpf_busy_peer_sleeps: true,
        // trampoline.c bpf_trampoline_update: retried whenever -EAGAIN comes back.
        bpf_retry_guarded: false,
        // The sharing design of the series (SPEC §4).
        policy: SharingPolicy::Shared,
        // proposed only.
        peer_disable_hands_off: false,
        // proposed only.
        peer_disable_deferred: false,
        // trampoline.c unregister_fentry: `if (ret) return ret;` before the image is put.
        bpf_unregister_keeps_image: true,
        // ftrace.c update_ftrace_direct_mod: the pass runs over orig_hash (what-if only).
        direct_mod_checks_its_ips: false,
    };

    /// A preset by name.
    pub fn preset(name: &str) -> Option<Protocol> {
        Some(match name {
            "pre" => Protocol::PRE,
            "v2" => Protocol::V2,
            "merged" => Protocol::MERGED,
            "fixes-2022" => Protocol::FIXES_2022,
            "rcu-hash-2023" => Protocol::RCU_HASH_2023,
            "fixes-2025" => Protocol::FIXES_2025,
            "alt-rinse-repeat" => Protocol::ALT_RINSE_REPEAT,
            "alt-blocking-peer" => Protocol::ALT_BLOCKING_PEER,
            "proposed" => Protocol::PROPOSED,
            "debian-6.1" => Protocol::DEBIAN_6_1,
            "debian-6.12" => Protocol::DEBIAN_6_12,
            "mainline-2026" => Protocol::MAINLINE_2026,
            _ => return None,
        })
    }

    /// The preset this protocol equals, if any.
    pub fn preset_name(&self) -> Option<&'static str> {
        PRESETS
            .iter()
            .map(|(n, _)| *n)
            .find(|n| Protocol::preset(n).as_ref() == Some(self))
    }

    /// The switches that differ from `base`, as `key=value` pairs.
    pub fn diff(&self, base: &Protocol) -> Vec<(&'static str, String)> {
        self.switches()
            .into_iter()
            .zip(base.switches())
            .filter(|(a, b)| a.1 != b.1)
            .map(|(a, _)| a)
            .collect()
    }

    /// The preset other than `name` with the fewest differing switches (the first in [`PRESETS`]
    /// order on a tie), and those differences: how `ftsim versions` says what a preset (a Debian
    /// tree, say) is in terms of the others.
    pub fn closest_other_preset(&self, name: &str) -> (&'static str, Vec<(&'static str, String)>) {
        PRESETS
            .iter()
            .filter(|(n, _)| *n != name)
            .map(|(n, _)| (*n, self.diff(&Protocol::preset(n).unwrap())))
            .min_by_key(|(_, d)| d.len())
            .expect("[core internal bug] fewer than two presets")
    }

    /// A short name: the preset name, or the closest preset plus the overrides.
    pub fn describe(&self) -> String {
        if let Some(n) = self.preset_name() {
            return n.to_string();
        }
        let (base, diff) = PRESETS
            .iter()
            .map(|(n, _)| (*n, self.diff(&Protocol::preset(n).unwrap())))
            .min_by_key(|(_, d)| d.len())
            .unwrap();
        let sets: Vec<String> = diff.iter().map(|(k, v)| format!("{k}={v}")).collect();
        format!("{base}+{}", sets.join(","))
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}
