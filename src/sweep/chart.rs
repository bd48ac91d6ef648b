//! `latency.svg`: latency percentiles against achieved throughput, one point per sweep step.
//!
//! The y axis is logarithmic when the latencies span more than a factor of 20 (an overloaded
//! step's p99 is often thousands of times the idle one), linear otherwise.

use std::fmt::Write;

use super::StepRecord;

const WIDTH: f64 = 800.0;
const HEIGHT: f64 = 500.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 160.0;
const TOP: f64 = 50.0;
const BOTTOM: f64 = 70.0;

/// Optional marks drawn over the curves.
pub struct Marks {
    /// A latency limit from the objective, in milliseconds, drawn as a horizontal line.
    pub limit_ms: Option<f64>,
    /// The capacity found, on the x axis (requests per second).
    pub capacity_rps: Option<f64>,
}

/// A y axis mapping milliseconds to pixels.
struct Axis {
    low: f64,
    high: f64,
    log: bool,
}

impl Axis {
    fn position(&self, value: f64) -> f64 {
        let plot = HEIGHT - TOP - BOTTOM;
        let fraction = if self.log {
            (value.max(self.low).log10() - self.low.log10())
                / (self.high.log10() - self.low.log10())
        } else {
            (value - self.low) / (self.high - self.low)
        };
        HEIGHT - BOTTOM - fraction.clamp(0.0, 1.0) * plot
    }

    fn ticks(&self) -> Vec<f64> {
        if self.log {
            let mut ticks = Vec::new();
            let mut decade = 10f64.powf(self.low.log10().floor());
            while decade <= self.high {
                for step in [1.0, 2.0, 5.0] {
                    let tick = decade * step;
                    if tick >= self.low && tick <= self.high {
                        ticks.push(tick);
                    }
                }
                decade *= 10.0;
            }
            ticks
        } else {
            nice_ticks(self.low, self.high)
        }
    }
}

/// About five round tick values from `low` to `high`.
fn nice_ticks(low: f64, high: f64) -> Vec<f64> {
    let span = (high - low).max(f64::MIN_POSITIVE);
    let raw = span / 5.0;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= raw)
        .unwrap_or(magnitude * 10.0);
    let mut tick = (low / step).ceil() * step;
    let mut ticks = Vec::new();
    while tick <= high + step * 1e-9 {
        ticks.push(tick);
        tick += step;
    }
    ticks
}

fn label(value: f64) -> String {
    if value >= 100.0 || value.fract() == 0.0 {
        format!("{value:.0}")
    } else if value >= 1.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.3}")
    }
}

