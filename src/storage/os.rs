//! The OS backend: a real directory through `std::fs`.
//!
//! # Media assumptions
//!
//! rumdb's recovery relies on what Linux with ext4 or xfs provides on honest hardware:
//! - `fdatasync` returns only after the file's data (and the size change it implies) is on stable media,
//!   and reports every write-back error once;
//! - a directory's `fsync` makes creations, renames and removals in it durable;
//! - `rename` replaces its target atomically;
//! - a 512-byte sector is written whole or not at all; larger writes may tear at sector boundaries, and an
//!   unsynced write may leave its range zeroed or holding the old bytes after power loss.
//!
//! Files are never opened with `O_APPEND` (Linux ignores the offset of `pwrite` on such files): the
//! appender's position is tracked here.

use std::fmt;
use std::fs;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;

use super::{Backend, BackendFile, Mapping, io_context};

/// A real directory.
#[derive(Debug)]
pub struct OsBackend {
    dir: PathBuf,
}

impl OsBackend {
    /// The backend for `dir`, which is created (with its parents) if `create` is true and it is missing.
    ///
    /// # Errors
    /// `NotFound` if the directory is missing and `create` is false; other I/O errors as they come.
    pub fn open(dir: &Path, create: bool) -> io::Result<Self> {
        let shown = || dir.display().to_string();
        if create {
            fs::create_dir_all(dir)
                .map_err(|e| io_context(e, "creating the directory", shown()))?;
        }
        let meta =
            fs::metadata(dir).map_err(|e| io_context(e, "opening the directory", shown()))?;
        if !meta.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::NotADirectory,
                format!("{} is not a directory", dir.display()),
            ));
        }
        Ok(OsBackend {
            dir: dir.to_path_buf(),
        })
    }

    fn path(&self, name: &str) -> io::Result<PathBuf> {
        if name.is_empty() || name.contains('/') || name == "." || name == ".." {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("not a plain file name: {name:?}"),
            ));
        }
        Ok(self.dir.join(name))
    }
}

impl Backend for OsBackend {
    fn create_new(&self, name: &str) -> io::Result<Arc<dyn BackendFile>> {
        let file = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(self.path(name)?)?;
        Ok(Arc::new(OsFile::new(file, 0)))
    }

    fn open(&self, name: &str, writable: bool) -> io::Result<Arc<dyn BackendFile>> {
        let file = fs::OpenOptions::new()
            .read(true)
            .write(writable)
            .open(self.path(name)?)?;
        let len = file.metadata()?.len();
        Ok(Arc::new(OsFile::new(file, len)))
    }

    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        fs::rename(self.path(from)?, self.path(to)?)
    }

    fn remove(&self, name: &str) -> io::Result<()> {
        fs::remove_file(self.path(name)?)
    }

    fn list(&self) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in fs::read_dir(&self.dir)? {
            let entry = entry?;
            // Names rumdb writes are ASCII; anything else is not ours and is left alone.
            if let Ok(name) = entry.file_name().into_string() {
                names.push(name);
            }
        }
        Ok(names)
    }

    fn sync_dir(&self) -> io::Result<()> {
        fs::File::open(&self.dir)?.sync_all()
    }

    fn os_path(&self, name: &str) -> Option<PathBuf> {
        self.path(name).ok()
    }

    fn hard_link(&self, from: &Path, name: &str) -> io::Result<()> {
        fs::hard_link(from, self.path(name)?)
    }

    fn display_path(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }

    fn display_dir(&self) -> String {
        self.dir.display().to_string()
    }

    fn try_lock(&self, name: &str) -> io::Result<Box<dyn fmt::Debug + Send + Sync>> {
        let file = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(self.path(name)?)?;
        match file.try_lock() {
            Ok(()) => Ok(Box::new(file)),
            Err(fs::TryLockError::WouldBlock) => Err(io::ErrorKind::WouldBlock.into()),
            Err(fs::TryLockError::Error(e)) => Err(e),
        }
    }

    /// Opens the existing file read-only (works on a read-only directory or filesystem) and takes a
    /// shared `flock`.
    fn try_lock_shared(&self, name: &str) -> io::Result<Box<dyn fmt::Debug + Send + Sync>> {
        let file = fs::OpenOptions::new().read(true).open(self.path(name)?)?;
        match file.try_lock_shared() {
            Ok(()) => Ok(Box::new(file)),
            Err(fs::TryLockError::WouldBlock) => Err(io::ErrorKind::WouldBlock.into()),
            Err(fs::TryLockError::Error(e)) => Err(e),
        }
    }
}

/// An open file; `end` is where the next append lands.
#[derive(Debug)]
struct OsFile {
    file: fs::File,
    end: Mutex<u64>,
}

impl OsFile {
    fn new(file: fs::File, len: u64) -> Self {
        OsFile {
            file,
            end: Mutex::new(len),
        }
    }
}

impl BackendFile for OsFile {
    fn append(&self, buf: &[u8]) -> io::Result<usize> {
        let mut end = self.end.lock();
        let n = self.file.write_at(buf, *end)?;
        *end += n as u64;
        Ok(n)
    }

    fn write_at(&self, offset: u64, buf: &[u8]) -> io::Result<usize> {
        let mut end = self.end.lock();
        let n = self.file.write_at(buf, offset)?;
        *end = (*end).max(offset + n as u64);
        Ok(n)
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        self.file.read_at(buf, offset)
    }

    fn size(&self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        let mut end = self.end.lock();
        self.file.set_len(len)?;
        *end = len;
        Ok(())
    }

