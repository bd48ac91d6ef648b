//! Simulated service-time distributions of the embedded target.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use rand::Rng;
use rand_distr::{Distribution, LogNormal};
use serde::Deserialize;

use crate::scenario::units::HumanDuration;

/// How long the embedded target takes per request, before any stall.
#[derive(Debug, Clone, PartialEq)]
pub enum LatencyModel {
    /// `fixed:2ms`
    Fixed(Duration),
    /// `uniform:1ms..3ms`
    Uniform(Duration, Duration),
    /// `lognormal:median=5ms,p99=20ms`
    LogNormal { median: Duration, p99: Duration },
}

impl Default for LatencyModel {
    fn default() -> Self {
        LatencyModel::Fixed(Duration::ZERO)
    }
}

/// The standard normal quantile at 0.99, used to fit a log-normal's sigma to its p99.
const Z_99: f64 = 2.326_347_874;

impl LatencyModel {
    pub fn sample<R: Rng>(&self, rng: &mut R) -> Duration {
        match *self {
            LatencyModel::Fixed(d) => d,
            LatencyModel::Uniform(low, high) => {
                if high <= low {
                    low
                } else {
                    Duration::from_secs_f64(rng.gen_range(low.as_secs_f64()..high.as_secs_f64()))
                }
            }
            LatencyModel::LogNormal { median, p99 } => {
                let mu = median.as_secs_f64().ln();
                let sigma = (p99.as_secs_f64() / median.as_secs_f64()).ln() / Z_99;
                let dist = LogNormal::new(mu, sigma).expect("sigma was checked to be positive");
                Duration::from_secs_f64(dist.sample(rng).min(3600.0))
            }
        }
    }

    /// Returns a copy with every duration multiplied by `factor`.
    pub fn scaled(&self, factor: f64) -> LatencyModel {
        let scale = |d: Duration| d.mul_f64(factor);
        match *self {
            LatencyModel::Fixed(d) => LatencyModel::Fixed(scale(d)),
            LatencyModel::Uniform(a, b) => LatencyModel::Uniform(scale(a), scale(b)),
            LatencyModel::LogNormal { median, p99 } => LatencyModel::LogNormal {
                median: scale(median),
                p99: scale(p99),
            },
        }
    }
}

fn duration(text: &str, whole: &str) -> Result<Duration, String> {
    text.parse::<HumanDuration>()
        .map(|d| d.0)
        .map_err(|e| format!("invalid latency `{whole}`: {e}"))
}

impl FromStr for LatencyModel {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let usage = "write fixed:2ms, uniform:1ms..3ms or lognormal:median=5ms,p99=20ms";
        let (kind, rest) = text
            .split_once(':')
            .ok_or_else(|| format!("invalid latency `{text}`: {usage}"))?;
        match kind.trim() {
            "fixed" => Ok(LatencyModel::Fixed(duration(rest, text)?)),
            "uniform" => {
                let (low, high) = rest
                    .split_once("..")
                    .ok_or_else(|| format!("invalid latency `{text}`: {usage}"))?;
                let (low, high) = (duration(low, text)?, duration(high, text)?);
                if high < low {
                    return Err(format!(
                        "invalid latency `{text}`: the upper bound is below the lower"
                    ));
                }
                Ok(LatencyModel::Uniform(low, high))
            }
            "lognormal" => {
                let mut median = None;
                let mut p99 = None;
                for part in rest.split(',') {
                    match part.split_once('=') {
                        Some(("median", v)) => median = Some(duration(v, text)?),
                        Some(("p99", v)) => p99 = Some(duration(v, text)?),
                        _ => return Err(format!("invalid latency `{text}`: {usage}")),
                    }
                }
                let (Some(median), Some(p99)) = (median, p99) else {
                    return Err(format!("invalid latency `{text}`: {usage}"));
                };
                if median.is_zero() || p99 <= median {
                    return Err(format!("invalid latency `{text}`: needs 0 < median < p99"));
                }
                Ok(LatencyModel::LogNormal { median, p99 })
            }
            _ => Err(format!("invalid latency `{text}`: {usage}")),
        }
    }
}

impl fmt::Display for LatencyModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let show = |d: &Duration| humantime::format_duration(*d).to_string();
        match self {
            LatencyModel::Fixed(d) => write!(f, "fixed:{}", show(d)),
            LatencyModel::Uniform(a, b) => write!(f, "uniform:{}..{}", show(a), show(b)),
            LatencyModel::LogNormal { median, p99 } => {
                write!(f, "lognormal:median={},p99={}", show(median), show(p99))
            }
        }
    }
}

impl<'de> Deserialize<'de> for LatencyModel {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    #[test]
    fn parses_each_form() {
        assert_eq!(
            "fixed:2ms".parse(),
            Ok(LatencyModel::Fixed(Duration::from_millis(2)))
        );
        assert_eq!(
            "uniform:1ms..3ms".parse(),
            Ok(LatencyModel::Uniform(
                Duration::from_millis(1),
                Duration::from_millis(3)
            ))
        );
        assert!(matches!(
            "lognormal:median=5ms,p99=20ms".parse::<LatencyModel>(),
            Ok(LatencyModel::LogNormal { .. })
        ));
        for bad in [
            "fixed",
            "fixed:abc",
            "uniform:3ms..1ms",
            "lognormal:median=5ms",
            "gamma:1ms",
        ] {
            assert!(bad.parse::<LatencyModel>().is_err(), "{bad}");
        }
    }

    #[test]
    fn lognormal_quantiles_match_parameters() {
        let model: LatencyModel = "lognormal:median=5ms,p99=20ms".parse().unwrap();
        let mut rng = StdRng::seed_from_u64(3);
        let mut samples: Vec<f64> = (0..200_000)
            .map(|_| model.sample(&mut rng).as_secs_f64() * 1000.0)
            .collect();
        samples.sort_by(f64::total_cmp);
        let median = samples[samples.len() / 2];
        let p99 = samples[samples.len() * 99 / 100];
        assert!((median - 5.0).abs() < 0.1, "median {median}");
        assert!((p99 - 20.0).abs() < 0.8, "p99 {p99}");
    }
}
