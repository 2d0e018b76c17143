//! Opening a B-tree database: creation, or recovery (the steps are in the [module docs](super)).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use parking_lot::{Mutex, RwLock};

use super::options::valid_page_size;
use super::space::Space;
use super::*;

impl BTreeEngine {
    /// Opens the B-tree database in `dir`, creating it (and the directory) if there is none and
    /// `options.create` allows. Opening recovers after a crash: it replays the WAL onto the last
    /// checkpoint and checkpoints; what it found is in
    /// [`Stats::recovery`](crate::Stats::recovery). The page size is fixed when the database is created.
    /// The handle holds the directory's lock until it is closed or dropped.
    ///
    /// # Examples
    ///
    /// ```
    /// use rumdb::{BTreeEngine, BTreeOptions, Engine, EngineExt};
    /// let dir = tempfile::tempdir()?;
    /// let options = BTreeOptions { page_size: 8192, ..BTreeOptions::default() };
    /// let db = BTreeEngine::open(dir.path(), options)?;
    /// db.put(b"k", b"v")?;
    /// db.close()?;
    /// // An existing database keeps its page size, whatever the options say.
    /// let db = BTreeEngine::open(dir.path(), BTreeOptions::default())?;
    /// assert_eq!(db.get(b"k")?.as_deref(), Some(&b"v"[..]));
    /// # Ok::<(), rumdb::Error>(())
    /// ```
    ///
    /// # Errors
    /// - [`Error::InvalidArgument`]: a bad option (checked before the directory is touched), a database
    ///   exists and `options.create.error_if_exists` is set, or none exists and
    ///   `options.create.create_if_missing` is false (a read-only open never creates one);
    /// - [`Error::Locked`]: another handle, in this process or another, has the database open;
    /// - [`Error::WrongEngine`]: the directory holds a database of the other engine;
    /// - [`Error::UnsupportedVersion`]: it was written by a newer format version;
    /// - [`Error::NotADatabase`]: the directory holds files that are not a database;
    /// - [`Error::Corruption`]: damaged or missing files (the data file, both header slots, a WAL segment the header names;
    ///   damage in synced WAL records);
    /// - [`Error::Io`]: the directory cannot be created or read, or a file operation failed (the
    ///   message names the path).
    ///
    /// # Read-only
    ///
    /// With `options.read_only` the directory must exist and hold a database; nothing in it is created
    /// or changed (it may be on a read-only filesystem).
    ///
    /// ```
    /// use rumdb::{BTreeEngine, BTreeOptions, Engine, EngineExt, Error};
    /// let dir = tempfile::tempdir()?;
    /// BTreeEngine::open(dir.path(), BTreeOptions::default())?.put(b"k", b"v")?;
    /// let ro = BTreeEngine::open(dir.path(), BTreeOptions { read_only: true, ..BTreeOptions::default() })?;
    /// assert_eq!(ro.get(b"k")?.as_deref(), Some(&b"v"[..]));
    /// assert!(matches!(ro.flush(), Err(Error::ReadOnly(_))));
    /// # Ok::<(), rumdb::Error>(())
    /// ```
    pub fn open(dir: &Path, options: BTreeOptions) -> Result<Self> {
        options.check()?;
        let storage = Storage::for_open(dir, options.create.create_if_missing, options.read_only)?;
        Self::open_with(storage, options)
    }

