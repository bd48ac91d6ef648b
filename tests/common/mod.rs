//! Helpers shared by the integration tests: the built binary, the embedded target in its own
//! process on 127.0.0.1:0, temporary scenarios, and a lock for timing-sensitive tests.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard};

/// Path of the `inferload` binary built for these tests.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_inferload"))
}

/// Root of the repository.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Serialises tests whose assertions depend on timing, so they do not compete for the CPU
/// with each other inside one test binary.
pub fn timing_lock() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// An `inferload serve` process, killed on drop.
pub struct Server {
    pub child: Child,
    pub url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `inferload serve --addr 127.0.0.1:0 ARGS` and waits for its address line (an
/// `https://` URL when ARGS ask for TLS).
pub fn serve(args: &[&str]) -> Server {
    let mut child = Command::new(bin())
        .args(["serve", "--addr", "127.0.0.1:0"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("inferload serve starts");
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("serve prints its address");
    let url = line
        .trim()
        .rsplit(' ')
        .next()
        .filter(|u| u.starts_with("http://") || u.starts_with("https://"))
        .unwrap_or_else(|| panic!("unexpected first line from serve: {line:?}"))
        .to_string();
    Server { child, url }
}

/// Writes `text` as `scenario.toml` in `dir`, with the quick-start payload beside it.
pub fn scenario(dir: &Path, text: &str) -> PathBuf {
    std::fs::create_dir_all(dir.join("payloads")).unwrap();
    std::fs::copy(
        repo().join("scenarios/payloads/quickstart.json"),
        dir.join("payloads/quickstart.json"),
    )
    .unwrap();
    let path = dir.join("scenario.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// A minimal open-loop scenario against `url`.
pub fn basic_scenario(url: &str) -> String {
    format!(
        r#"
[target]
url = "{url}"
model = "m"

[payload]
file = "payloads/quickstart.json"

[load]
rate = "100/s"
duration = "1s"
"#
    )
}

/// Runs `inferload ARGS` to completion.
pub fn inferload(args: &[&str]) -> Output {
    Command::new(bin())
        .args(args)
        .output()
        .expect("inferload runs")
}

/// Runs `inferload run SCENARIO --out DIR -q ARGS` and returns the output and summary.json.
pub fn run(scenario: &Path, out: &Path, args: &[&str]) -> (Output, Option<serde_json::Value>) {
    let output = Command::new(bin())
        .arg("run")
        .arg(scenario)
        .arg("--out")
        .arg(out)
        .arg("-q")
        .args(args)
        .output()
        .expect("inferload runs");
    let summary = std::fs::read(out.join("summary.json"))
        .ok()
        .map(|bytes| serde_json::from_slice(&bytes).expect("summary.json is JSON"));
    (output, summary)
}

/// Formats a process's output for assertion messages.
pub fn describe(output: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Addresses of the real NGINX -> Envoy -> MLServer chain started by `testbed/up`.
pub struct Testbed {
    /// Base URL of the REST ingress, before `/v2`.
    pub rest_url: String,
    /// NGINX's gRPC (HTTP/2) listener.
    pub grpc_url: String,
    /// MLServer's Prometheus metrics.
    pub metrics_url: String,
}

fn port_from_env(name: &str, default: u16) -> u16 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Starts the testbed once per test binary (`testbed/up` is idempotent and installs what is
/// missing) and returns its addresses. Panics with the script's output when it cannot start.
pub fn testbed() -> Testbed {
    static STARTED: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    let started = STARTED.get_or_init(|| {
        let output = Command::new("bash")
            .arg(repo().join("testbed/up"))
            .output()
            .map_err(|e| format!("cannot run testbed/up: {e}"))?;
        if output.status.success() {
            Ok(())
        } else {
            Err(describe(&output))
        }
    });
    if let Err(message) = started {
        panic!("testbed/up failed:\n{message}");
    }
    Testbed {
        rest_url: format!(
            "http://127.0.0.1:{}/financial-inference",
            port_from_env("INFERLOAD_TB_NGINX_PORT", 18080)
        ),
        grpc_url: format!(
            "http://127.0.0.1:{}",
            port_from_env("INFERLOAD_TB_NGINX_GRPC_PORT", 18081)
        ),
        metrics_url: format!(
            "http://127.0.0.1:{}/metrics",
            port_from_env("INFERLOAD_TB_MLSERVER_METRICS_PORT", 18092)
        ),
    }
}

/// Two-sided exact binomial test: the probability, under `p`, of an outcome at most as likely
/// as `k` successes in `n` trials.
pub fn binomial_p_value(k: u64, n: u64, p: f64) -> f64 {
    let ln_choose = |i: u64| -> f64 {
        (1..=i)
            .map(|j| ((n - i + j) as f64).ln() - (j as f64).ln())
            .sum()
    };
    let ln_pmf = |i: u64| ln_choose(i) + i as f64 * p.ln() + (n - i) as f64 * (1.0 - p).ln();
    let observed = ln_pmf(k);
    (0..=n)
        .map(ln_pmf)
        .filter(|l| *l <= observed + 1e-9)
        .map(f64::exp)
        .sum::<f64>()
        .min(1.0)
}

/// Checks that every measured request is counted once and every error under one kind.
pub fn assert_accounted(summary: &serde_json::Value) {
    let count = |pointer: &str| {
        summary
            .pointer(pointer)
            .and_then(serde_json::Value::as_u64)
            .unwrap_or_else(|| panic!("summary has no count at {pointer}: {summary}"))
    };
    let sent = count("/requests/sent");
    let ok = count("/requests/ok");
    let errors = count("/requests/errors");
    let in_flight = count("/requests/in_flight_at_end");
    assert_eq!(
        sent,
        ok + errors + in_flight,
        "sent = ok + errors + in flight: {summary}"
    );
    let by_kind: u64 = summary["errors"]["by_kind"]
        .as_object()
        .expect("errors.by_kind is an object")
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(errors, by_kind, "errors = sum of errors.by_kind: {summary}");
}

/// Checks that every file of a run folder is complete: JSON parses, CSV rows have the
/// header's width, nothing is empty and no temporary file is left.
pub fn assert_run_files_valid(dir: &Path) {
    let mut seen = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            continue;
        }
        seen += 1;
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let bytes = std::fs::read(&path).unwrap();
        assert!(!bytes.is_empty(), "{name} is empty");
        assert!(
            !name.ends_with(".tmp") && !name.starts_with('.'),
            "temporary file {name} left"
        );
        match path.extension().and_then(|e| e.to_str()) {
            Some("json") => {
                serde_json::from_slice::<serde_json::Value>(&bytes)
                    .unwrap_or_else(|e| panic!("{name} is not valid JSON: {e}"));
            }
            Some("csv") => {
                let mut reader = csv::Reader::from_reader(bytes.as_slice());
                let width = reader.headers().unwrap().len();
                for (row, record) in reader.records().enumerate() {
                    let record = record.unwrap_or_else(|e| panic!("{name} row {row}: {e}"));
                    assert_eq!(record.len(), width, "{name} row {row} has another width");
                }
            }
            _ => {}
        }
    }
    assert!(seen >= 1, "no result files in {}", dir.display());
}
