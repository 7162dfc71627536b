//! Cron expressions: 5 fields (minute hour day-of-month month day-of-week), 6 fields (a leading
//! seconds field), or an alias (`@yearly`, `@annually`, `@monthly`, `@weekly`, `@daily`,
//! `@midnight`, `@hourly`). Fields accept `*`, numbers, ranges `a-b`, steps `*/n` and `a-b/n`,
//! lists `a,b,c`, month names (`JAN`..`DEC`) and day names (`SUN`..`SAT`; 0 and 7 are Sunday).
//! Parsed into bit sets; times are interpreted in UTC.

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CronSchedule {
    text: String,
    pub seconds: u64,
    pub minutes: u64,
    pub hours: u32,
    pub days_of_month: u32,
    pub months: u16,
    pub days_of_week: u8,
    /// Whether day-of-month / day-of-week were restricted (`*` leaves them open): when both are,
    /// a day matches if either matches, as in every cron since Vixie's.
    pub dom_restricted: bool,
    pub dow_restricted: bool,
}

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const DAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

struct FieldSpec {
    name: &'static str,
    min: u32,
    max: u32,
    names: &'static [&'static str],
    names_base: u32,
}

const SECOND: FieldSpec = FieldSpec {
    name: "second",
    min: 0,
    max: 59,
    names: &[],
    names_base: 0,
};
const MINUTE: FieldSpec = FieldSpec {
    name: "minute",
    min: 0,
    max: 59,
    names: &[],
    names_base: 0,
};
const HOUR: FieldSpec = FieldSpec {
    name: "hour",
    min: 0,
    max: 23,
    names: &[],
    names_base: 0,
};
const DOM: FieldSpec = FieldSpec {
    name: "day of month",
    min: 1,
    max: 31,
    names: &[],
    names_base: 0,
};
const MONTH: FieldSpec = FieldSpec {
    name: "month",
    min: 1,
    max: 12,
    names: &MONTHS,
    names_base: 1,
};
const DOW: FieldSpec = FieldSpec {
    name: "day of week",
    min: 0,
    max: 7,
    names: &DAYS,
    names_base: 0,
};

impl CronSchedule {
    /// Parses a cron expression; the error is a sentence naming the bad field.
    pub fn parse(input: &str) -> Result<Self, String> {
        let text = input.split_whitespace().collect::<Vec<_>>().join(" ");
        let expanded = match text.to_ascii_lowercase().as_str() {
            "@yearly" | "@annually" => "0 0 1 1 *".to_string(),
            "@monthly" => "0 0 1 * *".to_string(),
            "@weekly" => "0 0 * * 0".to_string(),
            "@daily" | "@midnight" => "0 0 * * *".to_string(),
            "@hourly" => "0 * * * *".to_string(),
            a if a.starts_with('@') => return Err(format!("unknown cron alias \"{text}\"")),
            _ => text.clone(),
        };
        let fields: Vec<&str> = expanded.split(' ').collect();
        let (sec, rest) = match fields.len() {
            5 => ("0", &fields[..]),
            6 => (fields[0], &fields[1..]),
            n => return Err(format!("a cron expression has 5 or 6 fields, not {n}")),
        };
        let seconds = parse_field(sec, &SECOND)?;
        let minutes = parse_field(rest[0], &MINUTE)?;
        let hours = parse_field(rest[1], &HOUR)? as u32;
        let days_of_month = parse_field(rest[2], &DOM)? as u32;
        let months = parse_field(rest[3], &MONTH)? as u16;
        let mut dow = parse_field(rest[4], &DOW)?;
        if dow & (1 << 7) != 0 {
            dow = (dow & !(1 << 7)) | 1; // 7 is Sunday too
        }
        Ok(CronSchedule {
            text,
            seconds,
            minutes,
            hours,
            days_of_month,
            months,
            days_of_week: dow as u8,
            dom_restricted: rest[2] != "*" && rest[2] != "?",
            dow_restricted: rest[4] != "*" && rest[4] != "?",
        })
    }

