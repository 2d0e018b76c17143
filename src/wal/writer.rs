//! The WAL writer: appends records to the current segment with the caller's durability, group-commits
//! fsyncs, and rotates segments.
//!
//! # Group commit
//!
//! Encoding and appending happen under one mutex, so records land in the order their calls took it. An
//! fsync runs *without* the mutex: appends continue while it runs. A `Sync` writer waits until the synced
//! position reaches the end of its record; if no fsync is running it becomes the syncer, syncs up to the
//! appended position it observed, publishes the new synced position and wakes every waiter, each of which
//! returns if it is now covered or otherwise starts the next fsync. A failed write or fsync poisons the
//! writer: every waiter and every later call gets `Poisoned`, and the fsync is never retried.
//!
//! `Buffered` records stay in the writer's buffer until it passes [`BUFFER_LIMIT`] or a later `Flush` or
//! `Sync` record (or [`WalWriter::sync`]) writes the buffer out, so they reach the OS before any later
//! record, in order.
//!
//! # Rotation and the segment chain
//!
//! [`WalWriter::rotate`] from segment N to N+1 (WAL only; see [`LogKind`]), in this order:
//! 1. writes out N's buffer and fsyncs N: its data length `L` is durable before anything names it;
//! 2. creates N+1, appends its LINK `{prev N, prev_len L}` (no fsync of its own: the LINK precedes every
//!    later fragment of N+1, so any fsync of N+1 covers it) and fsyncs the directory;
//! 3. appends N's SEAL `{next N+1, len L}` and fsyncs N;
//! 4. appends go to N+1.
//!
//! Every segment but the last is therefore fully synced and sealed, naming its successor, which exists
//! durably before the SEAL does. A crash between 2 and 3 leaves N unsealed and N+1 holding nothing but
//! its LINK (or not even that): replay accepts exactly that. [`WalWriter::create`] (at open) writes the
//! new segment's LINK to the last replayed segment, first fsyncing that segment so its length as
//! replayed is durable. [`WalWriter::close`] rotates to a new empty segment, so the closed segment is
//! sealed too and its length is on record in its successor's LINK. The byte formats are in
//! [`format`](super::format); what replay checks is in [`reader`](super::reader).

use std::sync::Arc;

use parking_lot::{Condvar, Mutex, MutexGuard};

use super::format::{FragmentType, MARKER_LEN, encode_marker, encode_record};
use super::segment_name;
use crate::engine::Durability;
use crate::error::{Error, Result};
use crate::storage::{File, Storage, WritePurpose};

/// Buffered records are handed to the OS once this many bytes wait.
pub const BUFFER_LIMIT: usize = 64 * 1024;

/// What a log in WAL framing is: it decides the ledger records (LINK and SEAL) and which crash points
/// fire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogKind {
    /// A WAL segment: chained by LINK and SEAL records; reaches the `wal.*` crash points; bytes counted
    /// as [`WritePurpose::Wal`].
    Wal,
    /// The LSM manifest: plain records, no crash points of the writer; bytes counted as
    /// [`WritePurpose::Manifest`].
    Manifest,
}

impl LogKind {
    fn purpose(self) -> WritePurpose {
        match self {
            LogKind::Wal => WritePurpose::Wal,
            LogKind::Manifest => WritePurpose::Manifest,
        }
    }

    /// Hits crash point `name` if this is the WAL.
    fn crash_point(self, name: &str) {
        if self == LogKind::Wal {
            crate::crash_point::hit(name);
        }
    }
}

/// The LINK a new WAL segment starts with: its predecessor and that segment's data length.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Link {
    /// The predecessor's segment number; 0: none.
    pub prev: u64,
    /// The predecessor's data length (the offset its SEAL starts at, or its valid length as replayed).
    pub prev_len: u64,
}

/// A position in the log: segment number, then byte offset within the segment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LogPosition {
    /// The segment number.
    pub segment: u64,
    /// The byte offset in the segment.
    pub offset: u64,
}

