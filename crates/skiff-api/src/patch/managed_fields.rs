//! `metadata.managedFields`: reading and writing entries (manager,
//! operation, apiVersion, time, fieldsType `FieldsV1`, fieldsV1,
//! subresource), the fields ownership ignores, and the recording of
//! `Update` operations (create, update, patch) as upstream does it.

use super::fieldset::{self, FieldSet};
use super::schema::Node;
use crate::registry::ResourceDef;
use serde_json::{Map, Value, json};

/// The manager upstream credits with the fields of an object that existed
/// before managed fields were first recorded on it.
pub const BEFORE_FIRST_APPLY: &str = "before-first-apply";

/// One `metadata.managedFields` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagedEntry {
    pub manager: String,
    /// `Apply` or `Update`.
    pub operation: String,
    pub api_version: String,
    /// RFC 3339.
    pub time: Option<String>,
    /// `""` for the main resource.
    pub subresource: String,
    pub fields: FieldSet,
}

impl ManagedEntry {
    /// Reads one entry; `None` if it is not an object.
    pub fn from_json(v: &Value) -> Option<Self> {
        let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
        v.as_object()?;
        Some(ManagedEntry {
            manager: s("manager"),
            operation: s("operation"),
            api_version: s("apiVersion"),
            time: v.get("time").and_then(Value::as_str).map(str::to_string),
            subresource: s("subresource"),
            fields: v
                .get("fieldsV1")
                .map(FieldSet::from_fields_v1)
                .unwrap_or_default(),
        })
    }

    /// The entry as JSON, fields in upstream's order.
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("manager".into(), json!(self.manager));
        m.insert("operation".into(), json!(self.operation));
        m.insert("apiVersion".into(), json!(self.api_version));
        if let Some(t) = &self.time {
            m.insert("time".into(), json!(t));
        }
        m.insert("fieldsType".into(), json!("FieldsV1"));
        m.insert("fieldsV1".into(), self.fields.to_fields_v1());
        if !self.subresource.is_empty() {
            m.insert("subresource".into(), json!(self.subresource));
        }
        Value::Object(m)
    }

    /// Whether this is `manager`'s Apply entry for `subresource`.
    pub fn is_apply_of(&self, manager: &str, subresource: &str) -> bool {
        self.operation == "Apply" && self.manager == manager && self.subresource == subresource
    }

    /// Whether this is `manager`'s Update entry for `api_version` and `subresource`.
    pub fn is_update_of(&self, manager: &str, api_version: &str, subresource: &str) -> bool {
        self.operation == "Update"
            && self.manager == manager
            && self.api_version == api_version
            && self.subresource == subresource
    }

    /// How upstream names a manager in conflict messages:
    /// `"kubectl"`, `"kubectl-client-side-apply" using apps/v1`.
    pub fn describe(&self) -> String {
        let mut out = format!("{:?}", self.manager);
        if !self.subresource.is_empty() {
            out.push_str(&format!(" with subresource {:?}", self.subresource));
        }
        if self.operation == "Update" {
            out.push_str(&format!(" using {}", self.api_version));
        }
        out
    }
}

/// The manager upstream folds the oldest Update entries into.
pub const ANCIENT_CHANGES: &str = "ancient-changes";

/// Upstream keeps at most this many Update entries.
pub const MAX_UPDATE_MANAGERS: usize = 10;

/// Folds the oldest Update entries into one `ancient-changes` entry per
/// apiVersion until at most [`MAX_UPDATE_MANAGERS`] Update entries remain.
pub fn cap_update_managers(entries: &mut Vec<ManagedEntry>) {
    loop {
        let mut updates: Vec<usize> = (0..entries.len())
            .filter(|i| entries[*i].operation == "Update")
            .collect();
        if updates.len() <= MAX_UPDATE_MANAGERS {
            return;
        }
        updates.sort_by(|a, b| entries[*a].time.cmp(&entries[*b].time));
        let oldest = entries.remove(updates[0]);
        let bucket = entries
            .iter_mut()
            .find(|e| e.is_update_of(ANCIENT_CHANGES, &oldest.api_version, &oldest.subresource));
        match bucket {
            Some(b) => {
                b.fields.union(&oldest.fields);
                if b.time < oldest.time {
                    b.time = oldest.time.clone();
                }
            }
            None => {
                // Fold into the next oldest entry of the same version, renamed.
                let next = (0..entries.len())
                    .filter(|i| {
                        entries[*i].operation == "Update" && entries[*i].api_version == oldest.api_version
                    })
                    .min_by(|a, b| entries[*a].time.cmp(&entries[*b].time));
                let mut bucket = match next {
                    Some(i) => entries.remove(i),
                    None => oldest.clone(),
                };
                bucket.manager = ANCIENT_CHANGES.to_string();
                bucket.subresource = oldest.subresource.clone();
                bucket.fields.union(&oldest.fields);
                entries.push(bucket);
            }
        }
    }
}

/// The entries of an object's `metadata.managedFields`.
pub fn read_entries(obj: &Value) -> Vec<ManagedEntry> {
    managed_fields_json(obj)
        .into_iter()
        .flatten()
        .filter_map(ManagedEntry::from_json)
        .collect()
}

fn managed_fields_json(obj: &Value) -> Option<&Vec<Value>> {
    obj.get("metadata")
        .and_then(|m| m.get("managedFields"))
        .and_then(Value::as_array)
}

