//! The simulated storage backend (feature `testing`): an in-memory disk that crashes on demand and injects
//! faults, deterministically from a seed.
//!
//! # Model
//!
//! Every file (an *inode*) has two byte images: `live`, what reads see, and `durable`, what is on stable
//! media. The directory likewise has a `live` and a `durable` name → inode map. Every change is applied to
//! the live side at once and also recorded, in issue order, in one **pending list**:
//!
//! - `append`, `write_at` and `set_len` change the file's `live` image and push a *data* entry (inode,
//!   offset, bytes or new length: enough to replay or damage it later);
//! - `sync_data` makes the file's `durable` image equal to `live` and drops that file's data entries;
//! - `create_new`, `rename` and `remove` change the live directory and push a *link* entry;
//! - `sync_dir` makes the durable directory equal to the live one and drops every link entry. It does not
//!   make file data durable, and `sync_data` does not make a file's name durable (stricter than ext4, the
//!   LevelDB/RocksDB rule).
//!
//! Open handles are bound to the inode, as in POSIX: a handle keeps working on a renamed file, and a removed
//! file's handle keeps reading and writing it.
//!
//! # Crashes
//!
//! [`SimBackend::crash`] returns the post-reboot disk, a new independent backend. It starts from every
//! durable image and the durable directory and then applies the pending list according to the
//! [`CrashMode`]:
//!
//! | mode | what survives of the pending list | models |
//! |---|---|---|
//! | [`ProcessKill`](CrashMode::ProcessKill) | everything | kill -9: the page cache survives |
//! | [`PowerLossDropAll`](CrashMode::PowerLossDropAll) | nothing | RocksDB `DropUnsyncedFileData` |
//! | [`PowerLossPrefix`](CrashMode::PowerLossPrefix) | a random prefix in issue order, the last kept write optionally torn at a 512-byte sector boundary | RocksDB `DropRandomUnsyncedFileData`, SQLite `IOCAP_SEQUENTIAL` |
//! | [`PowerLossAny`](CrashMode::PowerLossAny) | each entry independently kept or dropped; a data write may also leave garbage or zeros | SQLite test6.c, ALICE |
//! | [`DirOnly`](CrashMode::DirOnly) | all file data; no directory change | RocksDB `DeleteFilesCreatedAfterLastDirSync` |
//!
//! A link entry is applied whole or not at all (rename is atomic), and only if the name still names the
//! entry's inode at that point of the replay: a file whose creation is dropped does not exist, whatever
//! later happened to it. Reverting a rename restores the renamed-over target's old inode.
//!
//! Garbage and zeros cover exactly the byte range of the unsynced write itself (the file grows to cover
//! it). A byte that was synced is never damaged, even when it shares a 512-byte sector with an unsynced
//! write: the model assumes sectors are written atomically, as [`OsBackend`](super::OsBackend) documents.
//!
//! After `crash` the old backend is dead: every later operation on it, or on a file or lock opened from
//! it, fails with "simulated crash: backend is dead". Its frozen state can still be crashed again (with
//! another mode, or the same mode for another random choice) to check one run against many images.
//!
//! # Faults
//!
//! A [`FaultPlan`] fails chosen operations, makes one write short, makes fsync drop data on failure, or
//! flips a bit in one read. Operations are counted from the backend's creation (absolute counts, see
//! [`SimBackend::mutating_ops`] and [`SimBackend::op_count`]), so a test can count the operations of a
//! run and then replay it with a crash or a fault at each of them.
//!
//! Files are limited to 1 GiB (`FileTooLarge` beyond), so a wild offset cannot exhaust memory.

use std::fmt;
use std::io;
use std::sync::Arc;

use parking_lot::Mutex;

use super::{Backend, BackendFile};

/// The sector size: torn writes are cut at multiples of it.
pub(crate) const SECTOR: u64 = 512;

/// The largest file the simulated disk holds.
pub(crate) const MAX_FILE_LEN: u64 = 1 << 30;

