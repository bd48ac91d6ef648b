//! Capacity sweeps: find the highest open-loop rate (or closed-loop concurrency) at which the
//! target still meets an objective.
//!
//! The sweep climbs a list of levels, one step per level, until a step breaks the objective or
//! its achieved rate falls short of the target rate by more than the tolerance. It then halves
//! the bracket between the last passing and the first failing level until the bracket is
//! narrower than the precision. Each step is one in-process engine run with its own warm-up and
//! up to `max_count` measurement windows (see [`monitor`]), written to its own folder.
//!
//! Before judging the target, every step checks the generator itself: schedule lag that the
//! target's backpressure does not explain, or a process CPU share near the CPUs it may use,
//! means the generator is the limit. The sweep then stops and reports the last passing level
//! as a lower bound, never as the capacity.

pub mod chart;
pub mod levels;
pub mod monitor;
pub mod objective;
pub mod report;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::commands::run::execute_with;
use crate::commands::CommandError;
use crate::engine::{IntervalSink, StopSignal};
use crate::scenario::stages::{StageLoad, StagePlan};
use crate::scenario::{Arrival, LoadMode, RunPlan};
use monitor::{StepMonitor, WindowPolicy};
use objective::Objective;

/// The levels a sweep climbs.
#[derive(Debug, Clone)]
pub enum Levels {
    /// Open-loop rates in requests per second, increasing.
    Rates(Vec<f64>),
    /// Closed-loop concurrencies, increasing.
    Concurrency(Vec<u32>),
}

/// Limits past which the generator, not the target, is the bottleneck.
#[derive(Debug, Clone)]
pub struct GeneratorLimits {
    /// Largest p99 schedule lag (release minus intended time) in milliseconds, counted only
    /// when no request waited at the in-flight cap.
    pub max_lag_ms: f64,
    /// Largest share of the CPUs in the process's affinity mask that the process may use over
    /// a step, from 0 to 1.
    pub max_cpu: f64,
}

/// A checked sweep.
#[derive(Debug, Clone)]
pub struct SweepPlan {
    /// The scenario's run plan; each step replaces its load and results folder.
    pub base: RunPlan,
    pub levels: Levels,
    pub objective: Objective,
    /// A step whose achieved rate is below `target * (1 - rate_tolerance)` falls short.
    pub rate_tolerance: f64,
    /// Bisection stops when `(high - low) / low` is at most this.
    pub precision: f64,
    pub warmup: Duration,
    pub windows: WindowPolicy,
    /// Interval snapshot length; divides both the warm-up and the window (see [`interval_for`]).
    pub interval: Duration,
    pub generator: GeneratorLimits,
    /// The knee is the first step whose p99 exceeds this many times the lowest level's p99.
    pub knee_factor: f64,
    pub sweep_dir: PathBuf,
    pub quiet: bool,
}

/// The verdict of one step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Met the objective and achieved the target rate.
    Pass,
    /// Broke the objective.
    Fail,
    /// Met the objective but achieved less than the target rate.
    Short,
    /// The generator was the bottleneck, so the step shows nothing about the target.
    Generator,
    /// Ctrl-C or SIGTERM cut the step short.
    Interrupted,
}

impl Verdict {
    pub fn passed(self) -> bool {
        self == Verdict::Pass
    }
}

/// One row of the steps table, `steps.csv` and the sweep's `summary.json`. Latency, counts and
/// lag come from the step's measurement: its last two windows.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StepRecord {
    /// 1 for the first step.
    pub step: usize,
    /// `climb` or `bisect`.
    pub phase: std::borrow::Cow<'static, str>,
    /// Target rate (open loop), requests per second.
    pub target_rps: Option<f64>,
    /// Concurrency (closed loop).
    pub concurrency: Option<u32>,
    /// Successful responses per second over the measurement windows.
    pub achieved_rps: f64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// Service time (response end minus actual send) p50.
    pub service_p50_ms: f64,
    pub ok: u64,
    pub errors: u64,
    pub error_rate: f64,
    pub verdict: Verdict,
    /// False when no two consecutive windows agreed within the stability tolerance.
    pub stable: bool,
    pub windows: u32,
    /// The reason for the verdict.
    pub reason: String,
    pub schedule_lag_p99_ms: Option<f64>,
    pub late: u64,
    /// Measured requests that waited at the in-flight cap during the measurement.
    pub waited_at_cap: u64,
    /// Process CPU time over the step's wall time and the CPUs it may use, in percent.
    pub generator_cpu_percent: f64,
    /// The step's own results folder, relative to the sweep's folder.
    pub folder: String,
}

