//! gRPC transport: unary `ModelInfer` calls sent as raw HTTP/2 requests over a fixed set of
//! connections that many lanes share (one lane per concurrent stream).
//!
//! Each request is built from parts prepared before the run: the URI, the headers (metadata,
//! `content-type: application/grpc`, `te: trailers`, `grpc-timeout`) and the length-prefixed
//! message, which every call sends as a clone of the same `Bytes`. Replies are read by
//! [`grpc_reply`](super::grpc_reply), which decodes a message only when it is validated. This
//! skips tonic's per-call encoder, decoder and request body stream, so a call costs fewer
//! instructions. tonic still serves the preflight calls.
//!
//! The first lane that finds its connection closed by the server (GOAWAY, reset, idle close)
//! opens a new one and reports the connect time, so replacements show in
//! `connections_opened` and `reconnects`. A call that never reached the server, because the
//! connection was closing (a GOAWAY arrived first) or the server refused the stream, is sent
//! once more on a new connection. Only a second such failure counts as an error.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use http::header::{CONTENT_LENGTH, CONTENT_TYPE, TE};
use http::{HeaderMap, HeaderValue, Method, Request, Uri};
use http_body_util::combinators::MapErr;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use super::connect::{reclassify, Connector, TlsErrorCell, ALPN_H2};
use super::grpc_reply::read_reply;
use super::{Job, Lane, Transport};
use crate::protocol::grpc_api::MODEL_INFER_PATH;
use crate::protocol::payload::ResponseCheck;
use crate::scenario::RunPlan;
use crate::stats::{ErrorKind, Exchange, Failure, Reply};

/// Request header that carries the call's deadline to the server.
const GRPC_TIMEOUT: &str = "grpc-timeout";

/// Settings of the gRPC transport taken from the plan, and the prepared requests.
pub struct GrpcTransport {
    connector: Connector,
    uri: Uri,
    requests: Box<[PreparedCall]>,
    timeout: Duration,
    max_receive: usize,
    check: Option<Arc<ResponseCheck>>,
    connections: Vec<tokio::sync::Mutex<Slot>>,
}

/// One payload ready to send: its gRPC frame and the request headers.
struct PreparedCall {
    frame: Bytes,
    headers: HeaderMap,
}

/// One shared connection and how many times it has been opened.
#[derive(Default)]
struct Slot {
    sender: Option<SendRequest<Full<Bytes>>>,
    tls_error: Option<TlsErrorCell>,
    generation: u64,
}

impl GrpcTransport {
    /// Prepares the shared settings and every request; connections open on first use.
    pub fn new(plan: &RunPlan, connector: Connector) -> Result<GrpcTransport, String> {
        let connections = plan.load.connections.max(1) as usize;
        let mut uri = origin(plan, &connector)?.into_parts();
        uri.path_and_query = Some(http::uri::PathAndQuery::from_static(MODEL_INFER_PATH));
        let uri = Uri::from_parts(uri).map_err(|e| format!("invalid gRPC URI: {e}"))?;
        let metadata = metadata(plan);
        let timeout = grpc_timeout(plan.target.timeout);
        let requests = plan
            .payload
            .requests
            .iter()
            .map(|entry| {
                let frame = frame(&entry.body);
                let mut headers = metadata.clone();
                headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
                headers.insert(TE, HeaderValue::from_static("trailers"));
                headers.insert(GRPC_TIMEOUT, timeout.clone());
                // hyper would add the length of a body of known size to every request.
                headers.insert(CONTENT_LENGTH, HeaderValue::from(frame.len()));
                PreparedCall { frame, headers }
            })
            .collect();
        Ok(GrpcTransport {
            connector,
            uri,
            requests,
            timeout: plan.target.timeout,
            max_receive: plan.target.grpc.max_receive_message_size as usize,
            check: plan.payload.check.clone().map(Arc::new),
            connections: (0..connections).map(|_| Default::default()).collect(),
        })
    }

