//! Measurement windows of one sweep step, cut from the engine's interval snapshots.
//!
//! A step's measured time is split into windows of equal length. After each window the
//! monitor compares its p99 latency and throughput with the previous window's; when both agree
//! within the stability tolerance the step has a stable measurement and the monitor ends the
//! run early ([`StopSignal::finish`]). A run that reaches its last window without two agreeing
//! windows is unstable. A step whose last two windows both break the objective also ends
//! early, because more windows cannot make it pass.
//!
//! The step's measurement is its last two windows merged: a stall in an early window that the
//! later windows do not repeat leaves the measurement, as a stable step should.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::engine::{IntervalSink, RunOutcome, StopSignal};
use crate::report::Summary;
use crate::scenario::RunPlan;
use crate::stats::{Counts, IntervalSnapshot, PacerCounts, Totals};

use super::objective::Objective;

/// What one window measured.
#[derive(Debug, Clone)]
pub struct Window {
    /// Latency p99 of the window's successful measured requests, milliseconds.
    pub p99_ms: f64,
    /// Successful responses per second during the window, counting those of requests sent
    /// before it (so that the responses still in flight at each edge balance out).
    pub throughput: f64,
    /// Whether the window alone met the objective.
    pub met_objective: bool,
}

/// The windows of a step, shared between the monitor (inside the engine) and the sweep.
#[derive(Debug, Clone, Default)]
pub struct Windows {
    pub windows: Vec<Window>,
    /// True when the last two windows agreed within the tolerance.
    pub stable: bool,
    /// Summary of the last two windows merged (of the only one, when one completed).
    pub measurement: Option<Summary>,
    /// Measured requests that waited at the in-flight cap during those windows.
    pub waited_at_cap: u64,
}

impl Windows {
    /// Throughput of the last two windows, or 0 when no window completed.
    pub fn throughput(&self) -> f64 {
        let recent = &self.windows[self.windows.len().saturating_sub(2)..];
        if recent.is_empty() {
            return 0.0;
        }
        recent.iter().map(|w| w.throughput).sum::<f64>() / recent.len() as f64
    }
}

/// Counters of one closed window, kept to merge the last two.
struct Closed {
    counts: Counts,
    pacer: PacerCounts,
}

/// Settings of the windows of every step.
#[derive(Debug, Clone)]
pub struct WindowPolicy {
    pub length: Duration,
    pub max_count: u32,
    /// Largest relative difference between consecutive windows' p99 and throughput that still
    /// counts as agreeing, e.g. 0.1 for 10%.
    pub tolerance: f64,
}

/// Returns true when `a` and `b` differ by at most `tolerance` of the larger.
pub fn agree(a: f64, b: f64, tolerance: f64) -> bool {
    let larger = a.abs().max(b.abs());
    larger == 0.0 || (a - b).abs() <= tolerance * larger
}

/// The interval sink that cuts windows and ends a step once they agree.
pub struct StepMonitor {
    policy: WindowPolicy,
    warmup: Duration,
    interval: Duration,
    plan: RunPlan,
    objective: Objective,
    stop: StopSignal,
    result: Arc<Mutex<Windows>>,
    counts: Counts,
    pacer: PacerCounts,
    /// Successful responses in the current window, including those of warm-up requests.
    ok_all: u64,
    /// The window closed before the last one.
    previous: Option<Closed>,
    done: bool,
    /// Prints one line per window on stderr when set.
    label: Option<String>,
}

impl StepMonitor {
    pub fn new(
        plan: &RunPlan,
        policy: WindowPolicy,
        objective: Objective,
        stop: StopSignal,
        label: Option<String>,
    ) -> (StepMonitor, Arc<Mutex<Windows>>) {
        let result = Arc::new(Mutex::new(Windows::default()));
        let monitor = StepMonitor {
            policy,
            warmup: plan.load.warmup,
            interval: plan.output.interval,
            plan: plan.clone(),
            objective,
            stop,
            result: Arc::clone(&result),
            counts: Counts::default(),
            pacer: PacerCounts::default(),
            ok_all: 0,
            previous: None,
            done: false,
            label,
        };
        (monitor, result)
    }

