//! Runs against `inferload serve --fault ...`: each run completes, every request is accounted
//! for under the right error kind, reconnects are counted, result files are valid, and
//! oversized bodies are not buffered.
//!
//! Request faults fire on every N-th infer request the target receives, and with one
//! connection the target receives requests in the order they were sent, so most counts below
//! are exact.

mod common;

use common::*;
use serde_json::Value;

fn count(summary: &Value, pointer: &str) -> u64 {
    summary
        .pointer(pointer)
        .and_then(Value::as_u64)
        .unwrap_or(0)
}

fn number(summary: &Value, pointer: &str) -> f64 {
    summary
        .pointer(pointer)
        .and_then(Value::as_f64)
        .unwrap_or_else(|| panic!("summary has no number at {pointer}: {summary}"))
}

/// Runs the basic scenario, with `target_extra` added to `[target]`, against
/// `inferload serve SERVE_ARGS`, and checks the accounting and the result files.
fn run_with_faults(serve_args: &[&str], target_extra: &str, args: &[&str]) -> Value {
    let server = serve(serve_args);
    let temp = tempfile::tempdir().unwrap();
    let text = basic_scenario(&server.url)
        .replace("model = \"m\"\n", &format!("model = \"m\"\n{target_extra}"));
    let path = scenario(temp.path(), &text);
    let out = temp.path().join("out");
    let (output, summary) = run(&path, &out, args);
    assert!(output.status.success(), "{}", describe(&output));
    let summary = summary.expect("summary.json written");
    assert_accounted(&summary);
    assert_run_files_valid(&out);
    assert_eq!(summary["partial"], false);
    summary
}

#[test]
fn reset_mid_response_counted() {
    let summary = run_with_faults(
        &["--fault", "reset-mid-response:every=50"],
        "",
        &["--rate", "200/s", "--duration", "1s", "--connections", "1"],
    );
    assert_eq!(count(&summary, "/requests/sent"), 200);
    assert_eq!(count(&summary, "/errors/by_kind/reset"), 4);
    assert_eq!(count(&summary, "/requests/ok"), 196);
    // The first connection, then one after each of the resets at requests 50, 100 and 150;
    // the reset at 200 ends the run.
    assert_eq!(count(&summary, "/connections_opened"), 4);
    assert_eq!(count(&summary, "/reconnects"), 3);
}

#[test]
fn close_after_reconnects() {
    let summary = run_with_faults(
        &["--fault", "close-after:5"],
        "",
        &[
            "--rate",
            "200/s",
            "--duration",
            "500ms",
            "--connections",
            "1",
        ],
    );
    assert_eq!(count(&summary, "/requests/ok"), 100);
    assert_eq!(count(&summary, "/requests/errors"), 0);
    // Responses 5, 10, ..., 95 close the connection and the next request opens another.
    assert_eq!(count(&summary, "/connections_opened"), 20);
    assert_eq!(count(&summary, "/reconnects"), 19);
}

#[test]
fn burst_5xx_counted() {
    let summary = run_with_faults(
        &["--fault", "burst-5xx:every=100,len=10"],
        "",
        &["--rate", "300/s", "--duration", "1s", "--connections", "1"],
    );
    assert_eq!(count(&summary, "/errors/by_kind/http_5xx"), 30);
    assert_eq!(count(&summary, "/errors/status_codes/503"), 30);
    assert_eq!(count(&summary, "/requests/ok"), 270);
    // A 5xx with a complete body keeps the connection.
    assert_eq!(count(&summary, "/connections_opened"), 1);
    assert_eq!(count(&summary, "/reconnects"), 0);
    let top = summary["errors"]["top_bodies"][0]["body"].as_str().unwrap();
    assert!(top.contains("simulated burst of 503"), "{top}");
}

#[test]
fn truncated_json_is_invalid_response() {
    let summary = run_with_faults(
        &["--fault", "truncated:every=10"],
        "",
        &[
            "--rate",
            "200/s",
            "--duration",
            "500ms",
            "--connections",
            "1",
        ],
    );
    assert_eq!(count(&summary, "/errors/by_kind/invalid_response"), 10);
    assert_eq!(count(&summary, "/requests/ok"), 90);
}

