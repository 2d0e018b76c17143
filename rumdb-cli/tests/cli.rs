//! The `rumdb` binary run as a user runs it: every subcommand on both engines, dump/load round trips,
//! damaged and foreign directories, and read-only commands that must leave a directory untouched.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const ENGINES: [&str; 2] = ["lsm", "btree"];

fn rumdb(args: &[&str]) -> Output {
    rumdb_stdin(args, None)
}

fn rumdb_stdin(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_rumdb"))
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().unwrap();
        // A command that fails early closes its stdin: a broken pipe here is part of the test.
        let _ = pipe.write_all(input);
    }
    child.wait_with_output().unwrap()
}

/// Runs and expects success; returns stdout.
fn ok(args: &[&str]) -> String {
    let out = rumdb(args);
    assert!(
        out.status.success(),
        "rumdb {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Runs and expects failure with `code`; returns stderr.
fn fails(args: &[&str], code: i32) -> String {
    let out = rumdb(args);
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(code), "rumdb {args:?}: {err}");
    assert!(err.starts_with("rumdb: ") || code == 2, "{err}");
    assert!(!err.contains("panicked"), "{err}");
    err
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn b64(bytes: &[u8]) -> String {
    let mut out = String::new();
    for c in bytes.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                out.push(B64[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn unb64(s: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let s = s.trim_end_matches('=').as_bytes();
    for c in s.chunks(4) {
        let mut n = 0u32;
        for (i, ch) in c.iter().enumerate() {
            n |= (B64.iter().position(|x| x == ch).unwrap() as u32) << (18 - 6 * i);
        }
        out.extend(&n.to_be_bytes()[1..c.len()]);
    }
    out
}

fn dump_text(entries: &BTreeMap<Vec<u8>, Vec<u8>>) -> String {
    let mut s = String::from("rumdb-dump 1\n");
    for (k, v) in entries {
        s.push_str(&format!("{}\t{}\n", b64(k), b64(v)));
    }
    s.push_str(&format!("end {}\n", entries.len()));
    s
}

fn parse_dump(text: &str) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("rumdb-dump 1"));
    let mut map = BTreeMap::new();
    for line in lines {
        if let Some(n) = line.strip_prefix("end ") {
            assert_eq!(n.parse::<usize>().unwrap(), map.len());
            return map;
        }
        let (k, v) = line.split_once('\t').unwrap();
        map.insert(unb64(k), unb64(v));
    }
    panic!("no end line");
}

/// Binary keys and values, an empty value, a 70 KB value and enough entries for several batches.
fn sample() -> BTreeMap<Vec<u8>, Vec<u8>> {
    let mut m = BTreeMap::new();
    m.insert(b"".to_vec(), b"empty key".to_vec());
    m.insert(b"empty value".to_vec(), Vec::new());
    m.insert(vec![0, 0xff, 0x0a, 0x09], vec![0xff, 0xfe, 0, b'\n', b'\t']);
    m.insert(
        b"big".to_vec(),
        (0..70_000u32).map(|i| (i * 7 % 251) as u8).collect(),
    );
    m.insert("ключ".as_bytes().to_vec(), "значение".as_bytes().to_vec());
    for i in 0..2500u32 {
        m.insert(
            format!("key{i:06}").into_bytes(),
            format!("value {i} {}", "x".repeat((i % 40) as usize)).into_bytes(),
        );
    }
    m
}

fn load(dir: &Path, extra: &[&str], dump: &str) -> Output {
    let mut args = vec!["load", p(dir)];
    args.extend_from_slice(extra);
    rumdb_stdin(&args, Some(dump.as_bytes()))
}

fn load_ok(dir: &Path, extra: &[&str], dump: &str) {
    let out = load(dir, extra, dump);
    assert!(
        out.status.success(),
        "load failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn every_subcommand_on_both_engines() {
    for engine in ENGINES {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("db");
        let d = p(&dir);
        // A missing database is not created without --engine.
        let err = fails(&["put", d, "a", "1"], 1);
        assert!(err.contains("--engine"), "{err}");
        ok(&["put", "--engine", engine, d, "user:1", "alice"]);
        ok(&["put", d, "user:2", "bob"]);
        ok(&["put", d, "user:3", "carol"]);
        ok(&["put", d, "video:1", "cats"]);
        ok(&["put", "--hex", d, "00ff", "0a"]);
        ok(&["put", "--base64", d, "AQI=", ""]);
        assert_eq!(ok(&["get", d, "user:2"]), "bob\n");
        assert_eq!(ok(&["get", "--hex", d, "00ff"]), "0a\n");
        assert_eq!(ok(&["get", "--base64", d, "AQI="]), "\n");
        let err = fails(&["get", d, "user:9"], 1);
        assert!(err.contains("not found") && err.contains(d), "{err}");
        let j: serde_json::Value =
            serde_json::from_str(&ok(&["get", "--json", d, "user:1"])).unwrap();
        assert_eq!(j["value"], "alice");

        assert_eq!(
            ok(&["scan", d]),
            "\\u{0}\\xff\t\\n\n\\u{1}\\u{2}\t\nuser:1\talice\nuser:2\tbob\nuser:3\tcarol\nvideo:1\tcats\n"
        );
        assert_eq!(
            ok(&["scan", d, "--prefix", "user:", "--keys-only"]),
            "user:1\nuser:2\nuser:3\n"
        );
        assert_eq!(
            ok(&["scan", d, "--from", "user:2", "--to", "video:1"]),
            "user:2\tbob\nuser:3\tcarol\n"
        );
        assert_eq!(
            ok(&["scan", d, "--prefix", "user:", "--reverse", "--limit", "2"]),
            "user:3\tcarol\nuser:2\tbob\n"
        );
        assert_eq!(ok(&["scan", d, "--hex", "--prefix", "00"]), "00ff\t0a\n");
        let line = ok(&["scan", d, "--json", "--prefix", "video"]);
        let j: serde_json::Value = serde_json::from_str(line.trim()).unwrap();
        assert_eq!(
            (j["key"].as_str(), j["value"].as_str()),
            (Some("video:1"), Some("cats"))
        );

        ok(&["delete", d, "user:2"]);
        fails(&["get", d, "user:2"], 1);
        ok(&["delete", d, "never-there"]);

        let stats = ok(&["stats", d]);
        assert!(stats.contains(&format!("engine: {engine}")), "{stats}");
        assert!(
            stats.contains("fsyncs") && stats.contains("recovery"),
            "{stats}"
        );
        let j: serde_json::Value = serde_json::from_str(&ok(&["stats", "--json", d])).unwrap();
        assert_eq!(j["engine"], engine);
        assert!(j["io"]["written"]["total"].is_u64());

        let info = ok(&["info", d]);
        assert!(
            info.contains("IDENTITY") && info.contains("WAL segments"),
            "{info}"
        );
        let j: serde_json::Value = serde_json::from_str(&ok(&["info", "--json", d])).unwrap();
        assert_eq!(j["engine"], engine);
        assert!(j["approximate_len"].as_u64().unwrap() >= 5);
        assert_eq!(j["levels"].is_array(), engine == "lsm");
        assert_eq!(j["page_size"].is_u64(), engine == "btree");
        assert!(j["format_version"].is_u64());

        ok(&["flush", d]);
        // The B-tree has nothing to compact: today's library returns Ok, a later one may return an
        // "unsupported" error, which the tool prints and exits 1 on.
        let compact = rumdb(&["compact", d]);
        let err = String::from_utf8_lossy(&compact.stderr);
        assert!(
            compact.status.success()
                || (engine == "btree"
                    && compact.status.code() == Some(1)
                    && err.starts_with(&format!("rumdb: compact {d}: "))
                    && err.contains("not supported")),
            "{err}"
        );
        let v = ok(&["verify", d]);
        assert!(v.starts_with("ok: "), "{v}");
        let j: serde_json::Value = serde_json::from_str(&ok(&["verify", "--json", d])).unwrap();
        assert_eq!(
            (j["ok"].as_bool(), j["engine"].as_str()),
            (Some(true), Some(engine))
        );

        let dump = ok(&["dump", d]);
        let map = parse_dump(&dump);
        assert_eq!(map.len(), 5);
        assert_eq!(map[&b"user:3"[..]], b"carol");

        // Usage errors exit with 2.
        let err = fails(&["get", "--hex", d, "zz"], 2);
        assert!(err.contains("bad key"), "{err}");
        fails(&["get", "--hex", "--base64", d, "00"], 2);
        fails(&["scan"], 2);
    }
}

#[test]
fn dump_load_round_trip_lsm_btree_lsm() {
    let tmp = tempfile::tempdir().unwrap();
    let entries = sample();
    let text = dump_text(&entries);
    let (a, b, c) = (
        tmp.path().join("a"),
        tmp.path().join("b"),
        tmp.path().join("c"),
    );
    load_ok(&a, &[], &text);
    let dump_a = ok(&["dump", p(&a)]);
    assert_eq!(dump_a, text);
    load_ok(&b, &["--engine", "btree"], &dump_a);
    assert!(ok(&["info", p(&b)]).contains("btree"));
    let dump_b = ok(&["dump", p(&b)]);
    load_ok(&c, &["--engine", "lsm"], &dump_b);
    let dump_c = ok(&["dump", p(&c)]);
    assert_eq!(parse_dump(&dump_c), entries);
    assert_eq!(dump_b, text);
    assert_eq!(dump_c, text);
    // Single lookups agree too, binary ones through --hex.
    for dir in [&a, &b, &c] {
        assert_eq!(ok(&["get", "--hex", p(dir), "00ff0a09"]), "fffe000a09\n");
        assert_eq!(ok(&["get", p(dir), "empty value"]), "\n");
        let big = ok(&["get", "--base64", p(dir), "Ymln"]);
        assert_eq!(unb64(big.trim_end()), entries[&b"big"[..]]);
    }

    // The target must be empty unless --into-existing; the engine must match.
    let out = load(&b, &[], &text);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--into-existing"));
    let out = load(&b, &["--engine", "lsm", "--into-existing"], &text);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("btree"));
    load_ok(
        &b,
        &["--into-existing"],
        "rumdb-dump 1\nYQ==\tYg==\nend 1\n",
    );
    assert_eq!(ok(&["get", p(&b), "a"]), "b\n");

    // A truncated or damaged dump is refused.
    let cut = &text[..text.len() - 10];
    for (bad, what) in [
        (cut, "truncated"),
        ("rumdb-dump 1\nYQ==\tYg==\n", "truncated"),
        ("rumdb-dump 1\nYQ==\tYg==\nend 2\n", "does not match"),
        ("rumdb-dump 1\nYg==\tYg==\nYQ==\tYg==\nend 2\n", "ascending"),
        ("rumdb-dump 1\nYQ==Yg==\nend 1\n", "no tab"),
        ("rumdb-dump 1\nY!==\tYg==\nend 1\n", "base64"),
        ("hello\n", "not a rumdb dump"),
        ("", "empty input"),
    ] {
        let dir = tmp.path().join("bad");
        let _ = std::fs::remove_dir_all(&dir);
        let out = load(&dir, &[], bad);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{what}: {err}");
        assert!(err.contains(what), "{what}: {err}");
    }
}

/// Every file's name and bytes.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let path = e.unwrap().path();
            let bytes = std::fs::read(&path).unwrap();
            (path, bytes)
        })
        .collect()
}

