//! The BPF trampoline (kernel/bpf/trampoline.c, SPEC §2, §5.2, §5.3): links by kind and the owner
//! callback for every command here; the image rebuild with its flags, registration through the
//! direct API and the `goto again` retry on `-EAGAIN` in `update.rs`; proposed's deferred and
//! handed-off unsharing in `unshare.rs`.

use crate::direct::{
    ModifyFtraceDirect, ModifyFtraceDirectMulti, RegisterFtraceDirect, RegisterFtraceDirectMulti,
    UnregisterFtraceDirect, UnregisterFtraceDirectMulti, UpdateFtraceDirectAdd,
    UpdateFtraceDirectDel, UpdateFtraceDirectMod,
};
use crate::errno::Errno;
use crate::frames::{Flow, Frame, Step};
use crate::ftrace::{call, wait, Cmd, FtraceSetHash};
use crate::ids::{Addr, FnId, OpsId, OpsOwner, ProgKind, Tid};
use crate::kernel::{fl, Image, Kernel, TrampFlags, BPF_MAX_TRAMP_LINKS, RETRIES_MAX};
use crate::locks::Lock;
use crate::property::{Property, Violation};
use crate::protocol::{BpfDirectApi, BpfPeerLock, BpfShareState, DirectRegisterFailure};
use crate::step::{AllocSite, EventKind, Input, Request, Ret};

mod unshare;
mod update;

pub use unshare::*;
pub use update::*;

fn image_addr(f: FnId, serial: u32) -> Addr {
    Addr::Image { tr: f, serial }
}

/// proposed (`peer_disable_hands_off`, `peer_disable_deferred`): a DISABLE_PEER that finds
/// tr->mutex taken leaves an unshare-pending bit beside the trampoline.
fn pending_bit(k: &Kernel) -> bool {
    k.proto.peer_disable_hands_off || k.proto.peer_disable_deferred
}

/// `bpf_tramp_ftrace_ops_func(ops, ip, ENABLE_SHARE_IPMODIFY_SELF)`: called inside the direct
/// ops' registration with tr->mutex already held ("This is called inside
/// register_ftrace_direct_multi(), so trampoline's mutex is already locked":
/// `lockdep_assert_held_once`); pure flag logic, so it runs inline. With the shared `direct_ops`
/// (`bpf_direct_api = shared-ops`) the trampoline is the one of `ip` (`direct_ops_ip_lookup`),
/// and the update-target pass of a modify sends SELF for the ip of every trampoline, so it can
/// land on another function's trampoline whose lock nobody here holds: a write to its flags is
/// then a `lock-coverage` finding, as lockdep's assertion would be.
pub fn self_cmd(k: &mut Kernel, t: Tid, ops: OpsId, ip: FnId, cmd: Cmd) -> Result<(), Errno> {
    if !matches!(k.owner(ops), OpsOwner::Bpf(_) | OpsOwner::BpfDirectOps) {
        panic!("[core internal bug] SELF sent to a non-BPF ops");
    }
    let f = k.cmd_target(ops, ip);
    if k.info.layout.bpf_direct_ops && !k.holds(t, Lock::Tr(f)) {
        // `lockdep_assert_held_once(select_trampoline_lock(tr))`: a WARN on lockdep kernels
        // only, so a trace event and no finding; a write below is `lock-coverage`. (With a
        // per-trampoline ops SELF only comes from the trampoline's own update, under its lock.)
        k.ev(
            t,
            EventKind::Warn(
                "bpf_tramp_ftrace_ops_func: SELF without the trampoline's lock (lockdep)",
            ),
        );
    }
    k.ev(
        t,
        EventKind::Callback(ops, cmd.name(k.proto.bpf_share_state)),
    );
    if pending_bit(k) {
        // proposed: SELF says what sharing is now (tr->mutex is held by the registering link).
        k.fns[f.0 as usize].unshare_pending = false;
    }
    match k.proto.bpf_share_state {
        // proposed: stop sharing; rebuild (-EAGAIN) if the image calls through the stack.
        // proposed: stop sharing. No rebuild is asked for: an image that calls through the stack
        // stays correct, the next rebuild drops ORIG_STACK, and a retry here could flap with an
        // IPMODIFY owner coming and going (livelock).
        BpfShareState::TrampFlags if cmd == Cmd::SelfDisable => {
            if k.tr(f).flags.share {
                k.tr_mut(t, f).flags.share = false;
            }
            Ok(())
        }
        BpfShareState::TrampFlags => {
            let fl = k.tr(f).flags;
            if fl.call_orig && !fl.orig_stack {
                if fl.share {
                    k.ev(
                        t,
                        EventKind::Warn("bpf_tramp_ftrace_ops_func: SHARE_IPMODIFY already set"),
                    );
                    return Err(Errno::EBUSY);
                }
                k.tr_mut(t, f).flags.share = true;
                return Err(Errno::EAGAIN);
            }
            Ok(())
        }
        // v2's callback knows only ENABLE/DISABLE: "default: ret = -EINVAL".
        BpfShareState::IndirectBool => Err(Errno::EINVAL),
        BpfShareState::None => {
            panic!("[core internal bug] SELF sent to a trampoline without ops_func")
        }
    }
}

