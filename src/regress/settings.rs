//! Comparison settings: noise thresholds per metric, which metrics gate, and the resampling
//! parameters, from command-line options with measured defaults.
//!
//! Metric keys: `latency.p50`, `latency.p90`, `latency.p99`, `latency.p999`, the same under
//! `service_time.`, each route's under `route.<label>.latency.` and
//! `route.<label>.service_time.`, then `throughput` and `error_rate`. Patterns in options may
//! use `*` for any run of characters (`*.p99`, `route.*.latency.p50`).

use clap::Args;

use super::bootstrap::Resampling;

/// Noise thresholds applied before any `--noise` option, in order (the last match wins).
///
/// Latency and throughput thresholds are relative changes; the error rate's is a difference of
/// fractions. The values come from repeated runs of one unchanged target; see
/// docs/regression.md for the measurements.
pub const DEFAULT_NOISE: &[(&str, f64)] = &[
    ("*", 0.05),
    ("*.p90", 0.30),
    ("*.p99", 0.50),
    ("*.p999", 1.00),
    ("throughput", 0.02),
    ("error_rate", 0.001),
];

/// Metrics whose regression fails the comparison unless `--gate-metrics` replaces them.
pub const DEFAULT_GATED: &[&str] = &["latency.p50", "service_time.p50", "error_rate"];

/// Options of `run --baseline`, `compare` and `bench` that shape the comparison.
#[derive(Debug, Clone, Args)]
pub struct CompareOptions {
    /// Noise threshold of metrics matching a pattern, e.g. `latency.p99=15%` or `*.p50=3%`
    /// (repeatable; a change within +-threshold is no change). For error_rate the threshold is
    /// in percentage points.
    #[arg(long = "noise", value_name = "PATTERN=PERCENT")]
    pub noise: Vec<String>,

    /// Metrics (patterns, comma-separated) whose regression makes the exit status 3; replaces
    /// the default latency.p50,service_time.p50,error_rate.
    #[arg(long, value_delimiter = ',', value_name = "PATTERNS")]
    pub gate_metrics: Option<Vec<String>>,

    /// Bootstrap draws and permutation rounds per metric.
    #[arg(long, default_value_t = 2000)]
    pub resamples: usize,

    /// Confidence level of the intervals, between 0.5 and 1.
    #[arg(long, default_value_t = 0.95)]
    pub confidence: f64,

    /// p-value below which a change is significant.
    #[arg(long, default_value_t = 0.05)]
    pub significance: f64,

    /// Seed of the resampling; the same seed gives the same intervals.
    #[arg(long = "compare-seed", default_value_t = Resampling::default().seed)]
    pub seed: u64,

    /// A relative change whose confidence interval is wider than this many noise thresholds is
    /// inconclusive (the runs vary too much to resolve a change of the threshold's size).
    #[arg(long, default_value_t = 8.0)]
    pub max_width: f64,

    /// Fewest measured intervals per run for a verdict; shorter runs are inconclusive.
    #[arg(long, default_value_t = 5)]
    pub min_intervals: usize,
}

impl Default for CompareOptions {
    fn default() -> Self {
        CompareOptions {
            noise: Vec::new(),
            gate_metrics: None,
            resamples: 2000,
            confidence: 0.95,
            significance: 0.05,
            seed: Resampling::default().seed,
            min_intervals: 5,
            max_width: 8.0,
        }
    }
}

/// Baseline options of `inferload run` and `inferload bench`.
#[derive(Debug, Clone, Default, Args)]
pub struct BaselineArgs {
    /// Compare this run with the saved baseline NAME of its scenario; a regressed gated
    /// metric makes the exit status 3.
    #[arg(long, value_name = "NAME")]
    pub baseline: Option<String>,

    /// Save this run as the baseline NAME of its scenario, replacing an earlier one.
    #[arg(long, value_name = "NAME")]
    pub save_baseline: Option<String>,

    /// Parent folder of saved baselines.
    #[arg(long, value_name = "DIR", default_value = super::DEFAULT_BASELINES_DIR)]
    pub baselines_dir: std::path::PathBuf,

    #[command(flatten)]
    pub compare: CompareOptions,
}

/// Validated comparison settings.
#[derive(Debug, Clone)]
pub struct CompareSettings {
    pub resampling: Resampling,
    pub significance: f64,
    pub min_intervals: usize,
    /// A percentile is estimated only when each run has at least this many samples beyond it.
    pub min_tail_samples: u64,
    /// A relative change whose interval is wider than this many noise thresholds is
    /// inconclusive: the runs are too unsteady to resolve a change of the threshold's size.
    pub max_width: f64,
    /// (pattern, threshold), the last match wins.
    noise: Vec<(String, f64)>,
    gated: Vec<String>,
}

impl Default for CompareSettings {
    fn default() -> Self {
        CompareSettings::from_options(&CompareOptions::default()).expect("defaults are valid")
    }
}

