//! The BPF trampoline (kernel/bpf/trampoline.c, SPEC §2, §5.2, §5.3): links by kind, the image
//! rebuild with its flags, registration through the direct API, the `goto again` retry on
//! `-EAGAIN`, and the owner callback for every command.

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

/// `bpf_trampoline_update(tr, lock_direct_mutex)` (tr->mutex held): snapshot the links, allocate
/// and build an image with its flags, register (first image) or modify, retry on `-EAGAIN`
/// (`goto again`), install; restore the old flags on any error.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct BpfTrampolineUpdate {
    pub f: FnId,
    pub lock_direct: bool,
    /// proposed (`bpf_unlink_reserves_image`): the image memory was reserved when the link was
    /// made, so this rebuild cannot fail to allocate or build.
    pub reserved: bool,
    pc: BpfTrampolineUpdatePc,
    orig_flags: TrampFlags,
    im: Option<Image>,
    retries: u16,
}

/// Where [`BpfTrampolineUpdate`] resumes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
enum BpfTrampolineUpdatePc {
    /// `bpf_trampoline_get_progs`: no programs unregisters, else `bpf_tramp_image_alloc`
    Entry = 0,
    /// `total == 0`: `unregister_fentry` returned, the image is put
    Unregistered = 10,
    /// "clear all bits except SHARE_IPMODIFY", the new image
    ImageAllocated = 1,
    /// `again:` ORIG_STACK when sharing, `arch_prepare_bpf_trampoline`
    Again = 2,
    /// the image is built: `modify_fentry` or `register_fentry`
    Prepared = 3,
    /// the attach answered: `-EAGAIN` goes back to `again:`
    Attached = 4,
    /// 6.12: after `bpf_tramp_image_free(im); goto again;` the new image's allocation answered
    Reallocated = 5,
}

impl BpfTrampolineUpdate {
    pub fn new(f: FnId, lock_direct: bool) -> Self {
        BpfTrampolineUpdate {
            f,
            lock_direct,
            reserved: false,
            pc: BpfTrampolineUpdatePc::Entry,
            orig_flags: TrampFlags::default(),
            im: None,
            retries: 0,
        }
    }

    fn out(&self, k: &mut Kernel, t: Tid, r: Result<(), Errno>) -> Flow {
        if r.is_err() {
            k.tr_mut(t, self.f).flags = self.orig_flags;
        }
        Flow::Ret(r.map(|_| 0))
    }
}

impl Step for BpfTrampolineUpdate {
    const NAME: &'static str = "bpf_trampoline_update";
    fn step(&mut self, k: &mut Kernel, t: Tid, input: Input) -> Flow {
        use BpfTrampolineUpdatePc as Pc;
        let f = self.f;
        loop {
            match self.pc {
                Pc::Entry => {
                    self.orig_flags = k.tr(f).flags;
                    if k.tr(f).links.is_empty() {
                        let Some(cur) = k.tr(f).cur_image.as_ref() else {
                            k.ev(
                                t,
                                EventKind::Warn("bpf_trampoline_update: no links and no image"),
                            );
                            return Flow::Ret(Ok(0));
                        };
                        let addr = image_addr(f, cur.serial);
                        call!(self, Pc::Unregistered, UnregisterFentry::new(f, addr));
                    }
                    if self.reserved {
                        self.pc = Pc::ImageAllocated;
                        continue;
                    }
                    wait!(
                        self,
                        Pc::ImageAllocated,
                        Request::Alloc(AllocSite::TrampImage)
                    );
                }
                Pc::Unregistered => return self.unregistered(k, t, input.ret().map(|_| ())),
                Pc::ImageAllocated => {
                    if !self.reserved && !input.ok() {
                        return self.out(k, t, Err(Errno::ENOMEM));
                    }
                    self.new_image(k, t);
                    self.pc = Pc::Again;
                }
                Pc::Again => {
                    self.again(k, t);
                    if self.reserved {
                        self.pc = Pc::Prepared;
                        continue;
                    }
                    wait!(self, Pc::Prepared, Request::Build(f));
                }
                Pc::Prepared => {
                    if !self.reserved && !input.ok() {
                        return self.out(k, t, Err(Errno::E2BIG));
                    }
                    let attach = self.attach(k, t);
                    call!(self, Pc::Attached, attach);
                }
                Pc::Attached => {
                    let r = input.ret();
                    if r == Err(Errno::EAGAIN)
                        && k.proto.bpf_retry_guarded
                        && self.v2_gives_up(k, t)
                    {
                        return self.out(k, t, Err(Errno::EAGAIN));
                    }
                    if r == Err(Errno::EAGAIN) && k.proto.bpf_share_state != BpfShareState::None {
                        if !self.reset_for_retry(k, t) {
                            return self.out(k, t, Err(Errno::EAGAIN));
                        }
                        if k.proto.bpf_retry_new_image && !self.reserved {
                            // `bpf_tramp_image_free(im); goto again;` and the allocation after
                            // the label (Debian 6.12.117 trampoline.c:443, 461, 486-493).
                            wait!(self, Pc::Reallocated, Request::Alloc(AllocSite::TrampImage));
                        }
                        // The same image is built again (Debian 6.1.192 trampoline.c:503-506).
                        self.pc = Pc::Again;
                        continue;
                    }
                    if let Err(e) = r {
                        return self.out(k, t, Err(e));
                    }
                    let im = self.im.take();
                    let tr = k.tr_mut(t, f);
                    tr.cur_image = im;
                    tr.selector += 1;
                    return self.out(k, t, Ok(()));
                }
                Pc::Reallocated => {
                    if !input.ok() {
                        return self.out(k, t, Err(Errno::ENOMEM));
                    }
                    let tr = k.tr_mut(t, f);
                    tr.next_serial += 1;
                    let serial = tr.next_serial;
                    self.im.as_mut().expect("[core internal bug] image").serial = serial;
                    self.pc = Pc::Again;
                }
            }
        }
    }
}

