//! Protocol versions as values of one type made of named switches (SPEC §5, §6).
//!
//! Every behaviour that differs between versions of the kernel code sits behind a switch; a
//! [`Protocol`] is a set of switch values, a preset is a named protocol, and a protocol file or a
//! command line composes a version that never existed (`base = "fixes-2025"` plus overrides).
//! Switch names and value spellings are part of the interface: users write them in protocol files,
//! reproducers and on the command line.

use std::fmt;

macro_rules! switch_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $var:ident => $s:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum $name { $($(#[$vm])* $var),+ }
        impl $name {
            pub const VALUES: &'static [&'static str] = &[$($s),+];
            pub fn as_str(self) -> &'static str { match self { $($name::$var => $s),+ } }
            fn parse(s: &str) -> Option<Self> { match s { $($s => Some($name::$var),)+ _ => None } }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result { f.write_str(self.as_str()) }
        }
    };
}

switch_enum! {
    /// What `__ftrace_hash_update_ipmodify` does when a DIRECT ops without IPMODIFY enters a record
    /// that already has IPMODIFY (SPEC §5.2, §5.3).
    DirectMeetsIpmodify {
        /// Fail with `-EBUSY` at once, no owner callback.
        Busy => "busy",
        /// v2 combination #4: return `-EAGAIN` so the owner enables sharing and retries.
        Eagain => "eagain",
        /// merged: `-EBUSY` without owner callback, else the owner's answer to `ENABLE_SHARE_IPMODIFY_SELF`.
        SelfCmd => "self",
    }
}

switch_enum! {
    /// How the IPMODIFY register path finds the direct ops to ask before going live
    /// (`prepare_direct_functions_for_ipmodify`, SPEC §5.2, §5.3).
    PeerScan {
        /// No prepare step (before the series).
        None => "none",
        /// v2: skip non-direct ops, stop at the first direct ops that has SHARE_IPMODIFY, else at the
        /// first direct ops that references the ip.
        StopAtSharing => "stop-at-sharing",
        /// merged: the first enabled direct ops that references the ip.
        FirstReferencing => "first-referencing",
    }
}

switch_enum! {
    /// Which registrations take `direct_mutex` in `register_ftrace_function` (SPEC §5.2, §5.3).
    RegisterTakesDirectMutex {
        /// v2: only the prepare step of an IPMODIFY (non-direct) ops takes it.
        IpmodifyOnly => "ipmodify-only",
        /// merged: every `register_ftrace_function` takes it; holders use the `_nolock` form.
        Always => "always",
    }
}

switch_enum! {
    /// What `register_ftrace_direct(_multi)` does when the final register fails (SPEC §5.3, §5.4).
    DirectRegisterFailure {
        /// Remove the direct_functions entries it added; callback/trampoline stay set.
        RemoveEntries => "remove-entries",
        /// rcu-hash-2023: the published map keeps the new entries; callback/trampoline stay set.
        LeaveEntries => "leave-entries",
        /// fixes-2025: remove the entries and clear the ops' callback/trampoline.
        Reset => "reset",
    }
}

switch_enum! {
    /// The single-ip direct API (`register/modify/unregister_ftrace_direct(ip, addr)`, SPEC §2, §5.3, §5.4).
    SingleDirectApi {
        /// Removed (rcu-hash-2023 and later).
        Absent => "absent",
        /// `modify_ftrace_direct` on a record with count 1 registers its stub ops with the locking
        /// `register_ftrace_function` while holding direct_mutex.
        LockingModify => "locking-modify",
        /// fixes-2022: the stub ops is registered with `register_ftrace_function_nolock`.
        NolockModify => "nolock-modify",
    }
}

switch_enum! {
    /// Which direct API the BPF trampoline uses (SPEC §5.1, §6).
    BpfDirectApi {
        /// The single-ip API and its shared `direct_ops` (no owner callback).
        Single => "single",
        /// `*_ftrace_direct_multi` with the trampoline's own `fops` and owner callback.
        Multi => "multi",
        /// mainline 2026 (`CONFIG_HAVE_SINGLE_FTRACE_DIRECT_OPS`, x86 first; Jiri Olsa's "ftrace,bpf:
        /// Use single direct ops for bpf trampolines", PATCHv6 Message-ID
        /// 20251230145010.103439-1-jolsa@kernel.org): the trampolines of all functions share BPF's
        /// one static `direct_ops = { .ops_func = bpf_tramp_ftrace_ops_func }`
        /// (`kernel/bpf/trampoline.c` at torvalds/linux 0253073fb7d7, `direct_ops_alloc`), whose
        /// filter is the union of their ips. `register_fentry`/`modify_fentry`/`unregister_fentry`
        /// go through `direct_ops_add/_mod/_del` (a one-entry hash from `hash_from_ip`) to
        /// `update_ftrace_direct_add/_mod/_del` (`kernel/trace/ftrace.c` at kernel-patches/bpf
        /// 00c266387e36): the first add registers the ops, later ones change its filter under
        /// direct_mutex and ftrace_lock (`ftrace_update_ops`), the last del unregisters it; the
        /// modify runs the update-target IPMODIFY pass over the whole shared filter. `ops_func`
        /// takes the ip ("ftrace: Factor ftrace_ops ops_func interface") and finds the trampoline
        /// with `direct_ops_ip_lookup` (under `trampoline_mutex`, a leaf lock the model leaves
        /// out). The trampoline lock (`trampoline_lock(tr)`, a pool of 32 mutexes chosen by
        /// `hash_ptr(tr, 5)`) is modelled as one lock per trampoline: a pool collision only makes
        /// a PEER trylock fail, which the injected `!trylock` fault stands for.
        SharedOps => "shared-ops",
    }
}

