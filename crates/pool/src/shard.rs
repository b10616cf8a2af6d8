//! Shards: the threads that serve requests, each with its own single-threaded tokio runtime
//! (thread-per-core, docs/architecture.md).
//!
//! [`run`] starts them: shard 0 on the calling thread, which also carries `fgs serve`'s control
//! tasks (start-up, async dispatch, timers, log writing, shutdown), shards 1.. on threads of
//! their own until the main future returns. A connection is served on one shard from accept to
//! close, and so are the instances a shard starts: their Runtime API server runs where they were
//! launched. [`Pool`](crate::Pool) hands a shard's callers that shard's idle instances first, so
//! a warm invocation (the caller's connection, the hand-over to the instance, its Runtime API
//! exchange) stays on one thread with no cross-thread wake-up. Without [`run`] or [`install`]
//! (tests, tools) there is one shard, numbered 0, and [`spawn`] is `tokio::spawn`.
//!
//! A shard that just worked keeps polling for I/O for a short window instead of sleeping
//! ([`poll_after_work`]): a warm invocation waits twice for another process (the runtime's
//! answer, the client's next request), a few tens of microseconds each, and being woken from
//! sleep costs about as much again on a virtual machine's idle cpu.
//!
//! The bench's relay floor (examples/relay_floor.rs) is served by this same code.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use tokio::runtime::{Builder, Handle, Runtime};
use tokio::task::JoinHandle;

thread_local! {
    static CURRENT: Cell<usize> = const { Cell::new(0) };
    static POLLER: RefCell<Option<Waker>> = const { RefCell::new(None) };
}

static HANDLES: OnceLock<Vec<Handle>> = OnceLock::new();
static NEXT: AtomicUsize = AtomicUsize::new(0);

/// A poll round of the shard's own tasks and I/O that took this long ran some work.
const WORK: Duration = Duration::from_micros(5);

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

/// Spawns `fut` on shard `i` modulo the number of shards.
pub fn spawn_on<F>(i: usize, fut: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    match HANDLES.get() {
        Some(h) if !h.is_empty() => h[i % h.len()].spawn(fut),
        _ => tokio::spawn(fut),
    }
}

fn runtime() -> std::io::Result<Runtime> {
    Builder::new_current_thread()
        .enable_all()
        .on_thread_unpark(unparked)
        .build()
}

/// Runs `main` on shard 0 with `n` shards in all (0: one per cpu the process may run on), each
/// polling for `window` after its work ([`poll_after_work`]; zero: never), and stops the other
/// shards once `main` returns. Errors are those of making a runtime or a thread.
pub fn run<F>(n: usize, window: Duration, main: F) -> std::io::Result<F::Output>
where
    F: Future,
{
    let n = match n {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };
    let first = runtime()?;
    let mut handles = vec![first.handle().clone()];
    let mut stops = Vec::new();
    let mut threads = Vec::new();
    for i in 1..n {
        let rt = runtime()?;
        handles.push(rt.handle().clone());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        stops.push(stop);
        let thread = std::thread::Builder::new()
            .name(format!("fgs-shard-{i}"))
            .spawn(move || {
                let _ = serve_shard(&rt, i, window, stopped);
            })?;
        threads.push(thread);
    }
    install(handles);
    let out = serve_shard(&first, 0, window, main);
    drop(stops);
    for t in threads {
        let _ = t.join();
    }
    Ok(out)
}

/// Makes this thread shard `i` and runs `fut` on its runtime, the poller beside it.
fn serve_shard<F: Future>(rt: &Runtime, i: usize, window: Duration, fut: F) -> F::Output {
    enter(i);
    if !window.is_zero() {
        rt.spawn(poll_after_work(window));
    }
    rt.block_on(fut)
}

/// The runtime's `on_thread_unpark` hook: the shard's thread woke up, so work arrived.
fn unparked() {
    if let Some(w) = POLLER.with(|p| p.borrow_mut().take()) {
        w.wake();
    }
}

/// When a polling shard goes to sleep: `window` after the last round that did work.
struct Window {
    window: Duration,
    until: Instant,
}

impl Window {
    fn new(now: Instant, window: Duration) -> Self {
        Window {
            window,
            until: now + window,
        }
    }

    /// Whether to poll again after a round that ended at `now` and took `took` of the thread's
    /// time: a round that ran work opens a new window.
    fn again(&mut self, now: Instant, took: Duration) -> bool {
        if took > WORK {
            self.until = now + self.window;
        }
        now < self.until
    }
}

/// Each time the shard's thread wakes up, keeps it polling for I/O (never sleeping) until it
/// has done no work of its own for `window`. Every round first offers the cpu to any other
/// thread that wants it, so the runtimes and clients sharing the cpu are not held up. Only the
/// round itself is timed, not the offer, so time other threads ran does not count as work and
/// a busy neighbour does not keep the shard polling. It is timed with the monotonic clock
/// (vDSO, no system call); the thread's cpu clock was one system call per round, 2 per
/// invocation at 64 connections (bench/README.md "Throughput").
async fn poll_after_work(window: Duration) {
    loop {
        let mut registered = false;
        std::future::poll_fn(|cx| {
            if registered {
                return Poll::Ready(());
            }
            registered = true;
            POLLER.with(|p| *p.borrow_mut() = Some(cx.waker().clone()));
            Poll::Pending
        })
        .await;
        let mut w = Window::new(Instant::now(), window);
        loop {
            std::thread::yield_now();
            let start = Instant::now();
            // Back to the scheduler, which polls the I/O driver without blocking and runs what
            // it woke before it polls this task again.
            tokio::task::yield_now().await;
            let now = Instant::now();
            if !w.again(now, now - start) {
                break;
            }
        }
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

    #[test]
    fn a_window_closes_after_rounds_without_work_and_reopens_with_work() {
        let t0 = Instant::now();
        let us = Duration::from_micros;
        let mut w = Window::new(t0, us(50));
        // Idle rounds keep polling until the window has passed.
        assert!(w.again(t0 + us(10), us(1)));
        assert!(w.again(t0 + us(49), us(2)));
        assert!(!w.again(t0 + us(50), us(1)));
        // A round that ran work opens a new window from its end.
        let mut w = Window::new(t0, us(50));
        assert!(w.again(t0 + us(40), us(20)));
        assert!(w.again(t0 + us(89), us(1)));
        assert!(!w.again(t0 + us(90), us(1)));
        // Exactly the threshold is not work.
        let mut w = Window::new(t0, us(50));
        assert!(!w.again(t0 + us(60), WORK));
    }
}
