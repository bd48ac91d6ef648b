//! Real process faults on the NGINX -> Envoy -> MLServer chain: MLServer killed and restarted,
//! then Envoy killed and restarted, during one run. The run must finish on schedule with every
//! request accounted for, and `intervals.csv` must show the error window and the recovery.
//!
//! The test starts a private testbed, with its own run folder and free ports but the installed
//! venv and models. Killing its processes then does not disturb other tests that use the shared
//! testbed, and the test checks that the shared testbed, when it was up, still runs with the
//! same processes afterwards. The private one is stopped at the end, also when an assertion
//! fails.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// Ports of a private testbed, by the variable `testbed/up` reads.
const PORT_VARIABLES: &[&str] = &[
    "INFERLOAD_TB_NGINX_PORT",
    "INFERLOAD_TB_NGINX_GRPC_PORT",
    "INFERLOAD_TB_ENVOY_PORT",
    "INFERLOAD_TB_ENVOY_ADMIN_PORT",
    "INFERLOAD_TB_MLSERVER_HTTP_PORT",
    "INFERLOAD_TB_MLSERVER_GRPC_PORT",
    "INFERLOAD_TB_MLSERVER_METRICS_PORT",
];

/// A testbed in a temporary run folder; `testbed/down` runs on drop.
struct PrivateTestbed {
    run_dir: tempfile::TempDir,
    env: Vec<(String, String)>,
    nginx_port: u16,
}

impl PrivateTestbed {
    fn start() -> PrivateTestbed {
        let run_dir = tempfile::tempdir().unwrap();
        // Hold every listener until all ports are chosen, so no two are the same.
        let listeners: Vec<_> = PORT_VARIABLES
            .iter()
            .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
            .collect();
        let mut env: Vec<(String, String)> = PORT_VARIABLES
            .iter()
            .zip(&listeners)
            .map(|(name, l)| (name.to_string(), l.local_addr().unwrap().port().to_string()))
            .collect();
        drop(listeners);
        let nginx_port = env[0].1.parse().unwrap();
        env.push((
            "INFERLOAD_TESTBED_RUN".into(),
            run_dir.path().display().to_string(),
        ));
        let testbed = PrivateTestbed {
            run_dir,
            env,
            nginx_port,
        };
        testbed.up();
        testbed
    }

    fn script(&self, name: &str) -> Command {
        let mut command = Command::new("bash");
        command.arg(repo().join("testbed").join(name));
        command.envs(self.env.iter().map(|(k, v)| (k, v)));
        command
    }

    /// Runs `testbed/up`, which starts whatever is not running and waits until the chain is
    /// ready (bounded by its own 120 s readiness timeout).
    fn up(&self) {
        let output = self.script("up").output().unwrap();
        assert!(output.status.success(), "testbed/up: {}", describe(&output));
    }

    fn pid(&self, component: &str) -> i32 {
        let path = self
            .run_dir
            .path()
            .join("pids")
            .join(format!("{component}.pid"));
        std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            .trim()
            .parse()
            .unwrap()
    }

