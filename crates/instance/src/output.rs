//! Capture of a runtime's stdout and stderr (one pipe, so the two keep their order) and its
//! attribution to request ids.
//!
//! A runtime writes its output and then posts its response. The bytes are in the pipe before the
//! response arrives, but the reader task may not have read them yet; [`Output::drain`] empties
//! the pipe itself, in the caller, before an invocation's log is closed, so that a line printed
//! before the response always belongs to that invocation. (The pipe's readiness is known by then:
//! the runtime wrote the pipe before the socket, so the I/O driver saw the pipe's event first.)

use std::io::ErrorKind;
use std::os::fd::OwnedFd;
use std::sync::{Arc, Mutex, Weak};

use bytes::Bytes;
use tokio::net::unix::pipe;

use crate::extensions::Extensions;
use crate::telemetry::Telemetry;

/// Most bytes of log kept for one invocation; the oldest go first.
const INVOCATION_LOG_MAX: usize = 1024 * 1024;
/// Most bytes of unattributed output kept (start-up output, shown when a start fails).
const INSTANCE_TAIL_MAX: usize = 8 * 1024;
/// Bytes read from the pipe at once.
const READ_CHUNK: usize = 64 * 1024;

#[derive(Default)]
struct State {
    /// Invocations in flight (their request ids, shared with the Runtime API), with the output
    /// attributed to each so far.
    active: Vec<(Bytes, Vec<u8>)>,
    /// Output that no single invocation owns.
    unattributed: Vec<u8>,
    eof: bool,
}

pub(crate) struct Output {
    state: Mutex<State>,
    /// The pipe, read by the reader task when it turns readable and by [`Output::drain`].
    rx: Arc<pipe::Receiver>,
    /// What was read and not yet handed out as lines; one reader at a time keeps them in order.
    reader: Mutex<Reader>,
    extensions: Arc<Extensions>,
    telemetry: Arc<Telemetry>,
}

struct Reader {
    buf: Vec<u8>,
    /// The unfinished last line.
    partial: Vec<u8>,
    /// False once the pipe reached its end.
    open: bool,
}

/// How the extension supervisor marks a line of an extension's output:
/// `\x1fext:<script name>\x1f<line>` (runtimes/extensions/supervisor.sh).
const EXT_MARK: &[u8] = b"\x1fext:";

/// The level of a line in FunctionGraph's logger format
/// `<ISO-8601 time> <request id> <LEVEL> <message>` (SPEC.md 4), if it is one.
fn level_of(line: &str) -> Option<&str> {
    let level = line.split(' ').nth(2)?;
    ["INFO", "WARN", "ERROR", "DEBUG"]
        .contains(&level)
        .then_some(level)
}

fn push_capped(buf: &mut Vec<u8>, data: &[u8], cap: usize) {
    buf.extend_from_slice(data);
    if buf.len() > cap {
        let cut = buf.len() - cap;
        buf.drain(..cut);
    }
}

impl Output {
    /// Starts reading `reader` on a task and returns the shared capture.
    pub(crate) fn start(
        reader: std::io::PipeReader,
        extensions: Arc<Extensions>,
        telemetry: Arc<Telemetry>,
    ) -> std::io::Result<Arc<Output>> {
        let rx = Arc::new(pipe::Receiver::from_owned_fd(OwnedFd::from(reader))?);
        let out = Arc::new(Output {
            state: Mutex::new(State::default()),
            rx: Arc::clone(&rx),
            reader: Mutex::new(Reader {
                buf: vec![0u8; READ_CHUNK],
                partial: Vec::new(),
                open: true,
            }),
            extensions,
            telemetry,
        });
        // The reader holds a weak reference: the capture lives as long as its instance does.
        tokio::spawn(read_loop(rx, Arc::downgrade(&out)));
        Ok(out)
    }

    pub(crate) fn begin(&self, request_id: Bytes) {
        let mut st = self.state.lock().expect("output lock is never poisoned");
        st.active.push((request_id, Vec::new()));
    }

    /// Empties the pipe into the attributed buffers, then closes and returns `request_id`'s log.
    pub(crate) fn finish(&self, request_id: &[u8]) -> Vec<u8> {
        self.drain();
        let mut st = self.state.lock().expect("output lock is never poisoned");
        match st.active.iter().position(|(id, _)| id == request_id) {
            Some(i) => st.active.swap_remove(i).1,
            None => Vec::new(),
        }
    }

    /// Reads everything written to the pipe so far and hands it out as lines, an unfinished
    /// last line included. No task round trip: a warm call pays one lock, and a read only when
    /// the pipe holds something.
    pub(crate) fn drain(&self) {
        self.read(true, false);
    }

    /// [`Output::drain`] for what a process wrote before it told fgs something over another
    /// channel (an extension's last words before its exit report). `drain` reads only what
    /// the reactor has already seen arrive, and under load it may not have seen it yet: this
    /// first gives the reactor up to `wait` to notice the pipe is readable.
    pub(crate) async fn drain_written(&self, wait: std::time::Duration) {
        let _ = tokio::time::timeout(wait, self.rx.readable()).await;
        self.drain();
    }

