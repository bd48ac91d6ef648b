//! Recording: per-shard HDR histograms and counters, collected into interval snapshots and run
//! totals.
//!
//! Lanes (the tasks that send requests) record into one of a few shards, each behind its own
//! mutex, so recording is an uncontended lock and a few histogram increments. Every interval the
//! collector swaps each shard's contents out, merges them into an [`IntervalSnapshot`], and adds
//! measured requests to the run [`Totals`]. Memory depends on the histograms, not on the number
//! of requests.

pub mod errors;
pub mod hops;
pub mod origin;
pub mod request_log;
pub mod routes;
pub mod split;

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hdrhistogram::Histogram;
use http::HeaderMap;

pub use errors::ErrorKind;
pub use hops::{HopCounts, HopSpec};
pub use origin::Origin;

/// Histograms store microseconds with 3 significant digits; they grow to the largest value seen.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new(3).expect("3 significant digits is a valid HDR precision")
}

/// Converts a duration to whole microseconds for recording, rounding up so nothing reads 0.
pub fn micros(duration: Duration) -> u64 {
    (duration.as_nanos().div_ceil(1000) as u64).max(1)
}

/// Most distinct error bodies kept per shard and per run; further ones are counted as `other`.
pub const MAX_ERROR_BODIES: usize = 16;
/// The trailer that carries a gRPC call's status code.
pub const GRPC_STATUS: &str = "grpc-status";
/// Bytes of an error body kept for the report.
pub const ERROR_BODY_PREFIX: usize = 200;

/// One request as the transport saw it.
pub struct Exchange {
    /// When the schedule wanted the request sent.
    pub intended: Instant,
    /// When the request was written (after any connect).
    pub sent: Instant,
    /// When the response ended or the request failed.
    pub finished: Instant,
    /// Whether this request counts in the measurement (false during warm-up).
    pub measured: bool,
    /// Time spent opening a connection for this request, when one was opened.
    pub connect: Option<Duration>,
    /// Whether that connection replaced one that the target closed (GOAWAY, `Connection:
    /// close`) or that failed.
    pub reconnect: bool,
    pub result: Result<Reply, Failure>,
}

/// A complete response.
pub struct Reply {
    pub status: u16,
    /// Response headers; for gRPC, initial metadata and trailers merged.
    pub headers: HeaderMap,
    /// The body of an error response, kept to report the most frequent ones.
    pub error_body: Option<Bytes>,
}

/// A failed request: its kind, with the response metadata when there was a response.
pub struct Failure {
    pub kind: ErrorKind,
    pub status: Option<u16>,
    pub headers: Option<HeaderMap>,
    pub body: Option<Bytes>,
}

impl Failure {
    pub fn new(kind: ErrorKind) -> Failure {
        Failure {
            kind,
            status: None,
            headers: None,
            body: None,
        }
    }
}

/// Counts of distinct error bodies, bounded to [`MAX_ERROR_BODIES`] entries.
#[derive(Debug, Default, Clone)]
pub struct ErrorBodies {
    pub counts: HashMap<String, u64>,
    pub other: u64,
}

impl ErrorBodies {
    pub fn add(&mut self, body: &str, count: u64) {
        if let Some(existing) = self.counts.get_mut(body) {
            *existing += count;
        } else if self.counts.len() < MAX_ERROR_BODIES {
            self.counts.insert(body.to_string(), count);
        } else {
            self.other += count;
        }
    }

    pub fn merge(&mut self, other: &ErrorBodies) {
        for (body, count) in &other.counts {
            self.add(body, *count);
        }
        self.other += other.other;
    }

    /// Returns the bodies, most frequent first.
    pub fn top(&self) -> Vec<(String, u64)> {
        let mut entries: Vec<_> = self.counts.iter().map(|(b, c)| (b.clone(), *c)).collect();
        entries.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        entries
    }
}

/// Latency and service time of one group of requests (the whole run, or one route).
#[derive(Debug, Clone)]
pub struct Timings {
    /// Response end minus intended send time.
    pub latency: Histogram<u64>,
    /// Response end minus actual send time.
    pub service: Histogram<u64>,
}

