//! The latency breakdown, route groups by model, the split test and error origins of a run,
//! added to the [`Summary`].
//!
//! The breakdown lists each hop's self time, the model inference time from the model servers'
//! metrics when configured, the network and client remainder (service time minus the outermost
//! hop) and the client wait (latency minus service time: schedule lag and waiting for a
//! connection). Shares are of the mean latency of successful requests, which these components
//! partition: their means add up to it.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use super::summary::{Percentiles, Summary};
use crate::metrics::{CountCheck, ModelWindow};
use crate::scenario::breakdown::{CLIENT_WAIT_COMPONENT, NETWORK_COMPONENT};
use crate::scenario::RunPlan;
use crate::stats::hops::HopFormat;
use crate::stats::routes::model_of;
use crate::stats::{Counts, ErrorKind, Origin};

/// Times of one breakdown component in milliseconds, with the keys of [`Percentiles`]. A value
/// the source cannot give (percentiles of a Prometheus summary) is null.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ComponentTimes {
    pub count: u64,
    pub mean: Option<f64>,
    pub min: Option<f64>,
    pub p50: Option<f64>,
    pub p90: Option<f64>,
    pub p95: Option<f64>,
    pub p99: Option<f64>,
    pub p999: Option<f64>,
    pub max: Option<f64>,
}

impl ComponentTimes {
    fn from_percentiles(p: &Percentiles) -> ComponentTimes {
        ComponentTimes {
            count: p.count,
            mean: Some(p.mean),
            min: Some(p.min),
            p50: Some(p.p50),
            p90: Some(p.p90),
            p95: Some(p.p95),
            p99: Some(p.p99),
            p999: Some(p.p999),
            max: Some(p.max),
        }
    }

    /// Subtracts `ms` from every value, clamping at 0.
    fn shifted(&self, ms: f64) -> ComponentTimes {
        let shift = |v: Option<f64>| v.map(|v| (v - ms).max(0.0));
        ComponentTimes {
            count: self.count,
            mean: shift(self.mean),
            min: shift(self.min),
            p50: shift(self.p50),
            p90: shift(self.p90),
            p95: shift(self.p95),
            p99: shift(self.p99),
            p999: shift(self.p999),
            max: shift(self.max),
        }
    }
}

/// One component of the breakdown, in `summary.json` under `hops.<name>`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HopSummary {
    /// Order from the outside in; the network remainder comes last.
    pub position: usize,
    /// Where the numbers come from.
    pub source: String,
    /// Self time: this component's time minus the next inner component's. Percentiles are of
    /// self times clamped at 0; the mean is of the unclamped ones (so rounding errors of coarse
    /// sources cancel and the means add up to the mean service time), itself never below 0.
    pub latency_ms: ComponentTimes,
    /// The time the header reported (this hop and everything inside it).
    pub total_ms: Option<ComponentTimes>,
    /// Smallest step of the self time, from the coarser of this source and the inner one.
    pub resolution_ms: Option<f64>,
    /// Mean self time over the mean latency of successful requests.
    pub share: Option<f64>,
    /// Successful responses without this hop's header.
    pub missing: u64,
    /// Headers whose value was not a time.
    pub invalid: u64,
    /// Self times below zero, reported as 0.
    pub clamped: u64,
    /// Values that listed several upstream attempts (summed).
    pub retried: u64,
    /// Caveat on how the values were derived, when there is one.
    pub note: Option<String>,
}

/// Successful responses and errors of all route labels of one model.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ModelRouteSummary {
    pub count: u64,
    pub share: f64,
    pub errors: u64,
    /// The route labels grouped here.
    pub labels: Vec<String>,
}

fn format_name(format: &HopFormat) -> String {
    match format {
        HopFormat::Seconds => "seconds".into(),
        HopFormat::Milliseconds => "milliseconds".into(),
        HopFormat::ServerTiming { metric } => format!("server-timing {metric}"),
    }
}

/// Mean in milliseconds of `count` values summing to `sum` microseconds, at least 0.
fn signed_mean_ms(sum: i64, count: u64) -> f64 {
    (sum as f64 / count.max(1) as f64 / 1000.0).max(0.0)
}

