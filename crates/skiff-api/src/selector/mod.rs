//! Label and field selectors as the `labelSelector` / `fieldSelector` query
//! parameters and `metav1.LabelSelector` objects express them.
//!
//! Owns parsing (with upstream's error messages), matching and printing.
//! Must not: know about storage or HTTP; callers pass objects as JSON.

#![allow(clippy::result_large_err)] // ApiError is the crate-wide API error; callers move it on unchanged.

pub mod field;
pub mod label;
mod lexer;
#[cfg(test)]
mod proptests;
pub mod validate;

pub use field::{FieldOp, FieldRequirement};
pub use label::{Operator, Requirement};

use crate::registry::ResourceDef;
use crate::status::ApiError;
use serde_json::Value;
use std::fmt;

/// A parsed label selector (`a=b,c!=d,e in (x,y),!f,g`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelSelector {
    requirements: Vec<Requirement>,
    /// Selects nothing (a null `metav1.LabelSelector`).
    nothing: bool,
}

impl LabelSelector {
    /// Parses the query-parameter form. Empty selects everything.
    pub fn parse(s: &str) -> Result<Self, ApiError> {
        let requirements = label::parse(s).map_err(ApiError::bad_request)?;
        Ok(LabelSelector {
            requirements,
            nothing: false,
        })
    }

    /// A selector that selects nothing (upstream's `labels.Nothing()`).
    pub fn nothing() -> Self {
        LabelSelector {
            requirements: Vec::new(),
            nothing: true,
        }
    }

    /// Converts a `metav1.LabelSelector` object (`matchLabels` and
    /// `matchExpressions` with In/NotIn/Exists/DoesNotExist) as upstream's
    /// `LabelSelectorAsSelector`: `null` selects nothing, `{}` everything.
    pub fn from_label_selector(sel: &Value) -> Result<Self, ApiError> {
        if sel.is_null() {
            return Ok(Self::nothing());
        }
        let mut requirements = Vec::new();
        if let Some(labels) = sel.get("matchLabels").and_then(Value::as_object) {
            for (k, v) in labels {
                let v = v.as_str().unwrap_or_default().to_string();
                let r = Requirement::new(k, Operator::Equals, vec![v], "").map_err(ApiError::bad_request)?;
                requirements.push(r);
            }
        }
        let exprs = sel.get("matchExpressions").and_then(Value::as_array);
        for (i, expr) in exprs.into_iter().flatten().enumerate() {
            let key = expr.get("key").and_then(Value::as_str).unwrap_or_default();
            let op_name = expr.get("operator").and_then(Value::as_str).unwrap_or_default();
            let op = match op_name {
                "In" => Operator::In,
                "NotIn" => Operator::NotIn,
                "Exists" => Operator::Exists,
                "DoesNotExist" => Operator::DoesNotExist,
                other => {
                    return Err(ApiError::bad_request(format!(
                        "{other:?} is not a valid label selector operator"
                    )));
                }
            };
            let values: Vec<String> = expr
                .get("values")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect();
            let path = format!("matchExpressions[{i}]");
            requirements.push(Requirement::new(key, op, values, &path).map_err(ApiError::bad_request)?);
        }
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(LabelSelector {
            requirements,
            nothing: false,
        })
    }

    /// A selector from a plain label map (a Service's or ReplicationController's
    /// `spec.selector`), as upstream's `SelectorFromSet`: every pair must
    /// match; an absent or empty map selects everything.
    pub fn from_set(set: Option<&Value>) -> Result<Self, ApiError> {
        match set {
            Some(Value::Object(m)) if !m.is_empty() => {
                Self::from_label_selector(&serde_json::json!({ "matchLabels": m }))
            }
            _ => Ok(LabelSelector::default()),
        }
    }

    /// True when the selector selects everything.
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty() && !self.nothing
    }

    /// The requirements, sorted by key.
    pub fn requirements(&self) -> &[Requirement] {
        &self.requirements
    }

    /// Whether an object with these labels (`metadata.labels`, may be absent) matches.
    pub fn matches(&self, labels: Option<&Value>) -> bool {
        !self.nothing && self.requirements.iter().all(|r| r.matches(labels))
    }

    /// Whether a whole object matches, reading its `metadata.labels`.
    pub fn matches_object(&self, obj: &Value) -> bool {
        self.matches(obj.get("metadata").and_then(|m| m.get("labels")))
    }
}

impl fmt::Display for LabelSelector {
    /// The canonical query-parameter form (upstream's `Selector.String()`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.requirements.iter().map(ToString::to_string).collect();
        f.write_str(&parts.join(","))
    }
}

