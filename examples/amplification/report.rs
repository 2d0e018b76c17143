//! The parent's report: four tables over every engine × workload, then the textbook table with verdicts.

use serde_json::Value;

use super::cli::WORKLOADS;

/// A number at `path` (slash-separated) in a result line.
pub fn num(v: &Value, path: &str) -> Option<f64> {
    path.split('/')
        .try_fold(v, |v, k| v.get(k))
        .and_then(Value::as_f64)
}

fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("?")
}

pub fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    }
}

pub fn ops_per_sec(r: &Value) -> Option<f64> {
    ratio(num(r, "ops"), num(r, "secs"))
}

pub fn wa_logical(r: &Value) -> Option<f64> {
    ratio(num(r, "written_total"), num(r, "user_bytes"))
}

pub fn wa_os(r: &Value) -> Option<f64> {
    ratio(num(r, "os/write_bytes"), num(r, "user_bytes"))
}

pub fn space_amp_close(r: &Value) -> Option<f64> {
    ratio(num(r, "dir_bytes_close"), num(r, "live_bytes"))
}

/// Read operations that read amplification is divided by: gets, or scans when a workload made no get.
fn read_ops(r: &Value) -> (f64, &'static str) {
    match num(r, "reads/gets") {
        Some(g) if g > 0.0 => (g, "get"),
        _ => (num(r, "reads/scans").unwrap_or(0.0), "scan"),
    }
}

/// Cache-missing fetches (data + index) per get.
pub fn read_amp(r: &Value) -> Option<f64> {
    let (ops, _) = read_ops(r);
    let f = num(r, "reads/data_fetches")? + num(r, "reads/index_fetches")?;
    (ops > 0.0).then(|| f / ops)
}

fn f(x: Option<f64>, decimals: usize) -> String {
    match x {
        Some(x) => format!("{x:.decimals$}"),
        None => "n/a".into(),
    }
}

fn mb(x: Option<f64>) -> String {
    f(x.map(|b| b / 1e6), 1)
}

fn thousands(x: f64) -> String {
    let s = format!("{:.0}", x);
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Prints a markdown table with aligned columns.
fn table(title: &str, header: &[&str], rows: &[Vec<String>]) {
    println!("\n{title}\n");
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        println!("| {} |", padded.join(" | "));
    };
    line(header.iter().map(|h| h.to_string()).collect());
    line(widths.iter().map(|w| "-".repeat(*w)).collect());
    for row in rows {
        line(row.clone());
    }
}

/// Results in workload order, then engine order.
pub fn ordered<'a>(results: &'a [Value], engines: &[String]) -> Vec<&'a Value> {
    let mut out = Vec::new();
    for w in WORKLOADS {
        for e in engines {
            out.extend(
                results
                    .iter()
                    .filter(|r| text(r, "workload") == w && text(r, "engine") == e),
            );
        }
    }
    out
}

/// Workloads that write nothing: durability and fsync columns do not apply to them.
const READ_ONLY: [&str; 3] = ["readrandom", "readmissing", "scan"];

fn read_only(r: &Value) -> bool {
    READ_ONLY.contains(&text(r, "workload"))
}

