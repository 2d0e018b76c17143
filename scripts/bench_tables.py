#!/usr/bin/env python3
"""Cross-run tables and plots of the amplification report, from its --json files (Python 3 stdlib only).

    python3 scripts/bench_tables.py [docs/bench]

Reads every RUN.json in the directory (written by `amplification --json`), writes the cross-run plots
(amp-vs-size.svg, amp-vs-value.svg, rum-all.svg, throughput-by-size.svg) there and replaces each block
between `<!-- generated:NAME -->` and `<!-- end:NAME -->` in BENCHMARKS.md with the table NAME. Every
figure comes from the JSON; the definitions are the report's own (examples/amplification/report.rs):

  write amp   = bytes the engine wrote (all purposes) / user bytes, over fillrandom + overwrite
                (each including its settle and close)
  space amp   = allocated bytes of the files / live key + value bytes, after overwrite and close
  read amp    = cache-missing block/page fetches (data + index) per get in readrandom
  verdict     = the textbook side wins by >= 10%: confirmed; the other side does: contradicted
"""

import json
import math
import os
import re
import sys

DIR = sys.argv[1] if len(sys.argv) > 1 else "docs/bench"
DOC = "BENCHMARKS.md"
ENGINES = ["lsm", "btree"]
NAMES = {"lsm": "LSM", "btree": "B-tree"}
COLOUR = {"lsm": "#d95f02", "btree": "#1b9e77"}
WORKLOADS = ["fillseq", "fillrandom", "overwrite", "readrandom", "readmissing", "scan", "ycsb-a",
             "ycsb-b", "sync1", "sync8", "deleterandom", "timeseries"]


def load():
    runs = {}
    for f in sorted(os.listdir(DIR)):
        if f.endswith(".json"):
            with open(os.path.join(DIR, f)) as fh:
                runs[f[:-5]] = json.load(fh)
    return runs


def find(run, engine, workload):
    for r in run["results"]:
        if r["engine"] == engine and r["workload"] == workload:
            return r
    return None


def div(a, b):
    return a / b if a is not None and b else None


def ops_per_sec(r):
    return div(r["ops"], r["secs"]) if r else None


def load_wa(run, engine, key="written_total"):
    parts = [find(run, engine, w) for w in ("fillrandom", "overwrite")]
    if None in parts:
        return None
    if key == "os":
        return div(sum(p["os"]["write_bytes"] for p in parts), sum(p["user_bytes"] for p in parts))
    return div(sum(p[key] for p in parts), sum(p["user_bytes"] for p in parts))


def load_purposes(run, engine):
    parts = [find(run, engine, w) for w in ("fillrandom", "overwrite")]
    if None in parts:
        return {}
    user = sum(p["user_bytes"] for p in parts)
    out = {}
    for p in parts:
        for k, v in p["written"].items():
            out[k] = out.get(k, 0) + v
    return {k: v / user for k, v in out.items() if v > 0}


def load_fsyncs(run, engine):
    parts = [find(run, engine, w) for w in ("fillrandom", "overwrite")]
    return None if None in parts else sum(p["fsyncs"] for p in parts)


def load_sa(run, engine):
    r = find(run, engine, "overwrite")
    return div(r["dir_bytes_close"], r["live_bytes"]) if r else None


def read_amp(run, engine, workload="readrandom", what=("data_fetches", "index_fetches")):
    r = find(run, engine, workload)
    if not r or not r["reads"]["gets"]:
        return None
    return sum(r["reads"][k] for k in what) / r["reads"]["gets"]


def scan_bytes(run, engine):
    r = find(run, engine, "scan")
    if not r or not r["reads"]["scans"]:
        return None
    return r["reads"]["scan_bytes"] / r["reads"]["scans"]


def data_mb(run):
    c = run["config"]
    return c["keys"] * (c["key_size"] + c["value_size"]) / 1e6


def fmt(x, d=2):
    return "n/a" if x is None else f"{x:.{d}f}"


