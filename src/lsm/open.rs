//! Opening an LSM database: creation, or recovery.
//!
//! Recovery steps, each durable before the next, so a crash at any point (recovery included) recovers
//! again to the same state:
//! 1. lock the directory and check `IDENTITY`;
//! 2. read `CURRENT`, replay the manifest it names, check that the WAL segment its log number names (the
//!    first live segment) exists, open every table it lists (a missing or resized table is `Corruption`)
//!    and roll over to a fresh manifest;
//! 3. replay the WAL segments at or above the manifest's log number into a memtable, validating their
//!    chain (a torn tail is dropped and counted; damage in synced data and a missing, emptied or cut
//!    segment the chain proves held synced data are `Corruption`; see [`crate::wal::reader`]);
//! 4. flush what was replayed to an L0 table;
//! 5. create the new WAL segment (its LINK names the last replayed segment; directory fsync'd), then
//!    record the table with a manifest edit whose log number is the new segment's, so the replayed
//!    segments become obsolete; every segment a manifest edit names exists durably before the edit does;
//! 6. delete the replayed segments and every orphan (tables no version lists, stale manifests, temp
//!    files), and, for a new database, write `IDENTITY` last.
//!
//! # Read-only open
//!
//! With [`LsmOptions::read_only`] the storage refuses every write ([`Storage::into_read_only`]) and open
//! does steps 1–3 only: a *shared* lock (none if `LOCK` is missing), the manifest replayed without the
//! rollover, the WAL replayed (tolerating a torn tail as usual, without truncating it) into a memtable
//! that stays in memory and is never flushed. It skips the flush at open, the new WAL segment, the
//! manifest edit, the deletion of replayed segments and the orphan cleanup; no background worker runs.
//! Orphan files are left alone and ignored.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use parking_lot::{Mutex, RwLock};

use super::compaction::{JobState, TableSink, write_tables};
use super::db::{LsmEngine, Memtables, Shared};
use super::edit::VersionEdit;
use super::manifest::{CURRENT, TableOpener, VersionSet, parse_manifest_name};
use super::memtable::Memtable;
use super::options::{Background, LsmOptions};
use super::sstable::{BlockCache, parse_table_file_name};
use crate::batch::WriteBatch;
use crate::error::{EngineKind, Result};
use crate::identity;
use crate::pipeline::{self, Core};
use crate::stats::RecoveryReport;
use crate::storage::{Storage, WritePurpose};
use crate::wal::{self, WalWriter};

/// The format version of LSM databases this build writes and reads.
pub const LSM_FORMAT_VERSION: u32 = 1;

impl LsmEngine {
    /// Opens the LSM database in `dir`, creating it (and the directory) if there is none and
    /// `options.create` allows. Opening recovers after a crash: it replays the WAL into a memtable and
    /// removes files left over by interrupted flushes and compactions; what it found is in
    /// [`Stats::recovery`](crate::Stats::recovery). The handle holds the directory's lock until it is
    /// closed or dropped.
    ///
    /// # Examples
    ///
    /// ```
    /// use rumdb::{Engine, EngineExt, LsmEngine, LsmOptions};
    /// let dir = tempfile::tempdir()?;
    /// let path = dir.path().join("db");
    /// let db = LsmEngine::open(&path, LsmOptions::default())?;
    /// db.put(b"k", b"v")?;
    /// db.close()?;
    /// let db = LsmEngine::open(&path, LsmOptions::default())?;
    /// assert_eq!(db.get(b"k")?.as_deref(), Some(&b"v"[..]));
    /// # Ok::<(), rumdb::Error>(())
    /// ```
    ///
    /// # Errors
    /// - [`Error::InvalidArgument`](crate::Error::InvalidArgument): a bad option (checked before the directory is touched), a database
    ///   exists and `options.create.error_if_exists` is set, or none exists and
    ///   `options.create.create_if_missing` is false (a read-only open never creates one);
    /// - [`Error::Locked`](crate::Error::Locked): another handle, in this process or another, has the database open;
    /// - [`Error::WrongEngine`](crate::Error::WrongEngine): the directory holds a database of the other engine;
    /// - [`Error::UnsupportedVersion`](crate::Error::UnsupportedVersion): it was written by a newer format version;
    /// - [`Error::NotADatabase`](crate::Error::NotADatabase): the directory holds files that are not a database;
    /// - [`Error::Corruption`](crate::Error::Corruption): damaged or missing files (a table, the manifest or a WAL segment the metadata names; damage
    ///   in synced WAL records);
    /// - [`Error::Io`](crate::Error::Io): the directory cannot be created or read, or a file operation failed (the
    ///   message names the path).
    ///
    /// # Read-only
    ///
    /// With `options.read_only` the directory must exist and hold a database; nothing in it is created
    /// or changed (it may be on a read-only filesystem).
    ///
    /// ```
    /// use rumdb::{Engine, EngineExt, Error, LsmEngine, LsmOptions};
    /// let dir = tempfile::tempdir()?;
    /// LsmEngine::open(dir.path(), LsmOptions::default())?.put(b"k", b"v")?;
    /// let ro = LsmEngine::open(dir.path(), LsmOptions { read_only: true, ..LsmOptions::default() })?;
    /// assert_eq!(ro.get(b"k")?.as_deref(), Some(&b"v"[..]));
    /// assert!(matches!(ro.put(b"k", b"w"), Err(Error::ReadOnly(_))));
    /// # Ok::<(), rumdb::Error>(())
    /// ```
    pub fn open(dir: &Path, options: LsmOptions) -> Result<Self> {
        options.check()?;
        let storage = Storage::for_open(dir, options.create.create_if_missing, options.read_only)?;
        Self::open_with(storage, options)
    }

