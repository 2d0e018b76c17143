//! Two hand-written SVG plots: throughput per workload (bars, log scale) and the RUM scatter (write amp
//! against space amp, read amp as the engine marker's label).

use std::fmt::Write;
use std::path::Path;

use serde_json::Value;

use super::report::{load_sa, load_wa, ops_per_sec, read_amp, space_amp_close, wa_logical};

fn colour(engine: &str) -> &'static str {
    if engine == "lsm" {
        "#d95f02"
    } else {
        "#1b9e77"
    }
}

fn field<'a>(r: &'a Value, k: &str) -> &'a str {
    r.get(k).and_then(Value::as_str).unwrap_or("?")
}

fn header(w: u32, h: u32, title: &str) -> String {
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"11\">\n\
         <rect width=\"{w}\" height=\"{h}\" fill=\"white\"/>\n\
         <text x=\"{}\" y=\"18\" text-anchor=\"middle\" font-size=\"14\">{title}</text>\n",
        w / 2
    )
}

fn legend(s: &mut String, engines: &[String], labels: &[String], x: f64) {
    for (i, (e, label)) in engines.iter().zip(labels).enumerate() {
        let y = 34.0 + 14.0 * i as f64;
        let _ = writeln!(
            s,
            "<rect x=\"{x}\" y=\"{}\" width=\"10\" height=\"10\" fill=\"{}\"/><text x=\"{}\" y=\"{y}\">{label}</text>",
            y - 9.0,
            colour(e),
            x + 14.0
        );
    }
}

/// Bars of ops/s per workload, one per engine, on a log scale.
pub fn throughput(results: &[&Value], engines: &[String], workloads: &[String]) -> String {
    let (w, h, left, bottom, top) = (960u32, 420u32, 60.0, 330.0, 40.0);
    let mut s = header(w, h, "Throughput per workload (ops/s, log scale)");
    let max = results
        .iter()
        .filter_map(|r| ops_per_sec(r))
        .fold(10.0f64, f64::max);
    let decades = max.log10().ceil().max(1.0);
    let y = |v: f64| bottom - (v.max(1.0).log10() / decades) * (bottom - top);
    for d in 0..=decades as i32 {
        let yy = y(10f64.powi(d));
        let _ = writeln!(
            s,
            "<line x1=\"{left}\" x2=\"{}\" y1=\"{yy}\" y2=\"{yy}\" stroke=\"#ddd\"/><text x=\"{}\" y=\"{}\" text-anchor=\"end\">1e{d}</text>",
            w - 10,
            left - 4.0,
            yy + 4.0
        );
    }
    let slot = (f64::from(w) - left - 10.0) / workloads.len().max(1) as f64;
    let bar = slot * 0.8 / engines.len().max(1) as f64;
    for (i, wl) in workloads.iter().enumerate() {
        let x0 = left + slot * i as f64 + slot * 0.1;
        for (j, e) in engines.iter().enumerate() {
            let Some(v) = results
                .iter()
                .find(|r| field(r, "engine") == e && field(r, "workload") == wl)
                .and_then(|r| ops_per_sec(r))
            else {
                continue;
            };
            let (x, top_y) = (x0 + bar * j as f64, y(v));
            let _ = writeln!(
                s,
                "<rect x=\"{x:.1}\" y=\"{top_y:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{}\"><title>{e} {wl}: {v:.0} ops/s</title></rect>",
                bar - 1.0,
                bottom - top_y,
                colour(e)
            );
        }
        let cx = x0 + slot * 0.4;
        let _ = writeln!(
            s,
            "<text x=\"{cx:.1}\" y=\"{}\" text-anchor=\"end\" transform=\"rotate(-40 {cx:.1} {})\">{wl}</text>",
            bottom + 14.0,
            bottom + 14.0
        );
    }
    legend(&mut s, engines, engines, f64::from(w) - 90.0);
    s.push_str("</svg>\n");
    s
}

