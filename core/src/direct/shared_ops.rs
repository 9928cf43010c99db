//! Mainline 2026's direct calls on BPF's one shared `direct_ops` (`bpf_direct_api = shared-ops`):
//! `update_ftrace_direct_add`, `update_ftrace_direct_del`, `update_ftrace_direct_mod`.

use super::*;

/// `update_ftrace_direct_add(ops, {ip -> addr})` (mainline 2026, `kernel/trace/ftrace.c` at
/// kernel-patches/bpf 00c266387e36, called by BPF's `direct_ops_add` with the one-entry hash of
/// `hash_from_ip`; `bpf_direct_api = shared-ops`): under direct_mutex, an ip already in
/// `direct_functions` is `-EINVAL`; the new `direct_functions` is published first; the first add
/// (the ops' filter is empty: "If there's nothing in filter_hash we need to register the ops")
/// sets `ops->func`, or-s in `MULTI_FLAGS`, sets the trampoline and the filter and registers with
/// `register_ftrace_function_nolock`, undoing all of it on failure; a later add changes the
/// filter of the registered ops with `ftrace_update_ops` under ftrace_lock (the IPMODIFY
/// accounting for the entering ip, which sends SELF, then the record accounting and the code
/// update). Any failure restores `direct_functions`. The three allocations (BPF's
/// `hash_from_ip`, the two `hash_add` copies) fail alike, `-ENOMEM` with nothing changed: one
/// fault point stands for them.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct UpdateFtraceDirectAdd {
    pub ops: OpsId,
    pub ip: FnId,
    pub addr: Addr,
    pc: UpdateFtraceDirectAddPc,
    new: IpHash,
}

/// Where [`UpdateFtraceDirectAdd`] resumes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub(super) enum UpdateFtraceDirectAddPc {
    /// `mutex_lock(&direct_mutex)`
    Entry = 0,
    /// the entry and ops checks, the hash copies
    Locked = 1,
    /// publish `direct_functions`; the first add registers the ops, a later one takes ftrace_lock
    HashCopied = 2,
    /// the first add's register answered (undone on failure)
    Registered = 3,
    /// ftrace_lock held: `ftrace_update_ops`, the IPMODIFY accounting of the filter change
    Update = 4,
    /// the accounting answered: the record accounting and the code update, or undo
    Accounted = 5,
}

impl UpdateFtraceDirectAdd {
    pub fn new(ops: OpsId, ip: FnId, addr: Addr) -> Self {
        UpdateFtraceDirectAdd {
            ops,
            ip,
            addr,
            pc: UpdateFtraceDirectAddPc::Entry,
            new: IpHash::new(),
        }
    }
}

impl Step for UpdateFtraceDirectAdd {
    const NAME: &'static str = "update_ftrace_direct_add";
    fn step(&mut self, k: &mut Kernel, t: Tid, input: Input) -> Flow {
        use UpdateFtraceDirectAddPc as Pc;
        let fail = |k: &mut Kernel, e| {
            k.unlock(t, Lock::Direct);
            Flow::Ret(Err(e))
        };
        match self.pc {
            Pc::Entry => wait!(self, Pc::Locked, Request::Lock(Lock::Direct)),
            Pc::Locked => {
                // "Make sure requested entries are not already registered." (err = -EINVAL)
                if k.direct_functions.lookup(self.ip).is_some() {
                    return fail(k, Errno::EINVAL);
                }
                let o = k.op(self.ops);
                let reg = k.filter(self.ops).is_empty();
                if reg && (o.func_set || o.trampoline_set || o.has(fl::ENABLED)) {
                    return fail(k, Errno::EINVAL);
                }
                wait!(self, Pc::HashCopied, Request::Alloc(AllocSite::HashCopy))
            }
            Pc::HashCopied => {
                if !input.ok() {
                    return fail(k, Errno::ENOMEM);
                }
                let mut new = k.filter(self.ops).clone();
                new.add(self.ip);
                // rcu_assign_pointer(direct_functions, new_direct_functions)
                k.direct_add(t, self.ip, self.addr);
                if k.filter(self.ops).is_empty() {
                    let o = k.op_mut(self.ops);
                    o.func_set = true;
                    o.trampoline_set = true;
                    o.flags |= fl::DIRECT;
                    // ops->local_hash.filter_hash = new_filter_hash (not registered yet)
                    k.assign_hash(t, self.ops, false, new);
                    call!(
                        self,
                        Pc::Registered,
                        RegisterFtraceFunctionNolock::new(self.ops)
                    );
                }
                self.new = new;
                wait!(self, Pc::Update, Request::Lock(Lock::Ftrace))
            }
            Pc::Registered => {
                let r = input.ret();
                if r.is_err() {
                    // "restore old filter on error", "cleanup for possible another register call"
                    k.assign_hash(t, self.ops, false, IpHash::new());
                    let o = k.op_mut(self.ops);
                    o.func_set = false;
                    o.trampoline_set = false;
                    k.direct_remove_first(t, self.ip);
                }
                k.unlock(t, Lock::Direct);
                Flow::Ret(r)
            }
            // ftrace_update_ops -> ftrace_hash_move: the IPMODIFY accounting of the filter change.
            Pc::Update => call!(
                self,
                Pc::Accounted,
                FtraceHashUpdateIpmodify::update(k, self.ops, &self.new)
            ),
            Pc::Accounted => {
                if let Err(e) = input.ret() {
                    k.unlock(t, Lock::Ftrace);
                    k.direct_remove_first(t, self.ip);
                    return fail(k, e);
                }
                apply_filter(k, t, self.ops, std::mem::take(&mut self.new));
                k.unlock(t, Lock::Ftrace);
                k.unlock(t, Lock::Direct);
                Flow::Ret(Ok(0))
            }
        }
    }
}

