//! The manifest and `CURRENT`: the durable record of which tables are live.
//!
//! `MANIFEST-NNNNNN` is an append-only log of [`VersionEdit`]s in WAL framing (32 KiB blocks, checksummed
//! fragments), each appended with an fsync before the version it describes is installed. Its first record
//! is a full snapshot. `CURRENT` holds the name of the live manifest and a newline, and is only ever
//! replaced whole (temp file, fsync, rename, directory fsync).
//!
//! Rollover (at every open, and when the manifest passes [`ROLL_BYTES`]): write the snapshot to a new
//! manifest and fsync it (its directory entry is synced when it is created), replace `CURRENT`, and only
//! then delete the old manifest — so after any crash `CURRENT` names a complete manifest.
//!
//! Recovery reads `CURRENT` (missing, empty or malformed: `Corruption`, never a fresh database), replays
//! the manifest it names (missing, or without its complete first record, the snapshot: `Corruption`; a torn
//! last edit is dropped, damage to a synced edit is `Corruption`), checks that the first live WAL segment
//! it names (its log number) exists (a deleted segment, or a manifest that lost synced edits and names a
//! segment a later flush deleted: `Corruption`, before anything is rewritten or collected; see
//! `check_log_number`), and
//! opens every table the result names (missing, or of another size: `Corruption`).

use std::collections::BTreeMap;
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

use super::edit::{NUM_LEVELS, VersionEdit};
use super::sstable::{BlockCache, ReadPath, Table, TableMeta};
use super::version::{TableHandle, Version};
use crate::engine::Durability;
use crate::error::{Error, Result};
use crate::storage::{ReadPurpose, Storage, WritePurpose};
use crate::wal::{LogKind, RecoveryMode, WalWriter, replay_file};

/// The pointer file.
pub const CURRENT: &str = "CURRENT";
/// A manifest larger than this is rolled over into a fresh snapshot.
pub const ROLL_BYTES: u64 = 4 << 20;

/// The file name of manifest `n`.
pub fn manifest_name(n: u64) -> String {
    format!("MANIFEST-{n:06}")
}

/// The manifest number a file name stands for.
pub fn parse_manifest_name(name: &str) -> Option<u64> {
    let digits = name.strip_prefix("MANIFEST-")?;
    if digits.len() < 6 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Counters the manifest persists beside the tables.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// WAL segments below this are obsolete.
    pub log_number: u64,
    /// The next unused file number.
    pub next_file: u64,
    /// The largest sequence number in any table.
    pub last_sequence: u64,
}

/// How tables are opened.
#[derive(Clone, Debug)]
pub struct TableOpener {
    /// The storage.
    pub storage: Storage,
    /// mmap or pread.
    pub read_path: ReadPath,
    /// The shared block cache.
    pub cache: Arc<BlockCache>,
}

impl TableOpener {
    /// Opens the table `meta` describes.
    ///
    /// # Errors
    /// `Corruption` if missing, of another size or damaged; `Io`.
    pub fn open(&self, meta: &TableMeta, purpose: ReadPurpose) -> Result<Arc<TableHandle>> {
        let table = Table::open(
            &self.storage,
            meta.number,
            meta.file_size,
            self.read_path,
            Arc::clone(&self.cache),
            purpose,
        )?;
        Ok(TableHandle::new(meta.clone(), table, self.storage.clone()))
    }
}

struct Log {
    /// `None` for a read-only handle: edits are refused.
    writer: Option<Arc<WalWriter>>,
    number: u64,
}

/// The live version and the manifest that makes it durable.
pub struct VersionSet {
    opener: TableOpener,
    current: RwLock<Arc<Version>>,
    counters: Mutex<Counters>,
    log: Mutex<Log>,
}

impl std::fmt::Debug for VersionSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VersionSet")
            .field("counters", &*self.counters.lock())
            .finish_non_exhaustive()
    }
}

impl VersionSet {
    /// Creates the manifest of a new database (number 1) and `CURRENT`.
    ///
    /// # Errors
    /// `Io`.
    pub fn create(opener: TableOpener) -> Result<Self> {
        let counters = Counters {
            log_number: 0,
            next_file: 2,
            last_sequence: 0,
        };
        let log = write_snapshot(&opener.storage, 1, &Version::default(), counters)?;
        Ok(VersionSet {
            opener,
            current: RwLock::new(Arc::new(Version::default())),
            counters: Mutex::new(counters),
            log: Mutex::new(log),
        })
    }

