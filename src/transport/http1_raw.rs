//! HTTP/1.1 keep-alive lanes for `http://` targets that write each prepared request in one
//! system call and parse the response in the lane's own buffer with `httparse`.
//!
//! hyper's client runs every connection as a second task and hands each request and response
//! between it and the lane through channels, which costs more CPU per request than the
//! loopback round trip itself. Here the lane owns its socket: one write, usually one read and
//! one task wake-up per request. The request (method, path, headers, body) is the one
//! [`Http1Transport::request`] builds, serialised once per payload entry; the response is
//! classified as in [`super::http1`]. Bodies are framed by `Content-Length`, chunked transfer
//! coding, or the end of the connection, as RFC 9112 section 6 orders them.

use std::io;
use std::mem::MaybeUninit;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};
use http::header::CONTENT_LENGTH;
use http::{HeaderMap, HeaderName, HeaderValue};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Sleep;

use super::http1::{check_json_response, BodyEdges, Http1Transport};
use super::{connect_error_kind, Job, Lane, Transport};
use crate::protocol::payload::ResponseCheck;
use crate::scenario::RunPlan;
use crate::stats::{ErrorKind, Exchange, Failure, Reply, ERROR_BODY_PREFIX};

/// Most response header lines read; more is an invalid response.
const MAX_HEADERS: usize = 100;
/// Largest response head (status line and headers) or chunk-size line accepted.
const MAX_HEAD_BYTES: usize = 64 * 1024;
/// Room made in the read buffer before each read.
const READ_CHUNK: usize = 8 * 1024;

/// State shared by every lane: the address and the serialised requests.
pub struct RawHttp1Transport {
    addr: SocketAddr,
    /// Head and body of each payload entry's request, ready to write.
    requests: Arc<[Bytes]>,
    check: Option<Arc<ResponseCheck>>,
    timeout: Duration,
    connect_timeout: Duration,
    max_body: u64,
}

impl RawHttp1Transport {
    /// Serialises the requests `prepared` builds, one per payload entry.
    pub fn new(plan: &RunPlan, prepared: &Http1Transport, addr: SocketAddr) -> RawHttp1Transport {
        let requests = plan
            .payload
            .requests
            .iter()
            .enumerate()
            .map(|(index, entry)| serialise(&prepared.request(index as u64), &entry.body))
            .collect();
        RawHttp1Transport {
            addr,
            requests,
            check: plan.payload.check.clone().map(Arc::new),
            timeout: plan.target.timeout,
            connect_timeout: plan.target.connect_timeout,
            max_body: plan.target.max_response_body,
        }
    }

    /// Returns the bytes written for request `sequence`.
    pub fn request_bytes(&self, sequence: u64) -> &Bytes {
        &self.requests[(sequence % self.requests.len() as u64) as usize]
    }
}

