//! Payload encoders against MLServer through the testbed chain (`testbed/up`): gRPC typed and
//! raw contents, REST JSON, and payloads generated from the REST and gRPC model metadata, each
//! with every response validated. The same request sent over REST and both gRPC encodings must
//! get the same outputs from the same model.
//!
//! NOTE: MLServer 1.7.1 does not implement the REST binary tensor extension. Its server
//! metadata lists no extensions, and a binary request gets HTTP 500 because MLServer parses the
//! body as JSON. So the binary encoder's round trip runs against `inferload serve` only.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use http_body_util::BodyExt;
use inferload::protocol::grpc_api::grpc_inference_service_client::GrpcInferenceServiceClient;
use inferload::protocol::grpc_api::ModelInferResponse;
use inferload::protocol::{encode, payload};
use serde_json::Value;

/// The model every request here goes to: logistic regression, so its outputs are deterministic.
const MODEL: &str = "baseline-predictor";

fn count(summary: &Value, pointer: &str) -> u64 {
    summary
        .pointer(pointer)
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("summary has no count at {pointer}: {summary}"))
}

/// Writes a scenario that sends `payload` lines to MLServer's baseline model through NGINX,
/// over REST (`transport = "http1"`) or gRPC, and validates every response's outputs against
/// `outputs` (a TOML array).
fn chain_scenario(dir: &Path, transport: &str, payload: &str, outputs: &str) -> PathBuf {
    let testbed = testbed();
    std::fs::copy(
        repo().join("scenarios/payloads/financial-1x10x35.json"),
        dir.join("financial.json"),
    )
    .unwrap();
    let (url, host) = if transport == "grpc" {
        (testbed.grpc_url, "")
    } else {
        (testbed.rest_url, "host = \"ml-api.local\"")
    };
    let text = format!(
        r#"
[target]
url = "{url}"
model = "{MODEL}"
transport = "{transport}"
{host}
headers = {{ "seldon-model" = "{MODEL}" }}

[payload]
{payload}
validate_every = 1
expect_outputs = {outputs}

[load]
rate = "20/s"
duration = "1s"
connections = 2
"#
    );
    let path = dir.join("scenario.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// The outputs of the baseline model for a batch of one.
const ONE_ROW: &str = r#"[
  { name = "probabilities", datatype = "FP32", shape = [1, 2] },
  { name = "predicted_class", datatype = "INT64", shape = [1, 1] },
]"#;

/// Runs the scenario and checks that all 20 requests succeeded with valid outputs.
fn assert_round_trip(transport: &str, payload: &str, outputs: &str) {
    let temp = tempfile::tempdir().unwrap();
    let path = chain_scenario(temp.path(), transport, payload, outputs);
    let (output, summary) = run(&path, &temp.path().join("out"), &[]);
    assert!(output.status.success(), "{}", describe(&output));
    let summary = summary.expect("summary.json written");
    assert_eq!(count(&summary, "/requests/sent"), 20, "{summary}");
    assert_eq!(count(&summary, "/requests/errors"), 0, "{summary}");
    assert_eq!(count(&summary, "/requests/ok"), 20, "{summary}");
    assert_eq!(count(&summary, "/routes/baseline-predictor_1/count"), 20);
}

#[test]
fn grpc_typed_accepted_by_mlserver() {
    assert_round_trip(
        "grpc",
        "file = \"financial.json\"\nencoding = \"typed\"",
        ONE_ROW,
    );
}

#[test]
fn grpc_raw_accepted_by_mlserver() {
    assert_round_trip(
        "grpc",
        "file = \"financial.json\"\nencoding = \"raw\"",
        ONE_ROW,
    );
}

#[test]
fn rest_json_accepted_by_mlserver() {
    assert_round_trip("http1", "file = \"financial.json\"", ONE_ROW);
}

/// Generated requests of 3 rows: the metadata declares `input_data` as FP32 [-1, 10, 35] and
/// `batch_size` fills the -1, so the outputs must have 3 rows too.
const GENERATED: &str = "generate = true\nbatch_size = 3\ncount = 4\nseed = 7";
const THREE_ROWS: &str = r#"[
  { name = "probabilities", datatype = "FP32", shape = [3, 2] },
  { name = "predicted_class", datatype = "INT64", shape = [3, 1] },
]"#;

#[test]
fn rest_metadata_payloads_accepted_by_mlserver() {
    assert_round_trip("http1", GENERATED, THREE_ROWS);
}

#[test]
fn grpc_metadata_payloads_accepted_by_mlserver() {
    assert_round_trip("grpc", GENERATED, THREE_ROWS);
}

#[test]
fn grpc_metadata_raw_payloads_accepted_by_mlserver() {
    assert_round_trip(
        "grpc",
        &format!("{GENERATED}\nencoding = \"raw\""),
        THREE_ROWS,
    );
}

