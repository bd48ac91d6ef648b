//! Fault modes of the embedded target, chosen with `--fault SPEC` (repeatable) or
//! `faults = ["SPEC", ...]` under `[target.embedded]`.
//!
//! A spec is `NAME` or `NAME:KEY=VALUE,...`; a bare first value is the fault's main parameter
//! (`close-after:5` is `close-after:every=5`). Request faults count infer requests from 1 and
//! fire on every `every`-th one, so the number of faulted requests in a run is exact:
//!
//! | spec | effect | client error kind |
//! |---|---|---|
//! | `reset-mid-response:every=N` | headers and half the body, then a TCP RST | `reset` |
//! | `stall:every=N,for=D` | waits `D` before answering | `timeout` past the client's timeout |
//! | `slow-body:every=N,chunk=B,delay=D` | the body in `B`-byte pieces, `D` apart | none, slower |
//! | `burst-5xx:every=N,len=L` | the last `L` requests of every `N` get HTTP 503 | `http_5xx` |
//! | `truncated:every=N` | HTTP 200 whose JSON body is cut in half | `invalid_response` |
//! | `non-json:every=N` | HTTP 200 with an HTML body | `invalid_response` |
//! | `oversized:every=N,size=S,declared=B` | HTTP 200 with an `S`-byte body, streamed, with a `Content-Length` unless `declared=false` | `body_too_large` |
//! | `http-413:every=N` | HTTP 413 with an HTML body, as proxies send | `http_4xx` |
//! | `close-after:every=N` | `Connection: close` on every `N`-th response of a connection | none |
//! | `accept-reset:every=N` | every `N`-th accepted connection is reset before a byte is read | `reset` |
//! | `down:at=N,for=D` | after infer request `N`, closes the listener and every connection for `D`, then listens again | `reset`, then `connect_refused` |
//! | `crash:at=N` | the `inferload serve` process exits at infer request `N` (not allowed in-process) | `reset`, then `connect_refused` |
//! | `grpc-error:every=N,code=C` | a trailers-only gRPC error reply with status `C` (default `unavailable`), the route header in its trailers | `grpc_unavailable`, ... by code |
//! | `goaway:every=N` | HTTP/2 GOAWAY after every `N`-th gRPC response of a connection; calls in flight finish | none, the client opens a new connection |
//!
//! gRPC infer calls count in the same sequence as REST infer requests. Of the request faults,
//! `stall` and `grpc-error` apply to gRPC calls. The others shape HTTP bodies, so they apply to
//! REST only, and `goaway` applies to gRPC only. The connection faults `accept-reset`, `down`
//! and `crash` act on both protocols and on every listener.
//!
//! When several request faults fire on the same request, the first one listed wins.

use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::str::FromStr;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{header, Response, StatusCode};
use hyper::body::{Body, Frame, SizeHint};
use serde::Deserialize;

use crate::scenario::units::{ByteSize, HumanDuration};

/// One fault with its trigger.
#[derive(Debug, Clone, PartialEq)]
pub struct Fault {
    pub kind: FaultKind,
    /// Fires on every `every`-th infer request (or connection, or response of a connection).
    pub every: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub enum FaultKind {
    ResetMidResponse,
    Stall {
        duration: Duration,
    },
    SlowBody {
        chunk: usize,
        delay: Duration,
    },
    Burst5xx {
        len: u64,
    },
    Truncated,
    NonJson,
    Oversized {
        size: u64,
        declared: bool,
    },
    Html413,
    CloseAfter,
    AcceptReset,
    /// Listener and connections closed after infer request `every`, for `duration`.
    Down {
        duration: Duration,
    },
    /// The process exits at infer request `every`.
    Crash,
    /// A trailers-only gRPC error reply with this status.
    GrpcError {
        code: tonic::Code,
    },
    /// GOAWAY after every `every`-th gRPC response of a connection.
    Goaway,
}

/// The fault applied to one gRPC infer call.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum GrpcFault {
    Stall(Duration),
    Status(tonic::Code),
}

/// What the target does with one infer request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RequestFault {
    Reset,
    Stall(Duration),
    SlowBody { chunk: usize, delay: Duration },
    ServiceUnavailable,
    Truncated,
    NonJson,
    Oversized { size: u64, declared: bool },
    Html413,
}