    fn sync_data(&self) -> io::Result<()> {
        self.file.sync_data()
    }

    fn map(&self) -> io::Result<Option<Mapping>> {
        Mapping::map(&self.file).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use crate::Error;
    use crate::storage::{ReadPurpose, Storage, WritePurpose};

    #[test]
    fn write_read_rename_remove() {
        let dir = tempfile::tempdir().unwrap();
        let s = Storage::os(dir.path(), false).unwrap();
        let f = s.create_new("a").unwrap();
        f.append(b"hello ", WritePurpose::Wal).unwrap();
        f.append(b"world", WritePurpose::Wal).unwrap();
        f.write_at(0, b"H", WritePurpose::Header).unwrap();
        f.sync_data().unwrap();
        let mut buf = [0u8; 11];
        f.read_exact_at(0, &mut buf, ReadPurpose::Get).unwrap();
        assert_eq!(&buf, b"Hello world");
        assert!(s.create_new("a").is_err(), "create_new must not replace");
        s.rename("a", "b").unwrap();
        s.sync_dir().unwrap();
        assert_eq!(s.list().unwrap(), vec!["b".to_string()]);
        let err = s.open_required("a", false).unwrap_err();
        assert!(err.is_corruption(), "{err}");
        // Reading past the end is Corruption, not a panic.
        let g = s.open("b", false).unwrap();
        let mut big = [0u8; 20];
        assert!(
            g.read_exact_at(0, &mut big, ReadPurpose::Get)
                .unwrap_err()
                .is_corruption()
        );
        s.remove("b").unwrap();
        assert!(s.list().unwrap().is_empty());
        let io = s.io_stats();
        assert_eq!(io.written.wal, 11);
        assert_eq!(io.written.header, 1);
        assert_eq!(io.fsyncs, 1);
        assert_eq!(io.dir_syncs, 1);
    }

    #[test]
    fn atomic_file_write_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let s = Storage::os(dir.path(), false).unwrap();
        s.write_file_atomic("CURRENT", b"one", WritePurpose::Manifest)
            .unwrap();
        s.write_file_atomic("CURRENT", b"two!", WritePurpose::Manifest)
            .unwrap();
        assert_eq!(
            s.read_file("CURRENT", 100, ReadPurpose::Recovery).unwrap(),
            b"two!"
        );
        assert!(
            s.read_file("CURRENT", 2, ReadPurpose::Recovery)
                .unwrap_err()
                .is_corruption()
        );
        assert_eq!(s.list().unwrap(), vec!["CURRENT".to_string()]);
    }

    #[test]
    fn lock_is_exclusive_within_the_process() {
        let dir = tempfile::tempdir().unwrap();
        let s = Storage::os(dir.path(), false).unwrap();
        let guard = s.try_lock("LOCK").unwrap();
        let again = Storage::os(dir.path(), false).unwrap();
        assert!(matches!(again.try_lock("LOCK"), Err(Error::Locked(_))));
        drop(guard);
        again.try_lock("LOCK").unwrap();
    }

    #[test]
    fn shared_locks_share_and_exclude_the_exclusive_one() {
        let dir = tempfile::tempdir().unwrap();
        let s = Storage::os(dir.path(), false).unwrap();
        assert!(s.try_lock_shared("LOCK").unwrap().is_none(), "missing file");
        assert!(s.list().unwrap().is_empty(), "nothing created");
        let w = s.try_lock("LOCK").unwrap();
        assert!(matches!(s.try_lock_shared("LOCK"), Err(Error::Locked(_))));
        drop(w);
        let r1 = s.try_lock_shared("LOCK").unwrap().unwrap();
        let r2 = s.try_lock_shared("LOCK").unwrap().unwrap();
        assert!(matches!(s.try_lock("LOCK"), Err(Error::Locked(_))));
        drop(r1);
        assert!(matches!(s.try_lock("LOCK"), Err(Error::Locked(_))));
        drop(r2);
        s.try_lock("LOCK").unwrap();
    }

    #[test]
    fn io_errors_name_the_operation_and_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let s = Storage::os(dir.path(), false).unwrap();
        s.create_new("000003.log").unwrap();
        let err = s.create_new("000003.log").unwrap_err();
        let path = dir.path().join("000003.log").display().to_string();
        assert!(
            err.to_string().contains(&format!("creating {path}: ")),
            "{err}"
        );
        let Error::Io(io) = &err else {
            panic!("expected Io, got {err}")
        };
        assert_eq!(io.kind(), std::io::ErrorKind::AlreadyExists);
        let source = std::error::Error::source(&err).expect("Io has a source");
        let os = source.source().expect("the context keeps the OS error");
        assert!(!os.to_string().contains(&path), "{os}");
        let missing = Storage::os(&dir.path().join("missing"), false).unwrap_err();
        assert!(
            missing.to_string().contains("opening the directory"),
            "{missing}"
        );
    }

    #[test]
    fn names_with_separators_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let s = Storage::os(dir.path(), false).unwrap();
        assert!(s.create_new("../escape").is_err());
        assert!(s.create_new("").is_err());
    }

    #[test]
    fn mapping_reads_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let s = Storage::os(dir.path(), false).unwrap();
        let f = s.create_new("t").unwrap();
        f.append(b"immutable bytes", WritePurpose::MemtableFlush)
            .unwrap();
        f.sync_data().unwrap();
        let m = f.map().unwrap().unwrap();
        assert_eq!(&m[..], b"immutable bytes");
    }
}
