//! Byte accounting by purpose.
//!
//! Every storage call carries a purpose tag; bytes are counted by purpose, never by file name, so write
//! amplification can be split into its causes (WAL, flush, compaction, page write-back, ...). The counters
//! are relaxed atomics: they are statistics, read as a consistent-enough snapshot by [`IoCounters::snapshot`].

use std::sync::atomic::{AtomicU64, Ordering};

/// Why bytes are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum WritePurpose {
    /// Write-ahead log records.
    Wal,
    /// LSM memtable flushes to L0 tables.
    MemtableFlush,
    /// LSM compaction outputs.
    Compaction,
    /// LSM manifest edits and the `CURRENT` pointer.
    Manifest,
    /// B-tree pages (and free-list pages) written by a checkpoint.
    PageWriteback,
    /// B-tree dirty pages the buffer pool wrote back to make room (steal).
    PageEviction,
    /// B-tree header slots and the directory's `IDENTITY` file.
    Header,
}

/// Why bytes are read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ReadPurpose {
    /// Point lookups.
    Get,
    /// Range scans.
    Scan,
    /// LSM compaction inputs (and B-tree page reads made for a write).
    Compaction,
    /// Opening and recovering a database.
    Recovery,
    /// `verify()`.
    Verify,
    /// Copying files for `Engine::backup`.
    Backup,
}

impl WritePurpose {
    const ALL: [WritePurpose; 7] = [
        WritePurpose::Wal,
        WritePurpose::MemtableFlush,
        WritePurpose::Compaction,
        WritePurpose::Manifest,
        WritePurpose::PageWriteback,
        WritePurpose::PageEviction,
        WritePurpose::Header,
    ];

    fn index(self) -> usize {
        self as usize
    }
}

impl ReadPurpose {
    const ALL: [ReadPurpose; 6] = [
        ReadPurpose::Get,
        ReadPurpose::Scan,
        ReadPurpose::Compaction,
        ReadPurpose::Recovery,
        ReadPurpose::Verify,
        ReadPurpose::Backup,
    ];

    fn index(self) -> usize {
        self as usize
    }
}

/// Bytes written, by purpose.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WrittenBytes {
    /// Write-ahead log.
    pub wal: u64,
    /// LSM memtable flushes.
    pub memtable_flush: u64,
    /// LSM compaction outputs.
    pub compaction: u64,
    /// LSM manifest and `CURRENT`.
    pub manifest: u64,
    /// B-tree pages written by checkpoints.
    pub page_writeback: u64,
    /// B-tree dirty pages written back on eviction.
    pub page_eviction: u64,
    /// B-tree header slots and `IDENTITY`.
    pub header: u64,
}

impl WrittenBytes {
    /// The sum over every purpose.
    pub fn total(&self) -> u64 {
        self.wal
            + self.memtable_flush
            + self.compaction
            + self.manifest
            + self.page_writeback
            + self.page_eviction
            + self.header
    }

    /// The bytes written for `purpose`.
    pub fn get(&self, purpose: WritePurpose) -> u64 {
        match purpose {
            WritePurpose::Wal => self.wal,
            WritePurpose::MemtableFlush => self.memtable_flush,
            WritePurpose::Compaction => self.compaction,
            WritePurpose::Manifest => self.manifest,
            WritePurpose::PageWriteback => self.page_writeback,
            WritePurpose::PageEviction => self.page_eviction,
            WritePurpose::Header => self.header,
        }
    }

    /// `(name, bytes)` for every purpose, in a fixed order (for reports).
    pub fn by_purpose(&self) -> [(&'static str, u64); 7] {
        [
            ("wal", self.wal),
            ("memtable_flush", self.memtable_flush),
            ("compaction", self.compaction),
            ("manifest", self.manifest),
            ("page_writeback", self.page_writeback),
            ("page_eviction", self.page_eviction),
            ("header", self.header),
        ]
    }
}

/// Bytes read, by purpose.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReadBytes {
    /// Point lookups.
    pub get: u64,
    /// Scans.
    pub scan: u64,
    /// Compaction inputs.
    pub compaction: u64,
    /// Open and recovery.
    pub recovery: u64,
    /// `verify()`.
    pub verify: u64,
    /// Copies made by `Engine::backup`.
    pub backup: u64,
}

