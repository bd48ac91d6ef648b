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

/// Starts `inferload serve --addr 127.0.0.1:0 ARGS` and waits for its address line.
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
        .filter(|u| u.starts_with("http://"))
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
