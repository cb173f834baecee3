//! Cron schedules, the one parser of skiff: five fields (minute hour
//! day-of-month month day-of-week) with `*`/`?`, lists, ranges, steps and
//! month/day names, or a descriptor (`@hourly`, `@daily`, `@every 90s`, ...);
//! and the next activation after an instant in a time zone. Validation
//! ([`parse_schedule`]) and the CronJob controller ([`Schedule::next`]) both
//! use it, so what the API accepts is what the controller can run. Errors
//! read like upstream's (`Expected exactly 5 fields, found 1: bad`).
//!
//! Day matching follows upstream's parser: when day-of-month or day-of-week
//! is `*`, both must match; when both are restricted, either may.
//!
//! Must not: know about CronJobs or the API; this is pure time arithmetic.

use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp, ToSpan};

/// Why a schedule string cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseError(String);

/// A parsed schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Schedule {
    /// A five-field cron expression, as bit sets.
    Cron(Fields),
    /// `@every <duration>`: a constant delay, whole seconds, at least 1 s.
    Every(SignedDuration),
}

/// The bit sets of a five-field expression (bit n set = value n allowed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fields {
    minute: u64,
    hour: u64,
    dom: u64,
    month: u64,
    dow: u64,
    /// Day-of-month or day-of-week was `*`/`?`: days must match both.
    any_day_star: bool,
}

