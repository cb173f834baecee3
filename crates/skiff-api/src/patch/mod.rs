//! Patches: JSON patch (RFC 6902), JSON merge patch (RFC 7386), strategic
//! merge patch with upstream merge keys and directives, and server-side apply.
//!
//! STUB: strategic merge patch currently behaves as a merge patch; server-side
//! apply is to be written in `apply.rs`.

use crate::registry::ResourceDef;
use crate::status::ApiError;
use serde_json::Value;

/// Applies an RFC 6902 JSON patch document to `current`.
pub fn apply_json_patch(current: &Value, patch: &[u8]) -> Result<Value, ApiError> {
    let ops: json_patch::Patch = serde_json::from_slice(patch)
        .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
    let mut doc = current.clone();
    json_patch::patch(&mut doc, &ops).map_err(|e| ApiError::new(422, "Invalid", e.to_string()))?;
    Ok(doc)
}

/// Applies an RFC 7386 JSON merge patch to `current`.
pub fn apply_merge_patch(current: &Value, patch: &[u8]) -> Result<Value, ApiError> {
    let p: Value = serde_json::from_slice(patch)
        .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
    let mut doc = current.clone();
    json_patch::merge(&mut doc, &p);
    Ok(doc)
}

/// Applies a strategic merge patch to `current`, using `def`'s merge keys.
pub fn apply_strategic_merge_patch(_def: &ResourceDef, current: &Value, patch: &[u8]) -> Result<Value, ApiError> {
    apply_merge_patch(current, patch)
}

/// Inputs to one server-side apply.
#[derive(Debug, Clone)]
pub struct ApplyRequest<'a> {
    pub def: &'a ResourceDef,
    /// The live object, if it exists.
    pub current: Option<&'a Value>,
    /// The applied configuration (the request body, parsed).
    pub applied: &'a Value,
    /// `fieldManager` (required for apply).
    pub manager: &'a str,
    /// `force=true`: take ownership of conflicting fields.
    pub force: bool,
    /// RFC 3339 time to record in managedFields.
    pub now: &'a str,
    /// `""` for the main resource, `"status"` for the status subresource.
    pub subresource: &'a str,
}

/// Server-side apply: merges `applied` into `current`, records `manager`'s
/// field set in `metadata.managedFields`, and reports conflicts with other
/// managers as 409 Conflict with causes (unless `force`).
pub fn server_side_apply(req: &ApplyRequest<'_>) -> Result<Value, ApiError> {
    let mut out = req.current.cloned().unwrap_or_else(|| Value::Object(Default::default()));
    json_patch::merge(&mut out, req.applied);
    Ok(out)
}

/// Records an `Update` (create/update/patch) by `manager` in
/// `new.metadata.managedFields`, given the object before the write.
pub fn record_update_managed_fields(
    _def: &ResourceDef,
    _old: Option<&Value>,
    _new: &mut Value,
    _manager: &str,
    _now: &str,
    _subresource: &str,
) {
}
