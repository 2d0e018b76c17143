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

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::io;
use std::sync::Arc;

use parking_lot::Mutex;

use super::{Backend, BackendFile};

/// The sector size: torn writes are cut at multiples of it.
const SECTOR: u64 = 512;

/// The largest file the simulated disk holds.
const MAX_FILE_LEN: u64 = 1 << 30;

/// What survives a simulated crash; see the [module docs](self).
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

struct Shared {
    seed: u64,
    state: Mutex<State>,
}

/// splitmix64: small, fast and good enough to pick crash images.
#[derive(Clone, Debug)]
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (0 if `n` is 0).
    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let word = self.next_u64().to_le_bytes();
            for (d, s) in chunk.iter_mut().zip(word) {
                *d = s;
            }
        }
    }
}

fn mix(a: u64, b: u64) -> u64 {
    Rng(a ^ b.wrapping_mul(0xD605_BBB5_8C8A_BBFD)).next_u64()
}

#[derive(Debug, Default)]
struct Inode {
    live: Vec<u8>,
    durable: Vec<u8>,
    /// Open handles on the inode.
    handles: usize,
    /// A damage helper changed both images while data entries were pending, so replaying the pending list
    /// over `durable` no longer yields `live`: the next `sync_data` copies instead.
    diverged: bool,
}

#[derive(Debug)]
enum Pending {
    Write {
        ino: u64,
        offset: u64,
        bytes: Vec<u8>,
    },
    SetLen {
        ino: u64,
        len: u64,
    },
    Create {
        name: String,
        ino: u64,
    },
    Rename {
        from: String,
        to: String,
        ino: u64,
    },
    Remove {
        name: String,
        ino: u64,
    },
}

impl Pending {
    fn data_ino(&self) -> Option<u64> {
        match self {
            Pending::Write { ino, .. } | Pending::SetLen { ino, .. } => Some(*ino),
            _ => None,
        }
    }

    fn link_ino(&self) -> Option<u64> {
        match self {
            Pending::Create { ino, .. }
            | Pending::Rename { ino, .. }
            | Pending::Remove { ino, .. } => Some(*ino),
            _ => None,
        }
    }
}

/// What a crash does to one pending entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fate {
    Keep,
    Drop,
    Garbage,
    Zeros,
    /// Keep only this many leading bytes of the write.
    Cut(usize),
}

/// Why an operation was refused before it did anything.
enum Stop {
    Dead,
    CrashPoint,
    Fault(OpKind, u64, io::ErrorKind),
}

impl From<Stop> for io::Error {
    fn from(stop: Stop) -> io::Error {
        match stop {
            Stop::Dead => dead(),
            Stop::CrashPoint => io::Error::other("simulated crash point"),
            Stop::Fault(op, nth, kind) => {
                io::Error::new(kind, format!("simulated fault on {op:?} #{nth}"))
            }
        }
    }
}

fn dead() -> io::Error {
    io::Error::other("simulated crash: backend is dead")
}

fn not_found(name: &str) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, format!("no file {name:?}"))
}

fn too_large() -> io::Error {
    io::Error::new(
        io::ErrorKind::FileTooLarge,
        format!("the simulated disk holds files of at most {MAX_FILE_LEN} bytes"),
    )
}

fn check_name(name: &str) -> io::Result<()> {
    if name.is_empty() || name.contains('/') || name == "." || name == ".." {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("not a plain file name: {name:?}"),
        ));
    }
    Ok(())
}

/// `offset + len` if the result fits the simulated disk.
fn end_of(offset: u64, len: usize) -> io::Result<u64> {
    match offset.checked_add(len as u64) {
        Some(end) if end <= MAX_FILE_LEN => Ok(end),
        _ => Err(too_large()),
    }
}

/// Offsets are bounded by `MAX_FILE_LEN` before they reach here, so this never saturates in practice.
fn to_usize(x: u64) -> usize {
    usize::try_from(x).unwrap_or(usize::MAX)
}

/// Writes `bytes` at `offset` of `image`, zero-extending it first if needed.
fn write_into(image: &mut Vec<u8>, offset: u64, bytes: &[u8]) {
    let start = to_usize(offset);
    let end = start.saturating_add(bytes.len());
    if image.len() < end {
        image.resize(end, 0);
    }
    if let Some(dst) = image.get_mut(start..end) {
        dst.copy_from_slice(bytes);
    }
}

fn apply_data(image: &mut Vec<u8>, entry: &Pending) {
    match entry {
        Pending::Write { offset, bytes, .. } => write_into(image, *offset, bytes),
        Pending::SetLen { len, .. } => image.resize(to_usize(*len), 0),
        _ => {}
    }
}

/// Applies a link entry to a directory image, if the name still names the entry's inode.
fn apply_link(dir: &mut BTreeMap<String, u64>, entry: &Pending) {
    match entry {
        Pending::Create { name, ino } => {
            dir.insert(name.clone(), *ino);
        }
        Pending::Rename { from, to, ino } if dir.get(from) == Some(ino) => {
            dir.remove(from);
            dir.insert(to.clone(), *ino);
        }
        Pending::Remove { name, ino } if dir.get(name) == Some(ino) => {
            dir.remove(name);
        }
        _ => {}
    }
}