impl Default for Timings {
    fn default() -> Self {
        Timings {
            latency: new_histogram(),
            service: new_histogram(),
        }
    }
}

impl Timings {
    fn record(&mut self, latency: u64, service: u64) {
        // Auto-resizing histograms only fail to record on allocation failure.
        let _ = self.latency.record(latency);
        let _ = self.service.record(service);
    }

    pub fn add(&mut self, other: &Timings) {
        let _ = self.latency.add(&other.latency);
        let _ = self.service.add(&other.service);
    }

    fn reset(&mut self) {
        self.latency.reset();
        self.service.reset();
    }
}

/// Per-route counters and timings of successful requests.
#[derive(Debug, Clone, Default)]
pub struct RouteStats {
    pub ok: u64,
    pub errors: u64,
    /// Successful responses during warm-up, not in `ok`.
    pub warmup_ok: u64,
    pub timings: Timings,
}

impl RouteStats {
    pub fn add(&mut self, other: &RouteStats) {
        self.ok += other.ok;
        self.errors += other.errors;
        self.warmup_ok += other.warmup_ok;
        self.timings.add(&other.timings);
    }
}

/// Counters and histograms of completed requests, for one shard, one interval or the whole run.
#[derive(Debug, Clone, Default)]
pub struct Counts {
    pub ok: u64,
    pub errors: [u64; ErrorKind::COUNT],
    /// Successful requests' timings; failed requests are counted, not timed.
    pub timings: Timings,
    /// Timings of failed requests that got a response (HTTP errors).
    pub error_timings: Timings,
    pub connect: Option<Histogram<u64>>,
    pub connects: u64,
    /// Connections opened in place of one that closed or failed.
    pub reconnects: u64,
    pub status_codes: HashMap<u16, u64>,
    /// Failed gRPC calls by the status code they returned.
    pub grpc_status_codes: HashMap<i32, u64>,
    pub routes: HashMap<String, RouteStats>,
    pub error_bodies: ErrorBodies,
    /// Failed requests with a response, by the part of the chain that produced it and by kind.
    pub errors_by_origin: [[u64; ErrorKind::COUNT]; Origin::COUNT],
    /// Hop breakdown of successful responses.
    pub hops: HopCounts,
    /// Requests completed during warm-up, counted apart.
    pub warmup_ok: u64,
    pub warmup_errors: u64,
}

impl Counts {
    pub fn error_total(&self) -> u64 {
        self.errors.iter().sum()
    }

    pub fn completed(&self) -> u64 {
        self.ok + self.error_total()
    }

    pub fn add(&mut self, other: &Counts) {
        self.ok += other.ok;
        for (mine, theirs) in self.errors.iter_mut().zip(other.errors.iter()) {
            *mine += theirs;
        }
        self.timings.add(&other.timings);
        self.error_timings.add(&other.error_timings);
        if let Some(theirs) = &other.connect {
            let _ = self.connect.get_or_insert_with(new_histogram).add(theirs);
        }
        self.connects += other.connects;
        self.reconnects += other.reconnects;
        for (code, count) in &other.status_codes {
            *self.status_codes.entry(*code).or_default() += count;
        }
        for (code, count) in &other.grpc_status_codes {
            *self.grpc_status_codes.entry(*code).or_default() += count;
        }
        for (label, stats) in &other.routes {
            self.routes.entry(label.clone()).or_default().add(stats);
        }
        self.error_bodies.merge(&other.error_bodies);
        for (mine, theirs) in self
            .errors_by_origin
            .iter_mut()
            .zip(&other.errors_by_origin)
        {
            for (count, their_count) in mine.iter_mut().zip(theirs) {
                *count += their_count;
            }
        }
        self.hops.add(&other.hops);
        self.warmup_ok += other.warmup_ok;
        self.warmup_errors += other.warmup_errors;
    }

