//! Saved runs read back by `compare` and `bench`: the HdrHistogram interval log parser and the
//! whole run-folder reader. Malformed files give an error naming the file, never a panic.

#![no_main]

use std::sync::OnceLock;

use inferload::regress::data::parse_hlog;
use inferload::regress::RunData;
use libfuzzer_sys::fuzz_target;

/// A summary.json written by `inferload run`, so that the reader gets past it to the interval
/// files.
const SUMMARY: &[u8] = include_bytes!("../seeds/summary.json");

/// Separates the `interval_counts.csv` part of an input from its interval log part.
const SEPARATOR: &[u8] = b"\n#--\n";

fuzz_target!(|data: &[u8]| {
    if let Ok(intervals) = parse_hlog(data) {
        for (_, tag, histogram) in &intervals {
            assert!(!tag.is_empty());
            let _ = histogram.value_at_quantile(0.99);
            let _ = histogram.mean();
        }
    }

    let (counts, hlog) = match data
        .windows(SEPARATOR.len())
        .position(|window| window == SEPARATOR)
    {
        Some(at) => (&data[..at], &data[at + SEPARATOR.len()..]),
        None => (&b"start_s,end_s,measured_s,sent,ok,errors,dropped\n"[..], data),
    };
    // One folder serves every input, with the two interval files rewritten each time, so that
    // no folder is created per input.
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    let dir = DIR.get_or_init(|| {
        let dir = tempfile::tempdir().expect("a temporary folder");
        std::fs::write(dir.path().join("summary.json"), SUMMARY).unwrap();
        dir
    });
    std::fs::write(dir.path().join("interval_counts.csv"), counts).unwrap();
    std::fs::write(dir.path().join("regress-intervals.hlog"), hlog).unwrap();
    if let Err(error) = RunData::load(dir.path()) {
        let message = error.to_string();
        assert!(
            message.contains("interval_counts.csv") || message.contains("regress-intervals.hlog"),
            "{message}"
        );
    }
});
