//! `summary.json`: the machine-readable result of a run. Outside tools rely on its keys, so the
//! layout is versioned by [`SCHEMA_VERSION`].

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::engine::RunOutcome;
use crate::scenario::{AtCapacity, LoadMode, RunPlan};
use crate::stats::ErrorKind;

/// Version of the `summary.json` layout; raised when a key changes meaning or disappears.
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Summary {
    pub schema_version: u32,
    pub tool: Tool,
    pub scenario: String,
    pub scenario_file: String,
    /// True when the run was interrupted and its numbers cover only part of the plan.
    pub partial: bool,
    /// RFC 3339 UTC time of the start of the load.
    pub started_at: String,
    pub target: TargetSummary,
    pub load: LoadSummary,
    pub requests: RequestCounts,
    pub errors: ErrorSummary,
    /// Response end minus intended send time (no coordinated omission), successful requests.
    pub latency_ms: Percentiles,
    /// Response end minus actual send time, successful requests.
    pub service_time_ms: Percentiles,
    /// Actual release minus intended release, open loop only.
    pub schedule_lag_ms: Option<Percentiles>,
    /// Time to open each new connection.
    pub connect_ms: Option<Percentiles>,
    pub connections_opened: u64,
    /// Connections opened in place of one that the target closed (GOAWAY, `Connection:
    /// close`) or that failed; included in `connections_opened`.
    #[serde(default)]
    pub reconnects: u64,
    pub routes: BTreeMap<String, RouteSummary>,
    /// The routes grouped by model: each label without its `_<version>` suffix.
    pub routes_by_model: BTreeMap<String, super::breakdown::ModelRouteSummary>,
    /// Observed shares against the expected split, when the scenario expects one.
    pub split_test: Option<crate::stats::split::SplitTest>,
    /// The latency breakdown: hops, model inference and the network remainder.
    pub hops: BTreeMap<String, super::breakdown::HopSummary>,
    /// What the model servers' metrics recorded during the measured window.
    pub model_metrics: Option<crate::metrics::ModelWindow>,
    pub gates: Vec<crate::gate::GateResult>,
    /// True when every gate passed (and when there are none).
    pub passed: bool,
    /// Rows of `requests.csv`, when the run wrote one.
    #[serde(default)]
    pub requests_csv: Option<super::requests::RequestCsvSummary>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Tool {
    pub name: String,
    pub version: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TargetSummary {
    pub url: String,
    pub model: String,
    pub transport: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoadSummary {
    /// `open` or `closed`.
    pub mode: String,
    /// Requested arrival rate (open loop), requests per second.
    pub target_rps: Option<f64>,
    /// Measured requests sent per second of the measured window.
    pub achieved_rps: f64,
    pub concurrency: Option<u32>,
    pub duration_s: f64,
    pub warmup_s: f64,
    /// Length of the measured window actually run (shorter than `duration_s` when partial).
    pub measured_s: f64,
    pub connections: u32,
    pub max_in_flight: u32,
    pub at_cap: String,
    /// The pacer's release gap as configured: `auto`, `0` or a duration such as `250us`.
    /// Missing from summaries written before the setting existed.
    #[serde(default)]
    pub release_gap: Option<String>,
}

/// Every measured request is counted once: `sent = ok + errors + in_flight_at_end`, and
/// `dropped` requests were due but never sent.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RequestCounts {
    pub sent: u64,
    pub ok: u64,
    pub errors: u64,
    pub dropped: u64,
    pub in_flight_at_end: u64,
    /// Requests released more than 1 ms after their intended time.
    pub late: u64,
    /// `ok / (ok + errors)`, or 1 when nothing completed.
    pub success_rate: f64,
    pub warmup_sent: u64,
    pub warmup_ok: u64,
    pub warmup_errors: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorSummary {
    pub by_kind: BTreeMap<String, u64>,
    pub status_codes: BTreeMap<String, u64>,
    /// Failed gRPC calls by the status the server or a proxy returned, keyed by the status
    /// name (`UNAVAILABLE`, `RESOURCE_EXHAUSTED`, ...).
    #[serde(default)]
    pub grpc_status_codes: BTreeMap<String, u64>,
    /// Errors with a response, by the part of the chain that produced them (`ingress`,
    /// `mesh`, `model`, `unknown`) and kind.
    pub by_origin: BTreeMap<String, BTreeMap<String, u64>>,
    /// The most frequent distinct error bodies (status and first 200 bytes), most frequent first.
    pub top_bodies: Vec<ErrorBody>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorBody {
    pub body: String,
    pub count: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Percentiles {
    pub count: u64,
    pub mean: f64,
    pub min: f64,
    pub p50: f64,
    pub p90: f64,
    pub p95: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
}

impl Percentiles {
    /// Reads percentiles in milliseconds from a histogram of microseconds.
    pub fn from_micros(histogram: &Histogram<u64>) -> Percentiles {
        if histogram.is_empty() {
            return Percentiles::default();
        }
        let ms = |value: u64| value as f64 / 1000.0;
        Percentiles {
            count: histogram.len(),
            mean: histogram.mean() / 1000.0,
            min: ms(histogram.min()),
            p50: ms(histogram.value_at_quantile(0.50)),
            p90: ms(histogram.value_at_quantile(0.90)),
            p95: ms(histogram.value_at_quantile(0.95)),
            p99: ms(histogram.value_at_quantile(0.99)),
            p999: ms(histogram.value_at_quantile(0.999)),
            max: ms(histogram.max()),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RouteSummary {
    /// Successful responses that named this route.
    pub count: u64,
    /// `count` over all successful responses.
    pub share: f64,
    pub errors: u64,
    /// Successful responses during warm-up, not in `count`.
    pub warmup_count: u64,
    pub latency_ms: Percentiles,
    pub service_time_ms: Percentiles,
}

impl Summary {
    /// Builds the summary of a finished (or interrupted) run.
    pub fn build(plan: &RunPlan, outcome: &RunOutcome, target_url: &str) -> Summary {
        let totals = &outcome.totals;
        let counts = &totals.counts;
        let pacer = &totals.pacer;
        let errors = counts.error_total();
        let measured_s = totals.measured_for.as_secs_f64();
        let (mode, target_rps, concurrency) = match plan.load.mode {
            LoadMode::Open { rate, .. } => ("open", Some(rate), None),
            LoadMode::Closed { concurrency } => ("closed", None, Some(concurrency)),
        };
        let mut by_kind = BTreeMap::new();
        for kind in ErrorKind::ALL {
            let count = counts.errors[kind.index()];
            if count > 0 {
                by_kind.insert(kind.name().to_string(), count);
            }
        }
        let routed_ok: u64 = counts.routes.values().map(|r| r.ok).sum();
        let routes = counts
            .routes
            .iter()
            .filter(|(_, stats)| stats.ok + stats.errors + stats.warmup_ok > 0)
            .map(|(label, stats)| {
                let summary = RouteSummary {
                    count: stats.ok,
                    share: if routed_ok > 0 {
                        stats.ok as f64 / routed_ok as f64
                    } else {
                        0.0
                    },
                    errors: stats.errors,
                    warmup_count: stats.warmup_ok,
                    latency_ms: Percentiles::from_micros(&stats.timings.latency),
                    service_time_ms: Percentiles::from_micros(&stats.timings.service),
                };
                (label.clone(), summary)
            })
            .collect();

        let mut summary = Summary {
            schema_version: SCHEMA_VERSION,
            tool: Tool {
                name: "inferload".into(),
                version: env!("CARGO_PKG_VERSION").into(),
            },
            scenario: plan.name.clone(),
            scenario_file: plan.scenario_path.display().to_string(),
            partial: outcome.interrupted,
            started_at: humantime::format_rfc3339_millis(outcome.started_at).to_string(),
            target: TargetSummary {
                url: target_url.to_string(),
                model: plan.target.model.clone(),
                transport: format!("{:?}", plan.target.transport).to_lowercase(),
            },
            load: LoadSummary {
                mode: mode.into(),
                target_rps,
                achieved_rps: if measured_s > 0.0 {
                    pacer.sent as f64 / measured_s
                } else {
                    0.0
                },
                concurrency,
                duration_s: plan.load.duration.as_secs_f64(),
                warmup_s: plan.load.warmup.as_secs_f64(),
                measured_s,
                connections: plan.load.connections,
                max_in_flight: plan.load.max_in_flight,
                at_cap: match plan.load.at_cap {
                    AtCapacity::Wait => "wait".into(),
                    AtCapacity::Drop => "drop".into(),
                },
                release_gap: Some(plan.load.release_gap.to_string()),
            },
            requests: RequestCounts {
                sent: pacer.sent,
                ok: counts.ok,
                errors,
                dropped: pacer.dropped,
                in_flight_at_end: totals.in_flight_at_end,
                late: pacer.late,
                success_rate: if counts.ok + errors > 0 {
                    counts.ok as f64 / (counts.ok + errors) as f64
                } else {
                    1.0
                },
                warmup_sent: pacer.warmup_sent,
                warmup_ok: counts.warmup_ok,
                warmup_errors: counts.warmup_errors,
            },
            errors: ErrorSummary {
                by_kind,
                status_codes: counts
                    .status_codes
                    .iter()
                    .map(|(k, v)| (k.to_string(), *v))
                    .collect(),
                grpc_status_codes: counts
                    .grpc_status_codes
                    .iter()
                    .map(|(code, count)| (grpc_status_name(*code), *count))
                    .collect(),
                by_origin: BTreeMap::new(),
                top_bodies: counts
                    .error_bodies
                    .top()
                    .into_iter()
                    .map(|(body, count)| ErrorBody {
                        body: plan.target.headers.scrub(&body).into_owned(),
                        count,
                    })
                    .collect(),
            },
            latency_ms: Percentiles::from_micros(&counts.timings.latency),
            service_time_ms: Percentiles::from_micros(&counts.timings.service),
            schedule_lag_ms: match plan.load.mode {
                LoadMode::Open { .. } => pacer.lag.as_ref().map(Percentiles::from_micros),
                LoadMode::Closed { .. } => None,
            },
            connect_ms: counts.connect.as_ref().map(Percentiles::from_micros),
            connections_opened: counts.connects,
            reconnects: counts.reconnects,
            routes,
            routes_by_model: BTreeMap::new(),
            split_test: None,
            hops: BTreeMap::new(),
            model_metrics: None,
            gates: Vec::new(),
            passed: true,
            requests_csv: None,
        };
        super::breakdown::attach(&mut summary, plan, counts, None);
        summary
    }
}

/// Returns the canonical name of gRPC status `code`, e.g. `UNAVAILABLE`, or its number when
/// the code is not one the gRPC specification defines.
fn grpc_status_name(code: i32) -> String {
    const NAMES: [&str; 17] = [
        "OK",
        "CANCELLED",
        "UNKNOWN",
        "INVALID_ARGUMENT",
        "DEADLINE_EXCEEDED",
        "NOT_FOUND",
        "ALREADY_EXISTS",
        "PERMISSION_DENIED",
        "RESOURCE_EXHAUSTED",
        "FAILED_PRECONDITION",
        "ABORTED",
        "OUT_OF_RANGE",
        "UNIMPLEMENTED",
        "INTERNAL",
        "UNAVAILABLE",
        "DATA_LOSS",
        "UNAUTHENTICATED",
    ];
    usize::try_from(code)
        .ok()
        .and_then(|index| NAMES.get(index))
        .map_or_else(|| code.to_string(), |name| name.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    /// The exact percentile of sorted samples: the smallest value with at least q*N samples at
    /// or below it.
    fn oracle(sorted: &[u64], quantile: f64) -> f64 {
        let rank = ((quantile * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
        sorted[rank - 1] as f64 / 1000.0
    }

    #[test]
    fn percentiles_match_sorted_samples() {
        let mut rng = StdRng::seed_from_u64(11);
        for round in 0..20 {
            let count = rng.gen_range(1..20_000);
            let spread = 10u64.pow(rng.gen_range(2..8));
            let mut samples: Vec<u64> = (0..count).map(|_| rng.gen_range(1..spread)).collect();
            let mut histogram = crate::stats::new_histogram();
            for value in &samples {
                histogram.record(*value).unwrap();
            }
            samples.sort_unstable();
            let p = Percentiles::from_micros(&histogram);
            for (quantile, reported) in [
                (0.5, p.p50),
                (0.9, p.p90),
                (0.95, p.p95),
                (0.99, p.p99),
                (0.999, p.p999),
            ] {
                let exact = oracle(&samples, quantile);
                // Three significant digits: any value is within 0.1% of its bucket's top.
                let tolerance = exact * 0.001 + 0.001;
                assert!(
                    (reported - exact).abs() <= tolerance,
                    "round {round}, q{quantile}: reported {reported}, exact {exact}"
                );
            }
            assert_eq!(p.count, count as u64);
            let exact_max = *samples.last().unwrap() as f64 / 1000.0;
            assert!((p.max - exact_max).abs() <= exact_max * 0.001 + 0.001);
        }
    }
}
