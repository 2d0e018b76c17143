//! The tree's shape and its read path: descent, point lookup, values in overflow chains, and runs of
//! entries from either end for cursors. The writer's side is in [`super::writer`].
//!
//! Leaves have no sibling links: a scan keeps the path of internal pages it descended (page, child index,
//! separator count per level) and moves to the next (previous) leaf by going up that path to the deepest
//! level with a child right (left) of the one taken and down that child's leftmost (rightmost) edge.
//!
//! Every loop over on-disk pointers is bounded: a descent follows exactly `height` internal levels and
//! checks each page's type against its level; a move to a neighbouring leaf re-reads at most `height`
//! internal pages, and a run visits at most `page_count` leaves and requires key order across them;
//! overflow chains (of values and of long keys) stop at the page count their length implies, and a key
//! comparison reads a key's chain only when the inline prefix ties.

use std::cmp::Ordering;
use std::ops::Bound;

use bytes::Bytes;

use crate::engine::{KvPair, LSM_MAX_KEY_LEN, MAX_VALUE_LEN};
use crate::error::Result;
use crate::storage::ReadPurpose;

use super::overlay::Overlay;
use super::page::{self, KeyRef, PageType, ValueRef};
use super::store::{PageStore, Tally};

/// The tree's shape and the state readers share, behind the tree latch (readers shared, the writer
/// exclusive while it applies one batch).
#[derive(Debug)]
pub(crate) struct TreeState {
    pub root: u32,
    pub height: u32,
    pub page_count: u32,
    /// Which pages are free, fresh, or wait for the next header (see [`super::space`]).
    pub space: super::space::Space,
    /// The last batch applied (its LSN).
    pub version: u64,
    /// Prior values of keys written while a snapshot older than the write was live.
    pub overlay: Overlay,
    /// Snapshots at or below this version were released to bound the overlay: `SnapshotTooOld`.
    pub too_old_through: Option<u64>,
    /// Set by `close`: every later read is `Closed`.
    pub closed: bool,
    /// Set when a batch failed part-way (a damaged page met by the writer, an I/O error): the tree may hold
    /// part of a batch, so reads fail with `Poisoned` rather than show it.
    pub torn: Option<String>,
}

/// The internal pages above a leaf, root first: page, index of the child taken, separator count.
type Path = Vec<(u32, usize, usize)>;

/// Where a descent goes.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Target<'a> {
    /// The leaf whose key range holds the key.
    Key(&'a [u8]),
    /// The leftmost leaf.
    First,
    /// The rightmost leaf.
    Last,
}

/// A cursor run's entries, built in one buffer: a run allocates once for its bytes, and each key and
/// value it yields is a slice of that buffer, not an allocation of its own.
#[derive(Default)]
struct RunBuf {
    bytes: Vec<u8>,
    /// Per entry: where its key starts, where its value starts (the key's end), where its value ends.
    spans: Vec<[usize; 3]>,
}

impl RunBuf {
    fn last_key(&self) -> Option<&[u8]> {
        self.spans.last().and_then(|s| self.bytes.get(s[0]..s[1]))
    }

    fn finish(self) -> Vec<KvPair> {
        let b = Bytes::from(self.bytes);
        self.spans
            .iter()
            .map(|s| (b.slice(s[0]..s[1]), b.slice(s[1]..s[2])))
            .collect()
    }
}

/// A read of the tree under the shared latch.
pub(crate) struct Reader<'a> {
    pub store: &'a PageStore,
    pub state: &'a TreeState,
    pub purpose: ReadPurpose,
    pub tally: Tally,
    /// Runs leave values empty and never read overflow chains of values (keys-only iteration).
    pub skip_values: bool,
    /// When set, the pages of the latest descent stay pinned here until the next one (`multi_get`:
    /// consecutive keys in key order share them, and the pool cannot evict them in between).
    pub pins: Option<Vec<super::pool::PageRef>>,
}

impl<'a> Reader<'a> {
    /// A reader of `state` counting reads as `purpose`.
    pub fn new(store: &'a PageStore, state: &'a TreeState, purpose: ReadPurpose) -> Self {
        Reader {
            store,
            state,
            purpose,
            tally: Tally::default(),
            skip_values: false,
            pins: None,
        }
    }

    fn fetch(&mut self, pgno: u32, expect: PageType) -> Result<super::pool::PageRef> {
        let f = self
            .store
            .fetch(pgno, self.state.page_count, self.purpose)?;
        let kind = page::page_type(&f.page.read());
        self.tally.count(kind, f.hit);
        if kind != Some(expect) {
            return Err(self.store.geo.corrupt(
                pgno,
                format!(
                    "expected a {expect} page, found {}",
                    page::describe_type(kind)
                ),
            ));
        }
        if let Some(pins) = &mut self.pins
            && expect != PageType::Overflow
        {
            pins.push(std::sync::Arc::clone(&f.page));
        }
        Ok(f.page)
    }

