//! The CRI sandbox of a pod: metadata, hostname, log directory, DNS
//! (ClusterFirst / Default / None, plus `spec.dnsConfig`), hostPort
//! mappings, labels and annotations. Linux settings come from `spec`.

use std::collections::HashMap;

use k8s_cri::v1::{DnsConfig, PodSandboxConfig, PodSandboxMetadata, PortMapping, Protocol};
use k8s_openapi::api::core::v1::Pod;

use crate::config::AgentConfig;
use crate::labels;

/// The host's resolver file, used for `dnsPolicy: Default`.
const HOST_RESOLV_CONF: &str = "/etc/resolv.conf";

/// The sandbox config of `pod`'s `attempt`-th sandbox.
pub fn sandbox_config(cfg: &AgentConfig, pod: &Pod, attempt: u32) -> PodSandboxConfig {
    let meta = &pod.metadata;
    let name = meta.name.clone().unwrap_or_default();
    let namespace = meta.namespace.clone().unwrap_or_else(|| "default".into());
    let uid = meta.uid.clone().unwrap_or_default();
    let spec = pod.spec.clone().unwrap_or_default();
    let host_network = spec.host_network.unwrap_or(false);
    let hostname = if host_network {
        String::new()
    } else {
        let h = spec.hostname.clone().unwrap_or_else(|| name.clone());
        h.chars()
            .take(63)
            .collect::<String>()
            .trim_end_matches(['-', '.'])
            .to_string()
    };
    let mut sandbox_labels: HashMap<String, String> =
        meta.labels.clone().unwrap_or_default().into_iter().collect();
    sandbox_labels.extend(pod_labels(pod));
    let host_resolv = std::fs::read_to_string(HOST_RESOLV_CONF).unwrap_or_default();
    PodSandboxConfig {
        metadata: Some(PodSandboxMetadata {
            name: name.clone(),
            uid: uid.clone(),
            namespace: namespace.clone(),
            attempt,
        }),
        hostname,
        log_directory: cfg
            .pod_log_dir(&namespace, &name, &uid)
            .to_string_lossy()
            .into_owned(),
        dns_config: Some(dns_config(cfg, pod, &host_resolv)),
        port_mappings: port_mappings(pod),
        labels: sandbox_labels,
        annotations: meta.annotations.clone().unwrap_or_default().into_iter().collect(),
        linux: Some(super::seams::sandbox_linux(pod)),
        windows: None,
    }
}

/// The kubelet labels every sandbox and container of `pod` carries.
pub fn pod_labels(pod: &Pod) -> HashMap<String, String> {
    let meta = &pod.metadata;
    HashMap::from([
        (
            labels::POD_NAME.to_string(),
            meta.name.clone().unwrap_or_default(),
        ),
        (
            labels::POD_NAMESPACE.to_string(),
            meta.namespace.clone().unwrap_or_else(|| "default".into()),
        ),
        (labels::POD_UID.to_string(), meta.uid.clone().unwrap_or_default()),
        (labels::MANAGED_BY_SKIFF.to_string(), "true".to_string()),
    ])
}

/// The resolver settings of `pod` as its dnsPolicy and dnsConfig say.
pub fn dns_config(cfg: &AgentConfig, pod: &Pod, host_resolv_conf: &str) -> DnsConfig {
    let spec = pod.spec.clone().unwrap_or_default();
    let host_network = spec.host_network.unwrap_or(false);
    let policy = spec.dns_policy.as_deref().unwrap_or("ClusterFirst");
    let cluster = match (policy, cfg.cluster_dns) {
        ("ClusterFirstWithHostNet", Some(ip)) => Some(ip),
        ("ClusterFirst", Some(ip)) if !host_network => Some(ip),
        _ => None,
    };
    let mut dns = match (policy, cluster) {
        ("None", _) => DnsConfig::default(),
        (_, Some(ip)) => {
            let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
            let domain = &cfg.cluster_domain;
            let mut searches = vec![
                format!("{ns}.svc.{domain}"),
                format!("svc.{domain}"),
                domain.clone(),
            ];
            searches.extend(parse_resolv_conf(host_resolv_conf).searches);
            DnsConfig {
                servers: vec![ip.to_string()],
                searches,
                options: vec!["ndots:5".into()],
            }
        }
        _ => parse_resolv_conf(host_resolv_conf),
    };
    if let Some(extra) = spec.dns_config {
        dns.servers.extend(extra.nameservers.unwrap_or_default());
        dns.searches.extend(extra.searches.unwrap_or_default());
        for o in extra.options.unwrap_or_default() {
            let Some(name) = o.name else { continue };
            let opt = match o.value {
                Some(v) => format!("{name}:{v}"),
                None => name.clone(),
            };
            let key = |s: &String| s.split(':').next().map(str::to_string);
            dns.options
                .retain(|existing| key(existing).as_deref() != Some(name.as_str()));
            dns.options.push(opt);
        }
    }
    dns.searches.dedup();
    dns.searches.truncate(32);
    dns
}

