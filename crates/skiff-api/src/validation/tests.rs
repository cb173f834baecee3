//! Validation of typical objects (which must pass untouched) and of the
//! mistakes users make, with upstream's field paths and messages.

use super::{unknown_fields, validate_create, validate_update};
use crate::defaults::apply_defaults;
use crate::registry::{Registry, ResourceDef};
use crate::status::Cause;
use serde_json::{Value, json};

fn def(group: &str, plural: &str) -> ResourceDef {
    let version = if group == "autoscaling" { "v2" } else { "v1" };
    Registry::builtin()
        .find(group, version, plural)
        .expect("registered")
        .clone()
}

fn create(group: &str, plural: &str, mut obj: Value) -> Vec<Cause> {
    let d = def(group, plural);
    apply_defaults(&d, &mut obj);
    validate_create(&d, &obj)
}

fn fields(causes: &[Cause]) -> Vec<String> {
    causes.iter().map(Cause::display).collect()
}

fn pod(spec: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "namespace": "default"}, "spec": spec})
}

fn template(labels: Value) -> Value {
    json!({"metadata": {"labels": labels}, "spec": {"containers": [{"name": "web", "image": "nginx:1.25"}]}})
}

#[test]
fn typical_objects_are_valid() {
    let ns = |mut v: Value| {
        v["metadata"]["namespace"] = json!("default");
        v
    };
    let cases = vec![
        (
            "",
            "pods",
            pod(
                json!({"containers": [{"name": "web", "image": "nginx", "ports": [{"containerPort": 80, "name": "http"}],
            "env": [{"name": "A", "value": "1"}], "resources": {"requests": {"cpu": "100m"}, "limits": {"cpu": "1", "memory": "128Mi"}},
            "volumeMounts": [{"name": "data", "mountPath": "/data"}], "readinessProbe": {"httpGet": {"port": "http"}}}],
            "volumes": [{"name": "data", "emptyDir": {}}]}),
            ),
        ),
        (
            "",
            "services",
            ns(
                json!({"metadata": {"name": "web"}, "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}}),
            ),
        ),
        (
            "",
            "services",
            ns(json!({"metadata": {"name": "db"}, "spec": {"clusterIP": "None", "selector": {"app": "db"}}})),
        ),
        (
            "apps",
            "deployments",
            ns(json!({"metadata": {"name": "web", "labels": {"app": "web"}},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}}, "template": template(json!({"app": "web"}))}})),
        ),
        (
            "apps",
            "statefulsets",
            ns(json!({"metadata": {"name": "db"}, "spec": {"serviceName": "db",
            "selector": {"matchLabels": {"app": "db"}}, "template": template(json!({"app": "db"}))}})),
        ),
        (
            "apps",
            "daemonsets",
            ns(json!({"metadata": {"name": "agent"}, "spec": {
            "selector": {"matchExpressions": [{"key": "app", "operator": "In", "values": ["agent"]}]}, "template": template(json!({"app": "agent"}))}})),
        ),
        (
            "batch",
            "jobs",
            ns(
                json!({"metadata": {"name": "pi", "uid": "123"}, "spec": {"template": {"spec": {"restartPolicy": "Never",
            "containers": [{"name": "pi", "image": "perl"}]}}}}),
            ),
        ),
        (
            "batch",
            "cronjobs",
            ns(
                json!({"metadata": {"name": "tick"}, "spec": {"schedule": "*/5 * * * *", "jobTemplate": {"spec": {
            "template": {"spec": {"restartPolicy": "OnFailure", "containers": [{"name": "t", "image": "busybox"}]}}}}}}),
            ),
        ),
        (
            "",
            "configmaps",
            ns(json!({"metadata": {"name": "cfg"}, "data": {"app.properties": "a=1", "KEY_NAME": "x"}})),
        ),
        (
            "",
            "secrets",
            ns(
                json!({"metadata": {"name": "tls"}, "type": "kubernetes.io/tls", "data": {"tls.crt": "YQ==", "tls.key": "Yg=="}}),
            ),
        ),
        ("", "namespaces", json!({"metadata": {"name": "dev"}})),
        (
            "",
            "nodes",
            json!({"metadata": {"name": "node-1.local"}, "spec": {"podCIDRs": ["10.42.0.0/24"],
            "taints": [{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}]}}),
        ),
        (
            "rbac.authorization.k8s.io",
            "clusterroles",
            json!({"metadata": {"name": "system:controller:x"}}),
        ),
        (
            "",
            "replicationcontrollers",
            ns(json!({"metadata": {"name": "rc"}, "spec": {"template": template(json!({"app": "rc"}))}})),
        ),
    ];
    for (group, plural, obj) in cases {
        let causes = create(group, plural, obj);
        assert!(causes.is_empty(), "{plural}: {:?}", fields(&causes));
    }
}