switch_enum! {
    /// The BPF trampoline's sharing state and owner callback (SPEC §5.2, §5.3).
    BpfShareState {
        /// No sharing, no owner callback.
        None => "none",
        /// v2: a boolean "indirect call"; ENABLE always rebuilds; ORIG_STACK whenever sharing is on;
        /// SHARE_IPMODIFY is set on the ops after building.
        IndirectBool => "indirect-bool",
        /// merged: `BPF_TRAMP_F_SHARE_IPMODIFY` in `tr->flags`, SELF/PEER/DISABLE_PEER commands.
        TrampFlags => "tramp-flags",
    }
}

switch_enum! {
    /// How the BPF owner callback takes `tr->mutex` for PEER commands (SPEC §5.3, §5.5).
    BpfPeerLock {
        /// `mutex_trylock`, `-EAGAIN` when it is taken.
        Trylock => "trylock",
        /// The alternative discussed in the thread: a blocking `mutex_lock`.
        Blocking => "blocking",
    }
}

switch_enum! {
    /// Where `call_direct_funcs` finds the trampoline address (SPEC §5.4).
    DirectCallSource {
        /// Look the ip up in `direct_functions` (first entry wins).
        FunctionsHash => "functions-hash",
        /// rcu-hash-2023: the address kept in the ops (`ops->direct_call`).
        Ops => "ops",
    }
}

switch_enum! {
    /// Whether the IPMODIFY accounting itself calls the direct owner (SPEC §5.5, Steven's first
    /// proposal in the seed thread).
    IpmodifyOwnerCall {
        /// It never calls anyone (v2 and everything merged).
        None => "none",
        /// Drop ftrace_lock, send PEER to the direct ops of every entering record that has DIRECT,
        /// retake ftrace_lock and repeat until nothing changed ("wash, rinse, repeat").
        UnlockAndRetry => "unlock-and-retry",
    }
}

switch_enum! {
    /// What the design promises a user (SPEC §4), as opposed to how its code achieves it: the
    /// one switch the reference oracle reads ([`crate::oracle`]), and one no part of the model
    /// reads. A composed version keeps its base's promise unless told otherwise, so a
    /// `direct_is_ipmodify=true` on a sharing design is judged against sharing.
    SharingPolicy {
        /// SPEC §4 "Exclusive (before the series)": a function has a livepatch or a BPF
        /// trampoline, never both; the second one gets `-EBUSY`.
        Exclusive => "exclusive",
        /// SPEC §4 "Shared (v2 and everything merged after)": one IPMODIFY ops and one direct ops
        /// per function, coexisting in either order of arrival.
        Shared => "shared",
    }
}

