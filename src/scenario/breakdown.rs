//! Scenario sections of the latency breakdown and the split test: `[[hops]]`,
//! `[model_metrics]` and the expected split in `[routes]`, checked into their plan types.

use std::path::Path;

use http::HeaderName;
use serde::Deserialize;

use super::experiment::Experiment;
use super::{RoutesSection, ScenarioError};
use crate::metrics::MetricsPlan;
use crate::stats::hops::{HopFormat, HopSpec, MAX_HOPS};
use crate::stats::split::{ExpectedSplit, DEFAULT_ALPHA};
use crate::stats::Origin;

/// Name of the network and client remainder in the breakdown; no hop may use it.
pub const NETWORK_COMPONENT: &str = "network";
/// Name of the time requests waited in inferload before being sent; no hop may use it.
pub const CLIENT_WAIT_COMPONENT: &str = "client-wait";

/// One `[[hops]]` entry, outside in.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HopSection {
    /// Component name in the breakdown, e.g. `ingress`.
    pub name: String,
    /// Response header holding the time of this hop and everything inside it.
    pub header: String,
    /// `seconds` (NGINX `$request_time`), `milliseconds` (Envoy
    /// `x-envoy-upstream-service-time`) or `server-timing` (W3C, with `metric`).
    pub format: String,
    /// Entry name in a `Server-Timing` header.
    pub metric: Option<String>,
    /// Part of the chain that responded itself when this header is missing: `ingress`, `mesh` or
    /// `model`. Used to tell where an error response came from.
    pub origin: Option<String>,
}

/// `[model_metrics]`: Prometheus endpoints of the model servers, scraped at the start and end
/// of the measured window.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelMetricsSection {
    /// Metrics URLs, e.g. `http://127.0.0.1:8082/metrics` (MLServer).
    pub urls: Vec<String>,
    /// Component name of the model inference time in the breakdown (default `model`).
    pub name: Option<String>,
    /// Summary or histogram family of the inference time, in seconds (default
    /// `model_infer_request_duration`).
    pub metric: Option<String>,
    /// Per-request timeout of a scrape (default 5s).
    pub timeout: Option<super::units::HumanDuration>,
}

type Invalid<'a> = &'a dyn Fn(&str, String) -> ScenarioError;

/// Checks `[[hops]]` into hop specs.
pub fn build_hops(
    sections: &[HopSection],
    invalid: Invalid,
) -> Result<Vec<HopSpec>, ScenarioError> {
    if sections.len() > MAX_HOPS {
        return Err(invalid(
            "hops",
            format!(
                "lists {} hops; at most {MAX_HOPS} are supported",
                sections.len()
            ),
        ));
    }
    let mut specs: Vec<HopSpec> = Vec::new();
    for (index, section) in sections.iter().enumerate() {
        let key = |field: &str| format!("hops[{index}].{field}");
        let name = section.name.trim();
        if name.is_empty() || name == NETWORK_COMPONENT || name == CLIENT_WAIT_COMPONENT {
            return Err(invalid(
                &key("name"),
                format!(
                    "= {name:?}; give each hop a name other than `{NETWORK_COMPONENT}` and \
                     `{CLIENT_WAIT_COMPONENT}`, which the report computes"
                ),
            ));
        }
        if specs.iter().any(|s| s.name == name) {
            return Err(invalid(
                &key("name"),
                format!("= {name:?} is used by another hop; give each hop its own name"),
            ));
        }
        let header =
            HeaderName::try_from(section.header.trim().to_ascii_lowercase()).map_err(|_| {
                invalid(
                    &key("header"),
                    format!("= {:?} is not a valid header name", section.header),
                )
            })?;
        let format =
            match (section.format.as_str(), &section.metric) {
                ("seconds", None) => HopFormat::Seconds,
                ("milliseconds", None) => HopFormat::Milliseconds,
                ("server-timing", Some(metric)) if !metric.trim().is_empty() => {
                    HopFormat::ServerTiming {
                        metric: metric.trim().to_string(),
                    }
                }
                ("server-timing", _) => return Err(invalid(
                    &key("metric"),
                    "is missing; a server-timing hop names its entry, e.g. metric = \"inference\""
                        .into(),
                )),
                ("seconds" | "milliseconds", Some(_)) => {
                    return Err(invalid(
                        &key("metric"),
                        "is only used with format = \"server-timing\"; remove it".into(),
                    ))
                }
                (other, _) => {
                    return Err(invalid(
                        &key("format"),
                        format!("= {other:?}; use seconds, milliseconds or server-timing"),
                    ))
                }
            };
        let origin_when_missing = match &section.origin {
            None => None,
            Some(text) => Some(Origin::parse(text.trim()).ok_or_else(|| {
                invalid(
                    &key("origin"),
                    format!("= {text:?}; use ingress, mesh or model"),
                )
            })?),
        };
        specs.push(HopSpec {
            name: name.to_string(),
            header,
            format,
            origin_when_missing,
        });
    }
    Ok(specs)
}

