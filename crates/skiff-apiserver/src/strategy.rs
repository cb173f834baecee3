//! Metadata rules of writes, as upstream's registry strategies apply them:
//! uid, creationTimestamp, generation, generateName, status reset on create,
//! status/main-resource separation on update, and the deletion plan
//! (preconditions, graceful pod deletion, finalizers, propagation policy).
//!
//! Must not: touch the store; handlers call these pure functions and write
//! the result.

#![allow(clippy::result_large_err)] // ApiError is the API-facing error; handlers move it on unchanged.

use rand::Rng;
use serde_json::{Map, Value, json};
use skiff_api::registry::ResourceDef;
use skiff_api::status::{ApiError, Cause};

/// The characters upstream uses for generated name suffixes.
const SUFFIX_CHARS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// Upstream's `foregroundDeletion` finalizer.
pub const FOREGROUND_FINALIZER: &str = "foregroundDeletion";
/// Upstream's `orphan` finalizer.
pub const ORPHAN_FINALIZER: &str = "orphan";

/// The current time as RFC 3339 with second precision (as upstream's metav1.Time).
pub fn now_rfc3339() -> String {
    jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn meta_mut(obj: &mut Value) -> &mut Map<String, Value> {
    if !obj.get("metadata").is_some_and(Value::is_object) {
        obj["metadata"] = json!({});
    }
    match obj.get_mut("metadata").and_then(Value::as_object_mut) {
        Some(m) => m,
        None => unreachable!("metadata was just made an object"),
    }
}

/// `generateName` plus a random 5-character suffix.
pub fn generate_name(prefix: &str) -> String {
    let mut rng = rand::rng();
    let suffix: String = (0..5)
        .map(|_| SUFFIX_CHARS[rng.random_range(0..SUFFIX_CHARS.len())] as char)
        .collect();
    format!("{prefix}{suffix}")
}

/// Resolves the object's name: `metadata.name`, or one generated from
/// `generateName`. 422 when neither is set.
pub fn resolve_name(def: &ResourceDef, obj: &mut Value) -> Result<String, ApiError> {
    if let Some(name) = obj["metadata"]["name"].as_str().filter(|n| !n.is_empty()) {
        return Ok(name.to_string());
    }
    match obj["metadata"]["generateName"].as_str().filter(|n| !n.is_empty()) {
        Some(prefix) => {
            let name = generate_name(prefix);
            meta_mut(obj).insert("name".into(), Value::String(name.clone()));
            Ok(name)
        }
        None => Err(ApiError::invalid(
            def.kind,
            def.group,
            "",
            vec![Cause::new(
                "FieldValueRequired",
                "metadata.name",
                "Required value: name or generateName is required",
            )],
        )),
    }
}

/// Sets the server-owned metadata of a new object and resets what clients may not set.
pub fn prepare_create(def: &ResourceDef, obj: &mut Value, namespace: Option<&str>, now: &str) {
    let has_spec = obj.get("spec").is_some();
    let meta = meta_mut(obj);
    meta.insert("uid".into(), Value::String(uuid::Uuid::new_v4().to_string()));
    meta.insert("creationTimestamp".into(), Value::String(now.to_string()));
    for field in [
        "resourceVersion",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "selfLink",
    ] {
        meta.remove(field);
    }
    match namespace {
        Some(ns) if def.namespaced => {
            meta.insert("namespace".into(), Value::String(ns.to_string()));
        }
        _ => {
            meta.remove("namespace");
        }
    }
    if has_spec {
        meta.insert("generation".into(), json!(1));
    } else {
        meta.remove("generation");
    }
    reset_status_on_create(def, obj);
}

fn reset_status_on_create(def: &ResourceDef, obj: &mut Value) {
    match (def.group, def.plural) {
        ("", "pods") => {
            let qos = qos_class(&obj["spec"]);
            obj["status"] = json!({"phase": "Pending", "qosClass": qos});
        }
        ("", "namespaces") => obj["status"] = json!({"phase": "Active"}),
        ("", "persistentvolumes") | ("", "persistentvolumeclaims") => {
            obj["status"] = json!({"phase": "Pending"})
        }
        ("", "services") => obj["status"] = json!({"loadBalancer": {}}),
        ("", "nodes") => {}
        _ if def.has_subresource("status") => {
            if let Some(m) = obj.as_object_mut() {
                m.remove("status");
            }
        }
        _ => {}
    }
}

/// Upstream's pod QoS class from container requests and limits.
pub fn qos_class(spec: &Value) -> &'static str {
    let mut any = false;
    let mut guaranteed = true;
    let containers = spec["containers"]
        .as_array()
        .into_iter()
        .chain(spec["initContainers"].as_array())
        .flatten();
    for c in containers {
        let req = &c["resources"]["requests"];
        let lim = &c["resources"]["limits"];
        for res in ["cpu", "memory"] {
            let (r, l) = (req.get(res).or(lim.get(res)), lim.get(res));
            if r.is_some() || l.is_some() {
                any = true;
            }
            if l.is_none() || r != l {
                guaranteed = false;
            }
        }
    }
    match (any, guaranteed) {
        (false, _) => "BestEffort",
        (true, true) => "Guaranteed",
        (true, false) => "Burstable",
    }
}