    /// Reads what the pipe holds now (nothing once `ended`: the pipe failed); hands out complete
    /// lines, or with `all` (and at the end) everything. Whether the pipe is still open.
    fn read(&self, all: bool, ended: bool) -> bool {
        let mut r = self.reader.lock().expect("reader lock is never poisoned");
        let Reader { buf, partial, open } = &mut *r;
        if *open {
            *open = !ended && read_available(&self.rx, buf, partial);
        }
        flush_lines(self, partial, all || !*open);
        if !*open {
            self.mark_eof();
        }
        *open
    }

    /// The last output no invocation owned (e.g. what a runtime printed before it failed to
    /// start), as text.
    pub(crate) fn unattributed_tail(&self) -> String {
        let st = self.state.lock().expect("output lock is never poisoned");
        String::from_utf8_lossy(&st.unattributed).into_owned()
    }

    /// Adds a platform line to an invocation's log while it is open (else to the instance's).
    pub(crate) fn note(&self, request_id: &str, line: &[u8]) {
        let mut st = self.state.lock().expect("output lock is never poisoned");
        match st
            .active
            .iter_mut()
            .find(|(id, _)| id == request_id.as_bytes())
        {
            Some((_, buf)) => push_capped(buf, line, INVOCATION_LOG_MAX),
            None => push_capped(&mut st.unattributed, line, INSTANCE_TAIL_MAX),
        }
    }

    /// Attributes complete lines: to the one invocation in flight, or, when none or several are,
    /// to the instance (a concurrent runtime's lines cannot be told apart). Lines the extension
    /// supervisor marked belong to their extension instead.
    fn record(&self, lines: &[u8]) {
        if !self.extensions.any() && !self.telemetry.enabled() {
            let mut st = self.state.lock().expect("output lock is never poisoned");
            if st.active.len() == 1 {
                push_capped(&mut st.active[0].1, lines, INVOCATION_LOG_MAX);
            } else {
                push_capped(&mut st.unattributed, lines, INSTANCE_TAIL_MAX);
            }
            return;
        }
        for line in lines.split_inclusive(|&b| b == b'\n') {
            if let Some(rest) = line.strip_prefix(EXT_MARK) {
                let text = String::from_utf8_lossy(rest);
                let text = text.trim_end_matches('\n');
                let (name, msg) = text.split_once('\x1f').unwrap_or(("", text));
                self.extensions.record_line(name, msg);
                self.telemetry.emit(
                    "extension",
                    "extension",
                    serde_json::json!({"extensionName": name, "message": msg}),
                );
                let mut st = self.state.lock().expect("output lock is never poisoned");
                let shown = format!("[{name}] {msg}\n");
                push_capped(&mut st.unattributed, shown.as_bytes(), INSTANCE_TAIL_MAX);
                continue;
            }
            let mut st = self.state.lock().expect("output lock is never poisoned");
            let owner = if st.active.len() == 1 {
                push_capped(&mut st.active[0].1, line, INVOCATION_LOG_MAX);
                Some(String::from_utf8_lossy(&st.active[0].0).into_owned())
            } else {
                push_capped(&mut st.unattributed, line, INSTANCE_TAIL_MAX);
                None
            };
            drop(st);
            if self.telemetry.enabled() {
                let text = String::from_utf8_lossy(line);
                let text = text.trim_end_matches('\n');
                self.telemetry.emit(
                    "function",
                    "function",
                    serde_json::json!({"traceId": owner, "level": level_of(text), "message": text}),
                );
            }
        }
    }

    fn mark_eof(&self) {
        self.state
            .lock()
            .expect("output lock is never poisoned")
            .eof = true;
    }
}

/// Reads whatever the pipe holds now. Returns false at end of file.
fn read_available(rx: &pipe::Receiver, buf: &mut [u8], partial: &mut Vec<u8>) -> bool {
    loop {
        match rx.try_read(buf) {
            Ok(0) => return false,
            Ok(n) => partial.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => return false,
        }
    }
}

/// Hands complete lines to the capture; with `all`, the unfinished last line too.
fn flush_lines(out: &Output, partial: &mut Vec<u8>, all: bool) {
    let end = if all {
        partial.len()
    } else {
        match partial.iter().rposition(|&b| b == b'\n') {
            Some(i) => i + 1,
            None => return,
        }
    };
    if end == 0 {
        return;
    }
    let mut chunk: Vec<u8> = partial.drain(..end).collect();
    if chunk.last() != Some(&b'\n') {
        chunk.push(b'\n');
    }
    out.record(&chunk);
}

async fn read_loop(rx: Arc<pipe::Receiver>, out: Weak<Output>) {
    loop {
        let ready = rx.readable().await;
        let Some(o) = out.upgrade() else { return };
        if !o.read(false, ready.is_err()) {
            return;
        }
    }
}
