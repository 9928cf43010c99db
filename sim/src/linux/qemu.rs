//! Booting a real kernel under QEMU with a plan, and collecting what the guest answered.
//!
//! The guest shares the host's root read-only over 9p (`-virtfs`), chroots into it and runs the
//! plan's script; the driver answers on the second serial port (a file here), the console goes
//! to the first. KVM where it boots, TCG otherwise (`FTSIM_ACCEL=kvm|tcg` forces one); which one
//! ran is printed.

use super::map::RealKernel;
use super::observe::BootRun;
use super::plan;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Guest memory.
pub const GUEST_MEMORY_MB: u32 = 1024;
/// How long a guest may take to boot and reach the driver.
pub const BOOT_BUDGET_S: u64 = 60;
/// How long the guest may go without answering anything once it runs (a livepatch transition,
/// a module load and an observation all answer well within it under TCG).
pub const STALL_BUDGET_S: u64 = 90;
/// How long the KVM probe waits for a guest to reach user space.
pub const KVM_PROBE_S: u64 = 25;

/// The harness itself failed (exit 3): what, and how to fix it where that is known.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Machinery(pub String);

impl fmt::Display for Machinery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The repository (for `kernel/`), found from where this crate was built.
pub fn repo() -> PathBuf {
    match std::env::var_os("FTSIM_REPO") {
        Some(p) => PathBuf::from(p),
        None => Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("[ftsim internal bug] the sim crate has no parent folder")
            .to_path_buf(),
    }
}

/// Where `kernel/setup.sh` puts its output.
pub fn cache() -> PathBuf {
    match std::env::var_os("FTSIM_KERNEL_DIR") {
        Some(p) => PathBuf::from(p),
        None => repo().join("target/kernel"),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Accel {
    Kvm,
    Tcg,
}

impl Accel {
    pub fn name(self) -> &'static str {
        match self {
            Accel::Kvm => "kvm",
            Accel::Tcg => "tcg",
        }
    }
}

/// A kernel ready to boot.
#[derive(Clone, Debug)]
pub struct Machine {
    pub kernel: RealKernel,
    pub dir: PathBuf,
    pub release: String,
    pub accel: Accel,
    /// Why this accelerator (printed).
    pub accel_why: String,
}

fn tool(name: &str, package: &str) -> Result<(), Machinery> {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(name).is_file()))
        .unwrap_or(false);
    if found {
        Ok(())
    } else {
        Err(Machinery(format!(
            "`{name}` not found: install it with `kernel/setup.sh` (or `apt-get install {package}`)"
        )))
    }
}

/// Makes `kernel` ready: runs `kernel/setup.sh` when its artefacts are missing, then checks
/// them and picks the accelerator.
pub fn prepare(kernel: RealKernel, quiet: bool) -> Result<Machine, Machinery> {
    let dir = cache().join(kernel.name());
    let needed = ["vmlinuz", "initrd.cpio.gz", "release", "guest/ftsim-guest"];
    if needed.iter().any(|f| !dir.join(f).exists()) {
        let setup = repo().join("kernel/setup.sh");
        if !quiet {
            eprintln!(
                "ftsim kernel: {} is not set up; running {} {}",
                kernel,
                setup.display(),
                kernel
            );
        }
        let st = Command::new("bash")
            .arg(&setup)
            .arg(kernel.name())
            .env("FTSIM_KERNEL_DIR", cache())
            .stdout(Stdio::null())
            .status()
            .map_err(|e| Machinery(format!("running {}: {e}", setup.display())))?;
        if !st.success() {
            return Err(Machinery(format!(
                "{} {} failed (exit {:?}); its messages are above",
                setup.display(),
                kernel,
                st.code()
            )));
        }
    }
    for f in needed {
        if !dir.join(f).exists() {
            return Err(Machinery(format!(
                "{} missing after setup: run `kernel/setup.sh {kernel}`",
                dir.join(f).display()
            )));
        }
    }
    tool("qemu-system-x86_64", "qemu-system-x86")?;
    let release = std::fs::read_to_string(dir.join("release"))
        .map_err(|e| Machinery(format!("reading {}: {e}", dir.join("release").display())))?
        .trim()
        .to_string();
    let mut m = Machine {
        kernel,
        dir,
        release,
        accel: Accel::Tcg,
        accel_why: String::new(),
    };
    let (accel, why) = pick_accel(&m);
    m.accel = accel;
    m.accel_why = why;
    Ok(m)
}

