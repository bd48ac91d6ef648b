//! Load stages: an ordered list of phases, each holding a rate, ramping linearly between two
//! rates, or holding a closed-loop concurrency, for its own duration.
//!
//! The warm-up (when set) comes before the first stage and runs at that stage's starting rate or
//! concurrency. A run's stages are all open loop or all closed loop.

use std::time::Duration;

use serde::Deserialize;

use super::units::{HumanDuration, Rate};
use super::ScenarioError;

/// One `[[load.stages]]` table as written in the scenario.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageSection {
    /// Label shown in progress lines and interval data; defaults to `stage-N` (from 1).
    pub name: Option<String>,
    /// Rate held for the whole stage.
    pub rate: Option<Rate>,
    /// Start of a linear ramp; needs `to`.
    pub from: Option<Rate>,
    /// End of a linear ramp; needs `from`.
    pub to: Option<Rate>,
    /// Closed loop: requests always in flight during the stage.
    pub concurrency: Option<u32>,
    pub duration: Option<HumanDuration>,
}

/// The load of one stage.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum StageLoad {
    /// Open loop: the rate goes linearly from `from` to `to` requests per second.
    Rate { from: f64, to: f64 },
    /// Closed loop at this concurrency.
    Concurrency(u32),
}

/// A checked stage.
#[derive(Debug, Clone, PartialEq)]
pub struct StagePlan {
    pub name: String,
    pub load: StageLoad,
    pub duration: Duration,
}

/// Checks the `[[load.stages]]` tables; an empty list stays empty.
pub fn build_stages(
    sections: &[StageSection],
    invalid: &dyn Fn(&str, String) -> ScenarioError,
) -> Result<Vec<StagePlan>, ScenarioError> {
    let mut stages = Vec::with_capacity(sections.len());
    for (index, section) in sections.iter().enumerate() {
        let key = |field: &str| format!("load.stages[{index}].{field}");
        let load = match (section.rate, section.from, section.to, section.concurrency) {
            (Some(rate), None, None, None) => StageLoad::Rate {
                from: rate.per_second(),
                to: rate.per_second(),
            },
            (None, Some(from), Some(to), None) => StageLoad::Rate {
                from: from.per_second(),
                to: to.per_second(),
            },
            (None, None, None, Some(0)) => {
                return Err(invalid(&key("concurrency"), "= 0; use 1 or more".into()))
            }
            (None, None, None, Some(concurrency)) if concurrency > super::plan::MAX_SENDERS => {
                return Err(invalid(
                    &key("concurrency"),
                    format!(
                        "= {concurrency} is above the limit of {}; use at most that many",
                        super::plan::MAX_SENDERS
                    ),
                ))
            }
            (None, None, None, Some(concurrency)) => StageLoad::Concurrency(concurrency),
            (None, Some(_), None, None) | (None, None, Some(_), None) => {
                return Err(invalid(
                    &key("from"),
                    "and `to` go together: a ramp needs both, e.g. from = \"100/s\", \
                     to = \"400/s\""
                        .into(),
                ))
            }
            (None, None, None, None) => {
                return Err(invalid(
                    &key("rate"),
                    "is missing; give a stage rate = \"100/s\", a ramp from/to, or a \
                     concurrency"
                        .into(),
                ))
            }
            _ => {
                return Err(invalid(
                    &key("rate"),
                    "is combined with another load key; give exactly one of rate, from/to or \
                     concurrency per stage"
                        .into(),
                ))
            }
        };
        let duration = match section.duration {
            Some(duration) if !duration.0.is_zero() => duration.0,
            Some(_) => {
                return Err(invalid(
                    &key("duration"),
                    "= 0; use a positive duration such as 30s".into(),
                ))
            }
            None => {
                return Err(invalid(
                    &key("duration"),
                    "is missing; every stage needs a duration such as 30s".into(),
                ))
            }
        };
        let name = section
            .name
            .clone()
            .unwrap_or_else(|| format!("stage-{}", index + 1));
        stages.push(StagePlan {
            name,
            load,
            duration,
        });
    }

    let closed = stages
        .iter()
        .filter(|s| matches!(s.load, StageLoad::Concurrency(_)))
        .count();
    if closed != 0 && closed != stages.len() {
        // NOTE: a run is either open or closed loop, so open-loop and closed-loop stages cannot
        // be mixed in one scenario.
        return Err(invalid(
            "load.stages",
            "mixes rate and concurrency stages; use only rate stages (open loop) or only \
             concurrency stages (closed loop) in one scenario"
                .into(),
        ));
    }
    Ok(stages)
}

