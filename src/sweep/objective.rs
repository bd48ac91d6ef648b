//! The objective a sweep step must meet: gates such as `p99<50ms` and `error_rate<=0.001`,
//! checked against the `summary.json` value of the step's measurement.

use std::fmt;
use std::str::FromStr;

use crate::gate::{Gate, GateResult, Op};

/// A fraction written `0.1%` or `0.001`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fraction(pub f64);

impl FromStr for Fraction {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let trimmed = text.trim();
        let (number, scale) = match trimmed.strip_suffix('%') {
            Some(number) => (number.trim(), 0.01),
            None => (trimmed, 1.0),
        };
        let value: f64 = number
            .parse()
            .map_err(|_| format!("invalid fraction `{text}`: write e.g. 0.1% or 0.001"))?;
        let value = value * scale;
        if !(0.0..=1.0).contains(&value) {
            return Err(format!(
                "invalid fraction `{text}`: must be between 0% and 100%"
            ));
        }
        Ok(Fraction(value))
    }
}

/// Everything a step must meet to pass, apart from the achieved rate: gates, evaluated the
/// way a run's gates are.
#[derive(Debug, Clone, Default)]
pub struct Objective {
    pub gates: Vec<Gate>,
}

impl Objective {
    /// Builds the objective from `--slo` gates and `--max-error-rate`.
    pub fn new(slos: Vec<Gate>, max_error_rate: Option<Fraction>) -> Objective {
        let mut gates = slos;
        if let Some(Fraction(limit)) = max_error_rate {
            let text = format!("error_rate<={}", limit);
            gates.push(Gate::parse(&text).expect("error_rate with a fraction is a valid gate"));
        }
        Objective { gates }
    }

    /// Checks a summary; a missing value fails its gate.
    pub fn evaluate(&self, summary: &serde_json::Value) -> Vec<GateResult> {
        crate::gate::evaluate_all(&self.gates, summary)
    }

    /// Returns true when every gate passes on `summary`.
    pub fn is_met(&self, summary: &serde_json::Value) -> bool {
        self.evaluate(summary).iter().all(|c| c.pass)
    }

    /// The limit of a `latency_ms.p99` upper bound, in milliseconds, for the chart.
    pub fn p99_limit_ms(&self) -> Option<f64> {
        self.gates
            .iter()
            .find(|g| g.metric.describe == "latency_ms.p99" && matches!(g.op, Op::Lt | Op::Le))
            .map(|g| g.threshold)
    }
}

impl fmt::Display for Objective {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.gates.is_empty() {
            return f.write_str("achieved rate only");
        }
        let names: Vec<&str> = self.gates.iter().map(|g| g.name.as_str()).collect();
        f.write_str(&names.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fractions() {
        assert_eq!("0.1%".parse::<Fraction>().unwrap().0, 0.001);
        assert_eq!("0.02".parse::<Fraction>().unwrap().0, 0.02);
        assert!("150%".parse::<Fraction>().is_err());
        assert!("lots".parse::<Fraction>().is_err());
    }

    #[test]
    fn evaluates_summary_values() {
        let objective = Objective::new(
            vec![
                Gate::parse("p99<50ms").unwrap(),
                Gate::parse("p50<=10ms").unwrap(),
            ],
            Some(Fraction(0.01)),
        );
        assert_eq!(objective.p99_limit_ms(), Some(50.0));
        assert_eq!(
            objective.to_string(),
            "p99<50ms, p50<=10ms, error_rate<=0.01"
        );
        let summary = json!({
            "latency_ms": {"count": 100, "p50": 10.0, "p99": 49.9},
            "requests": {"sent": 100, "ok": 99, "errors": 1, "success_rate": 0.99}
        });
        let results = objective.evaluate(&summary);
        assert_eq!(results.len(), 3);
        assert!(results.iter().all(|r| r.pass), "{results:?}");

        let slow = json!({
            "latency_ms": {"count": 100, "p50": 10.0, "p99": 50.0},
            "requests": {"sent": 100, "ok": 98, "errors": 2, "success_rate": 0.98}
        });
        let results = objective.evaluate(&slow);
        assert!(!results[0].pass);
        assert!(results[1].pass);
        assert!(!results[2].pass, "{results:?}");
    }
}
