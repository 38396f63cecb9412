//! Time units of a backend-throughput limit and the fixed windows they define.
//!
//! Windows are aligned to unit boundaries of UTC epoch time: window `k` of a
//! unit of length `T` ms covers `[k*T, (k+1)*T)`.

use std::fmt;
use std::str::FromStr;

/// The unit a limit is counted per. `SECOND`, `MINUTE` and `HOUR` are WSO2's;
/// `DAY` (a UTC day) is Sluice's addition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum TimeUnit {
    /// One second (WSO2's default).
    #[default]
    Second,
    /// One minute.
    Minute,
    /// One hour.
    Hour,
    /// One UTC day.
    Day,
}

impl TimeUnit {
    /// Length of the unit in milliseconds.
    pub fn millis(self) -> u64 {
        match self {
            TimeUnit::Second => 1_000,
            TimeUnit::Minute => 60_000,
            TimeUnit::Hour => 3_600_000,
            TimeUnit::Day => 86_400_000,
        }
    }

    /// The WSO2 spelling (`SECOND`, `MINUTE`, `HOUR`, `DAY`).
    pub fn as_str(self) -> &'static str {
        match self {
            TimeUnit::Second => "SECOND",
            TimeUnit::Minute => "MINUTE",
            TimeUnit::Hour => "HOUR",
            TimeUnit::Day => "DAY",
        }
    }

    /// Index of the window containing `epoch_ms`.
    pub fn window_index(self, epoch_ms: u64) -> u64 {
        epoch_ms / self.millis()
    }

    /// Epoch milliseconds at which window `index` ends (exclusive).
    pub fn window_end(self, index: u64) -> u64 {
        (index + 1).saturating_mul(self.millis())
    }
}

impl FromStr for TimeUnit {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "SECOND" => Ok(TimeUnit::Second),
            "MINUTE" => Ok(TimeUnit::Minute),
            "HOUR" => Ok(TimeUnit::Hour),
            "DAY" => Ok(TimeUnit::Day),
            other => Err(format!(
                "unknown time unit {other:?}; expected SECOND, MINUTE, HOUR or DAY"
            )),
        }
    }
}

impl fmt::Display for TimeUnit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_are_aligned_to_unit_boundaries() {
        assert_eq!(TimeUnit::Second.window_index(999), 0);
        assert_eq!(TimeUnit::Second.window_index(1_000), 1);
        assert_eq!(TimeUnit::Minute.window_index(119_999), 1);
        assert_eq!(TimeUnit::Minute.window_end(1), 120_000);
    }

    #[test]
    fn parses_only_known_units() {
        assert_eq!("DAY".parse::<TimeUnit>(), Ok(TimeUnit::Day));
        assert!("second".parse::<TimeUnit>().is_err());
        assert!("WEEK".parse::<TimeUnit>().is_err());
    }
}
