//! Every encoder and payload source against `inferload serve`, which decodes each request and
//! returns 400 or INVALID_ARGUMENT when a tensor does not match its shape or datatype. So a
//! run with no errors means every request was read back intact.

mod common;

use std::path::Path;

use common::*;

fn u64_at(summary: &serde_json::Value, pointer: &str) -> u64 {
    summary
        .pointer(pointer)
        .and_then(serde_json::Value::as_u64)
        .unwrap_or_else(|| panic!("{pointer} missing in {summary}"))
}

/// Writes the financial request (shape [1, 10, 35]) beside the scenario and runs it for 1 s at
/// 50 req/s against `url`.
fn run_payload(dir: &Path, url: &str, transport: &str, payload: &str) -> serde_json::Value {
    std::fs::copy(
        repo().join("scenarios/payloads/financial-1x10x35.json"),
        dir.join("financial.json"),
    )
    .unwrap();
    let text = format!(
        r#"
[target]
url = "{url}"
model = "m"
transport = "{transport}"
headers = {{ "Seldon-Model" = "  m.experiment " }}

[payload]
{payload}

[load]
rate = "50/s"
duration = "1s"
connections = 2
"#
    );
    let path = dir.join("scenario.toml");
    std::fs::write(&path, text).unwrap();
    let (output, summary) = run(&path, &dir.join("out"), &[]);
    assert!(output.status.success(), "{}", describe(&output));
    summary.expect("summary.json written")
}

fn assert_all_ok(summary: &serde_json::Value) {
    assert_eq!(u64_at(summary, "/requests/sent"), 50, "{summary}");
    assert_eq!(u64_at(summary, "/requests/ok"), 50, "{summary}");
    assert_eq!(u64_at(summary, "/requests/errors"), 0, "{summary}");
}

#[test]
fn grpc_typed_round_trip() {
    let server = serve(&[]);
    let temp = tempfile::tempdir().unwrap();
    let summary = run_payload(
        temp.path(),
        &server.url,
        "grpc",
        "file = \"financial.json\"\nencoding = \"typed\"",
    );
    assert_all_ok(&summary);
}

#[test]
fn grpc_raw_round_trip() {
    let server = serve(&[]);
    let temp = tempfile::tempdir().unwrap();
    let summary = run_payload(
        temp.path(),
        &server.url,
        "grpc",
        "file = \"financial.json\"\nencoding = \"raw\"",
    );
    assert_all_ok(&summary);
}

#[test]
fn rest_json_round_trip() {
    let server = serve(&[]);
    let temp = tempfile::tempdir().unwrap();
    let summary = run_payload(
        temp.path(),
        &server.url,
        "http1",
        "file = \"financial.json\"",
    );
    assert_all_ok(&summary);
}

#[test]
fn rest_binary_round_trip() {
    let server = serve(&[]);
    let temp = tempfile::tempdir().unwrap();
    let summary = run_payload(
        temp.path(),
        &server.url,
        "http1",
        "file = \"financial.json\"\nencoding = \"binary\"",
    );
    assert_all_ok(&summary);
}

#[test]
fn generated_payloads_round_trip() {
    let server = serve(&[]);
    for (transport, encoding) in [
        ("http1", "json"),
        ("http1", "binary"),
        ("grpc", "typed"),
        ("grpc", "raw"),
    ] {
        let temp = tempfile::tempdir().unwrap();
        let summary = run_payload(
            temp.path(),
            &server.url,
            transport,
            &format!("generate = true\nbatch_size = 3\nencoding = \"{encoding}\""),
        );
        assert_all_ok(&summary);
    }
}

#[test]
fn datasets_rotate_round_trip() {
    let server = serve(&[]);
    let temp = tempfile::tempdir().unwrap();
    let lines: Vec<String> = (1..=3)
        .map(|n| {
            let values: Vec<String> = (0..n * 4).map(|i| format!("{i}.5")).collect();
            format!(
                r#"{{"inputs":[{{"name":"x","shape":[{n},4],"datatype":"FP32","data":[{}]}}]}}"#,
                values.join(",")
            )
        })
        .collect();
    std::fs::write(temp.path().join("set.jsonl"), lines.join("\n")).unwrap();
    // The second entry gives no shape: [-1, 10, 35] from the metadata becomes [2, 10, 35].
    let values: Vec<String> = (0..700).map(|i| format!("{}", i as f64 / 700.0)).collect();
    let perf = format!(
        r#"{{"data": [{{"input_data": {{"content": [1.0, 2.0], "shape": [1, 1, 2]}}}},
                      {{"input_data": [{}]}}]}}"#,
        values.join(",")
    );
    std::fs::write(temp.path().join("perf.json"), perf).unwrap();
    for (transport, payload) in [
        ("http1", "dataset = \"set.jsonl\""),
        ("grpc", "dataset = \"set.jsonl\"\nencoding = \"raw\""),
        ("http1", "dataset = \"perf.json\""),
        ("grpc", "dataset = \"perf.json\""),
    ] {
        let run_dir = temp.path().join(format!("{transport}-{}", payload.len()));
        std::fs::create_dir_all(&run_dir).unwrap();
        for file in ["set.jsonl", "perf.json"] {
            std::fs::copy(temp.path().join(file), run_dir.join(file)).unwrap();
        }
        let summary = run_payload(&run_dir, &server.url, transport, payload);
        assert_all_ok(&summary);
    }
}

