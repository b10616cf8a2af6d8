//! Shards: the threads that serve requests, each with its own single-threaded tokio runtime
//! (thread-per-core, docs/architecture.md).
//!
//! A connection is served on one shard from accept to close, and so are the instances a shard
//! starts: their Runtime API server runs where they were launched. [`Pool`](crate::Pool) hands a
//! shard's callers that shard's idle instances first, so a warm invocation (the caller's
//! connection, the hand-over to the instance, its Runtime API exchange) stays on one thread with
//! no cross-thread wake-up. Without [`install`] (tests, tools) there is one shard, numbered 0,
//! and [`spawn`] is `tokio::spawn`.

use std::cell::Cell;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

use tokio::runtime::Handle;
use tokio::task::JoinHandle;

thread_local! {
    static CURRENT: Cell<usize> = const { Cell::new(0) };
}

static HANDLES: OnceLock<Vec<Handle>> = OnceLock::new();
static NEXT: AtomicUsize = AtomicUsize::new(0);

/// The shard this thread serves (0 outside any shard).
pub fn current() -> usize {
    CURRENT.with(Cell::get)
}

/// Marks this thread as shard `i`; each shard's thread calls it once, before serving.
pub fn enter(i: usize) {
    CURRENT.with(|c| c.set(i));
}

/// Registers the shards' runtimes, shard `i` at index `i`. Only the first call counts.
pub fn install(handles: Vec<Handle>) {
    let _ = HANDLES.set(handles);
}

/// Spawns `fut` on the next shard in turn, so that connections and instances started ahead
/// spread evenly over the threads.
pub fn spawn<F>(fut: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    match HANDLES.get() {
        Some(h) if !h.is_empty() => h[NEXT.fetch_add(1, Ordering::Relaxed) % h.len()].spawn(fut),
        _ => tokio::spawn(fut),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thread_is_shard_zero_until_it_enters_one() {
        std::thread::spawn(|| {
            assert_eq!(current(), 0);
            enter(3);
            assert_eq!(current(), 3);
        })
        .join()
        .unwrap();
        assert_eq!(current(), 0);
    }
}
