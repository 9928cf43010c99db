//! The frame registry: every resumable function of the model, the [`Step`] trait a frame
//! implements and the [`Flow`] a step returns. A frame's step may return `Flow::Call(Frame)` and
//! [`Frame`] enumerates every frame: the registry is the sum type of the kernel functions that
//! call one another (as `register_ftrace_function` calls an owner's `ops_func`, which calls
//! `modify_ftrace_direct`), the one mutual reference of the frame bodies (`ftrace/`,
//! `direct/`, `owners/`) and this module (`core/tests/imports.rs`).

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
            #[inline]
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
    RegisterFtraceFunctionNolock(crate::ftrace::RegisterFtraceFunctionNolock),
    FtraceStartup(crate::ftrace::FtraceStartup),
    FtraceHashUpdateIpmodify(crate::ftrace::FtraceHashUpdateIpmodify),
    PrepareDirectFunctionsForIpmodify(crate::ftrace::PrepareDirectFunctionsForIpmodify),
    CleanupDirectFunctionsAfterIpmodify(crate::ftrace::CleanupDirectFunctionsAfterIpmodify),
    UnregisterFtraceFunction(crate::ftrace::UnregisterFtraceFunction),
    FtraceSetHash(crate::ftrace::FtraceSetHash),
    FtraceSetFilterNotrace(crate::ftrace::FtraceSetFilterNotrace),
    OpsFunc(crate::ftrace::OpsFunc),
    RegisterFtraceDirectMulti(crate::direct::RegisterFtraceDirectMulti),
    UnregisterFtraceDirectMulti(crate::direct::UnregisterFtraceDirectMulti),
    ModifyFtraceDirectMulti(crate::direct::ModifyFtraceDirectMulti),
    RegisterFtraceDirect(crate::direct::RegisterFtraceDirect),
    ModifyFtraceDirect(crate::direct::ModifyFtraceDirect),
    UnregisterFtraceDirect(crate::direct::UnregisterFtraceDirect),
    UpdateFtraceDirectAdd(crate::direct::UpdateFtraceDirectAdd),
    UpdateFtraceDirectDel(crate::direct::UpdateFtraceDirectDel),
    UpdateFtraceDirectMod(crate::direct::UpdateFtraceDirectMod),
    BpfTrampFtraceOpsFunc(crate::owners::bpf::BpfTrampFtraceOpsFunc),
    BpfTrampolineUpdate(crate::owners::bpf::BpfTrampolineUpdate),
    RegisterFentry(crate::owners::bpf::RegisterFentry),
    ModifyFentry(crate::owners::bpf::ModifyFentry),
    UnregisterFentry(crate::owners::bpf::UnregisterFentry),
    BpfTrampolineLinkProg(crate::owners::bpf::BpfTrampolineLinkProg),
    BpfTrampolineUnlinkProg(crate::owners::bpf::BpfTrampolineUnlinkProg),
    BpfTrampolineUnsharePending(crate::owners::bpf::BpfTrampolineUnsharePending),
    KlpEnablePatch(crate::owners::livepatch::KlpEnablePatch),
    KlpDisablePatch(crate::owners::livepatch::KlpDisablePatch),
    KlpPatchFunc(crate::owners::livepatch::KlpPatchFunc),
    KlpUnpatchFunc(crate::owners::livepatch::KlpUnpatchFunc),
    RegisterKprobe(crate::owners::kprobes::RegisterKprobe),
    UnregisterKprobe(crate::owners::kprobes::UnregisterKprobe),
    ArmKprobeFtrace(crate::owners::kprobes::ArmKprobeFtrace),
    DisarmKprobeFtrace(crate::owners::kprobes::DisarmKprobeFtrace),
    TracerRegister(crate::owners::tracers::TracerRegister),
    TracerSetIp(crate::owners::tracers::TracerSetIp),
    TracerUnregister(crate::owners::tracers::TracerUnregister),
    FtraceDirectSample(crate::owners::direct_users::FtraceDirectSample),
    LoadModule(crate::owners::modules::LoadModule),
    DeleteModule(crate::owners::modules::DeleteModule),
    FtraceReleaseMod(crate::owners::modules::FtraceReleaseMod),
    BpfTrampolineUnshareDeferred(crate::owners::bpf::BpfTrampolineUnshareDeferred),
}