/// KVM if it is forced, or if `/dev/kvm` opens and a probe boot reaches user space (the
/// verdict is cached next to the kernels); TCG otherwise.
fn pick_accel(m: &Machine) -> (Accel, String) {
    match std::env::var("FTSIM_ACCEL").as_deref() {
        Ok("kvm") => return (Accel::Kvm, "forced by FTSIM_ACCEL".into()),
        Ok("tcg") => return (Accel::Tcg, "forced by FTSIM_ACCEL".into()),
        _ => {}
    }
    if std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .is_err()
    {
        return (Accel::Tcg, "/dev/kvm cannot be opened".into());
    }
    let cached = cache().join("kvm-probe");
    if let Ok(v) = std::fs::read_to_string(&cached) {
        let v = v.trim();
        return match v.strip_prefix("ok") {
            Some(_) => (Accel::Kvm, "KVM probe booted (cached)".into()),
            None => (Accel::Tcg, format!("{v} (cached in {})", cached.display())),
        };
    }
    let probe = Machine {
        accel: Accel::Kvm,
        ..m.clone()
    };
    let verdict = match probe.boot_raw("", Duration::from_secs(KVM_PROBE_S)) {
        Ok(out) if out.contains("@@ftsim done") => "ok".to_string(),
        Ok(_) | Err(_) => {
            format!("KVM probe: the guest did not reach user space in {KVM_PROBE_S} s")
        }
    };
    let _ = std::fs::write(&cached, &verdict);
    if verdict == "ok" {
        (Accel::Kvm, "KVM probe booted".into())
    } else {
        (Accel::Tcg, verdict)
    }
}

static RUNS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

impl Machine {
    /// Boots with `plan` and returns what the guest answered, parsed. A guest that does not
    /// reach its driver in [`BOOT_BUDGET_S`], or then answers nothing for [`STALL_BUDGET_S`],
    /// is killed; what it answered until then is returned (`done` false).
    pub fn boot(&self, plan_text: &str) -> Result<BootRun, Machinery> {
        let out = self.boot_raw(plan_text, Duration::from_secs(BOOT_BUDGET_S))?;
        BootRun::parse(&out).map_err(Machinery)
    }

    fn boot_raw(&self, plan_text: &str, mut budget: Duration) -> Result<String, Machinery> {
        let n = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let run = cache()
            .join("runs")
            .join(format!("{}-{}-{n}", self.kernel, std::process::id()));
        std::fs::create_dir_all(&run)
            .map_err(|e| Machinery(format!("creating {}: {e}", run.display())))?;
        let run = run
            .canonicalize()
            .map_err(|e| Machinery(format!("{}: {e}", run.display())))?;
        let guest = self
            .dir
            .join("guest")
            .canonicalize()
            .map_err(|e| Machinery(format!("{}: {e}", self.dir.join("guest").display())))?;
        let plan_path = run.join("plan.txt");
        let text = if plan_text.is_empty() {
            plan::plan(&guest, &[])
        } else {
            plan_text.to_string()
        };
        let write = |p: &Path, s: &str| {
            std::fs::write(p, s).map_err(|e| Machinery(format!("writing {}: {e}", p.display())))
        };
        write(&plan_path, &text)?;
        let script = run.join("run.sh");
        write(&script, &plan::guest_script(&guest, &plan_path))?;
        let results = run.join("result.txt");
        let console = run.join("console.txt");
        let accel = self.accel.name();
        let mut child = self
            .qemu(accel, &script, &console, &results)
            .spawn()
            .map_err(|e| Machinery(format!("starting qemu-system-x86_64: {e}")))?;
        let mut last = Instant::now();
        let mut len = 0;
        let timed_out = loop {
            let now = std::fs::metadata(&results).map(|m| m.len()).unwrap_or(0);
            if now != len {
                len = now;
                last = Instant::now();
                budget = Duration::from_secs(STALL_BUDGET_S);
            }
            match child.try_wait() {
                Ok(Some(_)) => break false,
                Ok(None) if last.elapsed() > budget => {
                    let _ = child.kill();
                    let _ = child.wait();
                    break true;
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(50)),
                Err(e) => return Err(Machinery(format!("waiting for qemu: {e}"))),
            }
        };
        let out = std::fs::read_to_string(&results).unwrap_or_default();
        answered(out, &console, &mut child, timed_out, budget, accel)
    }