    /// The leaf `target` leads to.
    ///
    /// # Errors
    /// `Corruption` (a page of the wrong type at a level, a pointer out of range), `Io`.
    pub fn descend(&mut self, target: Target<'_>) -> Result<u32> {
        let geo = self.store.geo;
        // The previous descent's pages stay pinned until this one has fetched its own (hits, most of
        // them, for a key near the previous one).
        let previous = self.pins.as_mut().map(std::mem::take);
        let mut pgno = self.state.root;
        for _ in 0..self.state.height {
            let frame = self.fetch(pgno, PageType::Internal)?;
            let p = frame.read();
            pgno = match target {
                Target::Key(k) => {
                    page::internal_child_for(&p, pgno, &geo, &mut |s| self.cmp_key(s, k))?.1
                }
                Target::First => page::link_a(&p),
                Target::Last => page::internal_child(&p, page::cell_count(&p), pgno, &geo)?,
            };
        }
        drop(previous);
        Ok(pgno)
    }

    /// Brings the pages on the path to `key`'s leaf into the pool (the writer's warm-up under the shared
    /// latch, so page reads do not happen while it holds the latch exclusively).
    ///
    /// # Errors
    /// `Corruption`, `Io`.
    pub fn warm(&mut self, key: &[u8]) -> Result<()> {
        let leaf = self.descend(Target::Key(key))?;
        self.fetch(leaf, PageType::Leaf).map(drop)
    }

    /// An estimate of the entries in the tree (the overlay aside): exact for a tree of one leaf; otherwise
    /// the leaves (counted by reading every internal page) times the mean cell count of up to
    /// `SAMPLE` leaves spread evenly across them.
    ///
    /// # Errors
    /// `Corruption`, `Io`.
    pub fn estimate_len(&mut self) -> Result<u64> {
        const SAMPLE: usize = 8;
        let geo = self.store.geo;
        let mut level = vec![self.state.root];
        for _ in 0..self.state.height {
            let mut next = Vec::new();
            for pgno in level {
                let frame = self.fetch(pgno, PageType::Internal)?;
                let p = frame.read();
                for i in 0..=page::cell_count(&p) {
                    next.push(page::internal_child(&p, i, pgno, &geo)?);
                }
                if next.len() > self.state.page_count as usize {
                    return Err(geo.corrupt(pgno, "more children than the file has pages"));
                }
            }
            level = next;
        }
        let leaves = level.len();
        let step = leaves.div_ceil(SAMPLE).max(1);
        let mut sampled = 0u64;
        let mut cells = 0u64;
        for &pgno in level.iter().step_by(step) {
            let frame = self.fetch(pgno, PageType::Leaf)?;
            cells += page::cell_count(&frame.read()) as u64;
            sampled += 1;
        }
        if sampled == 0 {
            return Ok(0);
        }
        Ok((cells * leaves as u64).div_ceil(sampled))
    }

    /// The value of `key`.
    ///
    /// # Errors
    /// `Corruption`, `Io`.
    pub fn get(&mut self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let leaf = self.descend(Target::Key(key))?;
        let frame = self.fetch(leaf, PageType::Leaf)?;
        let p = frame.read();
        let geo = self.store.geo;
        match page::leaf_search(&p, leaf, &geo, &mut |s| self.cmp_key(s, key))? {
            Ok(i) => {
                let cell = page::leaf_cell(&p, i, leaf, &self.store.geo)?;
                Ok(Some(self.value(cell.value)?))
            }
            Err(_) => Ok(None),
        }
    }

    /// Appends the whole key `k` stands for to `out`.
    fn key_into(&mut self, k: KeyRef<'_>, out: &mut Vec<u8>) -> Result<()> {
        match k {
            KeyRef::Inline(b) => out.extend_from_slice(b),
            KeyRef::Overflow { .. } => out.extend_from_slice(&self.full_key(k)?),
        }
        Ok(())
    }

    /// Appends a run's value to `out` (nothing when the run yields keys only).
    fn value_into(&mut self, v: ValueRef<'_>, out: &mut Vec<u8>) -> Result<()> {
        match v {
            _ if self.skip_values => {}
            ValueRef::Inline(b) => out.extend_from_slice(b),
            ValueRef::Overflow { len, first } => {
                out.extend_from_slice(&self.overflow_value(len, first)?);
            }
        }
        Ok(())
    }

