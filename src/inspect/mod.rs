//! Read-only views of a database's raw files, decoded without opening an engine: what `rumdb info` and
//! `rumdb inspect` print, for looking inside a database (or a damaged one) without writing code.
//!
//! Each call reads files and nothing else: it takes no lock, creates nothing and writes nothing, so it
//! can look at a directory another process has open (what it reads may then be mid-change). Each is a
//! thin view over the decoder the engine itself uses, so it accepts exactly what the engine accepts and
//! refuses the rest with the same typed [`Error`]: damage is [`Error::Corruption`] naming the file and
//! offset, never a panic, and allocation is bounded by the file sizes.
//!
//! | call | reads | decoder it reuses |
//! |---|---|---|
//! | [`identity`] | `IDENTITY` | the identity check every open runs |
//! | [`sst`] | one `NNNNNN.sst` | the LSM's table reader (footer, properties, index, filter, every data block) |
//! | [`wal_segment`] | one `NNNNNN.log` | the WAL's replay scan and its torn-tail/synced-damage rule |
//! | [`manifest`] | `CURRENT` and the manifest it names | the LSM's manifest replay and version-edit decoder |
//! | [`btree_page`] | one page of a B-tree's `data` | the B-tree's page and header-slot codecs |
//! | [`btree_summary`] | a B-tree's `data`, from the header slot in use | the same, walking the tree |
//!
//! The byte formats these name are in `docs/formats.md` and the module docs of the decoders.
//!
//! # Examples
//!
//! ```
//! use rumdb::{Engine, EngineExt, EngineKind, LsmEngine, LsmOptions};
//! let dir = tempfile::tempdir()?;
//! let db = LsmEngine::open(dir.path(), LsmOptions::default())?;
//! db.put("k", "v")?;
//! db.flush()?; // the memtable becomes a table
//! db.close()?;
//! let id = rumdb::inspect::identity(dir.path())?;
//! assert_eq!(id.engine, EngineKind::Lsm);
//! let manifest = rumdb::inspect::manifest(dir.path())?;
//! let table = manifest.levels.iter().flatten().next().expect("one table"); // L0, or L1 once settled
//! let sst = rumdb::inspect::sst(&dir.path().join(format!("{:06}.sst", table.number)))?;
//! assert_eq!(sst.properties.entries, 1);
//! # Ok::<(), rumdb::Error>(())
//! ```

mod lsm;
mod wal;

use std::path::Path;

pub use crate::btree::inspect::{
    BTreeHeader, BTreePage, BTreeSummary, PageCell, PageKind, btree_page, btree_summary,
};
pub use lsm::{
    BlockCompression, BlockRegion, DataBlock, EntryKind, FilterInfo, IndexEntry, InternalKey,
    Manifest, ManifestEdit, SstEntries, SstEntry, SstFile, SstFooter, SstProperties, TableRef,
    TableSummary, manifest, sst,
};
pub use wal::{WalEnd, WalRecord, WalSegment, wal_segment};

use crate::error::{EngineKind, Error, Result};
use crate::identity::IDENTITY_FILE;
use crate::storage::{ReadPurpose, Storage};

/// What a directory's `IDENTITY` file says: which engine, which format, which page size.
///
/// # Examples
///
/// See [`identity`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Identity {
    /// The engine the directory holds.
    pub engine: EngineKind,
    /// The format version of the engine's files.
    pub format_version: u32,
    /// Bytes per page (B-tree); 0 for an engine without pages.
    pub page_size: u32,
}

/// Reads and checks `dir/IDENTITY` (magic, checksum, reserved bytes, a known engine).
///
/// # Examples
///
/// ```
/// use rumdb::{BTreeEngine, BTreeOptions, Engine, EngineKind};
/// let dir = tempfile::tempdir()?;
/// BTreeEngine::open(dir.path(), BTreeOptions::default())?.close()?;
/// let id = rumdb::inspect::identity(dir.path())?;
/// assert_eq!((id.engine, id.page_size), (EngineKind::BTree, 4096));
/// # Ok::<(), rumdb::Error>(())
/// ```
///
/// # Errors
/// `Corruption` if the file is damaged; `Io` if it cannot be read (kind `NotFound` if it is missing).
pub fn identity(dir: &Path) -> Result<Identity> {
    let storage = read_only(dir)?;
    let bytes = storage.read_file(IDENTITY_FILE, 4096, ReadPurpose::Recovery)?;
    let found = crate::identity::Identity::decode(&bytes)?;
    Ok(Identity {
        engine: found.kind,
        format_version: found.format_version,
        page_size: found.page_size,
    })
}

/// Read-only storage on `dir` (never created).
fn read_only(dir: &Path) -> Result<Storage> {
    Ok(Storage::os(dir, false)?.into_read_only())
}

/// Read-only storage on the directory of `path`, and the file's name in it.
fn split_path(path: &Path) -> Result<(Storage, String)> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| Error::invalid(format!("{} names no file", path.display())))?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    Ok((read_only(dir)?, name.to_string()))
}

#[cfg(test)]
mod tests;
