//! ftrace hashes as multisets (SPEC §1).
//!
//! Adding an ip that is present adds a second entry, removing an absent ip is `-ENOENT`, and an
//! empty filter hash means "every function". The kernel iterates a hash bucket by bucket; the model
//! iterates in ip order, which is as arbitrary and, unlike bucket order, the same on every machine.

use crate::errno::Errno;
use crate::ids::{Addr, FnId};
use smallvec::SmallVec;

/// An entry whose ip was zeroed by `clear_mod_from_hash` when its module went away: it keeps the
/// hash non-empty but matches no function.
pub const DEAD_IP: u16 = u16::MAX;

/// A filter or notrace hash: a multiset of ips, kept as (ip, multiplicity) sorted by ip.
#[derive(Debug, Default, PartialEq, Eq, Hash)]
pub struct IpHash {
    entries: SmallVec<[(u16, u16); 2]>,
}

/// A copy of a small vector of plain items: inline ones rebuilt from a whole buffer (no call to
/// `memcpy` for a length known only at run time), spilled ones by `from_slice`. The derived
/// clone goes item by item through an iterator, and the explorer clones every hash and
/// trampoline of the state at every transition.
#[inline]
pub(crate) fn copy_small<T: Copy, const N: usize>(v: &SmallVec<[T; N]>) -> SmallVec<[T; N]> {
    match v.first() {
        None => SmallVec::new(),
        Some(&x) if v.len() <= N => {
            let mut buf = [x; N];
            for (d, s) in buf.iter_mut().zip(v.iter()) {
                *d = *s;
            }
            SmallVec::from_buf_and_len(buf, v.len())
        }
        Some(_) => SmallVec::from_slice(v),
    }
}

impl Clone for IpHash {
    #[inline]
    fn clone(&self) -> IpHash {
        IpHash {
            entries: copy_small(&self.entries),
        }
    }
}

impl IpHash {
    pub fn new() -> IpHash {
        IpHash::default()
    }

    pub fn from_fns(fns: &[FnId]) -> IpHash {
        let mut h = IpHash::new();
        for f in fns {
            h.add(*f);
        }
        h
    }

    /// No entry at all (a filter hash like this means "every function").
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Number of live entries, duplicates included (dead entries match nothing, and the model's
    /// loops over a hash skip them).
    pub fn len(&self) -> usize {
        self.entries
            .iter()
            .filter(|e| e.0 != DEAD_IP)
            .map(|e| e.1 as usize)
            .sum()
    }

    #[inline]
    pub fn contains(&self, f: FnId) -> bool {
        self.find(f.0).is_ok()
    }

    #[inline]
    fn find(&self, ip: u16) -> Result<usize, usize> {
        self.entries.binary_search_by_key(&ip, |e| e.0)
    }

    /// `add_hash_entry`: always adds, duplicates included.
    pub fn add(&mut self, f: FnId) {
        self.add_raw(f.0);
    }

    fn add_raw(&mut self, ip: u16) {
        match self.find(ip) {
            Ok(i) => self.entries[i].1 += 1,
            Err(i) => self.entries.insert(i, (ip, 1)),
        }
    }

    /// Removes one entry for `f`, `-ENOENT` when there is none.
    pub fn remove(&mut self, f: FnId) -> Result<(), Errno> {
        let i = self.find(f.0).map_err(|_| Errno::ENOENT)?;
        self.entries[i].1 -= 1;
        if self.entries[i].1 == 0 {
            self.entries.remove(i);
        }
        Ok(())
    }

    /// `clear_mod_from_hash`: the first entry found for `f` gets ip 0 (here [`DEAD_IP`]).
    pub fn kill_one(&mut self, f: FnId) {
        if self.remove(f).is_ok() {
            self.add_raw(DEAD_IP);
        }
    }

    /// Every entry in iteration order, duplicates repeated, dead entries skipped.
    pub fn entries(&self) -> impl Iterator<Item = FnId> + '_ {
        self.entries
            .iter()
            .filter(|e| e.0 != DEAD_IP)
            .flat_map(|&(ip, n)| std::iter::repeat_n(FnId(ip), n as usize))
    }

    /// The entry at position `i` of [`IpHash::entries`].
    pub fn nth_entry(&self, i: usize) -> Option<FnId> {
        self.entries().nth(i)
    }

    /// Distinct live ips, in order.
    #[inline]
    pub fn ips(&self) -> impl Iterator<Item = FnId> + '_ {
        self.entries
            .iter()
            .filter(|e| e.0 != DEAD_IP)
            .map(|e| FnId(e.0))
    }

    /// Number of dead entries.
    pub fn dead(&self) -> u16 {
        self.entries
            .iter()
            .find(|e| e.0 == DEAD_IP)
            .map_or(0, |e| e.1)
    }

    /// Raw (ip, multiplicity) pairs, for fingerprints and printing.
    #[inline]
    pub fn raw(&self) -> &[(u16, u16)] {
        &self.entries
    }
}

