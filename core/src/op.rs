//! Owner-level operations (SPEC §7): the alphabet users, generators and reproducers speak.
//!
//! Each operation prints as one line and parses back. Grammar (one per line):
//!
//! ```text
//! klp-enable F            livepatch: enable a patch of F (stacks if F is already patched)
//! klp-disable F           livepatch: disable the top patch of F
//! bpf-link KIND F         BPF: link a program of KIND (fentry|fexit|fmod_ret) to the trampoline of F
//! bpf-unlink KIND F       BPF: unlink the oldest program of KIND from the trampoline of F
//! kprobe-arm F            kprobes with IPMODIFY: arm a probe at F
//! kprobe-disarm F         kprobes with IPMODIFY: disarm one probe at F
//! tracer-register T filter={F,..} notrace={F,..}
//!                         register tracer T; an empty filter means every function
//! tracer-filter-add T F   tracer-filter-remove T F
//! tracer-notrace-add T F  tracer-notrace-remove T F
//! tracer-unregister T
//! direct-register F       single-ip direct user: register_ftrace_direct(F, its trampoline)
//! direct-modify F         modify_ftrace_direct(F, old, a new trampoline)
//! direct-unregister F
//! module-load M           module-unload M
//! ```
//!
//! `F` is `f0`, `f1`, ...; `T` is `t0`, ...; `M` is `m0`, ...
//!
//! # Owner-level semantics
//!
//! What each operation means before the kernel is involved (the model's owners decide these
//! without calling ftrace; the oracle predicts the same):
//!
//! | operation | refused at owner level with |
//! |---|---|
//! | `klp-enable F` | never. If F's module is not loaded the patch is *pending* and is applied when the module loads (`klp_module_coming`); on an already patched F it stacks (no ftrace call) |
//! | `klp-disable F` | `EINVAL` when F has no patch. Disabling a stacked or pending patch makes no ftrace call |
//! | `bpf-link K F` | `ENOENT` when F's module is not live; `E2BIG` at 38 links on one trampoline |
//! | `bpf-unlink K F` | `ENOENT` when no program of kind K is linked to F (the oldest of K is unlinked) |
//! | `kprobe-arm F` | `ENOENT` when F's module is not live. Probes at one address aggregate: only the first arms ftrace |
//! | `kprobe-disarm F` | `ENOENT` when no probe is armed at F |
//! | `tracer-register T ..` | `EBUSY` when T is registered; `EINVAL` when a named function's module is not live (kallsyms cannot name it) |
//! | `tracer-*-add/remove T F` | works on registered and unregistered tracers; `EINVAL` when F's module is not live, `ENOENT` (ftrace) removing an absent entry |
//! | `tracer-unregister T` | `ENOENT` when T is not registered (its hashes stay as they were) |
//! | `direct-register F` | `ENODEV` when the version has no single-ip API; `EBUSY` when a user is at F already; `ENODEV` when F's module is not live |
//! | `direct-modify F`, `direct-unregister F` | `ENODEV` without the API; `ENOENT` when no user is at F |
//! | `module-load M` | `EBUSY` when loaded or loading |
//! | `module-unload M` | `ENOENT` when not loaded; `EBUSY` while a BPF trampoline or a direct user holds one of its functions |
//!
//! Unloading a module turns its livepatches back into pending patches, kills its kprobes, and
//! zeroes the first entry for each of its functions in each tracer's hashes
//! (`clear_mod_from_hashes`: such an entry keeps the hash non-empty but matches nothing). Other
//! ops keep stale entries, which match again when the module is loaded again: the model reloads a
//! module at the same addresses.

use crate::ids::{FnId, ModId, ProgKind, TracerId};
use std::fmt;

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Op {
    KlpEnable(FnId),
    KlpDisable(FnId),
    BpfLink(ProgKind, FnId),
    BpfUnlink(ProgKind, FnId),
    KprobeArm(FnId),
    KprobeDisarm(FnId),
    TracerRegister {
        tracer: TracerId,
        filter: Vec<FnId>,
        notrace: Vec<FnId>,
    },
    TracerSet {
        tracer: TracerId,
        which: HashSel,
        add: bool,
        func: FnId,
    },
    TracerUnregister(TracerId),
    DirectRegister(FnId),
    DirectModify(FnId),
    DirectUnregister(FnId),
    ModuleLoad(ModId),
    ModuleUnload(ModId),
}

/// Which hash of an ops an operation edits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum HashSel {
    Filter,
    Notrace,
}

impl HashSel {
    pub fn as_str(self) -> &'static str {
        match self {
            HashSel::Filter => "filter",
            HashSel::Notrace => "notrace",
        }
    }
}

