//! Route attribution, the split test, the hop breakdown, model metrics and error origins,
//! against `inferload serve` with simulated hop headers.

mod common;

use common::*;
use serde_json::Value;

/// Returns a scenario against `url` with the simulated chain's hops, its metrics and `extra`.
fn chain_scenario(url: &str, rate: &str, extra: &str) -> String {
    format!(
        r#"
[target]
url = "{url}"
model = "m"

[payload]
file = "payloads/quickstart.json"

[load]
rate = "{rate}"
duration = "2s"
warmup = "500ms"
connections = 8

[[hops]]
name = "ingress"
header = "x-nginx-request-time"
format = "seconds"
origin = "ingress"

[[hops]]
name = "mesh"
header = "x-nginx-upstream-header-time"
format = "seconds"
origin = "ingress"

[[hops]]
name = "model-server"
header = "x-envoy-upstream-service-time"
format = "milliseconds"
origin = "mesh"

[model_metrics]
urls = ["{url}/metrics"]
{extra}
"#
    )
}

fn f64_at(value: &Value, path: &[&str]) -> f64 {
    let mut current = value;
    for key in path {
        current = &current[*key];
    }
    current
        .as_f64()
        .unwrap_or_else(|| panic!("{path:?} is not a number in {value}"))
}

#[test]
fn breakdown_of_simulated_chain() {
    let _lock = timing_lock();
    let server = serve(&[
        "--latency",
        "fixed:2ms",
        "--hop-headers",
        "--hop-overhead",
        "1ms",
        "--routes",
        "a_1=70,b_1=30",
    ]);
    let temp = tempfile::tempdir().unwrap();
    let path = scenario(
        temp.path(),
        &chain_scenario(
            &server.url,
            "200/s",
            "[routes]\nexpected = { a = 70, b = 30 }\n",
        ),
    );
    let (output, summary) = run(&path, &temp.path().join("out"), &[]);
    assert!(output.status.success(), "{}", describe(&output));
    let summary = summary.expect("summary.json");
    let hops = &summary["hops"];

    // The simulated inference is exactly 2 ms, and the server's metrics record exactly that.
    let model_mean = f64_at(hops, &["model", "latency_ms", "mean"]);
    assert!((model_mean - 2.0).abs() < 1e-6, "model mean {model_mean}");
    // Envoy's header is inference + 1 overhead = 3 ms; NGINX's upstream time is 4 ms. The
    // truncated formats make these self times exact.
    for quantile in ["p50", "p95", "mean"] {
        let mesh = f64_at(hops, &["mesh", "latency_ms", quantile]);
        assert!((mesh - 1.0).abs() < 0.002, "mesh {quantile} {mesh}");
        let server_self = f64_at(hops, &["model-server", "latency_ms", quantile]);
        assert!(
            (server_self - 1.0).abs() < 0.002,
            "model-server {quantile} {server_self}"
        );
    }
    // NGINX's request time is the handling time truncated to 1 ms: at least 5 ms.
    let ingress_p50 = f64_at(hops, &["ingress", "latency_ms", "p50"]);
    assert!(ingress_p50 >= 1.0, "ingress p50 {ingress_p50}");
    assert_eq!(f64_at(hops, &["ingress", "resolution_ms"]), 1.0);
    assert_eq!(f64_at(hops, &["mesh", "resolution_ms"]), 1.0);

    // Every component is present and none is negative.
    let names = [
        "ingress",
        "mesh",
        "model-server",
        "model",
        "network",
        "client-wait",
    ];
    let mut sum = 0.0;
    for (position, name) in names.iter().enumerate() {
        let hop = &hops[*name];
        assert_eq!(hop["position"], position, "{name}: {hop}");
        for key in ["mean", "p50", "p95", "max"] {
            if let Some(value) = hop["latency_ms"][key].as_f64() {
                assert!(value >= 0.0, "{name}.{key} = {value}");
            }
        }
        assert_eq!(hop["missing"], 0, "{name}: {hop}");
        sum += f64_at(hop, &["latency_ms", "mean"]);
    }
    // The components partition the latency, so their means add up to its mean. The only gap
    // is a component whose signed mean fell below 0 and was raised to 0; none is expected here.
    let latency = f64_at(&summary, &["latency_ms", "mean"]);
    assert!(
        (sum - latency).abs() <= latency * 0.01,
        "components {sum} vs latency {latency}"
    );

    // Counts per model agree with the server's own counters, warm-up included.
    let checks = summary["model_metrics"]["count_check"]
        .as_object()
        .expect("count_check");
    assert_eq!(checks.len(), 2, "{checks:?}");
    for (model, check) in checks {
        assert_eq!(check["equal"], true, "{model}: {check}");
        assert!(check["inferload"].as_u64().unwrap() > 0, "{model}: {check}");
    }

    // The split: model groups and the test.
    let by_model = &summary["routes_by_model"];
    assert_eq!(by_model["a"]["labels"][0], "a_1");
    let ok = summary["requests"]["ok"].as_u64().unwrap();
    let grouped =
        by_model["a"]["count"].as_u64().unwrap() + by_model["b"]["count"].as_u64().unwrap();
    assert_eq!(grouped, ok);
    let split = &summary["split_test"];
    let p_value = f64_at(split, &["p_value"]);
    assert!((0.0..=1.0).contains(&p_value), "{split}");
    assert_eq!(split["dof"], 1);
    assert_eq!(split["alpha"], 0.01);
    let low = f64_at(split, &["routes", "a", "ci_low"]);
    let high = f64_at(split, &["routes", "a", "ci_high"]);
    let observed = f64_at(split, &["routes", "a", "observed_share"]);
    assert!(low < observed, "{split}");
    assert!(observed < high, "{split}");

    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("breakdown ms"), "{stdout}");
    assert!(stdout.contains("95% interval"), "{stdout}");
}