const NAMES: &str = "reset-mid-response, stall, slow-body, burst-5xx, truncated, non-json, \
                     oversized, http-413, close-after, accept-reset, down, crash, grpc-error, \
                     goaway";

impl FromStr for Fault {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        let (name, rest) = text.split_once(':').unwrap_or((text, ""));
        let mut params = Params::parse(text, rest, main_key(name))?;
        let kind = match name {
            "reset-mid-response" => FaultKind::ResetMidResponse,
            "stall" => FaultKind::Stall {
                duration: params.duration("for", None)?,
            },
            "slow-body" => FaultKind::SlowBody {
                chunk: params.number("chunk", Some(16))?.max(1) as usize,
                delay: params.duration("delay", Some(Duration::from_millis(10)))?,
            },
            "burst-5xx" => FaultKind::Burst5xx {
                len: params.number("len", Some(1))?,
            },
            "truncated" => FaultKind::Truncated,
            "non-json" => FaultKind::NonJson,
            "oversized" => FaultKind::Oversized {
                size: params.size("size", Some(8 * 1024 * 1024))?,
                declared: params.boolean("declared", true)?,
            },
            "http-413" => FaultKind::Html413,
            "close-after" => FaultKind::CloseAfter,
            "accept-reset" => FaultKind::AcceptReset,
            "down" => FaultKind::Down {
                duration: params.duration("for", None)?,
            },
            "crash" => FaultKind::Crash,
            "grpc-error" => FaultKind::GrpcError {
                code: params.grpc_code("code", tonic::Code::Unavailable)?,
            },
            "goaway" => FaultKind::Goaway,
            other => {
                return Err(format!(
                    "invalid fault `{text}`: unknown fault `{other}`; use one of {NAMES}, \
                     e.g. reset-mid-response:every=50"
                ))
            }
        };
        let trigger = main_key(name);
        let every = params.number(trigger, Some(1))?;
        if every == 0 {
            return Err(format!(
                "invalid fault `{text}`: {trigger} = 0; use 1 or more"
            ));
        }
        if let FaultKind::Burst5xx { len } = kind {
            if len == 0 || len > every {
                return Err(format!(
                    "invalid fault `{text}`: len = {len} must be between 1 and every = {every}"
                ));
            }
        }
        params.reject_unused()?;
        Ok(Fault { kind, every })
    }
}

/// The key a bare first value stands for.
fn main_key(name: &str) -> &'static str {
    match name {
        "down" | "crash" => "at",
        _ => "every",
    }
}

/// `KEY=VALUE` pairs of one spec, consumed as the fault reads them.
struct Params<'a> {
    spec: &'a str,
    pairs: Vec<(&'a str, &'a str)>,
}

impl<'a> Params<'a> {
    fn parse(spec: &'a str, rest: &'a str, main: &'a str) -> Result<Params<'a>, String> {
        let mut pairs = Vec::new();
        for (index, part) in rest.split(',').map(str::trim).enumerate() {
            if part.is_empty() {
                continue;
            }
            match part.split_once('=') {
                Some((key, value)) => pairs.push((key.trim(), value.trim())),
                None if index == 0 => pairs.push((main, part)),
                None => {
                    return Err(format!(
                        "invalid fault `{spec}`: `{part}` is not KEY=VALUE; write e.g. \
                         burst-5xx:every=100,len=10"
                    ))
                }
            }
        }
        Ok(Params { spec, pairs })
    }

    fn take(&mut self, key: &str) -> Option<&'a str> {
        let index = self.pairs.iter().position(|(k, _)| *k == key)?;
        Some(self.pairs.remove(index).1)
    }

    fn missing(&self, key: &str) -> String {
        format!(
            "invalid fault `{}`: `{key}` is missing; add {key}=VALUE",
            self.spec
        )
    }

    fn number(&mut self, key: &str, default: Option<u64>) -> Result<u64, String> {
        match self.take(key) {
            Some(value) => value.parse().map_err(|_| {
                format!(
                    "invalid fault `{}`: {key} = `{value}` is not a whole number",
                    self.spec
                )
            }),
            None => default.ok_or_else(|| self.missing(key)),
        }
    }