    /// The QEMU command line: the guest runs `script`; serial 0 goes to `console`, serial 1
    /// (the driver's answers) to `results`.
    fn qemu(&self, accel: &str, script: &Path, console: &Path, results: &Path) -> Command {
        let mut c = Command::new("qemu-system-x86_64");
        c.args([
            "-accel",
            accel,
            "-m",
            &GUEST_MEMORY_MB.to_string(),
            "-smp",
            "1",
        ])
        .arg("-kernel")
        .arg(self.dir.join("vmlinuz"))
        .arg("-initrd")
        .arg(self.dir.join("initrd.cpio.gz"))
        .arg("-append")
        .arg(format!(
            "console=ttyS0 panic=-1 oops=panic loglevel=5 ftsim_script={}",
            script.display()
        ))
        .args(["-display", "none", "-no-reboot", "-nodefaults"])
        .args([
            "-virtfs",
            "local,path=/,mount_tag=host,security_model=none,readonly=on,multidevs=remap",
        ])
        .arg("-serial")
        .arg(format!("file:{}", console.display()))
        .arg("-serial")
        .arg(format!("file:{}", results.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
        c
    }
}

/// What the guest answered, judged: an error when it never reached its driver (with qemu's
/// stderr and the console's tail), the answers with a machinery line when it stopped early.
fn answered(
    out: String,
    console: &Path,
    child: &mut std::process::Child,
    timed_out: bool,
    budget: Duration,
    accel: &str,
) -> Result<String, Machinery> {
    if !out.contains("@@ftsim boot") {
        let tail: String = std::fs::read_to_string(console)
            .unwrap_or_default()
            .lines()
            .rev()
            .take(8)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("\n");
        let mut err = String::new();
        if let Some(mut e) = child.stderr.take() {
            use std::io::Read;
            let _ = e.read_to_string(&mut err);
        }
        return Err(Machinery(format!(
            "boot: the guest never reached its driver ({}; accel {accel}); qemu: {}; console tail:\n{tail}",
            if timed_out { "timed out" } else { "qemu exited" },
            err.trim()
        )));
    }
    if !out.contains("@@ftsim done") {
        // the kernel's own last words (an oops, a WARN) name what stopped the guest
        let said: Vec<String> = std::fs::read_to_string(console)
            .unwrap_or_default()
            .lines()
            .filter(|l| {
                ["BUG:", "WARNING:", "RIP:", "Kernel panic", "Call Trace"]
                    .iter()
                    .any(|k| l.contains(k))
            })
            .take(6)
            .map(|l| l.trim().to_string())
            .collect();
        let why = if timed_out {
            format!("guest timeout: no answer for {} s", budget.as_secs())
        } else {
            "the guest stopped before the end of its plan".to_string()
        };
        return Ok(format!(
            "{out}\n@@ftsim machinery {why}; console {}: {}\n",
            console.display(),
            said.join(" | ")
        ));
    }
    Ok(out)
}
