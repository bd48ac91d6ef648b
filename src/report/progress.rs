//! Live progress of a run on stderr: an indicatif bar when stderr is a terminal, otherwise the
//! plain line of [`PlainProgress`] every 5 intervals, so logs get no cursor movements.
//!
//! The bar moves once per interval. It shows the elapsed and remaining time of the planned
//! warm-up and duration, the last interval's achieved and target rate, the requests in flight,
//! the last interval's p99 latency and the errors so far.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};

use super::console::PlainProgress;
use super::intervals::IntervalRow;
use crate::engine::IntervalSink;
use crate::scenario::RunPlan;
use crate::stats::IntervalSnapshot;

/// Intervals between two plain progress lines.
pub const PLAIN_EVERY: u64 = 5;

/// Returns the progress sink of a run: `None` when `quiet`, a bar when stderr is a terminal, plain
/// lines otherwise.
pub fn sink(plan: &RunPlan, quiet: bool) -> Option<Box<dyn IntervalSink>> {
    if quiet {
        return None;
    }
    if std::io::stderr().is_terminal() {
        let total = plan.load.warmup + plan.load.duration;
        return Some(Box::new(LiveProgress::new(
            total,
            ProgressDrawTarget::stderr(),
        )));
    }
    Some(Box::new(PlainProgress::new(PLAIN_EVERY)))
}

/// Formats whole seconds of a position or length in milliseconds.
fn seconds(millis: u64) -> String {
    format!("{}s", millis.div_ceil(1000))
}

/// A progress bar over the planned run time, in milliseconds.
pub struct LiveProgress {
    bar: ProgressBar,
    /// Errors so far, warm-up included.
    errors: u64,
}

impl LiveProgress {
    /// Creates the bar of a run of `total` (warm-up and measurement), drawn to `target`.
    pub fn new(total: Duration, target: ProgressDrawTarget) -> LiveProgress {
        let total_ms = total.as_millis().min(u128::from(u64::MAX)) as u64;
        let style = ProgressStyle::with_template(
            "[{elapsed_s}/{total_s}] {bar:30} {remaining_s} left | {msg}",
        )
        .expect("the progress template is valid")
        .progress_chars("=> ")
        .with_key(
            "elapsed_s",
            |state: &ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = w.write_str(&seconds(state.pos()));
            },
        )
        .with_key(
            "total_s",
            |state: &ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = w.write_str(&seconds(state.len().unwrap_or(0)));
            },
        )
        .with_key(
            "remaining_s",
            |state: &ProgressState, w: &mut dyn std::fmt::Write| {
                let remaining = state.len().unwrap_or(0).saturating_sub(state.pos());
                let _ = w.write_str(&seconds(remaining));
            },
        );
        let bar = ProgressBar::with_draw_target(Some(total_ms), target).with_style(style);
        LiveProgress { bar, errors: 0 }
    }

    /// Returns the bar's message for `snapshot`.
    fn message(&self, snapshot: &IntervalSnapshot, row: &IntervalRow) -> String {
        let phase = match (&row.stage, snapshot.warmup) {
            (_, true) => "warm-up ".to_string(),
            (Some(stage), false) => format!("{stage} "),
            (None, false) => String::new(),
        };
        let rate = match row.target_rps {
            Some(target) => format!("{:.1}/{target:.1} req/s", row.achieved_rps),
            None => format!("{:.1} req/s", row.achieved_rps),
        };
        let p99 = row
            .p99_ms
            .map_or_else(|| "-".to_string(), |p99| format!("{p99:.3} ms"));
        format!(
            "{phase}{rate}, in flight {}, p99 {p99}, errors {}",
            row.in_flight, self.errors
        )
    }
}

impl IntervalSink for LiveProgress {
    fn on_interval(&mut self, snapshot: &IntervalSnapshot) {
        let row = IntervalRow::from_snapshot(snapshot);
        self.errors += row.errors;
        let message = self.message(snapshot, &row);
        let position = snapshot.end.as_millis().min(u128::from(u64::MAX)) as u64;
        self.bar
            .set_position(position.min(self.bar.length().unwrap_or(position)));
        self.bar.set_message(message);
    }

    fn finish(&mut self, _interrupted: bool) -> std::io::Result<()> {
        // The summary follows on stdout; a cleared bar leaves no half-drawn line above it.
        self.bar.finish_and_clear();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use indicatif::TermLike;

    use super::*;
    use crate::stats::{Counts, ErrorKind, PacerCounts};

    /// A terminal that keeps every line drawn on it.
    #[derive(Debug, Clone, Default)]
    struct Screen {
        lines: Arc<Mutex<Vec<String>>>,
    }

    impl TermLike for Screen {
        fn width(&self) -> u16 {
            200
        }
        fn move_cursor_up(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_down(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_right(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_left(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn write_line(&self, s: &str) -> std::io::Result<()> {
            self.lines.lock().unwrap().push(s.to_string());
            Ok(())
        }
        fn write_str(&self, s: &str) -> std::io::Result<()> {
            if !s.is_empty() {
                self.lines.lock().unwrap().push(s.to_string());
            }
            Ok(())
        }
        fn clear_line(&self) -> std::io::Result<()> {
            Ok(())
        }
        fn flush(&self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// Returns a measured interval from 4 s to 5 s: 100 sent, 98 ok at 2 ms, 1 ok at 7 ms, 1 timeout.
    fn snapshot() -> IntervalSnapshot {
        let mut counts = Counts::default();
        for _ in 0..98 {
            counts.timings.latency.record(2000).unwrap();
        }
        counts.timings.latency.record(7000).unwrap();
        counts.ok = 99;
        counts.errors[ErrorKind::Timeout.index()] = 1;
        IntervalSnapshot {
            index: 4,
            start: Duration::from_secs(4),
            end: Duration::from_secs(5),
            warmup: false,
            target_rate: Some(100.0),
            stage: None,
            stage_name: None,
            counts,
            pacer: PacerCounts {
                sent: 100,
                ..PacerCounts::default()
            },
            in_flight: 3,
            interrupted: false,
        }
    }

    #[test]
    fn bar_shows_interval_figures() {
        let screen = Screen::default();
        let target = ProgressDrawTarget::term_like(Box::new(screen.clone()));
        let mut progress = LiveProgress::new(Duration::from_secs(12), target);
        progress.on_interval(&snapshot());
        progress.on_interval(&snapshot());

        let lines = screen.lines.lock().unwrap().clone();
        // indicatif pads a line with spaces to clear what it overwrites.
        let last = lines
            .iter()
            .rev()
            .find(|line| !line.trim().is_empty())
            .expect("the bar was drawn");
        assert!(last.starts_with("[5s/12s] "), "{last}");
        assert!(last.contains(" 7s left | "), "{last}");
        // The p99 of 99 values is the 99th smallest, 7 ms, which a histogram with 3
        // significant digits reports as the top of its 4 us bucket.
        assert!(
            last.ends_with("| 100.0/100.0 req/s, in flight 3, p99 7.003 ms, errors 2"),
            "{last}"
        );
        assert_eq!(progress.bar.position(), 5000);
    }

    #[test]
    fn bar_stops_at_planned_end() {
        let mut progress = LiveProgress::new(Duration::from_secs(3), ProgressDrawTarget::hidden());
        progress.on_interval(&snapshot());
        assert_eq!(progress.bar.position(), 3000);
        assert_eq!(progress.bar.length(), Some(3000));
        progress.finish(false).unwrap();
        assert!(progress.bar.is_finished());
    }
}
