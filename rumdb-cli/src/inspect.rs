//! `rumdb inspect sst|wal|page|manifest`: one raw file decoded through the library's `rumdb::inspect`
//! views, as aligned text or one JSON object. Nothing is opened as a database and nothing is written.
//!
//! Damage exits 1 after printing what could be decoded, with the file and offset in the message: a
//! table that fails a check, a WAL segment whose replay would stop before its end (a torn tail too: the
//! bytes after it are dropped), a B-tree page that fails its checksum or structure, a page past the end.

use std::path::Path;

use rumdb::inspect::{
    self, BTreeHeader, BTreePage, EntryKind, InternalKey, PageCell, PageKind, SstFile, WalEnd,
    WalRecord,
};
use rumdb::{BatchOp, Compression};
use serde_json::{Value, json};

use crate::codec::Encoding;
use crate::db::{Fail, print};
use crate::report::{Table, bytes};

/// Values longer than this are shown cut, with their length.
const VALUE_SHOWN: usize = 64;

fn key_text(enc: Encoding, k: &InternalKey) -> String {
    format!("{} @{} {}", enc.encode(&k.key), k.sequence, k.kind)
}

fn key_json(enc: Encoding, k: &InternalKey) -> Value {
    json!({ "key": enc.encode(&k.key), "sequence": k.sequence, "kind": k.kind.to_string() })
}

fn compression_text(c: Compression) -> String {
    match c {
        Compression::Zstd { level } => format!("zstd level {level}"),
        _ => "none".to_string(),
    }
}

fn region_text(r: inspect::BlockRegion) -> String {
    format!("offset {}, {} bytes", r.offset, r.size)
}

/// `rumdb inspect sst FILE`.
pub fn sst(path: &Path, enc: Encoding, entries: bool, json: bool) -> Result<(), Fail> {
    let file = inspect::sst(path)?;
    if json {
        print(&sst_json(&file, enc, entries)?.to_string())?;
    } else {
        print(&sst_text(&file, enc))?;
        if entries {
            print("entries")?;
            for e in file.entries() {
                let e = e?;
                let value = match e.key.kind {
                    EntryKind::Put => format!("  ({} B value)", e.value_len),
                    _ => String::new(),
                };
                print(&format!("  {}{value}", key_text(enc, &e.key)))?;
            }
        }
    }
    match &file.filter {
        Some(f) if f.damage.is_some() => Err(Fail::Other(format!(
            "the filter of {:06}.sst at offset {} is damaged ({}): readers ignore it",
            file.number,
            f.region.offset,
            f.damage.as_deref().unwrap_or_default()
        ))),
        _ => Ok(()),
    }
}

fn sst_text(f: &SstFile, enc: Encoding) -> String {
    let p = &f.properties;
    let mut t = Table::default();
    t.section(&format!(
        "table {:06}.sst (format {}, {})",
        f.number,
        f.footer.format_version,
        bytes(f.file_size)
    ));
    t.row("entries", p.entries);
    t.row("data blocks", p.data_blocks);
    t.row("sequences", format!("{}..={}", p.min_seq, p.max_seq));
    let bound = |k: &Option<InternalKey>| k.as_ref().map_or("-".to_string(), |k| key_text(enc, k));
    t.row("smallest", bound(&p.smallest));
    t.row("largest", bound(&p.largest));
    t.bytes("raw data", p.raw_data_bytes);
    t.bytes("stored data", p.stored_data_bytes);
    t.row("compression option", compression_text(p.compression));
    t.row("block size option", p.block_size);
    t.row("restart interval", p.restart_interval);
    t.section("footer");
    t.row(
        "data",
        format!("offset 0, {} bytes", f.footer.filter.offset),
    );
    t.row("filter", region_text(f.footer.filter));
    t.row("index", region_text(f.footer.index));
    t.row("properties", region_text(f.footer.properties));
    t.section("filter");
    match &f.filter {
        None => t.row("filter", "none"),
        Some(fi) => {
            t.row("bits per key", fi.bits_per_key);
            t.row(
                "hash functions",
                fi.hash_functions.map_or("-".to_string(), |k| k.to_string()),
            );
            t.row(
                "status",
                fi.damage.as_ref().map_or("ok".to_string(), |d| {
                    format!("DAMAGED, ignored by readers: {d}")
                }),
            );
        }
    }
    let mut text = t.render();
    text.push_str(&format!(
        "\nindex and data blocks\n  {:>5}  {:>10}  {:>8}  {:>8}  {:<5}  {:>7}  separator",
        "block", "offset", "stored", "raw", "codec", "entries"
    ));
    for (i, (ix, b)) in f.index.iter().zip(&f.data_blocks).enumerate() {
        text.push_str(&format!(
            "\n  {i:>5}  {:>10}  {:>8}  {:>8}  {:<5}  {:>7}  {}",
            b.region.offset,
            b.region.size,
            b.raw_size,
            match b.compression {
                inspect::BlockCompression::Zstd => "zstd",
                _ => "raw",
            },
            b.entries,
            key_text(enc, &ix.separator)
        ));
    }
    text
}