fn mean_ms(histogram: &Histogram<u64>) -> Option<f64> {
    (!histogram.is_empty()).then(|| histogram.mean() / 1000.0)
}

/// Builds the breakdown of a run's successful requests.
pub fn hop_summaries(
    plan: &RunPlan,
    counts: &Counts,
    model: Option<&ModelWindow>,
) -> BTreeMap<String, HopSummary> {
    let mut hops = BTreeMap::new();
    if plan.hops.is_empty() && model.is_none() {
        return hops;
    }
    let latency_mean = mean_ms(&counts.timings.latency);
    let share = |mean: Option<f64>| match (mean, latency_mean) {
        (Some(mean), Some(service)) if service > 0.0 => Some(mean / service),
        _ => None,
    };
    let model_mean = model.and_then(|m| m.total.mean_ms);
    let innermost = plan.hops.len().checked_sub(1);

    for (index, spec) in plan.hops.iter().enumerate() {
        let Some(stats) = counts.hops.hops.get(index) else {
            continue;
        };
        let mut latency =
            ComponentTimes::from_percentiles(&Percentiles::from_micros(&stats.self_time));
        if stats.self_time.is_empty() {
            latency = ComponentTimes::default();
        } else {
            latency.mean = Some(signed_mean_ms(stats.signed_sum, stats.self_time.len()));
        }
        let mut note = None;
        if let (Some(model_ms), true) = (model_mean, Some(index) == innermost) {
            if !stats.self_time.is_empty() {
                latency = latency.shifted(model_ms);
                note = Some(format!(
                    "self time is this header's time minus the mean model time from metrics \
                     ({model_ms:.3} ms); its percentiles are shifted by that mean, an \
                     approximation"
                ));
            }
        }
        let mut resolution =
            (stats.resolution_micros > 0).then_some(stats.resolution_micros as f64 / 1000.0);
        if model_mean.is_some() && Some(index) == innermost {
            resolution = resolution.map(|r| r.max(0.001));
        }
        hops.insert(
            spec.name.clone(),
            HopSummary {
                position: index,
                source: format!("header {} ({})", spec.header, format_name(&spec.format)),
                share: share(latency.mean),
                latency_ms: latency,
                total_ms: (!stats.total.is_empty()).then(|| {
                    ComponentTimes::from_percentiles(&Percentiles::from_micros(&stats.total))
                }),
                resolution_ms: resolution,
                missing: stats.missing,
                invalid: stats.invalid,
                clamped: stats.clamped,
                retried: stats.retried,
                note,
            },
        );
    }

    if let Some(model) = model {
        let total = &model.total;
        let latency = ComponentTimes {
            count: total.count.round() as u64,
            mean: total.mean_ms,
            p50: total.p50_ms,
            p95: total.p95_ms,
            p99: total.p99_ms,
            ..ComponentTimes::default()
        };
        hops.insert(
            model.name.clone(),
            HopSummary {
                position: plan.hops.len(),
                source: format!("prometheus {} (window difference)", model.metric),
                share: share(latency.mean),
                latency_ms: latency,
                total_ms: None,
                resolution_ms: None,
                missing: 0,
                invalid: 0,
                clamped: 0,
                retried: 0,
                note: Some(
                    "mean of every inference the model servers recorded in the measured \
                     window, all models; percentiles only when the metric is a histogram"
                        .into(),
                ),
            },
        );
    }

    if let Some(network) = counts.hops.network.as_ref().filter(|h| !h.is_empty()) {
        let mut latency = ComponentTimes::from_percentiles(&Percentiles::from_micros(network));
        latency.mean = Some(signed_mean_ms(
            counts.hops.network_signed_sum,
            network.len(),
        ));
        let outer_resolution = counts
            .hops
            .hops
            .first()
            .filter(|h| h.resolution_micros > 0)
            .map(|h| h.resolution_micros as f64 / 1000.0);
        hops.insert(
            NETWORK_COMPONENT.to_string(),
            HopSummary {
                position: plan.hops.len() + usize::from(model.is_some()),
                source: "service time minus the outermost hop: network, client and server \
                         outside the hops"
                    .into(),
                share: share(latency.mean),
                latency_ms: latency,
                total_ms: None,
                resolution_ms: outer_resolution,
                missing: 0,
                invalid: 0,
                clamped: counts.hops.network_clamped,
                retried: 0,
                note: None,
            },
        );
    }
    if let Some(wait) = counts.hops.client_wait.as_ref().filter(|h| !h.is_empty()) {
        let latency = ComponentTimes::from_percentiles(&Percentiles::from_micros(wait));
        hops.insert(
            CLIENT_WAIT_COMPONENT.to_string(),
            HopSummary {
                position: plan.hops.len() + usize::from(model.is_some()) + 1,
                source: "latency minus service time: schedule lag and waiting for a connection \
                         in inferload"
                    .into(),
                share: share(latency.mean),
                latency_ms: latency,
                total_ms: None,
                resolution_ms: Some(0.001),
                missing: 0,
                invalid: 0,
                clamped: 0,
                retried: 0,
                note: None,
            },
        );
    }
    hops
}

