//! The failure footprint (SPEC §3.6): what a failed operation must leave unchanged, a sink of
//! the state walk ([`crate::walk`]).

use crate::ids::{Addr, OpsId, OpsOwner, ProgId, Tid};
use crate::kernel::{fl, CallSite, Kernel};
use crate::locks::Lock;
use crate::property::{Property, Violation};
use crate::walk::{
    addr_word, fields, walk_kernel, AddrView, Buf, Field, Fields, Identity, Section, Sink,
    COUNTERS, EXECUTOR,
};

/// The state a failed operation must leave unchanged, minus the tolerated sharing state
/// (SPEC §3.6): a trampoline rebuilt into or out of sharing mode (new image serial, ORIG_STACK,
/// SHARE) counts as unchanged; a sharing state left behind is judged by the state check, which
/// reports a trampoline sharing with no IPMODIFY ops on its function as `share-leak`. Compared
/// before and after each failed operation. A sink of the state walk ([`FootprintSink`]): one
/// exact word stream per part of the state the atomicity finding names.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Footprint {
    parts: [Vec<u64>; PARTS.len()],
}

/// The parts of a footprint, by the name a finding gives them.
const PARTS: [&str; 7] = [
    "records",
    "ops",
    "ftrace_ops_list",
    "direct_functions",
    "trampolines",
    "owners",
    "modules",
];

/// What a failed operation may change, and [`observable`](../../ftsim_tests/observable/index.html)
/// ignores as well: the sharing state (SHARE and ORIG_STACK of the trampoline, v2's
/// `indirect_call`, proposed's `unshare_pending`), the trampoline's serial counter and selector,
/// and the direct user's `direct_busy` (set only while its module init or exit runs).
pub const TOLERATED: Fields = fields(&[
    Field::DirectBusy,
    Field::TrOrigStack,
    Field::TrShare,
    Field::TrIndirectCall,
    Field::UnsharePending,
    Field::TrSelector,
    Field::TrNextSerial,
]);

/// The footprint as a sink of [`walk`]: which part each field goes to, and what a failure may
/// change in it without leaving a trace.
pub struct FootprintSink<'a> {
    fp: &'a mut Footprint,
    direct_keeps_flags: bool,
    bpf_filter_reset: bool,
    /// The owner of the ops slot being walked, and whether it is enabled.
    owner: OpsOwner,
    enabled: bool,
}

impl FootprintSink<'_> {
    /// The part a field belongs to, or `None` when a failure may change it.
    #[inline]
    fn part(f: Field) -> Option<usize> {
        use Field::*;
        Some(match f {
            RecPresent | RecDisabled | RecIpmodify | RecDirect | RecCount | RecSite => 0,
            OpsFlags | OpsFuncSet | OpsTrampolineSet | OpsHashOf | OpsFilter | OpsNotrace
            | OpsDirectCall => 1,
            OpsList | OpsListEntry => 2,
            DirectFunctions | DirectIp | DirectAddr => 3,
            TrLinks | TrCallOrig | LinkKind | LinkProg | TrImage | ImageCallOrig | ImageProgs
            | ImageProg => 4,
            KlpStack | KlpRegistered | Kprobes | DirectUser => 5,
            ModLoaded | ModLive | ModBusy | ModKlpSeen | TracerRegistered | KprobeFtraceEnabled => {
                6
            }
            _ => return None,
        })
    }
    #[inline]
    fn put(&mut self, f: Field, w: u64) {
        if let Some(i) = Self::part(f) {
            self.fp.parts[i].push(w);
        }
    }
}

/// An address as a failed operation may leave it: the current image of a trampoline whatever
/// its serial (a rebuild into sharing mode changes the serial, not what runs), or a stale one.
#[inline]
fn canon(a: AddrView) -> u64 {
    match a.raw {
        Addr::Image { tr, .. } if a.current => addr_word(Addr::Image { tr, serial: 0 }),
        other => addr_word(other),
    }
}

