//! A/B split verification: observed route shares against the expected weights, with a 95%
//! Wilson score interval per route and a chi-square goodness-of-fit test over all routes.
//!
//! Expected weights name either route labels (`baseline-predictor_1`) or models
//! (`baseline-predictor`); a model key collects every route label of that model (see
//! [`super::routes::model_of`]). Responses on a route that no key names, unrouted ones
//! included, form their own category with an expected share of 0, so any of them makes the
//! chi-square statistic infinite and the p-value 0.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use statrs::distribution::{ChiSquared, ContinuousCDF};

use super::routes::model_of;

/// The 0.975 quantile of the standard normal distribution, for two-sided 95% intervals.
const Z_95: f64 = 1.959_963_984_540_054;

/// Default significance level below which a split is flagged as imbalanced.
pub const DEFAULT_ALPHA: f64 = 0.01;

/// The expected split of a run.
#[derive(Debug, Clone, PartialEq)]
pub struct ExpectedSplit {
    /// Route labels or model names with their relative weights, all above or equal to 0.
    pub weights: Vec<(String, f64)>,
    /// Significance level of the chi-square test.
    pub alpha: f64,
    /// Source of the weights: `scenario` or the experiment file's path.
    pub source: String,
}

/// The outcome of the split test, as written to `summary.json` under `split_test`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SplitTest {
    pub source: String,
    /// Successful responses in the test.
    pub total: u64,
    /// Pearson's chi-square statistic; infinite when an unexpected route was seen. `None`
    /// (null) when no response was counted.
    pub chi_square: Option<f64>,
    /// Degrees of freedom: expected categories minus one.
    pub dof: u64,
    /// Probability of a deviation at least this large if the split were as expected.
    pub p_value: Option<f64>,
    pub alpha: f64,
    /// True when `p_value < alpha`.
    pub imbalanced: bool,
    pub routes: BTreeMap<String, SplitRoute>,
}

/// One category of the split test.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SplitRoute {
    pub count: u64,
    pub expected_share: f64,
    pub observed_share: f64,
    /// 95% Wilson score interval of the observed share.
    pub ci_low: f64,
    pub ci_high: f64,
}

/// Returns the 95% Wilson score interval of `successes` out of `trials`, or (0, 1) when there
/// are no trials.
pub fn wilson_interval(successes: u64, trials: u64) -> (f64, f64) {
    if trials == 0 {
        return (0.0, 1.0);
    }
    let n = trials as f64;
    let p = successes as f64 / n;
    let z2 = Z_95 * Z_95;
    let denominator = 1.0 + z2 / n;
    let center = (p + z2 / (2.0 * n)) / denominator;
    let half = Z_95 / denominator * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    ((center - half).max(0.0), (center + half).min(1.0))
}

/// Returns the upper-tail probability of the chi-square distribution with `dof` degrees of
/// freedom at `statistic`.
pub fn chi_square_p_value(statistic: f64, dof: u64) -> f64 {
    if statistic.is_infinite() {
        return 0.0;
    }
    if dof == 0 {
        return 1.0;
    }
    let distribution = ChiSquared::new(dof as f64).expect("dof is at least 1");
    distribution.sf(statistic).clamp(0.0, 1.0)
}

