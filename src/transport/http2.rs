//! REST over HTTP/2 on hyper's connection API: h2c with prior knowledge for `http://`
//! targets, h2 chosen by ALPN for `https://` targets.
//!
//! Lanes share a fixed set of connections, one stream per lane, as the gRPC transport does.
//! The first lane that finds its connection closed (GOAWAY, reset, idle close) opens a new one
//! and reports the connect time, so replacements show in `connections_opened`. Responses are
//! read and classified by the same code as HTTP/1.1 responses.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HOST};
use http::{HeaderMap, Method, Request, Uri};
use http_body_util::Full;
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use super::connect::{reclassify, Connector, TlsErrorCell, ALPN_H2};
use super::http1::{hyper_failure, read_response, INFERENCE_HEADER_CONTENT_LENGTH};
use super::{Job, Lane, Transport};
use crate::protocol::payload::{EncodedRequest, ResponseCheck};
use crate::scenario::RunPlan;
use crate::stats::{ErrorKind, Exchange, Failure, Reply};

/// Shared state of the HTTP/2 lanes: the connections and the prepared requests.
pub struct Http2Transport {
    connector: Connector,
    uri: Uri,
    headers: HeaderMap,
    requests: Arc<[EncodedRequest]>,
    check: Option<Arc<ResponseCheck>>,
    timeout: Duration,
    max_body: u64,
    connections: Vec<tokio::sync::Mutex<Slot>>,
}

/// One shared connection and how many times it has been opened.
#[derive(Default)]
struct Slot {
    connection: Option<Connection>,
    generation: u64,
}

/// A handle on an open HTTP/2 connection.
#[derive(Clone)]
pub struct Connection {
    pub sender: SendRequest<Full<Bytes>>,
    /// The connection's TLS error cell, over TLS.
    pub tls_error: Option<TlsErrorCell>,
}

impl Http2Transport {
    /// Prepares the request once; connections open on first use.
    pub fn new(plan: &RunPlan, connector: Connector) -> Result<Http2Transport, String> {
        let target = &plan.target;
        let base = target
            .base
            .as_ref()
            .ok_or("the target address is not known yet")?;
        let authority = match &target.host {
            Some(host) => host.clone(),
            None => base.authority().map(|a| a.to_string()).unwrap_or_default(),
        };
        let scheme = if connector.is_tls() { "https" } else { "http" };
        let path = target.model_path("/infer");
        // HTTP/2 carries the Host override in the `:authority` pseudo-header.
        let url = format!("{scheme}://{authority}{path}");
        let uri: Uri = url
            .parse()
            .map_err(|e| format!("invalid request URL {url}: {e}"))?;
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, plan.payload.content_type.clone());
        for (name, value) in &target.headers {
            if name != HOST {
                headers.insert(name.clone(), value.clone());
            }
        }
        let connections = plan.load.connections.max(1) as usize;
        Ok(Http2Transport {
            connector,
            uri,
            headers,
            requests: Arc::clone(&plan.payload.requests),
            check: plan.payload.check.clone().map(Arc::new),
            timeout: target.timeout,
            max_body: target.max_response_body,
            connections: (0..connections).map(|_| Default::default()).collect(),
        })
    }

    fn request(&self, sequence: u64) -> Request<Full<Bytes>> {
        let entry = &self.requests[(sequence % self.requests.len() as u64) as usize];
        let mut request = Request::new(Full::new(entry.body.clone()));
        *request.method_mut() = Method::POST;
        *request.uri_mut() = self.uri.clone();
        *request.headers_mut() = self.headers.clone();
        if let Some(length) = &entry.header_length {
            request
                .headers_mut()
                .insert(INFERENCE_HEADER_CONTENT_LENGTH, length.clone());
        }
        request
    }
}

impl Transport for Arc<Http2Transport> {
    type Lane = Http2Lane;

    fn lane(&self, index: usize) -> Http2Lane {
        Http2Lane {
            shared: Arc::clone(self),
            connection: index % self.connections.len(),
            sender: None,
        }
    }
}

/// One concurrent stream; lanes with the same `connection` index share a connection.
pub struct Http2Lane {
    shared: Arc<Http2Transport>,
    connection: usize,
    /// The generation of the connection this lane last used, and a handle on it.
    sender: Option<(u64, Connection)>,
}

impl Http2Lane {
    /// Makes sure the lane has a live connection. When this lane opened it, returns the
    /// connect time and whether it replaced another connection.
    async fn ensure_connection(&mut self) -> Result<Option<(Duration, bool)>, Failure> {
        if let Some((_, connection)) = &self.sender {
            if !connection.sender.is_closed() {
                return Ok(None);
            }
        }
        let mut slot = self.shared.connections[self.connection].lock().await;
        // Another lane may have replaced the connection while this one waited for the lock.
        let stale = self
            .sender
            .as_ref()
            .is_some_and(|(generation, _)| *generation == slot.generation);
        let usable = slot
            .connection
            .as_ref()
            .is_some_and(|c| !c.sender.is_closed());
        let mut took = None;
        if !usable || stale {
            let started = Instant::now();
            let replaced = slot.connection.is_some();
            slot.connection = Some(open(&self.shared.connector).await?);
            slot.generation += 1;
            took = Some((started.elapsed(), replaced));
            tracing::debug!(
                connection = self.connection,
                generation = slot.generation,
                "opened HTTP/2 connection"
            );
        }
        let connection = slot.connection.clone().expect("set above");
        self.sender = Some((slot.generation, connection));
        Ok(took)
    }

