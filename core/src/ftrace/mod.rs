//! ftrace.c entry points as resumable frames (SPEC §5): registration and unregistration here,
//! the IPMODIFY accounting and the prepare/cleanup peer scans in `ipmodify.rs`, filter updates in
//! `set_hash.rs`, and the owner callback `ops->ops_func`.
//!
//! Each frame's comments name the kernel lines it mirrors. A frame suspends only where the
//! kernel takes a lock or allocates; everything between two suspensions is atomic.

use crate::errno::Errno;
use crate::frames::{Flow, Frame, Step};
use crate::hash::IpHash;
use crate::ids::{FnId, OpsId, Tid};
use crate::kernel::{fl, Kernel, RETRIES_MAX};
use crate::locks::Lock;
use crate::property::{Property, Violation};
use crate::protocol::{
    BpfShareState, DirectMeetsIpmodify, IpmodifyOwnerCall, PeerScan, RegisterTakesDirectMutex,
};
use crate::step::{AllocSite, EventKind, Input, Request, Ret};

/// Suspends the frame at `pc` until the driver answers `req`.
macro_rules! wait {
    ($self:ident, $pc:expr, $req:expr) => {{
        $self.pc = $pc;
        return $crate::frames::Flow::Wait($req);
    }};
}
/// Calls a child frame; the frame resumes at `pc` with the child's return value.
macro_rules! call {
    ($self:ident, $pc:expr, $child:expr) => {{
        $self.pc = $pc;
        return $crate::frames::Flow::Call($crate::frames::Frame::from($child));
    }};
}
pub(crate) use {call, wait};

mod ipmodify;
mod set_hash;

pub use ipmodify::*;
pub use set_hash::*;

/// An owner command (`enum ftrace_ops_cmd`, SPEC §5.2, §5.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Cmd {
    /// merged `ENABLE_SHARE_IPMODIFY_SELF`: sent to a direct ops entering an IPMODIFY record.
    SelfEnable,
    /// proposed `DISABLE_SHARE_IPMODIFY_SELF` (`self_syncs_share`): sent to a direct ops entering
    /// a record without IPMODIFY.
    SelfDisable,
    /// v2 `ENABLE_SHARE_IPMODIFY`, merged `ENABLE_SHARE_IPMODIFY_PEER`.
    PeerEnable,
    /// v2 `DISABLE_SHARE_IPMODIFY`, merged `DISABLE_SHARE_IPMODIFY_PEER`.
    PeerDisable,
}

impl Cmd {
    pub fn name(self, share: BpfShareState) -> &'static str {
        match (self, share) {
            (Cmd::SelfEnable, _) => "ENABLE_SHARE_IPMODIFY_SELF",
            (Cmd::SelfDisable, _) => "DISABLE_SHARE_IPMODIFY_SELF",
            (Cmd::PeerEnable, BpfShareState::IndirectBool) => "ENABLE_SHARE_IPMODIFY",
            (Cmd::PeerDisable, BpfShareState::IndirectBool) => "DISABLE_SHARE_IPMODIFY",
            (Cmd::PeerEnable, _) => "ENABLE_SHARE_IPMODIFY_PEER",
            (Cmd::PeerDisable, _) => "DISABLE_SHARE_IPMODIFY_PEER",
        }
    }
}

/// The first direct ops the peer scan of `prepare_direct_functions_for_ipmodify` /
/// `cleanup_direct_functions_after_ipmodify` finds for `ip` (ftrace_lock held).
pub fn peer_scan(k: &Kernel, ip: FnId, mode: PeerScan) -> Option<OpsId> {
    for &op in &k.ops_list {
        let o = k.op(op);
        if !o.has(fl::DIRECT) {
            continue;
        }
        // v2: "if (op->flags & FTRACE_OPS_FL_SHARE_IPMODIFY) break;"
        if mode == PeerScan::StopAtSharing && o.has(fl::SHARE_IPMODIFY) {
            return None;
        }
        if k.references(op, ip) {
            return Some(op);
        }
    }
    None
}

/// `register_ftrace_function` (SPEC §5.2, §5.3): v2 takes direct_mutex in the prepare step of an
/// IPMODIFY ops; merged takes it for every ops, prepares, then `register_ftrace_function_nolock`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RegisterFtraceFunction {
    pub ops: OpsId,
    pc: RegisterFtraceFunctionPc,
    direct_locked: bool,
    prepare: bool,
}

