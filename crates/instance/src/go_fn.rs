//! Go functions (`Go1.x`): FunctionGraph's Go SDK makes the function's binary a Go `net/rpc`
//! server over HTTP on `RUNTIME_API_ADDR`, and fgs plays the platform's side. The binary is
//! started with that address set to [`PORT`] inside the instance (extensions keep fgs's own
//! API at `EXTENSION_API_ADDR`); once `CONNECT /_goRPC_` is answered the instance is ready, and
//! each event is one call of `Function.Invoke` with the SDK's `InvokeRequest{Payload, Header}`
//! (the request id and the credentials' headers, from which the SDK builds its context) whose
//! `InvokeResponse{StatusCode, Payload}` is the result. A returned error or a panic comes back
//! as the call's error, the SDK's `{"errorMessage","errorType","stackTrace"}` JSON: 4002.
//! The protocol's names are facts of FunctionGraph's public Go runtime; the code is fgs's.

use std::sync::Arc;

use bytes::Bytes;
use fgs_core::func_error::codes;
use fgs_core::limits::SYNC_PAYLOAD_MAX;
use fgs_core::FunctionError;
use fgs_sandbox::ProcessHandle;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::config::Request;
use crate::fn_server::{connect_tcp, retry, Backoff};
use crate::gob::{self, Decoder, Value, Writer};
use crate::runtime_api::{ApiState, RuntimeReply, StartState};

/// Where the function's RPC server listens inside the instance (its `RUNTIME_API_ADDR`).
pub(crate) const PORT: u16 = 8001;
const METHOD: &str = "Function.Invoke";
/// The gob type ids fgs's encoder gives its types, in the order Go's would.
const REQUEST: i64 = 65;
const INVOKE_REQUEST: i64 = 66;
const STRINGS: i64 = 67;
const HEADER: i64 = 68;

/// One `net/rpc` connection: gob defines each type once per stream, in each direction.
pub(crate) struct Conn {
    io: BufReader<TcpStream>,
    decoder: Decoder,
    defined: bool,
    seq: u64,
}

async fn connect(process: &ProcessHandle) -> std::io::Result<Conn> {
    let mut io = BufReader::new(connect_tcp(process, PORT).await?);
    // net/rpc's HTTP transport: one CONNECT, then the raw gob stream.
    io.get_mut()
        .write_all(b"CONNECT /_goRPC_ HTTP/1.0\n\n")
        .await?;
    let mut status = String::new();
    io.read_line(&mut status).await?;
    if !status.starts_with("HTTP/1.0 200") {
        return Err(std::io::Error::other(format!(
            "not a Go RPC server: {}",
            status.trim()
        )));
    }
    loop {
        let mut line = String::new();
        if io.read_line(&mut line).await? == 0 || line.trim().is_empty() {
            break;
        }
    }
    Ok(Conn {
        io,
        decoder: Decoder::default(),
        defined: false,
        seq: 0,
    })
}

/// The bytes of one call: the types first on a fresh connection, then `rpc.Request` and the
/// `InvokeRequest`. An empty event is sent as `{}`: the SDK refuses a nil payload.
pub(crate) fn encode_call(
    define: bool,
    seq: u64,
    payload: &[u8],
    header: &[(String, String)],
) -> Vec<u8> {
    let mut out = Vec::new();
    if define {
        gob::define_struct(
            &mut out,
            REQUEST,
            "Request",
            &[("ServiceMethod", gob::STRING), ("Seq", gob::UINT)],
        );
    }
    let mut w = Writer::default();
    w.int(REQUEST).uint(1).bytes(METHOD.as_bytes());
    if seq != 0 {
        w.uint(1).uint(seq);
    }
    w.uint(0).finish_into(&mut out);
    if define {
        gob::define_struct(
            &mut out,
            INVOKE_REQUEST,
            "InvokeRequest",
            &[("Payload", gob::BYTES), ("Header", HEADER)],
        );
        gob::define_map(&mut out, HEADER, "Header", gob::STRING, STRINGS);
        gob::define_slice(&mut out, STRINGS, gob::STRING);
    }
    let payload: &[u8] = if payload.is_empty() { b"{}" } else { payload };
    let mut w = Writer::default();
    w.int(INVOKE_REQUEST).uint(1).bytes(payload);
    if !header.is_empty() {
        w.uint(1).uint(header.len() as u64);
        for (k, v) in header {
            w.bytes(k.as_bytes()).uint(1).bytes(v.as_bytes());
        }
    }
    w.uint(0).finish_into(&mut out);
    out
}

