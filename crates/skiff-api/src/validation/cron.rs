//! Cron schedule parsing as the CronJob controller's parser accepts it: five
//! fields (minute hour day-of-month month day-of-week) with `*`, `?`, lists,
//! ranges, steps and month/day names, or a descriptor (`@hourly`, `@every 5m`).
//! Errors read like upstream's (`Expected exactly 5 fields, found 1: bad`).

/// Checks `schedule`; the error is the message upstream puts in `spec.schedule`.
pub fn parse_schedule(schedule: &str) -> Result<(), String> {
    let spec = schedule.trim();
    if spec.is_empty() {
        return Err("empty spec string".to_string());
    }
    if let Some(descriptor) = spec.strip_prefix('@') {
        return match descriptor {
            "yearly" | "annually" | "monthly" | "weekly" | "daily" | "midnight" | "hourly" => Ok(()),
            d if d.starts_with("every ") => duration(d.trim_start_matches("every ").trim()).map_err(|_| {
                format!(
                    "failed to parse duration {spec}: time: invalid duration \"{}\"",
                    &d[6..]
                )
            }),
            _ => Err(format!("unrecognized descriptor: {spec}")),
        };
    }
    let fields: Vec<&str> = spec.split_whitespace().collect();
    if fields.len() != 5 {
        return Err(format!(
            "Expected exactly 5 fields, found {}: {}",
            fields.len(),
            spec
        ));
    }
    const MONTHS: &[&str] = &[
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    const DAYS: &[&str] = &["sun", "mon", "tue", "wed", "thu", "fri", "sat"];
    let bounds: [(u32, u32, &[&str], u32); 5] = [
        (0, 59, &[], 0),
        (0, 23, &[], 0),
        (1, 31, &[], 0),
        (1, 12, MONTHS, 1),
        (0, 6, DAYS, 0),
    ];
    for (i, (field, (min, max, names, base))) in fields.iter().zip(bounds).enumerate() {
        for part in field.split(',') {
            range(part, min, max, names, base, i == 2 || i == 4)?;
        }
    }
    Ok(())
}

fn range(expr: &str, min: u32, max: u32, names: &[&str], base: u32, allow_q: bool) -> Result<(), String> {
    let (range_part, step) = match expr.split_once('/') {
        Some((r, s)) => (r, Some(s)),
        None => (expr, None),
    };
    let (start, end) = if range_part == "*" || (allow_q && range_part == "?") {
        (min, max)
    } else {
        match range_part.split_once('-') {
            Some((a, b)) => (value(a, names, base)?, value(b, names, base)?),
            None => {
                let v = value(range_part, names, base)?;
                (v, if step.is_some() { max } else { v })
            }
        }
    };
    if let Some(step) = step {
        let n = step.parse::<u32>().map_err(|_| atoi_error(step))?;
        if n == 0 {
            return Err(format!("step of range should be a positive number: {expr}"));
        }
    }
    if start < min {
        return Err(format!(
            "beginning of range ({start}) below minimum ({min}): {expr}"
        ));
    }
    if end > max {
        return Err(format!("end of range ({end}) above maximum ({max}): {expr}"));
    }
    if start > end {
        return Err(format!(
            "beginning of range ({start}) beyond end of range ({end}): {expr}"
        ));
    }
    Ok(())
}

fn value(text: &str, names: &[&str], base: u32) -> Result<u32, String> {
    if let Some(i) = names.iter().position(|n| n.eq_ignore_ascii_case(text)) {
        return u32::try_from(i).map(|i| i + base).map_err(|_| atoi_error(text));
    }
    text.parse::<u32>().map_err(|_| atoi_error(text))
}

fn atoi_error(text: &str) -> String {
    format!("failed to parse int from {text}: strconv.Atoi: parsing \"{text}\": invalid syntax")
}

fn duration(text: &str) -> Result<(), ()> {
    let mut rest = text;
    if rest.is_empty() {
        return Err(());
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).ok_or(())?;
        if digits == 0 {
            return Err(());
        }
        rest = &rest[digits..];
        let unit = ["ns", "us", "µs", "ms", "s", "m", "h"]
            .into_iter()
            .find(|u| rest.starts_with(u))
            .ok_or(())?;
        rest = &rest[unit.len()..];
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse_schedule;

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