impl StepRecord {
    /// Returns the step's level: its target rate or its concurrency.
    pub fn level(&self) -> f64 {
        self.target_rps
            .or(self.concurrency.map(f64::from))
            .unwrap_or(0.0)
    }
}

/// The reason the sweep stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SweepOutcome {
    /// A passing and a failing level bracket the capacity to the precision.
    Found,
    /// Even the lowest level broke the objective: no capacity to report.
    BelowLowest,
    /// Every level passed: the capacity is above the highest level.
    NotReached,
    /// The generator became the bottleneck before the target did.
    GeneratorLimited,
    Interrupted,
}

/// The sweep's result.
#[derive(Debug, Clone)]
pub struct SweepResult {
    pub steps: Vec<StepRecord>,
    pub outcome: SweepOutcome,
    /// Highest passing level, and lowest failing level above it.
    pub low: Option<f64>,
    pub high: Option<f64>,
}

impl SweepResult {
    /// Returns the capacity: the highest passing level, only when a failing level brackets it.
    pub fn capacity(&self) -> Option<f64> {
        match self.outcome {
            SweepOutcome::Found => self.low,
            _ => None,
        }
    }
}

/// Runs the sweep, writing each step's folder; the caller writes the sweep's own files.
pub async fn run(plan: &SweepPlan) -> Result<SweepResult, CommandError> {
    let closed = matches!(plan.levels, Levels::Concurrency(_));
    let levels: Vec<f64> = match &plan.levels {
        Levels::Rates(rates) => rates.clone(),
        Levels::Concurrency(levels) => levels.iter().map(|&c| f64::from(c)).collect(),
    };
    let mut result = SweepResult {
        steps: Vec::new(),
        outcome: SweepOutcome::NotReached,
        low: None,
        high: None,
    };

    for &level in &levels {
        let record = run_step(plan, &mut result, level, "climb").await?;
        match record {
            Verdict::Pass => result.low = Some(level),
            Verdict::Fail | Verdict::Short => {
                result.high = Some(level);
                break;
            }
            Verdict::Generator => {
                result.outcome = SweepOutcome::GeneratorLimited;
                return Ok(result);
            }
            Verdict::Interrupted => {
                result.outcome = SweepOutcome::Interrupted;
                return Ok(result);
            }
        }
    }
    let (low, high) = match (result.low, result.high) {
        (_, None) => {
            result.outcome = SweepOutcome::NotReached;
            return Ok(result);
        }
        (None, Some(_)) => {
            result.outcome = SweepOutcome::BelowLowest;
            return Ok(result);
        }
        (Some(low), Some(high)) => (low, high),
    };

    let (mut low, mut high) = (low, high);
    while !narrow_enough(low, high, plan.precision, closed) {
        let middle = if closed {
            ((low + high) / 2.0).floor()
        } else {
            (low + high) / 2.0
        };
        match run_step(plan, &mut result, middle, "bisect").await? {
            Verdict::Pass => low = middle,
            Verdict::Fail | Verdict::Short => high = middle,
            Verdict::Generator => {
                result.low = Some(low);
                result.high = Some(high);
                result.outcome = SweepOutcome::GeneratorLimited;
                return Ok(result);
            }
            Verdict::Interrupted => {
                result.low = Some(low);
                result.high = Some(high);
                result.outcome = SweepOutcome::Interrupted;
                return Ok(result);
            }
        }
        result.low = Some(low);
        result.high = Some(high);
    }
    result.outcome = SweepOutcome::Found;
    Ok(result)
}

