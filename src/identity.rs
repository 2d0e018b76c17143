//! Directory identity and exclusive open, shared by every engine.
//!
//! Each database directory has an `IDENTITY` file naming the engine kind and format version, written
//! **last** at creation (temp name, fsync, rename, directory fsync), so a directory with `IDENTITY` is
//! complete. Opening
//! - takes the `LOCK` file with a non-blocking lock (`Locked` if any handle, in this process or another,
//!   holds it; the lock dies with its process);
//! - with `IDENTITY` present, checks it: another kind is `WrongEngine`, a newer format `UnsupportedVersion`,
//!   damage `Corruption`, and `error_if_exists` an `InvalidArgument`;
//! - read-only ([`open_dir`] with `read_only`): takes a *shared* lock instead (any number of read-only
//!   handles at once; `Locked` while a writer holds the exclusive lock, and a writer is `Locked` while
//!   they are open), creating nothing: if `LOCK` does not exist (a copied directory; every database has
//!   one after its first open) the handle holds no lock, and a writer that opens later is not stopped by
//!   it. A directory without `IDENTITY` is never created read-only;
//! - without it, refuses any directory that holds other files — never create over existing files, never
//!   mistake a damaged database for an empty one: `Corruption` if one of them is an engine file (an
//!   interrupted creation or a damaged database), `NotADatabase` if none is — and otherwise creates a new
//!   database if `create_if_missing` allows.
//!
//! # `IDENTITY` format (28 bytes, little-endian)
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 8 | magic `RUMDB-ID` |
//! | 8 | 1 | engine kind: 1 LSM, 2 B-tree, 3 model |
//! | 9 | 3 | zero |
//! | 12 | 4 | format version of the engine's files |
//! | 16 | 4 | page size (B-tree; 0 otherwise) |
//! | 20 | 4 | zero (reserved flags) |
//! | 24 | 4 | CRC-32 of bytes 0..24 |

use crate::error::{EngineKind, Error, Result};
use crate::storage::{LockGuard, ReadPurpose, Storage, WritePurpose};

/// The identity file's name.
pub const IDENTITY_FILE: &str = "IDENTITY";
/// The lock file's name.
pub const LOCK_FILE: &str = "LOCK";

const MAGIC: &[u8; 8] = b"RUMDB-ID";
const LEN: usize = 28;

/// What a directory's `IDENTITY` says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Identity {
    /// The engine kind.
    pub kind: EngineKind,
    /// The format version of the engine's files.
    pub format_version: u32,
    /// The B-tree page size (0 for other engines).
    pub page_size: u32,
}

impl Identity {
    /// The 28-byte encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(LEN);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&[self.kind.code(), 0, 0, 0]);
        out.extend_from_slice(&self.format_version.to_le_bytes());
        out.extend_from_slice(&self.page_size.to_le_bytes());
        out.extend_from_slice(&[0; 4]);
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    /// Decodes and checks an `IDENTITY` file's bytes.
    ///
    /// # Errors
    /// `Corruption` if the bytes are not a valid identity (including nonzero reserved bytes).
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let bad = |what: &str| Error::corruption(IDENTITY_FILE, Some(0), what);
        let arr: &[u8; LEN] = bytes
            .try_into()
            .map_err(|_| bad(&format!("{} bytes, expected {LEN}", bytes.len())))?;
        let (body, crc) = arr.split_at(24);
        if !body.starts_with(MAGIC) {
            return Err(bad("bad magic"));
        }
        let stored = u32::from_le_bytes(crc.try_into().map_err(|_| bad("checksum"))?);
        if stored != crc32fast::hash(body) {
            return Err(bad("checksum mismatch"));
        }
        let word = |at: usize| {
            body.get(at..at + 4)
                .and_then(|w| w.try_into().ok())
                .map(u32::from_le_bytes)
                .ok_or_else(|| bad("short"))
        };
        // Bytes 9..12 and 20..24 are zero in every version: a nonzero one is damage the CRC missed or a
        // file this version cannot describe, and accepting it would re-encode to different bytes.
        if body
            .get(9..12)
            .into_iter()
            .chain(body.get(20..24))
            .flatten()
            .any(|&b| b != 0)
        {
            return Err(bad("nonzero reserved bytes"));
        }
        let code = body.get(8).copied().ok_or_else(|| bad("short"))?;
        let kind = EngineKind::from_code(code)
            .ok_or_else(|| bad(&format!("unknown engine kind {code}")))?;
        Ok(Identity {
            kind,
            format_version: word(12)?,
            page_size: word(16)?,
        })
    }
}

/// Whether to create a database and whether an existing one is an error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CreateOptions {
    /// Create the database if the directory holds none (default true).
    pub create_if_missing: bool,
    /// Fail with `InvalidArgument` if a database exists (default false).
    pub error_if_exists: bool,
}