struct State {
    file: File,
    kind: LogKind,
    segment: u64,
    /// The current segment's LINK (WAL only).
    link: Link,
    /// Offset within the current 32 KiB block where the next fragment starts.
    block_offset: usize,
    /// Encoded records not yet handed to the OS.
    buf: Vec<u8>,
    /// Segment bytes handed to the OS.
    appended: u64,
    /// Durable through this position.
    synced: LogPosition,
    sync_running: bool,
    poisoned: Option<String>,
    closed: bool,
}

impl State {
    fn end(&self) -> LogPosition {
        LogPosition {
            segment: self.segment,
            offset: self.appended + self.buf.len() as u64,
        }
    }

    fn check(&self) -> Result<()> {
        if let Some(cause) = &self.poisoned {
            return Err(Error::Poisoned {
                cause: cause.clone(),
            });
        }
        if self.closed {
            return Err(Error::Closed);
        }
        Ok(())
    }

    fn poison(&mut self, e: &Error) {
        if self.poisoned.is_none() {
            self.poisoned = Some(format!("WAL segment {}: {e}", self.segment));
        }
    }

    /// Hands the buffer to the OS.
    fn write_out(&mut self) -> Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        if let Err(e) = self.file.append(&self.buf, self.kind.purpose()) {
            self.poison(&e);
            return Err(e);
        }
        self.appended += self.buf.len() as u64;
        self.buf.clear();
        Ok(())
    }
}

/// Appends records to the log. `Send + Sync`: share it between writers.
pub struct WalWriter {
    storage: Storage,
    name_of: fn(u64) -> String,
    state: Mutex<State>,
    synced_cv: Condvar,
}

impl std::fmt::Debug for WalWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let st = self.state.lock();
        f.debug_struct("WalWriter")
            .field("segment", &st.segment)
            .field("appended", &st.appended)
            .field("synced", &st.synced)
            .finish_non_exhaustive()
    }
}

impl WalWriter {
    /// Creates WAL segment `segment` (which must not exist), writes its LINK to `link` (first fsyncing
    /// the predecessor `link.prev`, if it exists, so the length the LINK records is durable), syncs the
    /// directory and returns a writer appending to it. Recovery always starts a new segment: it never
    /// appends after a damaged tail.
    ///
    /// # Errors
    /// `Io` (kind `AlreadyExists` if the segment exists).
    pub fn create(storage: &Storage, segment: u64, link: Link) -> Result<Arc<Self>> {
        if link.prev != 0 && storage.exists(&segment_name(link.prev))? {
            storage
                .open_required(&segment_name(link.prev), false)?
                .sync_data()?;
        }
        Self::open_new(storage, segment, segment_name, LogKind::Wal, link)
    }

    /// Like [`WalWriter::create`] for another log in WAL framing (the LSM manifest, `kind`
    /// `LogKind::Manifest`): the file of log number `n` is `name_of(n)`; no LINK or SEAL is written.
    ///
    /// # Errors
    /// As [`WalWriter::create`].
    pub fn create_log(
        storage: &Storage,
        segment: u64,
        name_of: fn(u64) -> String,
        kind: LogKind,
    ) -> Result<Arc<Self>> {
        if kind == LogKind::Wal {
            return Err(Error::invalid(
                "WAL segments are created by WalWriter::create (they need a LINK)",
            ));
        }
        Self::open_new(storage, segment, name_of, kind, Link::default())
    }

    fn open_new(
        storage: &Storage,
        segment: u64,
        name_of: fn(u64) -> String,
        kind: LogKind,
        link: Link,
    ) -> Result<Arc<Self>> {
        let file = storage.create_new(&name_of(segment))?;
        let mut appended = 0;
        if kind == LogKind::Wal {
            let mut buf = Vec::with_capacity(MARKER_LEN);
            encode_marker(
                &mut buf,
                0,
                segment,
                0,
                FragmentType::Link,
                link.prev,
                link.prev_len,
            );
            file.append(&buf, kind.purpose())?;
            appended = buf.len() as u64;
        }
        // The segment an open starts is a rotation too: the same directory fsync is pending.
        kind.crash_point("wal.rotate.before_dir_sync");
        storage.sync_dir()?;
        Ok(Arc::new(WalWriter {
            storage: storage.clone(),
            name_of,
            state: Mutex::new(State {
                file,
                kind,
                segment,
                link,
                block_offset: appended as usize,
                buf: Vec::new(),
                appended,
                synced: LogPosition { segment, offset: 0 },
                sync_running: false,
                poisoned: None,
                closed: false,
            }),
            synced_cv: Condvar::new(),
        }))
    }

