//! End-to-end checks of `inferload sweep` against `inferload serve` with a known capacity.
//!
//! `serve --max-concurrency 4 --latency fixed:10ms` serves at most 4 requests at a time, each
//! after 10 ms, so it sustains at most 400 req/s. Above that rate its queue grows without bound.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;

/// Runs `inferload sweep SCENARIO --out DIR -q ARGS`; returns the output and the sweep's
/// summary.json.
fn sweep(scenario: &Path, out: &Path, args: &[&str]) -> (std::process::Output, serde_json::Value) {
    let output = Command::new(bin())
        .arg("sweep")
        .arg(scenario)
        .arg("--out")
        .arg(out)
        .arg("-q")
        .args(args)
        .output()
        .expect("inferload runs");
    let bytes = std::fs::read(out.join("summary.json"))
        .unwrap_or_else(|e| panic!("no sweep summary.json ({e}): {}", describe(&output)));
    (
        output,
        serde_json::from_slice(&bytes).expect("summary.json is JSON"),
    )
}

/// Short steps keep the suite fast: 1 s warm-up, 1 s windows, at most 3 windows.
const SHORT_STEPS: [&str; 6] = [
    "--step-warmup",
    "1s",
    "--window",
    "1s",
    "--max-windows",
    "3",
];

/// Shortest steps, for tests whose verdicts do not depend on stability: at most 2 windows.
const SHORTEST_STEPS: [&str; 6] = [
    "--step-warmup",
    "1s",
    "--window",
    "1s",
    "--max-windows",
    "2",
];

#[test]
fn sweep_finds_four_slot_capacity() {
    let _timing = timing_lock();
    let server = serve(&["--max-concurrency", "4", "--latency", "fixed:10ms"]);
    let temp = tempfile::tempdir().unwrap();
    let path = scenario(temp.path(), &basic_scenario(&server.url));
    let out = temp.path().join("sweep");
    let mut args = vec![
        "--slo",
        "p99<50ms",
        "--max-error-rate",
        "0.1%",
        "--rates",
        "300,500",
        "--precision",
        "5%",
    ];
    args.extend(SHORT_STEPS);
    let (output, summary) = sweep(&path, &out, &args);
    assert!(output.status.success(), "{}", describe(&output));

    assert_eq!(summary["outcome"], "found", "{summary:#}");
    let capacity = summary["capacity_rps"].as_f64().expect("capacity_rps");
    let low = summary["bracket"]["low"].as_f64().unwrap();
    let high = summary["bracket"]["high"].as_f64().unwrap();
    assert_eq!(capacity, low);
    assert!((high - low) / low <= 0.05, "bracket {low}..{high}");
    assert!(
        (capacity - 400.0).abs() <= 0.05 * 400.0,
        "capacity {capacity} req/s is not within 5% of 400"
    );

    // The 500/s step is past the capacity: it must fail, not pass.
    let steps = summary["steps"].as_array().unwrap();
    let at_500 = steps
        .iter()
        .find(|s| s["target_rps"] == 500.0)
        .expect("a 500/s step");
    assert_ne!(at_500["verdict"], "pass", "{at_500:#}");
    for step in steps {
        let folder = out.join(step["folder"].as_str().unwrap());
        assert!(
            folder.join("summary.json").is_file(),
            "{}",
            folder.display()
        );
    }

    let csv = std::fs::read_to_string(out.join("steps.csv")).unwrap();
    assert_eq!(csv.lines().count(), steps.len() + 1, "{csv}");
    assert!(csv.starts_with("step,phase,target_rps"), "{csv}");

    let svg = std::fs::read_to_string(out.join("latency.svg")).unwrap();
    let document = roxmltree::Document::parse(&svg).expect("latency.svg is well-formed XML");
    let root = document.root_element();
    assert_eq!(root.tag_name().name(), "svg");
    assert_eq!(
        root.tag_name().namespace(),
        Some("http://www.w3.org/2000/svg")
    );
    let polylines = root
        .descendants()
        .filter(|n| n.has_tag_name("polyline"))
        .count();
    assert_eq!(polylines, 3, "one line each for p50, p95 and p99");
    let texts: Vec<&str> = root
        .descendants()
        .filter_map(|n| n.has_tag_name("text").then(|| n.text()).flatten())
        .collect();
    assert!(
        texts.iter().any(|t| t.starts_with("latency (ms")),
        "{texts:?}"
    );
    assert!(
        texts.iter().any(|t| t.starts_with("achieved throughput")),
        "{texts:?}"
    );
}