impl CompareSettings {
    /// Checks the options; an error names the option, the value and the fix.
    pub fn from_options(options: &CompareOptions) -> Result<CompareSettings, String> {
        let mut noise: Vec<(String, f64)> = DEFAULT_NOISE
            .iter()
            .map(|(pattern, threshold)| (pattern.to_string(), *threshold))
            .collect();
        for rule in &options.noise {
            let Some((pattern, value)) = rule.split_once('=') else {
                return Err(format!(
                    "--noise {rule:?} has no `=`; write PATTERN=PERCENT, e.g. latency.p99=10%"
                ));
            };
            let number = value.trim().trim_end_matches('%').trim();
            let percent: f64 = number.parse().map_err(|_| {
                format!("--noise {rule:?}: {value:?} is not a number; write e.g. 10%")
            })?;
            if !(0.0..1000.0).contains(&percent) {
                return Err(format!(
                    "--noise {rule:?}: {value:?} is out of range; use 0% to 1000%"
                ));
            }
            noise.push((pattern.trim().to_string(), percent / 100.0));
        }
        if options.resamples < 100 {
            return Err(format!(
                "--resamples {} is too few for a 95% interval; use 1000 or more",
                options.resamples
            ));
        }
        if !(0.5..1.0).contains(&options.confidence) {
            return Err(format!(
                "--confidence {} is not between 0.5 and 1; use e.g. 0.95",
                options.confidence
            ));
        }
        if !(0.0..0.5).contains(&options.significance) || options.significance == 0.0 {
            return Err(format!(
                "--significance {} is not between 0 and 0.5; use e.g. 0.05",
                options.significance
            ));
        }
        if options.min_intervals < 2 {
            return Err(format!(
                "--min-intervals {} cannot be resampled; use 10 or more",
                options.min_intervals
            ));
        }
        if options.max_width.is_nan() || options.max_width < 1.0 {
            return Err(format!(
                "--max-width {} is below 1 or not a number; use e.g. 8",
                options.max_width
            ));
        }
        let gated = match &options.gate_metrics {
            Some(patterns) => patterns.iter().map(|p| p.trim().to_string()).collect(),
            None => DEFAULT_GATED.iter().map(|p| p.to_string()).collect(),
        };
        Ok(CompareSettings {
            resampling: Resampling {
                resamples: options.resamples,
                confidence: options.confidence,
                seed: options.seed,
            },
            significance: options.significance,
            min_intervals: options.min_intervals,
            min_tail_samples: 10,
            max_width: options.max_width,
            noise,
            gated,
        })
    }

    /// Noise threshold of a metric key.
    pub fn noise_for(&self, key: &str) -> f64 {
        self.noise
            .iter()
            .rev()
            .find(|(pattern, _)| matches(pattern, key))
            .map_or(0.05, |(_, threshold)| *threshold)
    }

    pub fn is_gated(&self, key: &str) -> bool {
        self.gated.iter().any(|pattern| matches(pattern, key))
    }
}

/// Matches `key` against `pattern`, where `*` matches any run of characters.
pub fn matches(pattern: &str, key: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or("");
    let Some(mut rest) = key.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns() {
        assert!(matches("latency.p99", "latency.p99"));
        assert!(!matches("latency.p99", "latency.p999"));
        assert!(matches("*.p99", "route.a_1.latency.p99"));
        assert!(!matches("*.p99", "latency.p999"));
        assert!(matches("route.*.latency.p50", "route.a.b.latency.p50"));
        assert!(!matches("route.*.latency.p50", "latency.p50"));
        assert!(matches("*", "error_rate"));
        assert!(matches("a*a", "aa"));
        assert!(!matches("a*a", "a"));
    }

    #[test]
    fn noise_last_match_wins() {
        let options = CompareOptions {
            noise: vec!["latency.*=3%".into()],
            ..CompareOptions::default()
        };
        let settings = CompareSettings::from_options(&options).unwrap();
        assert_eq!(settings.noise_for("latency.p999"), 0.03);
        assert_eq!(settings.noise_for("service_time.p999"), 1.0);
        assert_eq!(settings.noise_for("service_time.p50"), 0.05);
        assert_eq!(settings.noise_for("error_rate"), 0.001);
    }

    #[test]
    fn bad_options_rejected() {
        for noise in ["latency.p99", "latency.p99=ten", "latency.p99=-1%"] {
            let options = CompareOptions {
                noise: vec![noise.into()],
                ..CompareOptions::default()
            };
            let error = CompareSettings::from_options(&options).unwrap_err();
            assert!(error.contains("--noise"), "{error}");
        }
        let options = CompareOptions {
            confidence: 1.5,
            ..CompareOptions::default()
        };
        assert!(CompareSettings::from_options(&options).is_err());
    }

    #[test]
    fn default_gates() {
        let settings = CompareSettings::default();
        assert!(settings.is_gated("latency.p50"));
        assert!(settings.is_gated("error_rate"));
        assert!(!settings.is_gated("latency.p999"));
        assert!(!settings.is_gated("route.a.latency.p50"));
    }
}