/// `bpf_tramp_ftrace_ops_func` for the PEER commands: take tr->mutex (trylock, `-EAGAIN` when
/// busy; or blocking, per `bpf_peer_lock`), switch sharing and rebuild without direct_mutex.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct BpfTrampFtraceOpsFunc {
    pub f: FnId,
    pub cmd: Cmd,
    /// The caller holds tr->mutex already (proposed `peer_disable_hands_off`: the holder doing
    /// the pending DISABLE_PEER work after its unlock).
    pub held: bool,
    pc: BpfTrampFtraceOpsFuncPc,
    /// The sharing state before the command (`bpf_peer_restores_share`).
    prev: (bool, bool),
}

/// Where [`BpfTrampFtraceOpsFunc`] resumes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
enum BpfTrampFtraceOpsFuncPc {
    /// `mutex_trylock(&tr->mutex)` (or `mutex_lock`, per `bpf_peer_lock`)
    Entry = 0,
    /// tr->mutex answered: switch sharing, rebuild if the image must change
    Locked = 1,
    /// `bpf_trampoline_update(tr, false)` returned
    Rebuilt = 2,
    /// "sleep 1 ms to make sure whatever holding tr->mutex makes some progress", then `-EAGAIN`
    Slept = 3,
}

impl BpfTrampFtraceOpsFunc {
    pub fn new(f: FnId, cmd: Cmd) -> Self {
        BpfTrampFtraceOpsFunc {
            f,
            cmd,
            held: false,
            pc: BpfTrampFtraceOpsFuncPc::Entry,
            prev: (false, false),
        }
    }
}

impl Step for BpfTrampFtraceOpsFunc {
    const NAME: &'static str = "bpf_tramp_ftrace_ops_func";
    fn step(&mut self, k: &mut Kernel, t: Tid, input: Input) -> Flow {
        use BpfTrampFtraceOpsFuncPc as Pc;
        let f = self.f;
        let hands_off = pending_bit(k);
        match self.pc {
            Pc::Entry if self.held => {
                self.pc = Pc::Locked;
                self.step(k, t, Input::Answer(true))
            }
            Pc::Entry => {
                // proposed: announce the DISABLE before trying, so a holder that releases
                // tr->mutex in between sees it.
                if hands_off && self.cmd == Cmd::PeerDisable {
                    k.fns[f.0 as usize].unshare_pending = true;
                }
                match k.proto.bpf_peer_lock {
                    BpfPeerLock::Trylock => wait!(self, Pc::Locked, Request::TryLock(Lock::Tr(f))),
                    BpfPeerLock::Blocking => wait!(self, Pc::Locked, Request::Lock(Lock::Tr(f))),
                }
            }
            Pc::Locked => {
                if !input.ok() {
                    if hands_off && self.cmd == Cmd::PeerDisable {
                        // The holder does it after its unlock: no need to sleep here.
                        return Flow::Ret(Err(Errno::EAGAIN));
                    }
                    // "sleep 1 ms to make sure whatever holding tr->mutex makes some progress"
                    // (merged and later); v2 returns -EAGAIN at once.
                    if k.proto.bpf_busy_peer_sleeps {
                        wait!(self, Pc::Slept, Request::Sleep);
                    }
                    return Flow::Ret(Err(Errno::EAGAIN));
                }
                if hands_off {
                    // Whatever this command says is what sharing is now.
                    k.fns[f.0 as usize].unshare_pending = false;
                }
                self.prev = (k.tr(f).flags.share, k.tr(f).indirect_call);
                let rebuild = match (k.proto.bpf_share_state, self.cmd) {
                    (BpfShareState::TrampFlags, Cmd::PeerEnable) => {
                        let tr = k.tr_mut(t, f);
                        tr.flags.share = true;
                        tr.flags.call_orig && !tr.flags.orig_stack
                    }
                    (BpfShareState::TrampFlags, Cmd::PeerDisable) => {
                        let tr = k.tr_mut(t, f);
                        tr.flags.share = false;
                        tr.flags.orig_stack
                    }
                    (BpfShareState::IndirectBool, Cmd::PeerEnable) => {
                        k.tr_mut(t, f).indirect_call = true;
                        true
                    }
                    (BpfShareState::IndirectBool, Cmd::PeerDisable) => {
                        k.tr_mut(t, f).indirect_call = false;
                        let fops = k.id(OpsOwner::Bpf(f));
                        k.set_ops_flags(t, fops, 0, fl::SHARE_IPMODIFY);
                        true
                    }
                    (share, cmd) => panic!("[core internal bug] {cmd:?} to a {share:?} trampoline"),
                };
                if rebuild {
                    call!(self, Pc::Rebuilt, BpfTrampolineUpdate::new(f, false));
                }
                if !self.held {
                    k.unlock(t, Lock::Tr(f));
                }
                Flow::Ret(Ok(0))
            }
            Pc::Slept => Flow::Ret(Err(Errno::EAGAIN)),
            Pc::Rebuilt => {
                let r = input.ret();
                // A refused ENABLE leaves the trampoline as it was. (A failed DISABLE keeps sharing
                // off: the old image still calls through the stack, which stays correct, and the
                // next rebuild drops ORIG_STACK.)
                if r.is_err() && self.cmd == Cmd::PeerEnable && k.proto.bpf_peer_restores_share {
                    let (share, indirect) = self.prev;
                    let tr = k.tr_mut(t, f);
                    tr.flags.share = share;
                    tr.indirect_call = indirect;
                }
                if !self.held {
                    k.unlock(t, Lock::Tr(f));
                }
                Flow::Ret(r)
            }
        }
    }
}

