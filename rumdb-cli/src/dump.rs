//! `dump` and `load`: a line-oriented, engine-neutral text format, streamed both ways.
//!
//! ```text
//! rumdb-dump 1
//! <base64 key>\t<base64 value>
//! ...
//! end <N>
//! ```
//!
//! The first line names the format and its version. Each entry is one line: the key and the value in
//! standard base64 (padded; an empty key or value is an empty field), separated by one tab, in strictly
//! ascending key order. The last line is `end` and the number of entries, so a truncated dump is told
//! from a complete one. Lines end with `\n`.

use std::io::{self, BufRead, BufWriter, Write};
use std::ops::Bound;
use std::path::Path;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rumdb::{Durability, Engine, EngineExt, WriteBatch, WriteOptions};

use crate::codec::{base64_decode, base64_encode};
use crate::db::{Db, EngineChoice, Fail, holds_no_database, print};

/// The first line of every dump.
pub const HEADER: &str = "rumdb-dump 1";
/// Entries per batch when loading.
const BATCH_ENTRIES: usize = 1000;
/// Bytes per batch when loading (large values make smaller batches).
const BATCH_BYTES: usize = 8 << 20;

fn progress(len: Option<u64>, what: &str) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(len, ProgressDrawTarget::stderr());
    let template = if len.is_some() {
        "{spinner} {msg} {wide_bar} {human_pos}/~{human_len} entries ({elapsed})"
    } else {
        "{spinner} {msg} {human_pos} entries ({elapsed})"
    };
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    bar.set_message(what.to_string());
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

/// `rumdb dump DIR`: every entry to stdout, in key order.
pub fn dump(dir: &Path) -> Result<(), Fail> {
    let db = Db::open_read_only(dir)?;
    let result = write_dump(db.engine(), &mut io::stdout().lock());
    db.close()?;
    result
}

fn write_dump(engine: &dyn Engine, out: &mut impl Write) -> Result<(), Fail> {
    let out_err = |e: io::Error| Fail::Other(format!("cannot write the dump: {e}"));
    // An estimate (the LSM counts overwritten versions too): the bar may end short of it.
    let bar = progress(Some(engine.approximate_len()?), "dump");
    let mut out = BufWriter::with_capacity(1 << 20, out);
    writeln!(out, "{HEADER}").map_err(out_err)?;
    let mut n = 0u64;
    for entry in engine.scan(Bound::Unbounded, Bound::Unbounded)? {
        let (key, value) = entry?;
        writeln!(out, "{}\t{}", base64_encode(&key), base64_encode(&value)).map_err(out_err)?;
        n += 1;
        if n.is_multiple_of(1024) {
            bar.set_position(n);
        }
    }
    writeln!(out, "end {n}").map_err(out_err)?;
    out.flush().map_err(out_err)?;
    bar.finish_and_clear();
    Ok(())
}

/// `rumdb load DIR`: a dump from stdin into the database, created if missing.
pub fn load(dir: &Path, engine: Option<EngineChoice>, into_existing: bool) -> Result<(), Fail> {
    let db = if holds_no_database(dir)? {
        Db::open_or_create(dir, engine.unwrap_or(EngineChoice::Lsm))?
    } else {
        let db = Db::open_existing(dir)?;
        let found = match db {
            Db::Lsm(_) => EngineChoice::Lsm,
            Db::BTree(_) => EngineChoice::Btree,
        };
        if let Some(wanted) = engine.filter(|w| *w != found) {
            db.close()?;
            return Err(Fail::Other(
                format!("the directory holds a {found:?} database, not {wanted:?}").to_lowercase(),
            ));
        }
        if !into_existing && db.engine().first()?.is_some() {
            db.close()?;
            return Err(Fail::Other(
                "the database already holds entries; pass --into-existing to load into it anyway"
                    .to_string(),
            ));
        }
        db
    };
    let result = read_dump(db.engine(), &mut io::stdin().lock());
    let closed = db.close();
    let n = result?;
    closed?;
    print(&format!("loaded {n} entries"))
}

/// Reads a whole dump into `engine`, returning the number of entries.
fn read_dump(engine: &dyn Engine, input: &mut impl BufRead) -> Result<u64, Fail> {
    let bar = progress(None, "load");
    let mut line = Vec::new();
    let mut line_no = 0u64;
    let mut next_line = |line: &mut Vec<u8>| -> Result<bool, Fail> {
        line.clear();
        let read = input
            .read_until(b'\n', line)
            .map_err(|e| Fail::Other(format!("cannot read the dump: {e}")))?;
        line_no += 1;
        if read == 0 {
            return Ok(false);
        }
        if line.last() != Some(&b'\n') {
            return Err(Fail::Other(format!(
                "truncated dump: line {line_no} has no end of line"
            )));
        }
        line.pop();
        Ok(true)
    };
    if !next_line(&mut line)? {
        return Err(Fail::Other("empty input: not a rumdb dump".to_string()));
    }
    if line != HEADER.as_bytes() {
        return Err(Fail::Other(format!(
            "not a rumdb dump, or an unsupported version: first line is {:?}, expected {HEADER:?}",
            String::from_utf8_lossy(line.get(..line.len().min(60)).unwrap_or_default())
        )));
    }
    let options = WriteOptions::new(Durability::Flush);
    let mut batch = WriteBatch::new();
    let mut batch_bytes = 0usize;
    let mut previous: Option<Vec<u8>> = None;
    let mut n = 0u64;
    let mut entry_line = 1u64;
    loop {
        if !next_line(&mut line)? {
            engine.write(&batch, options)?;
            return Err(Fail::Other(format!(
                "truncated dump: no `end` line after {n} entries (those were loaded)"
            )));
        }
        entry_line += 1;
        if let Some(count) = line.strip_prefix(b"end ") {
            engine.write(&batch, options)?;
            let count: Option<u64> = std::str::from_utf8(count).ok().and_then(|c| c.parse().ok());
            if count != Some(n) {
                return Err(Fail::Other(format!(
                    "damaged dump: the end line {:?} does not match the {n} entries read",
                    String::from_utf8_lossy(&line)
                )));
            }
            if next_line(&mut line)? {
                return Err(Fail::Other(format!(
                    "damaged dump: data after the end line (line {})",
                    entry_line + 1
                )));
            }
            engine.sync()?;
            bar.finish_and_clear();
            return Ok(n);
        }
        let bad = |what: String| Fail::Other(format!("damaged dump, line {entry_line}: {what}"));
        let text = std::str::from_utf8(&line).map_err(|_| bad("not ASCII".to_string()))?;
        let (k, v) = text
            .split_once('\t')
            .ok_or_else(|| bad("no tab between key and value".to_string()))?;
        let key = base64_decode(k).map_err(|e| bad(format!("key: {e}")))?;
        let value = base64_decode(v).map_err(|e| bad(format!("value: {e}")))?;
        if previous.as_ref().is_some_and(|p| *p >= key) {
            return Err(bad("keys are not in strictly ascending order".to_string()));
        }
        batch_bytes += key.len() + value.len();
        batch.put(&key, &value);
        previous = Some(key);
        n += 1;
        if batch.len() >= BATCH_ENTRIES || batch_bytes >= BATCH_BYTES {
            engine.write(&batch, options)?;
            batch = WriteBatch::new();
            batch_bytes = 0;
            bar.set_position(n);
        }
    }
}