    /// Builds the request of `sequence`. `remaining` replaces the prepared `grpc-timeout`
    /// when a call is sent again with what is left of its deadline.
    fn request(&self, sequence: u64, remaining: Option<Duration>) -> Request<Full<Bytes>> {
        let call = &self.requests[(sequence % self.requests.len() as u64) as usize];
        let mut request = Request::new(Full::new(call.frame.clone()));
        *request.method_mut() = Method::POST;
        *request.uri_mut() = self.uri.clone();
        *request.headers_mut() = call.headers.clone();
        if let Some(remaining) = remaining {
            request
                .headers_mut()
                .insert(GRPC_TIMEOUT, grpc_timeout(remaining));
        }
        request
    }
}

/// Frames an encoded message for gRPC: no compression, then its length as a big-endian u32.
/// The plan has limited messages to `target.grpc.max_send_message_size`, at most 4 GiB.
fn frame(message: &Bytes) -> Bytes {
    let mut frame = BytesMut::with_capacity(5 + message.len());
    frame.put_u8(0);
    frame.put_u32(message.len() as u32);
    frame.put_slice(message);
    frame.freeze()
}

/// Formats a `grpc-timeout` value: at most 8 digits in the finest unit that fits.
fn grpc_timeout(timeout: Duration) -> HeaderValue {
    const UNITS: [(u128, char); 6] = [
        (1, 'n'),
        (1_000, 'u'),
        (1_000_000, 'm'),
        (1_000_000_000, 'S'),
        (60_000_000_000, 'M'),
        (3_600_000_000_000, 'H'),
    ];
    let nanos = timeout.as_nanos();
    let (value, unit) = UNITS
        .iter()
        .map(|(per, unit)| (nanos / per, *unit))
        .find(|(value, _)| *value <= 99_999_999)
        .unwrap_or((99_999_999, 'H'));
    HeaderValue::try_from(format!("{value}{unit}")).expect("digits and a letter are valid")
}

/// Builds the `:scheme` and `:authority` of every call from the Host override when set, else
/// from the URL.
pub fn origin(plan: &RunPlan, connector: &Connector) -> Result<Uri, String> {
    let base = plan
        .target
        .base
        .as_ref()
        .ok_or("the target address is not known yet")?;
    let authority = match &plan.target.host {
        Some(host) => host.clone(),
        None => base.authority().map(|a| a.to_string()).unwrap_or_default(),
    };
    let scheme = if connector.is_tls() { "https" } else { "http" };
    format!("{scheme}://{authority}")
        .parse()
        .map_err(|e| format!("invalid gRPC authority {authority:?}: {e}"))
}

/// Request metadata from the scenario's headers. The plan has lowercased the names, trimmed
/// and checked the values, and rejected names reserved by gRPC.
fn metadata(plan: &RunPlan) -> HeaderMap {
    let mut metadata = HeaderMap::new();
    for (name, value) in &plan.target.headers {
        metadata.append(name.clone(), value.clone());
    }
    metadata
}

impl Transport for Arc<GrpcTransport> {
    type Lane = GrpcLane;

    fn lane(&self, index: usize) -> GrpcLane {
        GrpcLane {
            shared: Arc::clone(self),
            connection: index % self.connections.len(),
            client: None,
        }
    }
}

/// One concurrent stream; lanes with the same `connection` index share a connection.
pub struct GrpcLane {
    shared: Arc<GrpcTransport>,
    connection: usize,
    /// The connection's generation and a sender on it.
    client: Option<LaneClient>,
}

struct LaneClient {
    generation: u64,
    sender: SendRequest<Full<Bytes>>,
    tls_error: Option<TlsErrorCell>,
}

