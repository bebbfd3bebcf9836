//! The one async runtime of the process, kept inside this crate: bak-core's devices are
//! synchronous, so a device call blocks its (std) thread on a future run here.

use std::future::Future;
use std::sync::OnceLock;

use tokio::runtime::Runtime;
use tokio::task::JoinHandle;

fn rt() -> &'static Runtime {
    static RT: OnceLock<Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            // HTTP is I/O bound: two workers keep every request of 64 families moving.
            .worker_threads(2)
            .thread_name("bak-store")
            .enable_all()
            .build()
            .expect("the tokio runtime starts (threads and an epoll instance)")
    })
}

/// Run a future to its end on the calling thread (never called from inside the runtime).
pub(crate) fn block_on<F: Future>(f: F) -> F::Output {
    rt().block_on(f)
}

/// Start a future on the runtime; its handle is awaited with [`block_on`].
pub(crate) fn spawn<F>(f: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    rt().spawn(f)
}