/// Writes `request` as HTTP/1.1 bytes with `body`, adding `content-length` unless it is set.
fn serialise<B>(request: &http::Request<B>, body: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(256 + body.len());
    out.extend_from_slice(request.method().as_str().as_bytes());
    out.push(b' ');
    let target = request.uri().path_and_query().map_or("/", |p| p.as_str());
    out.extend_from_slice(target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    for (name, value) in request.headers() {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if !request.headers().contains_key(CONTENT_LENGTH) {
        out.extend_from_slice(format!("content-length: {}\r\n", body.len()).as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    Bytes::from(out)
}

impl Transport for Arc<RawHttp1Transport> {
    type Lane = RawHttp1Lane;

    fn lane(&self, _index: usize) -> RawHttp1Lane {
        RawHttp1Lane {
            shared: Arc::clone(self),
            connection: None,
            timer: Box::pin(tokio::time::sleep(self.timeout)),
            connected_before: false,
        }
    }
}

/// One HTTP/1.1 connection, opened on first use.
pub struct RawHttp1Lane {
    shared: Arc<RawHttp1Transport>,
    connection: Option<Connection>,
    /// Fires at or before the deadline of the request in flight. It is moved to the current
    /// deadline only when it fires early, so a lane re-arms it about once per timeout instead
    /// of once per request.
    timer: Pin<Box<Sleep>>,
    /// Whether this lane has had a connection, so that the next one is a reconnect.
    connected_before: bool,
}

struct Connection {
    stream: TcpStream,
    buf: BytesMut,
    spans: Vec<Span>,
    /// False once a response carried `Connection: close`, ended with the connection, or was
    /// followed by bytes that no request asked for.
    reusable: bool,
}

impl RawHttp1Lane {
    async fn connect(&mut self) -> Result<Duration, ErrorKind> {
        let started = Instant::now();
        let stream = tokio::time::timeout(
            self.shared.connect_timeout,
            TcpStream::connect(self.shared.addr),
        )
        .await
        .map_err(|_| ErrorKind::ConnectTimeout)?
        .map_err(|e| connect_error_kind(&e))?;
        let _ = stream.set_nodelay(true);
        self.connection = Some(Connection {
            stream,
            buf: BytesMut::with_capacity(READ_CHUNK),
            spans: Vec::new(),
            reusable: true,
        });
        Ok(started.elapsed())
    }
}

impl Lane for RawHttp1Lane {
    async fn send(&mut self, job: &Job) -> Exchange {
        if self
            .connection
            .as_ref()
            .is_some_and(|c| !c.reusable || c.closed_while_idle())
        {
            self.connection = None;
        }
        let mut connect = None;
        let mut reconnect = false;
        if self.connection.is_none() {
            match self.connect().await {
                Ok(took) => {
                    connect = Some(took);
                    reconnect = std::mem::replace(&mut self.connected_before, true);
                }
                Err(kind) => {
                    let now = Instant::now();
                    return Exchange {
                        intended: job.intended,
                        sent: now,
                        finished: now,
                        measured: job.measured,
                        connect: None,
                        reconnect: false,
                        result: Err(Failure::new(kind)),
                    };
                }
            }
        }
        let sent = Instant::now();
        let deadline = sent + self.shared.timeout;
        let connection = self.connection.as_mut().expect("connected above");
        let result = {
            let exchange = connection.exchange(&self.shared, job.sequence);
            tokio::pin!(exchange);
            loop {
                tokio::select! {
                    biased;
                    result = &mut exchange => break result,
                    () = &mut self.timer => {
                        if Instant::now() >= deadline {
                            break Err(Failure::new(ErrorKind::Timeout));
                        }
                        self.timer.as_mut().reset(deadline.into());
                    }
                }
            }
        };
        let closes = match &result {
            Ok(_) => !connection.reusable,
            Err(failure) => failure.kind.closes_connection() || !connection.reusable,
        };
        if closes {
            self.connection = None;
        }
        Exchange {
            intended: job.intended,
            sent,
            finished: Instant::now(),
            measured: job.measured,
            connect,
            reconnect,
            result,
        }
    }
}

/// Body framing of a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    Empty,
    Length(u64),
    Chunked,
    /// Read until the server closes the connection.
    UntilClose,
}

/// A parsed response head, with the framing and connection state its headers set.
struct Head {
    status: u16,
    headers: HeaderMap,
    framing: Framing,
    /// Whether the connection stays open after this response.
    keep_alive: bool,
    /// Whether the body is the REST binary extension (it announces its JSON header length).
    binary: bool,
}

/// Parsed name of a response header and the position of its value in the head.
struct Span {
    name: HeaderName,
    value: std::ops::Range<usize>,
}

/// Parses a response head from the start of `buf` and, once it is complete, removes it from
/// `buf`. Returns `None` while the head is incomplete. Header values share the head's bytes
/// instead of copying them, and `spans` is scratch space kept between calls.
fn parse_head(buf: &mut BytesMut, spans: &mut Vec<Span>) -> Result<Option<Head>, ErrorKind> {
    let mut slots = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut []);
    let parsed = httparse::ParserConfig::default().parse_response_with_uninit_headers(
        &mut response,
        buf,
        &mut slots,
    );
    let len = match parsed {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(_) => return Err(ErrorKind::InvalidResponse),
    };
    let status = response.code.ok_or(ErrorKind::InvalidResponse)?;
    let version = response.version.ok_or(ErrorKind::InvalidResponse)?;
    let mut length: Option<u64> = None;
    let mut chunked = None;
    let mut close = false;
    let mut keep_alive_token = false;
    let mut binary = false;
    spans.clear();
    let base = buf.as_ptr() as usize;
    for header in response.headers.iter() {
        let name = header.name.as_bytes();
        let value = header.value;
        if name.eq_ignore_ascii_case(b"content-length") {
            let parsed = std::str::from_utf8(value)
                .ok()
                .and_then(|text| text.trim().parse::<u64>().ok())
                .ok_or(ErrorKind::InvalidResponse)?;
            if length.is_some_and(|seen| seen != parsed) {
                return Err(ErrorKind::InvalidResponse);
            }
            length = Some(parsed);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            if let Some(last) = tokens(value).next_back() {
                chunked = Some(last.eq_ignore_ascii_case(b"chunked"));
            }
        } else if name.eq_ignore_ascii_case(b"connection") {
            close |= tokens(value).any(|t| t.eq_ignore_ascii_case(b"close"));
            keep_alive_token |= tokens(value).any(|t| t.eq_ignore_ascii_case(b"keep-alive"));
        } else if name.eq_ignore_ascii_case(b"inference-header-content-length") {
            binary = true;
        }
        let start = value.as_ptr() as usize - base;
        spans.push(Span {
            name: HeaderName::from_bytes(name).map_err(|_| ErrorKind::InvalidResponse)?,
            value: start..start + value.len(),
        });
    }
    // RFC 9112 section 6.3: no body for these statuses; a transfer coding overrides a length.
    let framing = if (100..200).contains(&status) || status == 204 || status == 304 {
        Framing::Empty
    } else {
        match (chunked, length) {
            (Some(true), _) => Framing::Chunked,
            (Some(false), _) | (None, None) => Framing::UntilClose,
            (None, Some(0)) => Framing::Empty,
            (None, Some(length)) => Framing::Length(length),
        }
    };
    let head = buf.split_to(len).freeze();
    let mut headers = HeaderMap::with_capacity(spans.len());
    for span in spans.drain(..) {
        let value = HeaderValue::from_maybe_shared(head.slice(span.value))
            .map_err(|_| ErrorKind::InvalidResponse)?;
        headers.append(span.name, value);
    }
    Ok(Some(Head {
        status,
        headers,
        framing,
        keep_alive: if version >= 1 {
            !close
        } else {
            keep_alive_token
        },
        binary,
    }))
}

/// The non-empty, trimmed items of a comma-separated header value.
fn tokens(value: &[u8]) -> impl DoubleEndedIterator<Item = &[u8]> {
    value
        .split(|&b| b == b',')
        .map(|part| part.trim_ascii())
        .filter(|part| !part.is_empty())
}

/// Takes in a body piece by piece: counts it against the limit, notes its edges and keeps its
/// first bytes when asked to.
struct BodySink {
    total: u64,
    max: u64,
    keep: usize,
    prefix: Option<BytesMut>,
    edges: BodyEdges,
}

impl BodySink {
    fn new(max: u64, keep: usize) -> BodySink {
        BodySink {
            total: 0,
            max,
            keep,
            prefix: (keep > 0).then(BytesMut::new),
            edges: BodyEdges::default(),
        }
    }

    fn take(&mut self, data: &[u8]) -> Result<(), ErrorKind> {
        self.total += data.len() as u64;
        if self.total > self.max {
            return Err(ErrorKind::BodyTooLarge);
        }
        self.edges.update(data);
        if let Some(prefix) = self.prefix.as_mut() {
            let room = self.keep.saturating_sub(prefix.len());
            prefix.extend_from_slice(&data[..room.min(data.len())]);
        }
        Ok(())
    }
}

impl Connection {
    /// Whether the server closed this idle connection (or sent bytes without a request). The
    /// read only reaches the kernel when the runtime saw the socket become readable, so a
    /// healthy connection costs no system call here.
    fn closed_while_idle(&self) -> bool {
        let mut probe = [0u8; 1];
        !matches!(self.stream.try_read(&mut probe), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
    }

    /// Reads more bytes into the buffer; 0 means the server closed the connection.
    async fn read_more(&mut self) -> Result<usize, ErrorKind> {
        self.buf.reserve(READ_CHUNK);
        self.stream
            .read_buf(&mut self.buf)
            .await
            .map_err(|_| ErrorKind::Reset)
    }

    /// Reads until the buffer contains at least `wanted` bytes. A connection that ends first
    /// is a reset.
    async fn fill(&mut self, wanted: usize) -> Result<(), ErrorKind> {
        while self.buf.len() < wanted {
            if self.read_more().await? == 0 {
                self.reusable = false;
                return Err(ErrorKind::Reset);
            }
        }
        Ok(())
    }

    /// Sends request `sequence` and reads its whole response.
    async fn exchange(
        &mut self,
        shared: &RawHttp1Transport,
        sequence: u64,
    ) -> Result<Reply, Failure> {
        self.buf.clear();
        self.stream
            .write_all(shared.request_bytes(sequence))
            .await
            .map_err(|_| Failure::new(ErrorKind::Reset))?;
        let head = self.read_head().await.map_err(Failure::new)?;
        let status = head.status;
        if !head.keep_alive {
            self.reusable = false;
        }
        if let Framing::Length(declared) = head.framing {
            if declared > shared.max_body {
                // Not a byte of the body is read; the lane replaces the connection.
                return Err(Failure {
                    kind: ErrorKind::BodyTooLarge,
                    status: Some(status),
                    headers: Some(head.headers),
                    body: None,
                });
            }
        }
        let success = (200..300).contains(&status);
        let validate = success
            && shared
                .check
                .as_deref()
                .is_some_and(|check| check.applies_to(sequence));
        let keep = if validate {
            usize::MAX
        } else if success {
            0
        } else {
            ERROR_BODY_PREFIX
        };
        // A V2 JSON reply is one object; the binary extension announces its JSON header length.
        let check_json = success && !head.binary;
        let mut sink = BodySink::new(shared.max_body, keep);
        self.read_body(head.framing, &mut sink)
            .await
            .map_err(|kind| Failure {
                kind,
                status: Some(status),
                headers: Some(head.headers.clone()),
                body: None,
            })?;
        let body = sink.prefix.map(BytesMut::freeze);
        let kind = match status {
            200..=299 if check_json && !sink.edges.is_json_object() => {
                Some(ErrorKind::InvalidResponse)
            }
            200..=299 => None,
            400..=499 => Some(ErrorKind::Http4xx),
            500..=599 => Some(ErrorKind::Http5xx),
            _ => Some(ErrorKind::InvalidResponse),
        };
        if validate && kind.is_none() {
            let check = shared.check.as_deref().expect("validate implies a check");
            if let Err(message) = check_json_response(check, body.as_deref().unwrap_or_default()) {
                return Err(Failure {
                    kind: ErrorKind::InvalidOutput,
                    status: Some(status),
                    headers: Some(head.headers),
                    body: Some(Bytes::from(message)),
                });
            }
        }
        match kind {
            None => Ok(Reply {
                status,
                headers: head.headers,
                error_body: None,
            }),
            Some(kind) => Err(Failure {
                kind,
                status: Some(status),
                headers: Some(head.headers),
                body,
            }),
        }
    }

    /// Reads the head of the final response, skipping interim (1xx) ones.
    async fn read_head(&mut self) -> Result<Head, ErrorKind> {
        loop {
            if !self.buf.is_empty() {
                if let Some(head) = parse_head(&mut self.buf, &mut self.spans)? {
                    if (100..200).contains(&head.status) && head.status != 101 {
                        continue;
                    }
                    return Ok(head);
                }
                if self.buf.len() > MAX_HEAD_BYTES {
                    return Err(ErrorKind::InvalidResponse);
                }
            }
            if self.read_more().await? == 0 {
                self.reusable = false;
                return Err(ErrorKind::Reset);
            }
        }
    }

    /// Reads the body that follows the head, handing it to `sink`.
    async fn read_body(&mut self, framing: Framing, sink: &mut BodySink) -> Result<(), ErrorKind> {
        match framing {
            Framing::Empty => {}
            Framing::Length(length) => self.read_exact_into(length, sink).await?,
            Framing::Chunked => loop {
                let size = self.read_chunk_size().await?;
                if size == 0 {
                    self.read_trailers().await?;
                    break;
                }
                self.read_exact_into(size, sink).await?;
                self.fill(2).await?;
                if &self.buf[..2] != b"\r\n" {
                    return Err(ErrorKind::InvalidResponse);
                }
                self.buf.advance(2);
            },
            Framing::UntilClose => {
                self.reusable = false;
                loop {
                    sink.take(&self.buf)?;
                    self.buf.clear();
                    if self.read_more().await? == 0 {
                        break;
                    }
                }
            }
        }
        if !self.buf.is_empty() {
            // Bytes after the response that no request asked for: the connection is out of
            // step, so it is not reused.
            self.reusable = false;
        }
        Ok(())
    }

    /// Hands the next `length` bytes to `sink`.
    async fn read_exact_into(&mut self, length: u64, sink: &mut BodySink) -> Result<(), ErrorKind> {
        let mut remaining = length;
        loop {
            let n = (self.buf.len() as u64).min(remaining) as usize;
            sink.take(&self.buf[..n])?;
            self.buf.advance(n);
            remaining -= n as u64;
            if remaining == 0 {
                return Ok(());
            }
            if self.read_more().await? == 0 {
                self.reusable = false;
                return Err(ErrorKind::Reset);
            }
        }
    }

    async fn read_chunk_size(&mut self) -> Result<u64, ErrorKind> {
        loop {
            match httparse::parse_chunk_size(&self.buf) {
                Ok(httparse::Status::Complete((used, size))) => {
                    self.buf.advance(used);
                    return Ok(size);
                }
                Ok(httparse::Status::Partial) if self.buf.len() <= MAX_HEAD_BYTES => {
                    self.fill(self.buf.len() + 1).await?;
                }
                _ => return Err(ErrorKind::InvalidResponse),
            }
        }
    }

    /// Skips the trailer section after the last chunk, up to its blank line.
    async fn read_trailers(&mut self) -> Result<(), ErrorKind> {
        loop {
            if self.buf.starts_with(b"\r\n") {
                self.buf.advance(2);
                return Ok(());
            }
            if let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                self.buf.advance(end + 4);
                return Ok(());
            }
            if self.buf.len() > MAX_HEAD_BYTES {
                return Err(ErrorKind::InvalidResponse);
            }
            self.fill(self.buf.len() + 1).await?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpListener;
    use std::sync::mpsc;
    use std::thread;

    use crate::transport::connect::Connector;

    const PAYLOAD: &str = r#"{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1.0]}]}"#;

    fn plan(url: &str, timeout: &str, max_body: &str) -> RunPlan {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("p.json"), PAYLOAD).expect("payload");
        let path = dir.path().join("s.toml");
        let text = format!(
            "[target]\nurl = \"{url}\"\nmodel = \"m\"\npreflight = false\ntimeout = \"{timeout}\"\n\
             max_response_body = \"{max_body}\"\n\n[payload]\nfile = \"p.json\"\n\n\
             [load]\nconcurrency = 1\nduration = \"1s\"\n"
        );
        let scenario = crate::scenario::Scenario::from_toml(&text, &path).expect("parses");
        RunPlan::build(scenario, &path, &crate::scenario::Overrides::default()).expect("valid")
    }

    /// Serves each accepted connection with the next script: for every request read (head and
    /// `content-length` body), the next response, written in the given pieces. A script ends
    /// by closing the connection. Sends the number of connections accepted when done.
    fn server(scripts: Vec<Vec<Vec<&'static [u8]>>>) -> (SocketAddr, mpsc::Receiver<usize>) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("address");
        let (done, accepted) = mpsc::channel();
        thread::spawn(move || {
            let mut count = 0;
            for script in scripts {
                let Ok((mut stream, _)) = listener.accept() else {
                    break;
                };
                count += 1;
                for response in script {
                    if !read_request(&mut stream) {
                        break;
                    }
                    for piece in response {
                        if stream.write_all(piece).is_err() {
                            break;
                        }
                        let _ = stream.flush();
                    }
                }
            }
            let _ = done.send(count);
        });
        (addr, accepted)
    }

    fn read_request(stream: &mut std::net::TcpStream) -> bool {
        let mut data = Vec::new();
        let mut byte = [0u8; 1];
        while !data.ends_with(b"\r\n\r\n") {
            match stream.read(&mut byte) {
                Ok(1) => data.push(byte[0]),
                _ => return false,
            }
        }
        let head = String::from_utf8_lossy(&data).to_lowercase();
        let length: usize = head
            .lines()
            .find_map(|line| line.strip_prefix("content-length: "))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        let mut body = vec![0u8; length];
        stream.read_exact(&mut body).is_ok()
    }

    fn lane(addr: SocketAddr, timeout: &str, max_body: &str) -> RawHttp1Lane {
        let plan = plan(&format!("http://{addr}"), timeout, max_body);
        let connector = Connector::new(addr, Duration::from_secs(1));
        let prepared = Http1Transport::new(&plan, connector).expect("transport");
        Arc::new(RawHttp1Transport::new(&plan, &prepared, addr)).lane(0)
    }

    async fn send(lane: &mut RawHttp1Lane, sequence: u64) -> Exchange {
        let job = Job {
            intended: Instant::now(),
            sequence,
            measured: true,
        };
        lane.send(&job).await
    }

    fn kind(exchange: &Exchange) -> Option<ErrorKind> {
        exchange.result.as_ref().err().map(|f| f.kind)
    }

    const OK: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
        x-seldon-route: :a_1:\r\nContent-Length: 9\r\n\r\n{\"a\": 1}\n";

    #[test]
    fn request_bytes_carry_head_and_body() {
        let addr: SocketAddr = "127.0.0.1:9".parse().expect("address");
        let plan = plan("http://127.0.0.1:9", "1s", "1MiB");
        let connector = Connector::new(addr, Duration::from_secs(1));
        let prepared = Http1Transport::new(&plan, connector).expect("transport");
        let transport = RawHttp1Transport::new(&plan, &prepared, addr);
        let text = String::from_utf8(transport.request_bytes(0).to_vec()).expect("utf-8");
        assert!(
            text.starts_with("POST /v2/models/m/infer HTTP/1.1\r\n"),
            "{text}"
        );
        assert!(text.contains("\r\nhost: 127.0.0.1:9\r\n"), "{text}");
        assert!(
            text.contains("\r\ncontent-type: application/json\r\n"),
            "{text}"
        );
        let tail = format!("\r\ncontent-length: {}\r\n\r\n{PAYLOAD}", PAYLOAD.len());
        assert!(text.ends_with(&tail), "{text}");
    }

    #[tokio::test]
    async fn keep_alive_reuses_the_connection() {
        let (addr, accepted) = server(vec![vec![vec![OK], vec![OK], vec![OK]]]);
        let mut lane = lane(addr, "5s", "1MiB");
        for sequence in 0..3 {
            let exchange = send(&mut lane, sequence).await;
            let reply = exchange.result.as_ref().ok().expect("a reply");
            assert_eq!(reply.status, 200);
            assert_eq!(reply.headers["x-seldon-route"], ":a_1:");
            assert_eq!(exchange.connect.is_some(), sequence == 0);
        }
        drop(lane);
        assert_eq!(accepted.recv().expect("server done"), 1);
    }

    #[tokio::test]
    async fn pieces_chunks_and_trailers_are_reassembled() {
        let chunked: Vec<&'static [u8]> = vec![
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Enc",
            b"oding: chunked\r\n\r\n4\r\n{\"a\"",
            b"\r\n5;ext=1\r\n: 1}\n\r\n0\r\ngrpc-status: 0\r\n\r\n",
        ];
        let split: Vec<&'static [u8]> = vec![&OK[..20], &OK[20..70], &OK[70..]];
        let (addr, accepted) = server(vec![vec![chunked, split, vec![OK]]]);
        let mut lane = lane(addr, "5s", "1MiB");
        for sequence in 0..3 {
            let exchange = send(&mut lane, sequence).await;
            assert_eq!(kind(&exchange), None, "request {sequence}");
        }
        drop(lane);
        assert_eq!(accepted.recv().expect("server done"), 1);
    }

    #[tokio::test]
    async fn close_and_close_delimited_bodies_reconnect() {
        let close: &[u8] = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}";
        let until_close: &[u8] = b"HTTP/1.0 200 OK\r\n\r\n{\"b\": 2}";
        let (addr, accepted) = server(vec![
            vec![vec![close]],
            vec![vec![until_close]],
            vec![vec![OK]],
        ]);
        let mut lane = lane(addr, "5s", "1MiB");
        for sequence in 0..3 {
            let exchange = send(&mut lane, sequence).await;
            assert_eq!(kind(&exchange), None, "request {sequence}");
            assert!(
                exchange.connect.is_some(),
                "request {sequence} opens a connection"
            );
        }
        drop(lane);
        assert_eq!(accepted.recv().expect("server done"), 3);
    }

    #[tokio::test]
    async fn broken_responses_are_classified() {
        let truncated: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n{\"a\"";
        let garbage: &[u8] = b"SMTP ready\r\n\r\n";
        let html: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 6\r\n\r\n<html>";
        let large: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n";
        let large_chunked: &[u8] = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n800\r\n";
        let filler: &[u8] = &[b' '; 2048];
        let (addr, _accepted) = server(vec![
            vec![vec![truncated]],
            vec![vec![garbage]],
            vec![vec![html], vec![large]],
            vec![vec![large_chunked, filler]],
        ]);
        let mut lane = lane(addr, "5s", "1KiB");
        assert_eq!(kind(&send(&mut lane, 0).await), Some(ErrorKind::Reset));
        assert_eq!(
            kind(&send(&mut lane, 1).await),
            Some(ErrorKind::InvalidResponse)
        );
        let html = send(&mut lane, 2).await;
        let failure = html.result.as_ref().err().expect("a failure");
        assert_eq!(failure.kind, ErrorKind::Http5xx);
        assert_eq!(failure.body.as_deref(), Some(&b"<html>"[..]));
        assert!(html.connect.is_some());
        let large = send(&mut lane, 3).await;
        assert_eq!(kind(&large), Some(ErrorKind::BodyTooLarge));
        assert!(large.connect.is_none(), "the 503 kept the connection");
        assert_eq!(
            kind(&send(&mut lane, 4).await),
            Some(ErrorKind::BodyTooLarge)
        );
    }

    #[tokio::test]
    async fn silent_server_times_out() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("address");
        let (release, held) = mpsc::channel::<()>();
        let server = thread::spawn(move || {
            let (mut stream, _) = listener.accept().expect("accept");
            read_request(&mut stream);
            // Keeps the connection open without a response until the test is done.
            let _ = held.recv();
        });
        let mut lane = lane(addr, "200ms", "1MiB");
        let started = Instant::now();
        let exchange = send(&mut lane, 0).await;
        assert_eq!(kind(&exchange), Some(ErrorKind::Timeout));
        assert!(started.elapsed() >= Duration::from_millis(200));
        drop(release);
        server.join().expect("server thread");
    }
}