/// Where a torn write is cut: its start or a sector boundary strictly inside it. Returns the bytes kept.
fn torn_cut(rng: &mut Rng, offset: u64, len: usize) -> usize {
    let end = offset.saturating_add(len as u64);
    let first = (offset / SECTOR + 1) * SECTOR;
    let inner = if first < end {
        (end - 1 - first) / SECTOR + 1
    } else {
        0
    };
    let pick = rng.below(inner + 1);
    let cut = if pick == 0 {
        offset
    } else {
        first + (pick - 1) * SECTOR
    };
    to_usize(cut - offset)
}

#[derive(Debug)]
struct State {
    crashed: bool,
    /// How many times `crash` was called on this backend: each call gets its own randomness.
    crashes: u64,
    next_ino: u64,
    inodes: HashMap<u64, Inode>,
    dir_live: BTreeMap<String, u64>,
    dir_durable: BTreeMap<String, u64>,
    pending: Vec<Pending>,
    plan: FaultPlan,
    mutating_ops: u64,
    counts: [u64; OpKind::COUNT],
    writes: u64,
    rng: Rng,
    locks: HashSet<String>,
}

impl State {
    fn new(seed: u64) -> Self {
        State {
            crashed: false,
            crashes: 0,
            next_ino: 1,
            inodes: HashMap::new(),
            dir_live: BTreeMap::new(),
            dir_durable: BTreeMap::new(),
            pending: Vec::new(),
            plan: FaultPlan::default(),
            mutating_ops: 0,
            counts: [0; OpKind::COUNT],
            writes: 0,
            rng: Rng(mix(seed, 0x0F11_B175)),
            locks: HashSet::new(),
        }
    }

    fn alive(&self) -> io::Result<()> {
        if self.crashed { Err(dead()) } else { Ok(()) }
    }

    /// Counts an operation and applies the fault plan; returns the op's 1-based number within its kind.
    fn begin(&mut self, kind: OpKind) -> Result<u64, Stop> {
        if self.crashed {
            return Err(Stop::Dead);
        }
        let nth = match self.counts.get_mut(kind.index()) {
            Some(count) => {
                *count += 1;
                *count
            }
            None => 0,
        };
        if kind.is_write() {
            self.writes += 1;
        }
        if kind.is_mutating() {
            self.mutating_ops += 1;
            if let Some(at) = self.plan.crash_at_op
                && self.mutating_ops >= at
            {
                return Err(Stop::CrashPoint);
            }
        }
        if let Some(fault) = self.plan.fail.iter().find(|f| f.op == kind && f.nth == nth) {
            return Err(Stop::Fault(kind, nth, fault.kind));
        }
        Ok(nth)
    }

    fn inode(&mut self, ino: u64) -> io::Result<&mut Inode> {
        self.inodes
            .get_mut(&ino)
            .ok_or_else(|| io::Error::other("simulated inode vanished"))
    }

    fn new_inode(&mut self, live: Vec<u8>, durable: Vec<u8>) -> u64 {
        let ino = self.next_ino;
        self.next_ino += 1;
        self.inodes.insert(
            ino,
            Inode {
                live,
                durable,
                ..Inode::default()
            },
        );
        ino
    }

    /// A write of `bytes` at `offset` (or at the end if `None`) to `ino`; returns the count written.
    fn write(&mut self, ino: u64, offset: Option<u64>, bytes: &[u8]) -> io::Result<usize> {
        let mut n = bytes.len();
        if self.plan.short_write_at == Some(self.writes) && n > 1 {
            n /= 2;
        }
        let bytes = bytes.get(..n).unwrap_or_default();
        let inode = self.inode(ino)?;
        let offset = offset.unwrap_or(inode.live.len() as u64);
        end_of(offset, n)?;
        if n == 0 {
            return Ok(0);
        }
        write_into(&mut inode.live, offset, bytes);
        self.pending.push(Pending::Write {
            ino,
            offset,
            bytes: bytes.to_vec(),
        });
        Ok(n)
    }

    /// Makes `ino`'s live image durable and drops its pending data entries.
    fn settle(&mut self, ino: u64) {
        let Some(inode) = self.inodes.get_mut(&ino) else {
            return;
        };
        if inode.diverged {
            inode.durable.clone_from(&inode.live);
            inode.diverged = false;
            self.pending.retain(|p| p.data_ino() != Some(ino));
            return;
        }
        // durable + this file's pending entries == live: replaying costs the un-synced bytes, not the file.
        let mut durable = std::mem::take(&mut inode.durable);
        self.pending.retain(|p| {
            if p.data_ino() == Some(ino) {
                apply_data(&mut durable, p);
                false
            } else {
                true
            }
        });
        inode.durable = durable;
    }

    /// Discards `ino`'s un-synced changes (a failed fsync that drops dirty pages).
    fn discard(&mut self, ino: u64) {
        if let Some(inode) = self.inodes.get_mut(&ino) {
            inode.live.clone_from(&inode.durable);
            inode.diverged = false;
        }
        self.pending.retain(|p| p.data_ino() != Some(ino));
    }

