//! The frame registry: every resumable function of the model, the [`Step`] trait a frame
//! implements and the [`Flow`] a step returns. A frame's step may return `Flow::Call(Frame)` and
//! [`Frame`] enumerates every frame: the registry is the sum type of the kernel functions that
//! call one another (as `register_ftrace_function` calls an owner's `ops_func`, which calls
//! `modify_ftrace_direct`), the one mutual reference of the frame bodies (`ftrace.rs`,
//! `direct.rs`, `owners/`) and this module (`core/tests/imports.rs`).

use crate::ids::Tid;
use crate::kernel::Kernel;
use crate::step::{Input, Request, Ret};

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
            pub(crate) fn step(&mut self, k: &mut Kernel, t: Tid, input: Input) -> Flow {
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
