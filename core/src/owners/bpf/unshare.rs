//! proposed's unsharing after a busy DISABLE_PEER: done by the holder of tr->mutex after its
//! unlock (`peer_disable_hands_off`) or by the sender after direct_mutex (`peer_disable_deferred`).

use super::*;

/// proposed (`peer_disable_hands_off`): the DISABLE_PEER work a cleanup left pending (it found
/// tr->mutex taken). After a link or unlink releases tr->mutex: trylock tr->mutex (if it is
/// taken, its holder checks after its own unlock), take direct_mutex (the documented order),
/// and if the bit is still set, do what DISABLE_PEER does; again while the bit is set.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct BpfTrampolineUnsharePending {
    pub f: FnId,
    pc: BpfTrampolineUnsharePendingPc,
    rounds: u16,
}

/// Where [`BpfTrampolineUnsharePending`] resumes: one round per pending DISABLE_PEER.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub(super) enum BpfTrampolineUnsharePendingPc {
    /// the bit still set: `mutex_trylock(&tr->mutex)`
    Check = 0,
    /// the trylock answered: `mutex_lock(&direct_mutex)`
    TrLocked = 1,
    /// both held: what DISABLE_PEER does, if the bit is still set
    DirectLocked = 2,
    /// unlock both, check again
    Disabled = 3,
}

impl BpfTrampolineUnsharePending {
    pub fn new(f: FnId) -> Self {
        BpfTrampolineUnsharePending {
            f,
            pc: BpfTrampolineUnsharePendingPc::Check,
            rounds: 0,
        }
    }
}

impl Step for BpfTrampolineUnsharePending {
    const NAME: &'static str = "bpf_trampoline_unshare_pending";
    fn step(&mut self, k: &mut Kernel, t: Tid, input: Input) -> Flow {
        use BpfTrampolineUnsharePendingPc as Pc;
        let f = self.f;
        loop {
            match self.pc {
                Pc::Check => {
                    if !k.fns[f.0 as usize].unshare_pending {
                        return Flow::Ret(Ok(0));
                    }
                    self.rounds += 1;
                    if self.rounds > RETRIES_MAX {
                        k.violate(Violation::new(
                            Property::Livelock,
                            Some(f),
                            "the pending DISABLE_PEER was not done within the retry bound",
                        ));
                        return Flow::Ret(Ok(0));
                    }
                    wait!(self, Pc::TrLocked, Request::TryLock(Lock::Tr(f)));
                }
                Pc::TrLocked => {
                    if !input.ok() {
                        return Flow::Ret(Ok(0));
                    }
                    wait!(self, Pc::DirectLocked, Request::Lock(Lock::Direct));
                }
                Pc::DirectLocked => match disable_if_pending(k, f) {
                    Some(cmd) => call!(self, Pc::Disabled, cmd),
                    None => self.pc = Pc::Disabled,
                },
                Pc::Disabled => {
                    // A failed DISABLE is ignored, as the cleanup ignores it.
                    k.unlock(t, Lock::Direct);
                    k.unlock(t, Lock::Tr(f));
                    self.pc = Pc::Check;
                }
            }
        }
    }
}

/// With tr->mutex and direct_mutex held: what DISABLE_PEER does, if the unshare-pending bit is
/// still set (no PEER or SELF said otherwise meanwhile). Its errors are ignored, as the cleanup
/// ignores them (a failed rebuild: the old image still calls through the stack, sharing is off).
fn disable_if_pending(k: &Kernel, f: FnId) -> Option<BpfTrampFtraceOpsFunc> {
    if !k.fns[f.0 as usize].unshare_pending {
        return None;
    }
    let mut cmd = BpfTrampFtraceOpsFunc::new(f, Cmd::PeerDisable);
    cmd.held = true;
    Some(cmd)
}

/// proposed (`peer_disable_deferred`): the DISABLE_PEER work the sender's cleanup left pending
/// (it found tr->mutex taken), done by the sender once it has released direct_mutex, as a work
/// item would: for each function of the cleanup whose bit is set, tr->mutex (a blocking lock:
/// nothing of ftrace is held now), direct_mutex (the documented order), and if the bit is still
/// set (no PEER or SELF said otherwise meanwhile), what DISABLE_PEER does. No trylock, no retry.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct BpfTrampolineUnshareDeferred {
    pub ips: Vec<FnId>,
    idx: u16,
    pc: BpfTrampolineUnshareDeferredPc,
}

/// Where [`BpfTrampolineUnshareDeferred`] resumes: the loop over the cleanup's ips.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub(super) enum BpfTrampolineUnshareDeferredPc {
    /// the next ip whose bit is set: `mutex_lock(&tr->mutex)`
    NextIp = 0,
    /// `mutex_lock(&direct_mutex)`
    TrLocked = 1,
    /// both held: what DISABLE_PEER does, if the bit is still set
    DirectLocked = 2,
    /// unlock both, the next ip
    Disabled = 3,
}

impl BpfTrampolineUnshareDeferred {
    pub fn new(ips: Vec<FnId>) -> Self {
        BpfTrampolineUnshareDeferred {
            ips,
            idx: 0,
            pc: BpfTrampolineUnshareDeferredPc::NextIp,
        }
    }

    fn f(&self) -> FnId {
        self.ips[self.idx as usize]
    }
}

impl Step for BpfTrampolineUnshareDeferred {
    const NAME: &'static str = "bpf_trampoline_unshare_deferred";
    fn step(&mut self, k: &mut Kernel, t: Tid, _input: Input) -> Flow {
        use BpfTrampolineUnshareDeferredPc as Pc;
        loop {
            match self.pc {
                Pc::NextIp => {
                    let Some(&f) = self.ips.get(self.idx as usize) else {
                        return Flow::Ret(Ok(0));
                    };
                    if !k.fns[f.0 as usize].unshare_pending {
                        self.idx += 1;
                        continue;
                    }
                    wait!(self, Pc::TrLocked, Request::Lock(Lock::Tr(f)));
                }
                Pc::TrLocked => wait!(self, Pc::DirectLocked, Request::Lock(Lock::Direct)),
                Pc::DirectLocked => match disable_if_pending(k, self.f()) {
                    Some(cmd) => call!(self, Pc::Disabled, cmd),
                    None => self.pc = Pc::Disabled,
                },
                Pc::Disabled => {
                    // A failed DISABLE is ignored, as the cleanup ignores it.
                    let f = self.f();
                    k.unlock(t, Lock::Direct);
                    k.unlock(t, Lock::Tr(f));
                    self.idx += 1;
                    self.pc = Pc::NextIp;
                }
            }
        }
    }
}
