//! The storage layer: the only code in rumdb that touches files.
//!
//! A database lives in one directory with a flat namespace of files. Everything above this module names
//! files by their name in that directory and does all I/O through [`Storage`] and [`File`], which
//!
//! - count every byte read and written by purpose ([`WritePurpose`], [`ReadPurpose`]) and every fsync,
//!   feeding the engines' [`Stats`](crate::Stats);
//! - turn short writes and `EINTR` into a write-all loop, so a record is never silently cut short;
//! - turn an `EWOULDBLOCK` on the `LOCK` file into [`Error::Locked`].
//!
//! Behind them sits a [`Backend`]: [`OsBackend`] (std::fs on a real directory; see its docs for the media
//! assumptions) or, with feature `testing`, `storage::sim::SimBackend`, an in-memory disk that can crash
//! on demand and inject faults.
//!
//! # Semantics every backend provides
//!
//! - `create_new` fails if the name exists; neither it, `rename` nor `remove` is durable until `sync_dir`.
//! - Written bytes are visible to reads at once and durable after the file's `sync_data`.
//! - `rename` atomically replaces the target.
//! - `try_lock` never blocks: a lock held by any handle, in this process or another, is `WouldBlock`.

mod accounting;
#[allow(unsafe_code)] // The one module with `unsafe`: mapping a file (see its safety argument).
pub(crate) mod mmap;
mod os;
#[cfg(feature = "testing")]
pub mod sim;

pub use accounting::{IoCounters, IoStats, ReadBytes, ReadPurpose, WritePurpose, WrittenBytes};
pub use mmap::Mapping;
pub use os::OsBackend;

use std::fmt;
use std::io;
use std::path::Path;
use std::sync::Arc;

use crate::error::{Error, Result};

/// A directory of files, as a backend implements it. Names are plain file names (no separators).
pub trait Backend: Send + Sync + fmt::Debug {
    /// Creates `name`, failing with `AlreadyExists` if it exists. The file is opened for reading and writing.
    fn create_new(&self, name: &str) -> io::Result<Arc<dyn BackendFile>>;
    /// Opens an existing file; `NotFound` if there is none.
    fn open(&self, name: &str, writable: bool) -> io::Result<Arc<dyn BackendFile>>;
    /// Renames `from` to `to`, atomically replacing `to`.
    fn rename(&self, from: &str, to: &str) -> io::Result<()>;
    /// Removes `name`.
    fn remove(&self, name: &str) -> io::Result<()>;
    /// The names of every file in the directory, in no particular order.
    fn list(&self) -> io::Result<Vec<String>>;
    /// Makes creations, renames and removals in the directory durable.
    fn sync_dir(&self) -> io::Result<()>;
    /// Takes an exclusive lock on `name` (created if missing) without blocking; `WouldBlock` if held.
    /// The lock is released when the returned guard drops or the process dies.
    fn try_lock(&self, name: &str) -> io::Result<Box<dyn fmt::Debug + Send + Sync>>;
    /// Takes a shared lock on the existing file `name` without blocking and without creating or writing
    /// anything (the file is opened for reading): any number of shared holders at once; `WouldBlock` while
    /// an exclusive lock is held (and an exclusive [`Backend::try_lock`] is `WouldBlock` while a shared one
    /// is). `NotFound` if the file is missing. The default is `Unsupported`.
    fn try_lock_shared(&self, name: &str) -> io::Result<Box<dyn fmt::Debug + Send + Sync>> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!("this backend has no shared lock (for {name:?})"),
        ))
    }
    /// Where file `name` is in the operating system's filesystem, for [`Backend::hard_link`]; `None`
    /// (the default) if the backend's files are not OS files.
    fn os_path(&self, _name: &str) -> Option<std::path::PathBuf> {
        None
    }
    /// Creates `name` as a hard link to the OS file `from` (no data copied; not durable until
    /// `sync_dir`). The default is `Unsupported`; the OS backend fails as `link(2)` does (`EXDEV` across
    /// filesystems, `EPERM` where links are not allowed).
    fn hard_link(&self, from: &std::path::Path, name: &str) -> io::Result<()> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!(
                "this backend has no hard links (for {name:?} from {})",
                from.display()
            ),
        ))
    }
    /// How error messages name file `name` (the OS backend: its full path).
    fn display_path(&self, name: &str) -> String {
        name.to_string()
    }
    /// How error messages name the directory (the OS backend: its path).
    fn display_dir(&self) -> String {
        "the simulated directory".to_string()
    }
}

