//! A piecewise arrival-rate schedule: segments that hold a rate or ramp it linearly, one after
//! another, on absolute deadlines.
//!
//! The schedule is defined by its cumulative arrival count `Λ(t)`, the integral of the rate from
//! the run's start. Request `n` (counting from 0) is due at the instant where `Λ(t) = n`; within a
//! ramp segment that is the root of a quadratic, solved directly for each request, so rounding
//! never accumulates across gaps. A Poisson variant draws unit-mean exponential gaps in `Λ`
//! and maps each through the same inverse, which gives a non-homogeneous Poisson process.

use std::time::Duration;

use rand::rngs::StdRng;
use rand::SeedableRng;
use rand_distr::{Distribution, Exp1};

use super::Schedule;

/// One segment: the rate goes linearly from `from` to `to` (requests per second) over
/// `duration`. A held rate has `from == to`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Segment {
    pub from: f64,
    pub to: f64,
    pub duration: Duration,
}

/// A segment placed on the run's timeline.
#[derive(Debug, Clone, Copy)]
struct Placed {
    /// Start offset in seconds.
    start: f64,
    /// Length in seconds.
    length: f64,
    from: f64,
    to: f64,
    /// `Λ` at the segment's start.
    count_before: f64,
}

impl Placed {
    /// Arrivals within this segment.
    fn count(&self) -> f64 {
        (self.from + self.to) * self.length / 2.0
    }

    /// Seconds after the segment's start where `Λ` grows by `count` within it: the positive root
    /// of `a s² + b s = count` with `a = (to - from) / 2T`, `b = from`, in the form
    /// `2c / (b + sqrt(b² + 4ac))` that stays exact for a held rate (`a = 0`) and for a falling
    /// ramp (`a < 0`).
    fn seconds_for(&self, count: f64) -> f64 {
        if count <= 0.0 {
            return 0.0;
        }
        let a = (self.to - self.from) / (2.0 * self.length);
        let b = self.from;
        let discriminant = (b * b + 4.0 * a * count).max(0.0);
        let denominator = b + discriminant.sqrt();
        if denominator <= 0.0 {
            return self.length;
        }
        (2.0 * count / denominator).min(self.length)
    }
}

/// Arrival points in `Λ` space: whole numbers for constant spacing, or a Poisson process.
enum Points {
    Even { next: u64 },
    Poisson { position: f64, rng: Box<StdRng> },
}

/// Requests on a piecewise-linear rate, evenly spaced in `Λ` or as a Poisson process.
pub struct Piecewise {
    segments: Vec<Placed>,
    total_count: f64,
    points: Points,
    /// Index of the segment that held the previous arrival; arrivals only move forward.
    cursor: usize,
}

impl Piecewise {
    /// Evenly spaced arrivals: request `n` at `Λ⁻¹(n)`.
    pub fn even(segments: &[Segment]) -> Piecewise {
        Self::with_points(segments, Points::Even { next: 0 })
    }

    /// A non-homogeneous Poisson process with this rate, from a seeded generator.
    pub fn poisson(segments: &[Segment], seed: u64) -> Piecewise {
        Self::with_points(
            segments,
            Points::Poisson {
                position: 0.0,
                rng: Box::new(StdRng::seed_from_u64(seed)),
            },
        )
    }

    fn with_points(segments: &[Segment], points: Points) -> Piecewise {
        let mut placed = Vec::with_capacity(segments.len());
        let mut start = 0.0;
        let mut count_before = 0.0;
        for segment in segments.iter().filter(|s| !s.duration.is_zero()) {
            let entry = Placed {
                start,
                length: segment.duration.as_secs_f64(),
                from: segment.from,
                to: segment.to,
                count_before,
            };
            start += entry.length;
            count_before += entry.count();
            placed.push(entry);
        }
        Piecewise {
            segments: placed,
            total_count: count_before,
            points,
            cursor: 0,
        }
    }

    /// Total expected arrivals, `Λ` at the schedule's end.
    pub fn total_count(&self) -> f64 {
        self.total_count
    }

    /// Returns the offset in seconds where `Λ` reaches `count`, searching from the cursor.
    fn seconds_at_count(&mut self, count: f64) -> Option<f64> {
        while let Some(segment) = self.segments.get(self.cursor) {
            let end_count = segment.count_before + segment.count();
            if count < end_count {
                return Some(segment.start + segment.seconds_for(count - segment.count_before));
            }
            self.cursor += 1;
        }
        None
    }
}

impl Schedule for Piecewise {
    fn next_offset(&mut self) -> Option<Duration> {
        let count = match &mut self.points {
            Points::Even { next } => {
                let count = *next as f64;
                *next += 1;
                count
            }
            Points::Poisson { position, rng } => {
                let count = *position;
                let gap: f64 = Exp1.sample(rng.as_mut());
                *position += gap;
                count
            }
        };
        if count >= self.total_count {
            return None;
        }
        // An offset too large for a Duration is past any end.
        self.seconds_at_count(count)
            .and_then(|seconds| Duration::try_from_secs_f64(seconds).ok())
    }

