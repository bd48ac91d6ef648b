//! Exit statuses and summary verdicts of SLO gates, end to end against `inferload serve`.

mod common;

use common::*;

#[test]
fn failing_gate_exits_3() {
    let server = serve(&["--latency", "fixed:2ms"]);
    let temp = tempfile::tempdir().unwrap();
    let path = scenario(temp.path(), &basic_scenario(&server.url));
    let out = temp.path().join("out");
    let (output, summary) = run(&path, &out, &["--gate", "p99<1ms", "--gate", "p50<1s"]);
    assert_eq!(output.status.code(), Some(3), "{}", describe(&output));
    let summary = summary.expect("summary.json written");
    assert_eq!(summary["passed"], false);
    let gates = summary["gates"].as_array().unwrap();
    assert_eq!(gates.len(), 2);
    assert_eq!(gates[0]["name"], "p99<1ms");
    assert_eq!(gates[0]["metric"], "latency_ms.p99");
    assert_eq!(gates[0]["pass"], false);
    assert_eq!(gates[0]["threshold"], 1.0);
    let value = gates[0]["value"].as_f64().unwrap();
    assert!(value >= 2.0, "p99 {value} ms against a 2 ms target");
    assert_eq!(gates[1]["pass"], true);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("FAIL"), "{stdout}");
}

#[test]
fn passing_gates_exit_0() {
    let server = serve(&["--latency", "fixed:2ms"]);
    let temp = tempfile::tempdir().unwrap();
    let text =
        basic_scenario(&server.url) + "\n[gates]\nerror_rate = \"<0.1%\"\nachieved = \">=0.95\"\n";
    let path = scenario(temp.path(), &text);
    let out = temp.path().join("out");
    let (output, summary) = run(&path, &out, &["--gate", "p99<1s"]);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let summary = summary.expect("summary.json written");
    assert_eq!(summary["passed"], true);
    let names: Vec<&str> = summary["gates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["achieved>=0.95", "error_rate<0.1%", "p99<1s"]);
}

#[test]
fn gate_on_missing_key_fails() {
    let server = serve(&[]);
    let temp = tempfile::tempdir().unwrap();
    let path = scenario(temp.path(), &basic_scenario(&server.url));
    let out = temp.path().join("out");
    let (output, summary) = run(&path, &out, &["--gate", "hop:ingress.p95<5ms"]);
    assert_eq!(output.status.code(), Some(3), "{}", describe(&output));
    let gate = &summary.expect("summary.json written")["gates"][0];
    assert_eq!(gate["pass"], false);
    assert!(gate["value"].is_null());
    let message = gate["message"].as_str().unwrap();
    assert!(message.contains("hops.ingress"), "{message}");
}

#[test]
fn malformed_gates_exit_2() {
    let temp = tempfile::tempdir().unwrap();
    let path = scenario(temp.path(), &basic_scenario("http://127.0.0.1:1"));
    let cases = [
        (vec!["--gate", "p99<50"], "no unit"),
        (vec!["--gate", "p99~5ms"], "no comparison"),
        (
            vec!["--gate", "achieved>=0.9", "--concurrency", "2"],
            "closed loop",
        ),
    ];
    for (args, expected) in cases {
        let (output, summary) = run(&path, &temp.path().join("out"), &args);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?}: {}",
            describe(&output)
        );
        assert!(summary.is_none(), "{args:?} wrote a summary");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert!(
            stderr.contains(args[1]),
            "{args:?} should name the gate: {stderr}"
        );
    }
    let text = basic_scenario("http://127.0.0.1:1") + "\n[gates]\np99 = 50\n";
    let path = scenario(temp.path(), &text);
    let (output, _) = run(&path, &temp.path().join("out"), &[]);
    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
    assert!(String::from_utf8_lossy(&output.stderr).contains("gates.p99"));
}
