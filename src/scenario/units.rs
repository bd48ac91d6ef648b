//! Parsers for the value types that scenarios and flags share: rates, durations, byte sizes.
//!
//! Each type implements `FromStr` with a message that names the value and an accepted form, and
//! `Deserialize` through that same parser so TOML errors carry the line of the bad value.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize, Serializer};

/// An arrival rate in requests per second, written `250/s`, `1000/min`, `2/ms` or a bare number
/// (per second).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate(pub f64);

impl Rate {
    pub fn per_second(self) -> f64 {
        self.0
    }
}

impl FromStr for Rate {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let trimmed = text.trim();
        let (number, unit) = match trimmed.split_once('/') {
            Some((n, u)) => (n.trim(), u.trim()),
            None => (trimmed, "s"),
        };
        let seconds_per_unit = match unit {
            "s" | "sec" | "second" => 1.0,
            "m" | "min" | "minute" => 60.0,
            "h" | "hour" => 3600.0,
            "ms" => 0.001,
            _ => {
                return Err(format!(
                    "invalid rate `{text}`: unknown unit `{unit}`; write it as N/s, N/min or N/h, \
                     for example 250/s or 1000/min"
                ))
            }
        };
        let value: f64 = number.parse().map_err(|_| {
            format!(
                "invalid rate `{text}`: `{number}` is not a number; write it as 250/s or 1000/min"
            )
        })?;
        if value.is_infinite() && value > 0.0 {
            return Err(format!(
                "invalid rate `{text}`: `{number}` is too large; use a rate such as 250/s"
            ));
        }
        if !value.is_finite() || value <= 0.0 {
            return Err(format!(
                "invalid rate `{text}`: a rate must be greater than zero, for example 250/s"
            ));
        }
        let per_second = value / seconds_per_unit;
        if per_second < 1.0 / 86_400.0 {
            return Err(format!(
                "invalid rate `{text}`: below one request per day; use a rate such as 1/min"
            ));
        }
        if per_second > 10_000_000.0 {
            return Err(format!(
                "invalid rate `{text}`: above 10,000,000 req/s; use a lower rate or a closed-loop \
                 concurrency for maximum throughput"
            ));
        }
        Ok(Rate(per_second))
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/s", self.0)
    }
}

/// A duration written the humantime way: `10s`, `250ms`, `1m30s`, `2h`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct HumanDuration(pub Duration);

impl FromStr for HumanDuration {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let trimmed = text.trim();
        if trimmed == "0" {
            return Ok(HumanDuration(Duration::ZERO));
        }
        let duration = humantime::parse_duration(trimmed).map_err(|e| {
            format!(
                "invalid duration `{text}`: {e}; write it with a unit, for example 30s, 250ms or 2m"
            )
        })?;
        if duration > HumanDuration::MAX.0 {
            return Err(format!(
                "invalid duration `{text}`: longer than the limit of 365 days; use a shorter \
                 duration"
            ));
        }
        Ok(HumanDuration(duration))
    }
}

impl HumanDuration {
    /// Maximum duration accepted anywhere. Far beyond any run, and short enough that adding a
    /// few of them to the current time cannot overflow the clock.
    pub const MAX: HumanDuration = HumanDuration(Duration::from_secs(365 * 24 * 3600));
}

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", humantime::format_duration(self.0))
    }
}

/// A size in bytes, written `4MiB`, `512KiB`, `1000000` or `16MB`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteSize(pub u64);

impl FromStr for ByteSize {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let trimmed = text.trim();
        let split = trimmed
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(trimmed.len());
        let (number, unit) = trimmed.split_at(split);
        let multiplier: u64 = match unit.trim() {
            "" | "B" => 1,
            "KB" | "kB" => 1000,
            "KiB" => 1024,
            "MB" => 1000 * 1000,
            "MiB" => 1024 * 1024,
            "GB" => 1000 * 1000 * 1000,
            "GiB" => 1024 * 1024 * 1024,
            other => {
                return Err(format!(
                    "invalid size `{text}`: unknown unit `{other}`; use B, KiB, MiB or GiB, for example 4MiB"
                ))
            }
        };
        let value: u64 = number.parse().map_err(|_| {
            format!("invalid size `{text}`: write a whole number with a unit, for example 4MiB")
        })?;
        value
            .checked_mul(multiplier)
            .map(ByteSize)
            .ok_or_else(|| format!("invalid size `{text}`: too large"))
    }
}

