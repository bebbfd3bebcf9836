//! Layer 4, the engine: format-free concurrency parts that the operations build their
//! pipelines from. A [`Stop`] signal that wakes every waiter at once (no timed polling), a
//! bounded buffer [`Pool`], a bounded [`Queue`] that closes when its last [`Sender`] is dropped,
//! an in-order hand-out of finished items ([`Ordered`]) with a [`Placement`] policy deciding
//! which taker may take which item, and [`guarded`] thread bodies that turn a panic into an
//! internal error. No lock is held while doing I/O or compression.
//!
//! Knows nothing of the bytes of bak media: it imports only [`crate::error`].

mod placement;

pub use placement::Placement;

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};

use crate::error::{Error, Result};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A poisoned lock means another thread panicked; the data is still usable for shutdown.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn wait<'a, T>(cv: &Condvar, g: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
    cv.wait(g).unwrap_or_else(|p| p.into_inner())
}

/// Something that sleeps on a condition variable and must wake when a [`Stop`] is raised.
trait Wake: Send + Sync {
    fn wake(&self);
}

/// One stop signal for a whole operation: the first error of any thread, and the flag that
/// tells every thread to stop. Raising it wakes every waiter of every part built on it at
/// once, and every child stop ([`Stop::child`]). Cloning gives another handle to the same
/// signal, so a caller can keep one to interrupt an operation from another thread.
#[derive(Clone, Default)]
pub struct Stop {
    inner: Arc<StopInner>,
}

#[derive(Default)]
struct StopInner {
    raised: AtomicBool,
    first: Mutex<Option<Error>>,
    wakers: Mutex<Vec<Weak<dyn Wake>>>,
}

impl Wake for StopInner {
    fn wake(&self) {
        self.raise_inner();
    }
}

impl StopInner {
    fn raise_inner(&self) {
        if self.raised.swap(true, Ordering::SeqCst) {
            return;
        }
        let wakers: Vec<_> = lock(&self.wakers)
            .iter()
            .filter_map(Weak::upgrade)
            .collect();
        for w in wakers {
            w.wake();
        }
    }
}

impl std::fmt::Debug for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stop")
            .field("raised", &self.is_raised())
            .finish()
    }
}

impl Stop {
    /// A signal not yet raised.
    pub fn new() -> Self {
        Stop::default()
    }

    /// A new signal that is raised when this one is (not the other way round): an operation's
    /// own stop, linked to the caller's interrupt.
    pub fn child(&self) -> Stop {
        let c = Stop::new();
        let w: Arc<dyn Wake> = c.inner.clone();
        self.register(&w);
        if self.is_raised() {
            c.inner.raise_inner();
        }
        c
    }

    /// Record an error (the first one wins) and raise the signal.
    pub fn fail(&self, e: Error) {
        {
            let mut g = lock(&self.inner.first);
            if g.is_none() {
                *g = Some(e);
            }
        }
        self.inner.raise_inner();
    }

    /// Raise the signal without an error of this operation's own (an interrupt).
    pub fn raise(&self) {
        self.inner.raise_inner();
    }

    /// True once raised.
    pub fn is_raised(&self) -> bool {
        self.inner.raised.load(Ordering::SeqCst)
    }

    /// Take the first error recorded, if any.
    pub fn take_error(&self) -> Option<Error> {
        lock(&self.inner.first).take()
    }

    /// The outcome of an operation that ran under this signal: the first error, or
    /// [`Error::Interrupted`] when it was raised without one.
    pub fn outcome<T>(&self, ok: T) -> Result<T> {
        match self.take_error() {
            Some(e) => Err(e),
            None if self.is_raised() => Err(Error::Interrupted),
            None => Ok(ok),
        }
    }

    fn register(&self, w: &Arc<dyn Wake>) {
        let mut g = lock(&self.inner.wakers);
        g.retain(|x| x.strong_count() > 0);
        g.push(Arc::downgrade(w));
    }
}

/// A mutex and condition variables that a [`Stop`] wakes: the lock is taken before the
/// notification, so a waiter that has checked the signal but not yet begun to wait cannot miss
/// the wake-up.
struct Guarded<S> {
    state: Mutex<S>,
    cvs: [Condvar; 2],
}

impl<S: Send> Wake for Guarded<S> {
    fn wake(&self) {
        drop(lock(&self.state));
        for cv in &self.cvs {
            cv.notify_all();
        }
    }
}

fn guarded_state<S: Send + 'static>(s: S, stop: &Stop) -> Arc<Guarded<S>> {
    let g = Arc::new(Guarded {
        state: Mutex::new(s),
        cvs: [Condvar::new(), Condvar::new()],
    });
    let w: Arc<dyn Wake> = g.clone();
    stop.register(&w);
    g
}