/// Which part of an object a write may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// The main resource: status changes are ignored when a status subresource exists.
    Main,
    /// The `status` subresource: only status changes are kept.
    Status,
}

/// Merges an update into the old object as upstream's PrepareForUpdate does
/// and bumps `generation` when anything but metadata/status changed.
pub fn prepare_update(def: &ResourceDef, new: Value, old: &Value, target: Target) -> Value {
    let mut out = match target {
        Target::Status => {
            let mut out = old.clone();
            out["status"] = new.get("status").cloned().unwrap_or(Value::Null);
            if let Some(m) = out.as_object_mut()
                && m.get("status").is_some_and(Value::is_null)
            {
                m.remove("status");
            }
            if let Some(mf) = new["metadata"].get("managedFields") {
                meta_mut(&mut out).insert("managedFields".into(), mf.clone());
            }
            out
        }
        Target::Main => {
            let mut out = new;
            if def.has_subresource("status") {
                match old.get("status") {
                    Some(s) => out["status"] = s.clone(),
                    None => {
                        if let Some(m) = out.as_object_mut() {
                            m.remove("status");
                        }
                    }
                }
            }
            out
        }
    };
    let om = &old["metadata"];
    let meta = meta_mut(&mut out);
    for field in [
        "uid",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "namespace",
        "name",
    ] {
        match om.get(field) {
            Some(v) => meta.insert(field.into(), v.clone()),
            None => meta.remove(field),
        };
    }
    meta.remove("selfLink");
    let old_gen = om["generation"].as_i64();
    let changed = spec_changed(old, &out);
    let meta = meta_mut(&mut out);
    match old_gen {
        Some(g) => {
            meta.insert("generation".into(), json!(if changed { g + 1 } else { g }));
        }
        None => {
            meta.remove("generation");
        }
    }
    out
}

/// True when anything other than `metadata`, `status`, `apiVersion` or `kind` differs.
pub fn spec_changed(old: &Value, new: &Value) -> bool {
    let skip = ["metadata", "status", "apiVersion", "kind"];
    let (Some(o), Some(n)) = (old.as_object(), new.as_object()) else {
        return old != new;
    };
    let keys = o.keys().chain(n.keys()).filter(|k| !skip.contains(&k.as_str()));
    for k in keys {
        if o.get(k) != n.get(k) {
            return true;
        }
    }
    false
}

/// `DeleteOptions`, merged from the body and the query string.
#[derive(Debug, Clone, Default)]
pub struct DeleteOptions {
    pub grace_period_seconds: Option<i64>,
    pub propagation_policy: Option<String>,
    pub precondition_uid: Option<String>,
    pub precondition_rv: Option<String>,
    pub dry_run: bool,
}

impl DeleteOptions {
    /// Reads a `DeleteOptions` body (may be empty), query values win when set.
    pub fn from_body(body: &[u8]) -> Result<DeleteOptions, ApiError> {
        let mut o = DeleteOptions::default();
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(o);
        }
        let v: Value = serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("error decoding DeleteOptions: {e}")))?;
        o.grace_period_seconds = v["gracePeriodSeconds"].as_i64();
        o.propagation_policy = v["propagationPolicy"].as_str().map(str::to_string);
        if v["orphanDependents"].as_bool() == Some(true) && o.propagation_policy.is_none() {
            o.propagation_policy = Some("Orphan".into());
        }
        o.precondition_uid = v["preconditions"]["uid"].as_str().map(str::to_string);
        o.precondition_rv = v["preconditions"]["resourceVersion"].as_str().map(str::to_string);
        o.dry_run = v["dryRun"]
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x == "All"));
        Ok(o)
    }
}

