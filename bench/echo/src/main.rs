//! The benchmark's echo, with no dependencies so that it builds in seconds. One binary, four
//! roles, chosen by the first argument or by `BENCH_MODE` (a function's `user_data`):
//!
//! - no argument, `BENCH_MODE` unset or `runtime`: a Custom runtime `bootstrap` that answers each
//!   event with the event itself, over one kept-alive HTTP/1.1 connection to the Runtime API;
//! - `apig`: the same runtime, answering an APIG event with `{"statusCode":200,...}` whose body
//!   is the event's (still base64), so that the caller gets its own body back;
//! - `http` (or `BENCH_MODE=http`): an HTTP function's server on 127.0.0.1:8000 echoing the
//!   request body;
//! - `ext NAME PORT`: an extension that registers as `NAME` and answers `/extension/invoke`;
//! - `floor PORT`: the floor, a minimal keep-alive HTTP echo server on 127.0.0.1:PORT
//!   (PORT 0 picks one; the chosen port is printed).

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mode = args
        .first()
        .cloned()
        .or_else(|| std::env::var("BENCH_MODE").ok())
        .unwrap_or_else(|| "runtime".into());
    let r = match mode.as_str() {
        "runtime" => runtime(false),
        "apig" => runtime(true),
        "http" => serve(TcpListener::bind("127.0.0.1:8000"), Role::HttpFunction),
        "ext" => extension(&args[1], &args[2]),
        "floor" => serve(
            TcpListener::bind(("127.0.0.1", args[1].parse::<u16>().expect("a port"))),
            Role::Floor,
        ),
        other => Err(io::Error::other(format!("unknown mode {other}"))),
    };
    if let Err(e) = r {
        eprintln!("fgs-bench-echo {mode}: {e}");
        std::process::exit(1);
    }
}

/// One parsed HTTP/1.1 message head and its body.
struct Message {
    first_line: String,
    request_id: Option<String>,
    body: Vec<u8>,
}

/// Reads one message (request or response) with a `Content-Length` or chunked body; `None` at
/// a clean end of stream.
fn read_message(r: &mut BufReader<TcpStream>) -> io::Result<Option<Message>> {
    let mut line = String::new();
    if r.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    let first_line = line.trim_end().to_string();
    let (mut len, mut chunked, mut request_id) = (0usize, false, None);
    loop {
        line.clear();
        if r.read_line(&mut line)? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            let v = v.trim();
            if k.eq_ignore_ascii_case("content-length") {
                len = v.parse().map_err(io::Error::other)?;
            } else if k.eq_ignore_ascii_case("transfer-encoding") {
                chunked = v.eq_ignore_ascii_case("chunked");
            } else if k.eq_ignore_ascii_case("x-cff-request-id") {
                request_id = Some(v.to_string());
            }
        }
    }
    let mut body = Vec::new();
    if chunked {
        loop {
            line.clear();
            r.read_line(&mut line)?;
            let n = usize::from_str_radix(line.trim_end().split(';').next().unwrap_or(""), 16)
                .map_err(io::Error::other)?;
            let at = body.len();
            body.resize(at + n, 0);
            r.read_exact(&mut body[at..])?;
            line.clear();
            r.read_line(&mut line)?;
            if n == 0 {
                break;
            }
        }
    } else {
        body.resize(len, 0);
        r.read_exact(&mut body)?;
    }
    Ok(Some(Message {
        first_line,
        request_id,
        body,
    }))
}

fn connect(addr: &str) -> io::Result<(TcpStream, BufReader<TcpStream>)> {
    let s = TcpStream::connect(addr)?;
    s.set_nodelay(true)?;
    let r = BufReader::with_capacity(64 * 1024, s.try_clone()?);
    Ok((s, r))
}

/// The Custom runtime loop (SPEC.md 4): next event, answer it with itself, on one connection.
fn runtime(apig: bool) -> io::Result<()> {
    let addr = std::env::var("RUNTIME_API_ADDR").map_err(io::Error::other)?;
    let (mut w, mut r) = connect(&addr)?;
    let next = format!("GET /v1/runtime/invocation/request HTTP/1.1\r\nHost: {addr}\r\n\r\n");
    let mut out = Vec::with_capacity(4096);
    loop {
        w.write_all(next.as_bytes())?;
        let Some(ev) = read_message(&mut r)? else {
            return Ok(());
        };
        let id = ev.request_id.unwrap_or_default();
        let answer = if apig { apig_answer(&ev.body) } else { ev.body };
        out.clear();
        write!(
            out,
            "POST /v1/runtime/invocation/response/{id} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            answer.len()
        )?;
        out.extend_from_slice(&answer);
        w.write_all(&out)?;
        if read_message(&mut r)?.is_none() {
            return Ok(());
        }
    }
}

/// The APIG response carrying the event's own base64 body back (docs/triggers.md).
fn apig_answer(event: &[u8]) -> Vec<u8> {
    let key = b"\"body\":\"";
    let body = event
        .windows(key.len())
        .position(|w| w == key)
        .map(|i| {
            let rest = &event[i + key.len()..];
            &rest[..rest.iter().position(|&c| c == b'"').unwrap_or(rest.len())]
        })
        .unwrap_or(b"");
    let mut a = b"{\"statusCode\":200,\"isBase64Encoded\":true,\"body\":\"".to_vec();
    a.extend_from_slice(body);
    a.extend_from_slice(b"\"}");
    a
}

#[derive(Clone, Copy)]
enum Role {
    Floor,
    HttpFunction,
    Extension,
}

fn serve(listener: io::Result<TcpListener>, role: Role) -> io::Result<()> {
    let listener = listener?;
    if let Role::Floor = role {
        println!("listening on {}", listener.local_addr()?);
        io::stdout().flush()?;
    }
    for s in listener.incoming() {
        let s = s?;
        thread::spawn(move || {
            let _ = connection(s, role);
        });
    }
    Ok(())
}

fn connection(s: TcpStream, role: Role) -> io::Result<()> {
    s.set_nodelay(true)?;
    let mut w = s.try_clone()?;
    let mut r = BufReader::with_capacity(64 * 1024, s);
    let mut out = Vec::with_capacity(4096);
    while let Some(req) = read_message(&mut r)? {
        let body: Vec<u8> = match role {
            Role::Floor | Role::HttpFunction => req.body,
            Role::Extension => b"{}".to_vec(),
        };
        out.clear();
        write!(
            out,
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )?;
        out.extend_from_slice(&body);
        w.write_all(&out)?;
    }
    Ok(())
}

/// An extension (SPEC.md 5): listen first, so that no invoke event is refused, then register.
fn extension(name: &str, port: &str) -> io::Result<()> {
    let listener = TcpListener::bind(format!("127.0.0.1:{port}"))?;
    let api = std::env::var("EXTENSION_API_ADDR").map_err(io::Error::other)?;
    let (mut w, mut r) = connect(&api)?;
    write!(
        w,
        "POST /extension/register HTTP/1.1\r\nHost: {api}\r\nFunctionGraph-Extension-Name: {name}\r\nFunctionGraph-Extension-Address: 127.0.0.1:{port}\r\nContent-Length: 0\r\n\r\n"
    )?;
    let resp = read_message(&mut r)?.ok_or(io::ErrorKind::UnexpectedEof)?;
    if !resp.first_line.contains(" 200") {
        return Err(io::Error::other(format!("register: {}", resp.first_line)));
    }
    serve(Ok(listener), Role::Extension)
}