/// `bpf_trampoline_link_prog`: under tr->mutex add the link and update; on failure remove it.
/// With `bpf_unlink_reserves_image` it first allocates the image its unlink will use.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct BpfTrampolineLinkProg {
    pub kind: ProgKind,
    pub f: FnId,
    pc: BpfTrampolineLinkProgPc,
    r: Option<Ret>,
}

/// Where [`BpfTrampolineLinkProg`] resumes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
enum BpfTrampolineLinkProgPc {
    /// `mutex_lock(&tr->mutex)`
    Entry = 0,
    /// `__bpf_trampoline_link_prog`: the checks, the link, `bpf_trampoline_update(tr, true)`
    Locked = 1,
    /// proposed `bpf_unlink_reserves_image`: the unlink's image answered
    Reserved = 3,
    /// the update returned (a failure unlinks again); `mutex_unlock(&tr->mutex)`
    Updated = 2,
    /// proposed `peer_disable_hands_off`: the pending DISABLE_PEER is done
    UnsharedPending = 4,
}

impl BpfTrampolineLinkProg {
    pub fn new(kind: ProgKind, f: FnId) -> Self {
        BpfTrampolineLinkProg {
            kind,
            f,
            pc: BpfTrampolineLinkProgPc::Entry,
            r: None,
        }
    }
}

impl Step for BpfTrampolineLinkProg {
    const NAME: &'static str = "bpf_trampoline_link_prog";
    fn step(&mut self, k: &mut Kernel, t: Tid, input: Input) -> Flow {
        use BpfTrampolineLinkProgPc as Pc;
        let f = self.f;
        match self.pc {
            Pc::Entry => wait!(self, Pc::Locked, Request::Lock(Lock::Tr(f))),
            Pc::Locked => {
                // bpf_trampoline_module_get / btf lookup: the function's module must be live.
                let err = if !k.fn_live(f) {
                    Some(Errno::ENOENT)
                } else if k.tr(f).links.len() >= BPF_MAX_TRAMP_LINKS {
                    Some(Errno::E2BIG)
                } else {
                    None
                };
                if let Some(e) = err {
                    k.unlock(t, Lock::Tr(f));
                    return Flow::Ret(Err(e));
                }
                let prog = k.new_prog();
                k.tr_mut(t, f).links.push((self.kind, prog));
                // proposed (`bpf_unlink_reserves_image`): the image this link's unlink will be
                // built in is allocated now, so the link can fail where the unlink no longer can.
                if k.proto.bpf_unlink_reserves_image {
                    wait!(self, Pc::Reserved, Request::Alloc(AllocSite::TrampReserve));
                }
                call!(self, Pc::Updated, BpfTrampolineUpdate::new(f, true))
            }
            Pc::Reserved => {
                if !input.ok() {
                    k.tr_mut(t, f).links.pop();
                    k.unlock(t, Lock::Tr(f));
                    return Flow::Ret(Err(Errno::ENOMEM));
                }
                call!(self, Pc::Updated, BpfTrampolineUpdate::new(f, true))
            }
            Pc::Updated => {
                let r = input.ret();
                if r.is_err() {
                    k.tr_mut(t, f).links.pop();
                }
                k.unlock(t, Lock::Tr(f));
                if k.proto.peer_disable_hands_off {
                    self.r = Some(r);
                    call!(
                        self,
                        Pc::UnsharedPending,
                        BpfTrampolineUnsharePending::new(f)
                    );
                }
                Flow::Ret(r)
            }
            Pc::UnsharedPending => Flow::Ret(self.r.expect("[core internal bug] link result")),
        }
    }
}

