//! Human durations as operators write them in `drbot.toml` and in `/dr` flags:
//! `30s`, `15m`, `2h`, `7d` (a whole number and one unit).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// A duration written as `<whole number><unit>` with unit `s`, `m`, `h` or `d`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct HumanDuration(Duration);

/// The longest duration drbot accepts anywhere: ten years. Longer ones are refused (a block
/// "for ever" is a block without `--for`), so no expiry can overflow a date.
pub const LONGEST: Duration = Duration::from_secs(3650 * 86_400);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DurationError {
    #[error("'{input}' is not a duration: write a whole number followed by s, m, h or d (e.g. 30s, 15m, 2h, 7d)")]
    Malformed { input: String },
    #[error("'{input}' is too long: at most 3650d (ten years)")]
    TooLong { input: String },
}

impl HumanDuration {
    pub fn from_secs(secs: u64) -> Self {
        Self(Duration::from_secs(secs))
    }

    pub fn as_duration(self) -> Duration {
        self.0
    }

    pub fn as_secs(self) -> u64 {
        self.0.as_secs()
    }
}

impl FromStr for HumanDuration {
    type Err = DurationError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let err = || DurationError::Malformed {
            input: input.to_string(),
        };
        let trimmed = input.trim();
        let split = trimmed
            .find(|c: char| !c.is_ascii_digit())
            .ok_or_else(err)?;
        let (number, unit) = trimmed.split_at(split);
        if number.is_empty() {
            return Err(err());
        }
        let n: u64 = number.parse().map_err(|_| err())?;
        let factor = match unit {
            "s" => 1,
            "m" => 60,
            "h" => 3600,
            "d" => 86_400,
            _ => return Err(err()),
        };
        let too_long = || DurationError::TooLong {
            input: input.to_string(),
        };
        let secs = n.checked_mul(factor).ok_or_else(too_long)?;
        if secs == 0 {
            return Err(err());
        }
        if secs > LONGEST.as_secs() {
            return Err(too_long());
        }
        Ok(Self(Duration::from_secs(secs)))
    }
}

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.0.as_secs();
        for (unit, size) in [("d", 86_400), ("h", 3600), ("m", 60)] {
            if secs.is_multiple_of(size) {
                return write!(f, "{}{}", secs / size, unit);
            }
        }
        write!(f, "{secs}s")
    }
}

impl<'de> serde::Deserialize<'de> for HumanDuration {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        raw.parse().map_err(serde::de::Error::custom)
    }
}

/// A duration as people read it: `2h 05m`, `3m 20s`.
pub fn human(d: chrono::Duration) -> String {
    if d > chrono::Duration::zero() && d < chrono::Duration::seconds(1) {
        return "<1s".to_string();
    }
    let secs = d.num_seconds().max(0);
    let (h, m, s) = (secs / 3600, (secs % 3600) / 60, secs % 60);
    if h > 0 {
        format!("{h}h {m:02}m")
    } else if m > 0 {
        format!("{m}m {s:02}s")
    } else {
        format!("{s}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_each_unit() {
        assert_eq!("30s".parse::<HumanDuration>().unwrap().as_secs(), 30);
        assert_eq!("15m".parse::<HumanDuration>().unwrap().as_secs(), 900);
        assert_eq!("2h".parse::<HumanDuration>().unwrap().as_secs(), 7200);
        assert_eq!("7d".parse::<HumanDuration>().unwrap().as_secs(), 604_800);
    }

    #[test]
    fn refuses_what_is_not_a_duration() {
        for bad in [
            "",
            "15",
            "m",
            "15 minutes",
            "1.5h",
            "-3m",
            "0s",
            "15M",
            "99999999999999999999d",
        ] {
            assert!(bad.parse::<HumanDuration>().is_err(), "{bad} was accepted");
        }
    }

    #[test]
    fn refuses_durations_past_ten_years_saying_so() {
        assert_eq!(
            "3650d".parse::<HumanDuration>().unwrap().as_secs(),
            3650 * 86_400
        );
        for long in ["3651d", "95000000d", "3000000d", "18446744073709551615s"] {
            let err = long.parse::<HumanDuration>().unwrap_err().to_string();
            assert!(err.contains("too long: at most 3650d"), "{long}: {err}");
        }
    }

    #[test]
    fn displays_in_the_largest_whole_unit() {
        assert_eq!(HumanDuration::from_secs(900).to_string(), "15m");
        assert_eq!(HumanDuration::from_secs(90).to_string(), "90s");
        assert_eq!(HumanDuration::from_secs(86_400).to_string(), "1d");
    }
}
