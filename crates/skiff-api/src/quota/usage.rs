//! What one object uses of a namespace's quota, as upstream's quota
//! evaluators count it: pods (count, cpu/memory/ephemeral-storage requests
//! and limits, extended resources), services (count, node ports, load
//! balancers), persistent volume claims (count, storage, per storage class)
//! and `count/<resource>[.<group>]` for every kind. Also which objects still
//! count (non-terminal pods) and the quota scopes a pod matches.
//!
//! Must not: read or write anything; callers bring the objects.

use serde_json::Value;

use super::amount::{Amount, ResourceList, add_into, parse_list};

/// The `count/...` resource name of a kind: `count/pods`, `count/deployments.apps`.
pub fn count_name(plural: &str, group: &str) -> String {
    if group.is_empty() {
        format!("count/{plural}")
    } else {
        format!("count/{plural}.{group}")
    }
}

/// Core kinds that also have a legacy object-count name (`pods`, `services`, ...).
const LEGACY_COUNTED: [&str; 7] = [
    "pods",
    "services",
    "configmaps",
    "secrets",
    "persistentvolumeclaims",
    "replicationcontrollers",
    "resourcequotas",
];

/// The group and plural whose objects a quota resource name counts, if any.
pub fn counted_kind(resource: &str) -> Option<(String, String)> {
    if let Some(rest) = resource.strip_prefix("count/") {
        return Some(match rest.split_once('.') {
            Some((plural, group)) => (group.to_string(), plural.to_string()),
            None => (String::new(), rest.to_string()),
        });
    }
    let core = |p: &str| Some((String::new(), p.to_string()));
    if LEGACY_COUNTED.contains(&resource) {
        return core(resource);
    }
    if resource.starts_with("services.") {
        return core("services");
    }
    if resource == "requests.storage" || resource.contains(".storageclass.storage.k8s.io/") {
        return core("persistentvolumeclaims");
    }
    if is_pod_compute(resource) {
        return core("pods");
    }
    None
}

/// Whether a resource name is one the pod evaluator computes.
fn is_pod_compute(resource: &str) -> bool {
    matches!(resource, "cpu" | "memory" | "ephemeral-storage")
        || resource.starts_with("requests.")
        || resource.starts_with("limits.")
}

/// The usage of any object of `group`/`plural`.
pub fn object_usage(plural: &str, group: &str, obj: &Value) -> ResourceList {
    let mut out = ResourceList::new();
    out.insert(count_name(plural, group), Amount::count(1));
    if !group.is_empty() {
        return out;
    }
    if LEGACY_COUNTED.contains(&plural) {
        out.insert(plural.to_string(), Amount::count(1));
    }
    match plural {
        "pods" => out.extend(pod_compute_usage(obj)),
        "services" => service_usage(obj, &mut out),
        "persistentvolumeclaims" => pvc_usage(obj, &mut out),
        _ => {}
    }
    out
}

fn service_usage(svc: &Value, out: &mut ResourceList) {
    let ports = svc["spec"]["ports"].as_array().map_or(0, Vec::len);
    let ports = i64::try_from(ports).unwrap_or(i64::MAX);
    match svc["spec"]["type"].as_str() {
        Some("NodePort") => {
            out.insert("services.nodeports".into(), Amount::count(ports));
        }
        Some("LoadBalancer") => {
            let with_node_ports = if svc["spec"]["allocateLoadBalancerNodePorts"] == Value::Bool(false) {
                let n = svc["spec"]["ports"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|p| p["nodePort"].as_i64().is_some_and(|n| n > 0))
                    .count();
                i64::try_from(n).unwrap_or(i64::MAX)
            } else {
                ports
            };
            out.insert("services.nodeports".into(), Amount::count(with_node_ports));
            out.insert("services.loadbalancers".into(), Amount::count(1));
        }
        _ => {}
    }
}

fn pvc_usage(pvc: &Value, out: &mut ResourceList) {
    let storage = pvc["spec"]["resources"]["requests"]["storage"]
        .as_str()
        .and_then(Amount::parse);
    let class = pvc["spec"]["storageClassName"].as_str().filter(|s| !s.is_empty());
    if let Some(class) = class {
        out.insert(
            format!("{class}.storageclass.storage.k8s.io/persistentvolumeclaims"),
            Amount::count(1),
        );
    }
    if let Some(s) = storage {
        out.insert("requests.storage".into(), s);
        if let Some(class) = class {
            out.insert(format!("{class}.storageclass.storage.k8s.io/requests.storage"), s);
        }
    }
}

