//! The owners of ops (SPEC §2): livepatch, BPF trampolines, IPMODIFY kprobes, plain tracers,
//! single-ip direct users, and the module loader. Each owner-level operation (SPEC §7) is a frame.

pub mod bpf;
pub mod direct_users;
pub mod kprobes;
pub mod livepatch;
pub mod modules;
pub mod tracers;

use crate::errno::Errno;
use crate::frames::Frame;
use crate::ftrace::Cmd;
use crate::ids::{FnId, OpsId, OpsOwner, Tid};
use crate::kernel::Kernel;
use crate::op::Op;
use direct_users::{DirectAction, FtraceDirectSample};

/// The frame that carries out an owner-level operation.
pub fn frame_for(op: &Op) -> Frame {
    match op {
        Op::KlpEnable(f) => livepatch::KlpEnablePatch::new(*f).into(),
        Op::KlpDisable(f) => livepatch::KlpDisablePatch::new(*f).into(),
        Op::BpfLink(kind, f) => bpf::BpfTrampolineLinkProg::new(*kind, *f).into(),
        Op::BpfUnlink(kind, f) => bpf::BpfTrampolineUnlinkProg::new(*kind, *f).into(),
        Op::KprobeArm(f) => kprobes::RegisterKprobe::new(*f).into(),
        Op::KprobeDisarm(f) => kprobes::UnregisterKprobe::new(*f).into(),
        Op::TracerRegister {
            tracer,
            filter,
            notrace,
        } => tracers::TracerRegister::new(*tracer, filter.clone(), notrace.clone()).into(),
        Op::TracerSet {
            tracer,
            which,
            add,
            func,
        } => tracers::TracerSetIp::new(*tracer, *which, *add, *func).into(),
        Op::TracerUnregister(t) => tracers::TracerUnregister::new(*t).into(),
        Op::DirectRegister(f) => FtraceDirectSample::new(DirectAction::Register, *f).into(),
        Op::DirectModify(f) => FtraceDirectSample::new(DirectAction::Modify, *f).into(),
        Op::DirectUnregister(f) => FtraceDirectSample::new(DirectAction::Unregister, *f).into(),
        Op::ModuleLoad(m) => modules::LoadModule::new(*m).into(),
        Op::ModuleUnload(m) => modules::DeleteModule::new(*m).into(),
    }
}

/// `op->ops_func(op, ip, cmd)` for a PEER command: the callback frame of the ops' owner. ftrace
/// reaches an owner only through its ops (here, and [`self_cmd`]), as the kernel calls the
/// function pointer the owner set; only BPF's direct ops set one.
pub fn ops_func(k: &Kernel, target: OpsId, ip: FnId, cmd: Cmd) -> Frame {
    match k.owner(target) {
        OpsOwner::Bpf(_) | OpsOwner::BpfDirectOps => {
            bpf::BpfTrampFtraceOpsFunc::new(k.cmd_target(target, ip), cmd).into()
        }
        other => panic!("[core internal bug] {other} has no ops_func"),
    }
}

/// `op->ops_func(op, ip, cmd)` for a SELF command, run inline (pure flag logic).
pub fn self_cmd(k: &mut Kernel, t: Tid, ops: OpsId, ip: FnId, cmd: Cmd) -> Result<(), Errno> {
    bpf::self_cmd(k, t, ops, ip, cmd)
}

/// proposed (`peer_disable_deferred`): the owner's deferred DISABLE_PEER work for these ips,
/// which the sender runs once it has released direct_mutex.
pub fn unshare_deferred(ips: Vec<FnId>) -> Frame {
    bpf::BpfTrampolineUnshareDeferred::new(ips).into()
}
