//! The properties every version is checked against (SPEC §3), by their identifiers.

use crate::ids::FnId;
use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Property {
    IpmodifyHonoured,
    NoLostProgram,
    NoLostCallback,
    Exclusivity,
    Accounting,
    Atomicity,
    ShareLeak,
    Availability,
    Deadlock,
    LockRecursion,
    LockOrder,
    LockCoverage,
    Livelock,
}

impl Property {
    pub const ALL: [Property; 13] = [
        Property::IpmodifyHonoured,
        Property::NoLostProgram,
        Property::NoLostCallback,
        Property::Exclusivity,
        Property::Accounting,
        Property::Atomicity,
        Property::ShareLeak,
        Property::Availability,
        Property::Deadlock,
        Property::LockRecursion,
        Property::LockOrder,
        Property::LockCoverage,
        Property::Livelock,
    ];

    /// The identifier findings use everywhere (output, JSON, reproducer files).
    pub fn id(self) -> &'static str {
        match self {
            Property::IpmodifyHonoured => "ipmodify-honoured",
            Property::NoLostProgram => "no-lost-program",
            Property::NoLostCallback => "no-lost-callback",
            Property::Exclusivity => "exclusivity",
            Property::Accounting => "accounting",
            Property::Atomicity => "atomicity",
            Property::ShareLeak => "share-leak",
            Property::Availability => "availability",
            Property::Deadlock => "deadlock",
            Property::LockRecursion => "lock-recursion",
            Property::LockOrder => "lock-order",
            Property::LockCoverage => "lock-coverage",
            Property::Livelock => "livelock",
        }
    }

    /// The class of a finding: what a call executes, the bookkeeping, the lock protocol, or the
    /// tolerated leftovers the kernel documents (SPEC §3.6).
    pub fn class(self) -> &'static str {
        match self {
            Property::IpmodifyHonoured | Property::NoLostProgram | Property::NoLostCallback => {
                "behaviour"
            }
            Property::Exclusivity
            | Property::Accounting
            | Property::Atomicity
            | Property::Availability => "state",
            Property::ShareLeak => "tolerated",
            Property::Deadlock
            | Property::LockRecursion
            | Property::LockOrder
            | Property::LockCoverage
            | Property::Livelock => "locking",
        }
    }
}

impl fmt::Display for Property {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

impl std::str::FromStr for Property {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Property::ALL
            .into_iter()
            .find(|p| p.id() == s)
            .ok_or_else(|| {
                let ids: Vec<&str> = Property::ALL.iter().map(|p| p.id()).collect();
                format!(
                    "unknown property `{s}` (expected one of {})",
                    ids.join(", ")
                )
            })
    }
}

/// One violated property: which, where, and a one-line explanation.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Violation {
    pub property: Property,
    pub func: Option<FnId>,
    pub detail: String,
}

impl Violation {
    pub fn new(property: Property, func: Option<FnId>, detail: impl Into<String>) -> Violation {
        Violation {
            property,
            func,
            detail: detail.into(),
        }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.func {
            Some(func) => write!(f, "{} at {}: {}", self.property, func, self.detail),
            None => write!(f, "{}: {}", self.property, self.detail),
        }
    }
}