    /// Opens (or creates) the database on any storage: test machinery (the simulated disk of
    /// `rumdb::testing`), hidden from the documentation.
    ///
    /// # Errors
    /// `Locked`, `WrongEngine`, `UnsupportedVersion`, `Corruption` (damaged or missing files),
    /// `InvalidArgument` (options, `error_if_exists`), `Io`.
    #[doc(hidden)]
    pub fn open_with(storage: Storage, options: LsmOptions) -> Result<Self> {
        options.check()?;
        if options.read_only {
            return Self::open_read_only(storage.into_read_only(), options);
        }
        let (opened, cache, opener) = open_dir_and_tables(&storage, &options, false)?;
        let versions = if opened.creating {
            VersionSet::create(opener)?
        } else {
            VersionSet::recover(opener, highest_file_number(&storage)? + 1)?
        };
        let mut report = RecoveryReport::default();
        let counters = versions.counters();
        let segments: Vec<u64> = wal::list_segments(&storage)?
            .into_iter()
            .filter(|s| *s >= counters.log_number)
            .collect();
        let replayed = Memtable::new(0);
        let mut next_seq = counters.last_sequence + 1;
        let first = (counters.log_number != 0).then_some(counters.log_number);
        let outcome = wal::replay(&storage, &segments, first, options.recovery_mode, |rec| {
            let name = wal::segment_name(rec.segment);
            let (seq, batch) = WriteBatch::decode(rec.payload, &name, rec.offset)?;
            if counters.last_sequence > 0 && seq + batch.len() as u64 <= counters.last_sequence + 1
            {
                // Already in a table: a flush finished but did not get to delete its segment.
                return Ok(());
            }
            replayed.insert_batch(seq, &batch);
            next_seq = next_seq.max(seq + batch.len() as u64);
            Ok(())
        })?;
        report.segments_replayed = outcome.segments;
        report.records_replayed = outcome.records;
        report.truncated_bytes = outcome.truncated_bytes;
        report.truncated_at = outcome.truncated_at;

        // The replayed state goes into a table before the segments that held it go.
        let segment = versions.new_file_number();
        let mut edit = VersionEdit {
            log_number: Some(segment),
            last_sequence: Some(next_seq - 1),
            ..VersionEdit::default()
        };
        if !replayed.is_empty() {
            let sink = OpenSink {
                storage: &storage,
                versions: &versions,
                options: &options,
            };
            let tombstones = replayed.range_tombstones();
            let tables = replayed.with_entries(|entries| {
                write_tables(
                    &sink,
                    0,
                    entries.map(Ok),
                    &tombstones,
                    WritePurpose::MemtableFlush,
                )
            })?;
            edit.added = tables.into_iter().map(|m| (0, m)).collect();
        }
        // The new segment exists durably (directory fsync'd, LINK to the last replayed segment) before
        // the manifest edit names it as the first live segment: a crash in between leaves it as an empty
        // trailing segment, which replay accepts.
        let writer = WalWriter::create(&storage, segment, outcome.next_link)?;
        crate::crash_point::hit("wal.open.before_named");
        versions.log_and_apply(edit)?;
        for s in wal::list_segments(&storage)?
            .into_iter()
            .filter(|s| *s < segment)
        {
            storage.remove(&wal::segment_name(s))?;
        }
        report.orphans_removed = remove_orphans(&storage, &versions)?;
        if opened.creating {
            identity::finish_create(&storage, &opened.identity)?;
        }
        let background = options.background;
        let core = Core::new(storage, opened.lock, background, next_seq - 1);
        core.start(writer, next_seq - 1, report);
        let shared = Shared::new(core, versions, cache, Memtable::new(segment), options);
        match background {
            Background::Threads => pipeline::spawn_worker(&shared, "rumdb-lsm")?,
            Background::Manual => shared.maybe_compact()?,
        }
        Ok(LsmEngine { shared })
    }
}