impl std::fmt::Display for IpHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut parts: Vec<String> = self.entries().map(|x| x.to_string()).collect();
        for _ in 0..self.dead() {
            parts.push("<dead>".into());
        }
        write!(f, "{{{}}}", parts.join(","))
    }
}

/// One `direct_functions` entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DirectEntry {
    pub ip: FnId,
    pub addr: Addr,
}

/// `direct_functions`: a multiset of (ip, address) entries. Within one ip the newest entry comes
/// first (the kernel adds at the bucket head), and a lookup finds the first (SPEC §1).
#[derive(Debug, Default, PartialEq, Eq, Hash)]
pub struct DirectHash {
    entries: SmallVec<[DirectEntry; 4]>,
}

impl Clone for DirectHash {
    #[inline]
    fn clone(&self) -> DirectHash {
        DirectHash {
            entries: copy_small(&self.entries),
        }
    }
}

impl DirectHash {
    pub fn len(&self) -> usize {
        self.entries.len()
    }
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
    #[inline]
    pub fn entries(&self) -> &[DirectEntry] {
        &self.entries
    }

    #[inline]
    fn first_index(&self, f: FnId) -> Option<usize> {
        let i = self.entries.partition_point(|e| e.ip < f);
        (self.entries.get(i).map(|e| e.ip) == Some(f)).then_some(i)
    }

    /// `ftrace_find_rec_direct`: the address of the first entry for `f`.
    #[inline]
    pub fn lookup(&self, f: FnId) -> Option<Addr> {
        self.first_index(f).map(|i| self.entries[i].addr)
    }

    /// `ftrace_add_rec_direct`.
    pub fn add(&mut self, ip: FnId, addr: Addr) {
        let i = self.entries.partition_point(|e| e.ip < ip);
        self.entries.insert(i, DirectEntry { ip, addr });
    }

    /// Sets the address of the first entry for `f` (an update "by lookup"); false if none.
    pub fn set_first(&mut self, f: FnId, addr: Addr) -> bool {
        match self.first_index(f) {
            Some(i) => {
                self.entries[i].addr = addr;
                true
            }
            None => false,
        }
    }

    /// Removes the first entry for `f`.
    pub fn remove_first(&mut self, f: FnId) -> Option<DirectEntry> {
        self.first_index(f).map(|i| self.entries.remove(i))
    }

    /// `remove_direct_functions_hash`: for each entry of `filter`, if the entry found for its ip has
    /// address `addr`, remove it.
    pub fn remove_for_filter(&mut self, filter: &IpHash, addr: Addr) {
        for ip in filter.entries() {
            if self.lookup(ip) == Some(addr) {
                self.remove_first(ip);
            }
        }
    }

    /// All entries for `f`.
    #[inline]
    pub fn all_for(&self, f: FnId) -> impl Iterator<Item = &DirectEntry> + '_ {
        self.entries.iter().filter(move |e| e.ip == f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multiset_semantics() {
        let mut h = IpHash::new();
        assert!(h.is_empty());
        h.add(FnId(3));
        h.add(FnId(1));
        h.add(FnId(3));
        assert_eq!(h.len(), 3);
        assert_eq!(
            h.entries().collect::<Vec<_>>(),
            vec![FnId(1), FnId(3), FnId(3)]
        );
        assert_eq!(h.remove(FnId(2)), Err(Errno::ENOENT));
        h.remove(FnId(3)).unwrap();
        assert!(h.contains(FnId(3)));
        h.kill_one(FnId(3));
        assert!(!h.contains(FnId(3)));
        assert!(!h.is_empty(), "a dead entry keeps the hash non-empty");
        assert_eq!(h.to_string(), "{f1,<dead>}");
    }

    #[test]
    fn direct_lookup_finds_newest() {
        let a = Addr::Sample {
            f: FnId(0),
            serial: 1,
        };
        let b = Addr::Sample {
            f: FnId(0),
            serial: 2,
        };
        let mut d = DirectHash::default();
        d.add(FnId(0), a);
        d.add(FnId(0), a);
        assert!(d.set_first(FnId(0), b));
        let filter = IpHash::from_fns(&[FnId(0), FnId(0)]);
        d.remove_for_filter(&filter, b);
        // The second entry still points at the old address: a stale entry (the fixes-2022 bug).
        assert_eq!(d.lookup(FnId(0)), Some(a));
        assert_eq!(d.len(), 1);
    }
}