/// Upstream's `podComputeUsageHelper`: quota names for given requests and limits.
fn compute_usage(requests: &ResourceList, limits: &ResourceList) -> ResourceList {
    let mut out = ResourceList::new();
    out.insert("pods".into(), Amount::count(1));
    out.insert("count/pods".into(), Amount::count(1));
    for r in ["cpu", "memory", "ephemeral-storage"] {
        if let Some(q) = requests.get(r) {
            out.insert(r.to_string(), *q);
            out.insert(format!("requests.{r}"), *q);
        }
        if let Some(q) = limits.get(r) {
            out.insert(format!("limits.{r}"), *q);
        }
    }
    for (name, q) in requests {
        if name.starts_with("hugepages-") || is_extended(name) {
            out.insert(format!("requests.{name}"), *q);
        }
    }
    for (name, q) in limits {
        if name.starts_with("hugepages-") {
            out.insert(format!("limits.{name}"), *q);
        }
    }
    out
}

fn is_extended(name: &str) -> bool {
    name.contains('/') && !name.contains("kubernetes.io/")
}

/// A pod's effective requests or limits (`field`): containers summed
/// (restartable init containers with them), the largest init step, overhead.
fn pod_resources(spec: &Value, field: &str) -> ResourceList {
    let of = |c: &Value| parse_list(c.pointer(&format!("/resources/{field}")));
    let mut total = ResourceList::new();
    for c in spec["containers"].as_array().into_iter().flatten() {
        add_into(&mut total, &of(c));
    }
    let mut sidecars = ResourceList::new();
    let mut init_max = ResourceList::new();
    for c in spec["initContainers"].as_array().into_iter().flatten() {
        let mut step = of(c);
        if c["restartPolicy"] == "Always" {
            add_into(&mut total, &step);
            add_into(&mut sidecars, &step);
            step = sidecars.clone();
        } else {
            add_into(&mut step, &sidecars);
        }
        for (k, v) in step {
            let m = init_max.get(&k).copied().unwrap_or(Amount::ZERO).max(v);
            init_max.insert(k, m);
        }
    }
    for (k, v) in init_max {
        let m = total.get(&k).copied().unwrap_or(Amount::ZERO).max(v);
        total.insert(k, m);
    }
    add_into(&mut total, &parse_list(spec.get("overhead")));
    total
}

/// The compute usage of a pod (`pods`, `cpu`, `requests.memory`, ...).
pub fn pod_compute_usage(pod: &Value) -> ResourceList {
    let spec = &pod["spec"];
    compute_usage(&pod_resources(spec, "requests"), &pod_resources(spec, "limits"))
}

/// Quota names that make every container state its own value.
const VALIDATED: [&str; 6] = [
    "cpu",
    "memory",
    "requests.cpu",
    "requests.memory",
    "limits.cpu",
    "limits.memory",
];

/// Upstream's pod constraint: when a quota limits cpu or memory, every
/// container must request (or limit) it. `None` when satisfied, else the
/// `must specify ...` message.
pub fn pod_constraints(hard: &ResourceList, pod: &Value) -> Option<String> {
    let required: Vec<&str> = VALIDATED.into_iter().filter(|r| hard.contains_key(*r)).collect();
    if required.is_empty() {
        return None;
    }
    let mut missing: std::collections::BTreeMap<&str, Vec<String>> = Default::default();
    for key in ["containers", "initContainers"] {
        for c in pod["spec"][key].as_array().into_iter().flatten() {
            let usage = compute_usage(
                &parse_list(c.pointer("/resources/requests")),
                &parse_list(c.pointer("/resources/limits")),
            );
            for r in &required {
                if !usage.contains_key(*r) {
                    let name = c["name"].as_str().unwrap_or_default().to_string();
                    missing.entry(r).or_default().push(name);
                }
            }
        }
    }
    if missing.is_empty() {
        return None;
    }
    let parts: Vec<String> = missing
        .into_iter()
        .map(|(r, mut names)| {
            names.sort();
            names.dedup();
            format!("{r} for: {}", names.join(","))
        })
        .collect();
    Some(format!("must specify {}", parts.join("; ")))
}

/// Whether a pod still uses quota at `now`: not Succeeded/Failed and not
/// past the end of its deletion grace period (upstream's `QuotaV1Pod`).
pub fn pod_counts(pod: &Value, now: jiff::Timestamp) -> bool {
    if matches!(pod["status"]["phase"].as_str(), Some("Succeeded" | "Failed")) {
        return false;
    }
    let deleted = pod["metadata"]["deletionTimestamp"]
        .as_str()
        .and_then(|t| t.parse::<jiff::Timestamp>().ok());
    let grace = pod["metadata"]["deletionGracePeriodSeconds"].as_i64();
    match (deleted, grace) {
        (Some(at), Some(g)) => now.as_second() <= at.as_second() + g,
        _ => true,
    }
}

/// Whether an object of a kind counts at `now` (only pods ever stop counting).
pub fn object_counts(plural: &str, group: &str, obj: &Value, now: jiff::Timestamp) -> bool {
    !(group.is_empty() && plural == "pods") || pod_counts(obj, now)
}

