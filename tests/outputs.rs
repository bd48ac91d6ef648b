//! Result files of a run: each is present, parses with an independent reader, and agrees with
//! `summary.json`; interrupted runs leave a complete folder marked partial.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
use hdrhistogram::serialization::Deserializer;
use hdrhistogram::Histogram;
use inferload::report::intervals::IntervalRow;

const FILES: [&str; 7] = [
    "summary.json",
    "intervals.csv",
    "histograms.hlog",
    "latency.hgrm",
    "service_time.hgrm",
    "junit.xml",
    "summary.md",
];

fn read_json(path: &Path) -> serde_json::Value {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn count_at(summary: &serde_json::Value, pointer: &str) -> u64 {
    summary
        .pointer(pointer)
        .and_then(serde_json::Value::as_u64)
        .unwrap_or_else(|| panic!("summary has no count at {pointer}"))
}

/// Checks `summary` against the committed JSON Schema.
fn assert_schema_valid(summary: &serde_json::Value) {
    let schema = read_json(&repo().join("schemas/summary.schema.json"));
    let validator = jsonschema::draft202012::new(&schema).expect("the schema compiles");
    let problems: Vec<String> = validator
        .iter_errors(summary)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(problems.is_empty(), "summary.json: {problems:#?}");
}

/// Reads `histograms.hlog` with the hdrhistogram crate: the merged histogram per tag and the
/// number of intervals per tag.
fn read_hlog(path: &Path) -> BTreeMap<String, (Histogram<u64>, usize)> {
    let bytes = std::fs::read(path).unwrap();
    let mut deserializer = Deserializer::new();
    let mut tags: BTreeMap<String, (Histogram<u64>, usize)> = BTreeMap::new();
    let mut base_time = None;
    for entry in IntervalLogIterator::new(&bytes) {
        match entry.expect("every hlog line parses") {
            LogEntry::BaseTime(time) => base_time = Some(time),
            LogEntry::StartTime(_) => {}
            LogEntry::Interval(interval) => {
                let encoded = base64_decode(interval.encoded_histogram());
                let histogram: Histogram<u64> = deserializer
                    .deserialize(&mut &encoded[..])
                    .expect("every histogram decodes");
                let tag = interval.tag().expect("every interval is tagged").as_str();
                let entry = tags
                    .entry(tag.to_string())
                    .or_insert_with(|| (Histogram::new(3).unwrap(), 0));
                entry.0.add(&histogram).unwrap();
                entry.1 += 1;
            }
        }
    }
    assert!(base_time.is_some(), "the hlog has no BaseTime");
    tags
}

/// Standard base64, as the interval log uses; the hdrhistogram crate re-exports no decoder.
fn base64_decode(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let mut buffer = 0u32;
    let mut bits = 0;
    for byte in text.bytes().filter(|b| *b != b'=') {
        let value = ALPHABET
            .iter()
            .position(|c| *c == byte)
            .unwrap_or_else(|| panic!("invalid base64 byte {byte}")) as u32;
        buffer = (buffer << 6) | value;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
        }
    }
    out
}

/// Decodes the hlog with the Python `hdrh` package, or returns None when python3 is missing.
fn python_hlog_counts(path: &Path) -> Option<serde_json::Value> {
    let python = Command::new(repo().join("tests/tools/python-hdrh")).output();
    let python = match python {
        Ok(output) if output.status.success() => {
            String::from_utf8(output.stdout).unwrap().trim().to_string()
        }
        Ok(output) => {
            let stderr = String::from_utf8_lossy(&output.stderr);
            if stderr.contains("python3 is not installed") {
                eprintln!("SKIPPED the Python hdrh cross-check: {stderr}");
                return None;
            }
            panic!("tests/tools/python-hdrh failed: {}", describe(&output));
        }
        Err(e) => panic!("cannot run tests/tools/python-hdrh: {e}"),
    };
    let output = Command::new(python)
        .arg(repo().join("tests/tools/hlog_counts.py"))
        .arg(path)
        .output()
        .expect("the hdrh checker runs");
    assert!(output.status.success(), "{}", describe(&output));
    Some(serde_json::from_slice(&output.stdout).expect("the checker prints JSON"))
}

