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
            let (p50, p99) = route_percentiles(route);
            let _ = writeln!(
                out,
                "{:<32}{:>9}{:>8.2}%{:>9}{:>11}{:>11}",
                label,
                route.count,
                route.share * 100.0,
                route.errors,
                p50,
                p99
            );
        }
    }
    render_split(&mut out, summary);
    render_breakdown(&mut out, summary);
    if !summary.errors.by_kind.is_empty() {
        let _ = writeln!(out, "\nerrors");
        for (kind, count) in &summary.errors.by_kind {
            let _ = writeln!(out, "  {kind:<20}{count}");
        }
        for (origin, kinds) in &summary.errors.by_origin {
            let total: u64 = kinds.values().sum();
            let _ = writeln!(out, "  from {origin:<15}{total}");
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

/// Returns a route's latency p50 and p99 in ms for the tables, or `-` for a route that returned
/// only errors and so has no latency.
pub(crate) fn route_percentiles(route: &super::summary::RouteSummary) -> (String, String) {
    if route.latency_ms.count == 0 {
        return ("-".into(), "-".into());
    }
    (
        format!("{:.3}", route.latency_ms.p50),
        format!("{:.3}", route.latency_ms.p99),
    )
}

/// Renders the split test: expected and observed share with its 95% interval per route.
fn render_split(out: &mut String, summary: &Summary) {
    let Some(split) = &summary.split_test else {
        return;
    };
    let _ = writeln!(
        out,
        "\n{:<32}{:>10}{:>10}{:>20}",
        "split", "expected", "observed", "95% interval"
    );
    for (label, route) in &split.routes {
        let _ = writeln!(
            out,
            "{:<32}{:>9.2}%{:>9.2}%{:>9.2}% - {:>6.2}%",
            label,
            route.expected_share * 100.0,
            route.observed_share * 100.0,
            route.ci_low * 100.0,
            route.ci_high * 100.0
        );
    }
    match split.p_value {
        Some(p) => {
            let _ = writeln!(
                out,
                "chi-square {:.3} (dof {}), p = {:.4}: {} at alpha {}",
                split.chi_square.unwrap_or(f64::NAN),
                split.dof,
                p,
                if split.imbalanced {
                    "IMBALANCED"
                } else {
                    "consistent with the expected split"
                },
                split.alpha
            );
        }
        None => {
            let _ = writeln!(out, "no successful responses to test");
        }
    }
}

/// Renders the latency breakdown, outside in, with the network remainder and client wait last.
fn render_breakdown(out: &mut String, summary: &Summary) {
    if summary.hops.is_empty() {
        return;
    }
    let mut components: Vec<_> = summary.hops.iter().collect();
    components.sort_by_key(|(_, hop)| hop.position);
    let _ = writeln!(
        out,
        "\n{:<20} {:>10} {:>10} {:>10} {:>7} {:>11} {:>8}",
        "breakdown ms", "p50", "p95", "mean", "share", "resolution", "missing"
    );
    let cell = |value: Option<f64>| match value {
        Some(v) => format!("{v:.3}"),
        None => "-".into(),
    };
    let mut mean_total = 0.0;
    for (name, hop) in components {
        mean_total += hop.latency_ms.mean.unwrap_or(0.0);
        let _ = writeln!(
            out,
            "{:<20} {:>10} {:>10} {:>10} {:>7} {:>11} {:>8}",
            name,
            cell(hop.latency_ms.p50),
            cell(hop.latency_ms.p95),
            cell(hop.latency_ms.mean),
            hop.share
                .map(|s| format!("{:.1}%", s * 100.0))
                .unwrap_or_else(|| "-".into()),
            hop.resolution_ms
                .map(|r| format!("{r} ms"))
                .unwrap_or_else(|| "-".into()),
            hop.missing
        );
    }
    let _ = writeln!(
        out,
        "{:<20} {:>10} {:>10} {:>10.3}   (mean latency {:.3})",
        "sum of means", "", "", mean_total, summary.latency_ms.mean
    );
    if let Some(model) = &summary.model_metrics {
        for (name, check) in &model.count_check {
            let _ = writeln!(
                out,
                "successes of {name}: inferload {}, model server {} ({}, warm-up included)",
                check.inferload,
                check
                    .server
                    .map(|c| c.to_string())
                    .unwrap_or_else(|| "-".into()),
                if check.equal { "equal" } else { "DIFFERENT" }
            );
        }
    }
    let clamped: u64 = summary.hops.values().map(|h| h.clamped).sum();
    if clamped > 0 {
        let _ = writeln!(
            out,
            "{clamped} self times were below zero (coarse sources) and count as 0"
        );
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::summary::{Percentiles, RouteSummary};

    fn route(ok: u64, p50: f64, p99: f64) -> RouteSummary {
        RouteSummary {
            count: ok,
            share: 0.0,
            errors: 3,
            warmup_count: 0,
            latency_ms: Percentiles {
                count: ok,
                p50,
                p99,
                ..Percentiles::default()
            },
            service_time_ms: Percentiles::default(),
        }
    }

    #[test]
    fn route_percentiles_dash_without_latency() {
        assert_eq!(
            route_percentiles(&route(0, 0.0, 0.0)),
            ("-".to_string(), "-".to_string())
        );
        assert_eq!(
            route_percentiles(&route(5, 1.5, 2.25)),
            ("1.500".to_string(), "2.250".to_string())
        );
    }
}