/// A pool of at most `cap` buffers of `size` bytes capacity, handed out and given back. Memory
/// in flight is bounded by the pool, whatever the pipeline does.
pub struct Pool {
    g: Arc<Guarded<(Vec<Vec<u8>>, usize)>>,
    stop: Stop,
    cap: usize,
    size: usize,
}

impl Pool {
    /// A pool of up to `cap` buffers; they are allocated on first use.
    pub fn new(cap: usize, size: usize, stop: &Stop) -> Self {
        Pool {
            g: guarded_state((Vec::new(), 0), stop),
            stop: stop.clone(),
            cap: cap.max(1),
            size,
        }
    }
    /// A buffer (with whatever length it came back with), waiting for one to come back if all
    /// are out. `None` once the stop is raised.
    pub fn get(&self) -> Option<Vec<u8>> {
        let mut g = lock(&self.g.state);
        loop {
            if self.stop.is_raised() {
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
            g = wait(&self.g.cvs[0], g);
        }
    }
    /// Give a buffer back.
    pub fn put(&self, b: Vec<u8>) {
        lock(&self.g.state).0.push(b);
        self.g.cvs[0].notify_one();
    }
}

struct QueueState<T> {
    items: VecDeque<T>,
    senders: usize,
    closed: bool,
}

/// A bounded FIFO queue. Items go in through [`Sender`]s; it closes when the last sender is
/// dropped (or on [`Queue::close`]), and consumers then drain it and end.
///
/// Producers and consumers wait on separate condition variables and each hand-off wakes one
/// thread: with one shared variable and `notify_all`, every block woke every waiting thread
/// (about ten context switches per block in bak-write on 8 devices).
pub struct Queue<T> {
    g: Arc<Guarded<QueueState<T>>>,
    stop: Stop,
    cap: usize,
}

impl<T: Send + 'static> Queue<T> {
    /// A queue holding at most `cap` items (`push` waits beyond that).
    pub fn new(cap: usize, stop: &Stop) -> Self {
        Queue {
            g: guarded_state(
                QueueState {
                    items: VecDeque::new(),
                    senders: 0,
                    closed: false,
                },
                stop,
            ),
            stop: stop.clone(),
            cap: cap.max(1),
        }
    }

    /// A new producer handle; the queue closes when every sender is dropped.
    pub fn sender(&self) -> Sender<'_, T> {
        lock(&self.g.state).senders += 1;
        Sender { q: self }
    }

    /// Take the next item; `None` when closed and empty, or once the stop is raised.
    pub fn pop(&self) -> Option<T> {
        let mut g = lock(&self.g.state);
        loop {
            if self.stop.is_raised() {
                return None;
            }
            if let Some(x) = g.items.pop_front() {
                drop(g);
                self.g.cvs[1].notify_one();
                return Some(x);
            }
            if g.closed {
                return None;
            }
            g = wait(&self.g.cvs[0], g);
        }
    }

    /// No more items will come, whatever senders remain.
    pub fn close(&self) {
        lock(&self.g.state).closed = true;
        self.g.cvs[0].notify_all();
        self.g.cvs[1].notify_all();
    }

    fn push(&self, item: T) -> bool {
        let mut g = lock(&self.g.state);
        while g.items.len() >= self.cap {
            if self.stop.is_raised() || g.closed {
                return false;
            }
            g = wait(&self.g.cvs[1], g);
        }
        // A closed queue has no consumers left to wait for.
        if self.stop.is_raised() || g.closed {
            return false;
        }
        g.items.push_back(item);
        drop(g);
        self.g.cvs[0].notify_one();
        true
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        lock(&self.g.state).items.len()
    }
}

/// A producer's handle on a [`Queue`].
pub struct Sender<'q, T: Send + 'static> {
    q: &'q Queue<T>,
}

impl<T: Send + 'static> Sender<'_, T> {
    /// Add an item, waiting while the queue is full. False once the stop is raised or the
    /// queue was closed.
    pub fn push(&self, item: T) -> bool {
        self.q.push(item)
    }
}

impl<T: Send + 'static> Drop for Sender<'_, T> {
    fn drop(&mut self) {
        let mut g = lock(&self.q.g.state);
        g.senders -= 1;
        if g.senders == 0 {
            g.closed = true;
            drop(g);
            self.q.g.cvs[0].notify_all();
        }
    }
}

struct OrderedState<T> {
    ready: BTreeMap<u64, T>,
    next: u64,
    end: Option<u64>,
}

/// Finished items keyed by sequence number, handed out strictly in sequence order to takers,
/// the [`Placement`] deciding which taker may take which item.
pub struct Ordered<T> {
    g: Arc<Guarded<OrderedState<T>>>,
    stop: Stop,
    placement: Placement,
}

