//! Model inference time from the model servers' own Prometheus metrics, scraped at the start
//! and the end of the measured window; the difference covers the window only.
//!
//! From the configured family (MLServer: `model_infer_request_duration`, a summary in seconds
//! with labels `model` and `version`) the mean per model is `delta sum / delta count`, with all
//! series of a model added up. When the family is a histogram, percentiles are interpolated
//! within its buckets, as Prometheus' `histogram_quantile` does. The request-duration
//! histograms of the servers (`rest_server_request_duration_seconds`,
//! `grpc_server_handling_seconds`) are read the same way for their infer requests. Success
//! counters (`model_infer_request_success_total`) give the server's own count per model.
//!
//! Every other request to the server during the window (from another client) is counted too.

pub mod prometheus;

use std::collections::BTreeMap;
use std::time::Duration;

use http::Uri;
use http_body_util::{BodyExt, Empty};
use serde::{Deserialize, Serialize};

use prometheus::Sample;

/// Request-duration histograms read for their infer requests, with the label and value that
/// select those requests.
const SERVER_HISTOGRAMS: &[(&str, &str, &str)] = &[
    ("rest_server_request_duration_seconds", "path", "/infer"),
    ("grpc_server_handling_seconds", "grpc_method", "ModelInfer"),
];

/// Counter families of successful inferences per model, as MLServer names them.
const SUCCESS_COUNTERS: &[&str] = &["model_infer_request_success_total"];

/// Quantiles reported from histograms.
const QUANTILES: [f64; 3] = [0.50, 0.95, 0.99];

/// Largest metrics page read, in bytes.
const MAX_PAGE: usize = 16 * 1024 * 1024;

/// What to scrape, from the scenario's `[model_metrics]`.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricsPlan {
    /// Component name in the breakdown.
    pub name: String,
    pub urls: Vec<Uri>,
    /// Summary or histogram family of the inference time, in seconds.
    pub metric: String,
    pub timeout: Duration,
}

/// A failed scrape.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error("cannot scrape {url}: {message}")]
    Fetch { url: String, message: String },
    #[error("invalid metrics from {url}: {source}")]
    Parse {
        url: String,
        #[source]
        source: prometheus::ParseError,
    },
}

/// The samples of every configured URL at one moment.
#[derive(Debug, Clone, Default)]
pub struct Scrape {
    pub samples: Vec<Sample>,
}

/// Fetches and parses every URL of the plan.
pub async fn scrape(plan: &MetricsPlan) -> Result<Scrape, MetricsError> {
    let mut samples = Vec::new();
    for url in &plan.urls {
        let text = fetch(url, plan.timeout)
            .await
            .map_err(|message| MetricsError::Fetch {
                url: url.to_string(),
                message,
            })?;
        let parsed = prometheus::parse(&text).map_err(|source| MetricsError::Parse {
            url: url.to_string(),
            source,
        })?;
        samples.extend(parsed);
    }
    Ok(Scrape { samples })
}

/// GETs `url` over HTTP/1.1 and returns its body as text.
async fn fetch(url: &Uri, timeout: Duration) -> Result<String, String> {
    let work = async {
        let base: Uri = format!(
            "http://{}",
            url.authority().map(|a| a.as_str()).unwrap_or_default()
        )
        .parse()
        .map_err(|e| format!("{e}"))?;
        let addr = crate::transport::resolve(&base).await?;
        let stream = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connect to {addr} failed: {e}"))?;
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .map_err(|e| format!("HTTP handshake failed: {e}"))?;
        tokio::spawn(connection);
        let request = http::Request::get(
            url.path_and_query()
                .map(|p| p.as_str())
                .unwrap_or("/metrics"),
        )
        .header(http::header::HOST, base.authority().unwrap().as_str())
        .body(Empty::<bytes::Bytes>::new())
        .map_err(|e| format!("{e}"))?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| format!("request failed: {e}"))?;
        let status = response.status();
        let body = http_body_util::Limited::new(response.into_body(), MAX_PAGE)
            .collect()
            .await
            .map_err(|e| format!("reading the body failed: {e}"))?
            .to_bytes();
        if !status.is_success() {
            return Err(format!("HTTP {status}"));
        }
        String::from_utf8(body.to_vec()).map_err(|_| "the body is not UTF-8".to_string())
    };
    tokio::time::timeout(timeout, work)
        .await
        .map_err(|_| format!("timed out after {timeout:?}"))?
}