    /// Appends one record; returns the log position just past it once it is as durable as asked.
    ///
    /// # Errors
    /// `Poisoned` after an earlier failure; `Io` (and the writer is poisoned) if a write or fsync fails;
    /// `Closed`.
    pub fn append(&self, payload: &[u8], durability: Durability) -> Result<LogPosition> {
        let mut st = self.state.lock();
        st.check()?;
        let synced_through = st.synced.offset;
        let (segment, block_offset) = (st.segment, st.block_offset);
        st.block_offset =
            encode_record(&mut st.buf, block_offset, segment, synced_through, payload);
        let end = st.end();
        match durability {
            Durability::Buffered => {
                if st.buf.len() >= BUFFER_LIMIT {
                    st.write_out()?;
                }
            }
            Durability::Flush => st.write_out()?,
            Durability::Sync => {
                st.write_out()?;
                self.wait_synced(st, end)?;
            }
        }
        Ok(end)
    }

    /// Hands every buffered record to the OS (the durability of `Flush`).
    ///
    /// # Errors
    /// As [`WalWriter::append`].
    pub fn flush(&self) -> Result<()> {
        let mut st = self.state.lock();
        st.check()?;
        st.write_out()
    }

    /// Makes every record appended so far durable.
    ///
    /// # Errors
    /// As [`WalWriter::append`].
    pub fn sync(&self) -> Result<LogPosition> {
        let mut st = self.state.lock();
        st.check()?;
        st.write_out()?;
        let end = st.end();
        self.wait_synced(st, end)?;
        Ok(end)
    }

    /// Waits until every record up to `target` (a position an append returned) is durable, sharing
    /// fsyncs with concurrent callers. Lets a caller append under its own lock and wait for durability after
    /// releasing it.
    ///
    /// # Errors
    /// As [`WalWriter::append`].
    pub fn sync_through(&self, target: LogPosition) -> Result<()> {
        let mut st = self.state.lock();
        if st.synced >= target {
            return Ok(());
        }
        st.check()?;
        if st.end().segment == target.segment && st.appended < target.offset {
            st.write_out()?;
        }
        self.wait_synced(st, target)
    }

    /// Waits until `target` is durable, running the fsync itself if nobody else is.
    fn wait_synced(&self, mut st: MutexGuard<'_, State>, target: LogPosition) -> Result<()> {
        loop {
            if st.synced >= target {
                return Ok(());
            }
            st.check()?;
            if st.sync_running {
                self.synced_cv.wait(&mut st);
                continue;
            }
            st.sync_running = true;
            let upto = LogPosition {
                segment: st.segment,
                offset: st.appended,
            };
            let file = st.file.clone();
            // Crash points of the WAL only (the LSM manifest shares this writer).
            let kind = st.kind;
            let result = MutexGuard::unlocked(&mut st, || {
                kind.crash_point("wal.append.before_sync");
                let synced = file.sync_data();
                if synced.is_ok() {
                    kind.crash_point("wal.append.after_sync");
                }
                synced
            });
            st.sync_running = false;
            match result {
                Ok(()) => st.synced = st.synced.max(upto),
                Err(e) => {
                    st.poison(&e);
                    self.synced_cv.notify_all();
                    return Err(e);
                }
            }
            self.synced_cv.notify_all();
        }
    }