#[test]
fn read_only_commands_change_nothing() {
    for engine in ENGINES {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("db");
        let d = p(&dir);
        load_ok(&dir, &["--engine", engine], &dump_text(&sample()));
        ok(&["put", d, "after load", "in the WAL"]);
        let before = snapshot(&dir);
        ok(&["stats", d]);
        ok(&["info", d]);
        ok(&["scan", d, "--limit", "10"]);
        ok(&["get", d, "after load"]);
        ok(&["verify", d]);
        ok(&["dump", d]);
        // A backup reads the source read-only, WAL included, into a database of its own.
        let copy = tmp.path().join("copy");
        let out = ok(&["backup", d, p(&copy)]);
        assert!(
            out.starts_with("backup: ") && out.contains("files copied"),
            "{out}"
        );
        assert_eq!(ok(&["dump", p(&copy)]), ok(&["dump", d]), "{engine}");
        let err = fails(&["backup", d, p(&copy)], 1);
        assert!(err.contains("not empty"), "{err}");
        assert_eq!(snapshot(&dir), before, "{engine}");
    }
}

fn flip_byte(path: &Path, offset: u64) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[offset as usize] ^= 0x5a;
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn verify_reports_a_damaged_btree_page() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("db");
    load_ok(&dir, &["--engine", "btree"], &dump_text(&sample()));
    ok(&["flush", p(&dir)]);
    ok(&["verify", p(&dir)]);
    let data = dir.join("data");
    let len = std::fs::metadata(&data).unwrap().len();
    flip_byte(&data, len / 2 + 100);
    let err = fails(&["verify", p(&dir)], 1);
    assert!(
        err.contains(&format!("rumdb: verify {}: ", p(&dir))),
        "{err}"
    );
    assert!(err.contains("data") && err.contains("offset"), "{err}");
}