const MONTHS: &[&str] = &[
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const DAYS: &[&str] = &["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

/// Checks `schedule`; the error is the message upstream puts in `spec.schedule`.
pub fn parse_schedule(schedule: &str) -> Result<(), String> {
    Schedule::parse(schedule).map(drop).map_err(|e| e.to_string())
}

impl Schedule {
    /// Parses `spec` (surrounding whitespace ignored).
    pub fn parse(spec: &str) -> Result<Schedule, ParseError> {
        let spec = spec.trim();
        if spec.is_empty() {
            return Err(ParseError("empty spec string".into()));
        }
        if let Some(d) = spec.strip_prefix('@') {
            let five = match d {
                "yearly" | "annually" => "0 0 1 1 *",
                "monthly" => "0 0 1 * *",
                "weekly" => "0 0 * * 0",
                "daily" | "midnight" => "0 0 * * *",
                "hourly" => "0 * * * *",
                d if d.starts_with("every ") => {
                    let text = d.trim_start_matches("every ").trim();
                    let secs = go_duration_secs(text).ok_or_else(|| {
                        ParseError(format!(
                            "failed to parse duration {spec}: time: invalid duration \"{text}\""
                        ))
                    })?;
                    return Ok(Schedule::Every(SignedDuration::from_secs(secs.max(1))));
                }
                _ => return Err(ParseError(format!("unrecognized descriptor: {spec}"))),
            };
            return Schedule::parse(five);
        }
        let f: Vec<&str> = spec.split_whitespace().collect();
        if f.len() != 5 {
            return Err(ParseError(format!(
                "Expected exactly 5 fields, found {}: {spec}",
                f.len()
            )));
        }
        let (dom, dom_star) = field(f[2], 1, 31, &[], 1, true)?;
        let (dow, dow_star) = field(f[4], 0, 6, DAYS, 0, true)?;
        Ok(Schedule::Cron(Fields {
            minute: field(f[0], 0, 59, &[], 0, false)?.0,
            hour: field(f[1], 0, 23, &[], 0, false)?.0,
            dom,
            month: field(f[3], 1, 12, MONTHS, 1, false)?.0,
            dow,
            any_day_star: dom_star || dow_star,
        }))
    }

    /// The first activation strictly after `after`, evaluated in `tz`; `None`
    /// if there is none within five years (e.g. `0 0 30 2 *`).
    pub fn next(&self, after: Timestamp, tz: &TimeZone) -> Option<Timestamp> {
        match self {
            Schedule::Every(d) => {
                let whole = Timestamp::from_second(after.as_second()).ok()?;
                whole.checked_add(*d).ok()
            }
            Schedule::Cron(f) => f.next(after, tz),
        }
    }
}

impl Fields {
    fn day_matches(&self, date: Date) -> bool {
        let dom = bit(self.dom, date.day() as u32);
        let dow = bit(self.dow, date.weekday().to_sunday_zero_offset() as u32);
        if self.any_day_star { dom && dow } else { dom || dow }
    }

    fn next(&self, after: Timestamp, tz: &TimeZone) -> Option<Timestamp> {
        let start = after.to_zoned(tz.clone()).datetime();
        // The first whole minute after `after`.
        let mut t: DateTime = start
            .date()
            .at(start.hour(), start.minute(), 0, 0)
            .checked_add(1.minute())
            .ok()?;
        let limit = start.year() + 5;
        while t.year() <= limit {
            if !bit(self.month, t.month() as u32) {
                t = t
                    .date()
                    .first_of_month()
                    .checked_add(1.month())
                    .ok()?
                    .at(0, 0, 0, 0);
                continue;
            }
            if !self.day_matches(t.date()) {
                t = t.date().tomorrow().ok()?.at(0, 0, 0, 0);
                continue;
            }
            if !bit(self.hour, t.hour() as u32) {
                t = t.date().at(t.hour(), 0, 0, 0).checked_add(1.hour()).ok()?;
                continue;
            }
            if !bit(self.minute, t.minute() as u32) {
                t = t.checked_add(1.minute()).ok()?;
                continue;
            }
            // A wall time in a DST gap moves forward; in a fold the earlier
            // instant is taken unless it is not after `after`.
            let ts = tz.to_ambiguous_zoned(t).compatible().ok()?.timestamp();
            if ts > after {
                return Some(ts);
            }
            t = t.checked_add(1.minute()).ok()?;
        }
        None
    }
}

fn bit(set: u64, n: u32) -> bool {
    n < 64 && set & (1u64 << n) != 0
}

/// One comma-separated field as a bit set, and whether it was `*`/`?`.
fn field(
    text: &str,
    min: u32,
    max: u32,
    names: &[&str],
    base: u32,
    allow_q: bool,
) -> Result<(u64, bool), ParseError> {
    let mut bits = 0u64;
    let mut star = false;
    for part in text.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => (r, Some(s)),
            None => (part, None),
        };
        let (lo, hi) = if range == "*" || (allow_q && range == "?") {
            star |= step.is_none();
            (min, max)
        } else if let Some((a, b)) = range.split_once('-') {
            (value(a, names, base)?, value(b, names, base)?)
        } else {
            let v = value(range, names, base)?;
            (v, if step.is_some() { max } else { v })
        };
        let step = match step {
            Some(s) => s.parse::<u32>().map_err(|_| atoi(s))?,
            None => 1,
        };
        if step == 0 {
            return Err(ParseError(format!(
                "step of range should be a positive number: {part}"
            )));
        }
        if lo < min {
            return Err(ParseError(format!(
                "beginning of range ({lo}) below minimum ({min}): {part}"
            )));
        }
        if hi > max {
            return Err(ParseError(format!(
                "end of range ({hi}) above maximum ({max}): {part}"
            )));
        }
        if lo > hi {
            return Err(ParseError(format!(
                "beginning of range ({lo}) beyond end of range ({hi}): {part}"
            )));
        }
        let mut v = lo;
        while v <= hi {
            bits |= 1u64 << v;
            v += step;
        }
    }
    Ok((bits, star))
}

fn value(text: &str, names: &[&str], base: u32) -> Result<u32, ParseError> {
    if let Some(i) = names.iter().position(|n| n.eq_ignore_ascii_case(text)) {
        return u32::try_from(i).map(|i| i + base).map_err(|_| atoi(text));
    }
    text.parse::<u32>().map_err(|_| atoi(text))
}

fn atoi(text: &str) -> ParseError {
    ParseError(format!(
        "failed to parse int from {text}: strconv.Atoi: parsing \"{text}\": invalid syntax"
    ))
}

