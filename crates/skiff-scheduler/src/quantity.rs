//! Parsing of Kubernetes resource quantities ("100m", "1.5Gi", "2e3") into
//! integers: milli-units for CPU, whole units (bytes, counts) for the rest.
//!
//! Owns only the arithmetic; which resource a quantity belongs to is
//! [`crate::resources`]' business. Values round up, as upstream's
//! `Quantity.Value()`/`MilliValue()` do.

/// Parses `s` and returns its value multiplied by `10^scale` (scale 3 gives
/// milli-units), rounded up. `None` if `s` is not a quantity.
pub fn parse_scaled(s: &str, scale: i32) -> Option<i64> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    let (negative, rest) = match s.as_bytes()[0] {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let num_end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(rest.len());
    let (number, suffix) = rest.split_at(num_end);
    if number.is_empty() || number == "." {
        return None;
    }
    let (int_part, frac_part) = number.split_once('.').unwrap_or((number, ""));
    if frac_part.contains('.') {
        return None;
    }
    let mut mantissa: i128 = 0;
    for c in int_part.bytes().chain(frac_part.bytes()) {
        mantissa = mantissa.checked_mul(10)?.checked_add(i128::from(c - b'0'))?;
    }
    let mut exp10: i32 = -(frac_part.len() as i32) + scale;
    let mut binary_shift: u32 = 0;
    match suffix {
        "" => {}
        "n" => exp10 -= 9,
        "u" => exp10 -= 6,
        "m" => exp10 -= 3,
        "k" => exp10 += 3,
        "M" => exp10 += 6,
        "G" => exp10 += 9,
        "T" => exp10 += 12,
        "P" => exp10 += 15,
        "E" => exp10 += 18,
        "Ki" => binary_shift = 10,
        "Mi" => binary_shift = 20,
        "Gi" => binary_shift = 30,
        "Ti" => binary_shift = 40,
        "Pi" => binary_shift = 50,
        "Ei" => binary_shift = 60,
        other => {
            let exp = other.strip_prefix(['e', 'E'])?;
            exp10 += exp.parse::<i32>().ok()?;
        }
    }
    mantissa = mantissa.checked_mul(1i128.checked_shl(binary_shift)?)?;
    let value = if exp10 >= 0 {
        mantissa.checked_mul(10i128.checked_pow(exp10 as u32)?)?
    } else {
        let div = 10i128.checked_pow((-exp10) as u32).unwrap_or(i128::MAX);
        let q = mantissa / div;
        if mantissa % div != 0 { q + 1 } else { q }
    };
    let value = if negative { -value } else { value };
    Some(value.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64)
}

/// Milli-units of a quantity ("250m" → 250, "1" → 1000).
pub fn milli_value(s: &str) -> Option<i64> {
    parse_scaled(s, 3)
}

/// Whole units of a quantity, rounded up ("1Ki" → 1024, "100m" → 1).
pub fn value(s: &str) -> Option<i64> {
    parse_scaled(s, 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_quantities_in_millis() {
        assert_eq!(milli_value("100m"), Some(100));
        assert_eq!(milli_value("1"), Some(1000));
        assert_eq!(milli_value("0.5"), Some(500));
        assert_eq!(milli_value("2.25"), Some(2250));
        assert_eq!(milli_value("1500u"), Some(2));
        assert_eq!(milli_value("1e3"), Some(1_000_000));
    }

    #[test]
    fn memory_quantities_in_bytes() {
        assert_eq!(value("1Ki"), Some(1024));
        assert_eq!(value("1.5Gi"), Some(1_610_612_736));
        assert_eq!(value("128M"), Some(128_000_000));
        assert_eq!(value("100m"), Some(1));
        assert_eq!(value("110"), Some(110));
    }

    #[test]
    fn garbage_is_rejected() {
        assert_eq!(value(""), None);
        assert_eq!(value("abc"), None);
        assert_eq!(value("1.2.3"), None);
        assert_eq!(value("5Xi"), None);
    }
}