#[test]
fn verify_reports_a_damaged_lsm_table() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("db");
    load_ok(&dir, &[], &dump_text(&sample()));
    ok(&["compact", p(&dir)]);
    ok(&["verify", p(&dir)]);
    let sst = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "sst"))
        .unwrap();
    let len = std::fs::metadata(&sst).unwrap().len();
    flip_byte(&sst, len / 3);
    let err = fails(&["verify", p(&dir)], 1);
    let name = sst.file_name().unwrap().to_str().unwrap();
    assert!(err.contains(name), "{err}");
    let out = rumdb(&["verify", "--json", p(&dir)]);
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(j["ok"], false);
}

#[test]
fn missing_foreign_and_locked_directories_fail_clearly() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("missing");
    for cmd in ["stats", "info", "verify", "dump", "compact", "flush"] {
        let err = fails(&[cmd, p(&missing)], 1);
        assert!(
            err.contains(&format!("rumdb: {cmd} {}: no such directory", p(&missing))),
            "{err}"
        );
    }
    fails(&["scan", p(&missing)], 1);
    assert!(!missing.exists());

    let foreign = tmp.path().join("foreign");
    std::fs::create_dir(&foreign).unwrap();
    std::fs::write(foreign.join("notes.txt"), b"not a database").unwrap();
    for cmd in ["stats", "verify", "dump", "flush"] {
        let err = fails(&[cmd, p(&foreign)], 1);
        assert!(err.contains("IDENTITY"), "{err}");
    }
    let err = fails(&["put", "--engine", "lsm", p(&foreign), "k", "v"], 1);
    assert!(err.contains("IDENTITY"), "{err}");
    let out = load(&foreign, &[], "rumdb-dump 1\nend 0\n");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        std::fs::read_dir(&foreign).unwrap().count(),
        1,
        "nothing created in a foreign directory"
    );

    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    for cmd in ["stats", "verify", "flush"] {
        let err = fails(&[cmd, p(&empty)], 1);
        assert!(err.contains("no database in the directory"), "{err}");
    }
    let err = fails(&["put", p(&empty), "k", "v"], 1);
    assert!(err.contains("pass --engine"), "{err}");
    assert_eq!(std::fs::read_dir(&empty).unwrap().count(), 0);

    // A database held open by another handle: `Locked`, explained.
    let db_dir = tmp.path().join("held");
    ok(&["put", "--engine", "lsm", p(&db_dir), "k", "v"]);
    let held = rumdb::LsmEngine::open(&db_dir, rumdb::LsmOptions::default()).unwrap();
    for args in [vec!["put", p(&db_dir), "k", "w"], vec!["stats", p(&db_dir)]] {
        let err = fails(&args, 1);
        assert!(err.contains("another process"), "{err}");
    }
    drop(held);
    ok(&["put", p(&db_dir), "k", "w"]);
}