    /// Recovers the version `CURRENT` describes, then rolls over to a fresh manifest. File numbers handed
    /// out afterwards are at least `next_file_floor` (one above every numbered file in the directory: a
    /// segment created after the last manifest edit must not be reused).
    ///
    /// # Errors
    /// `Corruption` as the module docs say; `Io`.
    pub fn recover(opener: TableOpener, next_file_floor: u64) -> Result<Self> {
        let (version, mut counters, name) = Self::load(&opener, next_file_floor)?;
        let storage = &opener.storage;
        // Roll over: the recovered state goes into a fresh manifest, so a torn tail is never appended to.
        let fresh = counters.next_file;
        counters.next_file += 1;
        let log = write_snapshot(storage, fresh, &version, counters)?;
        // CURRENT names the new manifest durably: the old one may go (a failure leaves an orphan).
        crate::crash_point::hit("manifest.roll.before_old_delete");
        let _ = storage.remove(&name);
        let set = VersionSet {
            log: Mutex::new(log),
            opener,
            current: RwLock::new(Arc::new(version)),
            counters: Mutex::new(counters),
        };
        Ok(set)
    }

    /// Recovers the version `CURRENT` describes for a read-only handle: no rollover, nothing written;
    /// every later edit is `ReadOnly`.
    ///
    /// # Errors
    /// As [`VersionSet::recover`].
    pub fn recover_read_only(opener: TableOpener) -> Result<Self> {
        let (version, counters, name) = Self::load(&opener, 0)?;
        let number = parse_manifest_name(&name).unwrap_or(0);
        Ok(VersionSet {
            log: Mutex::new(Log {
                writer: None,
                number,
            }),
            opener,
            current: RwLock::new(Arc::new(version)),
            counters: Mutex::new(counters),
        })
    }

    /// Reads `CURRENT`, replays the manifest it names and opens every table: the version, the counters
    /// and the manifest's name.
    fn load(opener: &TableOpener, next_file_floor: u64) -> Result<(Version, Counters, String)> {
        let storage = &opener.storage;
        let (name, number) = read_current(storage)?;
        let name = name.as_str();
        let mut tables: [BTreeMap<u64, TableMeta>; NUM_LEVELS] = Default::default();
        let mut counters = Counters::default();
        let outcome = replay_file(
            storage,
            name,
            number,
            RecoveryMode::TolerateCorruptedTail,
            |rec| {
                let edit = VersionEdit::decode(rec.payload, name, rec.offset)?;
                apply_to_maps(&mut tables, &mut counters, &edit, name)
            },
        )?;
        // The snapshot record was synced before CURRENT named this manifest, so a manifest without it
        // (empty, or its first record torn) is damage, not a torn tail: tolerating it would open an empty
        // database and collect every table as an orphan.
        if outcome.records == 0 {
            return Err(Error::corruption(
                name,
                Some(0),
                "no complete snapshot record, though CURRENT names the manifest",
            ));
        }
        let all = VersionEdit {
            added: tables
                .iter()
                .enumerate()
                .flat_map(|(level, files)| files.values().map(move |m| (level, m.clone())))
                .collect(),
            ..VersionEdit::default()
        };
        let version = Version::default().apply(&all, |m| opener.open(m, ReadPurpose::Recovery))?;
        version.check()?;
        counters.next_file = counters.next_file.max(number + 1).max(next_file_floor);
        for t in version.all() {
            counters.next_file = counters.next_file.max(t.meta.number + 1);
            counters.last_sequence = counters.last_sequence.max(t.meta.max_seq);
        }
        check_log_number(storage, name, counters.log_number)?;
        Ok((version, counters, name.to_string()))
    }

    /// The live version.
    pub fn current(&self) -> Arc<Version> {
        Arc::clone(&self.current.read())
    }

    /// The persisted counters.
    pub fn counters(&self) -> Counters {
        *self.counters.lock()
    }

    /// Reserves a new file number (for a WAL segment or a table).
    pub fn new_file_number(&self) -> u64 {
        let mut c = self.counters.lock();
        let n = c.next_file;
        c.next_file += 1;
        n
    }

