//! Strategic merge patch, as kube-apiserver applies it for
//! `application/strategic-merge-patch+json` (what `kubectl apply`, `edit` and
//! `patch` send): maps merge key by key, `null` deletes, lists merge by their
//! upstream merge key or are replaced when atomic, and the directives
//! `$patch` (replace/merge/delete), `$retainKeys`,
//! `$deleteFromPrimitiveList/<field>` and `$setElementOrder/<field>` apply.

use super::merge_keys::ListKind;
use super::schema::Node;
use serde_json::{Map, Value};

const DELETE_PRIMITIVE: &str = "$deleteFromPrimitiveList/";
const SET_ORDER: &str = "$setElementOrder/";

/// Why a strategic merge patch could not be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SmpError {
    /// A malformed patch: upstream answers 400 BadRequest.
    #[error("{0}")]
    BadPatch(String),
    /// A patch whose content contradicts itself: upstream answers 422.
    #[error("{0}")]
    Unprocessable(String),
}

/// Applies `patch` to `current` where `node` is `current`'s schema.
pub fn apply(current: &Value, patch: &Value, node: Node) -> Result<Value, SmpError> {
    match patch {
        Value::Object(p) => {
            let orig = current.as_object().cloned().unwrap_or_default();
            Ok(Value::Object(merge_map(orig, p, node)?))
        }
        _ => Err(SmpError::BadPatch("invalid JSON document".to_string())),
    }
}

fn directive(m: &Map<String, Value>) -> Option<&Value> {
    m.get("$patch")
}

fn strings(v: &Value, err: &str) -> Result<Vec<String>, SmpError> {
    v.as_array()
        .map(|a| {
            a.iter()
                .map(|x| x.as_str().map(str::to_string))
                .collect::<Option<Vec<_>>>()
        })
        .and_then(|x| x)
        .ok_or_else(|| SmpError::BadPatch(err.to_string()))
}

fn merge_map(
    mut orig: Map<String, Value>,
    patch: &Map<String, Value>,
    node: Node,
) -> Result<Map<String, Value>, SmpError> {
    match directive(patch).map(|d| d.as_str()) {
        None | Some(Some("merge")) => {}
        Some(Some("replace")) => {
            let mut rest = patch.clone();
            rest.shift_remove("$patch");
            return merge_map(Map::new(), &rest, node);
        }
        Some(Some("delete")) => return Ok(Map::new()),
        Some(other) => {
            return Err(SmpError::BadPatch(format!(
                "unknown patch type: {} in map: {}",
                other.unwrap_or("<non-string>"),
                Value::Object(patch.clone())
            )));
        }
    }
    if let Some(rk) = patch.get("$retainKeys") {
        let keep = strings(rk, "invalid patch format of retainKeys")?;
        let stray = patch
            .iter()
            .any(|(k, v)| !k.starts_with('$') && !v.is_null() && !keep.iter().any(|x| x == k));
        if stray {
            return Err(SmpError::BadPatch(
                "invalid patch format of retainKeys".to_string(),
            ));
        }
        orig.retain(|k, _| keep.iter().any(|x| x == k));
    }
    for (k, v) in patch.iter().filter(|(k, _)| k.starts_with(DELETE_PRIMITIVE)) {
        let field = &k[DELETE_PRIMITIVE.len()..];
        let doomed = v
            .as_array()
            .ok_or_else(|| SmpError::BadPatch("invalid patch format of primitive list".into()))?;
        if let Some(Value::Array(list)) = orig.get_mut(field) {
            list.retain(|x| !doomed.contains(x));
        }
    }
    let mut orders: Vec<(&str, &Vec<Value>)> = Vec::new();
    for (k, v) in patch.iter().filter(|(k, _)| k.starts_with(SET_ORDER)) {
        let list = v
            .as_array()
            .ok_or_else(|| SmpError::BadPatch("invalid patch format of setElementOrder list".into()))?;
        orders.push((&k[SET_ORDER.len()..], list));
    }
    for (k, pv) in patch.iter().filter(|(k, _)| !k.starts_with('$')) {
        let order = orders.iter().find(|(f, _)| *f == k).map(|(_, o)| o.as_slice());
        if pv.is_null()
            || pv
                .as_object()
                .is_some_and(|m| directive(m).and_then(Value::as_str) == Some("delete"))
        {
            orig.shift_remove(k);
            continue;
        }
        let child = node.child(k);
        let kind = if node.is_map() {
            ListKind::Atomic
        } else {
            node.list_kind(k)
        };
        let merged = match orig.get_mut(k) {
            Some(slot) => merge_value(std::mem::take(slot), pv, child, kind, order)?,
            None => merge_value(Value::Null, pv, child, kind, order)?,
        };
        match orig.get_mut(k) {
            Some(slot) => *slot = merged,
            None => {
                orig.insert(k.clone(), merged);
            }
        }
    }
    // An order for a list the patch did not otherwise touch.
    for (field, order) in orders {
        if patch.contains_key(field) {
            continue;
        }
        if let Some(Value::Array(list)) = orig.get_mut(field) {
            let n = list.len();
            let taken = std::mem::take(list);
            *list = reorder(taken, n, order, node.list_kind(field));
        }
    }
    Ok(orig)
}

