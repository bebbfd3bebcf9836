//! SIGINT and SIGTERM end every tool promptly, in every state, with one exit status
//! ([`EXIT_INTERRUPTED`]), and take no partial output with them.
//!
//! The first signal raises the operation's [`Stop`](bak_core::Stop), which wakes every part of
//! it at once; the tool then ends through its ordinary error path (a partial output is removed,
//! a backup set is left incomplete, as docs/RELIABILITY.md says). A tool blocked where no stop
//! can reach (the `open(2)` of a FIFO that nobody opens at the other end, a read from a silent
//! pipe) is ended by the signal thread itself after [`GRACE`], or at once on a second signal:
//! it removes the partial outputs registered here and exits.

use std::path::PathBuf;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use crate::say;

/// Exit status of a tool ended by SIGINT or SIGTERM (128 + SIGINT, as shells report Ctrl-C).
pub const EXIT_INTERRUPTED: u8 = 130;

/// How long a tool has to end by itself after the first signal.
pub const GRACE: Duration = Duration::from_secs(1);

static SIGNAL: AtomicI32 = AtomicI32::new(0);
static TOOL: OnceLock<String> = OnceLock::new();

/// A partial output that must not outlive an interrupted tool.
pub(crate) struct Partial {
    pub(crate) id: u64,
    /// The temporary file being written.
    pub(crate) temp: PathBuf,
    /// Where it goes when kept.
    pub(crate) path: PathBuf,
    /// `--keep-partial`: rename it into place instead of removing it.
    pub(crate) keep: bool,
    /// `--force`: it may replace a file already at `path`.
    pub(crate) force: bool,
}

pub(crate) static PARTIALS: Mutex<Vec<Partial>> = Mutex::new(Vec::new());

/// Notes printed after the tool's error line (what was done with a partial output).
static NOTES: Mutex<Vec<String>> = Mutex::new(Vec::new());

pub(crate) fn set_tool(tool: &str) {
    let _ = TOOL.set(tool.to_string());
}

pub(crate) fn tool() -> &'static str {
    TOOL.get().map_or("bak", String::as_str)
}

/// Queue a line for stderr, printed after the tool's error message (or at once by
/// [`crate::run`] when the tool succeeds).
pub(crate) fn note(msg: String) {
    match NOTES.lock() {
        Ok(mut n) => n.push(msg),
        Err(p) => p.into_inner().push(msg),
    }
}

pub(crate) fn take_notes() -> Vec<String> {
    match NOTES.lock() {
        Ok(mut n) => std::mem::take(&mut *n),
        Err(p) => std::mem::take(&mut *p.into_inner()),
    }
}

/// The signal that interrupted the tool, if one did.
pub fn interrupted() -> Option<&'static str> {
    match SIGNAL.load(Ordering::SeqCst) {
        0 => None,
        s if s == signal_hook::consts::SIGTERM => Some("SIGTERM"),
        _ => Some("SIGINT"),
    }
}

/// A stop raised by SIGINT or SIGTERM (see the module documentation). Call it first thing, so
/// that opening devices is covered too.
pub fn stop_on_signals() -> anyhow::Result<bak_core::Stop> {
    use anyhow::Context;
    let stop = bak_core::Stop::new();
    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
    ])
    .context("cannot install a signal handler")?;
    let s = stop.clone();
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for sig in signals.forever() {
                if SIGNAL
                    .compare_exchange(0, sig, Ordering::SeqCst, Ordering::SeqCst)
                    .is_err()
                {
                    force_exit(); // a second signal: no more waiting
                }
                s.raise();
                // The tool normally ends well within the grace; if it is blocked where the stop
                // cannot reach, end it from here.
                let _ = std::thread::Builder::new().name("grace".into()).spawn(|| {
                    std::thread::sleep(GRACE);
                    force_exit();
                });
            }
        })
        .context("cannot start the signal thread")?;
    Ok(stop)
}

/// Settle the registered partial outputs, say so, and exit with [`EXIT_INTERRUPTED`].
fn force_exit() -> ! {
    let sig = interrupted().unwrap_or("a signal");
    let tool = tool();
    let partials = match PARTIALS.lock() {
        Ok(mut p) => std::mem::take(&mut *p),
        Err(p) => std::mem::take(&mut *p.into_inner()),
    };
    say!("{tool}: interrupted by {sig}");
    for line in partials.iter().filter_map(settle) {
        say!("{tool}: {line}");
    }
    // Uploads to object storage that never completed: nothing of them is to stay.
    let n = bak_store::abort_unfinished();
    if n > 0 {
        say!(
            "{tool}: aborted {n} unfinished upload{}",
            if n == 1 { "" } else { "s" }
        );
    }
    std::process::exit(EXIT_INTERRUPTED.into())
}

/// Remove a partial output, or rename it into place when it is to be kept; the words say which
/// (none when nothing had been written and nothing is kept).
pub(crate) fn settle(p: &Partial) -> Option<String> {
    let shown = p.path.display();
    let empty = std::fs::metadata(&p.temp).is_ok_and(|m| m.len() == 0);
    if !p.keep && empty {
        let _ = std::fs::remove_file(&p.temp);
        return None;
    }
    Some(if p.keep {
        let n = std::fs::metadata(&p.temp).map(|m| m.len()).unwrap_or(0);
        match place(&p.temp, &p.path, p.force) {
            Ok(()) => format!("kept the partial output {shown} ({n} bytes; --keep-partial)"),
            Err(e) => format!(
                "could not keep the partial output as {shown} ({e}); it is {}",
                p.temp.display()
            ),
        }
    } else {
        match std::fs::remove_file(&p.temp) {
            Ok(()) => format!("removed the partial output {shown} (--keep-partial keeps it)"),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                format!("no partial output {shown} left")
            }
            Err(e) => format!(
                "could not remove the partial output {} ({e})",
                p.temp.display()
            ),
        }
    })
}

/// Move `temp` to `path`; without `force` never over a file that is there (link, then unlink:
/// atomic, and refused when `path` exists).
pub(crate) fn place(
    temp: &std::path::Path,
    path: &std::path::Path,
    force: bool,
) -> std::io::Result<()> {
    if force {
        return std::fs::rename(temp, path);
    }
    match std::fs::hard_link(temp, path) {
        Ok(()) => std::fs::remove_file(temp),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(e),
        // A file system without hard links: rename, after a last look.
        Err(_) if !path.exists() => std::fs::rename(temp, path),
        Err(e) => Err(e),
    }
}
