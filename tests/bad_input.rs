//! Malformed scenarios, payloads, flags and targets: each is rejected before any load with exit
//! status 2 (1 for a target that cannot be reached or is not ready), and a message that names
//! the file, the key or value, and the fix. None may panic.

mod common;

use std::path::Path;
use std::process::Output;

use common::*;

const TARGET: &str = "[target]\nurl = \"http://127.0.0.1:9\"\nmodel = \"m\"\n";
const PAYLOAD: &str = "[payload]\nfile = \"payloads/quickstart.json\"\n";
const LOAD: &str = "[load]\nrate = \"10/s\"\nduration = \"1s\"\n";

/// One malformed input and what its error must say.
struct Case {
    name: &'static str,
    scenario: String,
    /// Extra files written beside the scenario: (relative path, contents).
    files: Vec<(&'static str, &'static str)>,
    args: Vec<&'static str>,
    exit: i32,
    /// Fragments the message must contain: the key or value, and a word of the fix.
    expect: Vec<&'static str>,
}

fn case(name: &'static str, scenario: String, expect: &[&'static str]) -> Case {
    Case {
        name,
        scenario,
        files: Vec::new(),
        args: Vec::new(),
        exit: 2,
        expect: expect.to_vec(),
    }
}

/// A valid scenario with `extra` appended to the `[load]` table.
fn with_load(extra: &str) -> String {
    format!("{TARGET}{PAYLOAD}{LOAD}{extra}")
}

/// A valid scenario with `extra` appended to the `[target]` table.
fn with_target(extra: &str) -> String {
    format!("{TARGET}{extra}{PAYLOAD}{LOAD}")
}

