//! Progress on stderr while a tool works: a live bar on a terminal, plain lines with `--stats`,
//! or JSON lines with `--progress json` for CI and wrappers. The total comes from the tool
//! (bak-write's input size) or from bak-core, which says it before any byte is counted
//! ([`bak_core::ProgressSink::total`]).

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::mb_per_s;

/// How progress is shown while a tool works: `--progress MODE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ProgressMode {
    /// A bar when stderr is a terminal (not with --quiet or --stats), else nothing.
    #[default]
    Auto,
    /// One JSON object per line, about once a second and at the end: bytes, total, percent,
    /// rate (bytes/s), eta_seconds (docs/OUTPUT.md).
    Json,
    /// No bar and no JSON lines (--stats lines still print).
    None,
}

/// The progress options of bak-write, bak-read and bak-verify, written once so the three say
/// the same (`#[command(flatten)]`).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ProgressArgs {
    /// Progress on stderr: a bar, JSON lines or nothing. --quiet silences the bar, not JSON.
    #[arg(long, value_name = "MODE", value_enum, default_value_t = ProgressMode::Auto)]
    pub progress: ProgressMode,
    /// Print a progress line every N percent (every N GiB when the total is unknown) instead
    /// of the bar: a plain line, or with --progress json a JSON line (instead of one a second).
    /// --quiet silences the plain lines.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub stats: Option<u64>,
}

/// When a line is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cadence {
    /// At every `--stats` mark: N percent of the total, or N GiB.
    Marks(u64),
    /// About once a second.
    Second,
}

/// What a line looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Form {
    Plain,
    Json,
}

#[derive(Debug)]
struct Lines {
    form: Form,
    cadence: Cadence,
}

#[derive(Debug, Default)]
struct State {
    total: Option<u64>,
    /// The bytes of the last line printed.
    printed: Option<u64>,
}

const UNKNOWN: u64 = u64::MAX;
const SECOND_US: u64 = 1_000_000;
// The bar takes the width left on the terminal: a line longer than the terminal wraps, and
// every redraw would then leave a line behind.
const KNOWN_STYLE: &str =
    "{spinner} {bytes}/{total_bytes} [{wide_bar}] {percent}% {binary_bytes_per_sec} ETA {eta}";
const UNKNOWN_STYLE: &str = "{spinner} {bytes} {binary_bytes_per_sec} {elapsed}";

/// Progress of one operation on stderr: a bar on a terminal, plain `--stats` lines, JSON lines,
/// or nothing. Updated from any thread; the count shown never goes back.
pub struct Progress {
    verb: &'static str,
    started: Instant,
    bar: Option<indicatif::ProgressBar>,
    lines: Option<Lines>,
    /// The largest count reported.
    seen: AtomicU64,
    /// The next line is due at this many bytes (marks) or microseconds since the start
    /// (seconds); `UNKNOWN` until then for marks.
    next: AtomicU64,
    state: Mutex<State>,
}

impl Progress {
    /// Progress for `verb` (`BACKUP`, `RESTORE`, `VERIFY`, the word the summary line starts
    /// with). `total` when the tool knows it; an operation of bak-core may tell it later.
    /// `quiet` silences the bar and the plain lines, not JSON (which was asked for by name).
    pub fn new(
        verb: &'static str,
        total: Option<u64>,
        args: &ProgressArgs,
        quiet: bool,
    ) -> Progress {
        let bar = (args.progress == ProgressMode::Auto
            && !quiet
            && args.stats.is_none()
            && std::io::stderr().is_terminal())
        .then(|| {
            let b = indicatif::ProgressBar::new_spinner();
            style(&b, UNKNOWN_STYLE);
            b.set_draw_target(indicatif::ProgressDrawTarget::stderr_with_hz(4));
            b
        });
        let cadence = args.stats.map_or(Cadence::Second, Cadence::Marks);
        let lines = match args.progress {
            ProgressMode::Json => Some(Lines {
                form: Form::Json,
                cadence,
            }),
            _ if quiet => None,
            _ => args.stats.map(|s| Lines {
                form: Form::Plain,
                cadence: Cadence::Marks(s),
            }),
        };
        let p = Progress {
            verb,
            started: Instant::now(),
            bar,
            lines,
            seen: AtomicU64::new(0),
            next: AtomicU64::new(if cadence == Cadence::Second {
                SECOND_US
            } else {
                UNKNOWN
            }),
            state: Mutex::new(State::default()),
        };
        p.set_total(total);
        p
    }

