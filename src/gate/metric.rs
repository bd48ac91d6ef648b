//! Gate metrics: the left-hand side of a gate such as `p99`, `service.p95`, `error_rate`,
//! `route:baseline-predictor_1.p99`, `hop:ingress.p95` or `split.p_value`, resolved to a key path
//! in `summary.json` (or a ratio of two keys) and the unit its threshold is written in.

use serde_json::Value;

/// How a threshold is written and how the value is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// A duration such as `50ms`, `1s` or `250us`; stored in milliseconds like the summary.
    Milliseconds,
    /// A fraction such as `0.001` or `0.1%`.
    Ratio,
    /// A plain number of requests or connections.
    Count,
    /// Requests per second, written `250` or `250/s`.
    PerSecond,
}

impl Unit {
    pub fn name(self) -> &'static str {
        match self {
            Unit::Milliseconds => "ms",
            Unit::Ratio => "ratio",
            Unit::Count => "count",
            Unit::PerSecond => "req/s",
        }
    }
}

/// Where a metric's value comes from in the summary.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// A number at this key path. `when_missing` is the value of an absent key (error counts by
    /// kind are only present when non-zero); `None` makes an absent key a failed gate.
    Path {
        keys: Vec<String>,
        when_missing: Option<f64>,
    },
    /// `numerator / (sum of denominator keys)`.
    Ratio {
        numerator: Vec<String>,
        denominator: Vec<Vec<String>>,
    },
}

/// A resolved gate metric.
#[derive(Debug, Clone, PartialEq)]
pub struct Metric {
    /// The metric as the user wrote it, without surrounding spaces.
    pub text: String,
    /// The summary key (dotted) or formula the value comes from, for reports.
    pub describe: String,
    pub source: Source,
    pub unit: Unit,
    /// True when the metric only exists for open-loop runs (it needs a target rate).
    pub open_loop_only: bool,
}

/// Statistics of a `Percentiles` object in the summary.
const STATS: [&str; 9] = [
    "mean", "min", "p50", "p90", "p95", "p99", "p999", "max", "count",
];

/// Keys of `summary.json` that hold a `Percentiles` object, with their short names in gates.
const TIMINGS: [(&str, &str); 4] = [
    ("latency", "latency_ms"),
    ("service", "service_time_ms"),
    ("schedule_lag", "schedule_lag_ms"),
    ("connect", "connect_ms"),
];

fn keys(parts: &[&str]) -> Vec<String> {
    parts.iter().map(|p| p.to_string()).collect()
}

/// Maps a statistic name to its summary key: `p99.9` is the summary's `p999`.
fn stat_key(stat: &str) -> Result<&'static str, String> {
    let normalised = match stat {
        "p99.9" => "p999",
        "median" => "p50",
        other => other,
    };
    STATS
        .iter()
        .find(|s| **s == normalised)
        .copied()
        .ok_or_else(|| {
            format!(
                "`{stat}` is not a statistic the summary records; use one of mean, min, p50, p90, \
                 p95, p99, p99.9 (or p999), max, count"
            )
        })
}

fn timing_metric(text: &str, keys: Vec<String>, stat: &str) -> Result<Metric, String> {
    let stat = stat_key(stat)?;
    let mut path = keys;
    path.push(stat.to_string());
    Ok(Metric {
        text: text.to_string(),
        describe: path.join("."),
        source: Source::Path {
            keys: path,
            when_missing: None,
        },
        unit: if stat == "count" {
            Unit::Count
        } else {
            Unit::Milliseconds
        },
        open_loop_only: false,
    })
}

/// Splits `name.rest` from the right into a scope and a statistic, with an optional `latency` or
/// `service` between them: `a.b.service.p99` -> (`a.b`, Some("service"), `p99`). A route label may
/// itself contain dots, so only the last one or two segments are taken.
fn split_scoped(body: &str) -> Option<(&str, Option<&str>, &str)> {
    let (rest, stat) = body.rsplit_once('.')?;
    // `p99.9` splits as (`...p99`, `9`): join it back.
    let (rest, stat) = if stat.chars().all(|c| c.is_ascii_digit()) {
        let (before, _) = rest.rsplit_once('.')?;
        (before, &body[before.len() + 1..])
    } else {
        (rest, stat)
    };
    for timing in ["latency", "service", "service_time"] {
        if let Some(scope) = rest.strip_suffix(timing).and_then(|s| s.strip_suffix('.')) {
            if !scope.is_empty() {
                return Some((scope, Some(timing), stat));
            }
        }
    }
    Some((rest, None, stat))
}

