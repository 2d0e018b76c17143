//! LSM files: one table ([`sst`]) and the manifest ([`manifest`]).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use crate::error::{EngineKind, Error, Result};
use crate::lsm::edit::{NUM_LEVELS, VersionEdit};
use crate::lsm::key::{self, ValueKind};
use crate::lsm::manifest::{Counters, apply_to_maps, read_current};
use crate::lsm::sstable::block::BlockIter;
use crate::lsm::sstable::format::{BLOCK_ZSTD, BlockHandle};
use crate::lsm::sstable::{
    BlockCache, Compression, FORMAT_VERSION, ReadPath, Table, TableIter, TableMeta,
    parse_table_file_name,
};
use crate::storage::ReadPurpose;
use crate::wal::{RecoveryMode, replay_file};

/// What a table entry is. New kinds (a range tombstone) may be added.
///
/// # Examples
///
/// See [`sst`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum EntryKind {
    /// A value.
    Put,
    /// A tombstone: the key is deleted as of this version.
    Delete,
}

impl From<ValueKind> for EntryKind {
    fn from(kind: ValueKind) -> Self {
        match kind {
            ValueKind::Put => EntryKind::Put,
            ValueKind::Delete => EntryKind::Delete,
        }
    }
}

impl std::fmt::Display for EntryKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            EntryKind::Put => "put",
            EntryKind::Delete => "delete",
        })
    }
}

/// An internal key decoded: the user key, the sequence number and the kind of one version.
///
/// # Examples
///
/// See [`sst`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct InternalKey {
    /// The user key.
    pub key: Vec<u8>,
    /// The sequence number of the version.
    pub sequence: u64,
    /// What the version is.
    pub kind: EntryKind,
}

impl InternalKey {
    /// Decodes `ikey`; `what` and `file`/`offset` name it in the error.
    fn decode(ikey: &[u8], file: &str, offset: Option<u64>, what: &str) -> Result<Self> {
        let (key, sequence, kind) = key::decode(ikey).ok_or_else(|| {
            Error::corruption(file, offset, format!("{what} is not an internal key"))
        })?;
        Ok(InternalKey {
            key: key.to_vec(),
            sequence,
            kind: kind.into(),
        })
    }
}

/// A region of a file: offset and stored size (without a block's 9-byte trailer).
///
/// # Examples
///
/// See [`sst`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct BlockRegion {
    /// Offset in the file.
    pub offset: u64,
    /// Stored bytes.
    pub size: u64,
}

impl From<BlockHandle> for BlockRegion {
    fn from(h: BlockHandle) -> Self {
        BlockRegion {
            offset: h.offset,
            size: h.size,
        }
    }
}

/// A table's footer: where its index, properties and filter are.
///
/// # Examples
///
/// See [`sst`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SstFooter {
    /// The index block.
    pub index: BlockRegion,
    /// The properties block.
    pub properties: BlockRegion,
    /// The filter region (size 0: no filter).
    pub filter: BlockRegion,
    /// The table format version.
    pub format_version: u32,
}

/// How a data block is stored.
///
/// # Examples
///
/// See [`sst`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BlockCompression {
    /// Raw.
    None,
    /// One zstd frame.
    Zstd,
}

/// One data block, read and checked (trailer CRC, decompression, entry structure).
///
/// # Examples
///
/// See [`sst`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct DataBlock {
    /// Where the block is stored.
    pub region: BlockRegion,
    /// Decoded bytes.
    pub raw_size: u64,
    /// How it is stored.
    pub compression: BlockCompression,
    /// Entries in it.
    pub entries: u64,
}

/// One index entry: a data block and its separator key (≥ the block's last key, < the next block's
/// first).
///
/// # Examples
///
/// See [`sst`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct IndexEntry {
    /// The separator.
    pub separator: InternalKey,
    /// The data block it points to.
    pub block: BlockRegion,
}

/// The bloom filter region.
///
/// # Examples
///
/// See [`sst`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct FilterInfo {
    /// Where it is stored.
    pub region: BlockRegion,
    /// Hash functions (`None` if the filter is damaged and ignored).
    pub hash_functions: Option<u32>,
    /// The bits per key option the table was written with.
    pub bits_per_key: u32,
    /// Why the filter fails its checks, if it does: readers ignore it (a damaged filter is never trusted)
    /// and `verify` reports it.
    pub damage: Option<String>,
}