    /// Seals the current segment and starts segment `next` (see the module docs of `src/wal/mod.rs`: the current
    /// segment is written out and fsync'd, `next` is created with its LINK and made durable in the
    /// directory, then the current one gets its SEAL naming `next` and is fsync'd again). Returns the
    /// sealed segment's number. WAL only.
    ///
    /// # Errors
    /// As [`WalWriter::append`]; `InvalidArgument` if `next` is not after the current segment or the
    /// log is not a WAL; a failure poisons the writer.
    pub fn rotate(&self, next: u64) -> Result<u64> {
        let mut st = self.state.lock();
        st.check()?;
        while st.sync_running {
            self.synced_cv.wait(&mut st);
        }
        st.check()?;
        if next <= st.segment || st.kind != LogKind::Wal {
            return Err(Error::invalid(format!(
                "next WAL segment {next} is not after {} (or not a WAL)",
                st.segment
            )));
        }
        st.write_out()?;
        let sealed = st.segment;
        let len = st.appended;
        let kind = st.kind;
        let result = (|| {
            st.file.sync_data()?;
            let file = self.storage.create_new(&(self.name_of)(next))?;
            kind.crash_point("wal.rotate.after_create");
            let mut link = Vec::with_capacity(MARKER_LEN);
            encode_marker(&mut link, 0, next, 0, FragmentType::Link, sealed, len);
            file.append(&link, kind.purpose())?;
            kind.crash_point("wal.rotate.before_dir_sync");
            self.storage.sync_dir()?;
            kind.crash_point("wal.rotate.before_seal");
            let mut seal = Vec::with_capacity(2 * MARKER_LEN);
            encode_marker(
                &mut seal,
                st.block_offset,
                sealed,
                len,
                FragmentType::Seal,
                next,
                len,
            );
            st.file.append(&seal, kind.purpose())?;
            st.file.sync_data()?;
            Ok((file, link.len()))
        })();
        match result {
            Ok((file, link_len)) => {
                st.file = file;
                st.segment = next;
                st.link = Link {
                    prev: sealed,
                    prev_len: len,
                };
                st.block_offset = link_len;
                st.appended = link_len as u64;
                st.synced = LogPosition {
                    segment: next,
                    offset: 0,
                };
                self.synced_cv.notify_all();
                Ok(sealed)
            }
            Err(e) => {
                st.poison(&e);
                Err(e)
            }
        }
    }

    /// The segment records are appended to now.
    pub fn segment(&self) -> u64 {
        self.state.lock().segment
    }

    /// The LINK the current segment starts with: what a copy of the log that ends with the current
    /// segment's predecessor needs to start a successor the chain accepts (`Engine::backup`).
    pub fn link(&self) -> Link {
        self.state.lock().link
    }

    /// The position just past the last appended record (buffered records included).
    pub fn end(&self) -> LogPosition {
        self.state.lock().end()
    }

    /// The position through which the log is durable.
    #[cfg(any(test, feature = "testing"))]
    pub fn synced(&self) -> LogPosition {
        self.state.lock().synced
    }

    /// Why the writer refuses writes, if it does.
    pub fn poisoned(&self) -> Option<String> {
        self.state.lock().poisoned.clone()
    }

    /// Writes out and fsyncs everything, then refuses further appends with `Closed`. A WAL first rotates
    /// to a new, empty segment numbered one past the current one (see [`WalWriter::rotate`]), so the
    /// closed segment is sealed and its length recorded in its successor's LINK: a later cut, emptying or
    /// deletion of it is detected at the next open.
    ///
    /// # Errors
    /// As [`WalWriter::sync`] and [`WalWriter::rotate`].
    #[cfg(any(test, feature = "testing"))]
    pub fn close(&self) -> Result<()> {
        self.close_into(None)
    }

    /// [`WalWriter::close`], rotating a WAL to segment `next` (reserved by the caller, so that it is no
    /// other file's number) instead of one past the current one.
    ///
    /// # Errors
    /// As [`WalWriter::close`]; `InvalidArgument` if `next` is not after the current segment.
    pub fn close_into(&self, next: Option<u64>) -> Result<()> {
        let (kind, segment) = {
            let st = self.state.lock();
            st.check()?;
            (st.kind, st.segment)
        };
        if kind == LogKind::Wal {
            self.rotate(next.unwrap_or(segment + 1))?;
        }
        self.sync()?;
        self.state.lock().closed = true;
        Ok(())
    }
}

impl Drop for WalWriter {
    fn drop(&mut self) {
        // Best effort: hand buffered records to the OS, as a clean process exit would. Errors cannot be
        // reported from drop; an fsync is not attempted (callers that need durability call `sync`/`close`).
        let st = self.state.get_mut();
        if st.poisoned.is_none() && !st.closed {
            let _ = st.write_out();
        }
    }
}