/// Returns whether the bracket is as narrow as requested: relative width within `precision`,
/// or adjacent whole numbers for concurrency.
fn narrow_enough(low: f64, high: f64, precision: f64, closed: bool) -> bool {
    if closed && high - low <= 1.0 {
        return true;
    }
    (high - low) / low <= precision
}

/// Runs one step at `level`, appends its record and returns its verdict.
async fn run_step(
    plan: &SweepPlan,
    result: &mut SweepResult,
    level: f64,
    phase: &'static str,
) -> Result<Verdict, CommandError> {
    let number = result.steps.len() + 1;
    let closed = matches!(plan.levels, Levels::Concurrency(_));
    let label = if closed {
        format!("concurrency {level}")
    } else {
        format!("{level:.1}/s")
    };
    if !plan.quiet {
        let bracket = match (result.low, result.high) {
            (None, None) => String::from("not bracketed yet"),
            (low, high) => format!(
                "bracket [{}, {}]",
                low.map_or("-".into(), |l| format!("{l:.1}")),
                high.map_or("-".into(), |h| format!("{h:.1}"))
            ),
        };
        eprintln!("step {number} ({phase}) {label}: {bracket}");
    }

    let folder = if closed {
        format!("step-{number:02}-c{level}")
    } else {
        format!("step-{number:02}-{}rps", format_level(level))
    };
    let step_plan = step_plan(plan, number, level, closed, &folder);
    let stop = StopSignal::new();
    let progress_label = (!plan.quiet).then(|| format!("  step {number}"));
    let (monitor, windows) = StepMonitor::new(
        &step_plan,
        plan.windows.clone(),
        plan.objective.clone(),
        stop.clone(),
        progress_label,
    );
    let sinks: Vec<Box<dyn IntervalSink>> = vec![Box::new(monitor)];

    let cpu_before = process_cpu_time();
    let wall_before = Instant::now();
    let executed = execute_with(step_plan, sinks, stop).await?;
    let wall = wall_before.elapsed();
    let cpu = process_cpu_time().saturating_sub(cpu_before);
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let cpu_share = cpu.as_secs_f64() / (wall.as_secs_f64() * cpus as f64).max(1e-9);

    let windows = windows.lock().unwrap_or_else(|e| e.into_inner()).clone();
    // The verdict comes from the step's measurement (its last two windows); the step's folder
    // keeps the whole run.
    let interrupted = executed.summary.partial || windows.measurement.is_none();
    let summary = windows.measurement.as_ref().unwrap_or(&executed.summary);
    let value = serde_json::to_value(summary).unwrap_or_default();
    let checks = plan.objective.evaluate(&value);
    let lag_p99 = summary.schedule_lag_ms.as_ref().map(|l| l.p99);
    let waited_at_cap = windows.waited_at_cap;
    let achieved = windows.throughput();
    let short = !closed && achieved < level * (1.0 - plan.rate_tolerance);
    let would_fail = short || checks.iter().any(|c| !c.pass);

    let (verdict, reason) = if interrupted {
        (Verdict::Interrupted, "interrupted".to_string())
    } else if cpu_share > plan.generator.max_cpu {
        (
            Verdict::Generator,
            format!(
                "generator CPU {:.0}% of {cpus} CPUs exceeds {:.0}%",
                cpu_share * 100.0,
                plan.generator.max_cpu * 100.0
            ),
        )
    } else if let Some(lag) = lag_p99.filter(|&lag| {
        // The lag must also make up at least half of the latency p99: a target far over
        // its capacity slows the whole machine, and a short pacer delay then is not what
        // broke the objective.
        lag > plan.generator.max_lag_ms && lag >= 0.5 * summary.latency_ms.p99 && waited_at_cap == 0
    }) {
        (
            Verdict::Generator,
            format!(
                "schedule lag p99 {lag:.2} ms exceeds {:.2} ms and is most of the latency p99 \
                 ({:.2} ms), with no wait at the in-flight cap: the pacer could not keep up",
                plan.generator.max_lag_ms, summary.latency_ms.p99
            ),
        )
    } else if !closed
        && waited_at_cap == 0
        && summary.load.achieved_rps < level * (1.0 - plan.rate_tolerance)
    {
        (
            Verdict::Generator,
            format!(
                "the pacer sent {:.1} req/s of {level:.1} req/s with no wait at the in-flight \
                 cap: it could not keep up",
                summary.load.achieved_rps
            ),
        )
    } else if let Some(reason) = would_fail
        .then(|| connection_bound(result, summary, &executed.summary, closed))
        .flatten()
    {
        (Verdict::Generator, reason)
    } else if let Some(broken) = checks.iter().find(|c| !c.pass) {
        let measured = match (broken.value, &broken.message) {
            (Some(value), _) => crate::gate::format_value(value, &broken.unit),
            (None, Some(message)) => message.clone(),
            (None, None) => "no value".to_string(),
        };
        (
            Verdict::Fail,
            format!("{} broken: measured {measured}", broken.name),
        )
    } else if short {
        (
            Verdict::Short,
            format!(
                "achieved {achieved:.1} req/s, below {:.1} req/s ({:.0}% tolerance)",
                level * (1.0 - plan.rate_tolerance),
                plan.rate_tolerance * 100.0
            ),
        )
    } else {
        (Verdict::Pass, "objective met".to_string())
    };
    let errors = summary.requests.errors;
    let ok = summary.requests.ok;
    let record = StepRecord {
        step: number,
        phase: phase.into(),
        target_rps: (!closed).then_some(level),
        concurrency: closed.then_some(level as u32),
        achieved_rps: achieved,
        p50_ms: summary.latency_ms.p50,
        p95_ms: summary.latency_ms.p95,
        p99_ms: summary.latency_ms.p99,
        max_ms: summary.latency_ms.max,
        service_p50_ms: summary.service_time_ms.p50,
        ok,
        errors,
        error_rate: if ok + errors > 0 {
            errors as f64 / (ok + errors) as f64
        } else {
            0.0
        },
        verdict,
        stable: windows.stable,
        windows: windows.windows.len() as u32,
        reason,
        schedule_lag_p99_ms: lag_p99,
        late: summary.requests.late,
        waited_at_cap,
        generator_cpu_percent: cpu_share * 100.0,
        folder,
    };
    if !plan.quiet {
        eprintln!(
            "  step {number}: {:?}{}, {:.1} req/s, p99 {:.3} ms: {}",
            record.verdict,
            if record.stable { "" } else { " (unstable)" },
            record.achieved_rps,
            record.p99_ms,
            record.reason
        );
    }
    result.steps.push(record);
    Ok(verdict)
}

