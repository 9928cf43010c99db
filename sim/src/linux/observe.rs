//! What the guest printed, parsed: per operation its result, per function what one call ran.
//! The same types carry the model's prediction ([`super::predict`]), so the two compare with `==`.

use std::collections::BTreeMap;
use std::fmt;

/// Which body a call of a function ended in, as the guest reports it (the model's own is
/// [`ftsim_drive::observe::Body`]).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum GuestBody {
    Original,
    /// The livepatch replacement of stack depth J (1-based).
    Klp(u16),
    /// The kprobe pre_handler's redirect.
    Kprobe,
    /// The model: the call jumped into a freed image (the real kernel would crash).
    Garbage,
}

impl fmt::Display for GuestBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GuestBody::Original => f.write_str("original"),
            GuestBody::Klp(j) => write!(f, "klp:{j}"),
            GuestBody::Kprobe => f.write_str("kprobe"),
            GuestBody::Garbage => f.write_str("garbage"),
        }
    }
}

/// What one call of a function ran: its body, the BPF programs (named by the operation number
/// that linked them; `n*k` when one ran k times) and the tracers whose callback saw it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Observed {
    pub body: GuestBody,
    pub progs: Vec<String>,
    pub tracers: Vec<String>,
    /// The single-ip direct user's trampoline that ran: `current` (the one it registered or
    /// modified to last), `stale` (its other one), `a+b` (counts of both when not one call).
    pub direct: Option<String>,
}

impl fmt::Display for Observed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "body={}", self.body)?;
        if !self.progs.is_empty() {
            write!(f, " progs={}", self.progs.join(","))?;
        }
        if !self.tracers.is_empty() {
            write!(f, " tracers={}", self.tracers.join(","))?;
        }
        if let Some(d) = &self.direct {
            write!(f, " direct={d}")?;
        }
        Ok(())
    }
}

/// The result of one operation.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum StepResult {
    Ok,
    Err(String),
    /// The guest could not perform it (the reason).
    Cannot(String),
}

impl fmt::Display for StepResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StepResult::Ok => f.write_str("ok"),
            StepResult::Err(e) => f.write_str(e),
            StepResult::Cannot(w) => write!(f, "cannot: {w}"),
        }
    }
}

/// Everything the guest reported for one script.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScriptRun {
    /// Per operation number (1-based), its result.
    pub results: BTreeMap<usize, StepResult>,
    /// Per operation number (0: before the first), per function, what a call ran.
    pub calls: BTreeMap<usize, Vec<Observed>>,
    /// `None` until the cleanup reported; `Some(Err(what))` when the kernel was not back.
    pub clean: Option<Result<(), String>>,
    /// Per operation number, the warnings and oopses the kernel logged during it (or during
    /// the observation after it); `usize::MAX`: during the cleanup.
    pub kernel_said: BTreeMap<usize, Vec<String>>,
}

/// Everything one boot reported.
#[derive(Clone, Debug, Default)]
pub struct BootRun {
    pub release: Option<String>,
    pub calibration: Vec<(usize, Result<(), String>)>,
    pub scripts: BTreeMap<usize, ScriptRun>,
    /// The guest driver's own failure, if it had one.
    pub machinery: Option<String>,
    /// The driver reached the end of the plan.
    pub done: bool,
    /// Lines that were not protocol (kernel messages on the result port, driver diagnostics).
    pub other: Vec<String>,
}

fn parse_list(s: &str) -> Vec<String> {
    s.split(',')
        .filter(|x| !x.is_empty())
        .map(str::to_string)
        .collect()
}

fn parse_body(s: &str) -> Result<GuestBody, String> {
    match s {
        "original" => Ok(GuestBody::Original),
        "kprobe" => Ok(GuestBody::Kprobe),
        _ => match s.strip_prefix("klp:").map(str::parse) {
            Some(Ok(j)) => Ok(GuestBody::Klp(j)),
            _ => Err(format!("bad body `{s}`")),
        },
    }
}