fn sst_json(f: &SstFile, enc: Encoding, entries: bool) -> Result<Value, Fail> {
    let p = &f.properties;
    let region = |r: inspect::BlockRegion| json!({ "offset": r.offset, "size": r.size });
    let entries = if entries {
        let mut list = Vec::new();
        for e in f.entries() {
            let e = e?;
            let mut v = key_json(enc, &e.key);
            v["value_len"] = json!(e.value_len);
            list.push(v);
        }
        Some(list)
    } else {
        None
    };
    Ok(json!({
        "number": f.number,
        "file_size": f.file_size,
        "format_version": f.footer.format_version,
        "footer": {
            "index": region(f.footer.index),
            "properties": region(f.footer.properties),
            "filter": region(f.footer.filter),
        },
        "properties": {
            "entries": p.entries, "data_blocks": p.data_blocks, "min_seq": p.min_seq, "max_seq": p.max_seq,
            "raw_data_bytes": p.raw_data_bytes, "stored_data_bytes": p.stored_data_bytes,
            "compression": compression_text(p.compression), "block_size": p.block_size,
            "restart_interval": p.restart_interval,
            "smallest": p.smallest.as_ref().map(|k| key_json(enc, k)),
            "largest": p.largest.as_ref().map(|k| key_json(enc, k)),
        },
        "filter": f.filter.as_ref().map(|fi| json!({
            "region": region(fi.region), "bits_per_key": fi.bits_per_key,
            "hash_functions": fi.hash_functions, "damage": fi.damage,
        })),
        "blocks": f.index.iter().zip(&f.data_blocks).map(|(ix, b)| json!({
            "offset": b.region.offset, "stored_size": b.region.size, "raw_size": b.raw_size,
            "compression": match b.compression { inspect::BlockCompression::Zstd => "zstd", _ => "raw" },
            "entries": b.entries, "separator": key_json(enc, &ix.separator),
        })).collect::<Vec<_>>(),
        "entries": entries,
    }))
}

fn op_text(enc: Encoding, op: &BatchOp<'_>) -> String {
    match op {
        BatchOp::Put { key, value } => {
            let shown = value.get(..VALUE_SHOWN).unwrap_or(value);
            let cut = if shown.len() < value.len() {
                format!("... ({} B)", value.len())
            } else {
                String::new()
            };
            format!("put {} = {}{cut}", enc.encode(key), enc.encode(shown))
        }
        BatchOp::Delete { key } => format!("delete {}", enc.encode(key)),
        BatchOp::DeleteRange { start, end } => {
            format!("delete range {} .. {}", enc.encode(start), enc.encode(end))
        }
    }
}

fn op_json(enc: Encoding, op: &BatchOp<'_>) -> Value {
    match op {
        BatchOp::Put { key, value } => {
            json!({ "op": "put", "key": enc.encode(key), "value": enc.encode(value) })
        }
        BatchOp::Delete { key } => json!({ "op": "delete", "key": enc.encode(key) }),
        BatchOp::DeleteRange { start, end } => {
            json!({ "op": "delete_range", "start": enc.encode(start), "end": enc.encode(end) })
        }
    }
}

