//! Small concurrency parts shared by the write and read pipelines: a bounded buffer pool, a
//! closable work queue, an in-order hand-out of finished blocks, and a shared abort flag that
//! keeps the first error. No lock is held while doing I/O or compression.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};

use crate::error::{Error, Result};

/// Wait on a condition variable for at most 50 ms: every waiter rechecks the abort flag that
/// often, so no thread can sleep through a failure elsewhere.
pub fn wait<'a, T>(cv: &Condvar, g: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
    cv.wait_timeout(g, std::time::Duration::from_millis(50))
        .map(|r| r.0)
        .unwrap_or_else(|p| p.into_inner().0)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A poisoned lock means another thread panicked; the data is still usable for shutdown.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The first error of any thread, and the flag that tells every thread to stop.
#[derive(Default)]
pub struct Abort {
    flag: AtomicBool,
    first: Mutex<Option<Error>>,
}

impl Abort {
    /// Record an error (the first one wins) and raise the flag.
    pub fn fail(&self, e: Error) {
        let mut g = lock(&self.first);
        if g.is_none() {
            *g = Some(e);
        }
        self.flag.store(true, Ordering::SeqCst);
    }
    /// Raise the flag without an error of our own (e.g. the reader went away).
    pub fn raise(&self) {
        self.flag.store(true, Ordering::SeqCst);
    }
    /// True once any thread failed.
    pub fn is_set(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }
    /// Take the first error.
    pub fn take(&self) -> Option<Error> {
        lock(&self.first).take()
    }
}

/// A pool of at most `cap` buffers of `size` bytes capacity, handed out and given back.
pub struct Pool {
    state: Mutex<(Vec<Vec<u8>>, usize)>,
    cv: Condvar,
    cap: usize,
    size: usize,
}

impl Pool {
    /// A pool of up to `cap` buffers; they are allocated on first use.
    pub fn new(cap: usize, size: usize) -> Self {
        Pool {
            state: Mutex::new((Vec::new(), 0)),
            cv: Condvar::new(),
            cap: cap.max(1),
            size,
        }
    }
    /// A buffer (with whatever length it came back with), waiting for one to come back if all are out.
    /// `None` when `abort` is raised while waiting.
    pub fn get(&self, abort: &Abort) -> Option<Vec<u8>> {
        let mut g = lock(&self.state);
        loop {
            if abort.is_set() {
                return None;
            }
            if let Some(b) = g.0.pop() {
                return Some(b);
            }
            if g.1 < self.cap {
                g.1 += 1;
                drop(g);
                return Some(Vec::with_capacity(self.size));
            }
            g = wait(&self.cv, g);
        }
    }
    /// Give a buffer back.
    pub fn put(&self, b: Vec<u8>) {
        lock(&self.state).0.push(b);
        self.cv.notify_one();
    }
    /// Wake every waiter (after an abort). The lock is taken first, so a waiter that has
    /// checked the abort flag but not yet begun to wait cannot miss the wake-up.
    pub fn wake(&self) {
        drop(lock(&self.state));
        self.cv.notify_all();
    }
}

/// A FIFO queue that consumers block on until an item comes or it is closed.
///
/// Producers and consumers wait on separate condition variables and each hand-off wakes one
/// thread: with one shared variable and `notify_all`, every block woke every waiting thread
/// (about ten context switches per block in bak-write on 8 devices).
pub struct Queue<T> {
    state: Mutex<(VecDeque<T>, bool)>,
    not_empty: Condvar,
    not_full: Condvar,
    cap: usize,
}

