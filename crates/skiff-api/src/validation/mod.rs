//! Upstream validation: names, labels, annotations, and per-kind rules, each
//! failure a [`Cause`] with its field path.
//!
//! STUB: to be written per kind.

use crate::registry::ResourceDef;
use crate::status::Cause;
use serde_json::Value;

/// Problems with a new object of `def`'s kind.
pub fn validate_create(_def: &ResourceDef, _obj: &Value) -> Vec<Cause> {
    Vec::new()
}

/// Problems with an update of `old` to `new` (immutable fields, etc.).
pub fn validate_update(_def: &ResourceDef, _new: &Value, _old: &Value) -> Vec<Cause> {
    Vec::new()
}

/// Field paths present in `obj` that `def`'s schema does not know
/// (`spec.foo`), for `fieldValidation=Strict|Warn`.
pub fn unknown_fields(_def: &ResourceDef, _obj: &Value) -> Vec<String> {
    Vec::new()
}
