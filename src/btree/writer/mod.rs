//! The writer's side of the tree: insert and delete with splits by bytes that propagate to the root,
//! merge or redistribution below 1/4 fill, overflow chains and the free list.
//!
//! The writer runs alone, under the exclusive tree latch, for one batch at a time. It descends reading
//! pages in place (recording the path), decodes only the pages it changes, edits the decoded node and
//! re-encodes it into the pool as a dirty page. [`Writer::settle`] then restores the page invariants
//! bottom-up: a node over a page splits and pushes a separator into its parent (a new root if there is
//! none); a non-root node under a quarter of the usable bytes is combined with an adjacent sibling under the
//! same parent — merged if the two fit in one page, otherwise redistributed by bytes with a new separator;
//! an internal root left with a single child is replaced by it.

use crate::error::{Error, Result};
use crate::storage::ReadPurpose;

use super::header::MAX_HEIGHT;
use super::page::{
    self, InternalNode, LeafCell, LeafNode, Node, PAGE_HEADER_LEN, PageType, StoredKey,
    StoredValue, ValueRef,
};
use super::pool::PageRef;
use super::store::PageStore;
use super::tree::{Reader, TreeState};

mod range;

/// Applies operations to the tree as batch `lsn`.
pub(crate) struct Writer<'a> {
    store: &'a PageStore,
    st: &'a mut TreeState,
    lsn: u64,
    /// Record prior values in the overlay (a snapshot older than this batch is live).
    record: bool,
    /// The pending leaf split comes from appending past the last key of the rightmost leaf: split there
    /// (the left page stays full) rather than in the middle, so ascending loads fill their pages.
    appending: bool,
    /// After a put into the rightmost leaf that changed the tree's shape nowhere: the (fresh) path to that
    /// leaf and the key put. A later key above it in the same batch belongs to the same leaf (it is above
    /// every separator on the rightmost path), so ascending batches skip the descent.
    rightmost: Option<(WritePath, u32, Vec<u8>)>,
}

fn bug(what: &str) -> Error {
    Error::corruption(
        page::DATA_FILE,
        None,
        format!("internal inconsistency: {what}"),
    )
}

/// The split index of items with these sizes: the first index where the left part reaches half the bytes,
/// clamped to `lo..=hi`.
fn split_point(sizes: &[usize], lo: usize, hi: usize) -> usize {
    let total: usize = sizes.iter().sum();
    let mut acc = 0;
    let mut m = sizes.len();
    for (i, s) in sizes.iter().enumerate() {
        acc += s;
        if acc * 2 >= total {
            m = i + 1;
            break;
        }
    }
    m.clamp(lo, hi.max(lo))
}

/// The internal pages from the root down, each with the index of the child taken.
type WritePath = Vec<(u32, usize)>;

/// What [`Writer::find_in_leaf`] found.
struct FoundInLeaf {
    /// The leaf, pinned.
    frame: PageRef,
    /// The key's index, or where it would go.
    pos: std::result::Result<usize, usize>,
    /// The key's stored form and value, if present.
    old: Option<(StoredKey, StoredValue)>,
}

impl<'a> Writer<'a> {
    /// A writer applying batch `lsn` to `st`.
    pub fn new(store: &'a PageStore, st: &'a mut TreeState, lsn: u64, record: bool) -> Self {
        Writer {
            store,
            st,
            lsn,
            record,
            appending: false,
            rightmost: None,
        }
    }

    fn geo(&self) -> page::Geometry {
        self.store.geo
    }

    // ----- page access -------------------------------------------------------------------------------

    fn load(&self, pgno: u32) -> Result<Node> {
        let f = self
            .store
            .fetch(pgno, self.st.page_count, ReadPurpose::Compaction)?;
        let p = f.page.read();
        let geo = self.geo();
        match page::page_type(&p) {
            Some(PageType::Leaf) => Ok(Node::Leaf(LeafNode::decode(&p, pgno, &geo)?)),
            Some(PageType::Internal) => Ok(Node::Internal(InternalNode::decode(&p, pgno, &geo)?)),
            other => Err(geo.corrupt(
                pgno,
                format!(
                    "expected a leaf or internal page, found {}",
                    page::describe_type(other)
                ),
            )),
        }
    }