/// `ftrace_hash_move` + `ftrace_ops_update_code` for the filter of a registered ops
/// (ftrace_lock held): the record accounting around the swap, then the code update.
fn apply_filter(k: &mut Kernel, t: Tid, ops: OpsId, new: IpHash) {
    k.hash_rec_update(t, ops, true, false);
    k.assign_hash(t, ops, false, new);
    k.hash_rec_update(t, ops, true, true);
    k.update_code(t);
}

/// `update_ftrace_direct_del(ops, {ip -> addr})` (mainline 2026, `kernel/trace/ftrace.c` at
/// kernel-patches/bpf 00c266387e36, from BPF's `direct_ops_del`): the ops must be a registered
/// direct ops (`-EINVAL`); under direct_mutex the entry must be in `direct_functions` with this
/// address (`-EINVAL`); the last ip unregisters the ops (`unregister_ftrace_function`, then
/// `ops->func`/`ops->trampoline` cleared and `ftrace_free_filter`; the or-ed `MULTI_FLAGS` stay),
/// others shrink its filter with `ftrace_update_ops` under ftrace_lock. `direct_functions` is
/// replaced only on success. BPF's `hash_from_ip` and the two `hash_sub` copies: one fault point.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct UpdateFtraceDirectDel {
    pub ops: OpsId,
    pub ip: FnId,
    pub addr: Addr,
    pc: UpdateFtraceDirectDelPc,
    new: IpHash,
}

/// Where [`UpdateFtraceDirectDel`] resumes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub(super) enum UpdateFtraceDirectDelPc {
    /// the ops checks, `mutex_lock(&direct_mutex)`
    Entry = 0,
    /// "Make sure requested entries are already registered.", the hash copies
    Locked = 1,
    /// the last ip unregisters the ops, others take ftrace_lock
    HashCopied = 2,
    /// the unregister answered: clear the ops, `ftrace_free_filter`
    Unregistered = 3,
    /// ftrace_lock held: `ftrace_update_ops`, the IPMODIFY accounting of the filter change
    Update = 4,
    /// the accounting answered: the record accounting and the code update
    Accounted = 5,
}

impl UpdateFtraceDirectDel {
    pub fn new(ops: OpsId, ip: FnId, addr: Addr) -> Self {
        UpdateFtraceDirectDel {
            ops,
            ip,
            addr,
            pc: UpdateFtraceDirectDelPc::Entry,
            new: IpHash::new(),
        }
    }
}