/// A scenario whose payload file is `payloads/bad.json` with `body`.
fn payload_case(name: &'static str, body: &'static str, expect: &[&'static str]) -> Case {
    let scenario = format!("{TARGET}[payload]\nfile = \"payloads/bad.json\"\n{LOAD}");
    Case {
        files: vec![("payloads/bad.json", body)],
        ..case(name, scenario, expect)
    }
}

fn scenario_cases() -> Vec<Case> {
    let mut cases = vec![
        // TOML syntax.
        case(
            "unclosed table header",
            "[target\nurl = \"x\"\n".into(),
            &["line 1", "TOML"],
        ),
        case(
            "unterminated string",
            format!("[target]\nurl = \"http://127.0.0.1:9\nmodel = \"m\"\n{PAYLOAD}{LOAD}"),
            &["line 2", "TOML"],
        ),
        case(
            "duplicate key",
            format!("{TARGET}model = \"n\"\n{PAYLOAD}{LOAD}"),
            &["model", "line 4"],
        ),
        case("empty file", String::new(), &["target", "missing"]),
        // Unknown keys.
        case(
            "unknown top-level key",
            format!("verbose = true\n{TARGET}{PAYLOAD}{LOAD}"),
            &["verbose", "expected one of"],
        ),
        case(
            "unknown target key",
            with_target("adress = \"x\"\n"),
            &["adress", "expected one of"],
        ),
        case(
            "misspelt load key",
            with_load("duraton = \"5s\"\n"),
            &["duraton", "duration"],
        ),
        case(
            "unknown embedded key",
            format!("{TARGET}[target.embedded]\nlatncy = \"fixed:1ms\"\n{PAYLOAD}{LOAD}")
                .replace("http://127.0.0.1:9", "embedded"),
            &["latncy", "latency"],
        ),
        case(
            "unknown section",
            format!("{TARGET}{PAYLOAD}{LOAD}[report]\nformat = \"html\"\n"),
            &["report", "expected one of"],
        ),
        // Wrong units and values.
        case(
            "rate without a number",
            format!("{TARGET}{PAYLOAD}[load]\nrate = \"fast\"\n"),
            &["rate", "fast", "250/s"],
        ),
        case(
            "rate with an unknown unit",
            format!("{TARGET}{PAYLOAD}[load]\nrate = \"10/fortnight\"\n"),
            &["rate", "fortnight", "N/s"],
        ),
        case(
            "zero rate",
            format!("{TARGET}{PAYLOAD}[load]\nrate = \"0/s\"\n"),
            &["rate", "0/s", "greater than zero"],
        ),
        case(
            "negative rate",
            format!("{TARGET}{PAYLOAD}[load]\nrate = \"-5/s\"\n"),
            &["rate", "-5/s", "greater than zero"],
        ),
        case(
            "rate below one a day",
            format!("{TARGET}{PAYLOAD}[load]\nrate = \"1e-300/s\"\n"),
            &["rate", "1e-300/s", "1/min"],
        ),
        case(
            "zero rate as an integer",
            format!("{TARGET}{PAYLOAD}[load]\nrate = 0\n"),
            &["rate", "greater than zero"],
        ),
        case(
            "zero duration",
            format!("{TARGET}{PAYLOAD}[load]\nrate = \"1/s\"\nduration = \"0s\"\n"),
            &["load.duration", "30s"],
        ),
        case(
            "duration without a unit",
            format!("{TARGET}{PAYLOAD}[load]\nrate = \"1/s\"\nduration = \"30\"\n"),
            &["duration", "30", "unit"],
        ),
        case(
            "duration as a bare integer",
            format!("{TARGET}{PAYLOAD}[load]\nrate = \"1/s\"\nduration = 30\n"),
            &["duration", "30", "unit"],
        ),
        case(
            "warmup that is not a duration",
            with_load("warmup = \"soon\"\n"),
            &["warmup", "soon", "30s"],
        ),
        case(
            "zero timeout",
            with_target("timeout = \"0s\"\n"),
            &["target.timeout", "5s"],
        ),
        case(
            "zero connect timeout",
            with_target("connect_timeout = \"0ms\"\n"),
            &["target.connect_timeout", "3s"],
        ),
        case(
            "size with an unknown unit",
            with_target("max_response_body = \"4 parsecs\"\n"),
            &["max_response_body", "parsecs", "MiB"],
        ),
        case(
            "zero response body limit",
            with_target("max_response_body = \"0\"\n"),
            &["target.max_response_body", "4MiB"],
        ),
        case(
            "too short interval",
            format!("{TARGET}{PAYLOAD}{LOAD}[output]\ninterval = \"10ms\"\n"),
            &["output.interval", "1s"],
        ),
        case(
            "zero concurrency",
            format!("{TARGET}{PAYLOAD}[load]\nconcurrency = 0\n"),
            &["load.concurrency", "1 or more"],
        ),
        case(
            "zero connections",
            with_load("connections = 0\n"),
            &["load.connections", "1 or more"],
        ),
        case(
            "zero max in flight",
            with_load("max_in_flight = 0\n"),
            &["load.max_in_flight", "1 or more"],
        ),
        case(
            "negative seed",
            with_load("arrival = \"poisson\"\nseed = -1\n"),
            &["seed", "-1"],
        ),
        case(
            "unknown arrival process",
            with_load("arrival = \"gaussian\"\n"),
            &["load.arrival", "gaussian", "poisson"],
        ),
        case(
            "unknown at_cap policy",
            with_load("at_cap = \"block\"\n"),
            &["load.at_cap", "block", "drop"],
        ),
        case(
            "connections in the millions",
            with_load("connections = 100000000\n"),
            &["load.connections", "100000000", "100000"],
        ),
        case(
            "stage concurrency in the millions",
            format!(
                "{TARGET}{PAYLOAD}[load]\n[[load.stages]]\nconcurrency = 5000000\nduration = \"1s\"\n"
            ),
            &["load.stages[0].concurrency", "5000000", "100000"],
        ),
        case(
            "release gap beyond the lateness threshold",
            with_load("release_gap = \"5ms\"\n"),
            &["release_gap", "5ms", "auto", "1ms"],
        ),
        case(
            "no rate and no concurrency",
            format!("{TARGET}{PAYLOAD}[load]\nduration = \"1s\"\n"),
            &["load.rate", "250/s"],
        ),
        // Conflicting options.
        case(
            "rate and concurrency together",
            with_load("concurrency = 3\n"),
            &["load.concurrency", "load.rate"],
        ),
        case(
            "arrival process in closed loop",
            format!("{TARGET}{PAYLOAD}[load]\nconcurrency = 2\narrival = \"poisson\"\n"),
            &["load.arrival", "open-loop", "remove"],
        ),
        // Wrong datatypes.
        case(
            "model as a number",
            format!("[target]\nurl = \"http://127.0.0.1:9\"\nmodel = 5\n{PAYLOAD}{LOAD}"),
            &["model", "integer", "string"],
        ),
        case(
            "headers as a string",
            with_target("headers = \"a: b\"\n"),
            &["headers", "table"],
        ),
        case(
            "preflight as a string",
            with_target("preflight = \"no\"\n"),
            &["preflight", "boolean"],
        ),
        case(
            "connections as a string",
            with_load("connections = \"eight\"\n"),
            &["connections", "integer"],
        ),
        // Invalid URLs and names.
        case(
            "URL with another scheme",
            format!("{TARGET}{PAYLOAD}{LOAD}").replace("http://127.0.0.1:9", "ftp://host"),
            &["target.url", "ftp", "http://"],
        ),
        case(
            "URL without a scheme",
            format!("{TARGET}{PAYLOAD}{LOAD}").replace("http://127.0.0.1:9", "127.0.0.1:8080"),
            &["target.url", "no scheme", "http://127.0.0.1:8080"],
        ),
        case(
            "URL with the /v2 path",
            format!("{TARGET}{PAYLOAD}{LOAD}")
                .replace("http://127.0.0.1:9", "http://127.0.0.1:9/v2/models/m/infer"),
            &["target.url", "/v2", "base URL"],
        ),
        case(
            "URL with spaces",
            format!("{TARGET}{PAYLOAD}{LOAD}").replace("http://127.0.0.1:9", "http://my host"),
            &["target.url", "my host", "http://127.0.0.1:8080"],
        ),
        case(
            "URL with credentials",
            format!("{TARGET}{PAYLOAD}{LOAD}").replace(
                "http://127.0.0.1:9",
                "http://admin:hunter2-pass@127.0.0.1:9",
            ),
            &["target.url", "credentials", "authorization"],
        ),
        case(
            "URL with a query",
            format!("{TARGET}{PAYLOAD}{LOAD}").replace("http://127.0.0.1:9", "http://h:1/?x=1"),
            &["target.url", "query", "base URL"],
        ),
        case(
            "empty model",
            format!("{TARGET}{PAYLOAD}{LOAD}").replace("model = \"m\"", "model = \"\""),
            &["target.model", "model name"],
        ),
        case(
            "model with a slash",
            format!("{TARGET}{PAYLOAD}{LOAD}").replace("model = \"m\"", "model = \"a/b\""),
            &["target.model", "a/b", "URL path"],
        ),
        case(
            "version with a slash",
            with_target("version = \"1/2\"\n"),
            &["target.version", "1/2", "URL path"],
        ),
        case(
            "unknown transport",
            with_target("transport = \"http3\"\n"),
            &["target.transport", "http3", "http1"],
        ),
        case(
            "header name with a space",
            with_target("[target.headers]\n\"bad name\" = \"x\"\n"),
            &["target.headers", "bad name", "header name"],
        ),
        case(
            "route header with a space",
            format!("{TARGET}{PAYLOAD}{LOAD}[routes]\nheader = \"x route\"\n"),
            &["routes.header", "x route", "header name"],
        ),
        case(
            "name with a slash",
            format!("name = \"a/b\"\n{TARGET}{PAYLOAD}{LOAD}"),
            &["name", "a/b", "letters"],
        ),
        // Embedded target options.
        case(
            "embedded error rate above 1",
            format!("{TARGET}[target.embedded]\nerror_rate = 2.0\n{PAYLOAD}{LOAD}")
                .replace("http://127.0.0.1:9", "embedded"),
            &["target.embedded.error_rate", "0.01"],
        ),
        case(
            "embedded latency model",
            format!("{TARGET}[target.embedded]\nlatency = \"fixed:soon\"\n{PAYLOAD}{LOAD}")
                .replace("http://127.0.0.1:9", "embedded"),
            &["latency", "fixed:soon", "unit"],
        ),
        case(
            "embedded fault spec",
            format!("{TARGET}[target.embedded]\nfaults = [\"explode:every=3\"]\n{PAYLOAD}{LOAD}")
                .replace("http://127.0.0.1:9", "embedded"),
            &["faults", "explode", "reset-mid-response"],
        ),
        // Payload files.
        case(
            "missing payload key",
            format!("{TARGET}{LOAD}"),
            &["payload.file", "V2 JSON"],
        ),
        case(
            "payload file not found",
            format!("{TARGET}[payload]\nfile = \"nowhere.json\"\n{LOAD}"),
            &["payload.file", "nowhere.json", "check the path"],
        ),
        case(
            "payload path is a folder",
            format!("{TARGET}[payload]\nfile = \"payloads\"\n{LOAD}"),
            &["payload.file", "payloads", "check the path"],
        ),
        payload_case(
            "payload not JSON",
            "inputs: [1, 2]",
            &["payload.file", "bad.json", "\"inputs\""],
        ),
        payload_case(
            "payload without inputs",
            "{\"inputs\": []}",
            &["payload.file", "bad.json", "at least one input"],
        ),
        payload_case(
            "payload count and shape mismatch",
            r#"{"inputs":[{"name":"x","shape":[2,3],"datatype":"FP32","data":[1,2,3]}]}"#,
            &[
                "payload.file",
                "`x`",
                "3 elements",
                "[2, 3]",
                "fix the shape",
            ],
        ),
        payload_case(
            "payload value of the wrong datatype",
            r#"{"inputs":[{"name":"x","shape":[2],"datatype":"INT32","data":[1,"two"]}]}"#,
            &["payload.file", "`x`", "\"two\"", "INT32"],
        ),
        payload_case(
            "payload float in an integer tensor",
            r#"{"inputs":[{"name":"x","shape":[2],"datatype":"INT64","data":[1,2.5]}]}"#,
            &["payload.file", "`x`", "2.5", "INT64"],
        ),
        payload_case(
            "payload unknown datatype",
            r#"{"inputs":[{"name":"x","shape":[1],"datatype":"FLOAT32","data":[1]}]}"#,
            &["payload.file", "FLOAT32", "FP32"],
        ),
        payload_case(
            "payload negative dimension",
            r#"{"inputs":[{"name":"x","shape":[-1,2],"datatype":"FP32","data":[1,2]}]}"#,
            &["payload.file", "`x`", "-1", "concrete"],
        ),
        payload_case(
            "payload duplicate input names",
            r#"{"inputs":[{"name":"x","shape":[1],"datatype":"BOOL","data":[true]},
                          {"name":"x","shape":[1],"datatype":"BOOL","data":[false]}]}"#,
            &["payload.file", "`x`", "unique"],
        ),
        payload_case(
            "payload shape as a string",
            r#"{"inputs":[{"name":"x","shape":"2","datatype":"FP32","data":[1,2]}]}"#,
            &["payload.file", "shape", "\"inputs\""],
        ),
        payload_case(
            "payload unsigned tensor with a negative value",
            r#"{"inputs":[{"name":"x","shape":[1],"datatype":"UINT8","data":[-3]}]}"#,
            &["payload.file", "-3", "UINT8"],
        ),
        payload_case(
            "payload unsigned value out of range",
            r#"{"inputs":[{"name":"x","shape":[1],"datatype":"UINT8","data":[300]}]}"#,
            &["payload.file", "300", "UINT8"],
        ),
        payload_case(
            "payload empty file",
            "",
            &["payload.file", "bad.json", "\"inputs\""],
        ),
    ];

    // Inputs found by trying to break the parser: huge numbers, unicode, ranges, encodings.
    cases.extend([
        case(
            "rate too large to represent",
            format!("{TARGET}{PAYLOAD}[load]\nrate = \"1e400/s\"\n"),
            &["rate", "1e400", "too large"],
        ),
        case(
            "rate in full-width digits",
            format!("{TARGET}{PAYLOAD}[load]\nrate = \"\u{ff11}\u{ff10}/s\"\n"),
            &["rate", "\u{ff11}\u{ff10}", "250/s"],
        ),
        case(
            "duration shorter than one request gap",
            format!("{TARGET}{PAYLOAD}[load]\nrate = \"10/s\"\nduration = \"1ns\"\n"),
            &["load.duration", "1ns", "100ms"],
        ),
        case(
            "duration too large to represent",
            format!("{TARGET}{PAYLOAD}[load]\nrate = \"1/s\"\nduration = \"99999999999999999999s\"\n"),
            &["duration", "99999999999999999999s", "30s"],
        ),
        case(
            "integer beyond the u32 range",
            with_load("max_in_flight = 99999999999\n"),
            &["max_in_flight", "99999999999", "4294967295"],
        ),
        case(
            "unknown payload encoding",
            format!("{TARGET}{PAYLOAD}encoding = \"jpeg\"\n{LOAD}"),
            &["payload.encoding", "jpeg", "binary"],
        ),
        case(
            "host with a space",
            with_target("host = \"my host\"\n"),
            &["target.host", "my host", "ml-api.local"],
        ),
        case(
            "header value with a newline",
            with_target("headers = { \"x-trace\" = \"a\\nb\" }\n"),
            &["target.headers", "x-trace", "newline", "remove"],
        ),
        case(
            "gate ratio above 100%",
            format!("{TARGET}{PAYLOAD}{LOAD}[gates]\nerror_rate = \"< 150%\"\n"),
            &["gates.error_rate", "150%", "1%"],
        ),
        case(
            "gate with a negative latency",
            format!("{TARGET}{PAYLOAD}{LOAD}[gates]\np99 = \"< -5ms\"\n"),
            &["gates.p99", "-5ms", "0 or more"],
        ),
        case(
            "gate of an unknown percentile",
            format!("{TARGET}{PAYLOAD}{LOAD}[gates]\np101 = \"< 5ms\"\n"),
            &["p101", "p99"],
        ),
        case(
            "stage of zero duration",
            format!("{TARGET}{PAYLOAD}[load]\n[[load.stages]]\nrate = \"10/s\"\nduration = \"0s\"\n"),
            &["load.stages[0].duration", "30s"],
        ),
        case(
            "stage without a load",
            format!("{TARGET}{PAYLOAD}[load]\n[[load.stages]]\nduration = \"1s\"\n"),
            &["load.stages[0].rate", "100/s"],
        ),
        case(
            "stages mixing rate and concurrency",
            format!(
                "{TARGET}{PAYLOAD}[load]\n[[load.stages]]\nrate = \"10/s\"\nduration = \"1s\"\n\
                 [[load.stages]]\nconcurrency = 4\nduration = \"1s\"\n"
            ),
            &["load.stages", "only rate stages"],
        ),
        case(
            "secret header name with a space",
            with_target("secret_headers = [\"x tenant\"]\n"),
            &["target.secret_headers", "x tenant", "header name"],
        ),
        case(
            "empty version",
            with_target("version = \"\"\n"),
            &["target.version", "\"1\""],
        ),
        case(
            "negative route weight",
            format!("{TARGET}{PAYLOAD}{LOAD}[routes]\nexpected = {{ a = -1, b = 1 }}\n"),
            &["routes.expected", "-1", "0 or more"],
        ),
        case(
            "significance level above 1",
            format!("{TARGET}{PAYLOAD}{LOAD}[routes]\nalpha = 2.0\n"),
            &["routes.alpha", "2", "0.01"],
        ),
        case(
            "dataset path is a folder",
            format!("{TARGET}[payload]\ndataset = \"payloads\"\n{LOAD}"),
            &["payload.dataset", "payloads", "check the path"],
        ),
        payload_case(
            "payload FP16 value beyond its range",
            r#"{"inputs":[{"name":"x","shape":[1],"datatype":"FP16","data":[1e10]}]}"#,
            &["payload.file", "`x`", "FP16", "largest finite"],
        ),
        payload_case(
            "payload FP32 value beyond its range",
            r#"{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1e39]}]}"#,
            &["payload.file", "`x`", "FP32", "largest finite"],
        ),
        payload_case(
            "payload input with an empty name",
            r#"{"inputs":[{"name":"","shape":[1],"datatype":"FP32","data":[1]}]}"#,
            &["payload.file", "input #1", "empty `name`"],
        ),
        payload_case(
            "payload shape too large to count",
            r#"{"inputs":[{"name":"x","shape":[4611686018427387904,4611686018427387904,4611686018427387904],"datatype":"FP32","data":[]}]}"#,
            &["payload.file", "`x`", "0 elements", "fix the shape"],
        ),
        payload_case(
            "payload nested 200 levels deep",
            format!(
                r#"{{"inputs":[{{"name":"x","shape":[1],"datatype":"FP32","data":{}1{}}}]}}"#,
                "[".repeat(200),
                "]".repeat(200)
            )
            .leak(),
            &["payload.file", "recursion limit", "\"inputs\""],
        ),
    ]);

    // Flags that conflict with or break the scenario.
    let flag_cases: [(&'static str, Vec<&'static str>, Vec<&'static str>); 12] = [
        (
            "rate and concurrency flags together",
            vec!["--rate", "5/s", "--concurrency", "2"],
            vec!["--rate", "--concurrency", "choose"],
        ),
        (
            "rate flag without a number",
            vec!["--rate", "quick"],
            vec!["--rate", "quick", "250/s"],
        ),
        (
            "zero duration flag",
            vec!["--duration", "0s"],
            vec!["--duration", "30s"],
        ),
        (
            "zero timeout flag",
            vec!["--timeout", "0s"],
            vec!["--timeout", "5s"],
        ),
        (
            "header flag without a colon",
            vec!["-H", "x-trace abc"],
            vec!["--header", "x-trace", "NAME: VALUE"],
        ),
        (
            "url flag with another scheme",
            vec!["--url", "grpc://127.0.0.1:1"],
            vec!["--url", "grpc", "http://"],
        ),
        (
            "zero connections flag",
            vec!["--connections", "0"],
            vec!["--connections", "1 or more"],
        ),
        (
            "concurrency flag in the millions",
            vec!["--concurrency", "50000000"],
            vec!["--concurrency", "50000000", "100000"],
        ),
        (
            "warm-up flag beyond the clock's range",
            vec!["--warmup", "3000000000000000h"],
            vec!["--warmup", "3000000000000000h", "365 days"],
        ),
        (
            "max in flight flag in the millions",
            vec!["--max-in-flight", "20000000"],
            vec!["--max-in-flight", "20000000", "100000"],
        ),
        (
            "duration flag shorter than one request gap",
            vec!["--duration", "1ms"],
            vec!["--duration", "1ms", "100ms"],
        ),
        (
            "rate flag too large to represent",
            vec!["--rate", "1e400/s"],
            vec!["--rate", "1e400/s", "too large"],
        ),
    ];
    for (name, args, expect) in flag_cases {
        cases.push(Case {
            args,
            ..case(name, format!("{TARGET}{PAYLOAD}{LOAD}"), &expect)
        });
    }
    cases
}

