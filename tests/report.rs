//! `inferload report DIR`: the summary printed again from a saved folder matches what the run,
//! sweep or comparison printed, and folders that are not complete results exit 2.

mod common;

use std::path::Path;

use common::*;

/// Returns a scenario with routes, an expected split and the simulated chain's hops, so that
/// every table of the console summary is printed.
fn full_scenario(url: &str) -> String {
    format!(
        r#"
[target]
url = "{url}"
model = "m"

[payload]
file = "payloads/quickstart.json"

[load]
rate = "100/s"
duration = "2s"
warmup = "500ms"

[routes]
expected = {{ a = 70, b = 30 }}

[[hops]]
name = "ingress"
header = "x-nginx-request-time"
format = "seconds"

[[hops]]
name = "model-server"
header = "x-envoy-upstream-service-time"
format = "milliseconds"
"#
    )
}

fn report(dir: &Path) -> std::process::Output {
    inferload(&["report", dir.to_str().unwrap()])
}

fn stdout(output: &std::process::Output) -> String {
    String::from_utf8(output.stdout.clone()).expect("stdout is UTF-8")
}

#[test]
fn report_repeats_run_output() {
    let server = serve(&[
        "--latency",
        "fixed:2ms",
        "--hop-headers",
        "--routes",
        "a_1=70,b_1=30",
    ]);
    let temp = tempfile::tempdir().unwrap();
    let path = scenario(temp.path(), &full_scenario(&server.url));
    let out = temp.path().join("out");
    let (run_output, summary) = run(&path, &out, &["--gate", "p99<1ms", "--gate", "p99<1s"]);
    assert_eq!(
        run_output.status.code(),
        Some(3),
        "{}",
        describe(&run_output)
    );
    let printed = stdout(&run_output);
    for table in ["route", "split", "breakdown ms", "gate", "FAILED"] {
        assert!(
            printed.contains(table),
            "the run printed no {table}: {printed}"
        );
    }

    let output = report(&out);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    assert_eq!(stdout(&output), printed);

    // summary.md has the split and breakdown tables, with the figures of summary.json.
    let summary = summary.expect("summary.json written");
    let markdown = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(
        markdown.contains("| split | expected | observed |"),
        "{markdown}"
    );
    for (label, route) in summary["split_test"]["routes"].as_object().unwrap() {
        let row = format!(
            "| {label} | {:.2}% | {:.2}% |",
            route["expected_share"].as_f64().unwrap() * 100.0,
            route["observed_share"].as_f64().unwrap() * 100.0
        );
        assert!(markdown.contains(&row), "no {row} in {markdown}");
    }
    assert!(markdown.contains("| breakdown | p50 ms |"), "{markdown}");
    for name in ["ingress", "model-server"] {
        let hop = &summary["hops"][name]["latency_ms"];
        let row = format!(
            "| {name} | {:.3} | {:.3} | {:.3} |",
            hop["p50"].as_f64().unwrap(),
            hop["p95"].as_f64().unwrap(),
            hop["mean"].as_f64().unwrap()
        );
        assert!(markdown.contains(&row), "no {row} in {markdown}");
    }
}

#[test]
fn report_after_compare_adds_comparison() {
    let server = serve(&["--latency", "fixed:2ms"]);
    let temp = tempfile::tempdir().unwrap();
    let path = scenario(temp.path(), &basic_scenario(&server.url));
    let old = temp.path().join("old");
    let new = temp.path().join("new");
    let (old_output, _) = run(&path, &old, &["--duration", "3s"]);
    assert!(old_output.status.success(), "{}", describe(&old_output));
    let (new_output, _) = run(&path, &new, &["--duration", "3s"]);
    assert!(new_output.status.success(), "{}", describe(&new_output));

    // A folder written by `compare --out` holds only the comparison.
    let reports = temp.path().join("reports");
    std::fs::create_dir_all(&reports).unwrap();
    let args = |out: Option<&Path>| {
        let mut args = vec![
            "compare".to_string(),
            old.display().to_string(),
            new.display().to_string(),
        ];
        if let Some(out) = out {
            args.extend(["--out".to_string(), out.display().to_string()]);
        }
        args
    };
    let compare = |out: Option<&Path>| {
        let args = args(out);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let output = inferload(&args);
        assert!(
            matches!(output.status.code(), Some(0) | Some(3)),
            "{}",
            describe(&output)
        );
        stdout(&output)
    };
    let compared = compare(Some(&reports));
    let output = report(&reports);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    assert_eq!(stdout(&output), compared);

    // Without --out the comparison lands in the new run's folder, and its report prints the
    // run's summary followed by the comparison.
    let compared = compare(None);
    let comparison = compared
        .strip_suffix(&format!("reports: {}\n", new.join("compare.md").display()))
        .expect("compare ends with the reports line");
    let run_summary = stdout(&new_output);
    let results_line = format!("\nresults: {}\n", new.display());
    let run_summary = run_summary
        .strip_suffix(&results_line)
        .expect("run ends with the results line");
    let output = report(&new);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    assert_eq!(
        stdout(&output),
        format!("{run_summary}{comparison}{results_line}")
    );
}