#[test]
fn names_use_the_kinds_rule() {
    let causes = create(
        "",
        "configmaps",
        json!({"metadata": {"name": "Bad_Name", "namespace": "default"}}),
    );
    assert_eq!(causes.len(), 1);
    assert_eq!(causes[0].field, "metadata.name");
    assert!(
        causes[0]
            .message
            .starts_with("Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain must consist of")
    );
    let svc = create(
        "",
        "services",
        json!({"metadata": {"name": "1web", "namespace": "default"}, "spec": {"ports": [{"port": 80}]}}),
    );
    assert!(
        svc[0].message.contains("a DNS-1035 label must consist"),
        "{:?}",
        fields(&svc)
    );
    let ns = create("", "namespaces", json!({"metadata": {"name": "a.b"}}));
    assert!(ns[0].message.contains("RFC 1123 label"));
    let missing = create("", "configmaps", json!({"metadata": {"namespace": "default"}}));
    assert_eq!(
        fields(&missing),
        vec!["metadata.name: Required value: name or generateName is required"]
    );
    assert!(
        create(
            "",
            "configmaps",
            json!({"metadata": {"generateName": "cfg-", "namespace": "default"}})
        )
        .is_empty()
    );
    let cluster = create(
        "",
        "namespaces",
        json!({"metadata": {"name": "x", "namespace": "default"}}),
    );
    assert_eq!(
        fields(&cluster),
        vec!["metadata.namespace: Forbidden: not allowed on this type"]
    );
}

#[test]
fn labels_and_annotations() {
    let causes = create(
        "",
        "configmaps",
        json!({"metadata": {"name": "c", "namespace": "default", "labels": {"bad key!": "ok", "k": "-bad"},
               "annotations": {"big": "x".repeat(300 * 1024)}}}),
    );
    let f = fields(&causes);
    assert!(
        f.iter()
            .any(|m| m.starts_with("metadata.labels: Invalid value: \"bad key!\": name part must consist")),
        "{f:?}"
    );
    assert!(
        f.iter()
            .any(|m| m.starts_with("metadata.labels: Invalid value: \"-bad\": a valid label must be")),
        "{f:?}"
    );
    assert!(
        f.contains(&"metadata.annotations: Too long: may not be more than 262144 bytes".to_string()),
        "{f:?}"
    );
}

#[test]
fn pod_spec_mistakes() {
    let causes = create(
        "",
        "pods",
        pod(json!({"restartPolicy": "Sometimes", "containers": [
            {"name": "a", "image": "", "ports": [{"containerPort": 70000}]},
            {"name": "a", "image": "x", "resources": {"requests": {"cpu": "2"}, "limits": {"cpu": "1"}},
             "volumeMounts": [{"name": "missing", "mountPath": "/m"}],
             "livenessProbe": {"exec": {"command": ["true"]}, "successThreshold": 2},
             "lifecycle": {"preStop": {}}, "readinessProbe": {"exec": {}}}],
            "volumes": [{"name": "v", "configMap": {"name": "c"}, "secret": {"secretName": "s"}}]})),
    );
    let f = fields(&causes);
    for want in [
        "spec.containers[0].image: Required value",
        "spec.containers[0].ports[0].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive",
        "spec.containers[1].name: Duplicate value: \"a\"",
        "spec.containers[1].resources.requests: Invalid value: \"2\": must be less than or equal to cpu limit of 1",
        "spec.containers[1].volumeMounts[0].name: Not found: \"missing\"",
        "spec.containers[1].livenessProbe.successThreshold: Invalid value: 2: must be 1",
        "spec.containers[1].lifecycle.preStop: Required value: must specify a handler type",
        "spec.containers[1].readinessProbe.exec.command: Required value",
        "spec.volumes[0].configMap: Forbidden: may not specify more than 1 volume type",
        "spec.restartPolicy: Unsupported value: \"Sometimes\": supported values: \"Always\", \"OnFailure\", \"Never\"",
    ] {
        assert!(f.contains(&want.to_string()), "missing {want:?} in {f:#?}");
    }
    let none = create("", "pods", pod(json!({})));
    assert_eq!(fields(&none), vec!["spec.containers: Required value"]);
}

