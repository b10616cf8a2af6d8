//! HTTP/1.1 from fgs to a server inside an instance (an extension's `/extension/invoke`, a
//! telemetry subscriber), over sockets made in the instance's network namespace. The connection
//! is kept and reused; a broken one is replaced once per request.

use std::time::Duration;

use bytes::Bytes;
use fgs_sandbox::ProcessHandle;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::sync::Mutex;

pub(crate) struct LoopbackClient {
    process: ProcessHandle,
    port: u16,
    conn: Mutex<Option<SendRequest<Full<Bytes>>>>,
}

impl LoopbackClient {
    pub(crate) fn new(process: ProcessHandle, port: u16) -> LoopbackClient {
        LoopbackClient {
            process,
            port,
            conn: Mutex::new(None),
        }
    }

    async fn connect(&self, timeout: Duration) -> Result<SendRequest<Full<Bytes>>, String> {
        let process = self.process.clone();
        let port = self.port;
        // The namespace switch happens on a thread of its own; keep it off the async workers.
        let stream = tokio::task::spawn_blocking(move || process.connect(port, timeout))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("connecting to 127.0.0.1:{port}: {e}"))?;
        stream.set_nonblocking(true).map_err(|e| e.to_string())?;
        let _ = stream.set_nodelay(true);
        let stream = tokio::net::TcpStream::from_std(stream).map_err(|e| e.to_string())?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(sender)
    }

    /// POSTs a JSON body and returns the status, all within `timeout`.
    pub(crate) async fn post(
        &self,
        path: &str,
        body: Bytes,
        timeout: Duration,
    ) -> Result<StatusCode, String> {
        match tokio::time::timeout(timeout, self.post_inner(path, body, timeout)).await {
            Ok(r) => r,
            Err(_) => {
                // The request may still be in flight on that connection: never reuse it.
                *self.conn.lock().await = None;
                Err(format!("no answer within {} ms", timeout.as_millis()))
            }
        }
    }

    async fn post_inner(
        &self,
        path: &str,
        body: Bytes,
        timeout: Duration,
    ) -> Result<StatusCode, String> {
        let mut guard = self.conn.lock().await;
        for attempt in 0..2 {
            let mut sender = match guard.take() {
                Some(s) if !s.is_closed() => s,
                _ => self.connect(timeout).await?,
            };
            if sender.ready().await.is_err() {
                continue;
            }
            let req = Request::builder()
                .method(Method::POST)
                .uri(path)
                .header(http::header::HOST, format!("127.0.0.1:{}", self.port))
                .header(http::header::CONTENT_TYPE, "application/json")
                .body(Full::new(body.clone()))
                .expect("static request parts are valid");
            match sender.send_request(req).await {
                Ok(resp) => {
                    let status = resp.status();
                    // Drain the body so the connection can carry the next request.
                    let _ = resp.into_body().collect().await;
                    *guard = Some(sender);
                    return Ok(status);
                }
                // A kept connection the server closed meanwhile: one fresh try.
                Err(e) if attempt == 0 && (e.is_canceled() || e_is_closed(&e)) => continue,
                Err(e) => return Err(e.to_string()),
            }
        }
        Err("the connection was closed".to_string())
    }
}

fn e_is_closed(e: &hyper::Error) -> bool {
    e.is_closed() || e.is_incomplete_message()
}
