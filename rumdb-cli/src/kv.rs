//! `get`, `scan`, `put` and `delete`.

use std::io::{self, BufWriter, Write};
use std::ops::Bound;
use std::path::Path;

use rumdb::{Bytes, Durability, Engine, EngineExt, WriteBatch, WriteOptions};
use serde_json::json;

use crate::codec::Encoding;
use crate::db::{Db, EngineChoice, Fail, NO_DATABASE};

/// Writes to stdout fail quietly on a closed pipe (`rumdb scan DIR | head`): the reader has what it
/// wanted.
fn output_error(e: io::Error) -> Fail {
    if e.kind() == io::ErrorKind::BrokenPipe {
        Fail::Other(String::new())
    } else {
        Fail::Other(format!("cannot write the output: {e}"))
    }
}

fn is_quiet(fail: &Fail) -> bool {
    matches!(fail, Fail::Other(m) if m.is_empty())
}

/// Prints the value of `key`.
pub fn get(dir: &Path, key: &[u8], enc: Encoding, json: bool) -> Result<(), Fail> {
    let db = Db::open_read_only(dir)?;
    let value = db.engine().get(key)?;
    db.close()?;
    let Some(value) = value else {
        return Err(Fail::Other(format!("key not found: {}", enc.encode(key))));
    };
    let line = if json {
        json!({ "key": enc.encode(key), "value": enc.encode(&value) }).to_string()
    } else {
        enc.encode(&value)
    };
    let mut out = io::stdout().lock();
    match writeln!(out, "{line}").and_then(|()| out.flush()) {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => Err(output_error(e)),
        _ => Ok(()),
    }
}

/// What `scan` prints.
pub struct ScanArgs {
    /// Only keys starting with this.
    pub prefix: Option<Vec<u8>>,
    /// Only keys at or after this.
    pub from: Option<Vec<u8>>,
    /// Only keys before this.
    pub to: Option<Vec<u8>>,
    /// Largest key first.
    pub reverse: bool,
    /// At most this many entries.
    pub limit: Option<u64>,
    /// Keys only.
    pub keys_only: bool,
    /// How keys and values print.
    pub encoding: Encoding,
    /// One JSON object per line.
    pub json: bool,
}