/// Returns why a step is limited by the generator's connections, or `None`.
///
/// With one request per connection, requests that find every connection busy wait in the
/// generator. That wait is the target's doing when its service time has grown (it queues
/// internally), but the generator's when the service time is still at its lowest-level value:
/// then the target had room and only the connection pool was full. The wait is judged from the
/// p50 of latency minus service time; the service time is "still low" within 25% of the lowest
/// level's p50.
fn connection_bound(
    result: &SweepResult,
    measurement: &crate::report::Summary,
    whole_run: &crate::report::Summary,
    closed: bool,
) -> Option<String> {
    if closed {
        return None;
    }
    let baseline = result
        .steps
        .iter()
        .filter(|s| s.ok > 0)
        .min_by(|a, b| a.level().total_cmp(&b.level()))?
        .service_p50_ms;
    let service = measurement.service_time_ms.p50;
    let client_wait = measurement.latency_ms.p50 - service;
    if client_wait > service.max(1.0) && service <= baseline * 1.25 {
        return Some(format!(
            "requests waited {client_wait:.1} ms (p50) for one of the {} connections while the \
             target's service time stayed at {service:.2} ms (lowest level {baseline:.2} ms): \
             raise --connections",
            whole_run.load.connections
        ));
    }
    None
}

/// Formats a rate for folder names: whole numbers without decimals, others with one.
fn format_level(level: f64) -> String {
    if level.fract() == 0.0 {
        format!("{level:.0}")
    } else {
        format!("{level:.1}")
    }
}

