//! The one API both engines implement: [`Engine`], its iterator [`Iter`], [`Snapshot`], write options and
//! limits.

use std::ops::{
    Bound, Range, RangeBounds, RangeFrom, RangeFull, RangeInclusive, RangeTo, RangeToInclusive,
};

use std::path::Path;

use bytes::Bytes;

use crate::backup::BackupInfo;
use crate::batch::WriteBatch;
use crate::error::{EngineKind, Error, Result};
use crate::stats::{Stats, VerifyReport};

mod iter;
mod range;
mod snapshot;

pub use iter::{Cursor, Iter, Keys};
pub use range::KeyRange;
pub use snapshot::{Snapshot, SnapshotSource};

/// Where background work runs: LSM flushes and compactions, B-tree checkpoints.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Background {
    /// On one background worker thread owned by the handle.
    #[default]
    Threads,
    /// Inline, at deterministic points: in the write that crosses a threshold, or in an explicit
    /// `flush`/`compact` call (B-tree: the writer whose batch makes a checkpoint due, and `flush`). Every
    /// simulated-backend test uses it so seeds reproduce.
    Manual,
}

/// A key and its value, as iterators yield them: two [`Bytes`], each copied out of the engine once and
/// shared from then on (cloning one counts a reference).
///
/// # Examples
///
/// ```
/// use rumdb::{Engine, EngineExt, KvPair, LsmEngine, LsmOptions};
/// let dir = tempfile::tempdir()?;
/// let db = LsmEngine::open(dir.path(), LsmOptions::default())?;
/// db.put("k", "v")?;
/// let (key, value): KvPair = db.first()?.expect("one entry");
/// assert_eq!((key, value), ("k".into(), "v".into()));
/// # Ok::<(), rumdb::Error>(())
/// ```
pub type KvPair = (Bytes, Bytes);

/// How durable a write is when its call returns.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Durability {
    /// fsync'd before the call returns: survives power loss. Concurrent `Sync` writers share one fsync
    /// (group commit).
    Sync,
    /// Handed to the operating system before the call returns: survives a killed process, not power loss.
    #[default]
    Flush,
    /// May sit in the process until the next sync or flush: fastest, lost if the process dies.
    Buffered,
}

/// Options of one write.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WriteOptions {
    /// How durable the write is when the call returns (default [`Durability::Flush`]).
    pub durability: Durability,
}

impl WriteOptions {
    /// Options with the given durability.
    pub fn new(durability: Durability) -> Self {
        WriteOptions { durability }
    }

    /// `Durability::Sync`.
    pub fn sync() -> Self {
        Self::new(Durability::Sync)
    }
}

/// Largest value either engine accepts: 64 MiB.
pub const MAX_VALUE_LEN: usize = 64 << 20;
/// Largest encoded batch either engine accepts: 256 MiB.
pub const MAX_BATCH_LEN: usize = 256 << 20;
/// Largest key the LSM engine accepts: 64 KiB.
pub const LSM_MAX_KEY_LEN: usize = 64 << 10;

/// What an engine accepts; anything larger is [`Error::InvalidArgument`] and nothing is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest key in bytes.
    pub max_key_len: usize,
    /// Largest value in bytes.
    pub max_value_len: usize,
    /// Largest encoded batch in bytes ([`WriteBatch::encoded_len`]).
    pub max_batch_len: usize,
}

/// The limits of every engine (the LSM, the B-tree with its overflow keys, and the reference model): code
/// written for one engine works on the others.
pub(crate) const LIMITS: Limits = Limits {
    max_key_len: LSM_MAX_KEY_LEN,
    max_value_len: MAX_VALUE_LEN,
    max_batch_len: MAX_BATCH_LEN,
};