/// A protocol: one value per switch. Every preset is one of these (SPEC §6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Protocol {
    /// `register_ftrace_direct_multi` gives the ops `DIRECT | IPMODIFY` (SPEC §5.1).
    pub direct_is_ipmodify: bool,
    /// SPEC §5.2, §5.3.
    pub direct_meets_ipmodify: DirectMeetsIpmodify,
    /// SPEC §5.2, §5.3.
    pub peer_scan: PeerScan,
    /// SPEC §5.2, §5.3.
    pub register_takes_direct_mutex: RegisterTakesDirectMutex,
    /// `unregister_ftrace_function` runs `cleanup_direct_functions_after_ipmodify` (DISABLE_PEER) for
    /// IPMODIFY ops (SPEC §5.3).
    pub cleanup_after_ipmodify: bool,
    /// `modify_ftrace_direct(_multi)` runs the IPMODIFY accounting for the direct ops with "update
    /// target" semantics, so SELF is sent for records that have IPMODIFY (SPEC §5.4 fixes-2025).
    pub modify_checks_ipmodify: bool,
    /// SPEC §5.3, §5.4.
    pub direct_register_failure: DirectRegisterFailure,
    /// SPEC §5.3, §5.4.
    pub single_direct_api: SingleDirectApi,
    /// SPEC §5.1, §6.
    pub bpf_direct_api: BpfDirectApi,
    /// SPEC §5.2, §5.3.
    pub bpf_share_state: BpfShareState,
    /// SPEC §5.3, §5.5.
    pub bpf_peer_lock: BpfPeerLock,
    /// BPF sets the filter with `reset=1` when registering (SPEC §5.4 fixes-2022).
    pub bpf_filter_reset: bool,
    /// BPF checks the result of `ftrace_set_filter_ip` when registering (SPEC §5.4 fixes-2025).
    pub bpf_checks_set_filter: bool,
    /// The shared single-ip `direct_ops` carries IPMODIFY (SPEC §5.1, §5.2: "still has IPMODIFY in
    /// v2"; §5.3: direct ops never carry IPMODIFY).
    pub single_direct_ops_ipmodify: bool,
    /// `register_ftrace_direct_multi` keeps the caller's ops flags and or-s in DIRECT (v2), and then
    /// rejects `IPMODIFY | SHARE_IPMODIFY` with `-EINVAL`; otherwise it assigns the flags (SPEC §5.2, §5.3).
    pub direct_keeps_flags: bool,
    /// SPEC §5.4 rcu-hash-2023.
    pub direct_call_source: DirectCallSource,
    /// SPEC §5.5.
    pub ipmodify_owner_call: IpmodifyOwnerCall,
    /// v2's BPF removes the ip from its ops' filter again when registering fails (SPEC §5.2).
    pub bpf_unfilter_on_failure: bool,
    /// proposed: `ftrace_set_filter_ip` on an enabled IPMODIFY ops takes direct_mutex and runs the
    /// prepare pass (ENABLE_PEER) for the ips it adds and the cleanup pass (DISABLE_PEER) for the
    /// ips it removes, so a kprobe added to the registered IPMODIFY ops is announced like a
    /// registration (SPEC §2 kprobes, §5.3 prepare/cleanup).
    pub set_filter_notifies_peer: bool,
    /// proposed: `unregister_ftrace_function` of a non-direct IPMODIFY ops holds direct_mutex from
    /// before the shutdown through the cleanup (SPEC §5.3 cleanup), closing the window in which a
    /// direct ops registers or another IPMODIFY ops arrives before DISABLE_PEER is sent.
    pub unregister_holds_direct_mutex: bool,
    /// proposed: the BPF owner callback restores SHARE when the PEER rebuild fails, so a refused
    /// IPMODIFY registration leaves the trampoline as it was (SPEC §3.6).
    pub bpf_peer_restores_share: bool,
    /// proposed: removing an ip from a filter works in place and cannot fail with `-ENOMEM`, so the
    /// release paths (livepatch, kprobes, direct calls), which only warn, never leave the ip behind.
    /// It pays where the change puts the cost: every add (`ftrace_set_filter_ip`, and a tracer's
    /// registration with its hashes) also allocates the slot its removal will use, a fault point
    /// at which the add fails with `-ENOMEM` before changing anything (SPEC §1 hashes).
    pub filter_remove_in_place: bool,
    /// proposed: the IPMODIFY accounting of a direct ops also sends `DISABLE_SHARE_IPMODIFY_SELF`
    /// for every record it enters at registration that has no IPMODIFY; the owner drops sharing
    /// (without a rebuild: an image calling through the stack stays correct until the next one).
    /// Sharing then follows the records at every registration (SPEC §5.3 SELF). (Not on modify:
    /// a PEER rebuild runs while its IPMODIFY ops is not live yet.)
    pub self_syncs_share: bool,
    /// proposed: when DISABLE_PEER finds `tr->mutex` taken (`-EAGAIN`), the cleanup releases
    /// direct_mutex, sleeps, takes it again and retries, up to the retry bound (SPEC §5.3 cleanup).
    pub cleanup_retries_busy_peer: bool,
    /// proposed: a BPF link reserves the image its unlink will need, so the unlink's rebuild
    /// cannot fail (today the link is gone whatever the rebuild returns, and a failed rebuild
    /// leaves the old image running the unlinked program; SPEC §2 BPF). The reservation is an
    /// allocation of the link, under tr->mutex before its own rebuild, with its own fault point:
    /// the link fails with `-ENOMEM` and is removed again.
    pub bpf_unlink_reserves_image: bool,
    /// proposed: a module load that fails (a pending livepatch cannot be applied) releases its
    /// records without `clear_mod_from_hashes`: the module never went live, so no tracer can have
    /// named its functions since they last went, and the tracers' hashes stay as they were (§7).
    pub failed_load_keeps_hashes: bool,
    /// The promise the design makes (SPEC §4); read by the oracle only, never by the model.
    pub policy: SharingPolicy,
    /// `__ftrace_match_addr` returns early when the ip it is asked to add is already in the hash
    /// ("Already exists"), so a hash no longer collects duplicate entries through
    /// `ftrace_set_filter_ip` (a Feb 2025 Cc-stable fix; Debian 6.1.192
    /// `kernel/trace/ftrace.c:5162-5165`, Debian 6.12.117 `kernel/trace/ftrace.c:5814-5817`).
    /// Without it a hash is the multiset of SPEC §1. Filters set from text (`ftrace_match_records`,
    /// the tracers' `filter=` lists) never collect duplicates in any version.
    pub match_addr_dedups: bool,
    /// The BPF `-EAGAIN` retry frees the image and allocates a new one after `again:`
    /// (`bpf_tramp_image_free(im); goto again;` with the allocation after the label, where the
    /// image is sized by `arch_bpf_trampoline_size`; Debian 6.12.117
    /// `kernel/bpf/trampoline.c:443, 461, 486-493`), so the retry can fail with `-ENOMEM` and its
    /// image has a fresh address. Without it the retry rebuilds into the same image (Debian 6.1.192
    /// `kernel/bpf/trampoline.c:470-507`: `set_memory_nx/rw(im->image)` and `goto again`).
    pub bpf_retry_new_image: bool,
    /// The BPF owner callback sleeps (`msleep(1)`, "to make sure whatever holding tr->mutex
    /// makes some progress") before it returns `-EAGAIN` for a taken `tr->mutex` (merged and
    /// later: Debian 6.1.192 `kernel/bpf/trampoline.c:76-82`, 6.12.117 `:75-81`). v2's callback
    /// returns `-EAGAIN` at once (`[PATCH v2 bpf-next 5/5] bpf: trampoline: support FTRACE_OPS_FL_SHARE_IPMODIFY`, Message-ID 20220602193706.2607681-6-song@kernel.org:
    /// `if (!mutex_trylock(&tr->mutex)) return -EAGAIN;`).
    pub bpf_busy_peer_sleeps: bool,
    /// v2's `-EAGAIN` retry is guarded: `if (WARN_ON_ONCE(tr->indirect_call)) goto out;` and
    /// `/* should only retry on the first register */ if (WARN_ON_ONCE(tr->cur_image)) goto out;`
    /// (`[PATCH v2 bpf-next 5/5] bpf: trampoline: support FTRACE_OPS_FL_SHARE_IPMODIFY`, Message-ID 20220602193706.2607681-6-song@kernel.org), so it retries
    /// at most once and never on the modify path; merged and later retry while `-EAGAIN` comes
    /// back (the model bounds that loop by `RETRIES_MAX`). Needs `bpf_share_state=indirect-bool`.
    pub bpf_retry_guarded: bool,
    /// proposed: a DISABLE_PEER that finds `tr->mutex` taken hands the unsharing to the holder
    /// instead of needing its own trylock to win: it sets a pending bit beside the trampoline
    /// (lockless) before the trylock, and every BPF link and unlink checks the bit after it
    /// releases `tr->mutex` (trylock; on success, under direct_mutex, the DISABLE_PEER work).
    /// A PEER or SELF command clears the bit (it says what sharing is now). The cleanup's retry
    /// (`cleanup_retries_busy_peer`) then ends as soon as the bit is clear, so a relinking storm
    /// that keeps `tr->mutex` taken cannot starve it (SPEC §5.3 cleanup, §3.8 livelock).
    pub peer_disable_hands_off: bool,
    /// proposed: a DISABLE_PEER that finds `tr->mutex` taken is deferred, not retried: it sets
    /// the trampoline's unshare-pending bit (lockless, before its trylock) and returns, and the
    /// unregistration (or filter change) that sent it does the pending unsharing once it has
    /// released direct_mutex, as a work item would: `tr->mutex` with a blocking lock (it holds
    /// no ftrace lock then), then direct_mutex, the documented order (`tr->mutex => direct_mutex`,
    /// Debian 6.12.117 `kernel/bpf/trampoline.c:63-73`), and, if the bit is still set, what
    /// DISABLE_PEER does. A PEER or SELF command clears the bit (it says what sharing is now).
    /// No retry bound, no trylock that a relinking storm (or a forced `!trylock`) can defeat
    /// (SPEC §5.3 cleanup, §3.8 livelock).
    pub peer_disable_deferred: bool,
    /// A failed unregistration of the trampoline keeps its current image: `unregister_fentry`
    /// does `ret = direct_ops_del(tr, old_addr); ... if (ret) return ret;` and only then
    /// `bpf_tramp_image_put(tr->cur_image); tr->cur_image = NULL;`, and `bpf_trampoline_update`
    /// with no programs left just returns its result (`err = ops->unregister_fentry(...); goto
    /// out;`) (mainline 2026, `kernel/bpf/trampoline.c` at torvalds/linux 0253073fb7d7,
    /// `unregister_fentry` and `bpf_trampoline_update`). Without it the image is put and
    /// `cur_image` cleared whatever the unregistration returned (Debian 6.12.117
    /// `kernel/bpf/trampoline.c` `bpf_trampoline_update`: `err = unregister_fentry(tr,
    /// tr->cur_image->image); bpf_tramp_image_put(tr->cur_image); tr->cur_image = NULL;`).
    pub bpf_unregister_keeps_image: bool,
    /// What-if (no tree has it): `update_ftrace_direct_mod` runs its update-target IPMODIFY pass
    /// over the ips it modifies (its `hash` argument, as `tmp_ops` already does since
    /// "Use hash argument for tmp_ops in update_ftrace_direct_mod") instead of
    /// `ops->func_hash->filter_hash`, the whole filter of the shared `direct_ops`, so SELF only
    /// reaches the trampoline being updated, whose lock its caller holds. Only read with
    /// `bpf_direct_api = shared-ops`; README's findings for mainline-2026 say what it removes.
    pub direct_mod_checks_its_ips: bool,
}

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

    /// Every switch with its current value, in table order.
    pub fn switches(&self) -> Vec<(&'static str, String)> {
        SWITCHES.iter().map(|s| (s.name, (s.get)(self))).collect()
    }

    /// Sets one switch from its textual value, with a clear error for an unknown switch or value.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), ProtocolError> {
        let key = key.trim();
        let value = value.trim().trim_matches('"');
        let sw = SWITCHES
            .iter()
            .find(|s| s.name == key)
            .ok_or_else(|| ProtocolError::UnknownSwitch(key.to_string()))?;
        if !(sw.set)(self, value) {
            return Err(ProtocolError::UnknownValue {
                switch: sw.name,
                value: value.to_string(),
                allowed: sw.values,
            });
        }
        Ok(())
    }

    /// Rejects combinations the model cannot express.
    pub fn validate(&self) -> Result<(), ProtocolError> {
        let bad = |why: &str| Err(ProtocolError::Inexpressible(why.to_string()));
        if self.bpf_direct_api == BpfDirectApi::Single
            && self.single_direct_api == SingleDirectApi::Absent
        {
            return bad("bpf_direct_api=single needs the single-ip direct API (single_direct_api is absent)");
        }
        if self.bpf_direct_api == BpfDirectApi::Single
            && self.bpf_share_state != BpfShareState::None
        {
            return bad("bpf_share_state needs bpf_direct_api=multi: the single-ip API's shared direct_ops has no owner callback");
        }
        if self.bpf_direct_api == BpfDirectApi::SharedOps
            && self.bpf_share_state != BpfShareState::TrampFlags
        {
            return bad("bpf_direct_api=shared-ops needs bpf_share_state=tramp-flags (its ops_func finds the trampoline by ip and works on tr->flags)");
        }
        if self.bpf_direct_api == BpfDirectApi::SharedOps
            && self.direct_call_source != DirectCallSource::FunctionsHash
        {
            return bad("bpf_direct_api=shared-ops needs direct_call_source=functions-hash (one ops for every trampoline keeps no single address)");
        }
        if self.bpf_direct_api == BpfDirectApi::SharedOps
            && self.single_direct_api != SingleDirectApi::Absent
        {
            return bad("bpf_direct_api=shared-ops needs single_direct_api=absent (both would own the static direct_ops slot)");
        }
        if self.direct_call_source == DirectCallSource::Ops
            && self.single_direct_api != SingleDirectApi::Absent
        {
            return bad("direct_call_source=ops needs single_direct_api=absent: the single-ip API keeps no address in its ops");
        }
        if self.bpf_retry_guarded && self.bpf_share_state != BpfShareState::IndirectBool {
            return bad("bpf_retry_guarded=true needs bpf_share_state=indirect-bool (it guards on tr->indirect_call)");
        }
        if self.self_syncs_share && self.bpf_share_state != BpfShareState::TrampFlags {
            return bad("self_syncs_share=true needs bpf_share_state=tramp-flags (the owner side of DISABLE_SHARE_IPMODIFY_SELF)");
        }
        if self.peer_disable_hands_off
            && (self.bpf_share_state != BpfShareState::TrampFlags
                || self.bpf_peer_lock != BpfPeerLock::Trylock)
        {
            return bad("peer_disable_hands_off=true needs bpf_share_state=tramp-flags and bpf_peer_lock=trylock");
        }
        if self.peer_disable_deferred
            && (self.bpf_share_state != BpfShareState::TrampFlags
                || self.bpf_peer_lock != BpfPeerLock::Trylock)
        {
            return bad("peer_disable_deferred=true needs bpf_share_state=tramp-flags and bpf_peer_lock=trylock");
        }
        if self.single_direct_api == SingleDirectApi::Absent && self.single_direct_ops_ipmodify {
            return bad("single_direct_ops_ipmodify=true needs the single-ip direct API (single_direct_api is absent)");
        }
        Ok(())
    }

    /// The protocol of a `key = value` text (a protocol file): `base = "<preset>"` first, then
    /// overrides, `#` comments and blank lines allowed.
    pub fn parse_file(text: &str) -> Result<Protocol, ProtocolError> {
        let mut proto: Option<Protocol> = None;
        for (i, raw) in text.lines().enumerate() {
            let line = raw.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let (k, v) = line.split_once('=').ok_or_else(|| ProtocolError::Syntax {
                line: i + 1,
                text: raw.to_string(),
            })?;
            let (k, v) = (k.trim(), v.trim().trim_matches('"'));
            if k == "base" {
                if proto.is_some() {
                    return Err(ProtocolError::Syntax {
                        line: i + 1,
                        text: "`base` given twice".into(),
                    });
                }
                proto = Some(
                    Protocol::preset(v)
                        .ok_or_else(|| ProtocolError::UnknownPreset(v.to_string()))?,
                );
                continue;
            }
            let p = proto.as_mut().ok_or(ProtocolError::MissingBase)?;
            p.set(k, v).map_err(|e| e.at_line(i + 1))?;
        }
        let p = proto.ok_or(ProtocolError::MissingBase)?;
        p.validate()?;
        Ok(p)
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

/// What went wrong reading a protocol.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProtocolError {
    UnknownPreset(String),
    UnknownSwitch(String),
    UnknownValue {
        switch: &'static str,
        value: String,
        allowed: &'static [&'static str],
    },
    Inexpressible(String),
    MissingBase,
    Syntax {
        line: usize,
        text: String,
    },
    AtLine(usize, Box<ProtocolError>),
}

