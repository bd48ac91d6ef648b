//! Arrival processes: when each open-loop request is due, as an offset from the run's start.
//!
//! Offsets are absolute (`n / rate` for a constant rate), never "previous send plus a gap", so a
//! late release does not push later requests back and the achieved rate converges to the target.

pub mod piecewise;

use std::time::Duration;

use rand::rngs::StdRng;
use rand::SeedableRng;
use rand_distr::{Distribution, Exp};

pub use piecewise::{Piecewise, Segment};

use crate::scenario::plan::LoadPlan;
use crate::scenario::stages::StageLoad;
use crate::scenario::{Arrival, LoadMode};

/// A source of intended send offsets, in non-decreasing order.
pub trait Schedule: Send {
    /// Returns the next request's offset from the run's start, or `None` when the schedule ends.
    fn next_offset(&mut self) -> Option<Duration>;

    /// Returns the target rate in requests per second at `offset`, for reports.
    fn rate_at(&self, offset: Duration) -> f64;
}

/// Requests at a constant rate: request `n` is due at `n / rate`.
pub struct Constant {
    rate: f64,
    next: u64,
    end: Duration,
}

impl Constant {
    pub fn new(rate: f64, end: Duration) -> Constant {
        Constant { rate, next: 0, end }
    }
}

impl Schedule for Constant {
    fn next_offset(&mut self) -> Option<Duration> {
        // An offset too large for a Duration is past any end.
        let offset = Duration::try_from_secs_f64(self.next as f64 / self.rate).ok()?;
        if offset >= self.end {
            return None;
        }
        self.next += 1;
        Some(offset)
    }

    fn rate_at(&self, _offset: Duration) -> f64 {
        self.rate
    }
}

/// A Poisson process: exponential gaps with mean `1 / rate`, from a seeded generator so that a
/// run's schedule is reproducible.
pub struct Poisson {
    rate: f64,
    elapsed: f64,
    end: Duration,
    gaps: Exp<f64>,
    rng: StdRng,
}

impl Poisson {
    pub fn new(rate: f64, seed: u64, end: Duration) -> Poisson {
        Poisson {
            rate,
            elapsed: 0.0,
            end,
            gaps: Exp::new(rate).expect("rate was checked to be positive"),
            rng: StdRng::seed_from_u64(seed),
        }
    }
}

impl Schedule for Poisson {
    fn next_offset(&mut self) -> Option<Duration> {
        let offset = Duration::try_from_secs_f64(self.elapsed).ok()?;
        if offset >= self.end {
            return None;
        }
        self.elapsed += self.gaps.sample(&mut self.rng);
        Some(offset)
    }

    fn rate_at(&self, _offset: Duration) -> f64 {
        self.rate
    }
}

/// Builds the schedule of an open-loop load mode; `None` for closed loop.
pub fn for_mode(mode: LoadMode, end: Duration) -> Option<Box<dyn Schedule>> {
    match mode {
        LoadMode::Open {
            rate,
            arrival: Arrival::Constant,
        } => Some(Box::new(Constant::new(rate, end))),
        LoadMode::Open {
            rate,
            arrival: Arrival::Poisson { seed },
        } => Some(Box::new(Poisson::new(rate, seed, end))),
        LoadMode::Closed { .. } => None,
    }
}

/// Builds the schedule of a whole open-loop load, warm-up included; `None` for closed loop.
/// A staged load gets a [`Piecewise`] schedule whose warm-up holds the first stage's starting
/// rate.
pub fn for_load(load: &LoadPlan) -> Option<Box<dyn Schedule>> {
    let Some(first) = load.stages.first() else {
        return for_mode(load.mode, load.warmup + load.duration);
    };
    let LoadMode::Open { arrival, .. } = load.mode else {
        return None;
    };
    let StageLoad::Rate {
        from: warmup_rate, ..
    } = first.load
    else {
        return None;
    };
    let mut segments = vec![Segment {
        from: warmup_rate,
        to: warmup_rate,
        duration: load.warmup,
    }];
    for stage in &load.stages {
        if let StageLoad::Rate { from, to } = stage.load {
            segments.push(Segment {
                from,
                to,
                duration: stage.duration,
            });
        }
    }
    Some(match arrival {
        Arrival::Constant => Box::new(Piecewise::even(&segments)),
        Arrival::Poisson { seed } => Box::new(Piecewise::poisson(&segments, seed)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(schedule: &mut dyn Schedule) -> Vec<Duration> {
        std::iter::from_fn(|| schedule.next_offset()).collect()
    }

    #[test]
    fn constant_count_and_spacing() {
        let offsets = drain(&mut Constant::new(250.0, Duration::from_secs(2)));
        assert_eq!(offsets.len(), 500);
        assert_eq!(offsets[0], Duration::ZERO);
        assert_eq!(offsets[1], Duration::from_millis(4));
        assert_eq!(offsets[499], Duration::from_millis(1996));
    }

    #[test]
    fn tiny_rates_end_without_panic() {
        let constant = drain(&mut Constant::new(1e-300, Duration::from_secs(2)));
        assert_eq!(constant, vec![Duration::ZERO]);
        let poisson = drain(&mut Poisson::new(1e-300, 1, Duration::from_secs(2)));
        assert_eq!(poisson, vec![Duration::ZERO]);
    }

    #[test]
    fn constant_per_minute_rate() {
        let offsets = drain(&mut Constant::new(1000.0 / 60.0, Duration::from_secs(60)));
        assert_eq!(offsets.len(), 1000);
    }

    #[test]
    fn poisson_is_seeded_and_near_rate() {
        let a = drain(&mut Poisson::new(1000.0, 7, Duration::from_secs(20)));
        let b = drain(&mut Poisson::new(1000.0, 7, Duration::from_secs(20)));
        assert_eq!(a, b);
        // 20,000 expected arrivals: the count of a Poisson process has standard deviation
        // sqrt(20,000) ~ 141, so 5 standard deviations is +-707.
        assert!(
            (a.len() as i64 - 20_000).abs() < 707,
            "{} arrivals",
            a.len()
        );
        assert!(a.windows(2).all(|w| w[0] <= w[1]));
        let c = drain(&mut Poisson::new(1000.0, 8, Duration::from_secs(1)));
        assert_ne!(a[..c.len().min(a.len())], c[..]);
    }
}
