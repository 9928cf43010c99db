//! Command-line plumbing shared by the subcommands: protocol and seed arguments, errors that
//! name the problem, and the exit codes.

use ftsim_core::protocol::{self, Protocol, ProtocolError};
use ftsim_sim::sweep::{SeedSet, Target};
use std::fmt;
use std::path::Path;

/// Exit codes: nothing found, something found, bad input, internal error.
pub const EXIT_CLEAN: i32 = 0;
pub const EXIT_FOUND: i32 = 1;
pub const EXIT_USAGE: i32 = 2;
pub const EXIT_INTERNAL: i32 = 3;

/// A user input problem: printed as `ftsim: error: ...`, exit 2.
#[derive(Debug)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<ProtocolError> for UsageError {
    fn from(e: ProtocolError) -> Self {
        UsageError(e.to_string())
    }
}

/// Most seeds one invocation may run.
pub const SEEDS_MAX: u64 = 1 << 40;

/// `--protocol NAME|FILE` plus `--set key=value` overrides.
/// The `--set key=value` arguments, parsed.
fn parse_sets(sets: &[String]) -> Result<Vec<(String, String)>, UsageError> {
    sets.iter()
        .map(|s| protocol::parse_assignment(s))
        .collect::<Result<_, _>>()
        .map_err(|_| {
            UsageError(format!(
                "--set expects key=value, found `{}`",
                sets.iter().find(|s| !s.contains('=')).unwrap()
            ))
        })
}

fn apply_pairs(proto: &mut Protocol, pairs: &[(String, String)]) -> Result<(), UsageError> {
    for (k, v) in pairs {
        proto.set(k, v)?;
    }
    proto.validate()?;
    Ok(())
}

/// `--set key=value` overrides applied to `proto` (a reproducer file's), validated.
pub fn apply_sets(proto: &mut Protocol, sets: &[String]) -> Result<(), UsageError> {
    apply_pairs(proto, &parse_sets(sets)?)
}

pub fn target(arg: &str, sets: &[String]) -> Result<Target, UsageError> {
    let pairs = parse_sets(sets)?;
    let mut proto = match Protocol::preset(arg) {
        Some(p) => p,
        None if Path::new(arg).is_file() => {
            let text = std::fs::read_to_string(arg)
                .map_err(|e| UsageError(format!("cannot read protocol file {arg}: {e}")))?;
            Protocol::parse_file(&text)
                .map_err(|e| UsageError(format!("protocol file {arg}: {e}")))?
        }
        None => {
            let names: Vec<&str> = protocol::PRESETS.iter().map(|(n, _)| *n).collect();
            return Err(UsageError(format!(
                "unknown protocol `{arg}`: not a preset ({}) and no such file",
                names.join(", ")
            )));
        }
    };
    apply_pairs(&mut proto, &pairs)?;
    let mut args = format!("--protocol {arg}");
    for s in sets {
        args.push_str(&format!(" --set {s}"));
    }
    let name = if sets.is_empty() {
        arg.to_string()
    } else {
        proto.describe()
    };
    Ok(Target { name, proto, args })
}

/// Every `--protocol` given, or every preset when none is, each with the `--set` overrides.
pub fn targets(protocols: &[String], sets: &[String]) -> Result<Vec<Target>, UsageError> {
    if protocols.is_empty() {
        return protocol::PRESETS
            .iter()
            .map(|(n, _)| target(n, sets))
            .collect();
    }
    protocols.iter().map(|n| target(n, sets)).collect()
}

/// `A..B` (B excluded), `A..=B`, or one seed `A`.
pub fn seeds(arg: &str) -> Result<SeedSet, UsageError> {
    let bad = || {
        UsageError(format!(
            "bad --seeds `{arg}`: expected A..B, A..=B or a single seed (unsigned 64-bit)"
        ))
    };
    let num = |s: &str| s.trim().parse::<u64>().map_err(|_| bad());
    let (lo, hi) = if let Some((a, b)) = arg.split_once("..=") {
        (num(a)?, num(b)?.checked_add(1).ok_or_else(bad)?)
    } else if let Some((a, b)) = arg.split_once("..") {
        (num(a)?, num(b)?)
    } else {
        let a = num(arg)?;
        (a, a.checked_add(1).ok_or_else(bad)?)
    };
    if lo >= hi {
        return Err(UsageError(format!("--seeds `{arg}` is empty")));
    }
    if hi - lo > SEEDS_MAX {
        return Err(UsageError(format!(
            "--seeds `{arg}` has {} seeds; at most {SEEDS_MAX} per invocation",
            hi - lo
        )));
    }
    Ok(SeedSet {
        lo,
        hi,
        shard: 0,
        shards: 1,
    })
}

/// `--shard i/n`: keeps every n-th seed starting at the i-th.
pub fn shard(mut set: SeedSet, arg: &str) -> Result<SeedSet, UsageError> {
    let bad = || UsageError(format!("bad --shard `{arg}`: expected i/n with 0 <= i < n"));
    let (i, n) = arg.split_once('/').ok_or_else(bad)?;
    let (i, n): (u64, u64) = (i.parse().map_err(|_| bad())?, n.parse().map_err(|_| bad())?);
    if n == 0 || i >= n {
        return Err(bad());
    }
    set.shard = i;
    set.shards = n;
    Ok(set)
}

/// `--jobs`: worker threads, by default one per available core.
pub fn jobs(arg: Option<usize>) -> Result<usize, UsageError> {
    let jobs = arg.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    if jobs == 0 || jobs > 1024 {
        return Err(UsageError(format!(
            "--jobs must be between 1 and 1024, found {jobs}"
        )));
    }
    Ok(jobs)
}