def thousands(x):
    return "n/a" if x is None else f"{x:,.0f}"


def table(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(out)


PROPERTIES = [
    # name, favoured, higher is better, measured as, value(run, engine)
    ("write throughput", "lsm", True, "fillrandom ops/s", lambda r, e: ops_per_sec(find(r, e, "fillrandom"))),
    ("read throughput", "btree", True, "readrandom ops/s", lambda r, e: ops_per_sec(find(r, e, "readrandom"))),
    ("space amplification", "btree", False, "files ÷ live bytes after overwrite + close", load_sa),
    ("write amplification", "btree", False, "bytes written ÷ user bytes, fillrandom + overwrite", load_wa),
]


def verdict(run, prop):
    name, fav, higher, _, value = prop
    other = "btree" if fav == "lsm" else "lsm"
    a, b = value(run, fav), value(run, other)
    adv = div(a, b) if higher else div(b, a)
    if adv is None:
        v = "n/a (workload not run)"
    elif adv >= 1.1:
        v = "confirmed"
    elif adv <= 1 / 1.1:
        v = "contradicted"
    else:
        v = "no difference"
    # The report computed its own verdict into the JSON: the two must agree.
    mine = {x["property"]: x["verdict"] for x in run.get("verdicts", [])}
    if name in mine and mine[name] != v:
        sys.exit(f"verdict mismatch for {name}: report {mine[name]!r}, here {v!r}")
    return v, adv, value(run, "btree"), value(run, "lsm")


def describe(run):
    c = run["config"]
    extra = ", incompressible" if c["compressible"] == 0 else ""
    # Options that differ from the report's defaults (absent from older JSON: then the default).
    for key, default, label in (("cache_mib", 8, "cache/pool {} MiB"), ("page_size", 4096, "page {} B"),
                                ("bloom_bits", 10, "bloom {} bits/key"), ("l1_mib", 256, "L1 {} MiB"),
                                ("level_ratio", 10, "ratio {}")):
        if c.get(key, default) != default:
            extra += ", " + label.format(c[key])
    return f"{c['keys']:,} × {c['value_size']} B, compression {c['compression']}{extra}"


# ---------------------------------------------------------------- tables

def t_runs(runs):
    rows = []
    for name, run in runs.items():
        c = run["config"]
        args = " ".join(a for a in c.get("args", []))
        rows.append([f"`{name}`", f"{c['keys']:,}", c["value_size"], fmt(data_mb(run), 1),
                     c["compression"], c["compressible"], ", ".join(c.get("workloads", [])) if len(
                         c.get("workloads", WORKLOADS)) < len(WORKLOADS) else "all 12",
                     f"{c.get('wall_secs', 0):.0f}", load_avg(c), f"`amplification {args}`"])
    return table(["run", "keys", "value B", "key+value MB", "compression", "compressible", "workloads",
                  "wall s", "load avg start → end", "command (./target/release/examples/…)"], rows)


def load_avg(c):
    a, b = c.get("load_average_start"), c.get("load_average_end")
    return "not recorded" if a is None else f"{a:.1f} → {b:.1f}"


def t_headline(runs, names):
    rows = []
    for name in names:
        run = runs.get(name)
        if not run:
            continue
        for e in ENGINES:
            purposes = ", ".join(f"{k} {v:.2f}" for k, v in sorted(load_purposes(run, e).items()))
            rows.append([f"`{name}`", NAMES[e], fmt(load_wa(run, e)), purposes, fmt(load_wa(run, e, "os")),
                         thousands(load_fsyncs(run, e)), fmt(load_sa(run, e)),
                         fmt(read_amp(run, e)),
                         fmt(read_amp(run, e, what=("data_touches", "index_touches"))),
                         fmt(read_amp(run, e, "readmissing")),
                         thousands(scan_bytes(run, e))])
    return table(["run", "engine", "write amp", "by purpose", "wa_os", "fsyncs", "space amp",
                  "read amp (fetches/get)", "touched/get", "fetches/missing get", "storage B/scan of 100"],
                 rows)


def t_throughput(runs, names):
    present = [n for n in names if n in runs]
    header = ["workload"] + [f"{NAMES[e]} `{n}`" for n in present for e in ENGINES]
    rows = []
    for w in WORKLOADS:
        row = [w]
        for n in present:
            for e in ENGINES:
                row.append(thousands(ops_per_sec(find(runs[n], e, w))))
        if any(c != "n/a" for c in row[1:]):
            rows.append(row)
    return table(header, rows)


def t_textbook(runs, names):
    rows = []
    for prop in PROPERTIES:
        for name in names:
            run = runs.get(name)
            if not run:
                continue
            v, adv, bt, lsm = verdict(run, prop)
            tput = prop[2]
            val = thousands if tput else fmt
            rows.append([prop[0], f"`{name}`", val(bt), val(lsm), prop[3],
                         advantage(bt, lsm, tput), f"**{v}**"])
    return table(["property", "run", "B-tree", "LSM", "measured as", "who wins, by how much",
                  "verdict"], rows)


def advantage(bt, lsm, higher_is_better):
    """The winner and its margin in words ("LSM 14.60x less", "B-tree 1.70x faster"), as the report says it."""
    if not bt or not lsm or bt <= 0 or lsm <= 0:
        return "n/a"
    btree_wins = bt >= lsm if higher_is_better else bt <= lsm
    times = max(bt, lsm) / min(bt, lsm)
    word = "faster" if higher_is_better else "less"
    return f"{'B-tree' if btree_wins else 'LSM'} {times:.2f}x {word}"


def t_verdicts(runs):
    rows = []
    for name, run in runs.items():
        rows.append([f"`{name}`", describe(run)] + [verdict(run, p)[0] for p in PROPERTIES])
    return table(["run", "data"] + [p[0] for p in PROPERTIES], rows)


# ---------------------------------------------------------------- plots

def svg_header(w, h, title):
    return [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" '
            f'font-size="11">', f'<rect width="{w}" height="{h}" fill="white"/>',
            f'<text x="{w / 2}" y="18" text-anchor="middle" font-size="14">{title}</text>']


def log_axis(lo, hi):
    return math.floor(math.log10(lo)), math.ceil(math.log10(hi))


def nice_ticks(lo, hi, n=5):
    """Round tick values covering lo..hi, about n of them."""
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.floor(lo / step) * step
    return [first + i * step for i in range(int(math.ceil((hi - first) / step)) + 1)]


def line_panel(s, x0, y0, w, h, title, series, xlabel, xs_log=True, ylog=True):
    """series: {(engine, label): [(x, y), ...]}; draws axes, grid and lines in the box (x0, y0, w, h)."""
    pts = [p for ps in series.values() for p in ps if p[1] is not None]
    if not pts:
        return
    xlo, xhi = log_axis(min(p[0] for p in pts), max(p[0] for p in pts))
    if xhi == xlo:
        xhi += 1
    if ylog:
        ylo, yhi = log_axis(min(p[1] for p in pts) * 0.9, max(p[1] for p in pts) * 1.1)
        ylo = min(ylo, 0)
    else:
        ticks = nice_ticks(0.0, max(p[1] for p in pts) * 1.1)
        ylo, yhi = ticks[0], ticks[-1]
    X = lambda v: x0 + (math.log10(v) - xlo) / (xhi - xlo) * w
    Y = (lambda v: y0 + h - (math.log10(v) - ylo) / (yhi - ylo) * h) if ylog else (
        lambda v: y0 + h - (v - ylo) / (yhi - ylo) * h)
    s.append(f'<text x="{x0 + w / 2}" y="{y0 - 8}" text-anchor="middle" font-size="12">{title}</text>')
    for d in range(xlo, xhi + 1):
        xx = X(10 ** d)
        s.append(f'<line x1="{xx:.1f}" x2="{xx:.1f}" y1="{y0}" y2="{y0 + h}" stroke="#ddd"/>'
                 f'<text x="{xx:.1f}" y="{y0 + h + 14}" text-anchor="middle">{10 ** d:g}</text>')
    yticks = [10 ** d for d in range(int(ylo), int(yhi) + 1)] if ylog else ticks
    for v in yticks:
        yy = Y(v)
        s.append(f'<line x1="{x0}" x2="{x0 + w}" y1="{yy:.1f}" y2="{yy:.1f}" stroke="#ddd"/>'
                 f'<text x="{x0 - 4}" y="{yy + 4:.1f}" text-anchor="end">{v:g}</text>')
    s.append(f'<text x="{x0 + w / 2}" y="{y0 + h + 30}" text-anchor="middle">{xlabel}</text>')
    for (e, label), ps in series.items():
        ps = [p for p in ps if p[1] is not None]
        if not ps:
            continue
        d = " ".join(f"{'M' if i == 0 else 'L'}{X(x):.1f},{Y(y):.1f}" for i, (x, y) in enumerate(ps))
        s.append(f'<path d="{d}" fill="none" stroke="{COLOUR[e]}" stroke-width="2"/>')
        for x, y in ps:
            s.append(f'<circle cx="{X(x):.1f}" cy="{Y(y):.1f}" r="4" fill="{COLOUR[e]}">'
                     f'<title>{label}: {y:.2f} at {x:g}</title></circle>'
                     f'<text x="{X(x) + 6:.1f}" y="{Y(y) - 5:.1f}" fill="{COLOUR[e]}">{y:.2f}</text>')


def legend(s, x, y):
    for i, e in enumerate(ENGINES):
        s.append(f'<rect x="{x}" y="{y + 14 * i - 9}" width="10" height="10" fill="{COLOUR[e]}"/>'
                 f'<text x="{x + 14}" y="{y + 14 * i}">{NAMES[e]}</text>')


def amp_plot(runs, names, xval, xlabel, title, path):
    series_wa, series_sa, series_ra = {}, {}, {}
    for e in ENGINES:
        wa, sa, ra = [], [], []
        for n in names:
            run = runs.get(n)
            if not run:
                continue
            x = xval(run)
            wa.append((x, load_wa(run, e)))
            sa.append((x, load_sa(run, e)))
            ra.append((x, read_amp(run, e)))
        series_wa[(e, NAMES[e])] = wa
        series_sa[(e, NAMES[e])] = sa
        series_ra[(e, NAMES[e])] = ra
    s = svg_header(1080, 360, title)
    line_panel(s, 60, 60, 280, 240, "write amp (fillrandom + overwrite, log)", series_wa, xlabel)
    line_panel(s, 410, 60, 280, 240, "space amp (after overwrite + close)", series_sa, xlabel, ylog=False)
    line_panel(s, 760, 60, 280, 240, "read amp (fetches per get, readrandom)", series_ra, xlabel, ylog=False)
    legend(s, 20, 30)
    s.append("</svg>")
    with open(os.path.join(DIR, path), "w") as fh:
        fh.write("\n".join(s) + "\n")


# Runs whose change touches one engine only: the other engine's point would repeat keys200k-off's.
ONLY_ENGINE = {"keys200k-on": "lsm", "keys200k-on-incompressible": "lsm", "keys1m-on": "lsm",
               "keys200k-off-incompressible": "lsm", "opt-bloom0": "lsm", "opt-l1-4": "lsm",
               "opt-l1-4-ratio4": "lsm", "opt-page1k": "btree", "opt-page16k": "btree"}


def rum_plot(runs, path):
    pts = []
    for name, run in runs.items():
        for e in ENGINES:
            if ONLY_ENGINE.get(name, e) != e:
                continue
            wa, sa, ra = load_wa(run, e), load_sa(run, e), read_amp(run, e)
            if wa is not None and sa is not None:
                pts.append((e, name, wa, sa, ra))
    if not pts:
        return
    w, h, left, right, top, bottom = 980, 620, 70, 960, 50, 570
    s = svg_header(w, h, "RUM: write amp (log) vs space amp, every run; marker area ∝ read amp "
                         "(fetches per get), label = run and read amp")
    s.append(f'<text x="{w / 2}" y="34" text-anchor="middle" font-size="10">runs that change one engine '
             f'only (compression, bloom, L1/ratio: LSM; page size: B-tree) show that engine only</text>')
    xlo, xhi = log_axis(min(p[2] for p in pts), max(p[2] for p in pts))
    ticks = nice_ticks(max(0.0, min(p[3] for p in pts) - 0.1), max(p[3] for p in pts) + 0.1)
    smin, smax = ticks[0], ticks[-1]
    X = lambda v: left + (math.log10(v) - xlo) / (xhi - xlo) * (right - left)
    Y = lambda v: bottom - (v - smin) / (smax - smin) * (bottom - top)
    for d in range(xlo, xhi + 1):
        xx = X(10 ** d)
        s.append(f'<line x1="{xx:.1f}" x2="{xx:.1f}" y1="{top}" y2="{bottom}" stroke="#ddd"/>'
                 f'<text x="{xx:.1f}" y="{bottom + 14}" text-anchor="middle">{10 ** d:g}</text>')
    for v in ticks:
        s.append(f'<line x1="{left}" x2="{right}" y1="{Y(v):.1f}" y2="{Y(v):.1f}" stroke="#ddd"/>'
                 f'<text x="{left - 4}" y="{Y(v) + 4:.1f}" text-anchor="end">{v:.2f}</text>')
    s.append(f'<text x="{(left + right) / 2}" y="{bottom + 34}" text-anchor="middle">write amplification '
             f'(bytes written ÷ user bytes, fillrandom + overwrite)</text>'
             f'<text x="16" y="{(top + bottom) / 2}" transform="rotate(-90 16 {(top + bottom) / 2})" '
             f'text-anchor="middle">space amplification (files ÷ live bytes, after close)</text>')
    placed = []
    for e, name, wa, sa, ra in sorted(pts, key=lambda p: (p[3], p[2])):
        r = 3 + 6 * math.sqrt(ra) if ra is not None else 3
        label = f"{name}" + (f" ({ra:.2f})" if ra is not None else "")
        anchor, dx = ("end", -r - 3) if X(wa) > (left + right) / 2 else ("start", r + 3)
        ly = Y(sa) + 4
        # Labels of nearby points are stacked, not drawn over each other.
        while any(abs(ly - py) < 10 and abs(X(wa) - px) < 150 and pa == anchor for px, py, pa in placed):
            ly -= 10
        placed.append((X(wa), ly, anchor))
        s.append(f'<circle cx="{X(wa):.1f}" cy="{Y(sa):.1f}" r="{r:.1f}" fill="{COLOUR[e]}" '
                 f'fill-opacity="0.35" stroke="{COLOUR[e]}"><title>{NAMES[e]} {name}: wa {wa:.2f}, '
                 f'sa {sa:.2f}, read amp {fmt(ra)}</title></circle>'
                 f'<text x="{X(wa) + dx:.1f}" y="{ly:.1f}" font-size="9" fill="{COLOUR[e]}" '
                 f'text-anchor="{anchor}">{label}</text>')
    legend(s, left + 10, top + 14)
    s.append("</svg>")
    with open(os.path.join(DIR, path), "w") as fh:
        fh.write("\n".join(s) + "\n")


def throughput_plot(runs, names, path):
    present = [n for n in names if n in runs]
    groups = [(n, e) for n in present for e in ENGINES]
    if not groups:
        return
    w, h, left, bottom, top = 1080, 440, 60, 340, 50
    s = svg_header(w, h, "Throughput per workload (ops/s, log scale): " + ", ".join(present)
                   + " (lighter = more keys)")
    vals = [ops_per_sec(find(runs[n], e, wl)) for n, e in groups for wl in WORKLOADS]
    vmax = max(v for v in vals if v)
    dec = math.ceil(math.log10(vmax))
    Y = lambda v: bottom - math.log10(max(v, 1)) / dec * (bottom - top)
    for d in range(dec + 1):
        s.append(f'<line x1="{left}" x2="{w - 10}" y1="{Y(10 ** d):.1f}" y2="{Y(10 ** d):.1f}" stroke="#ddd"/>'
                 f'<text x="{left - 4}" y="{Y(10 ** d) + 4:.1f}" text-anchor="end">1e{d}</text>')
    slot = (w - left - 10) / len(WORKLOADS)
    bar = slot * 0.85 / len(groups)
    for i, wl in enumerate(WORKLOADS):
        x0 = left + slot * i + slot * 0.075
        for j, (n, e) in enumerate(groups):
            v = ops_per_sec(find(runs[n], e, wl))
            if not v:
                continue
            op = 1.0 - 0.3 * present.index(n)
            s.append(f'<rect x="{x0 + bar * j:.1f}" y="{Y(v):.1f}" width="{bar - 1:.1f}" '
                     f'height="{bottom - Y(v):.1f}" fill="{COLOUR[e]}" fill-opacity="{op:.2f}">'
                     f'<title>{NAMES[e]} {n} {wl}: {v:,.0f} ops/s</title></rect>')
        cx = x0 + slot * 0.4
        s.append(f'<text x="{cx:.1f}" y="{bottom + 14}" text-anchor="end" '
                 f'transform="rotate(-40 {cx:.1f} {bottom + 14})">{wl}</text>')
    legend(s, left + 10, top + 4)
    s.append("</svg>")
    with open(os.path.join(DIR, path), "w") as fh:
        fh.write("\n".join(s) + "\n")


# ---------------------------------------------------------------- main

def main():
    runs = load()
    sizes = ["keys200k-off", "keys1m-off", "keys5m-off"]
    values = ["value16-off", "keys200k-off", "value1k-off", "value16k-off"]
    compression = ["keys200k-off", "keys200k-on", "keys200k-off-incompressible",
                   "keys200k-on-incompressible", "keys1m-off", "keys1m-on"]
    amp_plot(runs, sizes, data_mb, "key + value MB (log)",
             "Amplification against data size (100 B values, compression off)", "amp-vs-size.svg")
    amp_plot(runs, values, lambda r: r["config"]["value_size"], "value bytes (log)",
             "Amplification against value size (about 23 MB of keys + values, compression off)",
             "amp-vs-value.svg")
    # The default-compression run at 200k keys stores nothing below L1, so it is the compression-off run
    # again: left out of the scatter, where it would sit on top of it.
    rum_plot({n: r for n, r in runs.items() if n != "keys200k-default"}, "rum-all.svg")
    throughput_plot(runs, sizes, "throughput-by-size.svg")
    blocks = {
        "runs": t_runs(runs),
        "verdicts": t_verdicts(runs),
        "textbook": t_textbook(runs, sizes),
        "sizes": t_headline(runs, sizes),
        "throughput": t_throughput(runs, sizes),
        "compression": t_headline(runs, compression),
        "values": t_headline(runs, values),
        "default": t_headline(runs, ["keys200k-default"]),
        "options": t_headline(runs, ["keys200k-off"] + [n for n in runs if n.startswith("opt-")]),
    }
    with open(DOC) as fh:
        doc = fh.read()
    for name, body in blocks.items():
        pat = re.compile(rf"(<!-- generated:{name} -->\n).*?(<!-- end:{name} -->)", re.S)
        doc, n = pat.subn(lambda m: m.group(1) + body + "\n" + m.group(2), doc)
        if n == 0:
            print(f"note: no <!-- generated:{name} --> block in {DOC}", file=sys.stderr)
    with open(DOC, "w") as fh:
        fh.write(doc)
    print(f"{len(runs)} runs; wrote the plots in {DIR} and the tables in {DOC}", file=sys.stderr)


if __name__ == "__main__":
    main()