/// `bpf_trampoline_unlink_prog`: under tr->mutex remove the oldest link of the kind and update;
/// the link stays removed whatever the update returns.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct BpfTrampolineUnlinkProg {
    pub kind: ProgKind,
    pub f: FnId,
    pc: BpfTrampolineUnlinkProgPc,
    r: Option<Ret>,
}

/// Where [`BpfTrampolineUnlinkProg`] resumes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
enum BpfTrampolineUnlinkProgPc {
    /// `mutex_lock(&tr->mutex)`
    Entry = 0,
    /// `__bpf_trampoline_unlink_prog`: unlink, `bpf_trampoline_update(tr, true)`
    Locked = 1,
    /// the update returned; `mutex_unlock(&tr->mutex)`
    Updated = 2,
    /// proposed `peer_disable_hands_off`: the pending DISABLE_PEER is done
    UnsharedPending = 3,
}

impl BpfTrampolineUnlinkProg {
    pub fn new(kind: ProgKind, f: FnId) -> Self {
        BpfTrampolineUnlinkProg {
            kind,
            f,
            pc: BpfTrampolineUnlinkProgPc::Entry,
            r: None,
        }
    }
}

impl Step for BpfTrampolineUnlinkProg {
    const NAME: &'static str = "bpf_trampoline_unlink_prog";
    fn step(&mut self, k: &mut Kernel, t: Tid, input: Input) -> Flow {
        use BpfTrampolineUnlinkProgPc as Pc;
        let f = self.f;
        match self.pc {
            Pc::Entry => wait!(self, Pc::Locked, Request::Lock(Lock::Tr(f))),
            Pc::Locked => {
                let Some(i) = k
                    .tr(f)
                    .links
                    .iter()
                    .position(|(kind, _)| *kind == self.kind)
                else {
                    k.unlock(t, Lock::Tr(f));
                    return Flow::Ret(Err(Errno::ENOENT));
                };
                k.tr_mut(t, f).links.remove(i);
                let mut u = BpfTrampolineUpdate::new(f, true);
                u.reserved = k.proto.bpf_unlink_reserves_image;
                call!(self, Pc::Updated, u)
            }
            Pc::Updated => {
                k.unlock(t, Lock::Tr(f));
                let r = input.ret();
                if k.proto.peer_disable_hands_off {
                    self.r = Some(r);
                    call!(
                        self,
                        Pc::UnsharedPending,
                        BpfTrampolineUnsharePending::new(f)
                    );
                }
                Flow::Ret(r)
            }
            Pc::UnsharedPending => Flow::Ret(self.r.expect("[core internal bug] unlink result")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::Kernel;
    use crate::protocol::Protocol;
    use crate::world::World;

    /// What the owner callback asks for after its trylock of `tr->mutex` failed.
    fn after_busy_trylock(p: Protocol) -> Flow {
        let mut k = Kernel::new(&World::new(1), p);
        let mut cb = BpfTrampFtraceOpsFunc::new(FnId(0), Cmd::PeerEnable);
        let first = cb.step(&mut k, 0, Input::Start);
        assert!(
            matches!(first, Flow::Wait(Request::TryLock(Lock::Tr(_)))),
            "{p}: {first:?}"
        );
        cb.step(&mut k, 0, Input::Answer(false))
    }

    #[test]
    fn only_merged_and_later_sleep_before_eagain() {
        // merged and later: msleep(1), then -EAGAIN (Debian 6.1.192 trampoline.c:76-82).
        for p in [
            Protocol::MERGED,
            Protocol::FIXES_2025,
            Protocol::DEBIAN_6_12,
        ] {
            assert!(
                matches!(after_busy_trylock(p), Flow::Wait(Request::Sleep)),
                "{p}"
            );
        }
        // v2 (PATCH v2 bpf-next 5/5): `if (!mutex_trylock(&tr->mutex)) return -EAGAIN;`
        assert!(matches!(
            after_busy_trylock(Protocol::V2),
            Flow::Ret(Err(Errno::EAGAIN))
        ));
    }
}
