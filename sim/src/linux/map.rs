//! The real owners behind the model's operations, and what the real harness cannot perform.
//!
//! | model | real owner (built by `kernel/setup.sh`, driven by `ftsim-guest`) |
//! |---|---|
//! | `f0..f3` | vmlinux functions that one system call calls exactly once ([`FUNCTIONS`]); checked at every boot (`calibrate`) |
//! | `klp-enable F` / `klp-disable F` | livepatch modules `ftsim_klp_F_pJ` (J = stack depth, not `replace`); enable = load, disable = `enabled` <- 0 in sysfs, wait for the transition, unload. The replacement returns `-(200+J)` |
//! | `kprobe-arm F` / `kprobe-disarm F` | modules `ftsim_kp_F_K`: one kprobe each with a post_handler (so the kernel puts it on its shared IPMODIFY ops) whose pre_handler redirects to a replacement returning `-210` |
//! | `bpf-link KIND F` / `bpf-unlink KIND F` | libbpf: one object per link, program of KIND (fentry, fexit, fmod_ret) counting its hits, attached to F; unlink closes the link (released synchronously) |
//! | `tracer-*` | tracefs instances `ftsim_tN`: `set_ftrace_filter`, `set_ftrace_notrace`, `current_tracer` = function / nop |
//!
//! Not performed (exit 2, naming the line): concurrent scripts and schedules (the guest runs
//! one operation at a time), injected faults (no allocation or trylock can be made to fail on
//! demand), modules (`module-*`: functions of out-of-tree modules have no BTF, so BPF cannot
//! attach to them), the single-ip direct API (`direct-*`) on kernels without it (6.12), a tracer
//! with an empty filter (it traces every function of the kernel), more than [`FUNCTIONS`]
//! functions or 7 tracers.
//!
//! `direct-*` on 6.1: modules `ftsim_direct_F` (`kernel/guest/direct.c`), two counting
//! trampolines each, driven through a parameter so that `register_ftrace_direct`,
//! `modify_ftrace_direct` (to the other trampoline) and `unregister_ftrace_direct` return their
//! errno to user space.

use ftsim_core::op::Op;
use ftsim_drive::script::Script;
use std::fmt;

/// The vmlinux function each model function stands for, and the probe (system call) the guest
/// uses to call it once. `security_*` hooks: fmod_ret may attach there
/// (`kernel/bpf/verifier.c`, `check_attach_modify_return`: error-injection list or the
/// `security_` prefix; neither Debian kernel has `CONFIG_FUNCTION_ERROR_INJECTION`).
/// Must match `kernel/guest/functions.txt` (a test checks).
pub const FUNCTIONS: [(&str, &str); 4] = [
    ("security_syslog", "syslog"),
    ("security_settime64", "settimeofday"),
    ("security_quotactl", "quotactl"),
    ("security_sb_statfs", "statfs"),
];

/// Most tracers: tracefs instances `ftsim_t0..ftsim_t6` (`ftsim_t7` is the calibration one).
pub const TRACERS_MAX: u8 = 7;

/// The real kernels the harness boots (pinned in `kernel/pins.env`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RealKernel {
    V6_1,
    V6_12,
}

impl RealKernel {
    pub const ALL: [RealKernel; 2] = [RealKernel::V6_1, RealKernel::V6_12];

    pub fn name(self) -> &'static str {
        match self {
            RealKernel::V6_1 => "6.1",
            RealKernel::V6_12 => "6.12",
        }
    }

    /// `register_ftrace_direct(ip, addr)` and friends (6.1 `include/linux/ftrace.h:371-373`;
    /// 6.12 has only the ops-based API): the harness drives them through `ftsim_direct_fI`.
    pub fn has_single_direct_api(self) -> bool {
        self == RealKernel::V6_1
    }

    /// The variable of `kernel/pins.env` that pins it.
    pub fn pin_var(self) -> &'static str {
        match self {
            RealKernel::V6_1 => "KERNEL_6_1",
            RealKernel::V6_12 => "KERNEL_6_12",
        }
    }

    /// The preset whose switches were decided from this kernel's Debian sources
    /// (`ftsim versions` cites the lines).
    pub fn preset(self) -> &'static str {
        match self {
            RealKernel::V6_1 => "debian-6.1",
            RealKernel::V6_12 => "debian-6.12",
        }
    }

    pub fn parse(s: &str) -> Result<RealKernel, String> {
        match s {
            "6.1" => Ok(RealKernel::V6_1),
            "6.12" => Ok(RealKernel::V6_12),
            _ => Err(format!("unknown kernel `{s}` (expected 6.1 or 6.12)")),
        }
    }
}

impl fmt::Display for RealKernel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why the real harness cannot perform an operation on `kernel`, or `None` when it can.
pub fn unperformable(op: &Op, kernel: RealKernel) -> Option<&'static str> {
    match op {
        Op::ModuleLoad(_) | Op::ModuleUnload(_) => Some(
            "module operations: functions of out-of-tree modules have no BTF, so no BPF program attaches there",
        ),
        Op::DirectRegister(_) | Op::DirectModify(_) | Op::DirectUnregister(_)
            if !kernel.has_single_direct_api() =>
        {
            Some("this kernel has no single-ip direct API (register_ftrace_direct(ip, addr) went away in 6.5)")
        }
        Op::TracerRegister { filter, .. } if filter.is_empty() => {
            Some("a tracer with an empty filter traces every function of the kernel")
        }
        _ => None,
    }
}

