//! The state a linearization must reproduce ([`observable`]), a sink of the core's state walk
//! ([`ftsim_core::walk`]).

use ftsim_core::footprint::TOLERATED;
use ftsim_core::ids::{Addr, FnId, OpsId, ProgId, ProgKind, Tid};
use ftsim_core::kernel::{fl, CallSite, Kernel};
use ftsim_core::locks::Lock;
use ftsim_core::walk::{
    fields, has, walk_kernel, AddrView, Buf, Field, Fields, Identity, Section, Sink, COUNTERS,
    EXECUTOR,
};
use ftsim_drive::observe::{call, Body, Tramp};
use std::fmt::Write as _;

fn norm_addr(a: Addr) -> String {
    match a {
        Addr::Image { tr, .. } => format!("tramp({tr})"),
        Addr::Sample { .. } => "sample".into(),
    }
}

fn owner_name(k: &Kernel, o: OpsId) -> String {
    k.owner(o).to_string()
}

/// The kinds of the programs of an image of `f`'s trampoline (each program named by the kind of
/// its link, `unlinked` when it has none).
fn prog_kind(links: &[(u64, ProgId)], p: ProgId) -> &'static str {
    match links.iter().find(|(_, q)| *q == p) {
        Some((kind, _)) => ProgKind::ALL[*kind as usize].as_str(),
        None => "unlinked",
    }
}

/// What a call of `f` executes ([`call`]), as text.
fn call_text(k: &Kernel, f: FnId, links: &[(ProgKind, ProgId)]) -> String {
    let Some(c) = call(k, f) else {
        return String::new();
    };
    let kinds = |progs: &[ProgId]| -> Vec<&'static str> {
        progs
            .iter()
            .map(|p| {
                links
                    .iter()
                    .find(|(_, q)| q == p)
                    .map_or("unlinked", |(kind, _)| kind.as_str())
            })
            .collect()
    };
    let cbs: Vec<String> = c.callbacks.iter().map(|o| owner_name(k, *o)).collect();
    let tramp = match &c.tramp {
        None => "none".to_string(),
        Some(Tramp::Image {
            addr,
            call_orig,
            progs,
            ..
        }) => format!(
            "{} call_orig={call_orig} progs={:?}",
            norm_addr(*addr),
            kinds(progs)
        ),
        Some(Tramp::Sample { .. }) => "sample".to_string(),
        Some(Tramp::Freed { addr }) => format!("freed {}", norm_addr(*addr)),
    };
    let body = match c.body {
        Body::Original => "original".to_string(),
        Body::Redirected(o) => format!("target of {}", owner_name(k, o)),
        Body::Freed => "garbage".to_string(),
    };
    format!(" call callbacks={cbs:?} tramp={tramp} body={body};")
}

/// The observable state as a sink of the walk.
pub struct Observable<'a> {
    k: &'a Kernel,
    s: String,
    /// The links of the function being walked (kind, program).
    links: Vec<(u64, ProgId)>,
    /// The line of the ops slot being walked, and whether it is shown (see [`observable`]).
    ops: Option<(String, bool)>,
}

impl Observable<'_> {
    fn flush_ops(&mut self) {
        if let Some((line, shown)) = self.ops.take() {
            if shown {
                self.s.push_str(&line);
            }
        }
    }
    fn out(&mut self) -> &mut String {
        match &mut self.ops {
            Some((line, _)) => line,
            None => &mut self.s,
        }
    }
    fn shown(&mut self, yes: bool) {
        if let Some((_, shown)) = &mut self.ops {
            *shown |= yes;
        }
    }
}