/// Escapes text for an SVG text node or attribute.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Renders the chart; steps without successful responses are left out.
pub fn render(title: &str, steps: &[StepRecord], marks: &Marks) -> String {
    let mut points: Vec<&StepRecord> = steps
        .iter()
        .filter(|s| s.ok > 0 && s.p99_ms > 0.0)
        .collect();
    points.sort_by(|a, b| a.level().total_cmp(&b.level()));

    let x_high = points
        .iter()
        .map(|s| s.achieved_rps)
        .chain(marks.capacity_rps)
        .fold(0.0, f64::max)
        .max(1.0)
        * 1.05;
    let y_values = points
        .iter()
        .flat_map(|s| [s.p50_ms, s.p95_ms, s.p99_ms])
        .chain(marks.limit_ms);
    let (y_min, y_max) = y_values.fold((f64::INFINITY, 0.0f64), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    let y_min = if y_min.is_finite() { y_min } else { 1.0 };
    let y_max = y_max.max(y_min * 1.01).max(0.001);
    let axis = if y_max / y_min.max(1e-6) > 20.0 {
        Axis {
            low: 10f64.powf(y_min.max(1e-3).log10().floor()),
            high: 10f64.powf(y_max.log10().ceil()),
            log: true,
        }
    } else {
        let ticks = nice_ticks(0.0, y_max * 1.1);
        Axis {
            low: 0.0,
            high: ticks.last().copied().unwrap_or(y_max * 1.1),
            log: false,
        }
    };
    let x_ticks = nice_ticks(0.0, x_high);
    let x_high = x_ticks.last().copied().unwrap_or(x_high).max(x_high);
    let x = |value: f64| LEFT + value / x_high * (WIDTH - LEFT - RIGHT);

    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">
<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>
<text x="{}" y="25" text-anchor="middle" font-size="15">{}</text>"#,
        WIDTH / 2.0,
        escape(title)
    );

    // Grid, ticks and axis labels.
    for tick in axis.ticks() {
        let y = axis.position(tick);
        let _ = writeln!(
            svg,
            r##"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"##,
            WIDTH - RIGHT,
            LEFT - 6.0,
            y + 4.0,
            label(tick)
        );
    }
    for tick in &x_ticks {
        let px = x(*tick);
        let _ = writeln!(
            svg,
            r##"<line x1="{px:.1}" y1="{TOP}" x2="{px:.1}" y2="{:.1}" stroke="#eee"/><text x="{px:.1}" y="{:.1}" text-anchor="middle">{}</text>"##,
            HEIGHT - BOTTOM,
            HEIGHT - BOTTOM + 18.0,
            label(*tick)
        );
    }
    let _ = writeln!(
        svg,
        r##"<line x1="{LEFT}" y1="{bottom}" x2="{right}" y2="{bottom}" stroke="black"/>
<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{bottom}" stroke="black"/>
<text x="{cx:.1}" y="{xl:.1}" text-anchor="middle">achieved throughput (successful responses per second)</text>
<text x="20" y="{cy:.1}" text-anchor="middle" transform="rotate(-90 20 {cy:.1})">latency (ms{scale})</text>"##,
        bottom = HEIGHT - BOTTOM,
        right = WIDTH - RIGHT,
        cx = (LEFT + WIDTH - RIGHT) / 2.0,
        xl = HEIGHT - 25.0,
        cy = (TOP + HEIGHT - BOTTOM) / 2.0,
        scale = if axis.log { ", log scale" } else { "" }
    );

    // Marks.
    if let Some(limit) = marks.limit_ms {
        let y = axis.position(limit);
        let _ = writeln!(
            svg,
            r##"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#c00" stroke-dasharray="6 4"/><text x="{:.1}" y="{:.1}" fill="#c00">objective {} ms</text>"##,
            WIDTH - RIGHT,
            WIDTH - RIGHT + 6.0,
            y + 4.0,
            label(limit)
        );
    }
    if let Some(capacity) = marks.capacity_rps {
        let px = x(capacity);
        let _ = writeln!(
            svg,
            r##"<line x1="{px:.1}" y1="{TOP}" x2="{px:.1}" y2="{:.1}" stroke="#080" stroke-dasharray="4 4"/><text x="{px:.1}" y="{:.1}" fill="#080" text-anchor="middle">capacity {}/s</text>"##,
            HEIGHT - BOTTOM,
            TOP - 6.0,
            label(capacity)
        );
    }

    // One polyline and its points per percentile, with a legend entry.
    type Series = (&'static str, &'static str, fn(&StepRecord) -> f64);
    let series: [Series; 3] = [
        ("p50", "#1f77b4", |s| s.p50_ms),
        ("p95", "#ff7f0e", |s| s.p95_ms),
        ("p99", "#d62728", |s| s.p99_ms),
    ];
    for (index, (name, colour, value)) in series.iter().enumerate() {
        let coordinates: Vec<String> = points
            .iter()
            .map(|s| format!("{:.1},{:.1}", x(s.achieved_rps), axis.position(value(s))))
            .collect();
        let _ = writeln!(
            svg,
            r#"<polyline fill="none" stroke="{colour}" stroke-width="2" points="{}"/>"#,
            coordinates.join(" ")
        );
        for point in &coordinates {
            let (px, py) = point.split_once(',').unwrap_or(("0", "0"));
            let _ = writeln!(
                svg,
                r#"<circle cx="{px}" cy="{py}" r="3" fill="{colour}"/>"#
            );
        }
        let legend_y = TOP + 20.0 + index as f64 * 20.0;
        let legend_x = WIDTH - RIGHT + 20.0;
        let _ = writeln!(
            svg,
            r#"<line x1="{legend_x}" y1="{legend_y}" x2="{}" y2="{legend_y}" stroke="{colour}" stroke-width="2"/><text x="{}" y="{}">{name}</text>"#,
            legend_x + 24.0,
            legend_x + 30.0,
            legend_y + 4.0
        );
    }
    svg.push_str("</svg>\n");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linear_ticks_are_round() {
        assert_eq!(nice_ticks(0.0, 10.0), vec![0.0, 2.0, 4.0, 6.0, 8.0, 10.0]);
        assert_eq!(
            nice_ticks(0.0, 450.0),
            vec![0.0, 100.0, 200.0, 300.0, 400.0]
        );
    }

    #[test]
    fn log_axis_positions() {
        let axis = Axis {
            low: 1.0,
            high: 1000.0,
            log: true,
        };
        assert_eq!(axis.position(1.0), HEIGHT - BOTTOM);
        assert_eq!(axis.position(1000.0), TOP);
        let middle = axis.position(31.622_776_601_683_8);
        assert!((middle - (TOP + HEIGHT - BOTTOM) / 2.0).abs() < 1e-6);
        assert_eq!(axis.ticks()[..4], [1.0, 2.0, 5.0, 10.0]);
    }

    #[test]
    fn escapes_title() {
        assert_eq!(escape("a<b & \"c\""), "a&lt;b &amp; &quot;c&quot;");
    }
}