impl Sink for FootprintSink<'_> {
    /// The sharing state (SHARE, ORIG_STACK of the trampoline and of its image, v2's
    /// `indirect_call`), the serial counters (an image's serial counts only as whether an
    /// address is the current image), the proposed hand-off bit
    /// `unshare_pending` (sharing state too) and the direct user's `direct_busy` (set only while
    /// its module init or exit runs); locks, threads and counters are the executor's.
    const IGNORES: Fields =
        TOLERATED | fields(&[Field::ImageOrigStack, Field::Proto]) | EXECUTOR | COUNTERS;
    #[inline]
    fn begin(&mut self, s: Section) {
        if let Section::Ops { owner, .. } = s {
            self.owner = owner;
        }
    }
    #[inline]
    fn val(&mut self, f: Field, mut v: u64) {
        if f == Field::OpsFlags {
            self.enabled = v & fl::ENABLED as u64 != 0;
            v &= !(fl::SHARE_IPMODIFY as u64);
            // The flags of a trampoline's ops that is not registered do nothing until it
            // registers, where register_ftrace_direct(_multi) assigns them again
            // (`ops->flags = MULTI_FLAGS`, Debian 6.1.192 ftrace.c:5731, 6.12.117
            // ftrace.c:6050). Only there: v2's register or-s DIRECT into the caller's flags
            // (`direct_keeps_flags`), so what a failure leaves in them stays, and no other
            // owner's flags are ever assigned by ftrace. BPF's shared direct_ops (mainline 2026)
            // has no flag but what update_ftrace_direct_add or-s in (`ops->flags |=
            // MULTI_FLAGS`; trampoline.c `direct_ops = { .ops_func }`), so an unregistered one
            // with DIRECT and one without are the same to its next registration.
            let assigned = !self.direct_keeps_flags
                && matches!(self.owner, OpsOwner::Bpf(_) | OpsOwner::BpfDirectOps);
            if assigned && !self.enabled {
                v = 0;
            }
        }
        self.put(f, v);
    }
    #[inline]
    fn len(&mut self, f: Field, n: usize) {
        self.put(f, n as u64);
    }
    #[inline]
    fn site(&mut self, f: Field, site: CallSite, a: Option<AddrView>) {
        let w = match (site, a) {
            (CallSite::Direct(_), Some(a)) => canon(a),
            (CallSite::Caller, _) => u64::MAX - 1,
            _ => u64::MAX,
        };
        self.put(f, w);
    }
    #[inline]
    fn addr(&mut self, f: Field, a: Option<AddrView>) {
        let w = match (f, a) {
            (_, None) => u64::MAX,
            (Field::DirectUser, Some(a)) => addr_word(a.raw),
            (_, Some(a)) => canon(a),
        };
        self.put(f, w);
    }
    #[inline]
    fn prog(&mut self, f: Field, p: ProgId) {
        self.put(f, p.0 as u64);
    }
    #[inline]
    fn ips(&mut self, f: Field, pairs: &[(u16, u16)]) {
        // With `bpf_filter_reset` a trampoline's next registration resets its filter, so what
        // a failed registration leaves in the filter of its unregistered ops cannot matter.
        let reset = f == Field::OpsFilter
            && self.bpf_filter_reset
            && matches!(self.owner, OpsOwner::Bpf(_))
            && !self.enabled;
        let pairs = if reset { &[][..] } else { pairs };
        self.put(f, pairs.len() as u64);
        for &(ip, n) in pairs {
            self.put(f, ip as u64 | (n as u64) << 16);
        }
    }
    #[inline]
    fn ops_ref(&mut self, f: Field, id: Option<OpsId>) {
        self.put(f, id.map_or(u64::MAX, |x| x.0 as u64));
    }
    #[inline]
    fn lock(&mut self, _l: Lock, _holder: Tid) {}
    #[inline]
    fn hashed<T: std::hash::Hash>(&mut self, _f: Field, _v: &T) {}
    #[inline]
    fn gen(&mut self, _gen: u64, _in_flight: bool) {}
}

/// Takes the footprint of a state.
pub fn footprint(k: &Kernel) -> Footprint {
    let mut fp = Footprint::default();
    footprint_into(k, &mut fp);
    fp
}

/// Takes the footprint of a state into `fp`, reusing its buffers.
pub fn footprint_into(k: &Kernel, fp: &mut Footprint) {
    walk_kernel(
        k,
        &Identity,
        &mut Buf::default(),
        &mut FootprintSink::new(k, fp),
    );
}

impl<'a> FootprintSink<'a> {
    /// The sink that takes the footprint of `k` into `fp` (cleared; its buffers reused) when
    /// `k` is walked under the identity, alone or beside another sink ([`crate::walk::Tee`]).
    pub fn new(k: &Kernel, fp: &'a mut Footprint) -> FootprintSink<'a> {
        for p in &mut fp.parts {
            p.clear();
        }
        FootprintSink {
            fp,
            direct_keeps_flags: k.proto.direct_keeps_flags,
            bpf_filter_reset: k.proto.bpf_filter_reset,
            owner: OpsOwner::Kprobe,
            enabled: false,
        }
    }
}

impl Footprint {
    /// What changed between `self` (before) and `after`: the atomicity violation if anything but
    /// the sharing state changed.
    pub fn compare(&self, after: &Footprint, what: &str) -> Option<Violation> {
        let changed: Vec<&str> = PARTS
            .iter()
            .zip(self.parts.iter().zip(&after.parts))
            .filter(|(_, (a, b))| a != b)
            .map(|(name, _)| *name)
            .collect();
        if !changed.is_empty() {
            return Some(Violation::new(
                Property::Atomicity,
                None,
                format!("`{what}` failed but changed {}", changed.join(", ")),
            ));
        }
        None
    }
}
