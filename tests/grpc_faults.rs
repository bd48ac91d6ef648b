//! gRPC runs against `inferload serve --fault ...`: each run completes, every call is
//! accounted for under the right error kind and gRPC status, connections closed by GOAWAY are
//! replaced and counted, and the result files are valid.
//!
//! Request faults fire on every N-th infer call the target receives. Calls may reach the
//! target out of order when several are in flight, but the number of faulted calls in a run
//! of M calls is still exactly M / N.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::*;
use serde_json::Value;

fn count(summary: &Value, pointer: &str) -> u64 {
    summary
        .pointer(pointer)
        .and_then(Value::as_u64)
        .unwrap_or(0)
}

/// Writes a gRPC scenario against `url` with the financial request (shape [1, 10, 35]).
fn grpc_scenario(dir: &Path, url: &str, extra_target: &str) -> PathBuf {
    std::fs::copy(
        repo().join("scenarios/payloads/financial-1x10x35.json"),
        dir.join("financial.json"),
    )
    .unwrap();
    let text = format!(
        r#"
[target]
url = "{url}"
model = "m"
transport = "grpc"
{extra_target}

[payload]
file = "financial.json"

[load]
rate = "100/s"
duration = "1s"
connections = 1
"#
    );
    let path = dir.join("scenario.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Runs a gRPC scenario against `url` and checks the accounting and the result files.
fn run_grpc(url: &str, extra_target: &str, args: &[&str]) -> Value {
    let temp = tempfile::tempdir().unwrap();
    let path = grpc_scenario(temp.path(), url, extra_target);
    let out = temp.path().join("out");
    let (output, summary) = run(&path, &out, args);
    assert!(output.status.success(), "{}", describe(&output));
    let summary = summary.expect("summary.json written");
    assert_accounted(&summary);
    assert_run_files_valid(&out);
    assert_eq!(summary["partial"], false);
    assert_eq!(summary["target"]["transport"], "grpc");
    summary
}

#[test]
fn trailers_only_errors_counted_by_status() {
    // Calls 10, 20, ..., 100 fail with UNAVAILABLE; calls 25 and 75 with RESOURCE_EXHAUSTED
    // (50 and 100 are multiples of 10, and the first fault listed wins).
    let server = serve(&[
        "--routes",
        "a_1=1",
        "--fault",
        "grpc-error:every=10,code=unavailable",
        "--fault",
        "grpc-error:every=25,code=RESOURCE_EXHAUSTED",
    ]);
    let summary = run_grpc(&server.url, "", &["--rate", "200/s", "--duration", "500ms"]);
    assert_eq!(count(&summary, "/requests/sent"), 100, "{summary}");
    assert_eq!(count(&summary, "/requests/ok"), 88, "{summary}");
    assert_eq!(count(&summary, "/errors/by_kind/grpc_unavailable"), 10);
    assert_eq!(
        count(&summary, "/errors/by_kind/grpc_resource_exhausted"),
        2
    );
    assert_eq!(count(&summary, "/errors/grpc_status_codes/UNAVAILABLE"), 10);
    assert_eq!(
        count(&summary, "/errors/grpc_status_codes/RESOURCE_EXHAUSTED"),
        2
    );
    let codes = summary["errors"]["grpc_status_codes"].as_object().unwrap();
    assert_eq!(codes.len(), 2, "{codes:?}");
    // A trailers-only reply carries the route header in its trailers: it is still counted.
    assert_eq!(count(&summary, "/routes/a_1/errors"), 12, "{summary}");
    assert_eq!(count(&summary, "/routes/a_1/count"), 88, "{summary}");
    // A gRPC error keeps the connection.
    assert_eq!(count(&summary, "/connections_opened"), 1);
    assert_eq!(count(&summary, "/reconnects"), 0);
    let top = summary["errors"]["top_bodies"][0]["body"].as_str().unwrap();
    assert!(
        top.contains("UNAVAILABLE") || top.contains("Unavailable"),
        "{top}"
    );
}

#[test]
fn goaway_connections_replaced_without_errors() {
    // After every 10th response of a connection the target sends GOAWAY and lets the calls in
    // flight finish. The client opens a new connection; a call that the closing connection
    // did not take goes out again on the new one, so no call fails. At 1000 calls/s with 2 ms
    // of service time several calls are in flight when a GOAWAY arrives: in three runs, 37 to
    // 41 of the 500 calls took the second attempt (`RUST_LOG=inferload=debug` logs each).
    let server = serve(&["--fault", "goaway:every=10", "--latency", "fixed:2ms"]);
    let summary = run_grpc(
        &server.url,
        "",
        &["--rate", "1000/s", "--duration", "500ms"],
    );
    assert_eq!(count(&summary, "/requests/sent"), 500);
    assert_eq!(count(&summary, "/requests/ok"), 500, "{summary}");
    assert_eq!(count(&summary, "/requests/errors"), 0, "{summary}");
    let opened = count(&summary, "/connections_opened");
    let reconnects = count(&summary, "/reconnects");
    // One connection slot: every connection after the first replaced one.
    assert_eq!(reconnects, opened - 1, "{summary}");
    // Each connection serves at least 10 calls before its GOAWAY (more when calls were
    // already on their way), so 500 calls need at most 50 connections; at least one GOAWAY
    // came before the last call.
    assert!((1..=49).contains(&reconnects), "reconnects {reconnects}");
}

#[test]
fn goaway_mixed_with_errors_and_stalls() {
    // Faults mix: GOAWAY every 7 responses, UNAVAILABLE every 10th call, a 50 ms stall every
    // 9th call; four connections share the calls.
    let server = serve(&[
        "--fault",
        "goaway:every=7",
        "--fault",
        "grpc-error:every=10",
        "--fault",
        "stall:every=9,for=50ms",
    ]);
    let summary = run_grpc(
        &server.url,
        "",
        &["--rate", "200/s", "--duration", "1s", "--connections", "4"],
    );
    assert_eq!(count(&summary, "/requests/sent"), 200);
    // Calls 10, 20, ..., 200 fail; 90 and 180 are multiples of 9 but the error is listed
    // first.
    assert_eq!(count(&summary, "/errors/by_kind/grpc_unavailable"), 20);
    assert_eq!(count(&summary, "/errors/grpc_status_codes/UNAVAILABLE"), 20);
    assert_eq!(count(&summary, "/requests/errors"), 20, "{summary}");
    assert_eq!(count(&summary, "/requests/ok"), 180, "{summary}");
    assert!(count(&summary, "/reconnects") >= 4, "{summary}");
    let max = summary["service_time_ms"]["max"].as_f64().unwrap();
    assert!(
        max >= 50.0,
        "stalled calls take 50 ms or more, max {max} ms"
    );
}

#[test]
fn stall_past_deadline_is_timeout() {
    let server = serve(&["--fault", "stall:every=20,for=3s"]);
    let summary = run_grpc(
        &server.url,
        "",
        &["--connections", "2", "--timeout", "300ms"],
    );
    assert_eq!(count(&summary, "/requests/sent"), 100);
    // The client gives up at its deadline; a server that honours grpc-timeout may answer
    // DEADLINE_EXCEEDED first.
    let timeouts = count(&summary, "/errors/by_kind/timeout")
        + count(&summary, "/errors/by_kind/grpc_deadline_exceeded");
    assert_eq!(timeouts, 5, "{summary}");
    assert_eq!(count(&summary, "/requests/ok"), 95, "{summary}");
}

/// An `inferload serve` process with a second, gRPC-only address; killed on drop.
struct TwoAddressServer {
    child: std::process::Child,
    grpc_url: String,
}

impl Drop for TwoAddressServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve_with_grpc_addr(args: &[&str]) -> TwoAddressServer {
    let mut child = Command::new(bin())
        .args([
            "serve",
            "--addr",
            "127.0.0.1:0",
            "--grpc-addr",
            "127.0.0.1:0",
        ])
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    let mut lines = [String::new(), String::new()];
    for line in &mut lines {
        reader.read_line(line).unwrap();
    }
    let grpc_url = lines[1].trim().rsplit(' ').next().unwrap().to_string();
    assert!(grpc_url.starts_with("http://127.0.0.1:"), "{lines:?}");
    TwoAddressServer { child, grpc_url }
}

#[test]
fn down_closes_grpc_listener_too() {
    // At call 100 (1 s into the run) the target closes both listeners and every connection for
    // one second. The run goes to the --grpc-addr listener, so calls in the window fail there
    // too, and succeed again once it listens.
    let server = serve_with_grpc_addr(&["--fault", "down:at=100,for=1s"]);
    let summary = run_grpc(
        &server.grpc_url,
        "",
        &["--duration", "3s", "--connections", "2"],
    );
    assert_eq!(count(&summary, "/requests/sent"), 300);
    let refused = count(&summary, "/errors/by_kind/connect_refused");
    let ok = count(&summary, "/requests/ok");
    // About 100 calls fall in the window; lanes may retry faster than the schedule.
    assert!(refused >= 50, "connect_refused {refused}: {summary}");
    assert!(ok >= 150, "ok {ok}: {summary}");
    // Both connections were lost and replaced after the outage.
    assert!(count(&summary, "/reconnects") >= 2, "{summary}");
}

#[test]
fn crashed_target_run_finishes() {
    // The target process exits at its 150th call: the run still ends on schedule with every
    // call accounted for and every file written.
    let server = serve(&["--fault", "crash:at=150"]);
    let summary = run_grpc(&server.url, "", &["--duration", "3s"]);
    assert_eq!(count(&summary, "/requests/sent"), 300);
    assert_eq!(count(&summary, "/requests/ok"), 149, "{summary}");
    assert_eq!(count(&summary, "/requests/errors"), 151, "{summary}");
    // Calls after the exit find no listener.
    assert!(
        count(&summary, "/errors/by_kind/connect_refused") >= 149,
        "{summary}"
    );
}
