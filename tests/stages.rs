//! Load stages run in-process against the embedded target: arrival counts per stage, the
//! target rate of each interval, and stage labels on interval snapshots.

mod common;

use std::sync::{Arc, Mutex};

use common::*;
use inferload::commands::run::{execute_with, plan};
use inferload::engine::{IntervalSink, StopSignal};
use inferload::stats::IntervalSnapshot;

/// Stage name, target rate, measured requests sent and middle (seconds from the load's
/// start) of one interval.
type Row = (Option<String>, Option<f64>, u64, f64);

/// Keeps a [`Row`] for every interval.
struct Capture(Arc<Mutex<Vec<Row>>>);

/// Runs `future` on a runtime sized like the binary's (two workers), outside any test lock's
/// await points.
fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
        .block_on(future)
}

impl IntervalSink for Capture {
    fn on_interval(&mut self, snapshot: &IntervalSnapshot) {
        self.0.lock().unwrap().push((
            snapshot.stage_name.as_deref().map(str::to_string),
            snapshot.target_rate,
            snapshot.pacer.sent,
            ((snapshot.start + snapshot.end) / 2).as_secs_f64(),
        ));
    }
}

fn run_args(path: &std::path::Path, out: &std::path::Path) -> inferload::cli::RunArgs {
    use clap::Parser;
    let cli = inferload::cli::Cli::parse_from([
        "inferload".as_ref(),
        "run".as_ref(),
        path.as_os_str(),
        "--out".as_ref(),
        out.as_os_str(),
    ]);
    match cli.command {
        inferload::cli::Command::Run(args) => args,
        _ => unreachable!("parsed a run command"),
    }
}

#[test]
fn open_loop_stages_hold_and_ramp() {
    let _timing = timing_lock();
    let temp = tempfile::tempdir().unwrap();
    let path = scenario(
        temp.path(),
        r#"
[target]
url = "embedded"
model = "m"

[target.embedded]
latency = "fixed:1ms"

[payload]
file = "payloads/quickstart.json"

[load]
warmup = "1s"

[[load.stages]]
name = "hold"
rate = "100/s"
duration = "2s"

[[load.stages]]
name = "ramp"
from = "100/s"
to = "300/s"
duration = "2s"

[output]
interval = "500ms"
"#,
    );
    let plan = plan(&run_args(&path, &temp.path().join("out"))).unwrap();
    let intervals = Arc::new(Mutex::new(Vec::new()));
    let sinks: Vec<Box<dyn IntervalSink>> = vec![Box::new(Capture(Arc::clone(&intervals)))];
    let executed = block_on(execute_with(plan, sinks, StopSignal::new())).unwrap();

    // Λ over the stages: 100/s * 2 s + (100 + 300) / 2 * 2 s = 600 measured arrivals, after
    // 100 in the warm-up (which runs at the first stage's rate).
    let summary = &executed.summary;
    assert_eq!(summary.requests.sent, 600);
    assert_eq!(summary.requests.warmup_sent, 100);
    assert_eq!(summary.requests.errors, 0);
    assert_eq!(summary.load.target_rps, Some(150.0));

    let intervals = intervals.lock().unwrap();
    let labelled: Vec<_> = intervals
        .iter()
        .filter(|(stage, _, _, _)| stage.is_some())
        .collect();
    // Eight 500 ms intervals in the stages; a last, short one may follow.
    assert!(labelled.len() >= 8, "{intervals:?}");
    // The rate at an interval's middle: 100/s for the hold (1 s to 3 s after the start, after
    // the warm-up), then 100/s + 100/s per second into the ramp. The last interval may end
    // early, when the last request has been answered, so its middle is not on the grid.
    let expected_rate = |middle: f64| {
        let into_stages = middle - 1.0;
        if into_stages < 2.0 {
            100.0
        } else {
            100.0 + 100.0 * (into_stages - 2.0)
        }
    };
    for (index, (stage, rate, _, middle)) in labelled.iter().take(8).enumerate() {
        let name = if index < 4 { "hold" } else { "ramp" };
        assert_eq!(stage.as_deref(), Some(name), "interval {index}");
        let rate = rate.expect("open loop intervals have a target rate");
        assert!(
            (rate - expected_rate(*middle)).abs() < 1e-9,
            "interval {index} (middle {middle} s): target rate {rate}"
        );
    }
    // On the 500 ms grid the first ramp interval's middle is 3.25 s: 125/s.
    assert_eq!(labelled[4].1, Some(125.0), "{intervals:?}");
    // The warm-up intervals carry no stage.
    assert!(intervals[0].0.is_none(), "{intervals:?}");
}

#[test]
fn concurrency_stages_change_lanes() {
    let _timing = timing_lock();
    let temp = tempfile::tempdir().unwrap();
    let path = scenario(
        temp.path(),
        r#"
[target]
url = "embedded"
model = "m"

[target.embedded]
latency = "fixed:20ms"

[payload]
file = "payloads/quickstart.json"

[[load.stages]]
concurrency = 1
duration = "1s"

[[load.stages]]
concurrency = 4
duration = "1s"
"#,
    );
    let plan = plan(&run_args(&path, &temp.path().join("out"))).unwrap();
    assert_eq!(plan.load.connections, 4);
    let intervals = Arc::new(Mutex::new(Vec::new()));
    let sinks: Vec<Box<dyn IntervalSink>> = vec![Box::new(Capture(Arc::clone(&intervals)))];
    let executed = block_on(execute_with(plan, sinks, StopSignal::new())).unwrap();

    // One lane at 20 ms per request sends about 50 in the first second, four lanes about
    // 200 in the second: 250 in all if nothing else took time. The collector's tick can
    // land a few milliseconds after the switch to four lanes, whose first requests (one per
    // lane) then count in the first interval: 51 + 4 at most (52 and 53 were seen here).
    let intervals = intervals.lock().unwrap();
    let first = intervals[0].2;
    let second = intervals[1].2;
    assert!(
        (40..=55).contains(&first),
        "first stage sent {first}: {intervals:?}"
    );
    assert!(
        (160..=204).contains(&second),
        "second stage sent {second}: {intervals:?}"
    );
    assert_eq!(intervals[0].0.as_deref(), Some("stage-1"));
    assert_eq!(intervals[1].0.as_deref(), Some("stage-2"));
    assert_eq!(executed.summary.load.concurrency, Some(4));
}