pub fn print_tables(results: &[&Value]) {
    let rows: Vec<Vec<String>> = results
        .iter()
        .map(|r| {
            vec![
                text(r, "workload").into(),
                text(r, "engine").into(),
                thousands(num(r, "ops").unwrap_or(0.0)),
                thousands(ops_per_sec(r).unwrap_or(0.0)),
                f(num(r, "p50_us"), 1),
                f(num(r, "p99_us"), 1),
                f(num(r, "p999_us"), 1),
                f(num(r, "max_us"), 1),
                text(r, "latency_unit").into(),
                if read_only(r) {
                    "-".into()
                } else {
                    text(r, "durability").into()
                },
                f(num(r, "settle_secs"), 2),
            ]
        })
        .collect();
    table(
        "Throughput and latency (ops/s over the workload's loop; settle = wait_idle afterwards, not included; \
         durability: of the workload's writes, '-' for read-only workloads)",
        &[
            "workload",
            "engine",
            "ops",
            "ops/s",
            "p50 µs",
            "p99 µs",
            "p99.9 µs",
            "max µs",
            "latency per",
            "durability",
            "settle s",
        ],
        &rows,
    );

    let rows: Vec<Vec<String>> = results
        .iter()
        .map(|r| {
            let user = num(r, "user_bytes").unwrap_or(0.0);
            let purposes: Vec<String> = r
                .get("written")
                .and_then(Value::as_object)
                .map(|m| {
                    m.iter()
                        .filter_map(|(k, v)| {
                            let b = v.as_f64()?;
                            (b > 0.0 && user > 0.0).then(|| format!("{k} {:.2}", b / user))
                        })
                        .collect()
                })
                .unwrap_or_default();
            vec![
                text(r, "workload").into(),
                text(r, "engine").into(),
                mb(Some(user)),
                f(wa_logical(r), 2),
                if purposes.is_empty() {
                    "-".into()
                } else {
                    purposes.join(", ")
                },
                f(wa_os(r), 2),
                if read_only(r) {
                    "-".into()
                } else {
                    f(num(r, "fsyncs"), 0)
                },
                mb(num(r, "carried_over_bytes")),
            ]
        })
        .collect();
    table(
        "Write amplification (bytes written ÷ user bytes, over the workload + settle + close; wa_os from \
         /proc/self/io write_bytes). Background work an earlier workload left is drained before each \
         workload starts and shown apart as 'carried over MB', never in the workload's own ratios",
        &[
            "workload",
            "engine",
            "user MB",
            "wa_logical",
            "by purpose",
            "wa_os",
            "fsyncs",
            "carried over MB",
        ],
        &rows,
    );

    let rows: Vec<Vec<String>> = results
        .iter()
        .filter(|r| read_ops(r).0 > 0.0)
        .map(|r| {
            let (ops, per) = read_ops(r);
            let per_op = |k: &str| f(num(r, k).map(|x| x / ops), 2);
            let storage_bytes = num(r, "reads/get_bytes").unwrap_or(0.0)
                + num(r, "reads/scan_bytes").unwrap_or(0.0);
            vec![
                text(r, "workload").into(),
                text(r, "engine").into(),
                per.into(),
                f(read_amp(r), 2),
                per_op("reads/data_fetches"),
                per_op("reads/index_fetches"),
                per_op("reads/data_touches"),
                per_op("reads/index_touches"),
                per_op("reads/cache_hits"),
                format!(
                    "{}/{}",
                    f(num(r, "reads/bloom_negatives"), 0),
                    f(num(r, "reads/bloom_probes"), 0)
                ),
                f(Some(storage_bytes / ops), 0),
                f(ratio(num(r, "os/read_bytes"), Some(ops)), 0),
            ]
        })
        .collect();
    table(
        "Read amplification (blocks or pages per read op from Stats::reads: fetched = cache misses, touched = cache hits included; \
         the engines count these for gets only, so scans show storage bytes read instead)",
        &[
            "workload",
            "engine",
            "per",
            "fetches",
            "data fetched",
            "index fetched",
            "data touched",
            "index touched",
            "cache hits",
            "bloom neg/probes",
            "storage B read/op",
            "OS read B/op",
        ],
        &rows,
    );
    let device_reads: f64 = results
        .iter()
        .filter(|r| read_ops(r).0 > 0.0)
        .filter_map(|r| num(r, "os/read_bytes"))
        .sum();
    println!(
        "{}\n",
        if device_reads == 0.0 {
            "Every read above came from the OS page cache: the device read 0 bytes (OS read B/op = 0). \
             Cold reads need the page cache dropped first, which needs root; the peers harness's --cold does."
        } else {
            "OS read B/op > 0: some reads went to the device (the page cache did not hold all the data)."
        }
    );

    let rows: Vec<Vec<String>> = results
        .iter()
        .map(|r| {
            vec![
                text(r, "workload").into(),
                text(r, "engine").into(),
                mb(num(r, "live_bytes")),
                mb(num(r, "dir_bytes_settle")),
                f(ratio(num(r, "dir_bytes_settle"), num(r, "live_bytes")), 2),
                mb(num(r, "dir_bytes_close")),
                f(space_amp_close(r), 2),
                f(num(r, "engine_memory").map(|b| b / 1048576.0), 1),
                f(num(r, "peak_anon").map(|b| b / 1048576.0), 1),
                f(num(r, "peak_file").map(|b| b / 1048576.0), 1),
                f(num(r, "peak_rss").map(|b| b / 1048576.0), 1),
            ]
        })
        .collect();
    table(
        "Space amplification (allocated bytes of the files ÷ live key+value bytes) and memory (engine: Stats::memory; \
         peak anon / file: anonymous and file-backed resident memory sampled every 20 ms — file-backed counts \
         pages of memory-mapped tables; peak RSS: VmHWM, both together)",
        &[
            "workload",
            "engine",
            "live MB",
            "files MB settled",
            "space amp settled",
            "files MB closed",
            "space amp closed",
            "engine MiB",
            "peak anon MiB",
            "peak file MiB",
            "peak RSS MiB",
        ],
        &rows,
    );
}

/// One row of the textbook table.
struct Property {
    name: &'static str,
    btree_says: &'static str,
    lsm_says: &'static str,
    /// Which engine the textbook says wins.
    favoured: &'static str,
    higher_is_better: bool,
    measure: &'static str,
    btree: Option<f64>,
    lsm: Option<f64>,
}

