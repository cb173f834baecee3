//! `POST /api/v1/namespaces/NS/serviceaccounts/NAME/token`: the
//! authentication.k8s.io/v1 TokenRequest subresource (upstream's
//! `pkg/registry/core/serviceaccount/storage/token.go`): defaults and checks
//! the request, binds the token to a Pod or Secret, signs it and answers 201
//! with `status.token` and `status.expirationTimestamp`.

#![allow(clippy::result_large_err)] // ApiError is the API-facing error; handlers move it on unchanged.

use std::sync::Arc;

use axum::body::Body;
use axum::response::Response;
use http::StatusCode;
use serde_json::{Value, json};
use skiff_api::status::{ApiError, Cause};

use super::jwt::{self, Claims, ISSUER, Ref};
use super::{ServiceAccountTokens, lookup, uid_of};
use crate::errors::ApiResult;
use crate::handlers::{Ctx, read_object};
use crate::server::ApiServer;

/// `expirationSeconds` when the request has none.
pub const DEFAULT_EXPIRATION_SECONDS: i64 = 3600;
/// The shortest `expirationSeconds` accepted (10 minutes).
pub const MIN_EXPIRATION_SECONDS: i64 = 600;
/// The longest `expirationSeconds` accepted (2^32 seconds, as upstream).
pub const MAX_EXPIRATION_SECONDS: i64 = 1 << 32;

/// Serves a TokenRequest for the service account named in the URL.
pub(crate) async fn create(ctx: Ctx, body: Body, extensions: &http::Extensions) -> ApiResult<Response> {
    let tokens = extensions.get::<ServiceAccountTokens>().cloned().ok_or_else(|| {
        ApiError::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        )
    })?;
    let req = read_object(&ctx, body).await?;
    let namespace = ctx.namespace().unwrap_or_default().to_string();
    let name = ctx.name().to_string();
    let response = issue(
        &ctx.server,
        &tokens,
        &namespace,
        &name,
        req,
        jiff::Timestamp::now().as_second(),
    )?;
    Ok(crate::negotiate::respond(
        StatusCode::CREATED,
        &output(&ctx),
        &response,
    ))
}

fn output(ctx: &Ctx) -> crate::negotiate::Output {
    match ctx.output {
        crate::negotiate::Output::Yaml => crate::negotiate::Output::Yaml,
        _ => crate::negotiate::Output::Json,
    }
}

/// Checks `req` (a TokenRequest) for `namespace/name` at `now` and returns
/// the answered TokenRequest.
pub(crate) fn issue(
    server: &Arc<ApiServer>,
    tokens: &ServiceAccountTokens,
    namespace: &str,
    name: &str,
    mut req: Value,
    now: i64,
) -> ApiResult<Value> {
    let kind = req["kind"].as_str().unwrap_or("TokenRequest");
    if kind != "TokenRequest" {
        return Err(ApiError::bad_request(format!(
            "expected a TokenRequest, got kind {kind:?}"
        )));
    }
    if !req["spec"].is_object() {
        req["spec"] = json!({});
    }
    let spec = &mut req["spec"];
    let audiences: Vec<String> = match spec["audiences"].as_array() {
        Some(a) if !a.is_empty() => a.iter().filter_map(Value::as_str).map(str::to_string).collect(),
        _ => vec![ISSUER.to_string()],
    };
    spec["audiences"] = json!(audiences);
    let seconds = spec["expirationSeconds"]
        .as_i64()
        .unwrap_or(DEFAULT_EXPIRATION_SECONDS);
    spec["expirationSeconds"] = json!(seconds);
    let spec = spec.clone();
    validate(name, &spec, seconds)?;

    let sa = lookup(server, "serviceaccounts", namespace, name)
        .ok_or_else(|| ApiError::not_found("serviceaccounts", "", name))?;
    let mut claims = Claims::new(
        namespace,
        Ref {
            name: name.to_string(),
            uid: uid_of(&sa),
        },
        audiences,
        now,
        seconds,
    );
    if let Some(bound) = spec.get("boundObjectRef").filter(|r| r.is_object()) {
        bind(server, namespace, name, bound, &mut claims)?;
    }
    let token = jwt::encode(&tokens.key, &claims).map_err(|e| ApiError::internal(e.to_string()))?;
    let expires = jiff::Timestamp::from_second(claims.exp)
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let created = jiff::Timestamp::from_second(now)
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default();
    Ok(json!({
        "kind": "TokenRequest",
        "apiVersion": "authentication.k8s.io/v1",
        "metadata": {"name": name, "namespace": namespace, "creationTimestamp": created},
        "spec": spec,
        "status": {"token": token, "expirationTimestamp": expires},
    }))
}

fn validate(name: &str, spec: &Value, seconds: i64) -> ApiResult<()> {
    let mut causes = Vec::new();
    let value = json!(seconds);
    if seconds < MIN_EXPIRATION_SECONDS {
        causes.push(Cause::invalid(
            "spec.expirationSeconds",
            &value,
            "may not specify a duration less than 10 minutes",
        ));
    } else if seconds > MAX_EXPIRATION_SECONDS {
        causes.push(Cause::invalid(
            "spec.expirationSeconds",
            &value,
            "may not specify a duration larger than 2^32 seconds",
        ));
    }
    if let Some(r) = spec.get("boundObjectRef").filter(|r| r.is_object()) {
        let kind = r["kind"].as_str().unwrap_or_default();
        if !matches!(kind, "Pod" | "Secret") {
            causes.push(Cause::not_supported(
                "spec.boundObjectRef.kind",
                &r["kind"],
                &["Pod", "Secret"],
            ));
        }
        if r["name"].as_str().unwrap_or_default().is_empty() {
            causes.push(Cause::required("spec.boundObjectRef.name"));
        }
    }
    if causes.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid(
            "TokenRequest",
            "authentication.k8s.io",
            name,
            causes,
        ))
    }
}

fn bind(server: &Arc<ApiServer>, namespace: &str, sa: &str, r: &Value, claims: &mut Claims) -> ApiResult<()> {
    let kind = r["kind"].as_str().unwrap_or_default();
    let name = r["name"].as_str().unwrap_or_default();
    let plural = if kind == "Pod" { "pods" } else { "secrets" };
    let obj = lookup(server, plural, namespace, name).ok_or_else(|| ApiError::not_found(plural, "", name))?;
    if kind == "Pod" && obj["spec"]["serviceAccountName"].as_str().unwrap_or("default") != sa {
        return Err(ApiError::bad_request(format!(
            "cannot bind token for serviceaccount {sa:?} to pod running with different serviceaccount name."
        )));
    }
    let uid = uid_of(&obj);
    if let Some(want) = r["uid"].as_str().filter(|u| !u.is_empty())
        && want != uid
    {
        return Err(ApiError::conflict(
            kind,
            "",
            name,
            &format!(
                "the UID in the bound object reference ({want}) does not match the UID in record. \
                 The object might have been deleted and then recreated"
            ),
        ));
    }
    let bound = Ref {
        name: name.to_string(),
        uid,
    };
    if kind == "Pod" {
        claims.kubernetes.pod = Some(bound);
    } else {
        claims.kubernetes.secret = Some(bound);
    }
    Ok(())
}
