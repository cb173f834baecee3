//! Server-side apply: merges an applied configuration into the live object
//! by the kind's schema, tracks what each manager applied, reports 409
//! conflicts when another manager owns a field being changed (unless
//! forced), and removes fields a manager stopped applying that nobody else
//! owns.

use super::ApplyRequest;
use super::fieldset::{self, FieldSet, Path};
use super::managed_fields::{ManagedEntry, owned_view, read_entries, seed_before_first_apply, write_entries};
use super::merge_keys::ListKind;
use super::ordered;
use super::schema::Node;
use crate::status::{ApiError, Cause};
use serde_json::{Map, Value};

/// Metadata an applied configuration may carry that apply never merges.
/// (`resourceVersion` is merged: when the applied configuration names one,
/// it is a precondition the API server checks against the live object.)
const UNMERGED_METADATA: &[&str] = &[
    "uid",
    "generation",
    "creationTimestamp",
    "managedFields",
    "selfLink",
];

/// Runs one apply. See [`super::server_side_apply`].
pub fn apply(req: &ApplyRequest<'_>) -> Result<Value, ApiError> {
    if req.manager.is_empty() {
        return Err(ApiError::bad_request(
            "fieldManager: Required value: is required for apply patch",
        ));
    }
    let Some(applied) = req.applied.as_object() else {
        return Err(ApiError::bad_request(
            "the applied configuration must be an object",
        ));
    };
    if applied
        .get("metadata")
        .and_then(|m| m.get("managedFields"))
        .is_some_and(|m| !m.is_null())
    {
        return Err(ApiError::bad_request("metadata.managedFields must be nil"));
    }
    let node = Node::root(req.def);
    let sub = req.subresource;
    let live = req.current.cloned().unwrap_or_else(|| Value::Object(Map::new()));
    let mut entries = read_entries(&live);
    if req.current.is_some() && entries.is_empty() {
        entries = seed_before_first_apply(req.def, &live, req.now);
    }
    let applied_view = owned_view(req.applied, sub);
    let new_set = FieldSet::from_object(&applied_view, node);
    let mut merged = merge_value(live.clone(), &mergeable(applied, sub), node, ListKind::Atomic);

    let conflicts = find_conflicts(&entries, req, &new_set, &live, &merged);
    if !conflicts.is_empty() {
        if !req.force {
            return Err(conflict_error(&entries, &conflicts));
        }
        for (i, path) in &conflicts {
            let mut one = FieldSet::default();
            one.insert(path);
            if let Some(e) = entries.get_mut(*i) {
                e.fields.subtract(&one);
            }
        }
    }

    let mine = |e: &ManagedEntry| e.is_apply_of(req.manager, sub);
    let previous = entries
        .iter()
        .find(|e| mine(e))
        .map(|e| e.fields.clone())
        .unwrap_or_default();
    let mut others = FieldSet::default();
    for e in entries.iter().filter(|e| !mine(e)) {
        others.union(&e.fields);
    }
    for path in previous.difference(&new_set).paths() {
        if !others.touches(&path) && !new_set.touches(&path) {
            fieldset::remove(&mut merged, &path);
        }
    }

    let entry = ManagedEntry {
        manager: req.manager.to_string(),
        operation: "Apply".into(),
        api_version: req.def.api_version(),
        time: Some(req.now.to_string()),
        subresource: sub.to_string(),
        fields: new_set,
    };
    match entries.iter_mut().find(|e| mine(e)) {
        Some(e) => *e = entry,
        None => entries.push(entry),
    }
    write_entries(&mut merged, entries);
    Ok(merged)
}

