//! `meta.k8s.io/v1 Table` responses with upstream's columns per kind, as
//! `kubectl get` asks for them (`pkg/printers/internalversion/printers.go`).
//! Cells are always generated for every column, wide ones included
//! (priority 1 = shown only with `-o wide`), as the apiserver does.
//!
//! Owns: the Table envelope, `includeObject` handling, HumanDuration and
//! label formatting helpers, and the dispatch to one printer per kind.
//! Must not: change objects or reject them.

mod apps;
mod autoscaling;
mod batch;
mod certificates;
mod core;
mod events;
mod format;
mod other;
mod pods;
mod volumes;

#[cfg(test)]
mod tests;

pub use format::{age, human_duration};

use crate::registry::ResourceDef;
use serde_json::{Value, json};

/// One column definition (`TableColumnDefinition`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Column {
    pub name: &'static str,
    pub ty: &'static str,
    pub format: &'static str,
    pub description: &'static str,
    pub priority: u8,
}

/// A regular column (shown by plain `kubectl get`).
pub(crate) const fn col(name: &'static str, ty: &'static str, description: &'static str) -> Column {
    Column {
        name,
        ty,
        format: "",
        description,
        priority: 0,
    }
}

/// A column shown only with `-o wide`.
pub(crate) const fn wide(name: &'static str, ty: &'static str, description: &'static str) -> Column {
    Column {
        name,
        ty,
        format: "",
        description,
        priority: 1,
    }
}

pub(crate) const NAME_DESC: &str = "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names";
pub(crate) const AGE_DESC: &str = "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";

/// The NAME column.
pub(crate) const NAME: Column = Column {
    name: "Name",
    ty: "string",
    format: "name",
    description: NAME_DESC,
    priority: 0,
};
/// The AGE column.
pub(crate) const AGE: Column = col("Age", "string", AGE_DESC);

/// The cells of one row, plus upstream's row conditions (pods: Completed).
pub(crate) struct Row {
    pub cells: Vec<Value>,
    pub conditions: Vec<Value>,
}

impl From<Vec<Value>> for Row {
    fn from(cells: Vec<Value>) -> Self {
        Row {
            cells,
            conditions: Vec::new(),
        }
    }
}

/// A kind's printer: its columns and a row builder.
pub(crate) struct Printer {
    pub columns: &'static [Column],
    pub row: fn(&Value, jiff::Timestamp) -> Row,
}

fn printer(def: &ResourceDef) -> Printer {
    let found = match def.group {
        "" => core::printer(def.kind).or_else(|| pods::printer(def.kind)),
        "apps" => apps::printer(def.kind),
        "batch" => batch::printer(def.kind),
        "certificates.k8s.io" => certificates::printer(def.kind),
        _ => other::printer(def.group, def.kind),
    };
    found.unwrap_or(Printer {
        columns: &[NAME, AGE],
        row: default_row,
    })
}

fn default_row(obj: &Value, now: jiff::Timestamp) -> Row {
    vec![json!(format::name(obj)), json!(format::age_of(obj, now))].into()
}

/// Builds a Table of `objects` of `def`'s kind. `include_object` is the
/// `includeObject` parameter (`None`, `Metadata` — the default — or
/// `Object`); `now` is the time AGE is measured from.
pub fn build_table(
    def: &ResourceDef,
    objects: &[&Value],
    include_object: &str,
    now: jiff::Timestamp,
    list_meta: Value,
) -> Value {
    let printer = printer(def);
    let rows: Vec<Value> = objects
        .iter()
        .map(|o| {
            let row = (printer.row)(o, now);
            let mut out = json!({"cells": row.cells});
            if !row.conditions.is_empty() {
                out["conditions"] = Value::Array(row.conditions);
            }
            match include_object {
                "None" => {}
                "Object" => out["object"] = (*o).clone(),
                _ => out["object"] = partial_metadata(o),
            }
            out
        })
        .collect();
    let columns: Vec<Value> = printer
        .columns
        .iter()
        .map(|c| {
            json!({"name": c.name, "type": c.ty, "format": c.format, "description": c.description, "priority": c.priority})
        })
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": list_meta,
        "columnDefinitions": columns,
        "rows": rows,
    })
}

/// The `PartialObjectMetadata` form of an object (`includeObject=Metadata`).
fn partial_metadata(obj: &Value) -> Value {
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": obj.get("metadata").cloned().unwrap_or_else(|| json!({})),
    })
}
