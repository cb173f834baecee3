//! Patches: JSON patch (RFC 6902), JSON merge patch (RFC 7386), strategic
//! merge patch with upstream merge keys and directives, and server-side apply.
//!
//! Submodules: [`strategic`] (strategic merge patch), [`apply`]
//! (server-side apply), [`managed_fields`] (`metadata.managedFields` entries
//! and Update recording), [`fieldset`] (`fieldsV1` field sets), [`schema`]
//! and [`merge_keys`] (what each built-in type's lists merge by).
//!
//! Must not: perform I/O or know about storage; every function is pure over
//! JSON objects.

#![allow(clippy::result_large_err)] // ApiError is the crate-wide API error; callers move it on unchanged.

pub mod apply;
pub mod fieldset;
pub mod managed_fields;
pub mod merge_keys;
mod ordered;
#[cfg(test)]
mod proptests;
pub mod schema;
pub mod strategic;

use crate::registry::ResourceDef;
use crate::status::ApiError;
use serde_json::Value;

/// The 422 kube-apiserver answers when a patch cannot be applied to the
/// object (a failing `test` op, a path that does not exist, ...).
pub fn rejected_patch() -> ApiError {
    ApiError::new(
        422,
        "Invalid",
        "the server rejected our request due to an error in our request",
    )
}

fn decode(patch: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(patch).map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))
}

/// Applies an RFC 6902 JSON patch document to `current`.
/// A malformed document is 400; an operation that fails on this object is 422.
pub fn apply_json_patch(current: &Value, patch: &[u8]) -> Result<Value, ApiError> {
    let ops: json_patch::Patch =
        serde_json::from_slice(patch).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let mut doc = current.clone();
    json_patch::patch(&mut doc, &ops).map_err(|_| rejected_patch())?;
    Ok(doc)
}

/// Applies an RFC 7386 JSON merge patch to `current`.
pub fn apply_merge_patch(current: &Value, patch: &[u8]) -> Result<Value, ApiError> {
    let p = decode(patch)?;
    let mut doc = current.clone();
    json_patch::merge(&mut doc, &p);
    Ok(doc)
}

/// Applies a strategic merge patch to `current`, using the merge keys and
/// patch strategies of `def`'s upstream type (kinds without a schema merge
/// maps and replace lists).
pub fn apply_strategic_merge_patch(
    def: &ResourceDef,
    current: &Value,
    patch: &[u8],
) -> Result<Value, ApiError> {
    let p = decode(patch)?;
    strategic::apply(current, &p, schema::Node::root(def)).map_err(|e| match e {
        strategic::SmpError::BadPatch(m) => ApiError::bad_request(m),
        strategic::SmpError::Unprocessable(_) => rejected_patch(),
    })
}

/// Inputs to one server-side apply.
#[derive(Debug, Clone)]
pub struct ApplyRequest<'a> {
    /// The resource being applied to (its schema decides how lists merge).
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
/// managers as 409 Conflict with `FieldManagerConflict` causes (unless
/// `force`, which takes ownership). Fields the manager applied before and no
/// longer applies are removed when no other manager owns them.
pub fn server_side_apply(req: &ApplyRequest<'_>) -> Result<Value, ApiError> {
    apply::apply(req)
}

/// Records an `Update` (create/update/patch) by `manager` in
/// `new.metadata.managedFields`, given the object before the write: the
/// manager owns what it added or changed, others lose those fields, and
/// removed fields leave every manager. Entries of one
/// manager+operation+apiVersion+subresource are merged; more than ten Update
/// managers fold into `ancient-changes`. A write that was a server-side
/// apply by `manager` (it already recorded its Apply entry) is left as is.
pub fn record_update_managed_fields(
    def: &ResourceDef,
    old: Option<&Value>,
    new: &mut Value,
    manager: &str,
    now: &str,
    subresource: &str,
) {
    managed_fields::record_update(def, old, new, manager, now, subresource)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::registry::Registry;
    use serde_json::json;

    #[test]
    fn json_patch_errors_read_like_upstream() {
        let cm = json!({"data": {"a": "1"}});
        let ok = apply_json_patch(&cm, br#"[{"op":"replace","path":"/data/a","value":"2"}]"#).unwrap();
        assert_eq!(ok["data"]["a"], "2");
        let err = apply_json_patch(&cm, br#"[{"op":"test","path":"/data/a","value":"9"}]"#).unwrap_err();
        assert_eq!((err.code, err.reason.as_str()), (422, "Invalid"));
        assert_eq!(
            err.message,
            "the server rejected our request due to an error in our request"
        );
        let err = apply_json_patch(&cm, br#"[{"op":"remove","path":"/nope/x"}]"#).unwrap_err();
        assert_eq!(err.code, 422);
        assert_eq!(apply_json_patch(&cm, b"{not json").unwrap_err().code, 400);
    }

    #[test]
    fn merge_and_strategic_patches_differ_on_lists() {
        let reg = Registry::builtin();
        let pods = reg.find("", "v1", "pods").unwrap();
        let pod = json!({"spec": {"containers": [{"name": "a", "image": "x"}, {"name": "b", "image": "y"}]}});
        let patch = br#"{"spec":{"containers":[{"name":"b","image":"z"}]}}"#;
        let merged = apply_merge_patch(&pod, patch).unwrap();
        assert_eq!(merged["spec"]["containers"].as_array().unwrap().len(), 1);
        let smp = apply_strategic_merge_patch(pods, &pod, patch).unwrap();
        assert_eq!(smp["spec"]["containers"][1]["image"], "z");
        assert_eq!(smp["spec"]["containers"][0]["image"], "x");
        assert_eq!(
            apply_strategic_merge_patch(pods, &pod, b"[1]").unwrap_err().code,
            400
        );
    }
}