impl Limits {
    /// Checks every entry of `batch` and its size: keys (both bounds of a range delete), values, and that
    /// no range delete is inverted.
    ///
    /// # Errors
    /// `InvalidArgument` naming the first limit passed, or an inverted range.
    pub fn check(&self, batch: &WriteBatch) -> Result<()> {
        if batch.encoded_len() > self.max_batch_len {
            return Err(Error::invalid(format!(
                "batch of {} bytes is over the limit of {}",
                batch.encoded_len(),
                self.max_batch_len
            )));
        }
        for op in batch {
            self.check_key(op.key())?;
            match op {
                crate::BatchOp::Put { value, .. } if value.len() > self.max_value_len => {
                    return Err(Error::invalid(format!(
                        "value of {} bytes is over the limit of {}",
                        value.len(),
                        self.max_value_len
                    )));
                }
                crate::BatchOp::DeleteRange { start, end } => {
                    self.check_key(end)?;
                    if start > end {
                        return Err(Error::invalid("range delete whose start is above its end"));
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Checks one key.
    ///
    /// # Errors
    /// `InvalidArgument` if the key is too long.
    pub fn check_key(&self, key: &[u8]) -> Result<()> {
        if key.len() > self.max_key_len {
            return Err(Error::invalid(format!(
                "key of {} bytes is over the limit of {}",
                key.len(),
                self.max_key_len
            )));
        }
        Ok(())
    }
}

/// A key-value storage engine. Object-safe: use it as `Box<dyn Engine>`, `Arc<dyn Engine>` or
/// `&dyn Engine`.
///
/// Readers never block each other. Every write is atomic: a reader, live or after recovery, sees all of a
/// batch or none of it. Every scan and snapshot reads the state at the moment it was created.
///
/// [`LsmEngine`](crate::LsmEngine) and [`BTreeEngine`](crate::BTreeEngine) implement it; the crate
/// documentation lists what every implementation promises across crashes.
///
/// # Two traits: `Engine` and [`EngineExt`]
///
/// `Engine` is what an engine implements and what `dyn Engine` dispatches: every method takes plain
/// `&[u8]` keys and [`Bound<&[u8]>`](Bound) bounds, so the trait stays object-safe. The calls you write
/// come from [`EngineExt`], implemented for every engine, `dyn Engine` included: they take keys and
/// values of any `impl AsRef<[u8]>` type (`&str`, `String`, `Vec<u8>`, `&[u8]`, `b"..."`, [`Bytes`]) and
/// Rust range syntax (see [`KeyRange`]). Import both:
///
/// ```
/// use rumdb::{Engine, EngineExt, LsmEngine, LsmOptions};
/// let dir = tempfile::tempdir()?;
/// let db: Box<dyn Engine> = Box::new(LsmEngine::open(dir.path(), LsmOptions::default())?);
/// db.put("user:1", "ada")?;
/// db.put(String::from("user:2"), b"grace".to_vec())?;
/// assert_eq!(db.get("user:1")?.as_deref(), Some(&b"ada"[..]));
/// assert_eq!(db.range("user:".."user;")?.count(), 2);
/// db.close()?;
/// # Ok::<(), rumdb::Error>(())
/// ```
///
/// The object-safe forms of the reads that [`EngineExt`] offers generically are named apart
/// ([`Engine::get_bytes`], [`Engine::multi_get_bytes`]), and `put`/`delete` exist only in `EngineExt`
/// (they are one-entry [`Engine::write`]s), so a call such as `db.get("k")` has one meaning with both
/// traits in scope: on a concrete engine, a generic `E: Engine` and `dyn Engine` alike. Were there an
/// `Engine::get(&[u8])` too, a `dyn Engine` or a generic `E: Engine` would pick it before the extension
/// trait's (so `"k"` would not compile), and a concrete engine would find the two ambiguous.
///
/// Reads return [`Bytes`]: the value is copied out of the engine once, and cloning it or a key only
/// counts a reference.
pub trait Engine: Send + Sync {
    /// Which engine this is.
    fn kind(&self) -> EngineKind;

    /// The value of `key`, or `None`: the object-safe form of [`EngineExt::get`], which is what to call.
    ///
    /// # Examples
    ///
    /// ```
    /// # use rumdb::{BTreeEngine, BTreeOptions, Engine, EngineExt};
    /// # let dir = tempfile::tempdir()?;
    /// let db = BTreeEngine::open(dir.path(), BTreeOptions::default())?;
    /// db.put("k", "v")?;
    /// let key: &[u8] = b"k";
    /// assert_eq!(db.get_bytes(key)?.as_deref(), Some(&b"v"[..]));
    /// # Ok::<(), rumdb::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Corruption`] if the data read is damaged; [`Error::Io`]; [`Error::Closed`]; B-tree:
    /// [`Error::Poisoned`] after a failure that left a batch partly applied.
    fn get_bytes(&self, key: &[u8]) -> Result<Option<Bytes>>;

    /// Applies `batch` atomically with the given durability. An empty batch writes nothing but still waits
    /// for its durability (a `Sync` empty batch makes every earlier write durable).
    ///
    /// # Examples
    ///
    /// ```
    /// # use rumdb::{Engine, EngineExt, LsmEngine, LsmOptions, WriteBatch, WriteOptions};
    /// # let dir = tempfile::tempdir()?;
    /// let db = LsmEngine::open(dir.path(), LsmOptions::default())?;
    /// let mut batch = WriteBatch::new();
    /// batch.put("from", "90").put("to", "110").delete("pending");
    /// // All three or none, fsync'd before `write` returns.
    /// db.write(&batch, WriteOptions::sync())?;
    /// # Ok::<(), rumdb::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if an entry or the batch passes a [limit](Engine::limits) (nothing
    /// written); [`Error::Poisoned`] after an earlier write failure; [`Error::Io`] (and the handle is
    /// poisoned); [`Error::Closed`].
    fn write(&self, batch: &WriteBatch, options: WriteOptions) -> Result<()>;

    /// The entries with keys within the bounds, in key order, both ways. The iterator reads the state when
    /// `scan` was called and holds no lock between calls to `next`. [`EngineExt::range`] takes Rust
    /// range syntax and keys of any type instead.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::ops::Bound;
    /// # use rumdb::{Engine, EngineExt, LsmEngine, LsmOptions};
    /// # let dir = tempfile::tempdir()?;
    /// let db = LsmEngine::open(dir.path(), LsmOptions::default())?;
    /// for k in ["a", "b", "c"] {
    ///     db.put(k, "")?;
    /// }
    /// let newest_first: Vec<_> = db
    ///     .scan(Bound::Excluded(b"a"), Bound::Unbounded)?
    ///     .rev()
    ///     .map(|kv| kv.map(|(k, _)| k))
    ///     .collect::<rumdb::Result<_>>()?;
    /// assert_eq!(newest_first, ["c", "b"]);
    /// # Ok::<(), rumdb::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Corruption`] or [`Error::Io`] reading the first blocks; [`Error::Closed`]. Later errors
    /// come from the iterator, which stops after one. B-tree: a scan pins its state like a snapshot, and
    /// the iterator's reads fail with [`Error::SnapshotTooOld`] once the prior values that writers kept
    /// for it pass [`BTreeOptions::snapshot_memory`](crate::BTreeOptions::snapshot_memory) (see
    /// [`Snapshot`]); iterate promptly under heavy writes, or raise the limit.
    fn scan(&self, lower: Bound<&[u8]>, upper: Bound<&[u8]>) -> Result<Iter>;

    /// The values of `keys`, in the caller's order (a key given twice gets its value twice): the
    /// object-safe form of [`EngineExt::multi_get`], which is what to call. Every answer is as of one
    /// moment, as if read through one snapshot.
    ///
    /// The default sorts and dedupes the keys, reads them through a [`Snapshot`] in key order and puts
    /// the answers back in the caller's order. The LSM reads every key at one sequence against one set of
    /// memtables and one version; the B-tree reads them in key order under one hold of its tree latch,
    /// keeping the previous descent's pages pinned so consecutive keys share them.
    ///
    /// # Examples
    ///
    /// ```
    /// use rumdb::{Engine, EngineExt, LsmEngine, LsmOptions};
    /// let dir = tempfile::tempdir()?;
    /// let db = LsmEngine::open(dir.path(), LsmOptions::default())?;
    /// db.put("a", "1")?;
    /// db.put("c", "3")?;
    /// let got = db.multi_get_bytes(&[&b"c"[..], b"b", b"a"])?;
    /// assert_eq!(got, [Some("3".into()), None, Some("1".into())]);
    /// # Ok::<(), rumdb::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`Engine::get_bytes`]; the first error met fails the whole call.
    fn multi_get_bytes(&self, keys: &[&[u8]]) -> Result<Vec<Option<Bytes>>> {
        let snap = self.snapshot()?;
        snap.source.multi_get(keys)
    }

    /// An estimate of the number of entries, cheap to compute (it reads no data blocks or leaves beyond a
    /// small sample).
    ///
    /// - LSM: the entries of every table (from the tables' properties) plus those of the memtables. It
    ///   counts versions, not keys: overwritten values and deletion markers not yet compacted away are
    ///   counted too, so it is an upper bound that compaction brings closer.
    /// - B-tree: exact for a tree of one leaf; otherwise the number of leaves (counted by reading the
    ///   internal pages) times the average cell count of up to eight leaves sampled evenly across the
    ///   tree. Keys written since the last checkpoint are in the pool and counted.
    /// - The default (the model engine): an exact count by a scan.
    ///
    /// # Examples
    ///
    /// ```
    /// use rumdb::{Engine, EngineExt, LsmEngine, LsmOptions};
    /// let dir = tempfile::tempdir()?;
    /// let db = LsmEngine::open(dir.path(), LsmOptions::default())?;
    /// db.put("a", "1")?;
    /// db.put("a", "2")?; // an overwrite: the LSM counts both versions until compaction
    /// assert!(db.approximate_len()? >= 1);
    /// # Ok::<(), rumdb::Error>(())
    /// ```
    ///
    /// # Errors
    /// `Corruption`, `Io` reading what the estimate needs; `Closed`.
    fn approximate_len(&self) -> Result<u64> {
        let mut n = 0u64;
        for item in self.scan(Bound::Unbounded, Bound::Unbounded)?.keys() {
            item?;
            n += 1;
        }
        Ok(n)
    }

    /// A consistent read-only view of the current state; released on drop.
    ///
    /// # Examples
    ///
    /// ```
    /// # use rumdb::{BTreeEngine, BTreeOptions, Engine, EngineExt};
    /// # let dir = tempfile::tempdir()?;
    /// let db = BTreeEngine::open(dir.path(), BTreeOptions::default())?;
    /// db.put("k", "old")?;
    /// let snap = db.snapshot()?;
    /// db.put("k", "new")?;
    /// assert_eq!(snap.get("k")?.as_deref(), Some(&b"old"[..]));
    /// assert_eq!(db.get("k")?.as_deref(), Some(&b"new"[..]));
    /// # Ok::<(), rumdb::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Closed`]. The snapshot's own reads can fail later: a B-tree snapshot's with
    /// [`Error::SnapshotTooOld`] once the prior values writers keep for the live snapshots pass
    /// [`BTreeOptions::snapshot_memory`](crate::BTreeOptions::snapshot_memory) and it is the oldest
    /// (see [`Snapshot`]).
    fn snapshot(&self) -> Result<Snapshot>;

    /// Makes every acknowledged write durable (fsync of the WAL): after it returns, every earlier write
    /// survives power loss, whatever its [`Durability`].
    ///
    /// # Examples
    ///
    /// ```
    /// # use rumdb::{Durability, Engine, EngineExt, LsmEngine, LsmOptions, WriteBatch, WriteOptions};
    /// # let dir = tempfile::tempdir()?;
    /// let db = LsmEngine::open(dir.path(), LsmOptions::default())?;
    /// let mut batch = WriteBatch::new();
    /// for i in 0..100u32 {
    ///     batch.clear();
    ///     batch.put(&i.to_be_bytes(), b"v");
    ///     db.write(&batch, WriteOptions::new(Durability::Buffered))?;
    /// }
    /// db.sync()?; // one fsync makes all 100 durable
    /// # Ok::<(), rumdb::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Io`] (and the handle is poisoned: an fsync is never retried); [`Error::Poisoned`];
    /// [`Error::Closed`].
    fn sync(&self) -> Result<()>;

    /// Moves what is only in memory and the WAL into the engine's main files, and waits until done.
    /// LSM: seals the memtable and writes it as a table (its WAL segments are then deleted). B-tree:
    /// checkpoints (writes every dirty page to the data file and deletes the WAL segments it covers).
    ///
    /// This is not about durability and is not the same as [`Durability::Flush`], which hands one
    /// write to the operating system before the call returns: every acknowledged write is already as
    /// durable as its `Durability` made it, and `flush` is never needed for data to survive. It bounds
    /// what the next open replays and frees memory; it also makes everything written before it durable
    /// (the new files are fsync'd). Use [`Engine::sync`] to make writes durable.
    ///
    /// # Examples
    ///
    /// ```
    /// # use rumdb::{Engine, EngineExt, LsmEngine, LsmOptions};
    /// # let dir = tempfile::tempdir()?;
    /// let db = LsmEngine::open(dir.path(), LsmOptions::default())?;
    /// db.put("k", "v")?;
    /// db.flush()?;
    /// assert_eq!(db.level_stats()[0].files, 1); // the memtable is now a table in L0
    /// # Ok::<(), rumdb::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Io`] (and the handle is poisoned); [`Error::Poisoned`]; [`Error::Closed`].
    fn flush(&self) -> Result<()>;

    /// LSM: flushes the memtable, then compacts the whole tree into one level — the deepest level that
    /// holds data (a tree whose data sits only in L0 ends in L1) — dropping overwritten values and
    /// deletion markers no snapshot needs, and waits until done. B-tree: checkpoints, then
    /// moves the tree pages at the end of the data file into free pages lower down and checkpoints again,
    /// so the file shrinks to about the pages in use (overflow pages are not moved).
    ///
    /// # Examples
    ///
    /// ```
    /// # use rumdb::{BTreeEngine, BTreeOptions, Engine, EngineExt, LsmEngine, LsmOptions};
    /// # let dir = tempfile::tempdir()?;
    /// let lsm = LsmEngine::open(&dir.path().join("lsm"), LsmOptions::default())?;
    /// lsm.put("k", "v")?;
    /// lsm.compact()?;
    /// let btree = BTreeEngine::open(&dir.path().join("btree"), BTreeOptions::default())?;
    /// btree.put("k", "v")?;
    /// btree.compact()?;
    /// # Ok::<(), rumdb::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Io`] (and the handle is poisoned); [`Error::Poisoned`]; [`Error::Closed`].
    fn compact(&self) -> Result<()>;

    /// Waits until background work (flushes, compactions, checkpoints) has drained.
    ///
    /// # Errors
    /// The error of a failed background job (the handle is then poisoned).
    fn wait_idle(&self) -> Result<()>;

    /// Reads every stored byte of the engine's main files and checks every checksum and structural
    /// invariant; the report says how much it read.
    ///
    /// LSM: every table of the current version (every block's checksum, key order, the tables' key
    /// ranges and levels). Data still in the memtable is not checked here: it is in memory, and its
    /// copy on disk, the WAL, is checked record by record (CRC) when the database is opened.
    /// B-tree: every page reachable from the root and on the free list, including dirty pages in the
    /// pool (structurally).
    ///
    /// # Examples
    ///
    /// ```
    /// # use rumdb::{Engine, EngineExt, LsmEngine, LsmOptions};
    /// # let dir = tempfile::tempdir()?;
    /// let db = LsmEngine::open(dir.path(), LsmOptions::default())?;
    /// db.put("k", "v")?;
    /// db.flush()?;
    /// let report = db.verify()?;
    /// assert_eq!((report.files, report.entries), (1, 1));
    /// # Ok::<(), rumdb::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Corruption`] for the first problem found; [`Error::Io`]; [`Error::Closed`].
    fn verify(&self) -> Result<VerifyReport>;

    /// Writes a consistent copy of the database into `dir` while writes go on: a database of its own
    /// (its own `IDENTITY` and, once opened, its own `LOCK`) that opens read-write or read-only and passes
    /// [`Engine::verify`]. It holds exactly the batches through [`BackupInfo::sequence`]: every write
    /// acknowledged before the call, none made after it returned, and of those in between a prefix.
    ///
    /// `dir` must be missing (it is created, with its parents) or an empty directory. It is never left
    /// half-made in a way that opens: its `IDENTITY` is written last, after every other file and the
    /// directory are fsync'd, so a crash or failure leaves either a complete copy or one every open
    /// refuses (delete it and try again). The copy is as durable as an fsync makes it when this returns.
    ///
    /// LSM: seals the memtable (the WAL rotates), then hard-links the live tables (copies them across
    /// filesystems) and copies the WAL segments not yet flushed; flushes and compactions wait meanwhile,
    /// writes do not. B-tree: runs a checkpoint, then copies the data file as that checkpoint left it;
    /// checkpoints wait meanwhile, writes do not. A read-only handle copies the files as they are.
    /// The copy is made through the OS (the page cache) and is counted in [`Stats`] as bytes read for
    /// backup.
    ///
    /// # Examples
    ///
    /// ```
    /// # use rumdb::{BTreeEngine, BTreeOptions, Engine, EngineExt};
    /// # let dir = tempfile::tempdir()?;
    /// let db = BTreeEngine::open(&dir.path().join("db"), BTreeOptions::default())?;
    /// db.put("k", "v")?;
    /// let info = db.backup(&dir.path().join("backup"))?;
    /// db.put("k", "after")?; // not in the copy
    /// let copy = BTreeEngine::open(&dir.path().join("backup"), BTreeOptions::default())?;
    /// assert_eq!(copy.get("k")?.as_deref(), Some(&b"v"[..]));
    /// assert_eq!(info.sequence, 1);
    /// copy.verify()?;
    /// # Ok::<(), rumdb::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if `dir` exists and is not an empty directory; [`Error::Io`] (a
    /// failure writing the copy leaves the source as it was; one in the source's own step, the seal
    /// or checkpoint, poisons it as any failed write does); [`Error::Poisoned`]; [`Error::Closed`].
    fn backup(&self, dir: &Path) -> Result<BackupInfo>;

    /// Cumulative statistics; callers take deltas.
    fn stats(&self) -> Stats;

    /// What this engine accepts.
    fn limits(&self) -> Limits;

    /// Closes the database: background work drains, everything acknowledged is made durable, and a clean
    /// close leaves nothing to replay. Afterwards every call on the handle returns [`Error::Closed`] (it
    /// takes `&self` so that a handle shared through an `Arc` can be closed). Dropping the last handle
    /// without closing does the same but cannot report errors.
    ///
    /// # Examples
    ///
    /// ```
    /// # use rumdb::{Engine, EngineExt, Error, LsmEngine, LsmOptions};
    /// # let dir = tempfile::tempdir()?;
    /// let db = LsmEngine::open(dir.path(), LsmOptions::default())?;
    /// db.put("k", "v")?;
    /// db.close()?;
    /// assert!(matches!(db.get("k"), Err(Error::Closed)));
    /// let db = LsmEngine::open(dir.path(), LsmOptions::default())?; // the directory is free again
    /// assert_eq!(db.get("k")?.as_deref(), Some(&b"v"[..]));
    /// # Ok::<(), rumdb::Error>(())
    /// ```
    ///
    /// # Errors
    /// The first error met while shutting down; [`Error::Closed`] if already closed.
    fn close(&self) -> Result<()>;
}

/// The calls to write against any [`Engine`]: keys and values of any `impl AsRef<[u8]>` type, ranges in
/// Rust syntax. Not object-safe itself (its methods are generic), but implemented for every engine,
/// `dyn Engine` included, so `Box<dyn Engine>`, `Arc<dyn Engine>` and `&dyn Engine` have every method
/// too. Import it beside [`Engine`] (see there why the two are apart).
///
/// # Examples
///
/// ```
/// use rumdb::{BTreeEngine, BTreeOptions, Engine, EngineExt};
/// let dir = tempfile::tempdir()?;
/// let db = BTreeEngine::open(dir.path(), BTreeOptions::default())?;
/// db.put("k", "v")?;
/// let as_dyn: &dyn Engine = &db;
/// assert_eq!(as_dyn.get("k")?.as_deref(), Some(&b"v"[..]));
/// # Ok::<(), rumdb::Error>(())
/// ```
pub trait EngineExt: Engine {
    /// The value of `key`, or `None`. The value is a [`Bytes`]: it derefs to `&[u8]`, compares with
    /// byte strings and `&str`, and clones without copying.
    ///
    /// # Examples
    ///
    /// ```
    /// use rumdb::{BTreeEngine, BTreeOptions, Engine, EngineExt};
    /// let dir = tempfile::tempdir()?;
    /// let db = BTreeEngine::open(dir.path(), BTreeOptions::default())?;
    /// assert_eq!(db.get("missing")?, None);
    /// db.put("k", "v")?;
    /// assert_eq!(db.get("k")?.as_deref(), Some(&b"v"[..]));
    /// assert_eq!(db.get(b"k".to_vec())?.unwrap(), "v");
    /// # Ok::<(), rumdb::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`Engine::get_bytes`].
    fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Bytes>> {
        self.get_bytes(key.as_ref())
    }

    /// Sets `key` to `value` with the default durability ([`Durability::Flush`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use rumdb::{BTreeEngine, BTreeOptions, Engine, EngineExt};
    /// let dir = tempfile::tempdir()?;
    /// let db = BTreeEngine::open(dir.path(), BTreeOptions::default())?;
    /// db.put("k", "one")?;
    /// db.put(b"k", String::from("two"))?; // overwrites
    /// assert_eq!(db.get("k")?.as_deref(), Some(&b"two"[..]));
    /// # Ok::<(), rumdb::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`Engine::write`].
    fn put(&self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Result<()> {
        let mut batch = WriteBatch::new();
        batch.put(key, value);
        self.write(&batch, WriteOptions::default())
    }

    /// Removes `key` with the default durability; removing a missing key is not an error.
    ///
    /// # Examples
    ///
    /// ```
    /// use rumdb::{Engine, EngineExt, LsmEngine, LsmOptions};
    /// let dir = tempfile::tempdir()?;
    /// let db = LsmEngine::open(dir.path(), LsmOptions::default())?;
    /// db.put("k", "v")?;
    /// db.delete("k")?;
    /// db.delete("never-written")?;
    /// assert_eq!(db.get("k")?, None);
    /// # Ok::<(), rumdb::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`Engine::write`].
    fn delete(&self, key: impl AsRef<[u8]>) -> Result<()> {
        let mut batch = WriteBatch::new();
        batch.delete(key);
        self.write(&batch, WriteOptions::default())
    }

    /// The values of `keys`, in the caller's order (a key given twice gets its value twice), every answer
    /// as of one moment: see [`Engine::multi_get_bytes`].
    ///
    /// # Examples
    ///
    /// ```
    /// use rumdb::{Engine, EngineExt, LsmEngine, LsmOptions};
    /// let dir = tempfile::tempdir()?;
    /// let db = LsmEngine::open(dir.path(), LsmOptions::default())?;
    /// db.put("a", "1")?;
    /// let got = db.multi_get(["a", "z", "a"])?;
    /// assert_eq!(got, [Some("1".into()), None, Some("1".into())]);
    /// # Ok::<(), rumdb::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`Engine::get_bytes`]; the first error met fails the whole call.
    fn multi_get<K: AsRef<[u8]>>(
        &self,
        keys: impl IntoIterator<Item = K>,
    ) -> Result<Vec<Option<Bytes>>> {
        let owned: Vec<K> = keys.into_iter().collect();
        let refs: Vec<&[u8]> = owned.iter().map(AsRef::as_ref).collect();
        self.multi_get_bytes(&refs)
    }

    /// [`Engine::scan`] over a range in Rust syntax, with keys of any `impl AsRef<[u8]>` type: `..`,
    /// `a..b`, `a..=b`, `a..`, `..b`, `..=b`, or a pair of [`Bound`]s (see [`KeyRange`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use rumdb::{BTreeEngine, BTreeOptions, Engine, EngineExt};
    /// # let dir = tempfile::tempdir()?;
    /// let db = BTreeEngine::open(dir.path(), BTreeOptions::default())?;
    /// for k in ["a", "b", "c", "d"] {
    ///     db.put(k, "")?;
    /// }
    /// let keys: Vec<_> = db
    ///     .range("b".."d")?
    ///     .map(|kv| kv.map(|(k, _)| k))
    ///     .collect::<rumdb::Result<_>>()?;
    /// assert_eq!(keys, ["b", "c"]);
    /// assert_eq!(db.range(b"c".to_vec()..)?.count(), 2);
    /// assert_eq!(db.range(..)?.count(), 4);
    /// # Ok::<(), rumdb::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`Engine::scan`].
    fn range(&self, range: impl KeyRange) -> Result<Iter> {
        let (lower, upper) = range.key_bounds();
        self.scan(lower, upper)
    }

    /// Every entry whose key starts with `prefix`, in key order (both ways). The upper bound is the prefix
    /// with its last byte below 0xFF incremented and what follows dropped; an empty or all-0xFF prefix
    /// has no upper bound.
    ///
    /// # Examples
    ///
    /// ```
    /// use rumdb::{Engine, EngineExt, LsmEngine, LsmOptions};
    /// let dir = tempfile::tempdir()?;
    /// let db = LsmEngine::open(dir.path(), LsmOptions::default())?;
    /// for k in ["user:1", "user:2", "users", "video:1"] {
    ///     db.put(k, "")?;
    /// }
    /// let keys: Vec<_> = db.prefix("user:")?.keys().collect::<rumdb::Result<_>>()?;
    /// assert_eq!(keys, ["user:1", "user:2"]);
    /// # Ok::<(), rumdb::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`Engine::scan`].
    fn prefix(&self, prefix: impl AsRef<[u8]>) -> Result<Iter> {
        let prefix = prefix.as_ref();
        let upper = prefix_upper_bound(prefix);
        self.scan(
            Bound::Included(prefix),
            upper.as_deref().map_or(Bound::Unbounded, Bound::Excluded),
        )
    }

    /// True if `key` has a value. It reads the value (B-tree: its overflow chain too) as
    /// [`EngineExt::get`] does.
    ///
    /// # Examples
    ///
    /// ```
    /// use rumdb::{Engine, EngineExt, LsmEngine, LsmOptions};
    /// let dir = tempfile::tempdir()?;
    /// let db = LsmEngine::open(dir.path(), LsmOptions::default())?;
    /// db.put("k", "v")?;
    /// assert!(db.contains_key("k")?);
    /// assert!(!db.contains_key("missing")?);
    /// # Ok::<(), rumdb::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`Engine::get_bytes`].
    fn contains_key(&self, key: impl AsRef<[u8]>) -> Result<bool> {
        Ok(self.get_bytes(key.as_ref())?.is_some())
    }

    /// The entry with the smallest key, or `None` if the database is empty.
    ///
    /// # Examples
    ///
    /// ```
    /// use rumdb::{Engine, EngineExt, LsmEngine, LsmOptions};
    /// let dir = tempfile::tempdir()?;
    /// let db = LsmEngine::open(dir.path(), LsmOptions::default())?;
    /// assert_eq!(db.first()?, None);
    /// db.put("b", "2")?;
    /// db.put("a", "1")?;
    /// assert_eq!(db.first()?, Some(("a".into(), "1".into())));
    /// # Ok::<(), rumdb::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`Engine::scan`].
    fn first(&self) -> Result<Option<KvPair>> {
        self.scan(Bound::Unbounded, Bound::Unbounded)?
            .next()
            .transpose()
    }

    /// The entry with the largest key, or `None` if the database is empty.
    ///
    /// # Examples
    ///
    /// ```
    /// use rumdb::{Engine, EngineExt, LsmEngine, LsmOptions};
    /// let dir = tempfile::tempdir()?;
    /// let db = LsmEngine::open(dir.path(), LsmOptions::default())?;
    /// db.put("b", "2")?;
    /// db.put("a", "1")?;
    /// let (key, value) = db.last()?.expect("not empty");
    /// assert_eq!((&key[..], &value[..]), (&b"b"[..], &b"2"[..]));
    /// # Ok::<(), rumdb::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`Engine::scan`].
    fn last(&self) -> Result<Option<KvPair>> {
        self.scan(Bound::Unbounded, Bound::Unbounded)?
            .next_back()
            .transpose()
    }

    /// The keys within `range`, in key order (both ways): [`EngineExt::range`] through [`Iter::keys`].
    ///
    /// # Examples
    ///
    /// ```
    /// use rumdb::{Engine, EngineExt, LsmEngine, LsmOptions};
    /// let dir = tempfile::tempdir()?;
    /// let db = LsmEngine::open(dir.path(), LsmOptions::default())?;
    /// db.put("a", "1")?;
    /// db.put("b", "2")?;
    /// let keys: Vec<_> = db.keys(..)?.rev().collect::<rumdb::Result<_>>()?;
    /// assert_eq!(keys, ["b", "a"]);
    /// # Ok::<(), rumdb::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`Engine::scan`].
    fn keys(&self, range: impl KeyRange) -> Result<Keys> {
        Ok(self.range(range)?.keys())
    }
}

impl<E: Engine + ?Sized> EngineExt for E {}

/// The exclusive upper bound of the keys starting with `prefix`: `prefix` with its last byte below 0xFF
/// incremented and the bytes after it dropped; `None` (no upper bound) for an empty or all-0xFF prefix.
///
/// # Examples
///
/// ```
/// use rumdb::prefix_upper_bound;
/// assert_eq!(prefix_upper_bound(b"ab"), Some(b"ac".to_vec()));
/// assert_eq!(prefix_upper_bound(b"a\xff"), Some(b"b".to_vec()));
/// assert_eq!(prefix_upper_bound(b"\xff\xff"), None);
/// assert_eq!(prefix_upper_bound(b""), None);
/// ```
pub fn prefix_upper_bound(prefix: &[u8]) -> Option<Vec<u8>> {
    let last = prefix.iter().rposition(|&b| b != 0xFF)?;
    let mut upper = prefix.get(..=last)?.to_vec();
    if let Some(b) = upper.last_mut() {
        *b += 1;
    }
    Some(upper)
}

/// Runs `lookup` once per distinct key of `keys` in ascending key order and returns the answers in the
/// caller's order (the engines' [`Engine::multi_get_bytes`] and [`SnapshotSource::multi_get`] share it).
/// A key asked twice shares one [`Bytes`].
///
/// # Errors
/// The first error `lookup` returns.
pub(crate) fn multi_get_sorted(
    keys: &[&[u8]],
    mut lookup: impl FnMut(&[u8]) -> Result<Option<Bytes>>,
) -> Result<Vec<Option<Bytes>>> {
    let mut order: Vec<usize> = (0..keys.len()).collect();
    order.sort_by(|&a, &b| keys.get(a).cmp(&keys.get(b)));
    let mut out: Vec<Option<Bytes>> = vec![None; keys.len()];
    let mut prev: Option<(&[u8], usize)> = None;
    for i in order {
        let Some(&key) = keys.get(i) else { continue };
        let value = match prev {
            Some((k, at)) if k == key => out.get(at).cloned().flatten(),
            _ => lookup(key)?,
        };
        if let Some(slot) = out.get_mut(i) {
            *slot = value;
        }
        prev = Some((key, i));
    }
    Ok(out)
}

/// True if `key` lies within `lower` and `upper`.
#[cfg(any(test, feature = "testing"))]
pub fn in_bounds(key: &[u8], lower: Bound<&[u8]>, upper: Bound<&[u8]>) -> bool {
    let above = match lower {
        Bound::Included(l) => key >= l,
        Bound::Excluded(l) => key > l,
        Bound::Unbounded => true,
    };
    let below = match upper {
        Bound::Included(u) => key <= u,
        Bound::Excluded(u) => key < u,
        Bound::Unbounded => true,
    };
    above && below
}

#[cfg(test)]
mod tests {
    use super::*;

    struct VecCursor {
        items: std::collections::VecDeque<KvPair>,
    }

    impl Cursor for VecCursor {
        fn next_front(&mut self) -> Option<Result<KvPair>> {
            self.items.pop_front().map(Ok)
        }
        fn next_back(&mut self) -> Option<Result<KvPair>> {
            self.items.pop_back().map(Ok)
        }
    }

    fn iter(keys: &[&str]) -> Iter {
        Iter::new(Box::new(VecCursor {
            items: keys
                .iter()
                .map(|k| (Bytes::copy_from_slice(k.as_bytes()), Bytes::new()))
                .collect(),
        }))
    }

    #[test]
    fn meets_in_the_middle() {
        let mut it = iter(&["a", "b", "c", "d"]);
        assert_eq!(it.next().unwrap().unwrap().0, "a");
        assert_eq!(it.next_back().unwrap().unwrap().0, "d");
        assert_eq!(it.next().unwrap().unwrap().0, "b");
        assert_eq!(it.next_back().unwrap().unwrap().0, "c");
        assert!(it.next().is_none());
        assert!(it.next_back().is_none());
    }

    #[test]
    fn stops_a_cursor_that_overruns_the_other_end() {
        // A cursor whose ends are independent (as engine cursors are): the iterator must stop them.
        struct Independent {
            f: usize,
            b: usize,
        }
        impl Cursor for Independent {
            fn next_front(&mut self) -> Option<Result<KvPair>> {
                self.f += 1;
                (self.f <= 3).then(|| Ok((Bytes::from(vec![b'0' + self.f as u8]), Bytes::new())))
            }
            fn next_back(&mut self) -> Option<Result<KvPair>> {
                self.b += 1;
                (self.b <= 3).then(|| Ok((Bytes::from(vec![b'4' - self.b as u8]), Bytes::new())))
            }
        }
        let mut it = Iter::new(Box::new(Independent { f: 0, b: 0 }));
        assert_eq!(it.next().unwrap().unwrap().0, "1");
        assert_eq!(it.next_back().unwrap().unwrap().0, "3");
        assert_eq!(it.next().unwrap().unwrap().0, "2");
        assert!(
            it.next_back().is_none(),
            "2 was already yielded from the front"
        );
        assert!(it.next().is_none());
    }

    #[test]
    fn bounds() {
        use Bound::*;
        assert!(in_bounds(b"b", Included(b"b"), Excluded(b"c")));
        assert!(!in_bounds(b"c", Included(b"b"), Excluded(b"c")));
        assert!(!in_bounds(b"b", Excluded(b"b"), Unbounded));
        assert!(in_bounds(b"", Unbounded, Included(b"")));
    }

    #[test]
    fn limits_name_what_is_too_big() {
        let l = Limits {
            max_key_len: 4,
            max_value_len: 8,
            max_batch_len: 100,
        };
        let mut b = WriteBatch::new();
        b.put(b"1234", b"12345678");
        l.check(&b).unwrap();
        b.put(b"12345", b"");
        assert!(matches!(l.check(&b), Err(Error::InvalidArgument(m)) if m.contains("key")));
        let mut b = WriteBatch::new();
        b.put(b"k", b"123456789");
        assert!(matches!(l.check(&b), Err(Error::InvalidArgument(m)) if m.contains("value")));
        let mut b = WriteBatch::new();
        for _ in 0..20 {
            b.put(b"k", b"v");
        }
        assert!(matches!(l.check(&b), Err(Error::InvalidArgument(m)) if m.contains("batch")));
    }
}