impl Default for CreateOptions {
    fn default() -> Self {
        CreateOptions {
            create_if_missing: true,
            error_if_exists: false,
        }
    }
}

/// A directory opened exclusively for one engine.
#[derive(Debug)]
pub struct OpenedDir {
    /// The directory's lock, held while the handle lives.
    pub lock: LockGuard,
    /// The identity found, or the one to write when creation completes.
    pub identity: Identity,
    /// True if the directory holds no database yet: the engine creates its files, then calls
    /// [`finish_create`].
    pub creating: bool,
}

/// Locks the directory and checks (or prepares) its identity for an engine of `kind` whose current format
/// version is `format_version`. With `read_only`, takes the shared lock (none if `LOCK` is missing) and
/// never prepares a creation.
///
/// # Errors
/// `Locked`, `WrongEngine`, `UnsupportedVersion`, `Corruption` (damaged `IDENTITY`, or engine files without
/// one), `NotADatabase` (other files without one), `InvalidArgument` (`error_if_exists`, or no database and
/// not `create_if_missing` or read-only), `Io`.
pub fn open_dir(
    storage: &Storage,
    kind: EngineKind,
    format_version: u32,
    page_size: u32,
    options: CreateOptions,
    read_only: bool,
) -> Result<OpenedDir> {
    // An open that may not create a database, in a directory without one, must leave it untouched: it
    // takes the lock that creates no `LOCK` file, and only if a database turns out to exist after all
    // (created meanwhile) starts again with the writer's lock.
    let may_not_create =
        !read_only && !options.create_if_missing && !storage.exists(IDENTITY_FILE)?;
    let lock = if read_only || may_not_create {
        storage
            .try_lock_shared(LOCK_FILE)?
            .unwrap_or_else(LockGuard::unlocked)
    } else {
        storage.try_lock(LOCK_FILE)?
    };
    let names = storage.list()?;
    if names.iter().any(|n| n == IDENTITY_FILE) {
        if may_not_create {
            drop(lock);
            return open_dir(storage, kind, format_version, page_size, options, read_only);
        }
        let bytes = storage.read_file(IDENTITY_FILE, 4096, ReadPurpose::Recovery)?;
        let found = Identity::decode(&bytes)?;
        if found.kind != kind {
            return Err(Error::WrongEngine {
                expected: kind,
                found: found.kind,
            });
        }
        if found.format_version > format_version {
            return Err(Error::UnsupportedVersion {
                found: found.format_version,
                supported: format_version,
            });
        }
        if options.error_if_exists {
            return Err(Error::invalid(
                "a database exists and error_if_exists is set",
            ));
        }
        return Ok(OpenedDir {
            lock,
            identity: found,
            creating: false,
        });
    }
    let stray: Vec<&String> = names
        .iter()
        .filter(|n| *n != LOCK_FILE && *n != &format!("{IDENTITY_FILE}.tmp"))
        .collect();
    if let Some(first) = stray.iter().find(|n| is_engine_file(n)) {
        return Err(Error::corruption(
            IDENTITY_FILE,
            None,
            format!(
                "missing, but the directory holds {} other file(s), among them {first}, a rumdb \
                 engine file: an interrupted creation or a damaged database; refusing to create a \
                 database over them",
                stray.len()
            ),
        ));
    }
    if let Some(first) = stray.first() {
        return Err(Error::NotADatabase {
            dir: storage.display_dir(),
            example_file: (*first).clone(),
        });
    }
    if read_only {
        return Err(Error::invalid(
            "no database in the directory, and a read-only open never creates one",
        ));
    }
    if !options.create_if_missing {
        return Err(Error::invalid(
            "no database in the directory and create_if_missing is false",
        ));
    }
    Ok(OpenedDir {
        lock,
        identity: Identity {
            kind,
            format_version,
            page_size,
        },
        creating: true,
    })
}

/// True for a name one of the engines writes (or its `.tmp` twin), besides `IDENTITY` and `LOCK`.
fn is_engine_file(name: &str) -> bool {
    let name = name.strip_suffix(".tmp").unwrap_or(name);
    #[cfg(feature = "testing")]
    if name == crate::testing::model::WAL_FIRST {
        return true;
    }
    crate::wal::parse_segment_name(name).is_some()
        || crate::lsm::sstable::parse_table_file_name(name).is_some()
        || crate::lsm::manifest::parse_manifest_name(name).is_some()
        || name == crate::lsm::manifest::CURRENT
        || crate::btree::owns_file(name)
}

