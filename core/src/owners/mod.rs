//! The owners of ops (SPEC §2): livepatch, BPF trampolines, IPMODIFY kprobes, plain tracers,
//! single-ip direct users, and the module loader. Each owner-level operation (SPEC §7) is a frame.

pub mod bpf;
pub mod direct_users;
pub mod kprobes;
pub mod livepatch;
pub mod modules;
pub mod tracers;

use crate::machine::Frame;
use crate::op::Op;
use direct_users::{DirectAction, DirectUser};

/// The frame that carries out an owner-level operation.
pub fn frame_for(op: &Op) -> Frame {
    match op {
        Op::KlpEnable(f) => livepatch::KlpEnable::new(*f).into(),
        Op::KlpDisable(f) => livepatch::KlpDisable::new(*f).into(),
        Op::BpfLink(kind, f) => bpf::BpfLink::new(*kind, *f).into(),
        Op::BpfUnlink(kind, f) => bpf::BpfUnlink::new(*kind, *f).into(),
        Op::KprobeArm(f) => kprobes::KprobeArm::new(*f).into(),
        Op::KprobeDisarm(f) => kprobes::KprobeDisarm::new(*f).into(),
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
        } => tracers::TracerSet::new(*tracer, *which, *add, *func).into(),
        Op::TracerUnregister(t) => tracers::TracerUnregister::new(*t).into(),
        Op::DirectRegister(f) => DirectUser::new(DirectAction::Register, *f).into(),
        Op::DirectModify(f) => DirectUser::new(DirectAction::Modify, *f).into(),
        Op::DirectUnregister(f) => DirectUser::new(DirectAction::Unregister, *f).into(),
        Op::ModuleLoad(m) => modules::ModuleLoad::new(*m).into(),
        Op::ModuleUnload(m) => modules::ModuleUnload::new(*m).into(),
    }
}