    /// Clears the counts but keeps allocated histogram storage and route entries.
    fn reset(&mut self) {
        self.ok = 0;
        self.errors = [0; ErrorKind::COUNT];
        self.timings.reset();
        self.error_timings.reset();
        if let Some(h) = &mut self.connect {
            h.reset();
        }
        self.connects = 0;
        self.reconnects = 0;
        self.status_codes.clear();
        self.grpc_status_codes.clear();
        for stats in self.routes.values_mut() {
            stats.ok = 0;
            stats.errors = 0;
            stats.warmup_ok = 0;
            stats.timings.reset();
        }
        self.error_bodies = ErrorBodies::default();
        self.errors_by_origin = Default::default();
        self.hops.reset();
        self.warmup_ok = 0;
        self.warmup_errors = 0;
    }

    fn record(&mut self, exchange: &Exchange, route_header: &http::HeaderName, hops: &[HopSpec]) {
        if let Some(connect) = exchange.connect {
            self.connects += 1;
            self.reconnects += u64::from(exchange.reconnect);
            let _ = self
                .connect
                .get_or_insert_with(new_histogram)
                .record(micros(connect));
        }
        if !exchange.measured {
            match &exchange.result {
                Ok(reply) => {
                    self.warmup_ok += 1;
                    self.route_entry(&reply.headers, route_header).warmup_ok += 1;
                }
                Err(_) => self.warmup_errors += 1,
            }
            return;
        }
        let latency = micros(
            exchange
                .finished
                .saturating_duration_since(exchange.intended),
        );
        let service = micros(exchange.finished.saturating_duration_since(exchange.sent));
        match &exchange.result {
            Ok(reply) => {
                self.ok += 1;
                self.timings.record(latency, service);
                *self.status_codes.entry(reply.status).or_default() += 1;
                let route = self.route_entry(&reply.headers, route_header);
                route.ok += 1;
                route.timings.record(latency, service);
                self.hops.record(hops, &reply.headers, latency, service);
            }
            Err(failure) => {
                self.errors[failure.kind.index()] += 1;
                if let Some(status) = failure.status {
                    *self.status_codes.entry(status).or_default() += 1;
                    self.error_timings.record(latency, service);
                }
                // A gRPC failure (no HTTP status) keeps the status the server sent.
                let grpc_status = failure
                    .headers
                    .as_ref()
                    .filter(|_| failure.status.is_none())
                    .and_then(|headers| headers.get(GRPC_STATUS))
                    .and_then(|value| value.to_str().ok()?.parse::<i32>().ok())
                    // Codes outside the 17 that gRPC defines count as UNKNOWN (2), as gRPC
                    // clients treat them, so the map stays small whatever the server sends.
                    .map(|code| if (0..=16).contains(&code) { code } else { 2 });
                if let Some(code) = grpc_status {
                    *self.grpc_status_codes.entry(code).or_default() += 1;
                }
                if let Some(headers) = &failure.headers {
                    self.route_entry(headers, route_header).errors += 1;
                    let body = failure.body.as_deref().unwrap_or_default();
                    let origin = origin::classify(headers, body, hops);
                    self.errors_by_origin[origin.index()][failure.kind.index()] += 1;
                }
                if let Some(body) = &failure.body {
                    let end = body.len().min(ERROR_BODY_PREFIX);
                    let text = String::from_utf8_lossy(&body[..end]);
                    let key = match failure.status {
                        Some(status) => format!("{status}: {}", text.trim()),
                        None => text.trim().to_string(),
                    };
                    self.error_bodies.add(&key, 1);
                }
            }
        }
    }

    fn route_entry(
        &mut self,
        headers: &HeaderMap,
        route_header: &http::HeaderName,
    ) -> &mut RouteStats {
        let label = routes::route_label(headers, route_header);
        let key = if self.routes.contains_key(label.as_ref()) {
            label.as_ref()
        } else {
            let key = if self.routes.len() < routes::MAX_LABELS {
                label.as_ref()
            } else {
                routes::OTHER_ROUTES
            };
            self.routes.entry(key.to_string()).or_default();
            key
        };
        self.routes.get_mut(key).expect("inserted above")
    }
}

