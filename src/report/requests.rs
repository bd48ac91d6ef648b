//! `requests.csv`: one row per completed request ([`RequestRow`]), in completion order, written
//! by a thread of its own through a `BufWriter` while the run goes.
//!
//! Lanes hand rows to a bounded channel of [`CHANNEL_ROWS`] rows and never wait: a row that
//! finds the channel full is dropped and counted (see [`crate::stats::request_log`]). The
//! rows written and dropped go into `summary.json` under `requests_csv`. Requests still in
//! flight when the run ends have no row. The file is streamed as `.requests.csv.partial` and
//! renamed when the run ends, interrupted or not.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::stream::StreamFile;
use crate::stats::request_log::{RequestLog, RequestRow};

/// File name in the run folder.
pub const FILE: &str = "requests.csv";

/// Rows the channel buffers between the lanes and the writer: at about 100 bytes a row, at
/// most about 6 MB, and 6.5 s of a 10,000 req/s run if the disk stalls.
pub const CHANNEL_ROWS: usize = 65_536;

/// The rows of `requests.csv`, in `summary.json` under `requests_csv`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestCsvSummary {
    /// Rows written to the file.
    pub rows: u64,
    /// Completed requests without a row: the channel was full, or writing failed.
    pub dropped: u64,
}

/// Result of the writer thread: rows written, rows it could not write, and the first error.
type WriterResult = (u64, u64, Option<std::io::Error>);

/// The writer of `requests.csv` and the lanes' handle on it.
pub struct RequestCsv {
    log: Arc<RequestLog>,
    closed: Arc<AtomicBool>,
    writer: JoinHandle<WriterResult>,
}

impl RequestCsv {
    /// Creates `.requests.csv.partial` in `dir` and starts the writer thread.
    pub fn create(dir: &Path, route_header: http::HeaderName) -> std::io::Result<RequestCsv> {
        let file = StreamFile::create(dir, FILE)?;
        let (sender, receiver) = flume::bounded(CHANNEL_ROWS);
        let closed = Arc::new(AtomicBool::new(false));
        let writer_closed = Arc::clone(&closed);
        let writer = std::thread::Builder::new()
            .name("inferload-requests-csv".into())
            .spawn(move || write_rows(file, &receiver, &writer_closed))?;
        Ok(RequestCsv {
            log: Arc::new(RequestLog::new(sender, route_header)),
            closed,
            writer,
        })
    }

    /// The handle the lanes record into.
    pub fn log(&self) -> Arc<RequestLog> {
        Arc::clone(&self.log)
    }

    /// Writes the rows still buffered, renames the file to `requests.csv` and returns the
    /// counts. Call after the load ended.
    pub fn finish(self) -> std::io::Result<RequestCsvSummary> {
        self.closed.store(true, Ordering::Release);
        let (rows, failed, error) = self
            .writer
            .join()
            .map_err(|_| std::io::Error::other("the requests.csv writer thread panicked"))?;
        if let Some(error) = error {
            return Err(error);
        }
        Ok(RequestCsvSummary {
            rows,
            dropped: self.log.dropped() + failed,
        })
    }
}

/// Drains `receiver` into the file until `closed` is set and the channel is empty, then
/// commits the file. After a write error the remaining rows are counted, not written.
fn write_rows(
    mut file: StreamFile,
    receiver: &flume::Receiver<RequestRow>,
    closed: &AtomicBool,
) -> WriterResult {
    let mut written = 0u64;
    let mut failed = 0u64;
    let mut error: Option<std::io::Error> = None;
    {
        let mut csv = csv::WriterBuilder::new()
            .has_headers(false)
            .from_writer(file.writer());
        if let Err(e) = write_header(&mut csv) {
            error = Some(e);
        }
        loop {
            let row = match receiver.recv_timeout(Duration::from_millis(50)) {
                Ok(row) => row,
                Err(flume::RecvTimeoutError::Timeout) => {
                    if closed.load(Ordering::Acquire) && receiver.is_empty() {
                        break;
                    }
                    continue;
                }
                Err(flume::RecvTimeoutError::Disconnected) => break,
            };
            if error.is_some() {
                failed += 1;
                continue;
            }
            match csv.serialize(&row) {
                Ok(()) => written += 1,
                Err(e) => {
                    failed += 1;
                    error = Some(std::io::Error::other(e));
                }
            }
        }
        if let Err(e) = csv.flush() {
            error.get_or_insert(e);
        }
    }
    // The file is renamed even after a write error, so the rows written can be read.
    if let Err(e) = file.commit() {
        error.get_or_insert(e);
    }
    (written, failed, error)
}

/// Writes the header line of [`RequestRow`], so a file without rows still names its columns.
fn write_header<W: std::io::Write>(csv: &mut csv::Writer<W>) -> std::io::Result<()> {
    // The csv crate derives a header only along with a row, so this takes the header line
    // from a serialized sample row.
    let sample = RequestRow {
        warmup: false,
        intended_us: 0,
        sent_us: 0,
        latency_us: 0,
        service_us: 0,
        outcome: "ok".into(),
        status: None,
        route: None,
        lane: 0,
        connect_us: None,
    };
    let mut buffer = csv::Writer::from_writer(Vec::new());
    buffer.serialize(&sample).map_err(std::io::Error::other)?;
    let bytes = buffer.into_inner().map_err(|e| e.into_error())?;
    let header = bytes.split(|b| *b == b'\n').next().unwrap_or_default();
    csv.write_record(header.split(|b| *b == b','))
        .map_err(std::io::Error::other)
}