    fn load_leaf(&self, pgno: u32) -> Result<LeafNode> {
        match self.load(pgno)? {
            Node::Leaf(l) => Ok(l),
            Node::Internal(_) => Err(self
                .geo()
                .corrupt(pgno, "expected a leaf, found an internal page")),
        }
    }

    fn load_internal(&self, pgno: u32) -> Result<InternalNode> {
        match self.load(pgno)? {
            Node::Internal(n) => Ok(n),
            Node::Leaf(_) => Err(self
                .geo()
                .corrupt(pgno, "expected an internal page, found a leaf")),
        }
    }

    fn store_node(&self, pgno: u32, node: &Node) -> Result<()> {
        if node.encoded_len() > self.geo().page_size {
            return Err(bug("a node larger than a page was stored"));
        }
        self.store
            .pool
            .put_dirty(pgno, node.encode(self.lsn, &self.geo()));
        Ok(())
    }

    /// A fresh page for new content (see [`super::space`]): the lowest free page, or a new page at the end
    /// of the file. The caller writes it.
    fn alloc(&mut self) -> Result<u32> {
        self.st
            .space
            .alloc(&mut self.st.page_count)
            .ok_or_else(|| Error::invalid("the data file has 2^32 pages"))
    }

    /// Frees `pgno`: a fresh page at once (its copy in the pool is dropped, dirty or not), a durable one
    /// once the next header is durable.
    fn free(&mut self, pgno: u32) -> Result<()> {
        let garbage = self.st.space.free(pgno);
        self.store.pool.discard(pgno, garbage);
        Ok(())
    }

    /// Moves durable page `pgno` to a fresh page, copying its bytes; returns the new page. The caller points
    /// the parent (or the root) at it.
    fn relocate(&mut self, pgno: u32) -> Result<u32> {
        let mut bytes = self
            .store
            .fetch(pgno, self.st.page_count, ReadPurpose::Compaction)?
            .page
            .read()
            .to_vec();
        page::put_at(&mut bytes, 8, &self.lsn.to_le_bytes());
        let new = self.alloc()?;
        self.store.pool.put_dirty(new, bytes);
        self.free(pgno)?;
        Ok(new)
    }

    /// Makes every page from the root to `leaf` along `path` fresh, top-down: a durable one is relocated
    /// and its parent (fresh by then) or the root pointer updated. Returns the leaf's page; `path` is
    /// updated in place.
    fn make_writable(&mut self, path: &mut WritePath, leaf: u32) -> Result<u32> {
        let geo = self.geo();
        let mut leaf = leaf;
        for i in 0..=path.len() {
            let pgno = match path.get(i) {
                Some(&(p, _)) => p,
                None => leaf,
            };
            if self.st.space.is_fresh(pgno) {
                continue;
            }
            let new = self.relocate(pgno)?;
            match i.checked_sub(1).and_then(|j| path.get(j)) {
                None => self.st.root = new,
                Some(&(parent, idx)) => {
                    let f =
                        self.store
                            .fetch(parent, self.st.page_count, ReadPurpose::Compaction)?;
                    page::set_internal_child(&mut f.page.write(), idx, new, parent, &geo)?;
                    self.store.pool.mark_dirty(&f.page);
                }
            }
            match path.get_mut(i) {
                Some(entry) => entry.0 = new,
                None => leaf = new,
            }
        }
        Ok(leaf)
    }