    /// The bytes of a stored value: copied from the cell, or read along its overflow chain.
    ///
    /// # Errors
    /// `Corruption` if the chain is shorter or longer than the length says or holds a wrong page; `Io`.
    pub fn value(&mut self, v: ValueRef<'_>) -> Result<Vec<u8>> {
        match v {
            ValueRef::Inline(b) => Ok(b.to_vec()),
            ValueRef::Overflow { len, first } => self.overflow_value(len, first),
        }
    }

    fn overflow_value(&mut self, len: u32, first: u32) -> Result<Vec<u8>> {
        let len = len as usize;
        if len > MAX_VALUE_LEN {
            return Err(self.store.geo.corrupt(
                first,
                format!("overflow value of {len} bytes is over the limit"),
            ));
        }
        let mut out = Vec::with_capacity(len);
        self.walk_chain(len, first, &mut |data| {
            out.extend_from_slice(data);
            true
        })?;
        Ok(out)
    }

    /// Reads the overflow chain of `len` bytes from page `first`, handing each page's data to `each`
    /// until it returns false. Every page read must be an overflow page holding exactly what the length
    /// implies (full pages, then the rest), and the chain must end exactly at the length.
    ///
    /// # Errors
    /// `Corruption`, `Io`.
    fn walk_chain(
        &mut self,
        len: usize,
        first: u32,
        each: &mut dyn FnMut(&[u8]) -> bool,
    ) -> Result<()> {
        let geo = self.store.geo;
        let mut done = 0;
        let mut pgno = first;
        while done < len {
            let frame = self.fetch(pgno, PageType::Overflow)?;
            let p = frame.read();
            let data = page::overflow_data(&p)
                .ok_or_else(|| geo.corrupt(pgno, "overflow data runs past the page"))?;
            let want = (len - done).min(geo.overflow_capacity());
            if data.len() != want {
                return Err(geo.corrupt(
                    pgno,
                    format!("overflow page holds {} bytes, expected {want}", data.len()),
                ));
            }
            done += want;
            let next = page::link_a(&p);
            if (done < len) == (next == 0) {
                return Err(geo.corrupt(pgno, "overflow chain length disagrees with its length"));
            }
            if !each(data) {
                return Ok(());
            }
            pgno = next;
        }
        Ok(())
    }

    /// The whole of a stored key: the cell's bytes, plus its overflow chain if it has one.
    ///
    /// # Errors
    /// `Corruption` (a bad chain, a length over the key limit), `Io`.
    pub fn full_key(&mut self, k: KeyRef<'_>) -> Result<Vec<u8>> {
        match k {
            KeyRef::Inline(b) => Ok(b.to_vec()),
            KeyRef::Overflow { prefix, len, first } => {
                let (len, rest) = self.key_chain_len(prefix, len, first)?;
                let mut out = Vec::with_capacity(len);
                out.extend_from_slice(prefix);
                self.walk_chain(rest, first, &mut |data| {
                    out.extend_from_slice(data);
                    true
                })?;
                Ok(out)
            }
        }
    }

    /// The length of an overflow key and of its chain (the bytes after the prefix).
    fn key_chain_len(&self, prefix: &[u8], len: u32, first: u32) -> Result<(usize, usize)> {
        let len = len as usize;
        match len.checked_sub(prefix.len()) {
            Some(rest) if rest > 0 && len <= LSM_MAX_KEY_LEN => Ok((len, rest)),
            _ => Err(self.store.geo.corrupt(
                first,
                format!(
                    "overflow key of {len} bytes with a {}-byte prefix",
                    prefix.len()
                ),
            )),
        }
    }

    /// How stored key `k` compares with `key`: by the cell's bytes when they decide, else by streaming
    /// the overflow chain against the rest of `key` (stopping at the first difference).
    ///
    /// # Errors
    /// `Corruption`, `Io`.
    pub fn cmp_key(&mut self, k: KeyRef<'_>, key: &[u8]) -> Result<Ordering> {
        if let Some(o) = page::prefix_cmp(k, key) {
            return Ok(o);
        }
        let KeyRef::Overflow { prefix, len, first } = k else {
            return Ok(Ordering::Equal);
        };
        let (_, rest_len) = self.key_chain_len(prefix, len, first)?;
        let mut rest = key.get(prefix.len()..).unwrap_or_default();
        let mut order = Ordering::Equal;
        self.walk_chain(rest_len, first, &mut |data| {
            let m = data.len().min(rest.len());
            order = data.get(..m).cmp(&rest.get(..m));
            if order != Ordering::Equal {
                return false;
            }
            if m < data.len() {
                // `key` ended inside the stored key: the stored key is longer.
                order = Ordering::Greater;
                return false;
            }
            rest = rest.get(m..).unwrap_or_default();
            true
        })?;
        if order == Ordering::Equal && !rest.is_empty() {
            order = Ordering::Less;
        }
        Ok(order)
    }