/// `call N fI body=.. progs=.. tracers=.. ret=..`
fn parse_call(words: &[&str]) -> Result<(usize, usize, Observed), String> {
    let n = words
        .first()
        .and_then(|w| w.parse().ok())
        .ok_or("call without a step number")?;
    let f = words
        .get(1)
        .and_then(|w| w.strip_prefix('f'))
        .and_then(|w| w.parse().ok())
        .ok_or("call without a function")?;
    let mut o = Observed {
        body: GuestBody::Original,
        progs: Vec::new(),
        tracers: Vec::new(),
        direct: None,
    };
    for w in &words[2..] {
        match w.split_once('=') {
            Some(("body", v)) => o.body = parse_body(v)?,
            Some(("progs", v)) => {
                // the guest lists links in its slot order; the model names them in link order
                o.progs = parse_list(v);
                o.progs.sort_by_key(|p| {
                    p.split('*')
                        .next()
                        .and_then(|n| n.parse::<u64>().ok())
                        .unwrap_or(u64::MAX)
                });
            }
            Some(("tracers", v)) => o.tracers = parse_list(v),
            Some(("direct", v)) => o.direct = Some(v.to_string()),
            Some(("ret", _)) => {}
            _ => return Err(format!("bad call word `{w}`")),
        }
    }
    Ok((n, f, o))
}

impl BootRun {
    /// Parses the guest's result port. Lines without the `@@ftsim ` prefix are kept in `other`.
    pub fn parse(text: &str) -> Result<BootRun, String> {
        let mut b = BootRun::default();
        let mut cur: Option<usize> = None;
        for raw in text.lines() {
            let Some(rest) = raw.trim_end_matches('\r').strip_prefix("@@ftsim ") else {
                if !raw.trim().is_empty() {
                    b.other.push(raw.to_string());
                }
                continue;
            };
            let words: Vec<&str> = rest.split_whitespace().collect();
            let bad = |why: &str| format!("guest line `{raw}`: {why}");
            let script = |b: &mut BootRun, cur: Option<usize>| -> Result<usize, String> {
                let id = cur.ok_or_else(|| bad("outside a script"))?;
                b.scripts.entry(id).or_default();
                Ok(id)
            };
            match words.as_slice() {
                ["boot", release] => b.release = Some(release.to_string()),
                ["calibrate", f, "ok"] => {
                    b.calibration.push((fnum(f).map_err(|e| bad(&e))?, Ok(())))
                }
                ["calibrate", f, "bad", why @ ..] => b
                    .calibration
                    .push((fnum(f).map_err(|e| bad(&e))?, Err(why.join(" ")))),
                ["script", id] => {
                    let id = id.parse().map_err(|_| bad("bad script id"))?;
                    b.scripts.insert(id, ScriptRun::default());
                    cur = Some(id);
                }
                ["op", n, result @ ..] => {
                    let id = script(&mut b, cur)?;
                    let n: usize = n.parse().map_err(|_| bad("bad step number"))?;
                    let r = match result {
                        ["ok"] => StepResult::Ok,
                        ["err", e] => StepResult::Err(e.to_string()),
                        ["cannot", why @ ..] => StepResult::Cannot(why.join(" ")),
                        _ => return Err(bad("bad result")),
                    };
                    b.scripts.get_mut(&id).unwrap().results.insert(n, r);
                }
                ["call", rest @ ..] => {
                    let id = script(&mut b, cur)?;
                    let (n, f, o) = parse_call(rest).map_err(|e| bad(&e))?;
                    let calls = b.scripts.get_mut(&id).unwrap().calls.entry(n).or_default();
                    if calls.len() != f {
                        return Err(bad("functions out of order"));
                    }
                    calls.push(o);
                }
                ["clean", id, "ok"] => {
                    let id: usize = id.parse().map_err(|_| bad("bad script id"))?;
                    b.scripts.entry(id).or_default().clean = Some(Ok(()));
                    cur = None;
                }
                ["clean", id, "dirty", what @ ..] => {
                    let id: usize = id.parse().map_err(|_| bad("bad script id"))?;
                    b.scripts.entry(id).or_default().clean = Some(Err(what.join(" ")));
                    cur = None;
                }
                ["kmsg", n, what @ ..] => {
                    let id = script(&mut b, cur);
                    let n: usize = match *n {
                        "-1" => usize::MAX,
                        n => n.parse().map_err(|_| bad("bad step number"))?,
                    };
                    match id {
                        Ok(id) => b
                            .scripts
                            .get_mut(&id)
                            .unwrap()
                            .kernel_said
                            .entry(n)
                            .or_default()
                            .push(what.join(" ")),
                        Err(_) => b.other.push(what.join(" ")),
                    }
                }
                ["machinery", what @ ..] => b.machinery = Some(what.join(" ")),
                ["done"] => b.done = true,
                ["stopped"] => {}
                ["exit", _] => {}
                _ => return Err(bad("unknown guest line")),
            }
        }
        Ok(b)
    }
}

