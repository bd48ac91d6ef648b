//! gRPC transport: unary `ModelInfer` calls on tonic, over a fixed set of HTTP/2 connections
//! that many lanes share (one lane per concurrent stream).
//!
//! Each connection is a hyper HTTP/2 client connection wrapped as a tower service, so this
//! module decides when a connection is opened and replaced. The first lane that finds its
//! connection closed by the server (GOAWAY, reset, idle close) opens a new one and reports the
//! connect time, so replacements show in `connections_opened` and `reconnects`. A call that
//! never reached the server, because the connection was closing (a GOAWAY arrived first) or
//! the server refused the stream, is sent once more on a new connection. Only a second such
//! failure counts as an error. Request
//! messages are encoded once before the run; each call copies the prepared bytes into the
//! gRPC frame. Response metadata and trailers are merged into one header map, which is where
//! proxies such as Envoy put `x-seldon-route` on a trailers-only error reply.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::{Buf, BufMut, Bytes};
use http::uri::PathAndQuery;
use http::{HeaderMap, Uri};
use http_body_util::combinators::MapErr;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use prost::Message;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::metadata::MetadataMap;
use tonic::{Code, Status};

use super::connect::{reclassify, Connector, TlsErrorCell, ALPN_H2};
use super::{Job, Lane, Transport};
use crate::protocol::grpc_api::{self, MODEL_INFER_PATH};
use crate::protocol::payload::{EncodedRequest, ResponseCheck};
use crate::scenario::RunPlan;
use crate::stats::{ErrorKind, Exchange, Failure, Reply, ERROR_BODY_PREFIX, GRPC_STATUS};

/// Settings of the gRPC transport taken from the plan.
pub struct GrpcTransport {
    connector: Connector,
    origin: Uri,
    metadata: HeaderMap,
    requests: Arc<[EncodedRequest]>,
    timeout: Duration,
    max_send: usize,
    max_receive: usize,
    check: Option<Arc<ResponseCheck>>,
    connections: Vec<tokio::sync::Mutex<Slot>>,
}

/// One shared connection and how many times it has been opened.
#[derive(Default)]
struct Slot {
    sender: Option<SendRequest<tonic::body::Body>>,
    tls_error: Option<TlsErrorCell>,
    generation: u64,
}

impl GrpcTransport {
    /// Prepares the shared settings; connections open on first use.
    pub fn new(plan: &RunPlan, connector: Connector) -> Result<GrpcTransport, String> {
        let connections = plan.load.connections.max(1) as usize;
        Ok(GrpcTransport {
            origin: origin(plan, &connector)?,
            connector,
            metadata: metadata(plan),
            requests: Arc::clone(&plan.payload.requests),
            timeout: plan.target.timeout,
            max_send: plan.target.grpc.max_send_message_size as usize,
            max_receive: plan.target.grpc.max_receive_message_size as usize,
            check: plan.payload.check.clone().map(Arc::new),
            connections: (0..connections).map(|_| Default::default()).collect(),
        })
    }
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
    /// The connection's generation and a client on it.
    client: Option<LaneClient>,
}

struct LaneClient {
    generation: u64,
    connection: SendRequest<tonic::body::Body>,
    tls_error: Option<TlsErrorCell>,
    grpc: tonic::client::Grpc<H2Service>,
}

