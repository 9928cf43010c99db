//! The guest plan: the command file `ftsim-guest` performs (its grammar is documented at the
//! top of `kernel/guest/ftsim-guest.c`). Operations are numbered from 1 within each script;
//! `observe 0` reports the state before the first.

use super::map::FUNCTIONS;
use ftsim_core::op::Op;
use std::fmt::Write as _;
use std::path::Path;

/// One script of a plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlanScript {
    pub id: usize,
    pub ops: Vec<Op>,
}

/// The plan for `scripts`, with the guest artefacts in `guest_dir`. Every mapped function is
/// declared (and observed), whatever the scripts' worlds: functions a script does not name must
/// stay untouched.
pub fn plan(guest_dir: &Path, scripts: &[PlanScript]) -> String {
    let mut p = String::from("# ftsim guest plan\n");
    let _ = writeln!(p, "dir {}", guest_dir.display());
    for (i, (sym, probe)) in FUNCTIONS.iter().enumerate() {
        let _ = writeln!(p, "func {i} {sym} {probe}");
    }
    p.push_str("calibrate\n");
    for s in scripts {
        let _ = writeln!(p, "script {}", s.id);
        p.push_str("observe 0\n");
        for (i, op) in s.ops.iter().enumerate() {
            let _ = writeln!(p, "op {} {op}", i + 1);
            let _ = writeln!(p, "observe {}", i + 1);
        }
        let _ = writeln!(p, "cleanup {}", s.id);
    }
    p
}

/// The shell script the guest's init runs (inside the chroot): the driver on the plan.
pub fn guest_script(guest_dir: &Path, plan_path: &Path) -> String {
    format!(
        "#!/bin/sh\n# written by `ftsim kernel`; run by the guest's init inside the host's root\nexec {} {}\n",
        guest_dir.join("ftsim-guest").display(),
        plan_path.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plan_declares_functions_then_observes_around_every_operation() {
        let ops: Vec<Op> = [
            "klp-enable f0",
            "tracer-register t0 filter={f0,f1} notrace={f2}",
        ]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
        let p = plan(
            Path::new("/g"),
            &[
                PlanScript { id: 0, ops },
                PlanScript {
                    id: 1,
                    ops: vec!["bpf-link fmod_ret f3".parse().unwrap()],
                },
            ],
        );
        let expected = "\
# ftsim guest plan
dir /g
func 0 security_syslog syslog
func 1 security_settime64 settimeofday
func 2 security_quotactl quotactl
func 3 security_sb_statfs statfs
calibrate
script 0
observe 0
op 1 klp-enable f0
observe 1
op 2 tracer-register t0 filter={f0,f1} notrace={f2}
observe 2
cleanup 0
script 1
observe 0
op 1 bpf-link fmod_ret f3
observe 1
cleanup 1
";
        assert_eq!(p, expected);
        let g = guest_script(Path::new("/g"), Path::new("/r/plan.txt"));
        assert!(g.ends_with("exec /g/ftsim-guest /r/plan.txt\n"), "{g}");
    }

    #[test]
    fn every_performable_operation_is_one_word_list_the_guest_parses() {
        // The guest splits on blanks: a tracer set must print without spaces.
        let op: Op = "tracer-register t0 filter={f0,f1} notrace={}"
            .parse()
            .unwrap();
        assert_eq!(op.to_string().split_whitespace().count(), 4);
    }
}
