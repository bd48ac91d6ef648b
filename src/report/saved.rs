//! Reading a saved result folder back, for `inferload report`: a run's summary checked against
//! its other result files, a sweep's summary and steps, or a comparison.
//!
//! The files identify the kind of folder. A run and a sweep both write `summary.json`, and a
//! sweep's has `"kind": "sweep"`. `inferload compare --out DIR` writes only `compare.json` and
//! its renderings.

use std::path::{Path, PathBuf};

use base64::prelude::{Engine as _, BASE64_STANDARD};
use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
use hdrhistogram::serialization::Deserializer;
use hdrhistogram::Histogram;

use super::intervals::IntervalRow;
use super::summary::{Summary, SCHEMA_VERSION};
use crate::regress::Comparison;
use crate::sweep::report::{SweepSummary, SWEEP_SCHEMA_VERSION};
use crate::sweep::StepRecord;

/// Files every complete run folder contains besides `summary.json`.
pub const RUN_FILES: [&str; 6] = [
    "intervals.csv",
    "histograms.hlog",
    "latency.hgrm",
    "service_time.hgrm",
    "junit.xml",
    "summary.md",
];

/// A result folder read back.
#[derive(Debug)]
pub enum SavedFolder {
    /// A run's summary, with the comparison with a baseline when the folder has one.
    Run {
        summary: Box<Summary>,
        comparisons: Vec<Comparison>,
    },
    Sweep(Box<SweepSummary>),
    /// The comparisons of a folder written by `inferload compare --out`.
    Compare(Vec<Comparison>),
}

