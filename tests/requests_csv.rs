//! `requests.csv`: one row per completed request, whose times reproduce the summary's counts
//! and percentiles when computed from the rows alone.

mod common;

use std::collections::BTreeMap;

use common::*;
use inferload::stats::request_log::RequestRow;

/// Returns the exact percentile of sorted samples, in milliseconds: the smallest value with at least
/// q*N samples at or below it, the rank rule of the histograms.
fn percentile_ms(sorted: &[u64], quantile: f64) -> f64 {
    let rank = ((quantile * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1] as f64 / 1000.0
}

/// Checks a summary percentile block against the exact percentiles of `values` (microseconds).
fn assert_percentiles(name: &str, block: &serde_json::Value, mut values: Vec<u64>) {
    values.sort_unstable();
    assert_eq!(block["count"].as_u64(), Some(values.len() as u64), "{name}");
    for (key, quantile) in [("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("p999", 0.999)] {
        let reported = block[key].as_f64().unwrap();
        let exact = percentile_ms(&values, quantile);
        // 3 significant digits: a histogram value is at most 0.1% above the sample it stands
        // for, plus the rounding of microseconds.
        let tolerance = exact * 0.001 + 0.001;
        assert!(
            (reported - exact).abs() <= tolerance,
            "{name}.{key}: summary {reported} ms, rows {exact} ms"
        );
    }
    let max = *values.last().unwrap() as f64 / 1000.0;
    let reported = block["max"].as_f64().unwrap();
    assert!((reported - max).abs() <= max * 0.001 + 0.001, "{name}.max");
}

#[test]
fn rows_reproduce_summary() {
    let server = serve(&["--latency", "fixed:2ms", "--routes", "a_1=70,b_1=30"]);
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
            "500ms",
            "--requests-csv",
        ],
    );
    assert!(output.status.success(), "{}", describe(&output));
    let summary = summary.expect("summary.json written");

    let mut reader = csv::Reader::from_path(out.join("requests.csv")).unwrap();
    let rows: Vec<RequestRow> = reader
        .deserialize()
        .collect::<Result<_, _>>()
        .expect("every requests.csv row parses");
    let requests = &summary["requests"];
    let count = |key: &str| requests[key].as_u64().unwrap();
    assert_eq!(
        summary["requests_csv"]["rows"].as_u64(),
        Some(rows.len() as u64)
    );
    assert_eq!(summary["requests_csv"]["dropped"].as_u64(), Some(0));

    // Every request completed, so every due request has a row: 100 warm-up, 600 measured.
    let (warmup, measured): (Vec<&RequestRow>, Vec<&RequestRow>) =
        rows.iter().partition(|row| row.warmup);
    assert_eq!(measured.len() as u64, count("ok") + count("errors"));
    assert_eq!(measured.len(), 600);
    assert_eq!(
        warmup.len() as u64,
        count("warmup_ok") + count("warmup_errors")
    );
    assert_eq!(warmup.len(), 100);

    // A constant 200 req/s schedule is due every 5 ms from the start of the load.
    let mut intended: Vec<u64> = rows.iter().map(|row| row.intended_us).collect();
    intended.sort_unstable();
    let schedule: Vec<u64> = (0..700).map(|n| n * 5000).collect();
    assert_eq!(intended, schedule);
    for row in &rows {
        assert!(row.sent_us >= row.intended_us, "{row:?}");
        assert!(row.service_us <= row.latency_us, "{row:?}");
        assert_eq!(row.outcome, "ok", "{row:?}");
        assert_eq!(row.status, Some(200), "{row:?}");
    }

    let ok: Vec<&&RequestRow> = measured.iter().filter(|row| row.outcome == "ok").collect();
    assert_percentiles(
        "latency_ms",
        &summary["latency_ms"],
        ok.iter().map(|row| row.latency_us).collect(),
    );
    assert_percentiles(
        "service_time_ms",
        &summary["service_time_ms"],
        ok.iter().map(|row| row.service_us).collect(),
    );

    let mut routes: BTreeMap<String, u64> = BTreeMap::new();
    for row in &ok {
        let label = row
            .route
            .as_deref()
            .expect("a successful response has a route");
        *routes.entry(label.to_string()).or_default() += 1;
    }
    let reported: BTreeMap<String, u64> = summary["routes"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(label, route)| (label.clone(), route["count"].as_u64().unwrap()))
        .collect();
    assert_eq!(routes, reported);

    // The folder reads back, and `report` checks the row count against the summary.
    let report = inferload(&["report", out.to_str().unwrap()]);
    assert_eq!(report.status.code(), Some(0), "{}", describe(&report));
    let text = std::fs::read_to_string(out.join("requests.csv")).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    lines.pop();
    std::fs::write(out.join("requests.csv"), lines.join("\n") + "\n").unwrap();
    let report = inferload(&["report", out.to_str().unwrap()]);
    assert_eq!(report.status.code(), Some(2), "{}", describe(&report));
    let stderr = String::from_utf8_lossy(&report.stderr);
    assert!(stderr.contains("requests.csv: 699 rows"), "{stderr}");
}

#[test]
fn requests_csv_off_by_default() {
    let server = serve(&["--latency", "fixed:1ms"]);
    let temp = tempfile::tempdir().unwrap();
    let path = scenario(temp.path(), &basic_scenario(&server.url));
    let out = temp.path().join("out");
    let (output, summary) = run(&path, &out, &[]);
    assert!(output.status.success(), "{}", describe(&output));
    assert!(summary.unwrap()["requests_csv"].is_null());
    assert!(!out.join("requests.csv").exists());

    // The scenario key turns it on as the flag does.
    let text = basic_scenario(&server.url) + "\n[output]\nrequests_csv = true\n";
    let path = scenario(temp.path(), &text);
    let out = temp.path().join("on");
    let (output, summary) = run(&path, &out, &[]);
    assert!(output.status.success(), "{}", describe(&output));
    assert_eq!(summary.unwrap()["requests_csv"]["rows"], 100);
    let text = std::fs::read_to_string(out.join("requests.csv")).unwrap();
    assert_eq!(text.lines().count(), 101);
    assert!(text.starts_with("warmup,intended_us,sent_us,latency_us,service_us,outcome,"));
}