    /// Opens (or creates) a B-tree database on any storage: test machinery (the simulated disk of
    /// `rumdb::testing`), hidden from the documentation.
    ///
    /// # Errors
    /// `InvalidArgument` (bad options, `error_if_exists`, nothing to open), `Locked`, `WrongEngine`,
    /// `UnsupportedVersion`, `Corruption` (damaged or missing data file, both header slots bad), `Io`.
    #[doc(hidden)]
    pub fn open_with(storage: Storage, options: BTreeOptions) -> Result<Self> {
        options.check()?;
        let read_only = options.read_only;
        let storage = if read_only {
            storage.into_read_only()
        } else {
            storage
        };
        let opened = identity::open_dir(
            &storage,
            EngineKind::BTree,
            BTREE_FORMAT_VERSION,
            options.page_size as u32,
            options.create,
            read_only,
        )?;
        if opened.identity.format_version != BTREE_FORMAT_VERSION {
            return Err(Error::UnsupportedVersion {
                found: opened.identity.format_version,
                supported: BTREE_FORMAT_VERSION,
            });
        }
        let page_size = opened.identity.page_size as usize;
        if !valid_page_size(page_size) {
            return Err(Error::corruption(
                identity::IDENTITY_FILE,
                Some(16),
                format!("page size {page_size}"),
            ));
        }
        let geo = Geometry { page_size };
        let mut report = RecoveryReport::default();
        let (file, header, other_slot_bad) = if opened.creating {
            let (file, header) = create_data_file(&storage, &geo)?;
            (file, header, None)
        } else {
            open_data_file(&storage, &geo, !read_only)?
        };
        let capacity = options.pool_bytes / page_size;
        let core = if read_only {
            Core::new_read_only(storage, opened.lock, header.lsn)
        } else {
            Core::new(storage, opened.lock, options.background, header.lsn)
        };
        let store = PageStore {
            geo,
            pool: Pool::new(capacity, page_size, (!read_only).then(|| file.clone())),
            file,
            max_lsn: AtomicU64::new(header.lsn),
        };
        let (free, list_pages) = load_free_list(&store, &header)?;
        let shared = Shared {
            core,
            store,
            tree: RwLock::new(TreeState {
                root: header.root,
                height: header.height,
                page_count: header.page_count,
                space: Space::open(free, list_pages),
                version: header.lsn,
                overlay: overlay::Overlay::default(),
                too_old_through: None,
                closed: false,
                torn: None,
            }),
            checkpoint_counter: AtomicU64::new(header.counter),
            checkpoint_wal_bytes: options.checkpoint_wal_bytes,
            checkpoint_interval: options.checkpoint_interval,
            last_checkpoint: Mutex::new(Instant::now()),
            durable_lsn: AtomicU64::new(header.lsn),
            job: Mutex::new(None),
            in_flight: AtomicBool::new(false),
            header_gate: Mutex::new(()),
            snapshot_memory: options.snapshot_memory as u64,
            checkpoints: AtomicU64::new(0),
            wal_first: AtomicU64::new(header.wal_first),
            recovery_first: AtomicU64::new(header.wal_first),
        };
        // Replay the batches the data file does not hold from the segments at or above the first live
        // one the header names (0: not recorded, every segment), start the new segment, make the
        // replayed batches durable with a checkpoint whose header names the new segment, and only then
        // drop the replayed segments (older ones are orphans a crashed checkpoint left).
        let storage = &shared.core.storage;
        let all = wal::list_segments(storage)?;
        let first = (header.wal_first != 0).then_some(header.wal_first);
        if let (Some(f), Some(why)) = (first, &other_slot_bad)
            && !all.contains(&f)
        {
            // The usual cause: the newest slot is damaged, and the older one names a segment the newer
            // checkpoint deleted. The damage is in the data file.
            return Err(Error::corruption(
                DATA_FILE,
                Some(0),
                format!(
                    "the header slot in use names WAL segment {} as the first live one, which is \
                     missing (a later checkpoint deleted it), and the other slot is invalid ({why})",
                    wal::segment_name(f)
                ),
            ));
        }
        let segments: Vec<u64> = all
            .iter()
            .copied()
            .filter(|s| first.is_none_or(|f| *s >= f))
            .collect();
        let mut applied = 0u64;
        let outcome = wal::replay(
            storage,
            &segments,
            first,
            RecoveryMode::TolerateCorruptedTail,
            |rec| {
                let name = wal::segment_name(rec.segment);
                let (seq, batch) = WriteBatch::decode(rec.payload, &name, rec.offset)?;
                // The batch's operations took sequences seq..=last; the data file holds every batch whose
                // last sequence is at most its header's LSN.
                let last = seq.saturating_add(batch.len() as u64).saturating_sub(1);
                let version = shared.tree.read().version;
                if batch.is_empty() || last <= version {
                    return Ok(());
                }
                // Never backwards (a log written with one sequence per batch could), so page LSNs stay
                // at most the header's.
                shared.apply(&batch, last.max(version + 1))?;
                applied += 1;
                if read_only && shared.store.pool.dirty_count() > capacity {
                    return Err(Error::invalid(format!(
                        "read-only open: the WAL holds batches the data file lacks, and applying them \
                         in memory needs more than the pool's {capacity} pages; raise pool_bytes, or \
                         open read-write once to checkpoint them"
                    )));
                }
                Ok(())
            },
        )?;
        if read_only {
            report.segments_replayed = outcome.segments;
            report.records_replayed = applied;
            report.truncated_bytes = outcome.truncated_bytes;
            report.truncated_at = outcome.truncated_at;
            let last_seq = shared.tree.read().version;
            shared.core.start_read_only(last_seq, report);
            return Ok(BTreeEngine {
                shared: Arc::new(shared),
            });
        }
        // The new segment exists durably (LINK to the last replayed one, directory fsync'd) before the
        // header names it: a crash in between leaves it as an empty trailing segment, which replay
        // accepts.
        let next_segment = all.last().map_or(1, |s| s + 1);
        let writer = WalWriter::create(storage, next_segment, outcome.next_link)?;
        crate::crash_point::hit("wal.open.before_named");
        shared.recovery_first.store(next_segment, Ordering::Release);
        shared.checkpoint()?;
        for s in all.iter().filter(|s| **s < next_segment) {
            storage.remove(&wal::segment_name(*s))?;
        }
        let wal = writer;
        if opened.creating {
            identity::finish_create(storage, &opened.identity)?;
        }
        report.segments_replayed = outcome.segments;
        report.records_replayed = applied;
        report.truncated_bytes = outcome.truncated_bytes;
        report.truncated_at = outcome.truncated_at;
        let last_seq = shared.tree.read().version;
        shared.core.start(wal, last_seq, report);
        let shared = Arc::new(shared);
        if options.background == Background::Threads {
            pipeline::spawn_worker(&shared, "rumdb-btree-checkpoint")?;
        }
        Ok(BTreeEngine { shared })
    }
}