impl Step for UpdateFtraceDirectDel {
    const NAME: &'static str = "update_ftrace_direct_del";
    fn step(&mut self, k: &mut Kernel, t: Tid, input: Input) -> Flow {
        use UpdateFtraceDirectDelPc as Pc;
        let fail = |k: &mut Kernel, e| {
            k.unlock(t, Lock::Direct);
            Flow::Ret(Err(e))
        };
        match self.pc {
            Pc::Entry => {
                let o = k.op(self.ops);
                if !o.has(fl::DIRECT) || !o.has(fl::ENABLED) {
                    return Flow::Ret(Err(Errno::EINVAL));
                }
                wait!(self, Pc::Locked, Request::Lock(Lock::Direct))
            }
            Pc::Locked => {
                if k.direct_functions.entries().is_empty() || k.filter(self.ops).is_empty() {
                    return fail(k, Errno::EINVAL);
                }
                // "Make sure requested entries are already registered."
                if k.direct_functions.lookup(self.ip) != Some(self.addr) {
                    return fail(k, Errno::EINVAL);
                }
                wait!(self, Pc::HashCopied, Request::Alloc(AllocSite::HashCopy))
            }
            Pc::HashCopied => {
                if !input.ok() {
                    return fail(k, Errno::ENOMEM);
                }
                let mut new = k.filter(self.ops).clone();
                if new.remove(self.ip).is_err() {
                    // hash_sub: WARN_ON_ONCE(!del) -> NULL -> -ENOMEM
                    k.ev(t, EventKind::Warn("hash_sub: WARN_ON_ONCE(!del)"));
                    return fail(k, Errno::ENOMEM);
                }
                if new.is_empty() {
                    call!(
                        self,
                        Pc::Unregistered,
                        UnregisterFtraceFunction::new(self.ops)
                    );
                }
                self.new = new;
                wait!(self, Pc::Update, Request::Lock(Lock::Ftrace))
            }
            Pc::Unregistered => {
                let r = input.ret();
                if r.is_ok() {
                    let o = k.op_mut(self.ops);
                    o.func_set = false;
                    o.trampoline_set = false;
                    // ftrace_free_filter(ops); ops->func_hash->filter_hash = NULL
                    k.assign_hash(t, self.ops, false, IpHash::new());
                    k.direct_remove_first(t, self.ip);
                }
                k.unlock(t, Lock::Direct);
                Flow::Ret(r)
            }
            Pc::Update => call!(
                self,
                Pc::Accounted,
                FtraceHashUpdateIpmodify::update(k, self.ops, &self.new)
            ),
            Pc::Accounted => {
                if let Err(e) = input.ret() {
                    k.unlock(t, Lock::Ftrace);
                    return fail(k, e);
                }
                apply_filter(k, t, self.ops, std::mem::take(&mut self.new));
                k.unlock(t, Lock::Ftrace);
                k.direct_remove_first(t, self.ip);
                k.unlock(t, Lock::Direct);
                Flow::Ret(Ok(0))
            }
        }
    }
}

/// `update_ftrace_direct_mod(ops, {ip -> addr}, do_direct_lock)` (mainline 2026,
/// `kernel/trace/ftrace.c` at kernel-patches/bpf 00c266387e36, from BPF's `direct_ops_mod`):
/// a registered direct ops (`-EINVAL`); direct_mutex taken (or already held by an owner
/// callback); the static STUB `tmp_ops` gets the *argument* hash as its filter (only the
/// modified ip: "Use hash argument for tmp_ops in update_ftrace_direct_mod", kernel-patches/bpf
/// PR #11375) and is registered with `register_ftrace_function_nolock`, which drops ftrace_lock
/// again; then `__ftrace_hash_update_ipmodify(ops, orig_hash, orig_hash, true)` runs over the
/// *whole* filter of the ops, without ftrace_lock: with the shared `direct_ops` that is the ip
/// of every trampoline, so SELF goes to every trampoline whose function has IPMODIFY; then the
/// entry is changed under ftrace_lock and the stub unregistered. BPF's `hash_from_ip`
/// allocation is its fault point.
///
/// Finding (README "Findings worth reading", `corpus/reproducers/readme-mainline-2026--race.txt`
/// and `--availability.txt`): because the pass covers `orig_hash`, SELF reaches a trampoline on
/// another function whose lock nobody here holds; if it calls the original without ORIG_STACK
/// under IPMODIFY (mid-update, or after the silent kprobe of fixes-2025) SELF writes its SHARE
/// and answers `-EAGAIN`, the caller's `goto again` gets `WARN_ON_ONCE` and `-EBUSY`: the link,
/// unlink or livepatch (PEER rebuild) of *this* function fails because of that one. The what-if
/// `direct_mod_checks_its_ips` runs the pass over `hash` instead.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct UpdateFtraceDirectMod {
    pub ops: OpsId,
    pub ip: FnId,
    pub addr: Addr,
    pub lock_direct: bool,
    pc: UpdateFtraceDirectModPc,
    err: Option<Errno>,
}