#[test]
fn a_closed_stdout_ends_output_quietly() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("db");
    load_ok(&dir, &[], &dump_text(&sample()));
    for args in [
        vec!["stats", p(&dir)],
        vec!["info", p(&dir)],
        vec!["scan", p(&dir)],
    ] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_rumdb"))
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{args:?}: {err}");
        assert!(err.is_empty(), "{args:?}: {err}");
    }
    // A dump cut short is a failure, not a quiet end.
    let mut child = Command::new(env!("CARGO_BIN_EXE_rumdb"))
        .args(["dump", p(&dir)])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("cannot write the dump") && !err.contains("panicked"),
        "{err}"
    );
}

/// The files of `dir` whose names end with `suffix`, sorted.
fn files_ending(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_str().unwrap().ends_with(suffix))
        .collect();
    v.sort();
    v
}

fn json(args: &[&str]) -> serde_json::Value {
    serde_json::from_str(&ok(args)).unwrap()
}

/// A handle on `dir`, held open by the test.
fn hold(dir: &Path, engine: &str) -> Box<dyn rumdb::Engine> {
    if engine == "lsm" {
        Box::new(rumdb::LsmEngine::open(dir, rumdb::LsmOptions::default()).unwrap())
    } else {
        Box::new(rumdb::BTreeEngine::open(dir, rumdb::BTreeOptions::default()).unwrap())
    }
}