fn run_case(dir: &Path, case: &Case) -> Output {
    let path = scenario(dir, &case.scenario);
    for (relative, contents) in &case.files {
        std::fs::write(dir.join(relative), contents).unwrap();
    }
    let mut args = vec!["run", path.to_str().unwrap(), "-q", "--out"];
    let out = dir.join("out");
    args.push(out.to_str().unwrap());
    args.extend(case.args.iter().copied());
    inferload(&args)
}

/// Checks the exit status and message of one case; returns a description of what is wrong.
fn check_case(case: &Case, output: &Output, must_name_file: bool) -> Option<String> {
    let stderr = String::from_utf8_lossy(&output.stderr);
    let mut problems = Vec::new();
    if output.status.code() != Some(case.exit) {
        problems.push(format!(
            "exit status {:?}, expected {}",
            output.status.code(),
            case.exit
        ));
    }
    if stderr.contains("panicked") {
        problems.push("panicked".to_string());
    }
    for fragment in &case.expect {
        if !stderr.contains(fragment) {
            problems.push(format!("message lacks {fragment:?}"));
        }
    }
    if must_name_file && !stderr.contains("scenario.toml") {
        problems.push("message does not name scenario.toml".into());
    }
    if stderr.contains("hunter2-pass") {
        problems.push("message echoes the password of the URL".into());
    }
    if problems.is_empty() {
        None
    } else {
        Some(format!(
            "{}: {}\n{}",
            case.name,
            problems.join("; "),
            describe(output)
        ))
    }
}

