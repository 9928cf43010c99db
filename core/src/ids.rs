//! Small identifiers: functions, modules, tracers, ops slots, threads, programs, addresses.

use std::fmt;

/// A traceable kernel function (its record's ip), `f0`, `f1`, ... Dense from 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FnId(pub u16);

/// A loadable module, `m0`, `m1`, ...
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ModId(pub u8);

/// A plain tracer (function-tracer-like ops owner), `t0`, `t1`, ...
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TracerId(pub u8);

/// A thread of the model: one in-flight owner-level operation.
pub type Tid = u8;

/// A BPF program linked to a trampoline (serial, never reused).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ProgId(pub u32);

impl fmt::Display for FnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "f{}", self.0)
    }
}
impl fmt::Display for ModId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "m{}", self.0)
    }
}
impl fmt::Display for TracerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "t{}", self.0)
    }
}
impl fmt::Display for ProgId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "prog{}", self.0)
    }
}

fn parse_prefixed(s: &str, prefix: char, what: &str) -> Result<u32, String> {
    let rest = s
        .strip_prefix(prefix)
        .ok_or_else(|| format!("expected a {what} like `{prefix}0`, found `{s}`"))?;
    if rest.is_empty()
        || !rest.bytes().all(|b| b.is_ascii_digit())
        || (rest.len() > 1 && rest.starts_with('0'))
    {
        return Err(format!("expected a {what} like `{prefix}0`, found `{s}`"));
    }
    rest.parse::<u32>()
        .map_err(|_| format!("{what} number out of range in `{s}`"))
}

impl std::str::FromStr for FnId {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let n = parse_prefixed(s, 'f', "function")?;
        u16::try_from(n)
            .map(FnId)
            .map_err(|_| format!("function number out of range in `{s}`"))
    }
}
impl std::str::FromStr for ModId {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let n = parse_prefixed(s, 'm', "module")?;
        u8::try_from(n)
            .map(ModId)
            .map_err(|_| format!("module number out of range in `{s}`"))
    }
}
impl std::str::FromStr for TracerId {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let n = parse_prefixed(s, 't', "tracer")?;
        u8::try_from(n)
            .map(TracerId)
            .map_err(|_| format!("tracer number out of range in `{s}`"))
    }
}

/// The kind of a BPF tracing program (SPEC §2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ProgKind {
    Fentry,
    Fexit,
    FmodRet,
}

impl ProgKind {
    pub const ALL: [ProgKind; 3] = [ProgKind::Fentry, ProgKind::Fexit, ProgKind::FmodRet];
    pub fn as_str(self) -> &'static str {
        match self {
            ProgKind::Fentry => "fentry",
            ProgKind::Fexit => "fexit",
            ProgKind::FmodRet => "fmod_ret",
        }
    }
    /// fexit and fmod_ret programs make the trampoline call the traced function (`CALL_ORIG`).
    pub fn calls_orig(self) -> bool {
        !matches!(self, ProgKind::Fentry)
    }
}

impl fmt::Display for ProgKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for ProgKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        ProgKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                format!("unknown program kind `{s}` (expected fentry, fexit or fmod_ret)")
            })
    }
}

/// A trampoline address: a BPF image (trampoline of function `tr`, build `serial`), a single-ip
/// direct user's trampoline, or ftrace's own regs caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Addr {
    Image { tr: FnId, serial: u32 },
    Sample { f: FnId, serial: u32 },
}

impl fmt::Display for Addr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Addr::Image { tr, serial } => write!(f, "bpf_tramp({tr})#{serial}"),
            Addr::Sample { f: fun, serial } => write!(f, "my_tramp({fun})#{serial}"),
        }
    }
}

/// Who owns an ops slot. Every ops in the model has a fixed slot: the kernel's static ops
/// (`direct_ops`, the two stub ops, the shared kprobe ops), one per livepatched function, one per
/// BPF trampoline, one per tracer, and a few raw slots for kernel-level tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum OpsOwner {
    /// The shared IPMODIFY ops of kprobes (`kprobe_ipmodify_ops`).
    Kprobe,
    /// The single-ip API's shared `direct_ops`.
    DirectSingle,
    /// `__modify_ftrace_direct_multi`'s static `tmp_ops` (STUB, shares the modified ops' hashes).
    StubMulti,
    /// `ftrace_modify_direct_caller`'s static `stub_ops`.
    StubSingle,
    /// Raw ops for kernel-level tests.
    Test(u8),
    /// The klp_ops of a livepatched function.
    Klp(FnId),
    /// The `fops` of the BPF trampoline of a function.
    Bpf(FnId),
    /// BPF's one static `direct_ops` that the trampolines of all functions share
    /// (`bpf_direct_api = shared-ops`, mainline 2026: `kernel/bpf/trampoline.c` `direct_ops`,
    /// `direct_ops_alloc`). It takes the slot of the single-ip API's `direct_ops`, which such a
    /// version does not have (see [`OpsLayout::bpf_direct_ops`]).
    BpfDirectOps,
    /// A plain tracer's ops.
    Tracer(TracerId),
}

