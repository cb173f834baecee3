//! Server-side apply and managedFields scenarios with realistic objects, as
//! kubectl (client- and server-side apply, edit, scale) drives them.

use super::super::record_update_managed_fields;
use super::*;
use crate::registry::{Registry, ResourceDef};
use serde_json::json;

fn deployments() -> ResourceDef {
    Registry::builtin()
        .find("apps", "v1", "deployments")
        .cloned()
        .unwrap()
}

fn config(replicas: i64, image: &str) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "nginx", "image": image, "ports": [{"containerPort": 80}]}]}
            }
        }
    })
}

fn ssa(
    def: &ResourceDef,
    current: Option<&Value>,
    applied: &Value,
    manager: &str,
    force: bool,
) -> Result<Value, ApiError> {
    super::super::server_side_apply(&ApplyRequest {
        def,
        current,
        applied,
        manager,
        force,
        now: "2026-01-02T03:04:05Z",
        subresource: "",
    })
}

fn entry<'a>(obj: &'a Value, manager: &str) -> Option<&'a Value> {
    obj["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["manager"] == manager)
}

#[test]
fn apply_creates_and_records_an_apply_entry() {
    let def = deployments();
    let out = ssa(&def, None, &config(2, "nginx:1.25"), "kubectl", false).unwrap();
    assert_eq!(out["spec"]["replicas"], 2);
    let e = entry(&out, "kubectl").unwrap();
    assert_eq!(e["operation"], "Apply");
    assert_eq!(e["apiVersion"], "apps/v1");
    assert_eq!(e["fieldsType"], "FieldsV1");
    assert_eq!(e["time"], "2026-01-02T03:04:05Z");
    assert!(e.get("subresource").is_none());
    let f = &e["fieldsV1"];
    assert_eq!(f["f:metadata"], json!({"f:labels": {"f:app": {}}}));
    assert_eq!(f["f:spec"]["f:replicas"], json!({}));
    assert_eq!(f["f:spec"]["f:selector"], json!({}));
    let c = &f["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"nginx\"}"];
    assert_eq!(c["."], json!({}));
    assert!(c["f:ports"]["k:{\"containerPort\":80,\"protocol\":\"TCP\"}"].is_object());
}

#[test]
fn apply_after_client_side_apply_conflicts_like_upstream() {
    let def = deployments();
    // kubectl apply (client-side) created it.
    let mut live = config(2, "nginx:1.25");
    record_update_managed_fields(
        &def,
        None,
        &mut live,
        "kubectl-client-side-apply",
        "2026-01-01T00:00:00Z",
        "",
    );
    // Same values: no conflict, shared ownership.
    let shared = ssa(&def, Some(&live), &config(2, "nginx:1.25"), "kubectl", false).unwrap();
    let csa = &entry(&shared, "kubectl-client-side-apply").unwrap()["fieldsV1"];
    assert!(csa["f:spec"]["f:replicas"].is_object());
    assert!(entry(&shared, "kubectl").unwrap()["fieldsV1"]["f:spec"]["f:replicas"].is_object());
    // A different value for a field the other manager owns: 409.
    let err = ssa(&def, Some(&shared), &config(3, "nginx:1.25"), "kubectl", false).unwrap_err();
    assert_eq!((err.code, err.reason.as_str()), (409, "Conflict"));
    assert_eq!(
        err.message,
        "Apply failed with 1 conflict: conflict with \"kubectl-client-side-apply\" using apps/v1: .spec.replicas"
    );
    assert_eq!(err.causes.len(), 1);
    assert_eq!(err.causes[0].reason, "FieldManagerConflict");
    assert_eq!(err.causes[0].field, ".spec.replicas");
    assert_eq!(
        err.causes[0].message,
        "conflict with \"kubectl-client-side-apply\" using apps/v1"
    );
    // --force-conflicts takes ownership.
    let forced = ssa(&def, Some(&shared), &config(3, "nginx:1.25"), "kubectl", true).unwrap();
    assert_eq!(forced["spec"]["replicas"], 3);
    let csa = &entry(&forced, "kubectl-client-side-apply").unwrap()["fieldsV1"];
    assert!(csa["f:spec"].get("f:replicas").is_none());
    assert!(
        csa["f:spec"]["f:template"].is_object(),
        "other fields stay shared"
    );
}

#[test]
fn multiple_conflicts_are_listed_per_manager() {
    let def = deployments();
    let mut live = config(2, "nginx:1.25");
    record_update_managed_fields(
        &def,
        None,
        &mut live,
        "kubectl-client-side-apply",
        "2026-01-01T00:00:00Z",
        "",
    );
    let err = ssa(&def, Some(&live), &config(5, "nginx:1.27"), "kubectl", false).unwrap_err();
    assert_eq!(
        err.message,
        "Apply failed with 2 conflicts: conflicts with \"kubectl-client-side-apply\" using apps/v1:\n\
         - .spec.replicas\n- .spec.template.spec.containers[name=\"nginx\"].image"
    );
}

