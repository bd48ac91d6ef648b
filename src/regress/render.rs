//! Comparison reports: console lines in the style of criterion, markdown for CI job summaries
//! and JUnit XML in which a regressed gated metric is a failing test case.

use std::fmt::Write;

use super::compare::{Comparison, MetricResult, Unit, Verdict};

/// Formats a value of `unit` for people: milliseconds, req/s or percent.
fn value(unit: Unit, raw: f64) -> String {
    if raw.is_nan() {
        return "-".into();
    }
    match unit {
        Unit::Micros => format!("{:.4} ms", raw / 1000.0),
        Unit::RequestsPerSecond => format!("{raw:.2} req/s"),
        Unit::Fraction => format!("{:.3}%", raw * 100.0),
    }
}

/// Formats a change: a signed percent when relative, percentage points for fractions.
fn change(metric: &MetricResult, raw: f64) -> String {
    if raw.is_nan() {
        return "-".into();
    }
    if raw.is_infinite() {
        return "+inf".into();
    }
    if metric.relative {
        format!("{:+.2}%", raw * 100.0)
    } else {
        format!("{:+.3}pp", raw * 100.0)
    }
}

fn threshold(metric: &MetricResult) -> String {
    if metric.relative {
        format!("{}%", metric.noise * 100.0)
    } else {
        format!("{}pp", metric.noise * 100.0)
    }
}

fn verdict_text(metric: &MetricResult, significance: f64) -> String {
    let mut text = match metric.verdict {
        Verdict::NoChange if metric.p_value < significance => {
            format!("no change (within noise +-{})", threshold(metric))
        }
        Verdict::NoChange => "no change".into(),
        other => other.as_str().to_string(),
    };
    if metric.gated {
        text.push_str(" [gate]");
    }
    text
}

/// Renders the comparison as console text, one line per metric.
pub fn console(comparison: &Comparison) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n{}: {} (old, {} intervals) -> {} (new, {} intervals)",
        comparison.scenario,
        comparison.old_dir,
        comparison.old_intervals,
        comparison.new_dir,
        comparison.new_intervals
    );
    let _ = writeln!(
        out,
        "{:.0}% intervals from {} bootstrap draws (seed {}), permutation p-value, significant below {}",
        comparison.confidence * 100.0,
        comparison.resamples,
        comparison.seed,
        comparison.significance
    );
    for warning in &comparison.warnings {
        let _ = writeln!(out, "warning: {warning}");
    }
    let width = comparison
        .metrics
        .iter()
        .map(|m| m.key.len())
        .max()
        .unwrap_or(10);
    for metric in &comparison.metrics {
        let unit = metric.unit;
        if metric.verdict == Verdict::Inconclusive {
            let _ = writeln!(
                out,
                "{:<width$}  new {}  change {}  inconclusive: {}",
                metric.key,
                value(unit, metric.new.estimate),
                change(metric, metric.change.estimate),
                metric.note.as_deref().unwrap_or("too few samples"),
            );
            continue;
        }
        let _ = writeln!(
            out,
            "{:<width$}  new [{} {} {}]  change [{} {} {}]  p = {:.3}  {}",
            metric.key,
            value(unit, metric.new.lower),
            value(unit, metric.new.estimate),
            value(unit, metric.new.upper),
            change(metric, metric.change.lower),
            change(metric, metric.change.estimate),
            change(metric, metric.change.upper),
            metric.p_value,
            verdict_text(metric, comparison.significance),
        );
    }
    let _ = writeln!(out, "{}", headline(comparison));
    out
}

/// Returns one line: the regressed gated metrics, or that none regressed.
pub fn headline(comparison: &Comparison) -> String {
    let failures: Vec<String> = comparison
        .gate_failures()
        .map(|m| format!("{} ({})", m.key, change(m, m.change.estimate)))
        .collect();
    if failures.is_empty() {
        format!("{}: no gated metric regressed", comparison.scenario)
    } else {
        format!("{}: REGRESSED {}", comparison.scenario, failures.join(", "))
    }
}

