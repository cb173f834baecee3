//! The one place that turns every error of the request path (store errors,
//! body decoding errors, [`ApiError`]s) into a `metav1.Status` response.
//!
//! Must not: decide request semantics; handlers pick the error, this module
//! only renders it with upstream's code, reason and message.

#![allow(clippy::result_large_err)] // ApiError is the API-facing error; handlers move it on unchanged.

use axum::body::Body;
use axum::response::Response;
use http::{HeaderValue, StatusCode, header};
use skiff_api::registry::ResourceDef;
use skiff_api::status::ApiError;
use skiff_store::StoreError;

/// The result type of every handler step.
pub type ApiResult<T> = Result<T, ApiError>;

/// Maps a store error about one object of `def` to the upstream API error.
pub fn store_error(def: &ResourceDef, name: &str, err: StoreError) -> ApiError {
    match err {
        StoreError::AlreadyExists(_) => ApiError::already_exists(def.plural, def.group, name),
        StoreError::NotFound(_) => ApiError::not_found(def.plural, def.group, name),
        StoreError::Conflict { .. } => ApiError::stale_conflict(def.plural, def.group, name),
        other => generic_store_error(other),
    }
}

/// Maps a store error not tied to one object (lists, watches, compaction).
pub fn generic_store_error(err: StoreError) -> ApiError {
    match err {
        StoreError::Compacted { requested, .. } => {
            ApiError::gone(format!("too old resource version: {requested}"))
        }
        StoreError::FutureRevision { requested, current } => {
            let mut e = ApiError::timeout(format!(
                "Too large resource version: {requested}, current: {current}"
            ));
            e.retry_after_seconds = Some(1);
            e
        }
        StoreError::AlreadyExists(k) => ApiError::new(409, "AlreadyExists", format!("{k} already exists")),
        StoreError::NotFound(k) => ApiError::new(404, "NotFound", format!("{k} not found")),
        StoreError::Conflict { key, .. } => ApiError::new(409, "Conflict", format!("{key} was modified")),
        StoreError::Backend(msg) => ApiError::internal(msg),
    }
}

/// A 400 for a body that does not decode as the resource's type.
pub fn decode_error(def: &ResourceDef, err: &serde_json::Error) -> ApiError {
    ApiError::bad_request(format!(
        "{} in version \"{}\" cannot be handled as a {}: {}",
        def.kind, def.version, def.kind, err
    ))
}

/// Renders an error as a JSON `Status` response with its HTTP code.
pub fn error_response(err: &ApiError) -> Response {
    let body = serde_json::to_vec(&err.to_status()).unwrap_or_default();
    let code = StatusCode::from_u16(err.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = code;
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Some(secs) = err.retry_after_seconds
        && let Ok(v) = HeaderValue::from_str(&secs.to_string())
    {
        resp.headers_mut().insert(header::RETRY_AFTER, v);
    }
    resp
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use skiff_api::registry::Registry;

    #[test]
    fn store_errors_read_like_upstream() {
        let reg = Registry::builtin();
        let def = reg.find("apps", "v1", "deployments").unwrap();
        let e = store_error(def, "web", StoreError::AlreadyExists("k".into()));
        assert_eq!(e.code, 409);
        assert_eq!(e.message, "deployments.apps \"web\" already exists");
        let e = generic_store_error(StoreError::Compacted {
            requested: 3,
            compacted: 10,
        });
        assert_eq!((e.code, e.reason.as_str()), (410, "Expired"));
        assert_eq!(e.message, "too old resource version: 3");
    }

    #[test]
    fn response_carries_code_and_status_body() {
        let resp = error_response(&ApiError::not_found("pods", "", "x"));
        assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    }
}
