//! Live progress when stderr is not a terminal: one plain line every 5 intervals, none with
//! `--quiet`. The bar itself is tested in `src/report/progress.rs` on an in-memory terminal.

mod common;

use std::process::{Command, Output};

use common::*;

/// Runs `inferload run` with stderr piped (not a terminal) and returns its output.
fn run_piped(scenario: &std::path::Path, out: &std::path::Path, args: &[&str]) -> Output {
    Command::new(bin())
        .arg("run")
        .arg(scenario)
        .arg("--out")
        .arg(out)
        .args(args)
        .output()
        .expect("inferload runs")
}

/// Returns the progress lines of a run's stderr.
fn progress_lines(output: &Output) -> Vec<String> {
    String::from_utf8_lossy(&output.stderr)
        .lines()
        .filter(|line| line.contains(" req/s, in flight "))
        .map(str::to_string)
        .collect()
}

#[test]
fn plain_lines_follow_run_length() {
    let server = serve(&["--latency", "fixed:1ms"]);
    let temp = tempfile::tempdir().unwrap();
    let text = basic_scenario(&server.url) + "\n[output]\ninterval = \"200ms\"\n";
    let path = scenario(temp.path(), &text);

    // 3 s of 200 ms intervals is 15 full intervals: a line after the 5th, 10th and 15th. The
    // last, shorter interval (the 16th) prints none.
    let (duration_ms, interval_ms, every) = (3000, 200, 5);
    let output = run_piped(&path, &temp.path().join("loud"), &["--duration", "3s"]);
    assert!(output.status.success(), "{}", describe(&output));
    let lines = progress_lines(&output);
    assert_eq!(
        lines.len(),
        duration_ms / interval_ms / every,
        "{}",
        describe(&output)
    );
    for line in &lines {
        assert!(line.starts_with('['), "{line}");
        assert!(line.contains("p99 "), "{line}");
        assert!(line.contains("errors 0"), "{line}");
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("requests  sent 300"), "{stdout}");

    let output = run_piped(
        &path,
        &temp.path().join("quiet"),
        &["--duration", "3s", "--quiet"],
    );
    assert!(output.status.success(), "{}", describe(&output));
    assert_eq!(progress_lines(&output), Vec::<String>::new());
    assert!(output.stderr.is_empty(), "{}", describe(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("requests  sent 300"), "{stdout}");
}