fn merge_value(
    orig: Value,
    patch: &Value,
    node: Node,
    kind: ListKind,
    order: Option<&[Value]>,
) -> Result<Value, SmpError> {
    match (orig, patch) {
        (Value::Object(o), Value::Object(p)) => Ok(Value::Object(merge_map(o, p, node)?)),
        (_, Value::Object(p)) => Ok(Value::Object(merge_map(Map::new(), p, node)?)),
        (Value::Array(o), Value::Array(p)) => Ok(Value::Array(merge_list(o, p, node.items(), kind, order)?)),
        (_, Value::Array(p)) => Ok(Value::Array(merge_list(
            Vec::new(),
            p,
            node.items(),
            kind,
            order,
        )?)),
        (_, other) => Ok(other.clone()),
    }
}

/// Copies a patch list into a fresh value, dropping directives.
fn clean_list(patch: &[Value], items: Node) -> Result<Vec<Value>, SmpError> {
    patch
        .iter()
        .filter(|e| {
            !e.as_object()
                .is_some_and(|m| m.len() == 1 && directive(m).is_some())
        })
        .map(|e| merge_value(Value::Null, e, items, ListKind::Atomic, None))
        .collect()
}

fn merge_list(
    mut orig: Vec<Value>,
    patch: &[Value],
    items: Node,
    kind: ListKind,
    order: Option<&[Value]>,
) -> Result<Vec<Value>, SmpError> {
    if patch.iter().any(Value::is_array) {
        return Err(SmpError::Unprocessable(
            "lists of lists are not supported".to_string(),
        ));
    }
    let replace = patch
        .iter()
        .any(|e| e.as_object().and_then(directive).and_then(Value::as_str) == Some("replace"));
    if replace || kind == ListKind::Atomic {
        // Items carrying a directive are dropped whole, as upstream does.
        let kept: Vec<Value> = patch
            .iter()
            .filter(|e| kind == ListKind::Atomic || e.as_object().is_none_or(|m| directive(m).is_none()))
            .cloned()
            .collect();
        return clean_list(&kept, items);
    }
    let existing = match kind {
        ListKind::Set => {
            let n = orig.len();
            for e in patch.iter().filter(|e| !e.is_object()) {
                if !orig.contains(e) {
                    orig.push(e.clone());
                }
            }
            n
        }
        ListKind::Map { patch_key, .. } => {
            // Deletions first, so the count of server items stays meaningful.
            for e in patch {
                let m = e.as_object().ok_or_else(|| {
                    SmpError::BadPatch(format!(
                        "map: {e} does not contain declared merge key: {patch_key}"
                    ))
                })?;
                if directive(m).and_then(Value::as_str) == Some("delete") {
                    let key = m.get(patch_key).ok_or_else(|| {
                        SmpError::BadPatch(format!(
                            "map: {e} does not contain declared merge key: {patch_key}"
                        ))
                    })?;
                    orig.retain(|x| x.get(patch_key) != Some(key));
                }
            }
            let n = orig.len();
            for e in patch {
                let Some(m) = e.as_object() else { continue };
                match directive(m).and_then(Value::as_str) {
                    Some("delete") => continue,
                    Some("merge") => {
                        return Err(SmpError::BadPatch(
                            "merging lists cannot yet be specified in the patch".to_string(),
                        ));
                    }
                    Some(other) => {
                        return Err(SmpError::BadPatch(format!(
                            "unknown patch type: {other} in map: {e}"
                        )));
                    }
                    None => {}
                }
                let key = m.get(patch_key).ok_or_else(|| {
                    SmpError::BadPatch(format!(
                        "map: {e} does not contain declared merge key: {patch_key}"
                    ))
                })?;
                match orig.iter().position(|x| x.get(patch_key) == Some(key)) {
                    Some(pos) => {
                        let cur = std::mem::take(&mut orig[pos]);
                        let cur = cur.as_object().cloned().unwrap_or_default();
                        orig[pos] = Value::Object(merge_map(cur, m, items)?);
                    }
                    None => orig.push(Value::Object(merge_map(Map::new(), m, items)?)),
                }
            }
            n
        }
        ListKind::Atomic => orig.len(),
    };
    Ok(match order {
        Some(order) => reorder(orig, existing, order, kind),
        None => orig,
    })
}