impl ProtocolError {
    fn at_line(self, line: usize) -> ProtocolError {
        ProtocolError::AtLine(line, Box::new(self))
    }
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProtocolError::UnknownPreset(p) => {
                let names: Vec<&str> = PRESETS.iter().map(|(n, _)| *n).collect();
                write!(f, "unknown protocol `{p}` (presets: {})", names.join(", "))
            }
            ProtocolError::UnknownSwitch(s) => {
                let names: Vec<&str> = SWITCHES.iter().map(|s| s.name).collect();
                write!(f, "unknown switch `{s}` (switches: {})", names.join(", "))
            }
            ProtocolError::UnknownValue {
                switch,
                value,
                allowed,
            } => {
                write!(
                    f,
                    "unknown value `{value}` for switch `{switch}` (allowed: {})",
                    allowed.join(", ")
                )
            }
            ProtocolError::Inexpressible(why) => {
                write!(f, "the model cannot express this protocol: {why}")
            }
            ProtocolError::MissingBase => {
                write!(f, "protocol file must start with `base = \"<preset>\"`")
            }
            ProtocolError::Syntax { line, text } => {
                write!(f, "line {line}: expected `key = value`, found `{text}`")
            }
            ProtocolError::AtLine(line, e) => write!(f, "line {line}: {e}"),
        }
    }
}

