//! The comparison of a new run with an old one: every metric's change, its confidence interval,
//! its p-value and its verdict.

use serde::{Deserialize, Serialize};

use super::bootstrap::{self, ChangeScale, HistogramSeries, Interval, RatioSeries, Resampling};
use super::data::RunData;
use super::record::{
    LATENCY_TAG, ROUTE_LATENCY_PREFIX, ROUTE_SERVICE_TIME_PREFIX, SERVICE_TIME_TAG,
};
use super::settings::CompareSettings;

/// Percentiles compared for every latency and service-time series, with their key suffixes.
pub const QUANTILES: [(f64, &str); 4] =
    [(0.5, "p50"), (0.9, "p90"), (0.99, "p99"), (0.999, "p999")];

/// The direction in which a change is worse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Latency, error rate.
    HigherIsWorse,
    /// Throughput.
    LowerIsWorse,
}

/// The verdict on one metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The change is significant and its whole confidence interval is beyond the noise
    /// threshold, in the better direction.
    Improved,
    /// As improved, in the worse direction.
    Regressed,
    /// Not significant, or significant but not entirely beyond the noise threshold.
    NoChange,
    /// Too few intervals or samples to estimate this metric.
    Inconclusive,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Improved => "improved",
            Verdict::Regressed => "regressed",
            Verdict::NoChange => "no change",
            Verdict::Inconclusive => "inconclusive",
        }
    }
}

/// Unit of a metric's values, for display.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    /// Stored in microseconds, shown in milliseconds.
    Micros,
    RequestsPerSecond,
    /// A fraction, shown in percent.
    Fraction,
}

/// The comparison of one metric.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MetricResult {
    /// Key used in options and reports, e.g. `latency.p99` or `route.a_1.service_time.p50`.
    pub key: String,
    pub unit: Unit,
    pub direction: Direction,
    /// `relative` changes are fractions of the old value; `absolute` ones are in the metric's
    /// unit (the error rate's change is a difference of fractions).
    pub relative: bool,
    #[serde(deserialize_with = "bootstrap::nan_from_null")]
    pub old: f64,
    pub new: Interval,
    pub change: Interval,
    #[serde(deserialize_with = "bootstrap::nan_from_null")]
    pub p_value: f64,
    /// Changes within +-noise (same scale as `change`) count as no change.
    #[serde(deserialize_with = "bootstrap::nan_from_null")]
    pub noise: f64,
    /// Whether a regression of this metric fails the comparison.
    pub gated: bool,
    pub verdict: Verdict,
    /// Reason for an inconclusive verdict, or another fact the reader needs.
    pub note: Option<String>,
}

/// The comparison of two runs of one scenario.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Comparison {
    pub scenario: String,
    pub old_dir: String,
    pub new_dir: String,
    pub old_intervals: usize,
    pub new_intervals: usize,
    pub resamples: usize,
    pub confidence: f64,
    pub significance: f64,
    pub seed: u64,
    pub metrics: Vec<MetricResult>,
    /// Differences between the runs that make the comparison doubtful (rates, partial runs).
    pub warnings: Vec<String>,
}

impl Comparison {
    /// Gated metrics that regressed.
    pub fn gate_failures(&self) -> impl Iterator<Item = &MetricResult> {
        self.metrics
            .iter()
            .filter(|m| m.gated && m.verdict == Verdict::Regressed)
    }

    pub fn passed(&self) -> bool {
        self.gate_failures().next().is_none()
    }
}

/// A statistic to resample, before its verdict.
struct Candidate {
    key: String,
    unit: Unit,
    direction: Direction,
    scale: ChangeScale,
    /// Set when the metric cannot be estimated from these runs.
    too_few: Option<String>,
}