/// Applies `$setElementOrder`: items named in `order` take that order; items
/// only the server has (the first `existing` of `list` not named in `order`)
/// keep their place relative to the other server items.
fn reorder(list: Vec<Value>, existing: usize, order: &[Value], kind: ListKind) -> Vec<Value> {
    let same = |item: &Value, o: &Value| match kind {
        ListKind::Map { patch_key, .. } => {
            item.get(patch_key).is_some() && item.get(patch_key) == o.get(patch_key)
        }
        _ => item == o,
    };
    let mut ordered: Vec<(usize, Option<usize>, Value)> = Vec::new();
    let mut server_only: Vec<(usize, Value)> = Vec::new();
    for (i, item) in list.into_iter().enumerate() {
        match order.iter().position(|o| same(&item, o)) {
            Some(rank) => ordered.push((rank, (i < existing).then_some(i), item)),
            None => server_only.push((i, item)),
        }
    }
    ordered.sort_by_key(|(rank, _, _)| *rank);
    let mut out = Vec::with_capacity(ordered.len() + server_only.len());
    let mut rest = server_only.into_iter().peekable();
    for (_, server_index, item) in ordered {
        if let Some(idx) = server_index {
            while let Some((_, v)) = rest.next_if(|(j, _)| *j < idx) {
                out.push(v);
            }
        }
        out.push(item);
    }
    out.extend(rest.map(|(_, v)| v));
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::registry::Registry;
    use serde_json::json;

    fn node(group: &str, plural: &str) -> Node {
        let reg = Registry::builtin();
        let version = "v1";
        Node::root(reg.find(group, version, plural).unwrap())
    }

    fn deployment() -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web", "tier": "fe"},
                         "finalizers": ["a.example.com/x", "b.example.com/y"]},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "web"}},
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {
                        "containers": [
                            {"name": "nginx", "image": "nginx:1.25",
                             "ports": [{"containerPort": 80, "protocol": "TCP"}, {"containerPort": 8080, "protocol": "TCP"}],
                             "env": [{"name": "A", "value": "1"}],
                             "args": ["-a", "-b"]},
                            {"name": "sidecar", "image": "busybox", "command": ["sleep", "3600"]}
                        ],
                        "tolerations": [{"key": "k1", "operator": "Exists"}]
                    }
                }
            }
        })
    }

    fn smp(cur: &Value, patch: Value) -> Value {
        apply(cur, &patch, node("apps", "deployments")).unwrap()
    }

    #[test]
    fn kubectl_apply_image_change_merges_container_by_name() {
        // What kubectl 1.32 client-side apply sends after editing one image.
        let patch = json!({"spec": {"template": {"spec": {
            "$setElementOrder/containers": [{"name": "nginx"}, {"name": "sidecar"}],
            "containers": [{"image": "nginx:1.26", "name": "nginx"}]}}}});
        let out = smp(&deployment(), patch);
        let c = &out["spec"]["template"]["spec"]["containers"];
        assert_eq!(c[0]["image"], "nginx:1.26");
        assert_eq!(c[0]["ports"].as_array().unwrap().len(), 2, "siblings kept");
        assert_eq!(c[1]["name"], "sidecar");
        assert_eq!(out["spec"]["replicas"], 2);
    }

    #[test]
    fn adding_env_and_deleting_a_port() {
        let patch = json!({"spec": {"template": {"spec": {
            "$setElementOrder/containers": [{"name": "nginx"}, {"name": "sidecar"}],
            "containers": [{
                "$setElementOrder/env": [{"name": "B"}, {"name": "A"}],
                "$setElementOrder/ports": [{"containerPort": 80}],
                "env": [{"name": "B", "value": "2"}],
                "name": "nginx",
                "ports": [{"$patch": "delete", "containerPort": 8080}]}]}}}});
        let out = smp(&deployment(), patch);
        let c = &out["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(
            c["env"],
            json!([{"name": "B", "value": "2"}, {"name": "A", "value": "1"}])
        );
        assert_eq!(c["ports"], json!([{"containerPort": 80, "protocol": "TCP"}]));
    }

    #[test]
    fn set_element_order_reorders_and_new_items_land_in_place() {
        let patch = json!({"spec": {"template": {"spec": {
            "$setElementOrder/containers": [{"name": "sidecar"}, {"name": "init"}, {"name": "nginx"}],
            "containers": [{"name": "init", "image": "busybox"}]}}}});
        let out = smp(&deployment(), patch);
        let names: Vec<&str> = out["spec"]["template"]["spec"]["containers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["sidecar", "init", "nginx"]);
    }

    #[test]
    fn atomic_lists_are_replaced_and_null_deletes() {
        let patch = json!({"metadata": {"labels": {"tier": null}},
            "spec": {"template": {"spec": {
                "tolerations": [{"key": "k2", "operator": "Exists"}],
                "containers": [{"name": "nginx", "args": ["-c"]}]}}}});
        let out = smp(&deployment(), patch);
        assert_eq!(out["metadata"]["labels"], json!({"app": "web"}));
        let spec = &out["spec"]["template"]["spec"];
        assert_eq!(spec["tolerations"], json!([{"key": "k2", "operator": "Exists"}]));
        assert_eq!(spec["containers"][0]["args"], json!(["-c"]));
    }

    #[test]
    fn finalizers_merge_as_a_set_and_delete_from_primitive_list() {
        let out = smp(
            &deployment(),
            json!({"metadata": {"finalizers": ["b.example.com/y", "c.example.com/z"]}}),
        );
        assert_eq!(
            out["metadata"]["finalizers"],
            json!(["a.example.com/x", "b.example.com/y", "c.example.com/z"])
        );
        let patch = json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["a.example.com/x"],
                                        "$setElementOrder/finalizers": ["b.example.com/y"]}});
        assert_eq!(
            smp(&deployment(), patch)["metadata"]["finalizers"],
            json!(["b.example.com/y"])
        );
    }

    #[test]
    fn retain_keys_switches_deployment_strategy() {
        let patch = json!({"spec": {"strategy": {"$retainKeys": ["type"], "rollingUpdate": null, "type": "Recreate"}}});
        assert_eq!(
            smp(&deployment(), patch)["spec"]["strategy"],
            json!({"type": "Recreate"})
        );
        let bad = json!({"spec": {"strategy": {"$retainKeys": ["type"], "rollingUpdate": {"maxSurge": 1}}}});
        let err = apply(&deployment(), &bad, node("apps", "deployments")).unwrap_err();
        assert_eq!(
            err,
            SmpError::BadPatch("invalid patch format of retainKeys".into())
        );
    }

    #[test]
    fn patch_replace_and_delete_directives() {
        let patch = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "only", "image": "busybox"}, {"$patch": "replace"}]}}}});
        let out = smp(&deployment(), patch);
        assert_eq!(
            out["spec"]["template"]["spec"]["containers"],
            json!([{"name": "only", "image": "busybox"}])
        );
        let out = smp(
            &deployment(),
            json!({"spec": {"strategy": {"$patch": "replace", "type": "Recreate"}}}),
        );
        assert_eq!(out["spec"]["strategy"], json!({"type": "Recreate"}));
        let out = smp(
            &deployment(),
            json!({"spec": {"template": {"spec": {"containers": [
            {"$patch": "delete", "name": "sidecar"}]}}}}),
        );
        assert_eq!(
            out["spec"]["template"]["spec"]["containers"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
        let bad = json!({"spec": {"strategy": {"$patch": "explode"}}});
        assert!(matches!(
            apply(&deployment(), &bad, node("apps", "deployments")),
            Err(SmpError::BadPatch(_))
        ));
    }

    #[test]
    fn service_ports_merge_by_port() {
        let svc = json!({"spec": {"type": "ClusterIP", "ports": [
            {"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"},
            {"name": "https", "port": 443, "targetPort": 8443, "protocol": "TCP"}]}});
        let patch = json!({"spec": {"$setElementOrder/ports": [{"port": 80}, {"port": 443}],
            "ports": [{"port": 80, "targetPort": 9090}]}});
        let out = apply(&svc, &patch, node("", "services")).unwrap();
        assert_eq!(out["spec"]["ports"][0]["targetPort"], 9090);
        assert_eq!(out["spec"]["ports"][0]["name"], "http");
        assert_eq!(out["spec"]["ports"][1]["port"], 443);
    }

    #[test]
    fn replace_drops_items_carrying_directives() {
        let patch = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "a", "image": "x"}, {"name": "b", "image": "y", "$patch": "replace"}]}}}});
        let out = smp(&deployment(), patch);
        assert_eq!(
            out["spec"]["template"]["spec"]["containers"],
            json!([{"name": "a", "image": "x"}])
        );
        let bad = json!({"spec": {"template": {"spec": {"containers": [{"name": "a", "$patch": "merge"}]}}}});
        assert!(apply(&deployment(), &bad, node("apps", "deployments")).is_err());
    }

    #[test]
    fn delete_without_merge_key_is_a_bad_patch() {
        let patch = json!({"spec": {"template": {"spec": {"containers": [{"$patch": "delete"}]}}}});
        let err = apply(&deployment(), &patch, node("apps", "deployments")).unwrap_err();
        assert!(
            matches!(err, SmpError::BadPatch(m) if m.ends_with("does not contain declared merge key: name"))
        );
    }

    #[test]
    fn merge_key_missing_is_a_bad_patch() {
        let patch = json!({"spec": {"template": {"spec": {"containers": [{"image": "x"}]}}}});
        let err = apply(&deployment(), &patch, node("apps", "deployments")).unwrap_err();
        assert_eq!(
            err,
            SmpError::BadPatch(r#"map: {"image":"x"} does not contain declared merge key: name"#.into())
        );
    }
}