/// What the pacer did: releases, drops and schedule lag.
#[derive(Debug, Clone, Default)]
pub struct PacerCounts {
    /// Requests handed to the transport (measured only).
    pub sent: u64,
    /// Requests not sent because `max_in_flight` were outstanding (measured only).
    pub dropped: u64,
    /// Requests released more than [`LATE_THRESHOLD`] after their intended time.
    pub late: u64,
    /// Release time minus intended time, in microseconds.
    pub lag: Option<Histogram<u64>>,
    pub warmup_sent: u64,
    pub warmup_dropped: u64,
    /// Measured requests that found `max_in_flight` requests outstanding and waited for a slot;
    /// their schedule lag comes from the target's backpressure, not from the pacer.
    pub waited_at_cap: u64,
}

/// A request released later than this after its intended time counts as late.
pub const LATE_THRESHOLD: Duration = Duration::from_millis(1);

impl PacerCounts {
    pub fn add(&mut self, other: &PacerCounts) {
        self.sent += other.sent;
        self.dropped += other.dropped;
        self.late += other.late;
        if let Some(theirs) = &other.lag {
            let _ = self.lag.get_or_insert_with(new_histogram).add(theirs);
        }
        self.warmup_sent += other.warmup_sent;
        self.warmup_dropped += other.warmup_dropped;
        self.waited_at_cap += other.waited_at_cap;
    }

    pub fn record_release(&mut self, lag: Duration, measured: bool) {
        if !measured {
            self.warmup_sent += 1;
            return;
        }
        self.sent += 1;
        if lag > LATE_THRESHOLD {
            self.late += 1;
        }
        let _ = self
            .lag
            .get_or_insert_with(new_histogram)
            .record(micros(lag));
    }

    pub fn record_drop(&mut self, measured: bool) {
        if measured {
            self.dropped += 1;
        } else {
            self.warmup_dropped += 1;
        }
    }

    fn reset(&mut self) {
        let lag = self.lag.take().map(|mut h| {
            h.reset();
            h
        });
        *self = PacerCounts {
            lag,
            ..PacerCounts::default()
        };
    }
}

/// Shared recording state of a run.
pub struct Recorder {
    shards: Vec<Mutex<Counts>>,
    pacer: Mutex<PacerCounts>,
    route_header: http::HeaderName,
    hops: Vec<HopSpec>,
    /// Requests released and not yet completed. Signed because a lane can record a completion
    /// just before the pacer records the release.
    in_flight: AtomicI64,
    /// Log of every completed request, when `requests.csv` is on.
    request_log: Option<std::sync::Arc<request_log::RequestLog>>,
}

impl Recorder {
    pub fn new(shard_count: usize, route_header: http::HeaderName) -> Recorder {
        Recorder {
            shards: (0..shard_count.max(1))
                .map(|_| Mutex::new(Counts::default()))
                .collect(),
            pacer: Mutex::new(PacerCounts::default()),
            route_header,
            hops: Vec::new(),
            in_flight: AtomicI64::new(0),
            request_log: None,
        }
    }

    /// Sends a row per completed request to `log` (`requests.csv`).
    pub fn with_request_log(
        mut self,
        log: Option<std::sync::Arc<request_log::RequestLog>>,
    ) -> Recorder {
        self.request_log = log;
        self
    }

    /// Sets the hops whose timing headers are read from each successful response.
    pub fn with_hops(mut self, hops: Vec<HopSpec>) -> Recorder {
        self.hops = hops;
        self
    }

    pub fn shard_count(&self) -> usize {
        self.shards.len()
    }

    pub fn route_header(&self) -> &http::HeaderName {
        &self.route_header
    }

    /// Records a completed request from lane `lane`.
    pub fn record(&self, lane: usize, exchange: &Exchange) {
        let shard = &self.shards[lane % self.shards.len()];
        shard.lock().unwrap_or_else(|e| e.into_inner()).record(
            exchange,
            &self.route_header,
            &self.hops,
        );
        if let Some(log) = &self.request_log {
            log.record(lane, exchange);
        }
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
    }

    /// Records that a request left the pacer for the transport.
    pub fn record_release(&self, lag: Duration, measured: bool) {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.pacer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .record_release(lag, measured);
    }

    /// Records that a request due now found `max_in_flight` requests outstanding.
    pub fn record_wait_at_cap(&self, measured: bool) {
        if measured {
            self.pacer
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .waited_at_cap += 1;
        }
    }

