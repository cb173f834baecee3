use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{ConfigMap, Container, Pod, Secret, Service};

use super::{EnvSources, resolve, service_env};

fn pod(extra_spec: serde_json::Value) -> Pod {
    let mut spec = serde_json::json!({"nodeName": "n1", "containers": [{"name": "c", "image": "i"}]});
    if let (Some(s), Some(e)) = (spec.as_object_mut(), extra_spec.as_object()) {
        s.extend(e.clone());
    }
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": "web", "namespace": "prod", "uid": "u-1", "labels": {"app": "web"}},
        "spec": spec
    }))
    .unwrap()
}

fn container(v: serde_json::Value) -> Container {
    serde_json::from_value(v).unwrap()
}

fn sources() -> EnvSources {
    let cm: ConfigMap = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "cfg"}, "data": {"MODE": "fast", "level": "3", "bad=key": "x"}
    }))
    .unwrap();
    let secret = Secret {
        data: Some(BTreeMap::from([(
            "password".to_string(),
            ByteString(b"hunter2".to_vec()),
        )])),
        ..Default::default()
    };
    let mut s = EnvSources::default();
    s.config_maps.insert("cfg".into(), Some(cm));
    s.config_maps.insert("gone".into(), None);
    s.secrets.insert("db".into(), Some(secret));
    s.downward.pod_ips = vec!["10.1.0.9".into()];
    s.downward.host_ips = vec!["127.0.0.1".into()];
    s
}

fn env_of(c: &Container, s: &EnvSources) -> Vec<(String, String)> {
    resolve(&pod(serde_json::json!({})), c, s).unwrap().into_vec()
}

#[test]
fn literals_expand_earlier_vars_and_escape_dollars() {
    let c = container(serde_json::json!({"name": "c", "env": [
        {"name": "A", "value": "one"},
        {"name": "B", "value": "$(A)-two"},
        {"name": "C", "value": "$$(A) $(LATER) $(MISSING)"},
        {"name": "LATER", "value": "late"},
        {"name": "E"}
    ]}));
    let env = env_of(&c, &EnvSources::default());
    assert_eq!(
        env,
        [
            ("A", "one"),
            ("B", "one-two"),
            ("C", "$(A) $(LATER) $(MISSING)"),
            ("LATER", "late"),
            ("E", "")
        ]
        .map(|(k, v)| (k.to_string(), v.to_string()))
    );
}

#[test]
fn value_from_config_maps_secrets_and_fields() {
    let c = container(serde_json::json!({"name": "c", "env": [
        {"name": "MODE", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "MODE"}}},
        {"name": "PASS", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}},
        {"name": "OPT", "valueFrom": {"configMapKeyRef": {"name": "gone", "key": "x", "optional": true}}},
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
        {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
        {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}}
    ]}));
    let env: BTreeMap<_, _> = env_of(&c, &sources()).into_iter().collect();
    assert_eq!(env["MODE"], "fast");
    assert_eq!(env["PASS"], "hunter2");
    assert!(!env.contains_key("OPT"), "optional missing ConfigMap is skipped");
    assert_eq!(env["POD_NAME"], "web");
    assert_eq!(env["POD_IP"], "10.1.0.9");
    assert_eq!(env["NODE"], "n1");
    assert_eq!(env["APP"], "web");
}

#[test]
fn missing_keys_give_upstream_messages() {
    let c = container(serde_json::json!({"name": "c", "env": [
        {"name": "X", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "NOPE"}}}
    ]}));
    let err = resolve(&pod(serde_json::json!({})), &c, &sources()).unwrap_err();
    assert_eq!(err.to_string(), "couldn't find key NOPE in ConfigMap prod/cfg");
    assert_eq!(err.reason(), "CreateContainerConfigError");
    let c = container(serde_json::json!({"name": "c", "env": [
        {"name": "X", "valueFrom": {"secretKeyRef": {"name": "db", "key": "user"}}}
    ]}));
    let err = resolve(&pod(serde_json::json!({})), &c, &sources()).unwrap_err();
    assert_eq!(err.to_string(), "couldn't find key user in Secret prod/db");
    let c = container(serde_json::json!({"name": "c", "env": [
        {"name": "X", "valueFrom": {"configMapKeyRef": {"name": "gone", "key": "k"}}}
    ]}));
    let err = resolve(&pod(serde_json::json!({})), &c, &sources()).unwrap_err();
    assert_eq!(err.to_string(), "configmap \"gone\" not found");
    let c = container(serde_json::json!({"name": "c", "env": [
        {"name": "X", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "NOPE", "optional": true}}}
    ]}));
    assert!(
        resolve(&pod(serde_json::json!({})), &c, &sources())
            .unwrap()
            .get("X")
            .is_none()
    );
}