/// An I/O error with the operation and the path it failed on: the message of the [`io::Error`] that
/// [`Error::Io`] carries ("creating /db/000003.log: File exists (os error 17)"). The wrapping
/// `io::Error` keeps the original's kind, and its `source` is the original error.
#[derive(Debug)]
struct IoContext {
    op: &'static str,
    path: String,
    source: io::Error,
}

impl fmt::Display for IoContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.op, self.path, self.source)
    }
}

impl std::error::Error for IoContext {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// `source` with the operation `op` (a verb in `-ing` form) and the `path` it failed on, keeping its kind.
pub(crate) fn io_context(
    source: io::Error,
    op: &'static str,
    path: impl Into<String>,
) -> io::Error {
    io::Error::new(
        source.kind(),
        IoContext {
            op,
            path: path.into(),
            source,
        },
    )
}

/// One open file, as a backend implements it. Every method takes `&self`: reads run concurrently with an
/// appender.
pub trait BackendFile: Send + Sync + fmt::Debug {
    /// Appends up to `buf.len()` bytes at the end of the file; returns how many were written.
    fn append(&self, buf: &[u8]) -> io::Result<usize>;
    /// Writes up to `buf.len()` bytes at `offset`, extending the file if needed; returns how many.
    fn write_at(&self, offset: u64, buf: &[u8]) -> io::Result<usize>;
    /// Reads up to `buf.len()` bytes at `offset`; fewer only at the end of the file.
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize>;
    /// The file's length in bytes.
    fn size(&self) -> io::Result<u64>;
    /// Truncates or extends (with zeros) the file.
    fn set_len(&self, len: u64) -> io::Result<()>;
    /// Makes the file's data (and its length) durable.
    fn sync_data(&self) -> io::Result<()>;
    /// Maps the whole file read-only, where the backend supports it. The caller promises the mapping
    /// invariant of `Mapping` (`src/storage/mmap.rs`).
    fn map(&self) -> io::Result<Option<Mapping>> {
        Ok(None)
    }
}

/// The storage of one database directory: a [`Backend`] plus byte accounting.
#[derive(Clone, Debug)]
pub struct Storage {
    backend: Arc<dyn Backend>,
    counters: Arc<IoCounters>,
    /// Refuse every call that would create, write, rename, remove or sync (read-only handles).
    read_only: bool,
}

/// A lock on a file of the directory, released on drop.
#[derive(Debug)]
pub struct LockGuard {
    _inner: Box<dyn fmt::Debug + Send + Sync>,
}

impl LockGuard {
    /// A guard that holds no lock (a read-only open of a directory without a `LOCK` file).
    pub(crate) fn unlocked() -> Self {
        LockGuard {
            _inner: Box::new("no LOCK file: nothing locked"),
        }
    }
}

impl Storage {
    /// Storage over any backend.
    pub fn new(backend: Arc<dyn Backend>) -> Self {
        Storage {
            backend,
            counters: Arc::new(IoCounters::default()),
            read_only: false,
        }
    }