/// Where [`RegisterFtraceFunction`] resumes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
enum RegisterFtraceFunctionPc {
    /// decide the prepare step; `lock_direct_mutex()` where the version takes it
    Entry = 0,
    /// `prepare_direct_functions_for_ipmodify(ops)` (or straight to the register)
    Prepare = 1,
    /// the prepare answered: `register_ftrace_function_nolock(ops)`
    RegisterNolock = 2,
    /// `out_unlock:` `unlock_direct_mutex()`
    OutUnlock = 3,
}

impl RegisterFtraceFunction {
    pub fn new(ops: OpsId) -> Self {
        RegisterFtraceFunction {
            ops,
            pc: RegisterFtraceFunctionPc::Entry,
            direct_locked: false,
            prepare: false,
        }
    }
}

impl Step for RegisterFtraceFunction {
    const NAME: &'static str = "register_ftrace_function";
    fn step(&mut self, k: &mut Kernel, t: Tid, input: Input) -> Flow {
        use RegisterFtraceFunctionPc as Pc;
        loop {
            match self.pc {
                Pc::Entry => {
                    let o = k.op(self.ops);
                    self.prepare = o.has(fl::IPMODIFY)
                        && !o.has(fl::DIRECT)
                        && k.proto.peer_scan != PeerScan::None;
                    let takes = k.proto.register_takes_direct_mutex
                        == RegisterTakesDirectMutex::Always
                        || self.prepare;
                    if takes {
                        self.direct_locked = true;
                        wait!(self, Pc::Prepare, Request::Lock(Lock::Direct));
                    }
                    self.pc = Pc::Prepare;
                }
                Pc::Prepare => {
                    if self.prepare {
                        call!(
                            self,
                            Pc::RegisterNolock,
                            PrepareDirectFunctionsForIpmodify::new(self.ops)
                        );
                    }
                    call!(
                        self,
                        Pc::OutUnlock,
                        RegisterFtraceFunctionNolock::new(self.ops)
                    );
                }
                Pc::RegisterNolock => {
                    if let Err(e) = input.ret() {
                        if self.direct_locked {
                            k.unlock(t, Lock::Direct);
                        }
                        return Flow::Ret(Err(e));
                    }
                    call!(
                        self,
                        Pc::OutUnlock,
                        RegisterFtraceFunctionNolock::new(self.ops)
                    );
                }
                Pc::OutUnlock => {
                    if self.direct_locked {
                        k.unlock(t, Lock::Direct);
                    }
                    return Flow::Ret(input.ret().map(|_| 0));
                }
            }
        }
    }
}

/// `register_ftrace_function_nolock`: ftrace_lock + `ftrace_startup`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RegisterFtraceFunctionNolock {
    pub ops: OpsId,
    pc: RegisterFtraceFunctionNolockPc,
}

/// Where [`RegisterFtraceFunctionNolock`] resumes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
enum RegisterFtraceFunctionNolockPc {
    /// `mutex_lock(&ftrace_lock)`
    Entry = 0,
    /// `ftrace_startup(ops, 0)`
    Startup = 1,
    /// `mutex_unlock(&ftrace_lock)`
    Unlock = 2,
}

impl RegisterFtraceFunctionNolock {
    pub fn new(ops: OpsId) -> Self {
        RegisterFtraceFunctionNolock {
            ops,
            pc: RegisterFtraceFunctionNolockPc::Entry,
        }
    }
}

impl Step for RegisterFtraceFunctionNolock {
    const NAME: &'static str = "register_ftrace_function_nolock";
    fn step(&mut self, k: &mut Kernel, t: Tid, input: Input) -> Flow {
        use RegisterFtraceFunctionNolockPc as Pc;
        match self.pc {
            Pc::Entry => wait!(self, Pc::Startup, Request::Lock(Lock::Ftrace)),
            Pc::Startup => call!(
                self,
                Pc::Unlock,
                FtraceStartup {
                    ops: self.ops,
                    pc: FtraceStartupPc::Entry
                }
            ),
            Pc::Unlock => {
                k.unlock(t, Lock::Ftrace);
                Flow::Ret(input.ret())
            }
        }
    }
}

/// `ftrace_startup` (ftrace_lock held): add to the list head, ENABLED, the IPMODIFY accounting
/// (rolled back on failure), the record accounting and the code update.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FtraceStartup {
    pub ops: OpsId,
    pc: FtraceStartupPc,
}