#[test]
fn fields_no_longer_applied_are_removed_unless_someone_else_owns_them() {
    let def = deployments();
    let mut cfg = config(2, "nginx:1.25");
    cfg["metadata"]["labels"]["tier"] = json!("fe");
    cfg["spec"]["template"]["spec"]["containers"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "sidecar", "image": "busybox"}));
    let live = ssa(&def, None, &cfg, "kubectl", false).unwrap();
    // A controller adds an annotation and the label `owner` by update.
    let mut updated = live.clone();
    updated["metadata"]["labels"]["owner"] = json!("ops");
    record_update_managed_fields(
        &def,
        Some(&live),
        &mut updated,
        "ops-tool",
        "2026-01-01T00:00:01Z",
        "",
    );
    // The next apply drops `tier` and the sidecar.
    let out = ssa(&def, Some(&updated), &config(2, "nginx:1.25"), "kubectl", false).unwrap();
    assert_eq!(out["metadata"]["labels"], json!({"app": "web", "owner": "ops"}));
    let containers = out["spec"]["template"]["spec"]["containers"].as_array().unwrap();
    assert_eq!(containers.len(), 1);
    assert_eq!(containers[0]["name"], "nginx");
}

#[test]
fn an_update_takes_ownership_from_the_applier() {
    let def = deployments();
    let live = ssa(&def, None, &config(2, "nginx:1.25"), "kubectl", false).unwrap();
    // kubectl edit changes the image.
    let mut edited = live.clone();
    edited["spec"]["template"]["spec"]["containers"][0]["image"] = json!("nginx:1.26");
    record_update_managed_fields(
        &def,
        Some(&live),
        &mut edited,
        "kubectl-edit",
        "2026-01-03T00:00:00Z",
        "",
    );
    let edit = &entry(&edited, "kubectl-edit").unwrap()["fieldsV1"];
    let c = &edit["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"nginx\"}"];
    assert_eq!(*c, json!({"f:image": {}}));
    let mine = &entry(&edited, "kubectl").unwrap()["fieldsV1"];
    let c = &mine["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"nginx\"}"];
    assert!(c.get("f:image").is_none());
    // Re-applying the old image now conflicts with the editor.
    let err = ssa(&def, Some(&edited), &config(2, "nginx:1.25"), "kubectl", false).unwrap_err();
    assert_eq!(
        err.message,
        "Apply failed with 1 conflict: conflict with \"kubectl-edit\" using apps/v1: \
         .spec.template.spec.containers[name=\"nginx\"].image"
    );
}

#[test]
fn updates_by_one_manager_share_one_entry_and_apply_entries_come_first() {
    let def = deployments();
    let mut v1 = config(1, "a");
    record_update_managed_fields(&def, None, &mut v1, "controller", "2026-01-01T00:00:00Z", "");
    let mut v2 = v1.clone();
    v2["spec"]["replicas"] = json!(4);
    record_update_managed_fields(&def, Some(&v1), &mut v2, "controller", "2026-01-01T00:00:09Z", "");
    let entries = v2["metadata"]["managedFields"].as_array().unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["time"], "2026-01-01T00:00:09Z");
    // A no-op update records nothing new.
    let mut v3 = v2.clone();
    record_update_managed_fields(&def, Some(&v2), &mut v3, "other", "2026-01-01T00:00:10Z", "");
    assert_eq!(v3["metadata"]["managedFields"], v2["metadata"]["managedFields"]);
    let applied = ssa(
        &def,
        Some(&v2),
        &json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "annotations": {"a": "b"}}}),
        "kubectl",
        false,
    )
    .unwrap();
    let ops: Vec<&str> = applied["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["operation"].as_str().unwrap())
        .collect();
    assert_eq!(ops, ["Apply", "Update"]);
}

#[test]
fn status_subresource_owns_only_status_and_objects_without_history_are_seeded() {
    let def = deployments();
    let live = config(2, "nginx"); // no managedFields: created before tracking
    let status = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"replicas": 9}, "status": {"replicas": 2, "conditions": [{"type": "Available", "status": "True"}]}});
    let out = super::super::server_side_apply(&ApplyRequest {
        def: &def,
        current: Some(&live),
        applied: &status,
        manager: "controller",
        force: false,
        now: "2026-01-02T00:00:00Z",
        subresource: "status",
    })
    .unwrap();
    assert_eq!(out["spec"]["replicas"], 2, "spec is not written through status");
    assert_eq!(out["status"]["replicas"], 2);
    let e = entry(&out, "controller").unwrap();
    assert_eq!(e["subresource"], "status");
    assert!(e["fieldsV1"]["f:status"]["f:conditions"]["k:{\"type\":\"Available\"}"].is_object());
    assert!(e["fieldsV1"].get("f:spec").is_none());
    assert!(entry(&out, "before-first-apply").is_some());
}

#[test]
fn apply_requires_a_field_manager() {
    let def = deployments();
    assert_eq!(ssa(&def, None, &config(1, "x"), "", false).unwrap_err().code, 400);
    let mut with_fields = config(1, "x");
    with_fields["metadata"]["managedFields"] = json!([]);
    let err = ssa(&def, None, &with_fields, "kubectl", false).unwrap_err();
    assert_eq!(err.message, "metadata.managedFields must be nil");
}

