//! The interpreter: threads (a stack of [`Frame`]s running one owner-level operation) and the
//! steps at lock boundaries. Every kernel entry point is a resumable frame: plain data holding its
//! program counter and locals (`frames.rs`). [`Thread::run`] executes the top frame of a thread
//! against the kernel until it needs something only a driver can decide — a lock, a trylock, an
//! allocation, an image build — and returns that [`Request`]; [`Thread::answer`] supplies the
//! decision. The core never blocks and never chooses.
//!
//! The threads are the executor's state, not the kernel's: a frame sees the [`Kernel`] and its
//! own thread id, never another thread. An executor keeps its threads beside the kernel (the
//! sequential driver one [`Thread`], the scheduler and the thread driver [`Threads`]) and hands
//! both to the interpreter and to the state walk (`walk.rs`).

use crate::frames::{Flow, Frame};
use crate::ids::Tid;
use crate::kernel::Kernel;
use crate::op::Op;
use crate::step::{EventKind, Input, Request, Status};

/// A thread: one in-flight owner-level operation.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Thread {
    pub stack: Vec<Frame>,
    pub pending: Option<Request>,
    /// What the thread is resumed with next (the driver's answer, or the start).
    pub input: Option<Input>,
    pub op: Option<Op>,
    /// A trylock of this operation found its lock taken (so `-EAGAIN` is allowed).
    pub contended: bool,
    /// A fault (allocation or build failure) was injected into this operation.
    pub faulted: bool,
    /// Stuck forever: it asked for a lock it already holds.
    pub stuck: bool,
}

impl Thread {
    /// `*self = src.clone()`, reusing `self`'s allocations: the stack keeps its allocation
    /// (empty at quiescence; the next operation's frames go there). Every field is named.
    #[inline]
    pub fn copy_from(&mut self, src: &Thread) {
        let Thread {
            stack,
            pending,
            input,
            op,
            contended,
            faulted,
            stuck,
        } = src;
        self.stack.clone_from(stack);
        self.pending = *pending;
        self.input.clone_from(input);
        self.op.clone_from(op);
        self.contended = *contended;
        self.faulted = *faulted;
        self.stuck = *stuck;
    }

    /// An idle thread, as `Thread::default()`, that keeps its stack's allocation (the
    /// explorer runs every transition in one buffer: its frames need no allocation).
    #[inline]
    fn reset(&mut self) {
        let Thread {
            stack,
            pending,
            input,
            op,
            contended,
            faulted,
            stuck,
        } = self;
        stack.clear();
        *pending = None;
        *input = None;
        *op = None;
        *contended = false;
        *faulted = false;
        *stuck = false;
    }

    /// Starts owner-level operation `op` on this thread, idle, as thread `t` of kernel `k`.
    pub fn start(&mut self, k: &mut Kernel, t: Tid, op: Op) {
        assert!(
            self.stack.is_empty(),
            "[core internal bug] thread {t} is busy"
        );
        self.reset();
        self.stack.push(crate::owners::frame_for(&op));
        self.input = Some(Input::Start);
        if k.trace.is_some() {
            k.ev(t, EventKind::Start(op.clone()));
        }
        self.op = Some(op);
    }

    /// Starts a raw kernel-level frame on this thread, idle (for kernel-level tests).
    pub fn start_frame(&mut self, frame: Frame) {
        assert!(
            self.stack.is_empty(),
            "[core internal bug] starting a frame on a busy thread"
        );
        self.reset();
        self.stack.push(frame);
        self.input = Some(Input::Start);
    }

    /// The thread's state without running it.
    pub fn status(&self) -> Status {
        if self.stack.is_empty() {
            return Status::Idle;
        }
        match self.pending {
            Some(r) => Status::Wants(r),
            None => panic!("[core internal bug] a thread is neither waiting nor runnable"),
        }
    }

    /// Whether the thread has an operation in flight.
    pub fn busy(&self) -> bool {
        !self.stack.is_empty()
    }

    /// Runs this thread, thread `t` of kernel `k`, until it needs a decision or finishes. The
    /// top frame steps where it lies on the stack (a step sees the kernel, never its thread), so
    /// a frame is not moved off the stack and back at every step.
    pub fn run(&mut self, k: &mut Kernel, t: Tid) -> Status {
        self.run_with(k, t, |_, _| None)
    }