    fn has_pending_data(&self, ino: u64) -> bool {
        self.pending.iter().any(|p| p.data_ino() == Some(ino))
    }

    /// Forgets `ino` if no crash image and no handle can reach it any more.
    fn maybe_forget(&mut self, ino: u64) {
        let reachable = self.inodes.get(&ino).is_some_and(|i| i.handles > 0)
            || self.dir_live.values().any(|&i| i == ino)
            || self.dir_durable.values().any(|&i| i == ino)
            || self.pending.iter().any(|p| p.link_ino() == Some(ino));
        if !reachable {
            self.inodes.remove(&ino);
            self.pending.retain(|p| p.data_ino() != Some(ino));
        }
    }

    /// Forgets every inode that no crash image and no handle can reach (run when no link is pending).
    fn forget_unreachable(&mut self) {
        let mut named: HashSet<u64> = self
            .dir_live
            .values()
            .chain(self.dir_durable.values())
            .copied()
            .collect();
        named.extend(self.pending.iter().filter_map(Pending::link_ino));
        self.inodes
            .retain(|ino, inode| inode.handles > 0 || named.contains(ino));
        let inodes = &self.inodes;
        self.pending
            .retain(|p| p.data_ino().is_none_or(|ino| inodes.contains_key(&ino)));
    }

    /// The named images that survive a crash in `mode`.
    fn image_after(&self, mode: CrashMode, rng: &mut Rng) -> Vec<(String, Vec<u8>)> {
        let pick = |dir: &BTreeMap<String, u64>, live: bool| -> Vec<(String, Vec<u8>)> {
            dir.iter()
                .map(|(name, ino)| {
                    let image = self
                        .inodes
                        .get(ino)
                        .map(|i| {
                            if live {
                                i.live.clone()
                            } else {
                                i.durable.clone()
                            }
                        })
                        .unwrap_or_default();
                    (name.clone(), image)
                })
                .collect()
        };
        match mode {
            CrashMode::ProcessKill => pick(&self.dir_live, true),
            CrashMode::PowerLossDropAll => pick(&self.dir_durable, false),
            CrashMode::DirOnly => pick(&self.dir_durable, true),
            CrashMode::PowerLossPrefix { torn } => {
                let len = self.pending.len();
                let kept = to_usize(rng.below(len as u64 + 1));
                let mut fates: Vec<Fate> = (0..len)
                    .map(|i| if i < kept { Fate::Keep } else { Fate::Drop })
                    .collect();
                if torn
                    && let Some(last) = kept.checked_sub(1)
                    && let Some(Pending::Write { offset, bytes, .. }) = self.pending.get(last)
                    && let Some(fate) = fates.get_mut(last)
                {
                    *fate = Fate::Cut(torn_cut(rng, *offset, bytes.len()));
                }
                self.replay(&fates, rng)
            }
            CrashMode::PowerLossAny { garbage, zeros } => {
                let mut write_fates = vec![Fate::Keep, Fate::Drop];
                if garbage {
                    write_fates.push(Fate::Garbage);
                }
                if zeros {
                    write_fates.push(Fate::Zeros);
                }
                let fates: Vec<Fate> = self
                    .pending
                    .iter()
                    .map(|p| {
                        let choices: &[Fate] = if matches!(p, Pending::Write { .. }) {
                            &write_fates
                        } else {
                            &[Fate::Keep, Fate::Drop]
                        };
                        let i = to_usize(rng.below(choices.len() as u64));
                        choices.get(i).copied().unwrap_or(Fate::Drop)
                    })
                    .collect();
                self.replay(&fates, rng)
            }
        }
    }