/// What a delete does to an object.
#[derive(Debug, Clone, PartialEq)]
pub enum DeletePlan {
    /// Remove it from the store now.
    Now,
    /// Keep it, written as this (deletionTimestamp set, finalizers added).
    Pending(Value),
    /// Already being deleted and nothing changes.
    Unchanged,
}

/// Checks preconditions and decides between immediate and graceful/finalized deletion.
pub fn plan_delete(
    def: &ResourceDef,
    obj: &Value,
    opts: &DeleteOptions,
    now: jiff::Timestamp,
) -> Result<DeletePlan, ApiError> {
    let meta = &obj["metadata"];
    let name = meta["name"].as_str().unwrap_or_default();
    if let Some(uid) = &opts.precondition_uid {
        let have = meta["uid"].as_str().unwrap_or_default();
        if uid != have {
            return Err(ApiError::conflict(
                def.plural,
                def.group,
                name,
                &format!("Precondition failed: UID in precondition: {uid}, UID in object meta: {have}"),
            ));
        }
    }
    if let Some(rv) = &opts.precondition_rv {
        let have = meta["resourceVersion"].as_str().unwrap_or_default();
        if rv != have {
            return Err(ApiError::conflict(
                def.plural,
                def.group,
                name,
                &format!(
                    "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {have}"
                ),
            ));
        }
    }
    let mut finalizers: Vec<String> = meta["finalizers"]
        .as_array()
        .map(|a| a.iter().filter_map(|f| f.as_str().map(str::to_string)).collect())
        .unwrap_or_default();
    let mut changed = false;
    let add = match opts.propagation_policy.as_deref() {
        Some("Foreground") => Some(FOREGROUND_FINALIZER),
        Some("Orphan") => Some(ORPHAN_FINALIZER),
        _ => None,
    };
    if let Some(f) = add
        && !finalizers.iter().any(|x| x == f)
    {
        finalizers.push(f.to_string());
        changed = true;
    }
    let grace = pod_grace(def, obj, opts);
    let already = meta.get("deletionTimestamp").is_some_and(|v| !v.is_null());
    let old_grace = meta["deletionGracePeriodSeconds"].as_i64();
    if finalizers.is_empty() && grace == 0 {
        return Ok(DeletePlan::Now);
    }
    let mut out = obj.clone();
    let m = meta_mut(&mut out);
    if !already || old_grace.is_some_and(|g| grace < g) {
        let at = now + jiff::SignedDuration::from_secs(grace);
        m.insert(
            "deletionTimestamp".into(),
            Value::String(at.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()),
        );
        m.insert("deletionGracePeriodSeconds".into(), json!(grace));
        changed = true;
    }
    m.insert("finalizers".into(), json!(finalizers));
    Ok(if changed {
        DeletePlan::Pending(out)
    } else {
        DeletePlan::Unchanged
    })
}

/// The grace period of a delete: only pods bound to a node and still running get one.
fn pod_grace(def: &ResourceDef, obj: &Value, opts: &DeleteOptions) -> i64 {
    if !def.group.is_empty() || def.plural != "pods" {
        return 0;
    }
    let bound = obj["spec"]["nodeName"].as_str().is_some_and(|n| !n.is_empty());
    let finished = matches!(
        obj["status"]["phase"].as_str(),
        Some("Succeeded") | Some("Failed")
    );
    if !bound || finished {
        return 0;
    }
    let grace = opts
        .grace_period_seconds
        .or_else(|| obj["spec"]["terminationGracePeriodSeconds"].as_i64())
        .unwrap_or(30)
        .max(0);
    let existing = obj["metadata"]["deletionGracePeriodSeconds"].as_i64();
    existing.map_or(grace, |e| grace.min(e))
}