#[test]
fn unsatisfiable_objective_reports_no_capacity() {
    let _timing = timing_lock();
    let server = serve(&["--max-concurrency", "4", "--latency", "fixed:10ms"]);
    let temp = tempfile::tempdir().unwrap();
    let path = scenario(temp.path(), &basic_scenario(&server.url));
    let out = temp.path().join("sweep");
    let mut args = vec!["--slo", "p99<5ms", "--rates", "50,100"];
    args.extend(SHORTEST_STEPS);
    let (output, summary) = sweep(&path, &out, &args);

    assert_eq!(output.status.code(), Some(3), "{}", describe(&output));
    assert_eq!(summary["outcome"], "below_lowest");
    assert!(summary["capacity_rps"].is_null(), "{summary:#}");
    assert!(summary["bracket"]["low"].is_null());
    assert_eq!(summary["bracket"]["high"], 50.0);
    assert_eq!(summary["steps"].as_array().unwrap().len(), 1);
    assert_eq!(summary["steps"][0]["verdict"], "fail");
}

#[test]
fn concurrency_sweep_finds_slot_count() {
    let _timing = timing_lock();
    let server = serve(&["--max-concurrency", "4", "--latency", "fixed:50ms"]);
    let temp = tempfile::tempdir().unwrap();
    let path = scenario(temp.path(), &basic_scenario(&server.url));
    let out = temp.path().join("sweep");
    // Up to 4 requests in flight take 50 ms each. With 5 or more, at least one request in
    // five waits a whole service time for a slot, so the p90 is 100 ms or more.
    let mut args = vec!["--slo", "p90<75ms", "--concurrency-levels", "4,8"];
    args.extend(SHORTEST_STEPS);
    let (output, summary) = sweep(&path, &out, &args);
    assert!(output.status.success(), "{}", describe(&output));

    assert_eq!(summary["mode"], "closed");
    assert_eq!(summary["outcome"], "found", "{summary:#}");
    assert_eq!(summary["capacity_concurrency"], 4, "{summary:#}");
    assert!(summary["capacity_rps"].is_null());
    assert_eq!(summary["bracket"]["high"], 5.0, "{summary:#}");
}

#[test]
fn testbed_sweep_is_bounded() {
    let _timing = timing_lock();
    let testbed = testbed();
    let temp = tempfile::tempdir().unwrap();
    let out = temp.path().join("sweep");
    let started = std::time::Instant::now();
    // Two climbing steps of at most 1 s + 2 x 1 s each, and bisection steps only if 100/s
    // breaks the objective.
    let mut args = vec!["--url", testbed.rest_url.as_str(), "--rates", "50,100"];
    args.extend(SHORTEST_STEPS);
    let (output, summary) = sweep(
        &repo().join("scenarios/financial-ab-test-sweep.toml"),
        &out,
        &args,
    );
    let elapsed = started.elapsed();
    assert!(output.status.code().is_some(), "{}", describe(&output));

    // Each step is bounded by its warm-up, its windows and the request timeout (5 s), and
    // there are at most 2 climbing and 2 bisection steps here.
    assert!(
        elapsed < std::time::Duration::from_secs(60),
        "the sweep took {elapsed:?}"
    );
    // Without --slo, the scenario's [gates] are the objective.
    let gates = summary["objective"]["gates"].as_array().unwrap();
    assert!(gates.iter().any(|g| g == "p99<50ms"), "{summary:#}");
    assert!(gates.iter().any(|g| g == "error_rate<=0.1%"), "{summary:#}");
    let steps = summary["steps"].as_array().unwrap();
    assert!(!steps.is_empty());
    assert_eq!(steps[0]["errors"], 0, "{summary:#}");
    assert!(steps[0]["ok"].as_u64().unwrap() > 0, "{summary:#}");

    let svg = std::fs::read_to_string(out.join("latency.svg")).unwrap();
    let document = roxmltree::Document::parse(&svg).expect("latency.svg is well-formed XML");
    assert_eq!(document.root_element().tag_name().name(), "svg");
}

