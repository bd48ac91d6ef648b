//! End-to-end checks of the open-loop generator against `inferload serve` on 127.0.0.1.

mod common;

use common::*;

fn f64_at(summary: &serde_json::Value, pointer: &str) -> f64 {
    summary
        .pointer(pointer)
        .and_then(serde_json::Value::as_f64)
        .unwrap_or_else(|| panic!("summary has no number at {pointer}: {summary}"))
}

fn u64_at(summary: &serde_json::Value, pointer: &str) -> u64 {
    summary
        .pointer(pointer)
        .and_then(serde_json::Value::as_u64)
        .unwrap_or_else(|| panic!("summary has no count at {pointer}: {summary}"))
}

#[test]
fn fixed_rate_sends_exact_count() {
    let _timing = timing_lock();
    let server = serve(&["--latency", "fixed:2ms"]);
    let temp = tempfile::tempdir().unwrap();
    let path = scenario(temp.path(), &basic_scenario(&server.url));
    let out = temp.path().join("out");
    let (output, summary) = run(
        &path,
        &out,
        &["--rate", "500/s", "--duration", "4s", "--warmup", "1s"],
    );
    assert!(output.status.success(), "{}", describe(&output));
    let summary = summary.expect("summary.json written");

    // A constant schedule of 500/s over 4 s releases requests at 0, 2 ms, ..., 3998 ms.
    assert_eq!(u64_at(&summary, "/requests/sent"), 2000);
    assert_eq!(u64_at(&summary, "/requests/ok"), 2000);
    assert_eq!(u64_at(&summary, "/requests/errors"), 0);
    assert_eq!(u64_at(&summary, "/requests/dropped"), 0);
    assert_eq!(u64_at(&summary, "/requests/warmup_sent"), 500);
    assert_eq!(u64_at(&summary, "/latency_ms/count"), 2000);
    let achieved = f64_at(&summary, "/load/achieved_rps");
    assert!(
        (achieved - 500.0).abs() / 500.0 < 0.005,
        "achieved {achieved}"
    );

    // The target sleeps 2 ms; loopback and HTTP add about 0.1 ms here.
    let p50 = f64_at(&summary, "/latency_ms/p50");
    assert!((2.0..2.6).contains(&p50), "latency p50 {p50} ms");
}

#[test]
fn release_gap_groups_requests() {
    let _timing = timing_lock();
    let server = serve(&["--latency", "fixed:1ms"]);
    let temp = tempfile::tempdir().unwrap();
    let path = scenario(temp.path(), &basic_scenario(&server.url));
    let out = temp.path().join("out");
    let (output, summary) = run(
        &path,
        &out,
        &[
            "--rate",
            "4000/s",
            "--duration",
            "2s",
            "--release-gap",
            "1ms",
        ],
    );
    assert!(output.status.success(), "{}", describe(&output));

    let summary = summary.expect("summary.json written");
    assert_eq!(u64_at(&summary, "/requests/sent"), 8000);
    assert_eq!(summary["load"]["release_gap"], "1ms");
    // Requests 250 us apart, released at most once a millisecond: each wake-up sends about
    // four of them, due 0.75, 0.5, 0.25 and 0 ms before it, so half the releases are at least
    // 0.25 ms late. A late wake-up only adds to that; the histogram rounds within 0.1%.
    let lag_p50 = f64_at(&summary, "/schedule_lag_ms/p50");
    assert!(lag_p50 >= 0.249, "schedule lag p50 {lag_p50} ms");

    // The grouping delays releases but not the schedule: the rate is still exact.
    let achieved = f64_at(&summary, "/load/achieved_rps");
    assert!(
        (achieved - 4000.0).abs() / 4000.0 < 0.005,
        "achieved {achieved}"
    );
}

#[test]
fn stalls_show_in_latency_not_service() {
    let _timing = timing_lock();
    let server = serve(&[
        "--latency",
        "fixed:1ms",
        "--stall-every",
        "200",
        "--stall-for",
        "200ms",
    ]);
    let temp = tempfile::tempdir().unwrap();
    let path = scenario(temp.path(), &basic_scenario(&server.url));
    let out = temp.path().join("out");
    let (output, summary) = run(
        &path,
        &out,
        &["--rate", "200/s", "--duration", "5s", "--connections", "1"],
    );
    assert!(output.status.success(), "{}", describe(&output));
    let summary = summary.expect("summary.json written");

    // Each 200 ms stall holds the one connection while 40 more requests fall due, so about a
    // fifth of all requests wait between 0 and 200 ms: latency p99 is near 196 ms. Service
    // time only sees the stall in the 5 stalled requests themselves (0.5%).
    let latency_p99 = f64_at(&summary, "/latency_ms/p99");
    let service_p99 = f64_at(&summary, "/service_time_ms/p99");
    assert!(latency_p99 >= 100.0, "latency p99 {latency_p99} ms");
    assert!(service_p99 < 10.0, "service time p99 {service_p99} ms");
    assert_eq!(u64_at(&summary, "/requests/sent"), 1000);
    assert_eq!(u64_at(&summary, "/requests/ok"), 1000);
}