fn best_effort(pod: &Value) -> bool {
    let usage = pod_compute_usage(pod);
    !["requests.cpu", "requests.memory", "limits.cpu", "limits.memory"]
        .iter()
        .any(|r| usage.contains_key(*r))
}

/// Whether a pod matches one quota scope (`Terminating`, `NotTerminating`,
/// `BestEffort`, `NotBestEffort`); unknown scopes match nothing.
pub fn pod_matches_scope(scope: &str, pod: &Value) -> bool {
    let terminating = pod["spec"]["activeDeadlineSeconds"]
        .as_i64()
        .is_some_and(|s| s >= 0);
    match scope {
        "Terminating" => terminating,
        "NotTerminating" => !terminating,
        "BestEffort" => best_effort(pod),
        "NotBestEffort" => !best_effort(pod),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(containers: Value) -> Value {
        json!({"metadata": {"name": "p"}, "spec": {"containers": containers}})
    }

    #[test]
    fn pod_usage_sums_containers_and_takes_the_init_max() {
        let p = json!({"spec": {
            "containers": [
                {"name": "a", "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"cpu": "200m"}}},
                {"name": "b", "resources": {"requests": {"cpu": "300m", "memory": "64Mi"}}}
            ],
            "initContainers": [{"name": "i", "resources": {"requests": {"cpu": "1"}}}]
        }});
        let u = pod_compute_usage(&p);
        assert_eq!(u["pods"].to_string(), "1");
        assert_eq!(u["requests.cpu"].to_string(), "1");
        assert_eq!(u["cpu"].to_string(), "1");
        assert_eq!(u["requests.memory"].to_string(), "128Mi");
        assert_eq!(u["limits.cpu"].to_string(), "200m");
        assert!(!u.contains_key("limits.memory"));
    }

    #[test]
    fn constraints_name_the_containers_without_a_value() {
        let hard: ResourceList = [("limits.cpu".to_string(), Amount::count(2))].into();
        let p = pod(json!([{"name": "c"}, {"name": "d", "resources": {"limits": {"cpu": "1"}}}]));
        assert_eq!(
            pod_constraints(&hard, &p).as_deref(),
            Some("must specify limits.cpu for: c")
        );
        let only_pods: ResourceList = [("pods".to_string(), Amount::count(2))].into();
        assert_eq!(pod_constraints(&only_pods, &p), None);
    }

    #[test]
    fn terminal_and_expired_pods_stop_counting() {
        let now = jiff::Timestamp::now();
        let mut p = pod(json!([]));
        assert!(pod_counts(&p, now));
        p["status"]["phase"] = json!("Succeeded");
        assert!(!pod_counts(&p, now));
        let mut q = pod(json!([]));
        q["metadata"]["deletionTimestamp"] = json!("2020-01-01T00:00:00Z");
        q["metadata"]["deletionGracePeriodSeconds"] = json!(30);
        assert!(!pod_counts(&q, now));
    }

    #[test]
    fn services_count_node_ports_and_load_balancers() {
        let svc = json!({"spec": {"type": "LoadBalancer", "ports": [{"port": 80}, {"port": 443}]}});
        let u = object_usage("services", "", &svc);
        assert_eq!(u["services"].to_string(), "1");
        assert_eq!(u["count/services"].to_string(), "1");
        assert_eq!(u["services.nodeports"].to_string(), "2");
        assert_eq!(u["services.loadbalancers"].to_string(), "1");
        let d = object_usage("deployments", "apps", &json!({}));
        assert_eq!(d.keys().collect::<Vec<_>>(), ["count/deployments.apps"]);
    }

    #[test]
    fn counted_kinds_of_quota_names() {
        let k = |r: &str| counted_kind(r).map(|(g, p)| format!("{g}/{p}"));
        assert_eq!(k("requests.cpu").as_deref(), Some("/pods"));
        assert_eq!(k("count/deployments.apps").as_deref(), Some("apps/deployments"));
        assert_eq!(k("services.nodeports").as_deref(), Some("/services"));
        assert_eq!(k("requests.storage").as_deref(), Some("/persistentvolumeclaims"));
        assert_eq!(k("bogus"), None);
    }

    #[test]
    fn scopes_split_best_effort_and_terminating_pods() {
        let be = pod(json!([{"name": "c"}]));
        let burst = pod(json!([{"name": "c", "resources": {"requests": {"cpu": "1"}}}]));
        assert!(pod_matches_scope("BestEffort", &be));
        assert!(pod_matches_scope("NotBestEffort", &burst));
        let mut t = be.clone();
        t["spec"]["activeDeadlineSeconds"] = json!(30);
        assert!(pod_matches_scope("Terminating", &t));
        assert!(pod_matches_scope("NotTerminating", &be));
    }
}
