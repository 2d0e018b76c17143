//! Page allocation under copy-on-write checkpoints: which pages may be written now, which are free, and
//! which become free once the next header is durable.
//!
//! Every page number from 2 to `page_count − 1` is in exactly one of these states:
//! - **durable**: part of the state the last header (or the checkpoint in flight) describes — a tree page
//!   reachable from its root, or one of its free-list pages. Never written until a later header that no
//!   longer needs it is durable;
//! - **fresh**: allocated since the last freeze. No durable state refers to it, so the writer edits it in
//!   place and the pool may write it back to its location at any time;
//! - **free**: in no state that may still be needed; allocation takes the lowest first;
//! - **pending**: freed (relocated or dropped) in the current interval while durable: free once the next
//!   checkpoint's header is durable;
//! - **closing**: the pending pages of the checkpoint in flight, free as soon as its header is durable.
//!
//! A freeze (the start of a checkpoint) turns every fresh page durable, lists `free ∪ pending` (minus the
//! pages that hold the list itself) as the new header's free list, and moves `pending` and the previous
//! free-list pages to `closing`; [`Space::release`] moves `closing` to `free` after that header is durable.

use std::collections::BTreeSet;

/// A growable set of page numbers as a bitmap (one bit per page of the file).
#[derive(Debug, Default, Clone)]
struct PageBits(Vec<u64>);

impl PageBits {
    fn get(&self, p: u32) -> bool {
        self.0
            .get(p as usize / 64)
            .is_some_and(|w| w & (1 << (p % 64)) != 0)
    }

    fn set(&mut self, p: u32, on: bool) {
        let i = p as usize / 64;
        if self.0.len() <= i {
            if !on {
                return;
            }
            self.0.resize(i + 1, 0);
        }
        if let Some(w) = self.0.get_mut(i) {
            if on {
                *w |= 1 << (p % 64);
            } else {
                *w &= !(1 << (p % 64));
            }
        }
    }

    fn clear(&mut self) {
        self.0.clear();
    }
}

/// The allocation state (behind the tree latch; the writer has it exclusively while it applies a batch).
#[derive(Debug, Default)]
pub(crate) struct Space {
    free: BTreeSet<u32>,
    pending: Vec<u32>,
    closing: Vec<u32>,
    fresh: PageBits,
    /// The pages holding the free list of the newest header (durable or in flight).
    list_pages: Vec<u32>,
}

/// What a freeze hands the checkpoint: the free list of the new header.
#[derive(Debug)]
pub(crate) struct FreeList {
    /// The pages that hold the list, in chain order.
    pub pages: Vec<u32>,
    /// The free pages listed, ascending.
    pub entries: Vec<u32>,
}

impl Space {
    /// The state after opening a header whose free list is `free`, held in `list_pages`.
    pub fn open(free: impl IntoIterator<Item = u32>, list_pages: Vec<u32>) -> Self {
        Space {
            free: free.into_iter().collect(),
            list_pages,
            ..Space::default()
        }
    }

    /// True if `pgno` was allocated since the last freeze (it may be written in place).
    pub fn is_fresh(&self, pgno: u32) -> bool {
        self.fresh.get(pgno)
    }

    /// A page for new content: the lowest free page, or `page_count` (which grows). It is fresh.
    pub fn alloc(&mut self, page_count: &mut u32) -> Option<u32> {
        let pgno = match self.free.pop_first() {
            Some(p) => p,
            None => {
                let p = *page_count;
                *page_count = p.checked_add(1)?;
                p
            }
        };
        self.fresh.set(pgno, true);
        Some(pgno)
    }

    /// Frees `pgno`: at once if it is fresh (returns true), else once the next header is durable.
    pub fn free(&mut self, pgno: u32) -> bool {
        if self.fresh.get(pgno) {
            self.fresh.set(pgno, false);
            self.free.insert(pgno);
            true
        } else {
            self.pending.push(pgno);
            false
        }
    }

