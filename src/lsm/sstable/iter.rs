//! [`TableIter`]: a two-level cursor (index block, then data block) over a table's internal keys.

use std::cmp::Ordering;
use std::sync::Arc;

use crate::error::Result;
use crate::lsm::key;
use crate::storage::ReadPurpose;

use super::block::BlockIter;
use super::reader::{ReadStats, Table};

/// A positioned cursor over a table's internal keys in [`key::compare`] order.
///
/// Every move returns `Result`: damage is `Corruption` on the move that reads the damaged block, after
/// which the cursor is invalid. The cursor owns an `Arc` of its table and of the block under it, so it
/// holds no lock and no borrow; it is `Send`.
#[derive(Debug)]
pub struct TableIter {
    table: Arc<Table>,
    purpose: ReadPurpose,
    index: BlockIter,
    data: Option<BlockIter>,
    stats: ReadStats,
}

impl TableIter {
    /// The largest sequence of the table's entries.
    pub fn max_seq(&self) -> u64 {
        self.table.max_seq()
    }

    pub(crate) fn new(table: Arc<Table>, purpose: ReadPurpose) -> Self {
        let index = BlockIter::new(Arc::clone(table.index_block()));
        TableIter {
            table,
            purpose,
            index,
            data: None,
            stats: ReadStats::default(),
        }
    }

    /// The read counters accumulated by this cursor since it was created or last taken.
    #[cfg(test)]
    pub fn take_stats(&mut self) -> ReadStats {
        std::mem::take(&mut self.stats)
    }

    /// Runs a move; on error the cursor becomes invalid.
    fn guard(&mut self, step: impl FnOnce(&mut Self) -> Result<()>) -> Result<()> {
        let result = step(self);
        if result.is_err() {
            self.data = None;
        }
        result
    }

    /// Loads the data block of the index entry under the index cursor (none if the index is exhausted).
    fn load_block(&mut self) -> Result<()> {
        self.data = None;
        if !self.index.valid() {
            return Ok(());
        }
        self.stats.index_touches += 1;
        let handle = self.table.handle(&self.index)?;
        let block = self
            .table
            .data_block(handle, self.purpose, &mut self.stats)?;
        self.data = Some(BlockIter::new(block));
        Ok(())
    }

    /// While the data cursor is exhausted, moves to the first entry of the next block.
    fn skip_forward(&mut self) -> Result<()> {
        while self.data.as_ref().is_some_and(|d| !d.valid()) {
            self.index.next()?;
            self.load_block()?;
            if let Some(d) = &mut self.data {
                d.seek_to_first()?;
            }
        }
        Ok(())
    }

    /// While the data cursor is exhausted, moves to the last entry of the previous block.
    fn skip_backward(&mut self) -> Result<()> {
        while self.data.as_ref().is_some_and(|d| !d.valid()) {
            self.index.prev()?;
            self.load_block()?;
            if let Some(d) = &mut self.data {
                d.seek_to_last()?;
            }
        }
        Ok(())
    }

    /// Positions on the first entry.
    ///
    /// # Errors
    /// `Corruption`; `Io`.
    pub fn seek_to_first(&mut self) -> Result<()> {
        self.guard(|it| {
            it.index.seek_to_first()?;
            it.load_block()?;
            if let Some(d) = &mut it.data {
                d.seek_to_first()?;
            }
            it.skip_forward()
        })
    }

    /// Positions on the last entry.
    ///
    /// # Errors
    /// `Corruption`; `Io`.
    pub fn seek_to_last(&mut self) -> Result<()> {
        self.guard(|it| {
            it.index.seek_to_last()?;
            it.load_block()?;
            if let Some(d) = &mut it.data {
                d.seek_to_last()?;
            }
            it.skip_backward()
        })
    }

    /// Positions on the first entry with internal key ≥ `target` ([`key::compare`]).
    ///
    /// # Errors
    /// `Corruption`; `Io`.
    pub fn seek(&mut self, target: &[u8]) -> Result<()> {
        self.guard(|it| {
            it.index.seek(target)?;
            it.load_block()?;
            if let Some(d) = &mut it.data {
                d.seek(target)?;
            }
            it.skip_forward()
        })
    }

    /// Positions on the last entry with internal key ≤ `target`.
    ///
    /// # Errors
    /// `Corruption`; `Io`.
    pub fn seek_for_prev(&mut self, target: &[u8]) -> Result<()> {
        self.seek(target)?;
        if !self.valid() {
            return self.seek_to_last();
        }
        if key::compare(self.key(), target) == Ordering::Greater {
            return self.prev();
        }
        Ok(())
    }

    /// Moves to the next entry (invalid after the last).
    ///
    /// # Errors
    /// `Corruption`; `Io`.
    pub fn next(&mut self) -> Result<()> {
        self.guard(|it| {
            if let Some(d) = &mut it.data {
                d.next()?;
            }
            it.skip_forward()
        })
    }

    /// Moves to the previous entry (invalid before the first).
    ///
    /// # Errors
    /// `Corruption`; `Io`.
    pub fn prev(&mut self) -> Result<()> {
        self.guard(|it| {
            if let Some(d) = &mut it.data {
                d.prev()?;
            }
            it.skip_backward()
        })
    }

    /// True if positioned on an entry.
    pub fn valid(&self) -> bool {
        self.data.as_ref().is_some_and(BlockIter::valid)
    }

    /// The current internal key. REQUIRES: [`valid`](Self::valid) (empty otherwise).
    pub fn key(&self) -> &[u8] {
        self.data.as_ref().map_or(&[], BlockIter::key)
    }

    /// The current value. REQUIRES: [`valid`](Self::valid) (empty otherwise).
    pub fn value(&self) -> &[u8] {
        self.data.as_ref().map_or(&[], BlockIter::value)
    }
}
