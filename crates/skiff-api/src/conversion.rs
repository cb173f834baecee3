//! Conversion between served versions that share one storage form:
//! core/v1 Events ⇄ events.k8s.io/v1 Events, autoscaling/v1 ⇄ autoscaling/v2 HPAs.
//!
//! STUB: identity apart from apiVersion/kind.

use crate::registry::{Registry, ResourceDef};
use serde_json::Value;

/// The resource whose shape is stored for `def` (itself unless another version owns storage).
pub fn storage_def<'a>(registry: &'a Registry, def: &'a ResourceDef) -> &'a ResourceDef {
    registry
        .all()
        .iter()
        .find(|r| r.plural == def.storage_resource && r.kind == def.kind && r.group == def.group)
        .unwrap_or(def)
}

/// Converts an object served as `def` into its storage form.
pub fn to_storage(registry: &Registry, def: &ResourceDef, mut obj: Value) -> Value {
    let storage = storage_def(registry, def);
    obj["apiVersion"] = Value::String(storage.api_version());
    obj["kind"] = Value::String(storage.kind.to_string());
    obj
}

/// Converts a stored object into the form served as `def`.
pub fn from_storage(_registry: &Registry, def: &ResourceDef, mut obj: Value) -> Value {
    obj["apiVersion"] = Value::String(def.api_version());
    obj["kind"] = Value::String(def.kind.to_string());
    obj
}