#[test]
fn serve_slots_give_known_capacity() {
    let _timing = timing_lock();
    let server = serve(&["--max-concurrency", "4", "--latency", "fixed:10ms"]);
    let temp = tempfile::tempdir().unwrap();
    let path = scenario(temp.path(), &basic_scenario(&server.url));
    let out = temp.path().join("out");
    // 16 requests always in flight keep all 4 slots busy, so the target serves exactly
    // 4 / 10 ms = 400 req/s however late its own threads wake up.
    let (output, summary) = run(
        &path,
        &out,
        &["--concurrency", "16", "--duration", "3s", "--warmup", "1s"],
    );
    assert!(output.status.success(), "{}", describe(&output));
    let summary = summary.expect("summary.json written");
    let ok = summary["requests"]["ok"].as_u64().unwrap();
    let achieved = summary["load"]["achieved_rps"].as_f64().unwrap();
    assert!(
        (achieved - 400.0).abs() <= 8.0,
        "achieved {achieved} req/s, {ok} ok"
    );
    // Each request waits for 3 others ahead of it in the queue, then is served: 40 ms.
    let p50 = summary["latency_ms"]["p50"].as_f64().unwrap();
    assert!((39.0..=45.0).contains(&p50), "latency p50 {p50} ms");
}

#[test]
fn generator_cpu_limit_stops_sweep() {
    let _timing = timing_lock();
    let server = serve(&["--latency", "fixed:1ms"]);
    let temp = tempfile::tempdir().unwrap();
    let path = scenario(temp.path(), &basic_scenario(&server.url));
    let out = temp.path().join("sweep");
    // Any run uses more than 0.01% of the CPUs, so the first step trips the CPU check.
    let mut args = vec![
        "--slo",
        "p99<1s",
        "--rates",
        "100,200",
        "--max-generator-cpu",
        "0.01%",
    ];
    args.extend(SHORTEST_STEPS);
    let (output, summary) = sweep(&path, &out, &args);

    assert_eq!(output.status.code(), Some(3), "{}", describe(&output));
    assert_eq!(summary["outcome"], "generator_limited", "{summary:#}");
    assert!(summary["capacity_rps"].is_null(), "{summary:#}");
    assert_eq!(summary["steps"].as_array().unwrap().len(), 1);
    assert_eq!(summary["steps"][0]["verdict"], "generator");
    let message = summary["message"].as_str().unwrap();
    assert!(message.contains("generator, not the target"), "{message}");
}

#[test]
fn too_few_connections_is_generator_limit() {
    let _timing = timing_lock();
    let server = serve(&["--max-concurrency", "4", "--latency", "fixed:10ms"]);
    let temp = tempfile::tempdir().unwrap();
    let path = scenario(temp.path(), &basic_scenario(&server.url));
    let out = temp.path().join("sweep");
    // Two connections carry at most 2 / 10 ms = 200 req/s although the target serves 400:
    // at 300/s requests queue in the generator while the target's service time stays 10 ms.
    let mut args = vec![
        "--slo",
        "p99<50ms",
        "--rates",
        "100,300",
        "--connections",
        "2",
    ];
    args.extend(SHORT_STEPS);
    let (output, summary) = sweep(&path, &out, &args);

    assert_eq!(output.status.code(), Some(3), "{}", describe(&output));
    assert_eq!(summary["outcome"], "generator_limited", "{summary:#}");
    assert!(summary["capacity_rps"].is_null(), "{summary:#}");
    assert_eq!(summary["bracket"]["low"], 100.0, "{summary:#}");
    let last = &summary["steps"][1];
    assert_eq!(last["verdict"], "generator", "{summary:#}");
    assert!(
        last["reason"]
            .as_str()
            .unwrap()
            .contains("raise --connections"),
        "{last:#}"
    );
}
