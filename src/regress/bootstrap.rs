//! Seeded bootstrap and permutation test over a run's intervals.
//!
//! A run is a sequence of intervals, each with its own latency histograms and counters. The
//! statistic of interest (a percentile of the merged histograms, a rate) is a function of a set
//! of intervals, so both tests resample whole intervals:
//!
//! - the bootstrap draws, for each run, as many intervals as it has, with replacement, and
//!   computes the statistic of each draw; the percentiles of `new / old - 1` over all draws give
//!   the confidence interval of the change;
//! - the permutation test pools the intervals of both runs, deals them at random into two groups
//!   of the original sizes, and counts how often the change between the groups is at least as
//!   large as the observed one; that fraction is the two-sided p-value of "both runs come from
//!   the same distribution of intervals".
//!
//! Resampling intervals, not single requests, keeps the dependence between requests that were
//! close in time (a garbage collection pause or a busy core slows a burst of them), so the
//! interval widths are honest when requests within an interval are correlated.
//!
//! Speed: every series' histograms are first reduced to sparse `(bucket, count)` lists over one
//! shared, sorted table of bucket values, so a draw is a few thousand additions into a dense
//! array plus one cumulative scan for all quantiles at once. The quantile rule is the one of
//! `hdrhistogram::Histogram::value_at_quantile` (the smallest bucket whose cumulative count
//! reaches `ceil(q * total)`, reported as the bucket's highest equivalent value), so the point
//! estimates equal the summary's percentiles of the same histograms.

use hdrhistogram::Histogram;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Resampling settings shared by every metric of a comparison.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Resampling {
    /// Bootstrap draws (and permutation rounds) per metric.
    pub resamples: usize,
    /// Confidence level of the intervals, e.g. 0.95.
    pub confidence: f64,
    /// Seed of the generator; the same seed gives the same draws and the same intervals.
    pub seed: u64,
}

impl Default for Resampling {
    fn default() -> Self {
        Resampling {
            resamples: 2000,
            confidence: 0.95,
            seed: 0x1fe7_10ad,
        }
    }
}

/// Point estimate and confidence interval of one quantity.
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct Interval {
    #[serde(deserialize_with = "nan_from_null")]
    pub estimate: f64,
    #[serde(deserialize_with = "nan_from_null")]
    pub lower: f64,
    #[serde(deserialize_with = "nan_from_null")]
    pub upper: f64,
}

/// Reads a number that JSON stores as `null` when it was NaN or infinite, as NaN.
// NOTE: JSON has no infinity, so an infinite change (from an old value of 0) reads back as NaN.
pub fn nan_from_null<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<f64, D::Error> {
    let value: Option<f64> = serde::Deserialize::deserialize(deserializer)?;
    Ok(value.unwrap_or(f64::NAN))
}

/// Findings of the bootstrap and the permutation test for one statistic.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Resampled {
    pub old: f64,
    pub new: Interval,
    /// Change from old to new: relative (`new / old - 1`) or absolute (`new - old`).
    pub change: Interval,
    /// Two-sided permutation p-value of the observed change.
    pub p_value: f64,
}

/// Scale of the change between two values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeScale {
    /// `new / old - 1`, for latencies and rates.
    Relative,
    /// `new - old`, for fractions that may be zero (error rate).
    Absolute,
}

impl ChangeScale {
    pub fn change(self, old: f64, new: f64) -> f64 {
        match self {
            ChangeScale::Relative if old > 0.0 => new / old - 1.0,
            ChangeScale::Relative if new > 0.0 => f64::INFINITY,
            ChangeScale::Relative => 0.0,
            ChangeScale::Absolute => new - old,
        }
    }
}

/// Statistics of a group of intervals, given by their indices into the pooled intervals of
/// both runs; one call computes several at once (such as four percentiles of one histogram).
pub trait Statistic {
    /// Number of statistics computed per group (e.g. 4 percentiles).
    fn width(&self) -> usize;
    /// Computes the statistics of the intervals at `indices` into `out`.
    fn compute(&self, indices: &[u32], scratch: &mut Vec<u64>, out: &mut [f64]);
}