    /// This storage in read-only mode: every call that would create, write, rename, remove or sync a file
    /// (or open one for writing, or take the exclusive lock) fails with [`Error::ReadOnly`] before it
    /// reaches the backend. Read-only engine handles use it, so a path that forgot to skip a write fails
    /// instead of writing.
    ///
    /// # Examples
    ///
    /// ```
    /// use rumdb::testing::Storage;
    /// let dir = tempfile::tempdir()?;
    /// let s = Storage::os(dir.path(), false)?.into_read_only();
    /// assert!(matches!(s.create_new("x"), Err(rumdb::Error::ReadOnly(_))));
    /// assert!(s.list()?.is_empty());
    /// # Ok::<(), rumdb::Error>(())
    /// ```
    pub fn into_read_only(mut self) -> Self {
        self.read_only = true;
        self
    }

    /// True if this storage refuses writes ([`Storage::into_read_only`]).
    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    fn check_mutable(&self, what: &str) -> Result<()> {
        if self.read_only {
            return Err(Error::ReadOnly(format!("storage: {what}")));
        }
        Ok(())
    }

    /// Storage on a real directory, created (with its parents) if `create` is true and it is missing.
    ///
    /// # Errors
    /// `Io` if the directory cannot be created or opened.
    pub fn os(dir: &Path, create: bool) -> Result<Self> {
        Ok(Storage::new(Arc::new(OsBackend::open(dir, create)?)))
    }

    /// The storage an engine's `open(dir, options)` works on: read-only ([`Storage::into_read_only`], the
    /// directory never created) if `read_only`, else [`Storage::os`] creating the directory if
    /// `create_if_missing`.
    ///
    /// # Errors
    /// As [`Storage::os`].
    pub(crate) fn for_open(dir: &Path, create_if_missing: bool, read_only: bool) -> Result<Self> {
        if read_only {
            return Ok(Storage::os(dir, false)?.into_read_only());
        }
        Storage::os(dir, create_if_missing)
    }

    /// The byte counters of this storage.
    pub fn counters(&self) -> &Arc<IoCounters> {
        &self.counters
    }

    /// A snapshot of the byte counters.
    pub fn io_stats(&self) -> IoStats {
        self.counters.snapshot()
    }

    /// The directory, as error messages name it.
    pub fn display_dir(&self) -> String {
        self.backend.display_dir()
    }

    /// `e` with operation `op` on file `name` in its message (an [`Error::Io`]).
    fn err(&self, e: io::Error, op: &'static str, name: &str) -> Error {
        Error::Io(io_context(e, op, self.backend.display_path(name)))
    }

    /// Creates `name`; fails if it exists.
    ///
    /// # Errors
    /// `Io` (kind `AlreadyExists` if the name is taken).
    pub fn create_new(&self, name: &str) -> Result<File> {
        self.check_mutable(&format!("creating {name}"))?;
        let inner = self
            .backend
            .create_new(name)
            .map_err(|e| self.err(e, "creating", name))?;
        Ok(self.wrap(name, inner))
    }

    /// Opens an existing file.
    ///
    /// # Errors
    /// `Io` (kind `NotFound` if there is no such file).
    pub fn open(&self, name: &str, writable: bool) -> Result<File> {
        if writable {
            self.check_mutable(&format!("opening {name} for writing"))?;
        }
        let inner = self
            .backend
            .open(name, writable)
            .map_err(|e| self.err(e, "opening", name))?;
        Ok(self.wrap(name, inner))
    }

    /// Opens a file that the database's own metadata says must exist: a missing file is
    /// [`Error::Corruption`], never a reason to start afresh.
    ///
    /// # Errors
    /// `Corruption` if missing, `Io` otherwise.
    pub fn open_required(&self, name: &str, writable: bool) -> Result<File> {
        if writable {
            self.check_mutable(&format!("opening {name} for writing"))?;
        }
        match self.backend.open(name, writable) {
            Ok(inner) => Ok(self.wrap(name, inner)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                Err(Error::corruption(name, None, "file is missing"))
            }
            Err(e) => Err(self.err(e, "opening", name)),
        }
    }

    fn wrap(&self, name: &str, inner: Arc<dyn BackendFile>) -> File {
        File {
            name: Arc::from(name),
            path: Arc::from(self.backend.display_path(name)),
            inner,
            counters: Arc::clone(&self.counters),
        }
    }

