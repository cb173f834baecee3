//! Quantities as resource quota adds them up: a value in thousandths of a
//! unit plus the format of the quantity it came from, printed in upstream's
//! canonical form ("500m", "1", "256Mi", "1k") for `status.used` and the
//! admission messages.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt;

use serde_json::Value;

use crate::validation::quantity::Quantity;

/// How an amount prints: with decimal (`k`, `M`, `m`) or binary (`Ki`, `Mi`) suffixes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Decimal SI suffixes (and plain counts).
    DecimalSi,
    /// Binary SI suffixes, as `Mi` quantities keep.
    BinarySi,
}

/// A summable quantity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Amount {
    milli: i128,
    format: Format,
}

/// Resource name to amount, as a `ResourceList`.
pub type ResourceList = BTreeMap<String, Amount>;

impl Amount {
    /// Zero, printed "0".
    pub const ZERO: Amount = Amount {
        milli: 0,
        format: Format::DecimalSi,
    };

    /// A whole count (`pods=1`).
    pub fn count(n: i64) -> Amount {
        Amount {
            milli: i128::from(n) * 1000,
            format: Format::DecimalSi,
        }
    }

    /// Parses a quantity string; `None` if it is not one.
    pub fn parse(s: &str) -> Option<Amount> {
        let q = Quantity::parse(s).ok()?;
        let format = if s.trim_end().ends_with('i') {
            Format::BinarySi
        } else {
            Format::DecimalSi
        };
        Some(Amount {
            milli: q.milli(),
            format,
        })
    }

    /// The value in thousandths of a unit.
    pub fn milli(&self) -> i128 {
        self.milli
    }

    /// The sum; keeps the format of the first non-zero operand, as upstream's `Quantity.Add`.
    pub fn plus(self, other: Amount) -> Amount {
        Amount {
            milli: self.milli + other.milli,
            format: if self.milli == 0 {
                other.format
            } else {
                self.format
            },
        }
    }

    /// The larger of two amounts.
    pub fn max(self, other: Amount) -> Amount {
        if other.milli > self.milli { other } else { self }
    }

    /// The difference, never below zero.
    pub fn minus(self, other: Amount) -> Amount {
        Amount {
            milli: (self.milli - other.milli).max(0),
            format: self.format,
        }
    }
}

impl PartialOrd for Amount {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Amount {
    fn cmp(&self, other: &Self) -> Ordering {
        self.milli.cmp(&other.milli)
    }
}

const DECIMAL: [(u32, &str); 6] = [(18, "E"), (15, "P"), (12, "T"), (9, "G"), (6, "M"), (3, "k")];
const BINARY: [(u32, &str); 6] = [
    (60, "Ei"),
    (50, "Pi"),
    (40, "Ti"),
    (30, "Gi"),
    (20, "Mi"),
    (10, "Ki"),
];

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.milli % 1000 != 0 {
            return write!(f, "{}m", self.milli);
        }
        let units = self.milli / 1000;
        if units == 0 {
            return f.write_str("0");
        }
        if self.format == Format::BinarySi {
            if units.abs() < 1024 {
                return write!(f, "{units}");
            }
            for (shift, suffix) in BINARY {
                let base = 1i128 << shift;
                if units % base == 0 {
                    return write!(f, "{}{suffix}", units / base);
                }
            }
            return write!(f, "{units}");
        }
        for (exp, suffix) in DECIMAL {
            let base = 10i128.pow(exp);
            if units % base == 0 {
                return write!(f, "{}{suffix}", units / base);
            }
        }
        write!(f, "{units}")
    }
}

/// Parses a JSON `ResourceList` (`{"cpu": "1", ...}`); unparsable entries are skipped.
pub fn parse_list(v: Option<&Value>) -> ResourceList {
    v.and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter_map(|(k, q)| {
            let amount = match q {
                Value::String(s) => Amount::parse(s)?,
                Value::Number(n) => Amount::parse(&n.to_string())?,
                _ => return None,
            };
            Some((k.clone(), amount))
        })
        .collect()
}

/// Adds `b` into `a`, key by key.
pub fn add_into(a: &mut ResourceList, b: &ResourceList) {
    for (k, v) in b {
        let sum = a.get(k).copied().unwrap_or(Amount::ZERO).plus(*v);
        a.insert(k.clone(), sum);
    }
}

/// The JSON form of a list (canonical quantity strings).
pub fn to_json(list: &ResourceList) -> Value {
    Value::Object(
        list.iter()
            .map(|(k, v)| (k.clone(), Value::String(v.to_string())))
            .collect(),
    )
}

/// Upstream's `prettyPrint`: `a=1,b=2` in key order.
pub fn pretty(list: &ResourceList) -> String {
    list.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> Amount {
        Amount::parse(s).unwrap()
    }

    #[test]
    fn prints_canonical_forms() {
        assert_eq!(a("500m").to_string(), "500m");
        assert_eq!(a("0.5").to_string(), "500m");
        assert_eq!(a("1000m").to_string(), "1");
        assert_eq!(a("2").to_string(), "2");
        assert_eq!(a("1000").to_string(), "1k");
        assert_eq!(a("1Gi").to_string(), "1Gi");
        assert_eq!(a("1.5Gi").to_string(), "1536Mi");
        assert_eq!(a("100Mi").plus(a("156Mi")).to_string(), "256Mi");
        assert_eq!(a("1G").to_string(), "1G");
        assert_eq!(Amount::ZERO.to_string(), "0");
    }

    #[test]
    fn sums_keep_the_first_non_zero_format() {
        assert_eq!(Amount::ZERO.plus(a("128Mi")).to_string(), "128Mi");
        assert_eq!(a("250m").plus(a("750m")).to_string(), "1");
        assert!(a("1") > a("999m"));
    }

    #[test]
    fn pretty_prints_sorted_pairs() {
        let mut l = ResourceList::new();
        l.insert("requests.cpu".into(), a("500m"));
        l.insert("pods".into(), Amount::count(1));
        assert_eq!(pretty(&l), "pods=1,requests.cpu=500m");
    }
}