#[test]
fn split_imbalance_flagged() {
    let server = serve(&["--routes", "a_1=50,b_1=50", "--seed", "7"]);
    let temp = tempfile::tempdir().unwrap();
    let text = format!(
        "{}\n[routes]\nexpected = {{ a_1 = 90, b_1 = 10 }}\nalpha = 0.05\n",
        basic_scenario(&server.url)
    );
    let path = scenario(temp.path(), &text);
    let (output, summary) = run(&path, &temp.path().join("out"), &[]);
    assert!(output.status.success(), "{}", describe(&output));
    let split = &summary.unwrap()["split_test"];
    assert_eq!(split["imbalanced"], true, "{split}");
    assert!(f64_at(split, &["p_value"]) < 1e-6, "{split}");
    assert_eq!(split["alpha"], 0.05);
}

#[test]
fn unrouted_responses_break_split() {
    let server = serve(&[]);
    let temp = tempfile::tempdir().unwrap();
    let text = format!(
        "{}\n[routes]\nexpected = {{ a = 1 }}\n",
        basic_scenario(&server.url)
    );
    let path = scenario(temp.path(), &text);
    let (output, summary) = run(&path, &temp.path().join("out"), &[]);
    assert!(output.status.success(), "{}", describe(&output));
    let summary = summary.unwrap();
    assert!(summary["routes"]["unrouted"]["count"].as_u64().unwrap() > 0);
    let split = &summary["split_test"];
    assert_eq!(split["p_value"], 0.0, "{split}");
    assert_eq!(split["routes"]["unrouted"]["expected_share"], 0.0);
    assert_eq!(split["imbalanced"], true);
}