    /// [`Thread::run`], answering the requests it meets on the way with `decide` (called with
    /// the request pending, as a driver would see it after `run`): `Some(ok)` is answered at once
    /// ([`Thread::answer`]) and the thread runs on, `None` returns the request as `run` does.
    /// The same requests, answers and events as `run` then `answer` in turn; a driver that
    /// answers every request itself (the sequential one) so does not leave and re-enter the
    /// interpreter at each.
    #[inline]
    pub fn run_with(
        &mut self,
        k: &mut Kernel,
        t: Tid,
        mut decide: impl FnMut(&mut Kernel, Request) -> Option<bool>,
    ) -> Status {
        let Some(mut input) = self.input.take() else {
            return self.status();
        };
        // No frame (nor a driver's answer) turns the trace on or off: read once per run.
        let tracing = k.trace.is_some();
        loop {
            let frame = self
                .stack
                .last_mut()
                .expect("[core internal bug] running an idle thread");
            if tracing && matches!(input, Input::Start) {
                k.ev(t, EventKind::Enter(frame.name()));
            }
            match frame.step(k, t, input) {
                Flow::Wait(req) => {
                    self.pending = Some(req);
                    let Some(ok) = decide(k, req) else {
                        return Status::Wants(req);
                    };
                    self.answer(k, t, ok);
                    input = Input::Answer(ok);
                    self.input = None;
                }
                Flow::Call(child) => {
                    self.stack.push(child);
                    input = Input::Start;
                }
                Flow::Ret(r) => {
                    if tracing {
                        k.ev(t, EventKind::Leave(frame.name(), r));
                    }
                    // Dropped where it lies (`pop` would move it out first).
                    let depth = self.stack.len() - 1;
                    self.stack.truncate(depth);
                    if depth == 0 {
                        let res = r.map(|_| ());
                        k.ev(t, EventKind::Finish(res));
                        self.op = None;
                        return Status::Done(res);
                    }
                    input = Input::Child(r);
                }
            }
        }
    }

    /// Answers the pending request of this thread, thread `t` of kernel `k`. For `Lock` the lock
    /// must be free (the driver waits until it is); a `TryLock` answered `true` takes the lock.
    pub fn answer(&mut self, k: &mut Kernel, t: Tid, ok: bool) {
        let req = self
            .pending
            .take()
            .expect("[core internal bug] answering a thread with no request");
        match req {
            Request::Lock(l) => {
                assert!(
                    ok,
                    "[core internal bug] a blocking lock can only be granted"
                );
                k.grant(t, l);
            }
            Request::TryLock(l) => {
                if ok {
                    k.grant(t, l);
                } else {
                    self.contended = true;
                    k.ev(t, EventKind::TryFailed(l));
                }
            }
            Request::Alloc(site) => {
                if !ok {
                    self.faulted = true;
                    k.ev(t, EventKind::AllocFailed(site));
                }
            }
            Request::Build(f) => {
                if !ok {
                    self.faulted = true;
                    k.ev(t, EventKind::BuildFailed(f));
                }
            }
            Request::Sleep => {}
        }
        self.input = Some(Input::Answer(ok));
    }
}

/// The threads of an executor with many: slot `t` is thread `t`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Threads(Vec<Thread>);

impl Threads {
    /// `n` idle threads.
    pub fn new(n: usize) -> Threads {
        Threads(vec![Thread::default(); n])
    }

    /// Makes sure thread slots `0..n` exist.
    pub fn ensure(&mut self, n: usize) {
        while self.0.len() < n {
            self.0.push(Thread::default());
        }
    }

    /// Starts owner-level operation `op` on idle thread `t` of kernel `k`.
    pub fn start(&mut self, k: &mut Kernel, t: Tid, op: Op) {
        self.ensure(t as usize + 1);
        self.0[t as usize].start(k, t, op);
    }

    /// Thread `t`'s state without running it (a thread not there is idle).
    pub fn status(&self, t: Tid) -> Status {
        self.0.get(t as usize).map_or(Status::Idle, Thread::status)
    }

    /// Whether thread `t` has an operation in flight.
    pub fn busy(&self, t: Tid) -> bool {
        self.0.get(t as usize).is_some_and(Thread::busy)
    }

    /// Runs thread `t` until it needs a decision or finishes.
    pub fn run(&mut self, k: &mut Kernel, t: Tid) -> Status {
        self.0[t as usize].run(k, t)
    }

    /// Answers thread `t`'s pending request (see [`Thread::answer`]).
    pub fn answer(&mut self, k: &mut Kernel, t: Tid, ok: bool) {
        self.0[t as usize].answer(k, t, ok);
    }

    /// Marks thread `t` stuck forever (it waits for a lock it holds, or is in a deadlock). Its
    /// locks stay held.
    pub fn mark_stuck(&mut self, t: Tid) {
        self.0[t as usize].stuck = true;
    }

    /// No thread has an operation in flight.
    pub fn quiescent(&self) -> bool {
        self.0.iter().all(|th| th.stack.is_empty())
    }
}

impl From<Vec<Thread>> for Threads {
    fn from(v: Vec<Thread>) -> Threads {
        Threads(v)
    }
}

impl std::ops::Deref for Threads {
    type Target = [Thread];
    fn deref(&self) -> &[Thread] {
        &self.0
    }
}

impl std::ops::DerefMut for Threads {
    fn deref_mut(&mut self) -> &mut [Thread] {
        &mut self.0
    }
}