/// Outputs of one inference: class probabilities and the predicted class.
#[derive(Debug)]
struct Prediction {
    probabilities: Vec<f32>,
    class: Vec<i64>,
}

/// Sends the REST JSON encoding of `request` through NGINX and reads the outputs.
async fn predict_rest(request: &inferload::protocol::tensor::InferRequest) -> Prediction {
    let testbed = testbed();
    let body = encode::rest_json(request).unwrap();
    let url: http::Uri = format!("{}/v2/models/{MODEL}/infer", testbed.rest_url)
        .parse()
        .unwrap();
    let authority = url.authority().unwrap().as_str().to_string();

    let stream = tokio::net::TcpStream::connect(&authority).await.unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(connection);
    let http_request = http::Request::post(url.path())
        .header("host", "ml-api.local")
        .header("content-type", "application/json")
        .header("seldon-model", MODEL)
        .body(http_body_util::Full::new(body))
        .unwrap();
    let response = sender.send_request(http_request).await.unwrap();
    assert_eq!(response.status(), 200);

    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let reply: Value = serde_json::from_slice(&bytes).unwrap();
    let output = |name: &str| -> Vec<Value> {
        reply["outputs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["name"] == name)
            .unwrap_or_else(|| panic!("no output {name} in {reply}"))["data"]
            .as_array()
            .unwrap()
            .clone()
    };
    Prediction {
        probabilities: output("probabilities")
            .iter()
            .map(|v| v.as_f64().unwrap() as f32)
            .collect(),
        class: output("predicted_class")
            .iter()
            .map(|v| v.as_i64().unwrap())
            .collect(),
    }
}

/// Sends the gRPC encoding (typed, or raw when `raw`) of `request` through NGINX and reads
/// the outputs from typed or raw output contents, whichever MLServer used.
async fn predict_grpc(
    request: &inferload::protocol::tensor::InferRequest,
    raw: bool,
) -> Prediction {
    let testbed = testbed();
    let mut client = GrpcInferenceServiceClient::connect(testbed.grpc_url)
        .await
        .unwrap();
    let message = encode::grpc(request, MODEL, "", raw).unwrap();
    let mut call = tonic::Request::new(message);
    call.metadata_mut()
        .insert("seldon-model", MODEL.parse().unwrap());
    let response: ModelInferResponse = client.model_infer(call).await.unwrap().into_inner();
    let index = |name: &str| {
        response
            .outputs
            .iter()
            .position(|o| o.name == name)
            .unwrap_or_else(|| panic!("no output {name} in {response:?}"))
    };
    let (p, c) = (index("probabilities"), index("predicted_class"));
    if response.raw_output_contents.is_empty() {
        let contents = |i: usize| response.outputs[i].contents.clone().unwrap();
        Prediction {
            probabilities: contents(p).fp32_contents,
            class: contents(c).int64_contents,
        }
    } else {
        let raw = &response.raw_output_contents;
        Prediction {
            probabilities: raw[p]
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
                .collect(),
            class: raw[c]
                .chunks_exact(8)
                .map(|b| i64::from_le_bytes(b.try_into().unwrap()))
                .collect(),
        }
    }
}

#[tokio::test]
async fn rest_and_grpc_outputs_agree() {
    let (_, request) =
        payload::read_request_file(&repo().join("scenarios/payloads/financial-1x10x35.json"))
            .unwrap();
    let rest = predict_rest(&request).await;
    let typed = predict_grpc(&request, false).await;
    let raw = predict_grpc(&request, true).await;

    // The model's own consistency: two probabilities that sum to 1, and the class is the
    // more probable one.
    assert_eq!(rest.probabilities.len(), 2, "{rest:?}");
    let sum: f32 = rest.probabilities.iter().sum();
    assert!((sum - 1.0).abs() < 1e-5, "{rest:?}");
    let argmax = i64::from(rest.probabilities[1] > rest.probabilities[0]);
    assert_eq!(rest.class, vec![argmax], "{rest:?}");

    // The same input through each encoding gives the same outputs. REST JSON carries the
    // FP32 values as decimal text, so allow one float32 rounding step.
    for (name, other) in [("typed", &typed), ("raw", &raw)] {
        assert_eq!(
            other.class, rest.class,
            "{name}: {other:?} against REST {rest:?}"
        );
        assert_eq!(other.probabilities.len(), 2, "{name}: {other:?}");
        for (a, b) in other.probabilities.iter().zip(&rest.probabilities) {
            assert!(
                (a - b).abs() <= f32::EPSILON,
                "{name}: {other:?} against REST {rest:?}"
            );
        }
    }
    // Typed and raw gRPC carry the same float32 bits.
    assert_eq!(typed.probabilities, raw.probabilities);
}