    /// Child `i` of the decoded `parent`, made fresh: a durable child gets a new page number (its old one is
    /// freed) and `parent` points to it. The caller stores the child's whole content there.
    fn writable_child(&mut self, parent: &mut InternalNode, i: usize) -> Result<u32> {
        let child = parent.child(i).ok_or_else(|| bug("child index"))?;
        if self.st.space.is_fresh(child) {
            return Ok(child);
        }
        let new = self.alloc()?;
        self.free(child)?;
        parent.set_child(i, new).ok_or_else(|| bug("child index"))?;
        Ok(new)
    }

    /// Moves tree pages at or above `target` to the lowest free pages: every internal page that is not
    /// fresh is relocated (there are few), then every leaf at or above `target`, its parent pointing at the
    /// copy. Overflow pages stay where they are. The old locations are freed once the next header is
    /// durable, so a checkpoint after the next one can drop the end of the file. Returns the pages moved.
    ///
    /// # Errors
    /// `Corruption`, `Io`: as a batch's, the caller poisons the handle.
    pub fn move_below(&mut self, target: u32) -> Result<u64> {
        let geo = self.geo();
        let mut moved = 0;
        if !self.st.space.is_fresh(self.st.root) {
            self.st.root = self.relocate(self.st.root)?;
            moved += 1;
        }
        let mut level = vec![self.st.root];
        for depth in (1..=self.st.height).rev() {
            let mut next = Vec::new();
            for &pgno in &level {
                let frame = self
                    .store
                    .fetch(pgno, self.st.page_count, ReadPurpose::Compaction)?
                    .page;
                let n = page::cell_count(&frame.read());
                for i in 0..=n {
                    let child = page::internal_child(&frame.read(), i, pgno, &geo)?;
                    let leaves = depth == 1;
                    let moves = if leaves {
                        child >= target
                    } else {
                        !self.st.space.is_fresh(child)
                    };
                    let child = if moves {
                        let new = self.relocate(child)?;
                        page::set_internal_child(&mut frame.write(), i, new, pgno, &geo)?;
                        self.store.pool.mark_dirty(&frame);
                        moved += 1;
                        new
                    } else {
                        child
                    };
                    if !leaves {
                        next.push(child);
                    }
                }
            }
            level = next;
        }
        Ok(moved)
    }

    // ----- values ------------------------------------------------------------------------------------

    fn write_value(&mut self, key: &StoredKey, value: &[u8]) -> Result<StoredValue> {
        let geo = self.geo();
        if page::inline_cell_size(key, value.len()) <= geo.max_inline_cell() {
            return Ok(StoredValue::Inline(value.to_vec()));
        }
        let len = u32::try_from(value.len()).map_err(|_| Error::invalid("value too large"))?;
        let first = self.write_chain(value)?;
        Ok(StoredValue::Overflow { len, first })
    }

    /// The stored form of `key`: whole if it is at most [`page::Geometry::max_inline_key`] bytes, else
    /// that many bytes inline and the rest in a new overflow chain.
    fn write_key(&mut self, key: &[u8]) -> Result<StoredKey> {
        let max = self.geo().max_inline_key();
        let (Some(prefix), Some(rest)) = (key.get(..max), key.get(max..)) else {
            return Ok(StoredKey::Inline(key.to_vec()));
        };
        if rest.is_empty() {
            return Ok(StoredKey::Inline(key.to_vec()));
        }
        let len = u32::try_from(key.len()).map_err(|_| Error::invalid("key too large"))?;
        let first = self.write_chain(rest)?;
        Ok(StoredKey::Overflow {
            prefix: prefix.to_vec(),
            len,
            first,
        })
    }

    /// Writes `data` (not empty) to a new overflow chain; returns its first page.
    fn write_chain(&mut self, data: &[u8]) -> Result<u32> {
        let geo = self.geo();
        let chunks: Vec<&[u8]> = data.chunks(geo.overflow_capacity()).collect();
        let mut pages = Vec::with_capacity(chunks.len());
        for _ in &chunks {
            pages.push(self.alloc()?);
        }
        for (i, (chunk, &pgno)) in chunks.iter().zip(&pages).enumerate() {
            let next = pages.get(i + 1).copied().unwrap_or(0);
            let bytes = page::encode_overflow(next, chunk, self.lsn, &geo);
            self.store.pool.put_dirty(pgno, bytes);
        }
        pages
            .first()
            .copied()
            .ok_or_else(|| bug("empty overflow chain"))
    }

