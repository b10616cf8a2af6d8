//! Pre-started runtimes (docs/sandbox.md, "Pre-started interpreters"): per kind (an opaque key
//! the caller chooses, e.g. one interpreter with its arguments), runtimes already started in
//! pre-warmed sandboxes with no function, held on fd 3 until [`Running::specialize`] makes
//! one a function's instance. A kind is kept stocked once a caller asked for it
//! ([`Sandbox::prestart`]): runtimes nobody uses cost nothing. Its size is the configured
//! count of its class (`python`, `nodejs`).

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::process::Running;
use crate::sandbox::Sandbox;
use crate::spec::ExecSpec;

/// A held runtime and its sandbox's Runtime API listener.
#[derive(Debug)]
pub struct Prestarted {
    pub running: Running,
    pub listener: TcpListener,
    pub api_addr: SocketAddr,
}

#[derive(Debug)]
struct Kind {
    spec: ExecSpec,
    want: usize,
    ready: Vec<Prestarted>,
}

#[derive(Debug, Default)]
struct State {
    kinds: HashMap<String, Kind>,
    closed: bool,
    last_take: Option<Instant>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// The held runtimes of one [`Sandbox`].
#[derive(Debug, Default)]
pub(crate) struct Pool {
    state: Mutex<State>,
    cv: Condvar,
}

/// As for pre-warmed sandboxes: an interpreter's start takes tens of milliseconds of cpu,
/// which the cold start that just took one must not compete with.
const REFILL_SETTLE: Duration = Duration::from_millis(150);

impl Pool {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("prestart lock is never poisoned")
    }
}

impl Sandbox {
    /// Keeps runtimes of kind `key` (started by `spec`, without its code) held from now on,
    /// as many as the configured count of `class`. Does nothing without isolation as root or
    /// with a count of 0.
    pub fn prestart(&self, key: &str, class: &str, spec: impl FnOnce() -> ExecSpec) {
        let want = self.prestart_count(class);
        if want == 0 || !self.isolated() || self.inner.host.rootless {
            return;
        }
        let pool = &self.inner.prestart;
        let mut st = pool.lock();
        if st.closed || st.kinds.contains_key(key) {
            return;
        }
        st.kinds.insert(
            key.to_string(),
            Kind {
                spec: spec(),
                want,
                ready: Vec::new(),
            },
        );
        if st.thread.is_none() {
            let s = self.clone();
            st.thread = Some(
                std::thread::Builder::new()
                    .name("fgs-prestart".into())
                    .spawn(move || s.refill_held())
                    .expect("spawning the pre-start thread"),
            );
        }
        pool.cv.notify_all();
    }

    /// The configured count of `class` (`--prestart`).
    pub fn prestart_count(&self, class: &str) -> usize {
        self.inner
            .host
            .cfg
            .prestart
            .iter()
            .find(|(c, _)| c == class)
            .map_or(0, |(_, n)| *n)
    }

    /// A held runtime of kind `key`, if one is ready.
    pub fn take_prestarted(&self, key: &str) -> Option<Prestarted> {
        let pool = &self.inner.prestart;
        let mut st = pool.lock();
        let p = st.kinds.get_mut(key)?.ready.pop();
        st.last_take = Some(Instant::now());
        pool.cv.notify_all();
        p
    }

    /// Held runtimes ready now, of every kind (the `fgs_interpreters_prestarted` gauge).
    pub fn prestarted(&self) -> usize {
        self.inner
            .prestart
            .lock()
            .kinds
            .values()
            .map(|k| k.ready.len())
            .sum()
    }

    /// Held runtimes specialized so far ([`Running::specialize`] that succeeded).
    pub fn specialized(&self) -> u64 {
        crate::process::specialized()
    }

    /// Ends the held runtimes and the thread that starts them.
    pub(crate) fn shutdown_prestart(&self) {
        let pool = &self.inner.prestart;
        let (kinds, thread) = {
            let mut st = pool.lock();
            st.closed = true;
            pool.cv.notify_all();
            (std::mem::take(&mut st.kinds), st.thread.take())
        };
        drop(kinds);
        if let Some(t) = thread {
            let _ = t.join();
        }
    }

    /// The pre-start loop: tops every kind up to its count.
    fn refill_held(self) {
        let pool = Arc::clone(&self.inner);
        let pool = &pool.prestart;
        loop {
            let (key, spec) = {
                let mut st = pool.lock();
                loop {
                    if st.closed {
                        return;
                    }
                    let short = st
                        .kinds
                        .iter()
                        .filter(|(_, k)| k.ready.len() < k.want)
                        .min_by_key(|(_, k)| k.ready.len())
                        .map(|(key, k)| (key.clone(), k.spec.clone(), k.ready.is_empty()));
                    let Some((key, spec, empty)) = short else {
                        st = pool.cv.wait(st).expect("prestart lock is never poisoned");
                        continue;
                    };
                    let left = st
                        .last_take
                        .map(|t| REFILL_SETTLE.saturating_sub(t.elapsed()))
                        .filter(|l| !l.is_zero() && !empty);
                    match left {
                        Some(l) => {
                            st = pool
                                .cv
                                .wait_timeout(st, l)
                                .expect("prestart lock is never poisoned")
                                .0;
                        }
                        None => break (key, spec),
                    }
                }
            };
            match self.start_held(&spec) {
                Ok(p) => {
                    let mut st = pool.lock();
                    if st.closed {
                        return;
                    }
                    if let Some(k) = st.kinds.get_mut(&key) {
                        k.ready.push(p);
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "pre-starting a runtime failed");
                    std::thread::sleep(Duration::from_secs(1));
                }
            }
        }
    }

    fn start_held(&self, spec: &ExecSpec) -> Result<Prestarted, crate::SandboxError> {
        let mut prepared = self.prepare()?;
        let api_addr = prepared.api_addr();
        let listener = prepared
            .take_listener()
            .expect("a fresh sandbox has its listener");
        let running = prepared.spawn_held(spec)?;
        Ok(Prestarted {
            running,
            listener,
            api_addr,
        })
    }
}