impl<T: Send + 'static> Ordered<T> {
    /// An empty hand-out; `placement` says who may take item n.
    pub fn new(placement: Placement, stop: &Stop) -> Self {
        Ordered {
            g: guarded_state(
                OrderedState {
                    ready: BTreeMap::new(),
                    next: 0,
                    end: None,
                },
                stop,
            ),
            stop: stop.clone(),
            placement,
        }
    }

    /// Put a finished item. Only the item the takers wait for (the next in sequence) wakes
    /// one (every one, when the placement decides who takes it); `take` passes the turn on
    /// when the following item is already there.
    pub fn put(&self, seq: u64, item: T) {
        let mut g = lock(&self.g.state);
        g.ready.insert(seq, item);
        let wanted = seq == g.next;
        drop(g);
        if wanted {
            self.notify();
        }
    }

    /// Say how many items there will be in all.
    pub fn finish(&self, count: u64) {
        lock(&self.g.state).end = Some(count);
        self.g.cvs[0].notify_all();
    }

    /// The next item in sequence order that `taker` may take, waiting for it; `None` at the
    /// end or once the stop is raised.
    pub fn take(&self, taker: usize) -> Option<(u64, T)> {
        let mut g = lock(&self.g.state);
        loop {
            if self.stop.is_raised() {
                return None;
            }
            let next = g.next;
            if g.end.is_some_and(|e| next >= e) {
                return None;
            }
            if self.placement.may_take(taker, next) {
                if let Some(x) = g.ready.remove(&next) {
                    g.next += 1;
                    // Wake the next taker if it can go on at once: its item is there, or the
                    // sequence has ended and every other taker must see that.
                    let at_end = g.end.is_some_and(|e| g.next >= e);
                    let more = g.ready.contains_key(&g.next);
                    drop(g);
                    if at_end {
                        self.g.cvs[0].notify_all();
                    } else if more {
                        self.notify();
                    }
                    return Some((next, x));
                }
            }
            g = wait(&self.g.cvs[0], g);
        }
    }

    fn notify(&self) {
        if self.placement.any_taker() {
            self.g.cvs[0].notify_one();
        } else {
            self.g.cvs[0].notify_all();
        }
    }
}

/// A state shared between threads, changed under its lock and waited on until a condition
/// holds. Raising the stop wakes every waiter.
pub struct Cell<S> {
    g: Arc<Guarded<S>>,
    stop: Stop,
}

impl<S: Send + 'static> Cell<S> {
    /// A cell holding `s`.
    pub fn new(s: S, stop: &Stop) -> Self {
        Cell {
            g: guarded_state(s, stop),
            stop: stop.clone(),
        }
    }

    /// Change the state and wake every waiter.
    pub fn update<R>(&self, f: impl FnOnce(&mut S) -> R) -> R {
        let r = f(&mut lock(&self.g.state));
        self.g.cvs[0].notify_all();
        r
    }

    /// Wait until `f` gives a value (it is called under the lock, first at once, then after
    /// every change); `None` once the stop is raised.
    pub fn wait_for<R>(&self, mut f: impl FnMut(&mut S) -> Option<R>) -> Option<R> {
        let mut g = lock(&self.g.state);
        loop {
            if self.stop.is_raised() {
                return None;
            }
            if let Some(r) = f(&mut g) {
                drop(g);
                // What `f` took may let another waiter go on.
                self.g.cvs[0].notify_all();
                return Some(r);
            }
            g = wait(&self.g.cvs[0], g);
        }
    }

    /// The state, taken out.
    pub fn into_inner(self) -> S
    where
        S: Default,
    {
        std::mem::take(&mut *lock(&self.g.state))
    }
}

/// Run a thread body, turning a panic into [`Error::Internal`] (never a refusal or damage)
/// instead of tearing the process down.
pub fn guarded<T>(what: &'static str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(p) => {
            let detail = p
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| p.downcast_ref::<String>().cloned());
            Err(Error::Internal {
                what: format!("the {what} thread panicked"),
                detail,
            })
        }
    }
}

/// Start a thread of a scope, for the part `what` of an operation. When the system refuses a
/// thread (a process or memory limit), the stop fails with a refusal (every other part then ends) and `None` is
/// returned, instead of the panic of `Scope::spawn` that would leave the started parts
/// waiting.
pub fn spawn_part<'scope, 'env, T: Send + 'scope>(
    s: &'scope std::thread::Scope<'scope, 'env>,
    stop: &Stop,
    what: &'static str,
    f: impl FnOnce() -> T + Send + 'scope,
) -> Option<std::thread::ScopedJoinHandle<'scope, T>> {
    match std::thread::Builder::new().spawn_scoped(s, f) {
        Ok(h) => Some(h),
        Err(e) => {
            stop.fail(Error::refused(
                crate::error::Refusal::Usage,
                format!(
                    "cannot start a thread for the {what}: {}; use fewer threads (-T)",
                    crate::error::io_words(&e)
                ),
            ));
            None
        }
    }
}