/// What survives a simulated crash; see the module docs of `src/storage/sim/mod.rs`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CrashMode {
    /// kill -9: everything written survives (the page cache is flushed eventually), synced or not.
    ProcessKill,
    /// Power loss that keeps nothing un-synced: only durable file images and the durable directory.
    PowerLossDropAll,
    /// Power loss keeping a random prefix (in issue order) of the pending list.
    PowerLossPrefix {
        /// If the last kept entry is a data write, cut it at a random 512-byte sector boundary of its
        /// file offset range, keeping only the sectors before the cut (possibly nothing).
        torn: bool,
    },
    /// Power loss keeping each pending entry independently: every data write is kept, dropped, or (if
    /// enabled) has its byte range overwritten with random bytes or zeros; every `set_len` and directory
    /// entry is kept or dropped. A file whose creation is dropped does not exist.
    PowerLossAny {
        /// A write may leave random bytes over its range.
        garbage: bool,
        /// A write may leave zeros over its range (the file size grew, the data did not land).
        zeros: bool,
    },
    /// All file data survives as written, but every directory change since the last `sync_dir` is
    /// reverted: new files vanish, renames are undone (the old target comes back), removed files come back.
    DirOnly,
}

/// The kinds of operation a [`Fault`] can target.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OpKind {
    /// `create_new`.
    Create,
    /// `append`.
    Append,
    /// `write_at`.
    WriteAt,
    /// `set_len`.
    SetLen,
    /// `sync_data`.
    SyncData,
    /// `sync_dir`.
    SyncDir,
    /// `rename`.
    Rename,
    /// `remove`.
    Remove,
    /// `read_at`.
    Read,
}

impl OpKind {
    const COUNT: usize = 9;

    /// True for the two writing kinds, [`OpKind::Append`] and [`OpKind::WriteAt`].
    pub fn is_write(self) -> bool {
        matches!(self, OpKind::Append | OpKind::WriteAt)
    }

    /// True for every kind counted by [`SimBackend::mutating_ops`] (all but [`OpKind::Read`]).
    pub fn is_mutating(self) -> bool {
        self != OpKind::Read
    }

    fn index(self) -> usize {
        match self {
            OpKind::Create => 0,
            OpKind::Append => 1,
            OpKind::WriteAt => 2,
            OpKind::SetLen => 3,
            OpKind::SyncData => 4,
            OpKind::SyncDir => 5,
            OpKind::Rename => 6,
            OpKind::Remove => 7,
            OpKind::Read => 8,
        }
    }
}

/// One planned failure: the `nth` operation (1-based, counted since the backend was created) of kind `op`
/// fails with an error of kind `kind` and has no effect.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fault {
    /// The kind of operation.
    pub op: OpKind,
    /// Which one of that kind, 1-based.
    pub nth: u64,
    /// The error kind returned, e.g. `Other` for EIO or `StorageFull` for ENOSPC.
    pub kind: io::ErrorKind,
}

/// Faults to inject, all deterministic. Every count is absolute: operations are counted from the backend's
/// creation, not from the moment the plan is set.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FaultPlan {
    /// The Nth mutating operation (in [`SimBackend::mutating_ops`] terms) and every one after it fail with
    /// kind `Other`, "simulated crash point", and have no effect. Reads keep working.
    pub crash_at_op: Option<u64>,
    /// Specific failures.
    pub fail: Vec<Fault>,
    /// The nth write (`append` or `write_at` together, 1-based) writes only half its bytes (at least 1)
    /// and returns that short count.
    pub short_write_at: Option<u64>,
    /// When a `sync_data` fails by a [`Fault`], also discard that file's un-synced changes (Linux-style),
    /// so a retried fsync "succeeds" without the data. Reads then see the durable image.
    pub fsync_drops_data_on_error: bool,
    /// The nth `read_at` (1-based) returns its bytes with one bit flipped (chosen by the PRNG).
    pub flip_bit_on_read: Option<u64>,
}

/// An in-memory disk that crashes on demand. A cheap handle: clones share one disk.
#[derive(Clone)]
pub struct SimBackend {
    shared: Arc<Shared>,
}

mod rng;
mod state;

pub use rng::Rng;
use state::*;

