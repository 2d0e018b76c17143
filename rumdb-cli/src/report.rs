//! `stats`, `info` and `verify`, aligned text or JSON, and the progress indicators.

use std::path::Path;
use std::time::Duration;

use indicatif::{HumanBytes, ProgressBar, ProgressDrawTarget, ProgressStyle};
use rumdb::Stats;
use serde_json::{Value, json};

use crate::codec::escape;
use crate::db::{Db, Fail, kind_name, print};

/// A spinner on stderr, drawn only when stderr is a terminal.
pub fn spinner(message: String) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} ({elapsed})") {
        bar.set_style(style);
    }
    bar.set_message(message);
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

/// Rows of `label  value`, printed with the values aligned; section titles stand alone.
#[derive(Default)]
pub struct Table {
    rows: Vec<(String, String)>,
}

impl Table {
    /// A title line.
    pub fn section(&mut self, title: &str) {
        self.rows.push((String::new(), title.to_string()));
    }

    /// A `label  value` line.
    pub fn row(&mut self, label: &str, value: impl ToString) {
        self.rows.push((label.to_string(), value.to_string()));
    }

    /// A row whose value is a byte count.
    pub fn bytes(&mut self, label: &str, n: u64) {
        self.row(label, bytes(n));
    }

    /// The lines, values aligned.
    pub fn render(&self) -> String {
        let width = self
            .rows
            .iter()
            .map(|(l, _)| l.chars().count())
            .max()
            .unwrap_or(0);
        let lines: Vec<String> = self
            .rows
            .iter()
            .map(|(label, value)| {
                if label.is_empty() {
                    value.clone()
                } else {
                    format!("  {label:<width$}  {value}")
                }
            })
            .collect();
        lines.join("\n")
    }
}

/// A byte count: exact, with a human-readable size from 1 KiB on.
pub fn bytes(n: u64) -> String {
    if n < 1024 {
        format!("{n} B")
    } else {
        format!("{n} ({})", HumanBytes(n))
    }
}

fn stats_json(s: &Stats) -> Value {
    let w = &s.io.written;
    let r = &s.io.read;
    let m = &s.memory;
    let rc = &s.reads;
    json!({
        "engine": kind_name(s.kind),
        "user_bytes": s.user_bytes,
        "batches": s.batches,
        "write_amplification": s.write_amplification(),
        "io": {
            "written": {
                "wal": w.wal, "memtable_flush": w.memtable_flush, "compaction": w.compaction,
                "manifest": w.manifest, "page_writeback": w.page_writeback, "page_eviction": w.page_eviction,
                "header": w.header, "total": w.total(),
            },
            "read": {
                "get": r.get, "scan": r.scan, "compaction": r.compaction, "recovery": r.recovery,
                "verify": r.verify,
            },
            "fsyncs": s.io.fsyncs,
            "dir_syncs": s.io.dir_syncs,
        },
        "reads": {
            "gets": rc.gets, "data_fetches": rc.data_fetches, "index_fetches": rc.index_fetches,
            "data_touches": rc.data_touches, "index_touches": rc.index_touches,
            "cache_hits": rc.cache_hits, "bloom_probes": rc.bloom_probes,
            "bloom_negatives": rc.bloom_negatives,
        },
        "memory": {
            "memtables": m.memtables, "block_cache": m.block_cache, "filters": m.filters,
            "indexes": m.indexes, "buffer_pool": m.buffer_pool,
            "snapshot_overlay": m.snapshot_overlay, "total": m.total(),
        },
        "l0_files": s.l0_files,
        "pending_compaction_bytes": s.pending_compaction_bytes,
        "stalls": s.stalls,
        "stall_micros": s.stall_micros,
        "dirty_pages": s.dirty_pages,
        "checkpoints": s.checkpoints,
        "compactions": s.compactions,
        "recovery": recovery_json(&s.recovery),
    })
}

fn recovery_json(r: &rumdb::RecoveryReport) -> Value {
    json!({
        "segments_replayed": r.segments_replayed,
        "records_replayed": r.records_replayed,
        "truncated_bytes": r.truncated_bytes,
        "truncated_at": r.truncated_at.as_ref().map(|(f, o)| json!({ "file": f, "offset": o })),
        "orphans_removed": r.orphans_removed,
    })
}

fn recovery_rows(t: &mut Table, r: &rumdb::RecoveryReport) {
    t.row("WAL segments replayed", r.segments_replayed);
    t.row("WAL records replayed", r.records_replayed);
    t.bytes("torn tail truncated", r.truncated_bytes);
    if let Some((file, offset)) = &r.truncated_at {
        t.row("truncated at", format!("{file} offset {offset}"));
    }
    t.row("orphans removed", r.orphans_removed);
}