    /// The expression as written, white space normalised.
    pub fn text(&self) -> &str {
        &self.text
    }

    fn day_matches(&self, day: u32, dow: u32) -> bool {
        let dom = self.days_of_month & (1 << day) != 0;
        let wd = self.days_of_week & (1 << dow) != 0;
        match (self.dom_restricted, self.dow_restricted) {
            (true, true) => dom || wd,
            (true, false) => dom,
            (false, true) => wd,
            (false, false) => true,
        }
    }

    /// The first time the expression fires strictly after `t` (seconds since the Unix epoch,
    /// UTC), or `None` if it never fires in the next ten years (e.g. `0 0 31 2 *`).
    pub fn next_fire_after(&self, t: i64) -> Option<i64> {
        let limit = t + 10 * 366 * 86_400;
        let mut t = t + 1;
        while t <= limit {
            let days = t.div_euclid(86_400);
            let secs = t.rem_euclid(86_400);
            let (_, month, day) = civil_from_days(days);
            let dow = (days + 4).rem_euclid(7) as u32; // 1970-01-01 was a Thursday
            let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
            if self.months & (1 << month) == 0 {
                let (y, mo, _) = civil_from_days(days);
                let (ny, nm) = if mo == 12 { (y + 1, 1) } else { (y, mo + 1) };
                t = days_from_civil(ny, nm, 1) * 86_400;
            } else if !self.day_matches(day, dow) {
                t = (days + 1) * 86_400;
            } else if self.hours & (1 << h) == 0 {
                t = days * 86_400 + (h + 1) * 3600;
            } else if self.minutes & (1 << m) == 0 {
                t = days * 86_400 + h * 3600 + (m + 1) * 60;
            } else if self.seconds & (1 << s) == 0 {
                t += 1;
            } else {
                return Some(t);
            }
        }
        None
    }
}

/// (year, month 1-12, day 1-31) of a day number counted from 1970-01-01 (proleptic Gregorian).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// The inverse of [`civil_from_days`].
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn parse_value(s: &str, spec: &FieldSpec) -> Result<u32, String> {
    let lower = s.to_ascii_lowercase();
    if let Some(pos) = spec.names.iter().position(|n| *n == lower) {
        return Ok(pos as u32 + spec.names_base);
    }
    let v: u32 = s
        .parse()
        .map_err(|_| format!("\"{s}\" is not a valid {} value", spec.name))?;
    if v < spec.min || v > spec.max {
        return Err(format!(
            "{} value {v} is out of range {}-{}",
            spec.name, spec.min, spec.max
        ));
    }
    Ok(v)
}

