//! Object shapes compiled from the OpenAPI schemas `k8s-openapi` generates
//! (its `schemars` feature), for unknown-field detection without a typed
//! round trip: one compiled tree per kind, built on first use and cached.
//!
//! A shape only says which keys an object may hold; types, formats and
//! required fields are decoding's job.

use crate::registry::ResourceDef;
use k8s_openapi::schemars::{JsonSchema, SchemaGenerator};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::{Arc, OnceLock, RwLock};

/// What an object at some place in a kind's schema may hold.
#[derive(Debug)]
enum Shape {
    /// Anything (scalars, free-form objects, int-or-string, ...).
    Any,
    /// The same as another shape (a `$ref` or single-element `allOf`).
    Alias(usize),
    /// An object with known properties and, for maps, one shape for every value.
    Object {
        props: HashMap<String, usize>,
        values: Option<usize>,
    },
    /// A list whose items have one shape.
    Array(usize),
}

/// A kind's compiled schema; shape 0 is the object itself.
#[derive(Debug)]
pub(crate) struct Tree {
    shapes: Vec<Shape>,
}

fn root_schema<T: JsonSchema>() -> Value {
    serde_json::to_value(SchemaGenerator::default().into_root_schema_for::<T>()).unwrap_or(Value::Null)
}

/// The OpenAPI schema of `def`'s `k8s-openapi` type.
fn schema_of(def: &ResourceDef) -> Option<Value> {
    use k8s_openapi::api::{
        apps::v1 as apps, autoscaling::v1 as as1, autoscaling::v2 as as2, batch::v1 as batch,
        coordination::v1 as coord, core::v1 as core, discovery::v1 as disc, events::v1 as ev,
        policy::v1 as policy, rbac::v1 as rbac, scheduling::v1 as sched, storage::v1 as storage,
    };
    Some(match (def.group, def.version, def.kind) {
        ("", "v1", "Namespace") => root_schema::<core::Namespace>(),
        ("", "v1", "Node") => root_schema::<core::Node>(),
        ("", "v1", "Pod") => root_schema::<core::Pod>(),
        ("", "v1", "Service") => root_schema::<core::Service>(),
        ("", "v1", "Endpoints") => root_schema::<core::Endpoints>(),
        ("", "v1", "ConfigMap") => root_schema::<core::ConfigMap>(),
        ("", "v1", "Secret") => root_schema::<core::Secret>(),
        ("", "v1", "ServiceAccount") => root_schema::<core::ServiceAccount>(),
        ("", "v1", "Event") => root_schema::<core::Event>(),
        ("", "v1", "ReplicationController") => root_schema::<core::ReplicationController>(),
        ("", "v1", "PersistentVolume") => root_schema::<core::PersistentVolume>(),
        ("", "v1", "PersistentVolumeClaim") => root_schema::<core::PersistentVolumeClaim>(),
        ("", "v1", "ResourceQuota") => root_schema::<core::ResourceQuota>(),
        ("", "v1", "LimitRange") => root_schema::<core::LimitRange>(),
        ("apps", "v1", "Deployment") => root_schema::<apps::Deployment>(),
        ("apps", "v1", "ReplicaSet") => root_schema::<apps::ReplicaSet>(),
        ("apps", "v1", "StatefulSet") => root_schema::<apps::StatefulSet>(),
        ("apps", "v1", "DaemonSet") => root_schema::<apps::DaemonSet>(),
        ("apps", "v1", "ControllerRevision") => root_schema::<apps::ControllerRevision>(),
        ("batch", "v1", "Job") => root_schema::<batch::Job>(),
        ("batch", "v1", "CronJob") => root_schema::<batch::CronJob>(),
        ("certificates.k8s.io", "v1", "CertificateSigningRequest") => {
            root_schema::<k8s_openapi::api::certificates::v1::CertificateSigningRequest>()
        }
        ("coordination.k8s.io", "v1", "Lease") => root_schema::<coord::Lease>(),
        ("discovery.k8s.io", "v1", "EndpointSlice") => root_schema::<disc::EndpointSlice>(),
        ("events.k8s.io", "v1", "Event") => root_schema::<ev::Event>(),
        ("rbac.authorization.k8s.io", "v1", "Role") => root_schema::<rbac::Role>(),
        ("rbac.authorization.k8s.io", "v1", "RoleBinding") => root_schema::<rbac::RoleBinding>(),
        ("rbac.authorization.k8s.io", "v1", "ClusterRole") => root_schema::<rbac::ClusterRole>(),
        ("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding") => {
            root_schema::<rbac::ClusterRoleBinding>()
        }
        ("autoscaling", "v1", "HorizontalPodAutoscaler") => root_schema::<as1::HorizontalPodAutoscaler>(),
        ("autoscaling", "v2", "HorizontalPodAutoscaler") => root_schema::<as2::HorizontalPodAutoscaler>(),
        ("policy", "v1", "PodDisruptionBudget") => root_schema::<policy::PodDisruptionBudget>(),
        ("storage.k8s.io", "v1", "StorageClass") => root_schema::<storage::StorageClass>(),
        ("scheduling.k8s.io", "v1", "PriorityClass") => root_schema::<sched::PriorityClass>(),
        _ => return None,
    })
}

