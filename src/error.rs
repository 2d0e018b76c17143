//! The one error type of the crate.
//!
//! Every fallible call returns [`Result<T>`](crate::Result). Errors are `Send + Sync + 'static` and the enum
//! is `#[non_exhaustive]`, so new variants are not a breaking change.
//!
//! Two rules shape the variants:
//! - damage on disk is always reported as [`Error::Corruption`] naming the file, the offset where known and
//!   what was expected — never silently dropped, never returned as data;
//! - after a failed write or fsync the fate of the data is unknown, so the handle refuses further writes with
//!   [`Error::Poisoned`] until it is reopened. An fsync is never retried (the lesson PostgreSQL learned in
//!   2018: a retried fsync can report success after the kernel dropped the dirty pages).

use std::fmt;
use std::io;

/// The result type of every fallible rumdb call.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Which engine a directory or a handle belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EngineKind {
    /// The LSM-tree engine.
    Lsm,
    /// The page-based B-tree engine.
    BTree,
    /// The in-memory reference engine of the test harness (only with feature `testing`).
    #[cfg(feature = "testing")]
    Model,
}

impl EngineKind {
    /// The byte that identifies the kind in the `IDENTITY` file.
    pub(crate) fn code(self) -> u8 {
        match self {
            EngineKind::Lsm => 1,
            EngineKind::BTree => 2,
            #[cfg(feature = "testing")]
            EngineKind::Model => 3,
        }
    }

    /// The kind for an `IDENTITY` byte, if it names one.
    pub(crate) fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(EngineKind::Lsm),
            2 => Some(EngineKind::BTree),
            #[cfg(feature = "testing")]
            3 => Some(EngineKind::Model),
            _ => None,
        }
    }
}

impl fmt::Display for EngineKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EngineKind::Lsm => "lsm",
            EngineKind::BTree => "btree",
            #[cfg(feature = "testing")]
            EngineKind::Model => "model",
        })
    }
}

/// Everything that can go wrong in rumdb.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The operating system (or the simulated backend) reported an I/O error. Its message names the
    /// operation and the path ("creating /db/000003.log: File exists (os error 17)");
    /// [`io::Error::kind`] is the operating system's, and [`std::error::Error::source`] leads to the
    /// error the operating system returned.
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),

    /// Stored bytes failed a checksum or a structural check.
    #[error("corruption in {file}{}: {what}", fmt_offset(*.offset))]
    Corruption {
        /// The file name, relative to the database directory.
        file: String,
        /// The byte offset of the damaged structure, where it is known.
        offset: Option<u64>,
        /// What was expected and not found.
        what: String,
    },

    /// The caller passed something the engine does not accept (an oversized key, value or batch, a bad
    /// option). Nothing was written.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),

    /// Another handle, in this process or another, has the database open: it holds the directory's
    /// `LOCK` file. The string is the directory. Nothing was touched.
    #[error("the database in {0} is already open by another handle (in this process or another)")]
    Locked(String),

    /// The directory holds files but no database: no `IDENTITY` file and none of the engines' files, so
    /// rumdb refuses to create a database among them. (Engine files without `IDENTITY` are
    /// [`Error::Corruption`] instead: an interrupted creation or a damaged database.)
    #[error(
        "{dir} is not a rumdb directory: it has no IDENTITY file and holds other files, such as \
         {example_file}; open an empty or missing directory to create a database"
    )]
    NotADatabase {
        /// The directory.
        dir: String,
        /// One of the files found in it.
        example_file: String,
    },

    /// A write, fsync or background job failed earlier: the fate of the data it carried is unknown, so
    /// writes, `sync` and `flush` are refused until the database is reopened. Reads of the LSM engine
    /// go on; the B-tree also fails reads when the failure left a batch partly applied to its pages
    /// (reads return this error rather than a half-applied batch).
    #[error(
        "the database handle refuses writes after an earlier failure (reopen the database to recover): {cause}"
    )]
    Poisoned {
        /// The failure that poisoned the handle.
        cause: String,
    },

    /// The directory belongs to another engine kind.
    #[error("directory holds a {found} database, not {expected}")]
    WrongEngine {
        /// The kind that was asked for.
        expected: EngineKind,
        /// The kind the directory's `IDENTITY` names.
        found: EngineKind,
    },

    /// The directory was written by a newer format version than this build reads.
    #[error("format version {found} is newer than the supported {supported}")]
    UnsupportedVersion {
        /// The version found on disk.
        found: u32,
        /// The newest version this build reads.
        supported: u32,
    },

    /// A snapshot's or a scan's reads needed versions the engine no longer keeps. Only the B-tree
    /// returns it: while snapshots and scans are open it keeps the old versions of the pages writers
    /// change in memory, and past [`BTreeOptions::snapshot_memory`](crate::BTreeOptions::snapshot_memory)
    /// it releases the oldest snapshot; that snapshot's (or scan's) later reads fail with this error.
    /// Take a new snapshot, or raise the limit.
    #[error("snapshot is too old: the versions it needs were released")]
    SnapshotTooOld,

    /// The handle was closed.
    #[error("database is closed")]
    Closed,

    /// The engine does not support the operation (the B-tree has no [`Engine::compact`](crate::Engine::compact)).
    /// Nothing was done; the handle stays usable.
    #[error("{what} is not supported by this engine")]
    Unsupported {
        /// The operation, as a phrase (`"compact"`).
        what: &'static str,
    },

    /// The handle was opened read-only (`read_only` in the engine's options) and the call would write:
    /// `write` (and `put`/`delete`), `sync`, `flush`, `compact`. The string names what was refused.
    #[error("database is open read-only: {0} refused")]
    ReadOnly(String),
}

fn fmt_offset(offset: Option<u64>) -> String {
    offset
        .map(|o| format!(" at offset {o}"))
        .unwrap_or_default()
}

impl Error {
    /// A [`Error::Corruption`] for `file` at `offset`.
    pub fn corruption(
        file: impl Into<String>,
        offset: Option<u64>,
        what: impl Into<String>,
    ) -> Self {
        Error::Corruption {
            file: file.into(),
            offset,
            what: what.into(),
        }
    }

    /// An [`Error::InvalidArgument`].
    pub fn invalid(what: impl Into<String>) -> Self {
        Error::InvalidArgument(what.into())
    }

    /// True for [`Error::Corruption`].
    pub fn is_corruption(&self) -> bool {
        matches!(self, Error::Corruption { .. })
    }

    /// A description of the error that can be stored (for [`Error::Poisoned`] causes).
    pub(crate) fn describe(&self) -> String {
        self.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_is_send_sync_static() {
        fn check<T: Send + Sync + 'static>() {}
        check::<Error>();
    }

    #[test]
    fn corruption_message_names_file_and_offset() {
        let e = Error::corruption("000001.log", Some(42), "bad checksum");
        assert_eq!(
            e.to_string(),
            "corruption in 000001.log at offset 42: bad checksum"
        );
        let e = Error::corruption("CURRENT", None, "empty");
        assert_eq!(e.to_string(), "corruption in CURRENT: empty");
    }

    #[test]
    fn engine_kind_codes_round_trip() {
        for k in [
            EngineKind::Lsm,
            EngineKind::BTree,
            #[cfg(feature = "testing")]
            EngineKind::Model,
        ] {
            assert_eq!(EngineKind::from_code(k.code()), Some(k));
        }
        assert_eq!(EngineKind::from_code(0), None);
    }
}