impl ExpectedSplit {
    /// Returns the category that a route label counts under: the key naming the label itself,
    /// else the key naming its model, else the label.
    fn category<'a>(&'a self, label: &'a str) -> (&'a str, bool) {
        if let Some((key, _)) = self.weights.iter().find(|(key, _)| key == label) {
            return (key, true);
        }
        let model = model_of(label);
        if let Some((key, _)) = self.weights.iter().find(|(key, _)| *key == model) {
            return (key, true);
        }
        (label, false)
    }

    /// Tests the observed successful responses per route label against the expected split.
    pub fn test<'a>(&self, observed: impl IntoIterator<Item = (&'a str, u64)>) -> SplitTest {
        let weight_total: f64 = self.weights.iter().map(|(_, w)| w).sum();
        let mut counts: BTreeMap<String, (u64, f64)> = self
            .weights
            .iter()
            .map(|(key, weight)| (key.clone(), (0, weight / weight_total)))
            .collect();
        for (label, count) in observed {
            let (category, expected) = self.category(label);
            let entry = counts.entry(category.to_string()).or_insert((0, 0.0));
            if !expected {
                entry.1 = 0.0;
            }
            entry.0 += count;
        }
        let total: u64 = counts.values().map(|(count, _)| count).sum();
        let expected_categories = counts.values().filter(|(_, share)| *share > 0.0).count();
        let dof = expected_categories.saturating_sub(1) as u64;

        let (chi_square, p_value) = if total == 0 {
            (None, None)
        } else {
            let n = total as f64;
            let mut statistic = 0.0;
            for (count, share) in counts.values() {
                let expected = share * n;
                let observed = *count as f64;
                if expected > 0.0 {
                    statistic += (observed - expected).powi(2) / expected;
                } else if observed > 0.0 {
                    statistic = f64::INFINITY;
                }
            }
            (Some(statistic), Some(chi_square_p_value(statistic, dof)))
        };

        let routes = counts
            .into_iter()
            .map(|(key, (count, share))| {
                let (ci_low, ci_high) = wilson_interval(count, total);
                let route = SplitRoute {
                    count,
                    expected_share: share,
                    observed_share: if total > 0 {
                        count as f64 / total as f64
                    } else {
                        0.0
                    },
                    ci_low,
                    ci_high,
                };
                (key, route)
            })
            .collect();
        SplitTest {
            source: self.source.clone(),
            total,
            chi_square,
            dof,
            p_value,
            alpha: self.alpha,
            imbalanced: p_value.is_some_and(|p| p < self.alpha),
            routes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(weights: &[(&str, f64)]) -> ExpectedSplit {
        ExpectedSplit {
            weights: weights.iter().map(|(k, w)| (k.to_string(), *w)).collect(),
            alpha: DEFAULT_ALPHA,
            source: "scenario".into(),
        }
    }

    fn close(actual: f64, expected: f64, what: &str) {
        let tolerance = 1e-9 * expected.abs().max(1e-12);
        assert!(
            (actual - expected).abs() <= tolerance,
            "{what}: got {actual}, expected {expected}"
        );
    }

    /// Oracle values from SciPy 1.17.1, produced by:
    /// ```text
    /// from scipy import stats
    /// r = stats.chisquare(obs, [e * sum(obs) for e in exp])
    /// ci = stats.binomtest(k, sum(obs)).proportion_ci(confidence_level=0.95, method='wilson')
    /// ```
    /// Rows: observed counts, expected shares, statistic, p-value, (low, high) per category.
    #[allow(clippy::type_complexity)]
    const SCIPY: &[(&[u64], &[f64], f64, f64, &[(f64, f64)])] = &[
        (
            &[7040, 2960],
            &[0.7, 0.3],
            0.7619047619047619,
            0.38273308888522595,
            &[
                (0.6949759808508422, 0.7128673478139218),
                (0.2871326521860783, 0.3050240191491578),
            ],
        ),
        (
            &[51, 29, 20],
            &[0.5, 0.3, 0.2],
            0.05333333333333333,
            0.973685749353145,
            &[
                (0.4134801193402717, 0.6057800106955886),
                (0.21014835749122268, 0.38538891175571116),
                (0.1333669333310325, 0.2888291655931589),
            ],
        ),
        (
            &[3, 7],
            &[0.5, 0.5],
            1.6,
            0.20590321073206466,
            &[
                (0.10779126740630102, 0.6032218525388546),
                (0.39677814746114526, 0.892208732593699),
            ],
        ),
        (
            &[7400, 2600],
            &[0.7, 0.3],
            76.19047619047619,
            2.5758101615263793e-18,
            &[
                (0.7313119239238015, 0.7485037568582737),
                (0.25149624314172625, 0.2686880760761985),
            ],
        ),
        (
            &[660, 340],
            &[0.7, 0.3],
            7.619047619047619,
            0.005775498089305212,
            &[
                (0.6300773195897642, 0.6886981176948581),
                (0.31130188230514194, 0.36992268041023574),
            ],
        ),
        (
            &[0, 10],
            &[0.5, 0.5],
            10.0,
            0.001565402258002549,
            &[(0.0, 0.27753279986288926), (0.7224672001371109, 1.0)],
        ),
    ];

    #[test]
    fn matches_scipy() {
        for (row, (observed, shares, statistic, p_value, intervals)) in SCIPY.iter().enumerate() {
            let labels: Vec<String> = (0..observed.len()).map(|i| format!("r{i}_1")).collect();
            let weights: Vec<(&str, f64)> = labels
                .iter()
                .zip(shares.iter())
                .map(|(l, s)| (l.as_str(), *s * 10.0))
                .collect();
            let result = split(&weights).test(
                labels
                    .iter()
                    .zip(observed.iter())
                    .map(|(l, c)| (l.as_str(), *c)),
            );
            close(
                result.chi_square.unwrap(),
                *statistic,
                &format!("row {row} chi2"),
            );
            close(result.p_value.unwrap(), *p_value, &format!("row {row} p"));
            assert_eq!(result.dof, observed.len() as u64 - 1);
            assert_eq!(result.imbalanced, *p_value < DEFAULT_ALPHA, "row {row}");
            for (label, (low, high)) in labels.iter().zip(intervals.iter()) {
                let route = &result.routes[label];
                close(route.ci_low, *low, &format!("row {row} {label} low"));
                close(route.ci_high, *high, &format!("row {row} {label} high"));
            }
        }
    }

    #[test]
    fn model_keys_group_versions() {
        let result = split(&[("baseline", 70.0), ("enhanced", 30.0)]).test([
            ("baseline_1", 400),
            ("baseline_2", 300),
            ("enhanced_3", 300),
        ]);
        assert_eq!(result.routes.len(), 2);
        assert_eq!(result.routes["baseline"].count, 700);
        close(result.chi_square.unwrap(), 0.0, "chi2");
        close(result.p_value.unwrap(), 1.0, "p");
        assert!(!result.imbalanced);
    }

    #[test]
    fn exact_label_beats_model() {
        let result = split(&[("a_1", 50.0), ("a", 50.0)]).test([("a_1", 10), ("a_2", 10)]);
        assert_eq!(result.routes["a_1"].count, 10);
        assert_eq!(result.routes["a"].count, 10);
    }

    #[test]
    fn unexpected_route_is_imbalance() {
        let result =
            split(&[("a", 70.0), ("b", 30.0)]).test([("a_1", 70), ("b_1", 29), ("unrouted", 1)]);
        assert_eq!(result.chi_square, Some(f64::INFINITY));
        assert_eq!(result.p_value, Some(0.0));
        assert!(result.imbalanced);
        assert_eq!(result.routes["unrouted"].expected_share, 0.0);
        assert_eq!(result.dof, 1);
    }

    #[test]
    fn no_responses_no_p_value() {
        let result = split(&[("a", 1.0), ("b", 1.0)]).test([]);
        assert_eq!(result.p_value, None);
        assert!(!result.imbalanced);
        assert_eq!(result.total, 0);
    }

    #[test]
    fn single_route_expected() {
        let result = split(&[("a", 1.0)]).test([("a_1", 5)]);
        assert_eq!(result.dof, 0);
        assert_eq!(result.p_value, Some(1.0));
    }

    #[test]
    fn textbook_p_values() {
        // Upper 5% points of the chi-square distribution (standard tables).
        close(chi_square_p_value(3.841_458_820_694_124, 1), 0.05, "dof 1");
        close(chi_square_p_value(5.991_464_547_107_979, 2), 0.05, "dof 2");
        // With 2 degrees of freedom the survival function is exp(-x/2).
        close(
            chi_square_p_value(10.0, 2),
            (-5.0f64).exp(),
            "dof 2 closed form",
        );
    }
}
