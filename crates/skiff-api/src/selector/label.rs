//! The label selector language of upstream's `labels.Parse`: a lexer, a
//! recursive-descent parser producing [`Requirement`]s, their matching
//! against a label map, and their canonical string form.
//!
//! Errors carry upstream's wording; the caller wraps them as 400 BadRequest.

use super::lexer::{Tok, lex};
use super::validate::{label_value_errors, qualified_name_errors};
use serde_json::Value;
use std::fmt;

/// A requirement's operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operator {
    /// `key=value`
    Equals,
    /// `key==value`
    DoubleEquals,
    /// `key!=value`
    NotEquals,
    /// `key in (a,b)`
    In,
    /// `key notin (a,b)`
    NotIn,
    /// `key`
    Exists,
    /// `!key`
    DoesNotExist,
    /// `key>5` (integer comparison)
    GreaterThan,
    /// `key<5` (integer comparison)
    LessThan,
}

/// One `key op values` term of a selector.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Requirement {
    pub key: String,
    pub operator: Operator,
    /// Sorted, without duplicates.
    pub values: Vec<String>,
}

/// Formats a value list as Go's `%#v` of a `[]string`.
fn go_string_slice(vals: &[String]) -> String {
    let quoted: Vec<String> = vals.iter().map(|v| format!("{v:?}")).collect();
    format!("[]string{{{}}}", quoted.join(", "))
}

impl Requirement {
    /// Builds and validates a requirement as upstream's `NewRequirement`.
    /// `path` prefixes field paths in messages (`<nil>` at the top level of a
    /// query string, `matchExpressions[0]` inside a `LabelSelector`).
    pub fn new(key: &str, operator: Operator, mut values: Vec<String>, path: &str) -> Result<Self, String> {
        let child = |c: &str| {
            if path.is_empty() {
                c.to_string()
            } else {
                format!("{path}.{c}")
            }
        };
        let mut errs = Vec::new();
        let key_errs = qualified_name_errors(key);
        if !key_errs.is_empty() {
            errs.push(format!(
                "{}: Invalid value: {key:?}: {}",
                child("key"),
                key_errs.join("; ")
            ));
        }
        let vpath = child("values");
        match operator {
            Operator::In | Operator::NotIn if values.is_empty() => errs.push(format!(
                "{vpath}: Invalid value: {}: for 'in', 'notin' operators, values set can't be empty",
                go_string_slice(&values)
            )),
            Operator::Equals | Operator::DoubleEquals | Operator::NotEquals if values.len() != 1 => errs
                .push(format!(
                    "{vpath}: Invalid value: {}: exact-match compatibility requires one single value",
                    go_string_slice(&values)
                )),
            Operator::Exists | Operator::DoesNotExist if !values.is_empty() => errs.push(format!(
                "{vpath}: Invalid value: {}: values set must be empty for exists and does not exist",
                go_string_slice(&values)
            )),
            Operator::GreaterThan | Operator::LessThan => {
                if values.len() != 1 {
                    errs.push(format!(
                        "{vpath}: Invalid value: {}: for 'Gt', 'Lt' operators, exactly one value is required",
                        go_string_slice(&values)
                    ));
                }
                for (i, v) in values.iter().enumerate() {
                    if v.parse::<i64>().is_err() {
                        errs.push(format!(
                            "{vpath}[{i}]: Invalid value: {v:?}: for 'Gt', 'Lt' operators, the value must be an integer"
                        ));
                    }
                }
            }
            _ => {}
        }
        for (i, v) in values.iter().enumerate() {
            let v_errs = label_value_errors(v);
            if !v_errs.is_empty() {
                errs.push(format!(
                    "{vpath}[{i}][{key}]: Invalid value: {v:?}: {}",
                    v_errs.join("; ")
                ));
            }
        }
        match errs.len() {
            0 => {
                values.sort();
                values.dedup();
                Ok(Requirement {
                    key: key.to_string(),
                    operator,
                    values,
                })
            }
            1 => Err(errs.remove(0)),
            _ => Err(format!("[{}]", errs.join(", "))),
        }
    }

    /// Whether a label map (`metadata.labels`, possibly absent) satisfies this requirement.
    pub fn matches(&self, labels: Option<&Value>) -> bool {
        let got = labels.and_then(|l| l.get(&self.key)).and_then(Value::as_str);
        let has = |v: &str| self.values.iter().any(|x| x == v);
        match self.operator {
            Operator::Equals | Operator::DoubleEquals | Operator::In => got.is_some_and(has),
            Operator::NotEquals | Operator::NotIn => !got.is_some_and(has),
            Operator::Exists => got.is_some(),
            Operator::DoesNotExist => got.is_none(),
            Operator::GreaterThan | Operator::LessThan => {
                let (Some(got), Some(want)) = (got, self.values.first()) else {
                    return false;
                };
                match (got.parse::<i64>(), want.parse::<i64>()) {
                    (Ok(g), Ok(w)) if self.operator == Operator::GreaterThan => g > w,
                    (Ok(g), Ok(w)) => g < w,
                    _ => false,
                }
            }
        }
    }
}