/// A table's properties block.
///
/// # Examples
///
/// See [`sst`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SstProperties {
    /// Entries (versions).
    pub entries: u64,
    /// Data blocks.
    pub data_blocks: u64,
    /// The smallest sequence number (0 if empty).
    pub min_seq: u64,
    /// The largest sequence number (0 if empty).
    pub max_seq: u64,
    /// The sum of the decoded data block lengths.
    pub raw_data_bytes: u64,
    /// The data blocks as stored, trailers included.
    pub stored_data_bytes: u64,
    /// The compression option the table was written with.
    pub compression: Compression,
    /// The block size option.
    pub block_size: u32,
    /// The restart interval option.
    pub restart_interval: u32,
    /// The smallest key (`None` if the table is empty).
    pub smallest: Option<InternalKey>,
    /// The largest key (`None` if the table is empty).
    pub largest: Option<InternalKey>,
}

/// A table file decoded: everything but the entries, which [`SstFile::entries`] streams.
///
/// # Examples
///
/// See [`sst`].
#[derive(Debug)]
#[non_exhaustive]
pub struct SstFile {
    /// The table number (from the file name, which the filter's seed depends on).
    pub number: u64,
    /// The file's length.
    pub file_size: u64,
    /// The footer.
    pub footer: SstFooter,
    /// The properties block.
    pub properties: SstProperties,
    /// The index, in key order.
    pub index: Vec<IndexEntry>,
    /// The data blocks, in file order.
    pub data_blocks: Vec<DataBlock>,
    /// The filter (`None`: the table has none).
    pub filter: Option<FilterInfo>,
    table: Arc<Table>,
}

/// One table entry, as [`SstFile::entries`] yields it.
///
/// # Examples
///
/// See [`sst`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SstEntry {
    /// The user key, sequence and kind.
    pub key: InternalKey,
    /// The value's length (0 for a tombstone).
    pub value_len: u64,
}

/// The entries of a table in key order (user key ascending, newest version first).
///
/// # Examples
///
/// See [`sst`].
#[derive(Debug)]
pub struct SstEntries {
    iter: TableIter,
    name: String,
    started: bool,
    failed: bool,
}

impl Iterator for SstEntries {
    type Item = Result<SstEntry>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let moved = if self.started {
            self.iter.next()
        } else {
            self.started = true;
            self.iter.seek_to_first()
        };
        let entry = moved.and_then(|()| {
            if !self.iter.valid() {
                return Ok(None);
            }
            let key = InternalKey::decode(self.iter.key(), &self.name, None, "an entry key")?;
            Ok(Some(SstEntry {
                key,
                value_len: self.iter.value().len() as u64,
            }))
        });
        if entry.is_err() {
            self.failed = true;
        }
        entry.transpose()
    }
}

impl SstFile {
    /// The table's entries, read block by block (each checked as a read checks it).
    ///
    /// # Examples
    ///
    /// See [`sst`].
    pub fn entries(&self) -> SstEntries {
        SstEntries {
            iter: self.table.iter(ReadPurpose::Verify),
            name: crate::lsm::sstable::table_file_name(self.number),
            started: false,
            failed: false,
        }
    }
}