/// The shortest time between two wake-ups of the open-loop pacer. Requests due closer together
/// than the gap go out together, late by at most the gap. `auto` (the default) keeps 100 us up
/// to 4,000 req/s, then widens the gap in proportion to the rate, to 500 us at 20,000 req/s.
/// `0` gives every request its own wake-up.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ReleaseGap {
    #[default]
    Auto,
    Fixed(Duration),
}

impl ReleaseGap {
    /// Narrowest gap of `auto`, and the gap it keeps at low rates.
    pub const AUTO_MIN: Duration = Duration::from_micros(100);
    /// Widest gap of `auto`, reached at 20,000 req/s.
    pub const AUTO_MAX: Duration = Duration::from_micros(500);
    /// Widest gap accepted: one beyond the 1 ms lateness threshold would count batching as late.
    pub const MAX: Duration = Duration::from_millis(1);

    /// Returns the gap at an arrival rate of `rate` requests per second.
    pub fn at_rate(self, rate: f64) -> Duration {
        match self {
            ReleaseGap::Fixed(gap) => gap,
            ReleaseGap::Auto => {
                // 25 ns per req/s: 100 us at 4,000 req/s, 500 us at 20,000 req/s.
                let nanos = if rate.is_finite() { rate * 25.0 } else { 0.0 };
                Duration::from_nanos(nanos as u64).clamp(Self::AUTO_MIN, Self::AUTO_MAX)
            }
        }
    }
}

impl FromStr for ReleaseGap {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text.trim() == "auto" {
            return Ok(ReleaseGap::Auto);
        }
        let gap = text.parse::<HumanDuration>().map_err(|_| {
            format!(
                "invalid release gap `{text}`: write auto or a duration such as 0, 100us or 500us"
            )
        })?;
        if gap.0 > Self::MAX {
            return Err(format!(
                "invalid release gap `{text}`: above 1ms, where batched requests would count as \
                 late; use auto or a gap of at most 1ms"
            ));
        }
        Ok(ReleaseGap::Fixed(gap.0))
    }
}

impl fmt::Display for ReleaseGap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReleaseGap::Auto => f.write_str("auto"),
            ReleaseGap::Fixed(gap) if gap.is_zero() => f.write_str("0"),
            ReleaseGap::Fixed(gap) => write!(f, "{}", HumanDuration(*gap)),
        }
    }
}

macro_rules! serde_via_from_str {
    ($ty:ty, $expecting:literal) => {
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct Visitor;
                impl<'de> de::Visitor<'de> for Visitor {
                    type Value = $ty;

                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str($expecting)
                    }

                    fn visit_str<E: de::Error>(self, v: &str) -> Result<$ty, E> {
                        v.parse().map_err(E::custom)
                    }

                    fn visit_i64<E: de::Error>(self, v: i64) -> Result<$ty, E> {
                        v.to_string().parse().map_err(E::custom)
                    }

                    fn visit_u64<E: de::Error>(self, v: u64) -> Result<$ty, E> {
                        v.to_string().parse().map_err(E::custom)
                    }

                    fn visit_f64<E: de::Error>(self, v: f64) -> Result<$ty, E> {
                        v.to_string().parse().map_err(E::custom)
                    }
                }
                deserializer.deserialize_any(Visitor)
            }
        }
    };
}

serde_via_from_str!(Rate, "a rate such as \"250/s\" or \"1000/min\"");
serde_via_from_str!(HumanDuration, "a duration such as \"30s\" or \"250ms\"");
serde_via_from_str!(ByteSize, "a size such as \"4MiB\"");
serde_via_from_str!(ReleaseGap, "auto or a duration such as \"100us\"");