impl LsmEngine {
    /// Steps 1–3 of recovery without writing anything (see the module docs' "Read-only open").
    fn open_read_only(storage: Storage, options: LsmOptions) -> Result<Self> {
        let (opened, cache, opener) = open_dir_and_tables(&storage, &options, true)?;
        let versions = VersionSet::recover_read_only(opener)?;
        let counters = versions.counters();
        let segments: Vec<u64> = wal::list_segments(&storage)?
            .into_iter()
            .filter(|s| *s >= counters.log_number)
            .collect();
        // The memtable is labelled with the last replayed segment (it holds records of several).
        let replayed = Memtable::new(segments.last().copied().unwrap_or(counters.log_number));
        let mut last_seq = counters.last_sequence;
        let first = (counters.log_number != 0).then_some(counters.log_number);
        let outcome = wal::replay(&storage, &segments, first, options.recovery_mode, |rec| {
            let name = wal::segment_name(rec.segment);
            let (seq, batch) = WriteBatch::decode(rec.payload, &name, rec.offset)?;
            if counters.last_sequence > 0 && seq + batch.len() as u64 <= counters.last_sequence + 1
            {
                return Ok(());
            }
            replayed.insert_batch(seq, &batch);
            last_seq = last_seq.max((seq + batch.len() as u64).saturating_sub(1));
            Ok(())
        })?;
        let report = RecoveryReport {
            segments_replayed: outcome.segments,
            records_replayed: outcome.records,
            truncated_bytes: outcome.truncated_bytes,
            truncated_at: outcome.truncated_at,
            ..RecoveryReport::default()
        };
        let core = Core::new_read_only(storage, opened.lock, last_seq);
        core.start_read_only(last_seq, report);
        let shared = Shared::new(core, versions, cache, replayed, options);
        Ok(LsmEngine { shared })
    }
}

impl Shared {
    /// The engine's shared state around `core`, with `active` as the active memtable and nothing sealed.
    fn new(
        core: Core,
        versions: VersionSet,
        cache: Arc<BlockCache>,
        active: Memtable,
        options: LsmOptions,
    ) -> Arc<Self> {
        let shared = Arc::new(Shared {
            core,
            versions,
            cache,
            mems: RwLock::new(Arc::new(Memtables {
                active: Arc::new(active),
                sealed: Vec::new(),
            })),
            job: Mutex::new(JobState::default()),
            level_stats: Mutex::new(Default::default()),
            l0_files: AtomicU64::new(0),
            pending_bytes: AtomicU64::new(0),
            flushes: AtomicU64::new(0),
            quiet_since: Mutex::new((0, std::time::Instant::now())),
            settle_waiters: AtomicU64::new(0),
            compactions: AtomicU64::new(0),
            options,
        });
        shared.refresh_pressure();
        shared
    }
}

/// Step 1 of both opens: lock the directory and check `IDENTITY` (read-only or not), and make the block
/// cache and the table opener the version set reads tables with.
fn open_dir_and_tables(
    storage: &Storage,
    options: &LsmOptions,
    read_only: bool,
) -> Result<(identity::OpenedDir, Arc<BlockCache>, TableOpener)> {
    let opened = identity::open_dir(
        storage,
        EngineKind::Lsm,
        LSM_FORMAT_VERSION,
        0,
        options.create,
        read_only,
    )?;
    let cache = BlockCache::new(options.block_cache_bytes);
    let opener = TableOpener {
        storage: storage.clone(),
        read_path: options.read_path,
        cache: Arc::clone(&cache),
    };
    Ok((opened, cache, opener))
}

/// What a flush at open needs before the engine exists.
struct OpenSink<'a> {
    storage: &'a Storage,
    versions: &'a VersionSet,
    options: &'a LsmOptions,
}

impl TableSink for OpenSink<'_> {
    fn storage(&self) -> &Storage {
        self.storage
    }
    fn versions(&self) -> &VersionSet {
        self.versions
    }
    fn options(&self) -> &LsmOptions {
        self.options
    }
}

/// The highest number of any segment, table or manifest in the directory (0 if none).
fn highest_file_number(storage: &Storage) -> Result<u64> {
    Ok(storage
        .list()?
        .iter()
        .filter_map(|n| {
            wal::parse_segment_name(n)
                .or_else(|| parse_table_file_name(n))
                .or_else(|| parse_manifest_name(n))
        })
        .max()
        .unwrap_or(0))
}

/// Removes files no version needs: tables it does not list, manifests other than the live one, temp
/// files. Returns how many were removed.
fn remove_orphans(storage: &Storage, versions: &VersionSet) -> Result<u64> {
    let version = versions.current();
    let live_manifest = storage
        .read_file(CURRENT, 4096, crate::storage::ReadPurpose::Recovery)?
        .strip_suffix(b"\n")
        .and_then(|n| std::str::from_utf8(n).ok().map(str::to_string));
    let mut removed = 0;
    for name in storage.list()? {
        let orphan = if let Some(n) = parse_table_file_name(&name) {
            !version.all().any(|t| t.meta.number == n)
        } else if parse_manifest_name(&name).is_some() {
            live_manifest.as_deref() != Some(name.as_str())
        } else {
            name.ends_with(".tmp")
        };
        if orphan {
            storage.remove(&name)?;
            removed += 1;
        }
    }
    Ok(removed)
}
