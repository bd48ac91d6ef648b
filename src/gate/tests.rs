//! Parser and evaluator checks against hand-written summaries.

use serde_json::json;

use super::*;

fn summary() -> Value {
    json!({
        "requests": {"sent": 1000, "ok": 990, "errors": 10, "dropped": 0, "success_rate": 0.99},
        "load": {"target_rps": 100.0, "achieved_rps": 99.5},
        "errors": {"by_kind": {"timeout": 10}, "status_codes": {"200": 990},
                   "grpc_status_codes": {"UNAVAILABLE": 4}},
        "reconnects": 3,
        "latency_ms": {"count": 990, "mean": 3.0, "min": 1.0, "p50": 2.5, "p90": 4.0,
                       "p95": 5.0, "p99": 9.5, "p999": 20.0, "max": 31.0},
        "service_time_ms": {"count": 990, "mean": 2.0, "min": 1.0, "p50": 2.0, "p90": 3.0,
                            "p95": 4.0, "p99": 6.0, "p999": 10.0, "max": 12.0},
        "schedule_lag_ms": null,
        "routes": {
            "baseline-predictor_1": {"count": 700, "share": 0.707, "errors": 0,
                "latency_ms": {"count": 700, "p99": 8.0, "p50": 2.0},
                "service_time_ms": {"count": 700, "p99": 5.0}},
            "a_1+p.pipeline": {"count": 290, "share": 0.293, "errors": 0,
                "latency_ms": {"count": 290, "p99": 12.0, "p999": 14.0},
                "service_time_ms": {"count": 0, "p99": 0.0}}
        },
        "hops": {"ingress": {"latency_ms": {"count": 990, "p95": 0.4}}},
        "split_test": {"p_value": 0.2}
    })
}

fn value_of(text: &str) -> Option<f64> {
    Gate::parse(text).unwrap().evaluate(&summary()).value
}

fn passes(text: &str) -> bool {
    Gate::parse(text).unwrap().evaluate(&summary()).pass
}

#[test]
fn parses_operators_and_units() {
    let cases = [
        ("p95<50ms", Op::Lt, 50.0),
        ("p99<=1s", Op::Le, 1000.0),
        ("p99 < 250us", Op::Lt, 0.25),
        ("max<2m", Op::Lt, 120_000.0),
        ("error_rate<0.1%", Op::Lt, 0.001),
        ("error_rate<0.001", Op::Lt, 0.001),
        ("achieved>=0.99", Op::Ge, 0.99),
        ("achieved>=99%", Op::Ge, 0.99),
        ("split.p_value>0.01", Op::Gt, 0.01),
        ("requests.dropped==0", Op::Eq, 0.0),
        ("achieved_rps>250/s", Op::Gt, 250.0),
    ];
    for (text, op, threshold) in cases {
        let gate = Gate::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(gate.op, op, "{text}");
        assert!(
            (gate.threshold - threshold).abs() < 1e-12,
            "{text}: threshold {}",
            gate.threshold
        );
    }
    assert_eq!(Gate::parse(" p99 <  50ms ").unwrap().name, "p99<50ms");
}

#[test]
fn metrics_resolve_to_summary_keys() {
    let cases = [
        ("p99<1s", "latency_ms.p99"),
        ("latency.p50<1s", "latency_ms.p50"),
        ("p99.9<1s", "latency_ms.p999"),
        ("service.p99<10ms", "service_time_ms.p99"),
        ("service_time.p95<10ms", "service_time_ms.p95"),
        (
            "route:baseline-predictor_1.p99<30ms",
            "routes.baseline-predictor_1.latency_ms.p99",
        ),
        (
            "route:baseline-predictor_1.service.p99<30ms",
            "routes.baseline-predictor_1.service_time_ms.p99",
        ),
        (
            "route:a_1+p.pipeline.p99.9<1s",
            "routes.a_1+p.pipeline.latency_ms.p999",
        ),
        (
            "route:a_1+p.pipeline.share>0.2",
            "routes.a_1+p.pipeline.share",
        ),
        ("hop:ingress.p95<5ms", "hops.ingress.latency_ms.p95"),
        ("split.p_value>0.01", "split_test.p_value"),
        ("errors.by_kind.timeout<5", "errors.by_kind.timeout"),
        (
            "errors.grpc_status_codes.UNAVAILABLE==0",
            "errors.grpc_status_codes.UNAVAILABLE",
        ),
        ("reconnects<10", "reconnects"),
    ];
    for (text, key) in cases {
        let gate = Gate::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(gate.metric.describe, key, "{text}");
    }
}

#[test]
fn evaluates_values_and_verdicts() {
    assert_eq!(value_of("p99<50ms"), Some(9.5));
    assert!(passes("p99<50ms"));
    assert!(!passes("p99<9.5ms"));
    assert!(passes("p99<=9.5ms"));
    assert!(!passes("p99<1ms"));
    assert_eq!(value_of("error_rate<1%"), Some(0.01));
    assert!(!passes("error_rate<1%"));
    assert!(passes("error_rate<=1%"));
    assert_eq!(value_of("achieved>=0.99"), Some(0.995));
    assert!(passes("achieved>=0.99"));
    assert!(!passes("achieved>=99.9%"));
    assert_eq!(value_of("route:a_1+p.pipeline.p99<20ms"), Some(12.0));
    assert_eq!(
        value_of("route:baseline-predictor_1.service.p99<20ms"),
        Some(5.0)
    );
    assert_eq!(value_of("hop:ingress.p95<5ms"), Some(0.4));
    assert!(passes("split.p_value>0.01"));
    assert!(passes("requests.dropped==0"));
    assert_eq!(
        value_of("errors.grpc_status_codes.UNAVAILABLE==0"),
        Some(4.0)
    );
    assert_eq!(value_of("errors.grpc_status_codes.INTERNAL==0"), Some(0.0));
    assert_eq!(value_of("reconnects<10"), Some(3.0));
    assert_eq!(value_of("errors.by_kind.timeout<5"), Some(10.0));
    assert_eq!(value_of("errors.by_kind.connect_refused==0"), Some(0.0));
    assert_eq!(value_of("drop_rate<1%"), Some(0.0));
}