#[test]
fn non_json_body_is_invalid_response() {
    let summary = run_with_faults(
        &["--fault", "non-json:every=4"],
        "",
        &[
            "--rate",
            "200/s",
            "--duration",
            "500ms",
            "--connections",
            "1",
        ],
    );
    assert_eq!(count(&summary, "/errors/by_kind/invalid_response"), 25);
    assert_eq!(count(&summary, "/requests/ok"), 75);
}

#[test]
fn html_413_is_http_4xx() {
    let summary = run_with_faults(
        &["--fault", "http-413:every=5"],
        "",
        &[
            "--rate",
            "200/s",
            "--duration",
            "500ms",
            "--connections",
            "1",
        ],
    );
    assert_eq!(count(&summary, "/errors/by_kind/http_4xx"), 20);
    assert_eq!(count(&summary, "/errors/status_codes/413"), 20);
    let top = summary["errors"]["top_bodies"][0]["body"].as_str().unwrap();
    assert!(top.starts_with("413: <html>"), "{top}");
    assert!(top.contains("Request Entity Too Large"), "{top}");
}

#[test]
fn stall_past_timeout_is_timeout() {
    let summary = run_with_faults(
        &["--fault", "stall:every=20,for=3s"],
        "",
        &[
            "--rate",
            "100/s",
            "--duration",
            "1s",
            "--connections",
            "4",
            "--timeout",
            "300ms",
        ],
    );
    assert_eq!(count(&summary, "/errors/by_kind/timeout"), 5);
    assert_eq!(count(&summary, "/requests/ok"), 95);
}

#[test]
fn slow_body_is_slow_not_failed() {
    // 16-byte pieces 5 ms apart: the ~140-byte reply takes at least 9 pieces, 45 ms.
    let summary = run_with_faults(
        &["--fault", "slow-body:every=10,chunk=16,delay=5ms"],
        "",
        &["--rate", "100/s", "--duration", "1s", "--connections", "8"],
    );
    assert_eq!(count(&summary, "/requests/ok"), 100);
    let max = number(&summary, "/service_time_ms/max");
    let p50 = number(&summary, "/service_time_ms/p50");
    assert!(max >= 45.0, "service time max {max} ms");
    assert!(p50 < 10.0, "service time p50 {p50} ms");
}

#[test]
fn declared_oversized_body_rejected() {
    let summary = run_with_faults(
        &["--fault", "oversized:every=10,size=64MiB"],
        "max_response_body = \"64KiB\"\n",
        &["--rate", "100/s", "--duration", "1s", "--connections", "1"],
    );
    assert_eq!(count(&summary, "/errors/by_kind/body_too_large"), 10);
    assert_eq!(count(&summary, "/requests/ok"), 90);
}

/// Runs `inferload` to completion and returns its exit status and peak resident set in KiB.
fn run_measuring_peak_rss(args: &[&std::ffi::OsStr]) -> (i32, i64) {
    let child = std::process::Command::new(bin())
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .unwrap();
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: rusage is plain data that wait4 fills in; the pid is our own unreaped child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(
        reaped,
        pid,
        "wait4 failed: {}",
        std::io::Error::last_os_error()
    );
    std::mem::forget(child);
    (libc::WEXITSTATUS(status), usage.ru_maxrss)
}

#[test]
fn streamed_oversized_body_not_buffered() {
    // Twenty 512 MiB bodies without a Content-Length: the client must stop at 1 MiB each.
    // Buffering even one would raise the peak resident set past 512 MiB; this run stays
    // near the ~10-20 MiB of a run without faults.
    let server = serve(&["--fault", "oversized:every=5,size=512MiB,declared=false"]);
    let temp = tempfile::tempdir().unwrap();
    let text = basic_scenario(&server.url).replace(
        "model = \"m\"\n",
        "model = \"m\"\nmax_response_body = \"1MiB\"\n",
    );
    let path = scenario(temp.path(), &text);
    let out = temp.path().join("out");
    let (status, peak_kib) = run_measuring_peak_rss(&[
        "run".as_ref(),
        path.as_os_str(),
        "--out".as_ref(),
        out.as_os_str(),
        "-q".as_ref(),
        "--rate".as_ref(),
        "100/s".as_ref(),
        "--duration".as_ref(),
        "1s".as_ref(),
        "--connections".as_ref(),
        "1".as_ref(),
    ]);
    assert_eq!(status, 0);
    let summary: Value =
        serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    assert_accounted(&summary);
    assert_eq!(count(&summary, "/errors/by_kind/body_too_large"), 20);
    assert_eq!(count(&summary, "/requests/ok"), 80);
    assert!(peak_kib < 128 * 1024, "peak RSS {peak_kib} KiB");
}

