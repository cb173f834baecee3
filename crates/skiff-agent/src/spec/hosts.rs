//! The pod's managed `/etc/hosts`, written into the pod dir and mounted
//! into every container as the kubelet does: localhost entries, the pod's
//! own IPs with its hostname (and FQDN with a subdomain), and hostAliases.
//! A hostNetwork pod gets the node's hosts file plus its hostAliases.

use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::Pod;

/// The pod's hostname: `spec.hostname`, else its name cut to 63 characters.
pub fn pod_hostname(pod: &Pod) -> String {
    let spec = pod.spec.as_ref();
    match spec.and_then(|s| s.hostname.as_deref()).filter(|h| !h.is_empty()) {
        Some(h) => h.to_string(),
        None => {
            let name = pod.metadata.name.as_deref().unwrap_or_default();
            let cut: String = name.chars().take(63).collect();
            cut.trim_end_matches(['-', '.']).to_string()
        }
    }
}

/// The managed hosts file content for a pod with `pod_ips`.
pub fn hosts_content(
    pod: &Pod,
    pod_ips: &[String],
    cluster_domain: &str,
    node_hosts: Option<&str>,
) -> String {
    let spec = pod.spec.as_ref();
    let mut out = String::new();
    if spec.and_then(|s| s.host_network).unwrap_or(false) {
        out.push_str("# Kubernetes-managed hosts file (host network).\n");
        out.push_str(node_hosts.unwrap_or_default());
        if !out.ends_with('\n') {
            out.push('\n');
        }
    } else {
        out.push_str("# Kubernetes-managed hosts file.\n");
        out.push_str("127.0.0.1\tlocalhost\n");
        out.push_str("::1\tlocalhost ip6-localhost ip6-loopback\n");
        out.push_str("fe00::0\tip6-localnet\n");
        out.push_str("fe00::0\tip6-mcastprefix\n");
        out.push_str("fe00::1\tip6-allnodes\n");
        out.push_str("fe00::2\tip6-allrouters\n");
        let hostname = pod_hostname(pod);
        let subdomain = spec
            .and_then(|s| s.subdomain.as_deref())
            .filter(|s| !s.is_empty());
        let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
        for ip in pod_ips {
            match subdomain {
                Some(sub) => out.push_str(&format!(
                    "{ip}\t{hostname}.{sub}.{namespace}.svc.{cluster_domain}\t{hostname}\n"
                )),
                None => out.push_str(&format!("{ip}\t{hostname}\n")),
            }
        }
    }
    let aliases = spec.and_then(|s| s.host_aliases.as_deref()).unwrap_or_default();
    if !aliases.is_empty() {
        out.push_str("\n# Entries added by HostAliases.\n");
        for alias in aliases {
            let names = alias.hostnames.as_deref().unwrap_or_default().join("\t");
            out.push_str(&format!("{}\t{names}\n", alias.ip));
        }
    }
    out
}

/// Writes `<pod_dir>/etc-hosts` (only when its content changed) and
/// returns its path.
pub fn write_hosts_file(
    pod_dir: &Path,
    pod: &Pod,
    pod_ips: &[String],
    cluster_domain: &str,
) -> std::io::Result<PathBuf> {
    let node_hosts = std::fs::read_to_string("/etc/hosts").ok();
    let content = hosts_content(pod, pod_ips, cluster_domain, node_hosts.as_deref());
    let path = pod_dir.join("etc-hosts");
    if std::fs::read_to_string(&path).ok().as_deref() != Some(content.as_str()) {
        std::fs::create_dir_all(pod_dir)?;
        let tmp = pod_dir.join(".etc-hosts.tmp");
        std::fs::write(&tmp, content)?;
        std::fs::rename(&tmp, &path)?;
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_file_names_the_pod_with_fqdn_and_aliases() {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web-0", "namespace": "prod"},
            "spec": {"subdomain": "web", "containers": [],
                     "hostAliases": [{"ip": "10.9.9.9", "hostnames": ["foo", "bar"]}]}
        }))
        .unwrap();
        let text = hosts_content(&pod, &["10.1.0.7".into()], "cluster.local", None);
        assert!(text.starts_with("# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n"));
        assert!(text.contains("10.1.0.7\tweb-0.web.prod.svc.cluster.local\tweb-0\n"));
        assert!(text.ends_with("# Entries added by HostAliases.\n10.9.9.9\tfoo\tbar\n"));
    }

    #[test]
    fn host_network_pods_get_the_node_file() {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p"}, "spec": {"hostNetwork": true, "containers": []}
        }))
        .unwrap();
        let text = hosts_content(&pod, &[], "cluster.local", Some("127.0.0.1 localhost myhost"));
        assert_eq!(
            text,
            "# Kubernetes-managed hosts file (host network).\n127.0.0.1 localhost myhost\n"
        );
    }
}