impl BpfTrampolineUpdate {
    /// `total == 0`: after `unregister_fentry`, `bpf_tramp_image_put(tr->cur_image);
    /// tr->cur_image = NULL;` (mainline 2026: not after a failed unregister).
    fn unregistered(&mut self, k: &mut Kernel, t: Tid, r: Result<(), Errno>) -> Flow {
        if r.is_err() && k.proto.bpf_unregister_keeps_image {
            // mainline 2026 unregister_fentry: `if (ret) return ret;` before
            // `bpf_tramp_image_put(tr->cur_image); tr->cur_image = NULL;`. The
            // trampoline keeps an image with no programs; a later PEER rebuild of it
            // unregisters again, taking direct_mutex under the caller's
            // (`corpus/reproducers/readme-mainline-2026--lock-recursion.txt`).
            return self.out(k, t, r);
        }
        let tr = k.tr_mut(t, self.f);
        tr.cur_image = None;
        tr.selector = 0;
        self.out(k, t, r)
    }

    /// "clear all bits except SHARE_IPMODIFY" and the new image of the current links.
    fn new_image(&mut self, k: &mut Kernel, t: Tid) {
        let share_flags = k.proto.bpf_share_state == BpfShareState::TrampFlags;
        let tr = k.tr_mut(t, self.f);
        tr.next_serial += 1;
        let call_orig = tr.links.iter().any(|(kind, _)| kind.calls_orig());
        tr.flags = TrampFlags {
            call_orig,
            orig_stack: false,
            share: share_flags && tr.flags.share,
        };
        self.im = Some(Image {
            serial: tr.next_serial,
            call_orig,
            orig_stack: false,
            progs: tr.links.iter().map(|(_, p)| *p).collect(),
        });
    }

    /// `again:` ORIG_STACK when the trampoline shares and calls the original.
    fn again(&self, k: &mut Kernel, t: Tid) {
        let f = self.f;
        let orig_stack = match k.proto.bpf_share_state {
            BpfShareState::TrampFlags => k.tr(f).flags.share && k.tr(f).flags.call_orig,
            BpfShareState::IndirectBool => k.tr(f).indirect_call,
            BpfShareState::None => false,
        };
        k.tr_mut(t, f).flags.orig_stack = orig_stack;
    }

    /// The image is built with the flags: `modify_fentry` ("progs already running at this
    /// address") or `register_fentry` ("first time registering").
    fn attach(&mut self, k: &mut Kernel, t: Tid) -> Frame {
        let f = self.f;
        let flags = k.tr(f).flags;
        let im = self.im.as_mut().expect("[core internal bug] image");
        im.call_orig = flags.call_orig;
        im.orig_stack = flags.orig_stack;
        let addr = image_addr(f, im.serial);
        if k.proto.bpf_share_state == BpfShareState::IndirectBool && k.tr(f).indirect_call {
            // v2: after building, the trampoline marks its ops as sharing.
            let fops = k.id(OpsOwner::Bpf(f));
            k.set_ops_flags(t, fops, fl::SHARE_IPMODIFY, 0);
        }
        if k.tr(f).cur_image.is_some() {
            return ModifyFentry::new(f, addr, self.lock_direct).into();
        }
        RegisterFentry::new(f, addr).into()
    }

