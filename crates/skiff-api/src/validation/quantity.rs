//! Resource quantities (`500m`, `1Gi`, `2e3`) parsed exactly enough to compare
//! requests with limits and to decide a pod's QoS class.

use std::fmt;

/// A parsed `resource.Quantity`, held in billionths of a unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Quantity {
    nanos: i128,
}

/// Why a quantity string failed to parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'")]
pub struct QuantityError;

impl Quantity {
    /// Parses upstream's quantity syntax: a signed decimal number and an
    /// optional binary (`Ki`..`Ei`), decimal (`n`..`E`) or exponent suffix.
    pub fn parse(s: &str) -> Result<Quantity, QuantityError> {
        let s = s.trim();
        let (sign, rest) = match s.as_bytes().first() {
            Some(b'-') => (-1, &s[1..]),
            Some(b'+') => (1, &s[1..]),
            _ => (1, s),
        };
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, suffix) = rest.split_at(num_end);
        if number.is_empty() || number == "." || number.matches('.').count() > 1 {
            return Err(QuantityError);
        }
        let (int_part, frac_part) = number.split_once('.').unwrap_or((number, ""));
        let digits = format!("{int_part}{frac_part}");
        let digits = digits.trim_start_matches('0');
        if digits.len() > 30 {
            return Err(QuantityError);
        }
        let mantissa: i128 = if digits.is_empty() {
            0
        } else {
            digits.parse().map_err(|_| QuantityError)?
        };
        // value = mantissa * 10^(exp10 - frac_len) * 2^exp2, in units; held as nanos.
        let (exp10, exp2): (i32, u32) = match suffix {
            "" => (0, 0),
            "n" => (-9, 0),
            "u" => (-6, 0),
            "m" => (-3, 0),
            "k" => (3, 0),
            "M" => (6, 0),
            "G" => (9, 0),
            "T" => (12, 0),
            "P" => (15, 0),
            "E" => (18, 0),
            "Ki" => (0, 10),
            "Mi" => (0, 20),
            "Gi" => (0, 30),
            "Ti" => (0, 40),
            "Pi" => (0, 50),
            "Ei" => (0, 60),
            e if e.starts_with(['e', 'E']) => (e[1..].parse::<i32>().map_err(|_| QuantityError)?, 0),
            _ => return Err(QuantityError),
        };
        let frac_len = i32::try_from(frac_part.len()).map_err(|_| QuantityError)?;
        let exp = exp10 - frac_len + 9;
        let mut nanos = mantissa.checked_mul(1i128 << exp2).ok_or(QuantityError)?;
        if exp >= 0 {
            let factor = 10i128.checked_pow(exp.unsigned_abs()).ok_or(QuantityError)?;
            nanos = nanos.checked_mul(factor).ok_or(QuantityError)?;
        } else {
            let divisor = 10i128.checked_pow(exp.unsigned_abs()).ok_or(QuantityError)?;
            // Round up as upstream does for sub-nano precision.
            nanos = (nanos + divisor - 1) / divisor;
        }
        Ok(Quantity { nanos: sign * nanos })
    }

    /// True for a zero quantity.
    pub fn is_zero(&self) -> bool {
        self.nanos == 0
    }

    /// True for a negative quantity.
    pub fn is_negative(&self) -> bool {
        self.nanos < 0
    }

    /// The value in thousandths, rounded up (CPU millicores).
    pub fn milli(&self) -> i128 {
        (self.nanos + 999_999).div_euclid(1_000_000)
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}n", self.nanos)
    }
}

#[cfg(test)]
mod tests {
    use super::Quantity;

    #[test]
    fn parses_upstream_forms() {
        let q = |s| Quantity::parse(s).unwrap();
        assert_eq!(q("1"), q("1000m"));
        assert_eq!(q("0.5"), q("500m"));
        assert_eq!(q("1Ki"), q("1024"));
        assert_eq!(q("1k"), q("1e3"));
        assert_eq!(q("128Mi"), q("134217728"));
        assert!(q("2") > q("1500m"));
        assert_eq!(q("250m").milli(), 250);
        assert!(Quantity::parse("abc").is_err());
        assert!(Quantity::parse("1Qi").is_err());
        assert!(Quantity::parse("").is_err());
    }
}