#[test]
fn lognormal_target_percentiles() {
    // A lognormal(median 5 ms, p99 20 ms) target: with 2,000 seeded draws the sample median
    // lies within 4.5..5.8 ms and the p99 within 15..26 ms, plus ~0.1 ms of loopback.
    let _timing = timing_lock();
    let server = serve(&["--latency", "lognormal:median=5ms,p99=20ms", "--seed", "9"]);
    let temp = tempfile::tempdir().unwrap();
    let path = scenario(temp.path(), &basic_scenario(&server.url));
    let out = temp.path().join("out");
    let (output, summary) = run(
        &path,
        &out,
        &["--rate", "400/s", "--duration", "5s", "--connections", "64"],
    );
    assert!(output.status.success(), "{}", describe(&output));
    let summary = summary.expect("summary.json written");
    let p50 = f64_at(&summary, "/service_time_ms/p50");
    let p99 = f64_at(&summary, "/service_time_ms/p99");
    assert!((4.5..5.8).contains(&p50), "service p50 {p50} ms");
    assert!((15.0..26.0).contains(&p99), "service p99 {p99} ms");
}

#[test]
fn closed_loop_keeps_concurrency() {
    let server = serve(&["--latency", "fixed:5ms"]);
    let temp = tempfile::tempdir().unwrap();
    let path = scenario(temp.path(), &basic_scenario(&server.url));
    let out = temp.path().join("out");
    let (output, summary) = run(&path, &out, &["--concurrency", "4", "--duration", "2s"]);
    assert!(output.status.success(), "{}", describe(&output));
    let summary = summary.expect("summary.json written");
    // 4 requests in flight at ~5.2 ms each: about 770 req/s; well above 400 and at most 800.
    let achieved = f64_at(&summary, "/load/achieved_rps");
    assert!((400.0..=800.0).contains(&achieved), "achieved {achieved}");
    assert_eq!(summary["load"]["mode"], "closed");
    let sent = u64_at(&summary, "/requests/sent");
    let done = u64_at(&summary, "/requests/ok")
        + u64_at(&summary, "/requests/errors")
        + u64_at(&summary, "/requests/in_flight_at_end");
    assert_eq!(sent, done);
}

#[test]
fn drop_policy_counts_drops() {
    let server = serve(&["--latency", "fixed:50ms"]);
    let temp = tempfile::tempdir().unwrap();
    let text =
        basic_scenario(&server.url) + "max_in_flight = 2\nat_cap = \"drop\"\nconnections = 2\n";
    let path = scenario(temp.path(), &text);
    let out = temp.path().join("out");
    let (output, summary) = run(&path, &out, &["--rate", "200/s", "--duration", "1s"]);
    assert!(output.status.success(), "{}", describe(&output));
    let summary = summary.expect("summary.json written");
    // Two slots of 50 ms serve at most 40 req/s of the 200 due, so most are dropped.
    let sent = u64_at(&summary, "/requests/sent");
    let dropped = u64_at(&summary, "/requests/dropped");
    assert_eq!(sent + dropped, 200);
    assert!(dropped >= 140, "dropped {dropped}");
    assert_eq!(u64_at(&summary, "/requests/ok"), sent);
}

#[test]
fn errors_counted_by_kind() {
    let server = serve(&["--error-rate", "0.5", "--seed", "4"]);
    let temp = tempfile::tempdir().unwrap();
    let path = scenario(temp.path(), &basic_scenario(&server.url));
    let out = temp.path().join("out");
    let (output, summary) = run(&path, &out, &["--rate", "400/s", "--duration", "1s"]);
    assert!(output.status.success(), "{}", describe(&output));
    let summary = summary.expect("summary.json written");
    let errors = u64_at(&summary, "/errors/by_kind/http_5xx");
    assert_eq!(u64_at(&summary, "/requests/errors"), errors);
    assert_eq!(u64_at(&summary, "/requests/ok") + errors, 400);
    // Binomial(400, 0.5): 5 standard deviations is +-50.
    assert!((150..=250).contains(&errors), "5xx count {errors}");
    let top = &summary["errors"]["top_bodies"][0]["body"];
    assert!(top.as_str().unwrap().contains("simulated failure"), "{top}");
}

