//! Field sets: which fields of an object a manager owns, in the `fieldsV1`
//! form of `metadata.managedFields` (`f:<field>`, `k:{<list-map key>}`,
//! `v:<set value>`, `i:<index>`, `.` for the node itself).
//!
//! Owns building a set from an object (guided by the kind's schema),
//! set algebra, reading values at a path, and upstream's path printing
//! (`.spec.template.spec.containers[name="nginx"].image`).

use super::merge_keys::{self, ListKind};
use super::schema::Node;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// A set of field paths, as a tree keyed by encoded path elements.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSet {
    /// The path leading here is itself in the set.
    member: bool,
    children: BTreeMap<String, FieldSet>,
}

/// One path: encoded elements from the root (`["f:spec", "f:replicas"]`).
pub type Path = Vec<String>;

impl FieldSet {
    /// True when the set holds no path.
    pub fn is_empty(&self) -> bool {
        !self.member && self.children.values().all(FieldSet::is_empty)
    }

    /// Adds a path.
    pub fn insert(&mut self, path: &[String]) {
        let mut node = self;
        for pe in path {
            node = node.children.entry(pe.clone()).or_default();
        }
        node.member = true;
    }

    /// Whether the path itself is in the set.
    pub fn contains(&self, path: &[String]) -> bool {
        self.subtree(path).is_some_and(|n| n.member)
    }

    /// The part of the set at and below `path`.
    pub fn subtree(&self, path: &[String]) -> Option<&FieldSet> {
        path.iter().try_fold(self, |n, pe| n.children.get(pe))
    }

    /// Whether the set holds `path` or anything below it.
    pub fn touches(&self, path: &[String]) -> bool {
        self.subtree(path).is_some_and(|n| !n.is_empty())
    }

    /// Whether `path` is in the set with paths below it too (a list item or
    /// map owned as a whole and field by field).
    pub fn has_children_at(&self, path: &[String]) -> bool {
        self.subtree(path)
            .is_some_and(|n| n.children.values().any(|c| !c.is_empty()))
    }

    /// Every path in the set, parents before children.
    pub fn paths(&self) -> Vec<Path> {
        let mut out = Vec::new();
        let mut cur = Vec::new();
        self.walk(&mut cur, &mut out);
        out
    }

    fn walk(&self, cur: &mut Path, out: &mut Vec<Path>) {
        if self.member && !cur.is_empty() {
            out.push(cur.clone());
        }
        for (pe, child) in &self.children {
            cur.push(pe.clone());
            child.walk(cur, out);
            cur.pop();
        }
    }

    /// Adds every path of `other`.
    pub fn union(&mut self, other: &FieldSet) {
        self.member |= other.member;
        for (pe, child) in &other.children {
            self.children.entry(pe.clone()).or_default().union(child);
        }
    }

    /// The paths of `self` that are not in `other`.
    pub fn difference(&self, other: &FieldSet) -> FieldSet {
        let mut out = FieldSet {
            member: self.member && !other.member,
            children: BTreeMap::new(),
        };
        for (pe, child) in &self.children {
            let d = match other.children.get(pe) {
                Some(o) => child.difference(o),
                None => child.clone(),
            };
            if !d.is_empty() {
                out.children.insert(pe.clone(), d);
            }
        }
        out
    }

    /// The paths in both sets.
    pub fn intersection(&self, other: &FieldSet) -> FieldSet {
        let mut out = FieldSet {
            member: self.member && other.member,
            children: BTreeMap::new(),
        };
        for (pe, child) in &self.children {
            if let Some(o) = other.children.get(pe) {
                let i = child.intersection(o);
                if !i.is_empty() {
                    out.children.insert(pe.clone(), i);
                }
            }
        }
        out
    }

    /// Removes the paths of `other` from `self`.
    pub fn subtract(&mut self, other: &FieldSet) {
        *self = self.difference(other);
    }

    /// The `fieldsV1` JSON of the set.
    pub fn to_fields_v1(&self) -> Value {
        let mut m = Map::new();
        if self.member && self.children.values().any(|c| !c.is_empty()) {
            m.insert(".".to_string(), Value::Object(Map::new()));
        }
        for (pe, child) in &self.children {
            if !child.is_empty() {
                m.insert(pe.clone(), child.to_fields_v1());
            }
        }
        Value::Object(m)
    }

    /// Reads a `fieldsV1` JSON object.
    pub fn from_fields_v1(v: &Value) -> FieldSet {
        let mut set = FieldSet::default();
        if let Some(m) = v.as_object() {
            for (k, child) in m {
                if k == "." {
                    set.member = true;
                    continue;
                }
                let mut c = FieldSet::from_fields_v1(child);
                if child.as_object().is_none_or(Map::is_empty) {
                    c.member = true;
                }
                set.children.insert(k.clone(), c);
            }
        }
        set
    }

    /// The fields an applied configuration sets, as apply records them:
    /// leaves, and list items as a whole (`.`).
    pub fn from_object(obj: &Value, node: Node) -> FieldSet {
        let mut set = FieldSet::default();
        collect(obj, node, &mut Vec::new(), &mut set, Style::Apply);
        set
    }