/// Renders comparisons as a markdown section for a CI job summary.
pub fn markdown(comparisons: &[Comparison]) -> String {
    let mut out = String::from("## inferload regression comparison\n\n");
    for comparison in comparisons {
        let status = if comparison.passed() {
            "passed"
        } else {
            "failed"
        };
        let _ = writeln!(out, "### {} ({status})\n", comparison.scenario);
        let _ = writeln!(
            out,
            "Old `{}` ({} intervals), new `{}` ({} intervals); {:.0}% intervals from {} \
             bootstrap draws, permutation p-values, significant below {}.\n",
            comparison.old_dir,
            comparison.old_intervals,
            comparison.new_dir,
            comparison.new_intervals,
            comparison.confidence * 100.0,
            comparison.resamples,
            comparison.significance
        );
        for warning in &comparison.warnings {
            let _ = writeln!(out, "> warning: {warning}\n");
        }
        out.push_str("| metric | old | new [interval] | change [interval] | p | verdict |\n");
        out.push_str("|---|---:|---|---|---:|---|\n");
        for metric in &comparison.metrics {
            let verdict = match metric.verdict {
                Verdict::Regressed if metric.gated => {
                    format!("**{}**", verdict_text(metric, comparison.significance))
                }
                Verdict::Inconclusive => format!(
                    "inconclusive: {}",
                    metric.note.as_deref().unwrap_or("too few samples")
                ),
                _ => verdict_text(metric, comparison.significance),
            };
            let _ = writeln!(
                out,
                "| `{}` | {} | {} [{}, {}] | {} [{}, {}] | {} | {} |",
                metric.key,
                value(metric.unit, metric.old),
                value(metric.unit, metric.new.estimate),
                value(metric.unit, metric.new.lower),
                value(metric.unit, metric.new.upper),
                change(metric, metric.change.estimate),
                change(metric, metric.change.lower),
                change(metric, metric.change.upper),
                if metric.p_value.is_nan() {
                    "-".to_string()
                } else {
                    format!("{:.3}", metric.p_value)
                },
                verdict
            );
        }
        let _ = writeln!(out, "\n{}\n", headline(comparison));
    }
    out
}

/// Escapes text for an XML attribute or element.
fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if (c as u32) < 0x20 && !matches!(c, '\n' | '\t' | '\r') => {}
            c => out.push(c),
        }
    }
    out
}

/// Renders comparisons as JUnit XML: one test suite per scenario and one test case per metric,
/// failing when a gated metric regressed; every case carries its figures and verdict.
pub fn junit(comparisons: &[Comparison]) -> String {
    let tests: usize = comparisons.iter().map(|c| c.metrics.len()).sum();
    let failures: usize = comparisons.iter().map(|c| c.gate_failures().count()).sum();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"inferload compare\" tests=\"{tests}\" failures=\"{failures}\">"
    );
    for comparison in comparisons {
        let _ = writeln!(
            out,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\">",
            xml_escape(&comparison.scenario),
            comparison.metrics.len(),
            comparison.gate_failures().count()
        );
        for metric in &comparison.metrics {
            let detail = format!(
                "old {}, new {} [{} {}], change {} [{} {}], p = {:.3}, noise +-{}: {}{}",
                value(metric.unit, metric.old),
                value(metric.unit, metric.new.estimate),
                value(metric.unit, metric.new.lower),
                value(metric.unit, metric.new.upper),
                change(metric, metric.change.estimate),
                change(metric, metric.change.lower),
                change(metric, metric.change.upper),
                metric.p_value,
                threshold(metric),
                verdict_text(metric, comparison.significance),
                metric
                    .note
                    .as_ref()
                    .map(|n| format!(" ({n})"))
                    .unwrap_or_default(),
            );
            let _ = write!(
                out,
                "    <testcase classname=\"{}\" name=\"{}\"",
                xml_escape(&comparison.scenario),
                xml_escape(&metric.key)
            );
            if metric.gated && metric.verdict == Verdict::Regressed {
                let _ = writeln!(
                    out,
                    ">\n      <failure message=\"{} regressed\">{}</failure>\n    </testcase>",
                    xml_escape(&metric.key),
                    xml_escape(&detail)
                );
            } else {
                let _ = writeln!(
                    out,
                    ">\n      <system-out>{}</system-out>\n    </testcase>",
                    xml_escape(&detail)
                );
            }
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}
