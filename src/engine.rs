//! The one API both engines implement: [`Engine`], its iterator [`Iter`], [`Snapshot`], write options and
//! limits.

use std::ops::{Bound, RangeBounds};

use crate::batch::WriteBatch;
use crate::error::{EngineKind, Error, Result};
use crate::stats::{Stats, VerifyReport};

/// Where background work runs: LSM flushes and compactions, B-tree checkpoints.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Background {
    /// On one background worker thread owned by the handle.
    #[default]
    Threads,
    /// Inline, at deterministic points: in the write that crosses a threshold, or in an explicit
    /// `flush`/`compact` call (B-tree: the writer that reaches `max_dirty_pages`, and `flush`). Every
    /// simulated-backend test uses it so seeds reproduce.
    Manual,
}

/// A key and its value, as iterators yield them.
pub type KvPair = (Vec<u8>, Vec<u8>);

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

impl Limits {
    /// Checks every entry of `batch` and its size.
    ///
    /// # Errors
    /// `InvalidArgument` naming the first limit passed.
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
            if let crate::BatchOp::Put { value, .. } = op
                && value.len() > self.max_value_len
            {
                return Err(Error::invalid(format!(
                    "value of {} bytes is over the limit of {}",
                    value.len(),
                    self.max_value_len
                )));
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

/// A key-value storage engine. Object-safe: use it as `Box<dyn Engine>` or `Arc<dyn Engine>`.
///
/// Readers never block each other. Every write is atomic: a reader, live or after recovery, sees all of a
/// batch or none of it. Every scan and snapshot reads the state at the moment it was created.
pub trait Engine: Send + Sync {
    /// Which engine this is.
    fn kind(&self) -> EngineKind;

    /// The value of `key`, or `None`.
    ///
    /// # Errors
    /// `Corruption` if the data read is damaged; `Io`; `Closed`.
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>>;

    /// Applies `batch` atomically with the given durability. An empty batch writes nothing but still waits
    /// for its durability (a `Sync` empty batch makes every earlier write durable).
    ///
    /// # Errors
    /// `InvalidArgument` if an entry or the batch passes a limit (nothing written); `Poisoned` after an
    /// earlier write failure; `Io` (and the handle is poisoned).
    fn write(&self, batch: &WriteBatch, options: WriteOptions) -> Result<()>;

    /// Sets `key` to `value` with the default durability.
    ///
    /// # Errors
    /// As [`Engine::write`].
    fn put(&self, key: &[u8], value: &[u8]) -> Result<()> {
        let mut batch = WriteBatch::new();
        batch.put(key, value);
        self.write(&batch, WriteOptions::default())
    }

    /// Removes `key` with the default durability; removing a missing key is not an error.
    ///
    /// # Errors
    /// As [`Engine::write`].
    fn delete(&self, key: &[u8]) -> Result<()> {
        let mut batch = WriteBatch::new();
        batch.delete(key);
        self.write(&batch, WriteOptions::default())
    }

    /// The entries with keys within the bounds, in key order, both ways. The iterator reads the state when
    /// `scan` was called and holds no lock between calls to `next`.
    ///
    /// # Errors
    /// `Corruption` or `Io` reading the first blocks; later errors come from the iterator.
    fn scan(&self, lower: Bound<&[u8]>, upper: Bound<&[u8]>) -> Result<Iter>;

    /// A consistent read-only view of the current state; released on drop.
    ///
    /// # Errors
    /// `Closed`.
    fn snapshot(&self) -> Result<Snapshot>;

    /// Makes every acknowledged write durable (fsync).
    ///
    /// # Errors
    /// `Io` (and the handle is poisoned), `Poisoned`.
    fn sync(&self) -> Result<()>;

    /// LSM: seals the memtable and flushes it to a table. B-tree: checkpoints. Waits until done.
    ///
    /// # Errors
    /// `Io` (and the handle is poisoned), `Poisoned`.
    fn flush(&self) -> Result<()>;

    /// LSM: compacts everything into the last level. B-tree: nothing to do.
    ///
    /// # Errors
    /// `Io` (and the handle is poisoned), `Poisoned`.
    fn compact(&self) -> Result<()>;

    /// Waits until background work (flushes, compactions, checkpoints) has drained.
    ///
    /// # Errors
    /// The error of a failed background job (the handle is then poisoned).
    fn wait_idle(&self) -> Result<()>;

    /// Reads every stored byte and checks every checksum and structural invariant.
    ///
    /// # Errors
    /// `Corruption` for the first problem found; `Io`.
    fn verify(&self) -> Result<VerifyReport>;

    /// Cumulative statistics; callers take deltas.
    fn stats(&self) -> Stats;

    /// What this engine accepts.
    fn limits(&self) -> Limits;

    /// Closes the database: background work drains, everything acknowledged is made durable, and a clean
    /// close leaves nothing to replay. Afterwards every call on the handle returns [`Error::Closed`] (it
    /// takes `&self` so that a handle shared through an `Arc` can be closed). Dropping the last handle
    /// without closing does the same but cannot report errors.
    ///
    /// # Errors
    /// The first error met while shutting down; `Closed` if already closed.
    fn close(&self) -> Result<()>;
}

/// Conveniences over [`Engine`] that are not object-safe.
pub trait EngineExt: Engine {
    /// [`Engine::scan`] over any range of keys: `..`, `a..b`, `a..=b`, `a..`, `..b`, or a pair of
    /// [`Bound`]s.
    ///
    /// # Errors
    /// As [`Engine::scan`].
    fn range<'a, R: RangeBounds<&'a [u8]>>(&self, range: R) -> Result<Iter> {
        self.scan(range.start_bound().cloned(), range.end_bound().cloned())
    }
}

impl<E: Engine + ?Sized> EngineExt for E {}

/// What an engine supplies to [`Iter`]: entries within the scan's bounds from either end, in order. The
/// cursor need not know when the two ends meet; [`Iter`] stops them.
pub trait Cursor: Send {
    /// The next entry from the front (ascending keys), or `None` at the end.
    fn next_front(&mut self) -> Option<Result<KvPair>>;
    /// The next entry from the back (descending keys), or `None` at the start.
    fn next_back(&mut self) -> Option<Result<KvPair>>;
}

/// A double-ended iterator over `Result<(key, value)>` in key order that meets in the middle like
/// `BTreeMap::range`. After an error it yields nothing more.
pub struct Iter {
    cursor: Box<dyn Cursor>,
    front: Option<Vec<u8>>,
    back: Option<Vec<u8>>,
    done: bool,
}

impl std::fmt::Debug for Iter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Iter")
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl Iter {
    /// An iterator over what `cursor` yields.
    pub fn new(cursor: Box<dyn Cursor>) -> Self {
        Iter {
            cursor,
            front: None,
            back: None,
            done: false,
        }
    }

    /// An iterator that yields nothing.
    pub fn empty() -> Self {
        struct Empty;
        impl Cursor for Empty {
            fn next_front(&mut self) -> Option<Result<KvPair>> {
                None
            }
            fn next_back(&mut self) -> Option<Result<KvPair>> {
                None
            }
        }
        Iter::new(Box::new(Empty))
    }

    fn take(&mut self, item: Option<Result<KvPair>>, from_front: bool) -> Option<Result<KvPair>> {
        match item {
            None => {
                self.done = true;
                None
            }
            Some(Err(e)) => {
                self.done = true;
                Some(Err(e))
            }
            Some(Ok((k, v))) => {
                let (mine, other) = if from_front {
                    (&mut self.front, &self.back)
                } else {
                    (&mut self.back, &self.front)
                };
                let crossed = other
                    .as_ref()
                    .is_some_and(|o| if from_front { k >= *o } else { k <= *o });
                if crossed {
                    self.done = true;
                    return None;
                }
                match mine {
                    Some(buf) => {
                        buf.clear();
                        buf.extend_from_slice(&k);
                    }
                    None => *mine = Some(k.clone()),
                }
                Some(Ok((k, v)))
            }
        }
    }
}

impl Iterator for Iter {
    type Item = Result<KvPair>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let item = self.cursor.next_front();
        self.take(item, true)
    }
}

impl DoubleEndedIterator for Iter {
    fn next_back(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let item = self.cursor.next_back();
        self.take(item, false)
    }
}

impl std::iter::FusedIterator for Iter {}

/// What an engine supplies to [`Snapshot`]. Dropping it releases what the snapshot pins.
pub trait SnapshotSource: Send + Sync {
    /// The value of `key` as of the snapshot.
    ///
    /// # Errors
    /// `Corruption`, `Io`, `SnapshotTooOld`.
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>>;
    /// The entries within the bounds as of the snapshot.
    ///
    /// # Errors
    /// `Corruption`, `Io`, `SnapshotTooOld`.
    fn scan(&self, lower: Bound<&[u8]>, upper: Bound<&[u8]>) -> Result<Iter>;
}

/// A consistent read-only view of a database at one moment. Writes made after it was taken are invisible
/// through it. Dropping it releases what it pins.
pub struct Snapshot {
    source: Box<dyn SnapshotSource>,
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshot").finish_non_exhaustive()
    }
}

