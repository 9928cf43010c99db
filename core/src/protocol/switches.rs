//! The switch definitions: one type per multi-valued switch (its values and their spellings) and
//! the registry [`SWITCHES`] every protocol file, override and `ftsim versions` reads.

use super::{Protocol, ProtocolError};
use std::fmt;

macro_rules! switch_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $var:ident => $s:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum $name { $($(#[$vm])* $var),+ }
        impl $name {
            pub const VALUES: &'static [&'static str] = &[$($s),+];
            /// The value's spelling in protocol files and on the command line.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$var => $s),+
                }
            }
            /// The value a spelling names.
            fn parse(s: &str) -> Option<Self> {
                match s {
                    $($s => Some($name::$var),)+
                    _ => None,
                }
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
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
    /// one switch the reference oracle reads (`ftsim_drive::oracle`), and one no part of the model
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
impl Protocol {
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
}

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