impl GrpcLane {
    /// Makes sure the lane has a client on a live connection, opening or replacing it when
    /// needed. With `replace`, the lane's connection is replaced even when it does not look
    /// closed yet. When this lane opened a connection, returns the connect time and whether
    /// the new connection replaced another.
    async fn client(&mut self, replace: bool) -> Result<Option<(Duration, bool)>, Failure> {
        if let Some(client) = &self.client {
            if !replace && !client.connection.is_closed() {
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
        let sender = slot.sender.clone().expect("set above");
        let grpc =
            tonic::client::Grpc::with_origin(H2Service(sender.clone()), self.shared.origin.clone())
                .max_encoding_message_size(self.shared.max_send)
                .max_decoding_message_size(self.shared.max_receive);
        self.client = Some(LaneClient {
            generation: slot.generation,
            connection: sender,
            tls_error: slot.tls_error.clone(),
            grpc,
        });
        Ok(took)
    }

    async fn call(&mut self, job: &Job, timeout: Duration) -> Result<Reply, CallError> {
        let shared = Arc::clone(&self.shared);
        let client = &mut self.client.as_mut().expect("connected before a call").grpc;
        let entry = &shared.requests[(job.sequence % shared.requests.len() as u64) as usize];
        let mut request = tonic::Request::new(entry.body.clone());
        *request.metadata_mut() = MetadataMap::from_headers(shared.metadata.clone());
        request.set_timeout(timeout);
        client.ready().await.map_err(|error| {
            let failure = Failure::new(error.kind);
            if error.unsent {
                CallError::NotSent(failure)
            } else {
                CallError::Failed(failure)
            }
        })?;
        let path = PathAndQuery::from_static(MODEL_INFER_PATH);
        match client.unary(request, path, PreEncoded).await {
            Ok(response) => {
                let (metadata, body, _) = response.into_parts();
                let headers = metadata.into_headers();
                if let Some(check) = shared.check.as_deref() {
                    if check.applies_to(job.sequence) {
                        if let Err(message) = check_response(check, &body) {
                            return Err(CallError::Failed(Failure {
                                kind: ErrorKind::InvalidOutput,
                                status: Some(200),
                                headers: Some(headers),
                                body: Some(message),
                            }));
                        }
                    }
                }
                Ok(Reply {
                    status: 200,
                    headers,
                    error_body: None,
                })
            }
            Err(status) if is_unsent(&status) => Err(CallError::NotSent(status_failure(status))),
            Err(status) => Err(CallError::Failed(status_failure(status))),
        }
    }
}

/// Why a call failed: `NotSent` when the server never saw it, so it may be sent again.
enum CallError {
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

/// Returns whether a failed call's status comes from a connection error that happened before
/// the request reached the server.
fn is_unsent(status: &Status) -> bool {
    std::error::Error::source(status)
        .and_then(|source| source.downcast_ref::<TransportError>())
        .is_some_and(|error| error.unsent)
}

impl GrpcLane {
    /// Calls ModelInfer with what remains of the request timeout until `deadline`.
    async fn call_until(&mut self, job: &Job, deadline: Instant) -> Result<Reply, CallError> {
        let remaining = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout_at(deadline.into(), self.call(job, remaining)).await {
            Ok(result) => result,
            Err(_) => Err(CallError::Failed(Failure::new(ErrorKind::Timeout))),
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
        let mut result = self.call_until(job, deadline).await;
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
                    self.call_until(job, deadline).await
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
/// TLS, its TLS error cell.
pub async fn open(
    connector: &Connector,
) -> Result<(SendRequest<tonic::body::Body>, Option<TlsErrorCell>), Failure> {
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

/// Maps a failed call's status to a failure with its merged metadata and message.
fn status_failure(status: Status) -> Failure {
    let local = std::error::Error::source(&status)
        .and_then(|source| source.downcast_ref::<TransportError>())
        .map(|error| error.kind);
    let kind = local.unwrap_or(match status.code() {
        Code::Unavailable => ErrorKind::GrpcUnavailable,
        Code::ResourceExhausted => ErrorKind::GrpcResourceExhausted,
        Code::DeadlineExceeded => ErrorKind::GrpcDeadlineExceeded,
        Code::Unimplemented => ErrorKind::GrpcUnimplemented,
        Code::InvalidArgument => ErrorKind::GrpcInvalidArgument,
        Code::NotFound => ErrorKind::GrpcNotFound,
        Code::Internal => ErrorKind::GrpcInternal,
        _ => ErrorKind::GrpcOther,
    });
    let tls_reason = std::error::Error::source(&status)
        .and_then(|source| source.downcast_ref::<TransportError>())
        .filter(|error| error.kind == ErrorKind::Tls)
        .map(|error| Bytes::from(error.message.clone()));
    // Failed calls are rare next to successes, so formatting the status text here is cheap.
    let body = tls_reason.or_else(|| {
        local.is_none().then(|| {
            let text = format!(
                "grpc-status {} ({:?}): {}",
                status.code() as i32,
                status.code(),
                status.message()
            );
            Bytes::copy_from_slice(&text.as_bytes()[..text.len().min(ERROR_BODY_PREFIX)])
        })
    });
    let mut headers = status.metadata().clone().into_headers();
    if local.is_none() {
        // tonic takes `grpc-status` out of the metadata; put it back so that the recorder
        // counts the status the server sent.
        headers.insert(GRPC_STATUS, http::HeaderValue::from(status.code() as i32));
    }
    Failure {
        kind,
        status: None,
        headers: Some(headers),
        body,
    }
}

/// Checks a response message against the expected outputs; returns the reason on a mismatch.
fn check_response(check: &ResponseCheck, body: &Bytes) -> Result<(), Bytes> {
    let response = grpc_api::ModelInferResponse::decode(body.clone())
        .map_err(|e| Bytes::from(format!("invalid ModelInferResponse: {e}")))?;
    let outputs = crate::protocol::encode::grpc_outputs(&response);
    check.check(&outputs).map_err(Bytes::from)
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
    fn from_hyper(error: hyper::Error) -> TransportError {
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

/// A hyper HTTP/2 connection as the tower service tonic calls. Errors are wrapped in
/// [`TransportError`] so they stay apart from statuses the server sent.
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

/// A codec whose requests are already-encoded protobuf bytes and whose responses are kept
/// as bytes, decoded only when a response is validated.
#[derive(Debug, Clone, Copy, Default)]
pub struct PreEncoded;

impl Codec for PreEncoded {
    type Encode = Bytes;
    type Decode = Bytes;
    type Encoder = PreEncoded;
    type Decoder = PreEncoded;

    fn encoder(&mut self) -> PreEncoded {
        PreEncoded
    }

    fn decoder(&mut self) -> PreEncoded {
        PreEncoded
    }
}

impl Encoder for PreEncoded {
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for PreEncoded {
    type Item = Bytes;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        let length = src.remaining();
        Ok(Some(src.copy_to_bytes(length)))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use hyper::service::service_fn;
    use hyper_util::rt::TokioIo;
    use tokio::net::TcpListener;

    use super::*;
    use crate::scenario::{Overrides, Scenario};

    fn plan(dir: &std::path::Path, url: &str) -> RunPlan {
        std::fs::write(
            dir.join("x.json"),
            r#"{"inputs":[{"name":"x","shape":[1,2],"datatype":"FP32","data":[1,2]}]}"#,
        )
        .unwrap();
        let text = format!(
            "[target]\nurl = \"{url}\"\nmodel = \"m\"\ntransport = \"grpc\"\n\
             [payload]\nfile = \"x.json\"\n[load]\nrate = \"10/s\"\nconnections = 1\n"
        );
        let path = dir.join("s.toml");
        let scenario = Scenario::from_toml(&text, &path).unwrap();
        RunPlan::build(scenario, &path, &Overrides::default()).unwrap()
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
            assert_eq!(
                status_failure(Status::new(code, "x")).kind,
                kind,
                "{code:?}"
            );
        }
    }

    #[test]
    fn failure_keeps_trailer_metadata() {
        let mut metadata = MetadataMap::new();
        metadata.insert("x-seldon-route", ":a_1:".parse().unwrap());
        let status = Status::with_metadata(Code::Unimplemented, "no route", metadata);
        let failure = status_failure(status);
        let headers = failure.headers.unwrap();
        assert_eq!(headers.get("x-seldon-route").unwrap(), ":a_1:");
    }
}