#[test]
fn pod_updates_only_change_images_and_friends() {
    let d = def("", "pods");
    let mut old = pod(json!({"containers": [{"name": "web", "image": "nginx:1"}]}));
    apply_defaults(&d, &mut old);
    let mut new = old.clone();
    new["spec"]["containers"][0]["image"] = json!("nginx:2");
    new["spec"]["activeDeadlineSeconds"] = json!(60);
    new["metadata"]["labels"] = json!({"a": "b"});
    assert!(
        validate_update(&d, &new, &old).is_empty(),
        "{:?}",
        fields(&validate_update(&d, &new, &old))
    );
    new["spec"]["containers"][0]["ports"] = json!([{"containerPort": 80, "protocol": "TCP"}]);
    let causes = validate_update(&d, &new, &old);
    assert_eq!(causes.len(), 1);
    assert_eq!(causes[0].field, "spec");
    assert!(
        causes[0].message.starts_with(
            "Forbidden: pod updates may not change fields other than `spec.containers[*].image`"
        )
    );
    assert!(causes[0].message.contains("spec.containers[0].ports"));
}

#[test]
fn service_rules() {
    let svc = |spec: Value| json!({"metadata": {"name": "web", "namespace": "default"}, "spec": spec});
    let f = fields(&create("", "services", svc(json!({"selector": {"app": "w"}}))));
    assert_eq!(f, vec!["spec.ports: Required value"]);
    let f = fields(&create(
        "",
        "services",
        svc(json!({"type": "Fancy", "ports": [{"port": 80}, {"port": 0, "name": "b"}]})),
    ));
    assert!(f.contains(&"spec.type: Unsupported value: \"Fancy\": supported values: \"ClusterIP\", \"ExternalName\", \"LoadBalancer\", \"NodePort\"".to_string()), "{f:?}");
    assert!(
        f.contains(&"spec.ports[0].name: Required value".to_string()),
        "{f:?}"
    );
    assert!(
        f.contains(
            &"spec.ports[1].port: Invalid value: 0: must be between 1 and 65535, inclusive".to_string()
        ),
        "{f:?}"
    );
    let d = def("", "services");
    let old = svc(json!({"clusterIP": "10.43.0.5", "ports": [{"port": 80}]}));
    let new = svc(json!({"clusterIP": "None", "ports": [{"port": 80}]}));
    let f = fields(&validate_update(&d, &new, &old));
    assert!(
        f.contains(&"spec.clusterIPs[0]: Invalid value: [\"None\"]: may not change once set".to_string()),
        "{f:?}"
    );
}