fn end_text(end: &WalEnd) -> String {
    match end {
        WalEnd::Sealed { offset, next } => {
            format!("sealed: the SEAL at offset {offset} names segment {next} as the next")
        }
        WalEnd::Open => {
            "open: ends cleanly after its last record (the live segment, or one a crash left unsealed)"
                .to_string()
        }
        WalEnd::TornTail {
            offset,
            fragment_at,
            dropped_bytes,
            reason,
        } => format!(
            "torn tail: replay stops at offset {offset} and drops {dropped_bytes} bytes as never \
             synced; at offset {fragment_at}: {reason}"
        ),
        WalEnd::Damaged {
            offset,
            fragment_at,
            reason,
        } => format!(
            "DAMAGED: replay refuses the segment at offset {offset} (Corruption); at offset \
             {fragment_at}: {reason}"
        ),
        other => format!("{other:?}"),
    }
}

/// `rumdb inspect wal FILE`.
pub fn wal(path: &Path, enc: Encoding, json: bool) -> Result<(), Fail> {
    let name = path
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    let mut records = Vec::new();
    let mut printed_heading = false;
    let seg = inspect::wal_segment(path, |r: WalRecord| {
        if json {
            records.push(json!({
                "offset": r.offset, "sequence": r.sequence,
                "ops": r.batch.iter().map(|op| op_json(enc, &op)).collect::<Vec<_>>(),
            }));
            return Ok(());
        }
        if !printed_heading {
            printed_heading = true;
            let _ = print("records");
        }
        let mut text = format!(
            "  offset {:<8} sequence {:<8} {} entries",
            r.offset,
            r.sequence,
            r.batch.len()
        );
        for op in r.batch.iter() {
            text.push_str(&format!("\n    {}", op_text(enc, &op)));
        }
        // An output error ends nothing here; the summary's print reports it.
        let _ = print(&text);
        Ok(())
    })?;
    if json {
        let end = match &seg.end {
            WalEnd::Sealed { offset, next } => {
                json!({ "state": "sealed", "offset": offset, "next": next })
            }
            WalEnd::Open => json!({ "state": "open" }),
            WalEnd::TornTail {
                offset,
                fragment_at,
                dropped_bytes,
                reason,
            } => json!({
                "state": "torn_tail", "offset": offset, "fragment_at": fragment_at,
                "dropped_bytes": dropped_bytes, "reason": reason,
            }),
            WalEnd::Damaged {
                offset,
                fragment_at,
                reason,
            } => json!({
                "state": "damaged", "offset": offset, "fragment_at": fragment_at, "reason": reason,
            }),
            other => json!({ "state": format!("{other:?}") }),
        };
        print(
            &json!({
                "file": name, "segment": seg.number, "file_len": seg.file_len,
                "link": seg.link.map(|(prev, prev_len)| json!({ "prev": prev, "prev_len": prev_len })),
                "records": records, "data_end": seg.data_end, "end": end,
            })
            .to_string(),
        )?;
    } else {
        let mut t = Table::default();
        t.section(&format!(
            "WAL segment {name} (segment {}, {})",
            seg.number,
            bytes(seg.file_len)
        ));
        t.row(
            "link",
            match seg.link {
                Some((0, _)) => "none before it (the first segment)".to_string(),
                Some((prev, len)) => format!("follows segment {prev}, whose data is {len} bytes"),
                None => "missing or damaged".to_string(),
            },
        );
        t.row("records", seg.records);
        t.row("data end", seg.data_end);
        t.row("end", end_text(&seg.end));
        t.row(
            "chain checks",
            "need the neighbouring segments: run rumdb verify DIR",
        );
        print(&t.render())?;
    }
    match seg.end {
        WalEnd::TornTail {
            offset,
            dropped_bytes,
            ..
        } => Err(Fail::Other(format!(
            "replay stops at offset {offset} of {name}: a torn tail of {dropped_bytes} bytes"
        ))),
        WalEnd::Damaged { offset, reason, .. } => Err(Fail::Other(format!(
            "corruption in {name} at offset {offset}: {reason}"
        ))),
        _ => Ok(()),
    }
}