impl SimBackend {
    /// An empty disk whose random choices all derive from `seed`.
    pub fn new(seed: u64) -> Self {
        SimBackend {
            shared: Arc::new(Shared {
                seed,
                state: Mutex::new(State::new(seed)),
            }),
        }
    }

    /// The seed this disk was created with.
    pub fn seed(&self) -> u64 {
        self.shared.seed
    }

    /// True once [`SimBackend::crash`] was called on this disk.
    pub fn is_crashed(&self) -> bool {
        self.shared.state.lock().crashed
    }

    /// Replaces the fault plan. Counts are not reset: the plan's numbers are absolute.
    pub fn set_fault_plan(&self, plan: FaultPlan) {
        self.shared.state.lock().plan = plan;
    }

    /// The number of mutating operations issued so far (`create_new`, `append`, `write_at`, `set_len`,
    /// `sync_data`, `rename`, `remove`, `sync_dir`), failed ones included. `try_lock` and reads are not
    /// counted. Compare with [`FaultPlan::crash_at_op`].
    pub fn mutating_ops(&self) -> u64 {
        self.shared.state.lock().mutating_ops
    }

    /// The number of operations of `kind` issued so far, failed ones included. Compare with
    /// [`Fault::nth`].
    pub fn op_count(&self, kind: OpKind) -> u64 {
        let state = self.shared.state.lock();
        state.counts.get(kind.index()).copied().unwrap_or(0)
    }

    /// Crashes the disk and returns the post-reboot disk: a new independent backend (with no fault plan,
    /// zero counts and no locks held) holding what survives `mode`. Its seed mixes this disk's seed with
    /// the number of crashes so far, so the result is deterministic.
    ///
    /// `self` is dead afterwards: every later operation on it or on its files fails. Its state is frozen,
    /// so calling `crash` again yields another image of the same moment.
    pub fn crash(&self, mode: CrashMode) -> SimBackend {
        let (seed, images) = {
            let mut state = self.shared.state.lock();
            state.crashed = true;
            state.crashes += 1;
            let seed = mix(self.shared.seed, state.crashes);
            let mut rng = Rng(mix(seed, 0x00C4_A511));
            (seed, state.image_after(mode, &mut rng))
        };
        let disk = SimBackend::new(seed);
        {
            let mut state = disk.shared.state.lock();
            for (name, image) in images {
                let ino = state.new_inode(image.clone(), image);
                state.dir_live.insert(name.clone(), ino);
                state.dir_durable.insert(name, ino);
            }
        }
        disk
    }

    /// Runs `damage` on both images of the live file `name`.
    fn damage(
        &self,
        name: &str,
        damage: impl FnOnce(&mut Inode) -> io::Result<()>,
    ) -> io::Result<()> {
        check_name(name)?;
        let mut state = self.shared.state.lock();
        state.alive()?;
        let ino = *state.dir_live.get(name).ok_or_else(|| not_found(name))?;
        let diverged = state.has_pending_data(ino);
        let inode = state.inode(ino)?;
        damage(inode)?;
        inode.diverged |= diverged;
        Ok(())
    }

    /// Overwrites `bytes` at `offset` of `name` (extending it if needed), in its live and durable images.
    ///
    /// # Errors
    /// `NotFound`; `FileTooLarge` past the simulated disk's limit; the dead-backend error after a crash.
    pub fn corrupt(&self, name: &str, offset: u64, bytes: &[u8]) -> io::Result<()> {
        end_of(offset, bytes.len())?;
        self.damage(name, |inode| {
            write_into(&mut inode.live, offset, bytes);
            write_into(&mut inode.durable, offset, bytes);
            Ok(())
        })
    }