    fn read_stored(&self, v: &StoredValue) -> Result<Vec<u8>> {
        let vref = match v {
            StoredValue::Inline(b) => return Ok(b.clone()),
            StoredValue::Overflow { len, first } => ValueRef::Overflow {
                len: *len,
                first: *first,
            },
        };
        Reader::new(self.store, self.st, ReadPurpose::Compaction).value(vref)
    }

    /// Frees the overflow chain of `v`, if it has one.
    fn free_value(&mut self, v: &StoredValue) -> Result<()> {
        let StoredValue::Overflow { len, first } = *v else {
            return Ok(());
        };
        self.free_chain(len as usize, first)
    }

    /// Frees the overflow chain of `k`, if it has one.
    fn free_key(&mut self, k: &StoredKey) -> Result<()> {
        let StoredKey::Overflow { prefix, len, first } = k else {
            return Ok(());
        };
        let rest = (*len as usize)
            .checked_sub(prefix.len())
            .filter(|r| *r > 0)
            .ok_or_else(|| {
                self.geo()
                    .corrupt(*first, "overflow key not longer than its prefix")
            })?;
        self.free_chain(rest, *first)
    }

    /// Frees the overflow chain of `len` bytes from `first`, checking each page's type and the length.
    fn free_chain(&mut self, len: usize, first: u32) -> Result<()> {
        let geo = self.geo();
        let pages = len.div_ceil(geo.overflow_capacity());
        let mut pgno = first;
        for _ in 0..pages {
            let f = self
                .store
                .fetch(pgno, self.st.page_count, ReadPurpose::Compaction)?;
            let next = {
                let p = f.page.read();
                if page::page_type(&p) != Some(PageType::Overflow) {
                    return Err(geo.corrupt(pgno, "overflow chain holds a page of another type"));
                }
                page::link_a(&p)
            };
            self.free(pgno)?;
            pgno = next;
        }
        if pgno != 0 {
            return Err(geo.corrupt(first, "overflow chain longer than its value"));
        }
        Ok(())
    }

    /// The whole key a stored key stands for.
    fn full_key(&self, k: &StoredKey) -> Result<Vec<u8>> {
        match k {
            StoredKey::Inline(b) => Ok(b.clone()),
            StoredKey::Overflow { .. } => {
                Reader::new(self.store, self.st, ReadPurpose::Compaction).full_key(k.as_ref())
            }
        }
    }

    /// The separator between two adjacent leaves whose last and first cells are `left` and `right`: the
    /// shortest prefix of the right key that is above the left key (as LevelDB's index keys), stored whole
    /// if short enough, else with an overflow chain of its own.
    fn separator(&mut self, left: &LeafCell, right: &LeafCell) -> Result<StoredKey> {
        let l = self.full_key(&left.key)?;
        let r = self.full_key(&right.key)?;
        if l >= r {
            return Err(bug("leaf keys out of order at a split"));
        }
        let common = l.iter().zip(&r).take_while(|(a, b)| a == b).count();
        let sep = r.get(..common + 1).unwrap_or(&r);
        self.write_key(sep)
    }

    fn note_prior(&mut self, key: &[u8], old: Option<&StoredValue>) -> Result<()> {
        if !self.record || self.st.overlay.has(key, self.lsn) {
            return Ok(());
        }
        let prior = old.map(|v| self.read_stored(v)).transpose()?;
        self.st.overlay.record(key, self.lsn, prior);
        Ok(())
    }

    // ----- operations --------------------------------------------------------------------------------