    /// Kills `component` with SIGKILL, as a crash or an OOM kill would, and waits for it to go.
    fn kill(&self, component: &str) {
        let pid = self.pid(component);
        // SAFETY: kill(2) with a PID read from this testbed's own PID file.
        assert_eq!(
            unsafe { libc::kill(pid, libc::SIGKILL) },
            0,
            "kill {component}"
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        while Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for PrivateTestbed {
    fn drop(&mut self) {
        let _ = self.script("down").stdout(Stdio::null()).status();
    }
}

/// Components of the shared testbed (the caller's `INFERLOAD_TB_*` settings) with their PIDs,
/// as `testbed/status` lists them, and whether the whole chain was ready.
fn shared_testbed_processes() -> (Vec<String>, bool) {
    let output = Command::new("bash")
        .arg(repo().join("testbed/status"))
        .output()
        .unwrap();
    let processes = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|line| !line.starts_with(' ') && line.contains('('))
        .map(|line| {
            let component = line.split_whitespace().next().unwrap_or_default();
            let process = line.rsplit_once('(').map_or("", |(_, p)| p);
            format!("{component} ({process}")
        })
        .collect();
    (processes, output.status.success())
}

fn wait_for(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the run did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Files every finished run writes.
const RESULT_FILES: [&str; 9] = [
    "summary.json",
    "summary.md",
    "intervals.csv",
    "histograms.hlog",
    "latency.hgrm",
    "service_time.hgrm",
    "junit.xml",
    "regress-intervals.hlog",
    "interval_counts.csv",
];

/// One row of `intervals.csv`, with the columns this test reads.
#[derive(Debug, serde::Deserialize)]
struct Interval {
    start_s: f64,
    sent: u64,
    ok: u64,
    errors: u64,
    dropped: u64,
    in_flight: u64,
}

fn interval_rows(path: &Path) -> Vec<Interval> {
    csv::Reader::from_path(path)
        .unwrap()
        .deserialize()
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn count(summary: &serde_json::Value, pointer: &str) -> u64 {
    summary
        .pointer(pointer)
        .and_then(|v| v.as_u64())
        .unwrap_or_else(|| panic!("summary.json has no count at {pointer}: {summary}"))
}

/// An outage as seen from the test, in seconds from the start of the load: from the kill to
/// the moment `testbed/up` found the whole chain ready again.
#[derive(Debug, Clone, Copy)]
struct Outage {
    killed: f64,
    ready: f64,
}

impl Outage {
    /// Whether an interval starting at `start` (1 s long) may contain errors of this outage.
    /// The run's clock starts up to one poll step (20 ms) before the test finds the results
    /// folder. Requests in flight at the kill fail at once, and a request sent just before the
    /// chain was found ready can still fail. One interval of slack on each side covers all
    /// three.
    fn covers(&self, start: f64) -> bool {
        start + 1.0 >= self.killed - 1.0 && start <= self.ready + 1.0
    }
}

#[test]
fn chain_survives_killed_processes() {
    let (shared_before, shared_was_ready) = shared_testbed_processes();
    let testbed = PrivateTestbed::start();
    let temp = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(temp.path().join("payloads")).unwrap();
    std::fs::copy(
        repo().join("scenarios/payloads/financial-1x10x35.json"),
        temp.path().join("payloads/financial.json"),
    )
    .unwrap();
    let text = format!(
        r#"
[target]
url = "http://127.0.0.1:{}/financial-inference"
model = "financial-ab-test-experiment"
host = "ml-api.local"
timeout = "2s"
headers = {{ "seldon-model" = "financial-ab-test-experiment.experiment" }}

[payload]
file = "payloads/financial.json"

[load]
rate = "40/s"
duration = "40s"
connections = 4
"#,
        testbed.nginx_port
    );
    let path = temp.path().join("scenario.toml");
    std::fs::write(&path, text).unwrap();
    let out = temp.path().join("out");
    let mut child = Command::new(bin())
        .arg("run")
        .arg(&path)
        .arg("--out")
        .arg(&out)
        .arg("-q")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    // The results folder appears after the preflight, just before the first request. The
    // faults are then placed on the run's own clock: MLServer dies 4 s in and is started again
    // at once (5-11 s to be ready here, depending on load); Envoy dies 3 s after that and is
    // started again.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !out.exists() {
        assert!(Instant::now() < deadline, "the run did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    let load_start = Instant::now();
    let seconds = || load_start.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_secs(4));
    let mlserver_killed = seconds();
    testbed.kill("mlserver");
    testbed.up();
    let mlserver = Outage {
        killed: mlserver_killed,
        ready: seconds(),
    };
    std::thread::sleep(Duration::from_secs(3));
    let envoy_killed = seconds();
    testbed.kill("envoy");
    testbed.up();
    let envoy = Outage {
        killed: envoy_killed,
        ready: seconds(),
    };

    let status = wait_for(&mut child, Duration::from_secs(60));
    let output = child.wait_with_output().unwrap();
    assert!(status.success(), "{}", describe(&output));
    assert!(
        envoy.ready < 36.0,
        "the testbed took too long to restart ({mlserver:?}, {envoy:?}); the recovery would \
         not be visible in a 40 s run"
    );

    // All outputs written, none left half done.
    for name in RESULT_FILES {
        let file = out.join(name);
        let size = std::fs::metadata(&file)
            .unwrap_or_else(|e| panic!("{name} is missing: {e}"))
            .len();
        assert!(size > 0, "{name} is empty");
    }
    let leftovers: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with('.') || name.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");

    // Every request is accounted for. 40/s for 40 s makes 1600 due, each one sent or dropped.
    // Each request sent ended ok, failed under one kind, or was still in flight at the end.
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    let sent = count(&summary, "/requests/sent");
    let ok = count(&summary, "/requests/ok");
    let errors = count(&summary, "/requests/errors");
    let dropped = count(&summary, "/requests/dropped");
    let in_flight = count(&summary, "/requests/in_flight_at_end");
    assert_eq!(sent + dropped, 1600, "{summary}");
    assert_eq!(sent, ok + errors + in_flight, "{summary}");
    let by_kind: u64 = summary["errors"]["by_kind"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(by_kind, errors, "errors = sum of errors.by_kind: {summary}");
    assert!(errors > 0, "the outages caused errors: {summary}");
    assert!(ok > 800, "{summary}");
    assert_eq!(summary["partial"], false);

    // intervals.csv adds up to the summary and shows the error window: errors only in the
    // intervals around the two kills, and clean intervals before, between and after them.
    let rows = interval_rows(&out.join("intervals.csv"));
    let report = format!(
        "MLServer {mlserver:?}, Envoy {envoy:?}, intervals (start, ok, errors):\n{}",
        rows.iter()
            .map(|r| format!("{:5.1} {:3} {:3}", r.start_s, r.ok, r.errors))
            .collect::<Vec<_>>()
            .join("\n")
    );
    eprintln!("{report}");
    assert!(rows.len() >= 40, "{report}");
    assert_eq!(rows.iter().map(|r| r.sent).sum::<u64>(), sent, "{report}");
    assert_eq!(rows.iter().map(|r| r.ok).sum::<u64>(), ok, "{report}");
    assert_eq!(
        rows.iter().map(|r| r.errors).sum::<u64>(),
        errors,
        "{report}"
    );
    assert_eq!(
        rows.iter().map(|r| r.dropped).sum::<u64>(),
        dropped,
        "{report}"
    );
    assert_eq!(rows.last().unwrap().in_flight, in_flight, "{report}");
    for row in rows.iter().filter(|r| r.errors > 0) {
        assert!(
            mlserver.covers(row.start_s) || envoy.covers(row.start_s),
            "errors at {} s, outside both outages; {report}",
            row.start_s
        );
    }
    let failing_in = |outage: Outage| {
        rows.iter()
            .any(|r| r.errors > 0 && r.start_s >= outage.killed - 1.0 && r.start_s <= outage.ready)
    };
    assert!(
        failing_in(mlserver),
        "MLServer outage not visible; {report}"
    );
    assert!(failing_in(envoy), "Envoy outage not visible; {report}");
    let clean = |r: &Interval| r.errors == 0 && r.ok > 0;
    assert!(clean(&rows[1]), "the run starts clean; {report}");
    assert!(
        rows.iter().any(|r| clean(r)
            && r.start_s >= mlserver.ready + 1.0
            && r.start_s + 1.0 <= envoy.killed),
        "the chain recovered between the outages; {report}"
    );
    assert!(clean(&rows[rows.len() - 2]), "the run ends clean; {report}");

    drop(testbed);
    if shared_was_ready {
        assert_eq!(
            shared_testbed_processes().0,
            shared_before,
            "the shared testbed lost or restarted a process during the test"
        );
    }
}