/// The next value of the stream, after any type definitions.
async fn read_value(conn: &mut Conn) -> std::io::Result<Value> {
    loop {
        let first = conn.io.read_u8().await?;
        let len = if first < 0x80 {
            u64::from(first)
        } else {
            let n = usize::from((first as i8).unsigned_abs());
            let mut b = [0u8; 8];
            if n > 8 {
                return Err(std::io::Error::other("gob length over 8 bytes"));
            }
            conn.io.read_exact(&mut b[8 - n..]).await?;
            u64::from_be_bytes(b)
        };
        if len > (SYNC_PAYLOAD_MAX as u64) * 2 {
            return Err(std::io::Error::other("gob message over the response limit"));
        }
        let mut msg = vec![0u8; len as usize];
        conn.io.read_exact(&mut msg).await?;
        if let Some(v) = conn.decoder.message(&msg).map_err(std::io::Error::other)? {
            return Ok(v);
        }
    }
}

/// The function's answer to a call: its payload, or its error as a function error.
pub(crate) fn result(response: &Value, body: &Value) -> Result<Bytes, FunctionError> {
    match response.field("Error") {
        Some(Value::Str(e)) if !e.is_empty() => Err(sdk_error(e)),
        _ => match body.field("Payload") {
            Some(Value::Bytes(b)) => Ok(Bytes::copy_from_slice(b)),
            _ => Ok(Bytes::new()),
        },
    }
}

/// The SDK's error text is `{"errorMessage","errorType","stackTrace"}` JSON (`FunctionReturnError`
/// for a returned error, `panic` for a panic); anything else is the message itself.
fn sdk_error(text: &str) -> FunctionError {
    #[derive(serde::Deserialize)]
    struct Sdk {
        #[serde(rename = "errorMessage", default)]
        message: String,
        #[serde(rename = "errorType", default)]
        error_type: String,
        #[serde(rename = "stackTrace", default)]
        stack: Option<Vec<String>>,
    }
    match serde_json::from_str::<Sdk>(text) {
        Ok(s) => {
            let ty = if s.error_type.is_empty() {
                "Error".to_string()
            } else {
                s.error_type
            };
            let mut e = FunctionError::new(codes::FUNCTION_RAISED, &ty, s.message);
            e.stack_trace = s.stack.unwrap_or_default();
            e
        }
        Err(_) => FunctionError::new(codes::FUNCTION_RAISED, "Error", text.to_string()),
    }
}

/// The headers the SDK reads its context from, with Go's canonical names; and the
/// invocation's `Traceparent` [FGS], when it has one.
fn header(request: &Request) -> Vec<(String, String)> {
    let mut h = vec![("X-Cff-Request-Id".to_string(), request.request_id.clone())];
    if let Some(tp) = &request.traceparent {
        h.push(("Traceparent".to_string(), tp.clone()));
    }
    h
}

async fn call(conn: &mut Conn, request: &Request) -> std::io::Result<Result<Bytes, FunctionError>> {
    let bytes = encode_call(!conn.defined, conn.seq, &request.body, &header(request));
    conn.defined = true;
    conn.seq += 1;
    conn.io.get_mut().write_all(&bytes).await?;
    let response = read_value(conn).await?;
    let body = read_value(conn).await?;
    Ok(result(&response, &body))
}

fn gone(why: impl std::fmt::Display) -> FunctionError {
    FunctionError::new(
        codes::RUNTIME_EXITED,
        "RuntimeExited",
        format!("the function's Go RPC server on 127.0.0.1:{PORT} failed: {why}"),
    )
}

/// Serves the instance's events until its queue closes, `concurrency` calls at once, each on
/// its own connection. Marks the instance ready when the server first answers.
pub(crate) async fn drive(api: Arc<ApiState>, process: ProcessHandle, concurrency: usize) {
    // As HTTP functions' servers: tried at once, then after waits growing from 0.5 ms to 4 ms.
    let (first, attempts) = retry(Backoff::default(), || connect(&process)).await;
    tracing::debug!(attempts, "the Go RPC server accepts on port {PORT}");
    api.start.send_if_modified(|s| {
        let starting = *s == StartState::Starting;
        if starting {
            *s = StartState::Ready;
        }
        starting
    });
    let mut first = Some(first);
    let mut workers = Vec::new();
    for _ in 0..concurrency.max(1) {
        let (api, process, conn) = (Arc::clone(&api), process.clone(), first.take());
        workers.push(tokio::spawn(worker(api, process, conn)));
    }
    for w in workers {
        let _ = w.await;
    }
}

async fn worker(api: Arc<ApiState>, process: ProcessHandle, mut conn: Option<Conn>) {
    while let Some((request, reply)) = crate::fn_server::next_request(&api).await {
        let result = match conn.take() {
            Some(c) => Ok(c),
            None => connect(&process).await,
        };
        let result = match result {
            Ok(mut c) => match call(&mut c, &request).await {
                Ok(r) => {
                    conn = Some(c);
                    r
                }
                Err(e) => Err(gone(e)),
            },
            Err(e) => Err(gone(e)),
        };
        let _ = reply.send(match result {
            Ok(b) => RuntimeReply::Response(b),
            Err(e) => RuntimeReply::Error(e),
        });
    }
}

#[cfg(test)]
#[path = "go_fn/tests.rs"]
mod tests;