#[test]
fn inspect_and_info_on_both_engines() {
    for engine in ENGINES {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("db");
        let d = p(&dir);
        load_ok(&dir, &["--engine", engine], &dump_text(&sample()));
        ok(&["flush", d]);
        // A close empties the WAL (flush or checkpoint): a handle held open keeps the put in it, and
        // `inspect` takes no lock, so it reads the segment beside the handle.
        let held = hold(&dir, engine);
        rumdb::EngineExt::put(held.as_ref(), "in the wal", "yes").unwrap();
        let live = files_ending(&dir, ".log").pop().unwrap();
        let seg = json(&["inspect", "wal", "--json", p(&live)]);
        assert_eq!(seg["end"]["state"], "open");
        let rec = &seg["records"][0];
        assert!(rec["sequence"].as_u64().unwrap() > 0);
        assert_eq!(rec["ops"][0]["op"], "put");
        assert_eq!(rec["ops"][0]["key"], "in the wal");
        assert_eq!(rec["ops"][0]["value"], "yes");
        let text = ok(&["inspect", "wal", p(&live)]);
        assert!(
            text.contains("put in the wal = yes") && text.contains("open: ends cleanly"),
            "{text}"
        );
        drop(held);
        let info = json(&["info", "--json", d]);
        if engine == "lsm" {
            // The tables are on L0, or some on L1 if the engine settled meanwhile.
            let used: Vec<&serde_json::Value> = info["levels"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|l| l["files"].as_u64().unwrap() > 0)
                .collect();
            let smallest = used.iter().map(|l| l["smallest"].as_str().unwrap()).min();
            let largest = used.iter().map(|l| l["largest"].as_str().unwrap()).max();
            assert_eq!(smallest, Some(""), "the sample's empty key");
            assert_eq!(largest, Some("ключ"));
            let m = json(&["inspect", "manifest", "--json", d]);
            let live: Vec<&serde_json::Value> = m["levels"]
                .as_array()
                .unwrap()
                .iter()
                .flat_map(|l| l.as_array().unwrap())
                .collect();
            let files: u64 = used.iter().map(|l| l["files"].as_u64().unwrap()).sum();
            assert_eq!(live.len() as u64, files);
            assert!(ok(&["inspect", "manifest", d]).contains("live tables"));
            let entries: u64 = live.iter().map(|t| t["entries"].as_u64().unwrap()).sum();
            let mut counted = 0;
            for sst in files_ending(&dir, ".sst") {
                let j = json(&["inspect", "sst", "--json", p(&sst)]);
                let n = j["properties"]["entries"].as_u64().unwrap();
                assert_eq!(j["entries"].as_array().unwrap().len() as u64, n);
                assert_eq!(
                    j["blocks"].as_array().unwrap().len() as u64,
                    j["properties"]["data_blocks"].as_u64().unwrap()
                );
                counted += n;
                let text = ok(&["inspect", "sst", p(&sst)]);
                assert!(
                    text.contains("index and data blocks") && text.contains("filter"),
                    "{text}"
                );
            }
            assert_eq!(counted, entries);
            let err = fails(&["inspect", "page", d, "2"], 1);
            assert!(err.contains("lsm"), "{err}");
        } else {
            let tree = &info["tree"];
            assert!(tree["leaf_pages"].as_u64().unwrap() >= 1);
            // The sample and the put the held handle made (its close checkpointed it).
            assert_eq!(tree["entries"].as_u64().unwrap(), sample().len() as u64 + 1);
            let fill = tree["fill_factor"].as_f64().unwrap();
            assert!(fill > 0.0 && fill <= 1.0, "{fill}");
            assert!(ok(&["info", d]).contains("fill factor"));
            let root = tree["header"]["root"].as_u64().unwrap().to_string();
            let page = json(&["inspect", "page", "--json", d, &root]);
            assert_eq!(page["checksum_ok"], true);
            assert!(!page["cells"].as_array().unwrap().is_empty());
            let header = ok(&["inspect", "page", d, "0"]);
            assert!(header.contains("header slot"), "{header}");
            let err = fails(&["inspect", "manifest", d], 1);
            assert!(err.contains("btree"), "{err}");
        }
    }
}