impl Sink for Observable<'_> {
    /// Left out, because they depend on the order in which equivalent steps ran and not on what
    /// the design promises: what a failed operation may change ([`TOLERATED`]: the sharing
    /// state, as a trampoline left sharing is the tolerated `share-leak` of SPEC §3.6); program
    /// ids (programs are named by kind), sample and image addresses beyond their trampoline, an
    /// image's serial and ORIG_STACK bit (these count only through what a call executes,
    /// [`call`]) and `SHARE_IPMODIFY`; the protocol, the executor's state and the counters.
    const IGNORES: Fields = TOLERATED | fields(&[Field::Proto]) | EXECUTOR | COUNTERS;
    fn begin(&mut self, s: Section) {
        self.flush_ops();
        match s {
            Section::Fn { new, .. } => {
                let call = call_text(self.k, new, &self.k.tr(new).links);
                self.links.clear();
                let _ = write!(self.s, "\n{new}:{call}");
            }
            Section::Ops { owner, .. } => self.ops = Some((format!("\n{owner}:"), false)),
            Section::OpsList => self.s.push_str("\nftrace_ops_list="),
            Section::DirectFunctions => self.s.push_str("\ndirect_functions="),
            Section::Rest => self.s.push('\n'),
        }
    }
    fn val(&mut self, f: Field, v: u64) {
        // An image's serial and ORIG_STACK bit count only through what a call executes.
        if has(Self::IGNORES, f) || matches!(f, Field::ImageSerial | Field::ImageOrigStack) {
            return;
        }
        match f {
            Field::OpsFlags => {
                let flags = v as u16 & !fl::SHARE_IPMODIFY;
                self.shown(flags != 0);
                let _ = write!(self.out(), " flags={}", fl::names(flags));
            }
            Field::LinkKind => self.links.push((v, ProgId(0))),
            _ => {
                if matches!(f, Field::OpsFuncSet | Field::OpsTrampolineSet) {
                    self.shown(v != 0);
                }
                let _ = write!(self.out(), " {f:?}={v}");
            }
        }
    }
    fn len(&mut self, f: Field, n: usize) {
        if !has(Self::IGNORES, f) {
            let _ = write!(self.out(), " {f:?}={n}");
        }
    }
    fn site(&mut self, _f: Field, site: CallSite, _a: Option<AddrView>) {
        let site = match site {
            CallSite::Nop => "nop".to_string(),
            CallSite::Caller => "caller".to_string(),
            CallSite::Direct(a) => format!("direct {}", norm_addr(a)),
        };
        let _ = write!(self.s, " site={site}");
    }
    fn addr(&mut self, f: Field, a: Option<AddrView>) {
        let text = match (f, a) {
            (Field::DirectUser, a) => a.is_some().to_string(),
            (_, a) => format!("{:?}", a.map(|a| norm_addr(a.raw))),
        };
        let _ = write!(self.out(), " {f:?}={text}");
    }
    fn prog(&mut self, f: Field, p: ProgId) {
        if f == Field::LinkProg {
            let (kind, prog) = self.links.last_mut().expect("a link's kind comes first");
            *prog = p;
            let _ = write!(self.s, " link={}", ProgKind::ALL[*kind as usize].as_str());
        } else {
            let kind = prog_kind(&self.links, p);
            let _ = write!(self.s, " prog={kind}");
        }
    }
    fn ips(&mut self, f: Field, pairs: &[(u16, u16)]) {
        self.shown(!pairs.is_empty());
        let _ = write!(self.out(), " {f:?}={pairs:?}");
    }
    fn ops_ref(&mut self, f: Field, id: Option<OpsId>) {
        let name = id.map(|x| owner_name(self.k, x));
        let _ = write!(self.out(), " {f:?}={name:?}");
    }
    fn lock(&mut self, _l: Lock, _holder: Tid) {}
    fn hashed<T: std::hash::Hash>(&mut self, _f: Field, _v: &T) {}
    fn gen(&mut self, _gen: u64, _in_flight: bool) {}
}

/// The state a linearization must reproduce, as one canonical text: per function its record,
/// what a call executes ([`call`]) and the owners' bookkeeping; per ops its flags and hashes
/// (an ops with no flag but SHARE_IPMODIFY, empty hashes and neither callback nor trampoline
/// is not shown); the ops list; direct_functions; modules and tracers. What it leaves out is
/// listed at its sink ([`Observable`]'s `IGNORES`).
pub fn observable(k: &Kernel) -> String {
    let mut sink = Observable {
        k,
        s: String::new(),
        links: Vec::new(),
        ops: None,
    };
    walk_kernel(k, &Identity, &mut Buf::default(), &mut sink);
    sink.s
}
