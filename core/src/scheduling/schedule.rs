//! Refresh schedules: a duration (`'30s'`, `'1h30m'`), a cron expression (`'*/5 * * * *'`,
//! `'@hourly'`), or `'calculated'` (inherit the tightest schedule of downstream stream tables,
//! stored as SQL NULL).

use crate::cron::CronSchedule;
use crate::error::{PgtError, Result};
use std::fmt;

/// The longest duration accepted: 366 days.
pub const MAX_DURATION_SECS: u64 = 366 * 86_400;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Schedule {
    /// Refresh when the data is older than this many seconds.
    Every { seconds: u64, text: String },
    /// Refresh at the times a cron expression names (UTC).
    Cron(CronSchedule),
    /// Inherit the tightest schedule of any downstream dependent.
    Calculated,
}

impl Schedule {
    /// Parses a schedule. `None` (SQL NULL) is an error: CALCULATED is spelt `'calculated'`.
    pub fn parse(input: Option<&str>) -> Result<Self> {
        let input = input.ok_or(PgtError::NullSchedule)?;
        let trimmed = input.trim();
        let invalid = |reason: String| PgtError::InvalidSchedule {
            input: input.to_string(),
            reason,
        };
        if trimmed.is_empty() {
            return Err(invalid("empty schedule".into()));
        }
        if trimmed.eq_ignore_ascii_case("calculated") {
            return Ok(Schedule::Calculated);
        }
        if trimmed.starts_with('@') || trimmed.split_whitespace().count() > 1 {
            return CronSchedule::parse(trimmed)
                .map(Schedule::Cron)
                .map_err(invalid);
        }
        parse_duration(trimmed).map_err(invalid)
    }

    /// The text stored in the catalog: `None` for CALCULATED.
    pub fn catalog_text(&self) -> Option<String> {
        match self {
            Schedule::Every { text, .. } => Some(text.clone()),
            Schedule::Cron(c) => Some(c.text().to_string()),
            Schedule::Calculated => None,
        }
    }

    /// The interval in seconds, for duration schedules.
    pub fn interval_secs(&self) -> Option<u64> {
        match self {
            Schedule::Every { seconds, .. } => Some(*seconds),
            _ => None,
        }
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.catalog_text() {
            Some(t) => f.write_str(&t),
            None => f.write_str("calculated"),
        }
    }
}

fn parse_duration(s: &str) -> std::result::Result<Schedule, String> {
    let lower = s.to_ascii_lowercase();
    let bytes = lower.as_bytes();
    let mut i = 0;
    let mut total: u64 = 0;
    let mut last_unit_rank = usize::MAX;
    if bytes[0] == b'-' {
        return Err("a schedule must be a positive duration".into());
    }
    while i < bytes.len() {
        let start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        if start == i {
            return Err("expected a number followed by a unit (s, m, h, d or w)".into());
        }
        let n: u64 = lower[start..i]
            .parse()
            .map_err(|_| "number too large".to_string())?;
        let ustart = i;
        while i < bytes.len() && bytes[i].is_ascii_alphabetic() {
            i += 1;
        }
        let (rank, secs) = match &lower[ustart..i] {
            "w" => (0, 604_800),
            "d" => (1, 86_400),
            "h" => (2, 3_600),
            "m" => (3, 60),
            "s" => (4, 1),
            "" => return Err(format!("missing unit after {n} (use s, m, h, d or w)")),
            u => return Err(format!("unknown unit \"{u}\" (use s, m, h, d or w)")),
        };
        if last_unit_rank != usize::MAX && rank <= last_unit_rank {
            return Err("units must go from largest to smallest, each at most once".into());
        }
        last_unit_rank = rank;
        total = n
            .checked_mul(secs)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| "duration too large".to_string())?;
    }
    if total == 0 {
        return Err("a schedule must be longer than zero".into());
    }
    if total > MAX_DURATION_SECS {
        return Err("a schedule may be at most 366 days".into());
    }
    Ok(Schedule::Every {
        seconds: total,
        text: lower,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::SqlState;

    fn secs(s: &str) -> u64 {
        Schedule::parse(Some(s)).unwrap().interval_secs().unwrap()
    }

    #[test]
    fn durations() {
        assert_eq!(secs("1s"), 1);
        assert_eq!(secs("30s"), 30);
        assert_eq!(secs("5m"), 300);
        assert_eq!(secs("1h30m"), 5400);
        assert_eq!(secs("1d"), 86_400);
        assert_eq!(secs("1w"), 604_800);
        assert_eq!(secs(" 2H "), 7200);
        assert_eq!(
            Schedule::parse(Some("1H30M"))
                .unwrap()
                .catalog_text()
                .unwrap(),
            "1h30m"
        );
    }

    #[test]
    fn bad_durations() {
        for bad in [
            "0s",
            "-1m",
            "abc",
            "",
            "  ",
            "1",
            "1x",
            "10ms",
            "1m1h",
            "1s1s",
            "5 m",
            "99999999999999999999s",
            "53w",
        ] {
            let err = Schedule::parse(Some(bad)).unwrap_err();
            assert_eq!(err.sqlstate(), SqlState::InvalidParameterValue, "{bad:?}");
        }
    }

    #[test]
    fn calculated_and_null() {
        assert_eq!(
            Schedule::parse(Some("calculated")).unwrap(),
            Schedule::Calculated
        );
        assert_eq!(
            Schedule::parse(Some("CALCULATED")).unwrap().catalog_text(),
            None
        );
        assert_eq!(
            Schedule::parse(None).unwrap_err().sqlstate(),
            SqlState::NullValueNotAllowed
        );
    }

    #[test]
    fn cron_is_recognised() {
        assert!(matches!(
            Schedule::parse(Some("*/5 * * * *")).unwrap(),
            Schedule::Cron(_)
        ));
        assert!(matches!(
            Schedule::parse(Some("@hourly")).unwrap(),
            Schedule::Cron(_)
        ));
        assert!(matches!(
            Schedule::parse(Some("0 */5 * * * *")).unwrap(),
            Schedule::Cron(_)
        ));
        assert!(Schedule::parse(Some("61 * * * *")).is_err());
        assert!(Schedule::parse(Some("@sometimes")).is_err());
    }
}
