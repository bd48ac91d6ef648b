//! `histograms.hlog`: an HdrHistogram interval log in the standard text format that
//! HdrHistogram's own tools read (`HistogramLogProcessor`, `hdrh` for Python, the Rust crate's
//! `IntervalLogIterator`).
//!
//! Every interval adds one line per tag: `latency` (response end minus intended send time),
//! `service_time` (response end minus actual send time) and `route:LABEL` (latency of the
//! requests one route served). Histograms are V2 with deflate compression, base64 encoded, and
//! hold microseconds, like the interval max column.
//! Interval timestamps are seconds since `BaseTime`, the start of the load. Only measured,
//! successful requests are recorded, so warm-up intervals carry empty histograms.

use std::io::Write;
use std::path::Path;
use std::time::SystemTime;

use hdrhistogram::serialization::interval_log::{IntervalLogWriterBuilder, Tag};
use hdrhistogram::serialization::V2DeflateSerializer;
use hdrhistogram::Histogram;

use super::stream::StreamFile;
use crate::engine::IntervalSink;
use crate::stats::IntervalSnapshot;

/// Tag of the overall latency histograms.
pub const LATENCY_TAG: &str = "latency";
/// Tag of the overall service time histograms.
pub const SERVICE_TIME_TAG: &str = "service_time";
/// Prefix of per-route latency tags: `route:LABEL`.
pub const ROUTE_TAG_PREFIX: &str = "route:";

/// Returns the tag of a route's latency histograms. Characters the log format does not allow in a
/// tag (comma, space, CR, LF) become `_`.
pub fn route_tag(label: &str) -> String {
    let mut tag = String::with_capacity(ROUTE_TAG_PREFIX.len() + label.len());
    tag.push_str(ROUTE_TAG_PREFIX);
    for c in label.chars() {
        tag.push(if matches!(c, ',' | ' ' | '\r' | '\n') {
            '_'
        } else {
            c
        });
    }
    tag
}

/// The legend line of the Java writer; readers skip it.
const LEGEND: &str =
    "\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\"\n";

/// Writes `histograms.hlog` as the run goes.
pub struct HistogramLog {
    file: Option<StreamFile>,
    serializer: V2DeflateSerializer,
    /// Whether the header (comments, StartTime, BaseTime, legend) has been written.
    started: bool,
    /// The first write error; later intervals are skipped and `finish` returns it.
    error: Option<String>,
}

impl HistogramLog {
    pub fn create(dir: &Path) -> std::io::Result<HistogramLog> {
        Ok(HistogramLog {
            file: Some(StreamFile::create(dir, "histograms.hlog")?),
            serializer: V2DeflateSerializer::new(),
            started: false,
            error: None,
        })
    }

    fn write_header(&mut self, load_started: SystemTime) -> Result<(), String> {
        let Some(file) = self.file.as_mut() else {
            return Ok(());
        };
        let writer = file.writer();
        IntervalLogWriterBuilder::new()
            .add_comment(&format!(
                "[inferload {} interval log: values in microseconds, tags latency, service_time \
                 and route:LABEL]",
                env!("CARGO_PKG_VERSION")
            ))
            .add_comment("[Histogram log format version 1.3]")
            .with_start_time(load_started)
            .with_base_time(load_started)
            .begin_log_with(writer, &mut self.serializer)
            .map_err(|e| e.to_string())?;
        writer
            .write_all(LEGEND.as_bytes())
            .map_err(|e| e.to_string())
    }

    fn write_interval(&mut self, snapshot: &IntervalSnapshot) -> Result<(), String> {
        if !self.started {
            // The load started `snapshot.end` ago, give or take the time to collect.
            let load_started = SystemTime::now()
                .checked_sub(snapshot.end)
                .unwrap_or(SystemTime::UNIX_EPOCH);
            self.write_header(load_started)?;
            self.started = true;
        }
        let Some(file) = self.file.as_mut() else {
            return Ok(());
        };
        // A builder with no comments or times writes nothing of its own.
        let mut log = IntervalLogWriterBuilder::new()
            .begin_log_with(file.writer(), &mut self.serializer)
            .map_err(|e| e.to_string())?;
        let start = snapshot.start;
        let length = snapshot.end.saturating_sub(snapshot.start);
        let mut write = |histogram: &Histogram<u64>, tag: &str| {
            log.write_histogram(histogram, start, length, Tag::new(tag))
                .map_err(|e| e.to_string())
        };
        write(&snapshot.counts.timings.latency, LATENCY_TAG)?;
        write(&snapshot.counts.timings.service, SERVICE_TIME_TAG)?;
        let mut routes: Vec<_> = snapshot.counts.routes.iter().collect();
        routes.sort_by(|a, b| a.0.cmp(b.0));
        for (label, stats) in routes {
            if !stats.timings.latency.is_empty() {
                write(&stats.timings.latency, &route_tag(label))?;
            }
        }
        Ok(())
    }
}

impl IntervalSink for HistogramLog {
    fn on_interval(&mut self, snapshot: &IntervalSnapshot) {
        if self.error.is_some() {
            return;
        }
        if let Err(error) = self.write_interval(snapshot) {
            self.error = Some(error);
        }
    }

    fn finish(&mut self, interrupted: bool) -> std::io::Result<()> {
        if let Some(error) = self.error.take() {
            return Err(std::io::Error::other(error));
        }
        if let Some(mut file) = self.file.take() {
            if interrupted {
                writeln!(
                    file.writer(),
                    "#[Partial: the run was interrupted, so the log ends at the stop]"
                )?;
            }
            file.commit()?;
        }
        Ok(())
    }
}
