//! SLO gates: conditions such as `p99<50ms`, `error_rate<0.1%` or `achieved>=0.99` that decide a
//! run's exit status.
//!
//! A gate is parsed once, before the run ([`Gate::parse`]), and evaluated against the serialized
//! `summary.json` ([`Gate::evaluate`]), so any number a later version adds to the summary (hops,
//! routes, the split test) can be gated on without changing this module. A gate on a key that is
//! absent in this run fails with a message naming the key. A gate that can never apply to the
//! plan, such as the achieved rate of a closed-loop run, is rejected before the run
//! ([`Gate::check_plan`]).
//!
//! Syntax: `METRIC OP THRESHOLD`, spaces optional. `OP` is `<`, `<=`, `>`, `>=` or `==`. Time
//! thresholds need a unit (`us`, `ms`, `s`, `m`); ratios take a fraction or a percentage (`0.001`
//! or `0.1%`). See [`metric::Metric::parse`] for the metrics.

pub mod metric;

use std::fmt;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use metric::{Metric, Unit};

/// Comparison of a gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
}

impl Op {
    pub fn symbol(self) -> &'static str {
        match self {
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Eq => "==",
        }
    }

    pub fn holds(self, value: f64, threshold: f64) -> bool {
        match self {
            Op::Lt => value < threshold,
            Op::Le => value <= threshold,
            Op::Gt => value > threshold,
            Op::Ge => value >= threshold,
            Op::Eq => value == threshold,
        }
    }
}

/// A parsed gate.
#[derive(Debug, Clone, PartialEq)]
pub struct Gate {
    /// The gate as written, without spaces, e.g. `p99<50ms`.
    pub name: String,
    pub metric: Metric,
    pub op: Op,
    /// In the metric's unit: milliseconds for times, a fraction for ratios.
    pub threshold: f64,
}

/// A malformed gate: the gate's text, what is wrong, and the fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid gate `{gate}`: {message}")]
pub struct GateError {
    pub gate: String,
    pub message: String,
}

/// The verdict of one gate, as stored in `summary.json` under `gates[]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GateResult {
    /// The gate as written, e.g. `p99<50ms`.
    pub name: String,
    /// The summary key (or formula of keys) the value comes from.
    pub metric: String,
    pub op: String,
    /// Threshold in `unit`.
    pub threshold: f64,
    /// `ms`, `ratio`, `count` or `req/s`.
    pub unit: String,
    /// The run's value in `unit`; null when the run has no such value.
    pub value: Option<f64>,
    pub pass: bool,
    /// Why the gate failed without a value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl Gate {
    /// Parses `METRIC OP THRESHOLD`, e.g. `p95<50ms` or `route:a_1.p99 <= 30ms`.
    pub fn parse(text: &str) -> Result<Gate, GateError> {
        let text = text.trim();
        let error = |message: String| GateError {
            gate: text.to_string(),
            message,
        };
        let Some(at) = text.find(['<', '>', '=', '!']) else {
            return Err(error(
                "it has no comparison; write METRIC OP THRESHOLD with OP one of <, <=, >, >=, ==, \
                 e.g. p99<50ms"
                    .into(),
            ));
        };
        let rest = &text[at..];
        let (op, length) = if rest.starts_with("<=") {
            (Op::Le, 2)
        } else if rest.starts_with(">=") {
            (Op::Ge, 2)
        } else if rest.starts_with("==") {
            (Op::Eq, 2)
        } else if rest.starts_with('<') {
            (Op::Lt, 1)
        } else if rest.starts_with('>') {
            (Op::Gt, 1)
        } else if rest.starts_with('=') {
            (Op::Eq, 1)
        } else {
            return Err(error(
                "`!=` is not supported; use <, <=, >, >= or ==".into(),
            ));
        };
        let metric = Metric::parse(&text[..at]).map_err(error)?;
        let threshold_text = text[at + length..].trim();
        if threshold_text.starts_with(['<', '>', '=']) {
            return Err(error(format!(
                "`{}` is not a comparison; use <, <=, >, >= or ==",
                &rest[..length + 1]
            )));
        }
        let threshold = parse_threshold(threshold_text, metric.unit).map_err(error)?;
        // Shares of requests lie in [0, 1]; only `achieved` (achieved / target rate) may
        // exceed 1.
        if metric.unit == Unit::Ratio && metric.text != "achieved" && threshold > 1.0 {
            return Err(error(format!(
                "threshold `{threshold_text}` is above 100%, and {} is a share of requests \
                 between 0 and 1; write e.g. 0.01 or 1%",
                metric.text
            )));
        }
        Ok(Gate {
            name: format!("{}{}{}", metric.text, op.symbol(), threshold_text),
            metric,
            op,
            threshold,
        })
    }

    /// Rejects a gate that can never have a value in a run of this kind.
    pub fn check_plan(&self, open_loop: bool) -> Result<(), GateError> {
        if self.metric.open_loop_only && !open_loop {
            return Err(GateError {
                gate: self.name.clone(),
                message: format!(
                    "`{}` needs a target rate, and this run is closed loop; set load.rate or \
                     remove the gate",
                    self.metric.text
                ),
            });
        }
        Ok(())
    }

    /// Evaluates the gate against a serialized summary.
    pub fn evaluate(&self, summary: &Value) -> GateResult {
        let (value, message) = match self.metric.value(summary) {
            Ok(value) => (Some(value), None),
            Err(message) => (None, Some(message)),
        };
        GateResult {
            name: self.name.clone(),
            metric: self.metric.describe.clone(),
            op: self.op.symbol().to_string(),
            threshold: self.threshold,
            unit: self.metric.unit.name().to_string(),
            value,
            pass: value.is_some_and(|v| self.op.holds(v, self.threshold)),
            message,
        }
    }
}

