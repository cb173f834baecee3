//! Property tests: strategic merge patch agrees with JSON merge patch where
//! no list is involved, field sets survive their `fieldsV1` encoding, and
//! server-side apply is idempotent and removes exactly what was dropped.

use super::fieldset::{self, FieldSet};
use super::schema::Node;
use super::{ApplyRequest, server_side_apply, strategic};
use crate::registry::Registry;
use proptest::prelude::*;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i32>().prop_map(|i| json!(i)),
        "[a-z]{0,4}".prop_map(Value::String),
    ]
}

fn tree() -> impl Strategy<Value = Value> {
    scalar().prop_recursive(3, 24, 4, |inner| {
        proptest::collection::btree_map("[a-d]", inner, 0..4)
            .prop_map(|m| Value::Object(m.into_iter().collect::<Map<String, Value>>()))
    })
}

fn labels() -> impl Strategy<Value = BTreeMap<String, String>> {
    proptest::collection::btree_map("[a-f]{1,3}", "[a-z0-9]{0,4}", 0..5)
}

fn deployment(labels: &BTreeMap<String, String>, images: &[String]) -> Value {
    let containers: Vec<Value> = images
        .iter()
        .enumerate()
        .map(|(i, img)| json!({"name": format!("c{i}"), "image": img}))
        .collect();
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "labels": labels},
        "spec": {"template": {"spec": {"containers": containers}}}})
}

fn apply(current: Option<&Value>, applied: &Value) -> Value {
    let reg = Registry::builtin();
    let def = reg
        .find("apps", "v1", "deployments")
        .unwrap_or_else(|| panic!("deployments registered"));
    let req = ApplyRequest {
        def,
        current,
        applied,
        manager: "kubectl",
        force: false,
        now: "2026-01-01T00:00:00Z",
        subresource: "",
    };
    server_side_apply(&req).unwrap_or_else(|e| panic!("apply failed: {e}"))
}

proptest! {
    #[test]
    fn strategic_equals_json_merge_without_lists(doc in tree(), patch in tree()) {
        prop_assume!(patch.is_object());
        let mut expected = doc.clone();
        json_patch::merge(&mut expected, &patch);
        let got = strategic::apply(&doc, &patch, Node::unknown()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        if doc.is_object() {
            prop_assert_eq!(got, expected);
        }
    }

    #[test]
    fn field_sets_round_trip_through_fields_v1(l in labels(), images in proptest::collection::vec("[a-z]{1,5}", 0..4)) {
        let reg = Registry::builtin();
        let def = reg.find("apps", "v1", "deployments").unwrap_or_else(|| panic!("registered"));
        let obj = deployment(&l, &images);
        for set in [FieldSet::from_object(&obj, Node::root(def)), FieldSet::from_object_for_update(&obj, Node::root(def))] {
            prop_assert_eq!(FieldSet::from_fields_v1(&set.to_fields_v1()), set.clone());
            prop_assert!(set.difference(&set).is_empty());
            let mut u = set.clone();
            u.union(&set);
            prop_assert_eq!(u, set);
        }
    }

    #[test]
    fn changed_fields_are_those_added_or_with_a_new_value(
        a in labels(),
        b in labels(),
        images_a in proptest::collection::vec("[a-c]{1,2}", 0..4),
        images_b in proptest::collection::vec("[a-c]{1,2}", 0..4),
    ) {
        let reg = Registry::builtin();
        let def = reg.find("apps", "v1", "deployments").unwrap_or_else(|| panic!("registered"));
        let (old, new) = (deployment(&a, &images_a), deployment(&b, &images_b));
        let set = FieldSet::from_object_for_update(&new, Node::root(def));
        let fast = fieldset::changed(&set, &old, &new);
        let mut slow = FieldSet::default();
        for path in set.paths() {
            let before = fieldset::get(&old, &path);
            if before.is_none() || (!set.has_children_at(&path) && before != fieldset::get(&new, &path)) {
                slow.insert(&path);
            }
        }
        prop_assert_eq!(fast, slow);
    }

    #[test]
    fn apply_is_idempotent_and_removes_dropped_fields(
        first in labels(),
        second in labels(),
        images in proptest::collection::vec("[a-z]{1,5}", 1..4),
    ) {
        let once = apply(None, &deployment(&first, &images));
        let twice = apply(Some(&once), &deployment(&first, &images));
        prop_assert_eq!(&once, &twice);
        let next = apply(Some(&once), &deployment(&second, &images[..1]));
        let got: BTreeMap<String, String> = next["metadata"]["labels"]
            .as_object()
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string())).collect())
            .unwrap_or_default();
        prop_assert_eq!(got, second);
        prop_assert_eq!(next["spec"]["template"]["spec"]["containers"].as_array().map(Vec::len), Some(1));
    }
}
