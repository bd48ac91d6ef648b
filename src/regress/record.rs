//! Per-interval data of a run, written to its folder so that a later comparison can resample
//! the intervals: `regress-intervals.hlog` (an HdrHistogram interval log, microseconds, tags `latency`,
//! `service_time`, `route:<label>` for a route's latency and `route_service_time:<label>` for its
//! service time) and `interval_counts.csv` (requests sent, ok and failed per interval).
//!
//! Only measured intervals are kept: an interval that ended before the warm-up was over holds
//! no measured request.

use std::io::Write as _;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use hdrhistogram::serialization::interval_log::{IntervalLogWriterBuilder, Tag};
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::engine::IntervalSink;
use crate::stats::IntervalSnapshot;

/// File name of the interval log in a run folder.
pub const HLOG_FILE: &str = "regress-intervals.hlog";
/// File name of the per-interval counters in a run folder.
pub const COUNTS_FILE: &str = "interval_counts.csv";

pub const LATENCY_TAG: &str = "latency";
pub const SERVICE_TIME_TAG: &str = "service_time";
pub const ROUTE_LATENCY_PREFIX: &str = "route:";
pub const ROUTE_SERVICE_TIME_PREFIX: &str = "route_service_time:";

/// One row of `interval_counts.csv`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IntervalCounts {
    /// Interval start and end, seconds from the start of the load (warm-up included).
    pub start_s: f64,
    pub end_s: f64,
    /// Part of the interval inside the measured window (after the warm-up, before the planned
    /// end), in seconds: the time over which `sent` requests were due.
    pub measured_s: f64,
    /// Measured requests released to the transport in this interval.
    pub sent: u64,
    pub ok: u64,
    pub errors: u64,
    pub dropped: u64,
}

struct Entry {
    counts: IntervalCounts,
    /// Tag and V2-deflate-encoded histogram, kept compressed so memory grows by a few hundred
    /// bytes per interval and series.
    histograms: Vec<(String, Vec<u8>)>,
}

struct Shared {
    /// The measured window, as offsets from the start of the load.
    window: (Duration, Duration),
    entries: Vec<Entry>,
    encode_failures: u64,
}

/// Collects the measured intervals of a run; [`IntervalRecorder::sink`] goes to the engine and
/// [`IntervalRecorder::write`] writes the files once the run is over.
#[derive(Clone)]
pub struct IntervalRecorder {
    shared: Arc<Mutex<Shared>>,
}

struct Sink {
    shared: Arc<Mutex<Shared>>,
    serializer: V2DeflateSerializer,
}

impl IntervalRecorder {
    /// A recorder for a run that measures for `duration` after a `warmup`.
    pub fn new(warmup: Duration, duration: Duration) -> IntervalRecorder {
        IntervalRecorder {
            shared: Arc::new(Mutex::new(Shared {
                window: (warmup, warmup + duration),
                entries: Vec::new(),
                encode_failures: 0,
            })),
        }
    }

    pub fn sink(&self) -> Box<dyn IntervalSink> {
        Box::new(Sink {
            shared: Arc::clone(&self.shared),
            serializer: V2DeflateSerializer::new(),
        })
    }

    /// Writes `regress-intervals.hlog` and `interval_counts.csv` into `dir`, each atomically.
    pub fn write(&self, dir: &Path, started_at: SystemTime) -> std::io::Result<()> {
        let shared = self.shared.lock().unwrap_or_else(|e| e.into_inner());
        if shared.encode_failures > 0 {
            tracing::warn!(
                failures = shared.encode_failures,
                "some interval histograms could not be encoded and are missing from {HLOG_FILE}"
            );
        }

        let mut log = Vec::new();
        let mut serializer = V2DeflateSerializer::new();
        let mut deserializer = Deserializer::new();
        {
            let mut writer = IntervalLogWriterBuilder::new()
                .add_comment("inferload interval histograms, values in microseconds")
                .with_start_time(started_at)
                .with_base_time(started_at)
                .with_max_value_divisor(1000.0)
                .begin_log_with(&mut log, &mut serializer)?;
            for entry in &shared.entries {
                let start = Duration::from_secs_f64(entry.counts.start_s);
                let length = Duration::from_secs_f64(entry.counts.end_s - entry.counts.start_s);
                for (tag, bytes) in &entry.histograms {
                    let histogram: Histogram<u64> = deserializer
                        .deserialize(&mut bytes.as_slice())
                        .map_err(|e| std::io::Error::other(format!("{e:?}")))?;
                    writer
                        .write_histogram(&histogram, start, length, Tag::new(tag))
                        .map_err(|e| std::io::Error::other(e.to_string()))?;
                }
            }
        }
        crate::report::write_atomic(&dir.join(HLOG_FILE), &log)?;

        let mut csv = csv::Writer::from_writer(Vec::new());
        for entry in &shared.entries {
            csv.serialize(&entry.counts)?;
        }
        csv.flush()?;
        let mut bytes = csv.into_inner().map_err(|e| e.into_error())?;
        if shared.entries.is_empty() {
            bytes.write_all(b"start_s,end_s,measured_s,sent,ok,errors,dropped\n")?;
        }
        crate::report::write_atomic(&dir.join(COUNTS_FILE), &bytes)
    }
}

/// Replaces the characters an interval log tag may not contain (`,`, space, line breaks).
pub fn tag_safe(label: &str) -> String {
    label
        .chars()
        .map(|c| match c {
            ',' | ' ' | '\r' | '\n' => '_',
            c => c,
        })
        .collect()
}

impl IntervalSink for Sink {
    fn on_interval(&mut self, snapshot: &IntervalSnapshot) {
        if snapshot.warmup {
            return;
        }
        let counts = &snapshot.counts;
        let mut histograms = Vec::with_capacity(2 + 2 * counts.routes.len());
        let mut failures = 0;
        let mut encode = |tag: String, histogram: &Histogram<u64>| {
            let mut bytes = Vec::new();
            match self.serializer.serialize(histogram, &mut bytes) {
                Ok(_) => histograms.push((tag, bytes)),
                Err(_) => failures += 1,
            }
        };
        encode(LATENCY_TAG.into(), &counts.timings.latency);
        encode(SERVICE_TIME_TAG.into(), &counts.timings.service);
        let mut routes: Vec<_> = counts.routes.iter().collect();
        routes.sort_by(|a, b| a.0.cmp(b.0));
        for (label, stats) in routes {
            let label = tag_safe(label);
            encode(
                format!("{ROUTE_LATENCY_PREFIX}{label}"),
                &stats.timings.latency,
            );
            encode(
                format!("{ROUTE_SERVICE_TIME_PREFIX}{label}"),
                &stats.timings.service,
            );
        }
        let mut shared = self.shared.lock().unwrap_or_else(|e| e.into_inner());
        let (measure_start, measure_end) = shared.window;
        let measured = snapshot
            .end
            .min(measure_end)
            .saturating_sub(snapshot.start.max(measure_start));
        let entry = Entry {
            counts: IntervalCounts {
                start_s: snapshot.start.as_secs_f64(),
                end_s: snapshot.end.as_secs_f64(),
                measured_s: measured.as_secs_f64(),
                sent: snapshot.pacer.sent,
                ok: counts.ok,
                errors: counts.error_total(),
                dropped: snapshot.pacer.dropped,
            },
            histograms,
        };
        shared.encode_failures += failures;
        shared.entries.push(entry);
    }
}