#[test]
fn inspect_names_the_file_and_offset_of_damage() {
    let tmp = tempfile::tempdir().unwrap();
    // A flipped byte in an SST's index.
    let lsm = tmp.path().join("lsm");
    load_ok(&lsm, &[], &dump_text(&sample()));
    let sst = files_ending(&lsm, ".sst").remove(0);
    let index = json(&["inspect", "sst", "--json", p(&sst)])["footer"]["index"]["offset"]
        .as_u64()
        .unwrap();
    flip_byte(&sst, index + 2);
    let err = fails(&["inspect", "sst", p(&sst)], 1);
    let name = sst.file_name().unwrap().to_str().unwrap();
    assert!(err.contains(&format!("{name} at offset {index}")), "{err}");

    // A WAL segment cut inside its last record.
    let wal_db = tmp.path().join("wal");
    ok(&["put", "--engine", "lsm", p(&wal_db), "k", "v"]);
    let held = hold(&wal_db, "lsm");
    for i in 0..3 {
        rumdb::EngineExt::put(held.as_ref(), format!("key{i}"), "value").unwrap();
    }
    let segment = files_ending(&wal_db, ".log").pop().unwrap();
    let seg = json(&["inspect", "wal", "--json", p(&segment)]);
    let last = seg["records"].as_array().unwrap().last().unwrap()["offset"]
        .as_u64()
        .unwrap();
    let bytes = std::fs::read(&segment).unwrap();
    drop(held);
    let copy = tmp.path().join("copy");
    std::fs::create_dir(&copy).unwrap();
    let cut = copy.join(segment.file_name().unwrap());
    std::fs::write(&cut, &bytes[..bytes.len() - 4]).unwrap();
    let out = rumdb(&["inspect", "wal", p(&cut)]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let name = cut.file_name().unwrap().to_str().unwrap();
    assert!(
        err.contains(&format!("offset {last} of {name}")) && !err.contains("panicked"),
        "{err}"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("torn tail"));

    // A B-tree page out of range, and a damaged one.
    let bt = tmp.path().join("bt");
    load_ok(&bt, &["--engine", "btree"], &dump_text(&sample()));
    let err = fails(&["inspect", "page", p(&bt), "99999"], 1);
    assert!(
        err.contains("out of range") && err.contains("data") && err.contains("offset"),
        "{err}"
    );
    let root = json(&["info", "--json", p(&bt)])["tree"]["header"]["root"]
        .as_u64()
        .unwrap();
    flip_byte(&bt.join("data"), root * 4096 + 200);
    let err = fails(&["inspect", "page", p(&bt), &root.to_string()], 1);
    assert!(
        err.contains(&format!("corruption in data at offset {}", root * 4096)),
        "{err}"
    );
    let err = fails(&["info", p(&bt)], 1);
    assert!(err.contains("data") && err.contains("offset"), "{err}");
}

#[test]
fn inspect_changes_nothing() {
    for engine in ENGINES {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("db");
        let d = p(&dir);
        load_ok(&dir, &["--engine", engine], &dump_text(&sample()));
        ok(&["put", d, "after load", "in the WAL"]);
        let before = snapshot(&dir);
        for seg in files_ending(&dir, ".log") {
            ok(&["inspect", "wal", p(&seg)]);
        }
        if engine == "lsm" {
            ok(&["inspect", "manifest", d]);
            for sst in files_ending(&dir, ".sst") {
                ok(&["inspect", "sst", p(&sst)]);
            }
        } else {
            for page in ["0", "1", "2"] {
                ok(&["inspect", "page", d, page]);
            }
        }
        ok(&["info", d]);
        assert_eq!(snapshot(&dir), before, "{engine}");
    }
}

#[test]
fn bench_runs_the_report_on_both_engines() {
    let tmp = tempfile::tempdir().unwrap();
    let out = ok(&[
        "bench",
        "--engine",
        "both",
        "--workload",
        "fillrandom,readrandom",
        "--keys",
        "500",
        "--",
        "--dir",
        p(tmp.path()),
    ]);
    for row in [
        "| fillrandom | lsm",
        "| fillrandom | btree",
        "| readrandom | lsm",
        "| readrandom | btree",
    ] {
        assert!(out.contains(row), "{row}: {out}");
    }
    assert!(out.contains("The textbook table"), "{out}");
    assert_eq!(
        std::fs::read_dir(tmp.path()).unwrap().count(),
        0,
        "databases removed"
    );
    let err = fails(&["bench", "--workload", "nope"], 2);
    assert!(err.contains("nope"), "{err}");
}