impl GrpcLane {
    /// Makes sure the lane has a sender on a live connection, opening or replacing it when
    /// needed. With `replace`, the lane's connection is replaced even when it does not look
    /// closed yet. When this lane opened a connection, returns the connect time and whether
    /// the new connection replaced another.
    async fn client(&mut self, replace: bool) -> Result<Option<(Duration, bool)>, Failure> {
        if let Some(client) = &self.client {
            if !replace && !client.sender.is_closed() {
                return Ok(None);
            }
        }
        let mut slot = self.shared.connections[self.connection].lock().await;
        let mut took = None;
        // Another lane may have replaced the connection while this one waited for the lock.
        let stale = self
            .client
            .as_ref()
            .is_some_and(|client| client.generation == slot.generation);
        let usable = slot.sender.as_ref().is_some_and(|s| !s.is_closed());
        if !usable || stale {
            let started = Instant::now();
            let (sender, tls_error) = open(&self.shared.connector).await?;
            took = Some((started.elapsed(), slot.sender.is_some()));
            slot.sender = Some(sender);
            slot.tls_error = tls_error;
            slot.generation += 1;
            tracing::debug!(
                connection = self.connection,
                generation = slot.generation,
                "opened gRPC connection"
            );
        }
        self.client = Some(LaneClient {
            generation: slot.generation,
            sender: slot.sender.clone().expect("set above"),
            tls_error: slot.tls_error.clone(),
        });
        Ok(took)
    }

    /// Sends one call and reads its reply. `remaining` is the deadline left for a call sent
    /// again; a first call sends the prepared `grpc-timeout`.
    async fn call(&mut self, job: &Job, remaining: Option<Duration>) -> Result<Reply, CallError> {
        let shared = &*self.shared;
        let sender = &mut self
            .client
            .as_mut()
            .expect("connected before a call")
            .sender;
        sender
            .ready()
            .await
            .map_err(|error| CallError::from(TransportError::from_hyper(error)))?;
        let response = sender
            .send_request(shared.request(job.sequence, remaining))
            .await
            .map_err(|error| CallError::from(TransportError::from_hyper(error)))?;
        let check = shared
            .check
            .as_deref()
            .filter(|check| check.applies_to(job.sequence));
        read_reply(response, shared.max_receive, check).await
    }

    /// Calls ModelInfer with what remains of the request timeout until `deadline`.
    async fn call_until(
        &mut self,
        job: &Job,
        deadline: Instant,
        retry: bool,
    ) -> Result<Reply, CallError> {
        let remaining = retry.then(|| deadline.saturating_duration_since(Instant::now()));
        match tokio::time::timeout_at(deadline.into(), self.call(job, remaining)).await {
            Ok(result) => result,
            Err(_) => Err(CallError::Failed(Failure::new(ErrorKind::Timeout))),
        }
    }
}

/// Why a call failed: `NotSent` when the server never saw it, so it may be sent again.
pub enum CallError {
    NotSent(Failure),
    Failed(Failure),
}

impl CallError {
    fn into_failure(self) -> Failure {
        match self {
            CallError::NotSent(failure) | CallError::Failed(failure) => failure,
        }
    }
}

impl From<TransportError> for CallError {
    /// Maps a connection failure to a failure with no reply metadata; a TLS failure keeps its
    /// reason as the error body.
    fn from(error: TransportError) -> CallError {
        let failure = Failure {
            kind: error.kind,
            status: None,
            headers: Some(HeaderMap::new()),
            body: (error.kind == ErrorKind::Tls).then(|| Bytes::from(error.message)),
        };
        if error.unsent {
            CallError::NotSent(failure)
        } else {
            CallError::Failed(failure)
        }
    }
}

