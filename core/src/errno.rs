//! Kernel error numbers (SPEC §8), reported by name.

use std::fmt;
use std::str::FromStr;

/// The errnos the modelled code returns. Values are the kernel's (SPEC §8).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Errno {
    ENOENT = 2,
    E2BIG = 7,
    EAGAIN = 11,
    ENOMEM = 12,
    EBUSY = 16,
    ENODEV = 19,
    EINVAL = 22,
}

impl Errno {
    pub const ALL: [Errno; 7] = [
        Errno::ENOENT,
        Errno::E2BIG,
        Errno::EAGAIN,
        Errno::ENOMEM,
        Errno::EBUSY,
        Errno::ENODEV,
        Errno::EINVAL,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Errno::ENOENT => "ENOENT",
            Errno::E2BIG => "E2BIG",
            Errno::EAGAIN => "EAGAIN",
            Errno::ENOMEM => "ENOMEM",
            Errno::EBUSY => "EBUSY",
            Errno::ENODEV => "ENODEV",
            Errno::EINVAL => "EINVAL",
        }
    }

    /// The (positive) kernel value; the kernel returns its negation.
    pub fn value(self) -> i32 {
        self as i32
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Errno {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim_start_matches('-');
        Errno::ALL
            .into_iter()
            .find(|e| e.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| format!("unknown errno `{s}` (expected one of ENOENT, E2BIG, EAGAIN, ENOMEM, EBUSY, ENODEV, EINVAL)"))
    }
}

/// Formats an owner-level result the way reproducers and traces print it.
pub fn fmt_result(r: Result<(), Errno>) -> String {
    match r {
        Ok(()) => "ok".to_string(),
        Err(e) => format!("-{e}"),
    }
}