/// Opens the table at `path` (named `NNNNNN.sst`) as the LSM's reader does — footer, properties, index
/// and filter checked — then reads and checks every data block.
///
/// # Examples
///
/// ```
/// use rumdb::inspect::{EntryKind, sst};
/// use rumdb::{Engine, EngineExt, LsmEngine, LsmOptions};
/// let dir = tempfile::tempdir()?;
/// let db = LsmEngine::open(dir.path(), LsmOptions::default())?;
/// db.put("a", "1")?;
/// db.delete("b")?;
/// db.flush()?;
/// db.close()?;
/// let manifest = rumdb::inspect::manifest(dir.path())?;
/// let table = manifest.levels.iter().flatten().next().expect("one table"); // on L0 (or L1, settled)
/// let file = sst(&dir.path().join(format!("{:06}.sst", table.number)))?;
/// assert_eq!(file.data_blocks.len(), 1);
/// let kinds: Vec<EntryKind> = file.entries().map(|e| e.map(|e| e.key.kind)).collect::<Result<_, _>>()?;
/// assert_eq!(kinds, [EntryKind::Put, EntryKind::Delete]);
/// # Ok::<(), rumdb::Error>(())
/// ```
///
/// # Errors
/// `InvalidArgument` if the file is not named as a table; `Corruption` naming the file and offset of the
/// first damaged structure; `UnsupportedVersion`; `Io`.
pub fn sst(path: &Path) -> Result<SstFile> {
    let (storage, name) = super::split_path(path)?;
    let number = parse_table_file_name(&name).ok_or_else(|| {
        Error::invalid(format!(
            "{name} is not a table's name (NNNNNN.sst: the number seeds its filter)"
        ))
    })?;
    let file_size = storage.open_required(&name, false)?.len()?;
    let table = Table::open(
        &storage,
        number,
        file_size,
        ReadPath::Pread,
        BlockCache::new(0),
        ReadPurpose::Verify,
    )?;
    let footer = *table.footer();
    let mut index = Vec::new();
    let mut data_blocks = Vec::new();
    let mut it = BlockIter::new(Arc::clone(table.index_block()));
    it.seek_to_first()?;
    while it.valid() {
        let handle = table.handle(&it)?;
        let separator =
            InternalKey::decode(it.key(), &name, Some(footer.index.offset), "an index key")?;
        let (trailer, entries) = table.data_block_summary(handle)?;
        index.push(IndexEntry {
            separator,
            block: handle.into(),
        });
        data_blocks.push(DataBlock {
            region: handle.into(),
            raw_size: trailer.raw_len as u64,
            compression: if trailer.kind == BLOCK_ZSTD {
                BlockCompression::Zstd
            } else {
                BlockCompression::None
            },
            entries: entries as u64,
        });
        it.next()?;
    }
    let props = table.properties();
    let at = Some(footer.properties.offset);
    let bound = |ikey: &[u8], what: &str| {
        (!ikey.is_empty())
            .then(|| InternalKey::decode(ikey, &name, at, what))
            .transpose()
    };
    let properties = SstProperties {
        entries: props.entries,
        data_blocks: props.data_blocks,
        min_seq: props.min_seq,
        max_seq: props.max_seq,
        raw_data_bytes: props.raw_data_bytes,
        stored_data_bytes: props.stored_data_bytes,
        compression: props.compression,
        block_size: props.block_size,
        restart_interval: props.restart_interval,
        smallest: bound(&props.smallest, "the smallest key")?,
        largest: bound(&props.largest, "the largest key")?,
    };
    let filter = (footer.filter.size > 0).then(|| FilterInfo {
        region: footer.filter.into(),
        hash_functions: table.filter_hash_functions(),
        bits_per_key: props.bloom_bits_per_key,
        damage: table.filter_damage().map(|(_, why)| why.to_string()),
    });
    Ok(SstFile {
        number,
        file_size,
        footer: SstFooter {
            index: footer.index.into(),
            properties: footer.properties.into(),
            filter: footer.filter.into(),
            format_version: FORMAT_VERSION,
        },
        properties,
        index,
        data_blocks,
        filter,
        table,
    })
}

/// A table as the manifest records it.
///
/// # Examples
///
/// See [`manifest`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct TableSummary {
    /// Its level.
    pub level: usize,
    /// The table number (its file is `NNNNNN.sst`).
    pub number: u64,
    /// The file's length.
    pub file_size: u64,
    /// Entries (versions).
    pub entries: u64,
    /// The smallest sequence number.
    pub min_seq: u64,
    /// The largest sequence number.
    pub max_seq: u64,
    /// The smallest user key (empty for an empty table).
    pub smallest: Vec<u8>,
    /// The largest user key (empty for an empty table).
    pub largest: Vec<u8>,
}

impl TableSummary {
    fn new(level: usize, m: &TableMeta) -> Self {
        TableSummary {
            level,
            number: m.number,
            file_size: m.file_size,
            entries: m.entries,
            min_seq: m.min_seq,
            max_seq: m.max_seq,
            smallest: key::user_key(&m.smallest).to_vec(),
            largest: key::user_key(&m.largest).to_vec(),
        }
    }
}

/// A table an edit removes: its level and number.
///
/// # Examples
///
/// See [`manifest`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct TableRef {
    /// The level.
    pub level: usize,
    /// The table number.
    pub number: u64,
}