/// The compiled tree of `def`'s kind, `None` for a kind without a known schema.
pub(crate) fn tree(def: &ResourceDef) -> Option<Arc<Tree>> {
    static CACHE: OnceLock<RwLock<HashMap<String, Arc<Tree>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let key = format!("{}/{}", def.api_version(), def.kind);
    if let Some(t) = cache.read().ok().and_then(|c| c.get(&key).cloned()) {
        return Some(t);
    }
    let tree = Arc::new(compile(&schema_of(def)?));
    if let Ok(mut c) = cache.write() {
        c.insert(key, tree.clone());
    }
    Some(tree)
}

fn compile(root: &Value) -> Tree {
    let empty = Map::new();
    let defs = root
        .get("$defs")
        .or_else(|| root.get("definitions"))
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let mut b = Builder {
        defs,
        named: HashMap::new(),
        shapes: Vec::new(),
    };
    b.build(root);
    Tree { shapes: b.shapes }
}

struct Builder<'a> {
    defs: &'a Map<String, Value>,
    named: HashMap<String, usize>,
    shapes: Vec<Shape>,
}

impl Builder<'_> {
    fn build(&mut self, schema: &Value) -> usize {
        let idx = self.shapes.len();
        self.shapes.push(Shape::Any);
        let shape = self.shape(schema);
        self.shapes[idx] = shape;
        idx
    }

    fn named(&mut self, reference: &str) -> usize {
        let name = reference.rsplit('/').next().unwrap_or(reference).to_string();
        if let Some(i) = self.named.get(&name) {
            return *i;
        }
        let idx = self.shapes.len();
        self.shapes.push(Shape::Any);
        self.named.insert(name.clone(), idx);
        if let Some(def) = self.defs.get(&name) {
            let shape = self.shape(def);
            self.shapes[idx] = shape;
        }
        idx
    }

    fn shape(&mut self, s: &Value) -> Shape {
        if let Some(r) = s.get("$ref").and_then(Value::as_str) {
            return Shape::Alias(self.named(r));
        }
        if let Some([only]) = s.get("allOf").and_then(Value::as_array).map(Vec::as_slice) {
            return Shape::Alias(self.build(only));
        }
        if s.get("x-kubernetes-preserve-unknown-fields")
            .and_then(Value::as_bool)
            == Some(true)
        {
            return Shape::Any;
        }
        let values = match s.get("additionalProperties") {
            Some(v @ Value::Object(_)) => Some(self.build(v)),
            Some(Value::Bool(true)) => Some(self.build(&Value::Bool(true))),
            _ => None,
        };
        if let Some(props) = s.get("properties").and_then(Value::as_object) {
            let props = props.iter().map(|(k, v)| (k.clone(), self.build(v))).collect();
            return Shape::Object { props, values };
        }
        if values.is_some() {
            return Shape::Object {
                props: HashMap::new(),
                values,
            };
        }
        match s.get("items") {
            Some(items @ Value::Object(_)) => Shape::Array(self.build(items)),
            _ => Shape::Any,
        }
    }
}

impl Tree {
    /// Field paths in `obj` its schema does not know.
    pub(crate) fn unknown(&self, obj: &Value) -> Vec<String> {
        let mut out = Vec::new();
        self.walk(0, obj, &mut String::new(), &mut out);
        out
    }

    fn walk(&self, idx: usize, v: &Value, path: &mut String, out: &mut Vec<String>) {
        match self.shapes.get(idx) {
            None | Some(Shape::Any) => {}
            Some(Shape::Alias(i)) => self.walk(*i, v, path, out),
            Some(Shape::Object { props, values }) => {
                let Value::Object(map) = v else { return };
                for (k, child) in map {
                    let len = path.len();
                    if !path.is_empty() {
                        path.push('.');
                    }
                    path.push_str(k);
                    match props.get(k).or(values.as_ref()) {
                        Some(i) => self.walk(*i, child, path, out),
                        None => out.push(path.clone()),
                    }
                    path.truncate(len);
                }
            }
            Some(Shape::Array(i)) => {
                let Value::Array(items) = v else { return };
                for (n, item) in items.iter().enumerate() {
                    let len = path.len();
                    path.push_str(&format!("[{n}]"));
                    self.walk(*i, item, path, out);
                    path.truncate(len);
                }
            }
        }
    }
}