    /// The fields of an object as an update records them: like
    /// [`FieldSet::from_object`], with maps and merging lists also owned as a
    /// whole (`"f:labels":{".":{},...}`), as upstream's diff-based sets read.
    pub fn from_object_for_update(obj: &Value, node: Node) -> FieldSet {
        let mut set = FieldSet::default();
        collect(obj, node, &mut Vec::new(), &mut set, Style::Update);
        set
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Style {
    Apply,
    Update,
}

fn collect(v: &Value, node: Node, path: &mut Path, set: &mut FieldSet, style: Style) {
    let Value::Object(m) = v else {
        set.insert(path);
        return;
    };
    if !path.is_empty() && (m.is_empty() || node.is_atomic_struct()) {
        set.insert(path);
        return;
    }
    let is_map = node.is_map();
    if is_map && !path.is_empty() && style == Style::Update {
        set.insert(path);
    }
    for (k, child) in m {
        if child.is_null() {
            continue;
        }
        let kind = if is_map {
            ListKind::Atomic
        } else {
            node.list_kind(k)
        };
        // Upstream's update sets come from a diff against the empty object,
        // where required lists already exist: those are not owned as a whole.
        let own_whole = style == Style::Update && !node.is_required(k);
        path.push(format!("f:{k}"));
        collect_field(child, node.child(k), kind, path, set, (style, own_whole));
        path.pop();
    }
}

fn collect_field(
    v: &Value,
    node: Node,
    kind: ListKind,
    path: &mut Path,
    set: &mut FieldSet,
    (style, own_whole): (Style, bool),
) {
    let Value::Array(items) = v else {
        collect(v, node, path, set, style);
        return;
    };
    if items.is_empty() || kind == ListKind::Atomic || own_whole {
        set.insert(path);
    }
    if items.is_empty() || kind == ListKind::Atomic {
        return;
    }
    for (i, item) in items.iter().enumerate() {
        let pe = match kind {
            ListKind::Map { keys, .. } => item_key(item, keys).unwrap_or_else(|| format!("i:{i}")),
            _ => format!("v:{item}"),
        };
        path.push(pe);
        set.insert(path);
        if matches!(kind, ListKind::Map { .. }) {
            collect(item, node.items(), path, set, style);
        }
        path.pop();
    }
}

/// The `k:{...}` element naming a list-map item (key fields sorted, missing
/// ones taken from upstream's schema defaults).
pub fn item_key(item: &Value, keys: &[&str]) -> Option<String> {
    let mut sorted: Vec<&str> = keys.to_vec();
    sorted.sort_unstable();
    let mut m = Map::new();
    for k in sorted {
        match item.get(k) {
            Some(v) if !v.is_null() => {
                m.insert(k.to_string(), v.clone());
            }
            _ => {
                if let Some(d) = merge_keys::key_default(k) {
                    m.insert(k.to_string(), Value::String(d.to_string()));
                }
            }
        }
    }
    (!m.is_empty()).then(|| format!("k:{}", Value::Object(m)))
}

fn item_matches(item: &Value, pe: &str) -> bool {
    if let Some(key) = pe.strip_prefix("k:") {
        let Ok(Value::Object(want)) = serde_json::from_str::<Value>(key) else {
            return false;
        };
        return want.iter().all(|(k, v)| match item.get(k) {
            Some(got) => got == v,
            None => merge_keys::key_default(k).is_some_and(|d| v.as_str() == Some(d)),
        });
    }
    if let Some(val) = pe.strip_prefix("v:") {
        return serde_json::from_str::<Value>(val).is_ok_and(|v| v == *item);
    }
    false
}

fn position(list: &[Value], pe: &str) -> Option<usize> {
    if let Some(i) = pe.strip_prefix("i:") {
        return i.parse().ok().filter(|i| *i < list.len());
    }
    list.iter().position(|item| item_matches(item, pe))
}

/// The value one path element below `v`.
fn step<'a>(v: &'a Value, pe: &str) -> Option<&'a Value> {
    match pe.strip_prefix("f:") {
        Some(f) => v.get(f),
        None => v.as_array().and_then(|l| position(l, pe).and_then(|i| l.get(i))),
    }
}

/// The value at `path` in `obj`.
pub fn get<'a>(obj: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(obj, |cur, pe| step(cur, pe))
}

/// The paths of `set` (the fields of `new`) that an update from `old` to
/// `new` added or changed: absent from `old`, or, for paths with nothing
/// below them in `set`, holding another value.
pub fn changed(set: &FieldSet, old: &Value, new: &Value) -> FieldSet {
    let mut out = FieldSet::default();
    walk_changed(set, Some(old), Some(new), &mut Vec::new(), &mut out);
    out
}

fn walk_changed(
    node: &FieldSet,
    old: Option<&Value>,
    new: Option<&Value>,
    path: &mut Path,
    out: &mut FieldSet,
) {
    if node.member && !path.is_empty() {
        let whole = node.children.values().any(|c| !c.is_empty());
        if old.is_none() || (!whole && old != new) {
            out.insert(path);
        }
    }
    for (pe, child) in &node.children {
        let o = old.and_then(|v| step(v, pe));
        let n = new.and_then(|v| step(v, pe));
        path.push(pe.clone());
        walk_changed(child, o, n, path, out);
        path.pop();
    }
}