    /// The total the bytes count up to (`None`: unknown). Before the first update.
    pub fn set_total(&self, total: Option<u64>) {
        let mut st = self.lock();
        st.total = total;
        if let Some(Lines {
            cadence: Cadence::Marks(s),
            ..
        }) = &self.lines
        {
            let done = self.seen.load(Ordering::Relaxed);
            self.next
                .store(next_mark(done, step(*s, total)), Ordering::Relaxed);
        }
        if let (Some(b), Some(t)) = (&self.bar, total) {
            style(b, KNOWN_STYLE);
            b.set_length(t);
        }
    }

    /// Report the bytes done so far (from any thread).
    pub fn update(&self, done: u64) {
        let done = self.seen.fetch_max(done, Ordering::Relaxed).max(done);
        if let Some(b) = &self.bar {
            b.set_position(done);
        }
        let Some(lines) = &self.lines else {
            return;
        };
        let now = match lines.cadence {
            Cadence::Marks(_) => done,
            Cadence::Second => micros(self.started.elapsed()),
        };
        if now < self.next.load(Ordering::Relaxed) {
            return;
        }
        let mut st = self.lock();
        // Another thread may have printed this line while this one waited for the lock.
        let due = self.next.load(Ordering::Relaxed);
        if now < due {
            return;
        }
        let next = match lines.cadence {
            Cadence::Marks(s) => next_mark(done, step(s, st.total)),
            Cadence::Second => (now / SECOND_US + 1) * SECOND_US,
        };
        self.next.store(next, Ordering::Relaxed);
        self.print(lines.form, &mut st, self.seen.load(Ordering::Relaxed));
    }

