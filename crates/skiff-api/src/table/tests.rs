//! Tables compared with what upstream's `kubectl get` prints for the same objects.

use super::{age, build_table, human_duration};
use crate::registry::Registry;
use serde_json::{Value, json};

fn now() -> jiff::Timestamp {
    "2026-01-01T12:00:00Z".parse().expect("time")
}

/// The timestamp `secs` seconds before [`now`].
fn ago(secs: i64) -> String {
    jiff::Timestamp::from_second(now().as_second() - secs)
        .expect("time")
        .to_string()
}

fn table(group: &str, version: &str, plural: &str, objects: &[Value]) -> Value {
    let reg = Registry::builtin();
    let def = reg.find(group, version, plural).expect("registered");
    let refs: Vec<&Value> = objects.iter().collect();
    build_table(def, &refs, "None", now(), json!({"resourceVersion": "7"}))
}

/// Column names, upper-cased as kubectl prints them, and which are wide.
fn headers(t: &Value) -> (Vec<String>, Vec<String>) {
    let cols = t["columnDefinitions"].as_array().expect("columns");
    let name = |c: &Value| c["name"].as_str().expect("name").to_uppercase();
    (
        cols.iter().filter(|c| c["priority"] == 0).map(name).collect(),
        cols.iter().filter(|c| c["priority"] == 1).map(name).collect(),
    )
}