    /// Durable images and directory, then the pending list with one fate per entry.
    fn replay(&self, fates: &[Fate], rng: &mut Rng) -> Vec<(String, Vec<u8>)> {
        let mut dir = self.dir_durable.clone();
        for (entry, fate) in self.pending.iter().zip(fates) {
            if *fate == Fate::Keep && entry.link_ino().is_some() {
                apply_link(&mut dir, entry);
            }
        }
        let mut refs: HashMap<u64, usize> = HashMap::new();
        for ino in dir.values() {
            *refs.entry(*ino).or_default() += 1;
        }
        let mut images: HashMap<u64, Vec<u8>> = refs
            .keys()
            .map(|ino| {
                let durable = self.inodes.get(ino).map(|i| i.durable.clone());
                (*ino, durable.unwrap_or_default())
            })
            .collect();
        for (entry, fate) in self.pending.iter().zip(fates) {
            let Some(image) = entry.data_ino().and_then(|ino| images.get_mut(&ino)) else {
                continue;
            };
            match (fate, entry) {
                (Fate::Drop, _) => {}
                (Fate::Keep, _) => apply_data(image, entry),
                (Fate::Garbage, Pending::Write { offset, bytes, .. }) => {
                    let mut noise = vec![0u8; bytes.len()];
                    rng.fill(&mut noise);
                    write_into(image, *offset, &noise);
                }
                (Fate::Zeros, Pending::Write { offset, bytes, .. }) => {
                    write_into(image, *offset, &vec![0u8; bytes.len()]);
                }
                (Fate::Cut(keep), Pending::Write { offset, bytes, .. }) => {
                    let kept = bytes.get(..*keep).unwrap_or_default();
                    if !kept.is_empty() {
                        write_into(image, *offset, kept);
                    }
                }
                _ => {}
            }
        }
        dir.into_iter()
            .map(|(name, ino)| {
                let last = refs.get_mut(&ino).map(|r| {
                    *r -= 1;
                    *r == 0
                });
                let image = if last == Some(true) {
                    images.remove(&ino)
                } else {
                    images.get(&ino).cloned()
                };
                (name, image.unwrap_or_default())
            })
            .collect()
    }
}

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
        if state.locks.contains(name) {
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
mod tests {
    use super::*;
    use crate::Error;
    use crate::storage::{ReadPurpose, Storage, WritePurpose};

    fn storage(sim: &SimBackend) -> Storage {
        Storage::new(Arc::new(sim.clone()))
    }

    /// A durable file `name` holding `data` (created, written, synced, directory synced).
    fn durable_file(sim: &SimBackend, name: &str, data: &[u8]) {
        let f = sim.create_new(name).unwrap();
        assert_eq!(f.append(data).unwrap(), data.len());
        f.sync_data().unwrap();
        sim.sync_dir().unwrap();
    }

    #[test]
    fn reads_see_writes_and_storage_works() {
        let sim = SimBackend::new(1);
        let s = storage(&sim);
        let f = s.create_new("a").unwrap();
        f.append(b"hello ", WritePurpose::Wal).unwrap();
        f.append(b"world", WritePurpose::Wal).unwrap();
        f.write_at(0, b"H", WritePurpose::Header).unwrap();
        f.set_len(13).unwrap();
        let mut buf = [0u8; 13];
        f.read_exact_at(0, &mut buf, ReadPurpose::Get).unwrap();
        assert_eq!(&buf, b"Hello world\0\0");
        assert!(s.create_new("a").is_err(), "create_new must not replace");
        s.write_file_atomic("CURRENT", b"x", WritePurpose::Manifest)
            .unwrap();
        assert_eq!(
            s.list().unwrap(),
            vec!["CURRENT".to_string(), "a".to_string()]
        );
        assert_eq!(sim.read_file("CURRENT").unwrap(), b"x");
        assert!(s.create_new("").is_err());
        assert!(s.create_new("a/b").is_err());
        assert_eq!(
            sim.create_new("..").unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );
    }

    #[test]
    fn handles_follow_the_inode() {
        let sim = SimBackend::new(2);
        let f = sim.create_new("a").unwrap();
        f.append(b"abc").unwrap();
        sim.rename("a", "b").unwrap();
        f.append(b"def").unwrap();
        assert_eq!(sim.read_file("b").unwrap(), b"abcdef");
        let g = sim.open("b", false).unwrap();
        sim.remove("b").unwrap();
        assert!(sim.file_names().is_empty());
        let mut buf = [0u8; 6];
        assert_eq!(g.read_at(0, &mut buf).unwrap(), 6);
        assert_eq!(&buf, b"abcdef");
        assert_eq!(g.read_at(4, &mut buf).unwrap(), 2);
        assert_eq!(g.read_at(100, &mut buf).unwrap(), 0);
    }

    #[test]
    fn read_only_handles_refuse_writes() {
        let sim = SimBackend::new(3);
        durable_file(&sim, "a", b"data");
        let f = sim.open("a", false).unwrap();
        assert_eq!(
            f.append(b"x").unwrap_err().kind(),
            io::ErrorKind::PermissionDenied
        );
        assert_eq!(
            f.write_at(0, b"x").unwrap_err().kind(),
            io::ErrorKind::PermissionDenied
        );
        assert_eq!(
            f.set_len(0).unwrap_err().kind(),
            io::ErrorKind::PermissionDenied
        );
        assert_eq!(sim.read_file("a").unwrap(), b"data");
        assert_eq!(
            sim.open("missing", true).unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
    }

    #[test]
    fn drop_all_keeps_only_synced_data_and_synced_names() {
        let sim = SimBackend::new(4);
        durable_file(&sim, "a", b"synced");
        // A synced removal of a synced file.
        durable_file(&sim, "c", b"c");
        sim.remove("c").unwrap();
        sim.sync_dir().unwrap();
        durable_file(&sim, "d", b"d");
        let a = sim.open("a", true).unwrap();
        a.append(b" unsynced").unwrap();
        // Data synced but the name never was.
        let b = sim.create_new("b").unwrap();
        b.append(b"b data").unwrap();
        b.sync_data().unwrap();
        // An unsynced removal is undone.
        sim.remove("d").unwrap();
        assert_eq!(sim.file_names(), vec!["a".to_string(), "b".to_string()]);

        let after = sim.crash(CrashMode::PowerLossDropAll);
        assert_eq!(after.file_names(), vec!["a".to_string(), "d".to_string()]);
        assert_eq!(after.read_file("d").unwrap(), b"d");
        assert_eq!(after.read_file("a").unwrap(), b"synced");
    }

    #[test]
    fn process_kill_keeps_everything() {
        let sim = SimBackend::new(5);
        durable_file(&sim, "a", b"synced");
        let a = sim.open("a", true).unwrap();
        a.append(b" unsynced").unwrap();
        let b = sim.create_new("b").unwrap();
        b.append(b"b data").unwrap();
        sim.rename("a", "z").unwrap();

        let after = sim.crash(CrashMode::ProcessKill);
        assert_eq!(after.file_names(), vec!["b".to_string(), "z".to_string()]);
        assert_eq!(after.read_file("z").unwrap(), b"synced unsynced");
        assert_eq!(after.read_file("b").unwrap(), b"b data");
    }

    #[test]
    fn dir_only_reverts_unsynced_links_but_keeps_data() {
        let sim = SimBackend::new(6);
        durable_file(&sim, "old", b"old target");
        durable_file(&sim, "src", b"source");
        durable_file(&sim, "gone", b"removed");
        // Unsynced data on a durable file is kept.
        sim.open("src", true).unwrap().append(b"+more").unwrap();
        // Unsynced create, rename over a target, remove.
        let n = sim.create_new("new").unwrap();
        n.append(b"new data").unwrap();
        n.sync_data().unwrap();
        sim.rename("src", "old").unwrap();
        sim.remove("gone").unwrap();
        assert_eq!(sim.file_names(), vec!["new".to_string(), "old".to_string()]);

        let after = sim.crash(CrashMode::DirOnly);
        assert_eq!(
            after.file_names(),
            vec!["gone".to_string(), "old".to_string(), "src".to_string()]
        );
        assert_eq!(after.read_file("old").unwrap(), b"old target");
        assert_eq!(after.read_file("src").unwrap(), b"source+more");
        assert_eq!(after.read_file("gone").unwrap(), b"removed");
    }

    #[test]
    fn prefix_keeps_a_prefix() {
        let chunks: Vec<Vec<u8>> = (0u8..10).map(|i| vec![i; 7]).collect();
        let mut lengths = HashSet::new();
        for seed in 0..64 {
            let sim = SimBackend::new(seed);
            durable_file(&sim, "log", b"");
            let f = sim.open("log", true).unwrap();
            for c in &chunks {
                f.append(c).unwrap();
            }
            let after = sim.crash(CrashMode::PowerLossPrefix { torn: false });
            let got = after.read_file("log").unwrap();
            assert!(
                got.len().is_multiple_of(7),
                "untorn prefix ends at a write boundary"
            );
            assert_eq!(got, chunks.concat().get(..got.len()).unwrap());
            lengths.insert(got.len());
        }
        assert!(lengths.len() > 3, "prefix length should vary: {lengths:?}");
    }

    #[test]
    fn prefix_respects_dir_order() {
        // A create issued after a write to another file survives only if that write does.
        for seed in 0..64 {
            let sim = SimBackend::new(seed);
            durable_file(&sim, "a", b"");
            sim.open("a", true).unwrap().append(b"first").unwrap();
            sim.create_new("b").unwrap();
            let after = sim.crash(CrashMode::PowerLossPrefix { torn: false });
            if after.file_names().contains(&"b".to_string()) {
                assert_eq!(after.read_file("a").unwrap(), b"first");
            }
        }
    }

    #[test]
    fn torn_write_is_cut_at_a_sector_boundary() {
        let head = vec![0x11u8; 100];
        let body: Vec<u8> = (0..4096u32).map(|i| (i % 251) as u8 + 1).collect();
        let full = [head.clone(), body.clone()].concat();
        let mut torn_seen = false;
        for seed in 0..64 {
            let sim = SimBackend::new(seed);
            durable_file(&sim, "f", &head);
            let f = sim.open("f", true).unwrap();
            f.append(&body).unwrap();
            let after = sim.crash(CrashMode::PowerLossPrefix { torn: true });
            let got = after.read_file("f").unwrap();
            assert!(
                got.len() == 100 || got.len().is_multiple_of(512),
                "cut at {} is neither the write's start nor a sector boundary",
                got.len()
            );
            assert!(
                got.len() < full.len(),
                "a torn last write never lands whole"
            );
            assert_eq!(got, full.get(..got.len()).unwrap());
            torn_seen |= got.len() > 100;
        }
        assert!(torn_seen, "some seed should keep part of the write");
    }

    #[test]
    fn any_with_zeros_damages_only_the_write_range() {
        let mut seen = HashSet::new();
        for seed in 0..64 {
            let sim = SimBackend::new(seed);
            durable_file(&sim, "f", &[0xAA; 1000]);
            let f = sim.open("f", true).unwrap();
            f.write_at(200, &[0xBB; 300]).unwrap();
            f.append(&[0xCC; 50]).unwrap();
            let after = sim.crash(CrashMode::PowerLossAny {
                garbage: false,
                zeros: true,
            });
            let got = after.read_file("f").unwrap();
            assert!(got.len() == 1000 || got.len() == 1050, "len {}", got.len());
            assert!(got[..200].iter().all(|&b| b == 0xAA));
            assert!(got[500..1000].iter().all(|&b| b == 0xAA));
            let mid = &got[200..500];
            let fate = if mid.iter().all(|&b| b == 0xBB) {
                "kept"
            } else if mid.iter().all(|&b| b == 0xAA) {
                "dropped"
            } else if mid.iter().all(|&b| b == 0) {
                "zeros"
            } else {
                panic!("mixed range {mid:?}")
            };
            seen.insert(fate);
            if got.len() == 1050 {
                let tail = &got[1000..];
                assert!(tail.iter().all(|&b| b == 0xCC) || tail.iter().all(|&b| b == 0));
            }
        }
        assert_eq!(seen.len(), 3, "every fate should occur: {seen:?}");
    }

    #[test]
    fn any_with_garbage_writes_noise_over_the_range_only() {
        let mut noisy = false;
        for seed in 0..64 {
            let sim = SimBackend::new(seed);
            durable_file(&sim, "f", &[0xAA; 100]);
            sim.open("f", true)
                .unwrap()
                .write_at(10, &[0xBB; 64])
                .unwrap();
            let after = sim.crash(CrashMode::PowerLossAny {
                garbage: true,
                zeros: false,
            });
            let got = after.read_file("f").unwrap();
            assert_eq!(got.len(), 100);
            assert!(got[..10].iter().all(|&b| b == 0xAA));
            assert!(got[74..].iter().all(|&b| b == 0xAA));
            let mid = &got[10..74];
            noisy |= !mid.iter().all(|&b| b == 0xAA) && !mid.iter().all(|&b| b == 0xBB);
        }
        assert!(noisy, "some seed should leave garbage");
    }

    #[test]
    fn any_never_resurrects_a_dropped_create_and_renames_are_atomic() {
        let mut outcomes = HashSet::new();
        for seed in 0..128 {
            let sim = SimBackend::new(seed);
            durable_file(&sim, "CURRENT", b"old");
            let tmp = sim.create_new("CURRENT.tmp").unwrap();
            tmp.append(b"new!").unwrap();
            tmp.sync_data().unwrap();
            sim.rename("CURRENT.tmp", "CURRENT").unwrap();
            let after = sim.crash(CrashMode::PowerLossAny {
                garbage: true,
                zeros: true,
            });
            let names = after.file_names();
            assert!(names.contains(&"CURRENT".to_string()), "{names:?}");
            let cur = after.read_file("CURRENT").unwrap();
            assert!(cur == b"old" || cur == b"new!", "{cur:?}");
            if let Ok(t) = after.read_file("CURRENT.tmp") {
                assert_eq!(t, b"new!");
            }
            outcomes.insert((cur, names.len()));
        }
        // old (tmp dropped), old + tmp (rename dropped), new (all kept).
        assert_eq!(outcomes.len(), 3, "{outcomes:?}");
    }

    #[test]
    fn crash_at_op_fails_that_op_and_all_later_ones() {
        let sim = SimBackend::new(7);
        let f = sim.create_new("a").unwrap();
        f.append(b"one").unwrap();
        assert_eq!(sim.mutating_ops(), 2);
        sim.set_fault_plan(FaultPlan {
            crash_at_op: Some(4),
            ..FaultPlan::default()
        });
        f.append(b"two").unwrap(); // op 3
        let err = f.append(b"three").unwrap_err(); // op 4
        assert_eq!(err.kind(), io::ErrorKind::Other);
        assert!(err.to_string().contains("simulated crash point"), "{err}");
        assert!(f.sync_data().is_err());
        assert!(sim.sync_dir().is_err());
        assert!(sim.create_new("b").is_err());
        assert_eq!(sim.mutating_ops(), 7);
        // Failed ops had no effect; reads still work.
        let mut buf = [0u8; 16];
        assert_eq!(f.read_at(0, &mut buf).unwrap(), 6);
        assert_eq!(sim.file_names(), vec!["a".to_string()]);
        let after = sim.crash(CrashMode::ProcessKill);
        assert_eq!(after.read_file("a").unwrap(), b"onetwo");
    }

    #[test]
    fn fail_nth_returns_the_planned_error() {
        let sim = SimBackend::new(8);
        let s = storage(&sim);
        sim.set_fault_plan(FaultPlan {
            fail: vec![
                Fault {
                    op: OpKind::Append,
                    nth: 2,
                    kind: io::ErrorKind::StorageFull,
                },
                Fault {
                    op: OpKind::Rename,
                    nth: 1,
                    kind: io::ErrorKind::Other,
                },
            ],
            ..FaultPlan::default()
        });
        let f = s.create_new("a").unwrap();
        f.append(b"1", WritePurpose::Wal).unwrap();
        match f.append(b"2", WritePurpose::Wal).unwrap_err() {
            Error::Io(e) => assert_eq!(e.kind(), io::ErrorKind::StorageFull),
            other => panic!("{other}"),
        }
        f.append(b"3", WritePurpose::Wal).unwrap();
        assert!(s.rename("a", "b").is_err());
        s.rename("a", "b").unwrap();
        assert_eq!(sim.read_file("b").unwrap(), b"13");
        assert_eq!(sim.op_count(OpKind::Append), 3);
        assert_eq!(sim.op_count(OpKind::Rename), 2);
    }

    #[test]
    fn short_write_returns_a_partial_count_and_storage_finishes_it() {
        let sim = SimBackend::new(9);
        let f = sim.create_new("raw").unwrap();
        sim.set_fault_plan(FaultPlan {
            short_write_at: Some(1),
            ..FaultPlan::default()
        });
        assert_eq!(f.append(b"0123456789").unwrap(), 5);
        assert_eq!(sim.read_file("raw").unwrap(), b"01234");

        sim.set_fault_plan(FaultPlan {
            short_write_at: Some(3),
            ..FaultPlan::default()
        });
        let s = storage(&sim);
        let g = s.create_new("wal").unwrap();
        g.append(b"abc", WritePurpose::Wal).unwrap(); // write 2
        g.append(b"0123456789", WritePurpose::Wal).unwrap(); // write 3 is short, 4 finishes
        assert_eq!(sim.read_file("wal").unwrap(), b"abc0123456789");
        assert_eq!(s.io_stats().written.wal, 13);
        assert_eq!(sim.op_count(OpKind::Append), 4);
    }

    fn failed_fsync_then_retry(drops: bool) -> Vec<u8> {
        let sim = SimBackend::new(10);
        durable_file(&sim, "a", b"base");
        let f = sim.open("a", true).unwrap();
        f.append(b"+tail").unwrap();
        sim.set_fault_plan(FaultPlan {
            fail: vec![Fault {
                op: OpKind::SyncData,
                nth: 2,
                kind: io::ErrorKind::Other,
            }],
            fsync_drops_data_on_error: drops,
            ..FaultPlan::default()
        });
        assert!(f.sync_data().is_err());
        f.sync_data().unwrap();
        sim.crash(CrashMode::PowerLossDropAll)
            .read_file("a")
            .unwrap()
    }

    #[test]
    fn fsync_drops_data_on_error() {
        assert_eq!(failed_fsync_then_retry(false), b"base+tail");
        assert_eq!(failed_fsync_then_retry(true), b"base");
    }

    #[test]
    fn flip_bit_on_read_flips_exactly_one_bit_of_that_read() {
        let sim = SimBackend::new(11);
        let data: Vec<u8> = (0..64).collect();
        durable_file(&sim, "a", &data);
        sim.set_fault_plan(FaultPlan {
            flip_bit_on_read: Some(2),
            ..FaultPlan::default()
        });
        let f = sim.open("a", false).unwrap();
        let mut buf = [0u8; 64];
        f.read_at(0, &mut buf).unwrap();
        assert_eq!(buf.as_slice(), data.as_slice());
        f.read_at(0, &mut buf).unwrap();
        let diff: u32 = buf
            .iter()
            .zip(&data)
            .map(|(a, b)| (a ^ b).count_ones())
            .sum();
        assert_eq!(diff, 1);
        f.read_at(0, &mut buf).unwrap();
        assert_eq!(buf.as_slice(), data.as_slice());
        assert_eq!(
            sim.read_file("a").unwrap(),
            data,
            "the stored bytes are intact"
        );
    }

    #[test]
    fn a_crashed_backend_is_dead() {
        let sim = SimBackend::new(12);
        durable_file(&sim, "a", b"data");
        let f = sim.open("a", true).unwrap();
        let lock = sim.try_lock("LOCK").unwrap();
        let after = sim.crash(CrashMode::ProcessKill);
        assert!(sim.is_crashed() && !after.is_crashed());
        let is_dead = |e: io::Error| assert!(e.to_string().contains("backend is dead"), "{e}");
        is_dead(f.append(b"x").unwrap_err());
        is_dead(f.write_at(0, b"x").unwrap_err());
        is_dead(f.read_at(0, &mut [0u8; 4]).unwrap_err());
        is_dead(f.size().unwrap_err());
        is_dead(f.set_len(0).unwrap_err());
        is_dead(f.sync_data().unwrap_err());
        is_dead(sim.create_new("b").unwrap_err());
        is_dead(sim.open("a", false).unwrap_err());
        is_dead(sim.rename("a", "b").unwrap_err());
        is_dead(sim.remove("a").unwrap_err());
        is_dead(sim.list().unwrap_err());
        is_dead(sim.sync_dir().unwrap_err());
        is_dead(sim.try_lock("OTHER").unwrap_err());
        is_dead(sim.corrupt("a", 0, b"x").unwrap_err());
        // The lock does not carry over; the new disk works.
        let _new_lock = after.try_lock("LOCK").unwrap();
        drop(lock);
        after.open("a", true).unwrap().append(b"!").unwrap();
        assert_eq!(after.read_file("a").unwrap(), b"data!");
        // The dead disk's frozen state can be imaged again.
        let again = sim.crash(CrashMode::PowerLossDropAll);
        assert_eq!(again.read_file("a").unwrap(), b"data");
        assert_ne!(again.seed(), after.seed());
    }

    #[test]
    fn the_lock_is_exclusive() {
        let sim = SimBackend::new(13);
        let s = storage(&sim);
        let guard = s.try_lock("LOCK").unwrap();
        assert!(matches!(
            storage(&sim).try_lock("LOCK"),
            Err(Error::Locked(_))
        ));
        assert_eq!(
            sim.try_lock("LOCK").unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
        drop(guard);
        let _again = s.try_lock("LOCK").unwrap();
        assert_eq!(sim.mutating_ops(), 0, "try_lock is not counted");
        // The lock file is durable at once.
        let after = sim.crash(CrashMode::PowerLossDropAll);
        assert_eq!(after.file_names(), vec!["LOCK".to_string()]);
    }

    fn script(sim: &SimBackend) {
        durable_file(sim, "base", &[7u8; 3000]);
        let f = sim.create_new("log").unwrap();
        for i in 0..20u8 {
            f.append(&vec![i; 100 + usize::from(i) * 37]).unwrap();
            if i % 7 == 3 {
                f.sync_data().unwrap();
            }
        }
        let b = sim.open("base", true).unwrap();
        b.write_at(700, &[9u8; 1500]).unwrap();
        sim.rename("log", "log2").unwrap();
        sim.create_new("extra").unwrap().append(b"extra").unwrap();
    }

    fn image(sim: &SimBackend) -> Vec<(String, Vec<u8>)> {
        sim.file_names()
            .into_iter()
            .map(|n| {
                let d = sim.read_file(&n).unwrap();
                (n, d)
            })
            .collect()
    }

    #[test]
    fn crashes_are_deterministic() {
        let mode = CrashMode::PowerLossAny {
            garbage: true,
            zeros: true,
        };
        let mut distinct = HashSet::new();
        for seed in 0..16 {
            let (x, y) = (SimBackend::new(seed), SimBackend::new(seed));
            script(&x);
            script(&y);
            let (ix, iy) = (image(&x.crash(mode)), image(&y.crash(mode)));
            assert_eq!(ix, iy, "seed {seed}");
            distinct.insert(ix);
            // A second crash of the same disk is deterministic too.
            assert_eq!(image(&x.crash(mode)), image(&y.crash(mode)));
        }
        assert!(distinct.len() > 8, "seeds should give different images");
    }

    #[test]
    fn damage_helpers() {
        let sim = SimBackend::new(14);
        durable_file(&sim, "a", b"abcdefgh");
        sim.corrupt("a", 6, b"XYZ").unwrap();
        assert_eq!(sim.read_file("a").unwrap(), b"abcdefXYZ");
        sim.flip_bit("a", 8).unwrap();
        assert_eq!(sim.read_file("a").unwrap(), b"accdefXYZ");
        assert_eq!(
            sim.flip_bit("a", 72).unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );
        sim.zero_range("a", 7, 100).unwrap();
        assert_eq!(sim.read_file("a").unwrap(), b"accdefX\0\0");
        sim.truncate("a", 3).unwrap();
        sim.truncate("a", 100).unwrap();
        assert_eq!(sim.read_file("a").unwrap(), b"acc");
        sim.copy_file("a", "b").unwrap();
        sim.delete("a").unwrap();
        assert_eq!(sim.file_names(), vec!["b".to_string()]);
        for e in [
            sim.delete("a"),
            sim.corrupt("a", 0, b"x"),
            sim.truncate("a", 0),
            sim.copy_file("a", "c"),
        ] {
            assert_eq!(e.unwrap_err().kind(), io::ErrorKind::NotFound);
        }
        assert_eq!(
            sim.corrupt("b", u64::MAX, b"x").unwrap_err().kind(),
            io::ErrorKind::FileTooLarge
        );
        // Damage is durable: it survives a power loss.
        let after = sim.crash(CrashMode::PowerLossDropAll);
        assert_eq!(image(&after), vec![("b".to_string(), b"acc".to_vec())]);
    }

    #[test]
    fn damage_with_pending_data_stays_consistent_after_sync() {
        let sim = SimBackend::new(15);
        durable_file(&sim, "a", b"0000");
        let f = sim.open("a", true).unwrap();
        f.write_at(0, b"11").unwrap();
        sim.corrupt("a", 0, b"X").unwrap();
        f.sync_data().unwrap();
        let after = sim.crash(CrashMode::PowerLossDropAll);
        assert_eq!(after.read_file("a").unwrap(), b"X100");
    }

    #[test]
    fn removed_files_are_forgotten_after_sync_dir() {
        let sim = SimBackend::new(16);
        durable_file(&sim, "a", &[1u8; 100]);
        let f = sim.open("a", false).unwrap();
        sim.remove("a").unwrap();
        sim.sync_dir().unwrap();
        assert_eq!(
            sim.shared.state.lock().inodes.len(),
            1,
            "an open handle keeps it"
        );
        drop(f);
        assert!(sim.shared.state.lock().inodes.is_empty());
    }

    #[test]
    fn huge_offsets_are_refused() {
        let sim = SimBackend::new(17);
        let f = sim.create_new("a").unwrap();
        assert_eq!(
            f.write_at(u64::MAX - 1, b"xy").unwrap_err().kind(),
            io::ErrorKind::FileTooLarge
        );
        assert_eq!(
            f.set_len(1 << 40).unwrap_err().kind(),
            io::ErrorKind::FileTooLarge
        );
        assert_eq!(f.size().unwrap(), 0);
    }
}