/// Where [`FtraceStartup`] resumes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
enum FtraceStartupPc {
    /// `__register_ftrace_function`, then `ftrace_hash_ipmodify_enable(ops)`
    Entry = 0,
    /// the accounting answered: "Rollback registration process" or `ftrace_hash_rec_enable` and the code update
    HashRecEnable = 1,
}

impl Step for FtraceStartup {
    const NAME: &'static str = "ftrace_startup";
    fn step(&mut self, k: &mut Kernel, t: Tid, input: Input) -> Flow {
        use FtraceStartupPc as Pc;
        match self.pc {
            Pc::Entry => {
                // __register_ftrace_function: WARN_ON(ops->flags & FTRACE_OPS_FL_ENABLED) -> -EBUSY
                if k.op(self.ops).has(fl::ENABLED) {
                    k.ev(
                        t,
                        EventKind::Warn("__register_ftrace_function: ops already enabled"),
                    );
                    return Flow::Ret(Err(Errno::EBUSY));
                }
                k.list_add(t, self.ops);
                k.set_ops_flags(t, self.ops, fl::ENABLED, 0);
                call!(
                    self,
                    Pc::HashRecEnable,
                    FtraceHashUpdateIpmodify::enable(k, self.ops)
                )
            }
            Pc::HashRecEnable => {
                if let Err(e) = input.ret() {
                    // Rollback registration process
                    k.list_remove(t, self.ops);
                    k.set_ops_flags(t, self.ops, 0, fl::ENABLED);
                    return Flow::Ret(Err(e));
                }
                k.hash_rec_update(t, self.ops, true, true);
                k.update_code(t);
                Flow::Ret(Ok(0))
            }
        }
    }
}

/// `ftrace_shutdown` (ftrace_lock held). Atomic: it takes no lock and calls no owner.
pub fn ftrace_shutdown(k: &mut Kernel, t: Tid, ops: OpsId) -> Ret {
    if !k.op(ops).has(fl::ENABLED) {
        k.ev(
            t,
            EventKind::Warn("__unregister_ftrace_function: ops not enabled"),
        );
        return Err(Errno::EBUSY);
    }
    k.list_remove(t, ops);
    ipmodify_disable(k, t, ops);
    k.hash_rec_update(t, ops, true, false);
    k.set_ops_flags(t, ops, 0, fl::ENABLED);
    k.update_code(t);
    Ok(0)
}

/// `unregister_ftrace_function`: ftrace_lock + `ftrace_shutdown`; then, where the version has it,
/// `cleanup_direct_functions_after_ipmodify` for an IPMODIFY ops (even if shutdown failed).
/// proposed (`unregister_holds_direct_mutex`): direct_mutex is taken first for a non-direct
/// IPMODIFY ops and held through the cleanup, so no direct ops registers and no IPMODIFY ops
/// arrives between the shutdown and the DISABLE_PEER.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct UnregisterFtraceFunction {
    pub ops: OpsId,
    pc: UnregisterFtraceFunctionPc,
    r: Option<Errno>,
    holds_direct: bool,
}

/// Where [`UnregisterFtraceFunction`] resumes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
enum UnregisterFtraceFunctionPc {
    /// proposed `unregister_holds_direct_mutex`: `mutex_lock(&direct_mutex)`
    Entry = 0,
    /// `mutex_lock(&ftrace_lock)`
    LockFtrace = 1,
    /// `ftrace_shutdown(ops, 0)`, `mutex_unlock(&ftrace_lock)`, `cleanup_direct_functions_after_ipmodify(ops)`
    Shutdown = 2,
    /// the cleanup returned: release direct_mutex, run the deferred DISABLE_PEERs
    CleanedUp = 3,
    /// the deferred DISABLE_PEERs are done
    DeferredDone = 4,
}

impl UnregisterFtraceFunction {
    pub fn new(ops: OpsId) -> Self {
        UnregisterFtraceFunction {
            ops,
            pc: UnregisterFtraceFunctionPc::Entry,
            r: None,
            holds_direct: false,
        }
    }
}