    /// True if the last page of a file of `page_count` pages is free (a freeze would drop it).
    pub fn can_trim(&self, page_count: u32) -> bool {
        page_count > 3 && self.free.last() == Some(&(page_count - 1))
    }

    /// True if pages were freed since the last freeze (the next checkpoint has work even without batches).
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Pages not in use by the tree: free, pending, closing, or holding the free list.
    pub fn unused(&self) -> usize {
        self.free.len() + self.list_pages.len() + self.pending.len() + self.closing.len()
    }

    /// Every page that is free, pending, closing or holds the free list (for `verify`'s leak check).
    pub fn unreachable_in_use(&self) -> impl Iterator<Item = u32> + '_ {
        self.free
            .iter()
            .chain(&self.pending)
            .chain(&self.closing)
            .chain(&self.list_pages)
            .copied()
    }

    /// Starts a checkpoint: drops free pages at the end of the file (lowering `page_count`), allocates the
    /// pages for the new free list (`per_page` entries each) and returns it; every fresh page becomes
    /// durable, and `pending` with the old list pages becomes `closing`. REQUIRES: no checkpoint in flight
    /// (`closing` empty).
    pub fn freeze(&mut self, page_count: &mut u32, per_page: usize) -> FreeList {
        debug_assert!(self.closing.is_empty());
        while self.can_trim(*page_count) {
            self.free.pop_last();
            *page_count -= 1;
        }
        let mut closing = std::mem::take(&mut self.pending);
        closing.append(&mut self.list_pages);
        // The list holds free ∪ closing minus its own pages: take its pages from the free set first, so
        // the count settles (each page taken is one entry fewer).
        let per_page = per_page.max(1);
        let mut pages = Vec::new();
        while (self.free.len() + closing.len()).div_ceil(per_page) > pages.len() {
            match self.free.pop_first() {
                Some(p) => pages.push(p),
                None => {
                    // Listing the closing pages needs a page beyond the free ones.
                    let p = *page_count;
                    *page_count += 1;
                    pages.push(p);
                }
            }
        }
        let mut entries: Vec<u32> = self
            .free
            .iter()
            .copied()
            .chain(closing.iter().copied())
            .collect();
        entries.sort_unstable();
        self.fresh.clear();
        self.closing = closing;
        self.list_pages = pages.clone();
        FreeList { pages, entries }
    }

    /// The checkpoint's header is durable: the pages it freed are free.
    pub fn release(&mut self) {
        self.free.extend(self.closing.drain(..));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_pages_free_at_once_durable_ones_after_the_next_header() {
        let mut s = Space::open([5, 7], vec![9]);
        let mut count = 12;
        assert_eq!(s.alloc(&mut count), Some(5));
        assert!(s.is_fresh(5) && !s.is_fresh(3));
        assert!(s.free(5), "fresh: free at once");
        assert!(!s.free(3), "durable: pending");
        assert_eq!(s.alloc(&mut count), Some(5));
        assert_eq!(s.alloc(&mut count), Some(7));
        assert_eq!(s.alloc(&mut count), Some(12));
        assert_eq!(count, 13);
        let list = s.freeze(&mut count, 100);
        // 3 (pending) and 9 (the old list page) are listed; the list's own page came from the file's end.
        assert_eq!(list.entries, vec![3, 9]);
        assert_eq!(list.pages, vec![13]);
        assert_eq!(count, 14);
        assert!(!s.is_fresh(12), "durable after the freeze");
        assert_eq!(
            s.alloc(&mut count),
            Some(14),
            "closing pages wait for the header"
        );
        s.release();
        assert_eq!(s.alloc(&mut count), Some(3));
    }

    #[test]
    fn a_freeze_trims_free_pages_at_the_end_of_the_file() {
        let mut s = Space::open([4, 8, 9], vec![]);
        let mut count = 10;
        let list = s.freeze(&mut count, 1);
        assert_eq!(count, 8, "pages 8 and 9 dropped");
        assert_eq!(list.pages, vec![4]);
        assert!(list.entries.is_empty());
    }
}