/// Inference time of one model over the window.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ModelTime {
    /// Inferences counted by the duration metric.
    pub count: f64,
    pub mean_ms: Option<f64>,
    /// From histogram buckets, when the family is a histogram.
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    /// Successful inferences from the server's success counter, when it has one.
    pub success_count: Option<f64>,
}

/// Approximate percentiles of a server's request-duration histogram over the window.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct HistogramWindow {
    pub count: f64,
    pub mean_ms: Option<f64>,
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub p99_ms: Option<f64>,
}

/// What the model servers recorded during the measured window.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ModelWindow {
    /// The component name in the breakdown.
    pub name: String,
    pub metric: String,
    /// All models together.
    pub total: ModelTime,
    pub models: BTreeMap<String, ModelTime>,
    /// Infer requests of each server request-duration histogram found, all models together.
    pub server_histograms: BTreeMap<String, HistogramWindow>,
    /// Successful inferences per model over the whole run, warm-up included, from the
    /// server's success counter scraped before the first request and after the last one.
    /// Unlike the window above, this has no boundary in the middle of the load, so it can be
    /// compared request for request with inferload's own count.
    pub run_success: BTreeMap<String, f64>,
    /// inferload's successful responses per model (route labels grouped by model) against
    /// `run_success`; filled in by the report.
    pub count_check: BTreeMap<String, CountCheck>,
}

/// Successful responses of one model as inferload and the model server counted them.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CountCheck {
    pub inferload: u64,
    pub server: Option<u64>,
    pub equal: bool,
}

/// Sums matching samples of two scrapes by a grouping key; a key seen only at the end, or one
/// whose value went down (the server restarted), counts from 0.
fn deltas<F>(start: &Scrape, end: &Scrape, mut key: F) -> BTreeMap<String, f64>
where
    F: FnMut(&Sample) -> Option<String>,
{
    let mut sum = |scrape: &Scrape| {
        let mut totals: BTreeMap<String, f64> = BTreeMap::new();
        for sample in &scrape.samples {
            if let Some(k) = key(sample) {
                if sample.value.is_finite() {
                    *totals.entry(k).or_default() += sample.value;
                }
            }
        }
        totals
    };
    let before = sum(start);
    let after = sum(end);
    after
        .into_iter()
        .map(|(k, value)| {
            let earlier = before.get(&k).copied().unwrap_or(0.0);
            let delta = if value >= earlier {
                value - earlier
            } else {
                value
            };
            (k, delta)
        })
        .collect()
}

/// Interpolates quantile `q` within cumulative buckets `(upper bound, count)` sorted by bound.
pub fn bucket_quantile(buckets: &[(f64, f64)], q: f64) -> Option<f64> {
    let total = buckets.last()?.1;
    if total <= 0.0 {
        return None;
    }
    let rank = q * total;
    let mut lower_bound = 0.0;
    let mut lower_count = 0.0;
    for &(bound, count) in buckets {
        if count >= rank {
            if bound.is_infinite() {
                // The top bucket has no upper bound: report the highest finite one.
                return Some(lower_bound);
            }
            let in_bucket = count - lower_count;
            if in_bucket <= 0.0 {
                return Some(bound);
            }
            return Some(lower_bound + (bound - lower_bound) * (rank - lower_count) / in_bucket);
        }
        lower_bound = bound;
        lower_count = count;
    }
    Some(lower_bound)
}