#[test]
fn workload_selectors() {
    let dep = |selector: Value, labels: Value| json!({"metadata": {"name": "web", "namespace": "default"}, "spec": {"selector": selector, "template": template(labels)}});
    let f = fields(&create(
        "apps",
        "deployments",
        dep(json!({"matchLabels": {"app": "web"}}), json!({"app": "other"})),
    ));
    assert_eq!(
        f,
        vec![
            "spec.template.metadata.labels: Invalid value: {\"app\":\"other\"}: `selector` does not match template `labels`"
        ]
    );
    let f = fields(&create(
        "apps",
        "deployments",
        dep(Value::Null, json!({"app": "web"})),
    ));
    assert_eq!(f, vec!["spec.selector: Required value"]);
    let mut bad = dep(json!({"matchLabels": {"app": "web"}}), json!({"app": "web"}));
    bad["spec"]["replicas"] = json!(-1);
    bad["spec"]["strategy"] =
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 0}});
    bad["spec"]["template"]["spec"]["restartPolicy"] = json!("Never");
    let f = fields(&create("apps", "deployments", bad));
    for want in [
        "spec.replicas: Invalid value: -1: must be greater than or equal to 0",
        "spec.strategy.rollingUpdate.maxUnavailable: Invalid value: 0: may not be 0 when `maxSurge` is 0",
        "spec.template.spec.restartPolicy: Unsupported value: \"Never\": supported values: \"Always\"",
    ] {
        assert!(f.contains(&want.to_string()), "missing {want:?} in {f:#?}");
    }
    let d = def("apps", "deployments");
    let old = dep(
        json!({"matchLabels": {"app": "web"}}),
        json!({"app": "web", "v": "1"}),
    );
    let new = dep(
        json!({"matchLabels": {"app": "web", "v": "1"}}),
        json!({"app": "web", "v": "1"}),
    );
    let f = fields(&validate_update(&d, &new, &old));
    assert!(
        f.iter()
            .any(|m| m.starts_with("spec.selector: Invalid value:") && m.ends_with("field is immutable")),
        "{f:?}"
    );
}