    /// The number of the live manifest.
    pub fn manifest_number(&self) -> u64 {
        self.log.lock().number
    }

    /// Makes `edit` durable in the manifest, then installs the version it describes. Tables the edit
    /// deletes (and does not add back: a move) are marked obsolete (removed once no reader holds them). Counters the edit leaves unset are
    /// filled from the current ones.
    ///
    /// # Errors
    /// `Io` (the caller poisons its handle: the edit's fate is unknown); `Corruption` for an inconsistent
    /// edit.
    pub fn log_and_apply(&self, edit: VersionEdit) -> Result<()> {
        self.log_and_apply_at(edit, None)
    }

    /// [`VersionSet::log_and_apply`], passing crash point `appended` (if any) between the append of the
    /// edit and its fsync.
    pub(crate) fn log_and_apply_at(
        &self,
        mut edit: VersionEdit,
        appended: Option<&'static str>,
    ) -> Result<()> {
        let mut log = self.log.lock();
        let base = self.current();
        let counters = {
            let mut c = self.counters.lock();
            if let Some(n) = edit.log_number {
                c.log_number = c.log_number.max(n);
            }
            if let Some(s) = edit.last_sequence {
                c.last_sequence = c.last_sequence.max(s);
            }
            edit.log_number = Some(c.log_number);
            edit.last_sequence = Some(c.last_sequence);
            edit.next_file = Some(c.next_file);
            *c
        };
        let next = base.apply(&edit, |m| self.opener.open(m, ReadPurpose::Compaction))?;
        next.check()?;
        let writer = log
            .writer
            .clone()
            .ok_or_else(|| Error::ReadOnly("manifest edit".to_string()))?;
        let end = writer.append(&edit.encode(), Durability::Flush)?;
        if let Some(point) = appended {
            crate::crash_point::hit(point);
        }
        writer.sync_through(end)?;
        let obsolete: Vec<Arc<TableHandle>> = base
            .all()
            .filter(|t| {
                edit.deleted.iter().any(|(_, n)| *n == t.meta.number)
                    && !edit.added.iter().any(|(_, m)| m.number == t.meta.number)
            })
            .cloned()
            .collect();
        *self.current.write() = Arc::new(next);
        for t in obsolete {
            t.mark_obsolete();
        }
        if writer.end().offset > ROLL_BYTES {
            self.roll(&mut log, counters)?;
        }
        Ok(())
    }

    fn roll(&self, log: &mut Log, mut counters: Counters) -> Result<()> {
        let number = self.new_file_number();
        counters.next_file = number + 1;
        let fresh = write_snapshot(&self.opener.storage, number, &self.current(), counters)?;
        let old = std::mem::replace(log, fresh);
        // The new CURRENT is durable: the old manifest may go. A failure leaves an orphan for the next open.
        crate::crash_point::hit("manifest.roll.before_old_delete");
        let _ = self.opener.storage.remove(&manifest_name(old.number));
        Ok(())
    }
}

/// Reads `CURRENT`: the live manifest's name and number.
///
/// # Errors
/// `Corruption` if `CURRENT` is missing or does not hold a manifest name and a newline; `Io`.
pub(crate) fn read_current(storage: &Storage) -> Result<(String, u64)> {
    let current = storage
        .read_file(CURRENT, 4096, ReadPurpose::Recovery)
        .map_err(|e| match e {
            Error::Io(io) if io.kind() == std::io::ErrorKind::NotFound => {
                Error::corruption(CURRENT, None, "missing")
            }
            e => e,
        })?;
    let name = std::str::from_utf8(&current)
        .ok()
        .and_then(|s| s.strip_suffix('\n'))
        .ok_or_else(|| Error::corruption(CURRENT, Some(0), "not a manifest name and a newline"))?;
    let number = parse_manifest_name(name).ok_or_else(|| {
        Error::corruption(CURRENT, Some(0), format!("names {name:?}, not a manifest"))
    })?;
    Ok((name.to_string(), number))
}

