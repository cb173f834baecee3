//! The `paths` of an OpenAPI document: one path item per collection, object
//! and subresource URL of each served resource, with upstream's operation
//! ids, `x-kubernetes-action`, `x-kubernetes-group-version-kind`, query
//! parameters (`fieldValidation` on POST/PUT/PATCH tells kubectl the server
//! validates fields itself) and request/response schemas, in Swagger 2.0 or
//! OpenAPI 3.0 form.
//!
//! Must not: generate schemas (see [`super::schemas`]).

use serde_json::{Map, Value};
use skiff_api::registry::ResourceDef;

use super::params::{self, Param};
use super::render::{
    ANY_TYPE, Body, LIST_TYPES, OBJECT_TYPES, Operation, PATCH_TYPES, TEXT_TYPES, render_operation,
    render_param,
};
use super::schemas::{Definitions, Flavor, gvk};
use super::types;
use crate::discovery::resources::subresource_info;

/// `CoreV1`, `AppsV1`, `RbacAuthorizationV1`: the group/version part of operation ids.
fn gv_token(group: &str, version: &str) -> String {
    let base = if group.is_empty() {
        "core"
    } else {
        group.trim_end_matches(".k8s.io")
    };
    let mut out = String::new();
    for part in base.split('.') {
        out.push_str(&capitalize(part));
    }
    out.push_str(&capitalize(version));
    out
}

