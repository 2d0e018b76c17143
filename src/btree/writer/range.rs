//! The writer's range delete: every key of a half-open range removed one leaf at a time, whole covered
//! leaves under one parent dropped in one edit of that parent.

use super::*;

impl Writer<'_> {
    /// Removes every key `k` with `start <= k < end`, one leaf at a time: a descent to the leaf holding
    /// the cursor (first `start`), every covered cell dropped from the decoded leaf at once (values and
    /// overflow keys freed, prior values noted for snapshots), then [`Writer::settle`] merges or
    /// redistributes the leaf if it fell under a quarter, and frees the pages merged away. The cursor
    /// then moves to the leaf's upper separator (from its deepest ancestor with a child to the right),
    /// which is above the cursor, so the loop ends; it stops at the first key ≥ `end` or the rightmost
    /// leaf. Leaves the range does not touch are not written. Cost: one descent and one leaf rewrite per
    /// leaf in the range, not per key.
    ///
    /// # Errors
    /// As [`Writer::put`].
    pub fn delete_range(&mut self, start: &[u8], end: &[u8]) -> Result<()> {
        self.rightmost = None;
        if start >= end {
            return Ok(());
        }
        let mut cursor = start.to_vec();
        // Each round moves the cursor strictly up to a separator of the tree: at most one round per page.
        for _ in 0..=self.st.page_count {
            let (mut path, leaf_pg, _) = self.descend_path(&cursor)?;
            let mut leaf = self.load_leaf(leaf_pg)?;
            let mut doomed = Vec::new();
            let mut past_end = false;
            for (i, cell) in leaf.cells.iter().enumerate() {
                let key = self.full_key(&cell.key)?;
                if key.as_slice() >= end {
                    past_end = true;
                    break;
                }
                if key.as_slice() >= start {
                    doomed.push((i, key));
                }
            }
            if !past_end
                && doomed.len() == leaf.cells.len()
                && let Some(sep) =
                    self.drop_covered_leaves(path.clone(), leaf_pg, leaf.cells.len(), start, end)?
            {
                if sep <= cursor {
                    return Err(bug("a separator at or below the range-delete cursor"));
                }
                cursor = sep;
                continue;
            }
            let next = if past_end {
                None
            } else {
                self.upper_separator(&path)?
            };
            if !doomed.is_empty() {
                let leaf_pg = self.make_writable(&mut path, leaf_pg)?;
                for (i, key) in doomed.iter().rev() {
                    if *i >= leaf.cells.len() {
                        return Err(bug("range delete index"));
                    }
                    let cell = leaf.cells.remove(*i);
                    self.note_prior(key, Some(&cell.value))?;
                    self.free_value(&cell.value)?;
                    self.free_key(&cell.key)?;
                }
                self.settle(path, leaf_pg, Node::Leaf(leaf))?;
            }
            match next {
                Some(sep) if sep.as_slice() < end && sep > cursor => cursor = sep,
                Some(sep) if sep.as_slice() < end => {
                    return Err(bug("a separator at or below the range-delete cursor"));
                }
                _ => return Ok(()),
            }
        }
        Err(bug(
            "a range delete visited more leaves than the file has pages",
        ))
    }

    /// Drops leaf `leaf_pg` (child `idx` of the last page on `path`), which the range covers whole, with
    /// every following sibling under the same parent whose right separator is ≤ `end` (so the range
    /// covers it whole too), in one edit of the parent: each leaf's values and overflow keys are freed,
    /// their prior values noted for snapshots, the pages freed, and the parent loses those children and
    /// the separators between them, then settles (merging upward if it fell under a quarter). The
    /// parent's last child is never dropped here (the caller handles it as any leaf). Returns the next
    /// cursor (the separator right of the last leaf dropped), or `None` if nothing was dropped.
    ///
    /// # Errors
    /// As [`Writer::put`]; `Corruption` if a dropped leaf holds a key outside `start..end`.
    fn drop_covered_leaves(
        &mut self,
        mut path: WritePath,
        leaf_pg: u32,
        cells: usize,
        start: &[u8],
        end: &[u8],
    ) -> Result<Option<Vec<u8>>> {
        let Some(&(ppg, idx)) = path.last() else {
            return Ok(None);
        };
        let parent = self.load_internal(ppg)?;
        if idx >= parent.cells.len() || cells == 0 {
            return Ok(None);
        }
        // The last child dropped: every sibling right of `idx` (but the parent's last) below `end`.
        let mut last = idx;
        for j in idx + 1..parent.cells.len() {
            let (sep, _) = parent.cells.get(j).ok_or_else(|| bug("separator index"))?;
            if self.full_key(sep)?.as_slice() > end {
                break;
            }
            last = j;
        }
        let next = match parent.cells.get(last) {
            Some((sep, _)) => self.full_key(sep)?,
            None => return Err(bug("separator index")),
        };
        let leaf_pg = self.make_writable(&mut path, leaf_pg)?;
        let Some((ppg, _)) = path.pop() else {
            return Err(bug("range-delete path"));
        };
        let mut parent = self.load_internal(ppg)?;
        for j in idx..=last {
            let child = if j == idx {
                leaf_pg
            } else {
                parent.child(j).ok_or_else(|| bug("child index"))?
            };
            let leaf = self.load_leaf(child)?;
            for cell in &leaf.cells {
                let key = self.full_key(&cell.key)?;
                if key.as_slice() < start || key.as_slice() >= end {
                    return Err(self
                        .geo()
                        .corrupt(child, "a leaf holds a key outside its parent's separators"));
                }
                self.note_prior(&key, Some(&cell.value))?;
                self.free_value(&cell.value)?;
                self.free_key(&cell.key)?;
            }
            self.free(child)?;
        }
        // Children idx..=last go with the separators between them (and the one left of them, or for the
        // first child the one right of the last, whose child becomes the first).
        let removed: Vec<(page::StoredKey, u32)> = if idx == 0 {
            let (_, first) = parent
                .cells
                .get(last)
                .cloned()
                .ok_or_else(|| bug("separator index"))?;
            parent.first_child = first;
            parent.cells.drain(..=last).collect()
        } else {
            parent.cells.drain(idx - 1..last).collect()
        };
        for (sep, _) in &removed {
            self.free_key(sep)?;
        }
        self.settle(path, ppg, Node::Internal(parent))?;
        Ok(Some(next))
    }

    /// The separator right of the leaf `path` leads to (every key of the next leaf is at or above it), or
    /// `None` for the rightmost leaf.
    fn upper_separator(&self, path: &WritePath) -> Result<Option<Vec<u8>>> {
        let geo = self.geo();
        for &(pgno, idx) in path.iter().rev() {
            let f = self
                .store
                .fetch(pgno, self.st.page_count, ReadPurpose::Compaction)?;
            let p = f.page.read();
            if idx < page::cell_count(&p) {
                let (k, _) = page::internal_cell(&p, idx, pgno, &geo)?;
                let mut r = Reader::new(self.store, self.st, ReadPurpose::Compaction);
                return r.full_key(k).map(Some);
            }
        }
        Ok(None)
    }
}