fn header_rows(t: &mut Table, h: &BTreeHeader) {
    t.row("checkpoint", h.checkpoint);
    t.row("format version", h.format_version);
    t.row("page size", h.page_size);
    t.row("LSN", h.lsn);
    t.row("root page", h.root);
    t.row("height", format!("{} (levels above the leaves)", h.height));
    t.row("page count", h.page_count);
    t.row("free pages", h.free_pages);
    t.row("free-list head", h.free_list_head);
    t.row("first live WAL segment", h.wal_first);
}

/// The header fields as JSON.
pub fn header_json(h: &BTreeHeader) -> Value {
    json!({
        "slot": h.slot, "checkpoint": h.checkpoint, "format_version": h.format_version,
        "page_size": h.page_size, "lsn": h.lsn, "root": h.root, "height": h.height,
        "page_count": h.page_count, "free_pages": h.free_pages, "free_list_head": h.free_list_head,
        "wal_first": h.wal_first,
    })
}

fn cell_text(enc: Encoding, i: usize, c: &PageCell) -> String {
    let key = if let Some(first) = c.key_overflow {
        format!(
            "{}... ({} B key, the rest from overflow page {first})",
            enc.encode(&c.key),
            c.key_len
        )
    } else {
        enc.encode(&c.key)
    };
    let what = match (c.child, c.value_len, c.value_overflow) {
        (Some(child), _, _) => format!("-> page {child}"),
        (_, Some(len), Some(first)) => {
            format!("= {len} B value in overflow chain from page {first}")
        }
        (_, Some(len), None) => format!("= {len} B value"),
        _ => String::new(),
    };
    format!("  {i:>5}  {key} {what}")
}

/// `rumdb inspect page DIR N`.
pub fn page(dir: &Path, number: u32, enc: Encoding, json: bool) -> Result<(), Fail> {
    let p = inspect::btree_page(dir, number)?;
    if json {
        print(&page_json(&p, enc).to_string())?;
    } else {
        print(&page_text(&p, enc))?;
    }
    match p.problem {
        Some(e) if p.kind == PageKind::Header => Err(Fail::Other(format!(
            "{e} (one invalid header slot is what a crash during a checkpoint leaves; both invalid is \
             damage)"
        ))),
        Some(e) => Err(Fail::Other(format!(
            "{e} (a free page may hold anything: this is damage only if the tree or the free list \
             uses the page)"
        ))),
        None => Ok(()),
    }
}

fn page_text(p: &BTreePage, enc: Encoding) -> String {
    let mut t = Table::default();
    t.section(&format!(
        "page {} of data (offset {}, {} bytes)",
        p.number, p.offset, p.page_size
    ));
    t.row("type", p.kind);
    if let Some(h) = &p.header {
        t.row("slot", h.slot);
        header_rows(&mut t, h);
    }
    if p.kind != PageKind::Header {
        t.row("format", p.format);
        t.row("LSN", p.lsn);
        t.row("checksum", if p.checksum_ok { "ok" } else { "MISMATCH" });
    }
    match p.kind {
        PageKind::Internal => t.row("leftmost child", p.next.unwrap_or(0)),
        PageKind::Overflow | PageKind::FreeList => t.row("next page", p.next.unwrap_or(0)),
        _ => {}
    }
    if matches!(p.kind, PageKind::Leaf | PageKind::Internal) {
        t.row("cells", p.cells.len());
    }
    if let Some(used) = p.used_bytes {
        t.row(
            "used bytes",
            format!(
                "{used} ({:.1}% of the page)",
                used as f64 * 100.0 / f64::from(p.page_size.max(1))
            ),
        );
    }
    if let Some(n) = p.overflow_bytes {
        t.row("data bytes", n);
    }
    if p.kind == PageKind::FreeList {
        t.row("free pages listed", p.free_entries.len());
    }
    if let Some(e) = &p.problem {
        t.row("problem", e);
    }
    let mut text = t.render();
    if !p.cells.is_empty() {
        text.push_str("\ncells");
        for (i, c) in p.cells.iter().enumerate() {
            text.push('\n');
            text.push_str(&cell_text(enc, i, c));
        }
    }
    if !p.free_entries.is_empty() {
        let list: Vec<String> = p.free_entries.iter().map(u32::to_string).collect();
        text.push_str(&format!("\nfree pages\n  {}", list.join(" ")));
    }
    text
}

