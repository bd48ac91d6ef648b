//! The sweep's own result files: `summary.json`, `steps.csv`, `latency.svg` and `steps.txt`
//! (the table printed at the end), plus the knee of the latency curve.
//!
//! The knee is the first step, in order of level, whose p99 latency exceeds `knee_factor`
//! times the p99 of the lowest level swept (the low-load p99); the step before it is the last
//! one on the flat part of the curve. Only steps that are not generator-limited count.

use std::borrow::Cow;
use std::fmt::Write;
use std::path::Path;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use super::{chart, StepRecord, SweepOutcome, SweepPlan, SweepResult, Verdict};
use crate::report::write_atomic;

/// Version of the sweep `summary.json` layout.
pub const SWEEP_SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Serialize, Deserialize)]
pub struct SweepSummary {
    pub schema_version: u32,
    /// Always `sweep`, to tell this file from a run's summary.
    pub kind: Cow<'static, str>,
    pub scenario: String,
    /// `open` (rates) or `closed` (concurrency levels).
    pub mode: Cow<'static, str>,
    pub objective: ObjectiveSummary,
    pub outcome: SweepOutcome,
    /// Highest rate meeting the objective, bracketed by a failing rate above it within
    /// `precision`; `null` when the sweep found no such bracket.
    pub capacity_rps: Option<f64>,
    /// Closed-loop sweeps: highest concurrency meeting the objective.
    pub capacity_concurrency: Option<u32>,
    /// Successful responses per second measured at the capacity step.
    pub capacity_achieved_rps: Option<f64>,
    /// False when the capacity step's windows never agreed.
    pub capacity_stable: Option<bool>,
    pub bracket: Bracket,
    pub precision: f64,
    pub knee: Option<Knee>,
    pub message: String,
    pub steps: Vec<StepRecord>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct ObjectiveSummary {
    /// Human-readable form, e.g. `p99<50ms, error_rate<=0.001`.
    pub description: String,
    /// The gates each step's measurement must pass.
    pub gates: Vec<String>,
    /// A step whose achieved rate is below `target * (1 - rate_tolerance)` falls short.
    pub rate_tolerance: f64,
    pub stability_tolerance: f64,
    pub max_windows: u32,
    pub window_s: f64,
    pub warmup_s: f64,
}

/// Highest passing and lowest failing level; either is `null` when not known.
#[derive(Debug, Serialize, Deserialize)]
pub struct Bracket {
    pub low: Option<f64>,
    pub high: Option<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Knee {
    /// Level (rate or concurrency) of the first step past the knee.
    pub level: f64,
    pub achieved_rps: f64,
    pub p99_ms: f64,
    /// Level of the last step before it, on the flat part of the curve.
    pub last_flat_level: Option<f64>,
    pub low_load_p99_ms: f64,
    pub factor: f64,
}

/// Finds the knee as defined in this module's documentation.
pub fn knee(steps: &[StepRecord], factor: f64) -> Option<Knee> {
    let mut sorted: Vec<&StepRecord> = steps
        .iter()
        .filter(|s| !matches!(s.verdict, Verdict::Generator | Verdict::Interrupted) && s.ok > 0)
        .collect();
    sorted.sort_by(|a, b| a.level().total_cmp(&b.level()));
    let baseline = sorted.first()?.p99_ms;
    let position = sorted.iter().position(|s| s.p99_ms > factor * baseline)?;
    let step = sorted[position];
    Some(Knee {
        level: step.level(),
        achieved_rps: step.achieved_rps,
        p99_ms: step.p99_ms,
        last_flat_level: position.checked_sub(1).map(|i| sorted[i].level()),
        low_load_p99_ms: baseline,
        factor,
    })
}

/// Builds the sweep's summary.
pub fn summarize(plan: &SweepPlan, result: &SweepResult) -> SweepSummary {
    let closed = matches!(plan.levels, super::Levels::Concurrency(_));
    let capacity = result.capacity();
    let capacity_step = capacity.and_then(|c| {
        result
            .steps
            .iter()
            .rev()
            .find(|s| s.verdict.passed() && s.level() == c)
    });
    let unit = if closed { "" } else { " req/s" };
    let show = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.1}{unit}"));
    let message = match result.outcome {
        SweepOutcome::Found => format!(
            "capacity {} (bracket {} to {}, precision {:.1}%)",
            show(result.low),
            show(result.low),
            show(result.high),
            plan.precision * 100.0
        ),
        SweepOutcome::BelowLowest => format!(
            "no capacity: the lowest level, {}, already broke the objective; sweep lower levels",
            show(result.high)
        ),
        SweepOutcome::NotReached => format!(
            "capacity not reached: every level up to {} met the objective; sweep higher levels",
            show(result.low)
        ),
        SweepOutcome::GeneratorLimited => format!(
            "stopped: the generator, not the target, was the limit ({}); the target sustained \
             at least {}. Run the generator on more CPUs or another machine",
            result
                .steps
                .last()
                .map(|s| s.reason.as_str())
                .unwrap_or("see the steps"),
            show(result.low)
        ),
        SweepOutcome::Interrupted => format!(
            "interrupted; bracket so far {} to {}",
            show(result.low),
            show(result.high)
        ),
    };
    SweepSummary {
        schema_version: SWEEP_SCHEMA_VERSION,
        kind: "sweep".into(),
        scenario: plan.base.name.clone(),
        mode: if closed { "closed" } else { "open" }.into(),
        objective: ObjectiveSummary {
            description: plan.objective.to_string(),
            gates: plan
                .objective
                .gates
                .iter()
                .map(|g| g.name.clone())
                .collect(),
            rate_tolerance: plan.rate_tolerance,
            stability_tolerance: plan.windows.tolerance,
            max_windows: plan.windows.max_count,
            window_s: plan.windows.length.as_secs_f64(),
            warmup_s: plan.warmup.as_secs_f64(),
        },
        outcome: result.outcome,
        capacity_rps: if closed { None } else { capacity },
        capacity_concurrency: if closed {
            capacity.map(|c| c as u32)
        } else {
            None
        },
        capacity_achieved_rps: capacity_step.map(|s| s.achieved_rps),
        capacity_stable: capacity_step.map(|s| s.stable),
        bracket: Bracket {
            low: result.low,
            high: result.high,
        },
        precision: plan.precision,
        knee: knee(&result.steps, plan.knee_factor),
        message,
        steps: result.steps.clone(),
    }
}

/// Renders the steps table and the result lines.
pub fn render(summary: &SweepSummary) -> String {
    let mut out = String::new();
    let closed = summary.mode == "closed";
    let _ = writeln!(
        out,
        "\nsweep of {} ({} loop), objective: {}",
        summary.scenario, summary.mode, summary.objective.description
    );
    let _ = writeln!(
        out,
        "{:>4} {:<7} {:>10} {:>10} {:>9} {:>9} {:>9} {:>8} {:<10} {:<6}",
        "step",
        "phase",
        if closed { "conc." } else { "target/s" },
        "achieved/s",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "errors",
        "verdict",
        "stable"
    );
    for step in &summary.steps {
        let verdict = serde_json::to_value(step.verdict)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "{:>4} {:<7} {:>10.1} {:>10.1} {:>9.3} {:>9.3} {:>9.3} {:>8} {:<10} {:<6}",
            step.step,
            step.phase,
            step.level(),
            step.achieved_rps,
            step.p50_ms,
            step.p95_ms,
            step.p99_ms,
            step.errors,
            verdict,
            if step.stable { "yes" } else { "NO" }
        );
    }
    let _ = writeln!(out, "\n{}", summary.message);
    if let Some(knee) = &summary.knee {
        let _ = writeln!(
            out,
            "knee: p99 {:.3} ms at level {:.1} exceeds {}x the low-load p99 ({:.3} ms); last \
             flat level {}",
            knee.p99_ms,
            knee.level,
            knee.factor,
            knee.low_load_p99_ms,
            knee.last_flat_level
                .map_or("-".to_string(), |l| format!("{l:.1}"))
        );
    }
    let unstable = summary.steps.iter().filter(|s| !s.stable).count();
    if unstable > 0 {
        let _ = writeln!(
            out,
            "{unstable} step(s) never had two consecutive windows agree within {:.0}%; their \
             numbers vary from window to window",
            summary.objective.stability_tolerance * 100.0
        );
    }
    out
}