/// `rumdb stats DIR`.
pub fn stats(dir: &Path, json: bool) -> Result<(), Fail> {
    let db = Db::open_read_only(dir)?;
    let s = db.engine().stats();
    db.close()?;
    if json {
        return print(&stats_json(&s).to_string());
    }
    let mut t = Table::default();
    t.section(&format!("engine: {} (opened read-only)", kind_name(s.kind)));
    t.bytes("user bytes", s.user_bytes);
    t.row("batches", s.batches);
    t.row(
        "write amplification",
        s.write_amplification()
            .map_or("-".to_string(), |a| format!("{a:.2}")),
    );
    let w = &s.io.written;
    t.section("bytes written");
    t.bytes("wal", w.wal);
    t.bytes("memtable flush", w.memtable_flush);
    t.bytes("compaction", w.compaction);
    t.bytes("manifest", w.manifest);
    t.bytes("page writeback", w.page_writeback);
    t.bytes("page eviction", w.page_eviction);
    t.bytes("header", w.header);
    t.bytes("total", w.total());
    let r = &s.io.read;
    t.section("bytes read");
    t.bytes("get", r.get);
    t.bytes("scan", r.scan);
    t.bytes("compaction", r.compaction);
    t.bytes("recovery", r.recovery);
    t.bytes("verify", r.verify);
    t.section("syncs");
    t.row("fsyncs", s.io.fsyncs);
    t.row("directory syncs", s.io.dir_syncs);
    let m = &s.memory;
    t.section("memory");
    t.bytes("memtables", m.memtables);
    t.bytes("block cache", m.block_cache);
    t.bytes("filters", m.filters);
    t.bytes("indexes", m.indexes);
    t.bytes("buffer pool", m.buffer_pool);
    t.bytes("snapshot overlay", m.snapshot_overlay);
    t.bytes("total", m.total());
    t.section("background");
    t.row("L0 files", s.l0_files);
    t.bytes("pending compaction", s.pending_compaction_bytes);
    t.row("stalls", s.stalls);
    t.row("stall time (us)", s.stall_micros);
    t.row("dirty pages", s.dirty_pages);
    t.row("checkpoints", s.checkpoints);
    t.row("compactions", s.compactions);
    t.section("recovery (this read-only open)");
    recovery_rows(&mut t, &s.recovery);
    print(&t.render())
}

/// Every file in `dir` with its size, by name.
fn list_files(dir: &Path) -> Result<Vec<(String, u64)>, Fail> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let name = if meta.is_dir() {
            format!("{name}/")
        } else {
            name
        };
        files.push((name, meta.len()));
    }
    files.sort();
    Ok(files)
}

