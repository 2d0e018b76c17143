//! `verify()`: walks every page and checks every invariant the tree relies on.
//!
//! - every page passes its check: checksum (pages clean in the pool are read from storage, or from the
//!   frozen copy of a running checkpoint, which is sealed; dirty pages, whose checksum is set when a
//!   checkpoint freezes them, are checked structurally), format, type, LSN;
//! - keys are strictly ascending within a page and across leaves (checked on the in-order walk from the
//!   root: there are no sibling links), and every key of a subtree lies within
//!   the fence keys its parent's separators give it (`lower ≤ key < upper`);
//! - every leaf is at the same depth (the header's height), no non-root page is empty;
//! - overflow chains have exactly the pages their value length implies;
//! - no page is reached twice (which also catches cycles: the walk is bounded by the page count), the free
//!   list has exactly its count of free pages, and reachable ∪ free = every allocated page (no leaks).

use crate::engine::MAX_VALUE_LEN;
use crate::error::Result;
use crate::stats::VerifyReport;
use crate::storage::ReadPurpose;

use super::page::{self, InternalNode, LeafNode, PageType, StoredValue};
use super::store::PageStore;
use super::tree::TreeState;

struct Walk<'a> {
    store: &'a PageStore,
    st: &'a TreeState,
    seen: Vec<bool>,
    report: VerifyReport,
}

/// A subtree to check: page, levels above the leaves, and the fence keys (`None` = unbounded).
type Pending = (u32, u32, Option<Vec<u8>>, Option<Vec<u8>>);

/// Checks the whole tree, overflow chains and free list of `st`.
///
/// # Errors
/// `Corruption` for the first problem found; `Io`.
pub(crate) fn run(store: &PageStore, st: &TreeState) -> Result<VerifyReport> {
    let mut seen = vec![false; st.page_count as usize];
    for s in seen.iter_mut().take(2) {
        *s = true;
    }
    let mut w = Walk {
        store,
        st,
        seen,
        report: VerifyReport {
            files: 1,
            ..VerifyReport::default()
        },
    };
    w.tree()?;
    w.free_list()?;
    if let Some(leak) = w.seen.iter().position(|s| !s) {
        return Err(store.geo.corrupt(
            leak as u32,
            "page is neither reachable nor on the free list (leaked)",
        ));
    }
    Ok(w.report)
}

impl Walk<'_> {
    fn visit(&mut self, pgno: u32, expect: PageType) -> Result<Vec<u8>> {
        let geo = self.store.geo;
        let slot = self
            .seen
            .get_mut(pgno as usize)
            .filter(|_| pgno >= 2)
            .ok_or_else(|| geo.corrupt(pgno, "page number out of range"))?;
        if *slot {
            return Err(geo.corrupt(pgno, "page reached twice (a cycle, or a page used twice)"));
        }
        *slot = true;
        let bytes = match self.store.pool.dirty_copy(pgno) {
            Some(b) => {
                page::check_structure(&b, pgno, self.st.version, &geo)?;
                b
            }
            None => match self.store.frozen_copy(pgno) {
                Some(b) => {
                    page::check(&b, pgno, self.st.version, &geo)?;
                    b
                }
                None => self.store.read_checked(pgno, ReadPurpose::Verify)?,
            },
        };
        self.report.blocks += 1;
        self.report.bytes += bytes.len() as u64;
        let kind = page::page_type(&bytes);
        if kind != Some(expect) {
            return Err(geo.corrupt(pgno, format!("expected a {expect:?} page, found {kind:?}")));
        }
        Ok(bytes)
    }

    fn tree(&mut self) -> Result<()> {
        let geo = self.store.geo;
        let root = self.st.root;
        let mut stack: Vec<Pending> = vec![(root, self.st.height, None, None)];
        let mut last_key: Option<Vec<u8>> = None;
        while let Some((pgno, level, lo, hi)) = stack.pop() {
            let fence_ok = |k: &[u8]| {
                lo.as_deref().is_none_or(|l| k >= l) && hi.as_deref().is_none_or(|h| k < h)
            };
            if level > 0 {
                let p = self.visit(pgno, PageType::Internal)?;
                let node = InternalNode::decode(&p, pgno, &geo)?;
                if node.cells.is_empty() {
                    return Err(geo.corrupt(pgno, "internal page with a single child"));
                }
                for (i, (k, _)) in node.cells.iter().enumerate() {
                    if !fence_ok(k) {
                        return Err(
                            geo.corrupt(pgno, format!("separator {i} outside the fence keys"))
                        );
                    }
                    if i > 0 && node.cells.get(i - 1).is_some_and(|(prev, _)| prev >= k) {
                        return Err(geo.corrupt(pgno, format!("separator {i} out of order")));
                    }
                }
                // Children pushed right to left, so leaves are met in key order.
                let n = node.cells.len();
                for i in (0..=n).rev() {
                    let child = node.child(i).unwrap_or(0);
                    let clo = if i == 0 {
                        lo.clone()
                    } else {
                        node.cells.get(i - 1).map(|c| c.0.clone())
                    };
                    let chi = if i == n {
                        hi.clone()
                    } else {
                        node.cells.get(i).map(|c| c.0.clone())
                    };
                    stack.push((child, level - 1, clo, chi));
                }
            } else {
                let p = self.visit(pgno, PageType::Leaf)?;
                let node = LeafNode::decode(&p, pgno, &geo)?;
                if node.cells.is_empty() && pgno != root {
                    return Err(geo.corrupt(pgno, "empty leaf below the root"));
                }
                for c in &node.cells {
                    if !fence_ok(&c.key) {
                        return Err(geo.corrupt(pgno, "key outside the fence keys"));
                    }
                    if last_key.as_ref().is_some_and(|l| *l >= c.key) {
                        return Err(geo.corrupt(pgno, "keys out of order"));
                    }
                    last_key = Some(c.key.clone());
                    if let StoredValue::Overflow { len, first } = c.value {
                        self.overflow_chain(pgno, len, first)?;
                    }
                }
                self.report.entries += node.cells.len() as u64;
            }
        }
        Ok(())
    }

    fn overflow_chain(&mut self, leaf: u32, len: u32, first: u32) -> Result<()> {
        let geo = self.store.geo;
        let len = len as usize;
        if len > MAX_VALUE_LEN || len == 0 {
            return Err(geo.corrupt(leaf, format!("overflow value of {len} bytes")));
        }
        let cap = geo.overflow_capacity();
        let mut left = len;
        let mut pgno = first;
        while left > 0 {
            let p = self.visit(pgno, PageType::Overflow)?;
            let want = left.min(cap);
            if page::link_b(&p) as usize != want {
                return Err(geo.corrupt(
                    pgno,
                    format!("overflow page holds {}, expected {want}", page::link_b(&p)),
                ));
            }
            left -= want;
            pgno = page::link_a(&p);
            if (left > 0) == (pgno == 0) {
                return Err(geo.corrupt(pgno, "overflow chain length disagrees with the value"));
            }
        }
        Ok(())
    }

    fn free_list(&mut self) -> Result<()> {
        let geo = self.store.geo;
        let mut pgno = self.st.free_head;
        let mut count = 0u32;
        while pgno != 0 {
            if count >= self.st.free_count {
                return Err(geo.corrupt(pgno, "free list longer than its count"));
            }
            let p = self.visit(pgno, PageType::Free)?;
            pgno = page::link_a(&p);
            count += 1;
        }
        if count != self.st.free_count {
            return Err(geo.corrupt(
                0,
                format!(
                    "free list has {count} pages, the header says {}",
                    self.st.free_count
                ),
            ));
        }
        Ok(())
    }
}
