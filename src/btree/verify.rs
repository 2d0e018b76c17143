//! `verify()`: walks every page and checks every invariant the tree relies on.
//!
//! - every page passes its check: checksum (pages clean in the pool are read from storage; dirty pages,
//!   whose checksum is set when they are written, are checked structurally), format, type, LSN;
//! - keys are strictly ascending within a page and across leaves (checked on the in-order walk from the
//!   root: there are no sibling links), and every key of a subtree lies within
//!   the fence keys its parent's separators give it (`lower ≤ key < upper`);
//! - every leaf is at the same depth (the header's height), no non-root page is empty;
//! - overflow chains (of values, and of long keys and separators) have exactly the pages their length
//!   implies;
//! - no page is reached twice (which also catches cycles: the walk is bounded by the page count), the free
//!   and every page is either reachable or accounted for exactly once by the allocator (free, waiting for
//!   the next header, or holding the free list), so nothing leaks.

use crate::engine::{LSM_MAX_KEY_LEN, MAX_VALUE_LEN};
use crate::error::Result;
use crate::stats::VerifyReport;
use crate::storage::ReadPurpose;

use super::page::{self, InternalNode, LeafNode, PageType, StoredKey, StoredValue};
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
    /// Marks `pgno` accounted for; `twice` says what it means if it already was.
    fn mark(&mut self, pgno: u32, twice: &str) -> Result<()> {
        let geo = self.store.geo;
        let slot = self
            .seen
            .get_mut(pgno as usize)
            .filter(|_| pgno >= 2)
            .ok_or_else(|| geo.corrupt(pgno, "page number out of range"))?;
        if *slot {
            return Err(geo.corrupt(pgno, twice));
        }
        *slot = true;
        Ok(())
    }

    fn visit(&mut self, pgno: u32, expect: PageType) -> Result<Vec<u8>> {
        let geo = self.store.geo;
        self.mark(pgno, "page reached twice (a cycle, or a page used twice)")?;
        let bytes = match self.store.pool.dirty_copy(pgno) {
            Some(b) => {
                page::check_structure(&b, pgno, self.st.version, &geo)?;
                b
            }
            None => self.store.read_checked(pgno, ReadPurpose::Verify)?,
        };
        self.report.blocks += 1;
        self.report.bytes += bytes.len() as u64;
        let kind = page::page_type(&bytes);
        if kind != Some(expect) {
            return Err(geo.corrupt(
                pgno,
                format!(
                    "expected a {expect} page, found {}",
                    page::describe_type(kind)
                ),
            ));
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
                let mut seps: Vec<Vec<u8>> = Vec::with_capacity(node.cells.len());
                for (i, (k, _)) in node.cells.iter().enumerate() {
                    let k = self.key(pgno, k)?;
                    if !fence_ok(&k) {
                        return Err(
                            geo.corrupt(pgno, format!("separator {i} outside the fence keys"))
                        );
                    }
                    if seps.last().is_some_and(|prev| *prev >= k) {
                        return Err(geo.corrupt(pgno, format!("separator {i} out of order")));
                    }
                    seps.push(k);
                }
                // Children pushed right to left, so leaves are met in key order.
                let n = node.cells.len();
                for i in (0..=n).rev() {
                    let child = node.child(i).unwrap_or(0);
                    let clo = if i == 0 {
                        lo.clone()
                    } else {
                        seps.get(i - 1).cloned()
                    };
                    let chi = if i == n {
                        hi.clone()
                    } else {
                        seps.get(i).cloned()
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
                    let key = self.key(pgno, &c.key)?;
                    if !fence_ok(&key) {
                        return Err(geo.corrupt(pgno, "key outside the fence keys"));
                    }
                    if last_key.as_ref().is_some_and(|l| *l >= key) {
                        return Err(geo.corrupt(pgno, "keys out of order"));
                    }
                    last_key = Some(key);
                    if let StoredValue::Overflow { len, first } = c.value {
                        self.overflow_chain(pgno, len, first)?;
                    }
                }
                self.report.entries += node.cells.len() as u64;
            }
        }
        Ok(())
    }

    /// The whole key a cell of page `owner` stores, visiting its overflow chain if it has one.
    fn key(&mut self, owner: u32, k: &StoredKey) -> Result<Vec<u8>> {
        let StoredKey::Overflow { prefix, len, first } = k else {
            return Ok(k.as_ref().inline_bytes().to_vec());
        };
        let geo = self.store.geo;
        let len = *len as usize;
        let rest = len
            .checked_sub(prefix.len())
            .filter(|r| *r > 0 && len <= LSM_MAX_KEY_LEN)
            .ok_or_else(|| geo.corrupt(owner, format!("overflow key of {len} bytes")))?;
        let mut key = Vec::with_capacity(len);
        key.extend_from_slice(prefix);
        self.chain(rest, *first, Some(&mut key))?;
        Ok(key)
    }

    fn overflow_chain(&mut self, leaf: u32, len: u32, first: u32) -> Result<()> {
        let len = len as usize;
        if len > MAX_VALUE_LEN || len == 0 {
            return Err(self
                .store
                .geo
                .corrupt(leaf, format!("overflow value of {len} bytes")));
        }
        self.chain(len, first, None)
    }

    /// Visits the chain of `len` bytes from `first`: every page once, each holding exactly what the
    /// length implies, the last linking to 0. Appends the data to `out` if given.
    fn chain(&mut self, len: usize, first: u32, mut out: Option<&mut Vec<u8>>) -> Result<()> {
        let geo = self.store.geo;
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
            if let Some(out) = out.as_deref_mut() {
                out.extend_from_slice(page::overflow_data(&p).unwrap_or_default());
            }
            left -= want;
            pgno = page::link_a(&p);
            if (left > 0) == (pgno == 0) {
                return Err(geo.corrupt(pgno, "overflow chain length disagrees with its length"));
            }
        }
        Ok(())
    }

    /// Accounts for the pages the tree does not reach: free, waiting for the next header, or holding the
    /// free list (each exactly once, and none reachable).
    fn free_list(&mut self) -> Result<()> {
        let space = &self.st.space;
        for pgno in space.unreachable_in_use() {
            self.mark(pgno, "page is both in use and free (or free twice)")?;
        }
        Ok(())
    }
}