impl Serialize for HumanDuration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_units() {
        assert_eq!("250/s".parse::<Rate>().unwrap().0, 250.0);
        assert_eq!("1000/min".parse::<Rate>().unwrap().0, 1000.0 / 60.0);
        assert_eq!("3600/h".parse::<Rate>().unwrap().0, 1.0);
        assert_eq!("2/ms".parse::<Rate>().unwrap().0, 2000.0);
        assert_eq!("42".parse::<Rate>().unwrap().0, 42.0);
    }

    #[test]
    fn rate_rejects_bad_values() {
        for bad in [
            "0/s",
            "-5/s",
            "abc/s",
            "10/fortnight",
            "",
            "NaN/s",
            "inf",
            "1e-300/s",
        ] {
            let err = "x".to_string() + &bad.parse::<Rate>().unwrap_err();
            assert!(err.contains(bad), "message `{err}` should name `{bad}`");
        }
    }

    #[test]
    fn duration_forms() {
        assert_eq!(
            "30s".parse::<HumanDuration>().unwrap().0,
            Duration::from_secs(30)
        );
        assert_eq!(
            "250ms".parse::<HumanDuration>().unwrap().0,
            Duration::from_millis(250)
        );
        assert_eq!("0".parse::<HumanDuration>().unwrap().0, Duration::ZERO);
        assert!("30".parse::<HumanDuration>().is_err());
        assert_eq!(
            "365days".parse::<HumanDuration>().unwrap(),
            HumanDuration::MAX
        );
        let err = "3000000000000000h".parse::<HumanDuration>().unwrap_err();
        assert!(err.contains("`3000000000000000h`"), "{err}");
        assert!(err.contains("365 days"), "{err}");
        assert!("ten seconds".parse::<HumanDuration>().is_err());
    }

    #[test]
    fn release_gaps() {
        assert_eq!("auto".parse::<ReleaseGap>(), Ok(ReleaseGap::Auto));
        assert_eq!(
            "0".parse::<ReleaseGap>(),
            Ok(ReleaseGap::Fixed(Duration::ZERO))
        );
        assert_eq!(
            "250us".parse::<ReleaseGap>(),
            Ok(ReleaseGap::Fixed(Duration::from_micros(250)))
        );
        assert_eq!(
            "1ms".parse::<ReleaseGap>(),
            Ok(ReleaseGap::Fixed(Duration::from_millis(1)))
        );

        for bad in ["2ms", "soon", "-1us", ""] {
            let err = bad.parse::<ReleaseGap>().unwrap_err();
            assert!(err.contains(&format!("`{bad}`")), "{err}");
        }

        // auto: 25 ns per req/s between 100 us and 500 us.
        let micros = |rate: f64| ReleaseGap::Auto.at_rate(rate).as_micros();
        assert_eq!(micros(1.0), 100);
        assert_eq!(micros(1000.0), 100);
        assert_eq!(micros(4000.0), 100);
        assert_eq!(micros(10_000.0), 250);
        assert_eq!(micros(20_000.0), 500);
        assert_eq!(micros(1_000_000.0), 500);
        assert_eq!(micros(f64::NAN), 100);

        let fixed = ReleaseGap::Fixed(Duration::from_micros(40));
        assert_eq!(fixed.at_rate(20_000.0), Duration::from_micros(40));
        for gap in ["auto", "0", "250us", "1ms"] {
            let parsed: ReleaseGap = gap.parse().unwrap();
            assert_eq!(parsed.to_string(), gap);
        }
    }

    #[test]
    fn byte_sizes() {
        assert_eq!("4MiB".parse::<ByteSize>().unwrap().0, 4 * 1024 * 1024);
        assert_eq!("1000".parse::<ByteSize>().unwrap().0, 1000);
        assert!("4 parsecs".parse::<ByteSize>().is_err());
    }
}