/// Returns `(mean, quantiles)` in milliseconds of a histogram family's delta, for samples that
/// `select` accepts, grouped by `group`.
fn histogram_windows<S, G>(
    start: &Scrape,
    end: &Scrape,
    family: &str,
    select: S,
    group: G,
) -> BTreeMap<String, HistogramWindow>
where
    S: Fn(&Sample) -> bool + Copy,
    G: Fn(&Sample) -> String + Copy,
{
    let bucket_name = format!("{family}_bucket");
    let sum_name = format!("{family}_sum");
    let count_name = format!("{family}_count");
    let buckets = deltas(start, end, |s| {
        (s.name == bucket_name && select(s))
            .then(|| Some(format!("{}\u{0}{}", group(s), s.label("le")?)))
            .flatten()
    });
    let sums = deltas(start, end, |s| {
        (s.name == sum_name && select(s)).then(|| group(s))
    });
    let counts = deltas(start, end, |s| {
        (s.name == count_name && select(s)).then(|| group(s))
    });
    let mut grouped: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
    for (key, count) in buckets {
        let Some((group_key, le)) = key.split_once('\u{0}') else {
            continue;
        };
        let bound = match le {
            "+Inf" | "Inf" => f64::INFINITY,
            other => match other.parse() {
                Ok(value) => value,
                Err(_) => continue,
            },
        };
        grouped
            .entry(group_key.to_string())
            .or_default()
            .push((bound, count));
    }
    let mut windows = BTreeMap::new();
    for (group_key, mut buckets) in grouped {
        buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        let count = counts.get(&group_key).copied().unwrap_or(0.0);
        let mean_ms = sums
            .get(&group_key)
            .filter(|_| count > 0.0)
            .map(|sum| sum / count * 1000.0);
        let [p50, p95, p99] = QUANTILES.map(|q| bucket_quantile(&buckets, q).map(|s| s * 1000.0));
        windows.insert(
            group_key,
            HistogramWindow {
                count,
                mean_ms,
                p50_ms: p50,
                p95_ms: p95,
                p99_ms: p99,
            },
        );
    }
    windows
}

impl ModelWindow {
    /// Returns the successful inferences per model between two scrapes.
    pub fn success_between(start: &Scrape, end: &Scrape) -> BTreeMap<String, f64> {
        deltas(start, end, |s| {
            SUCCESS_COUNTERS
                .contains(&s.name.as_str())
                .then(|| s.label("model").map(str::to_string))
                .flatten()
        })
    }