/// The part of the applied configuration that is merged into the object.
fn mergeable(applied: &Map<String, Value>, subresource: &str) -> Value {
    let mut out = Map::new();
    for (k, v) in applied {
        match (subresource, k.as_str()) {
            ("status", "status") => {}
            ("status", _) | (_, "status") => continue,
            _ => {}
        }
        if k == "metadata"
            && let Some(meta) = v.as_object()
        {
            let kept = meta
                .iter()
                .filter(|(k, _)| !UNMERGED_METADATA.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            out.insert(k.clone(), Value::Object(kept));
            continue;
        }
        out.insert(k.clone(), v.clone());
    }
    Value::Object(out)
}

/// Fields `new_set` would change that another manager owns: (entry index, path).
fn find_conflicts(
    entries: &[ManagedEntry],
    req: &ApplyRequest<'_>,
    new_set: &FieldSet,
    live: &Value,
    merged: &Value,
) -> Vec<(usize, Path)> {
    let mut out = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        if e.is_apply_of(req.manager, req.subresource) {
            continue;
        }
        for path in new_set.intersection(&e.fields).paths() {
            let before = fieldset::get(live, &path);
            let changed = if new_set.has_children_at(&path) {
                before.is_none()
            } else {
                before != fieldset::get(merged, &path)
            };
            if changed {
                out.push((i, path));
            }
        }
    }
    out
}

/// Upstream's 409 for apply conflicts.
fn conflict_error(entries: &[ManagedEntry], conflicts: &[(usize, Path)]) -> ApiError {
    let who = |i: usize| entries.get(i).map(ManagedEntry::describe).unwrap_or_default();
    let causes: Vec<Cause> = conflicts
        .iter()
        .map(|(i, p)| {
            Cause::new(
                "FieldManagerConflict",
                fieldset::display(p),
                format!("conflict with {}", who(*i)),
            )
        })
        .collect();
    let message = match conflicts {
        [(i, p)] => format!(
            "Apply failed with 1 conflict: conflict with {}: {}",
            who(*i),
            fieldset::display(p)
        ),
        _ => {
            let mut managers: Vec<String> = conflicts.iter().map(|(i, _)| who(*i)).collect();
            managers.sort();
            managers.dedup();
            let mut lines = Vec::new();
            for m in managers {
                lines.push(format!("conflicts with {m}:"));
                for (_, p) in conflicts.iter().filter(|(i, _)| who(*i) == m) {
                    lines.push(format!("- {}", fieldset::display(p)));
                }
            }
            format!(
                "Apply failed with {} conflicts: {}",
                conflicts.len(),
                lines.join("\n")
            )
        }
    };
    let mut err = ApiError::new(409, "Conflict", message);
    err.causes = causes;
    err
}

/// Merges an applied value into a live one: structs and maps field by
/// field, list-maps item by item (by their apply keys), sets by value,
/// atomic lists and scalars replaced.
fn merge_value(live: Value, applied: &Value, node: Node, kind: ListKind) -> Value {
    match (live, applied) {
        (Value::Object(mut l), Value::Object(a)) if !node.is_atomic_struct() => {
            let is_map = node.is_map();
            for (k, av) in a {
                if av.is_null() {
                    continue;
                }
                let kind = if is_map {
                    ListKind::Atomic
                } else {
                    node.list_kind(k)
                };
                let child = node.child(k);
                match l.get_mut(k) {
                    Some(slot) => {
                        let cur = std::mem::take(slot);
                        *slot = merge_value(cur, av, child, kind);
                    }
                    None => {
                        l.insert(k.clone(), merge_value(Value::Null, av, child, kind));
                    }
                }
            }
            Value::Object(l)
        }
        (Value::Array(l), Value::Array(a)) => match kind {
            ListKind::Set => Value::Array(ordered::merge_list(
                l,
                a,
                |v| Some(v.to_string()),
                |_, a| a.clone(),
            )),
            ListKind::Map { keys, .. } => {
                let items = node.items();
                Value::Array(ordered::merge_list(
                    l,
                    a,
                    |v| fieldset::item_key(v, keys),
                    |live, a| merge_value(live.unwrap_or(Value::Null), a, items, ListKind::Atomic),
                ))
            }
            ListKind::Atomic => applied.clone(),
        },
        (_, Value::Object(a)) if !node.is_atomic_struct() => {
            merge_value(Value::Object(Map::new()), &Value::Object(a.clone()), node, kind)
        }
        (_, other) => other.clone(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
#[path = "apply_tests.rs"]
mod tests;
