//! The node's pod network configuration: a CNI conflist for the node's
//! podCIDR that containerd's CRI plugin reads from `cfg.cni_conf_dir`.
//!
//! The chain is `bridge` (pods on one Linux bridge, the bridge as their
//! gateway, masquerade of traffic leaving the pod network, hairpin so a pod
//! reaches itself through a Service) with `host-local` IPAM over the
//! podCIDR, then `portmap` for hostPort. containerd adds the loopback
//! interface itself. Owns only writing the file: it never calls a plugin.

use std::io;
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use serde_json::json;

use crate::AgentConfig;

/// The file name: containerd uses the lexically first file of its conf dir.
pub const CONFLIST_NAME: &str = "10-skiff.conflist";

/// The CNI network's name (also the sandbox annotation containerd reports).
pub const NETWORK_NAME: &str = "skiff";

/// The CNI spec version written; Debian's plugins (1.1) and containerd 1.6 speak it.
pub const CNI_VERSION: &str = "1.0.0";

/// Longest Linux interface name (IFNAMSIZ minus the NUL).
const MAX_IFNAME: usize = 15;

/// Why the pod network configuration could not be written.
#[derive(Debug, thiserror::Error)]
pub enum CniError {
    /// The podCIDR is not an IP network.
    #[error("invalid podCIDR {cidr:?}: {source}")]
    InvalidCidr {
        /// The text given.
        cidr: String,
        /// The parse error.
        source: ipnet::AddrParseError,
    },
    /// The podCIDR has no room for a gateway and pods.
    #[error("podCIDR {0} is too small for a gateway and pods")]
    CidrTooSmall(String),
    /// The bridge name is empty, too long or has characters Linux refuses.
    #[error("invalid bridge name {0:?}: 1 to 15 characters, no '/', ':' or whitespace")]
    InvalidBridge(String),
    /// The file could not be written.
    #[error("writing {path}: {source}")]
    Write {
        /// The path being written.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
}

/// Writes the conflist for `pod_cidr` into `cfg.cni_conf_dir` (created if
/// missing) and returns its path. The write is atomic (temporary file, then
/// rename), and a file that already holds the same text is left untouched so
/// containerd does not reload it.
pub fn write_config(cfg: &AgentConfig, pod_cidr: &str) -> Result<PathBuf, CniError> {
    let text = render(cfg, pod_cidr)?;
    let dir = &cfg.cni_conf_dir;
    let path = dir.join(CONFLIST_NAME);
    if std::fs::read_to_string(&path).is_ok_and(|old| old == text) {
        return Ok(path);
    }
    let write_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| CniError::Write { path, source }
    };
    std::fs::create_dir_all(dir).map_err(write_err(dir))?;
    // A dot-file: containerd only loads *.conf, *.conflist and *.json.
    let tmp = dir.join(format!(".{CONFLIST_NAME}.{}.tmp", std::process::id()));
    std::fs::write(&tmp, &text).map_err(write_err(&tmp))?;
    if let Err(source) = std::fs::rename(&tmp, &path) {
        let _ = std::fs::remove_file(&tmp);
        return Err(CniError::Write { path, source });
    }
    Ok(path)
}