impl Metric {
    /// Resolves the left-hand side of a gate.
    pub fn parse(text: &str) -> Result<Metric, String> {
        let text = text.trim();
        if text.is_empty() {
            return Err("the metric is missing; write e.g. p99<50ms".into());
        }

        if let Some(body) = text.strip_prefix("route:") {
            return Self::route(text, body);
        }
        if let Some(body) = text.strip_prefix("hop:") {
            return Self::hop(text, body);
        }

        let derived = |describe: &str, source: Source, unit: Unit, open_loop_only: bool| Metric {
            text: text.to_string(),
            describe: describe.to_string(),
            source,
            unit,
            open_loop_only,
        };
        match text {
            "error_rate" => {
                return Ok(derived(
                    "requests.errors / (requests.ok + requests.errors)",
                    Source::Ratio {
                        numerator: keys(&["requests", "errors"]),
                        denominator: vec![keys(&["requests", "ok"]), keys(&["requests", "errors"])],
                    },
                    Unit::Ratio,
                    false,
                ))
            }
            "drop_rate" => {
                return Ok(derived(
                    "requests.dropped / (requests.sent + requests.dropped)",
                    Source::Ratio {
                        numerator: keys(&["requests", "dropped"]),
                        denominator: vec![
                            keys(&["requests", "sent"]),
                            keys(&["requests", "dropped"]),
                        ],
                    },
                    Unit::Ratio,
                    true,
                ))
            }
            "achieved" => {
                return Ok(derived(
                    "load.achieved_rps / load.target_rps",
                    Source::Ratio {
                        numerator: keys(&["load", "achieved_rps"]),
                        denominator: vec![keys(&["load", "target_rps"])],
                    },
                    Unit::Ratio,
                    true,
                ))
            }
            "achieved_rps" | "success_rate" => {
                let unit = if text == "achieved_rps" {
                    Unit::PerSecond
                } else {
                    Unit::Ratio
                };
                let section = if text == "achieved_rps" {
                    "load"
                } else {
                    "requests"
                };
                return Ok(Self::path(text, keys(&[section, text]), unit));
            }
            _ => {}
        }

        if let Some(stat) = text.strip_prefix("split.") {
            let unit = if stat == "p_value" || stat.ends_with("share") {
                Unit::Ratio
            } else {
                Unit::Count
            };
            return Ok(Self::path(text, keys(&["split_test", stat]), unit));
        }

        // `p99` alone is the latency; `service.p99`, `latency.p99`, `schedule_lag.p99`.
        let percentile_like =
            text.starts_with('p') && text[1..].starts_with(|c: char| c.is_ascii_digit());
        if STATS.contains(&text) || text == "median" || percentile_like {
            return timing_metric(text, keys(&["latency_ms"]), text);
        }
        for (short, key) in TIMINGS {
            for prefix in [
                short,
                key,
                if short == "service" {
                    "service_time"
                } else {
                    short
                },
            ] {
                if let Some(stat) = text.strip_prefix(prefix).and_then(|s| s.strip_prefix('.')) {
                    let mut metric = timing_metric(text, keys(&[key]), stat)?;
                    metric.open_loop_only = short == "schedule_lag";
                    return Ok(metric);
                }
            }
        }

        // Any other number in the summary by its dotted key, e.g. `requests.dropped`.
        let parts: Vec<&str> = text.split('.').collect();
        match parts[0] {
            "requests" | "load" | "connections_opened" | "reconnects"
                if parts.iter().all(|p| !p.is_empty()) =>
            {
                let last = parts[parts.len() - 1];
                let unit = if last.ends_with("_rps") {
                    Unit::PerSecond
                } else if last.ends_with("_rate") {
                    Unit::Ratio
                } else {
                    Unit::Count
                };
                Ok(Self::path(text, keys(&parts), unit))
            }
            "errors"
                if parts.len() == 3
                    && ["by_kind", "status_codes", "grpc_status_codes"].contains(&parts[1]) =>
            {
                Ok(Metric {
                    text: text.to_string(),
                    describe: text.to_string(),
                    source: Source::Path {
                        keys: keys(&parts),
                        when_missing: Some(0.0),
                    },
                    unit: Unit::Count,
                    open_loop_only: false,
                })
            }
            _ => Err(format!(
                "`{text}` is not a known metric; use a statistic (p50, p90, p95, p99, p99.9, mean, \
                 max) alone or after latency., service., route:LABEL. or hop:NAME., or one of \
                 error_rate, drop_rate, achieved, achieved_rps, success_rate, split.p_value, \
                 requests.KEY, reconnects, errors.by_kind.KIND, \
                 errors.grpc_status_codes.STATUS"
            )),
        }
    }

