//! Opening a database directory of either engine through the library's public API, and the tool's error
//! type.
//!
//! The engine of a directory is found by opening it as an LSM database and, on
//! [`Error::WrongEngine`], as a B-tree database: the open checks the directory's `IDENTITY` before it
//! reads anything else, so the failed attempt costs one small read and changes nothing.

use std::fmt;
use std::path::Path;

use rumdb::{BTreeEngine, BTreeOptions, Engine, EngineKind, Error, LsmEngine, LsmOptions};

/// Why a command failed: usage errors exit with 2, everything else with 1.
#[derive(Debug)]
pub enum Fail {
    /// The arguments cannot be acted on (bad hex or base64, conflicting options).
    Usage(String),
    /// The library returned an error.
    Db(Error),
    /// Anything else: the directory is missing, a dump is malformed, the output cannot be written.
    Other(String),
}

impl Fail {
    /// The process exit code for this failure.
    pub fn exit_code(&self) -> i32 {
        match self {
            Fail::Usage(_) => 2,
            Fail::Db(_) | Fail::Other(_) => 1,
        }
    }
}

impl fmt::Display for Fail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fail::Usage(m) | Fail::Other(m) => f.write_str(m),
            Fail::Db(e @ Error::Locked(_)) => write!(
                f,
                "{e} (another process, or another rumdb command, has the database open; a writer \
                 excludes every other handle and a reader excludes writers: close it and retry)"
            ),
            Fail::Db(e) => write!(f, "{e}"),
        }
    }
}

impl From<Error> for Fail {
    fn from(e: Error) -> Self {
        Fail::Db(e)
    }
}

impl From<std::io::Error> for Fail {
    fn from(e: std::io::Error) -> Self {
        Fail::Other(e.to_string())
    }
}

/// Writes `text` and a newline to stdout. A closed pipe (`rumdb stats DIR | head`) ends the output
/// quietly: the reader has what it wanted.
///
/// # Errors
/// Any other write error.
pub fn print(text: &str) -> Result<(), Fail> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{text}").and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(Fail::Other(format!("cannot write the output: {e}")))
        }
        _ => Ok(()),
    }
}

/// The error for a directory that is empty (or holds only a `LOCK` file).
pub const NO_DATABASE: &str = "no database in the directory (it is empty)";

/// An open database of either engine.
pub enum Db {
    /// An LSM database.
    Lsm(LsmEngine),
    /// A B-tree database.
    BTree(BTreeEngine),
}

/// Which engine to create a database with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum EngineChoice {
    /// The LSM-tree engine.
    Lsm,
    /// The page-based B-tree engine.
    Btree,
}

impl Db {
    /// The engine behind the one API.
    pub fn engine(&self) -> &dyn Engine {
        match self {
            Db::Lsm(e) => e,
            Db::BTree(e) => e,
        }
    }

    /// Opens an existing database read-only: nothing in the directory is created, written or removed.
    ///
    /// # Errors
    /// A missing directory or one that is not a directory; the library's open errors (a directory
    /// without a database, a foreign or damaged one, `Locked` while a writer has it open).
    pub fn open_read_only(dir: &Path) -> Result<Db, Fail> {
        check_dir(dir)?;
        if holds_no_database(dir)? {
            return Err(Fail::Other(NO_DATABASE.to_string()));
        }
        let lsm = LsmOptions {
            read_only: true,
            ..LsmOptions::default()
        };
        match LsmEngine::open(dir, lsm) {
            Ok(e) => Ok(Db::Lsm(e)),
            Err(Error::WrongEngine { .. }) => {
                let btree = BTreeOptions {
                    read_only: true,
                    ..BTreeOptions::default()
                };
                Ok(Db::BTree(BTreeEngine::open(dir, btree)?))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Opens an existing database for writing; never creates one.
    ///
    /// # Errors
    /// As [`Db::open_read_only`]; `Locked` while any other handle has it open.
    pub fn open_existing(dir: &Path) -> Result<Db, Fail> {
        check_dir(dir)?;
        refuse_without_identity(dir)?;
        let mut lsm = LsmOptions::default();
        lsm.create.create_if_missing = false;
        match LsmEngine::open(dir, lsm) {
            Ok(e) => Ok(Db::Lsm(e)),
            Err(Error::WrongEngine { .. }) => {
                let mut btree = BTreeOptions::default();
                btree.create.create_if_missing = false;
                Ok(Db::BTree(BTreeEngine::open(dir, btree)?))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Opens the database in `dir` for writing with the given engine, creating the directory and the
    /// database if there is none.
    ///
    /// # Errors
    /// The library's open errors: `WrongEngine` if the directory holds the other engine's database.
    pub fn open_or_create(dir: &Path, engine: EngineChoice) -> Result<Db, Fail> {
        if !holds_no_database(dir)? {
            refuse_without_identity(dir)?;
        }
        Ok(match engine {
            EngineChoice::Lsm => Db::Lsm(LsmEngine::open(dir, LsmOptions::default())?),
            EngineChoice::Btree => Db::BTree(BTreeEngine::open(dir, BTreeOptions::default())?),
        })
    }

    /// Closes the handle, reporting what the close met.
    ///
    /// # Errors
    /// The library's close error.
    pub fn close(self) -> Result<(), Fail> {
        self.engine().close().map_err(Fail::from)
    }
}

/// The engine's name as the tool prints it.
pub fn kind_name(kind: EngineKind) -> String {
    kind.to_string()
}

/// True if `dir` is missing, or holds nothing but a `LOCK` file (what a failed open may leave): a
/// directory a new database can be created in.
pub fn holds_no_database(dir: &Path) -> Result<bool, Fail> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(true),
        Err(e) => return Err(Fail::Other(format!("cannot list the directory: {e}"))),
    };
    for entry in entries {
        let entry = entry.map_err(|e| Fail::Other(format!("cannot list the directory: {e}")))?;
        if entry.file_name() != "LOCK" {
            return Ok(false);
        }
    }
    Ok(true)
}

/// A writable open takes the directory's `LOCK` file, creating it, before it looks for a database: in a
/// directory without `IDENTITY` (empty, foreign, or a damaged database) the tool asks a read-only open
/// for the error instead, which creates nothing.
fn refuse_without_identity(dir: &Path) -> Result<(), Fail> {
    if dir.join("IDENTITY").exists() {
        return Ok(());
    }
    match Db::open_read_only(dir) {
        Err(fail) => Err(fail),
        Ok(db) => db.close(),
    }
}

fn check_dir(dir: &Path) -> Result<(), Fail> {
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(Fail::Other("not a directory".to_string())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err(Fail::Other("no such directory".to_string()))
        }
        Err(e) => Err(Fail::Other(format!("cannot read the directory: {e}"))),
    }
}