#[test]
fn missing_keys_fail_with_name() {
    let cases = [
        ("hop:envoy.p95<5ms", "hops.envoy"),
        ("route:nope.p99<1s", "routes.nope"),
        ("schedule_lag.p99<1ms", "schedule_lag_ms"),
        ("route:a_1+p.pipeline.service.p99<1s", "no samples"),
        ("requests.bogus<1", "requests.bogus"),
    ];
    for (text, named) in cases {
        let result = Gate::parse(text).unwrap().evaluate(&summary());
        assert!(!result.pass, "{text} passed");
        assert_eq!(result.value, None, "{text}");
        let message = result.message.unwrap_or_default();
        assert!(message.contains(named), "{text}: {message}");
    }
    let mut without_split = summary();
    without_split.as_object_mut().unwrap().remove("split_test");
    let result = Gate::parse("split.p_value>0.01")
        .unwrap()
        .evaluate(&without_split);
    assert!(!result.pass);
    assert!(result.message.unwrap().contains("split_test"));
}

#[test]
fn malformed_gates_name_the_fix() {
    let cases = [
        ("p99", "no comparison"),
        ("p99<50", "no unit"),
        ("p99<50xs", "unknown unit `xs`"),
        ("p98<50ms", "`p98` is not a statistic"),
        ("<50ms", "metric is missing"),
        ("p99<", "threshold is missing"),
        ("p99<<5ms", "not a comparison"),
        ("p99!=5ms", "`!=`"),
        ("error_rate<abc", "does not start with a number"),
        ("requests.sent>5ms", "plain number"),
        ("bogus<1", "not a known metric"),
        ("route:.p99<1s", "names no statistic"),
        ("hop:ingress.service.p95<1ms", "hops record one time"),
    ];
    for (text, expected) in cases {
        let error = Gate::parse(text).expect_err(text);
        assert_eq!(error.gate, text.trim(), "{text}");
        assert!(
            error.to_string().contains(expected),
            "{text}: `{error}` should contain `{expected}`"
        );
    }
}

#[test]
fn closed_loop_rejects_rate_gates() {
    for text in ["achieved>=0.99", "drop_rate<1%", "schedule_lag.p99<1ms"] {
        let gate = Gate::parse(text).unwrap();
        assert!(gate.check_plan(true).is_ok(), "{text}");
        let error = gate.check_plan(false).expect_err(text);
        assert!(error.message.contains("closed loop"), "{error}");
    }
    assert!(Gate::parse("p99<1s").unwrap().check_plan(false).is_ok());
}

#[test]
fn scenario_table_and_list_forms() {
    let table: toml::Value = toml::from_str(
        r#"
p99 = "<50ms"
error_rate = "<0.1%"
"route:baseline-predictor_1.p99" = "<30ms"
achieved = [">=0.99", "<=1.01"]
"#,
    )
    .unwrap();
    let gates = from_toml(&table).unwrap();
    let names: Vec<&str> = gates.iter().map(|g| g.name.as_str()).collect();
    for expected in [
        "p99<50ms",
        "error_rate<0.1%",
        "route:baseline-predictor_1.p99<30ms",
        "achieved>=0.99",
        "achieved<=1.01",
    ] {
        assert!(names.contains(&expected), "{expected} not in {names:?}");
    }
    assert_eq!(gates.len(), 5);

    let list = toml::Value::Array(vec!["p95<5ms".into(), "hop:ingress.p95<1ms".into()]);
    assert_eq!(from_toml(&list).unwrap().len(), 2);

    let bad: toml::Value = toml::from_str("p99 = 50").unwrap();
    assert!(from_toml(&bad).unwrap_err().contains("gates.p99"));
    let bad: toml::Value = toml::from_str("p99 = \"<50\"").unwrap();
    let message = from_toml(&bad).unwrap_err();
    assert!(
        message.contains("gates.p99") && message.contains("no unit"),
        "{message}"
    );
}

#[test]
fn table_renders_verdicts() {
    let gates = [
        Gate::parse("p99<50ms").unwrap(),
        Gate::parse("p99<1ms").unwrap(),
        Gate::parse("hop:none.p95<1ms").unwrap(),
    ];
    let results = evaluate_all(&gates, &summary());
    let table = render_table(&results);
    let lines: Vec<&str> = table.lines().filter(|l| !l.is_empty()).collect();
    assert!(
        lines[1].starts_with("p99<50ms") && lines[1].ends_with("pass"),
        "{table}"
    );
    assert!(
        lines[2].contains("9.500 ms") && lines[2].ends_with("FAIL"),
        "{table}"
    );
    assert!(
        lines[3].contains("missing") && lines[3].ends_with("FAIL"),
        "{table}"
    );
    assert!(lines[4].contains("hops.none"), "{table}");
}