#[test]
fn recording_an_update_after_an_apply_keeps_the_apply_entry() {
    // The API server records every write; an apply has already recorded itself.
    let def = deployments();
    let mut created = ssa(&def, None, &config(2, "nginx:1.25"), "kubectl", false).unwrap();
    created["spec"]["strategy"] = json!({"type": "RollingUpdate"}); // defaulting after apply
    let before = created["metadata"]["managedFields"].clone();
    record_update_managed_fields(&def, None, &mut created, "kubectl", "2026-01-02T03:04:06Z", "");
    assert_eq!(created["metadata"]["managedFields"], before);
    let mut again = ssa(&def, Some(&created), &config(3, "nginx:1.25"), "kubectl", false).unwrap();
    let before = again["metadata"]["managedFields"].clone();
    record_update_managed_fields(
        &def,
        Some(&created),
        &mut again,
        "kubectl",
        "2026-01-02T03:04:05Z",
        "",
    );
    assert_eq!(
        again["metadata"]["managedFields"], before,
        "a re-apply within the same second"
    );
    // A later plain update by the same manager name is an Update.
    let mut put = again.clone();
    put["spec"]["paused"] = json!(true);
    record_update_managed_fields(
        &def,
        Some(&again),
        &mut put,
        "kubectl",
        "2026-01-02T03:04:08Z",
        "",
    );
    let ops: Vec<&str> = put["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["operation"].as_str().unwrap())
        .collect();
    assert_eq!(ops, ["Apply", "Update"]);
}

#[test]
fn kubectl_csa_upgrade_patch_of_managed_fields_is_honoured() {
    // kubectl apply --server-side first rewrites the client-side-apply entry
    // into its own Apply entry with a JSON patch on /metadata/managedFields.
    let def = deployments();
    let mut live = config(2, "nginx:1.25");
    record_update_managed_fields(
        &def,
        None,
        &mut live,
        "kubectl-client-side-apply",
        "2026-01-01T00:00:00Z",
        "",
    );
    let mut upgraded_entries = live["metadata"]["managedFields"].clone();
    upgraded_entries[0]["manager"] = json!("kubectl");
    upgraded_entries[0]["operation"] = json!("Apply");
    let ops = json!([{"op": "replace", "path": "/metadata/managedFields", "value": upgraded_entries}]);
    let mut patched = super::super::apply_json_patch(&live, ops.to_string().as_bytes()).unwrap();
    record_update_managed_fields(
        &def,
        Some(&live),
        &mut patched,
        "kubectl",
        "2026-01-01T00:00:01Z",
        "",
    );
    assert_eq!(patched["metadata"]["managedFields"][0]["manager"], "kubectl");
    // The following server-side apply changes replicas without a conflict.
    let out = ssa(&def, Some(&patched), &config(3, "nginx:1.25"), "kubectl", false).unwrap();
    assert_eq!(out["spec"]["replicas"], 3);
    assert_eq!(out["metadata"]["managedFields"].as_array().unwrap().len(), 1);
}

#[test]
fn more_than_ten_updaters_fold_into_ancient_changes() {
    let def = deployments();
    let mut obj = config(1, "a");
    obj["metadata"]["annotations"] = json!({});
    record_update_managed_fields(&def, None, &mut obj, "creator", "2026-01-01T00:00:00Z", "");
    for i in 0..12 {
        let mut next = obj.clone();
        next["metadata"]["annotations"][format!("a{i}")] = json!("x");
        let now = format!("2026-01-01T00:01:{i:02}Z");
        record_update_managed_fields(&def, Some(&obj), &mut next, &format!("tool-{i}"), &now, "");
        obj = next;
    }
    let entries = obj["metadata"]["managedFields"].as_array().unwrap();
    assert_eq!(entries.len(), 10);
    let ancient = entries
        .iter()
        .find(|e| e["manager"] == "ancient-changes")
        .unwrap();
    assert!(
        ancient["fieldsV1"]["f:spec"].is_object(),
        "the creator's fields are kept"
    );
    assert!(entries.iter().any(|e| e["manager"] == "tool-11"));
}

#[test]
fn an_applied_resource_version_stays_as_a_precondition() {
    let def = deployments();
    let mut live = ssa(&def, None, &config(1, "a"), "kubectl", false).unwrap();
    live["metadata"]["resourceVersion"] = json!("42");
    let out = ssa(&def, Some(&live), &config(1, "a"), "kubectl", false).unwrap();
    assert_eq!(out["metadata"]["resourceVersion"], "42");
    let mut pinned = config(1, "a");
    pinned["metadata"]["resourceVersion"] = json!("7");
    let out = ssa(&def, Some(&live), &pinned, "kubectl", false).unwrap();
    assert_eq!(
        out["metadata"]["resourceVersion"], "7",
        "the server compares it with the live one"
    );
    assert!(
        entry(&out, "kubectl").unwrap()["fieldsV1"]["f:metadata"]
            .get("f:resourceVersion")
            .is_none()
    );
}