    async fn exchange(&mut self, sequence: u64) -> Result<Reply, Failure> {
        let (_, connection) = self.sender.as_mut().expect("connected before exchange");
        let sender = &mut connection.sender;
        sender.ready().await.map_err(|e| hyper_failure(&e))?;
        let response = sender
            .send_request(self.shared.request(sequence))
            .await
            .map_err(|e| hyper_failure(&e))?;
        let check = self
            .shared
            .check
            .as_deref()
            .filter(|check| check.applies_to(sequence));
        read_response(response, self.shared.max_body, check).await
    }
}

impl Lane for Http2Lane {
    async fn send(&mut self, job: &Job) -> Exchange {
        let connect = match self.ensure_connection().await {
            Ok(took) => took,
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
        let result =
            match tokio::time::timeout(self.shared.timeout, self.exchange(job.sequence)).await {
                Ok(result) => result,
                Err(_) => Err(Failure::new(ErrorKind::Timeout)),
            };
        let tls_error = self.sender.as_ref().and_then(|(_, c)| c.tls_error.as_ref());
        let result = result.map_err(|failure| reclassify(failure, tls_error));
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

/// Opens one HTTP/2 connection. Over TLS the server must choose `h2` by ALPN; a server that
/// accepts the handshake without choosing it is a `tls` failure.
pub async fn open(connector: &Connector) -> Result<Connection, Failure> {
    let io = connector.connect(&[ALPN_H2]).await?;
    let tls_error = io.inner().tls_error();
    if connector.is_tls() && io.inner().alpn() != Some(ALPN_H2) {
        return Err(Failure {
            kind: ErrorKind::Tls,
            status: None,
            headers: None,
            body: Some(Bytes::from_static(
                b"TLS: the server chose no ALPN protocol, and h2 was the only one offered",
            )),
        });
    }
    let (sender, connection) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
        .timer(TokioTimer::new())
        .initial_stream_window_size(1 << 20)
        .initial_connection_window_size(4 << 20)
        .handshake(io)
        .await
        .map_err(|e| hyper_failure(&e))?;
    tokio::spawn(async move {
        // Lanes see a closed connection through `is_closed` and replace it.
        if let Err(error) = connection.await {
            tracing::debug!(%error, "HTTP/2 connection ended");
        }
    });
    Ok(Connection { sender, tls_error })
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use http_body_util::Full;
    use hyper::service::service_fn;
    use hyper_util::rt::TokioIo;
    use tokio::net::TcpListener;

    use super::*;

    fn plan(dir: &std::path::Path, url: &str) -> RunPlan {
        crate::transport::test_plan(dir, url, "http2")
    }

    /// Serves h2c and ends each connection with GOAWAY after its first response; returns the
    /// address and the number of connections accepted.
    async fn goaway_server() -> (std::net::SocketAddr, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&accepted);
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                counter.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let (done_tx, mut done_rx) = tokio::sync::mpsc::channel::<()>(1);
                    let handler = service_fn(move |_request| {
                        let done = done_tx.clone();
                        async move {
                            let _ = done.try_send(());
                            Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::from_static(
                                br#"{"outputs":[]}"#,
                            ))))
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
        let transport = Arc::new(Http2Transport::new(&plan, connector).unwrap());
        let mut lane = transport.lane(0);
        let (mut ok, mut reset, mut connects) = (0, 0, 0);
        for sequence in 0..10 {
            let job = Job {
                intended: Instant::now(),
                sequence,
                measured: true,
            };
            let exchange = lane.send(&job).await;
            connects += usize::from(exchange.connect.is_some());
            match exchange.result {
                Ok(reply) => {
                    assert_eq!(reply.status, 200, "request {sequence}");
                    ok += 1;
                }
                Err(failure) => {
                    assert_eq!(failure.kind, ErrorKind::Reset, "request {sequence}");
                    reset += 1;
                }
            }
        }
        assert_eq!(ok + reset, 10);
        // hyper's graceful shutdown still serves streams that start before its final GOAWAY
        // (10 ok over 7 connections measured), and a later one fails as a reset.
        assert!(ok >= 5, "ok {ok}, reset {reset}");
        assert!(connects >= 5, "connects {connects}");
        // Every connection the server accepted was opened, and counted, by the lane.
        assert_eq!(connects, accepted.load(Ordering::SeqCst));
    }
}