/// Nameservers, search domains and options of a resolv.conf text.
pub fn parse_resolv_conf(text: &str) -> DnsConfig {
    let mut dns = DnsConfig::default();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        match words.next() {
            Some("nameserver") => dns.servers.extend(words.next().map(str::to_string)),
            Some("search" | "domain") => dns.searches = words.map(str::to_string).collect(),
            Some("options") => dns.options.extend(words.map(str::to_string)),
            _ => {}
        }
    }
    dns
}

/// One mapping per container port that asks for a hostPort.
pub fn port_mappings(pod: &Pod) -> Vec<PortMapping> {
    let spec = pod.spec.clone().unwrap_or_default();
    spec.containers
        .iter()
        .flat_map(|c| c.ports.clone().unwrap_or_default())
        .filter(|p| p.host_port.unwrap_or(0) > 0)
        .map(|p| PortMapping {
            protocol: match p.protocol.as_deref() {
                Some("UDP") => Protocol::Udp as i32,
                Some("SCTP") => Protocol::Sctp as i32,
                _ => Protocol::Tcp as i32,
            },
            container_port: p.container_port,
            host_port: p.host_port.unwrap_or(0),
            host_ip: p.host_ip.unwrap_or_default(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(json: serde_json::Value) -> Pod {
        serde_json::from_value(json).unwrap_or_default()
    }

    #[test]
    fn cluster_first_uses_the_cluster_dns_and_search_path() {
        let mut cfg = AgentConfig::new("n", "/tmp/a");
        cfg.cluster_dns = Some("10.43.0.10".parse().unwrap_or(cfg.node_ip));
        let p = pod(
            serde_json::json!({"metadata": {"name": "p", "namespace": "shop"}, "spec": {"containers": []}}),
        );
        let dns = dns_config(&cfg, &p, "nameserver 1.1.1.1\nsearch corp.example\n");
        assert_eq!(dns.servers, vec!["10.43.0.10"]);
        assert_eq!(
            dns.searches,
            vec![
                "shop.svc.cluster.local",
                "svc.cluster.local",
                "cluster.local",
                "corp.example"
            ]
        );
        assert_eq!(dns.options, vec!["ndots:5"]);
    }

    #[test]
    fn default_and_none_policies() {
        let cfg = AgentConfig::new("n", "/tmp/a");
        let p = pod(serde_json::json!({"metadata": {"name": "p"}, "spec": {"containers": []}}));
        let dns = dns_config(&cfg, &p, "nameserver 1.1.1.1\noptions edns0\n");
        assert_eq!(
            (dns.servers, dns.options),
            (vec!["1.1.1.1".to_string()], vec!["edns0".to_string()])
        );
        let p = pod(
            serde_json::json!({"metadata": {"name": "p"}, "spec": {"containers": [], "dnsPolicy": "None",
            "dnsConfig": {"nameservers": ["9.9.9.9"], "searches": ["a.b"], "options": [{"name": "ndots", "value": "2"}]}}}),
        );
        let dns = dns_config(&cfg, &p, "nameserver 1.1.1.1\n");
        assert_eq!(dns.servers, vec!["9.9.9.9"]);
        assert_eq!(dns.searches, vec!["a.b"]);
        assert_eq!(dns.options, vec!["ndots:2"]);
    }

    #[test]
    fn host_ports_become_port_mappings() {
        let p = pod(
            serde_json::json!({"metadata": {"name": "p"}, "spec": {"containers": [
            {"name": "a", "ports": [{"containerPort": 80, "hostPort": 8080}, {"containerPort": 81}]},
            {"name": "b", "ports": [{"containerPort": 53, "hostPort": 5353, "protocol": "UDP"}]}]}}),
        );
        let m = port_mappings(&p);
        assert_eq!(m.len(), 2);
        assert_eq!((m[0].container_port, m[0].host_port), (80, 8080));
        assert_eq!(m[1].protocol, Protocol::Udp as i32);
    }
}
