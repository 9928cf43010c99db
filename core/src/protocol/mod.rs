//! Protocol versions as values of one type made of named switches (SPEC §5, §6).
//!
//! Every behaviour that differs between versions of the kernel code sits behind a switch; a
//! [`Protocol`] is a set of switch values, a preset is a named protocol, and a protocol file or a
//! command line composes a version that never existed (`base = "fixes-2025"` plus overrides).
//! Switch names and value spellings are part of the interface: users write them in protocol files,
//! reproducers and on the command line.

//!
//! `switches.rs` holds the switch definitions (one type per switch and the registry of names,
//! values and accessors), `presets.rs` the named protocols, `file.rs` protocol files, `key=value`
//! overrides and their errors; this file the [`Protocol`] itself and the combinations the model
//! cannot express.

mod file;
mod presets;
mod switches;
#[cfg(test)]
mod tests;

pub use file::*;
pub use presets::*;
pub use switches::*;

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

impl Protocol {
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
}
