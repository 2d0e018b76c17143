//! Snapshots: the [`SnapshotSource`] an engine supplies and the [`Snapshot`] users get.

use super::*;

/// What an engine supplies to [`Snapshot`]. Dropping it releases what the snapshot pins.
///
/// # Examples
///
/// ```
/// use std::collections::BTreeMap;
/// use std::ops::Bound;
/// use rumdb::{Bytes, Iter, Result, Snapshot, SnapshotSource};
///
/// /// A frozen map as a snapshot (scans left out).
/// struct Frozen(BTreeMap<Vec<u8>, Bytes>);
/// impl SnapshotSource for Frozen {
///     fn get(&self, key: &[u8]) -> Result<Option<Bytes>> {
///         Ok(self.0.get(key).cloned())
///     }
///     fn scan(&self, _: Bound<&[u8]>, _: Bound<&[u8]>) -> Result<Iter> {
///         Ok(Iter::empty())
///     }
/// }
/// let snap = Snapshot::new(Box::new(Frozen(BTreeMap::from([(b"k".to_vec(), "v".into())]))));
/// assert_eq!(snap.get("k")?.as_deref(), Some(&b"v"[..]));
/// assert_eq!(snap.multi_get(["k", "x"])?, [Some("v".into()), None]);
/// # Ok::<(), rumdb::Error>(())
/// ```
pub trait SnapshotSource: Send + Sync {
    /// The value of `key` as of the snapshot.
    ///
    /// # Errors
    /// `Corruption`, `Io`, `SnapshotTooOld`.
    fn get(&self, key: &[u8]) -> Result<Option<Bytes>>;
    /// The entries within the bounds as of the snapshot.
    ///
    /// # Errors
    /// `Corruption`, `Io`, `SnapshotTooOld`.
    fn scan(&self, lower: Bound<&[u8]>, upper: Bound<&[u8]>) -> Result<Iter>;
    /// The values of `keys` as of the snapshot, in the caller's order. The default looks up each distinct
    /// key once, in key order.
    ///
    /// # Errors
    /// `Corruption`, `Io`, `SnapshotTooOld`.
    fn multi_get(&self, keys: &[&[u8]]) -> Result<Vec<Option<Bytes>>> {
        multi_get_sorted(keys, |k| self.get(k))
    }
}

/// A consistent read-only view of a database at one moment. Writes made after it was taken are invisible
/// through it. Dropping it releases what it pins. Its reads take keys of any `impl AsRef<[u8]>` type and
/// ranges in Rust syntax, as [`EngineExt`]'s do.
///
/// What a snapshot costs differs by engine. LSM: it pins the versions of keys overwritten after it, which
/// compaction keeps until it is dropped (disk space, never an error). B-tree: pages are updated in
/// place, so while snapshots (or scans) are open, writers keep the prior value of every key they write
/// in an in-memory overlay; past [`BTreeOptions::snapshot_memory`](crate::BTreeOptions::snapshot_memory)
/// bytes the oldest snapshots are released and their reads fail with [`Error::SnapshotTooOld`]. Keep
/// snapshots short-lived under heavy writes.
///
/// # Examples
///
/// ```
/// use rumdb::{BTreeEngine, BTreeOptions, Engine, EngineExt};
/// let dir = tempfile::tempdir()?;
/// let db = BTreeEngine::open(dir.path(), BTreeOptions::default())?;
/// db.put("k", "old")?;
/// let snap = db.snapshot()?;
/// db.put("k", "new")?;
/// assert_eq!(snap.get("k")?.as_deref(), Some(&b"old"[..]));
/// # Ok::<(), rumdb::Error>(())
/// ```
pub struct Snapshot {
    pub(super) source: Box<dyn SnapshotSource>,
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshot").finish_non_exhaustive()
    }
}

impl Snapshot {
    /// A snapshot reading through `source` (see [`SnapshotSource`] for an example).
    pub fn new(source: Box<dyn SnapshotSource>) -> Self {
        Snapshot { source }
    }

    /// The value of `key` as of the snapshot.
    ///
    /// # Examples
    ///
    /// ```
    /// use rumdb::{Engine, EngineExt, LsmEngine, LsmOptions};
    /// let dir = tempfile::tempdir()?;
    /// let db = LsmEngine::open(dir.path(), LsmOptions::default())?;
    /// db.put("k", "old")?;
    /// let snap = db.snapshot()?;
    /// db.put("k", "new")?;
    /// assert_eq!(snap.get("k")?.as_deref(), Some(&b"old"[..]));
    /// # Ok::<(), rumdb::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Corruption`], [`Error::Io`]; [`Error::SnapshotTooOld`] (B-tree) if the snapshot was
    /// released to bound memory.
    pub fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Bytes>> {
        self.source.get(key.as_ref())
    }

    /// The entries within the bounds as of the snapshot.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::ops::Bound;
    /// use rumdb::{Engine, EngineExt, LsmEngine, LsmOptions};
    /// let dir = tempfile::tempdir()?;
    /// let db = LsmEngine::open(dir.path(), LsmOptions::default())?;
    /// db.put("a", "1")?;
    /// let snap = db.snapshot()?;
    /// db.put("b", "2")?;
    /// assert_eq!(snap.scan(Bound::Included(b"a"), Bound::Unbounded)?.count(), 1);
    /// # Ok::<(), rumdb::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Corruption`], [`Error::Io`]; [`Error::SnapshotTooOld`] (B-tree) if the snapshot was
    /// released to bound memory.
    pub fn scan(&self, lower: Bound<&[u8]>, upper: Bound<&[u8]>) -> Result<Iter> {
        self.source.scan(lower, upper)
    }