/// Resamples a pooled set of intervals: indices `0..old_count` are the old run's intervals and
/// `old_count..` the new run's.
pub fn resample<S: Statistic>(
    statistic: &S,
    old_count: usize,
    new_count: usize,
    scale: ChangeScale,
    settings: &Resampling,
) -> Vec<Resampled> {
    let width = statistic.width();
    let mut scratch = Vec::new();
    let old_indices: Vec<u32> = (0..old_count as u32).collect();
    let new_indices: Vec<u32> = (old_count as u32..(old_count + new_count) as u32).collect();
    let mut old_point = vec![0.0; width];
    let mut new_point = vec![0.0; width];
    statistic.compute(&old_indices, &mut scratch, &mut old_point);
    statistic.compute(&new_indices, &mut scratch, &mut new_point);
    let observed: Vec<f64> = (0..width)
        .map(|i| scale.change(old_point[i], new_point[i]))
        .collect();

    let draws = settings.resamples.max(1);
    let mut new_draws = vec![Vec::with_capacity(draws); width];
    let mut change_draws = vec![Vec::with_capacity(draws); width];
    let mut at_least_observed = vec![0usize; width];
    let mut rng = StdRng::seed_from_u64(settings.seed);
    let mut old_group = vec![0u32; old_count];
    let mut new_group = vec![0u32; new_count];
    let mut old_value = vec![0.0; width];
    let mut new_value = vec![0.0; width];
    let mut pool: Vec<u32> = (0..(old_count + new_count) as u32).collect();

    for _ in 0..draws {
        // Bootstrap: each run drawn from its own intervals.
        draw_with_replacement(&mut rng, &old_indices, &mut old_group);
        draw_with_replacement(&mut rng, &new_indices, &mut new_group);
        statistic.compute(&old_group, &mut scratch, &mut old_value);
        statistic.compute(&new_group, &mut scratch, &mut new_value);
        for i in 0..width {
            new_draws[i].push(new_value[i]);
            change_draws[i].push(scale.change(old_value[i], new_value[i]));
        }

        // Permutation: intervals of both runs dealt at random into groups of the same sizes.
        partial_shuffle(&mut rng, &mut pool, old_count);
        statistic.compute(&pool[..old_count], &mut scratch, &mut old_value);
        statistic.compute(&pool[old_count..], &mut scratch, &mut new_value);
        for i in 0..width {
            let change = scale.change(old_value[i], new_value[i]);
            if change.abs() >= observed[i].abs() - 1e-12 {
                at_least_observed[i] += 1;
            }
        }
    }

    let tail = (1.0 - settings.confidence) / 2.0;
    (0..width)
        .map(|i| {
            let new_interval = percentile_interval(&mut new_draws[i], tail);
            let change_interval = percentile_interval(&mut change_draws[i], tail);
            Resampled {
                old: old_point[i],
                new: Interval {
                    estimate: new_point[i],
                    ..new_interval
                },
                change: Interval {
                    estimate: observed[i],
                    ..change_interval
                },
                // The observed split is one of the possible splits, so the p-value is never 0.
                p_value: (at_least_observed[i] + 1) as f64 / (draws + 1) as f64,
            }
        })
        .collect()
}

fn draw_with_replacement(rng: &mut StdRng, from: &[u32], into: &mut [u32]) {
    for slot in into.iter_mut() {
        *slot = from[rng.gen_range(0..from.len())];
    }
}

/// Moves a uniformly random subset of `count` elements to the front (Fisher-Yates, first
/// `count` steps).
fn partial_shuffle(rng: &mut StdRng, pool: &mut [u32], count: usize) {
    for i in 0..count.min(pool.len().saturating_sub(1)) {
        let j = rng.gen_range(i..pool.len());
        pool.swap(i, j);
    }
}

/// Returns the `tail` and `1 - tail` empirical quantiles of `draws` (sorted in place).
fn percentile_interval(draws: &mut [f64], tail: f64) -> Interval {
    draws.sort_by(f64::total_cmp);
    let at = |q: f64| {
        let position = (q * (draws.len() - 1) as f64).round() as usize;
        draws[position.min(draws.len() - 1)]
    };
    Interval {
        estimate: f64::NAN,
        lower: at(tail),
        upper: at(1.0 - tail),
    }
}

