//! Iteration: the [`Cursor`] an engine supplies and the [`Iter`] and [`Keys`] users get.

use super::*;

/// What an engine supplies to [`Iter`]: entries within the scan's bounds from either end, in order. The
/// cursor need not know when the two ends meet; [`Iter`] stops them.
pub trait Cursor: Send {
    /// The next entry from the front (ascending keys), or `None` at the end.
    fn next_front(&mut self) -> Option<Result<KvPair>>;
    /// The next entry from the back (descending keys), or `None` at the start.
    fn next_back(&mut self) -> Option<Result<KvPair>>;
    /// From now on the caller ignores values: a cursor that can avoid reading them may yield empty ones.
    /// The default does nothing (values are still read).
    fn skip_values(&mut self) {}
}

/// A double-ended iterator over `Result<(key, value)>` in key order that meets in the middle like
/// `BTreeMap::range`. After an error it yields nothing more.
pub struct Iter {
    cursor: Box<dyn Cursor>,
    /// The last key yielded from each end (shared with the yielded key, not copied).
    front: Option<Bytes>,
    back: Option<Bytes>,
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

    /// An iterator over the keys only. Where the engine can skip reading values it does: the B-tree does
    /// not read overflow chains of values. The LSM still reads values (they sit in the same blocks as
    /// their keys) but does not copy them out.
    ///
    /// # Examples
    ///
    /// ```
    /// use rumdb::{Engine, EngineExt, LsmEngine, LsmOptions};
    /// let dir = tempfile::tempdir()?;
    /// let db = LsmEngine::open(dir.path(), LsmOptions::default())?;
    /// db.put("a", "1")?;
    /// let keys: Vec<rumdb::Bytes> = db.range(..)?.keys().collect::<rumdb::Result<_>>()?;
    /// assert_eq!(keys, ["a"]);
    /// # Ok::<(), rumdb::Error>(())
    /// ```
    pub fn keys(mut self) -> Keys {
        self.cursor.skip_values();
        Keys { inner: self }
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
                *mine = Some(k.clone());
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

/// The keys of an [`Iter`], from [`Iter::keys`]: double-ended, in key order, fused after an error.
#[derive(Debug)]
pub struct Keys {
    inner: Iter,
}

impl Iterator for Keys {
    type Item = Result<Bytes>;

    fn next(&mut self) -> Option<Self::Item> {
        self.inner.next().map(|r| r.map(|(k, _)| k))
    }
}

impl DoubleEndedIterator for Keys {
    fn next_back(&mut self) -> Option<Self::Item> {
        self.inner.next_back().map(|r| r.map(|(k, _)| k))
    }
}

impl std::iter::FusedIterator for Keys {}