#[test]
fn malformed_scenarios_exit_2() {
    let cases = scenario_cases();
    assert!(cases.len() >= 30, "only {} cases", cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        let temp = tempfile::tempdir().unwrap();
        let output = run_case(temp.path(), case);
        // Clap rejects a malformed flag value before any scenario is read.
        let flag_parse_error = !case.args.is_empty()
            && String::from_utf8_lossy(&output.stderr).contains("invalid value");
        if let Some(problem) = check_case(case, &output, !flag_parse_error) {
            failures.push(problem);
        }
        assert!(
            !temp.path().join("out").exists(),
            "{}: a rejected scenario created its results folder",
            case.name
        );
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n\n")
    );
}

#[test]
fn missing_scenario_file_exits_2() {
    let temp = tempfile::tempdir().unwrap();
    let missing = temp.path().join("absent.toml");
    let output = inferload(&["run", missing.to_str().unwrap(), "-q"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
    assert!(stderr.contains("absent.toml"), "{stderr}");
    assert!(stderr.contains("check the path"), "{stderr}");
}

#[test]
fn scenario_that_is_a_folder_exits_2() {
    let temp = tempfile::tempdir().unwrap();
    let output = inferload(&["run", temp.path().to_str().unwrap(), "-q"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
    assert!(stderr.contains(temp.path().to_str().unwrap()), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn non_utf8_scenario_exits_2() {
    let temp = tempfile::tempdir().unwrap();
    let path = temp.path().join("scenario.toml");
    std::fs::write(&path, b"[target]\nurl = \"\xff\xfe\"\n").unwrap();
    let output = inferload(&["run", path.to_str().unwrap(), "-q"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
    assert!(stderr.contains("scenario.toml"), "{stderr}");
    assert!(stderr.contains("UTF-8"), "{stderr}");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn unreachable_target_names_address() {
    let port = free_port();
    let temp = tempfile::tempdir().unwrap();
    let path = scenario(
        temp.path(),
        &basic_scenario(&format!("http://127.0.0.1:{port}")),
    );
    let (output, summary) = run(&path, &temp.path().join("out"), &[]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    assert!(summary.is_none());
    assert!(stderr.contains(&format!("127.0.0.1:{port}")), "{stderr}");
    assert!(stderr.contains("check that it is running"), "{stderr}");
}

#[test]
fn unresolvable_host_exits_1() {
    let temp = tempfile::tempdir().unwrap();
    let path = scenario(
        temp.path(),
        &basic_scenario("http://no-such-host.invalid:8080"),
    );
    let (output, _) = run(&path, &temp.path().join("out"), &[]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    assert!(stderr.contains("no-such-host.invalid"), "{stderr}");
    assert!(stderr.contains("target.url"), "{stderr}");
}

#[test]
fn unknown_model_is_not_ready() {
    let server = serve(&["--models", "other"]);
    let temp = tempfile::tempdir().unwrap();
    let path = scenario(temp.path(), &basic_scenario(&server.url));
    let (output, _) = run(&path, &temp.path().join("out"), &[]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    assert!(stderr.contains("/v2/models/m/ready"), "{stderr}");
    assert!(stderr.contains("404"), "{stderr}");
    assert!(stderr.contains("target.model"), "{stderr}");
}

#[test]
fn target_that_is_not_http_exits_1() {
    // A listener that accepts and closes every connection without a byte of HTTP.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let acceptor = std::thread::spawn(move || {
        for stream in listener.incoming().take(1) {
            drop(stream);
        }
    });
    let temp = tempfile::tempdir().unwrap();
    let path = scenario(
        temp.path(),
        &basic_scenario(&format!("http://127.0.0.1:{port}")),
    );
    let (output, _) = run(&path, &temp.path().join("out"), &[]);
    acceptor.join().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    assert!(stderr.contains("/v2/health/ready"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn connections_beyond_open_file_limit() {
    let temp = tempfile::tempdir().unwrap();
    let path = scenario(temp.path(), &format!("{TARGET}{PAYLOAD}{LOAD}"));
    let out = temp.path().join("out");
    // `ulimit -n` in sh lowers both the soft and the hard limit for the command it runs.
    let command = format!(
        "ulimit -n 512 && exec '{}' run '{}' -q --out '{}' --connections 2000",
        bin().display(),
        path.display(),
        out.display()
    );
    let output = std::process::Command::new("sh")
        .arg("-c")
        .arg(command)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
    assert!(stderr.contains("2000 connections"), "{stderr}");
    assert!(stderr.contains("at most 512"), "{stderr}");
    assert!(stderr.contains("ulimit -n 2256"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}