/// A parsed field selector (`metadata.name=x,spec.nodeName!=`), bound to the
/// resource whose field labels it was checked against.
#[derive(Debug, Clone, Default)]
pub struct FieldSelector {
    requirements: Vec<FieldRequirement>,
    def: Option<ResourceDef>,
}

impl PartialEq for FieldSelector {
    fn eq(&self, other: &Self) -> bool {
        self.requirements == other.requirements
    }
}

impl Eq for FieldSelector {}

impl FieldSelector {
    /// Parses the query-parameter form and checks each field label is
    /// supported for `def` (400 `field label not supported: <label>` if not).
    pub fn parse(s: &str, def: &ResourceDef) -> Result<Self, ApiError> {
        let requirements = field::parse(s, def)?;
        Ok(FieldSelector {
            requirements,
            def: Some(def.clone()),
        })
    }

    /// True when the selector selects everything.
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// The terms, in the order given.
    pub fn requirements(&self) -> &[FieldRequirement] {
        &self.requirements
    }

    /// The value a single `field=value` term requires, if the selector has
    /// one (lets callers index, e.g. `spec.nodeName=n1`).
    pub fn exact_value(&self, field: &str) -> Option<&str> {
        self.requirements
            .iter()
            .find(|r| r.field == field && r.op == FieldOp::Equals)
            .map(|r| r.value.as_str())
    }

    /// Whether the whole object matches.
    pub fn matches(&self, obj: &Value) -> bool {
        match &self.def {
            Some(def) => self.requirements.iter().all(|r| r.matches(def, obj)),
            None => true,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn query_selector_round_trips_and_errors_are_bad_requests() {
        let s = LabelSelector::parse("tier in (fe, be),app=web").unwrap();
        assert_eq!(s.to_string(), "app=web,tier in (be,fe)");
        assert_eq!(LabelSelector::parse(&s.to_string()).unwrap(), s);
        let err = LabelSelector::parse("app=")
            .map(|_| ())
            .and_then(|_| LabelSelector::parse("a b").map(|_| ()));
        assert_eq!(err.unwrap_err().code, 400);
        assert!(LabelSelector::parse("").unwrap().is_empty());
    }

    #[test]
    fn converts_metav1_label_selectors() {
        let sel = json!({"matchLabels": {"app": "web"},
            "matchExpressions": [{"key": "tier", "operator": "In", "values": ["fe"]},
                                 {"key": "canary", "operator": "DoesNotExist"}]});
        let s = LabelSelector::from_label_selector(&sel).unwrap();
        assert_eq!(s.to_string(), "app=web,!canary,tier in (fe)");
        assert!(s.matches(Some(&json!({"app": "web", "tier": "fe"}))));
        assert!(!s.matches(Some(&json!({"app": "web", "tier": "fe", "canary": "1"}))));
        assert!(
            LabelSelector::from_label_selector(&json!({}))
                .unwrap()
                .matches(None)
        );
        assert!(
            !LabelSelector::from_label_selector(&Value::Null)
                .unwrap()
                .matches(None)
        );
        let bad = json!({"matchExpressions": [{"key": "a", "operator": "In", "values": []}]});
        let err = LabelSelector::from_label_selector(&bad).unwrap_err();
        assert_eq!(
            err.message,
            "matchExpressions[0].values: Invalid value: []string{}: for 'in', 'notin' operators, values set can't be empty"
        );
        let bad_op = json!({"matchExpressions": [{"key": "a", "operator": "Gt", "values": ["1"]}]});
        assert!(LabelSelector::from_label_selector(&bad_op).is_err());
    }

    #[test]
    fn selects_by_a_plain_label_map() {
        let svc_selector = json!({"app": "web"});
        let s = LabelSelector::from_set(Some(&svc_selector)).unwrap();
        assert!(s.matches_object(&json!({"metadata": {"labels": {"app": "web", "pod-template-hash": "x"}}})));
        assert!(!s.matches_object(&json!({"metadata": {"labels": {"app": "db"}}})));
        assert!(LabelSelector::from_set(None).unwrap().is_empty());
    }

    #[test]
    fn field_selector_matches_objects() {
        let reg = crate::registry::Registry::builtin();
        let nodes = reg.find("", "v1", "nodes").unwrap();
        let fs = FieldSelector::parse("spec.unschedulable=false,metadata.name=n1", nodes).unwrap();
        assert!(fs.matches(&json!({"metadata": {"name": "n1"}, "spec": {}})));
        assert!(!fs.matches(&json!({"metadata": {"name": "n1"}, "spec": {"unschedulable": true}})));
        assert_eq!(fs.exact_value("metadata.name"), Some("n1"));
    }
}
