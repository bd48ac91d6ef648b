//! Reading a run folder (or a saved baseline) back: its summary and its per-interval
//! histograms and counters.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::prelude::{Engine as _, BASE64_STANDARD};
use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
use hdrhistogram::serialization::Deserializer;
use hdrhistogram::Histogram;

use super::record::{IntervalCounts, COUNTS_FILE, HLOG_FILE};
use super::RegressError;
use crate::report::Summary;

/// One measured interval: its counters and its histograms by tag.
#[derive(Debug, Clone)]
pub struct IntervalData {
    pub counts: IntervalCounts,
    pub histograms: BTreeMap<String, Histogram<u64>>,
}

/// Everything a comparison needs from one run.
#[derive(Debug, Clone)]
pub struct RunData {
    pub dir: PathBuf,
    pub summary: Summary,
    pub intervals: Vec<IntervalData>,
}

impl RunData {
    /// Reads `summary.json`, `regress-intervals.hlog` and `interval_counts.csv` from `dir`.
    pub fn load(dir: &Path) -> Result<RunData, RegressError> {
        let summary_path = dir.join("summary.json");
        let bytes = std::fs::read(&summary_path).map_err(|source| RegressError::Read {
            path: summary_path.clone(),
            source,
        })?;
        let summary: Summary =
            serde_json::from_slice(&bytes).map_err(|e| RegressError::Invalid {
                path: summary_path.clone(),
                message: e.to_string(),
            })?;

        let counts = read_counts(&dir.join(COUNTS_FILE))?;
        let histograms = read_hlog(&dir.join(HLOG_FILE))?;
        let mut intervals: Vec<IntervalData> = counts
            .into_iter()
            .map(|counts| IntervalData {
                counts,
                histograms: BTreeMap::new(),
            })
            .collect();

        // Interval log timestamps have millisecond resolution: match each histogram to the
        // counters row whose start is nearest.
        for (start, tag, histogram) in histograms {
            let position = intervals
                .iter()
                .position(|i| (i.counts.start_s - start.as_secs_f64()).abs() < 0.0015);
            let Some(position) = position else {
                return Err(RegressError::Invalid {
                    path: dir.join(HLOG_FILE),
                    message: format!(
                        "histogram `{tag}` starts at {:.3}s, which matches no row of {COUNTS_FILE}",
                        start.as_secs_f64()
                    ),
                });
            };
            intervals[position].histograms.insert(tag, histogram);
        }
        Ok(RunData {
            dir: dir.to_path_buf(),
            summary,
            intervals,
        })
    }
}

fn read_counts(path: &Path) -> Result<Vec<IntervalCounts>, RegressError> {
    let file = std::fs::File::open(path).map_err(|source| RegressError::Read {
        path: path.to_owned(),
        source,
    })?;
    csv::Reader::from_reader(file)
        .deserialize()
        .collect::<Result<Vec<IntervalCounts>, _>>()
        .map_err(|e| RegressError::Invalid {
            path: path.to_owned(),
            message: e.to_string(),
        })
}

/// One tagged histogram of an interval log: its start offset, tag and histogram.
pub type TaggedInterval = (Duration, String, Histogram<u64>);

/// Reads every tagged interval histogram of the interval log at `path`.
fn read_hlog(path: &Path) -> Result<Vec<TaggedInterval>, RegressError> {
    let text = std::fs::read(path).map_err(|source| RegressError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse_hlog(&text).map_err(|message| RegressError::Invalid {
        path: path.to_owned(),
        message,
    })
}

/// Parses the tagged interval histograms of an HdrHistogram interval log; untagged intervals
/// and comment lines are skipped. The error names the histogram that cannot be decoded.
pub fn parse_hlog(text: &[u8]) -> Result<Vec<TaggedInterval>, String> {
    let mut deserializer = Deserializer::new();
    let mut out = Vec::new();
    for entry in IntervalLogIterator::new(text) {
        let entry = entry.map_err(|e| format!("not an HdrHistogram interval log: {e:?}"))?;
        let LogEntry::Interval(interval) = entry else {
            continue;
        };
        let Some(tag) = interval.tag() else {
            continue;
        };
        let bytes = BASE64_STANDARD
            .decode(interval.encoded_histogram())
            .map_err(|e| format!("histogram `{}` is not valid base64: {e}", tag.as_str()))?;
        let histogram: Histogram<u64> = deserializer
            .deserialize(&mut bytes.as_slice())
            .map_err(|e| format!("histogram `{}` cannot be decoded: {e:?}", tag.as_str()))?;
        out.push((
            interval.start_timestamp(),
            tag.as_str().to_string(),
            histogram,
        ));
    }
    Ok(out)
}