/// `core_v1`, `apps_v1`, `rbacAuthorization_v1`: the operation tag.
fn tag(group: &str, version: &str) -> String {
    let base = if group.is_empty() {
        "core"
    } else {
        group.trim_end_matches(".k8s.io")
    };
    let mut parts = base.split('.');
    let mut out = parts.next().unwrap_or_default().to_string();
    for part in parts {
        out.push_str(&capitalize(part));
    }
    format!("{out}_{version}")
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(first) => first.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// Every path item of one resource: `(url, path-level params, operations)`.
fn resource_paths(def: &ResourceDef, defs: &Definitions) -> Vec<(String, Vec<Param>, Vec<Operation>)> {
    let Some(item) = defs.name(def.group, def.version, def.kind).map(str::to_string) else {
        return Vec::new();
    };
    let list = defs
        .name(def.group, def.version, def.list_kind)
        .map(str::to_string)
        .unwrap_or(item.clone());
    let prefix = if def.group.is_empty() {
        format!("/api/{}", def.version)
    } else {
        format!("/apis/{}/{}", def.group, def.version)
    };
    let ns = if def.namespaced { "Namespaced" } else { "" };
    let gv = gv_token(def.group, def.version);
    let kind = def.kind;
    let own_gvk = gvk(def.group, def.version, kind);
    let collection = if def.namespaced {
        format!("{prefix}/namespaces/{{namespace}}/{}", def.plural)
    } else {
        format!("{prefix}/{}", def.plural)
    };
    let object = format!("{collection}/{{name}}");
    let scope: Vec<Param> = if def.namespaced {
        vec![params::NAMESPACE]
    } else {
        vec![]
    };
    let op = |method, action, id: String, description: String, params, response: Body| Operation {
        method,
        action,
        id,
        description,
        params,
        request: None,
        responses: vec![(200, "OK")],
        response,
        produces: OBJECT_TYPES,
        gvk: own_gvk.clone(),
    };
    let has = |verb: &str| def.verbs.contains(&verb);
    let mut out = Vec::new();

    let mut ops = Vec::new();
    if has("list") {
        let mut o = op(
            "get",
            "list",
            format!("list{gv}{ns}{kind}"),
            format!("list or watch objects of kind {kind}"),
            params::LIST,
            Body::Def(list.clone()),
        );
        o.produces = LIST_TYPES;
        ops.push(o);
    }
    if has("create") {
        let mut o = op(
            "post",
            "post",
            format!("create{gv}{ns}{kind}"),
            format!("create a {kind}"),
            params::WRITE,
            Body::Def(item.clone()),
        );
        o.request = Some((item.clone(), ANY_TYPE));
        o.responses = vec![(200, "OK"), (201, "Created"), (202, "Accepted")];
        ops.push(o);
    }
    if has("deletecollection") {
        let mut o = op(
            "delete",
            "deletecollection",
            format!("delete{gv}Collection{ns}{kind}"),
            format!("delete collection of {kind}"),
            params::DELETE_COLLECTION,
            Body::Def(types::STATUS.into()),
        );
        o.request = Some((types::DELETE_OPTIONS.into(), ANY_TYPE));
        ops.push(o);
    }
    out.push((collection, scope.clone(), ops));

    let mut object_scope = vec![params::NAME];
    object_scope.extend(scope.iter().copied());
    let mut ops = Vec::new();
    if has("get") {
        ops.push(op(
            "get",
            "get",
            format!("read{gv}{ns}{kind}"),
            format!("read the specified {kind}"),
            &[],
            Body::Def(item.clone()),
        ));
    }
    if has("update") {
        let mut o = op(
            "put",
            "put",
            format!("replace{gv}{ns}{kind}"),
            format!("replace the specified {kind}"),
            params::WRITE,
            Body::Def(item.clone()),
        );
        o.request = Some((item.clone(), ANY_TYPE));
        o.responses = vec![(200, "OK"), (201, "Created")];
        ops.push(o);
    }
    if has("delete") {
        let mut o = op(
            "delete",
            "delete",
            format!("delete{gv}{ns}{kind}"),
            format!("delete a {kind}"),
            params::DELETE,
            Body::Def(types::STATUS.into()),
        );
        o.request = Some((types::DELETE_OPTIONS.into(), ANY_TYPE));
        o.responses = vec![(200, "OK"), (202, "Accepted")];
        ops.push(o);
    }
    if has("patch") {
        let mut o = op(
            "patch",
            "patch",
            format!("patch{gv}{ns}{kind}"),
            format!("partially update the specified {kind}"),
            params::PATCH,
            Body::Def(item.clone()),
        );
        o.request = Some((types::PATCH.into(), PATCH_TYPES));
        o.responses = vec![(200, "OK"), (201, "Created")];
        ops.push(o);
    }
    out.push((object.clone(), object_scope.clone(), ops));

    if def.namespaced && has("list") {
        let mut o = op(
            "get",
            "list",
            format!("list{gv}{kind}ForAllNamespaces"),
            format!("list or watch objects of kind {kind}"),
            params::LIST,
            Body::Def(list.clone()),
        );
        o.produces = LIST_TYPES;
        out.push((format!("{prefix}/{}", def.plural), vec![], vec![o]));
    }

    for sub in def.subresources {
        let info = subresource_info(def, sub);
        let sub_def = defs
            .name(info.group, info.version, info.kind)
            .map(str::to_string)
            .unwrap_or(item.clone());
        let sub_gvk = if info.version.is_empty() {
            own_gvk.clone()
        } else {
            gvk(info.group, info.version, info.kind)
        };
        let suffix = capitalize(sub);
        let mut ops = Vec::new();
        for verb in info.verbs {
            let connect = matches!(*sub, "exec" | "attach" | "portforward" | "proxy");
            let mut o = if connect {
                let method = if *verb == "create" { "post" } else { *verb };
                let (method, word) = match method {
                    "get" => ("get", "Get"),
                    "post" => ("post", "Post"),
                    "update" => ("put", "Put"),
                    "delete" => ("delete", "Delete"),
                    _ => ("patch", "Patch"),
                };
                let connect_params = match *sub {
                    "exec" => params::EXEC,
                    "attach" => params::ATTACH,
                    "portforward" => params::PORT_FORWARD,
                    _ => params::PROXY,
                };
                let mut o = op(
                    method,
                    "connect",
                    format!("connect{gv}{word}{ns}{kind}{suffix}"),
                    format!("connect {method} requests to {sub} of {kind}"),
                    connect_params,
                    Body::Text,
                );
                o.produces = ANY_TYPE;
                o
            } else {
                match *verb {
                    "get" if *sub == "log" => {
                        let mut o = op(
                            "get",
                            "get",
                            format!("read{gv}{ns}{kind}Log"),
                            format!("read log of the specified {kind}"),
                            params::LOG,
                            Body::Text,
                        );
                        o.produces = TEXT_TYPES;
                        o
                    }
                    "get" => op(
                        "get",
                        "get",
                        format!("read{gv}{ns}{kind}{suffix}"),
                        format!("read {sub} of the specified {kind}"),
                        &[],
                        Body::Def(sub_def.clone()),
                    ),
                    "create" => {
                        let mut o = op(
                            "post",
                            "post",
                            format!("create{gv}{ns}{kind}{suffix}"),
                            format!("create {sub} of a {kind}"),
                            params::WRITE,
                            Body::Def(sub_def.clone()),
                        );
                        o.request = Some((sub_def.clone(), ANY_TYPE));
                        o.responses = vec![(200, "OK"), (201, "Created"), (202, "Accepted")];
                        o
                    }
                    "update" => {
                        let mut o = op(
                            "put",
                            "put",
                            format!("replace{gv}{ns}{kind}{suffix}"),
                            format!("replace {sub} of the specified {kind}"),
                            params::WRITE,
                            Body::Def(sub_def.clone()),
                        );
                        o.request = Some((sub_def.clone(), ANY_TYPE));
                        o.responses = vec![(200, "OK"), (201, "Created")];
                        o
                    }
                    _ => {
                        let mut o = op(
                            "patch",
                            "patch",
                            format!("patch{gv}{ns}{kind}{suffix}"),
                            format!("partially update {sub} of the specified {kind}"),
                            params::PATCH,
                            Body::Def(sub_def.clone()),
                        );
                        o.request = Some((types::PATCH.into(), PATCH_TYPES));
                        o.responses = vec![(200, "OK"), (201, "Created")];
                        o
                    }
                }
            };
            o.gvk = sub_gvk.clone();
            ops.push(o);
        }
        out.push((format!("{object}/{sub}"), object_scope.clone(), ops));
    }
    out
}

/// The `paths` object for `resources`, sorted by URL.
pub(crate) fn build(resources: &[&ResourceDef], defs: &Definitions, flavor: Flavor) -> Map<String, Value> {
    let mut items: Vec<(String, Value)> = Vec::new();
    for def in resources {
        let tag = tag(def.group, def.version);
        for (url, path_params, ops) in resource_paths(def, defs) {
            if ops.is_empty() {
                continue;
            }
            let mut item = Map::new();
            for op in &ops {
                item.insert(op.method.into(), render_operation(op, &tag, flavor));
            }
            let mut shared: Vec<Value> = path_params.iter().map(|p| render_param(p, flavor)).collect();
            shared.push(render_param(&params::PRETTY, flavor));
            item.insert("parameters".into(), Value::Array(shared));
            items.push((url, Value::Object(item)));
        }
    }
    items.sort_by(|a, b| a.0.cmp(&b.0));
    items.into_iter().collect()
}