    fn rate_at(&self, offset: Duration) -> f64 {
        let seconds = offset.as_secs_f64();
        let Some(segment) = self
            .segments
            .iter()
            .find(|s| seconds < s.start + s.length)
            .or(self.segments.last())
        else {
            return 0.0;
        };
        let fraction = ((seconds - segment.start) / segment.length).clamp(0.0, 1.0);
        segment.from + (segment.to - segment.from) * fraction
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(schedule: &mut dyn Schedule) -> Vec<Duration> {
        std::iter::from_fn(|| schedule.next_offset()).collect()
    }

    fn segment(from: f64, to: f64, seconds: u64) -> Segment {
        Segment {
            from,
            to,
            duration: Duration::from_secs(seconds),
        }
    }

    /// `Λ(t)` computed independently by integrating each segment's trapezoid up to `t`.
    fn integral(segments: &[Segment], t: f64) -> f64 {
        let mut start = 0.0;
        let mut total = 0.0;
        for s in segments {
            let length = s.duration.as_secs_f64();
            let within = (t - start).clamp(0.0, length);
            let rate_there = s.from + (s.to - s.from) * within / length;
            total += (s.from + rate_there) * within / 2.0;
            start += length;
        }
        total
    }

    #[test]
    fn held_rate_matches_constant() {
        let mut piecewise = Piecewise::even(&[segment(250.0, 250.0, 2)]);
        let mut constant = super::super::Constant::new(250.0, Duration::from_secs(2));
        assert_eq!(drain(&mut piecewise), drain(&mut constant));
    }

    #[test]
    fn ramp_count_and_instants() {
        // 100/s to 400/s over 10 s: Λ(10) = (100 + 400) / 2 * 10 = 2500 arrivals.
        let segments = [segment(100.0, 400.0, 10)];
        let offsets = drain(&mut Piecewise::even(&segments));
        assert_eq!(offsets.len(), 2500);
        for (n, offset) in offsets.iter().enumerate() {
            let reached = integral(&segments, offset.as_secs_f64());
            // Duration keeps whole nanoseconds; at 400/s a nanosecond moves Λ by 4e-7.
            assert!(
                (reached - n as f64).abs() < 1e-6,
                "arrival {n} at {offset:?}: Λ = {reached}"
            );
        }
        // Closed form: Λ(s) = 100 s + 15 s², so arrival n = 640 is at
        // s = (-100 + sqrt(100² + 4 * 15 * 640)) / 30 = (-100 + 220) / 30 = 4 s exactly.
        assert_eq!(offsets[640], Duration::from_secs(4));
        assert!(offsets.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn falling_ramp_and_stages_chain() {
        // Hold 200/s for 2 s (400), ramp down to 50/s over 4 s (500), hold 50/s for 2 s (100).
        let segments = [
            segment(200.0, 200.0, 2),
            segment(200.0, 50.0, 4),
            segment(50.0, 50.0, 2),
        ];
        let mut schedule = Piecewise::even(&segments);
        assert_eq!(schedule.total_count(), 1000.0);
        let offsets = drain(&mut schedule);
        assert_eq!(offsets.len(), 1000);
        for (n, offset) in offsets.iter().enumerate() {
            let reached = integral(&segments, offset.as_secs_f64());
            assert!(
                (reached - n as f64).abs() < 1e-6,
                "arrival {n} at {offset:?}: Λ = {reached}"
            );
        }
        assert_eq!(offsets[400], Duration::from_secs(2));
        assert_eq!(offsets[900], Duration::from_secs(6));
        let in_window = |from: u64, to: u64| {
            offsets
                .iter()
                .filter(|o| o.as_secs() >= from && o.as_secs() < to)
                .count()
        };
        assert_eq!(in_window(0, 2), 400);
        assert_eq!(in_window(2, 6), 500);
        assert_eq!(in_window(6, 8), 100);
    }

    #[test]
    fn rate_at_interpolates() {
        let schedule = Piecewise::even(&[segment(100.0, 400.0, 10), segment(50.0, 50.0, 5)]);
        assert_eq!(schedule.rate_at(Duration::ZERO), 100.0);
        assert_eq!(schedule.rate_at(Duration::from_secs(5)), 250.0);
        assert_eq!(schedule.rate_at(Duration::from_secs(12)), 50.0);
        assert_eq!(schedule.rate_at(Duration::from_secs(99)), 50.0);
    }

    #[test]
    fn poisson_ramp_is_seeded_and_near_integral() {
        let segments = [segment(1000.0, 3000.0, 10)];
        let a = drain(&mut Piecewise::poisson(&segments, 3));
        let b = drain(&mut Piecewise::poisson(&segments, 3));
        assert_eq!(a, b);
        // Λ(10) = 20,000; a Poisson count has standard deviation sqrt(20,000) ~ 141, so five
        // standard deviations is +-707. The first 5 s expect Λ(5) = 5,000 + 2,500 = 7,500
        // (standard deviation 87, five of them 433).
        assert!(
            (a.len() as i64 - 20_000).abs() < 707,
            "{} arrivals",
            a.len()
        );
        let first_half = a.iter().filter(|o| o.as_secs_f64() < 5.0).count() as i64;
        assert!(
            (first_half - 7_500).abs() < 433,
            "{first_half} in the first 5 s"
        );
        assert!(a.windows(2).all(|w| w[0] <= w[1]));
    }
}