    /// v2's guards on the `-EAGAIN` retry: "if (WARN_ON_ONCE(tr->indirect_call)) goto out;" and
    /// "should only retry on the first register": "if (WARN_ON_ONCE(tr->cur_image)) goto out;".
    fn v2_gives_up(&self, k: &mut Kernel, t: Tid) -> bool {
        let why = if k.tr(self.f).indirect_call {
            "bpf_trampoline_update: WARN_ON_ONCE(tr->indirect_call)"
        } else if k.tr(self.f).cur_image.is_some() {
            "bpf_trampoline_update: WARN_ON_ONCE(tr->cur_image)"
        } else {
            return false;
        };
        k.ev(t, EventKind::Warn(why));
        true
    }

    /// Before `goto again`: "reset fops->func and fops->trampoline for re-register" (fixes-2025's
    /// ftrace does this itself; BPF no longer does), v2's `tr->indirect_call = true`, and the
    /// retry bound (false: hit, a livelock).
    fn reset_for_retry(&mut self, k: &mut Kernel, t: Tid) -> bool {
        let f = self.f;
        if k.proto.direct_register_failure != DirectRegisterFailure::Reset {
            let fops = k.id(OpsOwner::Bpf(f));
            let o = k.op_mut(fops);
            o.func_set = false;
            o.trampoline_set = false;
        }
        if k.proto.bpf_share_state == BpfShareState::IndirectBool {
            k.tr_mut(t, f).indirect_call = true;
        }
        self.retries += 1;
        if self.retries > RETRIES_MAX {
            k.violate(Violation::new(
                Property::Livelock,
                Some(f),
                "bpf_trampoline_update: -EAGAIN retry hit its bound",
            ));
            return false;
        }
        true
    }
}

/// `register_fentry`: single-ip API (pre), or set the filter then `register_ftrace_direct_multi`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RegisterFentry {
    pub f: FnId,
    pub addr: Addr,
    pc: RegisterFentryPc,
    err: Option<Errno>,
}

/// Where [`RegisterFentry`] resumes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
enum RegisterFentryPc {
    /// the single-ip or shared-ops register, or `ftrace_set_filter_ip(tr->fops, ...)`
    Entry = 0,
    /// the filter answered: `register_ftrace_direct_multi(tr->fops, addr)`
    Filtered = 1,
    /// the register answered (v2 removes the ip again on failure)
    Registered = 2,
    /// v2: the ip is out of the filter again
    Unfiltered = 3,
    /// the single-ip or shared-ops register returned
    DirectRegistered = 9,
}

impl RegisterFentry {
    pub fn new(f: FnId, addr: Addr) -> Self {
        RegisterFentry {
            f,
            addr,
            pc: RegisterFentryPc::Entry,
            err: None,
        }
    }
}

impl Step for RegisterFentry {
    const NAME: &'static str = "register_fentry";
    fn step(&mut self, k: &mut Kernel, _t: Tid, input: Input) -> Flow {
        use RegisterFentryPc as Pc;
        let fops = k.bpf_fops(self.f);
        match self.pc {
            Pc::Entry => {
                match k.proto.bpf_direct_api {
                    BpfDirectApi::Single => {
                        call!(
                            self,
                            Pc::DirectRegistered,
                            RegisterFtraceDirect::new(self.f, self.addr)
                        )
                    }
                    // mainline 2026: `direct_ops_add(tr, im->image)`; a failure just returns.
                    BpfDirectApi::SharedOps => {
                        call!(
                            self,
                            Pc::DirectRegistered,
                            UpdateFtraceDirectAdd::new(fops, self.f, self.addr)
                        )
                    }
                    BpfDirectApi::Multi => {}
                }
                call!(
                    self,
                    Pc::Filtered,
                    FtraceSetHash::filter(fops, self.f, false, k.proto.bpf_filter_reset)
                )
            }
            Pc::Filtered => {
                if let Err(e) = input.ret() {
                    if k.proto.bpf_checks_set_filter {
                        return Flow::Ret(Err(e));
                    }
                }
                call!(
                    self,
                    Pc::Registered,
                    RegisterFtraceDirectMulti::new(fops, self.addr)
                )
            }
            Pc::Registered => {
                let r = input.ret();
                if let (Err(e), true) = (r, k.proto.bpf_unfilter_on_failure) {
                    self.err = Some(e);
                    call!(
                        self,
                        Pc::Unfiltered,
                        FtraceSetHash::filter(fops, self.f, true, false)
                    );
                }
                Flow::Ret(r)
            }
            Pc::Unfiltered => Flow::Ret(self.err.map_or(Ok(0), Err)),
            Pc::DirectRegistered => Flow::Ret(input.ret()),
        }
    }
}