    fn duration(&mut self, key: &str, default: Option<Duration>) -> Result<Duration, String> {
        match self.take(key) {
            Some(value) => value
                .parse::<HumanDuration>()
                .map(|d| d.0)
                .map_err(|e| format!("invalid fault `{}`: {key}: {e}", self.spec)),
            None => default.ok_or_else(|| self.missing(key)),
        }
    }

    fn boolean(&mut self, key: &str, default: bool) -> Result<bool, String> {
        match self.take(key) {
            Some("true") => Ok(true),
            Some("false") => Ok(false),
            Some(value) => Err(format!(
                "invalid fault `{}`: {key} = `{value}`; use true or false",
                self.spec
            )),
            None => Ok(default),
        }
    }

    fn size(&mut self, key: &str, default: Option<u64>) -> Result<u64, String> {
        match self.take(key) {
            Some(value) => value
                .parse::<ByteSize>()
                .map(|b| b.0)
                .map_err(|e| format!("invalid fault `{}`: {key}: {e}", self.spec)),
            None => default.ok_or_else(|| self.missing(key)),
        }
    }

    fn grpc_code(&mut self, key: &str, default: tonic::Code) -> Result<tonic::Code, String> {
        match self.take(key) {
            Some(value) => parse_grpc_code(value).ok_or_else(|| {
                format!(
                    "invalid fault `{}`: {key} = `{value}` is not a gRPC status; use a name \
                     such as unavailable or resource-exhausted, or a number from 1 to 16",
                    self.spec
                )
            }),
            None => Ok(default),
        }
    }

    fn reject_unused(&self) -> Result<(), String> {
        match self.pairs.first() {
            Some((key, _)) => Err(format!(
                "invalid fault `{}`: unknown parameter `{key}`; see `inferload serve --help`",
                self.spec
            )),
            None => Ok(()),
        }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let every = self.every;
        match &self.kind {
            FaultKind::ResetMidResponse => write!(f, "reset-mid-response:every={every}"),
            FaultKind::Stall { duration } => {
                write!(f, "stall:every={every},for={}", HumanDuration(*duration))
            }
            FaultKind::SlowBody { chunk, delay } => write!(
                f,
                "slow-body:every={every},chunk={chunk},delay={}",
                HumanDuration(*delay)
            ),
            FaultKind::Burst5xx { len } => write!(f, "burst-5xx:every={every},len={len}"),
            FaultKind::Truncated => write!(f, "truncated:every={every}"),
            FaultKind::NonJson => write!(f, "non-json:every={every}"),
            FaultKind::Oversized { size, declared } => {
                write!(f, "oversized:every={every},size={size},declared={declared}")
            }
            FaultKind::Html413 => write!(f, "http-413:every={every}"),
            FaultKind::CloseAfter => write!(f, "close-after:every={every}"),
            FaultKind::AcceptReset => write!(f, "accept-reset:every={every}"),
            FaultKind::Down { duration } => {
                write!(f, "down:at={every},for={}", HumanDuration(*duration))
            }
            FaultKind::Crash => write!(f, "crash:at={every}"),
            FaultKind::GrpcError { code } => {
                write!(f, "grpc-error:every={every},code={}", grpc_code_name(*code))
            }
            FaultKind::Goaway => write!(f, "goaway:every={every}"),
        }
    }
}

impl<'de> Deserialize<'de> for Fault {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// The faults of one target, looked up by counter.
#[derive(Debug, Clone, Default)]
pub struct FaultPlan {
    faults: Vec<Fault>,
}

impl FaultPlan {
    pub fn new(faults: &[Fault]) -> FaultPlan {
        FaultPlan {
            faults: faults.to_vec(),
        }
    }