/// The kinds of operation, for generators and statistics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum OpKind {
    Livepatch,
    Bpf,
    Kprobe,
    Tracer,
    Direct,
    Module,
}

impl Op {
    /// The function this operation is about, if one.
    pub fn func(&self) -> Option<FnId> {
        match *self {
            Op::KlpEnable(f)
            | Op::KlpDisable(f)
            | Op::BpfLink(_, f)
            | Op::BpfUnlink(_, f)
            | Op::KprobeArm(f)
            | Op::KprobeDisarm(f)
            | Op::DirectRegister(f)
            | Op::DirectModify(f)
            | Op::DirectUnregister(f) => Some(f),
            Op::TracerSet { func, .. } => Some(func),
            _ => None,
        }
    }

    pub fn kind(&self) -> OpKind {
        match self {
            Op::KlpEnable(_) | Op::KlpDisable(_) => OpKind::Livepatch,
            Op::BpfLink(..) | Op::BpfUnlink(..) => OpKind::Bpf,
            Op::KprobeArm(_) | Op::KprobeDisarm(_) => OpKind::Kprobe,
            Op::TracerRegister { .. } | Op::TracerSet { .. } | Op::TracerUnregister(_) => {
                OpKind::Tracer
            }
            Op::DirectRegister(_) | Op::DirectModify(_) | Op::DirectUnregister(_) => OpKind::Direct,
            Op::ModuleLoad(_) | Op::ModuleUnload(_) => OpKind::Module,
        }
    }

    /// Every function, tracer and module the operation names, for range checks.
    pub fn check_world(&self, w: &crate::world::World) -> Result<(), String> {
        let fns: Vec<FnId> = match self {
            Op::TracerRegister {
                filter, notrace, ..
            } => filter.iter().chain(notrace).copied().collect(),
            _ => self.func().into_iter().collect(),
        };
        for f in fns {
            if f.0 >= w.functions {
                return Err(format!(
                    "`{self}` names {f}, but the world has only {} functions",
                    w.functions
                ));
            }
        }
        match self {
            Op::TracerRegister { tracer, .. }
            | Op::TracerSet { tracer, .. }
            | Op::TracerUnregister(tracer)
                if tracer.0 >= w.tracers =>
            {
                Err(format!(
                    "`{self}` names {tracer}, but the world has only {} tracers",
                    w.tracers
                ))
            }
            Op::ModuleLoad(m) | Op::ModuleUnload(m) if m.0 as usize >= w.modules.len() => {
                Err(format!(
                    "`{self}` names {m}, but the world has only {} modules",
                    w.modules.len()
                ))
            }
            _ => Ok(()),
        }
    }
}

fn fmt_set(fns: &[FnId]) -> String {
    let v: Vec<String> = fns.iter().map(|f| f.to_string()).collect();
    format!("{{{}}}", v.join(","))
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Op::KlpEnable(x) => write!(f, "klp-enable {x}"),
            Op::KlpDisable(x) => write!(f, "klp-disable {x}"),
            Op::BpfLink(k, x) => write!(f, "bpf-link {k} {x}"),
            Op::BpfUnlink(k, x) => write!(f, "bpf-unlink {k} {x}"),
            Op::KprobeArm(x) => write!(f, "kprobe-arm {x}"),
            Op::KprobeDisarm(x) => write!(f, "kprobe-disarm {x}"),
            Op::TracerRegister {
                tracer,
                filter,
                notrace,
            } => {
                write!(
                    f,
                    "tracer-register {tracer} filter={} notrace={}",
                    fmt_set(filter),
                    fmt_set(notrace)
                )
            }
            Op::TracerSet {
                tracer,
                which,
                add,
                func,
            } => {
                let verb = if *add { "add" } else { "remove" };
                write!(f, "tracer-{}-{verb} {tracer} {func}", which.as_str())
            }
            Op::TracerUnregister(t) => write!(f, "tracer-unregister {t}"),
            Op::DirectRegister(x) => write!(f, "direct-register {x}"),
            Op::DirectModify(x) => write!(f, "direct-modify {x}"),
            Op::DirectUnregister(x) => write!(f, "direct-unregister {x}"),
            Op::ModuleLoad(m) => write!(f, "module-load {m}"),
            Op::ModuleUnload(m) => write!(f, "module-unload {m}"),
        }
    }
}

fn parse_set(s: &str, key: &str) -> Result<Vec<FnId>, String> {
    let v = s
        .strip_prefix(key)
        .and_then(|r| r.strip_prefix('='))
        .ok_or_else(|| format!("expected `{key}={{f0,f1}}`, found `{s}`"))?;
    let inner = v
        .strip_prefix('{')
        .and_then(|r| r.strip_suffix('}'))
        .ok_or_else(|| {
            format!("expected a set like `{key}={{f0,f1}}` or `{key}={{}}`, found `{s}`")
        })?;
    if inner.is_empty() {
        return Ok(Vec::new());
    }
    inner.split(',').map(|x| x.trim().parse()).collect()
}

