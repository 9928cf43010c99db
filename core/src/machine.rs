//! Steps at lock boundaries: threads, frames, requests and the interpreter.
//!
//! Every kernel entry point is a resumable frame: plain data holding its program counter and
//! locals. A thread is a stack of frames running one owner-level operation. [`Kernel::run`]
//! executes the top frame until it needs something only a driver can decide — a lock, a trylock,
//! an allocation, an image build — and returns that [`Request`]; [`Kernel::answer`] supplies the
//! decision. The core never blocks and never chooses.

use crate::errno::Errno;
use crate::ids::{FnId, OpsId, Tid};
use crate::kernel::{CallSite, Kernel};
use crate::locks::Lock;
use crate::op::Op;
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

/// What a frame step asks the interpreter to do next.
#[derive(Debug)]
pub enum Flow {
    /// Suspend this frame until the driver answers.
    Wait(Request),
    /// Push a child frame; this frame resumes with its return value.
    Call(Frame),
    /// Pop this frame, returning to the caller.
    Ret(Ret),
}

/// A resumable kernel (or owner) function.
pub trait Step {
    /// The kernel function's name, for traces.
    const NAME: &'static str;
    fn step(&mut self, k: &mut Kernel, t: Tid, input: Input) -> Flow;
}

macro_rules! frames {
    ($($var:ident($ty:path)),+ $(,)?) => {
        /// Every resumable function of the model.
        #[derive(Clone, Debug, PartialEq, Eq, Hash)]
        pub enum Frame { $($var($ty)),+ }
        impl Frame {
            fn step(&mut self, k: &mut Kernel, t: Tid, input: Input) -> Flow {
                match self { $(Frame::$var(x) => x.step(k, t, input)),+ }
            }
            pub fn name(&self) -> &'static str {
                match self { $(Frame::$var(_) => <$ty as Step>::NAME),+ }
            }
        }
        $(impl From<$ty> for Frame { fn from(x: $ty) -> Frame { Frame::$var(x) } })+
    };
}

frames! {
    RegisterFtraceFunction(crate::ftrace::RegisterFtraceFunction),
    RegisterNolock(crate::ftrace::RegisterNolock),
    FtraceStartup(crate::ftrace::FtraceStartup),
    UpdateIpmodify(crate::ftrace::UpdateIpmodify),
    Prepare(crate::ftrace::PrepareForIpmodify),
    Cleanup(crate::ftrace::CleanupAfterIpmodify),
    Unregister(crate::ftrace::UnregisterFtraceFunction),
    SetHash(crate::ftrace::SetHash),
    SetHashes(crate::ftrace::SetHashes),
    OpsFunc(crate::ftrace::OpsFunc),
    RegisterDirectMulti(crate::direct::RegisterDirectMulti),
    UnregisterDirectMulti(crate::direct::UnregisterDirectMulti),
    ModifyDirectMulti(crate::direct::ModifyDirectMulti),
    RegisterDirectSingle(crate::direct::RegisterDirectSingle),
    ModifyDirectSingle(crate::direct::ModifyDirectSingle),
    UnregisterDirectSingle(crate::direct::UnregisterDirectSingle),
    UpdateDirectAdd(crate::direct::UpdateDirectAdd),
    UpdateDirectDel(crate::direct::UpdateDirectDel),
    UpdateDirectMod(crate::direct::UpdateDirectMod),
    BpfOpsFunc(crate::owners::bpf::BpfOpsFunc),
    BpfUpdate(crate::owners::bpf::BpfTrampolineUpdate),
    BpfRegisterFentry(crate::owners::bpf::RegisterFentry),
    BpfModifyFentry(crate::owners::bpf::ModifyFentry),
    BpfUnregisterFentry(crate::owners::bpf::UnregisterFentry),
    BpfLink(crate::owners::bpf::BpfLink),
    BpfUnlink(crate::owners::bpf::BpfUnlink),
    BpfUnsharePending(crate::owners::bpf::UnsharePending),
    KlpEnable(crate::owners::livepatch::KlpEnable),
    KlpDisable(crate::owners::livepatch::KlpDisable),
    KlpPatchFunc(crate::owners::livepatch::KlpPatchFunc),
    KlpUnpatchFunc(crate::owners::livepatch::KlpUnpatchFunc),
    KprobeArm(crate::owners::kprobes::KprobeArm),
    KprobeDisarm(crate::owners::kprobes::KprobeDisarm),
    ArmKprobeFtrace(crate::owners::kprobes::ArmKprobeFtrace),
    DisarmKprobeFtrace(crate::owners::kprobes::DisarmKprobeFtrace),
    TracerRegister(crate::owners::tracers::TracerRegister),
    TracerSet(crate::owners::tracers::TracerSet),
    TracerUnregister(crate::owners::tracers::TracerUnregister),
    DirectUser(crate::owners::direct_users::DirectUser),
    ModuleLoad(crate::owners::modules::ModuleLoad),
    ModuleUnload(crate::owners::modules::ModuleUnload),
    ReleaseMod(crate::owners::modules::ReleaseMod),
    BpfUnshareDeferred(crate::owners::bpf::UnshareDeferred),
}