    /// The internal pages from the root to the leaf for `key`, each with the index of the child taken,
    /// the leaf, and whether it is the rightmost leaf (the last child taken at every level).
    fn descend_path(&self, key: &[u8]) -> Result<(WritePath, u32, bool)> {
        let geo = self.geo();
        let mut path = Vec::with_capacity(self.st.height as usize);
        let mut pgno = self.st.root;
        let mut rightmost = true;
        for _ in 0..self.st.height {
            let f = self
                .store
                .fetch(pgno, self.st.page_count, ReadPurpose::Compaction)?;
            let p = f.page.read();
            if page::page_type(&p) != Some(PageType::Internal) {
                return Err(geo.corrupt(pgno, "expected an internal page"));
            }
            let mut r = Reader::new(self.store, self.st, ReadPurpose::Compaction);
            let (idx, child) =
                page::internal_child_for(&p, pgno, &geo, &mut |s| r.cmp_key(s, key))?;
            rightmost &= idx == page::cell_count(&p);
            path.push((pgno, idx));
            pgno = child;
        }
        Ok((path, pgno, rightmost))
    }

    /// Sets `key` to `value`.
    ///
    /// The common case edits the leaf in place ([`page::put_cell_in_place`]); when its free space is too
    /// fragmented for that, the leaf is rebuilt by copying raw cells ([`page::leaf_rebuild`]); only a split
    /// goes through the decoded node and [`Writer::settle`]. The old value is noted for snapshots before the
    /// page changes.
    ///
    /// # Errors
    /// `Corruption`, `Io`: the tree may be partly changed, and the caller poisons the handle.
    pub fn put(&mut self, key: &[u8], value: &[u8]) -> Result<()> {
        let (mut path, leaf_pg, rightmost) = match self.rightmost.take() {
            Some((path, leaf, last)) if key > last.as_slice() => (path, leaf, true),
            _ => self.descend_path(key)?,
        };
        let leaf_pg = self.make_writable(&mut path, leaf_pg)?;
        let found = self.find_in_leaf(leaf_pg, key)?;
        self.note_prior(key, found.old.as_ref().map(|(_, v)| v))?;
        // A replaced key keeps its stored form (and overflow chain, if any).
        let stored_key = match &found.old {
            Some((k, old)) => {
                self.free_value(old)?;
                k.clone()
            }
            None => self.write_key(key)?,
        };
        let stored = self.write_value(&stored_key, value)?;
        let cell = page::encode_leaf_cell(&stored_key, &stored);
        let (at, replace) = match found.pos {
            Ok(i) => (i, true),
            Err(i) => (i, false),
        };
        {
            let mut p = found.frame.write();
            let fits = page::put_cell_in_place(&mut p, at, replace, &cell, self.lsn)
                || match page::leaf_rebuild(
                    &p,
                    leaf_pg,
                    at,
                    replace,
                    Some(&cell),
                    self.lsn,
                    &self.geo(),
                )? {
                    Some((bytes, _)) => {
                        *p = bytes.into_boxed_slice();
                        true
                    }
                    None => false,
                };
            drop(p);
            if fits {
                self.store.pool.mark_dirty(&found.frame);
                if rightmost {
                    self.rightmost = Some((path, leaf_pg, key.to_vec()));
                }
                return Ok(());
            }
        }
        let pos = found.pos;
        let mut leaf = self.load_leaf(leaf_pg)?;
        self.appending = false;
        match pos {
            Ok(i) => {
                leaf.cells
                    .get_mut(i)
                    .ok_or_else(|| bug("search index"))?
                    .value = stored;
            }
            Err(i) => {
                if i > leaf.cells.len() {
                    return Err(bug("search index"));
                }
                self.appending = i == leaf.cells.len() && rightmost;
                leaf.cells.insert(
                    i,
                    LeafCell {
                        key: stored_key,
                        value: stored,
                    },
                );
            }
        }
        self.settle(path, leaf_pg, Node::Leaf(leaf))
    }