impl fmt::Display for Gate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

impl std::str::FromStr for Gate {
    type Err = GateError;

    fn from_str(text: &str) -> Result<Gate, GateError> {
        Gate::parse(text)
    }
}

/// Evaluates every gate against `summary`, in order.
pub fn evaluate_all(gates: &[Gate], summary: &Value) -> Vec<GateResult> {
    gates.iter().map(|gate| gate.evaluate(summary)).collect()
}

/// Evaluates `gates` against `summary` and stores the verdicts in `summary.gates` and
/// `summary.passed`.
pub fn apply(
    gates: &[Gate],
    summary: &mut crate::report::Summary,
) -> Result<(), serde_json::Error> {
    let value = serde_json::to_value(&*summary)?;
    summary.gates = evaluate_all(gates, &value);
    summary.passed = summary.gates.iter().all(|result| result.pass);
    Ok(())
}

/// Reads gates from a scenario's `[gates]` value: a table of `METRIC = "OP THRESHOLD"` (or a list
/// of such strings for several conditions on one metric), or a list of whole gates.
pub fn from_toml(value: &toml::Value) -> Result<Vec<Gate>, String> {
    let mut gates = Vec::new();
    match value {
        toml::Value::Table(table) => {
            for (metric, condition) in table {
                let conditions: Vec<&toml::Value> = match condition {
                    toml::Value::Array(items) => items.iter().collect(),
                    single => vec![single],
                };
                for condition in conditions {
                    let Some(text) = condition.as_str() else {
                        return Err(format!(
                            "`gates.{metric}` = {condition} is not a string; write it as \
                             {metric} = \"<50ms\""
                        ));
                    };
                    let gate = Gate::parse(&format!("{metric}{text}"))
                        .map_err(|e| format!("`gates.{metric}`: {e}"))?;
                    gates.push(gate);
                }
            }
        }
        toml::Value::Array(items) => {
            for item in items {
                let Some(text) = item.as_str() else {
                    return Err(format!(
                        "`gates` item {item} is not a string; write gates = [\"p99<50ms\"]"
                    ));
                };
                gates.push(Gate::parse(text).map_err(|e| format!("`gates`: {e}"))?);
            }
        }
        other => {
            return Err(format!(
                "`gates` = {other} is neither a table nor a list; write [gates] with lines such \
                 as p99 = \"<50ms\""
            ))
        }
    }
    Ok(gates)
}