    /// [`Snapshot::scan`] over a range in Rust syntax, with keys of any type (see [`KeyRange`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use rumdb::{Engine, EngineExt, LsmEngine, LsmOptions};
    /// let dir = tempfile::tempdir()?;
    /// let db = LsmEngine::open(dir.path(), LsmOptions::default())?;
    /// db.put("user:1", "ada")?;
    /// let snap = db.snapshot()?;
    /// db.put("user:2", "grace")?;
    /// assert_eq!(snap.range("user:".."user;")?.count(), 1);
    /// assert_eq!(snap.range(..)?.count(), 1);
    /// # Ok::<(), rumdb::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`Snapshot::scan`].
    pub fn range(&self, range: impl KeyRange) -> Result<Iter> {
        let (lower, upper) = range.key_bounds();
        self.scan(lower, upper)
    }

    /// Every entry whose key starts with `prefix`, as of the snapshot (see [`EngineExt::prefix`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use rumdb::{Engine, EngineExt, LsmEngine, LsmOptions};
    /// let dir = tempfile::tempdir()?;
    /// let db = LsmEngine::open(dir.path(), LsmOptions::default())?;
    /// db.put("p:1", "")?;
    /// let snap = db.snapshot()?;
    /// db.put("p:2", "")?;
    /// assert_eq!(snap.prefix("p:")?.count(), 1);
    /// # Ok::<(), rumdb::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`Snapshot::scan`].
    pub fn prefix(&self, prefix: impl AsRef<[u8]>) -> Result<Iter> {
        let prefix = prefix.as_ref();
        let upper = prefix_upper_bound(prefix);
        self.scan(
            Bound::Included(prefix),
            upper.as_deref().map_or(Bound::Unbounded, Bound::Excluded),
        )
    }

    /// True if `key` has a value as of the snapshot.
    ///
    /// # Examples
    ///
    /// ```
    /// use rumdb::{Engine, EngineExt, LsmEngine, LsmOptions};
    /// let dir = tempfile::tempdir()?;
    /// let db = LsmEngine::open(dir.path(), LsmOptions::default())?;
    /// let snap = db.snapshot()?;
    /// db.put("k", "v")?;
    /// assert!(!snap.contains_key("k")?);
    /// # Ok::<(), rumdb::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`Snapshot::get`].
    pub fn contains_key(&self, key: impl AsRef<[u8]>) -> Result<bool> {
        Ok(self.get(key)?.is_some())
    }

    /// The entry with the smallest key as of the snapshot.
    ///
    /// # Examples
    ///
    /// ```
    /// use rumdb::{Engine, EngineExt, LsmEngine, LsmOptions};
    /// let dir = tempfile::tempdir()?;
    /// let db = LsmEngine::open(dir.path(), LsmOptions::default())?;
    /// db.put("b", "2")?;
    /// let snap = db.snapshot()?;
    /// db.put("a", "1")?;
    /// assert_eq!(snap.first()?, Some(("b".into(), "2".into())));
    /// # Ok::<(), rumdb::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`Snapshot::scan`].
    pub fn first(&self) -> Result<Option<KvPair>> {
        self.scan(Bound::Unbounded, Bound::Unbounded)?
            .next()
            .transpose()
    }

    /// The entry with the largest key as of the snapshot.
    ///
    /// # Examples
    ///
    /// ```
    /// use rumdb::{Engine, EngineExt, LsmEngine, LsmOptions};
    /// let dir = tempfile::tempdir()?;
    /// let db = LsmEngine::open(dir.path(), LsmOptions::default())?;
    /// db.put("a", "1")?;
    /// let snap = db.snapshot()?;
    /// db.put("b", "2")?;
    /// assert_eq!(snap.last()?, Some(("a".into(), "1".into())));
    /// # Ok::<(), rumdb::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`Snapshot::scan`].
    pub fn last(&self) -> Result<Option<KvPair>> {
        self.scan(Bound::Unbounded, Bound::Unbounded)?
            .next_back()
            .transpose()
    }

    /// The keys within `range` as of the snapshot (see [`Iter::keys`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use rumdb::{Engine, EngineExt, LsmEngine, LsmOptions};
    /// let dir = tempfile::tempdir()?;
    /// let db = LsmEngine::open(dir.path(), LsmOptions::default())?;
    /// db.put("a", "1")?;
    /// let snap = db.snapshot()?;
    /// assert_eq!(snap.keys(..)?.count(), 1);
    /// assert_eq!(snap.keys("b"..)?.count(), 0);
    /// # Ok::<(), rumdb::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`Snapshot::scan`].
    pub fn keys(&self, range: impl KeyRange) -> Result<Keys> {
        Ok(self.range(range)?.keys())
    }

    /// The values of `keys` as of the snapshot, in the caller's order (see [`EngineExt::multi_get`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use rumdb::{Engine, EngineExt, LsmEngine, LsmOptions};
    /// let dir = tempfile::tempdir()?;
    /// let db = LsmEngine::open(dir.path(), LsmOptions::default())?;
    /// db.put("a", "1")?;
    /// let snap = db.snapshot()?;
    /// db.put("a", "2")?;
    /// assert_eq!(snap.multi_get(["a", "a"])?, [Some("1".into()), Some("1".into())]);
    /// # Ok::<(), rumdb::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`Snapshot::get`].
    pub fn multi_get<K: AsRef<[u8]>>(
        &self,
        keys: impl IntoIterator<Item = K>,
    ) -> Result<Vec<Option<Bytes>>> {
        let owned: Vec<K> = keys.into_iter().collect();
        let refs: Vec<&[u8]> = owned.iter().map(AsRef::as_ref).collect();
        self.source.multi_get(&refs)
    }
}