    /// Renames `from` to `to`, atomically replacing `to`. Durable after [`Storage::sync_dir`].
    ///
    /// # Errors
    /// `Io`.
    pub fn rename(&self, from: &str, to: &str) -> Result<()> {
        self.check_mutable(&format!("renaming {from}"))?;
        self.backend.rename(from, to).map_err(|e| {
            let (from, to) = (
                self.backend.display_path(from),
                self.backend.display_path(to),
            );
            Error::Io(io_context(e, "renaming", format!("{from} to {to}")))
        })
    }

    /// Removes `name`. Durable after [`Storage::sync_dir`].
    ///
    /// # Errors
    /// `Io`.
    pub fn remove(&self, name: &str) -> Result<()> {
        self.check_mutable(&format!("removing {name}"))?;
        self.backend
            .remove(name)
            .map_err(|e| self.err(e, "removing", name))
    }

    /// The names of the files in the directory, sorted.
    ///
    /// # Errors
    /// `Io`.
    pub fn list(&self) -> Result<Vec<String>> {
        let mut names = self.list_unsorted()?;
        names.sort();
        Ok(names)
    }

    /// True if `name` exists.
    ///
    /// # Errors
    /// `Io`.
    pub fn exists(&self, name: &str) -> Result<bool> {
        Ok(self.list_unsorted()?.iter().any(|n| n == name))
    }

    fn list_unsorted(&self) -> Result<Vec<String>> {
        self.backend
            .list()
            .map_err(|e| Error::Io(io_context(e, "listing", self.backend.display_dir())))
    }

    /// Makes creations, renames and removals durable.
    ///
    /// # Errors
    /// `Io`.
    pub fn sync_dir(&self) -> Result<()> {
        self.check_mutable("syncing the directory")?;
        self.backend.sync_dir().map_err(|e| {
            Error::Io(io_context(
                e,
                "syncing the directory",
                self.backend.display_dir(),
            ))
        })?;
        self.counters.add_dir_sync();
        Ok(())
    }

    /// Takes the exclusive lock on `name` without blocking.
    ///
    /// # Errors
    /// `Locked` if another handle (in this process or another) holds it; `Io` otherwise.
    pub fn try_lock(&self, name: &str) -> Result<LockGuard> {
        self.check_mutable(&format!("locking {name} exclusively"))?;
        match self.backend.try_lock(name) {
            Ok(inner) => Ok(LockGuard { _inner: inner }),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                Err(Error::Locked(self.backend.display_dir()))
            }
            Err(e) => Err(self.err(e, "locking", name)),
        }
    }

    /// Takes the shared lock on `name` without blocking, creating nothing: `Ok(None)` if the file does
    /// not exist (nothing to lock; the caller decides).
    ///
    /// # Errors
    /// `Locked` if a handle (in this process or another) holds the exclusive lock; `Io` otherwise.
    pub fn try_lock_shared(&self, name: &str) -> Result<Option<LockGuard>> {
        match self.backend.try_lock_shared(name) {
            Ok(inner) => Ok(Some(LockGuard { _inner: inner })),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Err(Error::Locked(format!(
                "{name} of {:?} is held by a writer",
                self.backend
            ))),
            Err(e) => Err(e.into()),
        }
    }

    /// Writes `name` whole through a temporary file: write `name.tmp`, sync it, rename it over `name`, sync
    /// the directory. After a crash the directory holds the old or the new content, never a mix.
    ///
    /// # Errors
    /// `Io`.
    pub fn write_file_atomic(&self, name: &str, data: &[u8], purpose: WritePurpose) -> Result<()> {
        self.write_file_atomic_at(name, data, purpose, None)
    }