/// Compares `new` with `old`.
pub fn compare(old: &RunData, new: &RunData, settings: &CompareSettings) -> Comparison {
    let old_count = old.intervals.len();
    let new_count = new.intervals.len();
    let mut warnings = run_warnings(old, new);
    let enough_intervals = old_count.min(new_count) >= settings.min_intervals;
    if !enough_intervals {
        warnings.push(format!(
            "the runs have {old_count} and {new_count} measured intervals, fewer than the {} \
             needed; every metric is inconclusive. Run longer or set a shorter output.interval",
            settings.min_intervals
        ));
    }

    let mut metrics = Vec::new();
    for (prefix, tag) in series_tags(old, new) {
        let histograms: Vec<_> = old
            .intervals
            .iter()
            .chain(&new.intervals)
            .map(|i| i.histograms.get(&tag))
            .collect();
        let quantiles: Vec<f64> = QUANTILES.iter().map(|(q, _)| *q).collect();
        let series = HistogramSeries::new(&histograms, &quantiles);
        let old_samples = series.count(0..old_count);
        let new_samples = series.count(old_count..old_count + new_count);
        let candidates: Vec<Candidate> = QUANTILES
            .iter()
            .map(|(quantile, suffix)| {
                let needed = (settings.min_tail_samples as f64 / (1.0 - quantile)).ceil() as u64;
                let fewest = old_samples.min(new_samples);
                Candidate {
                    key: format!("{prefix}.{suffix}"),
                    unit: Unit::Micros,
                    direction: Direction::HigherIsWorse,
                    scale: ChangeScale::Relative,
                    too_few: (fewest < needed).then(|| {
                        format!(
                            "{fewest} samples, {needed} needed for {} beyond this percentile",
                            settings.min_tail_samples
                        )
                    }),
                }
            })
            .collect();
        metrics.extend(judge(
            &series,
            candidates,
            old_count,
            new_count,
            enough_intervals,
            &settings.resampling,
            settings,
        ));
    }

    let throughput = RatioSeries {
        parts: old
            .intervals
            .iter()
            .chain(&new.intervals)
            .map(|i| (i.counts.sent as f64, i.counts.measured_s))
            .collect(),
    };
    metrics.extend(judge(
        &throughput,
        vec![Candidate {
            key: "throughput".into(),
            unit: Unit::RequestsPerSecond,
            direction: Direction::LowerIsWorse,
            scale: ChangeScale::Relative,
            too_few: None,
        }],
        old_count,
        new_count,
        enough_intervals,
        &settings.resampling,
        settings,
    ));

    let error_rate = RatioSeries {
        parts: old
            .intervals
            .iter()
            .chain(&new.intervals)
            .map(|i| {
                (
                    i.counts.errors as f64,
                    (i.counts.ok + i.counts.errors) as f64,
                )
            })
            .collect(),
    };
    metrics.extend(judge(
        &error_rate,
        vec![Candidate {
            key: "error_rate".into(),
            unit: Unit::Fraction,
            direction: Direction::HigherIsWorse,
            scale: ChangeScale::Absolute,
            too_few: None,
        }],
        old_count,
        new_count,
        enough_intervals,
        &settings.resampling,
        settings,
    ));

    Comparison {
        scenario: new.summary.scenario.clone(),
        old_dir: old.dir.display().to_string(),
        new_dir: new.dir.display().to_string(),
        old_intervals: old_count,
        new_intervals: new_count,
        resamples: settings.resampling.resamples,
        confidence: settings.resampling.confidence,
        significance: settings.significance,
        seed: settings.resampling.seed,
        metrics,
        warnings,
    }
}

/// Resamples one statistic group and turns each of its statistics into a verdict.
fn judge<S: bootstrap::Statistic>(
    statistic: &S,
    candidates: Vec<Candidate>,
    old_count: usize,
    new_count: usize,
    enough_intervals: bool,
    resampling: &Resampling,
    settings: &CompareSettings,
) -> Vec<MetricResult> {
    let scale = candidates[0].scale;
    let estimates = if enough_intervals {
        bootstrap::resample(statistic, old_count, new_count, scale, resampling)
    } else {
        point_estimates(statistic, old_count, new_count, scale)
    };
    candidates
        .into_iter()
        .zip(estimates)
        .map(|(candidate, found)| {
            let noise = settings.noise_for(&candidate.key);
            let gated = settings.is_gated(&candidate.key);
            let mut note = candidate.too_few;
            if !enough_intervals {
                note.get_or_insert_with(|| {
                    format!(
                        "{old_count} and {new_count} intervals, fewer than {}",
                        settings.min_intervals
                    )
                });
            }
            let width = found.change.upper - found.change.lower;
            let relative = candidate.scale == ChangeScale::Relative;
            if note.is_none() && relative && width > settings.max_width * noise {
                note = Some(format!(
                    "the change's interval is {:.0}% wide, more than {} x the {:.0}% noise \
                     threshold: the runs vary too much from interval to interval to tell",
                    width * 100.0,
                    settings.max_width,
                    noise * 100.0
                ));
            }
            let verdict = if note.is_some() {
                Verdict::Inconclusive
            } else {
                verdict(&found, candidate.direction, noise, settings.significance)
            };
            MetricResult {
                key: candidate.key,
                unit: candidate.unit,
                direction: candidate.direction,
                relative,
                old: found.old,
                new: found.new,
                change: found.change,
                p_value: found.p_value,
                noise,
                gated,
                verdict,
                note,
            }
        })
        .collect()
}