impl std::str::FromStr for Op {
    type Err = String;
    fn from_str(line: &str) -> Result<Self, String> {
        let words: Vec<&str> = line.split_whitespace().collect();
        let Some((&verb, args)) = words.split_first() else {
            return Err("empty operation".into());
        };
        let want = |n: usize| -> Result<(), String> {
            if args.len() == n {
                Ok(())
            } else {
                Err(format!(
                    "`{verb}` takes {n} argument(s), found {} in `{line}`",
                    args.len()
                ))
            }
        };
        let f = |i: usize| args[i].parse::<FnId>();
        let op = match verb {
            "klp-enable" => want(1).and_then(|_| f(0)).map(Op::KlpEnable)?,
            "klp-disable" => want(1).and_then(|_| f(0)).map(Op::KlpDisable)?,
            "bpf-link" => {
                want(2)?;
                Op::BpfLink(args[0].parse()?, f(1)?)
            }
            "bpf-unlink" => {
                want(2)?;
                Op::BpfUnlink(args[0].parse()?, f(1)?)
            }
            "kprobe-arm" => want(1).and_then(|_| f(0)).map(Op::KprobeArm)?,
            "kprobe-disarm" => want(1).and_then(|_| f(0)).map(Op::KprobeDisarm)?,
            "tracer-register" => {
                want(3)?;
                Op::TracerRegister {
                    tracer: args[0].parse()?,
                    filter: parse_set(args[1], "filter")?,
                    notrace: parse_set(args[2], "notrace")?,
                }
            }
            "tracer-filter-add"
            | "tracer-filter-remove"
            | "tracer-notrace-add"
            | "tracer-notrace-remove" => {
                want(2)?;
                Op::TracerSet {
                    tracer: args[0].parse()?,
                    which: if verb.contains("notrace") {
                        HashSel::Notrace
                    } else {
                        HashSel::Filter
                    },
                    add: verb.ends_with("-add"),
                    func: f(1)?,
                }
            }
            "tracer-unregister" => {
                want(1)?;
                Op::TracerUnregister(args[0].parse()?)
            }
            "direct-register" => want(1).and_then(|_| f(0)).map(Op::DirectRegister)?,
            "direct-modify" => want(1).and_then(|_| f(0)).map(Op::DirectModify)?,
            "direct-unregister" => want(1).and_then(|_| f(0)).map(Op::DirectUnregister)?,
            "module-load" => {
                want(1)?;
                Op::ModuleLoad(args[0].parse()?)
            }
            "module-unload" => {
                want(1)?;
                Op::ModuleUnload(args[0].parse()?)
            }
            _ => {
                return Err(format!(
                    "unknown operation `{verb}` (see the grammar in README)"
                ))
            }
        };
        Ok(op)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_round_trips() {
        let ops = [
            "klp-enable f0",
            "klp-disable f3",
            "bpf-link fexit f1",
            "bpf-unlink fmod_ret f2",
            "bpf-link fentry f0",
            "kprobe-arm f1",
            "kprobe-disarm f1",
            "tracer-register t0 filter={} notrace={f1}",
            "tracer-register t1 filter={f0,f0,f2} notrace={}",
            "tracer-filter-add t0 f1",
            "tracer-filter-remove t0 f1",
            "tracer-notrace-add t1 f0",
            "tracer-notrace-remove t1 f0",
            "tracer-unregister t1",
            "direct-register f2",
            "direct-modify f2",
            "direct-unregister f2",
            "module-load m0",
            "module-unload m1",
        ];
        for s in ops {
            let op: Op = s.parse().unwrap();
            assert_eq!(op.to_string(), s);
        }
    }

    #[test]
    fn errors_name_the_problem() {
        assert!("klp-enable".parse::<Op>().unwrap_err().contains("takes 1"));
        assert!("bpf-link fexit g1"
            .parse::<Op>()
            .unwrap_err()
            .contains("function"));
        assert!("bpf-link fcall f1"
            .parse::<Op>()
            .unwrap_err()
            .contains("program kind"));
        assert!("frobnicate f1"
            .parse::<Op>()
            .unwrap_err()
            .contains("unknown operation"));
        assert!("tracer-register t0 filter=f1 notrace={}"
            .parse::<Op>()
            .unwrap_err()
            .contains("set"));
        assert!("klp-enable f99999"
            .parse::<Op>()
            .unwrap_err()
            .contains("range"));
        assert!("klp-enable f01".parse::<Op>().is_err());
    }
}