/// Removes the value at `path` from `obj` (a field, or a list item).
pub fn remove(obj: &mut Value, path: &[String]) {
    let Some((last, parent_path)) = path.split_last() else {
        return;
    };
    let mut cur = obj;
    for pe in parent_path {
        let next = match pe.strip_prefix("f:") {
            Some(f) => cur.get_mut(f),
            None => match cur {
                Value::Array(l) => position(l, pe).and_then(move |i| l.get_mut(i)),
                _ => None,
            },
        };
        match next {
            Some(n) => cur = n,
            None => return,
        }
    }
    match (last.strip_prefix("f:"), cur) {
        (Some(f), Value::Object(m)) => {
            m.shift_remove(f);
        }
        (None, Value::Array(l)) => {
            if let Some(i) = position(l, last) {
                l.remove(i);
            }
        }
        _ => {}
    }
}

/// Upstream's printed form of a path: `.spec.ports[port=80,protocol="TCP"].targetPort`.
pub fn display(path: &[String]) -> String {
    let mut out = String::new();
    for pe in path {
        if let Some(f) = pe.strip_prefix("f:") {
            out.push('.');
            out.push_str(f);
        } else if let Some(k) = pe.strip_prefix("k:") {
            let parts: Vec<String> = match serde_json::from_str::<Value>(k) {
                Ok(Value::Object(m)) => m.iter().map(|(k, v)| format!("{k}={v}")).collect(),
                _ => vec![k.to_string()],
            };
            out.push_str(&format!("[{}]", parts.join(",")));
        } else if let Some(v) = pe.strip_prefix("v:") {
            out.push_str(&format!("[={v}]"));
        } else if let Some(i) = pe.strip_prefix("i:") {
            out.push_str(&format!("[{i}]"));
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::registry::Registry;
    use serde_json::json;

    fn deploy_node() -> Node {
        Node::root(Registry::builtin().find("apps", "v1", "deployments").unwrap())
    }

    #[test]
    fn builds_upstream_fields_v1_for_a_deployment() {
        let d = json!({"metadata": {"labels": {"app": "web"}, "finalizers": ["x"]},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                "template": {"spec": {"containers": [{"name": "nginx", "image": "nginx",
                    "ports": [{"containerPort": 80}]}]}}}});
        let set = FieldSet::from_object(&d, deploy_node());
        assert_eq!(
            set.to_fields_v1(),
            json!({"f:metadata": {"f:finalizers": {"v:\"x\"": {}}, "f:labels": {"f:app": {}}},
                "f:spec": {"f:replicas": {}, "f:selector": {},
                    "f:template": {"f:spec": {"f:containers": {"k:{\"name\":\"nginx\"}": {
                        ".": {}, "f:image": {}, "f:name": {},
                        "f:ports": {"k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {
                            ".": {}, "f:containerPort": {}}}}}}}}})
        );
        assert_eq!(FieldSet::from_fields_v1(&set.to_fields_v1()), set);
        let upd = FieldSet::from_object_for_update(&d, deploy_node()).to_fields_v1();
        assert_eq!(upd["f:metadata"]["f:labels"], json!({".": {}, "f:app": {}}));
        assert_eq!(upd["f:metadata"]["f:finalizers"], json!({".": {}, "v:\"x\"": {}}));
        let containers = &upd["f:spec"]["f:template"]["f:spec"]["f:containers"];
        assert!(
            containers.get(".").is_none(),
            "required lists are not owned whole"
        );
        assert!(containers["k:{\"name\":\"nginx\"}"]["f:ports"].get(".").is_some());
    }

    #[test]
    fn set_algebra_and_paths() {
        let a = FieldSet::from_object(&json!({"spec": {"replicas": 1, "paused": true}}), deploy_node());
        let b = FieldSet::from_object(&json!({"spec": {"replicas": 3}}), deploy_node());
        let d = a.difference(&b);
        assert_eq!(
            d.paths(),
            vec![vec!["f:spec".to_string(), "f:paused".to_string()]]
        );
        assert_eq!(a.intersection(&b).paths().len(), 1);
        let mut u = b.clone();
        u.union(&d);
        assert_eq!(u, a);
    }

    #[test]
    fn reads_removes_and_prints_paths() {
        let mut d = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "a", "image": "x"}, {"name": "b", "image": "y"}]}}}});
        let path: Path = [
            "f:spec",
            "f:template",
            "f:spec",
            "f:containers",
            "k:{\"name\":\"b\"}",
            "f:image",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(get(&d, &path), Some(&json!("y")));
        assert_eq!(display(&path), ".spec.template.spec.containers[name=\"b\"].image");
        remove(&mut d, &path[..5]);
        assert_eq!(
            d["spec"]["template"]["spec"]["containers"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
        let port: Path = vec!["f:ports".into(), r#"k:{"port":80,"protocol":"TCP"}"#.into()];
        assert_eq!(display(&port), ".ports[port=80,protocol=\"TCP\"]");
    }
}