/// Point estimates only, for runs too short to resample.
fn point_estimates<S: bootstrap::Statistic>(
    statistic: &S,
    old_count: usize,
    new_count: usize,
    scale: ChangeScale,
) -> Vec<bootstrap::Resampled> {
    let width = statistic.width();
    let old_indices: Vec<u32> = (0..old_count as u32).collect();
    let new_indices: Vec<u32> = (old_count as u32..(old_count + new_count) as u32).collect();
    let (mut old_values, mut new_values) = (vec![0.0; width], vec![0.0; width]);
    let mut scratch = Vec::new();
    statistic.compute(&old_indices, &mut scratch, &mut old_values);
    statistic.compute(&new_indices, &mut scratch, &mut new_values);
    (0..width)
        .map(|i| {
            let change = scale.change(old_values[i], new_values[i]);
            bootstrap::Resampled {
                old: old_values[i],
                new: Interval {
                    estimate: new_values[i],
                    lower: f64::NAN,
                    upper: f64::NAN,
                },
                change: Interval {
                    estimate: change,
                    lower: f64::NAN,
                    upper: f64::NAN,
                },
                p_value: f64::NAN,
            }
        })
        .collect()
}

/// Applies the criterion rule: a change counts only when it is significant and its whole confidence
/// interval lies beyond the noise threshold on one side.
pub fn verdict(
    found: &bootstrap::Resampled,
    direction: Direction,
    noise: f64,
    significance: f64,
) -> Verdict {
    if found.p_value >= significance {
        return Verdict::NoChange;
    }
    let above = found.change.lower > noise;
    let below = found.change.upper < -noise;
    match (direction, above, below) {
        (Direction::HigherIsWorse, true, _) | (Direction::LowerIsWorse, _, true) => {
            Verdict::Regressed
        }
        (Direction::HigherIsWorse, _, true) | (Direction::LowerIsWorse, true, _) => {
            Verdict::Improved
        }
        _ => Verdict::NoChange,
    }
}

/// Latency and service-time series present in either run, as (key prefix, tag): the overall
/// ones first, then each route's.
fn series_tags(old: &RunData, new: &RunData) -> Vec<(String, String)> {
    let mut tags = std::collections::BTreeSet::new();
    for interval in old.intervals.iter().chain(&new.intervals) {
        tags.extend(interval.histograms.keys().cloned());
    }
    let mut series = vec![
        ("latency".to_string(), LATENCY_TAG.to_string()),
        ("service_time".to_string(), SERVICE_TIME_TAG.to_string()),
    ];
    for tag in &tags {
        if let Some(label) = tag.strip_prefix(ROUTE_LATENCY_PREFIX) {
            series.push((format!("route.{label}.latency"), tag.clone()));
            let service = format!("{ROUTE_SERVICE_TIME_PREFIX}{label}");
            if tags.contains(&service) {
                series.push((format!("route.{label}.service_time"), service));
            }
        }
    }
    series
}

/// Differences between the runs' plans that make a comparison doubtful.
fn run_warnings(old: &RunData, new: &RunData) -> Vec<String> {
    let mut warnings = Vec::new();
    let (a, b) = (&old.summary, &new.summary);
    if a.scenario != b.scenario {
        warnings.push(format!(
            "the runs are of different scenarios ({} and {})",
            a.scenario, b.scenario
        ));
    }
    if a.load.target_rps != b.load.target_rps || a.load.concurrency != b.load.concurrency {
        warnings.push(format!(
            "the runs used different loads (target {:?} and {:?} req/s, concurrency {:?} and {:?}); \
             latency depends on load, so compare runs at the same load",
            a.load.target_rps, b.load.target_rps, a.load.concurrency, b.load.concurrency
        ));
    }
    for (which, summary) in [("old", a), ("new", b)] {
        if summary.partial {
            warnings.push(format!(
                "the {which} run was interrupted; its numbers are partial"
            ));
        }
    }
    warnings
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(lower: f64, upper: f64, p_value: f64) -> bootstrap::Resampled {
        bootstrap::Resampled {
            old: 1.0,
            new: Interval::default(),
            change: Interval {
                estimate: (lower + upper) / 2.0,
                lower,
                upper,
            },
            p_value,
        }
    }

    #[test]
    fn verdict_rules() {
        let worse_up = Direction::HigherIsWorse;
        assert_eq!(
            verdict(&found(0.10, 0.20, 0.001), worse_up, 0.05, 0.05),
            Verdict::Regressed
        );
        assert_eq!(
            verdict(&found(-0.20, -0.10, 0.001), worse_up, 0.05, 0.05),
            Verdict::Improved
        );
        // Significant, but the interval reaches into the noise band.
        assert_eq!(
            verdict(&found(0.03, 0.20, 0.001), worse_up, 0.05, 0.05),
            Verdict::NoChange
        );
        // Beyond the band, but not significant.
        assert_eq!(
            verdict(&found(0.10, 0.20, 0.2), worse_up, 0.05, 0.05),
            Verdict::NoChange
        );
        let worse_down = Direction::LowerIsWorse;
        assert_eq!(
            verdict(&found(-0.20, -0.10, 0.001), worse_down, 0.05, 0.05),
            Verdict::Regressed
        );
        assert_eq!(
            verdict(&found(0.10, 0.20, 0.001), worse_down, 0.05, 0.05),
            Verdict::Improved
        );
    }
}
