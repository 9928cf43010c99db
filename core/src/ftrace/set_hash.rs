//! Filter and notrace updates: `ftrace_set_hash` with one ip (`ftrace_set_filter_ip`, the tracefs
//! files) and a tracer setting both hashes at once.

use super::*;

/// `ftrace_set_filter_ip` / `ftrace_set_notrace_ip` (`ftrace_set_hash` with one ip): regex_lock,
/// copy the hash (an allocation), add or remove the ip, then under ftrace_lock
/// `ftrace_hash_move_and_update_ops`: the IPMODIFY accounting for a filter change, the record
/// accounting and the code update. It sends no command to anyone.
///
/// proposed (`set_filter_notifies_peer`): for an enabled non-direct IPMODIFY ops, direct_mutex is
/// taken first; the ips the change adds go through the prepare pass (ENABLE_PEER) before the new
/// filter goes live, and the ips it removes through the cleanup pass (DISABLE_PEER) after.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FtraceSetHash {
    pub ops: OpsId,
    pub ip: FnId,
    pub notrace: bool,
    pub remove: bool,
    pub reset: bool,
    /// The tracefs path (`set_ftrace_filter` / `set_ftrace_notrace`: `ftrace_regex_write` ->
    /// `match_records` -> `enter_record`), not `ftrace_set_filter_ip`: adding an ip already in
    /// the hash and removing one that is absent change nothing and succeed (6.1
    /// `kernel/trace/ftrace.c` `enter_record`: `if (entry) return 0` / `if (!entry) return 0`;
    /// the same in 6.12). Found by `ftsim kernel --random` on 6.12.117.
    pub regex: bool,
    pc: FtraceSetHashPc,
    new: IpHash,
    holds_direct: bool,
    leaving: Vec<FnId>,
}

/// Where [`FtraceSetHash`] resumes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub(super) enum FtraceSetHashPc {
    /// proposed `set_filter_notifies_peer`: `mutex_lock(&direct_mutex)`; `mutex_lock(&ops->func_hash->regex_lock)`
    Entry = 0,
    /// direct_mutex held: `mutex_lock(&ops->func_hash->regex_lock)`
    LockRegex = 10,
    /// regex_lock held: `alloc_and_copy_ftrace_hash`
    CopyHash = 1,
    /// the copy answered (proposed `filter_remove_in_place`: reserve the removal slot)
    HashCopied = 11,
    /// proposed `filter_remove_in_place`: the removal slot answered
    SlotReserved = 12,
    /// `ftrace_match_addr`: add or remove the ip in the copy
    Edit = 2,
    /// proposed: the prepare pass over the entering ips answered
    Prepared = 5,
    /// ftrace_lock held: `ftrace_hash_move_and_update_ops`, the IPMODIFY accounting first
    Move = 3,
    /// the accounting answered
    Accounted = 4,
    /// the record accounting around the swap, the code update, the unlocks
    Update = 6,
    /// proposed: the cleanup pass over the leaving ips returned
    CleanedUp = 7,
    /// proposed `peer_disable_deferred`: the deferred DISABLE_PEERs are done
    DeferredDone = 8,
}

impl FtraceSetHash {
    /// The same edit through the tracefs files (see [`FtraceSetHash::regex`]).
    pub fn regex(mut self) -> Self {
        self.regex = true;
        self
    }
    pub fn filter(ops: OpsId, ip: FnId, remove: bool, reset: bool) -> Self {
        FtraceSetHash {
            ops,
            ip,
            notrace: false,
            remove,
            reset,
            regex: false,
            pc: FtraceSetHashPc::Entry,
            new: IpHash::new(),
            holds_direct: false,
            leaving: Vec::new(),
        }
    }
    pub fn notrace(ops: OpsId, ip: FnId, remove: bool) -> Self {
        FtraceSetHash {
            ops,
            ip,
            notrace: true,
            remove,
            reset: false,
            regex: false,
            pc: FtraceSetHashPc::Entry,
            new: IpHash::new(),
            holds_direct: false,
            leaving: Vec::new(),
        }
    }
    fn fail(&self, k: &mut Kernel, t: Tid, ftrace: bool, e: Errno) -> Flow {
        if ftrace {
            k.unlock(t, Lock::Ftrace);
        }
        k.unlock(t, Lock::Regex(self.ops));
        if self.holds_direct {
            k.unlock(t, Lock::Direct);
        }
        Flow::Ret(Err(e))
    }