/// Writes `summary.json`, `steps.csv`, `steps.txt` and `latency.svg` into `dir`.
pub fn write_files(dir: &Path, plan: &SweepPlan, summary: &SweepSummary) -> anyhow::Result<()> {
    let json = serde_json::to_vec_pretty(summary).context("cannot encode the sweep summary")?;
    write_atomic(&dir.join("summary.json"), &json)
        .with_context(|| format!("cannot write {}", dir.join("summary.json").display()))?;

    let mut csv = csv::Writer::from_writer(Vec::new());
    for step in &summary.steps {
        csv.serialize(step).context("cannot encode steps.csv")?;
    }
    let bytes = csv.into_inner().context("cannot encode steps.csv")?;
    write_atomic(&dir.join("steps.csv"), &bytes)
        .with_context(|| format!("cannot write {}", dir.join("steps.csv").display()))?;

    write_atomic(&dir.join("steps.txt"), render(summary).as_bytes())
        .with_context(|| format!("cannot write {}", dir.join("steps.txt").display()))?;

    let marks = chart::Marks {
        limit_ms: plan.objective.p99_limit_ms(),
        capacity_rps: match &*summary.mode {
            "open" => summary.capacity_rps,
            _ => summary.capacity_achieved_rps,
        },
    };
    let title = format!(
        "{}: latency against throughput ({})",
        summary.scenario, summary.objective.description
    );
    let svg = chart::render(&title, &summary.steps, &marks);
    write_atomic(&dir.join("latency.svg"), svg.as_bytes())
        .with_context(|| format!("cannot write {}", dir.join("latency.svg").display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(level: f64, p99: f64) -> StepRecord {
        StepRecord {
            step: 1,
            phase: "climb".into(),
            target_rps: Some(level),
            concurrency: None,
            achieved_rps: level,
            p50_ms: p99 / 2.0,
            p95_ms: p99 * 0.9,
            p99_ms: p99,
            max_ms: p99 * 2.0,
            service_p50_ms: p99 / 2.0,
            ok: 100,
            errors: 0,
            error_rate: 0.0,
            verdict: Verdict::Pass,
            stable: true,
            windows: 2,
            reason: String::new(),
            schedule_lag_p99_ms: None,
            late: 0,
            waited_at_cap: 0,
            generator_cpu_percent: 1.0,
            folder: String::new(),
        }
    }

    #[test]
    fn knee_is_first_step_past_factor() {
        let steps = vec![
            step(300.0, 12.0),
            step(100.0, 10.0),
            step(200.0, 11.0),
            step(400.0, 25.0),
            step(500.0, 900.0),
        ];
        let knee = knee(&steps, 2.0).expect("a knee");
        assert_eq!(knee.level, 400.0);
        assert_eq!(knee.last_flat_level, Some(300.0));
        assert_eq!(knee.low_load_p99_ms, 10.0);
        assert!(super::knee(&steps[..3], 2.0).is_none());
    }

    #[test]
    fn steps_csv_has_header_and_rows() {
        let mut csv = csv::Writer::from_writer(Vec::new());
        csv.serialize(step(100.0, 10.0)).unwrap();
        csv.serialize(step(200.0, 11.0)).unwrap();
        let text = String::from_utf8(csv.into_inner().unwrap()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].starts_with("step,phase,target_rps,concurrency,achieved_rps,p50_ms"));
        assert!(lines[1].contains(",pass,"), "{}", lines[1]);
    }
}
