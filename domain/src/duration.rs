//! Human-friendly durations for the config file (`"500ms"`, `"30s"`, `"5m"`, `"12h"`, `"30d"`).

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// A duration written as an integer followed by a unit: `ms`, `s`, `m`, `h` or `d`.
///
/// Compound forms (`1h30m`) are accepted so that operators can write what they mean.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Duration(pub std::time::Duration);

/// Why a duration string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid duration {input:?}: {reason} (write e.g. \"500ms\", \"30s\", \"5m\", \"12h\", \"30d\")")]
pub struct DurationError {
    input: String,
    reason: &'static str,
}

impl Duration {
    /// Wraps a number of seconds.
    pub const fn from_secs(secs: u64) -> Self {
        Self(std::time::Duration::from_secs(secs))
    }

    /// Wraps a number of milliseconds.
    pub const fn from_millis(ms: u64) -> Self {
        Self(std::time::Duration::from_millis(ms))
    }

    /// The wrapped standard duration.
    pub const fn get(self) -> std::time::Duration {
        self.0
    }
}

impl FromStr for Duration {
    type Err = DurationError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason| DurationError {
            input: s.to_owned(),
            reason,
        };
        let text = s.trim();
        if text.is_empty() {
            return Err(err("empty"));
        }
        let mut total_ms: u128 = 0;
        let mut rest = text;
        while !rest.is_empty() {
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 {
                return Err(err("expected a number"));
            }
            let (num, tail) = rest.split_at(digits);
            let n: u128 = num.parse().map_err(|_| err("number too large"))?;
            let unit_len = tail.bytes().take_while(u8::is_ascii_alphabetic).count();
            let (unit, tail) = tail.split_at(unit_len);
            let factor: u128 = match unit {
                "ms" => 1,
                "s" => 1_000,
                "m" => 60_000,
                "h" => 3_600_000,
                "d" => 86_400_000,
                "" => return Err(err("missing unit")),
                _ => return Err(err("unknown unit")),
            };
            total_ms = total_ms
                .checked_add(n.checked_mul(factor).ok_or_else(|| err("too large"))?)
                .ok_or_else(|| err("too large"))?;
            rest = tail;
        }
        let ms = u64::try_from(total_ms).map_err(|_| err("too large"))?;
        Ok(Self::from_millis(ms))
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0.as_millis();
        for (unit, factor) in [("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1_000)] {
            if ms >= factor && ms.is_multiple_of(factor) {
                return write!(f, "{}{unit}", ms / factor);
            }
        }
        write!(f, "{ms}ms")
    }
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units_and_compounds() {
        assert_eq!("500ms".parse::<Duration>().ok(), Some(Duration::from_millis(500)));
        assert_eq!("30d".parse::<Duration>().ok(), Some(Duration::from_secs(30 * 86_400)));
        assert_eq!("1h30m".parse::<Duration>().ok(), Some(Duration::from_secs(5_400)));
    }

    #[test]
    fn rejects_garbage() {
        for bad in ["", "10", "ms", "5 weeks", "3x", "-1s"] {
            assert!(bad.parse::<Duration>().is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn display_round_trips() {
        for s in ["30d", "90s", "1500ms", "5m"] {
            let d: Duration = s.parse().expect("valid");
            assert_eq!(d.to_string(), s);
        }
    }
}
