//! The simulated disk's state: inodes, the directory, the pending list, and crash image replay.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io;

use parking_lot::Mutex;

use super::rng::Rng;
use super::{CrashMode, FaultPlan, MAX_FILE_LEN, OpKind, SECTOR};

pub(super) struct Shared {
    pub(super) seed: u64,
    pub(super) state: Mutex<State>,
}

pub(super) fn mix(a: u64, b: u64) -> u64 {
    Rng(a ^ b.wrapping_mul(0xD605_BBB5_8C8A_BBFD)).next_u64()
}

#[derive(Debug, Default)]
pub(super) struct Inode {
    pub(super) live: Vec<u8>,
    pub(super) durable: Vec<u8>,
    /// Open handles on the inode.
    pub(super) handles: usize,
    /// A damage helper changed both images while data entries were pending, so replaying the pending list
    /// over `durable` no longer yields `live`: the next `sync_data` copies instead.
    pub(super) diverged: bool,
}

#[derive(Debug)]
pub(super) enum Pending {
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
    pub(super) fn data_ino(&self) -> Option<u64> {
        match self {
            Pending::Write { ino, .. } | Pending::SetLen { ino, .. } => Some(*ino),
            _ => None,
        }
    }

    pub(super) fn link_ino(&self) -> Option<u64> {
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
pub(super) enum Fate {
    Keep,
    Drop,
    Garbage,
    Zeros,
    /// Keep only this many leading bytes of the write.
    Cut(usize),
}

/// Why an operation was refused before it did anything.
pub(super) enum Stop {
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

pub(super) fn dead() -> io::Error {
    io::Error::other("simulated crash: backend is dead")
}

pub(super) fn not_found(name: &str) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, format!("no file {name:?}"))
}

pub(super) fn too_large() -> io::Error {
    io::Error::new(
        io::ErrorKind::FileTooLarge,
        format!("the simulated disk holds files of at most {MAX_FILE_LEN} bytes"),
    )
}

pub(super) fn check_name(name: &str) -> io::Result<()> {
    if name.is_empty() || name.contains('/') || name == "." || name == ".." {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("not a plain file name: {name:?}"),
        ));
    }
    Ok(())
}

/// `offset + len` if the result fits the simulated disk.
pub(super) fn end_of(offset: u64, len: usize) -> io::Result<u64> {
    match offset.checked_add(len as u64) {
        Some(end) if end <= MAX_FILE_LEN => Ok(end),
        _ => Err(too_large()),
    }
}

/// Offsets are bounded by `MAX_FILE_LEN` before they reach here, so this never saturates in practice.
pub(super) fn to_usize(x: u64) -> usize {
    usize::try_from(x).unwrap_or(usize::MAX)
}

/// Writes `bytes` at `offset` of `image`, zero-extending it first if needed.
pub(super) fn write_into(image: &mut Vec<u8>, offset: u64, bytes: &[u8]) {
    let start = to_usize(offset);
    let end = start.saturating_add(bytes.len());
    if image.len() < end {
        image.resize(end, 0);
    }
    if let Some(dst) = image.get_mut(start..end) {
        dst.copy_from_slice(bytes);
    }
}

pub(super) fn apply_data(image: &mut Vec<u8>, entry: &Pending) {
    match entry {
        Pending::Write { offset, bytes, .. } => write_into(image, *offset, bytes),
        Pending::SetLen { len, .. } => image.resize(to_usize(*len), 0),
        _ => {}
    }
}

/// Applies a link entry to a directory image, if the name still names the entry's inode.
pub(super) fn apply_link(dir: &mut BTreeMap<String, u64>, entry: &Pending) {
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
pub(super) fn torn_cut(rng: &mut Rng, offset: u64, len: usize) -> usize {
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
pub(super) struct State {
    pub(super) crashed: bool,
    /// How many times `crash` was called on this backend: each call gets its own randomness.
    pub(super) crashes: u64,
    pub(super) next_ino: u64,
    pub(super) inodes: HashMap<u64, Inode>,
    pub(super) dir_live: BTreeMap<String, u64>,
    pub(super) dir_durable: BTreeMap<String, u64>,
    pub(super) pending: Vec<Pending>,
    pub(super) plan: FaultPlan,
    pub(super) mutating_ops: u64,
    pub(super) counts: [u64; OpKind::COUNT],
    pub(super) writes: u64,
    pub(super) rng: Rng,
    pub(super) locks: HashSet<String>,
    /// Shared lock holders per file name.
    pub(super) shared_locks: std::collections::HashMap<String, usize>,
}

impl State {
    pub(super) fn new(seed: u64) -> Self {
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
            shared_locks: std::collections::HashMap::new(),
        }
    }

    pub(super) fn alive(&self) -> io::Result<()> {
        if self.crashed { Err(dead()) } else { Ok(()) }
    }

    /// Counts an operation and applies the fault plan; returns the op's 1-based number within its kind.
    pub(super) fn begin(&mut self, kind: OpKind) -> Result<u64, Stop> {
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

    pub(super) fn inode(&mut self, ino: u64) -> io::Result<&mut Inode> {
        self.inodes
            .get_mut(&ino)
            .ok_or_else(|| io::Error::other("simulated inode vanished"))
    }

    pub(super) fn new_inode(&mut self, live: Vec<u8>, durable: Vec<u8>) -> u64 {
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
    pub(super) fn write(
        &mut self,
        ino: u64,
        offset: Option<u64>,
        bytes: &[u8],
    ) -> io::Result<usize> {
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
    pub(super) fn settle(&mut self, ino: u64) {
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
    pub(super) fn discard(&mut self, ino: u64) {
        if let Some(inode) = self.inodes.get_mut(&ino) {
            inode.live.clone_from(&inode.durable);
            inode.diverged = false;
        }
        self.pending.retain(|p| p.data_ino() != Some(ino));
    }

    pub(super) fn has_pending_data(&self, ino: u64) -> bool {
        self.pending.iter().any(|p| p.data_ino() == Some(ino))
    }

    /// Forgets `ino` if no crash image and no handle can reach it any more.
    pub(super) fn maybe_forget(&mut self, ino: u64) {
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
    pub(super) fn forget_unreachable(&mut self) {
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
    pub(super) fn image_after(&self, mode: CrashMode, rng: &mut Rng) -> Vec<(String, Vec<u8>)> {
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
    pub(super) fn replay(&self, fates: &[Fate], rng: &mut Rng) -> Vec<(String, Vec<u8>)> {
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
