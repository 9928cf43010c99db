//! Running scripts on a kernel, many per boot, a fresh boot after any script that left the
//! kernel dirty.

use super::map;
use super::observe::{BootRun, ScriptRun};
use super::plan::{self, PlanScript};
use super::qemu::{Machine, Machinery};

pub fn machine_line(m: &Machine, proto: &str) -> String {
    format!(
        "kernel {} ({}), accel {} ({}), model preset {proto}",
        m.kernel,
        m.release,
        m.accel.name(),
        m.accel_why
    )
}

pub fn calibration(b: &BootRun, functions: usize) -> Result<(), Machinery> {
    for f in 0..functions {
        match b.calibration.iter().find(|(g, _)| *g == f) {
            Some((_, Ok(()))) => {}
            Some((_, Err(why))) => {
                return Err(Machinery(format!(
                    "calibration of f{f} ({}): {why}",
                    map::FUNCTIONS[f].0
                )))
            }
            None => {
                return Err(Machinery(format!(
                    "calibration of f{f} did not report{}",
                    b.machinery
                        .as_ref()
                        .map(|m| format!(" (guest: {m})"))
                        .unwrap_or_default()
                )))
            }
        }
    }
    Ok(())
}

/// What became of one script of [`run_scripts`].
#[derive(Clone, Debug)]
pub enum GuestOutcome {
    /// The guest ran it to its cleanup.
    Ran(ScriptRun),
    /// The guest stopped inside it (the driver failed, the guest timed out or the kernel
    /// crashed): what it had reported, and why it stopped (the kernel's last words included).
    Stopped(ScriptRun, String),
}

/// Runs `scripts` (`PlanScript::id` = index), up to `batch` per boot. A script that leaves the
/// kernel dirty, or inside which the guest stops, ends its boot: the next one starts on a fresh
/// kernel, so one broken kernel state never leaks into another script.
pub fn run_scripts(
    m: &Machine,
    scripts: &[PlanScript],
    batch: usize,
    log: &mut dyn FnMut(&str),
) -> Result<(Vec<GuestOutcome>, u64), Machinery> {
    let guest = m
        .dir
        .join("guest")
        .canonicalize()
        .map_err(|e| Machinery(e.to_string()))?;
    let mut out: Vec<GuestOutcome> = Vec::new();
    let mut boots = 0;
    let mut idle_boots = 0;
    while out.len() < scripts.len() {
        let chunk = &scripts[out.len()..(out.len() + batch.max(1)).min(scripts.len())];
        let boot = m.boot(&plan::plan(&guest, chunk))?;
        boots += 1;
        calibration(&boot, map::FUNCTIONS.len())?;
        let before = out.len();
        for s in chunk {
            let run = boot.scripts.get(&s.id).cloned().unwrap_or_default();
            match &run.clean {
                Some(Ok(())) => out.push(GuestOutcome::Ran(run)),
                Some(Err(_)) => {
                    out.push(GuestOutcome::Ran(run));
                    break;
                }
                None => {
                    if boot.scripts.contains_key(&s.id) || before == out.len() {
                        let why = boot
                            .machinery
                            .clone()
                            .unwrap_or_else(|| "the guest stopped".into());
                        out.push(GuestOutcome::Stopped(run, why));
                    }
                    break;
                }
            }
        }
        if out.len() == before {
            idle_boots += 1;
            if idle_boots >= 2 {
                return Err(Machinery(format!(
                    "two boots in a row ran no script: {}",
                    boot.machinery.unwrap_or_else(|| "no answer".into())
                )));
            }
        } else {
            idle_boots = 0;
        }
        log(&format!(
            "{}/{} scripts, {boots} boots",
            out.len(),
            scripts.len()
        ));
    }
    Ok((out, boots))
}
