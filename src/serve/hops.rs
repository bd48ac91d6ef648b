//! Simulated hop timing headers and model metrics of the embedded target, so that the latency
//! breakdown, error origins and the model metrics scrape can be tested without the real chain.
//!
//! The target plays NGINX -> Envoy -> model server in one process. With hop headers on, each
//! reply carries what that chain writes, computed from the target's own timing:
//!
//! | header | value | covers |
//! | --- | --- | --- |
//! | `x-nginx-request-time` | seconds, 3 decimals, truncated | the whole handling time |
//! | `x-nginx-upstream-header-time` | seconds, 3 decimals, truncated | inference + 2 x overhead |
//! | `x-envoy-upstream-service-time` | whole milliseconds, truncated | inference + 1 x overhead |
//! | `Server-Timing: inference;dur=` | milliseconds, 3 decimals | the simulated inference |
//!
//! The simulated hop overhead (`--hop-overhead`) is slept three times on top of the inference
//! time, so every header stays within the time really spent and inner hops never exceed outer
//! ones by more than the truncation of the coarse formats.

use std::collections::HashMap;
use std::fmt::Write;
use std::str::FromStr;
use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, CONTENT_TYPE, SERVER};
use http::{HeaderMap, Response, StatusCode};
use serde::Deserialize;

/// Name of the simulated inference entry in `Server-Timing`.
pub const SERVER_TIMING_METRIC: &str = "inference";

/// Simulated hops that add their own overhead to each request (NGINX, Envoy, model server).
pub const SIMULATED_HOPS: u32 = 3;

/// Timing of one simulated request.
#[derive(Debug, Clone, Copy)]
pub struct HopTiming {
    /// The simulated inference time.
    pub inference: Duration,
    /// Overhead of each simulated hop.
    pub overhead: Duration,
    /// Time from receiving the request to sending the response headers.
    pub elapsed: Duration,
}

fn seconds_3(duration: Duration) -> String {
    let millis = duration.as_millis();
    format!("{}.{:03}", millis / 1000, millis % 1000)
}

/// Adds the headers of every simulated hop to a reply that the model server produced.
pub fn insert_hop_headers(headers: &mut HeaderMap, timing: HopTiming) {
    insert_ingress_headers(headers, timing);
    let envoy = (timing.inference + timing.overhead).as_millis();
    insert(headers, "x-envoy-upstream-service-time", envoy.to_string());
    let inference_ms = timing.inference.as_secs_f64() * 1000.0;
    insert(
        headers,
        "server-timing",
        format!("{SERVER_TIMING_METRIC};dur={inference_ms:.3}"),
    );
}

/// Adds only NGINX's headers, as on a reply that Envoy produced itself.
pub fn insert_ingress_headers(headers: &mut HeaderMap, timing: HopTiming) {
    let upstream = timing.inference + timing.overhead * 2;
    insert(headers, "x-nginx-upstream-header-time", seconds_3(upstream));
    insert(headers, "x-nginx-request-time", seconds_3(timing.elapsed));
}

fn insert(headers: &mut HeaderMap, name: &'static str, value: String) {
    if let Ok(value) = HeaderValue::try_from(value) {
        headers.insert(HeaderName::from_static(name), value);
    }
}

/// The part of the simulated chain that produces the target's simulated errors.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ErrorOrigin {
    /// NGINX: 503 with an HTML page and `server: nginx`, no hop headers.
    Ingress,
    /// Envoy: 503 with an empty body and `server: envoy`, only NGINX's hop headers.
    Mesh,
    /// The model server: 500 with a JSON `{"error": ...}` body and every hop header.
    #[default]
    Model,
}

impl FromStr for ErrorOrigin {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "ingress" => Ok(ErrorOrigin::Ingress),
            "mesh" => Ok(ErrorOrigin::Mesh),
            "model" => Ok(ErrorOrigin::Model),
            other => Err(format!(
                "invalid error origin `{other}`: use ingress, mesh or model"
            )),
        }
    }
}