#[test]
fn report_repeats_sweep_output() {
    let server = serve(&["--latency", "fixed:2ms"]);
    let temp = tempfile::tempdir().unwrap();
    let path = scenario(temp.path(), &basic_scenario(&server.url));
    let out = temp.path().join("sweep");
    let output = inferload(&[
        "sweep",
        path.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "-q",
        "--slo",
        "p99<1s",
        "--rates",
        "50",
        "--step-warmup",
        "1s",
        "--window",
        "1s",
        "--max-windows",
        "2",
    ]);
    assert!(
        matches!(output.status.code(), Some(0) | Some(3)),
        "{}",
        describe(&output)
    );
    let printed = stdout(&output);
    assert!(printed.contains("sweep of"), "{printed}");

    let reported = report(&out);
    assert_eq!(reported.status.code(), Some(0), "{}", describe(&reported));
    assert_eq!(stdout(&reported), printed);

    std::fs::remove_file(out.join("steps.csv")).unwrap();
    let reported = report(&out);
    assert_eq!(reported.status.code(), Some(2), "{}", describe(&reported));
    let stderr = String::from_utf8_lossy(&reported.stderr);
    assert!(stderr.contains("steps.csv"), "{stderr}");
}

/// Copies the files of `from` into a new folder `to`.
fn copy_folder(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

#[test]
fn incomplete_folders_exit_2() {
    let server = serve(&["--latency", "fixed:1ms"]);
    let temp = tempfile::tempdir().unwrap();
    let path = scenario(temp.path(), &basic_scenario(&server.url));
    let good = temp.path().join("good");
    let (output, _) = run(&path, &good, &[]);
    assert!(output.status.success(), "{}", describe(&output));

    type Damage = fn(&Path);
    let cases: [(&str, Damage, &str); 8] = [
        (
            "absent",
            |dir| std::fs::remove_dir_all(dir).unwrap(),
            "not a readable folder",
        ),
        (
            "empty",
            |dir| {
                for entry in std::fs::read_dir(dir).unwrap() {
                    std::fs::remove_file(entry.unwrap().path()).unwrap();
                }
            },
            "has no summary.json",
        ),
        (
            "no-hlog",
            |dir| std::fs::remove_file(dir.join("histograms.hlog")).unwrap(),
            "missing histograms.hlog",
        ),
        (
            "no-junit",
            |dir| std::fs::remove_file(dir.join("junit.xml")).unwrap(),
            "missing junit.xml",
        ),
        (
            "bad-json",
            |dir| std::fs::write(dir.join("summary.json"), "{\"schema_version\": 1,").unwrap(),
            "summary.json: not JSON",
        ),
        (
            "new-schema",
            |dir| {
                let text = std::fs::read_to_string(dir.join("summary.json")).unwrap();
                let text = text.replacen("\"schema_version\": 1", "\"schema_version\": 99", 1);
                std::fs::write(dir.join("summary.json"), text).unwrap();
            },
            "schema_version 99",
        ),
        (
            "short-intervals",
            |dir| {
                // Drops the last interval row, so the rows no longer add up to the summary.
                let text = std::fs::read_to_string(dir.join("intervals.csv")).unwrap();
                let mut lines: Vec<&str> = text.lines().collect();
                lines.pop();
                std::fs::write(dir.join("intervals.csv"), lines.join("\n") + "\n").unwrap();
            },
            "intervals.csv: its rows add up to",
        ),
        (
            "truncated-hlog",
            |dir| {
                // Drops the first interval's latency histogram, which contains requests.
                let text = std::fs::read_to_string(dir.join("histograms.hlog")).unwrap();
                let mut lines: Vec<&str> = text.lines().collect();
                let first = lines
                    .iter()
                    .position(|l| l.starts_with("Tag=latency,"))
                    .expect("the hlog has a latency histogram");
                lines.remove(first);
                std::fs::write(dir.join("histograms.hlog"), lines.join("\n") + "\n").unwrap();
            },
            "histograms.hlog: its histograms count",
        ),
    ];
    for (name, damage, expected) in cases {
        let dir = temp.path().join(name);
        copy_folder(&good, &dir);
        damage(&dir);
        let output = report(&dir);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{name}: {}",
            describe(&output)
        );
        assert!(output.stdout.is_empty(), "{name}: {}", describe(&output));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(expected), "{name}: {stderr}");
        assert!(
            stderr.contains(&dir.display().to_string()),
            "{name} does not name the folder: {stderr}"
        );
    }
}