    /// The end: the bar is removed; with JSON a last line says where it ended.
    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
        if let Some(Lines {
            form: Form::Json, ..
        }) = &self.lines
        {
            let mut st = self.lock();
            let done = self.seen.load(Ordering::Relaxed);
            if st.printed != Some(done) {
                self.print(Form::Json, &mut st, done);
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn print(&self, form: Form, st: &mut State, done: u64) {
        let secs = self.started.elapsed().as_secs_f64();
        let line = match form {
            Form::Json => json_line(self.verb, done, st.total, secs),
            Form::Plain => {
                let pct = st
                    .total
                    .filter(|&t| t > 0)
                    .map(|t| format!(" ({}%)", (done as u128 * 100 / t as u128).min(100)))
                    .unwrap_or_default();
                format!(
                    "{} {} bytes{pct} in {:.2} s ({:.1} MB/s)",
                    self.verb,
                    done,
                    secs,
                    mb_per_s(done, secs)
                )
            }
        };
        st.printed = Some(done);
        // A closed stderr must not stop a backup (eprintln! would panic on EPIPE).
        let _ = writeln!(std::io::stderr(), "{line}");
    }
}

impl bak_core::ProgressSink for Progress {
    fn total(&self, total: Option<u64>) {
        self.set_total(total);
    }
    fn done(&self, bytes: u64) {
        self.update(bytes);
    }
}

fn style(b: &indicatif::ProgressBar, template: &str) {
    if let Ok(s) = indicatif::ProgressStyle::with_template(template) {
        b.set_style(s.progress_chars("=> "));
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX - 1)
}

/// Bytes between two `--stats` marks: N percent of the total, or N GiB.
fn step(stats: u64, total: Option<u64>) -> u64 {
    match total {
        Some(t) => (t.saturating_mul(stats) / 100).max(1),
        None => stats.saturating_mul(1 << 30).max(1),
    }
}

/// The first mark after `done`.
fn next_mark(done: u64, step: u64) -> u64 {
    (done / step).saturating_add(1).saturating_mul(step)
}

/// One `--progress json` line: `bytes`, `total` (null when unknown), `percent` (one decimal,
/// 100 only when the total was reached), `rate` (bytes per second since the start),
/// `eta_seconds` (null when the total or the rate is unknown), and `verb`.
fn json_line(verb: &str, done: u64, total: Option<u64>, secs: f64) -> String {
    let rate = if secs > 0.0 {
        (done as f64 / secs) as u64
    } else {
        0
    };
    let percent = total.map(|t| {
        if done >= t {
            100.0
        } else {
            (done as u128 * 1000 / t as u128) as f64 / 10.0
        }
    });
    let eta = total.and_then(|t| match t.saturating_sub(done) {
        0 => Some(0),
        left if rate > 0 => Some(left.div_ceil(rate)),
        _ => None,
    });
    serde_json::json!({
        "bytes": done,
        "total": total,
        "percent": percent,
        "rate": rate,
        "eta_seconds": eta,
        "verb": verb,
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> serde_json::Value {
        serde_json::from_str(s).unwrap()
    }

    #[test]
    fn json_lines_say_percent_and_eta_where_the_total_is_known() {
        let v = parse(&json_line("RESTORE", 250, Some(1000), 2.0));
        assert_eq!(v["bytes"], 250);
        assert_eq!(v["total"], 1000);
        assert_eq!(v["percent"], 25.0);
        assert_eq!(v["rate"], 125);
        assert_eq!(v["eta_seconds"], 6);
        assert_eq!(v["verb"], "RESTORE");
        let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
        assert_eq!(
            keys,
            ["bytes", "total", "percent", "rate", "eta_seconds", "verb"]
        );
        // Not rounded up to 100 before the end.
        assert_eq!(
            parse(&json_line("X", 999, Some(1000), 1.0))["percent"],
            99.9
        );
        let end = parse(&json_line("X", 1000, Some(1000), 1.0));
        assert_eq!(end["percent"], 100.0);
        assert_eq!(end["eta_seconds"], 0);
        // A total of 0 is reached at once.
        assert_eq!(parse(&json_line("X", 0, Some(0), 0.0))["percent"], 100.0);
    }

    #[test]
    fn json_lines_say_null_where_it_is_not_known() {
        let v = parse(&json_line("BACKUP", 4096, None, 1.0));
        assert!(v["total"].is_null() && v["percent"].is_null() && v["eta_seconds"].is_null());
        assert_eq!(v["rate"], 4096);
        // Nothing done yet: no rate, so no ETA either.
        let v = parse(&json_line("BACKUP", 0, Some(10), 0.0));
        assert_eq!(v["rate"], 0);
        assert_eq!(v["percent"], 0.0);
        assert!(v["eta_seconds"].is_null());
    }

    #[test]
    fn marks_are_n_percent_of_the_total_or_n_gib() {
        assert_eq!(step(10, Some(1000)), 100);
        assert_eq!(step(10, Some(5)), 1);
        assert_eq!(step(2, None), 2 << 30);
        assert_eq!(next_mark(0, 100), 100);
        assert_eq!(next_mark(100, 100), 200);
        assert_eq!(next_mark(u64::MAX, 100), u64::MAX);
    }

    #[test]
    fn the_count_never_goes_back_and_the_last_line_is_not_repeated() {
        let args = ProgressArgs {
            progress: ProgressMode::Json,
            stats: Some(50),
        };
        let p = Progress::new("VERIFY", None, &args, true);
        bak_core::ProgressSink::total(&p, Some(100));
        assert_eq!(p.next.load(Ordering::Relaxed), 50);
        p.update(60);
        p.update(40);
        assert_eq!(p.seen.load(Ordering::Relaxed), 60);
        assert_eq!(p.lock().printed, Some(60));
        assert_eq!(p.next.load(Ordering::Relaxed), 100);
        p.update(100);
        assert_eq!(p.lock().printed, Some(100));
        p.finish();
        assert_eq!(p.lock().printed, Some(100));
    }

    #[test]
    fn quiet_silences_plain_lines_but_not_json() {
        let plain = ProgressArgs {
            progress: ProgressMode::Auto,
            stats: Some(10),
        };
        assert!(Progress::new("X", None, &plain, true).lines.is_none());
        assert!(Progress::new("X", None, &plain, false).lines.is_some());
        let json = ProgressArgs {
            progress: ProgressMode::Json,
            stats: None,
        };
        let p = Progress::new("X", None, &json, true);
        assert!(p.bar.is_none());
        assert_eq!(
            p.lines.as_ref().map(|l| (l.form, l.cadence)),
            Some((Form::Json, Cadence::Second))
        );
        let none = ProgressArgs {
            progress: ProgressMode::None,
            stats: None,
        };
        let p = Progress::new("X", Some(5), &none, false);
        assert!(p.bar.is_none() && p.lines.is_none());
    }
}
