//! `bpf_trampoline_update`: the image rebuild with its flags, the `goto again` retry on `-EAGAIN`,
//! and the attach through the direct API in use (`register_fentry`, `modify_fentry`,
//! `unregister_fentry`).

use super::*;

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
pub(super) enum BpfTrampolineUpdatePc {
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
pub(super) enum RegisterFentryPc {
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
pub(super) enum ModifyFentryPc {
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
pub(super) enum UnregisterFentryPc {
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