    /// Flips bit `bit` (bit 0 is the low bit of byte 0) of `name`, in each image that holds it.
    ///
    /// # Errors
    /// `NotFound`; `InvalidInput` if the bit is past the live end; the dead-backend error after a crash.
    pub fn flip_bit(&self, name: &str, bit: u64) -> io::Result<()> {
        let byte = to_usize(bit / 8);
        let mask = 1u8 << (bit % 8);
        self.damage(name, |inode| {
            let Some(b) = inode.live.get_mut(byte) else {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("bit {bit} is past the end of the file"),
                ));
            };
            *b ^= mask;
            if let Some(b) = inode.durable.get_mut(byte) {
                *b ^= mask;
            }
            Ok(())
        })
    }

    /// Cuts `name` to at most `len` bytes, in both images (never extends).
    ///
    /// # Errors
    /// `NotFound`; the dead-backend error after a crash.
    pub fn truncate(&self, name: &str, len: u64) -> io::Result<()> {
        let len = to_usize(len);
        self.damage(name, |inode| {
            inode.live.truncate(len);
            inode.durable.truncate(len);
            Ok(())
        })
    }

    /// Zeroes `len` bytes of `name` from `offset`, in both images, clamped to each image's end.
    ///
    /// # Errors
    /// `NotFound`; the dead-backend error after a crash.
    pub fn zero_range(&self, name: &str, offset: u64, len: u64) -> io::Result<()> {
        let start = to_usize(offset);
        let end = to_usize(offset.saturating_add(len));
        self.damage(name, |inode| {
            for image in [&mut inode.live, &mut inode.durable] {
                let end = end.min(image.len());
                if let Some(range) = image.get_mut(start.min(end)..end) {
                    range.fill(0);
                }
            }
            Ok(())
        })
    }

    /// Removes `name` from the live and the durable directory at once.
    ///
    /// # Errors
    /// `NotFound` if neither holds it; the dead-backend error after a crash.
    pub fn delete(&self, name: &str) -> io::Result<()> {
        check_name(name)?;
        let mut state = self.shared.state.lock();
        state.alive()?;
        let live = state.dir_live.remove(name);
        let durable = state.dir_durable.remove(name);
        if live.is_none() && durable.is_none() {
            return Err(not_found(name));
        }
        for ino in live.into_iter().chain(durable) {
            state.maybe_forget(ino);
        }
        Ok(())
    }

    /// Copies `from` to `to` (replacing it), live image to live and durable to durable; the new name is in
    /// the live and the durable directory at once.
    ///
    /// # Errors
    /// `NotFound` if `from` is missing; the dead-backend error after a crash.
    pub fn copy_file(&self, from: &str, to: &str) -> io::Result<()> {
        check_name(from)?;
        check_name(to)?;
        let mut state = self.shared.state.lock();
        state.alive()?;
        let src = *state.dir_live.get(from).ok_or_else(|| not_found(from))?;
        if from == to {
            return Ok(());
        }
        let inode = state.inode(src)?;
        let (live, durable) = (inode.live.clone(), inode.durable.clone());
        let ino = state.new_inode(live, durable);
        let old = [
            state.dir_live.insert(to.to_string(), ino),
            state.dir_durable.insert(to.to_string(), ino),
        ];
        for old in old.into_iter().flatten() {
            state.maybe_forget(old);
        }
        Ok(())
    }

    /// The live content of `name`. Works on a crashed disk too (its frozen state).
    ///
    /// # Errors
    /// `NotFound`.
    pub fn read_file(&self, name: &str) -> io::Result<Vec<u8>> {
        let state = self.shared.state.lock();
        let ino = state.dir_live.get(name).ok_or_else(|| not_found(name))?;
        Ok(state
            .inodes
            .get(ino)
            .map(|i| i.live.clone())
            .unwrap_or_default())
    }

    /// The names in the live directory, sorted. Works on a crashed disk too (its frozen state).
    pub fn file_names(&self) -> Vec<String> {
        self.shared.state.lock().dir_live.keys().cloned().collect()
    }

    fn handle(
        &self,
        state: &mut State,
        ino: u64,
        writable: bool,
    ) -> io::Result<Arc<dyn BackendFile>> {
        state.inode(ino)?.handles += 1;
        Ok(Arc::new(SimFile {
            shared: Arc::clone(&self.shared),
            ino,
            writable,
        }))
    }
}

impl fmt::Debug for SimBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimBackend")
            .field("seed", &self.shared.seed)
            .finish_non_exhaustive()
    }
}