fn fnum(w: &str) -> Result<usize, String> {
    w.strip_prefix('f')
        .and_then(|x| x.parse().ok())
        .ok_or_else(|| format!("bad function `{w}`"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
@@ftsim boot 6.12.117+deb12-amd64
@@ftsim calibrate f0 ok
@@ftsim calibrate f1 bad one call of settimeofday gave 2 entries
@@ftsim script 0
@@ftsim call 0 f0 body=original progs= tracers= direct=stale ret=131072/0
@@ftsim op 1 ok
[   12.3] some kernel message
@@ftsim call 1 f0 body=klp:1 progs=3*2,2 tracers=t0 ret=-1/201
@@ftsim op 2 err EBUSY
@@ftsim op 3 cannot the tracer's filter would become empty (every function)
@@ftsim kmsg 3 WARNING at kernel/trace/ftrace.c:7660 arch_ftrace_ops_list_func+0x193/0x1d0
@@ftsim clean 0 dirty enabled_functions: security_syslog (1)
@@ftsim done
";

    #[test]
    fn parses_every_kind_of_guest_line() {
        let b = BootRun::parse(SAMPLE).unwrap();
        assert_eq!(b.release.as_deref(), Some("6.12.117+deb12-amd64"));
        assert_eq!(b.calibration[0], (0, Ok(())));
        assert!(b.calibration[1]
            .1
            .as_ref()
            .unwrap_err()
            .contains("2 entries"));
        let s = &b.scripts[&0];
        assert_eq!(s.results[&1], StepResult::Ok);
        assert_eq!(s.results[&2], StepResult::Err("EBUSY".into()));
        assert!(matches!(&s.results[&3], StepResult::Cannot(w) if w.contains("empty")));
        assert_eq!(
            s.calls[&1][0],
            Observed {
                body: GuestBody::Klp(1),
                progs: vec!["2".into(), "3*2".into()],
                tracers: vec!["t0".into()],
                direct: None,
            }
        );
        assert_eq!(s.calls[&0][0].to_string(), "body=original direct=stale");
        assert!(s
            .clean
            .as_ref()
            .unwrap()
            .as_ref()
            .unwrap_err()
            .contains("security_syslog"));
        assert!(b.done);
        assert_eq!(b.other, vec!["[   12.3] some kernel message".to_string()]);
    }

    #[test]
    fn rejects_garbage_naming_the_line() {
        for bad in [
            "@@ftsim op 1 ok\n",
            "@@ftsim script 0\n@@ftsim call 0 f1 body=original\n",
            "@@ftsim script 0\n@@ftsim call 0 f0 body=weird\n",
            "@@ftsim frobnicate\n",
        ] {
            let e = BootRun::parse(bad).unwrap_err();
            assert!(e.contains("guest line"), "{e}");
        }
    }
}
