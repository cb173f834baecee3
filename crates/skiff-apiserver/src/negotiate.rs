//! Content negotiation: decoding request bodies (JSON or YAML, at most 3 MiB)
//! and choosing the response form (JSON, YAML or a `meta.k8s.io/v1` Table) from
//! the `Accept` header.
//!
//! Must not: know about verbs or the store. Protobuf is never served
//! (clients asking for it also accept JSON, which is what they get); protobuf
//! request bodies of the kinds kubectl's generators create are decoded
//! ([`protobuf`]).

#![allow(clippy::result_large_err)] // ApiError is the API-facing error; handlers move it on unchanged.

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use serde_json::Value;
use skiff_api::status::ApiError;

pub mod protobuf;

/// The largest request body accepted, as upstream (3 MiB).
pub const MAX_BODY_BYTES: usize = 3 * 1024 * 1024;

/// The form a response is rendered in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    Json,
    Yaml,
    /// `as=Table;g=meta.k8s.io`; the string is `includeObject` (None/Metadata/Object).
    Table(String),
}

/// Picks the response form from `Accept` (first supported media type wins).
pub fn output_from_headers(headers: &HeaderMap, include_object: Option<&str>) -> Output {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    for part in accept.split(',') {
        let mut params = part.split(';').map(str::trim);
        let media = params.next().unwrap_or("");
        let params: Vec<&str> = params.collect();
        let is_table = params.contains(&"as=Table") && params.contains(&"g=meta.k8s.io");
        match media {
            "application/json" | "*/*" | "application/*" if is_table => {
                return Output::Table(include_object.unwrap_or("Metadata").to_string());
            }
            "application/json" | "*/*" | "application/*" | ""
                if params.iter().all(|p| !p.starts_with("as=")) =>
            {
                return Output::Json;
            }
            "application/yaml" if params.iter().all(|p| !p.starts_with("as=")) => return Output::Yaml,
            _ => {}
        }
    }
    Output::Json
}

/// The media type of a request body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyType {
    Json,
    Yaml,
    Protobuf,
    JsonPatch,
    MergePatch,
    StrategicMergePatch,
    ApplyPatch,
}

/// Reads the body type from `Content-Type`; 415 for anything else.
pub fn body_type(headers: &HeaderMap) -> Result<BodyType, ApiError> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json");
    let media = ct.split(';').next().unwrap_or("").trim();
    Ok(match media {
        "application/json" | "" | "*/*" => BodyType::Json,
        "application/yaml" | "application/x-yaml" | "text/yaml" => BodyType::Yaml,
        "application/vnd.kubernetes.protobuf" => BodyType::Protobuf,
        "application/json-patch+json" => BodyType::JsonPatch,
        "application/merge-patch+json" => BodyType::MergePatch,
        "application/strategic-merge-patch+json" => BodyType::StrategicMergePatch,
        "application/apply-patch+yaml" | "application/apply-patch+json" => BodyType::ApplyPatch,
        _ => return Err(ApiError::unsupported_media_type(ct)),
    })
}

/// Reads a whole request body, refusing more than [`MAX_BODY_BYTES`] with 413.
pub async fn read_body(body: Body) -> Result<Bytes, ApiError> {
    axum::body::to_bytes(body, MAX_BODY_BYTES)
        .await
        .map_err(|_| ApiError::too_large(format!("Request entity too large: limit is {MAX_BODY_BYTES}")))
}

/// Decodes an object body as JSON or YAML into a JSON object.
pub fn decode_object(bytes: &[u8], ty: BodyType) -> Result<Value, ApiError> {
    let value: Value = match ty {
        BodyType::Protobuf => protobuf::decode(bytes)?,
        BodyType::Yaml | BodyType::ApplyPatch if !looks_like_json(bytes) => {
            serde_saphyr::from_slice(bytes)
                .map_err(|e| ApiError::bad_request(format!("error converting YAML to JSON: yaml: {e}")))?
        }
        _ => serde_json::from_slice(bytes).map_err(|e| {
            ApiError::bad_request(format!("couldn't get version/kind; json parse error: {e}"))
        })?,
    };
    if !value.is_object() {
        return Err(ApiError::bad_request(
            "couldn't get version/kind; json parse error: json: cannot unmarshal non-object into Go value of type struct { APIVersion string \"json:\\\"apiVersion,omitempty\\\"\"; Kind string \"json:\\\"kind,omitempty\\\"\" }",
        ));
    }
    Ok(value)
}

fn looks_like_json(bytes: &[u8]) -> bool {
    bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{')
}

/// A JSON response from bytes that are already serialised.
pub fn raw_json(code: StatusCode, body: Bytes) -> Response {
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = code;
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

/// Renders `value` in the chosen form (Table output is the caller's job: it is
/// built before this point, so here it is plain JSON).
pub fn respond(code: StatusCode, output: &Output, value: &Value) -> Response {
    match output {
        Output::Yaml => match serde_saphyr::to_string(value) {
            Ok(s) => {
                let mut resp = Response::new(Body::from(s));
                *resp.status_mut() = code;
                resp.headers_mut()
                    .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/yaml"));
                resp
            }
            Err(e) => crate::errors::error_response(&ApiError::internal(e.to_string())),
        },
        _ => raw_json(code, Bytes::from(serde_json::to_vec(value).unwrap_or_default())),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn accept(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT, HeaderValue::from_str(v).unwrap());
        h
    }

    #[test]
    fn kubectl_table_accept_header_selects_table() {
        let h = accept(
            "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json",
        );
        assert_eq!(
            output_from_headers(&h, Some("Object")),
            Output::Table("Object".into())
        );
        assert_eq!(
            output_from_headers(&accept("application/yaml"), None),
            Output::Yaml
        );
        assert_eq!(
            output_from_headers(
                &accept("application/vnd.kubernetes.protobuf, application/json"),
                None
            ),
            Output::Json
        );
        assert_eq!(output_from_headers(&HeaderMap::new(), None), Output::Json);
    }

    #[test]
    fn bodies_decode_from_json_and_yaml() {
        let v = decode_object(
            b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n",
            BodyType::Yaml,
        )
        .unwrap();
        assert_eq!(v["metadata"]["name"], "x");
        let e = decode_object(b"{not json", BodyType::Json).unwrap_err();
        assert_eq!(e.code, 400);
        assert!(
            e.message
                .starts_with("couldn't get version/kind; json parse error")
        );
        assert_eq!(decode_object(b"[1]", BodyType::Json).unwrap_err().code, 400);
    }

    #[test]
    fn unknown_content_type_is_415() {
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        assert_eq!(body_type(&h).unwrap_err().code, 415);
    }
}