impl Snapshot {
    /// A snapshot reading through `source`.
    pub fn new(source: Box<dyn SnapshotSource>) -> Self {
        Snapshot { source }
    }

    /// The value of `key` as of the snapshot.
    ///
    /// # Errors
    /// `Corruption`, `Io`, `SnapshotTooOld`.
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.source.get(key)
    }

    /// The entries within the bounds as of the snapshot.
    ///
    /// # Errors
    /// `Corruption`, `Io`, `SnapshotTooOld`.
    pub fn scan(&self, lower: Bound<&[u8]>, upper: Bound<&[u8]>) -> Result<Iter> {
        self.source.scan(lower, upper)
    }

    /// [`Snapshot::scan`] over any range of keys.
    ///
    /// # Errors
    /// As [`Snapshot::scan`].
    pub fn range<'a, R: RangeBounds<&'a [u8]>>(&self, range: R) -> Result<Iter> {
        self.scan(range.start_bound().cloned(), range.end_bound().cloned())
    }
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
                .map(|k| (k.as_bytes().to_vec(), Vec::new()))
                .collect(),
        }))
    }

    #[test]
    fn meets_in_the_middle() {
        let mut it = iter(&["a", "b", "c", "d"]);
        assert_eq!(it.next().unwrap().unwrap().0, b"a");
        assert_eq!(it.next_back().unwrap().unwrap().0, b"d");
        assert_eq!(it.next().unwrap().unwrap().0, b"b");
        assert_eq!(it.next_back().unwrap().unwrap().0, b"c");
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
                (self.f <= 3).then(|| Ok((vec![b'0' + self.f as u8], vec![])))
            }
            fn next_back(&mut self) -> Option<Result<KvPair>> {
                self.b += 1;
                (self.b <= 3).then(|| Ok((vec![b'4' - self.b as u8], vec![])))
            }
        }
        let mut it = Iter::new(Box::new(Independent { f: 0, b: 0 }));
        assert_eq!(it.next().unwrap().unwrap().0, b"1");
        assert_eq!(it.next_back().unwrap().unwrap().0, b"3");
        assert_eq!(it.next().unwrap().unwrap().0, b"2");
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