    /// The fault of infer request number `count` (from 1), if any.
    pub fn for_request(&self, count: u64) -> Option<RequestFault> {
        self.faults.iter().find_map(|fault| {
            let every = fault.every;
            let fires = count % every == 0;
            match fault.kind {
                FaultKind::ResetMidResponse if fires => Some(RequestFault::Reset),
                FaultKind::Stall { duration } if fires => Some(RequestFault::Stall(duration)),
                FaultKind::SlowBody { chunk, delay } if fires => {
                    Some(RequestFault::SlowBody { chunk, delay })
                }
                FaultKind::Burst5xx { len } if (count - 1) % every >= every - len => {
                    Some(RequestFault::ServiceUnavailable)
                }
                FaultKind::Truncated if fires => Some(RequestFault::Truncated),
                FaultKind::NonJson if fires => Some(RequestFault::NonJson),
                FaultKind::Oversized { size, declared } if fires => {
                    Some(RequestFault::Oversized { size, declared })
                }
                FaultKind::Html413 if fires => Some(RequestFault::Html413),
                _ => None,
            }
        })
    }

    /// Returns the fault of gRPC infer call number `count` (from 1), if any.
    pub fn for_grpc_request(&self, count: u64) -> Option<GrpcFault> {
        self.faults.iter().find_map(|fault| {
            if count % fault.every != 0 {
                return None;
            }
            match fault.kind {
                FaultKind::Stall { duration } => Some(GrpcFault::Stall(duration)),
                FaultKind::GrpcError { code } => Some(GrpcFault::Status(code)),
                _ => None,
            }
        })
    }

    /// Returns whether GOAWAY follows gRPC response number `count` (from 1) of a connection.
    pub fn goaway_after(&self, count: u64) -> bool {
        self.faults
            .iter()
            .any(|f| f.kind == FaultKind::Goaway && count % f.every == 0)
    }

    /// Whether response number `count` (from 1) of a connection closes it.
    pub fn closes_after(&self, count: u64) -> bool {
        self.faults
            .iter()
            .any(|f| f.kind == FaultKind::CloseAfter && count % f.every == 0)
    }

    /// Whether accepted connection number `count` (from 1) is reset at once.
    pub fn resets_connection(&self, count: u64) -> bool {
        self.faults
            .iter()
            .any(|f| f.kind == FaultKind::AcceptReset && count % f.every == 0)
    }

    /// How long the target goes down after infer request `count`, if it does.
    pub fn down_after(&self, count: u64) -> Option<Duration> {
        self.faults.iter().find_map(|f| match f.kind {
            FaultKind::Down { duration } if f.every == count => Some(duration),
            _ => None,
        })
    }

    /// Whether the process exits at infer request `count`.
    pub fn crashes_at(&self, count: u64) -> bool {
        self.faults
            .iter()
            .any(|f| f.kind == FaultKind::Crash && f.every == count)
    }

    /// Whether a fault ends the whole process, which must not happen to an in-process target.
    pub fn ends_process(&self) -> bool {
        self.faults.iter().any(|f| f.kind == FaultKind::Crash)
    }