/// True when an object being deleted has lost its last finalizer and must go.
pub fn ready_to_remove(obj: &Value) -> bool {
    let meta = &obj["metadata"];
    let deleting = meta.get("deletionTimestamp").is_some_and(|v| !v.is_null());
    let no_finalizers = meta["finalizers"].as_array().is_none_or(|a| a.is_empty());
    let grace_done = meta["deletionGracePeriodSeconds"].as_i64().unwrap_or(0) == 0;
    deleting && no_finalizers && grace_done
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;
    use skiff_api::registry::Registry;

    fn def(plural: &str, group: &str) -> ResourceDef {
        let reg = Registry::builtin();
        reg.find(group, "v1", plural).unwrap().clone()
    }

    #[test]
    fn create_sets_server_fields_and_pending_pod_status() {
        let pods = def("pods", "");
        let mut p = json!({"metadata": {"name": "p", "resourceVersion": "9"}, "spec": {"containers": [{"name": "c"}]}, "status": {"phase": "Running"}});
        prepare_create(&pods, &mut p, Some("d"), "2024-01-01T00:00:00Z");
        assert_eq!(p["metadata"]["generation"], 1);
        assert_eq!(p["metadata"]["namespace"], "d");
        assert!(p["metadata"].get("resourceVersion").is_none());
        assert_eq!(p["status"]["phase"], "Pending");
        assert_eq!(p["status"]["qosClass"], "BestEffort");
        assert_eq!(p["metadata"]["uid"].as_str().unwrap().len(), 36);
    }

    #[test]
    fn generate_name_appends_five_chars() {
        let cms = def("configmaps", "");
        let mut o = json!({"metadata": {"generateName": "web-"}});
        let n = resolve_name(&cms, &mut o).unwrap();
        assert!(n.starts_with("web-") && n.len() == 9);
        assert_eq!(
            resolve_name(&cms, &mut json!({"metadata": {}})).unwrap_err().code,
            422
        );
    }

    #[test]
    fn status_is_separated_and_generation_bumps_on_spec_only() {
        let deploy = def("deployments", "apps");
        let old = json!({"metadata": {"name": "d", "uid": "u", "generation": 1}, "spec": {"replicas": 1}, "status": {"replicas": 1}});
        let new = json!({"metadata": {"name": "d", "labels": {"a": "b"}}, "spec": {"replicas": 1}, "status": {"replicas": 5}});
        let out = prepare_update(&deploy, new, &old, Target::Main);
        assert_eq!(out["status"]["replicas"], 1);
        assert_eq!(out["metadata"]["generation"], 1);
        assert_eq!(out["metadata"]["uid"], "u");
        let new = json!({"metadata": {"name": "d"}, "spec": {"replicas": 3}, "status": {"replicas": 5}});
        let out = prepare_update(&deploy, new.clone(), &old, Target::Main);
        assert_eq!(out["metadata"]["generation"], 2);
        let out = prepare_update(&deploy, new, &old, Target::Status);
        assert_eq!(
            (
                out["spec"]["replicas"].as_i64(),
                out["status"]["replicas"].as_i64()
            ),
            (Some(1), Some(5))
        );
        assert_eq!(out["metadata"]["generation"], 1);
    }

    #[test]
    fn deletion_plans() {
        let pods = def("pods", "");
        let now = jiff::Timestamp::now();
        let opts = DeleteOptions::default();
        let unbound = json!({"metadata": {"name": "p"}, "spec": {}});
        assert_eq!(plan_delete(&pods, &unbound, &opts, now).unwrap(), DeletePlan::Now);
        let bound = json!({"metadata": {"name": "p"}, "spec": {"nodeName": "n", "terminationGracePeriodSeconds": 10}});
        let DeletePlan::Pending(p) = plan_delete(&pods, &bound, &opts, now).unwrap() else {
            panic!()
        };
        assert_eq!(p["metadata"]["deletionGracePeriodSeconds"], 10);
        let force = DeleteOptions {
            grace_period_seconds: Some(0),
            ..Default::default()
        };
        assert_eq!(plan_delete(&pods, &p, &force, now).unwrap(), DeletePlan::Now);
        let cms = def("configmaps", "");
        let fin = json!({"metadata": {"name": "c", "finalizers": ["x"]}});
        let DeletePlan::Pending(c) = plan_delete(&cms, &fin, &opts, now).unwrap() else {
            panic!()
        };
        assert!(c["metadata"]["deletionTimestamp"].is_string());
        assert_eq!(plan_delete(&cms, &c, &opts, now).unwrap(), DeletePlan::Unchanged);
        let fg = DeleteOptions {
            propagation_policy: Some("Foreground".into()),
            ..Default::default()
        };
        let DeletePlan::Pending(c) =
            plan_delete(&cms, &json!({"metadata": {"name": "c"}}), &fg, now).unwrap()
        else {
            panic!()
        };
        assert_eq!(c["metadata"]["finalizers"], json!(["foregroundDeletion"]));
        let pre = DeleteOptions {
            precondition_uid: Some("zzz".into()),
            ..Default::default()
        };
        assert_eq!(plan_delete(&cms, &fin, &pre, now).unwrap_err().code, 409);
    }
}