fn cells(t: &Value, row: usize) -> Vec<String> {
    t["rows"][row]["cells"]
        .as_array()
        .expect("cells")
        .iter()
        .map(|c| match c {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .collect()
}

#[test]
fn human_durations_match_upstream() {
    for (secs, want) in [
        (0, "0s"),
        (45, "45s"),
        (119, "119s"),
        (200, "3m20s"),
        (300, "5m"),
        (600, "10m"),
        (179 * 60, "179m"),
        (5 * 3600, "5h"),
        (5 * 3600 + 600, "5h10m"),
        (20 * 3600, "20h"),
        (51 * 3600, "2d3h"),
        (30 * 86400, "30d"),
        (800 * 86400, "2y70d"),
        (3000 * 86400, "8y"),
        (-5, "<invalid>"),
    ] {
        assert_eq!(human_duration(secs), want, "{secs}s");
    }
    assert_eq!(age(&ago(200), now()), "3m20s");
    assert_eq!(age("", now()), "<unknown>");
}

fn pod(name: &str, status: Value) -> Value {
    json!({"metadata": {"name": name, "creationTimestamp": ago(600)},
           "spec": {"nodeName": "node-1", "containers": [{"name": "c", "image": "busybox"}]}, "status": status})
}

#[test]
fn pod_columns_and_status_logic() {
    let running = pod(
        "web",
        json!({"phase": "Running", "podIP": "10.42.0.5", "podIPs": [{"ip": "10.42.0.5"}],
        "containerStatuses": [{"name": "c", "ready": true, "restartCount": 0, "state": {"running": {}}}]}),
    );
    let crash = pod(
        "crash",
        json!({"phase": "Running", "containerStatuses": [{"name": "c", "ready": false, "restartCount": 5,
        "state": {"waiting": {"reason": "CrashLoopBackOff"}},
        "lastState": {"terminated": {"exitCode": 1, "reason": "Error", "finishedAt": ago(300)}}}]}),
    );
    let pending = pod("new", json!({"phase": "Pending"}));
    let creating = pod(
        "creating",
        json!({"phase": "Pending", "containerStatuses": [{"name": "c", "ready": false,
        "restartCount": 0, "state": {"waiting": {"reason": "ContainerCreating"}}}]}),
    );
    let mut init = pod(
        "init",
        json!({"phase": "Pending", "initContainerStatuses": [{"name": "i", "ready": false,
        "restartCount": 0, "state": {"waiting": {"reason": "PodInitializing"}}}]}),
    );
    init["spec"]["initContainers"] = json!([{"name": "i", "image": "busybox"}]);
    let done = pod(
        "done",
        json!({"phase": "Succeeded", "containerStatuses": [{"name": "c", "ready": false, "restartCount": 0,
        "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]}),
    );
    let mut leaving = running.clone();
    leaving["metadata"]["name"] = json!("leaving");
    leaving["metadata"]["deletionTimestamp"] = json!(ago(1));
    let t = table(
        "",
        "v1",
        "pods",
        &[running, crash, pending, creating, init, done, leaving],
    );
    assert_eq!(
        headers(&t),
        (
            vec!["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
                .into_iter()
                .map(String::from)
                .collect(),
            vec!["IP", "NODE", "NOMINATED NODE", "READINESS GATES"]
                .into_iter()
                .map(String::from)
                .collect()
        )
    );
    assert_eq!(
        cells(&t, 0),
        [
            "web",
            "1/1",
            "Running",
            "0",
            "10m",
            "10.42.0.5",
            "node-1",
            "<none>",
            "<none>"
        ]
    );
    assert_eq!(
        cells(&t, 1)[..5],
        ["crash", "0/1", "CrashLoopBackOff", "5 (5m ago)", "10m"]
    );
    assert_eq!(cells(&t, 2)[..4], ["new", "0/1", "Pending", "0"]);
    assert_eq!(cells(&t, 3)[2], "ContainerCreating");
    assert_eq!(cells(&t, 4)[2], "Init:0/1");
    assert_eq!(cells(&t, 5)[..3], ["done", "0/1", "Completed"]);
    assert_eq!(t["rows"][5]["conditions"][0]["type"], "Completed");
    assert_eq!(cells(&t, 6)[2], "Terminating");
    assert_eq!(t["metadata"]["resourceVersion"], "7");
    assert!(t["rows"][0].get("object").is_none());
}

#[test]
fn include_object_forms() {
    let reg = Registry::builtin();
    let def = reg.find("", "v1", "configmaps").expect("cm");
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "creationTimestamp": ago(5)}, "data": {"a": "1"}});
    let meta = build_table(def, &[&cm], "Metadata", now(), json!({}));
    assert_eq!(
        meta["rows"][0]["object"],
        json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": cm["metadata"]})
    );
    let full = build_table(def, &[&cm], "Object", now(), json!({}));
    assert_eq!(full["rows"][0]["object"], cm);
    assert_eq!(cells(&full, 0), ["c", "1", "5s"]);
}

#[test]
fn services_deployments_nodes() {
    let svc = json!({"metadata": {"name": "web", "creationTimestamp": ago(7200)}, "spec": {"type": "ClusterIP",
        "clusterIP": "10.43.0.10", "selector": {"app": "web"}, "ports": [{"port": 80, "protocol": "TCP"}, {"port": 443, "protocol": "TCP"}]}});
    let np = json!({"metadata": {"name": "np"}, "spec": {"type": "NodePort", "clusterIP": "10.43.0.11",
        "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP"}]}});
    let lb = json!({"metadata": {"name": "lb"}, "spec": {"type": "LoadBalancer", "clusterIP": "10.43.0.12", "ports": [{"port": 80, "nodePort": 31000, "protocol": "TCP"}]}});
    let t = table("", "v1", "services", &[svc, np, lb]);
    assert_eq!(
        headers(&t).0,
        ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"]
    );
    assert_eq!(
        cells(&t, 0),
        [
            "web",
            "ClusterIP",
            "10.43.0.10",
            "<none>",
            "80/TCP,443/TCP",
            "120m",
            "app=web"
        ]
    );
    assert_eq!(cells(&t, 1)[4], "80:30080/TCP");
    assert_eq!(cells(&t, 1)[5], "<unknown>");
    assert_eq!(cells(&t, 2)[3], "<pending>");

    let deploy = json!({"metadata": {"name": "web", "creationTimestamp": ago(90)}, "spec": {"replicas": 3,
        "selector": {"matchLabels": {"app": "web"}}, "template": {"spec": {"containers": [{"name": "nginx", "image": "nginx:1.25"}]}}},
        "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2}});
    let t = table("apps", "v1", "deployments", &[deploy]);
    assert_eq!(headers(&t).0, ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]);
    assert_eq!(
        cells(&t, 0),
        ["web", "2/3", "3", "2", "90s", "nginx", "nginx:1.25", "app=web"]
    );

    let node = json!({"metadata": {"name": "node-1", "creationTimestamp": ago(86400 * 3),
        "labels": {"node-role.kubernetes.io/control-plane": "", "node-role.kubernetes.io/master": ""}},
        "spec": {"unschedulable": true},
        "status": {"conditions": [{"type": "Ready", "status": "True"}], "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
                   "nodeInfo": {"kubeletVersion": "v1.33.0-skiff", "osImage": "Debian GNU/Linux 12 (bookworm)",
                                "kernelVersion": "6.1.0", "containerRuntimeVersion": "containerd://1.6.20"}}});
    let t = table("", "v1", "nodes", &[node]);
    assert_eq!(
        headers(&t).1,
        [
            "INTERNAL-IP",
            "EXTERNAL-IP",
            "OS-IMAGE",
            "KERNEL-VERSION",
            "CONTAINER-RUNTIME"
        ]
    );
    assert_eq!(
        cells(&t, 0),
        [
            "node-1",
            "Ready,SchedulingDisabled",
            "control-plane,master",
            "3d",
            "v1.33.0-skiff",
            "127.0.0.1",
            "<none>",
            "Debian GNU/Linux 12 (bookworm)",
            "6.1.0",
            "containerd://1.6.20"
        ]
    );
}

#[test]
fn jobs_cronjobs_events_and_the_rest() {
    let job = json!({"metadata": {"name": "pi", "creationTimestamp": ago(100)}, "spec": {"completions": 1, "parallelism": 1},
        "status": {"succeeded": 1, "startTime": ago(100), "completionTime": ago(60),
                   "conditions": [{"type": "Complete", "status": "True"}]}});
    let t = table("batch", "v1", "jobs", &[job]);
    assert_eq!(
        headers(&t).0,
        ["NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE"]
    );
    assert_eq!(cells(&t, 0)[..5], ["pi", "Complete", "1/1", "40s", "100s"]);
    let cj = json!({"metadata": {"name": "tick", "creationTimestamp": ago(100)}, "spec": {"schedule": "*/1 * * * *", "suspend": false},
        "status": {"lastScheduleTime": ago(30)}});
    let t = table("batch", "v1", "cronjobs", &[cj]);
    assert_eq!(
        cells(&t, 0)[..7],
        ["tick", "*/1 * * * *", "<none>", "False", "0", "30s", "100s"]
    );

    let ev = json!({"metadata": {"name": "web.1"}, "involvedObject": {"kind": "Pod", "name": "web"}, "reason": "Scheduled",
        "message": "Successfully assigned default/web to node-1", "type": "Normal", "source": {"component": "default-scheduler"},
        "firstTimestamp": ago(65), "lastTimestamp": ago(65), "count": 1});
    let t = table("", "v1", "events", &[ev]);
    assert_eq!(
        headers(&t).0,
        ["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
    );
    assert_eq!(
        cells(&t, 0)[..7],
        [
            "65s",
            "Normal",
            "Scheduled",
            "pod/web",
            "",
            "default-scheduler",
            "Successfully assigned default/web to node-1"
        ]
    );
    let ev2 = json!({"metadata": {"name": "web.2"}, "regarding": {"kind": "Pod", "name": "web"}, "reason": "Pulled",
        "note": "pulled", "type": "Normal", "eventTime": ago(10), "reportingController": "skiff-agent", "reportingInstance": "node-1"});
    let t = table("events.k8s.io", "v1", "events", &[ev2]);
    assert_eq!(
        cells(&t, 0)[..7],
        [
            "10s",
            "Normal",
            "Pulled",
            "pod/web",
            "",
            "skiff-agent, node-1",
            "pulled"
        ]
    );

    let ns =
        json!({"metadata": {"name": "default", "creationTimestamp": ago(45)}, "status": {"phase": "Active"}});
    assert_eq!(
        cells(&table("", "v1", "namespaces", &[ns]), 0),
        ["default", "Active", "45s"]
    );
    let secret = json!({"metadata": {"name": "s"}, "type": "Opaque", "data": {"a": "YQ==", "b": "Yg=="}});
    assert_eq!(
        cells(&table("", "v1", "secrets", &[secret]), 0)[..3],
        ["s", "Opaque", "2"]
    );
    let ep = json!({"metadata": {"name": "web"}, "subsets": [{"addresses": [{"ip": "10.42.0.5"}, {"ip": "10.42.0.6"}], "ports": [{"port": 80}]}]});
    assert_eq!(
        cells(&table("", "v1", "endpoints", &[ep]), 0)[1],
        "10.42.0.5:80,10.42.0.6:80"
    );
    let hpa = json!({"metadata": {"name": "web"}, "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "minReplicas": 1,
        "maxReplicas": 5, "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}]},
        "status": {"currentReplicas": 2}});
    assert_eq!(
        cells(&table("autoscaling", "v2", "horizontalpodautoscalers", &[hpa]), 0)[..6],
        ["web", "Deployment/web", "cpu: <unknown>/80%", "1", "5", "2"]
    );
    let rb = json!({"metadata": {"name": "rb"}, "roleRef": {"kind": "ClusterRole", "name": "view"},
        "subjects": [{"kind": "ServiceAccount", "name": "sa", "namespace": "dev"}]});
    assert_eq!(
        cells(
            &table("rbac.authorization.k8s.io", "v1", "rolebindings", &[rb]),
            0
        )[1..],
        ["ClusterRole/view", "<unknown>", "", "", "dev/sa"]
    );
}

#[test]
fn every_registered_kind_has_a_printer_with_matching_cells() {
    let reg = Registry::builtin();
    let obj = json!({"metadata": {"name": "x", "creationTimestamp": ago(5)}});
    for def in reg.all() {
        let t = build_table(def, &[&obj], "None", now(), json!({}));
        let cols = t["columnDefinitions"].as_array().map(Vec::len);
        let row = t["rows"][0]["cells"].as_array().map(Vec::len);
        assert_eq!(cols, row, "{} column/cell count", def.plural);
        if def.kind != "Event" {
            assert_eq!(t["columnDefinitions"][0]["name"], "Name", "{}", def.plural);
        }
    }
}

#[test]
fn metric_quota_and_slice_formats() {
    let hpa = json!({"metadata": {"name": "h"}, "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "maxReplicas": 3,
        "metrics": [
            {"type": "Resource", "resource": {"name": "memory", "target": {"type": "AverageValue", "averageValue": "100Mi"}}},
            {"type": "Pods", "pods": {"metric": {"name": "qps"}, "target": {"type": "AverageValue", "averageValue": "10"}}},
            {"type": "External", "external": {"metric": {"name": "q"}, "target": {"type": "Value", "value": "5"}}}]},
        "status": {"currentMetrics": [{"type": "Resource", "resource": {"name": "memory", "current": {"averageValue": "50Mi"}}}]}});
    let t = table("autoscaling", "v2", "horizontalpodautoscalers", &[hpa]);
    assert_eq!(cells(&t, 0)[2], "memory: 50Mi/100Mi, <unknown>/10 + 1 more...");
    assert_eq!(cells(&t, 0)[3], "<unset>");

    let quota = json!({"metadata": {"name": "q"}, "status": {"hard": {"limits.cpu": "2", "requests.cpu": "1", "pods": "10"},
        "used": {"requests.cpu": "500m", "pods": "3"}}});
    let t = table("", "v1", "resourcequotas", &[quota]);
    assert_eq!(headers(&t).0, ["NAME", "REQUEST", "LIMIT", "AGE"]);
    assert_eq!(
        cells(&t, 0)[..3],
        ["q", "pods: 3/10, requests.cpu: 500m/1", "limits.cpu: 0/2"]
    );

    let slice = json!({"metadata": {"name": "web-x"}, "addressType": "IPv4", "ports": [{"port": 80}, {"name": "dns"}, {}],
        "endpoints": [{"addresses": ["10.0.0.1"]}, {"addresses": ["10.0.0.2"]}, {"addresses": ["10.0.0.3"]}, {"addresses": ["10.0.0.4"]}]});
    let t = table("discovery.k8s.io", "v1", "endpointslices", &[slice]);
    assert_eq!(
        cells(&t, 0)[..4],
        [
            "web-x",
            "IPv4",
            "80,dns,*",
            "10.0.0.1,10.0.0.2,10.0.0.3 + 1 more..."
        ]
    );

    let pvc = json!({"metadata": {"name": "data"}, "spec": {"storageClassName": "local"}, "status": {"phase": "Pending"}});
    let t = table("", "v1", "persistentvolumeclaims", &[pvc]);
    assert_eq!(
        cells(&t, 0),
        [
            "data",
            "Pending",
            "",
            "",
            "",
            "local",
            "<unset>",
            "<unknown>",
            "<unset>"
        ]
    );

    let headless = json!({"metadata": {"name": "db"}, "spec": {"type": "ClusterIP", "clusterIP": "None", "clusterIPs": ["None"]}});
    assert_eq!(
        cells(&table("", "v1", "services", &[headless]), 0)[2..5],
        ["None", "<none>", "<none>"]
    );
}
