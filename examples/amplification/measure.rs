//! What the child measures beside the engine's own `Stats`: the OS's I/O counters and peak memory of this
//! process (/proc), the bytes of the database's files, latency percentiles, and a progress line.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

/// `/proc/self/io` bytes this process caused to be written to and read from storage (all threads,
/// background ones included). `None` where /proc is unreadable.
#[derive(Clone, Copy, Debug)]
pub struct OsIo {
    pub write_bytes: u64,
    pub read_bytes: u64,
}

pub fn os_io() -> Option<OsIo> {
    let text = std::fs::read_to_string("/proc/self/io").ok()?;
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse::<u64>().ok())
    };
    Some(OsIo {
        write_bytes: field("write_bytes:")?,
        read_bytes: field("read_bytes:")?,
    })
}

/// Peak resident memory (VmHWM) in bytes.
pub fn peak_rss() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/status").ok()?;
    let kib: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}

/// Resets VmHWM to the current RSS (Linux `clear_refs` value 5), so each workload reports its own peak.
/// Returns false where that is not allowed; the peak is then the process's peak so far.
pub fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// Resident anonymous and file-backed memory now (`RssAnon`, `RssFile` of /proc/self/status), in bytes.
fn rss_parts() -> Option<(u64, u64)> {
    let text = std::fs::read_to_string("/proc/self/status").ok()?;
    let kib = |name: &str| -> Option<u64> {
        text.lines()
            .find_map(|l| l.strip_prefix(name))?
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()
    };
    Some((kib("RssAnon:")? * 1024, kib("RssFile:")? * 1024))
}

/// Samples anonymous and file-backed RSS every 20 ms on a thread of its own and keeps the peak of each:
/// VmHWM mixes the two, and pages of memory-mapped tables (file-backed) are not comparable with an engine
/// that reads through a cache of its own.
pub struct RssSampler {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<(u64, u64)>>,
}

impl RssSampler {
    pub fn start() -> Self {
        use std::sync::atomic::{AtomicBool, Ordering};
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let flag = std::sync::Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let mut peak = (0, 0);
            loop {
                if let Some((anon, file)) = rss_parts() {
                    peak = (peak.0.max(anon), peak.1.max(file));
                }
                if flag.load(Ordering::Relaxed) {
                    return peak;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        RssSampler {
            stop,
            thread: Some(thread),
        }
    }

    /// Stops sampling; the peaks `(anonymous, file-backed)` in bytes.
    pub fn finish(mut self) -> (u64, u64) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread
            .take()
            .and_then(|t| t.join().ok())
            .unwrap_or((0, 0))
    }
}

/// Allocated bytes (`st_blocks` × 512) of the files in `dir`.
pub fn dir_bytes(dir: &Path) -> std::io::Result<u64> {
    use std::os::unix::fs::MetadataExt;
    let mut total = 0;
    for entry in std::fs::read_dir(dir)? {
        let meta = entry?.metadata()?;
        if meta.is_file() {
            total += meta.blocks() * 512;
        }
    }
    Ok(total)
}

/// Latency samples in nanoseconds, per operation or per batch (`unit` says which).
pub struct Latency {
    pub unit: String,
    samples: Vec<u64>,
}

impl Latency {
    pub fn new(unit: impl Into<String>, capacity: usize) -> Self {
        Latency {
            unit: unit.into(),
            samples: Vec::with_capacity(capacity),
        }
    }

    pub fn record(&mut self, since: Instant) {
        self.samples.push(since.elapsed().as_nanos() as u64);
    }

    pub fn extend(&mut self, other: Latency) {
        self.samples.extend(other.samples);
    }

    /// The `p`-th percentile in microseconds (nearest rank).
    pub fn percentile_us(&mut self, p: f64) -> f64 {
        if self.samples.is_empty() {
            return 0.0;
        }
        self.samples.sort_unstable();
        let rank = ((p / 100.0) * self.samples.len() as f64).ceil() as usize;
        let i = rank.clamp(1, self.samples.len()) - 1;
        self.samples.get(i).copied().unwrap_or(0) as f64 / 1000.0
    }
}

/// A progress line on stderr, redrawn at most every 250 ms.
pub struct Progress {
    label: String,
    total: u64,
    last: Instant,
}

impl Progress {
    pub fn new(label: String, total: u64) -> Self {
        let p = Progress {
            label,
            total: total.max(1),
            last: Instant::now(),
        };
        p.draw(0);
        p
    }

    pub fn tick(&mut self, done: u64) {
        if self.last.elapsed() >= Duration::from_millis(250) {
            self.last = Instant::now();
            self.draw(done);
        }
    }

    fn draw(&self, done: u64) {
        let pct = done * 100 / self.total;
        let _ = write!(std::io::stderr(), "\r  {:<28} {pct:>3}%", self.label);
    }

    pub fn done(self, note: &str) {
        let _ = writeln!(std::io::stderr(), "\r  {:<28} done {note}", self.label);
    }
}