/// Builds the base plan with its load replaced by one stage at `level`.
fn step_plan(plan: &SweepPlan, number: usize, level: f64, closed: bool, folder: &str) -> RunPlan {
    let mut step = plan.base.clone();
    let measured = plan.windows.length * plan.windows.max_count;
    let arrival = match plan.base.load.mode {
        LoadMode::Open { arrival, .. } => arrival,
        LoadMode::Closed { .. } => Arrival::Constant,
    };
    let (mode, load) = if closed {
        let concurrency = level as u32;
        step.load.connections = concurrency;
        step.load.max_in_flight = step.load.max_in_flight.max(concurrency);
        (
            LoadMode::Closed { concurrency },
            StageLoad::Concurrency(concurrency),
        )
    } else {
        (
            LoadMode::Open {
                rate: level,
                arrival,
            },
            StageLoad::Rate {
                from: level,
                to: level,
            },
        )
    };
    step.load.mode = mode;
    step.load.stages = vec![StagePlan {
        name: format!("step-{number}"),
        load,
        duration: measured,
    }];
    step.load.duration = measured;
    step.load.warmup = plan.warmup;
    step.output.run_dir = plan.sweep_dir.join(folder);
    step.output.interval = plan.interval;
    step
}

/// User plus system CPU time of this process so far.
fn process_cpu_time() -> Duration {
    // SAFETY: getrusage writes into the zeroed struct we pass and reads nothing else.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        if libc::getrusage(libc::RUSAGE_SELF, &mut usage) != 0 {
            return Duration::ZERO;
        }
        usage
    };
    let time = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec.max(0) as u64) + Duration::from_micros(t.tv_usec.max(0) as u64)
    };
    time(usage.ru_utime) + time(usage.ru_stime)
}

/// Picks the interval length: the largest whole division of both the warm-up and the window
/// that is at most 1 s, so that windows start and end on interval edges.
pub fn interval_for(warmup: Duration, window: Duration) -> Result<Duration, String> {
    fn gcd(a: u128, b: u128) -> u128 {
        if b == 0 {
            a
        } else {
            gcd(b, a % b)
        }
    }
    let common = gcd(warmup.as_millis(), window.as_millis());
    let mut divisor = 1;
    while common / divisor > 1000 || common % divisor != 0 {
        divisor += 1;
    }
    let interval = Duration::from_millis((common / divisor) as u64);
    if interval < Duration::from_millis(100) {
        return Err(format!(
            "the warm-up ({}) and window ({}) have no common length of 100ms or more; use \
             whole seconds, e.g. --step-warmup 2s --window 3s",
            humantime::format_duration(warmup),
            humantime::format_duration(window)
        ));
    }
    Ok(interval)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_divide_warmup_and_window() {
        let ms = Duration::from_millis;
        assert_eq!(interval_for(ms(2000), ms(3000)).unwrap(), ms(1000));
        assert_eq!(interval_for(ms(1500), ms(2000)).unwrap(), ms(500));
        assert_eq!(interval_for(ms(0), ms(5000)).unwrap(), ms(1000));
        assert_eq!(interval_for(ms(0), ms(2500)).unwrap(), ms(625));
        assert!(interval_for(ms(1010), ms(2000)).is_err());
    }

    #[test]
    fn bracket_narrowing() {
        assert!(narrow_enough(400.0, 419.0, 0.05, false));
        assert!(!narrow_enough(400.0, 421.0, 0.05, false));
        assert!(narrow_enough(7.0, 8.0, 0.01, true));
        assert!(!narrow_enough(6.0, 8.0, 0.01, true));
    }
}