/// The smallest key greater than every key starting with `prefix`, or `None` if there is none (an
/// empty or all-0xFF prefix).
fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xFF {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// The tighter of the prefix's range and `--from`/`--to`: (inclusive lower, exclusive upper).
fn bounds(args: &ScanArgs) -> (Option<Vec<u8>>, Option<Vec<u8>>) {
    let mut lower = args.from.clone();
    let mut upper = args.to.clone();
    if let Some(p) = &args.prefix {
        if lower.as_ref().is_none_or(|l| l < p) {
            lower = Some(p.clone());
        }
        if let Some(end) = prefix_end(p)
            && upper.as_ref().is_none_or(|u| *u > end)
        {
            upper = Some(end);
        }
    }
    (lower, upper)
}

type Entry = rumdb::Result<(Bytes, Option<Bytes>)>;

/// Prints the entries within the bounds.
pub fn scan(dir: &Path, args: &ScanArgs) -> Result<(), Fail> {
    let db = Db::open_read_only(dir)?;
    let (lower, upper) = bounds(args);
    let empty = matches!((&lower, &upper), (Some(l), Some(u)) if l >= u);
    let result = if empty {
        Ok(())
    } else {
        print_scan(db.engine(), args, lower.as_deref(), upper.as_deref())
    };
    db.close()?;
    match result {
        Err(f) if is_quiet(&f) => Ok(()),
        other => other,
    }
}

fn print_scan(
    engine: &dyn Engine,
    args: &ScanArgs,
    lower: Option<&[u8]>,
    upper: Option<&[u8]>,
) -> Result<(), Fail> {
    let iter = engine.scan(
        lower.map_or(Bound::Unbounded, Bound::Included),
        upper.map_or(Bound::Unbounded, Bound::Excluded),
    )?;
    let entries: Box<dyn DoubleEndedIterator<Item = Entry>> = if args.keys_only {
        Box::new(iter.keys().map(|r| r.map(|k| (k, None))))
    } else {
        Box::new(iter.map(|r| r.map(|(k, v)| (k, Some(v)))))
    };
    let entries: Box<dyn Iterator<Item = Entry>> = if args.reverse {
        Box::new(entries.rev())
    } else {
        entries
    };
    let limit = args
        .limit
        .map_or(usize::MAX, |n| usize::try_from(n).unwrap_or(usize::MAX));
    let enc = args.encoding;
    let mut out = BufWriter::new(io::stdout().lock());
    for entry in entries.take(limit) {
        let (key, value) = entry?;
        let line = match (args.json, &value) {
            (true, Some(v)) => {
                json!({ "key": enc.encode(&key), "value": enc.encode(v) }).to_string()
            }
            (true, None) => json!({ "key": enc.encode(&key) }).to_string(),
            (false, Some(v)) => format!("{}\t{}", enc.encode(&key), enc.encode(v)),
            (false, None) => enc.encode(&key),
        };
        writeln!(out, "{line}").map_err(output_error)?;
    }
    out.flush().map_err(output_error)
}

fn open_for_write(dir: &Path, engine: Option<EngineChoice>) -> Result<Db, Fail> {
    match engine {
        Some(choice) => Db::open_or_create(dir, choice),
        None => Db::open_existing(dir).map_err(|f| match f {
            Fail::Other(m) if m == NO_DATABASE => Fail::Other(format!(
                "{m} (pass --engine lsm or --engine btree to create one)"
            )),
            Fail::Other(m) if m == "no such directory" => Fail::Other(format!(
                "{m} (pass --engine lsm or --engine btree to create a database there)"
            )),
            other => other,
        }),
    }
}

/// Sets `key` to `value`, synced before returning.
pub fn put(dir: &Path, key: &[u8], value: &[u8], engine: Option<EngineChoice>) -> Result<(), Fail> {
    let db = open_for_write(dir, engine)?;
    let mut batch = WriteBatch::new();
    batch.put(key, value);
    db.engine()
        .write(&batch, WriteOptions::new(Durability::Sync))?;
    db.close()
}

/// Removes `key`, synced before returning.
pub fn delete(dir: &Path, key: &[u8]) -> Result<(), Fail> {
    let db = open_for_write(dir, None)?;
    let mut batch = WriteBatch::new();
    batch.delete(key);
    db.engine()
        .write(&batch, WriteOptions::new(Durability::Sync))?;
    db.close()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(prefix: Option<&[u8]>, from: Option<&[u8]>, to: Option<&[u8]>) -> ScanArgs {
        ScanArgs {
            prefix: prefix.map(<[u8]>::to_vec),
            from: from.map(<[u8]>::to_vec),
            to: to.map(<[u8]>::to_vec),
            reverse: false,
            limit: None,
            keys_only: false,
            encoding: Encoding::Text,
            json: false,
        }
    }

    #[test]
    fn prefix_and_range_intersect() {
        assert_eq!(prefix_end(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(prefix_end(b"a\xff"), Some(b"b".to_vec()));
        assert_eq!(prefix_end(b"\xff\xff"), None);
        assert_eq!(prefix_end(b""), None);
        let b = bounds(&args(Some(b"user:"), Some(b"user:5"), None));
        assert_eq!(b, (Some(b"user:5".to_vec()), Some(b"user;".to_vec())));
        let b = bounds(&args(Some(b"user:"), Some(b"a"), Some(b"user:3")));
        assert_eq!(b, (Some(b"user:".to_vec()), Some(b"user:3".to_vec())));
        assert_eq!(bounds(&args(None, None, None)), (None, None));
    }
}