impl ReadBytes {
    /// The sum over every purpose.
    pub fn total(&self) -> u64 {
        self.get + self.scan + self.compaction + self.recovery + self.verify + self.backup
    }
}

/// A snapshot of the I/O counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IoStats {
    /// Bytes written, by purpose.
    pub written: WrittenBytes,
    /// Bytes read, by purpose.
    pub read: ReadBytes,
    /// File `sync_data` calls that completed successfully.
    pub fsyncs: u64,
    /// Directory syncs that completed successfully.
    pub dir_syncs: u64,
}

/// The live counters, shared by every file of one [`Storage`](super::Storage).
#[derive(Debug, Default)]
pub struct IoCounters {
    written: [AtomicU64; WritePurpose::ALL.len()],
    read: [AtomicU64; ReadPurpose::ALL.len()],
    fsyncs: AtomicU64,
    dir_syncs: AtomicU64,
}

impl IoCounters {
    pub(crate) fn add_written(&self, purpose: WritePurpose, bytes: u64) {
        if let Some(c) = self.written.get(purpose.index()) {
            c.fetch_add(bytes, Ordering::Relaxed);
        }
    }

    pub(crate) fn add_read(&self, purpose: ReadPurpose, bytes: u64) {
        if let Some(c) = self.read.get(purpose.index()) {
            c.fetch_add(bytes, Ordering::Relaxed);
        }
    }

    pub(crate) fn add_fsync(&self) {
        self.fsyncs.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn add_dir_sync(&self) {
        self.dir_syncs.fetch_add(1, Ordering::Relaxed);
    }

    /// A copy of the counters as they are now.
    pub fn snapshot(&self) -> IoStats {
        let w = |p: WritePurpose| {
            self.written
                .get(p.index())
                .map_or(0, |c| c.load(Ordering::Relaxed))
        };
        let r = |p: ReadPurpose| {
            self.read
                .get(p.index())
                .map_or(0, |c| c.load(Ordering::Relaxed))
        };
        IoStats {
            written: WrittenBytes {
                wal: w(WritePurpose::Wal),
                memtable_flush: w(WritePurpose::MemtableFlush),
                compaction: w(WritePurpose::Compaction),
                manifest: w(WritePurpose::Manifest),
                page_writeback: w(WritePurpose::PageWriteback),
                page_eviction: w(WritePurpose::PageEviction),
                header: w(WritePurpose::Header),
            },
            read: ReadBytes {
                get: r(ReadPurpose::Get),
                scan: r(ReadPurpose::Scan),
                compaction: r(ReadPurpose::Compaction),
                recovery: r(ReadPurpose::Recovery),
                verify: r(ReadPurpose::Verify),
                backup: r(ReadPurpose::Backup),
            },
            fsyncs: self.fsyncs.load(Ordering::Relaxed),
            dir_syncs: self.dir_syncs.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_land_in_their_purpose() {
        let c = IoCounters::default();
        for (i, p) in WritePurpose::ALL.iter().enumerate() {
            c.add_written(*p, (i as u64 + 1) * 10);
        }
        for p in ReadPurpose::ALL {
            c.add_read(p, 3);
        }
        c.add_fsync();
        let s = c.snapshot();
        for (i, p) in WritePurpose::ALL.iter().enumerate() {
            assert_eq!(s.written.get(*p), (i as u64 + 1) * 10);
        }
        assert_eq!(s.written.total(), 280);
        assert_eq!(s.read.total(), 18);
        assert_eq!(s.read.backup, 3);
        assert_eq!(s.fsyncs, 1);
        assert_eq!(s.dir_syncs, 0);
    }
}