fn parse_field(field: &str, spec: &FieldSpec) -> Result<u64, String> {
    let mut bits: u64 = 0;
    for item in field.split(',') {
        if item.is_empty() {
            return Err(format!("empty item in {} field \"{field}\"", spec.name));
        }
        let (range, step) = match item.split_once('/') {
            Some((r, s)) => {
                let step: u32 = s
                    .parse()
                    .map_err(|_| format!("bad step \"{s}\" in {} field", spec.name))?;
                if step == 0 || step > spec.max {
                    return Err(format!(
                        "step {step} is out of range in {} field",
                        spec.name
                    ));
                }
                (r, step)
            }
            None => (item, 1),
        };
        let (lo, hi) = if range == "*" || range == "?" {
            (spec.min, spec.max)
        } else if let Some((a, b)) = range.split_once('-') {
            let (a, b) = (parse_value(a, spec)?, parse_value(b, spec)?);
            if a > b {
                return Err(format!(
                    "range {range} in {} field runs backwards",
                    spec.name
                ));
            }
            (a, b)
        } else {
            let v = parse_value(range, spec)?;
            (v, if item.contains('/') { spec.max } else { v })
        };
        let mut v = lo;
        while v <= hi {
            bits |= 1 << v;
            v += step;
        }
    }
    Ok(bits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_fields() {
        let c = CronSchedule::parse("*/15 0-6,22 * * mon-fri").unwrap();
        assert_eq!(c.seconds, 1);
        assert_eq!(c.minutes, (1 << 0) | (1 << 15) | (1 << 30) | (1 << 45));
        assert_eq!(c.hours, 0b111_1111 | (1 << 22));
        assert_eq!(c.days_of_week, 0b011_1110);
        assert!(c.dow_restricted && !c.dom_restricted);
    }

    #[test]
    fn six_fields_and_names() {
        let c = CronSchedule::parse("30 0 12 1 jan,JUL 7").unwrap();
        assert_eq!(c.seconds, 1 << 30);
        assert_eq!(c.months, (1 << 1) | (1 << 7));
        assert_eq!(c.days_of_week, 1, "7 is Sunday");
    }

    #[test]
    fn aliases() {
        assert_eq!(CronSchedule::parse("@hourly").unwrap().minutes, 1);
        assert_eq!(CronSchedule::parse("@DAILY").unwrap().hours, 1);
        assert_eq!(CronSchedule::parse("@weekly").unwrap().days_of_week, 1);
        assert_eq!(CronSchedule::parse("@yearly").unwrap().months, 1 << 1);
    }

    #[test]
    fn next_fire_times() {
        // 2026-11-30 13:20:31 UTC (a Monday).
        let t = 1_796_044_831;
        assert_eq!(
            days_from_civil(2026, 11, 30) * 86_400 + 13 * 3600 + 20 * 60 + 31,
            t
        );
        assert_eq!(civil_from_days(t / 86_400), (2026, 11, 30));
        let every5 = CronSchedule::parse("*/5 * * * *").unwrap();
        assert_eq!(every5.next_fire_after(t), Some(t - 31 - 20 * 60 + 25 * 60));
        let hourly = CronSchedule::parse("@hourly").unwrap();
        assert_eq!(hourly.next_fire_after(t), Some(t - 31 - 20 * 60 + 3600));
        // Fridays at 09:00: 2026-12-04.
        let fri = CronSchedule::parse("0 9 * * fri").unwrap();
        assert_eq!(
            fri.next_fire_after(t),
            Some(days_from_civil(2026, 12, 4) * 86_400 + 9 * 3600)
        );
        // New year, from the last second of the year.
        let yearly = CronSchedule::parse("@yearly").unwrap();
        let ny = days_from_civil(2027, 1, 1) * 86_400;
        assert_eq!(yearly.next_fire_after(ny - 1), Some(ny));
        assert_eq!(
            yearly.next_fire_after(ny),
            Some(days_from_civil(2028, 1, 1) * 86_400)
        );
        // Leap day only.
        let leap = CronSchedule::parse("0 0 29 2 *").unwrap();
        assert_eq!(
            leap.next_fire_after(t),
            Some(days_from_civil(2028, 2, 29) * 86_400)
        );
        // Never.
        assert_eq!(
            CronSchedule::parse("0 0 31 2 *")
                .unwrap()
                .next_fire_after(t),
            None
        );
        // Seconds field.
        let s = CronSchedule::parse("*/10 * * * * *").unwrap();
        assert_eq!(s.next_fire_after(t), Some(t + 9));
        // Day-of-month or day-of-week when both are restricted: the 1st, or any Monday.
        let either = CronSchedule::parse("0 0 1 * mon").unwrap();
        assert_eq!(
            either.next_fire_after(t),
            Some(days_from_civil(2026, 12, 1) * 86_400)
        );
    }

    #[test]
    fn bad_expressions() {
        for bad in [
            "* * * *",
            "* * * * * * *",
            "60 * * * *",
            "* 24 * * *",
            "* * 0 * *",
            "* * * 13 *",
            "* * * * 8",
            "*/0 * * * *",
            "5-1 * * * *",
            "a * * * *",
            "1,,2 * * * *",
            "@never",
            "* * * foo *",
        ] {
            assert!(
                CronSchedule::parse(bad).is_err(),
                "{bad:?} should be rejected"
            );
        }
    }
}
