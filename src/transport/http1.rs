//! HTTP/1.1 keep-alive transport on hyper's connection API: one connection per lane, opened
//! lazily, reused, and replaced after `Connection: close`, a reset or a timeout. Over TLS the
//! lane offers only `http/1.1` by ALPN.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use http::header::{CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, HOST};
use http::{HeaderMap, HeaderValue, Method, Request, Uri};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;

use super::connect::{reclassify, tls_failure, Connector, TlsErrorCell, ALPN_HTTP1};
use super::{Job, Lane, Transport};
use crate::protocol::payload::{EncodedRequest, ResponseCheck};
use crate::scenario::RunPlan;
use crate::stats::{ErrorKind, Exchange, Failure, Reply, ERROR_BODY_PREFIX};

/// Request header of the REST binary tensor extension: the length of the JSON part.
pub const INFERENCE_HEADER_CONTENT_LENGTH: &str = "inference-header-content-length";

/// State shared by every HTTP/1.1 lane: the connector and the prepared request.
pub struct Http1Transport {
    connector: Connector,
    uri: Uri,
    headers: HeaderMap,
    requests: Arc<[EncodedRequest]>,
    check: Option<Arc<ResponseCheck>>,
    timeout: Duration,
    max_body: u64,
}

impl Http1Transport {
    /// Prepares the request once; `connector` opens connections to the resolved target.
    pub fn new(plan: &RunPlan, connector: Connector) -> Result<Http1Transport, String> {
        let target = &plan.target;
        let base = target
            .base
            .as_ref()
            .ok_or("the target address is not known yet")?;
        let uri: Uri = target
            .model_path("/infer")
            .parse()
            .map_err(|e| format!("invalid request path {}: {e}", target.model_path("/infer")))?;
        let mut headers = HeaderMap::new();
        let host = match &target.host {
            Some(host) => host.clone(),
            None => base.authority().map(|a| a.to_string()).unwrap_or_default(),
        };
        headers.insert(
            HOST,
            HeaderValue::try_from(host.as_str()).map_err(|_| format!("invalid Host {host:?}"))?,
        );
        headers.insert(CONTENT_TYPE, plan.payload.content_type.clone());
        for (name, value) in &target.headers {
            headers.insert(name.clone(), value.clone());
        }
        Ok(Http1Transport {
            connector,
            uri,
            headers,
            requests: Arc::clone(&plan.payload.requests),
            check: plan.payload.check.clone().map(Arc::new),
            timeout: target.timeout,
            max_body: target.max_response_body,
        })
    }
}

impl Http1Transport {
    /// Builds the request one lane sends: the prepared method, path, headers and body.
    pub fn request(&self, sequence: u64) -> Request<Full<Bytes>> {
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

impl Transport for Arc<Http1Transport> {
    type Lane = Http1Lane;

    fn lane(&self, _index: usize) -> Http1Lane {
        Http1Lane {
            shared: Arc::clone(self),
            sender: None,
            tls_error: None,
            connected_before: false,
        }
    }
}

/// One HTTP/1.1 connection, opened on first use.
pub struct Http1Lane {
    shared: Arc<Http1Transport>,
    sender: Option<SendRequest<Full<Bytes>>>,
    /// The TLS error cell of the current connection, over TLS.
    tls_error: Option<TlsErrorCell>,
    /// Whether this lane has had a connection, so that the next one is a reconnect.
    connected_before: bool,
}

impl Http1Lane {
    async fn connect(&mut self) -> Result<Duration, Failure> {
        let started = Instant::now();
        let stream = self.shared.connector.connect(&[ALPN_HTTP1]).await?;
        self.tls_error = stream.inner().tls_error();
        let (sender, connection) = hyper::client::conn::http1::handshake(stream)
            .await
            .map_err(|_| Failure::new(ErrorKind::ConnectFailed))?;
        tokio::spawn(async move {
            // The connection ends when the lane drops its sender or the peer closes it; either
            // way the lane sees the error on its next request, so it is not logged here.
            let _ = connection.await;
        });
        self.sender = Some(sender);
        Ok(started.elapsed())
    }

    async fn exchange(&mut self, sequence: u64) -> Result<Reply, Failure> {
        let sender = self.sender.as_mut().expect("connected before exchange");
        sender.ready().await.map_err(|e| hyper_failure(&e))?;
        let response = sender
            .send_request(self.shared.request(sequence))
            .await
            .map_err(|e| hyper_failure(&e))?;

        if response
            .headers()
            .get(CONNECTION)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"close"))
        {
            // hyper closes the connection after this response; the next request reconnects.
            self.sender = None;
        }
        let check = self
            .shared
            .check
            .as_deref()
            .filter(|check| check.applies_to(sequence));
        read_response(response, self.shared.max_body, check).await
    }
}