/// Applies `edit` (read from `file`) to the live tables per level and the counters, as replay does.
///
/// # Errors
/// `Corruption` if the edit deletes a table the level does not hold or adds one twice.
pub(crate) fn apply_to_maps(
    tables: &mut [BTreeMap<u64, TableMeta>; NUM_LEVELS],
    counters: &mut Counters,
    edit: &VersionEdit,
    file: &str,
) -> Result<()> {
    if let Some(n) = edit.log_number {
        counters.log_number = counters.log_number.max(n);
    }
    if let Some(n) = edit.next_file {
        counters.next_file = counters.next_file.max(n);
    }
    if let Some(s) = edit.last_sequence {
        counters.last_sequence = counters.last_sequence.max(s);
    }
    for (level, number) in &edit.deleted {
        let removed = tables.get_mut(*level).and_then(|m| m.remove(number));
        if removed.is_none() {
            return Err(Error::corruption(
                file,
                None,
                format!("edit deletes table {number} that level {level} does not hold"),
            ));
        }
    }
    for (level, meta) in &edit.added {
        if tables.iter().any(|m| m.contains_key(&meta.number)) {
            return Err(Error::corruption(
                file,
                None,
                format!("table {} added twice", meta.number),
            ));
        }
        if let Some(m) = tables.get_mut(*level) {
            m.insert(meta.number, meta.clone());
        }
    }
    Ok(())
}

/// Writes manifest `number` in another directory (a backup's), holding a snapshot of `version` and
/// `counters`, fsynced, and `CURRENT` naming it: [`write_snapshot`], the one encoder of a snapshot.
///
/// # Errors
/// `Io`.
pub(super) fn write_copy(
    storage: &Storage,
    number: u64,
    version: &Version,
    counters: Counters,
) -> Result<()> {
    write_snapshot(storage, number, version, counters).map(drop)
}

/// Writes manifest `number` holding a snapshot of `version` and `counters`, fsyncs it, and points
/// `CURRENT` at it.
fn write_snapshot(
    storage: &Storage,
    number: u64,
    version: &Version,
    counters: Counters,
) -> Result<Log> {
    let writer = WalWriter::create_log(storage, number, manifest_name, LogKind::Manifest)?;
    let edit = VersionEdit {
        log_number: Some(counters.log_number),
        next_file: Some(counters.next_file.max(number + 1)),
        last_sequence: Some(counters.last_sequence),
        added: version
            .levels
            .iter()
            .enumerate()
            .flat_map(|(level, files)| files.iter().map(move |t| (level, t.meta.clone())))
            .collect(),
        deleted: Vec::new(),
    };
    writer.append(&edit.encode(), Durability::Sync)?;
    crate::crash_point::hit("manifest.roll.new_written");
    let current = format!("{}\n", manifest_name(number));
    storage.write_file_atomic_at(
        CURRENT,
        current.as_bytes(),
        WritePurpose::Manifest,
        Some("manifest.roll.current_tmp_synced"),
    )?;
    crate::crash_point::hit("manifest.roll.after_rename");
    Ok(Log {
        writer: Some(writer),
        number,
    })
}

/// Checks the recovered log number against the WAL segments in the directory: the segment it names (the
/// first live segment) must exist. Segments are created in increasing number order, each with a
/// directory fsync before any manifest edit names it (open creates its new segment before the edit that
/// names it, a memtable switch rotates before the flush edit), and a segment is deleted only after a
/// synced manifest edit has moved the log number past it; so after any crash the first live segment
/// exists. It missing means it was deleted, or the manifest lost synced edits (cut after an early
/// record) and names an old log number whose segment a later flush deleted: refused here, before the
/// rollover rewrites the manifest and before orphan collection could delete the tables the lost edits
/// added. Log number 0 means the edit that finished the database's creation is gone: the manifest
/// itself is damaged.
fn check_log_number(storage: &Storage, manifest: &str, log_number: u64) -> Result<()> {
    if log_number == 0 {
        return Err(Error::corruption(
            manifest,
            None,
            "log number 0: the edit that finished the database's creation is missing",
        ));
    }
    let segments = crate::wal::list_segments(storage)?;
    if !segments.contains(&log_number) {
        return Err(Error::corruption(
            crate::wal::segment_name(log_number),
            None,
            format!(
                "missing, though {manifest} names it as the first live WAL segment (the segment was \
                 deleted, or the manifest lost the edits that made it obsolete)"
            ),
        ));
    }
    Ok(())
}