#[test]
fn refused_connections_are_errors() {
    // Bind and drop a listener to get a port that refuses connections.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let temp = tempfile::tempdir().unwrap();
    let text = basic_scenario(&format!("http://127.0.0.1:{port}")) + "[target.embedded]\n";
    let text = text.replace("[target.embedded]\n", "");
    let text = text.replace("model = \"m\"", "model = \"m\"\npreflight = false");
    let path = scenario(temp.path(), &text);
    let out = temp.path().join("out");
    let (output, summary) = run(&path, &out, &["--rate", "50/s", "--duration", "1s"]);
    assert!(output.status.success(), "{}", describe(&output));
    let summary = summary.expect("summary.json written");
    assert_eq!(u64_at(&summary, "/errors/by_kind/connect_refused"), 50);
    assert_eq!(u64_at(&summary, "/requests/ok"), 0);
}

#[test]
fn unreachable_target_exits_1() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let temp = tempfile::tempdir().unwrap();
    let path = scenario(
        temp.path(),
        &basic_scenario(&format!("http://127.0.0.1:{port}")),
    );
    let (output, summary) = run(&path, &temp.path().join("out"), &[]);
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    assert!(summary.is_none());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(&format!("127.0.0.1:{port}")), "{stderr}");
}

#[test]
fn unknown_model_fails_preflight() {
    let server = serve(&["--models", "known"]);
    let temp = tempfile::tempdir().unwrap();
    let path = scenario(temp.path(), &basic_scenario(&server.url));
    let (output, _) = run(&path, &temp.path().join("out"), &[]);
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("/v2/models/m/ready"), "{stderr}");
    assert!(stderr.contains("404"), "{stderr}");
}

#[test]
fn bad_scenarios_name_the_key() {
    let cases: &[(&str, &str)] = &[
        ("[target]\nurl = \"http://127.0.0.1:1\"\nmodel = \"m\"\nbogus = 1\n", "bogus"),
        ("[target]\nurl = \"http://127.0.0.1:1\"\nmodel = \"m\"\n[load]\nrate = \"fast\"\n", "rate"),
        ("[target]\nurl = \"http://127.0.0.1:1\"\nmodel = \"m\"\n[load]\nrate = \"0/s\"\n", "rate"),
        ("[target]\nurl = \"ftp://x\"\nmodel = \"m\"\n[load]\nrate = \"1/s\"\n", "target.url"),
        ("[target]\nurl = \"http://127.0.0.1:1\"\nmodel = \"m\"\n[payload]\nfile = \"none.json\"\n[load]\nrate = \"1/s\"\n", "payload.file"),
        ("[target]\nurl = \"http://127.0.0.1:1\"\nmodel = \"m\"\n[payload]\nfile = \"payloads/quickstart.json\"\n[load]\nrate = \"1/s\"\nduration = \"0s\"\n", "load.duration"),
        ("[target]\nurl = \"http://127.0.0.1:1\"\nmodel = \"m\"\n[payload]\nfile = \"payloads/quickstart.json\"\n[load]\nrate = \"1/s\"\nconcurrency = 3\n", "load.concurrency"),
        ("[target\nurl=", "line 1"),
    ];
    for (text, expected) in cases {
        let temp = tempfile::tempdir().unwrap();
        let path = scenario(temp.path(), text);
        let output = inferload(&["run", path.to_str().unwrap(), "-q"]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(
            output.status.code(),
            Some(2),
            "case {text:?}: {}",
            describe(&output)
        );
        assert!(
            stderr.contains(expected),
            "case {text:?} should name {expected}: {stderr}"
        );
        assert!(
            stderr.contains("scenario.toml"),
            "case {text:?} should name the file: {stderr}"
        );
        assert!(
            !stderr.contains("panicked"),
            "case {text:?} panicked: {stderr}"
        );
    }
}

#[test]
fn quickstart_runs_embedded() {
    let temp = tempfile::tempdir().unwrap();
    let out = temp.path().join("out");
    let (output, summary) = run(
        &repo().join("scenarios/quickstart.toml"),
        &out,
        &["--duration", "2s", "--warmup", "0s"],
    );
    assert!(output.status.success(), "{}", describe(&output));
    let summary = summary.expect("summary.json written");
    for key in [
        "schema_version",
        "partial",
        "requests",
        "load",
        "latency_ms",
        "service_time_ms",
        "routes",
        "hops",
        "gates",
        "passed",
    ] {
        assert!(summary.get(key).is_some(), "summary.json lacks {key}");
    }
    assert_eq!(u64_at(&summary, "/requests/sent"), 500);
    let routes = summary["routes"].as_object().unwrap();
    assert!(routes.contains_key("baseline-predictor_1"), "{routes:?}");
    assert!(routes.contains_key("enhanced-predictor_1"), "{routes:?}");
}