    /// Computes what the servers recorded between two scrapes.
    pub fn between(plan: &MetricsPlan, start: &Scrape, end: &Scrape) -> ModelWindow {
        let model_key = |s: &Sample| s.label("model").map(str::to_string);
        let count_name = format!("{}_count", plan.metric);
        let sum_name = format!("{}_sum", plan.metric);
        let counts = deltas(start, end, |s| {
            (s.name == count_name).then(|| model_key(s)).flatten()
        });
        let sums = deltas(start, end, |s| {
            (s.name == sum_name).then(|| model_key(s)).flatten()
        });
        let successes = Self::success_between(start, end);
        let histograms = histogram_windows(
            start,
            end,
            &plan.metric,
            |s| s.label("model").is_some(),
            |s| s.label("model").unwrap_or_default().to_string(),
        );

        let mut models = BTreeMap::new();
        let mut total = ModelTime::default();
        let mut total_sum = 0.0;
        let mut total_success = None::<f64>;
        for (model, count) in &counts {
            let sum = sums.get(model).copied().unwrap_or(0.0);
            let histogram = histograms.get(model);
            let success = successes.get(model).copied();
            total.count += count;
            total_sum += sum;
            if let Some(success) = success {
                *total_success.get_or_insert(0.0) += success;
            }
            models.insert(
                model.clone(),
                ModelTime {
                    count: *count,
                    mean_ms: (*count > 0.0).then(|| sum / count * 1000.0),
                    p50_ms: histogram.and_then(|h| h.p50_ms),
                    p95_ms: histogram.and_then(|h| h.p95_ms),
                    p99_ms: histogram.and_then(|h| h.p99_ms),
                    success_count: success,
                },
            );
        }
        for (model, success) in &successes {
            if !models.contains_key(model) {
                *total_success.get_or_insert(0.0) += success;
                models.insert(
                    model.clone(),
                    ModelTime {
                        success_count: Some(*success),
                        ..ModelTime::default()
                    },
                );
            }
        }
        total.mean_ms = (total.count > 0.0).then(|| total_sum / total.count * 1000.0);
        total.success_count = total_success;
        if histograms.len() == 1 {
            let only = histograms.values().next().expect("one entry");
            total.p50_ms = only.p50_ms;
            total.p95_ms = only.p95_ms;
            total.p99_ms = only.p99_ms;
        }

        let mut server_histograms = BTreeMap::new();
        for (family, label, needle) in SERVER_HISTOGRAMS {
            let windows = histogram_windows(
                start,
                end,
                family,
                |s| s.label(label).is_some_and(|v| v.contains(needle)),
                |_| String::new(),
            );
            if let Some(window) = windows.into_values().next() {
                if window.count > 0.0 {
                    server_histograms.insert(family.to_string(), window);
                }
            }
        }
        ModelWindow {
            name: plan.name.clone(),
            metric: plan.metric.clone(),
            total,
            models,
            server_histograms,
            run_success: BTreeMap::new(),
            count_check: BTreeMap::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scrape(text: &str) -> Scrape {
        Scrape {
            samples: prometheus::parse(text).unwrap(),
        }
    }

    fn plan() -> MetricsPlan {
        MetricsPlan {
            name: "model".into(),
            urls: vec![],
            metric: "model_infer_request_duration".into(),
            timeout: Duration::from_secs(1),
        }
    }

    const START: &str = r#"
model_infer_request_success_total{model="a",version="None"} 10.0
model_infer_request_success_total{model="a",version=""} 5.0
model_infer_request_duration_count{model="a",version="None"} 11.0
model_infer_request_duration_sum{model="a",version="None"} 0.5
model_infer_request_duration_count{model="a",version=""} 5.0
model_infer_request_duration_sum{model="a",version=""} 0.25
rest_server_request_duration_seconds_bucket{le="0.005",path="/v2/models/{model_name}/infer",status_code="200"} 10.0
rest_server_request_duration_seconds_bucket{le="0.01",path="/v2/models/{model_name}/infer",status_code="200"} 20.0
rest_server_request_duration_seconds_bucket{le="+Inf",path="/v2/models/{model_name}/infer",status_code="200"} 20.0
rest_server_request_duration_seconds_bucket{le="0.005",path="/v2/health/ready",status_code="200"} 100.0
rest_server_request_duration_seconds_bucket{le="0.01",path="/v2/health/ready",status_code="200"} 100.0
rest_server_request_duration_seconds_bucket{le="+Inf",path="/v2/health/ready",status_code="200"} 100.0
rest_server_request_duration_seconds_count{path="/v2/models/{model_name}/infer",status_code="200"} 20.0
rest_server_request_duration_seconds_sum{path="/v2/models/{model_name}/infer",status_code="200"} 0.1
"#;

    const END: &str = r#"
model_infer_request_success_total{model="a",version="None"} 110.0
model_infer_request_success_total{model="a",version=""} 5.0
model_infer_request_success_total{model="b",version="None"} 40.0
model_infer_request_duration_count{model="a",version="None"} 111.0
model_infer_request_duration_sum{model="a",version="None"} 0.8
model_infer_request_duration_count{model="a",version=""} 5.0
model_infer_request_duration_sum{model="a",version=""} 0.25
model_infer_request_duration_count{model="b",version="None"} 40.0
model_infer_request_duration_sum{model="b",version="None"} 0.2
rest_server_request_duration_seconds_bucket{le="0.005",path="/v2/models/{model_name}/infer",status_code="200"} 60.0
rest_server_request_duration_seconds_bucket{le="0.01",path="/v2/models/{model_name}/infer",status_code="200"} 120.0
rest_server_request_duration_seconds_bucket{le="+Inf",path="/v2/models/{model_name}/infer",status_code="200"} 160.0
rest_server_request_duration_seconds_bucket{le="0.005",path="/v2/health/ready",status_code="200"} 900.0
rest_server_request_duration_seconds_bucket{le="0.01",path="/v2/health/ready",status_code="200"} 900.0
rest_server_request_duration_seconds_bucket{le="+Inf",path="/v2/health/ready",status_code="200"} 900.0
rest_server_request_duration_seconds_count{path="/v2/models/{model_name}/infer",status_code="200"} 160.0
rest_server_request_duration_seconds_sum{path="/v2/models/{model_name}/infer",status_code="200"} 1.5
"#;

    #[test]
    fn window_differences() {
        let window = ModelWindow::between(&plan(), &scrape(START), &scrape(END));
        let a = &window.models["a"];
        assert_eq!(a.count, 100.0);
        assert!((a.mean_ms.unwrap() - 3.0).abs() < 1e-9);
        assert_eq!(a.success_count, Some(100.0));
        let b = &window.models["b"];
        assert_eq!(b.count, 40.0);
        assert!((b.mean_ms.unwrap() - 5.0).abs() < 1e-9);
        assert_eq!(window.total.count, 140.0);
        assert!((window.total.mean_ms.unwrap() - 0.5 / 140.0 * 1000.0).abs() < 1e-9);
        assert_eq!(window.total.success_count, Some(140.0));
        assert_eq!(a.p50_ms, None);

        let rest = &window.server_histograms["rest_server_request_duration_seconds"];
        assert_eq!(rest.count, 140.0);
        assert!((rest.mean_ms.unwrap() - 1.4 / 140.0 * 1000.0).abs() < 1e-9);
        // Delta buckets: 50 up to 5 ms, 100 up to 10 ms, 140 in all. Rank 70 is 20 of the 50
        // requests between 5 and 10 ms.
        assert!((rest.p50_ms.unwrap() - 7.0).abs() < 1e-9);
        // Rank 133 is in the +Inf bucket: the highest finite bound.
        assert_eq!(rest.p95_ms, Some(10.0));
    }

    #[test]
    fn restarted_server_counts_from_zero() {
        let start = scrape("model_infer_request_duration_count{model=\"a\"} 500\n");
        let end = scrape("model_infer_request_duration_count{model=\"a\"} 30\n");
        let window = ModelWindow::between(&plan(), &start, &end);
        assert_eq!(window.models["a"].count, 30.0);
    }

    #[test]
    fn quantiles_interpolate() {
        let buckets = [(1.0, 10.0), (2.0, 30.0), (4.0, 40.0), (f64::INFINITY, 40.0)];
        assert_eq!(bucket_quantile(&buckets, 0.25), Some(1.0));
        assert_eq!(bucket_quantile(&buckets, 0.5), Some(1.5));
        assert_eq!(bucket_quantile(&buckets, 0.875), Some(3.0));
        assert_eq!(bucket_quantile(&buckets, 0.05), Some(0.2));
        assert_eq!(bucket_quantile(&[(1.0, 0.0)], 0.5), None);
        assert_eq!(bucket_quantile(&[], 0.5), None);
    }

    #[test]
    fn histogram_family_percentiles_per_model() {
        let mut p = plan();
        p.metric = "infer_seconds".into();
        let start = scrape("");
        let end = scrape(
            "infer_seconds_bucket{model=\"a\",le=\"0.001\"} 50\n\
             infer_seconds_bucket{model=\"a\",le=\"0.002\"} 100\n\
             infer_seconds_bucket{model=\"a\",le=\"+Inf\"} 100\n\
             infer_seconds_count{model=\"a\"} 100\n\
             infer_seconds_sum{model=\"a\"} 0.12\n",
        );
        let window = ModelWindow::between(&p, &start, &end);
        let a = &window.models["a"];
        assert_eq!(a.count, 100.0);
        assert!((a.mean_ms.unwrap() - 1.2).abs() < 1e-9);
        assert!((a.p50_ms.unwrap() - 1.0).abs() < 1e-9);
        assert!((a.p95_ms.unwrap() - 1.9).abs() < 1e-9);
        assert_eq!(window.total.p50_ms, a.p50_ms);
    }
}
