//! Schema definitions of an OpenAPI document, generated from `k8s-openapi`'s
//! `schemars` schemas and reshaped to what upstream serves: definition names
//! like `io.k8s.api.core.v1.Pod`, `x-kubernetes-group-version-kind` on each
//! top-level kind, `<Kind>List` schemas, upstream's `int-or-string` format,
//! and (v3) `$ref`s with siblings wrapped in `allOf`.
//!
//! Must not: describe paths (see [`super::paths`]).

use std::collections::BTreeMap;

use k8s_openapi::schemars::generate::SchemaSettings;
use k8s_openapi::schemars::transform::RemoveRefSiblings;
use serde_json::{Map, Value, json};
use skiff_api::patch::merge_keys;
use skiff_api::registry::ResourceDef;

use super::{enums, types};

/// Which OpenAPI dialect a document is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flavor {
    /// Swagger 2.0 (`/openapi/v2`): `#/definitions/...`.
    V2,
    /// OpenAPI 3.0 (`/openapi/v3/...`): `#/components/schemas/...`.
    V3,
}

impl Flavor {
    /// The `$ref` of a definition.
    pub(crate) fn reference(self, name: &str) -> Value {
        match self {
            Flavor::V2 => json!({"$ref": format!("#/definitions/{name}")}),
            Flavor::V3 => json!({"$ref": format!("#/components/schemas/{name}")}),
        }
    }

    /// A `$ref` with a description, in the form upstream writes it.
    fn described_reference(self, name: &str, description: &str) -> Value {
        match self {
            Flavor::V2 => {
                let mut r = self.reference(name);
                r["description"] = json!(description);
                r
            }
            Flavor::V3 => json!({"allOf": [self.reference(name)], "default": {}, "description": description}),
        }
    }
}

/// A group/version/kind as `x-kubernetes-group-version-kind` lists it.
pub(crate) fn gvk(group: &str, version: &str, kind: &str) -> Value {
    json!({"group": group, "kind": kind, "version": version})
}

/// The definitions of one document and the definition name of each kind.
pub(crate) struct Definitions {
    /// Definition name -> schema, sorted by name.
    pub schemas: BTreeMap<String, Value>,
    /// (group, version, kind) -> definition name, for resource, list and
    /// subresource kinds.
    pub names: BTreeMap<(String, String, String), String>,
}

impl Definitions {
    /// The definition name of a kind, if the document describes it.
    pub(crate) fn name(&self, group: &str, version: &str, kind: &str) -> Option<&str> {
        self.names
            .get(&(group.to_string(), version.to_string(), kind.to_string()))
            .map(String::as_str)
    }
}

/// Subresource kinds referenced by operations: (group, version, kind).
const SUBRESOURCE_KINDS: &[(&str, &str, &str, &str)] = &[
    ("scale", "autoscaling", "v1", "Scale"),
    ("eviction", "policy", "v1", "Eviction"),
    ("binding", "", "v1", "Binding"),
    ("token", "authentication.k8s.io", "v1", "TokenRequest"),
];

/// The (group, version, kind) a subresource's body has, when it is not the
/// parent's kind.
pub(crate) fn subresource_kind(sub: &str) -> Option<(&'static str, &'static str, &'static str)> {
    SUBRESOURCE_KINDS
        .iter()
        .find(|(s, ..)| *s == sub)
        .map(|(_, g, v, k)| (*g, *v, *k))
}

/// Generates the definitions for `resources`; `all_group_versions` are the
/// group/versions `DeleteOptions` and `WatchEvent` are tagged with.
pub(crate) fn build(
    resources: &[&ResourceDef],
    all_group_versions: &[(String, String)],
    flavor: Flavor,
) -> Definitions {
    let settings = SchemaSettings::draft07().with(|s| {
        s.meta_schema = None;
        s.transforms.clear();
        s.definitions_path = match flavor {
            Flavor::V2 => "/definitions".into(),
            Flavor::V3 => "/components/schemas".into(),
        };
    });
    let mut generator = settings.into_generator();
    let mut names = BTreeMap::new();
    let mut tags: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    let mut generic = Vec::new();
    let mut lists = Vec::new();

    let mut kinds: Vec<(&str, &str, &str)> = Vec::new();
    for def in resources {
        kinds.push((def.group, def.version, def.kind));
        for sub in def.subresources {
            if let Some(k) = subresource_kind(sub) {
                kinds.push(k);
            }
        }
    }
    for (group, version, kind) in kinds {
        let key = (group.to_string(), version.to_string(), kind.to_string());
        if names.contains_key(&key) {
            continue;
        }
        let name = match types::find_kind(group, version, kind) {
            Some(register) => register(&mut generator),
            None => {
                let name = format!(
                    "{}.{version}.{kind}",
                    if group.is_empty() { "core" } else { group }
                );
                generic.push(name.clone());
                name
            }
        };
        tags.entry(name.clone())
            .or_default()
            .push(gvk(group, version, kind));
        names.insert(key, name);
    }
    for def in resources {
        if let Some(item) = names
            .get(&(def.group.into(), def.version.into(), def.kind.into()))
            .cloned()
        {
            let list_name = format!("{item}List");
            tags.entry(list_name.clone())
                .or_default()
                .push(gvk(def.group, def.version, def.list_kind));
            names.insert(
                (def.group.into(), def.version.into(), def.list_kind.into()),
                list_name.clone(),
            );
            lists.push((list_name, item, def.kind));
        }
    }
    types::register_meta(&mut generator);
    for (group, version) in all_group_versions {
        tags.entry(types::DELETE_OPTIONS.into())
            .or_default()
            .push(gvk(group, version, "DeleteOptions"));
        tags.entry(types::WATCH_EVENT.into())
            .or_default()
            .push(gvk(group, version, "WatchEvent"));
    }
    tags.entry(types::STATUS.into())
        .or_default()
        .push(gvk("", "v1", "Status"));

    let mut schemas: BTreeMap<String, Value> = generator.take_definitions(false).into_iter().collect();
    for name in generic {
        schemas.insert(
            name,
            json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true}),
        );
    }
    for (list_name, item, kind) in lists {
        schemas.insert(list_name, list_schema(flavor, &item, kind));
    }
    for (name, schema) in schemas.iter_mut() {
        reshape(name, schema, flavor);
        if let (Some(gvks), Value::Object(map)) = (tags.remove(name), &mut *schema) {
            map.insert("x-kubernetes-group-version-kind".into(), Value::Array(gvks));
        }
    }
    Definitions { schemas, names }
}