/// Writes a new data file: header slot 0 (counter 0), an empty slot 1, and an empty root leaf at page 2.
fn create_data_file(storage: &Storage, geo: &Geometry) -> Result<(File, Header)> {
    let header = Header {
        version: BTREE_FORMAT_VERSION,
        page_size: geo.page_size as u32,
        counter: 0,
        lsn: 0,
        root: 2,
        height: 0,
        free_head: 0,
        free_count: 0,
        page_count: 3,
        wal_first: 0,
    };
    let file = storage.create_new(DATA_FILE)?;
    let mut headers = vec![0u8; 2 * geo.page_size];
    page::put_at(&mut headers, 0, &header.encode());
    file.write_at(0, &headers, WritePurpose::Header)?;
    let mut root = LeafNode::default().encode(0, geo);
    page::seal(&mut root, 2);
    file.write_at(geo.offset(2), &root, WritePurpose::PageWriteback)?;
    file.sync_data()?;
    storage.sync_dir()?;
    Ok((file, header))
}

/// Opens the data file and picks its header slot; also returns why the other slot is invalid, if it is.
pub(super) fn open_data_file(
    storage: &Storage,
    geo: &Geometry,
    writable: bool,
) -> Result<(File, Header, Option<String>)> {
    let file = storage.open_required(DATA_FILE, writable)?;
    let ps = geo.page_size as u32;
    let slot = |n: u32| -> Result<Header> {
        let mut buf = [0u8; SLOT_BYTES];
        let got = file.read_at(geo.offset(n), &mut buf, ReadPurpose::Recovery)?;
        Header::decode(
            buf.get(..got).unwrap_or_default(),
            n,
            ps,
            BTREE_FORMAT_VERSION,
        )
    };
    let (a, b) = (slot(0), slot(1));
    let other_bad = match (&a, &b) {
        (Ok(_), Err(e)) | (Err(e), Ok(_)) => Some(e.to_string()),
        _ => None,
    };
    let header = Header::choose(a, b)?;
    let len = file.len()?;
    let need = geo.offset(header.page_count);
    if len < need {
        return Err(Error::corruption(
            DATA_FILE,
            Some(len),
            format!(
                "file is {len} bytes, the header describes {} pages ({need} bytes)",
                header.page_count
            ),
        ));
    }
    Ok((file, header, other_bad))
}

/// The free list `header` names: the free pages and the pages that hold the list. Every page is checked,
/// the chain has exactly the pages the count needs, and every entry is a distinct page in range that
/// holds no part of the list.
///
/// # Errors
/// `Corruption`, `Io`.
pub(super) fn load_free_list(store: &PageStore, header: &Header) -> Result<(Vec<u32>, Vec<u32>)> {
    let geo = store.geo;
    let count = header.free_count as usize;
    let want = count.div_ceil(geo.free_list_capacity());
    let mut free = std::collections::BTreeSet::new();
    let mut pages = Vec::with_capacity(want);
    let mut pgno = header.free_head;
    for _ in 0..want {
        if !(2..header.page_count).contains(&pgno) || pages.contains(&pgno) {
            return Err(geo.corrupt(pgno, "free-list page out of range or listed twice"));
        }
        let bytes = store.read_checked(pgno, ReadPurpose::Recovery)?;
        if page::page_type(&bytes) != Some(page::PageType::Free) {
            return Err(geo.corrupt(pgno, "free-list chain holds a page of another type"));
        }
        for e in page::free_list_entries(&bytes) {
            if !(2..header.page_count).contains(&e) || !free.insert(e) {
                return Err(geo.corrupt(pgno, format!("free-list entry {e} out of range or twice")));
            }
        }
        pages.push(pgno);
        pgno = page::link_a(&bytes);
    }
    if pgno != 0 || free.len() != count || pages.iter().any(|p| free.contains(p)) {
        return Err(geo.corrupt(
            header.free_head,
            format!("the free list does not hold the header's {count} pages in {want} list pages"),
        ));
    }
    Ok((free.into_iter().collect(), pages))
}
