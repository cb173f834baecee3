//! Defaults compared with what upstream's apiserver stores for the same input
//! (as `kubectl get -o yaml` shows it).

use super::apply_defaults;
use crate::registry::Registry;
use serde_json::{Value, json};

fn defaulted(group: &str, version: &str, plural: &str, mut obj: Value) -> Value {
    let reg = Registry::builtin();
    let def = reg.find(group, version, plural).expect("registered");
    apply_defaults(def, &mut obj);
    obj
}

#[test]
fn bare_pod_gets_upstream_defaults() {
    let pod = defaulted(
        "",
        "v1",
        "pods",
        json!({"metadata": {"name": "web", "namespace": "default"},
               "spec": {"containers": [{"name": "web", "image": "nginx", "ports": [{"containerPort": 80}],
                         "livenessProbe": {"httpGet": {"port": 80}}}]}}),
    );
    let spec = &pod["spec"];
    assert_eq!(spec["restartPolicy"], "Always");
    assert_eq!(spec["dnsPolicy"], "ClusterFirst");
    assert_eq!(spec["schedulerName"], "default-scheduler");
    assert_eq!(spec["terminationGracePeriodSeconds"], 30);
    assert_eq!(spec["securityContext"], json!({}));
    assert_eq!(spec["enableServiceLinks"], true);
    assert_eq!(spec["serviceAccountName"], "default");
    assert_eq!(spec["serviceAccount"], "default");
    assert_eq!(spec["priority"], 0);
    assert_eq!(spec["preemptionPolicy"], "PreemptLowerPriority");
    assert!(
        spec.get("tolerations").is_none(),
        "tolerations are admission's, not defaulting's"
    );
    let c = &spec["containers"][0];
    assert_eq!(c["imagePullPolicy"], "Always");
    assert_eq!(c["terminationMessagePath"], "/dev/termination-log");
    assert_eq!(c["terminationMessagePolicy"], "File");
    assert_eq!(c["resources"], json!({}));
    assert_eq!(c["ports"][0]["protocol"], "TCP");
    let probe = &c["livenessProbe"];
    assert_eq!(
        (
            &probe["timeoutSeconds"],
            &probe["periodSeconds"],
            &probe["successThreshold"],
            &probe["failureThreshold"]
        ),
        (&json!(1), &json!(10), &json!(1), &json!(3))
    );
    assert_eq!(probe["httpGet"]["scheme"], "HTTP");
    assert_eq!(probe["httpGet"]["path"], "/");
    assert_eq!(pod["status"]["phase"], "Pending");
    assert_eq!(pod["status"]["qosClass"], "BestEffort");
}

#[test]
fn image_pull_policy_follows_the_tag() {
    for (image, policy) in [
        ("nginx", "Always"),
        ("nginx:latest", "Always"),
        ("nginx:1.25", "IfNotPresent"),
        ("localhost:5000/app", "Always"),
        ("localhost:5000/app:v1", "IfNotPresent"),
        ("busybox@sha256:abcd", "IfNotPresent"),
    ] {
        let pod = defaulted(
            "",
            "v1",
            "pods",
            json!({"spec": {"containers": [{"name": "c", "image": image}]}}),
        );
        assert_eq!(pod["spec"]["containers"][0]["imagePullPolicy"], policy, "{image}");
    }
}

#[test]
fn explicit_values_are_kept_and_limits_become_requests() {
    let pod = defaulted(
        "",
        "v1",
        "pods",
        json!({"spec": {"restartPolicy": "Never", "tolerations": [{"operator": "Exists"}],
               "containers": [{"name": "c", "image": "x:1", "imagePullPolicy": "Never",
                               "resources": {"limits": {"cpu": "1", "memory": "64Mi"}}}]}}),
    );
    assert_eq!(pod["spec"]["restartPolicy"], "Never");
    assert_eq!(pod["spec"]["tolerations"], json!([{"operator": "Exists"}]));
    assert_eq!(pod["spec"]["containers"][0]["imagePullPolicy"], "Never");
    assert_eq!(
        pod["spec"]["containers"][0]["resources"]["requests"],
        json!({"cpu": "1", "memory": "64Mi"})
    );
    assert_eq!(pod["status"]["qosClass"], "Guaranteed");
}