/// Checks the expected split of `[routes]` (`expected` weights or an `experiment` file).
pub fn build_split(
    routes: &RoutesSection,
    base_dir: &Path,
    invalid: Invalid,
) -> Result<Option<ExpectedSplit>, ScenarioError> {
    let alpha = routes.alpha.unwrap_or(DEFAULT_ALPHA);
    if !(alpha > 0.0 && alpha < 1.0) {
        return Err(invalid(
            "routes.alpha",
            format!("= {alpha} is outside (0, 1); use e.g. 0.01"),
        ));
    }
    let (weights, source) = match (&routes.expected, &routes.experiment) {
        (None, None) => {
            if routes.alpha.is_some() {
                return Err(invalid(
                    "routes.alpha",
                    "is set but no split is expected; add routes.expected or routes.experiment"
                        .into(),
                ));
            }
            return Ok(None);
        }
        (Some(_), Some(_)) => {
            return Err(invalid(
                "routes.expected",
                "and routes.experiment are both set; keep one".into(),
            ))
        }
        (Some(expected), None) => (
            expected
                .iter()
                .map(|(k, w)| (k.trim().to_string(), *w))
                .collect::<Vec<_>>(),
            "scenario".to_string(),
        ),
        (None, Some(file)) => {
            let full = base_dir.join(file);
            let experiment = Experiment::from_file(&full)
                .map_err(|m| invalid("routes.experiment", format!("= {file:?}: {m}")))?;
            (experiment.expected_weights(), full.display().to_string())
        }
    };
    for (key, weight) in &weights {
        if key.is_empty() || !weight.is_finite() || *weight < 0.0 {
            return Err(invalid(
                "routes.expected",
                format!("{key:?} = {weight}; give each route or model a weight of 0 or more"),
            ));
        }
    }
    if weights.iter().all(|(_, w)| *w == 0.0) {
        return Err(invalid(
            "routes.expected",
            "has no weight above 0; give e.g. { \"baseline\" = 70, \"candidate\" = 30 }".into(),
        ));
    }
    Ok(Some(ExpectedSplit {
        weights,
        alpha,
        source,
    }))
}

/// Checks `[model_metrics]`.
pub fn build_model_metrics(
    section: Option<&ModelMetricsSection>,
    hops: &[HopSpec],
    invalid: Invalid,
) -> Result<Option<MetricsPlan>, ScenarioError> {
    let Some(section) = section else {
        return Ok(None);
    };
    if section.urls.is_empty() {
        return Err(invalid(
            "model_metrics.urls",
            "is empty; list the model servers' metrics URLs, e.g. [\"http://127.0.0.1:8082/metrics\"]"
                .into(),
        ));
    }
    let mut urls = Vec::new();
    for url in &section.urls {
        let uri: http::Uri = url.trim().parse().map_err(|e| {
            invalid(
                "model_metrics.urls",
                format!(
                    "{url:?} is not a valid URL ({e}); write e.g. http://127.0.0.1:8082/metrics"
                ),
            )
        })?;
        if uri.scheme_str() != Some("http") || uri.host().is_none() {
            return Err(invalid(
                "model_metrics.urls",
                format!("{url:?} is not an http:// URL with a host"),
            ));
        }
        urls.push(uri);
    }
    let name = section
        .name
        .as_deref()
        .unwrap_or("model")
        .trim()
        .to_string();
    if name.is_empty()
        || name == NETWORK_COMPONENT
        || name == CLIENT_WAIT_COMPONENT
        || hops.iter().any(|h| h.name == name)
    {
        return Err(invalid(
            "model_metrics.name",
            format!("= {name:?} is empty, `{NETWORK_COMPONENT}` or a hop's name; choose another"),
        ));
    }
    let timeout = section
        .timeout
        .map(|d| d.0)
        .unwrap_or(std::time::Duration::from_secs(5));
    Ok(Some(MetricsPlan {
        name,
        urls,
        metric: section
            .metric
            .clone()
            .unwrap_or_else(|| "model_infer_request_duration".into()),
        timeout,
    }))
}