/// Index of the stage running at `offset` from the load's start (the warm-up comes first), or
/// `None` during the warm-up and after the last stage.
pub fn stage_at(stages: &[StagePlan], warmup: Duration, offset: Duration) -> Option<usize> {
    let mut start = warmup;
    if offset < start {
        return None;
    }
    for (index, stage) in stages.iter().enumerate() {
        let end = start + stage.duration;
        if offset < end {
            return Some(index);
        }
        start = end;
    }
    None
}

/// Closed-loop concurrency at `offset` from the load's start: the first stage's during the
/// warm-up, 0 after the last stage.
pub fn concurrency_at(stages: &[StagePlan], warmup: Duration, offset: Duration) -> u32 {
    let level = |stage: &StagePlan| match stage.load {
        StageLoad::Concurrency(n) => n,
        StageLoad::Rate { .. } => 0,
    };
    if offset < warmup {
        return stages.first().map_or(0, level);
    }
    stage_at(stages, warmup, offset).map_or(0, |i| level(&stages[i]))
}

/// Offset where the next stage after the one at `offset` starts, or `None` after the last.
pub fn next_stage_start(
    stages: &[StagePlan],
    warmup: Duration,
    offset: Duration,
) -> Option<Duration> {
    let mut start = warmup;
    for stage in stages {
        if offset < start {
            return Some(start);
        }
        start += stage.duration;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invalid(key: &str, message: String) -> ScenarioError {
        ScenarioError::Invalid {
            path: "s.toml".into(),
            key: key.into(),
            message,
        }
    }

    fn parse(text: &str) -> Result<Vec<StagePlan>, String> {
        #[derive(Deserialize)]
        struct Wrapper {
            stages: Vec<StageSection>,
        }
        let wrapper: Wrapper = toml::from_str(text).map_err(|e| e.to_string())?;
        build_stages(&wrapper.stages, &invalid).map_err(|e| e.to_string())
    }

    #[test]
    fn stage_forms() {
        let stages = parse(
            r#"
            [[stages]]
            rate = "100/s"
            duration = "10s"
            [[stages]]
            name = "ramp"
            from = "100/s"
            to = "400/s"
            duration = "20s"
            "#,
        )
        .unwrap();
        assert_eq!(stages.len(), 2);
        assert_eq!(stages[0].name, "stage-1");
        assert_eq!(
            stages[0].load,
            StageLoad::Rate {
                from: 100.0,
                to: 100.0
            }
        );
        assert_eq!(stages[1].name, "ramp");
        assert_eq!(
            stages[1].load,
            StageLoad::Rate {
                from: 100.0,
                to: 400.0
            }
        );
        assert_eq!(stages[1].duration, Duration::from_secs(20));
    }

    #[test]
    fn stage_errors_name_key() {
        let cases = [
            ("[[stages]]\nrate = \"1/s\"\n", "load.stages[0].duration"),
            ("[[stages]]\nfrom = \"1/s\"\nduration = \"1s\"\n", "load.stages[0].from"),
            (
                "[[stages]]\nrate = \"1/s\"\nconcurrency = 2\nduration = \"1s\"\n",
                "load.stages[0].rate",
            ),
            ("[[stages]]\nconcurrency = 0\nduration = \"1s\"\n", "concurrency"),
            (
                "[[stages]]\nconcurrency = 2\nduration = \"1s\"\n[[stages]]\nrate = \"1/s\"\nduration = \"1s\"\n",
                "mixes rate and concurrency",
            ),
        ];
        for (text, expected) in cases {
            let error = parse(text).unwrap_err();
            assert!(error.contains(expected), "{text:?}: {error}");
        }
    }

    #[test]
    fn closed_loop_levels_over_time() {
        let stages = parse(
            "[[stages]]\nconcurrency = 2\nduration = \"2s\"\n\
             [[stages]]\nconcurrency = 8\nduration = \"3s\"\n",
        )
        .unwrap();
        let warmup = Duration::from_secs(1);
        let at = |ms: u64| concurrency_at(&stages, warmup, Duration::from_millis(ms));
        assert_eq!(at(0), 2);
        assert_eq!(at(2_999), 2);
        assert_eq!(at(3_000), 8);
        assert_eq!(at(5_999), 8);
        assert_eq!(at(6_000), 0);
        assert_eq!(stage_at(&stages, warmup, Duration::from_millis(500)), None);
        assert_eq!(
            stage_at(&stages, warmup, Duration::from_millis(1_000)),
            Some(0)
        );
        assert_eq!(
            stage_at(&stages, warmup, Duration::from_millis(4_000)),
            Some(1)
        );
        let next = |ms: u64| next_stage_start(&stages, warmup, Duration::from_millis(ms));
        assert_eq!(next(0), Some(Duration::from_secs(1)));
        assert_eq!(next(1_500), Some(Duration::from_secs(3)));
        assert_eq!(next(3_500), None);
    }
}