/// Writes entries back, dropping empty ones and sorting as upstream
/// (Apply before Update, then by time, manager, apiVersion, subresource).
pub fn write_entries(obj: &mut Value, mut entries: Vec<ManagedEntry>) {
    entries.retain(|e| !e.fields.is_empty());
    entries.sort_by(|a, b| {
        (&a.operation, &a.time, &a.manager, &a.api_version, &a.subresource).cmp(&(
            &b.operation,
            &b.time,
            &b.manager,
            &b.api_version,
            &b.subresource,
        ))
    });
    let Some(root) = obj.as_object_mut() else { return };
    let meta = root
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    let Some(meta) = meta.as_object_mut() else { return };
    if entries.is_empty() {
        meta.shift_remove("managedFields");
    } else {
        meta.insert(
            "managedFields".into(),
            Value::Array(entries.iter().map(ManagedEntry::to_json).collect()),
        );
    }
}

const SYSTEM_METADATA: &[&str] = &[
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "managedFields",
    "selfLink",
];

/// The part of an object whose fields ownership counts: without
/// `apiVersion`, `kind` and system metadata; for the main resource without
/// `status`, for the `status` subresource only `status`.
pub fn owned_view(obj: &Value, subresource: &str) -> Value {
    let Some(m) = obj.as_object() else {
        return Value::Object(Map::new());
    };
    let mut out = Map::new();
    for (k, v) in m {
        let keep = match (subresource, k.as_str()) {
            ("status", key) => key == "status",
            (_, "apiVersion" | "kind" | "status") => false,
            _ => true,
        };
        if !keep {
            continue;
        }
        if k == "metadata"
            && let Some(meta) = v.as_object()
        {
            let rest: Map<String, Value> = meta
                .iter()
                .filter(|(k, _)| !SYSTEM_METADATA.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            if !rest.is_empty() {
                out.insert(k.clone(), Value::Object(rest));
            }
            continue;
        }
        out.insert(k.clone(), v.clone());
    }
    Value::Object(out)
}

/// The entries a write starts from: the new object's own `managedFields`
/// when the client sent some (`[]` resets them), else the stored ones.
fn starting_entries(def: &ResourceDef, old: Option<&Value>, new: &Value, now: &str) -> Vec<ManagedEntry> {
    if managed_fields_json(new).is_some() {
        return read_entries(new);
    }
    let Some(old) = old else { return Vec::new() };
    let entries = read_entries(old);
    if !entries.is_empty() || managed_fields_json(old).is_some() {
        return entries;
    }
    seed_before_first_apply(def, old, now)
}

/// Credits every field of an object without managed fields to
/// [`BEFORE_FIRST_APPLY`].
pub fn seed_before_first_apply(def: &ResourceDef, obj: &Value, now: &str) -> Vec<ManagedEntry> {
    let fields = FieldSet::from_object_for_update(&owned_view(obj, ""), Node::root(def));
    vec![ManagedEntry {
        manager: BEFORE_FIRST_APPLY.into(),
        operation: "Update".into(),
        api_version: def.api_version(),
        time: Some(now.to_string()),
        subresource: String::new(),
        fields,
    }]
}

/// Whether `new` carries an Apply entry of `manager` that this write made
/// (absent or different in `old`, or stamped `now`): the write is a
/// server-side apply that already recorded its ownership, not an Update.
fn just_applied(old: Option<&Value>, new: &Value, manager: &str, now: &str, subresource: &str) -> bool {
    let is_mine = |e: &&Value| {
        e.get("operation").and_then(Value::as_str) == Some("Apply")
            && e.get("manager").and_then(Value::as_str) == Some(manager)
            && e.get("subresource").and_then(Value::as_str).unwrap_or_default() == subresource
    };
    let Some(applied) = managed_fields_json(new).and_then(|list| list.iter().find(is_mine)) else {
        return false;
    };
    applied.get("time").and_then(Value::as_str) == Some(now)
        || !old
            .and_then(managed_fields_json)
            .is_some_and(|list| list.contains(applied))
}

/// Records an `Update` by `manager`: it takes ownership of every field it
/// added or changed (other managers lose them), and fields it removed are
/// dropped from every manager.
pub fn record_update(
    def: &ResourceDef,
    old: Option<&Value>,
    new: &mut Value,
    manager: &str,
    now: &str,
    subresource: &str,
) {
    if just_applied(old, new, manager, now, subresource) {
        return;
    }
    let node = Node::root(def);
    let api_version = def.api_version();
    let mut entries = starting_entries(def, old, new, now);
    let new_view = owned_view(new, subresource);
    let old_view = old.map(|o| owned_view(o, subresource));
    let new_set = FieldSet::from_object_for_update(&new_view, node);
    let old_set = old_view
        .as_ref()
        .map(|o| FieldSet::from_object_for_update(o, node))
        .unwrap_or_default();
    let Some(old_view) = old_view else {
        // A create: every field is new.
        entries.push(ManagedEntry {
            manager: manager.to_string(),
            operation: "Update".into(),
            api_version,
            time: Some(now.to_string()),
            subresource: subresource.to_string(),
            fields: new_set,
        });
        write_entries(new, entries);
        return;
    };
    let changed = fieldset::changed(&new_set, &old_view, &new_view);
    let removed = old_set.difference(&new_set);
    for e in &mut entries {
        e.fields.subtract(&removed);
        if !e.is_update_of(manager, &api_version, subresource) {
            e.fields.subtract(&changed);
        }
    }
    if !changed.is_empty() {
        match entries
            .iter_mut()
            .find(|e| e.is_update_of(manager, &api_version, subresource))
        {
            Some(e) => {
                e.fields.union(&changed);
                e.time = Some(now.to_string());
            }
            None => entries.push(ManagedEntry {
                manager: manager.to_string(),
                operation: "Update".into(),
                api_version,
                time: Some(now.to_string()),
                subresource: subresource.to_string(),
                fields: changed,
            }),
        }
    }
    cap_update_managers(&mut entries);
    write_entries(new, entries);
}