/// A Go duration (`1h30m`, `90s`, `1.5h`) in whole seconds.
fn go_duration_secs(text: &str) -> Option<i64> {
    let mut rest = text;
    let mut nanos: f64 = 0.0;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let n: f64 = rest[..end].parse().ok()?;
        rest = &rest[end..];
        let (unit, scale) = [
            ("ns", 1.0),
            ("us", 1e3),
            ("µs", 1e3),
            ("ms", 1e6),
            ("s", 1e9),
            ("m", 60e9),
            ("h", 3600e9),
        ]
        .into_iter()
        .find(|(u, _)| rest.starts_with(u))?;
        rest = &rest[unit.len()..];
        nanos += n * scale;
    }
    Some((nanos / 1e9) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn next(spec: &str, after: &str, tz: &str) -> String {
        let tz = TimeZone::get(tz).unwrap();
        Schedule::parse(spec)
            .unwrap()
            .next(ts(after), &tz)
            .unwrap()
            .to_string()
    }

    #[test]
    fn every_minute_and_steps() {
        assert_eq!(
            next("* * * * *", "2026-01-01T10:00:30Z", "UTC"),
            "2026-01-01T10:01:00Z"
        );
        assert_eq!(
            next("* * * * *", "2026-01-01T10:01:00Z", "UTC"),
            "2026-01-01T10:02:00Z"
        );
        assert_eq!(
            next("*/15 * * * *", "2026-01-01T10:16:00Z", "UTC"),
            "2026-01-01T10:30:00Z"
        );
        assert_eq!(
            next("@hourly", "2026-01-01T23:10:00Z", "UTC"),
            "2026-01-02T00:00:00Z"
        );
    }

    #[test]
    fn names_ranges_and_day_rules() {
        // 2026-01-01 is a Thursday; the next weekday 09:00 after Friday evening is Monday.
        assert_eq!(
            next("0 9 * * MON-FRI", "2026-01-02T18:00:00Z", "UTC"),
            "2026-01-05T09:00:00Z"
        );
        // Both day fields restricted: either matches (the 10th, or a Sunday).
        assert_eq!(
            next("0 0 10 * SUN", "2026-01-01T00:00:00Z", "UTC"),
            "2026-01-04T00:00:00Z"
        );
        assert_eq!(
            next("0 0 1 JAN,JUL *", "2026-02-01T00:00:00Z", "UTC"),
            "2026-07-01T00:00:00Z"
        );
    }

    #[test]
    fn time_zone_shifts_the_wall_clock() {
        assert_eq!(
            next("0 9 * * *", "2026-01-01T00:00:00Z", "America/New_York"),
            "2026-01-01T14:00:00Z"
        );
    }

    #[test]
    fn every_is_a_constant_delay_and_impossible_dates_end() {
        assert_eq!(
            next("@every 1m30s", "2026-01-01T00:00:00.5Z", "UTC"),
            "2026-01-01T00:01:30Z"
        );
        let s = Schedule::parse("0 0 30 2 *").unwrap();
        assert_eq!(s.next(ts("2026-01-01T00:00:00Z"), &TimeZone::UTC), None);
    }

    #[test]
    fn rejects_like_upstream() {
        let err = |s: &str| Schedule::parse(s).unwrap_err().to_string();
        assert_eq!(err("bad"), "Expected exactly 5 fields, found 1: bad");
        assert_eq!(err("61 * * * *"), "end of range (61) above maximum (59): 61");
        assert_eq!(err("@fortnightly"), "unrecognized descriptor: @fortnightly");
    }

    #[test]
    fn accepts_common_schedules() {
        for ok in [
            "*/5 * * * *",
            "0 0 * * MON-FRI",
            "30 2 1,15 * ?",
            "@hourly",
            "@every 1h30m",
            "0 12 * JAN,JUL *",
        ] {
            assert_eq!(parse_schedule(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn rejects_with_upstream_messages() {
        assert_eq!(
            parse_schedule("bad"),
            Err("Expected exactly 5 fields, found 1: bad".to_string())
        );
        assert_eq!(
            parse_schedule("61 * * * *"),
            Err("end of range (61) above maximum (59): 61".to_string())
        );
        assert!(
            parse_schedule("x * * * *")
                .unwrap_err()
                .contains("failed to parse int from x")
        );
        assert!(parse_schedule("@sometimes").is_err());
    }
}