    /// `ftrace_match_addr` on the copy: the hash this edit leaves (`-EINVAL` for an ip without a
    /// record, `-ENOENT` for removing one the hash does not hold).
    fn match_addr(&self, k: &Kernel) -> Result<IpHash, Errno> {
        let orig = if self.notrace {
            k.notrace(self.ops)
        } else {
            k.filter(self.ops)
        };
        let mut new = if self.reset {
            IpHash::new()
        } else {
            orig.clone()
        };
        // __ftrace_match_addr: ftrace_location(ip) must find a record.
        if !k.rec(self.ip).present {
            return Err(Errno::EINVAL);
        }
        let present = new.contains(self.ip);
        if self.remove {
            if self.regex && !present {
                // enter_record with clear_filter: nothing to clear
            } else {
                new.remove(self.ip)?;
            }
        } else if !((self.regex || k.proto.match_addr_dedups) && present) {
            // enter_record (tracefs) never adds a present function; without
            // `match_addr_dedups`, `ftrace_set_filter_ip` adds a second entry (SPEC §1);
            // with it "Already exists" returns 0 (Debian 6.1.192 ftrace.c:5162-5165).
            new.add(self.ip);
        }
        Ok(new)
    }

    /// `ftrace_hash_move_and_update_ops` after the accounting (ftrace_lock held): the record
    /// accounting around the swap, the code update, the unlocks; proposed: the cleanup pass over
    /// the ips the change removes, which the caller runs.
    fn move_and_update_ops(
        &mut self,
        k: &mut Kernel,
        t: Tid,
    ) -> Option<CleanupDirectFunctionsAfterIpmodify> {
        let filter_hash = !self.notrace;
        k.hash_rec_update(t, self.ops, filter_hash, false);
        k.assign_hash(t, self.ops, self.notrace, std::mem::take(&mut self.new));
        k.hash_rec_update(t, self.ops, filter_hash, true);
        if k.op(self.ops).has(fl::ENABLED) {
            k.update_code(t);
        }
        k.unlock(t, Lock::Ftrace);
        k.unlock(t, Lock::Regex(self.ops));
        if !self.holds_direct || self.leaving.is_empty() {
            return None;
        }
        let mut c = CleanupDirectFunctionsAfterIpmodify::new(self.ops);
        c.ips = Some(if k.proto.peer_disable_deferred {
            self.leaving.clone()
        } else {
            std::mem::take(&mut self.leaving)
        });
        c.holds_direct = true;
        Some(c)
    }
}

impl Step for FtraceSetHash {
    const NAME: &'static str = "ftrace_set_hash";
    fn step(&mut self, k: &mut Kernel, t: Tid, input: Input) -> Flow {
        use FtraceSetHashPc as Pc;
        loop {
            match self.pc {
                Pc::Entry => {
                    let o = k.op(self.ops);
                    if k.proto.set_filter_notifies_peer
                        && !self.notrace
                        && o.has(fl::ENABLED)
                        && o.has(fl::IPMODIFY)
                        && !o.has(fl::DIRECT)
                    {
                        self.holds_direct = true;
                        wait!(self, Pc::LockRegex, Request::Lock(Lock::Direct));
                    }
                    wait!(self, Pc::CopyHash, Request::Lock(Lock::Regex(self.ops)));
                }
                Pc::LockRegex => wait!(self, Pc::CopyHash, Request::Lock(Lock::Regex(self.ops))),
                Pc::CopyHash if self.remove && k.proto.filter_remove_in_place => self.pc = Pc::Edit,
                Pc::CopyHash => wait!(self, Pc::HashCopied, Request::Alloc(AllocSite::HashCopy)),
                Pc::HashCopied => {
                    if !input.ok() {
                        return self.fail(k, t, false, Errno::ENOMEM);
                    }
                    // proposed (`filter_remove_in_place`): the slot the removal of this ip will
                    // need is allocated now, so the removal cannot fail and an add can.
                    if !self.remove && k.proto.filter_remove_in_place {
                        wait!(
                            self,
                            Pc::SlotReserved,
                            Request::Alloc(AllocSite::RemoveSlot)
                        );
                    }
                    self.pc = Pc::Edit;
                }
                Pc::SlotReserved => {
                    if !input.ok() {
                        return self.fail(k, t, false, Errno::ENOMEM);
                    }
                    self.pc = Pc::Edit;
                }
                Pc::Edit => {
                    let new = match self.match_addr(k) {
                        Ok(new) => new,
                        Err(e) => return self.fail(k, t, false, e),
                    };
                    if self.holds_direct {
                        let old = k.filter(self.ops);
                        let entering: Vec<FnId> = new.ips().filter(|f| !old.contains(*f)).collect();
                        self.leaving = old.ips().filter(|f| !new.contains(*f)).collect();
                        self.new = new;
                        if !entering.is_empty() {
                            call!(
                                self,
                                Pc::Prepared,
                                PrepareDirectFunctionsForIpmodify::for_ips(self.ops, entering)
                            );
                        }
                    } else {
                        self.new = new;
                    }
                    wait!(self, Pc::Move, Request::Lock(Lock::Ftrace))
                }
                Pc::Prepared => {
                    if let Err(e) = input.ret() {
                        return self.fail(k, t, false, e);
                    }
                    wait!(self, Pc::Move, Request::Lock(Lock::Ftrace))
                }
                Pc::Move => {
                    // ftrace_hash_move: "Reject setting notrace hash on IPMODIFY ftrace_ops"
                    if self.notrace {
                        if k.op(self.ops).has(fl::IPMODIFY) {
                            return self.fail(k, t, true, Errno::EINVAL);
                        }
                        self.pc = Pc::Update;
                        continue;
                    }
                    call!(
                        self,
                        Pc::Accounted,
                        FtraceHashUpdateIpmodify::update(k, self.ops, &self.new)
                    )
                }
                Pc::Accounted => {
                    if let Err(e) = input.ret() {
                        return self.fail(k, t, true, e);
                    }
                    self.pc = Pc::Update;
                }
                Pc::Update => {
                    if let Some(c) = self.move_and_update_ops(k, t) {
                        call!(self, Pc::CleanedUp, c);
                    }
                    self.pc = Pc::CleanedUp;
                }
                Pc::CleanedUp => {
                    if self.holds_direct {
                        k.unlock(t, Lock::Direct);
                        if k.proto.peer_disable_deferred && !self.leaving.is_empty() {
                            let ips = Some(std::mem::take(&mut self.leaving));
                            call!(self, Pc::DeferredDone, unshare_deferred(k, self.ops, &ips));
                        }
                    }
                    return Flow::Ret(Ok(0));
                }
                Pc::DeferredDone => return Flow::Ret(Ok(0)),
            }
        }
    }
}