/// Reads a response to its end and classifies it: status, body size limit, JSON shape of a
/// success, and the output check when `check` is given. Shared by HTTP/1.1 and HTTP/2 lanes.
pub async fn read_response(
    response: http::Response<Incoming>,
    max_body: u64,
    check: Option<&ResponseCheck>,
) -> Result<Reply, Failure> {
    let (parts, body) = response.into_parts();
    let status = parts.status.as_u16();
    let declared = parts
        .headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > max_body) {
        // Not a byte of the body is read; the lane replaces the connection.
        return Err(Failure {
            kind: ErrorKind::BodyTooLarge,
            status: Some(status),
            headers: Some(parts.headers),
            body: None,
        });
    }
    let validate = parts.status.is_success() && check.is_some();
    let keep = if validate {
        usize::MAX
    } else if parts.status.is_success() {
        0
    } else {
        ERROR_BODY_PREFIX
    };
    // A V2 JSON reply is one object; the binary extension announces its JSON header length.
    let check_json = parts.status.is_success()
        && !parts
            .headers
            .contains_key("inference-header-content-length");
    let read = read_body(body, max_body, keep)
        .await
        .map_err(|kind| Failure {
            kind,
            status: Some(status),
            headers: Some(parts.headers.clone()),
            body: None,
        })?;
    let kind = match status {
        200..=299 if check_json && !read.edges.is_json_object() => Some(ErrorKind::InvalidResponse),
        200..=299 => None,
        400..=499 => Some(ErrorKind::Http4xx),
        500..=599 => Some(ErrorKind::Http5xx),
        _ => Some(ErrorKind::InvalidResponse),
    };
    if let (true, None, Some(check)) = (validate, kind, check) {
        let body = read.prefix.as_deref().unwrap_or_default();
        if let Err(message) = check_json_response(check, body) {
            return Err(Failure {
                kind: ErrorKind::InvalidOutput,
                status: Some(status),
                headers: Some(parts.headers),
                body: Some(Bytes::from(message)),
            });
        }
    }
    match kind {
        None => Ok(Reply {
            status,
            headers: parts.headers,
            error_body: None,
        }),
        Some(kind) => Err(Failure {
            kind,
            status: Some(status),
            headers: Some(parts.headers),
            body: read.prefix,
        }),
    }
}

impl Lane for Http1Lane {
    async fn send(&mut self, job: &Job) -> Exchange {
        if self.sender.as_ref().is_some_and(|s| s.is_closed()) {
            self.sender = None;
        }
        let mut connect = None;
        let mut reconnect = false;
        if self.sender.is_none() {
            match self.connect().await {
                Ok(took) => {
                    connect = Some(took);
                    reconnect = std::mem::replace(&mut self.connected_before, true);
                }
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
            }
        }
        let sent = Instant::now();
        let result =
            match tokio::time::timeout(self.shared.timeout, self.exchange(job.sequence)).await {
                Ok(result) => result,
                Err(_) => Err(Failure::new(ErrorKind::Timeout)),
            };
        let result = result.map_err(|failure| reclassify(failure, self.tls_error.as_ref()));
        if let Err(failure) = &result {
            if failure.kind.closes_connection() {
                self.sender = None;
            }
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

/// First and last non-whitespace bytes of a body: enough to tell a JSON object from an HTML
/// page, an empty body or a body cut short, without parsing it.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct BodyEdges {
    pub first: Option<u8>,
    pub last: Option<u8>,
}

impl BodyEdges {
    /// Notes the edges of the next piece of a body.
    pub fn update(&mut self, data: &[u8]) {
        if self.first.is_none() {
            self.first = data.iter().copied().find(|b| !b.is_ascii_whitespace());
        }
        if let Some(last) = data
            .iter()
            .rev()
            .copied()
            .find(|b| !b.is_ascii_whitespace())
        {
            self.last = Some(last);
        }
    }

    /// Whether the body starts with `{` and ends with `}`.
    pub fn is_json_object(&self) -> bool {
        self.first == Some(b'{') && self.last == Some(b'}')
    }
}

/// What was kept of a body read to its end.
struct BodyRead {
    prefix: Option<Bytes>,
    edges: BodyEdges,
}

/// Checks the outputs of a V2 JSON response body against the expected ones.
pub(crate) fn check_json_response(check: &ResponseCheck, body: &[u8]) -> Result<(), String> {
    #[derive(serde::Deserialize)]
    struct Response {
        outputs: Vec<Output>,
    }
    #[derive(serde::Deserialize)]
    struct Output {
        name: String,
        datatype: String,
        shape: Vec<i64>,
    }
    let response: Response = serde_json::from_slice(body)
        .map_err(|e| format!("response is not a V2 inference response: {e}"))?;
    let outputs: Vec<_> = response
        .outputs
        .into_iter()
        .map(|o| (o.name, o.datatype, o.shape))
        .collect();
    check.check(&outputs)
}

/// Reads a body to its end, failing with `BodyTooLarge` past `max` without reading further.
/// Keeps its first `keep` bytes (for error reports or validation); with `keep` 0 it copies
/// nothing.
async fn read_body(mut body: Incoming, max: u64, keep: usize) -> Result<BodyRead, ErrorKind> {
    let mut total: u64 = 0;
    let mut prefix = (keep > 0).then(BytesMut::new);
    let mut edges = BodyEdges::default();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| hyper_error_kind(&e))?;
        if let Ok(data) = frame.into_data() {
            total += data.len() as u64;
            if total > max {
                return Err(ErrorKind::BodyTooLarge);
            }
            edges.update(&data);
            if let Some(prefix) = prefix.as_mut() {
                let room = keep.saturating_sub(prefix.len());
                prefix.extend_from_slice(&data[..room.min(data.len())]);
            }
        }
    }
    Ok(BodyRead {
        prefix: prefix.map(BytesMut::freeze),
        edges,
    })
}

/// Maps a hyper error to a failure: TLS errors (such as an alert sent after the handshake)
/// are `tls` failures with their reason, the rest a failure of [`hyper_error_kind`].
pub fn hyper_failure(error: &hyper::Error) -> Failure {
    tls_failure(error).unwrap_or_else(|| Failure::new(hyper_error_kind(error)))
}

/// Maps a hyper error to its kind: parse errors are invalid responses, everything that ends the
/// connection early is a reset.
pub fn hyper_error_kind(error: &hyper::Error) -> ErrorKind {
    if error.is_parse() || error.is_parse_status() || error.is_parse_too_large() {
        ErrorKind::InvalidResponse
    } else if error.is_timeout() {
        ErrorKind::Timeout
    } else {
        ErrorKind::Reset
    }
}