impl fmt::Display for OpsOwner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpsOwner::Kprobe => write!(f, "kprobe_ipmodify_ops"),
            OpsOwner::DirectSingle => write!(f, "direct_ops"),
            OpsOwner::StubMulti => write!(f, "tmp_ops"),
            OpsOwner::StubSingle => write!(f, "stub_ops"),
            OpsOwner::Test(n) => write!(f, "test_ops{n}"),
            OpsOwner::Klp(fun) => write!(f, "klp_ops({fun})"),
            OpsOwner::Bpf(fun) => write!(f, "tr({fun})->fops"),
            OpsOwner::BpfDirectOps => write!(f, "bpf direct_ops"),
            OpsOwner::Tracer(t) => write!(f, "tracer({t})"),
        }
    }
}

/// Number of raw test ops slots.
pub const TEST_OPS: u8 = 4;

/// Dense index of an ops slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OpsId(pub u16);

/// Maps ops owners to dense slot numbers for a world of `functions` functions and `tracers` tracers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct OpsLayout {
    pub functions: u16,
    pub tracers: u8,
    /// The static direct ops slot belongs to BPF's shared `direct_ops`
    /// ([`OpsOwner::BpfDirectOps`], `bpf_direct_api = shared-ops`) instead of the single-ip
    /// API's ([`OpsOwner::DirectSingle`]); no version has both (`Protocol::validate`).
    pub bpf_direct_ops: bool,
}

const FIXED_SLOTS: u16 = 4 + TEST_OPS as u16;

impl OpsLayout {
    pub fn len(&self) -> usize {
        FIXED_SLOTS as usize + 2 * self.functions as usize + self.tracers as usize
    }
    pub fn is_empty(&self) -> bool {
        false
    }
    /// The slots no function or tracer owns are the first, ids `0..statics()`.
    #[inline]
    pub fn statics(&self) -> usize {
        FIXED_SLOTS as usize
    }
    pub fn id(&self, o: OpsOwner) -> OpsId {
        OpsId(match o {
            OpsOwner::Kprobe => 0,
            OpsOwner::DirectSingle | OpsOwner::BpfDirectOps => 1,
            OpsOwner::StubMulti => 2,
            OpsOwner::StubSingle => 3,
            OpsOwner::Test(n) => 4 + n as u16,
            OpsOwner::Klp(f) => FIXED_SLOTS + f.0,
            OpsOwner::Bpf(f) => FIXED_SLOTS + self.functions + f.0,
            OpsOwner::Tracer(t) => FIXED_SLOTS + 2 * self.functions + t.0 as u16,
        })
    }
    pub fn owner(&self, id: OpsId) -> OpsOwner {
        let i = id.0;
        match i {
            0 => OpsOwner::Kprobe,
            1 if self.bpf_direct_ops => OpsOwner::BpfDirectOps,
            1 => OpsOwner::DirectSingle,
            2 => OpsOwner::StubMulti,
            3 => OpsOwner::StubSingle,
            _ if i < FIXED_SLOTS => OpsOwner::Test((i - 4) as u8),
            _ if i < FIXED_SLOTS + self.functions => OpsOwner::Klp(FnId(i - FIXED_SLOTS)),
            _ if i < FIXED_SLOTS + 2 * self.functions => {
                OpsOwner::Bpf(FnId(i - FIXED_SLOTS - self.functions))
            }
            _ => OpsOwner::Tracer(TracerId((i - FIXED_SLOTS - 2 * self.functions) as u8)),
        }
    }
}

/// What the call site of a function does, as last written by a code update.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CallSite {
    /// A nop: the body runs, nothing else.
    Nop,
    /// A call into ftrace's caller, which runs the list function (or a single ops' callback).
    Caller,
    /// `DIRECT_EN`: a call straight into the trampoline at this address.
    Direct(Addr),
}
