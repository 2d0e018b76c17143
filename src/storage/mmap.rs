//! The one module with `unsafe`: read-only memory maps of immutable files (memmap2).
//!
//! # Invariant
//!
//! A file is mapped only when it is **immutable, fully written and synced**, and it is **never truncated
//! or written while mapped**; it is unlinked only after the metadata edit that drops it is durable and the
//! last reader holding a [`Mapping`] has let go (mappings are reference-counted by their owners). Under that
//! invariant the mapped bytes never change, so handing them out as `&[u8]` is sound.
//!
//! A media error under a mapping cannot be returned as an error: the kernel raises SIGBUS and the process
//! dies. Users who prefer an `Err` choose the pread read path (`read_path: Pread`).

use std::fmt;
use std::fs;
use std::io;
use std::ops::Deref;

/// A read-only map of a whole immutable file.
pub struct Mapping {
    map: memmap2::Mmap,
}

impl Mapping {
    /// Maps `file` read-only.
    ///
    /// REQUIRES: the module invariant: `file` is immutable, fully written and synced, and stays so (neither
    /// truncated nor written) for as long as the returned mapping lives.
    pub(crate) fn map(file: &fs::File) -> io::Result<Self> {
        // SAFETY: memmap2 requires that the file is not modified (in particular not truncated) while the map
        // lives, or reads through the map are undefined behaviour. rumdb maps only files that are complete
        // and synced (SSTables after their manifest edit), never writes to them again, and removes them only
        // after every owner of a `Mapping` dropped it (the module invariant, REQUIRES above). Another process
        // writing to our directory while we hold its LOCK is outside what any embedded database can guard.
        let map = unsafe { memmap2::Mmap::map(file)? };
        Ok(Mapping { map })
    }
}

impl Deref for Mapping {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.map
    }
}

impl fmt::Debug for Mapping {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mapping")
            .field("len", &self.map.len())
            .finish()
    }
}