/// One version edit of the manifest.
///
/// # Examples
///
/// See [`manifest`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ManifestEdit {
    /// Where the record starts in the manifest.
    pub offset: u64,
    /// WAL segments below this are obsolete.
    pub log_number: Option<u64>,
    /// The next unused file number.
    pub next_file: Option<u64>,
    /// The largest sequence number in any table.
    pub last_sequence: Option<u64>,
    /// Tables added.
    pub added: Vec<TableSummary>,
    /// Tables removed.
    pub deleted: Vec<TableRef>,
}

/// The live manifest replayed: every edit, and the tables live after the last.
///
/// # Examples
///
/// See [`manifest`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Manifest {
    /// The manifest's file name (what `CURRENT` names).
    pub name: String,
    /// The edits in log order; the first is the snapshot.
    pub edits: Vec<ManifestEdit>,
    /// The live tables per level, each level by table number.
    pub levels: Vec<Vec<TableSummary>>,
    /// The first live WAL segment.
    pub log_number: u64,
    /// The next unused file number.
    pub next_file: u64,
    /// The largest sequence number the edits record.
    pub last_sequence: u64,
    /// Where a torn last edit starts, if one was dropped (as recovery drops it).
    pub truncated_at: Option<u64>,
    /// Bytes dropped with it.
    pub truncated_bytes: u64,
}

/// Reads `CURRENT` and replays the manifest it names, as recovery does (a torn last edit dropped,
/// damage to a synced edit refused), keeping every edit. The tables are not opened.
///
/// # Examples
///
/// ```
/// use rumdb::{Engine, EngineExt, LsmEngine, LsmOptions};
/// let dir = tempfile::tempdir()?;
/// let db = LsmEngine::open(dir.path(), LsmOptions::default())?;
/// db.put("apple", "1")?;
/// db.put("pear", "2")?;
/// db.flush()?;
/// db.close()?;
/// let m = rumdb::inspect::manifest(dir.path())?;
/// let tables: Vec<_> = m.levels.iter().flatten().collect(); // on L0 (or L1, settled)
/// assert_eq!(tables.len(), 1);
/// assert_eq!(tables[0].smallest, b"apple");
/// assert_eq!(tables[0].largest, b"pear");
/// assert!(m.edits.iter().any(|e| !e.added.is_empty()));
/// # Ok::<(), rumdb::Error>(())
/// ```
///
/// # Errors
/// `WrongEngine` for a B-tree directory; `Corruption` naming the file and offset (a damaged
/// `IDENTITY`, a missing or malformed `CURRENT`, a damaged synced edit, a manifest without its
/// snapshot); `Io`.
pub fn manifest(dir: &Path) -> Result<Manifest> {
    let id = super::identity(dir)?;
    if id.engine != EngineKind::Lsm {
        return Err(Error::WrongEngine {
            expected: EngineKind::Lsm,
            found: id.engine,
        });
    }
    let storage = super::read_only(dir)?;
    let (name, number) = read_current(&storage)?;
    let mut tables: [BTreeMap<u64, TableMeta>; NUM_LEVELS] = Default::default();
    let mut counters = Counters::default();
    let mut edits = Vec::new();
    let outcome = replay_file(
        &storage,
        &name,
        number,
        RecoveryMode::TolerateCorruptedTail,
        |rec| {
            let edit = VersionEdit::decode(rec.payload, &name, rec.offset)?;
            apply_to_maps(&mut tables, &mut counters, &edit, &name)?;
            edits.push(ManifestEdit {
                offset: rec.offset,
                log_number: edit.log_number,
                next_file: edit.next_file,
                last_sequence: edit.last_sequence,
                added: edit
                    .added
                    .iter()
                    .map(|(level, m)| TableSummary::new(*level, m))
                    .collect(),
                deleted: edit
                    .deleted
                    .iter()
                    .map(|&(level, number)| TableRef { level, number })
                    .collect(),
            });
            Ok(())
        },
    )?;
    if edits.is_empty() {
        return Err(Error::corruption(
            &name,
            Some(0),
            "no complete snapshot record, though CURRENT names the manifest",
        ));
    }
    Ok(Manifest {
        levels: tables
            .iter()
            .enumerate()
            .map(|(level, m)| m.values().map(|t| TableSummary::new(level, t)).collect())
            .collect(),
        name,
        edits,
        log_number: counters.log_number,
        next_file: counters.next_file,
        last_sequence: counters.last_sequence,
        truncated_at: outcome.truncated_at.map(|(_, at)| at),
        truncated_bytes: outcome.truncated_bytes,
    })
}