/// `modify_fentry`: `modify_ftrace_direct` (single) or `modify_ftrace_direct_multi(_nolock)`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ModifyFentry {
    pub f: FnId,
    pub addr: Addr,
    pub lock_direct: bool,
    pc: ModifyFentryPc,
}

/// Where [`ModifyFentry`] resumes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
enum ModifyFentryPc {
    /// the modify of the API in use
    Entry = 0,
    /// it returned
    Modified = 1,
}

impl ModifyFentry {
    pub fn new(f: FnId, addr: Addr, lock_direct: bool) -> Self {
        ModifyFentry {
            f,
            addr,
            lock_direct,
            pc: ModifyFentryPc::Entry,
        }
    }
}

impl Step for ModifyFentry {
    const NAME: &'static str = "modify_fentry";
    fn step(&mut self, k: &mut Kernel, _t: Tid, input: Input) -> Flow {
        use ModifyFentryPc as Pc;
        if self.pc == Pc::Modified {
            return Flow::Ret(input.ret());
        }
        if k.proto.bpf_direct_api == BpfDirectApi::Single {
            let old = k
                .tr(self.f)
                .cur_image
                .as_ref()
                .map(|i| image_addr(self.f, i.serial));
            let old = old.expect("[core internal bug] modify without an image");
            call!(
                self,
                Pc::Modified,
                ModifyFtraceDirect::new(self.f, old, self.addr)
            );
        }
        let fops = k.bpf_fops(self.f);
        if k.proto.bpf_direct_api == BpfDirectApi::SharedOps {
            // mainline 2026: `direct_ops_mod(tr, new_addr, lock_direct_mutex)`.
            call!(
                self,
                Pc::Modified,
                UpdateFtraceDirectMod::new(fops, self.f, self.addr, self.lock_direct)
            );
        }
        call!(
            self,
            Pc::Modified,
            ModifyFtraceDirectMulti::new(fops, self.addr, self.lock_direct)
        )
    }
}

/// `unregister_fentry`: `unregister_ftrace_direct` (single) or `unregister_ftrace_direct_multi`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct UnregisterFentry {
    pub f: FnId,
    pub addr: Addr,
    pc: UnregisterFentryPc,
}

/// Where [`UnregisterFentry`] resumes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
enum UnregisterFentryPc {
    /// the unregister of the API in use
    Entry = 0,
    /// it returned
    Unregistered = 1,
}

impl UnregisterFentry {
    pub fn new(f: FnId, addr: Addr) -> Self {
        UnregisterFentry {
            f,
            addr,
            pc: UnregisterFentryPc::Entry,
        }
    }
}

impl Step for UnregisterFentry {
    const NAME: &'static str = "unregister_fentry";
    fn step(&mut self, k: &mut Kernel, _t: Tid, input: Input) -> Flow {
        use UnregisterFentryPc as Pc;
        if self.pc == Pc::Unregistered {
            return Flow::Ret(input.ret());
        }
        if k.proto.bpf_direct_api == BpfDirectApi::Single {
            call!(
                self,
                Pc::Unregistered,
                UnregisterFtraceDirect::new(self.f, self.addr)
            );
        }
        let fops = k.bpf_fops(self.f);
        if k.proto.bpf_direct_api == BpfDirectApi::SharedOps {
            // mainline 2026: `direct_ops_del(tr, old_addr)`.
            call!(
                self,
                Pc::Unregistered,
                UpdateFtraceDirectDel::new(fops, self.f, self.addr)
            );
        }
        call!(
            self,
            Pc::Unregistered,
            UnregisterFtraceDirectMulti::new(fops, self.addr)
        )
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
enum BpfTrampolineUnsharePendingPc {
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
enum BpfTrampolineUnshareDeferredPc {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Protocol;
    use crate::seq::Sequential;
    use crate::world::World;

    /// What the owner callback asks for after its trylock of `tr->mutex` failed.
    fn after_busy_trylock(p: Protocol) -> Flow {
        let mut s = Sequential::new(&World::new(1), p);
        let mut cb = BpfTrampFtraceOpsFunc::new(FnId(0), Cmd::PeerEnable);
        let first = cb.step(&mut s.k, 0, Input::Start);
        assert!(
            matches!(first, Flow::Wait(Request::TryLock(Lock::Tr(_)))),
            "{p}: {first:?}"
        );
        cb.step(&mut s.k, 0, Input::Answer(false))
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