#[test]
fn env_from_with_prefix_is_overridden_by_env_and_skips_invalid_names() {
    let c = container(serde_json::json!({"name": "c",
        "envFrom": [{"configMapRef": {"name": "cfg"}, "prefix": "CFG_"}, {"secretRef": {"name": "db"}}],
        "env": [{"name": "CFG_MODE", "value": "slow"}]
    }));
    let env: BTreeMap<_, _> = env_of(&c, &sources()).into_iter().collect();
    assert_eq!(env["CFG_MODE"], "slow");
    assert_eq!(env["CFG_level"], "3");
    assert_eq!(env["password"], "hunter2");
    assert!(!env.contains_key("CFG_bad=key"));
    let missing =
        container(serde_json::json!({"name": "c", "envFrom": [{"configMapRef": {"name": "gone"}}]}));
    assert!(resolve(&pod(serde_json::json!({})), &missing, &sources()).is_err());
}

#[test]
fn resource_field_refs_read_limits() {
    let c = container(serde_json::json!({"name": "c",
        "resources": {"limits": {"cpu": "250m", "memory": "64Mi"}},
        "env": [
            {"name": "CPU", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu", "divisor": "1m"}}},
            {"name": "MEM", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"}}}
        ]
    }));
    let env: BTreeMap<_, _> = env_of(&c, &sources()).into_iter().collect();
    assert_eq!((env["CPU"].as_str(), env["MEM"].as_str()), ("250", "64"));
}

fn service(name: &str, ip: &str, ports: serde_json::Value) -> Service {
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": name}, "spec": {"clusterIP": ip, "ports": ports}
    }))
    .unwrap()
}

#[test]
fn service_links_follow_docker_link_names() {
    let svcs = [
        service(
            "redis-primary",
            "10.0.0.11",
            serde_json::json!([
                {"name": "redis", "port": 6379, "protocol": "TCP"}, {"port": 53, "protocol": "UDP"}
            ]),
        ),
        service("headless", "None", serde_json::json!([{"port": 80}])),
    ];
    let env = service_env(&svcs);
    assert_eq!(env["REDIS_PRIMARY_SERVICE_HOST"], "10.0.0.11");
    assert_eq!(env["REDIS_PRIMARY_SERVICE_PORT"], "6379");
    assert_eq!(env["REDIS_PRIMARY_SERVICE_PORT_REDIS"], "6379");
    assert_eq!(env["REDIS_PRIMARY_PORT"], "tcp://10.0.0.11:6379");
    assert_eq!(env["REDIS_PRIMARY_PORT_6379_TCP"], "tcp://10.0.0.11:6379");
    assert_eq!(env["REDIS_PRIMARY_PORT_6379_TCP_PROTO"], "tcp");
    assert_eq!(env["REDIS_PRIMARY_PORT_6379_TCP_PORT"], "6379");
    assert_eq!(env["REDIS_PRIMARY_PORT_6379_TCP_ADDR"], "10.0.0.11");
    assert_eq!(env["REDIS_PRIMARY_PORT_53_UDP"], "udp://10.0.0.11:53");
    assert!(!env.keys().any(|k| k.starts_with("HEADLESS")));
}

#[test]
fn service_vars_are_added_after_env_and_usable_in_expansion() {
    let mut s = sources();
    s.services = vec![service(
        "kubernetes",
        "10.0.0.1",
        serde_json::json!([{"name": "https", "port": 443}]),
    )];
    let c = container(serde_json::json!({"name": "c", "env": [
        {"name": "URL", "value": "https://$(KUBERNETES_SERVICE_HOST):$(KUBERNETES_SERVICE_PORT)"},
        {"name": "KUBERNETES_SERVICE_PORT", "value": "8443"}
    ]}));
    let env = resolve(&pod(serde_json::json!({})), &c, &s).unwrap();
    assert_eq!(env.get("URL"), Some("https://10.0.0.1:443"));
    assert_eq!(
        env.get("KUBERNETES_SERVICE_PORT"),
        Some("8443"),
        "explicit env wins"
    );
    assert_eq!(env.get("KUBERNETES_SERVICE_HOST"), Some("10.0.0.1"));
}
