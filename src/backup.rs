//! Backups ([`Engine::backup`](crate::Engine::backup)): a consistent, independently openable copy of a
//! live database, taken while writes continue.
//!
//! What every engine shares is here: the target directory and the order its files are made durable in.
//! What is consistent, and how it is pinned while it is copied, is each engine's (`src/lsm/backup.rs`,
//! `src/btree/backup.rs`, and the reference model).
//!
//! # The target, and why a crash never leaves a copy that opens with partial data
//!
//! The target must be missing (it is created, with its parents) or an empty directory; anything else is
//! `InvalidArgument`, so a backup never mixes its files with others. The backup holds the target's own
//! `LOCK` (a new file, never the source's) while it writes, so nothing opens the copy half-made.
//!
//! The copy is built the way a database is created ([`crate::identity`]): `IDENTITY` is written last.
//! Every other file is fsync'd as it is finished, the directory is fsync'd, and only then is `IDENTITY`
//! written (temp name, fsync, rename, directory fsync). So after a crash at any point the target is one
//! of:
//! - empty but for `LOCK` (or missing): opening it finds no database (`InvalidArgument` unless
//!   `create_if_missing`, which creates a new, empty database, as it would for a missing directory);
//! - engine files without `IDENTITY`: every open refuses it with `Corruption` ("an interrupted creation
//!   or a damaged database");
//! - complete: `IDENTITY` is durable only after every file it vouches for.
//!
//! Never a copy that opens with part of the data. A failed backup leaves its files behind (never the
//! source's: the source is only read); delete the directory and try again.
//!
//! Building into a temporary sibling directory and renaming it into place would give the same guarantee
//! with one more directory fsync (the parent's); writing `IDENTITY` last gives it with the protocol every
//! open already enforces, and keeps the whole backup inside one [`Storage`], so the simulated disk tests
//! crash it at every operation.
//!
//! # Hard links
//!
//! Files that are never written again after they are complete (LSM tables) are hard-linked into the
//! target when both directories are on one filesystem, so the copy costs no data I/O: the two directory
//! entries share an inode, and since neither database ever writes to a table (it is created whole,
//! fsync'd, and later only unlinked), each database keeps its bytes however long the other lives. A link
//! that fails (`EXDEV` across filesystems, `EPERM`) falls back to a copy. Files that change (WAL
//! segments, the B-tree's data file, the manifest) are always copied.

use std::path::Path;

use crate::error::{Error, Result};
use crate::identity::{self, Identity, LOCK_FILE};
use crate::storage::{LockGuard, Storage, WritePurpose};

/// What [`Engine::backup`](crate::Engine::backup) copied.
///
/// # Examples
///
/// ```
/// use rumdb::{Engine, EngineExt, LsmEngine, LsmOptions};
/// let dir = tempfile::tempdir()?;
/// let db = LsmEngine::open(&dir.path().join("db"), LsmOptions::default())?;
/// db.put("k", "v")?;
/// let info = db.backup(&dir.path().join("copy"))?;
/// assert_eq!(info.sequence, 1); // the one put
/// println!("{} files linked, {} bytes copied", info.files_linked, info.bytes_copied);
/// # Ok::<(), rumdb::Error>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BackupInfo {
    /// The copy holds exactly the batches with sequences up to this one: every write acknowledged
    /// before the call, none made after it returned.
    pub sequence: u64,
    /// Files copied byte for byte (WAL segments, the B-tree's data file, tables that could not be linked).
    pub files_copied: u64,
    /// Their bytes.
    pub bytes_copied: u64,
    /// Files hard-linked (LSM tables on the same filesystem): no bytes moved.
    pub files_linked: u64,
    /// Their bytes (shared with the source until one side deletes its name).
    pub bytes_linked: u64,
}

/// The storage of backup target `dir`: created (with its parents) if missing.
///
/// # Errors
/// `InvalidArgument` if it exists and is not an empty directory; `Io`.
pub(crate) fn target_storage(dir: &Path) -> Result<Storage> {
    if dir.exists() && !dir.is_dir() {
        return Err(Error::invalid(format!(
            "backup target {} exists and is not a directory",
            dir.display()
        )));
    }
    Storage::os(dir, true)
}

/// A backup being written: the target's storage and lock, and what went into it so far.
pub(crate) struct Target {
    storage: Storage,
    info: BackupInfo,
    _lock: LockGuard,
}

impl Target {
    /// Starts a backup into `storage`, which must hold no file.
    ///
    /// # Errors
    /// `InvalidArgument` if it holds a file; `ReadOnly`; `Locked`; `Io`.
    pub(crate) fn new(storage: Storage) -> Result<Self> {
        if let Some(first) = storage.list()?.first() {
            return Err(Error::invalid(format!(
                "backup target {} is not empty (it holds {first}): a backup goes into a new or empty \
                 directory",
                storage.display_dir()
            )));
        }
        let lock = storage.try_lock(LOCK_FILE)?;
        Ok(Target {
            storage,
            info: BackupInfo::default(),
            _lock: lock,
        })
    }

    /// The target's storage, for the files an engine writes itself (then [`Target::sync_file`]).
    pub(crate) fn storage(&self) -> &Storage {
        &self.storage
    }

    /// Copies the first `len` bytes of `source`'s file `name` (hard-links the file instead if `link` and
    /// `len` is all of it), fsync'd.
    ///
    /// # Errors
    /// `Io`; `Corruption` if the file is shorter than `len`.
    pub(crate) fn copy(
        &mut self,
        source: &Storage,
        name: &str,
        len: u64,
        link: bool,
        purpose: WritePurpose,
    ) -> Result<()> {
        if source.copy_file_to(name, len, &self.storage, link, purpose)? {
            self.info.files_linked += 1;
            self.info.bytes_linked += len;
        } else {
            self.record_copy(len);
        }
        Ok(())
    }

    /// Counts a file of `bytes` an engine copied itself (through [`Target::storage`]).
    pub(crate) fn record_copy(&mut self, bytes: u64) {
        self.info.files_copied += 1;
        self.info.bytes_copied += bytes;
    }

    /// [`Target::copy`] of the whole file, at its length now.
    ///
    /// # Errors
    /// As [`Target::copy`].
    pub(crate) fn copy_whole(
        &mut self,
        source: &Storage,
        name: &str,
        link: bool,
        purpose: WritePurpose,
    ) -> Result<()> {
        let len = source.open_required(name, false)?.len()?;
        self.copy(source, name, len, link, purpose)
    }

    /// Fsyncs the target's file `name`, written through [`Target::storage`].
    ///
    /// # Errors
    /// `Io`.
    pub(crate) fn sync_file(&self, name: &str) -> Result<()> {
        self.storage.open_required(name, true)?.sync_data()
    }

    /// Completes the copy: fsyncs the directory, then writes `IDENTITY` (a new one, for `identity`) as
    /// the last step, and returns what was copied, holding the batches through `sequence`.
    ///
    /// # Errors
    /// `Io`.
    pub(crate) fn finish(self, identity: &Identity, sequence: u64) -> Result<BackupInfo> {
        self.storage.sync_dir()?;
        identity::finish_create(&self.storage, identity)?;
        Ok(BackupInfo {
            sequence,
            ..self.info
        })
    }
}