/// The conflist text for `pod_cidr` with `cfg`'s bridge, without writing it.
pub fn render(cfg: &AgentConfig, pod_cidr: &str) -> Result<String, CniError> {
    let net: IpNet = pod_cidr.trim().parse().map_err(|source| CniError::InvalidCidr {
        cidr: pod_cidr.to_string(),
        source,
    })?;
    let net = net.trunc();
    // A gateway and at least one pod beside the network and broadcast addresses.
    let gateway = net
        .hosts()
        .next()
        .filter(|_| net.prefix_len() + 2 <= net.max_prefix_len())
        .ok_or_else(|| CniError::CidrTooSmall(pod_cidr.to_string()))?;
    let bridge = &cfg.cni_bridge;
    if bridge.is_empty()
        || bridge.len() > MAX_IFNAME
        || bridge
            .chars()
            .any(|c| c == '/' || c == ':' || c.is_whitespace() || c.is_control())
    {
        return Err(CniError::InvalidBridge(bridge.clone()));
    }
    let default_route = if net.addr().is_ipv4() { "0.0.0.0/0" } else { "::/0" };
    let conf = json!({
        "cniVersion": CNI_VERSION,
        "name": NETWORK_NAME,
        "plugins": [
            {
                "type": "bridge",
                "bridge": bridge,
                "isGateway": true,
                // With pod routes on, skiff's one `skiff-masq` rule for the
                // cluster CIDR masquerades; the plugin's per-pod iptables
                // chains would only duplicate it (and outlive pods torn down
                // without a CNI DEL).
                "ipMasq": !cfg.pod_routes,
                "hairpinMode": true,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{ "subnet": net.to_string(), "gateway": gateway.to_string() }]],
                    "routes": [{ "dst": default_route }],
                    // Per node, so several nodes on one machine keep apart.
                    "dataDir": cfg.data_dir.join("cni/networks"),
                },
            },
            {
                "type": "portmap",
                "capabilities": { "portMappings": true },
                "snat": true,
            },
        ],
    });
    // Serialising a json! value cannot fail; pretty text helps whoever reads the file.
    let mut text = serde_json::to_string_pretty(&conf).unwrap_or_else(|_| conf.to_string());
    text.push('\n');
    Ok(text)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn cfg(dir: &Path) -> AgentConfig {
        AgentConfig::new("node-a", dir.join("agent"))
    }

    #[test]
    fn the_bridge_plugin_masquerades_only_without_pod_routes() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = cfg(dir.path());
        cfg.pod_routes = false;
        let v: serde_json::Value = serde_json::from_str(&render(&cfg, "10.42.3.0/24").unwrap()).unwrap();
        assert_eq!(v["plugins"][0]["ipMasq"], true);
    }

    #[test]
    fn conflist_has_bridge_host_local_over_the_cidr_and_portmap() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = cfg(dir.path());
        cfg.cni_bridge = "skt0".to_string();
        let v: serde_json::Value = serde_json::from_str(&render(&cfg, "10.42.3.0/24").unwrap()).unwrap();
        assert_eq!(v["cniVersion"], CNI_VERSION);
        assert_eq!(v["name"], "skiff");
        let bridge = &v["plugins"][0];
        assert_eq!(bridge["type"], "bridge");
        assert_eq!(bridge["bridge"], "skt0");
        assert_eq!(bridge["isGateway"], true);
        assert_eq!(
            bridge["ipMasq"], false,
            "skiff-masq masquerades when pod routes are on"
        );
        assert_eq!(bridge["hairpinMode"], true);
        assert_eq!(bridge["ipam"]["type"], "host-local");
        assert_eq!(bridge["ipam"]["ranges"][0][0]["subnet"], "10.42.3.0/24");
        assert_eq!(bridge["ipam"]["ranges"][0][0]["gateway"], "10.42.3.1");
        assert_eq!(bridge["ipam"]["routes"][0]["dst"], "0.0.0.0/0");
        let data_dir = dir.path().join("agent/cni/networks");
        assert_eq!(bridge["ipam"]["dataDir"], data_dir.to_str().unwrap());
        assert_eq!(v["plugins"][1]["type"], "portmap");
        assert_eq!(v["plugins"][1]["capabilities"]["portMappings"], true);
    }

    #[test]
    fn host_bits_of_the_cidr_are_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let v: serde_json::Value =
            serde_json::from_str(&render(&cfg(dir.path()), "10.42.0.77/16").unwrap()).unwrap();
        assert_eq!(v["plugins"][0]["ipam"]["ranges"][0][0]["subnet"], "10.42.0.0/16");
        assert_eq!(v["plugins"][0]["ipam"]["ranges"][0][0]["gateway"], "10.42.0.1");
    }

    #[test]
    fn bad_cidrs_and_bridge_names_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = cfg(dir.path());
        assert!(matches!(
            render(&cfg, "10.42.0.0"),
            Err(CniError::InvalidCidr { .. })
        ));
        assert!(matches!(
            render(&cfg, "10.42.0.0/32"),
            Err(CniError::CidrTooSmall(_))
        ));
        assert!(matches!(
            render(&cfg, "10.42.0.0/31"),
            Err(CniError::CidrTooSmall(_))
        ));
        cfg.cni_bridge = "a-very-long-bridge-name".to_string();
        assert!(matches!(
            render(&cfg, "10.42.0.0/24"),
            Err(CniError::InvalidBridge(_))
        ));
    }

    #[test]
    fn writes_atomically_and_leaves_an_unchanged_file_alone() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = cfg(dir.path());
        let path = write_config(&cfg, "10.42.0.0/24").unwrap();
        assert_eq!(path, cfg.cni_conf_dir.join("10-skiff.conflist"));
        let first = std::fs::metadata(&path).unwrap().modified().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        write_config(&cfg, "10.42.0.0/24").unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().modified().unwrap(), first);
        write_config(&cfg, "10.42.1.0/24").unwrap();
        assert!(std::fs::read_to_string(&path).unwrap().contains("10.42.1.0/24"));
        let names: Vec<_> = std::fs::read_dir(&cfg.cni_conf_dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, [CONFLIST_NAME], "no temporary file is left behind");
    }
}