    /// Removes `key` if present.
    ///
    /// # Errors
    /// As [`Writer::put`].
    pub fn delete(&mut self, key: &[u8]) -> Result<()> {
        self.rightmost = None;
        let (mut path, leaf_pg, _) = self.descend_path(key)?;
        let found = self.find_in_leaf(leaf_pg, key)?;
        if found.old.is_none() {
            return Ok(());
        }
        let writable = self.make_writable(&mut path, leaf_pg)?;
        let (found, leaf_pg) = if writable == leaf_pg {
            (found, leaf_pg)
        } else {
            (self.find_in_leaf(writable, key)?, writable)
        };
        let (Ok(i), Some((old_key, old))) = (found.pos, found.old) else {
            return Err(bug("a key vanished from its relocated leaf"));
        };
        self.note_prior(key, Some(&old))?;
        self.free_value(&old)?;
        self.free_key(&old_key)?;
        let (bytes, used) = {
            let p = found.frame.read();
            page::leaf_rebuild(&p, leaf_pg, i, true, None, self.lsn, &self.geo())?
                .ok_or_else(|| bug("a leaf grew by a delete"))?
        };
        if path.is_empty() || used - PAGE_HEADER_LEN >= self.geo().usable() / 4 {
            *found.frame.write() = bytes.into_boxed_slice();
            self.store.pool.mark_dirty(&found.frame);
            return Ok(());
        }
        let mut leaf = self.load_leaf(leaf_pg)?;
        if i >= leaf.cells.len() {
            return Err(bug("search index"));
        }
        leaf.cells.remove(i);
        self.settle(path, leaf_pg, Node::Leaf(leaf))
    }

    /// Finds `key` in leaf `pgno`: the pinned frame, the search result and the old value if the key is there.
    fn find_in_leaf(&self, pgno: u32, key: &[u8]) -> Result<FoundInLeaf> {
        let geo = self.geo();
        let f = self
            .store
            .fetch(pgno, self.st.page_count, ReadPurpose::Compaction)?;
        let (pos, old) = {
            let p = f.page.read();
            if page::page_type(&p) != Some(PageType::Leaf) {
                return Err(geo.corrupt(pgno, "expected a leaf"));
            }
            let mut r = Reader::new(self.store, self.st, ReadPurpose::Compaction);
            let pos = page::leaf_search(&p, pgno, &geo, &mut |s| r.cmp_key(s, key))?;
            let old = match pos {
                Ok(i) => {
                    let c = page::leaf_cell(&p, i, pgno, &geo)?;
                    Some((c.key.to_stored(), page::stored_value(c.value)))
                }
                Err(_) => None,
            };
            (pos, old)
        };
        Ok(FoundInLeaf {
            frame: f.page,
            pos,
            old,
        })
    }

    // ----- restoring the invariants ------------------------------------------------------------------

    fn underfull(&self, node: &Node) -> bool {
        node.encoded_len() - PAGE_HEADER_LEN < self.geo().usable() / 4
    }

    /// Stores `node` as page `pgno`, splitting, merging or redistributing up the `path` as needed.
    fn settle(&mut self, mut path: Vec<(u32, usize)>, mut pgno: u32, mut node: Node) -> Result<()> {
        loop {
            if node.encoded_len() > self.geo().page_size {
                let (sep, right_pg) = self.split(pgno, node)?;
                match path.pop() {
                    None => return self.new_root(pgno, sep, right_pg),
                    Some((ppg, idx)) => {
                        // Most splits add one cell to a parent with room for it: in place.
                        let f =
                            self.store
                                .fetch(ppg, self.st.page_count, ReadPurpose::Compaction)?;
                        let cell = page::encode_internal_cell(&sep, right_pg);
                        if page::put_cell_in_place(&mut f.page.write(), idx, false, &cell, self.lsn)
                        {
                            self.store.pool.mark_dirty(&f.page);
                            return Ok(());
                        }
                        drop(f);
                        let mut parent = self.load_internal(ppg)?;
                        if idx > parent.cells.len() {
                            return Err(bug("path index"));
                        }
                        parent.cells.insert(idx, (sep, right_pg));
                        pgno = ppg;
                        node = Node::Internal(parent);
                        continue;
                    }
                }
            }
            if self.underfull(&node)
                && let Some(&(ppg, idx)) = path.last()
            {
                let parent = self.load_internal(ppg)?;
                if !parent.cells.is_empty() {
                    let parent = self.rebalance(node, idx, parent)?;
                    path.pop();
                    pgno = ppg;
                    node = Node::Internal(parent);
                    continue;
                }
            }
            if path.is_empty()
                && let Node::Internal(n) = &node
                && n.cells.is_empty()
            {
                // The root has one child left: the child becomes the root.
                self.st.root = n.first_child;
                self.st.height = self.st.height.saturating_sub(1);
                return self.free(pgno);
            }
            return self.store_node(pgno, &node);
        }
    }

