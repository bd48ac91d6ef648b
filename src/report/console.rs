//! The console summary and the plain progress line.

use std::fmt::Write;
use std::time::Instant;

use super::summary::{Percentiles, Summary};
use crate::engine::IntervalSink;
use crate::stats::IntervalSnapshot;

/// Renders the end-of-run summary as text.
pub fn render(summary: &Summary) -> String {
    let mut out = String::new();
    let load = &summary.load;
    let requests = &summary.requests;
    let _ = writeln!(
        out,
        "\n{} -> {} (model {})",
        summary.scenario, summary.target.url, summary.target.model
    );
    if summary.partial {
        let _ = writeln!(
            out,
            "PARTIAL: the run was interrupted; the numbers cover {:.1}s",
            load.measured_s
        );
    }
    match load.target_rps {
        Some(target) => {
            let _ = writeln!(
                out,
                "rate      target {:.2} req/s, achieved {:.2} req/s ({:+.2}%) over {:.1}s",
                target,
                load.achieved_rps,
                (load.achieved_rps / target - 1.0) * 100.0,
                load.measured_s
            );
        }
        None => {
            let _ = writeln!(
                out,
                "rate      closed loop, concurrency {}, achieved {:.2} req/s over {:.1}s",
                load.concurrency.unwrap_or(0),
                load.achieved_rps,
                load.measured_s
            );
        }
    }
    let _ = writeln!(
        out,
        "requests  sent {}, ok {}, errors {}, dropped {}, in flight at end {}, late {} ({:.2}% success)",
        requests.sent,
        requests.ok,
        requests.errors,
        requests.dropped,
        requests.in_flight_at_end,
        requests.late,
        requests.success_rate * 100.0
    );
    let _ = writeln!(
        out,
        "\n{:<16}{:>9}{:>9}{:>9}{:>9}{:>9}{:>9}{:>9}",
        "ms", "mean", "p50", "p90", "p95", "p99", "p99.9", "max"
    );
    let mut row = |name: &str, p: &Percentiles| {
        let _ = writeln!(
            out,
            "{:<16}{:>9.3}{:>9.3}{:>9.3}{:>9.3}{:>9.3}{:>9.3}{:>9.3}",
            name, p.mean, p.p50, p.p90, p.p95, p.p99, p.p999, p.max
        );
    };
    row("latency", &summary.latency_ms);
    row("service time", &summary.service_time_ms);
    if let Some(lag) = &summary.schedule_lag_ms {
        row("schedule lag", lag);
    }
    if let Some(connect) = &summary.connect_ms {
        row("connect", connect);
    }
    if !summary.routes.is_empty() {
        let _ = writeln!(
            out,
            "\n{:<32}{:>9}{:>9}{:>9}{:>11}{:>11}",
            "route", "count", "share", "errors", "p50 ms", "p99 ms"
        );
        for (label, route) in &summary.routes {
            let _ = writeln!(
                out,
                "{:<32}{:>9}{:>8.2}%{:>9}{:>11.3}{:>11.3}",
                label,
                route.count,
                route.share * 100.0,
                route.errors,
                route.latency_ms.p50,
                route.latency_ms.p99
            );
        }
    }
    if !summary.errors.by_kind.is_empty() {
        let _ = writeln!(out, "\nerrors");
        for (kind, count) in &summary.errors.by_kind {
            let _ = writeln!(out, "  {kind:<20}{count}");
        }
        for body in summary.errors.top_bodies.iter().take(5) {
            let _ = writeln!(out, "  {:>8} x {}", body.count, body.body);
        }
    }
    out.push_str(&crate::gate::render_table(&summary.gates));
    if !summary.gates.is_empty() {
        let failed = summary.gates.iter().filter(|g| !g.pass).count();
        if failed == 0 {
            let _ = writeln!(out, "\nall {} gates passed", summary.gates.len());
        } else {
            let _ = writeln!(out, "\n{failed} of {} gates FAILED", summary.gates.len());
        }
    }
    out
}

/// Prints one plain line every `every` intervals, for logs and terminals alike.
pub struct PlainProgress {
    every: u64,
    started: Instant,
}

impl PlainProgress {
    pub fn new(every: u64) -> PlainProgress {
        PlainProgress {
            every: every.max(1),
            started: Instant::now(),
        }
    }
}

impl IntervalSink for PlainProgress {
    fn on_interval(&mut self, snapshot: &IntervalSnapshot) {
        if (snapshot.index + 1) % self.every != 0 {
            return;
        }
        let p99 = snapshot.counts.timings.latency.value_at_quantile(0.99) as f64 / 1000.0;
        let stage = match &snapshot.stage_name {
            Some(name) => format!(" {name}"),
            None => String::new(),
        };
        eprintln!(
            "[{:>6.1}s]{}{} {:>9.1} req/s, in flight {}, p99 {:.3} ms, errors {}",
            self.started.elapsed().as_secs_f64(),
            if snapshot.warmup { " warm-up" } else { "" },
            stage,
            snapshot.completed_rate(),
            snapshot.in_flight,
            p99,
            snapshot.counts.error_total() + snapshot.counts.warmup_errors
        );
    }
}