/// Checks every result file of `dir` and its agreement with summary.json; returns the summary.
fn assert_complete_results(dir: &Path) -> serde_json::Value {
    for name in FILES {
        assert!(
            dir.join(name).is_file(),
            "{name} is missing in {}",
            dir.display()
        );
    }
    let leftovers: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");

    let summary = read_json(&dir.join("summary.json"));
    assert_schema_valid(&summary);
    let latency_count = count_at(&summary, "/latency_ms/count");
    let service_count = count_at(&summary, "/service_time_ms/count");

    // The hlog, read back with the hdrhistogram crate.
    let tags = read_hlog(&dir.join("histograms.hlog"));
    let (latency, latency_intervals) = &tags["latency"];
    assert_eq!(latency.len(), latency_count, "hlog latency count");
    assert_eq!(
        tags["service_time"].0.len(),
        service_count,
        "hlog service count"
    );
    let p99 = latency.value_at_quantile(0.99) as f64 / 1000.0;
    assert_eq!(p99, summary["latency_ms"]["p99"].as_f64().unwrap());
    for (label, route) in summary["routes"].as_object().unwrap() {
        let count = route["latency_ms"]["count"].as_u64().unwrap();
        let tag = format!("route:{label}");
        let logged = tags.get(&tag).map_or(0, |(h, _)| h.len());
        assert_eq!(logged, count, "hlog {tag} count");
    }

    // The same hlog, read with an independent implementation.
    if let Some(python) = python_hlog_counts(&dir.join("histograms.hlog")) {
        assert_eq!(python["latency"]["count"].as_u64(), Some(latency_count));
        assert_eq!(
            python["service_time"]["count"].as_u64(),
            Some(service_count)
        );
        assert_eq!(
            python["latency"]["intervals"].as_u64(),
            Some(*latency_intervals as u64)
        );
        // hdrh rounds the rank of a percentile to the nearest count where the crate rounds up,
        // so percentiles may name neighbouring samples; the max is the same value in both.
        assert_eq!(python["latency"]["max"].as_u64(), Some(latency.max()));
    }

    // intervals.csv deserializes into the struct that wrote it.
    let mut reader = csv::Reader::from_path(dir.join("intervals.csv")).unwrap();
    let rows: Vec<IntervalRow> = reader
        .deserialize()
        .collect::<Result<_, _>>()
        .expect("every intervals.csv row parses");
    assert!(!rows.is_empty(), "intervals.csv has no rows");
    assert_eq!(
        rows.len(),
        *latency_intervals,
        "one hlog interval per csv row"
    );
    let ok: u64 = rows.iter().map(|r| r.ok).sum();
    let warmup_ok = count_at(&summary, "/requests/warmup_ok");
    assert_eq!(ok, count_at(&summary, "/requests/ok") + warmup_ok);
    let sent: u64 = rows.iter().map(|r| r.sent).sum();
    let warmup_sent = count_at(&summary, "/requests/warmup_sent");
    assert_eq!(sent, count_at(&summary, "/requests/sent") + warmup_sent);
    for (i, row) in rows.iter().enumerate() {
        assert_eq!(row.index, i as u64);
    }
    let partial = summary["partial"].as_bool().unwrap();
    let last = rows.last().unwrap();
    assert_eq!(last.interrupted, partial, "last intervals.csv row {last:?}");
    if !partial {
        assert!(rows.iter().all(|r| !r.interrupted), "{rows:?}");
    }

    // requests.csv, when the run wrote one: a row per completed request.
    if let Some(written) = summary["requests_csv"].as_object() {
        let mut reader = csv::Reader::from_path(dir.join("requests.csv")).unwrap();
        let rows: Vec<inferload::stats::request_log::RequestRow> = reader
            .deserialize()
            .collect::<Result<_, _>>()
            .expect("every requests.csv row parses");
        assert_eq!(Some(rows.len() as u64), written["rows"].as_u64());
        assert_eq!(written["dropped"].as_u64(), Some(0));
        let completed = count_at(&summary, "/requests/ok")
            + count_at(&summary, "/requests/errors")
            + count_at(&summary, "/requests/warmup_ok")
            + count_at(&summary, "/requests/warmup_errors");
        assert_eq!(rows.len() as u64, completed, "requests.csv rows");
    } else {
        assert!(!dir.join("requests.csv").exists());
    }

    // latency.hgrm ends at the full count.
    let hgrm = std::fs::read_to_string(dir.join("latency.hgrm")).unwrap();
    let total_line = hgrm
        .lines()
        .find(|l| l.contains("Total count"))
        .expect("hgrm footer");
    assert!(
        total_line
            .trim_end_matches(']')
            .ends_with(&format!(" {latency_count}")),
        "{total_line}"
    );
    if latency_count > 0 {
        let last_row = hgrm
            .lines()
            .rfind(|l| !l.starts_with('#') && !l.trim().is_empty())
            .unwrap();
        let columns: Vec<&str> = last_row.split_whitespace().collect();
        assert_eq!(columns[1], "1.000000000000", "{last_row}");
        assert_eq!(columns[2], latency_count.to_string(), "{last_row}");
    }

    // junit.xml is well-formed and has one test case per gate.
    let xml = std::fs::read_to_string(dir.join("junit.xml")).unwrap();
    let document = roxmltree::Document::parse(&xml).expect("junit.xml is well-formed XML");
    let cases: Vec<_> = document
        .descendants()
        .filter(|n| n.has_tag_name("testcase"))
        .collect();
    let gates = summary["gates"].as_array().unwrap();
    assert_eq!(cases.len(), gates.len());
    for (case, gate) in cases.iter().zip(gates) {
        assert_eq!(case.attribute("name"), gate["name"].as_str());
        let failed = case.children().any(|n| n.has_tag_name("failure"));
        assert_eq!(failed, !gate["pass"].as_bool().unwrap(), "{}", gate["name"]);
    }
    let partial = summary["partial"].as_bool().unwrap();
    let property = document
        .descendants()
        .find(|n| n.has_tag_name("property") && n.attribute("name") == Some("partial"))
        .expect("junit.xml has the partial property");
    assert_eq!(
        property.attribute("value"),
        Some(if partial { "true" } else { "false" })
    );

    let markdown = std::fs::read_to_string(dir.join("summary.md")).unwrap();
    assert!(markdown.starts_with("## inferload:"), "{markdown}");
    assert_eq!(markdown.contains("**Partial:**"), partial, "{markdown}");
    summary
}

