//! [`KeyRange`]: the range forms (`a..b`, `..`, `(Bound, Bound)`, …) the generic reads accept.

use super::*;

/// A range of keys in Rust syntax, as [`EngineExt::range`], [`EngineExt::keys`], [`Snapshot::range`] and
/// [`Snapshot::keys`] take it: `..`, `a..b`, `a..=b`, `a..`, `..b`, `..=b` and `(Bound<K>, Bound<K>)`,
/// for any key type `K: AsRef<[u8]>` (`&str`, `String`, `Vec<u8>`, `&[u8]`, `&[u8; N]`, [`Bytes`]).
///
/// It stands where a `R: RangeBounds<K>, K: AsRef<[u8]>` pair of parameters would, because with those
/// `..` (a [`RangeFull`], which is `RangeBounds<K>` for every `K`) would leave `K` for the caller to
/// spell out.
///
/// # Examples
///
/// ```
/// use std::ops::Bound;
/// use rumdb::KeyRange;
/// assert_eq!(("a".."b").key_bounds(), (Bound::Included(&b"a"[..]), Bound::Excluded(&b"b"[..])));
/// assert_eq!((..).key_bounds(), (Bound::Unbounded, Bound::Unbounded));
/// let from = b"k".to_vec();
/// assert_eq!((from..).key_bounds().0, Bound::Included(&b"k"[..]));
/// ```
pub trait KeyRange {
    /// The lower and the upper bound, as byte strings.
    fn key_bounds(&self) -> (Bound<&[u8]>, Bound<&[u8]>);
}

fn bound_bytes<K: AsRef<[u8]>>(b: Bound<&K>) -> Bound<&[u8]> {
    b.map(AsRef::as_ref)
}

impl KeyRange for RangeFull {
    fn key_bounds(&self) -> (Bound<&[u8]>, Bound<&[u8]>) {
        (Bound::Unbounded, Bound::Unbounded)
    }
}

impl<K: AsRef<[u8]>> KeyRange for Range<K> {
    fn key_bounds(&self) -> (Bound<&[u8]>, Bound<&[u8]>) {
        (
            Bound::Included(self.start.as_ref()),
            Bound::Excluded(self.end.as_ref()),
        )
    }
}

impl<K: AsRef<[u8]>> KeyRange for RangeInclusive<K> {
    fn key_bounds(&self) -> (Bound<&[u8]>, Bound<&[u8]>) {
        (
            bound_bytes(self.start_bound()),
            bound_bytes(self.end_bound()),
        )
    }
}

impl<K: AsRef<[u8]>> KeyRange for RangeFrom<K> {
    fn key_bounds(&self) -> (Bound<&[u8]>, Bound<&[u8]>) {
        (Bound::Included(self.start.as_ref()), Bound::Unbounded)
    }
}

impl<K: AsRef<[u8]>> KeyRange for RangeTo<K> {
    fn key_bounds(&self) -> (Bound<&[u8]>, Bound<&[u8]>) {
        (Bound::Unbounded, Bound::Excluded(self.end.as_ref()))
    }
}

impl<K: AsRef<[u8]>> KeyRange for RangeToInclusive<K> {
    fn key_bounds(&self) -> (Bound<&[u8]>, Bound<&[u8]>) {
        (Bound::Unbounded, Bound::Included(self.end.as_ref()))
    }
}

impl<K: AsRef<[u8]>> KeyRange for (Bound<K>, Bound<K>) {
    fn key_bounds(&self) -> (Bound<&[u8]>, Bound<&[u8]>) {
        (bound_bytes(self.0.as_ref()), bound_bytes(self.1.as_ref()))
    }
}

impl<R: KeyRange + ?Sized> KeyRange for &R {
    fn key_bounds(&self) -> (Bound<&[u8]>, Bound<&[u8]>) {
        (**self).key_bounds()
    }
}