#[test]
fn experiment_file_gives_split() {
    let server = serve(&[
        "--routes",
        "baseline-predictor_1=70,enhanced-predictor_1=30",
    ]);
    let temp = tempfile::tempdir().unwrap();
    std::fs::copy(
        repo().join("scenarios/experiments/financial-ab-test-experiment.yaml"),
        temp.path().join("experiment.yaml"),
    )
    .unwrap();
    let text = format!(
        "{}\n[routes]\nexperiment = \"experiment.yaml\"\n",
        basic_scenario(&server.url)
    );
    let path = scenario(temp.path(), &text);
    let (output, summary) = run(&path, &temp.path().join("out"), &[]);
    assert!(output.status.success(), "{}", describe(&output));
    let split = &summary.unwrap()["split_test"];
    assert_eq!(split["routes"]["baseline-predictor"]["expected_share"], 0.7);
    assert_eq!(split["routes"]["enhanced-predictor"]["expected_share"], 0.3);
    assert!(split["source"]
        .as_str()
        .unwrap()
        .ends_with("experiment.yaml"));
}

/// Runs against a target whose every response is an error from `origin` and returns
/// `errors.by_origin`.
fn origins_of(origin: &str, with_hops: bool) -> (u64, Value) {
    let server = serve(&[
        "--error-rate",
        "1",
        "--error-origin",
        origin,
        "--hop-headers",
        "--routes",
        "a_1=1",
    ]);
    let temp = tempfile::tempdir().unwrap();
    let mut text = chain_scenario(&server.url, "50/s", "");
    if !with_hops {
        text = basic_scenario(&server.url);
    }
    let path = scenario(temp.path(), &text);
    let (output, summary) = run(&path, &temp.path().join("out"), &[]);
    assert!(output.status.code().is_some(), "{}", describe(&output));
    let summary = summary.expect("summary.json");
    let errors = summary["requests"]["errors"].as_u64().unwrap();
    (errors, summary["errors"]["by_origin"].clone())
}

#[test]
fn error_origins_told_apart() {
    for with_hops in [true, false] {
        for (origin, kind) in [
            ("ingress", "http_5xx"),
            ("mesh", "http_5xx"),
            ("model", "http_5xx"),
        ] {
            let (errors, by_origin) = origins_of(origin, with_hops);
            assert!(errors > 0);
            assert_eq!(
                by_origin[origin][kind].as_u64(),
                Some(errors),
                "{origin} with hops {with_hops}: {by_origin}"
            );
            assert_eq!(
                by_origin.as_object().unwrap().len(),
                1,
                "{origin} with hops {with_hops}: {by_origin}"
            );
        }
    }
}

#[test]
fn invalid_hop_rejected() {
    let temp = tempfile::tempdir().unwrap();
    for (extra, needle) in [
        (
            "[[hops]]\nname = \"x\"\nheader = \"x-t\"\nformat = \"minutes\"\n",
            "hops[0].format",
        ),
        (
            "[[hops]]\nname = \"network\"\nheader = \"x-t\"\nformat = \"seconds\"\n",
            "hops[0].name",
        ),
        (
            "[[hops]]\nname = \"x\"\nheader = \"x-t\"\nformat = \"server-timing\"\n",
            "hops[0].metric",
        ),
        (
            "[[hops]]\nname = \"x\"\nheader = \"x-t\"\nformat = \"seconds\"\norigin = \"cdn\"\n",
            "hops[0].origin",
        ),
        ("[routes]\nexpected = { a = -1 }\n", "routes.expected"),
        (
            "[routes]\nalpha = 2.0\nexpected = { a = 1 }\n",
            "routes.alpha",
        ),
        (
            "[routes]\nexperiment = \"missing.yaml\"\n",
            "routes.experiment",
        ),
        (
            "[model_metrics]\nurls = [\"ftp://x/metrics\"]\n",
            "model_metrics.urls",
        ),
    ] {
        let text = format!("{}\n{extra}", basic_scenario("http://127.0.0.1:9"));
        let path = scenario(temp.path(), &text);
        let (output, _) = run(&path, &temp.path().join("out"), &[]);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{extra}\n{}",
            describe(&output)
        );
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(needle), "{needle} not in {stderr}");
    }
}
