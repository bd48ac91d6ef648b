//! Scenario files (TOML) and their conversion, with command-line overrides, into one validated
//! [`RunPlan`] before any load starts.
//!
//! Every table rejects unknown keys. Value errors come from the TOML parser with the line and a
//! caret under the bad value; checks that span several keys name the file, the key, the value and
//! the fix.

pub mod breakdown;
pub mod connection;
pub mod experiment;
pub mod payload;
pub mod plan;
pub mod stages;
pub mod units;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

pub use crate::protocol::payload::PayloadPlan;
pub use plan::{
    Arrival, AtCapacity, GrpcPlan, LoadMode, OutputPlan, Overrides, RunPlan, TargetPlan, Transport,
};
use units::{ByteSize, HumanDuration, Rate};

/// Errors found while reading a scenario or building its plan. All are the user's to fix, so
/// they map to exit status 2.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("cannot read scenario file {path}: {source}; check the path and its permissions")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid scenario {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("invalid scenario {path}: `{key}` {message}")]
    Invalid {
        path: PathBuf,
        key: String,
        message: String,
    },
}

/// The file format, as written by users. Field docs are the reference for each key.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Name used for the results folder; defaults to the file's stem.
    pub name: Option<String>,
    pub target: TargetSection,
    #[serde(default)]
    pub payload: PayloadSection,
    #[serde(default)]
    pub load: LoadSection,
    #[serde(default)]
    pub routes: RoutesSection,
    /// Hops of the latency breakdown, outside in.
    #[serde(default)]
    pub hops: Vec<breakdown::HopSection>,
    pub model_metrics: Option<breakdown::ModelMetricsSection>,
    #[serde(default)]
    pub output: OutputSection,
    /// SLO gates: a table of `METRIC = "OP THRESHOLD"` (a list of such strings for several
    /// conditions on one metric), or a list of whole gates such as `"p99<50ms"`.
    pub gates: Option<toml::Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetSection {
    /// Base URL of the V2 API (the part before `/v2`), or `embedded` for the in-process target.
    pub url: String,
    /// Model name used in `/v2/models/{model}/...`.
    pub model: String,
    /// Model version; when set, requests go to `/v2/models/{model}/versions/{version}/...`.
    pub version: Option<String>,
    /// `http1`, `http2` (REST over HTTP/2) or `grpc`. Default: `http1` for `http://` URLs;
    /// for `https://` URLs the server chooses between HTTP/2 and HTTP/1.1 by ALPN.
    pub transport: Option<String>,
    /// Host header sent instead of the URL's authority, e.g. `ml-api.local`.
    pub host: Option<String>,
    /// Extra request headers, e.g. `seldon-model`.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Further header names whose values are secret, hidden like `Authorization` in every
    /// output (console, logs, result files).
    #[serde(default)]
    pub secret_headers: Vec<String>,
    /// Per-request timeout, measured from the actual send.
    pub timeout: Option<HumanDuration>,
    pub connect_timeout: Option<HumanDuration>,
    /// Largest response body read; a larger body is an error of kind `body_too_large`.
    pub max_response_body: Option<ByteSize>,
    /// Check server and model readiness before the load (default true).
    pub preflight: Option<bool>,
    /// Options of the embedded target, used when `url = "embedded"`.
    pub embedded: Option<crate::serve::ServeOptions>,
    /// Options of the gRPC transport.
    pub grpc: Option<GrpcSection>,
    /// Options of REST over HTTP/2.
    pub http2: Option<connection::Http2Section>,
    /// TLS options of `https://` targets.
    pub tls: Option<connection::TlsSection>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrpcSection {
    /// Concurrent streams opened on each HTTP/2 connection (default 100).
    pub streams_per_connection: Option<u32>,
    /// Largest request message sent (default 4MiB); a larger payload is rejected before the run.
    pub max_send_message_size: Option<ByteSize>,
    /// Largest response message read (default 4MiB); a larger one fails the request with
    /// `grpc_resource_exhausted`.
    pub max_receive_message_size: Option<ByteSize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PayloadSection {
    /// A V2 JSON inference request; sent byte for byte over REST with the `json` encoding,
    /// converted to tensors otherwise. Relative to the scenario file.
    pub file: Option<PathBuf>,
    /// A data set rotated per request: JSON Lines of V2 requests, or perf_analyzer's
    /// `{"data": [{"INPUT": [...]}, ...]}` layout (datatypes from the model metadata).
    pub dataset: Option<PathBuf>,
    /// Generate requests with random values from the model metadata.
    pub generate: Option<bool>,
    /// `json` (REST default), `binary` (REST binary tensor extension), `typed` (gRPC default)
    /// or `raw` (gRPC `raw_input_contents`).
    pub encoding: Option<String>,
    /// Size of every -1 dimension of generated inputs (default 1).
    pub batch_size: Option<u32>,
    /// Seed of generated values (default 1).
    pub seed: Option<u64>,
    /// Number of distinct generated requests (default 16).
    pub count: Option<u32>,
    /// Length of each generated BYTES element (default 16).
    pub bytes_length: Option<u32>,
    /// Input shapes that replace the metadata's, e.g. `input_data = [1, 10, 35]`.
    #[serde(default)]
    pub shapes: BTreeMap<String, Vec<i64>>,
    /// Validate every Nth successful response (0 or unset: never).
    pub validate_every: Option<u64>,
    /// Outputs a validated response must contain: `[{name, datatype, shape}]`.
    #[serde(default)]
    pub expect_outputs: Vec<crate::protocol::payload::ExpectedOutput>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoadSection {
    /// Open-loop arrival rate: `250/s`, `1000/min`.
    pub rate: Option<Rate>,
    /// Closed loop: this many requests always in flight, each sent when the previous returns.
    pub concurrency: Option<u32>,
    pub duration: Option<HumanDuration>,
    /// Load sent before measuring; its requests are counted apart and not in the histograms.
    pub warmup: Option<HumanDuration>,
    /// `constant` (default) or `poisson`.
    pub arrival: Option<String>,
    /// Seed of the Poisson arrival process.
    pub seed: Option<u64>,
    /// Connections opened to the target.
    pub connections: Option<u32>,
    /// Cap on requests issued and not yet answered, counting those waiting for a connection.
    pub max_in_flight: Option<u32>,
    /// What a request due at the cap does: `wait` (sent late, counted late) or `drop` (counted).
    pub at_cap: Option<String>,
    /// After a first Ctrl-C or SIGTERM, how long to wait for requests in flight (default: the
    /// request timeout, at most 10s).
    pub stop_grace: Option<HumanDuration>,
    /// Shortest time between two wake-ups of the pacer (`auto`, `0`, `250us`); see
    /// [`units::ReleaseGap`].
    pub release_gap: Option<units::ReleaseGap>,
    /// Stages run one after another in place of `rate`/`concurrency` and `duration`.
    #[serde(default)]
    pub stages: Vec<stages::StageSection>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoutesSection {
    /// Response header naming the variant that served a request (default `x-seldon-route`).
    pub header: Option<String>,
    /// Expected relative weight per route label or model, e.g. `{ "baseline" = 70, ... }`.
    pub expected: Option<BTreeMap<String, f64>>,
    /// A Seldon Core v2 Experiment YAML file giving the expected split. Relative to the
    /// scenario file.
    pub experiment: Option<PathBuf>,
    /// Significance level of the split test (default 0.01).
    pub alpha: Option<f64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputSection {
    /// Parent folder of result folders (default `results`, relative to the working directory).
    pub dir: Option<PathBuf>,
    /// Length of each interval snapshot (default 1s).
    pub interval: Option<HumanDuration>,
    /// Write `requests.csv`, one row per request (default false).
    pub requests_csv: Option<bool>,
}

/// Replaces Rust type names in serde's messages with the TOML words a user writes.
fn plain_type_names(message: &str) -> String {
    let mut text = message.to_string();
    for (rust, toml) in [
        (
            "expected u32",
            "expected a whole number from 0 to 4294967295 (a TOML integer)",
        ),
        (
            "expected u64",
            "expected a whole number of 0 or more (a TOML integer)",
        ),
        ("expected i64", "expected a whole number (a TOML integer)"),
        ("expected f64", "expected a number"),
        (
            "expected a map",
            "expected a table, e.g. [target.headers] with KEY = \"VALUE\" lines",
        ),
        (
            "expected a sequence",
            "expected an array, e.g. [\"a\", \"b\"]",
        ),
    ] {
        text = text.replace(rust, toml);
    }
    text
}

impl Scenario {
    /// Reads and parses a scenario file, without checking values that span several keys.
    pub fn from_file(path: &Path) -> Result<Scenario, ScenarioError> {
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_toml(&text, path)
    }

    /// Parses scenario text; `path` is used in error messages and to resolve relative files.
    pub fn from_toml(text: &str, path: &Path) -> Result<Scenario, ScenarioError> {
        toml::from_str(text).map_err(|e| ScenarioError::Parse {
            path: path.to_owned(),
            message: plain_type_names(e.to_string().trim_end()),
        })
    }
}
