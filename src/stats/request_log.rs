//! The lanes' side of `requests.csv`: one [`RequestRow`] per completed request, handed to a
//! bounded channel that a writer thread drains (see [`crate::report::requests`]).
//!
//! A lane never waits for the writer. When the channel is full the row is dropped and counted,
//! because a lane that waited would send its next requests late and change the latencies being
//! measured. Route labels are interned, so a row allocates nothing beyond itself in the common
//! case of a few routes.

use std::borrow::Cow;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, RwLock};
use std::time::{Duration, Instant};

use http::HeaderName;
use serde::{Deserialize, Serialize};

use super::{micros, routes, Exchange};

/// Most distinct route labels interned; rarer labels past this are allocated per row.
const MAX_INTERNED_LABELS: usize = 1024;

/// One row of `requests.csv`. Offsets are from the start of the load, like the interval
/// starts of `intervals.csv`; times are in microseconds, rounded up as the histograms record
/// them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestRow {
    /// True for requests sent during the warm-up.
    pub warmup: bool,
    /// When the schedule wanted the request sent.
    pub intended_us: u64,
    /// When the request was written, after any connect.
    pub sent_us: u64,
    /// Response end minus intended send time.
    pub latency_us: u64,
    /// Response end minus actual send time.
    pub service_us: u64,
    /// `ok`, or the error kind as in `summary.json` `errors.by_kind`.
    pub outcome: Cow<'static, str>,
    /// HTTP status (gRPC requests: the HTTP/2 status), empty when there was no response.
    pub status: Option<u16>,
    /// Route label of the response, empty when there was no response.
    pub route: Option<Arc<str>>,
    /// Lane that sent the request. An HTTP/1.1 lane owns one connection at a time; gRPC lanes
    /// are streams that share connections.
    pub lane: u32,
    /// Time spent opening a new connection for this request, empty when it reused one.
    pub connect_us: Option<u64>,
}

/// The lanes' handle on `requests.csv`.
pub struct RequestLog {
    sender: flume::Sender<RequestRow>,
    route_header: HeaderName,
    /// The start of the load, set by the engine before the first request.
    start: OnceLock<Instant>,
    labels: RwLock<Vec<Arc<str>>>,
    /// Rows not handed to the writer because the channel was full or closed.
    dropped: AtomicU64,
}

impl RequestLog {
    pub fn new(sender: flume::Sender<RequestRow>, route_header: HeaderName) -> RequestLog {
        RequestLog {
            sender,
            route_header,
            start: OnceLock::new(),
            labels: RwLock::new(Vec::new()),
            dropped: AtomicU64::new(0),
        }
    }

    /// Sets the instant offsets are measured from; later calls change nothing.
    pub fn set_start(&self, start: Instant) {
        let _ = self.start.set(start);
    }

    /// Rows dropped so far because the writer fell behind.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Hands the row of a completed request to the writer, or counts it as dropped.
    pub fn record(&self, lane: usize, exchange: &Exchange) {
        let start = *self.start.get_or_init(|| exchange.intended);
        let offset = |at: Instant| at.saturating_duration_since(start).as_micros() as u64;
        let (outcome, status, headers) = match &exchange.result {
            Ok(reply) => ("ok", Some(reply.status), Some(&reply.headers)),
            Err(failure) => (
                failure.kind.name(),
                failure.status,
                failure.headers.as_ref(),
            ),
        };
        let row = RequestRow {
            warmup: !exchange.measured,
            intended_us: offset(exchange.intended),
            sent_us: offset(exchange.sent),
            latency_us: micros(
                exchange
                    .finished
                    .saturating_duration_since(exchange.intended),
            ),
            service_us: micros(exchange.finished.saturating_duration_since(exchange.sent)),
            outcome: Cow::Borrowed(outcome),
            status,
            route: headers.map(|h| self.intern(&routes::route_label(h, &self.route_header))),
            lane: lane as u32,
            connect_us: exchange.connect.map(|d: Duration| micros(d)),
        };
        if self.sender.try_send(row).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn intern(&self, label: &str) -> Arc<str> {
        let labels = self.labels.read().unwrap_or_else(|e| e.into_inner());
        if let Some(found) = labels.iter().find(|known| &***known == label) {
            return Arc::clone(found);
        }
        drop(labels);
        let mut labels = self.labels.write().unwrap_or_else(|e| e.into_inner());
        let interned: Arc<str> = Arc::from(label);
        if labels.len() < MAX_INTERNED_LABELS {
            labels.push(Arc::clone(&interned));
        }
        interned
    }
}