/// The `<Kind>List` schema upstream serves for a resource.
fn list_schema(flavor: Flavor, item: &str, kind: &str) -> Value {
    json!({
        "description": format!("{kind}List is a list of {kind} objects."),
        "type": "object",
        "properties": {
            "apiVersion": {"description": API_VERSION_DOC, "type": "string"},
            "items": {
                "description": format!("List of {}.", plural_words(kind)),
                "type": "array",
                "items": flavor.reference(item),
            },
            "kind": {"description": KIND_DOC, "type": "string"},
            "metadata": flavor.described_reference(types::LIST_META, LIST_METADATA_DOC),
        },
        "required": ["items"],
    })
}

fn plural_words(kind: &str) -> String {
    format!("{}s", kind.to_ascii_lowercase())
}

const API_VERSION_DOC: &str = "APIVersion defines the versioned schema of this representation of an object. \
Servers should convert recognized schemas to the latest internal value, and may reject unrecognized values. \
More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources";
const KIND_DOC: &str = "Kind is a string value representing the REST resource this object represents. Servers \
may infer this from the endpoint the client submits requests to. Cannot be updated. In CamelCase. More info: \
https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds";
const LIST_METADATA_DOC: &str = "Standard list metadata. More info: \
https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds";

/// Brings one generated definition to upstream's shape.
fn reshape(name: &str, schema: &mut Value, flavor: Flavor) {
    let Value::Object(map) = schema else { return };
    // k8s-openapi makes `metadata` required on resource types; upstream does not.
    if let Some(Value::Array(required)) = map.get_mut("required") {
        required.retain(|f| f != "metadata");
        if required.is_empty() {
            map.remove("required");
        }
    }
    // Upstream's list merge semantics (patch strategy, merge key, list type),
    // which kubectl reads to compute strategic merge patches.
    if let Some(Value::Object(props)) = map.get_mut("properties") {
        for (field, prop) in props.iter_mut() {
            if let (Some(values), Value::Object(prop)) = (enums::values(name, field), &mut *prop) {
                prop.insert("enum".into(), json!(values));
            }
            let extensions = merge_keys::openapi_extensions(name, field);
            if let (false, Value::Object(prop)) = (extensions.is_empty(), prop) {
                prop.extend(extensions);
            }
        }
    }
    // Upstream: a string in Swagger 2.0, a `oneOf` in OpenAPI 3.0.
    let int_or_string = name == "io.k8s.apimachinery.pkg.util.intstr.IntOrString";
    if int_or_string || name == "io.k8s.apimachinery.pkg.api.resource.Quantity" {
        map.remove("x-kubernetes-int-or-string");
        if int_or_string {
            map.insert("format".into(), json!("int-or-string"));
        }
        match flavor {
            Flavor::V2 => {
                map.insert("type".into(), json!("string"));
            }
            Flavor::V3 if int_or_string => {
                map.insert("oneOf".into(), json!([{"type": "integer"}, {"type": "string"}]));
            }
            Flavor::V3 => {
                map.insert("oneOf".into(), json!([{"type": "string"}, {"type": "number"}]));
            }
        }
    }
    if flavor == Flavor::V3 {
        wrap_ref_siblings(map);
    }
}

/// OpenAPI 3.0 ignores siblings of `$ref`: upstream writes
/// `{"allOf": [{"$ref": ...}], "description": ...}` instead; do the same at
/// every depth.
fn wrap_ref_siblings(map: &mut Map<String, Value>) {
    let mut schema = k8s_openapi::schemars::Schema::from(std::mem::take(map));
    use k8s_openapi::schemars::transform::Transform;
    RemoveRefSiblings::default().transform(&mut schema);
    if let Value::Object(m) = schema.to_value() {
        *map = m;
    }
}