/// Percentiles of merged interval histograms.
pub struct HistogramSeries {
    quantiles: Vec<f64>,
    /// Highest equivalent value of each bucket seen in any interval, ascending.
    values: Vec<u64>,
    /// Per interval: `(index into values, count)` of its non-empty buckets.
    intervals: Vec<Vec<(u32, u64)>>,
}

impl HistogramSeries {
    /// Builds the series from the histograms of the old run's intervals followed by the new
    /// run's. An interval without this series is an empty histogram.
    pub fn new(histograms: &[Option<&Histogram<u64>>], quantiles: &[f64]) -> HistogramSeries {
        let mut values: Vec<u64> = histograms
            .iter()
            .flatten()
            .flat_map(|h| h.iter_recorded().map(|v| v.value_iterated_to()))
            .collect();
        values.sort_unstable();
        values.dedup();
        let intervals = histograms
            .iter()
            .map(|histogram| match histogram {
                None => Vec::new(),
                Some(h) => h
                    .iter_recorded()
                    .map(|v| {
                        let index = values
                            .binary_search(&v.value_iterated_to())
                            .expect("every recorded value was collected above");
                        (index as u32, v.count_at_value())
                    })
                    .collect(),
            })
            .collect();
        HistogramSeries {
            quantiles: quantiles.to_vec(),
            values,
            intervals,
        }
    }

    /// Number of values recorded in the intervals at `indices`.
    pub fn count(&self, indices: impl IntoIterator<Item = usize>) -> u64 {
        indices
            .into_iter()
            .map(|i| self.intervals[i].iter().map(|(_, c)| c).sum::<u64>())
            .sum()
    }
}

impl Statistic for HistogramSeries {
    fn width(&self) -> usize {
        self.quantiles.len()
    }

    fn compute(&self, indices: &[u32], scratch: &mut Vec<u64>, out: &mut [f64]) {
        scratch.clear();
        scratch.resize(self.values.len(), 0);
        let mut total = 0u64;
        for &interval in indices {
            for &(bucket, count) in &self.intervals[interval as usize] {
                scratch[bucket as usize] += count;
                total += count;
            }
        }
        if total == 0 {
            out.fill(0.0);
            return;
        }
        // Quantiles are ascending, so one cumulative pass finds all of them.
        let mut cumulative = 0u64;
        let mut bucket = 0usize;
        for (slot, &quantile) in out.iter_mut().zip(&self.quantiles) {
            let rank = ((quantile.min(1.0) * total as f64).ceil() as u64).max(1);
            while cumulative + scratch[bucket] < rank {
                cumulative += scratch[bucket];
                bucket += 1;
            }
            *slot = self.values[bucket] as f64;
        }
    }
}

/// A ratio of two per-interval sums, such as requests per second (sent / seconds) or the error
/// rate (errors / completed).
pub struct RatioSeries {
    /// Per interval: (numerator, denominator).
    pub parts: Vec<(f64, f64)>,
}

impl Statistic for RatioSeries {
    fn width(&self) -> usize {
        1
    }