impl Lane for GrpcLane {
    async fn send(&mut self, job: &Job) -> Exchange {
        let mut connect = match self.client(false).await {
            Ok(opened) => opened,
            Err(failure) => {
                let now = Instant::now();
                return Exchange {
                    intended: job.intended,
                    sent: now,
                    finished: now,
                    measured: job.measured,
                    connect: None,
                    reconnect: false,
                    result: Err(failure),
                };
            }
        };
        let sent = Instant::now();
        let deadline = sent + self.shared.timeout;
        let mut result = self.call_until(job, deadline, false).await;
        if let Err(CallError::NotSent(_)) = result {
            // The server never saw the call: send it once more on a new connection, within
            // the same deadline.
            tracing::debug!(
                connection = self.connection,
                "call not sent on a closing connection; sending it on a new one"
            );
            result = match self.client(true).await {
                // NOTE: when both attempts opened a connection, only the second is counted.
                Ok(opened) => {
                    connect = opened.or(connect);
                    self.call_until(job, deadline, true).await
                }
                Err(failure) => Err(CallError::Failed(failure)),
            };
        }
        let tls_error = self.client.as_ref().and_then(|c| c.tls_error.as_ref());
        let result = result.map_err(|error| reclassify(error.into_failure(), tls_error));
        Exchange {
            intended: job.intended,
            sent,
            finished: Instant::now(),
            measured: job.measured,
            connect: connect.map(|(took, _)| took),
            reconnect: connect.is_some_and(|(_, replaced)| replaced),
            result,
        }
    }
}

/// Opens one HTTP/2 connection (h2c, or h2 over TLS) for gRPC; returns its sender and, over
/// TLS, its TLS error cell. `B` is the request body type: raw frames for the lanes, tonic's
/// body for the preflight client.
pub async fn open<B>(
    connector: &Connector,
) -> Result<(SendRequest<B>, Option<TlsErrorCell>), Failure>
where
    B: hyper::body::Body + Send + Unpin + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let io = connector.connect(&[ALPN_H2]).await?;
    let tls_error = io.inner().tls_error();
    let (sender, connection) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
        .timer(TokioTimer::new())
        .initial_stream_window_size(1 << 20)
        .initial_connection_window_size(4 << 20)
        .handshake(io)
        .await
        .map_err(|e| super::http1::hyper_failure(&e))?;
    tokio::spawn(async move {
        // Lanes see a closed connection through `is_closed` and replace it, so the end of
        // the connection needs no handling here.
        if let Err(error) = connection.await {
            tracing::debug!(%error, "gRPC connection ended");
        }
    });
    Ok((sender, tls_error))
}

/// A failure of the connection itself (not a gRPC status sent by the peer).
#[derive(Debug)]
pub struct TransportError {
    kind: ErrorKind,
    /// The request never reached the server, so sending it again is safe.
    unsent: bool,
    message: String,
}

impl std::fmt::Display for TransportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for TransportError {}

impl TransportError {
    pub fn from_hyper(error: hyper::Error) -> TransportError {
        if let Some(tls) = super::tls::find_tls_error(&error) {
            return TransportError {
                kind: ErrorKind::Tls,
                unsent: false,
                message: format!("TLS: {tls}"),
            };
        }
        TransportError {
            kind: if error.is_timeout() {
                ErrorKind::Timeout
            } else {
                ErrorKind::Reset
            },
            unsent: never_reached_server(&error),
            message: error.to_string(),
        }
    }
}

/// Returns whether a hyper error means that the server did not process the request. That is
/// so when hyper cancelled it before writing it (the connection was closing), when the server
/// refused the stream (REFUSED_STREAM), or when a graceful GOAWAY named a last stream below it.
fn never_reached_server(error: &hyper::Error) -> bool {
    if error.is_canceled() {
        return true;
    }
    let Some(h2) = std::error::Error::source(error).and_then(|s| s.downcast_ref::<h2::Error>())
    else {
        return false;
    };
    let reason = h2.reason();
    (h2.is_reset() && h2.is_remote() && reason == Some(h2::Reason::REFUSED_STREAM))
        || (h2.is_go_away() && h2.is_remote() && reason == Some(h2::Reason::NO_ERROR))
}

type ResponseBody = MapErr<Incoming, fn(hyper::Error) -> TransportError>;

/// A hyper HTTP/2 connection as the tower service that tonic's preflight client calls.
/// Errors are wrapped in [`TransportError`] so they stay apart from statuses the server sent.
#[derive(Clone)]
pub struct H2Service(pub SendRequest<tonic::body::Body>);

