//! Writes one operation or parameter in Swagger 2.0 or OpenAPI 3.0 form:
//! body parameters vs `requestBody`, `type` vs `schema` on parameters,
//! response `schema` vs `content`, with the Kubernetes vendor extensions.
//!
//! Must not: decide which operations exist (see [`super::paths`]).

use serde_json::{Map, Value, json};

use super::params::Param;
use super::schemas::Flavor;

pub(crate) const PATCH_TYPES: &[&str] = &[
    "application/apply-patch+yaml",
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
];
pub(crate) const OBJECT_TYPES: &[&str] = &["application/json", "application/yaml"];
pub(crate) const LIST_TYPES: &[&str] = &[
    "application/json",
    "application/yaml",
    "application/json;stream=watch",
];
pub(crate) const TEXT_TYPES: &[&str] = &["text/plain", "application/json", "application/yaml"];
pub(crate) const ANY_TYPE: &[&str] = &["*/*"];

/// A response body: a definition or a plain string.
pub(crate) enum Body {
    Def(String),
    Text,
}

/// One operation before it is written in either dialect.
pub(crate) struct Operation {
    pub(crate) method: &'static str,
    pub(crate) action: &'static str,
    pub(crate) id: String,
    pub(crate) description: String,
    pub(crate) params: &'static [Param],
    pub(crate) request: Option<(String, &'static [&'static str])>,
    pub(crate) responses: Vec<(u16, &'static str)>,
    pub(crate) response: Body,
    pub(crate) produces: &'static [&'static str],
    pub(crate) gvk: Value,
}

pub(crate) fn render_param(p: &Param, flavor: Flavor) -> Value {
    let mut m = Map::new();
    m.insert("name".into(), json!(p.name));
    m.insert("in".into(), json!(p.location));
    m.insert("description".into(), json!(p.description));
    if p.location == "path" {
        m.insert("required".into(), json!(true));
    }
    match flavor {
        Flavor::V2 => {
            m.insert("type".into(), json!(p.ty));
            if p.unique {
                m.insert("uniqueItems".into(), json!(true));
            }
        }
        Flavor::V3 => {
            let mut schema = json!({"type": p.ty});
            if p.unique {
                schema["uniqueItems"] = json!(true);
            }
            m.insert("schema".into(), schema);
        }
    }
    Value::Object(m)
}

fn response_schema(body: &Body, flavor: Flavor) -> Value {
    match body {
        Body::Def(name) => flavor.reference(name),
        Body::Text => json!({"type": "string"}),
    }
}

pub(crate) fn render_operation(op: &Operation, tag: &str, flavor: Flavor) -> Value {
    let mut m = Map::new();
    m.insert("tags".into(), json!([tag]));
    m.insert("description".into(), json!(op.description));
    if flavor == Flavor::V2 {
        let consumes = op.request.as_ref().map(|(_, c)| *c).unwrap_or(ANY_TYPE);
        m.insert("consumes".into(), json!(consumes));
        m.insert("produces".into(), json!(op.produces));
        m.insert("schemes".into(), json!(["https"]));
    }
    m.insert("operationId".into(), json!(op.id));
    let mut parameters: Vec<Value> = Vec::new();
    if let (Flavor::V2, Some((def, _))) = (flavor, &op.request) {
        parameters
            .push(json!({"name": "body", "in": "body", "required": true, "schema": flavor.reference(def)}));
    }
    parameters.extend(op.params.iter().map(|p| render_param(p, flavor)));
    if !parameters.is_empty() {
        m.insert("parameters".into(), Value::Array(parameters));
    }
    if let (Flavor::V3, Some((def, types))) = (flavor, &op.request) {
        let content: Map<String, Value> = types
            .iter()
            .map(|t| (t.to_string(), json!({"schema": flavor.reference(def)})))
            .collect();
        m.insert(
            "requestBody".into(),
            json!({"content": content, "required": true}),
        );
    }
    let schema = response_schema(&op.response, flavor);
    let mut responses = Map::new();
    for (code, text) in &op.responses {
        let r = match flavor {
            Flavor::V2 => json!({"description": text, "schema": schema}),
            Flavor::V3 => {
                let content: Map<String, Value> = op
                    .produces
                    .iter()
                    .map(|t| (t.to_string(), json!({"schema": schema})))
                    .collect();
                json!({"description": text, "content": content})
            }
        };
        responses.insert(code.to_string(), r);
    }
    responses.insert("401".into(), json!({"description": "Unauthorized"}));
    m.insert("responses".into(), Value::Object(responses));
    m.insert("x-kubernetes-action".into(), json!(op.action));
    m.insert("x-kubernetes-group-version-kind".into(), op.gvk.clone());
    Value::Object(m)
}
