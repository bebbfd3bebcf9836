//! Layer 6, operations: backup, restore, verify and list, each a function over devices (and a
//! reader or writer), built from the media layer, the codecs and the engine.

pub mod backup;
pub mod list;
pub mod restore;
pub mod resync;
pub mod salvage;
pub mod verify;

/// What [`restore`](crate::restore) and [`verify`](crate::verify) tell their caller as they
/// go: first the total the bytes will count up to, as soon as the media say it and before any
/// byte is counted, then the bytes done so far, from any thread.
///
/// A closure `Fn(u64)` is one that ignores the total: `&|n| eprintln!("{n}")` and `&|_| {}`
/// can be passed as they are.
pub trait ProgressSink: Sync {
    /// The total, in the unit [`done`](Self::done) counts, or `None` when the media do not say
    /// it. Called at most once (not when the operation fails before it knows), before the
    /// first [`done`](Self::done).
    fn total(&self, total: Option<u64>) {
        let _ = total;
    }
    /// The bytes done so far. Calls from several threads may arrive out of order: a caller
    /// that shows the count keeps the largest it has seen.
    fn done(&self, bytes: u64);
}

impl<F: Fn(u64) + Sync> ProgressSink for F {
    fn done(&self, bytes: u64) {
        self(bytes)
    }
}