impl Backend for SimBackend {
    fn create_new(&self, name: &str) -> io::Result<Arc<dyn BackendFile>> {
        let mut state = self.shared.state.lock();
        state.alive()?;
        check_name(name)?;
        state.begin(OpKind::Create)?;
        if state.dir_live.contains_key(name) {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{name:?} exists"),
            ));
        }
        let ino = state.new_inode(Vec::new(), Vec::new());
        state.dir_live.insert(name.to_string(), ino);
        state.pending.push(Pending::Create {
            name: name.to_string(),
            ino,
        });
        self.handle(&mut state, ino, true)
    }

    fn open(&self, name: &str, writable: bool) -> io::Result<Arc<dyn BackendFile>> {
        let mut state = self.shared.state.lock();
        state.alive()?;
        check_name(name)?;
        let ino = *state.dir_live.get(name).ok_or_else(|| not_found(name))?;
        self.handle(&mut state, ino, writable)
    }

    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        let mut state = self.shared.state.lock();
        state.alive()?;
        check_name(from)?;
        check_name(to)?;
        state.begin(OpKind::Rename)?;
        let ino = *state.dir_live.get(from).ok_or_else(|| not_found(from))?;
        if from == to {
            return Ok(());
        }
        state.dir_live.remove(from);
        state.dir_live.insert(to.to_string(), ino);
        state.pending.push(Pending::Rename {
            from: from.to_string(),
            to: to.to_string(),
            ino,
        });
        Ok(())
    }

    fn remove(&self, name: &str) -> io::Result<()> {
        let mut state = self.shared.state.lock();
        state.alive()?;
        check_name(name)?;
        state.begin(OpKind::Remove)?;
        let ino = state.dir_live.remove(name).ok_or_else(|| not_found(name))?;
        state.pending.push(Pending::Remove {
            name: name.to_string(),
            ino,
        });
        Ok(())
    }

    fn list(&self) -> io::Result<Vec<String>> {
        let state = self.shared.state.lock();
        state.alive()?;
        Ok(state.dir_live.keys().cloned().collect())
    }

    fn sync_dir(&self) -> io::Result<()> {
        let mut state = self.shared.state.lock();
        state.begin(OpKind::SyncDir)?;
        state.dir_durable = state.dir_live.clone();
        state.pending.retain(|p| p.link_ino().is_none());
        state.forget_unreachable();
        Ok(())
    }

    fn try_lock(&self, name: &str) -> io::Result<Box<dyn fmt::Debug + Send + Sync>> {
        let mut state = self.shared.state.lock();
        state.alive()?;
        check_name(name)?;
        if state.locks.contains(name) || state.shared_locks.get(name).is_some_and(|n| *n > 0) {
            return Err(io::Error::new(
                io::ErrorKind::WouldBlock,
                format!("{name:?} is locked"),
            ));
        }
        if !state.dir_live.contains_key(name) {
            // The lock file is durable at once: it carries no data and is never part of a crash test.
            let ino = state.new_inode(Vec::new(), Vec::new());
            state.dir_live.insert(name.to_string(), ino);
            if let Some(old) = state.dir_durable.insert(name.to_string(), ino) {
                state.maybe_forget(old);
            }
        }
        state.locks.insert(name.to_string());
        Ok(Box::new(SimLock {
            shared: Arc::clone(&self.shared),
            name: name.to_string(),
        }))
    }

    /// Creates nothing and counts as no operation (a shared lock is not a write).
    fn try_lock_shared(&self, name: &str) -> io::Result<Box<dyn fmt::Debug + Send + Sync>> {
        let mut state = self.shared.state.lock();
        state.alive()?;
        check_name(name)?;
        if !state.dir_live.contains_key(name) {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{name:?} does not exist"),
            ));
        }
        if state.locks.contains(name) {
            return Err(io::Error::new(
                io::ErrorKind::WouldBlock,
                format!("{name:?} is locked exclusively"),
            ));
        }
        *state.shared_locks.entry(name.to_string()).or_insert(0) += 1;
        Ok(Box::new(SimSharedLock {
            shared: Arc::clone(&self.shared),
            name: name.to_string(),
        }))
    }
}