impl tower_service::Service<http::Request<tonic::body::Body>> for H2Service {
    type Response = http::Response<ResponseBody>;
    type Error = TransportError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, TransportError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), TransportError>> {
        self.0.poll_ready(cx).map_err(TransportError::from_hyper)
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        let response = self.0.send_request(request);
        Box::pin(async move {
            let response = response.await.map_err(TransportError::from_hyper)?;
            Ok(response.map(|body| body.map_err(TransportError::from_hyper as fn(_) -> _)))
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use hyper::service::service_fn;
    use hyper_util::rt::TokioIo;
    use tokio::net::TcpListener;

    use prost::Message;
    use tonic::Code;

    use super::*;
    use crate::protocol::grpc_api;
    use crate::stats::GRPC_STATUS;
    use crate::transport::grpc_reply::{status_failure, GrpcStatus};

    fn plan(dir: &std::path::Path, url: &str) -> RunPlan {
        crate::transport::test_plan(dir, url, "grpc")
    }

    /// Serves the embedded gRPC service and closes each connection with GOAWAY after its
    /// first call; returns the address and the number of connections accepted.
    async fn goaway_server() -> (std::net::SocketAddr, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&accepted);
        let service = crate::serve::grpc_service_for_tests();
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                counter.fetch_add(1, Ordering::SeqCst);
                let service = service.clone();
                tokio::spawn(async move {
                    let (done_tx, mut done_rx) = tokio::sync::mpsc::channel::<()>(1);
                    let handler = service_fn(move |request| {
                        let mut service = service.clone();
                        let done = done_tx.clone();
                        async move {
                            let response =
                                tower_service::Service::call(&mut service, request).await;
                            let _ = done.try_send(());
                            response
                        }
                    });
                    let connection = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), handler);
                    tokio::pin!(connection);
                    tokio::select! {
                        _ = connection.as_mut() => return,
                        _ = done_rx.recv() => connection.as_mut().graceful_shutdown(),
                    }
                    let _ = connection.await;
                });
            }
        });
        (addr, accepted)
    }

    #[tokio::test]
    async fn goaway_connections_are_replaced() {
        let (addr, accepted) = goaway_server().await;
        let temp = tempfile::tempdir().unwrap();
        let plan = plan(temp.path(), &format!("http://{addr}"));
        let connector = Connector::new(addr, Duration::from_secs(1));
        let transport = Arc::new(GrpcTransport::new(&plan, connector).unwrap());
        let mut lane = transport.lane(0);
        let (mut ok, mut reset, mut connects, mut reconnects) = (0, 0, 0, 0);
        for sequence in 0..10 {
            let job = Job {
                intended: Instant::now(),
                sequence,
                measured: true,
            };
            let exchange = lane.send(&job).await;
            connects += usize::from(exchange.connect.is_some());
            reconnects += usize::from(exchange.reconnect);
            match exchange.result {
                Ok(_) => ok += 1,
                Err(failure) => {
                    assert_eq!(failure.kind, ErrorKind::Reset, "request {sequence}");
                    reset += 1;
                }
            }
        }
        // A call that the closing connection did not take is sent again on a new one.
        assert_eq!(ok, 10, "ok {ok}, reset {reset}");
        assert!(connects >= 3, "connects {connects}");
        assert_eq!(connects, accepted.load(Ordering::SeqCst));
        assert_eq!(reconnects, connects - 1);
    }

    /// Serves every call with a reply whose initial metadata carries no route: a message and
    /// then trailers with `grpc-status` and `x-seldon-route: :t_1:`. Each connection is served
    /// until the client closes it.
    async fn trailers_server(grpc_status: &'static str) -> std::net::SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                let handler = service_fn(move |_request| async move {
                    let message = grpc_api::ModelInferResponse::default().encode_to_vec();
                    let mut frame = vec![0u8];
                    frame.extend_from_slice(&(message.len() as u32).to_be_bytes());
                    frame.extend_from_slice(&message);
                    let mut trailers = HeaderMap::new();
                    trailers.insert("grpc-status", grpc_status.parse().unwrap());
                    trailers.insert("x-seldon-route", ":t_1:".parse().unwrap());
                    let body = http_body_util::Full::new(Bytes::from(frame))
                        .with_trailers(async move { Some(Ok(trailers)) });
                    let response = http::Response::builder()
                        .header("content-type", "application/grpc")
                        .body(body)
                        .unwrap();
                    Ok::<_, std::convert::Infallible>(response)
                });
                tokio::spawn(
                    hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), handler),
                );
            }
        });
        addr
    }

    #[tokio::test]
    async fn route_read_from_real_trailers() {
        let temp = tempfile::tempdir().unwrap();
        for (grpc_status, expected) in [("0", None), ("14", Some(ErrorKind::GrpcUnavailable))] {
            let addr = trailers_server(grpc_status).await;
            let plan = plan(temp.path(), &format!("http://{addr}"));
            let connector = Connector::new(addr, Duration::from_secs(1));
            let transport = Arc::new(GrpcTransport::new(&plan, connector).unwrap());
            let job = Job {
                intended: Instant::now(),
                sequence: 0,
                measured: true,
            };
            let exchange = transport.lane(0).send(&job).await;
            let headers = match (exchange.result, expected) {
                (Ok(reply), None) => reply.headers,
                (Err(failure), Some(kind)) => {
                    assert_eq!(failure.kind, kind);
                    let headers = failure.headers.expect("trailers kept");
                    assert_eq!(headers[GRPC_STATUS], "14");
                    headers
                }
                (Ok(_), Some(kind)) => panic!("grpc-status {grpc_status}: ok, expected {kind:?}"),
                (Err(failure), None) => {
                    panic!("grpc-status {grpc_status}: failed with {:?}", failure.kind)
                }
            };
            assert_eq!(
                headers["x-seldon-route"], ":t_1:",
                "grpc-status {grpc_status}"
            );
        }
    }

    #[test]
    fn statuses_map_to_kinds() {
        let cases = [
            (Code::Unavailable, ErrorKind::GrpcUnavailable),
            (Code::ResourceExhausted, ErrorKind::GrpcResourceExhausted),
            (Code::DeadlineExceeded, ErrorKind::GrpcDeadlineExceeded),
            (Code::Unimplemented, ErrorKind::GrpcUnimplemented),
            (Code::InvalidArgument, ErrorKind::GrpcInvalidArgument),
            (Code::NotFound, ErrorKind::GrpcNotFound),
            (Code::Internal, ErrorKind::GrpcInternal),
            (Code::PermissionDenied, ErrorKind::GrpcOther),
        ];
        for (code, kind) in cases {
            let failure = status_failure(GrpcStatus::new(code, "x"), HeaderMap::new());
            assert_eq!(failure.kind, kind, "{code:?}");
        }
    }

    #[test]
    fn failure_keeps_trailer_metadata() {
        let mut trailers = HeaderMap::new();
        trailers.insert("x-seldon-route", ":a_1:".parse().unwrap());
        trailers.insert("grpc-message", "no%20route".parse().unwrap());
        let status = GrpcStatus::new(Code::Unimplemented, "no route");
        let failure = status_failure(status, trailers);
        let headers = failure.headers.unwrap();
        assert_eq!(headers.get("x-seldon-route").unwrap(), ":a_1:");
        assert_eq!(headers.get(GRPC_STATUS).unwrap(), "12");
        assert!(headers.get("grpc-message").is_none());
    }

    #[test]
    fn grpc_timeout_uses_finest_unit() {
        let cases = [
            (Duration::from_millis(500), "500000u"),
            (Duration::from_nanos(1500), "1500n"),
            (Duration::from_secs(10), "10000000u"),
            (Duration::from_secs(1000), "1000000m"),
            (Duration::from_secs(200_000), "200000S"),
        ];
        for (timeout, expected) in cases {
            assert_eq!(grpc_timeout(timeout), expected, "{timeout:?}");
        }
    }
}