    fn new_root(&mut self, left: u32, sep: StoredKey, right: u32) -> Result<()> {
        if self.st.height >= MAX_HEIGHT {
            return Err(bug("tree height limit reached"));
        }
        let root = self.alloc()?;
        let node = InternalNode {
            first_child: left,
            cells: vec![(sep, right)],
        };
        self.store_node(root, &Node::Internal(node))?;
        self.st.root = root;
        self.st.height += 1;
        Ok(())
    }

    /// Splits an oversized node in two by bytes: the left half stays at `pgno`, the right half goes to a
    /// new page. Returns the separator and the new page.
    fn split(&mut self, pgno: u32, node: Node) -> Result<(StoredKey, u32)> {
        let right_pg = self.alloc()?;
        match node {
            Node::Leaf(mut l) => {
                let (lc, rc) = if std::mem::take(&mut self.appending) && l.cells.len() >= 2 {
                    let last = l.cells.split_off(l.cells.len() - 1);
                    (l.cells, last)
                } else {
                    split_leaf_cells(l.cells)
                };
                let sep = match (lc.last(), rc.first()) {
                    (Some(l), Some(r)) => self.separator(l, r)?,
                    _ => return Err(bug("empty split")),
                };
                let left = LeafNode { cells: lc };
                let right = LeafNode { cells: rc };
                self.store_node(pgno, &Node::Leaf(left))?;
                self.store_node(right_pg, &Node::Leaf(right))?;
                Ok((sep, right_pg))
            }
            Node::Internal(n) => {
                let (left, sep, right) = split_internal(n)?;
                self.store_node(pgno, &Node::Internal(left))?;
                self.store_node(right_pg, &Node::Internal(right))?;
                Ok((sep, right_pg))
            }
        }
    }