/// A thread: one in-flight owner-level operation.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Thread {
    pub stack: Vec<Frame>,
    pub pending: Option<Request>,
    input: Option<Input>,
    pub op: Option<Op>,
    /// A trylock of this operation found its lock taken (so `-EAGAIN` is allowed).
    pub contended: bool,
    /// A fault (allocation or build failure) was injected into this operation.
    pub faulted: bool,
    /// Stuck forever: it asked for a lock it already holds.
    pub stuck: bool,
}

/// What a thread does after [`Kernel::run`].
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

impl Kernel {
    /// Makes sure thread slots `0..n` exist.
    pub fn ensure_threads(&mut self, n: usize) {
        while self.threads.len() < n {
            self.threads.push(Thread::default());
        }
    }

    /// Starts owner-level operation `op` on idle thread `t`.
    pub fn start(&mut self, t: Tid, op: Op) {
        self.ensure_threads(t as usize + 1);
        let th = &mut self.threads[t as usize];
        assert!(
            th.stack.is_empty(),
            "[core internal bug] thread {t} is busy"
        );
        *th = Thread::default();
        th.stack.push(crate::owners::frame_for(&op));
        th.op = Some(op.clone());
        th.input = Some(Input::Start);
        self.ev(t, EventKind::Start(op));
    }

    /// Starts a raw kernel-level frame on idle thread `t` (for kernel-level tests).
    pub fn start_frame(&mut self, t: Tid, frame: Frame) {
        self.ensure_threads(t as usize + 1);
        let th = &mut self.threads[t as usize];
        assert!(
            th.stack.is_empty(),
            "[core internal bug] thread {t} is busy"
        );
        *th = Thread::default();
        th.stack.push(frame);
        th.input = Some(Input::Start);
    }

    /// The thread's state without running it.
    pub fn status(&self, t: Tid) -> Status {
        match self.threads.get(t as usize) {
            Some(th) if !th.stack.is_empty() => match th.pending {
                Some(r) => Status::Wants(r),
                None => panic!("[core internal bug] thread {t} is neither waiting nor runnable"),
            },
            _ => Status::Idle,
        }
    }

    /// Whether thread `t` has an operation in flight.
    pub fn busy(&self, t: Tid) -> bool {
        self.threads
            .get(t as usize)
            .is_some_and(|th| !th.stack.is_empty())
    }

    /// Runs thread `t` until it needs a decision or finishes.
    pub fn run(&mut self, t: Tid) -> Status {
        let ti = t as usize;
        let Some(mut input) = self.threads[ti].input.take() else {
            return self.status(t);
        };
        loop {
            let mut frame = self.threads[ti]
                .stack
                .pop()
                .expect("[core internal bug] running an idle thread");
            if input == Input::Start {
                self.ev(t, EventKind::Enter(frame.name()));
            }
            match frame.step(self, t, input) {
                Flow::Wait(req) => {
                    self.threads[ti].stack.push(frame);
                    self.threads[ti].pending = Some(req);
                    return Status::Wants(req);
                }
                Flow::Call(child) => {
                    self.threads[ti].stack.push(frame);
                    self.threads[ti].stack.push(child);
                    input = Input::Start;
                }
                Flow::Ret(r) => {
                    self.ev(t, EventKind::Leave(frame.name(), r));
                    if self.threads[ti].stack.is_empty() {
                        let res = r.map(|_| ());
                        self.ev(t, EventKind::Finish(res));
                        self.threads[ti].op = None;
                        return Status::Done(res);
                    }
                    input = Input::Child(r);
                }
            }
        }
    }

    /// Answers thread `t`'s pending request. For `Lock` the lock must be free (the driver waits
    /// until it is); a `TryLock` answered `true` takes the lock.
    pub fn answer(&mut self, t: Tid, ok: bool) {
        let ti = t as usize;
        let req = self.threads[ti]
            .pending
            .take()
            .expect("[core internal bug] answering a thread with no request");
        match req {
            Request::Lock(l) => {
                assert!(
                    ok,
                    "[core internal bug] a blocking lock can only be granted"
                );
                self.grant(t, l);
            }
            Request::TryLock(l) => {
                if ok {
                    self.grant(t, l);
                } else {
                    self.threads[ti].contended = true;
                    self.ev(t, EventKind::TryFailed(l));
                }
            }
            Request::Alloc(site) => {
                if !ok {
                    self.threads[ti].faulted = true;
                    self.ev(t, EventKind::AllocFailed(site));
                }
            }
            Request::Build(f) => {
                if !ok {
                    self.threads[ti].faulted = true;
                    self.ev(t, EventKind::BuildFailed(f));
                }
            }
            Request::Sleep => {}
        }
        self.threads[ti].input = Some(Input::Answer(ok));
    }

    /// Marks thread `t` stuck forever (it waits for a lock it holds, or is in a deadlock). Its
    /// locks stay held.
    pub fn mark_stuck(&mut self, t: Tid) {
        self.threads[t as usize].stuck = true;
    }

    /// No thread has an operation in flight.
    pub fn quiescent(&self) -> bool {
        self.threads.iter().all(|th| th.stack.is_empty())
    }
}