/// A tracer setting both hashes of its (unregistered) ops at once: `ftrace_set_filter` +
/// `ftrace_set_notrace` with reset, as the function tracer's files do.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FtraceSetFilterNotrace {
    pub ops: OpsId,
    pub filter: Vec<FnId>,
    pub notrace: Vec<FnId>,
    pc: FtraceSetFilterNotracePc,
}

/// Where [`FtraceSetFilterNotrace`] resumes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub(super) enum FtraceSetFilterNotracePc {
    /// `mutex_lock(&ops->func_hash->regex_lock)`
    Entry = 0,
    /// `alloc_and_copy_ftrace_hash`
    CopyHash = 1,
    /// the copy answered (proposed `filter_remove_in_place`: reserve the removal slots)
    HashCopied = 4,
    /// the ips must have records; `mutex_lock(&ftrace_lock)`
    SlotReserved = 2,
    /// ftrace_lock held: both hashes with the record accounting, the code update
    Assign = 3,
}

impl FtraceSetFilterNotrace {
    pub fn new(ops: OpsId, filter: Vec<FnId>, notrace: Vec<FnId>) -> Self {
        FtraceSetFilterNotrace {
            ops,
            filter,
            notrace,
            pc: FtraceSetFilterNotracePc::Entry,
        }
    }
}

impl Step for FtraceSetFilterNotrace {
    const NAME: &'static str = "ftrace_set_filter+notrace";
    fn step(&mut self, k: &mut Kernel, t: Tid, input: Input) -> Flow {
        use FtraceSetFilterNotracePc as Pc;
        match self.pc {
            Pc::Entry => wait!(self, Pc::CopyHash, Request::Lock(Lock::Regex(self.ops))),
            Pc::CopyHash => wait!(self, Pc::HashCopied, Request::Alloc(AllocSite::HashCopy)),
            Pc::HashCopied => {
                if !input.ok() {
                    k.unlock(t, Lock::Regex(self.ops));
                    return Flow::Ret(Err(Errno::ENOMEM));
                }
                // proposed (`filter_remove_in_place`): one allocation holds the removal slots of
                // every entry the registration adds.
                let adds = !(self.filter.is_empty() && self.notrace.is_empty());
                if adds && k.proto.filter_remove_in_place {
                    wait!(
                        self,
                        Pc::SlotReserved,
                        Request::Alloc(AllocSite::RemoveSlot)
                    );
                }
                self.pc = Pc::SlotReserved;
                self.step(k, t, Input::Answer(true))
            }
            Pc::SlotReserved => {
                if !input.ok() {
                    k.unlock(t, Lock::Regex(self.ops));
                    return Flow::Ret(Err(Errno::ENOMEM));
                }
                if self
                    .filter
                    .iter()
                    .chain(&self.notrace)
                    .any(|f| !k.rec(*f).present)
                {
                    k.unlock(t, Lock::Regex(self.ops));
                    return Flow::Ret(Err(Errno::EINVAL));
                }
                wait!(self, Pc::Assign, Request::Lock(Lock::Ftrace))
            }
            Pc::Assign => {
                let enabled = k.op(self.ops).has(fl::ENABLED);
                for (notrace, list) in [(false, &self.filter), (true, &self.notrace)] {
                    k.hash_rec_update(t, self.ops, !notrace, false);
                    k.assign_hash(t, self.ops, notrace, IpHash::from_fns(list));
                    k.hash_rec_update(t, self.ops, !notrace, true);
                }
                if enabled {
                    k.update_code(t);
                }
                k.unlock(t, Lock::Ftrace);
                k.unlock(t, Lock::Regex(self.ops));
                Flow::Ret(Ok(0))
            }
        }
    }
}