/// Renders the gate table for the console, one line per gate.
pub fn render_table(results: &[GateResult]) -> String {
    let mut out = String::new();
    if results.is_empty() {
        return out;
    }
    let width = results
        .iter()
        .map(|r| r.name.chars().count())
        .max()
        .unwrap_or(0)
        .max(4);
    let _ = writeln!(
        out,
        "\n{:<width$}  {:>14}  {:>14}  verdict",
        "gate", "value", "threshold"
    );
    for result in results {
        let verdict = if result.pass { "pass" } else { "FAIL" };
        let value = match result.value {
            Some(v) => format_value(v, &result.unit),
            None => "missing".to_string(),
        };
        let threshold = format!(
            "{} {}",
            result.op,
            format_value(result.threshold, &result.unit)
        );
        let _ = writeln!(
            out,
            "{:<width$}  {:>14}  {:>14}  {verdict}",
            result.name, value, threshold
        );
        if let Some(message) = &result.message {
            let _ = writeln!(out, "{:<width$}  ({message})", "");
        }
    }
    out
}

/// Formats a value in its unit for reports: `12.345 ms`, `0.12%`, `980`.
pub fn format_value(value: f64, unit: &str) -> String {
    match unit {
        "ms" => format!("{value:.3} ms"),
        "ratio" => format!("{}%", trim_float(value * 100.0, 4)),
        "req/s" => format!("{value:.2}/s"),
        _ => trim_float(value, 3),
    }
}

fn trim_float(value: f64, decimals: usize) -> String {
    let text = format!("{value:.decimals$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    }
}

/// Parses a threshold written in `unit`'s form.
fn parse_threshold(text: &str, unit: Unit) -> Result<f64, String> {
    if text.is_empty() {
        return Err("the threshold is missing; write e.g. p99<50ms".into());
    }
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-'))
        .unwrap_or(text.len());
    let (number_text, suffix) = text.split_at(split);
    let suffix = suffix.trim();
    let number: f64 = number_text.parse().map_err(|_| {
        format!("threshold `{text}` does not start with a number; write e.g. 50ms or 0.1%")
    })?;
    if !number.is_finite() {
        return Err(format!("threshold `{text}` is not a finite number"));
    }
    if number < 0.0 {
        return Err(format!(
            "threshold `{text}` is negative; write a threshold of 0 or more"
        ));
    }
    match unit {
        Unit::Milliseconds => {
            let per_unit = match suffix {
                "ns" => 1e-6,
                "us" | "µs" => 1e-3,
                "ms" => 1.0,
                "s" => 1e3,
                "m" | "min" => 60e3,
                "" => {
                    return Err(format!(
                    "threshold `{text}` has no unit; write it with one, e.g. {text}ms or {text}s"
                ))
                }
                other => {
                    return Err(format!(
                        "threshold `{text}` has unknown unit `{other}`; use us, ms, s or m"
                    ))
                }
            };
            Ok(number * per_unit)
        }
        Unit::Ratio => {
            let ratio = match suffix {
                "%" => number / 100.0,
                "" => number,
                other => {
                    return Err(format!(
                        "threshold `{text}` has unknown unit `{other}`; write a fraction (0.001) \
                         or a percentage (0.1%)"
                    ))
                }
            };
            Ok(ratio)
        }
        Unit::Count => match suffix {
            "" => Ok(number),
            other => Err(format!(
                "threshold `{text}` has unit `{other}`, and this metric is a plain number; write \
                 e.g. {number_text}"
            )),
        },
        Unit::PerSecond => match suffix {
            "" | "/s" => Ok(number),
            "/min" => Ok(number / 60.0),
            other => Err(format!(
                "threshold `{text}` has unknown unit `{other}`; write a rate such as 250/s"
            )),
        },
    }
}

#[cfg(test)]
mod tests;