impl std::error::Error for ProtocolError {}

/// One switch in the registry: name, documentation, values and accessors.
pub struct Switch {
    pub name: &'static str,
    pub doc: &'static str,
    pub values: &'static [&'static str],
    get: fn(&Protocol) -> String,
    set: fn(&mut Protocol, &str) -> bool,
}

const BOOL: &[&str] = &["false", "true"];

fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

macro_rules! switches {
    ($($field:ident : $kind:tt = $doc:literal),+ $(,)?) => {
        /// The switch registry, in SPEC §6 table order followed by the switches this model adds.
        pub const SWITCHES: &[Switch] = &[$(switches!(@one $field, $kind, $doc)),+];
    };
    (@one $field:ident, bool, $doc:literal) => {
        Switch {
            name: stringify!($field),
            doc: $doc,
            values: BOOL,
            get: |p| p.$field.to_string(),
            set: |p, v| parse_bool(v).map(|b| p.$field = b).is_some(),
        }
    };
    (@one $field:ident, $ty:ident, $doc:literal) => {
        Switch {
            name: stringify!($field),
            doc: $doc,
            values: $ty::VALUES,
            get: |p| p.$field.as_str().to_string(),
            set: |p, v| $ty::parse(v).map(|x| p.$field = x).is_some(),
        }
    };
}