    /// Like [`Reader::descend`], recording the path: for each internal level, root first, the page, the
    /// index of the child taken and the page's separator count. Scans move to a neighbouring leaf along it
    /// (as LMDB's cursor stack does): there are no sibling links.
    ///
    /// # Errors
    /// As [`Reader::descend`].
    fn descend_path(&mut self, target: Target<'_>) -> Result<(Path, u32)> {
        let geo = self.store.geo;
        let mut path = Vec::with_capacity(self.state.height as usize);
        let mut pgno = self.state.root;
        for _ in 0..self.state.height {
            let frame = self.fetch(pgno, PageType::Internal)?;
            let p = frame.read();
            let n = page::cell_count(&p);
            let (idx, child) = match target {
                Target::Key(k) => {
                    page::internal_child_for(&p, pgno, &geo, &mut |s| self.cmp_key(s, k))?
                }
                Target::First => (0, page::link_a(&p)),
                Target::Last => (n, page::internal_child(&p, n, pgno, &geo)?),
            };
            path.push((pgno, idx, n));
            pgno = child;
        }
        Ok((path, pgno))
    }

    /// The leaf after (`forward`) or before the one `path` leads to, updating `path`; `None` at the end of
    /// the tree. Goes up to the deepest level with a child beyond the one taken, takes it, and descends
    /// along its leftmost (rightmost) edge: at most `height` pages, the levels still checked by type.
    ///
    /// # Errors
    /// `Corruption`, `Io`.
    fn step_leaf(&mut self, path: &mut Path, forward: bool) -> Result<Option<u32>> {
        let geo = self.store.geo;
        let Some(level) = path
            .iter()
            .rposition(|&(_, idx, n)| if forward { idx < n } else { idx > 0 })
        else {
            return Ok(None);
        };
        path.truncate(level + 1);
        let Some(entry) = path.last_mut() else {
            return Ok(None);
        };
        entry.1 = if forward { entry.1 + 1 } else { entry.1 - 1 };
        let (pgno, idx) = (entry.0, entry.1);
        let mut child = {
            let frame = self.fetch(pgno, PageType::Internal)?;
            let p = frame.read();
            page::internal_child(&p, idx, pgno, &geo)?
        };
        while path.len() < self.state.height as usize {
            let frame = self.fetch(child, PageType::Internal)?;
            let p = frame.read();
            let n = page::cell_count(&p);
            let i = if forward { 0 } else { n };
            path.push((child, i, n));
            child = page::internal_child(&p, i, child, &geo)?;
        }
        Ok(Some(child))
    }

    /// Up to `max` entries (and about `max_bytes`) of the tree, ascending from `lower`, stopping past
    /// `upper`. Returns them and whether the range is exhausted.
    ///
    /// # Errors
    /// `Corruption`, `Io`.
    pub fn run_forward(
        &mut self,
        lower: Bound<&[u8]>,
        upper: Bound<&[u8]>,
        max: usize,
        max_bytes: usize,
    ) -> Result<(Vec<KvPair>, bool)> {
        let geo = self.store.geo;
        let (mut path, mut leaf, mut pos) = match lower {
            Bound::Unbounded => {
                let (path, leaf) = self.descend_path(Target::First)?;
                (path, leaf, 0)
            }
            Bound::Included(k) | Bound::Excluded(k) => {
                let (path, leaf) = self.descend_path(Target::Key(k))?;
                let frame = self.fetch(leaf, PageType::Leaf)?;
                let pos = match page::leaf_search(&frame.read(), leaf, &geo, &mut |s| {
                    self.cmp_key(s, k)
                })? {
                    Ok(i) if matches!(lower, Bound::Excluded(_)) => i + 1,
                    Ok(i) | Err(i) => i,
                };
                (path, leaf, pos)
            }
        };
        let mut out = RunBuf::default();
        let mut hops = 0u32;
        loop {
            let frame = self.fetch(leaf, PageType::Leaf)?;
            let p = frame.read();
            let n = page::cell_count(&p);
            let crossed = pos == 0 && !out.spans.is_empty();
            while pos < n {
                let cell = page::leaf_cell(&p, pos, leaf, &geo)?;
                let start = out.bytes.len();
                self.key_into(cell.key, &mut out.bytes)?;
                let key = out.bytes.get(start..).unwrap_or_default();
                if crossed && pos == 0 && out.last_key().is_some_and(|last| key <= last) {
                    return Err(geo.corrupt(leaf, "keys out of order across leaves"));
                }
                if !below(key, upper) {
                    out.bytes.truncate(start);
                    return Ok((out.finish(), true));
                }
                let key_end = out.bytes.len();
                self.value_into(cell.value, &mut out.bytes)?;
                out.spans.push([start, key_end, out.bytes.len()]);
                pos += 1;
                if out.spans.len() >= max || out.bytes.len() >= max_bytes {
                    let done = pos >= n && !path.iter().any(|&(_, idx, n)| idx < n);
                    return Ok((out.finish(), done));
                }
            }
            drop(p);
            hops += 1;
            if hops > self.state.page_count {
                return Err(geo.corrupt(leaf, "scan visited more leaves than the file has pages"));
            }
            match self.step_leaf(&mut path, true)? {
                None => return Ok((out.finish(), true)),
                Some(next) => {
                    leaf = next;
                    pos = 0;
                }
            }
        }
    }

