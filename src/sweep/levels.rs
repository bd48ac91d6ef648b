//! The load levels a sweep climbs: a list, or a linear or geometric progression, of open-loop
//! rates or closed-loop concurrencies.

use std::str::FromStr;

/// Most levels one progression may produce, so a tiny step cannot plan an endless sweep.
pub const MAX_LEVELS: usize = 200;

/// Increment between consecutive levels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Step {
    /// Multiply by this factor (`x1.5`).
    Factor(f64),
    /// Add this amount (`+100/s` for rates, `+4` for concurrency).
    Add(f64),
}

impl FromStr for Step {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let trimmed = text.trim();
        if let Some(factor) = trimmed.strip_prefix(['x', '*']) {
            let value: f64 = factor.trim().parse().map_err(|_| {
                format!("invalid step `{text}`: `{factor}` is not a number; write e.g. x1.5")
            })?;
            if !value.is_finite() || value <= 1.0 {
                return Err(format!(
                    "invalid step `{text}`: a factor must be above 1, e.g. x1.5"
                ));
            }
            return Ok(Step::Factor(value));
        }
        if let Some(amount) = trimmed.strip_prefix('+') {
            let amount = amount.trim();
            let value = match amount.parse::<crate::scenario::units::Rate>() {
                Ok(rate) => rate.per_second(),
                Err(_) => {
                    return Err(format!(
                        "invalid step `{text}`: write an increment such as +100/s (rates) or \
                         +4 (concurrency)"
                    ))
                }
            };
            return Ok(Step::Add(value));
        }
        Err(format!(
            "invalid step `{text}`: write a factor such as x1.5 or an increment such as +100/s"
        ))
    }
}

/// Levels from `from` up to `to` (inclusive, when the progression lands on it; `to` is added
/// as the last level otherwise).
pub fn progression(from: f64, to: f64, step: Step) -> Result<Vec<f64>, String> {
    if to < from {
        return Err(format!(
            "--to ({to}) is below --from ({from}); give an increasing range"
        ));
    }
    let mut levels = vec![from];
    let mut level = from;
    loop {
        level = match step {
            Step::Factor(factor) => level * factor,
            Step::Add(amount) => level + amount,
        };
        // Within a millionth of `to` counts as reaching it, so rounding cannot add a near-copy.
        if level >= to * (1.0 - 1e-6) {
            break;
        }
        levels.push(level);
        if levels.len() >= MAX_LEVELS {
            return Err(format!(
                "the progression from {from} to {to} has more than {MAX_LEVELS} levels; use a \
                 larger step"
            ));
        }
    }
    if to > from {
        levels.push(to);
    }
    Ok(levels)
}

/// Parses a comma-separated list of levels with `parse_one`, and checks that it increases.
pub fn parse_list(
    text: &str,
    parse_one: impl Fn(&str) -> Result<f64, String>,
) -> Result<Vec<f64>, String> {
    let levels: Vec<f64> = text
        .split(',')
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .map(parse_one)
        .collect::<Result<_, _>>()?;
    if levels.is_empty() {
        return Err(format!("`{text}` lists no levels; write e.g. 100,200,400"));
    }
    if levels.windows(2).any(|w| w[1] <= w[0]) {
        return Err(format!(
            "`{text}` is not increasing; list levels from lowest to highest"
        ));
    }
    if levels.len() > MAX_LEVELS {
        return Err(format!("`{text}` lists more than {MAX_LEVELS} levels"));
    }
    Ok(levels)
}

/// Concurrency levels: `1,2,4,8` or a progression `FROM..TO:xF` / `FROM..TO:+N`.
pub fn parse_concurrency_levels(text: &str) -> Result<Vec<u32>, String> {
    let levels = if let Some((range, step)) = text.split_once(':') {
        let (from, to) = range.split_once("..").ok_or_else(|| {
            format!("invalid levels `{text}`: write FROM..TO:STEP, e.g. 1..64:x2")
        })?;
        let bound = |part: &str| {
            part.trim()
                .parse::<u32>()
                .map_err(|_| format!("invalid levels `{text}`: `{part}` is not a whole number"))
        };
        let step: Step = step.parse()?;
        progression(bound(from)? as f64, bound(to)? as f64, step)?
    } else {
        parse_list(text, |part| {
            part.parse::<u32>()
                .map(f64::from)
                .map_err(|_| format!("invalid concurrency `{part}`: use a whole number"))
        })?
    };
    let mut whole: Vec<u32> = levels.iter().map(|l| l.round() as u32).collect();
    whole.dedup();
    if whole.first() == Some(&0) {
        return Err(format!("invalid levels `{text}`: concurrency starts at 1"));
    }
    Ok(whole)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn geometric_and_linear() {
        let levels = progression(50.0, 200.0, "x2".parse().unwrap()).unwrap();
        assert_eq!(levels, vec![50.0, 100.0, 200.0]);
        let levels = progression(50.0, 300.0, "x2".parse().unwrap()).unwrap();
        assert_eq!(levels, vec![50.0, 100.0, 200.0, 300.0]);
        let levels = progression(100.0, 400.0, "+100/s".parse().unwrap()).unwrap();
        assert_eq!(levels, vec![100.0, 200.0, 300.0, 400.0]);
        assert!(progression(100.0, 50.0, Step::Add(1.0)).is_err());
        assert!(progression(1.0, 1e9, Step::Add(1.0)).is_err());
    }

    #[test]
    fn step_errors() {
        for bad in ["x1", "x0.5", "1.5", "+fast"] {
            assert!(bad.parse::<Step>().is_err(), "{bad}");
        }
        assert_eq!("x1.5".parse::<Step>().unwrap(), Step::Factor(1.5));
        assert_eq!("+4".parse::<Step>().unwrap(), Step::Add(4.0));
    }

    #[test]
    fn concurrency_forms() {
        assert_eq!(parse_concurrency_levels("1,2,4").unwrap(), vec![1, 2, 4]);
        assert_eq!(
            parse_concurrency_levels("1..16:x2").unwrap(),
            vec![1, 2, 4, 8, 16]
        );
        assert_eq!(
            parse_concurrency_levels("4..12:+4").unwrap(),
            vec![4, 8, 12]
        );
        assert!(parse_concurrency_levels("4,2").is_err());
        assert!(parse_concurrency_levels("0,2").is_err());
        assert!(parse_concurrency_levels("1..8").is_err());
    }
}