#[test]
fn result_files_agree_with_summary() {
    let server = serve(&[
        "--latency",
        "fixed:2ms",
        "--routes",
        "baseline-predictor_1=70,enhanced-predictor_1=30",
    ]);
    let temp = tempfile::tempdir().unwrap();
    let path = scenario(temp.path(), &basic_scenario(&server.url));
    let out = temp.path().join("out");
    let (output, summary) = run(
        &path,
        &out,
        &[
            "--rate",
            "200/s",
            "--duration",
            "3s",
            "--warmup",
            "1s",
            "--gate",
            "p99<1ms",
            "--gate",
            "p99<1s",
        ],
    );
    assert_eq!(output.status.code(), Some(3), "{}", describe(&output));
    assert!(summary.is_some());
    let summary = assert_complete_results(&out);
    assert_eq!(summary["partial"], false);
    assert_eq!(count_at(&summary, "/latency_ms/count"), 600);
    assert_eq!(summary["routes"].as_object().unwrap().len(), 2);

    let xml = std::fs::read_to_string(out.join("junit.xml")).unwrap();
    let document = roxmltree::Document::parse(&xml).unwrap();
    let failure = document
        .descendants()
        .find(|n| n.has_tag_name("failure"))
        .expect("the failing gate has a failure element");
    let case = failure.parent().unwrap();
    assert_eq!(case.attribute("name"), Some("p99<1ms"));
    assert!(failure
        .attribute("message")
        .unwrap()
        .contains("latency_ms.p99"));
    let suites = document.root_element();
    assert_eq!(suites.attribute("tests"), Some("2"));
    assert_eq!(suites.attribute("failures"), Some("1"));
}

#[test]
fn closed_loop_results_validate() {
    let server = serve(&["--latency", "fixed:1ms"]);
    let temp = tempfile::tempdir().unwrap();
    let path = scenario(temp.path(), &basic_scenario(&server.url));
    let out = temp.path().join("out");
    let (output, _) = run(&path, &out, &["--concurrency", "2", "--duration", "1s"]);
    assert!(output.status.success(), "{}", describe(&output));
    let summary = assert_complete_results(&out);
    assert!(summary["load"]["target_rps"].is_null());
    assert_eq!(summary["passed"], true);
}

/// Starts `inferload run` in the background, writing to `out`.
fn spawn_run(scenario: &Path, out: &Path, args: &[&str]) -> Child {
    Command::new(bin())
        .arg("run")
        .arg(scenario)
        .arg("--out")
        .arg(out)
        .arg("-q")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("inferload run starts")
}

