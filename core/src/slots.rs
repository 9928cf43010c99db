//! [`Slots`], the vector `Kernel::fns` and `Kernel::ops` are held in, which remembers the items
//! borrowed mutably, and the copy helpers of the kernel's copies (`core/src/copy.rs`).
//!
//! The explorer runs every successor of a state in one buffer: before each transition the buffer
//! is made the parent again, and after it the successor's key re-walks only the functions whose
//! own sections differ from the parent's. Both need what the last transition changed. Comparing
//! every item tells it, at a cost of about half a walk per function; [`Slots`] tells it for free,
//! as a superset: every item a frame, an owner or a kernel piece wrote went through `IndexMut`
//! (or `iter_mut`, which marks them all), since `Slots` has no other way to reach an item
//! mutably. The mark is bookkeeping, not state: no equality, walk or key reads it.

use std::ops::{Deref, Index, IndexMut};

/// A vector of state items that marks every item borrowed mutably since `Slots::restore_from`
/// last cleared the marks (one bit per item; the items from [`Slots::WIDE`] on share the last
/// bit). Reads go through `Deref` to a slice, writes through `IndexMut` and `iter_mut`.
#[derive(Clone, Debug, Default)]
pub struct Slots<T> {
    items: Vec<T>,
    written: u64,
}

impl<T> Slots<T> {
    /// Items from this index on share one mark bit.
    pub const WIDE: usize = 63;

    /// The items, all marked: nothing is known about what they differ from.
    pub fn new(items: Vec<T>) -> Slots<T> {
        Slots {
            items,
            written: u64::MAX,
        }
    }

    #[inline(always)]
    fn bit(i: usize) -> u64 {
        1 << i.min(Self::WIDE)
    }

    /// Item `i` may have been written since the marks were cleared.
    #[inline(always)]
    pub fn written(&self, i: usize) -> bool {
        self.written & Self::bit(i) != 0
    }

    /// Every item, mutably: all are marked.
    pub fn iter_mut(&mut self) -> std::slice::IterMut<'_, T> {
        self.written = u64::MAX;
        self.items.iter_mut()
    }
}

impl<T: Clone + PartialEq> Slots<T> {
    /// `*self = src.clone()`, writing only the items that differ (see [`copy_if_changed`]).
    pub(crate) fn copy_from(&mut self, src: &Slots<T>) {
        copy_changed(&mut self.items, &src.items);
        self.written = src.written;
    }

    /// `*self = src.clone()` for a `self` that was a copy of `src` before the writes its marks
    /// record (the explorer's buffer after a transition from `src`): only the marked items are
    /// copied, and the marks are cleared. Debug builds check that premise.
    #[inline]
    pub(crate) fn restore_from(&mut self, src: &Slots<T>) {
        assert!(
            self.items.len() == src.items.len(),
            "[core internal bug] restore_from across worlds"
        );
        for (i, (d, s)) in self.items.iter_mut().zip(&src.items).enumerate() {
            if self.written & Self::bit(i) != 0 {
                copy_if_changed(d, s);
            } else {
                debug_assert!(
                    d == s,
                    "[core internal bug] item {i} was changed without a mark"
                );
            }
        }
        self.written = 0;
    }
}

impl<T: PartialEq> Slots<T> {
    /// Item `i` equals `parent`'s, for a `self` that was a copy of `parent` before the writes its
    /// marks record: compared only when marked (debug builds check an unmarked one equal, the
    /// premise). The one comparison every `_parent` test of the kernel's copies is made of.
    #[inline(always)]
    pub fn eq_at_parent(&self, parent: &Slots<T>, i: usize) -> bool {
        if self.written(i) {
            self.items[i] == parent.items[i]
        } else {
            debug_assert!(
                self.items[i] == parent.items[i],
                "[core internal bug] item {i} was changed without a mark"
            );
            true
        }
    }

    /// `self == parent` under the premise of [`Slots::eq_at_parent`].
    #[inline]
    pub(crate) fn eq_marked(&self, parent: &Slots<T>) -> bool {
        self.items.len() == parent.items.len()
            && (0..self.items.len()).all(|i| self.eq_at_parent(parent, i))
    }
}

impl<T> Deref for Slots<T> {
    type Target = [T];
    #[inline(always)]
    fn deref(&self) -> &[T] {
        &self.items
    }
}

impl<T> Index<usize> for Slots<T> {
    type Output = T;
    #[inline(always)]
    fn index(&self, i: usize) -> &T {
        &self.items[i]
    }
}

impl<T> IndexMut<usize> for Slots<T> {
    #[inline(always)]
    fn index_mut(&mut self, i: usize) -> &mut T {
        self.written |= Self::bit(i);
        &mut self.items[i]
    }
}

/// The items alone: the marks are not state.
impl<T: PartialEq> PartialEq for Slots<T> {
    #[inline]
    fn eq(&self, o: &Slots<T>) -> bool {
        self.items == o.items
    }
}

impl<T: Eq> Eq for Slots<T> {}

impl<'a, T> IntoIterator for &'a Slots<T> {
    type Item = &'a T;
    type IntoIter = std::slice::Iter<'a, T>;
    fn into_iter(self) -> Self::IntoIter {
        self.items.iter()
    }
}

/// `dst = src.clone()` writing only the items that differ: the explorer copies a state into a
/// buffer that holds a sibling successor, which differs from it in the few functions and ops one
/// operation touched, and comparing small plain items is cheaper than rebuilding them.
#[inline]
pub(crate) fn copy_changed<T: Clone + PartialEq>(dst: &mut Vec<T>, src: &[T]) {
    if dst.len() != src.len() {
        dst.clear();
        dst.extend_from_slice(src);
        return;
    }
    for (d, s) in dst.iter_mut().zip(src) {
        copy_if_changed(d, s);
    }
}

/// `*dst = src.clone()` when they differ (see [`copy_changed`]).
#[inline]
pub(crate) fn copy_if_changed<T: Clone + PartialEq>(dst: &mut T, src: &T) {
    if dst != src {
        *dst = src.clone();
    }
}

#[cfg(test)]
mod tests {
    use super::Slots;

    #[test]
    fn a_mutable_borrow_marks_its_item_and_a_restore_copies_the_marked_back() {
        let parent = Slots::new(vec![1u8; 70]);
        let mut c = parent.clone();
        c.restore_from(&parent);
        assert!((0..70).all(|i| !c.written(i)), "a restore clears the marks");
        let _ = &c[3];
        assert!(!c.written(3), "a read marks nothing");
        c[3] = 7;
        c[65] = 9;
        let marked: Vec<usize> = (0..70).filter(|&i| c.written(i)).collect();
        // The items from WIDE on share the last bit.
        let mut want = vec![3];
        want.extend(Slots::<u8>::WIDE..70);
        assert_eq!(marked, want);
        assert!(c != parent, "equality reads the items");
        c.restore_from(&parent);
        assert!(c == parent && (0..70).all(|i| !c.written(i)));
        c.iter_mut().for_each(|x| *x += 0);
        assert!((0..70).all(|i| c.written(i)), "iter_mut marks every item");
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "item 2 was changed without a mark")]
    fn a_restore_refuses_a_change_without_a_mark() {
        let parent = Slots::new(vec![0u8; 4]);
        let mut c = parent.clone();
        c.restore_from(&parent);
        c.items[2] = 1;
        c.restore_from(&parent);
    }
}