    fn path(text: &str, keys: Vec<String>, unit: Unit) -> Metric {
        Metric {
            text: text.to_string(),
            describe: keys.join("."),
            source: Source::Path {
                keys,
                when_missing: None,
            },
            unit,
            open_loop_only: false,
        }
    }

    fn route(text: &str, body: &str) -> Result<Metric, String> {
        let Some((label, timing, stat)) =
            split_scoped(body).filter(|(label, _, _)| !label.is_empty())
        else {
            return Err(format!(
                "`{text}` names no statistic; write route:LABEL.p99 or route:LABEL.share"
            ));
        };
        if timing.is_none() && ["share", "count", "errors"].contains(&stat) {
            let unit = if stat == "share" {
                Unit::Ratio
            } else {
                Unit::Count
            };
            return Ok(Self::path(text, keys(&["routes", label, stat]), unit));
        }
        let key = match timing {
            Some("service") | Some("service_time") => "service_time_ms",
            _ => "latency_ms",
        };
        timing_metric(text, keys(&["routes", label, key]), stat)
    }

    fn hop(text: &str, body: &str) -> Result<Metric, String> {
        let Some((name, timing, stat)) = split_scoped(body).filter(|(name, _, _)| !name.is_empty())
        else {
            return Err(format!("`{text}` names no statistic; write hop:NAME.p95"));
        };
        if matches!(timing, Some("service") | Some("service_time")) {
            return Err(format!(
                "`{text}`: hops record one time each; write hop:{name}.{stat}"
            ));
        }
        timing_metric(text, keys(&["hops", name, "latency_ms"]), stat)
    }

    /// Reads the metric's value from a serialized summary, or says which key is missing.
    pub fn value(&self, summary: &Value) -> Result<f64, String> {
        match &self.source {
            Source::Path { keys, when_missing } => {
                // A statistic of an empty histogram is 0 in the summary, which would pass any
                // `<` gate: treat it as missing.
                if keys.len() >= 2 && keys[keys.len() - 2].ends_with("_ms") {
                    let parent = lookup(summary, &keys[..keys.len() - 1]);
                    let count = parent.and_then(|p| p.get("count")).and_then(Value::as_u64);
                    if count == Some(0) && keys[keys.len() - 1] != "count" {
                        return Err(format!(
                            "`{}` has no samples in this run",
                            keys[..keys.len() - 1].join(".")
                        ));
                    }
                }
                match lookup(summary, keys).and_then(Value::as_f64) {
                    Some(value) => Ok(value),
                    None => when_missing.ok_or_else(|| missing(summary, keys)),
                }
            }
            Source::Ratio {
                numerator,
                denominator,
            } => {
                let number = |k: &[String]| {
                    lookup(summary, k)
                        .and_then(Value::as_f64)
                        .ok_or_else(|| missing(summary, k))
                };
                let top = number(numerator)?;
                let mut bottom = 0.0;
                for k in denominator {
                    bottom += number(k)?;
                }
                if bottom > 0.0 {
                    Ok(top / bottom)
                } else {
                    Err(format!(
                        "`{}` is undefined because its denominator is 0 in this run",
                        self.describe
                    ))
                }
            }
        }
    }
}

fn lookup<'a>(summary: &'a Value, keys: &[String]) -> Option<&'a Value> {
    let mut value = summary;
    for key in keys {
        value = value.get(key)?;
    }
    Some(value).filter(|v| !v.is_null())
}

/// Names the first missing key of `keys`, with the keys that do exist at that level.
fn missing(summary: &Value, keys: &[String]) -> String {
    let mut value = summary;
    for (depth, key) in keys.iter().enumerate() {
        match value.get(key).filter(|v| !v.is_null()) {
            Some(next) => value = next,
            None => {
                let known: Vec<&str> = value
                    .as_object()
                    .map(|o| o.keys().map(String::as_str).collect())
                    .unwrap_or_default();
                let shown = if known.is_empty() {
                    String::from("none")
                } else {
                    known.join(", ")
                };
                return format!(
                    "the summary has no `{}` in this run (keys there: {shown})",
                    keys[..=depth].join(".")
                );
            }
        }
    }
    format!("`{}` is not a number in the summary", keys.join("."))
}