#[test]
fn volumes_get_modes_and_empty_dir() {
    let pod = defaulted(
        "",
        "v1",
        "pods",
        json!({"spec": {"containers": [], "volumes": [
            {"name": "a"}, {"name": "b", "configMap": {"name": "cm"}}, {"name": "c", "secret": {"secretName": "s"}}]}}),
    );
    let v = &pod["spec"]["volumes"];
    assert_eq!(v[0]["emptyDir"], json!({}));
    assert_eq!(v[1]["configMap"]["defaultMode"], 420);
    assert_eq!(v[2]["secret"]["defaultMode"], 420);
}

#[test]
fn deployment_defaults() {
    let d = defaulted(
        "apps",
        "v1",
        "deployments",
        json!({"spec": {"selector": {"matchLabels": {"app": "w"}},
               "template": {"metadata": {"labels": {"app": "w"}}, "spec": {"containers": [{"name": "w", "image": "w:1"}]}}}}),
    );
    assert_eq!(d["spec"]["replicas"], 1);
    assert_eq!(
        d["spec"]["strategy"],
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}})
    );
    assert_eq!(d["spec"]["revisionHistoryLimit"], 10);
    assert_eq!(d["spec"]["progressDeadlineSeconds"], 600);
    let pod_spec = &d["spec"]["template"]["spec"];
    assert_eq!(pod_spec["restartPolicy"], "Always");
    assert_eq!(pod_spec["containers"][0]["imagePullPolicy"], "IfNotPresent");
    // Admission defaults belong to pods, not templates.
    assert!(pod_spec.get("serviceAccountName").is_none());
    assert!(pod_spec.get("tolerations").is_none());
    assert!(pod_spec.get("enableServiceLinks").is_none());
}

#[test]
fn recreate_strategy_gets_no_rolling_update() {
    let d = defaulted(
        "apps",
        "v1",
        "deployments",
        json!({"spec": {"strategy": {"type": "Recreate"}}}),
    );
    assert_eq!(d["spec"]["strategy"], json!({"type": "Recreate"}));
}

#[test]
fn statefulset_and_daemonset_defaults() {
    let s = defaulted(
        "apps",
        "v1",
        "statefulsets",
        json!({"spec": {"volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {}}]}}),
    );
    assert_eq!(s["spec"]["podManagementPolicy"], "OrderedReady");
    assert_eq!(
        s["spec"]["updateStrategy"],
        json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}})
    );
    assert_eq!(
        s["spec"]["persistentVolumeClaimRetentionPolicy"],
        json!({"whenDeleted": "Retain", "whenScaled": "Retain"})
    );
    assert_eq!(
        s["spec"]["volumeClaimTemplates"][0]["spec"]["volumeMode"],
        "Filesystem"
    );
    let d = defaulted("apps", "v1", "daemonsets", json!({"spec": {}}));
    assert_eq!(
        d["spec"]["updateStrategy"],
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}})
    );
    assert_eq!(d["spec"]["revisionHistoryLimit"], 10);
}