fn page_json(p: &BTreePage, enc: Encoding) -> Value {
    json!({
        "number": p.number, "offset": p.offset, "page_size": p.page_size, "type": p.kind.to_string(),
        "format": p.format, "lsn": p.lsn, "checksum_ok": p.checksum_ok,
        "header": p.header.as_ref().map(header_json),
        "next": p.next, "used_bytes": p.used_bytes, "overflow_bytes": p.overflow_bytes,
        "cells": p.cells.iter().map(|c| json!({
            "key": enc.encode(&c.key), "key_len": c.key_len, "key_overflow": c.key_overflow,
            "value_len": c.value_len, "value_overflow": c.value_overflow, "child": c.child,
        })).collect::<Vec<_>>(),
        "free_entries": p.free_entries,
        "problem": p.problem.as_ref().map(ToString::to_string),
    })
}

fn table_text(enc: Encoding, t: &inspect::TableSummary) -> String {
    format!(
        "L{} #{} {} {} entries seq {}..={} [{} .. {}]",
        t.level,
        t.number,
        bytes(t.file_size),
        t.entries,
        t.min_seq,
        t.max_seq,
        enc.encode(&t.smallest),
        enc.encode(&t.largest)
    )
}

fn table_json(enc: Encoding, t: &inspect::TableSummary) -> Value {
    json!({
        "level": t.level, "number": t.number, "file_size": t.file_size, "entries": t.entries,
        "min_seq": t.min_seq, "max_seq": t.max_seq,
        "smallest": enc.encode(&t.smallest), "largest": enc.encode(&t.largest),
    })
}

/// `rumdb inspect manifest DIR`.
pub fn manifest(dir: &Path, enc: Encoding, json: bool) -> Result<(), Fail> {
    let m = inspect::manifest(dir)?;
    if json {
        return print(
            &json!({
                "name": m.name, "log_number": m.log_number, "next_file": m.next_file,
                "last_sequence": m.last_sequence, "truncated_at": m.truncated_at,
                "truncated_bytes": m.truncated_bytes,
                "edits": m.edits.iter().map(|e| json!({
                    "offset": e.offset, "log_number": e.log_number, "next_file": e.next_file,
                    "last_sequence": e.last_sequence,
                    "added": e.added.iter().map(|t| table_json(enc, t)).collect::<Vec<_>>(),
                    "deleted": e.deleted.iter().map(|d| json!({ "level": d.level, "number": d.number })).collect::<Vec<_>>(),
                })).collect::<Vec<_>>(),
                "levels": m.levels.iter().map(|l| l.iter().map(|t| table_json(enc, t)).collect::<Vec<_>>()).collect::<Vec<_>>(),
            })
            .to_string(),
        );
    }
    let mut t = Table::default();
    t.section(&format!("manifest {} (named by CURRENT)", m.name));
    t.row("first live WAL segment", m.log_number);
    t.row("next file number", m.next_file);
    t.row("last sequence", m.last_sequence);
    t.row("edits", m.edits.len());
    t.row(
        "torn last edit",
        m.truncated_at.map_or("none".to_string(), |at| {
            format!("{} bytes from offset {at}, dropped", m.truncated_bytes)
        }),
    );
    let mut text = t.render();
    text.push_str("\nedits");
    for e in &m.edits {
        let mut counters = Vec::new();
        for (label, v) in [
            ("log", e.log_number),
            ("next file", e.next_file),
            ("last seq", e.last_sequence),
        ] {
            if let Some(v) = v {
                counters.push(format!("{label} {v}"));
            }
        }
        text.push_str(&format!(
            "\n  offset {:<8} {}",
            e.offset,
            counters.join(", ")
        ));
        for a in &e.added {
            text.push_str(&format!("\n    add    {}", table_text(enc, a)));
        }
        for d in &e.deleted {
            text.push_str(&format!("\n    delete L{} #{}", d.level, d.number));
        }
    }
    text.push_str("\nlive tables");
    for table in m.levels.iter().flatten() {
        text.push_str(&format!("\n  {}", table_text(enc, table)));
    }
    print(&text)
}