impl Step for UnregisterFtraceFunction {
    const NAME: &'static str = "unregister_ftrace_function";
    fn step(&mut self, k: &mut Kernel, t: Tid, _input: Input) -> Flow {
        use UnregisterFtraceFunctionPc as Pc;
        loop {
            match self.pc {
                Pc::Entry => {
                    let o = k.op(self.ops);
                    if k.proto.unregister_holds_direct_mutex
                        && o.has(fl::IPMODIFY)
                        && !o.has(fl::DIRECT)
                    {
                        self.holds_direct = true;
                        wait!(self, Pc::LockFtrace, Request::Lock(Lock::Direct));
                    }
                    self.pc = Pc::LockFtrace;
                }
                Pc::LockFtrace => wait!(self, Pc::Shutdown, Request::Lock(Lock::Ftrace)),
                Pc::Shutdown => {
                    self.r = ftrace_shutdown(k, t, self.ops).err();
                    k.unlock(t, Lock::Ftrace);
                    if k.proto.cleanup_after_ipmodify && k.op(self.ops).has(fl::IPMODIFY) {
                        let mut c = CleanupDirectFunctionsAfterIpmodify::new(self.ops);
                        c.holds_direct = self.holds_direct;
                        call!(self, Pc::CleanedUp, c);
                    }
                    self.pc = Pc::CleanedUp;
                }
                Pc::CleanedUp => {
                    if self.holds_direct {
                        k.unlock(t, Lock::Direct);
                        if k.proto.peer_disable_deferred
                            && k.proto.cleanup_after_ipmodify
                            && k.op(self.ops).has(fl::IPMODIFY)
                        {
                            call!(self, Pc::DeferredDone, unshare_deferred(k, self.ops, &None));
                        }
                    }
                    return Flow::Ret(self.r.map_or(Ok(0), Err));
                }
                Pc::DeferredDone => return Flow::Ret(self.r.map_or(Ok(0), Err)),
            }
        }
    }
}

/// `op->ops_func(op, ip, cmd)`: ftrace asks the owner of a direct ops to change mode for the
/// function at `ip` (the ip argument since "ftrace: Factor ftrace_ops ops_func interface"; before,
/// `op->ops_func(op, cmd)` and the owner used `ops->private`, the same trampoline, since a
/// per-trampoline ops only ever references its own function).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct OpsFunc {
    pub target: OpsId,
    pub ip: FnId,
    pub cmd: Cmd,
    pc: OpsFuncPc,
}

/// Where [`OpsFunc`] resumes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
enum OpsFuncPc {
    /// the call to the owner
    Entry = 0,
    /// the owner answered
    Answered = 1,
}

impl OpsFunc {
    pub fn new(target: OpsId, ip: FnId, cmd: Cmd) -> Self {
        OpsFunc {
            target,
            ip,
            cmd,
            pc: OpsFuncPc::Entry,
        }
    }
}

impl Step for OpsFunc {
    const NAME: &'static str = "ops->ops_func";
    fn step(&mut self, k: &mut Kernel, t: Tid, input: Input) -> Flow {
        use OpsFuncPc as Pc;
        match self.pc {
            Pc::Entry => {
                k.ev(
                    t,
                    EventKind::Callback(self.target, self.cmd.name(k.proto.bpf_share_state)),
                );
                call!(
                    self,
                    Pc::Answered,
                    crate::owners::ops_func(k, self.target, self.ip, self.cmd)
                )
            }
            Pc::Answered => Flow::Ret(input.ret()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::{Hash, Hasher};

    /// The bytes a value feeds a hasher.
    #[derive(Default)]
    struct Fed(Vec<u8>);

    impl Hasher for Fed {
        fn finish(&self) -> u64 {
            0
        }
        fn write(&mut self, bytes: &[u8]) {
            self.0.extend_from_slice(bytes);
        }
    }

    fn fed(x: &impl Hash) -> Vec<u8> {
        let mut h = Fed::default();
        x.hash(&mut h);
        h.0
    }

    /// A frame's program counter feeds the state fingerprints (`fingerprint.rs`, explore's
    /// encoding) exactly the byte the numeric `pc: u8` fed before the labels had names: the
    /// enums are `repr(u8)` with those numbers, so no fingerprint and no pinned count moves.
    #[test]
    fn a_pc_hashes_as_its_number() {
        assert_eq!(fed(&RegisterFtraceFunctionPc::OutUnlock), fed(&3u8));
        assert_eq!(fed(&FtraceHashUpdateIpmodifyPc::RinseStart), fed(&10u8));
        assert_eq!(fed(&FtraceHashUpdateIpmodifyPc::FlagPass), fed(&20u8));
        assert_eq!(fed(&FtraceSetHashPc::SlotReserved), fed(&12u8));
        assert_eq!(
            fed(&RegisterFtraceFunction::new(OpsId(2))),
            fed(&(OpsId(2), 0u8, false, false))
        );
    }
}