#[test]
fn job_defaults_and_generated_selector() {
    let j = defaulted(
        "batch",
        "v1",
        "jobs",
        json!({"metadata": {"name": "pi", "uid": "u-1"},
               "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "pi", "image": "perl"}]}}}}),
    );
    let spec = &j["spec"];
    assert_eq!(
        (&spec["completions"], &spec["parallelism"], &spec["backoffLimit"]),
        (&json!(1), &json!(1), &json!(6))
    );
    assert_eq!(spec["completionMode"], "NonIndexed");
    assert_eq!(spec["suspend"], false);
    assert_eq!(spec["podReplacementPolicy"], "TerminatingOrFailed");
    assert_eq!(
        spec["selector"],
        json!({"matchLabels": {"batch.kubernetes.io/controller-uid": "u-1"}})
    );
    assert_eq!(spec["template"]["metadata"]["labels"]["job-name"], "pi");
    assert_eq!(j["metadata"]["labels"]["batch.kubernetes.io/job-name"], "pi");
    assert_eq!(spec["template"]["spec"]["restartPolicy"], "Never");
}

#[test]
fn cronjob_defaults() {
    let c = defaulted(
        "batch",
        "v1",
        "cronjobs",
        json!({"spec": {"schedule": "* * * * *", "jobTemplate": {"spec": {
        "template": {"spec": {"restartPolicy": "OnFailure", "containers": [{"name": "c", "image": "c"}]}}}}}}),
    );
    assert_eq!(c["spec"]["concurrencyPolicy"], "Allow");
    assert_eq!(c["spec"]["suspend"], false);
    assert_eq!(c["spec"]["successfulJobsHistoryLimit"], 3);
    assert_eq!(c["spec"]["failedJobsHistoryLimit"], 1);
    assert_eq!(
        c["spec"]["jobTemplate"]["spec"]["template"]["spec"]["dnsPolicy"],
        "ClusterFirst"
    );
}

#[test]
fn service_defaults() {
    let s = defaulted(
        "",
        "v1",
        "services",
        json!({"spec": {"clusterIP": "10.43.0.10", "ports": [{"port": 80}, {"port": 443, "targetPort": "https"}]}}),
    );
    let spec = &s["spec"];
    assert_eq!(spec["type"], "ClusterIP");
    assert_eq!(spec["sessionAffinity"], "None");
    assert_eq!(
        spec["ports"][0],
        json!({"port": 80, "protocol": "TCP", "targetPort": 80})
    );
    assert_eq!(spec["ports"][1]["targetPort"], "https");
    assert_eq!(spec["clusterIPs"], json!(["10.43.0.10"]));
    assert_eq!(spec["ipFamilies"], json!(["IPv4"]));
    assert_eq!(spec["ipFamilyPolicy"], "SingleStack");
    assert_eq!(spec["internalTrafficPolicy"], "Cluster");
    assert!(spec.get("externalTrafficPolicy").is_none());
    let np = defaulted(
        "",
        "v1",
        "services",
        json!({"spec": {"type": "NodePort", "ports": [{"port": 80}]}}),
    );
    assert_eq!(np["spec"]["externalTrafficPolicy"], "Cluster");
}

#[test]
fn core_kind_defaults() {
    let ns = defaulted("", "v1", "namespaces", json!({"metadata": {"name": "dev"}}));
    assert_eq!(ns["spec"]["finalizers"], json!(["kubernetes"]));
    assert_eq!(ns["status"]["phase"], "Active");
    assert_eq!(ns["metadata"]["labels"]["kubernetes.io/metadata.name"], "dev");
    let secret = defaulted("", "v1", "secrets", json!({"metadata": {"name": "s"}}));
    assert_eq!(secret["type"], "Opaque");
    let pvc = defaulted("", "v1", "persistentvolumeclaims", json!({"spec": {}}));
    assert_eq!(pvc["spec"]["volumeMode"], "Filesystem");
    assert_eq!(pvc["status"]["phase"], "Pending");
    let pv = defaulted("", "v1", "persistentvolumes", json!({"spec": {}}));
    assert_eq!(pv["spec"]["persistentVolumeReclaimPolicy"], "Retain");
    let rb = defaulted(
        "rbac.authorization.k8s.io",
        "v1",
        "rolebindings",
        json!({"roleRef": {"kind": "Role", "name": "r"}, "subjects": [{"kind": "User", "name": "u"}, {"kind": "ServiceAccount", "name": "sa"}]}),
    );
    assert_eq!(rb["roleRef"]["apiGroup"], "rbac.authorization.k8s.io");
    assert_eq!(rb["subjects"][0]["apiGroup"], "rbac.authorization.k8s.io");
    assert_eq!(rb["subjects"][1]["apiGroup"], "");
}

#[test]
fn wrong_shapes_do_not_panic() {
    for plural in ["pods", "services", "namespaces"] {
        defaulted(
            "",
            "v1",
            plural,
            json!({"spec": "nope", "metadata": 3, "status": []}),
        );
        defaulted("", "v1", plural, json!("not an object"));
    }
    defaulted(
        "apps",
        "v1",
        "deployments",
        json!({"spec": {"template": {"spec": {"containers": "x"}}}}),
    );
}

#[test]
fn host_network_pods_get_host_ports_and_affinity_config_is_dropped() {
    let pod = defaulted(
        "",
        "v1",
        "pods",
        json!({"spec": {"hostNetwork": true, "containers": [{"name": "c", "image": "c", "ports": [{"containerPort": 8080}]}]}}),
    );
    assert_eq!(pod["spec"]["containers"][0]["ports"][0]["hostPort"], 8080);
    let svc = defaulted(
        "",
        "v1",
        "services",
        json!({"spec": {"sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 5}}, "ports": [{"port": 1}]}}),
    );
    assert!(svc["spec"].get("sessionAffinityConfig").is_none());
    let sticky = defaulted(
        "",
        "v1",
        "services",
        json!({"spec": {"sessionAffinity": "ClientIP", "ports": [{"port": 1}]}}),
    );
    assert_eq!(
        sticky["spec"]["sessionAffinityConfig"]["clientIP"]["timeoutSeconds"],
        10800
    );
}

#[test]
fn hpa_defaults_per_version() {
    let v2 = defaulted(
        "autoscaling",
        "v2",
        "horizontalpodautoscalers",
        json!({"spec": {"maxReplicas": 3, "behavior": {"scaleDown": {"policies": [{"type": "Pods", "value": 1, "periodSeconds": 60}]}}}}),
    );
    assert_eq!(v2["spec"]["minReplicas"], 1);
    assert_eq!(
        v2["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"],
        80
    );
    assert_eq!(
        v2["spec"]["behavior"]["scaleUp"]["policies"]
            .as_array()
            .map(Vec::len),
        Some(2)
    );
    assert_eq!(v2["spec"]["behavior"]["scaleDown"]["policies"][0]["type"], "Pods");
    assert!(
        v2["spec"]["behavior"]["scaleDown"]
            .get("stabilizationWindowSeconds")
            .is_none()
    );
    let v1 = defaulted(
        "autoscaling",
        "v1",
        "horizontalpodautoscalers",
        json!({"spec": {"maxReplicas": 3}}),
    );
    assert_eq!(v1["spec"], json!({"maxReplicas": 3, "minReplicas": 1}));
}

#[test]
fn default_tolerations_use_the_configured_seconds_and_respect_the_pods_own() {
    let mut spec = json!({"containers": [{"name": "c", "image": "busybox"}]});
    super::add_default_tolerations(&mut spec, 2);
    let tolerations = spec["tolerations"].as_array().cloned().unwrap_or_default();
    assert_eq!(tolerations.len(), 2);
    assert_eq!(tolerations[0]["key"], "node.kubernetes.io/not-ready");
    assert_eq!(tolerations[1]["key"], "node.kubernetes.io/unreachable");
    assert!(
        tolerations
            .iter()
            .all(|t| t["tolerationSeconds"] == 2 && t["effect"] == "NoExecute")
    );

    let mut own = json!({"tolerations": [
        {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 60}
    ]});
    super::add_default_tolerations(&mut own, 2);
    let keys: Vec<&str> = own["tolerations"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t["key"].as_str())
        .collect();
    assert_eq!(
        keys,
        ["node.kubernetes.io/unreachable", "node.kubernetes.io/not-ready"]
    );
    assert_eq!(own["tolerations"][0]["tolerationSeconds"], 60);
}

#[test]
fn secret_string_data_is_folded_into_data() {
    let secret = defaulted(
        "",
        "v1",
        "secrets",
        json!({"metadata": {"name": "s"}, "data": {"a": "b2xk", "keep": "eA=="},
               "stringData": {"a": "new", "b": "hello"}}),
    );
    assert_eq!(secret["type"], "Opaque");
    assert!(secret.get("stringData").is_none());
    assert_eq!(secret["data"]["a"], "bmV3");
    assert_eq!(secret["data"]["b"], "aGVsbG8=");
    assert_eq!(secret["data"]["keep"], "eA==");
}