#[test]
fn jobs_and_cronjobs() {
    let job = json!({"metadata": {"name": "pi", "namespace": "default", "uid": "u"}, "spec": {"template": {"spec": {
        "containers": [{"name": "pi", "image": "perl"}]}}}});
    let f = fields(&create("batch", "jobs", job));
    assert_eq!(
        f,
        vec![
            "spec.template.spec.restartPolicy: Unsupported value: \"Always\": supported values: \"OnFailure\", \"Never\""
        ]
    );
    let cj = json!({"metadata": {"name": "tick", "namespace": "default"}, "spec": {"schedule": "every minute", "jobTemplate": {"spec": {
        "template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "t", "image": "busybox"}]}}}}}});
    let f = fields(&create("batch", "cronjobs", cj));
    assert_eq!(
        f,
        vec![
            "spec.schedule: Invalid value: \"every minute\": Expected exactly 5 fields, found 2: every minute"
        ]
    );
}

#[test]
fn config_maps_and_secrets() {
    let f = fields(&create(
        "",
        "configmaps",
        json!({"metadata": {"name": "c", "namespace": "default"}, "data": {"a b": "x"}}),
    ));
    assert_eq!(f.len(), 1);
    assert!(f[0].starts_with(
        "data[a b]: Invalid value: \"a b\": a valid config key must consist of alphanumeric characters"
    ));
    let f = fields(&create(
        "",
        "secrets",
        json!({"metadata": {"name": "s", "namespace": "default"}, "type": "kubernetes.io/tls", "data": {"tls.crt": "YQ=="}}),
    ));
    assert_eq!(f, vec!["data[tls.key]: Required value"]);
    let d = def("", "configmaps");
    let old =
        json!({"metadata": {"name": "c", "namespace": "default"}, "immutable": true, "data": {"a": "1"}});
    let mut new = old.clone();
    new["data"]["a"] = json!("2");
    assert_eq!(
        fields(&validate_update(&d, &new, &old)),
        vec!["data: Forbidden: field is immutable when `immutable` is set"]
    );
}

#[test]
fn unknown_fields_are_reported_by_path() {
    let d = def("", "pods");
    let obj = pod(
        json!({"containers": [{"name": "web", "image": "nginx", "imagePullPolicyy": "Always"}], "foo": 1, "nodeName": null}),
    );
    assert_eq!(
        unknown_fields(&d, &obj),
        vec![
            "spec.containers[0].imagePullPolicyy".to_string(),
            "spec.foo".to_string()
        ]
    );
    let mut clean = pod(json!({"containers": [{"name": "web", "image": "nginx"}]}));
    apply_defaults(&d, &mut clean);
    clean["metadata"]["managedFields"] =
        json!([{"manager": "kubectl", "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {}}}]);
    assert!(
        unknown_fields(&d, &clean).is_empty(),
        "{:?}",
        unknown_fields(&d, &clean)
    );
    let start = std::time::Instant::now();
    for _ in 0..1000 {
        std::hint::black_box(unknown_fields(&d, &clean));
    }
    let per_pod = start.elapsed() / 1000;
    eprintln!("unknown_fields: {per_pod:?} per pod");
    // A loose bound (debug build, shared machine): catches pathological slowness only.
    assert!(per_pod.as_millis() < 20, "took {per_pod:?} per pod");
    let start = std::time::Instant::now();
    for _ in 0..1000 {
        let mut p = pod(json!({"containers": [{"name": "web", "image": "nginx"}]}));
        apply_defaults(&d, &mut p);
        std::hint::black_box(validate_create(&d, &p));
    }
    eprintln!("defaults + validation: {:?} per pod", start.elapsed() / 1000);
}

#[test]
fn smaller_kinds() {
    let ns = json!("default");
    let ok = vec![
        (
            "",
            "persistentvolumeclaims",
            json!({"metadata": {"name": "data", "namespace": ns},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}),
        ),
        (
            "",
            "persistentvolumes",
            json!({"metadata": {"name": "pv1"},
            "spec": {"accessModes": ["ReadWriteOnce"], "capacity": {"storage": "5Gi"}, "hostPath": {"path": "/data"}}}),
        ),
        (
            "autoscaling",
            "horizontalpodautoscalers",
            json!({"metadata": {"name": "web", "namespace": ns},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}, "maxReplicas": 5}}),
        ),
        (
            "policy",
            "poddisruptionbudgets",
            json!({"metadata": {"name": "web", "namespace": ns},
            "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "web"}}}}),
        ),
        (
            "rbac.authorization.k8s.io",
            "rolebindings",
            json!({"metadata": {"name": "rb", "namespace": ns},
            "roleRef": {"kind": "ClusterRole", "name": "view"}, "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": "default"}]}),
        ),
        (
            "scheduling.k8s.io",
            "priorityclasses",
            json!({"metadata": {"name": "high"}, "value": 1000}),
        ),
        (
            "discovery.k8s.io",
            "endpointslices",
            json!({"metadata": {"name": "web-abc", "namespace": ns}, "addressType": "IPv4",
            "ports": [{"port": 80}], "endpoints": [{"addresses": ["10.42.0.5"]}]}),
        ),
    ];
    for (group, plural, obj) in ok {
        let causes = create(group, plural, obj);
        assert!(causes.is_empty(), "{plural}: {:?}", fields(&causes));
    }
    let f = fields(&create(
        "",
        "persistentvolumeclaims",
        json!({"metadata": {"name": "d", "namespace": ns}, "spec": {}}),
    ));
    assert_eq!(
        f,
        vec![
            "spec.accessModes: Required value: at least 1 access mode is required",
            "spec.resources[storage]: Required value"
        ]
    );
    let f = fields(&create(
        "autoscaling",
        "horizontalpodautoscalers",
        json!({"metadata": {"name": "h", "namespace": ns},
        "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "minReplicas": 3, "maxReplicas": 2}}),
    ));
    assert_eq!(
        f,
        vec!["spec.maxReplicas: Invalid value: 2: must be greater than or equal to `minReplicas`"]
    );
    let d = def("rbac.authorization.k8s.io", "rolebindings");
    let old = json!({"metadata": {"name": "rb", "namespace": "default"}, "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "a"}});
    let mut new = old.clone();
    new["roleRef"]["name"] = json!("b");
    let f = fields(&validate_update(&d, &new, &old));
    assert_eq!(f.len(), 1);
    assert!(
        f[0].starts_with("roleRef: Invalid value:") && f[0].ends_with("cannot change roleRef"),
        "{f:?}"
    );
}

#[test]
fn every_kind_has_a_schema_and_typical_objects_have_no_unknown_fields() {
    let reg = Registry::builtin();
    for d in reg.all() {
        assert!(
            super::schema::tree(d).is_some(),
            "{} has no compiled schema",
            d.plural
        );
    }
    let deploy = def("apps", "deployments");
    let mut obj = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}, "annotations": {"a": "b"},
                     "ownerReferences": [{"apiVersion": "v1", "kind": "X", "name": "x", "uid": "u"}]},
        "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": {"metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "web", "image": "nginx", "resources": {"limits": {"cpu": "1"}},
                "env": [{"name": "A", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
                "readinessProbe": {"httpGet": {"port": 80}}}],
                "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                    {"matchExpressions": [{"key": "k", "operator": "In", "values": ["v"]}]}]}}}}}},
        "status": {"replicas": 1, "conditions": [{"type": "Available", "status": "True"}]}});
    apply_defaults(&deploy, &mut obj);
    assert!(
        unknown_fields(&deploy, &obj).is_empty(),
        "{:?}",
        unknown_fields(&deploy, &obj)
    );
    obj["spec"]["template"]["spec"]["containers"][0]["resources"]["limitz"] = json!({});
    obj["spec"]["template"]["spec"]["affinity"]["nodeAffinity"]["bogus"] = json!(null);
    assert_eq!(
        unknown_fields(&deploy, &obj),
        vec![
            "spec.template.spec.containers[0].resources.limitz".to_string(),
            "spec.template.spec.affinity.nodeAffinity.bogus".to_string()
        ]
    );
    let cr = def("apps", "controllerrevisions");
    let rev = json!({"metadata": {"name": "r"}, "revision": 1, "data": {"anything": {"goes": true}}});
    assert!(unknown_fields(&cr, &rev).is_empty());
}

#[test]
fn events_legacy_and_strict() {
    let core = def("", "events");
    let old_style = json!({"metadata": {"name": "web.17a3", "namespace": "default"},
        "involvedObject": {"kind": "Pod", "name": "web", "namespace": "default"}, "reason": "Pulled", "message": "ok",
        "source": {"component": "kubelet"}, "count": 3, "firstTimestamp": "2026-01-01T00:00:00Z"});
    assert!(
        validate_create(&core, &old_style).is_empty(),
        "{:?}",
        fields(&validate_create(&core, &old_style))
    );
    let mut other_ns = old_style.clone();
    other_ns["involvedObject"]["namespace"] = json!("dev");
    assert_eq!(
        fields(&validate_create(&core, &other_ns)),
        vec!["involvedObject.namespace: Invalid value: \"dev\": does not match event.namespace"]
    );

    let ev1 = Registry::builtin()
        .find("events.k8s.io", "v1", "events")
        .expect("events.k8s.io")
        .clone();
    let recorded = json!({"apiVersion": "events.k8s.io/v1", "kind": "Event",
        "metadata": {"name": "node-1.18a0b1c2", "namespace": "default"}, "eventTime": "2026-01-01T00:00:00.000000Z",
        "action": "Scheduling", "reason": "Scheduled", "note": "assigned", "type": "Normal",
        "reportingController": "skiff-scheduler", "reportingInstance": "skiff-scheduler-1",
        "regarding": {"kind": "Node", "name": "node-1"}});
    assert!(
        validate_create(&ev1, &recorded).is_empty(),
        "{:?}",
        fields(&validate_create(&ev1, &recorded))
    );
    let mut bad = recorded.clone();
    bad["type"] = json!("Info");
    bad["deprecatedCount"] = json!(2);
    bad["action"] = json!("");
    let f = fields(&validate_create(&ev1, &bad));
    for want in [
        "action: Required value",
        "type: Invalid value: \"\": has invalid value: Info",
        "count: Invalid value: \"\": needs to be unset",
    ] {
        assert!(f.contains(&want.to_string()), "missing {want:?} in {f:?}");
    }
    let mut repeated = recorded.clone();
    repeated["series"] = json!({"count": 2, "lastObservedTime": "2026-01-01T00:01:00.000000Z"});
    assert!(validate_update(&ev1, &repeated, &recorded).is_empty());
    repeated["note"] = json!("changed");
    assert_eq!(
        fields(&validate_update(&ev1, &repeated, &recorded)),
        vec!["message: Invalid value: \"changed\": field is immutable"]
    );
}