    fn compute(&self, indices: &[u32], _: &mut Vec<u64>, out: &mut [f64]) {
        let (mut numerator, mut denominator) = (0.0, 0.0);
        for &i in indices {
            let (n, d) = self.parts[i as usize];
            numerator += n;
            denominator += d;
        }
        out[0] = if denominator > 0.0 {
            numerator / denominator
        } else {
            0.0
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn histogram(values: impl IntoIterator<Item = u64>) -> Histogram<u64> {
        let mut h = crate::stats::new_histogram();
        for v in values {
            h.record(v).unwrap();
        }
        h
    }

    /// Intervals of `per_interval` values around `center` microseconds, seeded.
    fn intervals(seed: u64, count: usize, per_interval: usize, center: f64) -> Vec<Histogram<u64>> {
        let mut rng = StdRng::seed_from_u64(seed);
        (0..count)
            .map(|_| {
                histogram(
                    (0..per_interval).map(|_| (center * rng.gen_range(0.8..1.3)).round() as u64),
                )
            })
            .collect()
    }

    #[test]
    fn percentiles_match_hdrhistogram() {
        let runs = intervals(3, 12, 500, 2000.0);
        let mut merged = crate::stats::new_histogram();
        for h in &runs {
            merged.add(h).unwrap();
        }
        let quantiles = [0.5, 0.9, 0.99, 0.999];
        let refs: Vec<_> = runs.iter().map(Some).collect();
        let series = HistogramSeries::new(&refs, &quantiles);
        let all: Vec<u32> = (0..runs.len() as u32).collect();
        let mut out = [0.0; 4];
        series.compute(&all, &mut Vec::new(), &mut out);
        for (q, value) in quantiles.iter().zip(out) {
            assert_eq!(value, merged.value_at_quantile(*q) as f64, "quantile {q}");
        }
        assert_eq!(series.count(0..runs.len()), merged.len());
    }

    #[test]
    fn same_seed_same_intervals() {
        let mut both = intervals(1, 15, 300, 2000.0);
        both.extend(intervals(2, 15, 300, 2100.0));
        let refs: Vec<_> = both.iter().map(Some).collect();
        let series = HistogramSeries::new(&refs, &[0.5, 0.99]);
        let settings = Resampling {
            resamples: 500,
            ..Resampling::default()
        };
        let first = resample(&series, 15, 15, ChangeScale::Relative, &settings);
        let second = resample(&series, 15, 15, ChangeScale::Relative, &settings);
        assert_eq!(first, second);

        let reseeded = Resampling {
            seed: settings.seed + 1,
            ..settings
        };
        let third = resample(&series, 15, 15, ChangeScale::Relative, &reseeded);
        assert_ne!(first[0].change.lower, third[0].change.lower);
        // Point estimates do not depend on the seed.
        assert_eq!(first[0].change.estimate, third[0].change.estimate);
    }

    #[test]
    fn detects_shift_and_not_equality() {
        let mut shifted = intervals(5, 20, 400, 2000.0);
        shifted.extend(intervals(6, 20, 400, 2400.0));
        let refs: Vec<_> = shifted.iter().map(Some).collect();
        let series = HistogramSeries::new(&refs, &[0.5]);
        let settings = Resampling {
            resamples: 400,
            ..Resampling::default()
        };
        let found = resample(&series, 20, 20, ChangeScale::Relative, &settings)[0];
        assert!((found.change.estimate - 0.2).abs() < 0.02, "{found:?}");
        assert!(found.change.lower > 0.15, "{found:?}");
        assert!(found.change.upper < 0.25, "{found:?}");
        assert!(found.p_value < 0.01, "{found:?}");

        let mut same = intervals(7, 20, 400, 2000.0);
        same.extend(intervals(8, 20, 400, 2000.0));
        let refs: Vec<_> = same.iter().map(Some).collect();
        let series = HistogramSeries::new(&refs, &[0.5]);
        let found = resample(&series, 20, 20, ChangeScale::Relative, &settings)[0];
        assert!(
            found.change.lower < 0.0 && found.change.upper > 0.0,
            "{found:?}"
        );
        assert!(found.p_value > 0.05, "{found:?}");
    }

    #[test]
    fn ratio_of_sums() {
        let series = RatioSeries {
            parts: vec![(1.0, 100.0), (3.0, 100.0), (0.0, 0.0)],
        };
        let mut out = [0.0];
        series.compute(&[0, 1, 2], &mut Vec::new(), &mut out);
        assert_eq!(out[0], 0.02);
        series.compute(&[2], &mut Vec::new(), &mut out);
        assert_eq!(out[0], 0.0);
    }

    #[test]
    fn absolute_change_from_zero() {
        assert_eq!(ChangeScale::Absolute.change(0.0, 0.01), 0.01);
        assert_eq!(ChangeScale::Relative.change(0.0, 0.0), 0.0);
        assert_eq!(ChangeScale::Relative.change(2.0, 2.5), 0.25);
    }
}