/// A held shared lock of a [`SimBackend`], released on drop.
struct SimSharedLock {
    shared: Arc<Shared>,
    name: String,
}

impl fmt::Debug for SimSharedLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimSharedLock")
            .field("name", &self.name)
            .finish()
    }
}

impl Drop for SimSharedLock {
    fn drop(&mut self) {
        let mut state = self.shared.state.lock();
        if let Some(n) = state.shared_locks.get_mut(&self.name) {
            *n = n.saturating_sub(1);
        }
    }
}

/// A held lock of a [`SimBackend`], released on drop.
struct SimLock {
    shared: Arc<Shared>,
    name: String,
}

impl fmt::Debug for SimLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimLock").field("name", &self.name).finish()
    }
}

impl Drop for SimLock {
    fn drop(&mut self) {
        self.shared.state.lock().locks.remove(&self.name);
    }
}

/// An open file of a [`SimBackend`], bound to its inode.
struct SimFile {
    shared: Arc<Shared>,
    ino: u64,
    writable: bool,
}

impl SimFile {
    fn writable(&self) -> io::Result<()> {
        if self.writable {
            Ok(())
        } else {
            Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                "file was opened read-only",
            ))
        }
    }
}

impl fmt::Debug for SimFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimFile")
            .field("ino", &self.ino)
            .field("writable", &self.writable)
            .finish()
    }
}

impl Drop for SimFile {
    fn drop(&mut self) {
        let mut state = self.shared.state.lock();
        if let Some(inode) = state.inodes.get_mut(&self.ino) {
            inode.handles = inode.handles.saturating_sub(1);
            if inode.handles == 0 {
                state.maybe_forget(self.ino);
            }
        }
    }
}

impl BackendFile for SimFile {
    fn append(&self, buf: &[u8]) -> io::Result<usize> {
        let mut state = self.shared.state.lock();
        state.alive()?;
        self.writable()?;
        state.begin(OpKind::Append)?;
        state.write(self.ino, None, buf)
    }

    fn write_at(&self, offset: u64, buf: &[u8]) -> io::Result<usize> {
        let mut state = self.shared.state.lock();
        state.alive()?;
        self.writable()?;
        state.begin(OpKind::WriteAt)?;
        state.write(self.ino, Some(offset), buf)
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let mut state = self.shared.state.lock();
        let nth = state.begin(OpKind::Read)?;
        let flip = state.plan.flip_bit_on_read == Some(nth);
        let live = &state.inode(self.ino)?.live;
        let start = to_usize(offset).min(live.len());
        let src = live.get(start..).unwrap_or_default();
        let n = src.len().min(buf.len());
        let (dst, src) = (
            buf.get_mut(..n).unwrap_or_default(),
            src.get(..n).unwrap_or_default(),
        );
        dst.copy_from_slice(src);
        if flip && n > 0 {
            let bit = state.rng.below(n as u64 * 8);
            if let Some(b) = dst.get_mut(to_usize(bit / 8)) {
                *b ^= 1 << (bit % 8);
            }
        }
        Ok(n)
    }

    fn size(&self) -> io::Result<u64> {
        let mut state = self.shared.state.lock();
        state.alive()?;
        Ok(state.inode(self.ino)?.live.len() as u64)
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        let mut state = self.shared.state.lock();
        state.alive()?;
        self.writable()?;
        state.begin(OpKind::SetLen)?;
        if len > MAX_FILE_LEN {
            return Err(too_large());
        }
        state.inode(self.ino)?.live.resize(to_usize(len), 0);
        state.pending.push(Pending::SetLen { ino: self.ino, len });
        Ok(())
    }

    fn sync_data(&self) -> io::Result<()> {
        let mut state = self.shared.state.lock();
        match state.begin(OpKind::SyncData) {
            Ok(_) => {
                state.settle(self.ino);
                Ok(())
            }
            Err(stop) => {
                if matches!(stop, Stop::Fault(..)) && state.plan.fsync_drops_data_on_error {
                    state.discard(self.ino);
                }
                Err(stop.into())
            }
        }
    }
}

#[cfg(test)]
mod tests;