impl<T> Queue<T> {
    /// A queue holding at most `cap` items (`push` waits beyond that).
    pub fn new(cap: usize) -> Self {
        Queue {
            state: Mutex::new((VecDeque::new(), false)),
            not_empty: Condvar::new(),
            not_full: Condvar::new(),
            cap: cap.max(1),
        }
    }
    /// Add an item, waiting while the queue is full. Returns false if aborted.
    pub fn push(&self, item: T, abort: &Abort) -> bool {
        let mut g = lock(&self.state);
        while g.0.len() >= self.cap {
            if abort.is_set() {
                return false;
            }
            g = wait(&self.not_full, g);
        }
        g.0.push_back(item);
        drop(g);
        self.not_empty.notify_one();
        true
    }
    /// Take the next item; `None` when closed and empty, or aborted.
    pub fn pop(&self, abort: &Abort) -> Option<T> {
        let mut g = lock(&self.state);
        loop {
            if abort.is_set() {
                return None;
            }
            if let Some(x) = g.0.pop_front() {
                drop(g);
                self.not_full.notify_one();
                return Some(x);
            }
            if g.1 {
                return None;
            }
            g = wait(&self.not_empty, g);
        }
    }
    /// No more items will come.
    pub fn close(&self) {
        lock(&self.state).1 = true;
        self.not_empty.notify_all();
        self.not_full.notify_all();
    }
    /// Wake every waiter (after an abort); see [`Pool::wake`].
    pub fn wake(&self) {
        drop(lock(&self.state));
        self.not_empty.notify_all();
        self.not_full.notify_all();
    }
}

/// Finished items keyed by sequence number, handed out strictly in sequence order.
pub struct Ordered<T> {
    state: Mutex<OrderedState<T>>,
    cv: Condvar,
}

struct OrderedState<T> {
    ready: BTreeMap<u64, T>,
    next: u64,
    end: Option<u64>,
}

impl<T> Default for Ordered<T> {
    fn default() -> Self {
        Ordered {
            state: Mutex::new(OrderedState {
                ready: BTreeMap::new(),
                next: 0,
                end: None,
            }),
            cv: Condvar::new(),
        }
    }
}

impl<T> Ordered<T> {
    /// Put a finished item. Only the item every taker waits for (the next in sequence) wakes
    /// one; `take` passes the turn on when the following item is already there.
    pub fn put(&self, seq: u64, item: T) {
        let mut g = lock(&self.state);
        g.ready.insert(seq, item);
        let wanted = seq == g.next;
        drop(g);
        if wanted {
            self.cv.notify_one();
        }
    }
    /// Say how many items there will be in all.
    pub fn finish(&self, count: u64) {
        lock(&self.state).end = Some(count);
        self.cv.notify_all();
    }
    /// The next item in sequence order, waiting for it; `None` at the end or on abort.
    pub fn take(&self, abort: &Abort) -> Option<(u64, T)> {
        let mut g = lock(&self.state);
        loop {
            if abort.is_set() {
                return None;
            }
            let next = g.next;
            if let Some(x) = g.ready.remove(&next) {
                g.next += 1;
                // Wake the next taker if it can go on at once: its item is there, or the
                // sequence has ended and every other taker must see that.
                let at_end = g.end.is_some_and(|e| g.next >= e);
                let more = g.ready.contains_key(&g.next);
                drop(g);
                if at_end {
                    self.cv.notify_all();
                } else if more {
                    self.cv.notify_one();
                }
                return Some((next, x));
            }
            if g.end.is_some_and(|e| next >= e) {
                return None;
            }
            g = wait(&self.cv, g);
        }
    }
    /// Wake every waiter; see [`Pool::wake`].
    pub fn wake(&self) {
        drop(lock(&self.state));
        self.cv.notify_all();
    }
}

/// Write all of several slices with `writev`, resuming after short writes.
pub fn write_all_vectored(
    w: &mut (impl std::io::Write + ?Sized),
    mut bufs: &mut [std::io::IoSlice<'_>],
) -> std::io::Result<()> {
    std::io::IoSlice::advance_slices(&mut bufs, 0);
    while !bufs.is_empty() {
        match w.write_vectored(bufs) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => std::io::IoSlice::advance_slices(&mut bufs, n),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Run `f`, turning a panic into an error instead of tearing the process down.
pub fn guarded<T>(what: &'static str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(_) => Err(Error::Refused {
            what: format!("internal error in the {what} thread"),
        }),
    }
}