    /// [`Storage::write_file_atomic`], passing crash point `tmp_synced` (if any) once the temp file is
    /// synced, before the rename.
    pub(crate) fn write_file_atomic_at(
        &self,
        name: &str,
        data: &[u8],
        purpose: WritePurpose,
        tmp_synced: Option<&'static str>,
    ) -> Result<()> {
        self.check_mutable(&format!("writing {name}"))?;
        let tmp = format!("{name}.tmp");
        match self.backend.remove(&tmp) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(self.err(e, "removing", &tmp)),
        }
        let file = self.create_new(&tmp)?;
        file.append(data, purpose)?;
        file.sync_data()?;
        drop(file);
        if let Some(point) = tmp_synced {
            crate::crash_point::hit(point);
        }
        self.rename(&tmp, name)?;
        self.sync_dir()
    }

    /// Puts the first `len` bytes of this directory's file `name` into `target` under the same name, which
    /// must not exist there: as a hard link when `link` is set, the whole file is wanted (`len` is its
    /// length) and both backends allow it, else as a copy, fsync'd. The name is durable only after the
    /// target's `sync_dir`. Returns `true` if linked. Bytes read count as [`ReadPurpose::Backup`], bytes
    /// written as `purpose` (in the target's counters).
    ///
    /// A link shares the inode: only link files that are never written again (LSM tables). A link that
    /// fails for any reason (`EXDEV`, `EPERM`, a filesystem without links) falls back to the copy.
    ///
    /// # Errors
    /// `Io` (`AlreadyExists` if `target` has `name`); `Corruption` if the file is shorter than `len`.
    pub(crate) fn copy_file_to(
        &self,
        name: &str,
        len: u64,
        target: &Storage,
        link: bool,
        purpose: WritePurpose,
    ) -> Result<bool> {
        target.check_mutable(&format!("creating {name}"))?;
        let source = self.open_required(name, false)?;
        if link
            && source.len()? == len
            && let Some(from) = self.backend.os_path(name)
            && target.backend.hard_link(&from, name).is_ok()
        {
            return Ok(true);
        }
        let out = target.create_new(name)?;
        let mut buf = vec![0u8; COPY_CHUNK.min(len) as usize];
        let mut at = 0;
        while at < len {
            let n = COPY_CHUNK.min(len - at) as usize;
            let chunk = buf.get_mut(..n).unwrap_or_default();
            source.read_exact_at(at, chunk, ReadPurpose::Backup)?;
            out.append(chunk, purpose)?;
            at += n as u64;
        }
        out.sync_data()?;
        Ok(false)
    }

    /// Reads all of `name`, refusing files larger than `limit` bytes (so a damaged file cannot force an
    /// unbounded allocation).
    ///
    /// # Errors
    /// `Io` (`NotFound` if missing); `Corruption` if larger than `limit`.
    pub fn read_file(&self, name: &str, limit: u64, purpose: ReadPurpose) -> Result<Vec<u8>> {
        let file = self.open(name, false)?;
        let len = file.len()?;
        if len > limit {
            return Err(Error::corruption(
                name,
                None,
                format!("file is {len} bytes, more than the {limit} allowed"),
            ));
        }
        let mut buf =
            vec![0u8; usize::try_from(len).map_err(|_| Error::invalid("file too large"))?];
        file.read_exact_at(0, &mut buf, purpose)?;
        Ok(buf)
    }
}

/// The read and write size of [`Storage::copy_file_to`].
const COPY_CHUNK: u64 = 1 << 20;

/// An open file of a [`Storage`], counting its bytes.
#[derive(Clone, Debug)]
pub struct File {
    name: Arc<str>,
    /// The name as error messages give it (the OS backend: the full path).
    path: Arc<str>,
    inner: Arc<dyn BackendFile>,
    counters: Arc<IoCounters>,
}

impl File {
    /// The file's name in its directory.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `e` with operation `op` on this file in its message (an [`Error::Io`]).
    fn err(&self, e: io::Error, op: &'static str) -> Error {
        Error::Io(io_context(e, op, &*self.path))
    }