/// Waits until the run has streamed at least `rows` rows to its temporary intervals.csv, polling
/// the file, or panics after `limit`.
fn wait_for_intervals(out: &Path, rows: usize, limit: Duration) {
    let deadline = Instant::now() + limit;
    loop {
        let written = std::fs::read_to_string(out.join(".intervals.csv.partial"))
            .map(|text| text.lines().count().saturating_sub(1))
            .unwrap_or(0);
        if written >= rows {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "only {written} intervals after {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn signal(child: &Child, signal: libc::c_int) {
    // SAFETY: kill(2) with the id of a child this test started and still owns.
    let result = unsafe { libc::kill(child.id() as libc::pid_t, signal) };
    assert_eq!(
        result,
        0,
        "kill failed: {}",
        std::io::Error::last_os_error()
    );
}

/// Waits for the child to exit, or kills it and panics after `limit`.
fn wait_exit(mut child: Child, limit: Duration) -> (std::process::Output, Duration) {
    let started = Instant::now();
    let mut exited = false;
    while !exited && started.elapsed() <= limit {
        exited = child.try_wait().unwrap().is_some();
        if !exited {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let elapsed = started.elapsed();
    if !exited {
        let _ = child.kill();
    }
    let output = child.wait_with_output().unwrap();
    assert!(
        exited,
        "the run did not exit within {limit:?}: {}",
        describe(&output)
    );
    (output, elapsed)
}

/// Checks `regress-intervals.hlog` and `interval_counts.csv` of `dir` against `summary`: one
/// row and one `latency` entry per measured interval, no interval of the warm-up alone, and
/// counters and histograms that add up to the run's. Returns the number of intervals.
fn assert_interval_files(dir: &Path, summary: &serde_json::Value, warmup_s: f64) -> usize {
    let text = std::fs::read_to_string(dir.join("interval_counts.csv")).unwrap();
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let rows: Vec<inferload::regress::record::IntervalCounts> = reader
        .deserialize()
        .map(|row| row.expect("every interval_counts.csv row parses"))
        .collect();
    // The snapshot taken at the end of the warm-up can count the first measured requests, so
    // only the other warm-up intervals must be left out.
    for row in &rows {
        let measured = row.sent + row.dropped + row.ok + row.errors;
        assert!(
            row.end_s > warmup_s || measured > 0,
            "warm-up interval kept: {row:?}"
        );
    }
    let sum = |field: fn(&inferload::regress::record::IntervalCounts) -> u64| -> u64 {
        rows.iter().map(field).sum()
    };
    assert_eq!(sum(|r| r.sent), count_at(summary, "/requests/sent"), "sent");
    assert_eq!(sum(|r| r.ok), count_at(summary, "/requests/ok"), "ok");
    assert_eq!(
        sum(|r| r.errors),
        count_at(summary, "/requests/errors"),
        "errors"
    );

    let tags = read_hlog(&dir.join("regress-intervals.hlog"));
    let (latency, latency_intervals) = &tags["latency"];
    assert_eq!(*latency_intervals, rows.len(), "latency entries");
    assert_eq!(tags["service_time"].1, rows.len(), "service_time entries");
    assert_eq!(
        latency.len(),
        count_at(summary, "/latency_ms/count"),
        "latency count"
    );
    assert_eq!(
        tags["service_time"].0.len(),
        count_at(summary, "/service_time_ms/count"),
        "service_time count"
    );
    for (label, route) in summary["routes"].as_object().unwrap() {
        let count = route["latency_ms"]["count"].as_u64().unwrap();
        for prefix in ["route:", "route_service_time:"] {
            let tag = format!("{prefix}{label}");
            let logged = tags.get(&tag).map_or(0, |(h, _)| h.len());
            assert_eq!(logged, count, "{tag} count");
        }
    }
    rows.len()
}

/// Runs `inferload compare DIR DIR`, which reads both interval files back, and checks that it
/// produces a verdict.
fn assert_compare_accepts(dir: &Path) {
    let reports = tempfile::tempdir().unwrap();
    let output = inferload(&[
        "compare",
        dir.to_str().unwrap(),
        dir.to_str().unwrap(),
        "--out",
        reports.path().to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    assert!(reports.path().join("compare.json").is_file());
}

#[test]
fn interval_files_match_summary() {
    let server = serve(&[
        "--latency",
        "fixed:1ms",
        "--routes",
        "baseline-predictor_1=70,enhanced-predictor_1=30",
    ]);
    let temp = tempfile::tempdir().unwrap();
    let text = format!(
        "{}warmup = \"1s\"\n\n[output]\ninterval = \"250ms\"\n",
        basic_scenario(&server.url)
    );
    let path = scenario(temp.path(), &text);
    let out = temp.path().join("out");
    let (output, summary) = run(&path, &out, &["--rate", "200/s", "--duration", "2s"]);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let summary = summary.expect("summary.json is written");
    assert_run_files_valid(&out);

    // 2 s measured in 250 ms intervals, plus the interval that straddles the warm-up's end and
    // those that collect the last responses.
    let intervals = assert_interval_files(&out, &summary, 1.0);
    assert!((8..=11).contains(&intervals), "{intervals} intervals");
    assert_compare_accepts(&out);
}

#[test]
fn sigint_leaves_partial_results() {
    let server = serve(&["--latency", "fixed:2ms"]);
    let temp = tempfile::tempdir().unwrap();
    let path = scenario(temp.path(), &basic_scenario(&server.url));
    let out = temp.path().join("out");
    let grace = Duration::from_secs(3);
    let child = spawn_run(
        &path,
        &out,
        &[
            "--rate",
            "200/s",
            "--duration",
            "30s",
            "--stop-grace",
            "3s",
            "--gate",
            "p99<1s",
            "--requests-csv",
        ],
    );
    // Half-way: 15 one-second intervals written.
    wait_for_intervals(&out, 15, Duration::from_secs(40));
    signal(&child, libc::SIGINT);
    // Requests take 2 ms, so the run ends well inside the grace time; the extra second covers
    // writing the files.
    let (output, elapsed) = wait_exit(child, grace + Duration::from_secs(5));
    assert!(
        elapsed < grace + Duration::from_secs(1),
        "exit took {elapsed:?}"
    );
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));

    let summary = assert_complete_results(&out);
    assert_eq!(summary["partial"], true);
    let measured = summary["load"]["measured_s"].as_f64().unwrap();
    assert!((15.0..18.0).contains(&measured), "measured {measured} s");
    assert_eq!(count_at(&summary, "/requests/in_flight_at_end"), 0);
    let sent = count_at(&summary, "/requests/sent");
    assert_eq!(sent, count_at(&summary, "/requests/ok"));
    let hlog = std::fs::read_to_string(out.join("histograms.hlog")).unwrap();
    assert!(hlog.contains("#[Partial"), "the hlog is not marked partial");
    // The interval files of the comparison hold the intervals measured before the stop.
    let intervals = assert_interval_files(&out, &summary, 0.0);
    assert!(intervals >= 15, "{intervals} intervals");
    assert_compare_accepts(&out);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("stopping"), "{stderr}");

    // `report` reads the partial folder back and reports that it is partial.
    let report = inferload(&["report", out.to_str().unwrap()]);
    assert_eq!(report.status.code(), Some(0), "{}", describe(&report));
    let text = String::from_utf8_lossy(&report.stdout);
    assert!(text.contains("PARTIAL: the run was interrupted"), "{text}");
}

#[test]
fn second_signal_stops_at_once() {
    // Every request takes 5 s, so the first signal waits for requests in flight and the second
    // must end the run before they finish.
    let server = serve(&["--latency", "fixed:5s"]);
    let temp = tempfile::tempdir().unwrap();
    let path = scenario(temp.path(), &basic_scenario(&server.url));
    let out = temp.path().join("out");
    let child = spawn_run(
        &path,
        &out,
        &[
            "--rate",
            "20/s",
            "--duration",
            "30s",
            "--timeout",
            "20s",
            "--stop-grace",
            "20s",
            "--requests-csv",
        ],
    );
    wait_for_intervals(&out, 2, Duration::from_secs(20));
    // Two different signals, so that the second is not merged with the first on delivery.
    signal(&child, libc::SIGTERM);
    signal(&child, libc::SIGINT);
    let (output, elapsed) = wait_exit(child, Duration::from_secs(10));
    assert!(elapsed < Duration::from_secs(2), "exit took {elapsed:?}");
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));

    let summary = assert_complete_results(&out);
    assert_eq!(summary["partial"], true);
    assert!(count_at(&summary, "/requests/in_flight_at_end") > 0);
    assert_eq!(count_at(&summary, "/requests/ok"), 0);
}