    pub fn is_empty(&self) -> bool {
        self.faults.is_empty()
    }
}

/// Builds the response of an infer request hit by `fault`; `reply` is the normal JSON body and
/// `fd` the connection's socket.
pub fn respond(fault: RequestFault, reply: String, fd: Option<i32>) -> Response<ServeBody> {
    let (status, content_type, body) = match fault {
        RequestFault::Stall(_) => (StatusCode::OK, JSON, ServeBody::full(reply)),
        RequestFault::Reset => (
            StatusCode::OK,
            JSON,
            ServeBody::reset_midway(Bytes::from(reply), fd),
        ),
        RequestFault::SlowBody { chunk, delay } => (
            StatusCode::OK,
            JSON,
            ServeBody::dribble(reply, chunk, delay),
        ),
        RequestFault::ServiceUnavailable => (
            StatusCode::SERVICE_UNAVAILABLE,
            JSON,
            ServeBody::full(r#"{"error":"simulated burst of 503"}"#),
        ),
        RequestFault::Truncated => {
            let half = reply.len() / 2;
            (
                StatusCode::OK,
                JSON,
                ServeBody::full(reply[..half].to_string()),
            )
        }
        RequestFault::NonJson => (
            StatusCode::OK,
            HTML,
            ServeBody::full("<html><body>maintenance page</body></html>"),
        ),
        RequestFault::Oversized { size, declared } => {
            let mut body = ServeBody::oversized(size);
            if !declared {
                body.exact_len = None;
            }
            (StatusCode::OK, JSON, body)
        }
        RequestFault::Html413 => (
            StatusCode::PAYLOAD_TOO_LARGE,
            HTML,
            ServeBody::full(
                "<html>\r\n<head><title>413 Request Entity Too Large</title></head>\r\n\
                 <body>\r\n<center><h1>413 Request Entity Too Large</h1></center>\r\n\
                 </body>\r\n</html>\r\n",
            ),
        ),
    };
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, content_type)
        .body(body)
        .expect("static response parts are valid")
}

/// gRPC status names as `grpc-error` accepts and prints them, indexed by code.
const GRPC_CODE_NAMES: [&str; 17] = [
    "ok",
    "cancelled",
    "unknown",
    "invalid-argument",
    "deadline-exceeded",
    "not-found",
    "already-exists",
    "permission-denied",
    "resource-exhausted",
    "failed-precondition",
    "aborted",
    "out-of-range",
    "unimplemented",
    "internal",
    "unavailable",
    "data-loss",
    "unauthenticated",
];

/// Parses a non-OK gRPC status: a name in any case with `-` or `_` between words
/// (`unavailable`, `RESOURCE_EXHAUSTED`), or its number.
fn parse_grpc_code(text: &str) -> Option<tonic::Code> {
    let number = match text.parse::<i32>() {
        Ok(number) => number,
        Err(_) => {
            let name = text.to_ascii_lowercase().replace('_', "-");
            GRPC_CODE_NAMES.iter().position(|n| *n == name)? as i32
        }
    };
    (1..=16)
        .contains(&number)
        .then(|| tonic::Code::from_i32(number))
}

fn grpc_code_name(code: tonic::Code) -> &'static str {
    GRPC_CODE_NAMES[code as usize]
}

const JSON: &str = "application/json";
const HTML: &str = "text/html";

/// Largest frame the target writes at once.
const FRAME: usize = 64 * 1024;
/// Filler of oversized bodies, sent from static memory so that a large body costs nothing.
static FILLER: [u8; FRAME] = [b'0'; FRAME];

/// What a body does after its data.
enum Ending {
    Finish,
    /// Sets `SO_LINGER` to 0 on the connection's socket and fails the body, so the server
    /// drops the connection with a TCP RST after the partial body.
    Reset(Option<i32>),
}

/// A response body: whole, in paced pieces, padded to a size, or cut off by a reset.
pub struct ServeBody {
    data: Bytes,
    /// Bytes of filler after `data`, then `tail`.
    filler: u64,
    tail: &'static [u8],
    chunk: usize,
    delay: Duration,
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
    ending: Option<Ending>,
    exact_len: Option<u64>,
}

impl ServeBody {
    /// The whole body in one frame.
    pub fn full(data: impl Into<Bytes>) -> ServeBody {
        let data = data.into();
        let len = data.len() as u64;
        ServeBody {
            data,
            filler: 0,
            tail: b"",
            chunk: usize::MAX,
            delay: Duration::ZERO,
            sleep: None,
            ending: Some(Ending::Finish),
            exact_len: Some(len),
        }
    }

    /// `data` in pieces of `chunk` bytes with `delay` before each.
    pub fn dribble(data: impl Into<Bytes>, chunk: usize, delay: Duration) -> ServeBody {
        ServeBody {
            chunk: chunk.max(1),
            delay,
            ..ServeBody::full(data)
        }
    }

    /// A JSON object of exactly `size` bytes (at least 10), streamed from static filler.
    pub fn oversized(size: u64) -> ServeBody {
        let head: &'static [u8] = b"{\"pad\":\"";
        let tail: &'static [u8] = b"\"}";
        let fixed = (head.len() + tail.len()) as u64;
        ServeBody {
            filler: size.saturating_sub(fixed),
            tail,
            chunk: FRAME,
            exact_len: Some(size.max(fixed)),
            ..ServeBody::full(Bytes::from_static(head))
        }
    }