/// Where [`UpdateFtraceDirectMod`] resumes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub(super) enum UpdateFtraceDirectModPc {
    /// BPF's `direct_ops_mod`: `hash_from_ip`
    Entry = 0,
    /// the ops checks, `mutex_lock(&direct_mutex)` if `do_direct_lock`
    HashCopied = 1,
    /// `tmp_ops` gets the argument hash, `register_ftrace_function_nolock(&tmp_ops)`
    Locked = 2,
    /// `__ftrace_hash_update_ipmodify(ops, orig_hash, orig_hash, true)`
    StubRegistered = 3,
    /// the accounting answered: `goto out` on failure, else `mutex_lock(&ftrace_lock)`
    Accounted = 4,
    /// ftrace_lock held: change the entry; `out:` `unregister_ftrace_function(&tmp_ops)`
    Swap = 5,
    /// the stub is gone: unlock, return
    StubUnregistered = 6,
}

impl UpdateFtraceDirectMod {
    pub fn new(ops: OpsId, ip: FnId, addr: Addr, lock_direct: bool) -> Self {
        UpdateFtraceDirectMod {
            ops,
            ip,
            addr,
            lock_direct,
            pc: UpdateFtraceDirectModPc::Entry,
            err: None,
        }
    }

    fn done(&self, k: &mut Kernel, t: Tid, r: Ret) -> Flow {
        if self.lock_direct {
            k.unlock(t, Lock::Direct);
        }
        Flow::Ret(r)
    }
}

impl Step for UpdateFtraceDirectMod {
    const NAME: &'static str = "update_ftrace_direct_mod";
    fn step(&mut self, k: &mut Kernel, t: Tid, input: Input) -> Flow {
        use UpdateFtraceDirectModPc as Pc;
        let stub = k.id(OpsOwner::StubMulti);
        loop {
            match self.pc {
                // direct_ops_mod: hash_from_ip
                Pc::Entry => wait!(self, Pc::HashCopied, Request::Alloc(AllocSite::HashCopy)),
                Pc::HashCopied => {
                    if !input.ok() {
                        return Flow::Ret(Err(Errno::ENOMEM));
                    }
                    let o = k.op(self.ops);
                    if !o.has(fl::DIRECT) || !o.has(fl::ENABLED) {
                        return Flow::Ret(Err(Errno::EINVAL));
                    }
                    if self.lock_direct {
                        wait!(self, Pc::Locked, Request::Lock(Lock::Direct));
                    }
                    self.pc = Pc::Locked;
                }
                Pc::Locked => {
                    if k.direct_functions.entries().is_empty() || k.filter(self.ops).is_empty() {
                        return self.done(k, t, Err(Errno::EINVAL));
                    }
                    // rcu_assign_pointer(tmp_ops.func_hash->filter_hash, hash)
                    k.assign_hash(t, stub, false, IpHash::from_fns(&[self.ip]));
                    call!(
                        self,
                        Pc::StubRegistered,
                        RegisterFtraceFunctionNolock::new(stub)
                    );
                }
                Pc::StubRegistered => {
                    if let Err(e) = input.ret() {
                        k.assign_hash(t, stub, false, IpHash::new());
                        return self.done(k, t, Err(e));
                    }
                    if k.proto.direct_mod_checks_its_ips {
                        call!(
                            self,
                            Pc::Accounted,
                            FtraceHashUpdateIpmodify::modify_ips(self.ops, &[self.ip])
                        );
                    }
                    call!(
                        self,
                        Pc::Accounted,
                        FtraceHashUpdateIpmodify::modify(k, self.ops)
                    );
                }
                Pc::Accounted => {
                    if let Err(e) = input.ret() {
                        self.err = Some(e);
                        call!(
                            self,
                            Pc::StubUnregistered,
                            UnregisterFtraceFunction::new(stub)
                        );
                    }
                    wait!(self, Pc::Swap, Request::Lock(Lock::Ftrace));
                }
                Pc::Swap => {
                    if k.direct_functions.lookup(self.ip).is_some() {
                        k.direct_set_first(t, self.ip, self.addr);
                    }
                    k.unlock(t, Lock::Ftrace);
                    call!(
                        self,
                        Pc::StubUnregistered,
                        UnregisterFtraceFunction::new(stub)
                    );
                }
                Pc::StubUnregistered => {
                    k.assign_hash(t, stub, false, IpHash::new());
                    return self.done(k, t, self.err.map_or(Ok(0), Err));
                }
            }
        }
    }
}