/// Raises a stop if the thread that holds it unwinds (a panic in an operation's own thread),
/// so the parts it started do not wait forever for what it would have done.
pub struct RaiseOnPanic<'a>(pub &'a Stop);

impl Drop for RaiseOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.fail(Error::Internal {
                what: "the operation's own thread panicked".into(),
                detail: None,
            });
        }
    }
}

/// Run a thread body under `stop`: its error raises the stop (the first error wins).
pub fn run_part(stop: &Stop, what: &'static str, f: impl FnOnce() -> Result<()>) {
    if let Err(e) = guarded(what, f) {
        stop.fail(e);
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
        let stop = Stop::new();
        let o: Ordered<u64> = Ordered::new(Placement::FirstFree, &stop);
        let taken = Mutex::new(Vec::new());
        std::thread::scope(|s| {
            for t in 0..4 {
                let (o, taken) = (&o, &taken);
                s.spawn(move || {
                    let mut mine = Vec::new();
                    while let Some((seq, v)) = o.take(t) {
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

    /// With a fixed rotation, taker i gets exactly the items i, i + n, i + 2n ...
    #[test]
    fn rotation_gives_each_taker_its_own_items() {
        const N: u64 = 600;
        let stop = Stop::new();
        let o: Ordered<u64> = Ordered::new(Placement::Rotation { takers: 3 }, &stop);
        let got = Mutex::new(vec![Vec::new(); 3]);
        std::thread::scope(|s| {
            for t in 0..3 {
                let (o, got) = (&o, &got);
                s.spawn(move || {
                    while let Some((seq, _)) = o.take(t) {
                        got.lock().unwrap()[t].push(seq);
                    }
                });
            }
            for x in (0..N).rev() {
                o.put(x, x);
            }
            o.finish(N);
        });
        for (t, v) in got.into_inner().unwrap().into_iter().enumerate() {
            let want: Vec<u64> = (0..N).filter(|x| x % 3 == t as u64).collect();
            assert_eq!(v, want);
        }
    }

    /// A small queue between several producers and consumers delivers every item once, and
    /// dropping the last sender ends every consumer.
    #[test]
    fn queue_delivers_every_item_once_and_closes_when_senders_drop() {
        let stop = Stop::new();
        let q: Queue<u32> = Queue::new(2, &stop);
        let got = Mutex::new(Vec::new());
        std::thread::scope(|s| {
            for _ in 0..3 {
                s.spawn(|| {
                    while let Some(x) = q.pop() {
                        got.lock().unwrap().push(x);
                    }
                });
            }
            for p in 0..3u32 {
                let tx = q.sender();
                s.spawn(move || {
                    for i in 0..1000 {
                        assert!(tx.push(p * 1000 + i));
                    }
                });
            }
        });
        let mut all = got.into_inner().unwrap();
        all.sort_unstable();
        assert_eq!(all, (0..3000).collect::<Vec<_>>());
    }

    /// Raising the stop releases producers blocked on a full queue, takers waiting for an item,
    /// and pool waiters, at once, and a child stop with them.
    #[test]
    fn stop_releases_every_waiter() {
        let stop = Stop::new();
        let op = stop.child();
        let q: Queue<u32> = Queue::new(1, &op);
        let o: Ordered<u32> = Ordered::new(Placement::FirstFree, &op);
        let pool = Pool::new(1, 16, &op);
        let held = pool.get();
        assert!(held.is_some());
        std::thread::scope(|s| {
            let tx = q.sender();
            let p = s.spawn(move || {
                let mut pushed = 0;
                while tx.push(1) {
                    pushed += 1;
                }
                pushed
            });
            let t = s.spawn(|| o.take(0).is_none());
            let w = s.spawn(|| pool.get().is_none());
            while q.len() == 0 {
                std::thread::yield_now();
            }
            stop.raise();
            assert_eq!(p.join().unwrap(), 1);
            assert!(t.join().unwrap());
            assert!(w.join().unwrap());
        });
        assert!(op.is_raised());
        assert!(matches!(op.outcome(()), Err(Error::Interrupted)));
    }

    #[test]
    fn a_panicking_part_is_an_internal_error_not_a_refusal() {
        let stop = Stop::new();
        run_part(&stop, "test", || panic!("boom"));
        match stop.take_error() {
            Some(Error::Internal { what, detail }) => {
                assert!(what.contains("test thread panicked"));
                assert_eq!(detail.as_deref(), Some("boom"));
            }
            other => panic!("{other:?}"),
        }
    }
}