pub fn find<'a>(results: &[&'a Value], engine: &str, workload: &str) -> Option<&'a Value> {
    results
        .iter()
        .copied()
        .find(|r| text(r, "engine") == engine && text(r, "workload") == workload)
}

/// Write amplification over fillrandom + overwrite together.
pub fn load_wa(results: &[&Value], engine: &str) -> Option<f64> {
    let parts: Vec<&Value> = ["fillrandom", "overwrite"]
        .iter()
        .filter_map(|w| find(results, engine, w))
        .collect();
    let sum = |k: &str| parts.iter().filter_map(|r| num(r, k)).sum::<f64>();
    (parts.len() == 2).then(|| sum("written_total") / sum("user_bytes"))
}

pub fn load_sa(results: &[&Value], engine: &str) -> Option<f64> {
    space_amp_close(find(results, engine, "overwrite")?)
}

/// Who wins a row and by how much, in words: "LSM 14.6x less", "B-tree 1.7x faster".
fn advantage(p: &Property) -> String {
    let (Some(b), Some(l)) = (p.btree, p.lsm) else {
        return "n/a".into();
    };
    if b <= 0.0 || l <= 0.0 {
        return "n/a".into();
    }
    let btree_wins = if p.higher_is_better { b >= l } else { b <= l };
    let (winner, times) = if btree_wins {
        ("B-tree", if p.higher_is_better { b / l } else { l / b })
    } else {
        ("LSM", if p.higher_is_better { l / b } else { b / l })
    };
    let word = if p.higher_is_better { "faster" } else { "less" };
    format!("{winner} {times:.2}x {word}")
}

/// "confirmed" when the textbook's side wins by at least 10%, "contradicted" when the other side does,
/// "no difference" in between.
fn verdict(p: &Property) -> String {
    let (fav, other) = if p.favoured == "btree" {
        (p.btree, p.lsm)
    } else {
        (p.lsm, p.btree)
    };
    // > 1: the textbook's side wins.
    let adv = if p.higher_is_better {
        ratio(fav, other)
    } else {
        ratio(other, fav)
    };
    match adv {
        None => "n/a (workload not run)",
        Some(a) if a >= 1.1 => "confirmed",
        Some(a) if a <= 1.0 / 1.1 => "contradicted",
        Some(_) => "no difference",
    }
    .into()
}

pub fn print_textbook(results: &[&Value]) -> Vec<(String, String)> {
    let get = |e: &str, w: &str, m: fn(&Value) -> Option<f64>| find(results, e, w).and_then(m);
    let props = [
        Property {
            name: "write throughput",
            btree_says: "moderate",
            lsm_says: "excellent",
            favoured: "lsm",
            higher_is_better: true,
            measure: "fillrandom ops/s",
            btree: get("btree", "fillrandom", ops_per_sec),
            lsm: get("lsm", "fillrandom", ops_per_sec),
        },
        Property {
            name: "read throughput",
            btree_says: "excellent",
            lsm_says: "good",
            favoured: "btree",
            higher_is_better: true,
            measure: "readrandom ops/s",
            btree: get("btree", "readrandom", ops_per_sec),
            lsm: get("lsm", "readrandom", ops_per_sec),
        },
        Property {
            name: "space amplification",
            btree_says: "low",
            lsm_says: "medium-high",
            favoured: "btree",
            higher_is_better: false,
            measure: "files ÷ live bytes after close, after fillrandom + overwrite",
            btree: load_sa(results, "btree"),
            lsm: load_sa(results, "lsm"),
        },
        Property {
            name: "write amplification",
            btree_says: "medium",
            lsm_says: "high",
            favoured: "btree",
            higher_is_better: false,
            measure: "wa_logical over fillrandom + overwrite",
            btree: load_wa(results, "btree"),
            lsm: load_wa(results, "lsm"),
        },
    ];
    let fmt = |x: Option<f64>, tput: bool| {
        if tput {
            x.map(thousands).unwrap_or_else(|| "n/a".into())
        } else {
            f(x, 2)
        }
    };
    let mut verdicts = Vec::new();
    let rows: Vec<Vec<String>> = props
        .iter()
        .map(|p| {
            let v = verdict(p);
            verdicts.push((p.name.to_string(), v.clone()));
            vec![
                p.name.into(),
                format!("{} → {}", p.btree_says, fmt(p.btree, p.higher_is_better)),
                format!("{} → {}", p.lsm_says, fmt(p.lsm, p.higher_is_better)),
                p.measure.into(),
                advantage(p),
                v,
            ]
        })
        .collect();
    table(
        "The textbook table, measured (the verdict confirms the textbook when its side wins by ≥ 10%, \
         contradicts it when the other side does)",
        &[
            "property",
            "B-tree: textbook → measured",
            "LSM-tree: textbook → measured",
            "measured as",
            "advantage",
            "verdict",
        ],
        &rows,
    );
    verdicts
}