impl fmt::Display for Requirement {
    /// Upstream's `Requirement.String()`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let first = self.values.first().map(String::as_str).unwrap_or("");
        match self.operator {
            Operator::Equals => write!(f, "{}={first}", self.key),
            Operator::DoubleEquals => write!(f, "{}=={first}", self.key),
            Operator::NotEquals => write!(f, "{}!={first}", self.key),
            Operator::In => write!(f, "{} in ({})", self.key, self.values.join(",")),
            Operator::NotIn => write!(f, "{} notin ({})", self.key, self.values.join(",")),
            Operator::Exists => write!(f, "{}", self.key),
            Operator::DoesNotExist => write!(f, "!{}", self.key),
            Operator::GreaterThan => write!(f, "{}>{first}", self.key),
            Operator::LessThan => write!(f, "{}<{first}", self.key),
        }
    }
}

struct Parser {
    items: Vec<(Tok, String)>,
    pos: usize,
}

/// In value context `in`/`notin` are ordinary identifiers.
fn as_value(t: Tok) -> Tok {
    if matches!(t, Tok::In | Tok::NotIn) {
        Tok::Ident
    } else {
        t
    }
}

impl Parser {
    fn peek(&self) -> (Tok, String) {
        let (t, l) = self
            .items
            .get(self.pos)
            .cloned()
            .unwrap_or((Tok::End, String::new()));
        (as_value(t), l)
    }

    fn next_raw(&mut self) -> (Tok, String) {
        let item = self
            .items
            .get(self.pos)
            .cloned()
            .unwrap_or((Tok::End, String::new()));
        self.pos += 1;
        item
    }

    fn next(&mut self) -> (Tok, String) {
        let (t, l) = self.next_raw();
        (as_value(t), l)
    }

    fn parse(&mut self) -> Result<Vec<Requirement>, String> {
        let mut reqs = Vec::new();
        loop {
            let (t, lit) = self.peek();
            match t {
                Tok::Ident | Tok::DoesNotExist => {
                    let r = self
                        .requirement()
                        .map_err(|e| format!("unable to parse requirement: {e}"))?;
                    reqs.push(r);
                    let (t, l) = self.next();
                    match t {
                        Tok::End => return Ok(reqs),
                        Tok::Comma => {
                            let (t2, l2) = self.peek();
                            if t2 != Tok::Ident && t2 != Tok::DoesNotExist {
                                return Err(format!("found '{l2}', expected: identifier after ','"));
                            }
                        }
                        _ => return Err(format!("found '{l}', expected: ',' or 'end of string'")),
                    }
                }
                Tok::End => return Ok(reqs),
                _ => {
                    return Err(format!(
                        "found '{lit}', expected: !, identifier, or 'end of string'"
                    ));
                }
            }
        }
    }

    fn requirement(&mut self) -> Result<Requirement, String> {
        let (mut t, mut key) = self.next();
        let negated = t == Tok::DoesNotExist;
        if negated {
            (t, key) = self.next();
        }
        if t != Tok::Ident {
            return Err(format!("found '{key}', expected: identifier"));
        }
        let key_errs = qualified_name_errors(&key);
        if !key_errs.is_empty() {
            return Err(format!("<nil>: Invalid value: {key:?}: {}", key_errs.join("; ")));
        }
        let (next, _) = self.peek();
        if negated || matches!(next, Tok::End | Tok::Comma) {
            let op = if negated {
                Operator::DoesNotExist
            } else {
                Operator::Exists
            };
            return Requirement::new(&key, op, Vec::new(), "");
        }
        let (t, lit) = self.next_raw();
        let op = match t {
            Tok::In => Operator::In,
            Tok::NotIn => Operator::NotIn,
            Tok::Equals => Operator::Equals,
            Tok::DoubleEquals => Operator::DoubleEquals,
            Tok::NotEquals => Operator::NotEquals,
            Tok::GreaterThan => Operator::GreaterThan,
            Tok::LessThan => Operator::LessThan,
            _ => return Err(format!("found '{lit}', expected: '=', '!=', '==', 'in', notin'")),
        };
        let values = if matches!(op, Operator::In | Operator::NotIn) {
            self.set_values()?
        } else {
            self.exact_value()?
        };
        Requirement::new(&key, op, values, "")
    }

    fn set_values(&mut self) -> Result<Vec<String>, String> {
        let (t, lit) = self.next();
        if t != Tok::OpenPar {
            return Err(format!("found '{lit}' expected: '('"));
        }
        let (t, lit) = self.peek();
        match t {
            Tok::Ident | Tok::Comma => {
                let values = self.identifier_list()?;
                let (t, _) = self.next();
                if t != Tok::ClosedPar {
                    return Err(format!("found '{lit}', expected: ')'"));
                }
                Ok(values)
            }
            Tok::ClosedPar => {
                self.next();
                Ok(vec![String::new()])
            }
            _ => Err(format!("found '{lit}', expected: ',', ')' or identifier")),
        }
    }