/// Error reading a result folder. Each message names the folder or file and what to do.
#[derive(Debug, thiserror::Error)]
pub enum SavedError {
    #[error("{dir} is not a readable folder: {source}")]
    Folder {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{dir} has no summary.json or compare.json; give the folder of a run, a sweep or a \
         comparison (the path printed after `results:`)"
    )]
    NotResults { dir: PathBuf },
    #[error(
        "{dir} is missing {file}; the run may have been cut short before it wrote its files, \
         or the file was removed"
    )]
    Missing { dir: PathBuf, file: String },
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid {path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

fn invalid(path: &Path, message: impl Into<String>) -> SavedError {
    SavedError::Invalid {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

fn read(path: &Path) -> Result<Vec<u8>, SavedError> {
    std::fs::read(path).map_err(|source| SavedError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Reads the result folder `dir` and checks that its files agree with each other.
pub fn load(dir: &Path) -> Result<SavedFolder, SavedError> {
    std::fs::read_dir(dir).map_err(|source| SavedError::Folder {
        dir: dir.to_path_buf(),
        source,
    })?;
    let summary_path = dir.join("summary.json");
    let compare_path = dir.join(crate::regress::JSON_FILE);
    if !summary_path.exists() {
        if compare_path.exists() {
            return Ok(SavedFolder::Compare(read_comparisons(&compare_path)?));
        }
        return Err(SavedError::NotResults {
            dir: dir.to_path_buf(),
        });
    }

    let bytes = read(&summary_path)?;
    let value: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|e| invalid(&summary_path, format!("not JSON: {e}")))?;
    let version = value.get("schema_version").and_then(|v| v.as_u64());
    let is_sweep = value.get("kind").and_then(|k| k.as_str()) == Some("sweep");
    let expected = if is_sweep {
        SWEEP_SCHEMA_VERSION
    } else {
        SCHEMA_VERSION
    };
    match version {
        Some(version) if version == u64::from(expected) => {}
        Some(version) => {
            return Err(invalid(
                &summary_path,
                format!(
                    "schema_version {version} is not the {expected} this inferload reads; \
                     report it with the inferload version that wrote it"
                ),
            ))
        }
        None => return Err(invalid(&summary_path, "no schema_version key")),
    }
    if is_sweep {
        let summary: SweepSummary = serde_json::from_slice(&bytes)
            .map_err(|e| invalid(&summary_path, format!("not a sweep summary: {e}")))?;
        check_steps(dir, &summary)?;
        return Ok(SavedFolder::Sweep(Box::new(summary)));
    }
    let summary: Summary = serde_json::from_slice(&bytes)
        .map_err(|e| invalid(&summary_path, format!("not a run summary: {e}")))?;
    check_run_files(dir, &summary)?;
    let comparisons = if compare_path.exists() {
        read_comparisons(&compare_path)?
    } else {
        Vec::new()
    };
    Ok(SavedFolder::Run {
        summary: Box::new(summary),
        comparisons,
    })
}

fn read_comparisons(path: &Path) -> Result<Vec<Comparison>, SavedError> {
    serde_json::from_slice(&read(path)?)
        .map_err(|e| invalid(path, format!("not a list of comparisons: {e}")))
}

/// Checks that `steps.csv` contains the steps of the sweep's summary.
fn check_steps(dir: &Path, summary: &SweepSummary) -> Result<(), SavedError> {
    let path = dir.join("steps.csv");
    if !path.exists() {
        return Err(SavedError::Missing {
            dir: dir.to_path_buf(),
            file: "steps.csv".into(),
        });
    }
    let bytes = read(&path)?;
    let rows: Vec<StepRecord> = csv::Reader::from_reader(&bytes[..])
        .deserialize()
        .collect::<Result<_, _>>()
        .map_err(|e| invalid(&path, e.to_string()))?;
    if rows.len() != summary.steps.len() {
        return Err(invalid(
            &path,
            format!(
                "{} steps, but summary.json lists {}",
                rows.len(),
                summary.steps.len()
            ),
        ));
    }
    Ok(())
}

/// Checks that every result file of a run is present, and that the interval files add up to
/// the summary's counts.
fn check_run_files(dir: &Path, summary: &Summary) -> Result<(), SavedError> {
    for file in RUN_FILES {
        if !dir.join(file).is_file() {
            return Err(SavedError::Missing {
                dir: dir.to_path_buf(),
                file: file.into(),
            });
        }
    }

    let path = dir.join("intervals.csv");
    let bytes = read(&path)?;
    let rows: Vec<IntervalRow> = csv::Reader::from_reader(&bytes[..])
        .deserialize()
        .collect::<Result<_, _>>()
        .map_err(|e| invalid(&path, e.to_string()))?;
    let requests = &summary.requests;
    let sent: u64 = rows.iter().map(|r| r.sent).sum();
    let ok: u64 = rows.iter().map(|r| r.ok).sum();
    if sent != requests.sent + requests.warmup_sent || ok != requests.ok + requests.warmup_ok {
        return Err(invalid(
            &path,
            format!(
                "its rows add up to {sent} sent and {ok} ok, but summary.json has {} sent and \
                 {} ok (warm-up included)",
                requests.sent + requests.warmup_sent,
                requests.ok + requests.warmup_ok
            ),
        ));
    }

    let path = dir.join("histograms.hlog");
    let (latency, service) = hlog_counts(&path)?;
    if latency != summary.latency_ms.count || service != summary.service_time_ms.count {
        return Err(invalid(
            &path,
            format!(
                "its histograms count {latency} latencies and {service} service times, but \
                 summary.json has {} and {}",
                summary.latency_ms.count, summary.service_time_ms.count
            ),
        ));
    }

    if let Some(expected) = &summary.requests_csv {
        let file = super::requests::FILE;
        let path = dir.join(file);
        if !path.is_file() {
            return Err(SavedError::Missing {
                dir: dir.to_path_buf(),
                file: file.into(),
            });
        }
        let mut reader =
            csv::Reader::from_path(&path).map_err(|e| invalid(&path, e.to_string()))?;
        let mut rows = 0u64;
        for record in reader.records() {
            record.map_err(|e| invalid(&path, e.to_string()))?;
            rows += 1;
        }
        if rows != expected.rows {
            return Err(invalid(
                &path,
                format!(
                    "{rows} rows, but summary.json has requests_csv.rows = {}",
                    expected.rows
                ),
            ));
        }
    }
    Ok(())
}

/// Counts the values of the `latency` and `service_time` histograms of an interval log.
fn hlog_counts(path: &Path) -> Result<(u64, u64), SavedError> {
    let bytes = read(path)?;
    let mut deserializer = Deserializer::new();
    let (mut latency, mut service) = (0, 0);
    for entry in IntervalLogIterator::new(&bytes) {
        let entry = entry.map_err(|error| {
            let hdrhistogram::serialization::interval_log::LogIteratorError::ParseError { offset } =
                error;
            invalid(
                path,
                format!(
                    "the interval log cannot be parsed from byte {offset} on (a truncated or \
                     edited file); run the load again to write it anew"
                ),
            )
        })?;
        let LogEntry::Interval(interval) = entry else {
            continue;
        };
        let count = match interval.tag().map(|t| t.as_str()) {
            Some(super::hlog::LATENCY_TAG) => &mut latency,
            Some(super::hlog::SERVICE_TIME_TAG) => &mut service,
            _ => continue,
        };
        let encoded = BASE64_STANDARD
            .decode(interval.encoded_histogram())
            .map_err(|e| invalid(path, format!("a histogram is not base64: {e}")))?;
        let histogram: Histogram<u64> = deserializer
            .deserialize(&mut &encoded[..])
            .map_err(|e| invalid(path, format!("a histogram does not decode: {e:?}")))?;
        *count += histogram.len();
    }
    Ok((latency, service))
}
