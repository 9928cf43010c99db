//! What a call of a function executes (SPEC §3), derived from the record's call site, the ops
//! list and the installed trampoline images, never from intentions.

use ftsim_core::ids::{Addr, FnId, OpsId, OpsOwner, ProgId};
use ftsim_core::kernel::{fl, CallSite, Kernel};
use ftsim_core::protocol::DirectCallSource;
use smallvec::SmallVec;
use std::fmt;

/// Which body a call ends in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Body {
    /// The original body of the function.
    Original,
    /// The target an IPMODIFY callback redirected to (the livepatch's new function, the kprobe's).
    Redirected(OpsId),
    /// Nothing sane: the call jumped into a freed trampoline image.
    Freed,
}

/// The trampoline a call entered.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Tramp {
    /// A live BPF image.
    Image {
        addr: Addr,
        call_orig: bool,
        orig_stack: bool,
        progs: SmallVec<[ProgId; 2]>,
    },
    /// A live single-ip direct user's trampoline (returns into the target).
    Sample { addr: Addr },
    /// An address whose image was freed or whose user went away.
    Freed { addr: Addr },
}

impl Tramp {
    pub fn addr(&self) -> Addr {
        match self {
            Tramp::Image { addr, .. } | Tramp::Sample { addr } | Tramp::Freed { addr } => *addr,
        }
    }
}

/// Everything one call of a function executes.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Call {
    pub site: CallSite,
    /// Ops whose callback ran, in list order.
    pub callbacks: SmallVec<[OpsId; 4]>,
    pub tramp: Option<Tramp>,
    pub body: Body,
    /// The list function met a registered ops with a NULL `func` and stopped there:
    /// `arch_ftrace_ops_list_func` (6.1 `kernel/trace/ftrace.c:7660`, 6.12 the same):
    /// `if (FTRACE_WARN_ON(!op->func)) { pr_warn(...); goto out; }`, and `FTRACE_WARN_ON`
    /// calls `ftrace_kill()`: from then on every ftrace registration fails with `-ENODEV`.
    pub null_func: bool,
}

impl Call {
    /// The BPF programs that ran.
    pub fn progs(&self) -> &[ProgId] {
        match &self.tramp {
            Some(Tramp::Image { progs, .. }) => progs,
            _ => &[],
        }
    }
}

/// Resolves a trampoline address to what lives there now.
fn resolve(k: &Kernel, addr: Addr) -> Tramp {
    match addr {
        Addr::Image { tr, serial } => match &k.tr(tr).cur_image {
            Some(im) if im.serial == serial => Tramp::Image {
                addr,
                call_orig: im.call_orig,
                orig_stack: im.orig_stack,
                progs: im.progs.clone(),
            },
            _ => Tramp::Freed { addr },
        },
        Addr::Sample { f, .. } if k.fstate(f).direct_user == Some(addr) => Tramp::Sample { addr },
        Addr::Sample { .. } => Tramp::Freed { addr },
    }
}

/// The body a trampoline ends in, given the target the callbacks left on the stack.
fn through(t: &Tramp, target: Body) -> Body {
    match t {
        Tramp::Image {
            call_orig: true,
            orig_stack: false,
            ..
        } => Body::Original,
        Tramp::Image { .. } | Tramp::Sample { .. } => target,
        Tramp::Freed { .. } => Body::Freed,
    }
}

/// The call of every function (`None` where its text is not loaded), in function order: what
/// the reference oracle ([`crate::oracle::Reference::step`]) judges after an operation.
pub fn calls(k: &Kernel) -> Vec<Option<Call>> {
    k.world().fns().map(|f| call(k, f)).collect()
}

/// What a call of `f` executes now; `None` when `f` has no live text (module not loaded).
pub fn call(k: &Kernel, f: FnId) -> Option<Call> {
    call_among(k, f, k.ops_list.iter().copied())
}

/// [`call`], given the registered ops (in list order) that may select `f`: the list function
/// skips every other one anyway. Lets the property check index the ops list once.
pub fn call_among(k: &Kernel, f: FnId, candidates: impl Iterator<Item = OpsId>) -> Option<Call> {
    let rec = k.rec(f);
    if !rec.present || rec.disabled {
        return None;
    }
    let mut c = Call {
        site: rec.site,
        callbacks: SmallVec::new(),
        tramp: None,
        body: Body::Original,
        null_func: false,
    };
    match rec.site {
        CallSite::Nop => {}
        CallSite::Direct(addr) => {
            let t = resolve(k, addr);
            c.body = through(&t, Body::Original);
            c.tramp = Some(t);
        }
        CallSite::Caller => {
            let mut target = Body::Original;
            let mut direct: Option<Addr> = None;
            for op in candidates {
                let o = k.op(op);
                if o.has(fl::STUB) || !k.hash_selects(op, f) {
                    continue;
                }
                if o.has(fl::DIRECT) {
                    if !o.func_set {
                        // FTRACE_WARN_ON(!op->func): goto out (see `Call::null_func`)
                        c.null_func = true;
                        break;
                    }
                    c.callbacks.push(op);
                    // call_direct_funcs
                    let addr = match k.proto.direct_call_source {
                        DirectCallSource::FunctionsHash => k.direct_functions.lookup(f),
                        DirectCallSource::Ops => o.direct_call,
                    };
                    if addr.is_some() {
                        direct = addr;
                    }
                    continue;
                }
                c.callbacks.push(op);
                let redirects = match k.owner(op) {
                    OpsOwner::Klp(g) => k.fstate(g).klp_stack > 0,
                    _ => o.has(fl::IPMODIFY),
                };
                if redirects {
                    target = Body::Redirected(op);
                }
            }
            match direct {
                Some(addr) => {
                    let t = resolve(k, addr);
                    c.body = through(&t, target);
                    c.tramp = Some(t);
                }
                None => c.body = target,
            }
        }
    }
    Some(c)
}

/// A one-line rendering of a call, for explanations and traces.
pub struct Show<'a>(pub &'a Kernel, pub &'a Call);

impl fmt::Display for Show<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (k, c) = (self.0, self.1);
        match c.site {
            CallSite::Nop => write!(f, "nop")?,
            CallSite::Caller => {
                let cbs: Vec<String> = c
                    .callbacks
                    .iter()
                    .map(|o| k.owner(*o).to_string())
                    .collect();
                write!(f, "ftrace_caller [{}]", cbs.join(", "))?
            }
            CallSite::Direct(_) => write!(f, "direct call")?,
        }
        match &c.tramp {
            Some(Tramp::Image {
                addr,
                call_orig,
                orig_stack,
                progs,
            }) => {
                write!(f, " -> {addr} (")?;
                let mut parts = Vec::new();
                if *call_orig {
                    parts.push("CALL_ORIG");
                }
                if *orig_stack {
                    parts.push("ORIG_STACK");
                }
                write!(
                    f,
                    "{}; {} progs)",
                    if parts.is_empty() {
                        "0".to_string()
                    } else {
                        parts.join("|")
                    },
                    progs.len()
                )?
            }
            Some(Tramp::Sample { addr }) => write!(f, " -> {addr}")?,
            Some(Tramp::Freed { addr }) => write!(f, " -> {addr} (freed)")?,
            None => {}
        }
        match c.body {
            Body::Original => write!(f, " -> original body"),
            Body::Redirected(op) => write!(f, " -> target of {}", k.owner(op)),
            Body::Freed => write!(f, " -> garbage"),
        }
    }
}