    /// Builds the summary of `counts` and `pacer` over `length` of measured time.
    fn summarize(&self, counts: Counts, pacer: PacerCounts, length: Duration) -> Summary {
        let outcome = RunOutcome {
            totals: Totals {
                counts,
                pacer,
                measured_for: length,
                in_flight_at_end: 0,
            },
            started_at: std::time::SystemTime::now(),
            elapsed: length,
            interrupted: false,
            lanes: 0,
        };
        Summary::build(&self.plan, &outcome, "")
    }

    fn close_window(&mut self) {
        let length = self.policy.length;
        let closed = Closed {
            counts: std::mem::take(&mut self.counts),
            pacer: std::mem::take(&mut self.pacer),
        };
        let summary = self.summarize(closed.counts.clone(), closed.pacer.clone(), length);
        let value = serde_json::to_value(&summary).unwrap_or_default();
        let window = Window {
            p99_ms: summary.latency_ms.p99,
            throughput: self.ok_all as f64 / length.as_secs_f64(),
            met_objective: self.objective.is_met(&value),
        };
        self.ok_all = 0;

        // The measurement: this window merged with the one before it.
        let (measurement, waited_at_cap) = match &self.previous {
            Some(previous) => {
                let mut counts = previous.counts.clone();
                counts.add(&closed.counts);
                let mut pacer = previous.pacer.clone();
                pacer.add(&closed.pacer);
                let waited = pacer.waited_at_cap;
                (self.summarize(counts, pacer, length * 2), waited)
            }
            None => (summary, closed.pacer.waited_at_cap),
        };
        self.previous = Some(closed);

        let mut result = self.result.lock().unwrap_or_else(|e| e.into_inner());
        result.measurement = Some(measurement);
        result.waited_at_cap = waited_at_cap;
        if let Some(label) = &self.label {
            eprintln!(
                "{label}  window {}/{}: {:.1} req/s, p99 {:.3} ms{}",
                result.windows.len() + 1,
                self.policy.max_count,
                window.throughput,
                window.p99_ms,
                if window.met_objective {
                    ""
                } else {
                    ", objective broken"
                }
            );
        }
        let previous = result.windows.last().cloned();
        result.windows.push(window.clone());
        let Some(previous) = previous else {
            return;
        };
        let tolerance = self.policy.tolerance;
        result.stable = agree(previous.p99_ms, window.p99_ms, tolerance)
            && agree(previous.throughput, window.throughput, tolerance);
        let failing = !previous.met_objective && !window.met_objective;
        if (result.stable || failing) && !self.stop.is_stopping() {
            self.done = true;
            self.stop.finish();
        }
    }
}

impl IntervalSink for StepMonitor {
    fn on_interval(&mut self, snapshot: &IntervalSnapshot) {
        if self.done || snapshot.warmup || snapshot.end <= self.warmup {
            return;
        }
        let windows_done = self
            .result
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .windows
            .len() as u32;
        if windows_done >= self.policy.max_count {
            return;
        }
        self.counts.add(&snapshot.counts);
        self.pacer.add(&snapshot.pacer);
        self.ok_all += snapshot.counts.ok + snapshot.counts.warmup_ok;
        // The collector cuts intervals on a fixed grid from the load's start, and the warm-up
        // and window lengths are whole numbers of intervals, so a window ends on an interval's
        // end. Half an interval of slack absorbs the last, slightly short, interval of a run.
        let window_end = self.warmup + self.policy.length * (windows_done + 1);
        if snapshot.end + self.interval / 2 >= window_end {
            self.close_window();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agreement_is_relative() {
        assert!(agree(100.0, 109.0, 0.1));
        assert!(agree(109.0, 100.0, 0.1));
        assert!(!agree(100.0, 112.0, 0.1));
        assert!(agree(0.0, 0.0, 0.1));
        assert!(!agree(0.0, 1.0, 0.1));
    }
}