/// Grow the kernel buffer of a pipe or FIFO to `size` bytes (at most the system's
/// `pipe-max-size`), so that one block moves in one system call instead of sixteen 64 KiB ones.
/// Not a pipe, or not permitted: nothing happens.
pub fn enlarge_pipe(fd: std::os::fd::BorrowedFd<'_>, size: usize) {
    use std::os::fd::AsRawFd;
    let max = std::fs::read_to_string("/proc/sys/fs/pipe-max-size")
        .ok()
        .and_then(|s| s.trim().parse::<usize>().ok())
        .unwrap_or(1 << 20);
    let want = size.min(max).min(i32::MAX as usize) as libc::c_int;
    // SAFETY: F_SETPIPE_SZ takes an int argument and touches no memory of ours; on a descriptor
    // that is not a pipe it fails with EBADF/EINVAL, which is ignored.
    unsafe {
        libc::fcntl(fd.as_raw_fd(), libc::F_SETPIPE_SZ, want);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Several takers, items put out of order by several threads: every item is taken exactly
    /// once, each taker sees rising sequence numbers, and every taker ends.
    #[test]
    fn ordered_hands_out_every_item_once_in_order_to_many_takers() {
        const N: u64 = 2000;
        let o: Ordered<u64> = Ordered::default();
        let abort = Abort::default();
        let taken = Mutex::new(Vec::new());
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    let mut mine = Vec::new();
                    while let Some((seq, v)) = o.take(&abort) {
                        assert_eq!(seq * 3, v);
                        mine.push(seq);
                    }
                    assert!(
                        mine.windows(2).all(|w| w[0] < w[1]),
                        "a taker went backwards"
                    );
                    taken.lock().unwrap().extend(mine);
                });
            }
            for p in 0..3u64 {
                let o = &o;
                s.spawn(move || {
                    // Each putter owns the sequence numbers = p mod 3, in blocks put backwards.
                    let mine: Vec<u64> = (0..N).filter(|x| x % 3 == p).collect();
                    for chunk in mine.chunks(7) {
                        for &x in chunk.iter().rev() {
                            o.put(x, x * 3);
                        }
                    }
                });
            }
            o.finish(N);
        });
        let mut all = taken.into_inner().unwrap();
        all.sort_unstable();
        assert_eq!(all, (0..N).collect::<Vec<_>>());
    }

    /// A small queue between several producers and consumers delivers every item once, and
    /// closing it ends every consumer.
    #[test]
    fn queue_delivers_every_item_once_and_close_ends_consumers() {
        let q: Queue<u32> = Queue::new(2);
        let abort = Abort::default();
        let got = Mutex::new(Vec::new());
        std::thread::scope(|s| {
            for _ in 0..3 {
                s.spawn(|| {
                    while let Some(x) = q.pop(&abort) {
                        got.lock().unwrap().push(x);
                    }
                });
            }
            let producers: Vec<_> = (0..3u32)
                .map(|p| {
                    let q = &q;
                    let abort = &abort;
                    s.spawn(move || {
                        for i in 0..1000 {
                            assert!(q.push(p * 1000 + i, abort));
                        }
                    })
                })
                .collect();
            for h in producers {
                h.join().unwrap();
            }
            q.close();
        });
        let mut all = got.into_inner().unwrap();
        all.sort_unstable();
        assert_eq!(all, (0..3000).collect::<Vec<_>>());
    }

    /// An abort releases producers blocked on a full queue and takers waiting for an item.
    #[test]
    fn abort_releases_blocked_producers_and_takers() {
        let q: Queue<u32> = Queue::new(1);
        let o: Ordered<u32> = Ordered::default();
        let abort = Abort::default();
        std::thread::scope(|s| {
            let p = s.spawn(|| {
                let mut pushed = 0;
                while q.push(1, &abort) {
                    pushed += 1;
                }
                pushed
            });
            let t = s.spawn(|| o.take(&abort).is_none());
            while q.state.lock().unwrap().0.is_empty() {
                std::thread::yield_now();
            }
            abort.fail(Error::Interrupted);
            q.wake();
            o.wake();
            assert_eq!(p.join().unwrap(), 1);
            assert!(t.join().unwrap());
        });
    }
}