    /// Combines the underfull `node` (child `idx` of `parent`) with an adjacent sibling: merged if they fit
    /// in one page, otherwise redistributed. Returns the updated parent, not yet stored.
    fn rebalance(
        &mut self,
        node: Node,
        idx: usize,
        mut parent: InternalNode,
    ) -> Result<InternalNode> {
        // The left neighbour if there is one, else the right; the parent has at least two children.
        let (li, ri) = if idx > 0 { (idx - 1, idx) } else { (0, 1) };
        let left_pg = parent.child(li).ok_or_else(|| bug("left sibling"))?;
        let right_pg = parent.child(ri).ok_or_else(|| bug("right sibling"))?;
        let sep = parent
            .cells
            .get(li)
            .map(|(k, _)| k.clone())
            .ok_or_else(|| bug("separator"))?;
        let (left, right) = if idx == li {
            (node, self.load(right_pg)?)
        } else {
            (self.load(left_pg)?, node)
        };
        // Both pages are stored below (the right one unless merged away): make them fresh. The node's own
        // page is on the writer's path (fresh already); a durable sibling gets a new page.
        let left_pg = self.writable_child(&mut parent, li)?;
        let page_size = self.geo().page_size;
        let new_sep = match (left, right) {
            (Node::Leaf(l), Node::Leaf(r)) => {
                // The old separator goes either way (merged away, or replaced by a new one).
                self.free_key(&sep)?;
                let mut cells = l.cells;
                cells.extend(r.cells);
                let merged = LeafNode { cells };
                if merged.encoded_len() <= page_size {
                    self.store_node(left_pg, &Node::Leaf(merged))?;
                    self.free(right_pg)?;
                    None
                } else {
                    let (lc, rc) = split_leaf_cells(merged.cells);
                    let sep = match (lc.last(), rc.first()) {
                        (Some(l), Some(r)) => self.separator(l, r)?,
                        _ => return Err(bug("empty split")),
                    };
                    let l = LeafNode { cells: lc };
                    let r = LeafNode { cells: rc };
                    let right_pg = self.writable_child(&mut parent, ri)?;
                    self.store_node(left_pg, &Node::Leaf(l))?;
                    self.store_node(right_pg, &Node::Leaf(r))?;
                    Some(sep)
                }
            }
            (Node::Internal(l), Node::Internal(r)) => {
                let mut cells = l.cells;
                cells.push((sep, r.first_child));
                cells.extend(r.cells);
                let merged = InternalNode {
                    first_child: l.first_child,
                    cells,
                };
                if merged.encoded_len() <= page_size {
                    self.store_node(left_pg, &Node::Internal(merged))?;
                    self.free(right_pg)?;
                    None
                } else {
                    let (l, sep, r) = split_internal(merged)?;
                    let right_pg = self.writable_child(&mut parent, ri)?;
                    self.store_node(left_pg, &Node::Internal(l))?;
                    self.store_node(right_pg, &Node::Internal(r))?;
                    Some(sep)
                }
            }
            _ => {
                return Err(self
                    .geo()
                    .corrupt(left_pg, "siblings at one level differ in kind"));
            }
        };
        match new_sep {
            None => {
                if li >= parent.cells.len() {
                    return Err(bug("separator index"));
                }
                parent.cells.remove(li);
            }
            Some(s) => {
                let cell = parent
                    .cells
                    .get_mut(li)
                    .ok_or_else(|| bug("separator index"))?;
                cell.0 = s;
            }
        }
        Ok(parent)
    }
}

fn split_leaf_cells(mut cells: Vec<LeafCell>) -> (Vec<LeafCell>, Vec<LeafCell>) {
    let sizes: Vec<usize> = cells.iter().map(LeafCell::size).collect();
    let m = split_point(&sizes, 1, cells.len().saturating_sub(1));
    let right = cells.split_off(m.min(cells.len()));
    (cells, right)
}

/// Splits an internal node's cells around a middle separator that moves up (with its overflow chain, if
/// any: a separator's chain belongs to whichever cell holds it).
fn split_internal(n: InternalNode) -> Result<(InternalNode, StoredKey, InternalNode)> {
    if n.cells.len() < 3 {
        return Err(bug(
            "an internal page too full with fewer than 3 separators",
        ));
    }
    let sizes: Vec<usize> = n
        .cells
        .iter()
        .map(|(k, _)| page::internal_cell_size(k))
        .collect();
    let m = split_point(&sizes, 1, n.cells.len() - 2);
    let mut left_cells = n.cells;
    let mut rest = left_cells.split_off(m);
    if rest.is_empty() {
        return Err(bug("internal split"));
    }
    let (sep, child) = rest.remove(0);
    Ok((
        InternalNode {
            first_child: n.first_child,
            cells: left_cells,
        },
        sep,
        InternalNode {
            first_child: child,
            cells: rest,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_point_balances_bytes() {
        assert_eq!(split_point(&[10, 10, 10, 10], 1, 3), 2);
        assert_eq!(split_point(&[100, 1, 1, 1], 1, 3), 1);
        assert_eq!(split_point(&[1, 1, 1, 100], 1, 3), 3);
        assert_eq!(split_point(&[1, 1, 1, 100], 1, 2), 2);
    }
}