#[test]
fn accept_reset_counted() {
    // Connections 2, 4, 6, ... are reset when accepted; every connection closes after 10
    // responses. So each cycle is 10 successes on one connection and one reset on the next.
    let summary = run_with_faults(
        &["--fault", "accept-reset:2", "--fault", "close-after:10"],
        "preflight = false\n",
        &[
            "--rate",
            "220/s",
            "--duration",
            "500ms",
            "--connections",
            "1",
        ],
    );
    assert_eq!(count(&summary, "/requests/sent"), 110);
    assert_eq!(count(&summary, "/requests/ok"), 100);
    assert_eq!(count(&summary, "/errors/by_kind/reset"), 10);
    // Ten connections served ten requests each. A reset connection counts as opened only when
    // the reset arrived after the connect call returned, which varies from run to run.
    let opened = count(&summary, "/connections_opened");
    assert!((10..=20).contains(&opened), "connections_opened {opened}");
}

#[test]
fn in_flight_capped_at_max() {
    // Every request stalls 400 ms and at most 4 may be in flight, with the drop policy: each
    // slot starts a request at most at 0, 0.4 and 0.8 s, so at most 12 of the 100 due go out.
    let server = serve(&["--fault", "stall:every=1,for=400ms"]);
    let temp = tempfile::tempdir().unwrap();
    let text = basic_scenario(&server.url) + "max_in_flight = 4\nat_cap = \"drop\"\n";
    let path = scenario(temp.path(), &text);
    let out = temp.path().join("out");
    let (output, summary) = run(&path, &out, &["--rate", "100/s", "--duration", "1s"]);
    assert!(output.status.success(), "{}", describe(&output));
    let summary = summary.expect("summary.json written");
    assert_accounted(&summary);
    let sent = count(&summary, "/requests/sent");
    let dropped = count(&summary, "/requests/dropped");
    assert_eq!(sent + dropped, 100, "{summary}");
    assert!((4..=12).contains(&sent), "sent {sent}");
    assert_eq!(count(&summary, "/requests/ok"), sent);
}

#[test]
fn target_down_window_then_recovers() {
    // At request 100 (1 s into the run at 100/s) the target closes its listener and every
    // connection for one second: requests then fail (reset for those in flight,
    // connect_refused after), and succeed again once it listens.
    let summary = run_with_faults(
        &["--fault", "down:at=100,for=1s"],
        "",
        &["--rate", "100/s", "--duration", "3s", "--connections", "4"],
    );
    assert_eq!(count(&summary, "/requests/sent"), 300);
    let refused = count(&summary, "/errors/by_kind/connect_refused");
    let ok = count(&summary, "/requests/ok");
    // About 100 requests fall in the window; some lanes retry faster than the schedule.
    assert!(refused >= 50, "connect_refused {refused}: {summary}");
    assert!(ok >= 150, "ok {ok}: {summary}");
    assert!(count(&summary, "/connections_opened") > 4);
}

#[test]
fn killed_target_run_finishes() {
    // The target process exits at its 150th infer request, half way through the run: the run
    // still ends on schedule with every request accounted for and every file written.
    let server = serve(&["--fault", "crash:at=150"]);
    let temp = tempfile::tempdir().unwrap();
    let path = scenario(temp.path(), &basic_scenario(&server.url));
    let out = temp.path().join("out");
    let (output, summary) = run(
        &path,
        &out,
        &["--rate", "100/s", "--duration", "3s", "--connections", "1"],
    );
    assert!(output.status.success(), "{}", describe(&output));
    let summary = summary.expect("summary.json written");
    assert_accounted(&summary);
    assert_run_files_valid(&out);
    assert_eq!(count(&summary, "/requests/sent"), 300);
    assert_eq!(count(&summary, "/requests/ok"), 149);
    // Request 150 is cut off by the exit; the 150 after it find no listener.
    assert_eq!(count(&summary, "/errors/by_kind/reset"), 1, "{summary}");
    assert_eq!(
        count(&summary, "/errors/by_kind/connect_refused"),
        150,
        "{summary}"
    );
}
