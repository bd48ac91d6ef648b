//! gRPC through the real chain started by `testbed/up`: NGINX's gRPC listener -> Envoy (70/30
//! experiment) -> MLServer's gRPC port.

mod common;

use common::*;
use serde_json::Value;

fn count(summary: &Value, pointer: &str) -> u64 {
    summary
        .pointer(pointer)
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("summary has no count at {pointer}: {summary}"))
}

/// Returns the success count of the route whose label starts with `prefix`.
fn route_count(summary: &Value, prefix: &str) -> u64 {
    let routes = summary["routes"].as_object().expect("routes is an object");
    routes
        .iter()
        .find(|(label, _)| label.starts_with(prefix))
        .map(|(_, route)| route["count"].as_u64().unwrap())
        .unwrap_or_else(|| panic!("no route {prefix}* in {routes:?}"))
}

#[test]
fn grpc_scenario_splits_seventy_thirty() {
    let testbed = testbed();
    let temp = tempfile::tempdir().unwrap();
    let out = temp.path().join("out");
    // The shipped scenario, shortened: 8 s at 100 req/s after a 1 s warm-up.
    let (output, summary) = run(
        &repo().join("scenarios/financial-ab-test-grpc.toml"),
        &out,
        &[
            "--url",
            &testbed.grpc_url,
            "--duration",
            "8s",
            "--warmup",
            "1s",
        ],
    );
    assert!(output.status.success(), "{}", describe(&output));
    let summary = summary.expect("summary.json written");

    assert_eq!(summary["target"]["transport"], "grpc");
    assert_eq!(count(&summary, "/requests/sent"), 800, "{summary}");
    assert_eq!(count(&summary, "/requests/errors"), 0, "{summary}");
    assert_eq!(count(&summary, "/requests/ok"), 800, "{summary}");
    assert_eq!(count(&summary, "/requests/dropped"), 0, "{summary}");
    let achieved = summary["load"]["achieved_rps"].as_f64().unwrap();
    assert!((achieved - 100.0).abs() < 1.0, "achieved {achieved} req/s");

    // Every label comes from x-seldon-route in the initial metadata of a success.
    let baseline = route_count(&summary, "baseline-predictor");
    let enhanced = route_count(&summary, "enhanced-predictor");
    assert_eq!(baseline + enhanced, 800, "{summary}");
    // Envoy picks each call's cluster at random with weights 70/30, so the baseline count is
    // Binomial(800, 0.7); reject the split only at the 0.1% level.
    let p = binomial_p_value(baseline, 800, 0.7);
    assert!(
        p > 0.001,
        "baseline {baseline} of 800 is unlikely under 70/30 (p = {p})"
    );
    let reported = summary["split_test"]["p_value"].as_f64().unwrap();
    assert!(reported > 0.001, "split_test.p_value {reported}");

    // The hop headers of NGINX and Envoy arrive in the gRPC initial metadata too.
    for hop in ["ingress", "mesh", "model-server"] {
        assert_eq!(count(&summary, &format!("/hops/{hop}/missing")), 0, "{hop}");
        assert_eq!(count(&summary, &format!("/hops/{hop}/invalid")), 0, "{hop}");
    }
}
