//! End to end through the real chain: NGINX -> Envoy (70/30 experiment) -> MLServer, started by
//! `testbed/up`.

mod common;

use common::*;

#[test]
fn binomial_p_value_matches_scipy() {
    // scipy.stats.binomtest(k, n, p).pvalue with scipy 1.17.1:
    //   (350, 500, 0.7) -> 1.0, (330, 500, 0.7) -> 0.05688249189782402,
    //   (300, 500, 0.7) -> 2.0240562868990364e-06.
    assert!((binomial_p_value(350, 500, 0.7) - 1.0).abs() < 1e-9);
    assert!((binomial_p_value(330, 500, 0.7) - 0.056_882_491_897_824).abs() < 1e-9);
    let tail = binomial_p_value(300, 500, 0.7);
    assert!((tail - 2.024_056_286_899e-6).abs() < 1e-15, "{tail}");
}

#[test]
fn chain_splits_seventy_thirty() {
    let testbed = testbed();
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
url = "{}"
model = "financial-ab-test-experiment"
host = "ml-api.local"
headers = {{ "seldon-model" = "financial-ab-test-experiment.experiment" }}

[payload]
file = "payloads/financial.json"

[load]
rate = "50/s"
duration = "10s"
warmup = "1s"
connections = 4
"#,
        testbed.rest_url
    );
    let path = temp.path().join("scenario.toml");
    std::fs::write(&path, text).unwrap();
    let out = temp.path().join("out");
    let (output, summary) = run(&path, &out, &[]);
    assert!(output.status.success(), "{}", describe(&output));
    let summary = summary.expect("summary.json written");

    assert_eq!(summary["requests"]["sent"], 500, "{summary}");
    assert_eq!(summary["requests"]["errors"], 0, "{summary}");
    assert_eq!(summary["requests"]["ok"], 500, "{summary}");
    let achieved = summary["load"]["achieved_rps"].as_f64().unwrap();
    assert!((achieved - 50.0).abs() < 0.5, "achieved {achieved}");

    let routes = summary["routes"].as_object().expect("routes object");
    let baseline = routes
        .iter()
        .find(|(label, _)| label.starts_with("baseline-predictor"))
        .map(|(_, r)| r["count"].as_u64().unwrap())
        .unwrap_or_else(|| panic!("no baseline route in {routes:?}"));
    let enhanced = routes
        .iter()
        .find(|(label, _)| label.starts_with("enhanced-predictor"))
        .map(|(_, r)| r["count"].as_u64().unwrap())
        .unwrap_or_else(|| panic!("no enhanced route in {routes:?}"));
    assert_eq!(baseline + enhanced, 500, "{routes:?}");
    // Envoy picks each request's cluster at random with weights 70/30, so the baseline count is
    // Binomial(500, 0.7); reject the split only at the 0.1% level.
    let p = binomial_p_value(baseline, 500, 0.7);
    assert!(
        p > 0.001,
        "baseline {baseline} of 500 is unlikely under 70/30 (p = {p})"
    );
}
