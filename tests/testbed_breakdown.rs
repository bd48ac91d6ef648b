//! The latency breakdown, the split test and the model servers' counts through the real chain
//! NGINX -> Envoy -> MLServer started by `testbed/up`, with `scenarios/financial-ab-test.toml`.
//!
//! The count comparison assumes that nothing else sends inference requests to the testbed
//! while the test runs.

mod common;

use std::path::Path;

use common::*;
use serde_json::Value;

/// Copies the financial scenario with its payload and experiment into `dir`, pointed at the
/// running testbed.
fn financial_scenario(dir: &Path, testbed: &Testbed) -> std::path::PathBuf {
    let scenarios = repo().join("scenarios");
    for relative in [
        "payloads/financial-1x10x35.json",
        "experiments/financial-ab-test-experiment.yaml",
    ] {
        let target = dir.join(relative);
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::copy(scenarios.join(relative), &target).unwrap();
    }
    let text = std::fs::read_to_string(scenarios.join("financial-ab-test.toml"))
        .unwrap()
        .replace(
            "http://127.0.0.1:18080/financial-inference",
            &testbed.rest_url,
        )
        .replace("http://127.0.0.1:18092/metrics", &testbed.metrics_url);
    let path = dir.join("financial-ab-test.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn mean(summary: &Value, component: &str) -> f64 {
    summary["hops"][component]["latency_ms"]["mean"]
        .as_f64()
        .unwrap_or_else(|| panic!("no mean for {component} in {}", summary["hops"]))
}

fn total_mean(summary: &Value, component: &str) -> f64 {
    summary["hops"][component]["total_ms"]["mean"]
        .as_f64()
        .unwrap_or_else(|| panic!("no total for {component} in {}", summary["hops"]))
}

#[test]
fn financial_breakdown_through_chain() {
    let testbed = testbed();
    let temp = tempfile::tempdir().unwrap();
    let path = financial_scenario(temp.path(), &testbed);
    let (output, summary) = run(
        &path,
        &temp.path().join("out"),
        &["--rate", "100/s", "--duration", "10s", "--warmup", "2s"],
    );
    assert!(output.status.success(), "{}", describe(&output));
    let summary = summary.expect("summary.json");
    assert_eq!(summary["requests"]["errors"], 0, "{}", summary["errors"]);
    assert_eq!(summary["requests"]["ok"], 1000);

    // inferload's successes per model, warm-up included, equal MLServer's success counters
    // over the same run.
    let checks = summary["model_metrics"]["count_check"]
        .as_object()
        .expect("count_check");
    for model in ["baseline-predictor", "enhanced-predictor"] {
        let check = &checks[model];
        assert_eq!(check["equal"], true, "{model}: {check}");
        assert_eq!(check["inferload"], check["server"], "{model}: {check}");
    }
    let window = &summary["model_metrics"]["total"];
    assert!(window["count"].as_f64().unwrap() > 0.0, "{window}");

    // Every component is there, none negative.
    let components = [
        "ingress",
        "mesh",
        "model-server",
        "model",
        "network",
        "client-wait",
    ];
    let mut sum = 0.0;
    for name in components {
        let hop = &summary["hops"][name];
        for key in ["mean", "min", "p50", "p95", "max"] {
            if let Some(value) = hop["latency_ms"][key].as_f64() {
                assert!(value >= 0.0, "{name}.{key} = {value}: {hop}");
            }
        }
        sum += mean(&summary, name);
    }

    // The components partition each request's latency, so their means add up to the mean
    // latency, apart from components whose signed mean fell below 0 and was raised to 0 and
    // the model time, which comes from server metrics over a window that only approximately
    // matches the measured one. Sums 8.6% and 8.9% over the mean latency were seen here, so
    // the bound is 10%, plus the coarsest header resolution because NGINX reports whole
    // milliseconds. On an idle machine a 1.62 ms mean latency met an NGINX request time of
    // 1.99 ms, so 955 of 1000 network values were raised to 0 and the sum reached 2.04 ms.
    // NOTE: the excess over a pure partition is not yet explained component by component.
    let latency = summary["latency_ms"]["mean"].as_f64().unwrap();
    let resolution = components
        .iter()
        .filter_map(|name| summary["hops"][name]["resolution_ms"].as_f64())
        .fold(0.0, f64::max);
    assert!(
        (sum - latency).abs() <= latency * 0.10 + resolution,
        "components add up to {sum} ms, mean latency {latency} ms: {}",
        summary["hops"]
    );

    // Independent sources nest: MLServer's own inference mean fits inside the time Envoy
    // waited for MLServer, which fits inside NGINX's wait for Envoy and NGINX's request time,
    // each within 1 ms (their resolution).
    let model = mean(&summary, "model");
    let envoy = total_mean(&summary, "model-server");
    let upstream = total_mean(&summary, "mesh");
    let nginx = total_mean(&summary, "ingress");
    let service = summary["service_time_ms"]["mean"].as_f64().unwrap();
    assert!(
        model > 0.0 && model <= envoy + 1.0,
        "model {model}, envoy {envoy}"
    );
    assert!(
        envoy <= upstream + 1.0,
        "envoy {envoy}, upstream {upstream}"
    );
    assert!(
        upstream <= nginx + 1.0,
        "upstream {upstream}, nginx {nginx}"
    );
    assert!(nginx <= service + 1.0, "nginx {nginx}, service {service}");

    // The split test against the Seldon Experiment file.
    let split = &summary["split_test"];
    let p_value = split["p_value"].as_f64().expect("split_test.p_value");
    assert!((0.0..=1.0).contains(&p_value), "{split}");
    assert_eq!(split["routes"]["baseline-predictor"]["expected_share"], 0.7);
    assert_eq!(split["routes"]["enhanced-predictor"]["expected_share"], 0.3);
}

#[test]
fn chain_error_origins() {
    let testbed = testbed();
    let temp = tempfile::tempdir().unwrap();
    let path = financial_scenario(temp.path(), &testbed);
    let cases = [
        // No Envoy route for this seldon-model: Envoy's own 404 with an empty body.
        (
            "seldon-model = \"financial-ab-test-experiment.experiment\"",
            "seldon-model = \"no-such-model\"",
            "mesh",
        ),
        // NGINX's default server responds to another Host with its own 404 page.
        (
            "host = \"ml-api.local\"",
            "host = \"other.local\"",
            "ingress",
        ),
    ];
    let scenario_text = std::fs::read_to_string(&path).unwrap();
    // Without model metrics and preflight: these requests never reach a model.
    let base_text = scenario_text[..scenario_text.find("[model_metrics]").unwrap()]
        .replace("timeout = \"5s\"", "timeout = \"5s\"\npreflight = false");
    for (index, (from, to, origin)) in cases.into_iter().enumerate() {
        let args = ["--rate", "20/s", "--duration", "1s", "--warmup", "0s"];
        assert!(base_text.contains(from), "{from}");
        let text = base_text.replace(from, to);
        let case_path = temp.path().join(format!("case-{index}.toml"));
        std::fs::write(&case_path, text).unwrap();
        let out = temp.path().join(format!("out-{index}"));
        let (output, summary) = run(&case_path, &out, &args);
        assert!(output.status.code().is_some(), "{}", describe(&output));
        let summary = summary.expect("summary.json");
        let errors = summary["requests"]["errors"].as_u64().unwrap();
        assert_eq!(errors, 20, "{origin}: {}", summary["errors"]);
        assert_eq!(
            summary["errors"]["by_origin"][origin]["http_4xx"].as_u64(),
            Some(errors),
            "{origin}: {}",
            summary["errors"]
        );
    }
}