fn is_wal_segment(name: &str) -> bool {
    name.strip_suffix(".log")
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// What `info` shows of the data structure: the LSM's levels, or the B-tree's tree.
enum Shape {
    Lsm(Vec<rumdb::LevelStats>, rumdb::inspect::Manifest),
    BTree(rumdb::inspect::BTreeSummary),
}

/// The smallest and largest user key of the tables of one level (byte order), if it has any.
fn key_range(tables: &[rumdb::inspect::TableSummary]) -> Option<(&[u8], &[u8])> {
    let smallest = tables.iter().map(|t| t.smallest.as_slice()).min()?;
    let largest = tables.iter().map(|t| t.largest.as_slice()).max()?;
    Some((smallest, largest))
}

fn shape_json(shape: &Shape) -> (Value, Value) {
    match shape {
        Shape::Lsm(levels, manifest) => {
            let levels = levels
                .iter()
                .enumerate()
                .map(|(i, l)| {
                    let range = manifest.levels.get(i).and_then(|t| key_range(t));
                    json!({
                        "level": i, "files": l.files, "bytes": l.bytes, "target_bytes": l.target_bytes,
                        "compactions": l.compactions, "moves": l.moves,
                        "smallest": range.map(|(s, _)| escape(s)),
                        "largest": range.map(|(_, l)| escape(l)),
                    })
                })
                .collect::<Vec<_>>();
            (json!(levels), Value::Null)
        }
        Shape::BTree(s) => (
            Value::Null,
            json!({
                "header": crate::inspect::header_json(&s.header),
                "levels": s.levels, "leaf_pages": s.leaf_pages, "internal_pages": s.internal_pages,
                "overflow_pages": s.overflow_pages, "free_list_pages": s.free_list_pages,
                "free_pages": s.free_pages, "other_pages": s.other_pages, "entries": s.entries,
                "used_bytes": s.used_bytes, "fill_factor": s.fill_factor,
                "other_slot_problem": s.other_slot_problem,
            }),
        ),
    }
}

fn shape_text(shape: &Shape) -> String {
    match shape {
        Shape::Lsm(levels, manifest) => {
            let mut text = format!(
                "levels\n  {:<5}  {:>6}  {:>14}  {:>14}  {:>11}  {:>5}  key range",
                "level", "files", "bytes", "target", "compactions", "moves"
            );
            for (i, l) in levels.iter().enumerate() {
                let range = manifest
                    .levels
                    .get(i)
                    .and_then(|t| key_range(t))
                    .map_or("-".to_string(), |(s, l)| {
                        format!("{} .. {}", escape(s), escape(l))
                    });
                text.push_str(&format!(
                    "\n  L{:<4}  {:>6}  {:>14}  {:>14}  {:>11}  {:>5}  {range}",
                    i,
                    l.files,
                    l.bytes,
                    if i == 0 {
                        "-".to_string()
                    } else {
                        l.target_bytes.to_string()
                    },
                    l.compactions,
                    l.moves
                ));
            }
            text
        }
        Shape::BTree(s) => {
            let mut t = Table::default();
            t.section(&format!(
                "tree (as of checkpoint {}, LSN {}; the WAL holds what came after)",
                s.header.checkpoint, s.header.lsn
            ));
            t.row(
                "height",
                format!(
                    "{} level{}, root page {}",
                    s.levels,
                    if s.levels == 1 { "" } else { "s" },
                    s.header.root
                ),
            );
            t.row("entries", s.entries);
            t.row("leaf pages", s.leaf_pages);
            t.row("internal pages", s.internal_pages);
            t.row("overflow pages", s.overflow_pages);
            t.row("free-list pages", s.free_list_pages);
            t.row("free pages", s.free_pages);
            t.row("other pages", s.other_pages);
            t.row("pages in the file", s.header.page_count);
            t.row(
                "fill factor",
                format!(
                    "{:.1}% of the leaf and internal pages' bytes",
                    s.fill_factor * 100.0
                ),
            );
            if let Some(why) = &s.other_slot_problem {
                t.row("other header slot", why);
            }
            t.render()
        }
    }
}

/// `rumdb info DIR`.
pub fn info(dir: &Path, json: bool) -> Result<(), Fail> {
    let db = Db::open_read_only(dir)?;
    let engine = db.engine();
    let kind = kind_name(engine.kind());
    let approximate_len = engine.approximate_len()?;
    let recovery = engine.stats().recovery;
    let levels = match &db {
        Db::Lsm(lsm) => Some(lsm.level_stats()),
        Db::BTree(_) => None,
    };
    db.close()?;
    let shape = match levels {
        Some(levels) => Shape::Lsm(levels, rumdb::inspect::manifest(dir)?),
        None => {
            let spin = spinner(format!("walking the tree of {}", dir.display()));
            let summary = rumdb::inspect::btree_summary(dir);
            spin.finish_and_clear();
            Shape::BTree(summary?)
        }
    };
    let ident = rumdb::inspect::identity(dir)?;
    let files = list_files(dir)?;
    let total: u64 = files.iter().map(|(_, n)| n).sum();
    let wal: Vec<&(String, u64)> = files.iter().filter(|(n, _)| is_wal_segment(n)).collect();
    let wal_bytes: u64 = wal.iter().map(|(_, n)| n).sum();
    if json {
        let (levels, tree) = shape_json(&shape);
        let v = json!({
            "engine": kind,
            "format_version": ident.format_version,
            "page_size": (ident.page_size > 0).then_some(ident.page_size),
            "approximate_len": approximate_len,
            "space_used": total,
            "files": files.iter().map(|(n, b)| json!({ "name": n, "bytes": b })).collect::<Vec<_>>(),
            "wal_segments": wal.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
            "wal_bytes": wal_bytes,
            "recovery": recovery_json(&recovery),
            "levels": levels,
            "tree": tree,
        });
        return print(&v.to_string());
    }
    let mut t = Table::default();
    t.section(&format!("database {}", dir.display()));
    t.row("engine", &kind);
    t.row("format version", ident.format_version);
    t.row(
        "page size",
        if ident.page_size > 0 {
            ident.page_size.to_string()
        } else {
            "- (no pages)".to_string()
        },
    );
    t.row("entries (estimate)", approximate_len);
    t.bytes("space used", total);
    t.row(
        "WAL segments",
        format!(
            "{} ({})",
            wal.len(),
            if wal_bytes < 1024 {
                format!("{wal_bytes} B")
            } else {
                HumanBytes(wal_bytes).to_string()
            }
        ),
    );
    t.section("files");
    for (name, size) in &files {
        t.bytes(name, *size);
    }
    t.section("recovery (what an open replays now)");
    recovery_rows(&mut t, &recovery);
    print(&format!("{}\n{}", t.render(), shape_text(&shape)))
}

/// `rumdb verify DIR`.
pub fn verify(dir: &Path, json: bool) -> Result<(), Fail> {
    let spin = spinner(format!("verifying {}", dir.display()));
    let result = Db::open_read_only(dir).and_then(|db| {
        let kind = kind_name(db.engine().kind());
        let report = db.engine().verify();
        let closed = db.close();
        let report = report?;
        closed.map(|()| (report, kind))
    });
    spin.finish_and_clear();
    match result {
        Ok((r, kind)) => {
            if json {
                print(
                    &json!({
                        "ok": true, "engine": kind, "files": r.files, "blocks": r.blocks,
                        "entries": r.entries, "bytes": r.bytes,
                    })
                    .to_string(),
                )
            } else {
                print(&format!(
                    "ok: {} files, {} blocks or pages, {} entries, {} checked",
                    r.files,
                    r.blocks,
                    r.entries,
                    bytes(r.bytes)
                ))
            }
        }
        Err(fail) => {
            if json {
                print(&json!({ "ok": false, "error": fail.to_string() }).to_string())?;
            }
            Err(fail)
        }
    }
}