/// Groups the route labels by model (`baseline-predictor_3` -> `baseline-predictor`).
pub fn routes_by_model(counts: &Counts) -> BTreeMap<String, ModelRouteSummary> {
    let total_ok: u64 = counts.routes.values().map(|r| r.ok).sum();
    let mut models: BTreeMap<String, ModelRouteSummary> = BTreeMap::new();
    for (label, stats) in &counts.routes {
        if stats.ok + stats.errors == 0 {
            continue;
        }
        let entry = models.entry(model_of(label).into_owned()).or_default();
        entry.count += stats.ok;
        entry.errors += stats.errors;
        entry.labels.push(label.clone());
    }
    for entry in models.values_mut() {
        entry.labels.sort();
        entry.share = if total_ok > 0 {
            entry.count as f64 / total_ok as f64
        } else {
            0.0
        };
    }
    models
}

/// Error counts by origin and kind, leaving out zeros.
pub fn errors_by_origin(counts: &Counts) -> BTreeMap<String, BTreeMap<String, u64>> {
    let mut origins = BTreeMap::new();
    for origin in Origin::ALL {
        let row = &counts.errors_by_origin[origin.index()];
        let kinds: BTreeMap<String, u64> = ErrorKind::ALL
            .iter()
            .filter(|kind| row[kind.index()] > 0)
            .map(|kind| (kind.name().to_string(), row[kind.index()]))
            .collect();
        if !kinds.is_empty() {
            origins.insert(origin.name().to_string(), kinds);
        }
    }
    origins
}

/// Adds the breakdown, model groups, split test and error origins to a built summary.
pub fn attach(summary: &mut Summary, plan: &RunPlan, counts: &Counts, model: Option<ModelWindow>) {
    summary.hops = hop_summaries(plan, counts, model.as_ref());
    summary.routes_by_model = routes_by_model(counts);
    summary.errors.by_origin = errors_by_origin(counts);
    summary.split_test = plan.split.as_ref().map(|split| {
        split.test(
            counts
                .routes
                .iter()
                .filter(|(_, stats)| stats.ok > 0)
                .map(|(label, stats)| (label.as_str(), stats.ok)),
        )
    });
    summary.model_metrics = model.map(|mut window| {
        window.count_check = count_check(counts, &window);
        window
    });
}

/// Compares inferload's successful responses per model, warm-up included, with the model
/// servers' success counters over the whole run.
fn count_check(counts: &Counts, window: &ModelWindow) -> BTreeMap<String, CountCheck> {
    let mut checks: BTreeMap<String, CountCheck> = BTreeMap::new();
    for (label, stats) in &counts.routes {
        let ok = stats.ok + stats.warmup_ok;
        if ok > 0 {
            checks
                .entry(model_of(label).into_owned())
                .or_default()
                .inferload += ok;
        }
    }
    for model in window.run_success.keys() {
        checks.entry(model.clone()).or_default();
    }
    for (model, check) in checks.iter_mut() {
        check.server = window.run_success.get(model).map(|c| c.round() as u64);
        check.equal = check.server == Some(check.inferload);
    }
    checks
}
