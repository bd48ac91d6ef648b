//! `summary.md`: the run in Markdown, for CI job summaries (for example
//! `cat summary.md >> "$GITHUB_STEP_SUMMARY"`).

use std::fmt::Write;

use super::summary::{Percentiles, Summary};
use crate::gate::format_value;

/// Escapes `|` and line breaks so a value stays inside its table cell.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace(['\n', '\r'], " ")
}

/// Formats an optional number with 3 decimals, or `-`.
fn optional(value: Option<f64>) -> String {
    value.map_or_else(|| "-".to_string(), |v| format!("{v:.3}"))
}

/// Renders the split test: expected and observed share with its 95% interval per route.
fn render_split(out: &mut String, summary: &Summary) {
    let Some(split) = &summary.split_test else {
        return;
    };
    let _ = writeln!(
        out,
        "| split | expected | observed | 95% interval |\n|---|---:|---:|---:|"
    );
    for (label, route) in &split.routes {
        let _ = writeln!(
            out,
            "| {} | {:.2}% | {:.2}% | {:.2}% - {:.2}% |",
            cell(label),
            route.expected_share * 100.0,
            route.observed_share * 100.0,
            route.ci_low * 100.0,
            route.ci_high * 100.0
        );
    }
    let verdict = match split.p_value {
        Some(p) => format!(
            "chi-square {:.3} (dof {}), p = {p:.4}: {} at alpha {}",
            split.chi_square.unwrap_or(f64::NAN),
            split.dof,
            if split.imbalanced {
                "**imbalanced**"
            } else {
                "consistent with the expected split"
            },
            split.alpha
        ),
        None => "no successful responses to test".to_string(),
    };
    let _ = writeln!(out, "\n{verdict}\n");
}

/// Renders the latency breakdown, outside in, as the console does.
fn render_breakdown(out: &mut String, summary: &Summary) {
    if summary.hops.is_empty() {
        return;
    }
    let mut components: Vec<_> = summary.hops.iter().collect();
    components.sort_by_key(|(_, hop)| hop.position);
    let _ = writeln!(
        out,
        "| breakdown | p50 ms | p95 ms | mean ms | share | resolution | missing |\n\
         |---|---:|---:|---:|---:|---:|---:|"
    );
    let mut mean_total = 0.0;
    for (name, hop) in components {
        mean_total += hop.latency_ms.mean.unwrap_or(0.0);
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} |",
            cell(name),
            optional(hop.latency_ms.p50),
            optional(hop.latency_ms.p95),
            optional(hop.latency_ms.mean),
            hop.share
                .map_or_else(|| "-".to_string(), |s| format!("{:.1}%", s * 100.0)),
            hop.resolution_ms
                .map_or_else(|| "-".to_string(), |r| format!("{r} ms")),
            hop.missing
        );
    }
    let _ = writeln!(out, "| sum of means | | | {mean_total:.3} | | | |");
    let _ = writeln!(
        out,
        "| mean latency | | | {:.3} | | | |\n",
        summary.latency_ms.mean
    );
    if let Some(model) = &summary.model_metrics {
        for (name, check) in &model.count_check {
            let _ = writeln!(
                out,
                "Successes of `{}`: inferload {}, model server {} ({}, warm-up included).\n",
                cell(name),
                check.inferload,
                check
                    .server
                    .map_or_else(|| "-".to_string(), |c| c.to_string()),
                if check.equal {
                    "equal"
                } else {
                    "**different**"
                }
            );
        }
    }
}

/// Renders the summary as Markdown.
pub fn render(summary: &Summary) -> String {
    let mut out = String::new();
    let verdict = if summary.gates.is_empty() {
        "no gates"
    } else if summary.passed {
        "all gates passed"
    } else {
        "gates FAILED"
    };
    let _ = writeln!(
        out,
        "## inferload: {} ({verdict})\n",
        cell(&summary.scenario)
    );
    if summary.partial {
        let _ = writeln!(
            out,
            "> **Partial:** the run was interrupted; the numbers cover {:.1} s.\n",
            summary.load.measured_s
        );
    }
    let load = &summary.load;
    let requests = &summary.requests;
    let _ = writeln!(
        out,
        "Target `{}`, model `{}`, {} transport, started {}.\n",
        cell(&summary.target.url),
        cell(&summary.target.model),
        cell(&summary.target.transport),
        summary.started_at
    );
    let _ = writeln!(out, "| load | value |\n|---|---:|");
    match load.target_rps {
        Some(target) => {
            let _ = writeln!(out, "| target rate | {target:.2} req/s |");
        }
        None => {
            let _ = writeln!(
                out,
                "| closed-loop concurrency | {} |",
                load.concurrency.unwrap_or(0)
            );
        }
    }
    let _ = writeln!(out, "| achieved rate | {:.2} req/s |", load.achieved_rps);
    let _ = writeln!(out, "| measured | {:.1} s |", load.measured_s);
    for (name, count) in [
        ("sent", requests.sent),
        ("ok", requests.ok),
        ("errors", requests.errors),
        ("dropped", requests.dropped),
        ("in flight at end", requests.in_flight_at_end),
        ("late", requests.late),
    ] {
        let _ = writeln!(out, "| {name} | {count} |");
    }
    let _ = writeln!(
        out,
        "| success rate | {:.3}% |\n",
        requests.success_rate * 100.0
    );

    let _ = writeln!(
        out,
        "| ms | count | mean | p50 | p90 | p95 | p99 | p99.9 | max |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    let mut row = |name: &str, p: &Percentiles| {
        let _ = writeln!(
            out,
            "| {} | {} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} |",
            cell(name),
            p.count,
            p.mean,
            p.p50,
            p.p90,
            p.p95,
            p.p99,
            p.p999,
            p.max
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
    out.push('\n');

    if !summary.routes.is_empty() {
        let _ = writeln!(
            out,
            "| route | count | share | errors | p50 ms | p99 ms |\n|---|---:|---:|---:|---:|---:|"
        );
        for (label, route) in &summary.routes {
            let (p50, p99) = super::console::route_percentiles(route);
            let _ = writeln!(
                out,
                "| {} | {} | {:.2}% | {} | {} | {} |",
                cell(label),
                route.count,
                route.share * 100.0,
                route.errors,
                p50,
                p99
            );
        }
        out.push('\n');
    }

    render_split(&mut out, summary);
    render_breakdown(&mut out, summary);

    if !summary.errors.by_kind.is_empty() {
        let _ = writeln!(out, "| error kind | count |\n|---|---:|");
        for (kind, count) in &summary.errors.by_kind {
            let _ = writeln!(out, "| {} | {count} |", cell(kind));
        }
        out.push('\n');
    }

    if !summary.gates.is_empty() {
        let _ = writeln!(
            out,
            "| gate | value | threshold | verdict |\n|---|---:|---:|---|"
        );
        for gate in &summary.gates {
            let value = match gate.value {
                Some(v) => format_value(v, &gate.unit),
                None => format!("missing: {}", gate.message.as_deref().unwrap_or("no value")),
            };
            let _ = writeln!(
                out,
                "| `{}` | {} | {} {} | {} |",
                cell(&gate.name),
                cell(&value),
                cell(&gate.op),
                format_value(gate.threshold, &gate.unit),
                if gate.pass { "pass" } else { "**FAIL**" }
            );
        }
    }
    out
}
