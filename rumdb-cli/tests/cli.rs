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