    /// The first half of `data`, then a reset of the connection whose socket is `fd`. The
    /// declared length is the whole of `data`, so the client sees a body cut short.
    pub fn reset_midway(data: Bytes, fd: Option<i32>) -> ServeBody {
        let total = data.len() as u64;
        let half = data.slice(..data.len() / 2);
        ServeBody {
            // A short pause after the partial body lets the server flush it before the reset.
            delay: Duration::from_millis(5),
            ending: Some(Ending::Reset(fd)),
            exact_len: Some(total),
            ..ServeBody::full(half)
        }
    }

    fn next_data(&mut self) -> Option<Bytes> {
        if !self.data.is_empty() {
            let take = self.data.len().min(self.chunk);
            return Some(self.data.split_to(take));
        }
        if self.filler > 0 {
            let take = (self.filler as usize).min(FRAME).min(self.chunk);
            self.filler -= take as u64;
            return Some(Bytes::from_static(&FILLER[..take]));
        }
        if !self.tail.is_empty() {
            let tail = std::mem::take(&mut self.tail);
            return Some(Bytes::from_static(tail));
        }
        None
    }
}

impl Body for ServeBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let this = &mut *self;
        if !this.delay.is_zero() && this.ending.is_some() {
            let delay = this.delay;
            let sleep = this
                .sleep
                .get_or_insert_with(|| Box::pin(tokio::time::sleep(delay)));
            if sleep.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            this.sleep = None;
        }
        if let Some(data) = this.next_data() {
            return Poll::Ready(Some(Ok(Frame::data(data))));
        }
        match this.ending.take() {
            None | Some(Ending::Finish) => Poll::Ready(None),
            Some(Ending::Reset(fd)) => {
                if let Some(fd) = fd {
                    set_zero_linger(fd);
                }
                Poll::Ready(Some(Err(io::Error::new(
                    io::ErrorKind::ConnectionReset,
                    "simulated reset mid-response",
                ))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.ending.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        match self.exact_len {
            Some(len) => SizeHint::with_exact(len),
            None => SizeHint::default(),
        }
    }
}

/// Sets `SO_LINGER` to 0 on socket `fd`, so that closing it sends a RST.
fn set_zero_linger(fd: i32) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: `fd` is the socket of the connection whose response body is being polled; hyper
    // owns that socket until the connection task ends, which is after this body is dropped, so
    // the descriptor is open and still refers to that socket. `linger` outlives the call.
    let result = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    if result != 0 {
        tracing::warn!(
            error = %io::Error::last_os_error(),
            "cannot set SO_LINGER for a simulated reset; the connection closes with FIN"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_and_print() {
        for (text, printed) in [
            ("reset-mid-response:every=50", "reset-mid-response:every=50"),
            ("close-after:5", "close-after:every=5"),
            ("burst-5xx:every=100,len=10", "burst-5xx:every=100,len=10"),
            ("stall:every=7,for=2s", "stall:every=7,for=2s"),
            (
                "oversized:3,size=1MiB",
                "oversized:every=3,size=1048576,declared=true",
            ),
            ("crash:at=5", "crash:at=5"),
            ("down:at=100,for=1s", "down:at=100,for=1s"),
            ("truncated", "truncated:every=1"),
            ("grpc-error:5", "grpc-error:every=5,code=unavailable"),
            (
                "grpc-error:every=3,code=RESOURCE_EXHAUSTED",
                "grpc-error:every=3,code=resource-exhausted",
            ),
            (
                "grpc-error:2,code=4",
                "grpc-error:every=2,code=deadline-exceeded",
            ),
            ("goaway:every=10", "goaway:every=10"),
        ] {
            let fault: Fault = text.parse().unwrap();
            assert_eq!(fault.to_string(), printed, "{text}");
        }
    }

    #[test]
    fn bad_specs_name_the_problem() {
        for (text, fragment) in [
            ("explode:every=3", "unknown fault `explode`"),
            ("reset-mid-response:every=0", "every = 0"),
            ("reset-mid-response:every=x", "`x` is not a whole number"),
            ("stall:every=3", "`for` is missing"),
            ("burst-5xx:every=10,len=11", "between 1 and every"),
            ("truncated:every=2,bogus=1", "unknown parameter `bogus`"),
            ("slow-body:every=2,delay=fast", "delay"),
            ("oversized:size=4 parsecs", "parsecs"),
            ("close-after:1,2", "`2` is not KEY=VALUE"),
            ("grpc-error:3,code=busy", "`busy` is not a gRPC status"),
            ("grpc-error:3,code=0", "`0` is not a gRPC status"),
            ("grpc-error:3,code=17", "`17` is not a gRPC status"),
            ("goaway:every=0", "every = 0"),
        ] {
            let error = text.parse::<Fault>().unwrap_err();
            assert!(error.contains(text), "{error}");
            assert!(error.contains(fragment), "{text}: {error}");
        }
    }

    #[test]
    fn request_faults_fire_on_schedule() {
        let plan = FaultPlan::new(&[
            "reset-mid-response:every=50".parse().unwrap(),
            "burst-5xx:every=100,len=10".parse().unwrap(),
        ]);
        let fired: Vec<_> = (1..=200).filter_map(|n| plan.for_request(n)).collect();
        let resets = fired.iter().filter(|f| **f == RequestFault::Reset).count();
        let bursts = fired
            .iter()
            .filter(|f| **f == RequestFault::ServiceUnavailable)
            .count();
        // Resets at 50, 100, 150, 200; bursts at 91..=100 and 191..=200, less the two resets
        // that come first in the list.
        assert_eq!(resets, 4);
        assert_eq!(bursts, 18);
        assert_eq!(plan.for_request(91), Some(RequestFault::ServiceUnavailable));
        assert_eq!(plan.for_request(90), None);
    }

    #[test]
    fn connection_faults_fire_on_schedule() {
        let plan = FaultPlan::new(&[
            "close-after:3".parse().unwrap(),
            "accept-reset:4".parse().unwrap(),
            "down:at=10,for=1s".parse().unwrap(),
        ]);
        assert!(!plan.closes_after(2));
        assert!(plan.closes_after(6));
        assert!(plan.resets_connection(8));
        assert!(!plan.resets_connection(9));
        assert_eq!(plan.down_after(10), Some(Duration::from_secs(1)));
        assert_eq!(plan.down_after(20), None);
    }

    #[test]
    fn grpc_faults_fire_on_schedule() {
        let plan = FaultPlan::new(&[
            "stall:every=4,for=1s".parse().unwrap(),
            "grpc-error:every=6,code=resource-exhausted"
                .parse()
                .unwrap(),
            "goaway:5".parse().unwrap(),
            "truncated:every=1".parse().unwrap(),
        ]);
        let stall = Some(GrpcFault::Stall(Duration::from_secs(1)));
        let exhausted = Some(GrpcFault::Status(tonic::Code::ResourceExhausted));
        assert_eq!(plan.for_grpc_request(4), stall);
        assert_eq!(plan.for_grpc_request(6), exhausted);
        // The stall is listed first, so it wins on call 12.
        assert_eq!(plan.for_grpc_request(12), stall);
        // `truncated` shapes REST bodies only.
        assert_eq!(plan.for_grpc_request(7), None);
        assert!(plan.goaway_after(10));
        assert!(!plan.goaway_after(11));
        // gRPC-only faults leave REST requests alone.
        assert_eq!(plan.for_request(6), Some(RequestFault::Truncated));
        let grpc_only = FaultPlan::new(&["grpc-error:1".parse().unwrap()]);
        assert_eq!(grpc_only.for_request(1), None);
    }

    #[tokio::test]
    async fn oversized_body_has_exact_length() {
        use http_body_util::BodyExt;
        let body = ServeBody::oversized(200_000);
        assert_eq!(body.size_hint().exact(), Some(200_000));
        let bytes = body.collect().await.unwrap().to_bytes();
        assert_eq!(bytes.len(), 200_000);
        assert!(serde_json::from_slice::<serde_json::Value>(&bytes).is_ok());
    }

    #[tokio::test]
    async fn dribbled_body_arrives_whole() {
        use http_body_util::BodyExt;
        let mut body = ServeBody::dribble(Bytes::from_static(b"0123456789"), 3, Duration::ZERO);
        let mut frames = Vec::new();
        while let Some(frame) = body.frame().await {
            frames.push(frame.unwrap().into_data().unwrap());
        }
        assert_eq!(frames.len(), 4);
        assert_eq!(frames.concat(), b"0123456789");
    }
}
