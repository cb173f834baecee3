//! CertificateSigningRequest writes that differ from the generic ones, as
//! upstream's CSR strategies: a create records who asked
//! (`spec.username`/`groups` from the authenticated user, whatever the body
//! says), and `PUT .../approval` changes only `status.conditions` (filling
//! their timestamps), never the spec or the certificate.
//!
//! Must not: approve or sign anything by itself.

use axum::body::Body;
use axum::response::Response;
use http::{Extensions, StatusCode};
use serde_json::{Value, json};
use skiff_api::registry::ResourceDef;

use super::write::{Updated, Warnings, check_body, create_object, respond_object, update_object};
use super::{Ctx, read_object};
use crate::authn::UserInfo;
use crate::errors::ApiResult;
use crate::strategy::{self, Target};

/// True for `certificates.k8s.io` CertificateSigningRequests.
pub(crate) fn is_csr(def: &ResourceDef) -> bool {
    def.group == "certificates.k8s.io" && def.kind == "CertificateSigningRequest"
}

/// Creates a CSR on behalf of the request's user.
pub(crate) async fn create(ctx: Ctx, body: Body, extensions: &Extensions) -> ApiResult<Response> {
    let obj = read_object(&ctx, body).await?;
    let mut warnings = Warnings::new();
    let mut obj = check_body(&ctx, obj, &mut warnings)?;
    set_requester(&mut obj, extensions.get::<UserInfo>());
    let created = create_object(&ctx, obj).await?;
    Ok(respond_object(&ctx, StatusCode::CREATED, &created, &warnings))
}

/// `spec.username` and `spec.groups` of the requester; `uid` and `extra`
/// are cleared (skiff's users have neither).
fn set_requester(obj: &mut Value, user: Option<&UserInfo>) {
    if !obj["spec"].is_object() {
        obj["spec"] = json!({});
    }
    let spec = &mut obj["spec"];
    if let Some(m) = spec.as_object_mut() {
        m.remove("uid");
        m.remove("extra");
        m.remove("username");
        m.remove("groups");
    }
    if let Some(user) = user {
        spec["username"] = json!(user.name);
        spec["groups"] = json!(user.groups);
    }
}

/// `PUT certificatesigningrequests/NAME/approval`: takes the conditions of
/// the body, keeps everything else of the stored object.
pub(crate) async fn approval(ctx: Ctx, body: Body) -> ApiResult<Response> {
    let obj = read_object(&ctx, body).await?;
    let mut warnings = Warnings::new();
    let obj = check_body(&ctx, obj, &mut warnings)?;
    let now = strategy::now_rfc3339();
    let conditions = with_timestamps(obj.pointer("/status/conditions"), &now);
    let rv = obj["metadata"]["resourceVersion"].clone();
    let mutate = |old: &Value| {
        let mut out = old.clone();
        out["status"]["conditions"] = conditions.clone();
        out["metadata"]["resourceVersion"] = rv.clone();
        Ok(out)
    };
    let out = match update_object(&ctx, Target::Status, &mutate, None).await? {
        Updated::Created(v) | Updated::Object(v) | Updated::Removed(v) => v,
    };
    Ok(respond_object(&ctx, StatusCode::OK, &out, &warnings))
}

/// The conditions with `lastUpdateTime` and `lastTransitionTime` set where absent.
fn with_timestamps(conditions: Option<&Value>, now: &str) -> Value {
    let mut list = conditions.and_then(Value::as_array).cloned().unwrap_or_default();
    for c in &mut list {
        for field in ["lastUpdateTime", "lastTransitionTime"] {
            if !c[field].is_string() {
                c[field] = json!(now);
            }
        }
    }
    Value::Array(list)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_requester_replaces_what_the_body_claims() {
        let mut obj = json!({"spec": {"username": "system:admin", "groups": ["system:masters"], "uid": "x"}});
        let user = UserInfo::authenticated("system:bootstrap:abcdef", ["system:bootstrappers".to_string()]);
        set_requester(&mut obj, Some(&user));
        assert_eq!(obj["spec"]["username"], "system:bootstrap:abcdef");
        assert_eq!(
            obj["spec"]["groups"],
            json!(["system:bootstrappers", "system:authenticated"])
        );
        assert!(obj["spec"].get("uid").is_none());
    }

    #[test]
    fn approval_conditions_get_timestamps() {
        let c = json!([{"type": "Approved", "status": "True", "lastUpdateTime": "2020-01-01T00:00:00Z"}]);
        let out = with_timestamps(Some(&c), "2024-01-01T00:00:00Z");
        assert_eq!(out[0]["lastUpdateTime"], "2020-01-01T00:00:00Z");
        assert_eq!(out[0]["lastTransitionTime"], "2024-01-01T00:00:00Z");
    }
}
