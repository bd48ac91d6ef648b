//! Property tests of every parser that reads user input or target responses: none panics on
//! any input, and each keeps its invariants. Case counts are bounded so the file runs in a few
//! seconds; `fuzz/` has the open-ended cargo-fuzz targets of the same parsers.

use std::path::Path;

use http::{HeaderMap, HeaderName, HeaderValue};
use inferload::protocol::check_rest_request;
use inferload::redact::{RequestHeaders, REDACTED};
use inferload::scenario::units::{ByteSize, HumanDuration, Rate};
use inferload::scenario::{Overrides, RunPlan, Scenario};
use inferload::serve::Fault;
use inferload::stats::hops::{read_hop, HopFormat, HopReading, HopSpec, MAX_HOP_MICROS};
use inferload::stats::routes::route_label;
use inferload::transport::http1::BodyEdges;
use proptest::prelude::*;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 512,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// TOML values, including the edge cases that have broken parsers: huge and negative numbers,
/// empty strings, NaN, unit typos and non-ASCII text.
fn toml_value() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i64>().prop_map(|v| v.to_string()),
        any::<f64>().prop_map(|v| format!("{v:?}").replace("inf", "inf").replace("NaN", "nan")),
        any::<bool>().prop_map(|v| v.to_string()),
        prop::sample::select(vec![
            "\"\"",
            "\"0\"",
            "\"0/s\"",
            "\"-1/s\"",
            "\"1e309/s\"",
            "\"250/s\"",
            "\"10/ms\"",
            "\"18446744073709551616/s\"",
            "\"30s\"",
            "\"0s\"",
            "\"999999999999h\"",
            "\"4MiB\"",
            "\"99999999999999999999GiB\"",
            "\"embedded\"",
            "\"http://127.0.0.1:1\"",
            "\"http://[::1\"",
            "\"http://h:99999\"",
            "\"poisson\"",
            "\"drop\"",
            "\"fixed:1ms\"",
            "\"lognormal:median=5ms,p99=1ms\"",
            "\"reset-mid-response:every=0\"",
            "\"\u{1F600}\"",
            "[]",
            "[\"x\"]",
            "{}",
            "{ a = \"b\" }",
            "nan",
            "-inf",
        ])
        .prop_map(str::to_string),
        "[ -~]{0,12}".prop_map(|s| format!("{s:?}")),
    ]
}

/// `SECTION.KEY = VALUE` lines drawn from the real scenario keys and a few unknown ones.
fn scenario_text() -> impl Strategy<Value = String> {
    let keys = prop::sample::select(vec![
        ("", "name"),
        ("target", "url"),
        ("target", "model"),
        ("target", "version"),
        ("target", "transport"),
        ("target", "host"),
        ("target", "timeout"),
        ("target", "connect_timeout"),
        ("target", "max_response_body"),
        ("target", "preflight"),
        ("target", "secret_headers"),
        ("target.headers", "authorization"),
        ("target.headers", "bad header"),
        ("target.embedded", "latency"),
        ("target.embedded", "error_rate"),
        ("target.embedded", "stall_every"),
        ("target.embedded", "routes"),
        ("target.embedded", "faults"),
        ("target.embedded", "max_concurrency"),
        ("payload", "file"),
        ("load", "rate"),
        ("load", "concurrency"),
        ("load", "duration"),
        ("load", "warmup"),
        ("load", "arrival"),
        ("load", "seed"),
        ("load", "connections"),
        ("load", "max_in_flight"),
        ("load", "at_cap"),
        ("routes", "header"),
        ("output", "dir"),
        ("output", "interval"),
        ("load", "unknown_key"),
    ]);
    prop::collection::vec((keys, toml_value()), 0..14).prop_map(|entries| {
        let mut text = String::from("[target]\nurl = \"embedded\"\nmodel = \"m\"\n");
        for ((section, key), value) in entries {
            if section.is_empty() {
                text = format!("{key} = {value}\n{text}");
            } else {
                text.push_str(&format!("[{section}]\n\"{key}\" = {value}\n"));
            }
        }
        text
    })
}