    /// Like [`Reader::run_forward`], descending from `upper` towards `lower`.
    ///
    /// # Errors
    /// `Corruption`, `Io`.
    pub fn run_backward(
        &mut self,
        lower: Bound<&[u8]>,
        upper: Bound<&[u8]>,
        max: usize,
        max_bytes: usize,
    ) -> Result<(Vec<KvPair>, bool)> {
        let geo = self.store.geo;
        // `end` = number of cells of the leaf at or below the bound; cells `..end` remain.
        let (mut path, mut leaf, mut end) = match upper {
            Bound::Unbounded => {
                let (path, leaf) = self.descend_path(Target::Last)?;
                let frame = self.fetch(leaf, PageType::Leaf)?;
                let n = page::cell_count(&frame.read());
                (path, leaf, n)
            }
            Bound::Included(k) | Bound::Excluded(k) => {
                let (path, leaf) = self.descend_path(Target::Key(k))?;
                let frame = self.fetch(leaf, PageType::Leaf)?;
                let end = match page::leaf_search(&frame.read(), leaf, &geo, &mut |s| {
                    self.cmp_key(s, k)
                })? {
                    Ok(i) if matches!(upper, Bound::Included(_)) => i + 1,
                    Ok(i) | Err(i) => i,
                };
                (path, leaf, end)
            }
        };
        let mut out = RunBuf::default();
        let mut hops = 0u32;
        let mut first_page = true;
        loop {
            let frame = self.fetch(leaf, PageType::Leaf)?;
            let p = frame.read();
            let crossed = !first_page && !out.spans.is_empty();
            if !first_page {
                end = page::cell_count(&p);
            }
            let top = end;
            first_page = false;
            while end > 0 {
                let cell = page::leaf_cell(&p, end - 1, leaf, &geo)?;
                let start = out.bytes.len();
                self.key_into(cell.key, &mut out.bytes)?;
                let key = out.bytes.get(start..).unwrap_or_default();
                if crossed && end == top && out.last_key().is_some_and(|last| key >= last) {
                    return Err(geo.corrupt(leaf, "keys out of order across leaves"));
                }
                if !above(key, lower) {
                    out.bytes.truncate(start);
                    return Ok((out.finish(), true));
                }
                let key_end = out.bytes.len();
                self.value_into(cell.value, &mut out.bytes)?;
                out.spans.push([start, key_end, out.bytes.len()]);
                end -= 1;
                if out.spans.len() >= max || out.bytes.len() >= max_bytes {
                    let done = end == 0 && !path.iter().any(|&(_, idx, _)| idx > 0);
                    return Ok((out.finish(), done));
                }
            }
            drop(p);
            hops += 1;
            if hops > self.state.page_count {
                return Err(geo.corrupt(leaf, "scan visited more leaves than the file has pages"));
            }
            match self.step_leaf(&mut path, false)? {
                None => return Ok((out.finish(), true)),
                Some(prev) => leaf = prev,
            }
        }
    }
}

/// True if `key` is within `upper`.
pub(crate) fn below(key: &[u8], upper: Bound<&[u8]>) -> bool {
    match upper {
        Bound::Included(u) => key <= u,
        Bound::Excluded(u) => key < u,
        Bound::Unbounded => true,
    }
}

/// True if `key` is within `lower`.
pub(crate) fn above(key: &[u8], lower: Bound<&[u8]>) -> bool {
    match lower {
        Bound::Included(l) => key >= l,
        Bound::Excluded(l) => key > l,
        Bound::Unbounded => true,
    }
}