/// Write amplification (x, log scale) against space amplification after close (y), one marker per engine
/// and writing workload (small), and one per engine at its fillrandom + overwrite figures (large) labelled
/// with its read amplification (fetches per get in readrandom).
pub fn rum(results: &[&Value], engines: &[String]) -> String {
    let (w, h, left, right, bottom, top) = (760u32, 480u32, 70.0, 740.0, 430.0, 40.0);
    let mut s = header(
        w,
        h,
        "RUM: write amp (log) vs space amp after close; large markers labelled with read amp",
    );
    let points: Vec<(String, String, f64, f64)> = results
        .iter()
        .filter_map(|r| {
            let (wa, sa) = (wa_logical(r)?, space_amp_close(r)?);
            Some((
                field(r, "engine").to_string(),
                field(r, "workload").to_string(),
                wa,
                sa,
            ))
        })
        .collect();
    let ra = |e: &str| {
        results
            .iter()
            .find(|r| field(r, "engine") == e && field(r, "workload") == "readrandom")
            .and_then(|r| read_amp(r))
    };
    let wmax = points
        .iter()
        .map(|p| p.2)
        .fold(1.0f64, f64::max)
        .log10()
        .ceil()
        .max(1.0);
    let smax = points.iter().map(|p| p.3).fold(1.0f64, f64::max) * 1.15;
    let x = |v: f64| left + (v.max(0.1).log10() + 1.0) / (wmax + 1.0) * (right - left);
    let y = |v: f64| bottom - v / smax * (bottom - top);
    for d in -1..=wmax as i32 {
        let xx = x(10f64.powi(d));
        let _ = writeln!(
            s,
            "<line x1=\"{xx:.1}\" x2=\"{xx:.1}\" y1=\"{top}\" y2=\"{bottom}\" stroke=\"#ddd\"/><text x=\"{xx:.1}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
            bottom + 14.0,
            10f64.powi(d)
        );
    }
    for i in 0..=4 {
        let v = smax * f64::from(i) / 4.0;
        let yy = y(v);
        let _ = writeln!(
            s,
            "<line x1=\"{left}\" x2=\"{right}\" y1=\"{yy:.1}\" y2=\"{yy:.1}\" stroke=\"#ddd\"/><text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{v:.1}</text>",
            left - 4.0,
            yy + 4.0
        );
    }
    let _ = writeln!(
        s,
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">write amplification (bytes written ÷ user bytes)</text>\
         <text x=\"16\" y=\"{}\" transform=\"rotate(-90 16 {})\" text-anchor=\"middle\">space amplification</text>",
        (left + right) / 2.0,
        bottom + 34.0,
        (top + bottom) / 2.0,
        (top + bottom) / 2.0
    );
    for (e, wl, wa, sa) in &points {
        let label = wl;
        // Small markers: each writing workload on its own.
        let _ = writeln!(
            s,
            "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"{}\"><title>{e} {wl}: wa {wa:.2}, sa {sa:.2}</title></circle><text x=\"{:.1}\" y=\"{:.1}\" fill=\"{}\">{label}</text>",
            x(*wa),
            y(*sa),
            colour(e),
            x(*wa) + 7.0,
            y(*sa) - 4.0,
            colour(e)
        );
    }
    // One large marker per engine at its fillrandom + overwrite figures, labelled with its read amp.
    for e in engines {
        let (Some(wa), Some(sa)) = (load_wa(results, e), load_sa(results, e)) else {
            continue;
        };
        let label = match ra(e) {
            Some(r) => format!("{e} (fill+overwrite): read amp {r:.2}"),
            None => format!("{e} (fill+overwrite)"),
        };
        // Labels right of the middle grow leftwards so they stay inside the plot.
        let (anchor, dx) = if x(wa) > (left + right) / 2.0 {
            ("end", -12.0)
        } else {
            ("start", 12.0)
        };
        let _ = writeln!(
            s,
            "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"10\" fill=\"none\" stroke=\"{}\" stroke-width=\"3\"/><text x=\"{:.1}\" y=\"{:.1}\" fill=\"{}\" font-weight=\"bold\" text-anchor=\"{anchor}\">{label}</text>",
            x(wa),
            y(sa),
            colour(e),
            x(wa) + dx,
            y(sa) + 22.0,
            colour(e)
        );
    }
    legend(&mut s, engines, engines, right - 80.0);
    s.push_str("</svg>\n");
    s
}

pub fn write(
    dir: &Path,
    results: &[&Value],
    engines: &[String],
    workloads: &[String],
) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(
        dir.join("throughput.svg"),
        throughput(results, engines, workloads),
    )?;
    std::fs::write(dir.join("rum.svg"), rum(results, engines))
}
