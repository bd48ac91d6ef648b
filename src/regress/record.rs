//! Per-interval data of a run, written to its folder so that a later comparison can resample
//! the intervals: `regress-intervals.hlog` (an HdrHistogram interval log, microseconds, tags `latency`,
//! `service_time`, `route:<label>` for a route's latency and `route_service_time:<label>` for its
//! service time) and `interval_counts.csv` (requests sent, ok and failed per interval).
//!
//! Only measured intervals are kept: an interval that ended before the warm-up was over is left
//! out unless it counts measured requests. Each interval is appended as it ends, and the files get their final
//! names when the run ends, interrupted or not. The log's `StartTime` and `BaseTime` are the
//! start of the load, which interval timestamps count from.

use std::io::Write as _;
use std::path::Path;
use std::time::{Duration, SystemTime};

use hdrhistogram::serialization::interval_log::{
    IntervalLogWriterBuilder, IntervalLogWriterError, Tag,
};
use hdrhistogram::serialization::V2DeflateSerializer;
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::engine::IntervalSink;
use crate::report::stream::StreamFile;
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
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
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

/// Streams the measured intervals of a run into its folder as the run goes, so memory does not
/// grow with the number of intervals. Both files are written under temporary names and renamed
/// by [`IntervalSink::finish`], also when the run was interrupted, so a comparison can read
/// every interval measured before the stop.
pub struct IntervalRecorder {
    /// The measured window, as offsets from the start of the load.
    window: (Duration, Duration),
    hlog: Option<StreamFile>,
    counts: Option<StreamFile>,
    serializer: V2DeflateSerializer,
    /// The lines of one interval, staged before they go to the file and cleared every interval.
    staging: Vec<u8>,
    /// The header line that `begin_log_with` repeats at every start of a log writer, cut from
    /// the staged lines of each interval.
    divisor_line: Vec<u8>,
    /// Whether the header of the interval log has been written.
    started: bool,
    /// Rows written to `interval_counts.csv`.
    rows: u64,
    /// When the recorder was created: the interval log's start time if no interval arrives.
    created_at: SystemTime,
    encode_failures: u64,
    /// The first write error; later intervals are skipped and `finish` returns it.
    error: Option<std::io::Error>,
}

/// Divisor of the interval maxima written in the interval log, so they read in milliseconds.
const MAX_VALUE_DIVISOR: f64 = 1000.0;

impl IntervalRecorder {
    /// Creates the temporary files of a run that measures for `duration` after a `warmup`.
    pub fn create(
        dir: &Path,
        warmup: Duration,
        duration: Duration,
    ) -> std::io::Result<IntervalRecorder> {
        let mut serializer = V2DeflateSerializer::new();
        let mut divisor_line = Vec::new();
        IntervalLogWriterBuilder::new()
            .with_max_value_divisor(MAX_VALUE_DIVISOR)
            .begin_log_with(&mut divisor_line, &mut serializer)?;
        Ok(IntervalRecorder {
            window: (warmup, warmup + duration),
            hlog: Some(StreamFile::create(dir, HLOG_FILE)?),
            counts: Some(StreamFile::create(dir, COUNTS_FILE)?),
            serializer,
            staging: Vec::new(),
            divisor_line,
            started: false,
            rows: 0,
            created_at: SystemTime::now(),
            encode_failures: 0,
            error: None,
        })
    }

    /// Writes the comment, `StartTime`, `BaseTime` and `MaxValueDivisor` lines of the log.
    fn write_header(&mut self, load_started: SystemTime) -> std::io::Result<()> {
        self.started = true;
        let Some(file) = self.hlog.as_mut() else {
            return Ok(());
        };
        IntervalLogWriterBuilder::new()
            .add_comment("inferload interval histograms, values in microseconds")
            .with_start_time(load_started)
            .with_base_time(load_started)
            .with_max_value_divisor(MAX_VALUE_DIVISOR)
            .begin_log_with(file.writer(), &mut self.serializer)?;
        Ok(())
    }