    fn identifier_list(&mut self) -> Result<Vec<String>, String> {
        let mut values: Vec<String> = Vec::new();
        loop {
            let (t, lit) = self.next();
            match t {
                Tok::Ident => {
                    values.push(lit);
                    let (t2, l2) = self.peek();
                    match t2 {
                        Tok::Comma => continue,
                        Tok::ClosedPar => return Ok(values),
                        _ => return Err(format!("found '{l2}', expected: ',' or ')'")),
                    }
                }
                Tok::Comma => {
                    if values.is_empty() {
                        values.push(String::new());
                    }
                    let (t2, _) = self.peek();
                    if t2 == Tok::ClosedPar {
                        values.push(String::new());
                        return Ok(values);
                    }
                    if t2 == Tok::Comma {
                        self.next();
                        values.push(String::new());
                    }
                }
                _ => return Err(format!("found '{lit}', expected: ',', or identifier")),
            }
        }
    }

    fn exact_value(&mut self) -> Result<Vec<String>, String> {
        let (t, _) = self.peek();
        if matches!(t, Tok::End | Tok::Comma) {
            return Ok(vec![String::new()]);
        }
        let (t, lit) = self.next();
        if t == Tok::Ident {
            Ok(vec![lit])
        } else {
            Err(format!("found '{lit}', expected: identifier"))
        }
    }
}

/// Parses the query-parameter form into requirements sorted by key.
pub fn parse(s: &str) -> Result<Vec<Requirement>, String> {
    let mut p = Parser {
        items: lex(s),
        pos: 0,
    };
    let mut reqs = p.parse()?;
    reqs.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(reqs)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn show(s: &str) -> String {
        parse(s)
            .map(|r| r.iter().map(ToString::to_string).collect::<Vec<_>>().join(","))
            .unwrap_or_else(|e| e)
    }

    #[test]
    fn parses_every_operator_and_prints_canonically() {
        assert_eq!(show("app=web, tier==fe,env!=prod"), "app=web,env!=prod,tier==fe");
        assert_eq!(
            show("env in (prod, qa),x notin (b,a)"),
            "env in (prod,qa),x notin (a,b)"
        );
        assert_eq!(show("!canary,track"), "!canary,track");
        assert_eq!(
            show("x in (foo,,baz),y,z notin ()"),
            "x in (,baz,foo),y,z notin ()"
        );
        assert_eq!(show("a=,b"), "a=,b");
        assert_eq!(show("in in (in, notin)"), "in in (in,notin)");
        assert_eq!(show("replicas>3"), "replicas>3");
        assert_eq!(show(""), "");
    }

    #[test]
    fn reports_syntax_errors_like_upstream() {
        assert_eq!(show("app=web,"), "found '', expected: identifier after ','");
        assert_eq!(
            show("app web"),
            "unable to parse requirement: found 'web', expected: '=', '!=', '==', 'in', notin'"
        );
        assert_eq!(show("a=b c"), "found 'c', expected: ',' or 'end of string'");
        assert_eq!(
            show("a in b"),
            "unable to parse requirement: found 'b' expected: '('"
        );
        assert_eq!(
            show("(a)"),
            "found '(', expected: !, identifier, or 'end of string'"
        );
        assert_eq!(
            show("a in (b c)"),
            "unable to parse requirement: found 'c', expected: ',' or ')'"
        );
        assert_eq!(
            show("a=>b"),
            "unable to parse requirement: found '>', expected: identifier"
        );
    }

    #[test]
    fn reports_invalid_keys_and_values_like_upstream() {
        assert!(show("-bad=x").starts_with(
            "unable to parse requirement: <nil>: Invalid value: \"-bad\": name part must consist of"
        ));
        assert!(show("app=a$b").starts_with(
            "unable to parse requirement: values[0][app]: Invalid value: \"a$b\": a valid label must be"
        ));
        assert_eq!(
            show("n>x"),
            "unable to parse requirement: values[0]: Invalid value: \"x\": for 'Gt', 'Lt' operators, the value must be an integer"
        );
    }

    #[test]
    fn matches_labels() {
        let labels = json!({"app": "web", "env": "prod", "n": "5"});
        let m = |s: &str| parse(s).map(|r| r.iter().all(|r| r.matches(Some(&labels))));
        assert_eq!(m("app=web,env in (prod,qa)"), Ok(true));
        assert_eq!(m("app!=web"), Ok(false));
        assert_eq!(m("missing!=x,tier notin (fe),!canary"), Ok(true));
        assert_eq!(m("env notin (prod)"), Ok(false));
        assert_eq!(m("app,!env"), Ok(false));
        assert_eq!(m("n>4,n<6"), Ok(true));
        assert!(!parse("app").map(|r| r[0].matches(None)).unwrap_or(true));
    }
}
