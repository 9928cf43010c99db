//! The findings of one run: violations deduplicated by (property, function), in the order they
//! were first seen. One type for every driver and check (the scheduler, script replay, the fuzz
//! harness, the thread driver and its linearizer), so "the same finding" means the same thing
//! everywhere: a second violation of a property on a function adds nothing, whatever its detail.

use ftsim_core::ids::FnId;
use ftsim_core::property::{Property, Violation};

/// Violations, at most one per (property, function), in first-seen order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Findings {
    list: Vec<Violation>,
}

impl Findings {
    pub const fn new() -> Findings {
        Findings { list: Vec::new() }
    }

    /// Records `v` unless a finding of its property on its function is recorded already.
    /// Returns whether `v` was new.
    pub fn insert(&mut self, v: Violation) -> bool {
        if self.contains(v.property, v.func) {
            return false;
        }
        self.list.push(v);
        true
    }

    /// A finding of `property` on `func` is recorded.
    pub fn contains(&self, property: Property, func: Option<FnId>) -> bool {
        self.list
            .iter()
            .any(|x| x.property == property && x.func == func)
    }

    /// A finding of `property` on any function is recorded.
    pub fn has(&self, property: Property) -> bool {
        self.list.iter().any(|x| x.property == property)
    }

    pub fn clear(&mut self) {
        self.list.clear();
    }

    pub fn into_vec(self) -> Vec<Violation> {
        self.list
    }
}

impl std::ops::Deref for Findings {
    type Target = [Violation];

    fn deref(&self) -> &[Violation] {
        &self.list
    }
}

impl Extend<Violation> for Findings {
    fn extend<I: IntoIterator<Item = Violation>>(&mut self, iter: I) {
        for v in iter {
            self.insert(v);
        }
    }
}

impl FromIterator<Violation> for Findings {
    fn from_iter<I: IntoIterator<Item = Violation>>(iter: I) -> Findings {
        let mut f = Findings::new();
        f.extend(iter);
        f
    }
}

impl IntoIterator for Findings {
    type Item = Violation;
    type IntoIter = std::vec::IntoIter<Violation>;

    fn into_iter(self) -> Self::IntoIter {
        self.list.into_iter()
    }
}

impl<'a> IntoIterator for &'a Findings {
    type Item = &'a Violation;
    type IntoIter = std::slice::Iter<'a, Violation>;

    fn into_iter(self) -> Self::IntoIter {
        self.list.iter()
    }
}

impl From<Findings> for Vec<Violation> {
    fn from(f: Findings) -> Vec<Violation> {
        f.list
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dedups_by_property_and_function_in_first_seen_order() {
        let mut f = Findings::new();
        assert!(f.insert(Violation::new(Property::Deadlock, None, "a")));
        assert!(f.insert(Violation::new(Property::ShareLeak, Some(FnId(1)), "b")));
        assert!(!f.insert(Violation::new(Property::Deadlock, None, "other detail")));
        assert!(f.insert(Violation::new(Property::ShareLeak, Some(FnId(0)), "c")));
        let details: Vec<&str> = f.iter().map(|v| v.detail.as_str()).collect();
        assert_eq!(details, ["a", "b", "c"]);
        assert!(f.contains(Property::ShareLeak, Some(FnId(0))));
        assert!(!f.contains(Property::ShareLeak, None));
        assert!(f.has(Property::ShareLeak));
        assert!(!f.has(Property::LockOrder));
    }
}