/// Writes `IDENTITY` atomically, the last step of creating a database.
///
/// # Errors
/// `Io`.
pub fn finish_create(storage: &Storage, identity: &Identity) -> Result<()> {
    storage.write_file_atomic(IDENTITY_FILE, &identity.encode(), WritePurpose::Header)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn storage() -> (tempfile::TempDir, Storage) {
        let d = tempfile::tempdir().unwrap();
        let s = Storage::os(d.path(), false).unwrap();
        (d, s)
    }

    /// An open that may not create a database leaves a directory without one exactly as it was: no
    /// `LOCK` file (the command-line tool had to work around one being left behind).
    #[test]
    fn an_open_that_may_not_create_leaves_an_empty_directory_empty() {
        let (_d, s) = storage();
        let options = CreateOptions {
            create_if_missing: false,
            ..CreateOptions::default()
        };
        let err = open_dir(&s, EngineKind::Lsm, 1, 0, options, false).unwrap_err();
        assert!(matches!(err, Error::InvalidArgument(_)), "{err}");
        assert!(s.list().unwrap().is_empty(), "{:?}", s.list().unwrap());
        // With a database there, the same options open it with the writer's lock.
        drop(open_dir(&s, EngineKind::Lsm, 1, 0, CreateOptions::default(), false).unwrap());
        finish_create(
            &s,
            &Identity {
                kind: EngineKind::Lsm,
                format_version: 1,
                page_size: 0,
            },
        )
        .unwrap();
        let opened = open_dir(&s, EngineKind::Lsm, 1, 0, options, false).unwrap();
        assert!(!opened.creating);
        assert!(matches!(
            open_dir(&s, EngineKind::Lsm, 1, 0, options, false),
            Err(Error::Locked(_))
        ));
    }

    #[test]
    fn create_then_reopen_then_wrong_kind() {
        let (_d, s) = storage();
        let opened = open_dir(&s, EngineKind::Lsm, 1, 0, CreateOptions::default(), false).unwrap();
        assert!(opened.creating);
        finish_create(&s, &opened.identity).unwrap();
        drop(opened);
        let again = open_dir(&s, EngineKind::Lsm, 1, 0, CreateOptions::default(), false).unwrap();
        assert!(!again.creating);
        assert!(matches!(
            open_dir(&s, EngineKind::Lsm, 1, 0, CreateOptions::default(), false),
            Err(Error::Locked(_))
        ));
        drop(again);
        assert!(matches!(
            open_dir(&s, EngineKind::BTree, 1, 0, CreateOptions::default(), false),
            Err(Error::WrongEngine {
                expected: EngineKind::BTree,
                found: EngineKind::Lsm
            })
        ));
        assert!(matches!(
            open_dir(&s, EngineKind::Lsm, 0, 0, CreateOptions::default(), false),
            Err(Error::UnsupportedVersion {
                found: 1,
                supported: 0
            })
        ));
        let opts = CreateOptions {
            error_if_exists: true,
            ..Default::default()
        };
        assert!(matches!(
            open_dir(&s, EngineKind::Lsm, 1, 0, opts, false),
            Err(Error::InvalidArgument(_))
        ));
    }

    #[test]
    fn missing_identity_with_files_is_corruption_and_nothing_is_created() {
        let (_d, s) = storage();
        s.create_new("000001.log").unwrap();
        let err = open_dir(&s, EngineKind::Lsm, 1, 0, CreateOptions::default(), false).unwrap_err();
        assert!(err.is_corruption(), "{err}");
        assert!(!s.exists(IDENTITY_FILE).unwrap());
        let (_d, s) = storage();
        let opts = CreateOptions {
            create_if_missing: false,
            ..Default::default()
        };
        assert!(matches!(
            open_dir(&s, EngineKind::Lsm, 1, 0, opts, false),
            Err(Error::InvalidArgument(_))
        ));
    }

    #[test]
    fn every_damaged_identity_is_corruption() {
        let id = Identity {
            kind: EngineKind::BTree,
            format_version: 3,
            page_size: 4096,
        };
        let enc = id.encode();
        assert_eq!(Identity::decode(&enc).unwrap(), id);
        for bit in 0..enc.len() * 8 {
            let mut d = enc.clone();
            d[bit / 8] ^= 1 << (bit % 8);
            assert!(
                Identity::decode(&d).unwrap_err().is_corruption(),
                "bit {bit}"
            );
        }
        for len in 0..enc.len() {
            assert!(Identity::decode(&enc[..len]).is_err());
        }
    }

    /// A nonzero reserved byte under a recomputed CRC (what identity_decode found: it decoded, and
    /// re-encoded to other bytes) is `Corruption`.
    #[test]
    fn nonzero_reserved_bytes_under_a_valid_crc_are_corruption() {
        let enc = Identity {
            kind: EngineKind::Lsm,
            format_version: 1,
            page_size: 0,
        }
        .encode();
        for at in (9..12).chain(20..24) {
            let mut d = enc.clone();
            d[at] = 0x29;
            let crc = crc32fast::hash(&d[..24]);
            d[24..].copy_from_slice(&crc.to_le_bytes());
            let err = Identity::decode(&d).unwrap_err();
            assert!(err.is_corruption(), "byte {at}: {err}");
            assert!(err.to_string().contains("reserved"), "byte {at}: {err}");
        }
    }
}