impl<'de> Deserialize<'de> for ErrorOrigin {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

const NGINX_503: &str =
    "<html>\r\n<head><title>503 Service Temporarily Unavailable</title></head>\r\n\
<body>\r\n<center><h1>503 Service Temporarily Unavailable</h1></center>\r\n\
<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n";

/// Builds a simulated error reply of `origin`, with the hop headers that part of the chain
/// would leave when `hop_headers` is on. The body type is the caller's.
pub fn simulated_error<B: From<Bytes>>(
    origin: ErrorOrigin,
    hop_headers: bool,
    timing: HopTiming,
) -> Response<B> {
    let (status, server, content_type, body) = match origin {
        ErrorOrigin::Ingress => (
            StatusCode::SERVICE_UNAVAILABLE,
            "nginx",
            Some("text/html"),
            Bytes::from_static(NGINX_503.as_bytes()),
        ),
        ErrorOrigin::Mesh => (StatusCode::SERVICE_UNAVAILABLE, "envoy", None, Bytes::new()),
        ErrorOrigin::Model => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "inferload-serve",
            Some("application/json"),
            Bytes::from_static(br#"{"error":"simulated failure"}"#),
        ),
    };
    let mut response = Response::new(B::from(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(SERVER, HeaderValue::from_static(server));
    if let Some(content_type) = content_type {
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    }
    if hop_headers {
        match origin {
            ErrorOrigin::Ingress => {}
            ErrorOrigin::Mesh => insert_ingress_headers(headers, timing),
            ErrorOrigin::Model => insert_hop_headers(headers, timing),
        }
    }
    response
}

impl From<Bytes> for super::ServeBody {
    fn from(data: Bytes) -> Self {
        super::ServeBody::full(data)
    }
}

/// Per-model inference counters, exposed at `GET /metrics` in the Prometheus text format with
/// MLServer's metric names.
#[derive(Debug, Default)]
pub struct ModelMetrics {
    models: Mutex<HashMap<String, ModelCounters>>,
}

#[derive(Debug, Default, Clone, Copy)]
struct ModelCounters {
    success: u64,
    failure: u64,
    duration_count: u64,
    duration_sum: f64,
}

impl ModelMetrics {
    /// Records one inference of `model` that took `inference`.
    pub fn record(&self, model: &str, inference: Duration, success: bool) {
        let mut models = self.models.lock().unwrap_or_else(|e| e.into_inner());
        let counters = match models.get_mut(model) {
            Some(counters) => counters,
            None => models.entry(model.to_string()).or_default(),
        };
        if success {
            counters.success += 1;
        } else {
            counters.failure += 1;
        }
        counters.duration_count += 1;
        counters.duration_sum += inference.as_secs_f64();
    }

    /// Renders the counters as Prometheus text.
    pub fn render(&self) -> String {
        let models = self.models.lock().unwrap_or_else(|e| e.into_inner());
        let mut names: Vec<_> = models.keys().collect();
        names.sort();
        let mut out = String::new();
        let _ = writeln!(out, "# TYPE model_infer_request_success_total counter");
        for name in &names {
            let c = models[*name];
            let _ = writeln!(
                out,
                "model_infer_request_success_total{{model=\"{name}\",version=\"\"}} {}",
                c.success
            );
        }
        let _ = writeln!(out, "# TYPE model_infer_request_failure_total counter");
        for name in &names {
            let c = models[*name];
            let _ = writeln!(
                out,
                "model_infer_request_failure_total{{model=\"{name}\",version=\"\"}} {}",
                c.failure
            );
        }
        let _ = writeln!(out, "# TYPE model_infer_request_duration summary");
        for name in &names {
            let c = models[*name];
            let _ = writeln!(
                out,
                "model_infer_request_duration_count{{model=\"{name}\",version=\"\"}} {}\n\
                 model_infer_request_duration_sum{{model=\"{name}\",version=\"\"}} {:.9}",
                c.duration_count, c.duration_sum
            );
        }
        out
    }
}

/// Sleep per request of the hops' overhead.
pub fn total_overhead(overhead: Duration) -> Duration {
    overhead * SIMULATED_HOPS
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::hops::{read_hop, HopFormat, HopReading, HopSpec};

    fn timing() -> HopTiming {
        HopTiming {
            inference: Duration::from_micros(4_321),
            overhead: Duration::from_millis(1),
            elapsed: Duration::from_micros(7_480),
        }
    }

    fn micros(headers: &HeaderMap, header: &'static str, format: HopFormat) -> u64 {
        let spec = HopSpec {
            name: header.into(),
            header: HeaderName::from_static(header),
            format,
            origin_when_missing: None,
        };
        match read_hop(headers, &spec) {
            HopReading::Present(time) => time.micros,
            other => panic!("{header}: {other:?}"),
        }
    }

    #[test]
    fn headers_nest_and_parse() {
        let mut headers = HeaderMap::new();
        insert_hop_headers(&mut headers, timing());
        let request = micros(&headers, "x-nginx-request-time", HopFormat::Seconds);
        let upstream = micros(&headers, "x-nginx-upstream-header-time", HopFormat::Seconds);
        let envoy = micros(
            &headers,
            "x-envoy-upstream-service-time",
            HopFormat::Milliseconds,
        );
        let inference = micros(
            &headers,
            "server-timing",
            HopFormat::ServerTiming {
                metric: SERVER_TIMING_METRIC.into(),
            },
        );
        assert_eq!(request, 7_000);
        assert_eq!(upstream, 6_000);
        assert_eq!(envoy, 5_000);
        assert_eq!(inference, 4_321);
    }

    #[test]
    fn error_replies_by_origin() {
        type Reply = Response<Bytes>;
        let ingress: Reply = simulated_error(ErrorOrigin::Ingress, true, timing());
        assert_eq!(ingress.status(), 503);
        assert_eq!(ingress.headers()[SERVER], "nginx");
        assert!(!ingress.headers().contains_key("x-nginx-request-time"));
        let mesh: Reply = simulated_error(ErrorOrigin::Mesh, true, timing());
        assert_eq!(mesh.headers()[SERVER], "envoy");
        assert!(mesh.headers().contains_key("x-nginx-request-time"));
        assert!(!mesh.headers().contains_key("x-envoy-upstream-service-time"));
        let model: Reply = simulated_error(ErrorOrigin::Model, true, timing());
        assert_eq!(model.status(), 500);
        assert!(model
            .headers()
            .contains_key("x-envoy-upstream-service-time"));
        let bare: Reply = simulated_error(ErrorOrigin::Model, false, timing());
        assert!(!bare.headers().contains_key("x-envoy-upstream-service-time"));
    }

    #[test]
    fn metrics_render_parses() {
        let metrics = ModelMetrics::default();
        metrics.record("a", Duration::from_millis(2), true);
        metrics.record("a", Duration::from_millis(4), false);
        metrics.record("b", Duration::from_millis(1), true);
        let samples = crate::metrics::prometheus::parse(&metrics.render()).unwrap();
        let value = |name: &str, model: &str| {
            samples
                .iter()
                .find(|s| s.name == name && s.label("model") == Some(model))
                .map(|s| s.value)
        };
        assert_eq!(value("model_infer_request_success_total", "a"), Some(1.0));
        assert_eq!(value("model_infer_request_failure_total", "a"), Some(1.0));
        assert_eq!(value("model_infer_request_duration_count", "a"), Some(2.0));
        assert_eq!(value("model_infer_request_duration_sum", "a"), Some(0.006));
        assert_eq!(value("model_infer_request_success_total", "b"), Some(1.0));
    }
}