/// Fault specs from the grammar's names, keys and values, valid and not.
fn fault_spec() -> impl Strategy<Value = String> {
    let names = prop::sample::select(vec![
        "reset-mid-response",
        "stall",
        "slow-body",
        "burst-5xx",
        "truncated",
        "non-json",
        "oversized",
        "http-413",
        "close-after",
        "accept-reset",
        "down",
        "crash",
        "explode",
    ]);
    let keys = prop::sample::select(vec![
        "every", "len", "for", "chunk", "delay", "size", "declared", "at", "bogus",
    ]);
    let values = prop::sample::select(vec![
        "0",
        "1",
        "7",
        "100",
        "18446744073709551615",
        "x",
        "5ms",
        "2s",
        "1MiB",
        "true",
        "false",
        "",
    ]);
    (
        names,
        prop::option::of(values.clone()),
        prop::collection::vec((keys, values), 0..4),
    )
        .prop_map(|(name, bare, pairs)| {
            let mut params: Vec<String> = bare.into_iter().map(str::to_string).collect();
            params.extend(pairs.into_iter().map(|(k, v)| format!("{k}={v}")));
            if params.is_empty() {
                name.to_string()
            } else {
                format!("{name}:{}", params.join(","))
            }
        })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn scenario_text_never_panics(text in "\\PC{0,200}") {
        let _ = Scenario::from_toml(&text, Path::new("scenario.toml"));
    }

    #[test]
    fn scenario_errors_name_the_file(text in scenario_text()) {
        let path = Path::new("/nonexistent/scenario.toml");
        match Scenario::from_toml(&text, path) {
            Ok(scenario) => {
                if let Err(error) = RunPlan::build(scenario, path, &Overrides::default()) {
                    prop_assert!(error.to_string().contains("scenario.toml"), "{error}");
                }
            }
            Err(error) => prop_assert!(error.to_string().contains("scenario.toml"), "{error}"),
        }
    }

    #[test]
    fn unit_parsers_never_panic(text in "\\PC{0,24}") {
        if let Ok(rate) = text.parse::<Rate>() {
            prop_assert!(rate.per_second().is_finite() && rate.per_second() > 0.0);
        }
        let _ = text.parse::<HumanDuration>();
        let _ = text.parse::<ByteSize>();
    }

    #[test]
    fn fault_specs_round_trip(text in prop_oneof![fault_spec(), "[a-z0-9:=,.-]{0,40}"]) {
        if let Ok(fault) = text.parse::<Fault>() {
            let printed = fault.to_string();
            let again: Fault = printed.parse().expect("a printed spec parses");
            prop_assert_eq!(again, fault);
        }
    }

    #[test]
    fn payload_bytes_never_panic(body in prop::collection::vec(any::<u8>(), 0..300)) {
        let _ = check_rest_request(&body);
    }

    #[test]
    fn payload_json_never_panics(
        shape in prop::collection::vec(-3i64..5, 0..4),
        datatype in prop::sample::select(vec!["FP32", "INT8", "UINT8", "BOOL", "BYTES", "FP16", "X"]),
        data in prop::collection::vec(prop_oneof![
            any::<i64>().prop_map(|v| v.to_string()),
            any::<f32>().prop_map(|v| if v.is_finite() { v.to_string() } else { "0".into() }),
            Just("true".to_string()),
            Just("\"s\"".to_string()),
            Just("null".to_string()),
            Just("[1,[2]]".to_string()),
            Just("{}".to_string()),
        ], 0..12),
    ) {
        let body = format!(
            r#"{{"inputs":[{{"name":"x","shape":{shape:?},"datatype":"{datatype}","data":[{}]}}]}}"#,
            data.join(",")
        );
        let _ = check_rest_request(body.as_bytes());
    }

    #[test]
    fn matching_payload_accepted(shape in prop::collection::vec(0u32..5, 1..4), value in -100i32..100) {
        let count: u32 = shape.iter().product();
        let data = vec![value.to_string(); count as usize].join(",");
        let body = format!(
            r#"{{"inputs":[{{"name":"x","shape":{shape:?},"datatype":"INT32","data":[{data}]}}]}}"#
        );
        prop_assert_eq!(check_rest_request(body.as_bytes()), Ok(()));
    }

    #[test]
    fn route_label_never_panics(values in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..40), 0..4)) {
        let name = HeaderName::from_static("x-seldon-route");
        let mut headers = HeaderMap::new();
        for bytes in values {
            if let Ok(value) = HeaderValue::from_bytes(&bytes) {
                headers.append(name.clone(), value);
            }
        }
        let label = route_label(&headers, &name);
        prop_assert!(!label.is_empty());
        prop_assert!(!label.contains(':') && !label.contains(','), "{label}");
    }

    #[test]
    fn hop_headers_never_panic(
        values in prop::collection::vec(
            prop_oneof!["[0-9.:, -]{0,20}", "[ -~]{0,30}", "model;dur=[0-9.e+-]{0,12}"],
            0..3,
        ),
    ) {
        let header = HeaderName::from_static("x-hop");
        let mut headers = HeaderMap::new();
        for value in &values {
            if let Ok(value) = HeaderValue::try_from(value.as_str()) {
                headers.append(header.clone(), value);
            }
        }
        for format in [
            HopFormat::Seconds,
            HopFormat::Milliseconds,
            HopFormat::ServerTiming { metric: "model".into() },
        ] {
            let spec = HopSpec {
                name: "hop".into(),
                header: header.clone(),
                format,
                origin_when_missing: None,
            };
            if let HopReading::Present(time) = read_hop(&headers, &spec) {
                prop_assert!(time.micros <= MAX_HOP_MICROS, "{values:?}: {time:?}");
            }
        }
    }

    #[test]
    fn body_edges_ignore_chunking(body in prop::collection::vec(any::<u8>(), 0..200), cuts in prop::collection::vec(0usize..200, 0..6)) {
        let mut whole = BodyEdges::default();
        whole.update(&body);
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(body.len())).collect();
        cuts.sort_unstable();
        let mut pieces = BodyEdges::default();
        let mut start = 0;
        for cut in cuts.into_iter().chain([body.len()]) {
            pieces.update(&body[start..cut]);
            start = cut;
        }
        prop_assert_eq!(pieces, whole);
        let trimmed: Vec<u8> = body.iter().copied().filter(|b| !b.is_ascii_whitespace()).collect();
        prop_assert_eq!(whole.first, trimmed.first().copied());
        prop_assert_eq!(whole.last, trimmed.last().copied());
    }

    #[test]
    fn scrub_removes_secret(prefix in "[ -~]{0,30}", suffix in "[ -~]{0,30}", secret in "[A-Za-z0-9_-]{4,24}", cut in 0usize..30) {
        let mut headers = RequestHeaders::default();
        headers.insert(
            HeaderName::from_static("x-api-key"),
            HeaderValue::try_from(secret.as_str()).unwrap(),
            &[],
        );
        let text = format!("{prefix}{secret}{suffix}");
        let scrubbed = headers.scrub(&text);
        prop_assert!(!scrubbed.contains(&secret), "{scrubbed}");
        prop_assert!(scrubbed.contains(REDACTED));
        // A body prefix that cuts the secret short keeps no 4-byte start of it at its end.
        let kept = &text[..(prefix.len() + cut.min(secret.len())).min(text.len())];
        let scrubbed = headers.scrub(kept);
        let start = &secret[..4.min(secret.len())];
        if cut >= 4 && cut < secret.len() {
            prop_assert!(!scrubbed.ends_with(start) && scrubbed.ends_with(REDACTED), "{scrubbed}");
        }
    }
}