    /// Appends all of `buf`, retrying short writes and `EINTR`.
    ///
    /// # Errors
    /// `Io`; part of `buf` may have been written.
    pub fn append(&self, mut buf: &[u8], purpose: WritePurpose) -> Result<()> {
        while !buf.is_empty() {
            match self.inner.append(buf) {
                Ok(0) => return Err(self.err(io::ErrorKind::WriteZero.into(), "appending to")),
                Ok(n) => {
                    self.counters.add_written(purpose, n as u64);
                    buf = buf.get(n..).unwrap_or_default();
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.err(e, "appending to")),
            }
        }
        Ok(())
    }

    /// Writes all of `buf` at `offset`, retrying short writes and `EINTR`.
    ///
    /// # Errors
    /// `Io`; part of `buf` may have been written.
    pub fn write_at(&self, mut offset: u64, mut buf: &[u8], purpose: WritePurpose) -> Result<()> {
        while !buf.is_empty() {
            match self.inner.write_at(offset, buf) {
                Ok(0) => return Err(self.err(io::ErrorKind::WriteZero.into(), "writing to")),
                Ok(n) => {
                    self.counters.add_written(purpose, n as u64);
                    offset += n as u64;
                    buf = buf.get(n..).unwrap_or_default();
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.err(e, "writing to")),
            }
        }
        Ok(())
    }

    /// Reads as much of `buf` as the file holds at `offset`; returns the count (short only at the end).
    ///
    /// # Errors
    /// `Io`.
    pub fn read_at(&self, offset: u64, buf: &mut [u8], purpose: ReadPurpose) -> Result<usize> {
        let mut done = 0;
        while done < buf.len() {
            let rest = buf.get_mut(done..).unwrap_or_default();
            match self.inner.read_at(offset + done as u64, rest) {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.err(e, "reading")),
            }
        }
        self.counters.add_read(purpose, done as u64);
        Ok(done)
    }

    /// Fills `buf` from `offset`. A file that ends first is [`Error::Corruption`]: the caller's metadata said
    /// the bytes are there.
    ///
    /// # Errors
    /// `Corruption` if the file is too short; `Io`.
    pub fn read_exact_at(&self, offset: u64, buf: &mut [u8], purpose: ReadPurpose) -> Result<()> {
        let n = self.read_at(offset, buf, purpose)?;
        if n < buf.len() {
            return Err(Error::corruption(
                self.name(),
                Some(offset),
                format!("file ends {n} bytes into a {}-byte read", buf.len()),
            ));
        }
        Ok(())
    }

    /// The file's length.
    ///
    /// # Errors
    /// `Io`.
    pub fn len(&self) -> Result<u64> {
        self.inner
            .size()
            .map_err(|e| self.err(e, "reading the length of"))
    }

    /// True if the file is empty.
    ///
    /// # Errors
    /// `Io`.
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }

    /// Truncates or extends (with zeros) the file. Durable after [`File::sync_data`].
    ///
    /// # Errors
    /// `Io`.
    pub fn set_len(&self, len: u64) -> Result<()> {
        self.inner
            .set_len(len)
            .map_err(|e| self.err(e, "setting the length of"))
    }

    /// Makes the file's data durable. A failure means the data's fate is unknown: callers poison their
    /// handle and never retry.
    ///
    /// # Errors
    /// `Io`.
    pub fn sync_data(&self) -> Result<()> {
        self.inner.sync_data().map_err(|e| self.err(e, "syncing"))?;
        self.counters.add_fsync();
        Ok(())
    }

    /// Maps the whole file read-only where the backend supports it (`None` otherwise).
    ///
    /// REQUIRES: the file is immutable, fully written and synced, and is not truncated or unlinked while the
    /// mapping lives (see `Mapping`).
    ///
    /// # Errors
    /// `Io`.
    pub fn map(&self) -> Result<Option<Mapping>> {
        self.inner.map().map_err(|e| self.err(e, "mapping"))
    }
}
