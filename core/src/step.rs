//! The step vocabulary: what a frame returns ([`Ret`]), the decisions it asks a driver for
//! ([`Request`], [`AllocSite`]), what it is resumed with ([`Input`]), what a thread does after a
//! run ([`Status`]), the trace's events ([`Event`], [`EventKind`]), a plan of injected faults
//! ([`Faults`]) and the result of one operation ([`OpResult`]). Plain data: it names locks, ids
//! and operations and nothing of the frames or the [`Kernel`](crate::kernel::Kernel), so the
//! state, the frames, the interpreter and every driver can share it without an import ring.

use crate::errno::Errno;
use crate::ids::{CallSite, FnId, OpsId, Tid};
use crate::locks::Lock;
use crate::op::Op;
use crate::property::Violation;
use std::fmt;

/// What a frame returns to its caller: kernel-style `0`/`1` or an errno.
pub type Ret = Result<u8, Errno>;

/// Where an allocation can fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AllocSite {
    /// `alloc_and_copy_ftrace_hash` in `ftrace_set_hash`.
    HashCopy,
    /// `ftrace_add_rec_direct` (one per entry).
    DirectEntry,
    /// livepatch's `kzalloc` of its ops.
    KlpOps,
    /// `bpf_tramp_image_alloc`.
    TrampImage,
    /// proposed `filter_remove_in_place`: the slot a later in-place removal of the added ip
    /// uses, allocated when the ip is added.
    RemoveSlot,
    /// proposed `bpf_unlink_reserves_image`: the image the unlink of this link will be built in,
    /// allocated when the link is made.
    TrampReserve,
}

impl AllocSite {
    pub fn name(self) -> &'static str {
        match self {
            AllocSite::HashCopy => "hash-copy",
            AllocSite::DirectEntry => "direct-entry",
            AllocSite::KlpOps => "klp-ops",
            AllocSite::TrampImage => "tramp-image",
            AllocSite::RemoveSlot => "remove-slot",
            AllocSite::TrampReserve => "tramp-reserve",
        }
    }
}

/// A decision the driver makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Request {
    /// Blocking `mutex_lock`: answer once the lock is free (answer `true`).
    Lock(Lock),
    /// `mutex_trylock`: `true` if the driver gives the lock (it must be free), `false` for contention.
    TryLock(Lock),
    /// An allocation: `true` succeeds, `false` fails.
    Alloc(AllocSite),
    /// `arch_prepare_bpf_trampoline` for the trampoline of a function: `true` builds.
    Build(FnId),
    /// `msleep()`: let the other threads run first. A driver resumes a sleeping thread only when
    /// no other thread can step (the answer is ignored).
    Sleep,
}

impl fmt::Display for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Request::Lock(l) => write!(f, "lock {l}"),
            Request::TryLock(l) => write!(f, "trylock {l}"),
            Request::Alloc(s) => write!(f, "alloc {}", s.name()),
            Request::Build(x) => write!(f, "build tramp({x})"),
            Request::Sleep => write!(f, "sleep"),
        }
    }
}

/// What a frame is resumed with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Input {
    /// First entry.
    Start,
    /// The driver's answer to the frame's request.
    Answer(bool),
    /// The return value of the child frame it called.
    Child(Ret),
}

impl Input {
    /// The child's return value.
    pub fn ret(self) -> Ret {
        match self {
            Input::Child(r) => r,
            other => panic!("[core internal bug] expected a child return, got {other:?}"),
        }
    }
    /// The driver's answer.
    pub fn ok(self) -> bool {
        match self {
            Input::Answer(b) => b,
            other => panic!("[core internal bug] expected an answer, got {other:?}"),
        }
    }
}

/// What a thread does after `Thread::run`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Waiting for the driver to decide this.
    Wants(Request),
    /// The operation finished.
    Done(Result<(), Errno>),
    /// No operation in flight.
    Idle,
}

/// One event of the trace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub tid: Tid,
    pub kind: EventKind,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EventKind {
    Start(Op),
    Finish(Result<(), Errno>),
    Enter(&'static str),
    Leave(&'static str, Ret),
    Acquire(Lock),
    Release(Lock),
    TryFailed(Lock),
    AllocFailed(AllocSite),
    BuildFailed(FnId),
    /// An owner callback is sent a command.
    Callback(OpsId, &'static str),
    /// A record's call site changed.
    Site(FnId, CallSite),
    /// A kernel WARN fired (the code carries on).
    Warn(&'static str),
}

/// Which decisions of one operation fail. Decisions of each kind are numbered from 0 within the
/// operation; bit `i` set means the `i`-th one fails (for trylocks: finds the lock taken).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Faults {
    pub allocs: u32,
    pub builds: u32,
    pub trylocks: u32,
}

impl Faults {
    pub const NONE: Faults = Faults {
        allocs: 0,
        builds: 0,
        trylocks: 0,
    };

    pub fn is_none(&self) -> bool {
        *self == Faults::NONE
    }
}

impl std::fmt::Display for Faults {
    /// ` !alloc=0,2 !build=0 !trylock=1`, or nothing.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (name, bits) in [
            ("alloc", self.allocs),
            ("build", self.builds),
            ("trylock", self.trylocks),
        ] {
            if bits != 0 {
                let idx: Vec<String> = (0..32)
                    .filter(|i| bits & (1 << i) != 0)
                    .map(|i| i.to_string())
                    .collect();
                write!(f, " !{name}={}", idx.join(","))?;
            }
        }
        Ok(())
    }
}

impl Faults {
    /// Parses the ` !kind=i,j` suffix words of a reproducer line.
    pub fn parse_word(&mut self, word: &str) -> Result<(), String> {
        let w = word
            .strip_prefix('!')
            .ok_or_else(|| format!("expected a fault like `!alloc=0`, found `{word}`"))?;
        let (kind, list) = w
            .split_once('=')
            .ok_or_else(|| format!("expected `!kind=i,j`, found `{word}`"))?;
        let slot = match kind {
            "alloc" => &mut self.allocs,
            "build" => &mut self.builds,
            "trylock" => &mut self.trylocks,
            _ => {
                return Err(format!(
                    "unknown fault kind `{kind}` (expected alloc, build or trylock)"
                ))
            }
        };
        for i in list.split(',') {
            let n: u32 = i
                .parse()
                .map_err(|_| format!("bad fault index `{i}` in `{word}`"))?;
            if n >= 32 {
                return Err(format!("fault index {n} out of range (0..32) in `{word}`"));
            }
            *slot |= 1 << n;
        }
        Ok(())
    }
}

/// The result of one operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpResult {
    pub result: Result<(), Errno>,
    /// Properties violated by this operation or in the state it left.
    pub violations: Vec<Violation>,
    /// A trylock found its lock taken.
    pub contended: bool,
    /// An allocation or build failure was injected.
    pub faulted: bool,
    /// The model is stuck (lock recursion): no further operation can run.
    pub stuck: bool,
}
