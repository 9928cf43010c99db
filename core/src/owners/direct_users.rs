//! Single-ip direct users (samples/ftrace/ftrace-direct*.c, SPEC §2): each registers its own
//! trampoline at one function through the single-ip API and its shared `direct_ops`, which has no
//! owner callback. A user pins the module of its function (a modelling choice: the samples target
//! built-in functions, and a user that did not pin its target would leave a dangling entry).
//! Like every owner, it names its target by symbol, so a function of a module that is not live
//! (loading or going) cannot be named: `-ENODEV`.

use crate::direct::{ModifyFtraceDirect, RegisterFtraceDirect, UnregisterFtraceDirect};
use crate::errno::Errno;
use crate::frames::{Flow, Step};
use crate::ftrace::call;
use crate::ids::{Addr, FnId, Tid};
use crate::kernel::Kernel;
use crate::protocol::SingleDirectApi;
use crate::step::Input;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DirectAction {
    Register,
    Modify,
    Unregister,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FtraceDirectSample {
    pub action: DirectAction,
    pub f: FnId,
    pc: FtraceDirectSamplePc,
    addr: Option<Addr>,
}

/// Where [`FtraceDirectSample`] resumes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
enum FtraceDirectSamplePc {
    /// the module's init or exit calls the single-ip API
    Entry = 0,
    /// the call returned
    Returned = 1,
}

impl FtraceDirectSample {
    pub fn new(action: DirectAction, f: FnId) -> Self {
        FtraceDirectSample {
            action,
            f,
            pc: FtraceDirectSamplePc::Entry,
            addr: None,
        }
    }
}

impl Step for FtraceDirectSample {
    const NAME: &'static str = "ftrace_direct_sample";
    fn step(&mut self, k: &mut Kernel, _t: Tid, input: Input) -> Flow {
        use FtraceDirectSamplePc as Pc;
        let f = self.f;
        if self.pc == Pc::Returned {
            let r = input.ret();
            let st = k.fstate_mut(f);
            st.direct_busy = false;
            match self.action {
                DirectAction::Register if r.is_err() => st.direct_user = None,
                DirectAction::Modify if r.is_ok() => st.direct_user = self.addr,
                DirectAction::Unregister => st.direct_user = None,
                _ => {}
            }
            return Flow::Ret(r);
        }
        // One sample module's init and exit never overlap.
        if k.fstate(f).direct_busy {
            return Flow::Ret(Err(Errno::EBUSY));
        }
        if k.proto.single_direct_api == SingleDirectApi::Absent {
            return Flow::Ret(Err(Errno::ENODEV));
        }
        let cur = k.fstate(f).direct_user;
        match (self.action, cur) {
            (DirectAction::Register, Some(_)) => Flow::Ret(Err(Errno::EBUSY)),
            // The sample finds its target by name: kallsyms cannot name a function of a module
            // that is not live, so it never reaches ftrace with such an ip.
            (DirectAction::Register, None) if !k.fn_live(f) => Flow::Ret(Err(Errno::ENODEV)),
            (DirectAction::Register, None) => {
                // The user holds its target (and its module) from the start of the registration.
                let a = k.new_sample_addr(f);
                self.addr = Some(a);
                k.fstate_mut(f).direct_user = Some(a);
                k.fstate_mut(f).direct_busy = true;
                call!(self, Pc::Returned, RegisterFtraceDirect::new(f, a))
            }
            (_, None) => Flow::Ret(Err(Errno::ENOENT)),
            (DirectAction::Modify, Some(old)) => {
                let a = k.new_sample_addr(f);
                self.addr = Some(a);
                k.fstate_mut(f).direct_busy = true;
                call!(self, Pc::Returned, ModifyFtraceDirect::new(f, old, a))
            }
            (DirectAction::Unregister, Some(old)) => {
                k.fstate_mut(f).direct_busy = true;
                call!(self, Pc::Returned, UnregisterFtraceDirect::new(f, old))
            }
        }
    }
}
