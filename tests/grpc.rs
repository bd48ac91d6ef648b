//! The gRPC transport against `inferload serve`: route labels from initial metadata and from
//! trailers, gRPC status codes counted by kind, preflight over gRPC, `--grpc-addr`.

mod common;

use std::path::Path;

use common::*;

fn u64_at(summary: &serde_json::Value, pointer: &str) -> u64 {
    summary
        .pointer(pointer)
        .and_then(serde_json::Value::as_u64)
        .unwrap_or_else(|| panic!("{pointer} missing in {summary}"))
}

fn grpc_scenario(dir: &Path, url: &str, extra_target: &str) -> std::path::PathBuf {
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
connections = 2
"#
    );
    let path = dir.join("scenario.toml");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn routes_read_from_initial_metadata() {
    let server = serve(&["--routes", "a_1=50,b_1=50"]);
    let temp = tempfile::tempdir().unwrap();
    let path = grpc_scenario(temp.path(), &server.url, "");
    let (output, summary) = run(&path, &temp.path().join("out"), &[]);
    assert!(output.status.success(), "{}", describe(&output));
    let summary = summary.unwrap();
    assert_eq!(u64_at(&summary, "/requests/ok"), 100, "{summary}");
    let a = u64_at(&summary, "/routes/a_1/count");
    let b = u64_at(&summary, "/routes/b_1/count");
    assert_eq!(a + b, 100, "{summary}");
    assert!(a > 0 && b > 0, "{summary}");
}

#[test]
fn routes_read_from_trailers_of_errors() {
    // Every call fails, so each reply is trailers-only and the route is only in the trailers.
    let server = serve(&["--routes", "a_1=1", "--error-rate", "1"]);
    let temp = tempfile::tempdir().unwrap();
    let path = grpc_scenario(temp.path(), &server.url, "");
    let (output, summary) = run(&path, &temp.path().join("out"), &[]);
    assert!(output.status.success(), "{}", describe(&output));
    let summary = summary.unwrap();
    assert_eq!(u64_at(&summary, "/requests/errors"), 100, "{summary}");
    assert_eq!(
        u64_at(&summary, "/errors/by_kind/grpc_internal"),
        100,
        "{summary}"
    );
    assert_eq!(u64_at(&summary, "/routes/a_1/errors"), 100, "{summary}");
}

#[test]
fn unknown_model_counts_grpc_not_found() {
    let server = serve(&["--models", "other"]);
    let temp = tempfile::tempdir().unwrap();
    let path = grpc_scenario(temp.path(), &server.url, "preflight = false");
    let (output, summary) = run(&path, &temp.path().join("out"), &[]);
    assert!(output.status.success(), "{}", describe(&output));
    let summary = summary.unwrap();
    assert_eq!(
        u64_at(&summary, "/errors/by_kind/grpc_not_found"),
        100,
        "{summary}"
    );
}

#[test]
fn grpc_preflight_rejects_unknown_model() {
    let server = serve(&["--models", "other"]);
    let temp = tempfile::tempdir().unwrap();
    let path = grpc_scenario(temp.path(), &server.url, "");
    let (output, summary) = run(&path, &temp.path().join("out"), &[]);
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    assert!(summary.is_none());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("gRPC ModelReady m"), "{stderr}");
}

#[test]
fn deadline_counts_timeout() {
    let server = serve(&["--latency", "fixed:300ms"]);
    let temp = tempfile::tempdir().unwrap();
    let path = grpc_scenario(temp.path(), &server.url, "timeout = \"50ms\"");
    let (output, summary) = run(&path, &temp.path().join("out"), &["--rate", "20/s"]);
    assert!(output.status.success(), "{}", describe(&output));
    let summary = summary.unwrap();
    let timeouts = summary["errors"]["by_kind"]["timeout"]
        .as_u64()
        .unwrap_or(0)
        + summary["errors"]["by_kind"]["grpc_deadline_exceeded"]
            .as_u64()
            .unwrap_or(0);
    assert_eq!(timeouts, 20, "{summary}");
}

#[test]
fn reserved_metadata_name_is_rejected() {
    let temp = tempfile::tempdir().unwrap();
    let path = grpc_scenario(
        temp.path(),
        "http://127.0.0.1:1",
        "headers = { \"grpc-timeout\" = \"1S\" }",
    );
    let (output, _) = run(&path, &temp.path().join("out"), &[]);
    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("grpc-timeout"), "{stderr}");
}

#[test]
fn serve_grpc_addr_serves_grpc() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    let mut child = Command::new(bin())
        .args([
            "serve",
            "--addr",
            "127.0.0.1:0",
            "--grpc-addr",
            "127.0.0.1:0",
        ])
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
    let temp = tempfile::tempdir().unwrap();
    let path = grpc_scenario(temp.path(), &grpc_url, "");
    let (output, summary) = run(&path, &temp.path().join("out"), &[]);
    let _ = child.kill();
    let _ = child.wait();
    assert!(output.status.success(), "{}", describe(&output));
    assert_eq!(u64_at(&summary.unwrap(), "/requests/ok"), 100);
}
