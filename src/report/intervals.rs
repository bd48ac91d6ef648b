//! `intervals.csv`: one row per interval snapshot, with its header taken from [`IntervalRow`].

use std::path::Path;

use serde::Serialize;

use super::stream::StreamFile;
use crate::engine::IntervalSink;
use crate::stats::IntervalSnapshot;

/// One row of `intervals.csv`. Counts include warm-up requests (the `warmup` column marks
/// intervals that ended before the measurement began); latency percentiles cover measured
/// successful requests only and are empty when the interval has none.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct IntervalRow {
    pub index: u64,
    /// Interval start and end, in seconds from the start of the load.
    pub start_s: f64,
    pub end_s: f64,
    pub warmup: bool,
    /// Name of the load stage running at the interval's middle; empty without stages.
    pub stage: Option<String>,
    /// Requested arrival rate; empty for a closed-loop run.
    pub target_rps: Option<f64>,
    /// Requests sent per second in this interval.
    pub achieved_rps: f64,
    pub sent: u64,
    pub ok: u64,
    pub errors: u64,
    pub dropped: u64,
    /// Requests in flight at the end of the interval.
    pub in_flight: u64,
    pub p50_ms: Option<f64>,
    pub p90_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub max_ms: Option<f64>,
    /// True for intervals collected after Ctrl-C or SIGTERM stopped the run. The last row of
    /// an interrupted run always has it; a run whose last row has it is partial.
    #[serde(default)]
    pub interrupted: bool,
}

impl IntervalRow {
    pub fn from_snapshot(snapshot: &IntervalSnapshot) -> IntervalRow {
        let seconds = (snapshot.end.saturating_sub(snapshot.start)).as_secs_f64();
        let sent = snapshot.pacer.sent + snapshot.pacer.warmup_sent;
        let latency = &snapshot.counts.timings.latency;
        let at = |quantile: f64| {
            (!latency.is_empty()).then(|| latency.value_at_quantile(quantile) as f64 / 1000.0)
        };
        IntervalRow {
            index: snapshot.index,
            start_s: snapshot.start.as_secs_f64(),
            end_s: snapshot.end.as_secs_f64(),
            warmup: snapshot.warmup,
            stage: snapshot.stage_name.as_deref().map(str::to_string),
            target_rps: snapshot.target_rate,
            achieved_rps: if seconds > 0.0 {
                sent as f64 / seconds
            } else {
                0.0
            },
            sent,
            ok: snapshot.counts.ok + snapshot.counts.warmup_ok,
            errors: snapshot.counts.error_total() + snapshot.counts.warmup_errors,
            dropped: snapshot.pacer.dropped + snapshot.pacer.warmup_dropped,
            in_flight: snapshot.in_flight,
            p50_ms: at(0.50),
            p90_ms: at(0.90),
            p99_ms: at(0.99),
            max_ms: (!latency.is_empty()).then(|| latency.max() as f64 / 1000.0),
            interrupted: snapshot.interrupted,
        }
    }
}

/// Writes `intervals.csv` as the run goes.
pub struct IntervalCsv {
    file: Option<StreamFile>,
    rows: u64,
    /// The first write error; later rows are skipped and the error is returned by `finish`.
    error: Option<std::io::Error>,
}

impl IntervalCsv {
    pub fn create(dir: &Path) -> std::io::Result<IntervalCsv> {
        Ok(IntervalCsv {
            file: Some(StreamFile::create(dir, "intervals.csv")?),
            rows: 0,
            error: None,
        })
    }

    fn write_row(&mut self, row: &IntervalRow, header: bool) -> std::io::Result<()> {
        let Some(file) = self.file.as_mut() else {
            return Ok(());
        };
        let mut writer = csv::WriterBuilder::new()
            .has_headers(header)
            .from_writer(file.writer());
        writer.serialize(row).map_err(std::io::Error::other)?;
        writer.flush()
    }
}

impl IntervalSink for IntervalCsv {
    fn on_interval(&mut self, snapshot: &IntervalSnapshot) {
        if self.error.is_some() {
            return;
        }
        let row = IntervalRow::from_snapshot(snapshot);
        match self.write_row(&row, self.rows == 0) {
            Ok(()) => self.rows += 1,
            Err(error) => self.error = Some(error),
        }
    }

    fn finish(&mut self, _interrupted: bool) -> std::io::Result<()> {
        if let Some(error) = self.error.take() {
            return Err(error);
        }
        if let Some(file) = self.file.take() {
            file.commit()?;
        }
        Ok(())
    }
}