switches! {
    direct_is_ipmodify: bool = "direct ops carry IPMODIFY (SPEC 5.1)",
    direct_meets_ipmodify: DirectMeetsIpmodify = "direct ops entering an IPMODIFY record: busy, v2 -EAGAIN, or SELF command (SPEC 5.2, 5.3)",
    peer_scan: PeerScan = "how the IPMODIFY register path finds the direct ops to ask (SPEC 5.2, 5.3)",
    register_takes_direct_mutex: RegisterTakesDirectMutex = "which registrations take direct_mutex (SPEC 5.2, 5.3)",
    cleanup_after_ipmodify: bool = "unregistering an IPMODIFY ops sends DISABLE_PEER (SPEC 5.3)",
    modify_checks_ipmodify: bool = "modify runs the IPMODIFY accounting with update-target semantics (SPEC 5.4)",
    direct_register_failure: DirectRegisterFailure = "what a failed direct register leaves behind (SPEC 5.3, 5.4)",
    single_direct_api: SingleDirectApi = "the single-ip direct API and its modify path (SPEC 5.3, 5.4)",
    bpf_direct_api: BpfDirectApi = "the direct API the BPF trampoline uses (SPEC 5.1, 6; shared-ops: one direct_ops for all trampolines, mainline 2026)",
    bpf_share_state: BpfShareState = "the BPF trampoline's sharing state and owner callback (SPEC 5.2, 5.3)",
    bpf_peer_lock: BpfPeerLock = "how the BPF owner callback takes tr->mutex (SPEC 5.3, 5.5)",
    bpf_filter_reset: bool = "BPF sets its filter with reset=1 (SPEC 5.4)",
    bpf_checks_set_filter: bool = "BPF checks the result of ftrace_set_filter_ip (SPEC 5.4)",
    single_direct_ops_ipmodify: bool = "the shared single-ip direct_ops carries IPMODIFY (SPEC 5.1, 5.2)",
    direct_keeps_flags: bool = "register_ftrace_direct_multi or-s DIRECT into the caller's flags and rejects IPMODIFY|SHARE_IPMODIFY (SPEC 5.2)",
    direct_call_source: DirectCallSource = "where call_direct_funcs finds the address (SPEC 5.4)",
    ipmodify_owner_call: IpmodifyOwnerCall = "the accounting calls the direct owner itself, unlocking and repeating (SPEC 5.5)",
    bpf_unfilter_on_failure: bool = "BPF removes the ip from its filter when registering fails (SPEC 5.2)",
    set_filter_notifies_peer: bool = "proposed: adding/removing ips of an enabled IPMODIFY ops sends ENABLE/DISABLE_PEER under direct_mutex",
    unregister_holds_direct_mutex: bool = "proposed: unregistering an IPMODIFY ops holds direct_mutex through the cleanup",
    bpf_peer_restores_share: bool = "proposed: a failed PEER rebuild restores the trampoline's SHARE flag",
    filter_remove_in_place: bool = "proposed: removing an ip from a filter cannot fail with -ENOMEM (each add allocates the slot)",
    self_syncs_share: bool = "proposed: DISABLE_SHARE_IPMODIFY_SELF for records without IPMODIFY at register and modify",
    cleanup_retries_busy_peer: bool = "proposed: cleanup retries DISABLE_PEER that found tr->mutex taken",
    bpf_unlink_reserves_image: bool = "proposed: the unlink's rebuild uses an image reserved (allocated) at link time and cannot fail",
    failed_load_keeps_hashes: bool = "proposed: a failed module load leaves the tracers' hashes alone",
    policy: SharingPolicy = "what the design promises, exclusive or shared (SPEC 4): read by the oracle, not by the model",
    match_addr_dedups: bool = "adding an ip already in a hash returns early in __ftrace_match_addr (Feb 2025 stable fix)",
    bpf_retry_new_image: bool = "the BPF -EAGAIN retry frees the image and allocates a new one after again: (6.12)",
    bpf_busy_peer_sleeps: bool = "the BPF owner callback sleeps (msleep(1)) before -EAGAIN for a taken tr->mutex (merged+; not v2)",
    bpf_retry_guarded: bool = "v2: the BPF -EAGAIN retry gives up with WARN_ON_ONCE when sharing is already on or an image is installed",
    peer_disable_hands_off: bool = "proposed: a DISABLE_PEER that finds tr->mutex taken leaves the unsharing to the holder (pending bit, checked after unlock)",
    peer_disable_deferred: bool = "proposed: a DISABLE_PEER that finds tr->mutex taken is done by its sender after direct_mutex is released (blocking tr->mutex, then direct_mutex)",
    bpf_unregister_keeps_image: bool = "a failed unregister_fentry keeps the trampoline's current image (mainline 2026)",
    direct_mod_checks_its_ips: bool = "what-if: update_ftrace_direct_mod's IPMODIFY pass covers the modified ips only, not the whole shared filter",
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

/// Resolves a protocol from a preset name plus `key=value` overrides.
pub fn resolve(name: &str, sets: &[(String, String)]) -> Result<Protocol, ProtocolError> {
    let mut p =
        Protocol::preset(name).ok_or_else(|| ProtocolError::UnknownPreset(name.to_string()))?;
    for (k, v) in sets {
        p.set(k, v)?;
    }
    p.validate()?;
    Ok(p)
}

/// Splits a `key=value` argument.
pub fn parse_assignment(s: &str) -> Result<(String, String), ProtocolError> {
    let (k, v) = s.split_once('=').ok_or_else(|| ProtocolError::Syntax {
        line: 0,
        text: s.to_string(),
    })?;
    Ok((k.trim().to_string(), v.trim().trim_matches('"').to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_match_spec_table() {
        // SPEC §6, one row per switch: pre, v2, merged, fixes-2022, rcu-hash-2023, fixes-2025.
        let rows: &[(&str, [&str; 6])] = &[
            (
                "direct_is_ipmodify",
                ["true", "false", "false", "false", "false", "false"],
            ),
            (
                "direct_meets_ipmodify",
                ["busy", "eagain", "self", "self", "self", "self"],
            ),
            (
                "peer_scan",
                [
                    "none",
                    "stop-at-sharing",
                    "first-referencing",
                    "first-referencing",
                    "first-referencing",
                    "first-referencing",
                ],
            ),
            (
                "register_takes_direct_mutex",
                [
                    "ipmodify-only",
                    "ipmodify-only",
                    "always",
                    "always",
                    "always",
                    "always",
                ],
            ),
            (
                "cleanup_after_ipmodify",
                ["false", "false", "true", "true", "true", "true"],
            ),
            (
                "modify_checks_ipmodify",
                ["false", "false", "false", "false", "false", "true"],
            ),
            (
                "direct_register_failure",
                [
                    "remove-entries",
                    "remove-entries",
                    "remove-entries",
                    "remove-entries",
                    "leave-entries",
                    "reset",
                ],
            ),
            (
                "single_direct_api",
                [
                    "locking-modify",
                    "locking-modify",
                    "locking-modify",
                    "nolock-modify",
                    "absent",
                    "absent",
                ],
            ),
            (
                "bpf_direct_api",
                ["single", "multi", "multi", "multi", "multi", "multi"],
            ),
            (
                "bpf_share_state",
                [
                    "none",
                    "indirect-bool",
                    "tramp-flags",
                    "tramp-flags",
                    "tramp-flags",
                    "tramp-flags",
                ],
            ),
            (
                "bpf_peer_lock",
                [
                    "trylock", "trylock", "trylock", "trylock", "trylock", "trylock",
                ],
            ),
            (
                "bpf_filter_reset",
                ["false", "false", "false", "true", "true", "true"],
            ),
            (
                "bpf_checks_set_filter",
                ["false", "false", "false", "false", "false", "true"],
            ),
        ];
        for (i, preset) in KERNEL_PRESETS.iter().enumerate() {
            let p = Protocol::preset(preset).unwrap();
            p.validate().unwrap();
            let sw = p.switches();
            for (name, vals) in rows {
                let got = &sw.iter().find(|(n, _)| n == name).unwrap().1;
                assert_eq!(got, vals[i], "{preset}.{name}");
            }
        }
    }

    #[test]
    fn clean_presets_are_presets() {
        for n in CLEAN_PRESETS {
            assert!(Protocol::preset(n).is_some(), "CLEAN_PRESETS names `{n}`");
        }
    }

    #[test]
    fn debian_trees_against_the_mainline_states() {
        // What `ftsim versions` and README say each Debian tree is.
        let d61 = Protocol::DEBIAN_6_1.diff(&Protocol::FIXES_2022);
        let d612 = Protocol::DEBIAN_6_12.diff(&Protocol::FIXES_2025);
        let s = |v: &[(&str, String)]| -> Vec<String> {
            v.iter().map(|(k, v)| format!("{k}={v}")).collect()
        };
        assert_eq!(
            s(&d61),
            ["modify_checks_ipmodify=true", "match_addr_dedups=true"]
        );
        assert_eq!(
            s(&d612),
            ["match_addr_dedups=true", "bpf_retry_new_image=true"]
        );
        assert_eq!(
            Protocol::DEBIAN_6_1.closest_other_preset("debian-6.1").0,
            "fixes-2022"
        );
        assert_eq!(
            Protocol::DEBIAN_6_12.closest_other_preset("debian-6.12").0,
            "fixes-2025"
        );
    }

    #[test]
    fn mainline_2026_against_debian_6_12() {
        // What `ftsim versions` and README say mainline-2026 is.
        let d: Vec<String> = Protocol::MAINLINE_2026
            .diff(&Protocol::DEBIAN_6_12)
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        assert_eq!(
            d,
            [
                "bpf_direct_api=shared-ops",
                "direct_call_source=functions-hash",
                "bpf_unregister_keeps_image=true"
            ]
        );
        assert_eq!(
            Protocol::MAINLINE_2026
                .closest_other_preset("mainline-2026")
                .0,
            "debian-6.12"
        );
        let e = resolve(
            "mainline-2026",
            &[("direct_call_source".into(), "ops".into())],
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("cannot express"), "{e}");
    }

    #[test]
    fn every_preset_is_valid_and_named() {
        for (n, _) in PRESETS {
            let p = Protocol::preset(n).unwrap();
            p.validate().unwrap();
            assert_eq!(p.preset_name(), Some(*n));
            assert_eq!(p.describe(), *n);
        }
    }

    #[test]
    fn protocol_file_and_errors() {
        let p = Protocol::parse_file(
            "base = \"fixes-2025\"\nmodify_checks_ipmodify = false # what if\n",
        )
        .unwrap();
        assert!(!p.modify_checks_ipmodify);
        assert_eq!(p.describe(), "fixes-2025+modify_checks_ipmodify=false");
        assert_eq!(
            Protocol::parse_file("peer_scan = none").unwrap_err(),
            ProtocolError::MissingBase
        );
        let e = Protocol::parse_file("base = merged\nfoo = 1")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("line 2") && e.contains("unknown switch `foo`"),
            "{e}"
        );
        let e = Protocol::parse_file("base = merged\npeer_scan = sideways")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("unknown value `sideways`") && e.contains("first-referencing"),
            "{e}"
        );
        let e = resolve("nope", &[]).unwrap_err().to_string();
        assert!(e.contains("unknown protocol `nope`"), "{e}");
        let e = resolve(
            "rcu-hash-2023",
            &[("bpf_direct_api".into(), "single".into())],
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("cannot express"), "{e}");
    }
}