/// Checks that the real harness can perform `s`: sequential, no faults, a world it maps, every
/// operation mapped. The error names the offending line (1-based, as in the file, when `lines`
/// gives the file's line numbers; otherwise the operation's index).
pub fn check_performable(
    s: &Script,
    kernel: RealKernel,
    line_numbers: Option<&[usize]>,
) -> Result<(), String> {
    let at = |i: usize| -> String {
        match line_numbers.and_then(|l| l.get(i)) {
            Some(n) => format!("line {n}"),
            None => format!("operation {}", i + 1),
        }
    };
    if s.schedule.is_some() {
        return Err(
            "the script has a `schedule`: the real harness runs one operation at a time (concurrent scripts cannot be performed)".into(),
        );
    }
    if !s.world.modules.is_empty() {
        return Err(format!(
            "the world has modules ({}): functions of out-of-tree modules have no BTF, so the harness maps only vmlinux functions",
            s.world
        ));
    }
    if s.world.functions as usize > FUNCTIONS.len() {
        return Err(format!(
            "the world has {} functions; the real harness maps at most {} (f0..f{})",
            s.world.functions,
            FUNCTIONS.len(),
            FUNCTIONS.len() - 1
        ));
    }
    if s.world.tracers > TRACERS_MAX {
        return Err(format!(
            "the world has {} tracers; the real harness has at most {TRACERS_MAX}",
            s.world.tracers
        ));
    }
    for (i, l) in s.lines.iter().enumerate() {
        if l.tid != 0 {
            return Err(format!(
                "{}: `t{}: {}` runs on another thread: the real harness runs one operation at a time",
                at(i),
                l.tid,
                l.op
            ));
        }
        if !l.faults.is_none() {
            return Err(format!(
                "{}: `{}{}` injects faults: the real kernel cannot be made to fail an allocation, a build or a trylock on demand",
                at(i),
                l.op,
                l.faults
            ));
        }
        if let Some(why) = unperformable(&l.op, kernel) {
            return Err(format!("{}: `{}`: {why}", at(i), l.op));
        }
    }
    Ok(())
}

/// The 1-based file line of each operation of a reproducer file, in order.
pub fn op_line_numbers(text: &str) -> Vec<usize> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let l = raw.split('#').next().unwrap_or("").trim();
        let first = l.split_whitespace().next().unwrap_or("");
        if l.is_empty() || matches!(first, "protocol" | "set" | "world" | "expect" | "schedule") {
            continue;
        }
        out.push(i + 1);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn functions_match_the_guest_list() {
        let text = include_str!("../../../kernel/guest/functions.txt");
        let listed: Vec<(String, String)> = text
            .lines()
            .filter(|l| l.starts_with('f'))
            .map(|l| {
                let w: Vec<&str> = l.split_whitespace().collect();
                (w[1].to_string(), w[2].to_string())
            })
            .collect();
        let ours: Vec<(String, String)> = FUNCTIONS
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        assert_eq!(listed, ours);
    }

    fn script(text: &str) -> Script {
        Script::parse(text).unwrap()
    }

    #[test]
    fn refuses_what_the_harness_cannot_do_naming_the_line() {
        let cases = [
            (
                "protocol merged\nworld functions=1 tracers=1\nklp-enable f0\nbpf-link fexit f0 !alloc=0\n",
                "line 4",
                "injects faults",
            ),
            (
                "protocol merged\nworld functions=1 tracers=1\nklp-enable f0\nt1: bpf-link fexit f0\n",
                "line 4",
                "another thread",
            ),
            (
                "protocol merged\nworld functions=2 tracers=1 module=m0:f1\nklp-enable f0\n",
                "",
                "modules",
            ),
            (
                "protocol merged\nworld functions=5 tracers=1\nklp-enable f0\n",
                "",
                "at most 4",
            ),
            (
                "protocol merged\nworld functions=1 tracers=1\n\n# c\ndirect-register f0\n",
                "line 5",
                "no single-ip direct API",
            ),
            (
                "protocol merged\nworld functions=1 tracers=1\ntracer-register t0 filter={} notrace={}\n",
                "line 3",
                "every function",
            ),
        ];
        for (text, line, why) in cases {
            let s = script(text);
            let err =
                check_performable(&s, RealKernel::V6_12, Some(&op_line_numbers(text))).unwrap_err();
            assert!(err.contains(line), "{err}");
            assert!(err.contains(why), "{err}");
        }
        let ok = "protocol merged\nworld functions=4 tracers=2\nklp-enable f0\nbpf-link fmod_ret f3\ntracer-register t1 filter={f0} notrace={f1}\n";
        check_performable(&script(ok), RealKernel::V6_12, None).unwrap();
        let direct =
            "protocol merged\nworld functions=1 tracers=1\ndirect-register f0\ndirect-modify f0\n";
        check_performable(&script(direct), RealKernel::V6_1, None).unwrap();
        assert!(check_performable(&script(direct), RealKernel::V6_12, None).is_err());
    }

    #[test]
    fn kernels_parse_and_name_their_pins() {
        assert_eq!(RealKernel::parse("6.1"), Ok(RealKernel::V6_1));
        assert_eq!(RealKernel::parse("6.12"), Ok(RealKernel::V6_12));
        assert!(RealKernel::parse("5.15")
            .unwrap_err()
            .contains("6.1 or 6.12"));
        let pins = include_str!("../../../kernel/pins.env");
        for k in RealKernel::ALL {
            assert!(pins.contains(&format!("{}=", k.pin_var())), "{k}");
        }
    }
}