#[test]
fn shape_count_mismatch_rejected_before_load() {
    let server = serve(&[]);
    let temp = tempfile::tempdir().unwrap();
    let values: Vec<String> = (0..35).map(|i| format!("{i}.0")).collect();
    let body = format!(
        r#"{{"inputs":[{{"name":"input_data","shape":[2,35],"datatype":"FP32","data":[{}]}}]}}"#,
        values.join(",")
    );
    std::fs::write(temp.path().join("bad.json"), body).unwrap();
    for transport in ["http1", "grpc"] {
        let text = format!(
            "[target]\nurl = \"{}\"\nmodel = \"m\"\ntransport = \"{transport}\"\n\
             [payload]\nfile = \"bad.json\"\n[load]\nrate = \"10/s\"\nduration = \"1s\"\n",
            server.url
        );
        let path = temp.path().join("scenario.toml");
        std::fs::write(&path, text).unwrap();
        let out = temp.path().join(format!("out-{transport}"));
        let (output, summary) = run(&path, &out, &[]);
        assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
        assert!(summary.is_none(), "no run should start");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("`input_data`"), "{stderr}");
        assert!(stderr.contains("[2, 35]"), "{stderr}");
        assert!(stderr.contains("35 elements"), "{stderr}");
    }
}

#[test]
fn half_precision_needs_binary_encoding() {
    let temp = tempfile::tempdir().unwrap();
    std::fs::write(
        temp.path().join("half.json"),
        r#"{"inputs":[{"name":"h","shape":[2],"datatype":"FP16","data":[0.5,1.0]}]}"#,
    )
    .unwrap();
    let text = "[target]\nurl = \"http://127.0.0.1:1\"\nmodel = \"m\"\ntransport = \"grpc\"\n\
                [payload]\nfile = \"half.json\"\n[load]\nrate = \"10/s\"\n";
    let path = temp.path().join("scenario.toml");
    std::fs::write(&path, text).unwrap();
    let (output, _) = run(&path, &temp.path().join("out"), &[]);
    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("`h`"), "{stderr}");
    assert!(stderr.contains("raw"), "{stderr}");
}

#[test]
fn message_size_limit_rejected_before_load() {
    let temp = tempfile::tempdir().unwrap();
    std::fs::copy(
        repo().join("scenarios/payloads/financial-1x10x35.json"),
        temp.path().join("financial.json"),
    )
    .unwrap();
    let text = "[target]\nurl = \"http://127.0.0.1:1\"\nmodel = \"m\"\ntransport = \"grpc\"\n\
                [target.grpc]\nmax_send_message_size = \"1KiB\"\n\
                [payload]\nfile = \"financial.json\"\n[load]\nrate = \"10/s\"\n";
    let path = temp.path().join("scenario.toml");
    std::fs::write(&path, text).unwrap();
    let (output, _) = run(&path, &temp.path().join("out"), &[]);
    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("1024-byte message limit"), "{stderr}");
    assert!(stderr.contains("max_send_message_size"), "{stderr}");
}

#[test]
fn failed_validation_is_its_own_kind() {
    let server = serve(&[]);
    let temp = tempfile::tempdir().unwrap();
    for transport in ["http1", "grpc"] {
        let summary = run_payload(
            temp.path(),
            &server.url,
            transport,
            "file = \"financial.json\"\nvalidate_every = 5\n\
             expect_outputs = [{ name = \"output\", datatype = \"INT64\" }]",
        );
        // Requests 0, 5, ..., 45 are validated: 10 of the 50.
        assert_eq!(
            u64_at(&summary, "/errors/by_kind/invalid_output"),
            10,
            "{summary}"
        );
        assert_eq!(u64_at(&summary, "/requests/ok"), 40, "{summary}");
    }
}

#[test]
fn passing_validation_counts_no_errors() {
    let server = serve(&[]);
    let temp = tempfile::tempdir().unwrap();
    let summary = run_payload(
        temp.path(),
        &server.url,
        "grpc",
        "file = \"financial.json\"\nencoding = \"raw\"\nvalidate_every = 1\n\
         expect_outputs = [{ name = \"output\", datatype = \"FP32\", shape = [-1, 2] }]",
    );
    assert_all_ok(&summary);
}