    /// Appends the histograms of one measured interval to the log.
    fn write_histograms(&mut self, snapshot: &IntervalSnapshot) -> std::io::Result<()> {
        let Some(file) = self.hlog.as_mut() else {
            return Ok(());
        };
        self.staging.clear();
        let start = snapshot.start;
        let length = snapshot.end.saturating_sub(snapshot.start);
        let mut failures = 0;
        {
            // A log writer cannot outlive the borrow of its output, so each interval starts a
            // new one. It writes no comment or time, only the divisor line cut below.
            let mut log = IntervalLogWriterBuilder::new()
                .with_max_value_divisor(MAX_VALUE_DIVISOR)
                .begin_log_with(&mut self.staging, &mut self.serializer)?;
            let mut write = |tag: &str, histogram: &Histogram<u64>| match log.write_histogram(
                histogram,
                start,
                length,
                Tag::new(tag),
            ) {
                Ok(()) => Ok(()),
                Err(IntervalLogWriterError::SerializeError(_)) => {
                    failures += 1;
                    Ok(())
                }
                Err(IntervalLogWriterError::IoError(error)) => Err(error),
            };
            let counts = &snapshot.counts;
            write(LATENCY_TAG, &counts.timings.latency)?;
            write(SERVICE_TIME_TAG, &counts.timings.service)?;
            let mut routes: Vec<_> = counts.routes.iter().collect();
            routes.sort_by(|a, b| a.0.cmp(b.0));
            for (label, stats) in routes {
                let label = tag_safe(label);
                write(
                    &format!("{ROUTE_LATENCY_PREFIX}{label}"),
                    &stats.timings.latency,
                )?;
                write(
                    &format!("{ROUTE_SERVICE_TIME_PREFIX}{label}"),
                    &stats.timings.service,
                )?;
            }
        }
        self.encode_failures += failures;
        let lines = self
            .staging
            .strip_prefix(self.divisor_line.as_slice())
            .unwrap_or(&self.staging);
        file.writer().write_all(lines)
    }

    /// Appends the counters of one measured interval to `interval_counts.csv`.
    fn write_counts(&mut self, snapshot: &IntervalSnapshot) -> std::io::Result<()> {
        let Some(file) = self.counts.as_mut() else {
            return Ok(());
        };
        let (measure_start, measure_end) = self.window;
        let measured = snapshot
            .end
            .min(measure_end)
            .saturating_sub(snapshot.start.max(measure_start));
        let row = IntervalCounts {
            start_s: snapshot.start.as_secs_f64(),
            end_s: snapshot.end.as_secs_f64(),
            measured_s: measured.as_secs_f64(),
            sent: snapshot.pacer.sent,
            ok: snapshot.counts.ok,
            errors: snapshot.counts.error_total(),
            dropped: snapshot.pacer.dropped,
        };
        let mut csv = csv::WriterBuilder::new()
            .has_headers(self.rows == 0)
            .from_writer(file.writer());
        csv.serialize(&row).map_err(std::io::Error::other)?;
        csv.flush()?;
        self.rows += 1;
        Ok(())
    }

    fn write_interval(&mut self, snapshot: &IntervalSnapshot) -> std::io::Result<()> {
        if !self.started {
            // The load started `snapshot.end` ago, give or take the time to collect.
            let load_started = SystemTime::now()
                .checked_sub(snapshot.end)
                .unwrap_or(SystemTime::UNIX_EPOCH);
            self.write_header(load_started)?;
        }
        if snapshot.warmup && !holds_measured(snapshot) {
            return Ok(());
        }
        self.write_histograms(snapshot)?;
        self.write_counts(snapshot)
    }

    /// Completes files that received no interval: a log with its header only and a CSV with
    /// its header line only.
    fn write_empty_headers(&mut self) -> std::io::Result<()> {
        if !self.started {
            self.write_header(self.created_at)?;
        }
        if self.rows == 0 {
            if let Some(file) = self.counts.as_mut() {
                // The csv crate derives a header only along with a row, so this takes the
                // header line from a serialized sample row.
                let mut sample = csv::Writer::from_writer(Vec::new());
                sample
                    .serialize(IntervalCounts::default())
                    .map_err(std::io::Error::other)?;
                let bytes = sample.into_inner().map_err(|e| e.into_error())?;
                let end = bytes.iter().position(|b| *b == b'\n').map_or(0, |i| i + 1);
                file.writer().write_all(&bytes[..end])?;
            }
        }
        Ok(())
    }
}

/// Returns whether a snapshot counts measured requests. The last warm-up snapshot is collected
/// a moment after the warm-up ends, so it can hold the first measured requests.
fn holds_measured(snapshot: &IntervalSnapshot) -> bool {
    snapshot.pacer.sent + snapshot.pacer.dropped + snapshot.counts.completed() > 0
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

impl IntervalSink for IntervalRecorder {
    fn on_interval(&mut self, snapshot: &IntervalSnapshot) {
        if self.error.is_some() {
            return;
        }
        if let Err(error) = self.write_interval(snapshot) {
            self.error = Some(error);
        }
    }

    fn finish(&mut self, _interrupted: bool) -> std::io::Result<()> {
        if self.encode_failures > 0 {
            tracing::warn!(
                failures = self.encode_failures,
                "some interval histograms could not be encoded and are missing from {HLOG_FILE}"
            );
        }
        if let Some(error) = self.error.take() {
            return Err(error);
        }
        self.write_empty_headers()?;
        for file in [self.hlog.take(), self.counts.take()].into_iter().flatten() {
            file.commit()?;
        }
        Ok(())
    }
}