    pub fn record_drop(&self, measured: bool) {
        self.pacer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .record_drop(measured);
    }

    pub fn in_flight(&self) -> u64 {
        self.in_flight.load(Ordering::Relaxed).max(0) as u64
    }

    /// Moves everything recorded since the last call into `counts` and `pacer`.
    pub fn drain_into(&self, counts: &mut Counts, pacer: &mut PacerCounts) {
        for shard in &self.shards {
            let mut guard = shard.lock().unwrap_or_else(|e| e.into_inner());
            counts.add(&guard);
            guard.reset();
        }
        let mut guard = self.pacer.lock().unwrap_or_else(|e| e.into_inner());
        pacer.add(&guard);
        guard.reset();
    }
}

/// What happened during one interval of the run.
#[derive(Debug, Clone)]
pub struct IntervalSnapshot {
    pub index: u64,
    /// Interval start and end, as offsets from the run's start.
    pub start: Duration,
    pub end: Duration,
    /// Whether the interval ended before the measurement started.
    pub warmup: bool,
    pub target_rate: Option<f64>,
    /// Index of the load stage this interval belongs to (the one running at its middle);
    /// `None` for warm-up intervals and for loads without stages.
    pub stage: Option<usize>,
    /// Name of that stage.
    pub stage_name: Option<std::sync::Arc<str>>,
    pub counts: Counts,
    pub pacer: PacerCounts,
    pub in_flight: u64,
    /// Whether Ctrl-C or SIGTERM had stopped the run when the interval was collected.
    pub interrupted: bool,
}

impl IntervalSnapshot {
    /// Requests completed per second in this interval, measured or not.
    pub fn completed_rate(&self) -> f64 {
        let seconds = (self.end - self.start).as_secs_f64();
        let completed = self.counts.completed() + self.counts.warmup_ok + self.counts.warmup_errors;
        if seconds > 0.0 {
            completed as f64 / seconds
        } else {
            0.0
        }
    }
}

/// Everything measured over the whole run.
#[derive(Debug, Clone, Default)]
pub struct Totals {
    pub counts: Counts,
    pub pacer: PacerCounts,
    /// Length of the measured window (excludes warm-up).
    pub measured_for: Duration,
    /// Requests still in flight when the run ended.
    pub in_flight_at_end: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn micros_rounds_up() {
        assert_eq!(micros(Duration::from_nanos(1)), 1);
        assert_eq!(micros(Duration::from_nanos(1001)), 2);
        assert_eq!(micros(Duration::ZERO), 1);
    }

    #[test]
    fn route_labels_bounded() {
        let header = http::HeaderName::from_static("x-seldon-route");
        let mut counts = Counts::default();
        for i in 0..(routes::MAX_LABELS + 36) {
            let mut headers = HeaderMap::new();
            headers.insert(&header, format!(":variant-{i}_1:").parse().unwrap());
            counts.route_entry(&headers, &header).ok += 1;
        }
        // A label seen before the cap keeps its own entry after it.
        let mut headers = HeaderMap::new();
        headers.insert(&header, ":variant-0_1:".parse().unwrap());
        counts.route_entry(&headers, &header).ok += 1;

        assert_eq!(counts.routes.len(), routes::MAX_LABELS + 1);
        assert_eq!(counts.routes["variant-0_1"].ok, 2);
        assert_eq!(counts.routes[routes::OTHER_ROUTES].ok, 36);
        let last_kept = format!("variant-{}_1", routes::MAX_LABELS - 1);
        assert_eq!(counts.routes[&last_kept].ok, 1);
    }

    #[test]
    fn error_bodies_bounded() {
        let mut bodies = ErrorBodies::default();
        for i in 0..(MAX_ERROR_BODIES + 5) {
            bodies.add(&format!("body {i}"), 2);
        }
        bodies.add("body 0", 1);
        assert_eq!(bodies.counts.len(), MAX_ERROR_BODIES);
        assert_eq!(bodies.other, 10);
        assert_eq!(bodies.top()[0], ("body 0".to_string(), 3));
    }
}
