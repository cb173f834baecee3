//! Property tests: printing a parsed selector and parsing it again gives the
//! same selector, and matching follows each operator's meaning.

use super::label::{Operator, Requirement, parse};
use proptest::prelude::*;
use serde_json::{Map, Value};

fn key() -> impl Strategy<Value = String> {
    (
        "([a-z]{1,2}(\\.[a-z]{1,3})?/)?",
        "[a-zA-Z0-9]([a-z0-9_.-]{0,6}[a-z0-9])?",
    )
        .prop_map(|(p, n)| format!("{p}{n}"))
        .prop_filter("not a keyword", |k| k != "in" && k != "notin")
}

fn value() -> impl Strategy<Value = String> {
    "([a-zA-Z0-9]([a-z0-9_.-]{0,5}[a-z0-9])?)?".prop_filter("not a keyword", |v| v != "in" && v != "notin")
}

fn requirement() -> impl Strategy<Value = Requirement> {
    let op = prop_oneof![
        Just(Operator::Equals),
        Just(Operator::DoubleEquals),
        Just(Operator::NotEquals),
        Just(Operator::In),
        Just(Operator::NotIn),
        Just(Operator::Exists),
        Just(Operator::DoesNotExist),
    ];
    (key(), op, proptest::collection::vec(value(), 1..4)).prop_map(|(k, op, vals)| {
        let vals = match op {
            Operator::Exists | Operator::DoesNotExist => Vec::new(),
            Operator::In | Operator::NotIn => vals,
            _ => vals.into_iter().take(1).collect(),
        };
        Requirement::new(&k, op, vals, "").unwrap_or_else(|e| panic!("generated an invalid requirement: {e}"))
    })
}

fn render(reqs: &[Requirement]) -> String {
    reqs.iter().map(ToString::to_string).collect::<Vec<_>>().join(",")
}

proptest! {
    #[test]
    fn print_parse_round_trip(reqs in proptest::collection::vec(requirement(), 0..5)) {
        let printed = render(&reqs);
        let parsed = parse(&printed).map_err(TestCaseError::fail)?;
        let mut sorted = reqs.clone();
        sorted.sort_by(|a, b| a.key.cmp(&b.key));
        prop_assert_eq!(&parsed, &sorted);
        prop_assert_eq!(parse(&render(&parsed)).map_err(TestCaseError::fail)?, parsed);
    }

    #[test]
    fn matching_follows_operator_meaning(
        r in requirement(),
        labels in proptest::collection::btree_map(key(), value(), 0..4),
    ) {
        let map: Map<String, Value> = labels.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect();
        let got = labels.get(&r.key);
        let in_values = got.is_some_and(|v| r.values.contains(v));
        let expected = match r.operator {
            Operator::Equals | Operator::DoubleEquals | Operator::In => in_values,
            Operator::NotEquals | Operator::NotIn => !in_values,
            Operator::Exists => got.is_some(),
            Operator::DoesNotExist => got.is_none(),
            Operator::GreaterThan | Operator::LessThan => return Ok(()),
        };
        prop_assert_eq!(r.matches(Some(&Value::Object(map))), expected);
    }
}
