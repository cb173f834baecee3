//! Label and node selectors compiled once for the hot path: a pod's
//! `LabelSelector`s (affinity terms, topology spread) and `NodeSelectorTerm`s
//! (node affinity), matched against label maps without re-parsing.
//!
//! Pure data; no API access.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{NodeSelectorRequirement, NodeSelectorTerm};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

/// Labels as the API carries them.
pub type Labels = BTreeMap<String, String>;

/// One requirement's operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Key present with one of the values.
    In(Vec<String>),
    /// Key absent or with none of the values.
    NotIn(Vec<String>),
    /// Key present.
    Exists,
    /// Key absent.
    DoesNotExist,
    /// Key present with an integer value greater than this.
    Gt(i64),
    /// Key present with an integer value less than this.
    Lt(i64),
    /// Never matches (an invalid operator or value).
    Never,
}

/// A key and an operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    /// Label key.
    pub key: String,
    /// What the value must satisfy.
    pub op: Op,
}

impl Requirement {
    /// Whether `labels` satisfy this requirement.
    pub fn matches(&self, labels: &Labels) -> bool {
        let v = labels.get(&self.key);
        match &self.op {
            Op::In(vals) => v.is_some_and(|v| vals.iter().any(|x| x == v)),
            Op::NotIn(vals) => v.is_none_or(|v| !vals.iter().any(|x| x == v)),
            Op::Exists => v.is_some(),
            Op::DoesNotExist => v.is_none(),
            Op::Gt(n) => v.and_then(|v| v.parse::<i64>().ok()).is_some_and(|v| v > *n),
            Op::Lt(n) => v.and_then(|v| v.parse::<i64>().ok()).is_some_and(|v| v < *n),
            Op::Never => false,
        }
    }
}

/// A compiled label selector: all requirements must hold. An empty selector
/// matches everything; [`Selector::nothing`] matches nothing (a nil selector).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selector {
    reqs: Vec<Requirement>,
    nothing: bool,
}

fn op_of(operator: &str, values: &[String]) -> Op {
    match operator {
        "In" => Op::In(values.to_vec()),
        "NotIn" => Op::NotIn(values.to_vec()),
        "Exists" => Op::Exists,
        "DoesNotExist" => Op::DoesNotExist,
        "Gt" => values
            .first()
            .and_then(|v| v.parse().ok())
            .map_or(Op::Never, Op::Gt),
        "Lt" => values
            .first()
            .and_then(|v| v.parse().ok())
            .map_or(Op::Never, Op::Lt),
        _ => Op::Never,
    }
}

impl Selector {
    /// A selector that matches nothing (what a nil `labelSelector` means).
    pub fn nothing() -> Self {
        Selector {
            reqs: Vec::new(),
            nothing: true,
        }
    }

    /// Compiles a `LabelSelector`; `None` compiles to [`Selector::nothing`].
    pub fn from_label_selector(sel: Option<&LabelSelector>) -> Self {
        let Some(sel) = sel else {
            return Selector::nothing();
        };
        let mut reqs = Vec::new();
        for (k, v) in sel.match_labels.iter().flatten() {
            reqs.push(Requirement {
                key: k.clone(),
                op: Op::In(vec![v.clone()]),
            });
        }
        for e in sel.match_expressions.iter().flatten() {
            let values = e.values.clone().unwrap_or_default();
            reqs.push(Requirement {
                key: e.key.clone(),
                op: op_of(&e.operator, &values),
            });
        }
        Selector { reqs, nothing: false }
    }

    /// Adds `key In (value)` (matchLabelKeys of topology spread).
    pub fn require(&mut self, key: &str, value: &str) {
        self.reqs.push(Requirement {
            key: key.to_string(),
            op: Op::In(vec![value.to_string()]),
        });
    }

    /// Whether `labels` match.
    pub fn matches(&self, labels: &Labels) -> bool {
        !self.nothing && self.reqs.iter().all(|r| r.matches(labels))
    }
}

/// A compiled `NodeSelectorTerm`: label expressions and `metadata.name`
/// field expressions, all of which must hold. A term with neither matches
/// no node, as upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeTerm {
    labels: Vec<Requirement>,
    fields: Vec<Requirement>,
}

fn compile(reqs: Option<&Vec<NodeSelectorRequirement>>) -> Vec<Requirement> {
    reqs.into_iter()
        .flatten()
        .map(|r| Requirement {
            key: r.key.clone(),
            op: op_of(&r.operator, r.values.as_deref().unwrap_or(&[])),
        })
        .collect()
}

impl NodeTerm {
    /// Compiles a term.
    pub fn new(term: &NodeSelectorTerm) -> Self {
        NodeTerm {
            labels: compile(term.match_expressions.as_ref()),
            fields: compile(term.match_fields.as_ref()),
        }
    }

    /// Whether a node with this name and these labels matches.
    pub fn matches(&self, node_name: &str, labels: &Labels) -> bool {
        if self.labels.is_empty() && self.fields.is_empty() {
            return false;
        }
        if !self.labels.iter().all(|r| r.matches(labels)) {
            return false;
        }
        self.fields.iter().all(|r| {
            r.key == "metadata.name"
                && r.matches(&[(r.key.clone(), node_name.to_string())].into_iter().collect())
        })
    }
}

/// Terms ORed together, as in `requiredDuringSchedulingIgnoredDuringExecution`.
pub fn any_term_matches(terms: &[NodeTerm], node_name: &str, labels: &Labels) -> bool {
    terms.iter().any(|t| t.matches(node_name, labels))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn label_selector_semantics() {
        let sel = LabelSelector {
            match_labels: Some(labels(&[("app", "web")])),
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: "tier".into(),
                operator: "NotIn".into(),
                values: Some(vec!["db".into()]),
            }]),
        };
        let s = Selector::from_label_selector(Some(&sel));
        assert!(s.matches(&labels(&[("app", "web")])));
        assert!(!s.matches(&labels(&[("app", "web"), ("tier", "db")])));
        assert!(!s.matches(&labels(&[("app", "api")])));
        assert!(Selector::from_label_selector(Some(&LabelSelector::default())).matches(&labels(&[])));
        assert!(!Selector::from_label_selector(None).matches(&labels(&[])));
    }

    #[test]
    fn node_terms_with_gt_and_fields() {
        let term = NodeSelectorTerm {
            match_expressions: Some(vec![NodeSelectorRequirement {
                key: "cores".into(),
                operator: "Gt".into(),
                values: Some(vec!["4".into()]),
            }]),
            match_fields: Some(vec![NodeSelectorRequirement {
                key: "metadata.name".into(),
                operator: "In".into(),
                values: Some(vec!["n1".into()]),
            }]),
        };
        let t = NodeTerm::new(&term);
        assert!(t.matches("n1", &labels(&[("cores", "8")])));
        assert!(!t.matches("n2", &labels(&[("cores", "8")])));
        assert!(!t.matches("n1", &labels(&[("cores", "2")])));
        assert!(!NodeTerm::new(&NodeSelectorTerm::default()).matches("n1", &labels(&[])));
    }
}
