//! The interpreter: threads (a stack of [`Frame`]s running one owner-level operation) and the
//! steps at lock boundaries. Every kernel entry point is a resumable frame: plain data holding its
//! program counter and locals (`frames.rs`). [`Kernel::run`] executes the top frame until it needs
//! something only a driver can decide — a lock, a trylock, an allocation, an image build — and
//! returns that [`Request`]; [`Kernel::answer`] supplies the decision. The core never blocks and
//! never chooses.

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
