//! Pods across nodes (host-gateway style, nodes on one L2 network): a route
//! to every other node's podCIDR via that node's InternalIP, and masquerade
//! of pod traffic leaving the cluster CIDR.
//!
//! Owns exactly: the main-table routes tagged `proto 250` ([`ROUTE_PROTO`])
//! and the nftables table `ip skiff-masq` ([`MASQ_TABLE`]). Every other
//! route and table is left alone. The pure part (desired routes from a node
//! list, the plan against the current routes, the nft text) is separate from
//! the few functions that run `ip` and `nft`.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use ipnet::Ipv4Net;
use k8s_openapi::api::core::v1::Node;
use kube::runtime::WatchStreamExt;
use kube::runtime::reflector;
use kube::runtime::watcher::{self, watcher};
use kube::{Api, Client};
use tokio::sync::Notify;

use crate::AgentConfig;
use crate::proxy::{Nft, NftError};

/// The routing protocol number marking skiff's routes (`ip route ... proto 250`).
pub const ROUTE_PROTO: u8 = 250;
/// The nftables table holding the masquerade rule.
pub const MASQ_TABLE: &str = "ip skiff-masq";
/// How often routes are re-checked even without Node changes.
const RESYNC: Duration = Duration::from_secs(30);

/// Why programming routes or masquerade failed.
#[derive(Debug, thiserror::Error)]
pub enum RoutesError {
    /// `ip` could not be started.
    #[error("running ip: {0}")]
    Spawn(#[from] std::io::Error),
    /// `ip` rejected a command.
    #[error("`ip {args}` failed: {stderr}")]
    Failed {
        /// The arguments given to `ip`.
        args: String,
        /// What `ip` printed.
        stderr: String,
    },
    /// `ip -json route` printed something unexpected.
    #[error("reading routes: {0}")]
    Parse(#[from] serde_json::Error),
    /// `nft` rejected the masquerade table.
    #[error(transparent)]
    Nft(#[from] NftError),
}

/// Routes by destination podCIDR to the gateway (a node's InternalIP).
pub type RouteTable = BTreeMap<Ipv4Net, Ipv4Addr>;

/// The node's IPv4 podCIDR (`spec.podCIDR`, else the first IPv4 of `spec.podCIDRs`).
pub fn node_pod_cidr(node: &Node) -> Option<Ipv4Net> {
    let spec = node.spec.as_ref()?;
    let all = spec.pod_cidr.iter().chain(spec.pod_cidrs.iter().flatten());
    all.filter_map(|c| c.parse::<Ipv4Net>().ok())
        .next()
        .map(|n| n.trunc())
}

/// The node's IPv4 `InternalIP` address.
pub fn node_internal_ip(node: &Node) -> Option<Ipv4Addr> {
    let addrs = node.status.as_ref()?.addresses.as_ref()?;
    addrs
        .iter()
        .filter(|a| a.type_ == "InternalIP")
        .find_map(|a| a.address.parse::<Ipv4Addr>().ok())
}

/// The routes node `self_name` (whose own address is `self_ip`) needs: every
/// other node's podCIDR via its InternalIP. Nodes without either, with a
/// loopback/unspecified address or this node's own address (several nodes
/// on one machine), or whose podCIDR overlaps this node's own, are skipped.
pub fn desired_routes<'a>(
    nodes: impl IntoIterator<Item = &'a Node>,
    self_name: &str,
    self_ip: IpAddr,
) -> RouteTable {
    let nodes: Vec<&Node> = nodes.into_iter().collect();
    let own_cidr = nodes
        .iter()
        .find(|n| n.metadata.name.as_deref() == Some(self_name))
        .and_then(|n| node_pod_cidr(n));
    let mut out = RouteTable::new();
    for node in nodes {
        if node.metadata.name.as_deref() == Some(self_name) || node.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let (Some(cidr), Some(via)) = (node_pod_cidr(node), node_internal_ip(node)) else {
            continue;
        };
        if via.is_loopback() || via.is_unspecified() || IpAddr::V4(via) == self_ip {
            continue;
        }
        if own_cidr.is_some_and(|own| own.contains(&cidr) || cidr.contains(&own)) {
            continue;
        }
        out.insert(cidr, via);
    }
    out
}

/// One change to the routing table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteOp {
    /// `ip route replace DST via VIA proto 250`.
    Replace {
        /// Destination podCIDR.
        dst: Ipv4Net,
        /// Gateway.
        via: Ipv4Addr,
    },
    /// `ip route del DST proto 250`.
    Delete {
        /// Destination podCIDR.
        dst: Ipv4Net,
    },
}

impl RouteOp {
    fn args(&self) -> Vec<String> {
        let proto = ROUTE_PROTO.to_string();
        match self {
            RouteOp::Replace { dst, via } => [
                "route",
                "replace",
                &dst.to_string(),
                "via",
                &via.to_string(),
                "proto",
                &proto,
            ]
            .map(String::from)
            .to_vec(),
            RouteOp::Delete { dst } => ["route", "del", &dst.to_string(), "proto", &proto]
                .map(String::from)
                .to_vec(),
        }
    }
}

/// The main routing table as read from `ip -json route show`: skiff's own
/// routes, and the destinations held by anyone else.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CurrentRoutes {
    /// Routes tagged [`ROUTE_PROTO`].
    pub ours: RouteTable,
    /// Destinations of routes skiff does not own (never replaced).
    pub foreign: Vec<Ipv4Net>,
}

#[derive(serde::Deserialize)]
struct JsonRoute {
    dst: String,
    #[serde(default)]
    gateway: Option<String>,
    #[serde(default)]
    protocol: Option<String>,
}

/// Parses `ip -json route show` output.
pub fn parse_routes(json: &str) -> Result<CurrentRoutes, serde_json::Error> {
    let routes: Vec<JsonRoute> = if json.trim().is_empty() {
        Vec::new()
    } else {
        serde_json::from_str(json)?
    };
    let mut out = CurrentRoutes::default();
    for r in routes {
        let dst = if r.dst == "default" {
            Some(Ipv4Net::default())
        } else if r.dst.contains('/') {
            r.dst.parse().ok()
        } else {
            r.dst.parse::<Ipv4Addr>().ok().map(Ipv4Net::from)
        };
        let Some(dst) = dst else { continue };
        let ours = r.protocol.as_deref() == Some(ROUTE_PROTO.to_string().as_str());
        match r.gateway.and_then(|g| g.parse().ok()) {
            Some(via) if ours => {
                out.ours.insert(dst, via);
            }
            _ if ours => {}
            _ => out.foreign.push(dst),
        }
    }
    Ok(out)
}

/// The changes taking `current` to `desired`: stale or changed skiff routes
/// are replaced or deleted; a destination someone else routes is left alone.
pub fn plan(current: &CurrentRoutes, desired: &RouteTable) -> Vec<RouteOp> {
    let mut ops: Vec<RouteOp> = current
        .ours
        .keys()
        .filter(|dst| !desired.contains_key(*dst))
        .map(|dst| RouteOp::Delete { dst: *dst })
        .collect();
    for (dst, via) in desired {
        if current.ours.get(dst) == Some(via) || current.foreign.contains(dst) {
            continue;
        }
        ops.push(RouteOp::Replace { dst: *dst, via: *via });
    }
    ops
}

/// The `nft -f -` script (re)creating [`MASQ_TABLE`] in one transaction:
/// traffic from `cluster` to anywhere outside it is masqueraded.
pub fn masq_script(cluster: Ipv4Net) -> String {
    let cluster = cluster.trunc();
    format!(
        "add table {MASQ_TABLE}\ndelete table {MASQ_TABLE}\nadd table {MASQ_TABLE}\n\
         add chain {MASQ_TABLE} postrouting {{ type nat hook postrouting priority srcnat; policy accept; }}\n\
         add rule {MASQ_TABLE} postrouting ip saddr {cluster} ip daddr != {cluster} masquerade\n"
    )
}

/// Where `ip` and `nft` run: the host, or (tests) a network namespace.
#[derive(Debug, Clone, Default)]
pub struct Host {
    /// `ip netns exec NAME ...` when set.
    pub netns: Option<String>,
}

impl Host {
    fn ip(&self, args: &[String]) -> Result<String, RoutesError> {
        let mut cmd = Command::new("ip");
        if let Some(ns) = &self.netns {
            cmd.args(["netns", "exec", ns, "ip"]);
        }
        let out = cmd.args(args).output()?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(RoutesError::Failed {
                args: args.join(" "),
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            })
        }
    }

    fn nft(&self) -> Nft {
        Nft {
            netns: self.netns.clone(),
        }
    }

    /// Reads the main IPv4 routing table.
    pub fn current_routes(&self) -> Result<CurrentRoutes, RoutesError> {
        let json = self.ip(&["-4", "-json", "route", "show", "table", "main"].map(String::from))?;
        Ok(parse_routes(&json)?)
    }

    /// Brings skiff's routes to `desired`; returns the changes made.
    pub fn sync_routes(&self, desired: &RouteTable) -> Result<Vec<RouteOp>, RoutesError> {
        let ops = plan(&self.current_routes()?, desired);
        for op in &ops {
            self.ip(&op.args())?;
        }
        Ok(ops)
    }

    /// (Re)creates the masquerade table for `cluster` in one transaction.
    pub fn apply_masq(&self, cluster: Ipv4Net) -> Result<(), RoutesError> {
        Ok(self.nft().apply(&masq_script(cluster))?)
    }

    /// Removes skiff's routes and the masquerade table, nothing else.
    pub fn cleanup(&self) -> Result<(), RoutesError> {
        self.sync_routes(&RouteTable::new())?;
        self.nft()
            .apply(&format!("add table {MASQ_TABLE}\ndelete table {MASQ_TABLE}\n"))?;
        Ok(())
    }
}

/// Removes this host's skiff routes and masquerade table (and nothing else).
pub fn cleanup() -> Result<(), RoutesError> {
    Host::default().cleanup()
}

/// Runs route and masquerade programming for the agent `cfg` on this host
/// until the Node watch ends: applies the masquerade table for
/// `cfg.cluster_cidr`, then keeps a route to every other node's podCIDR as
/// Nodes come, change and go (and re-checks every 30 s).
pub async fn run(client: Client, cfg: AgentConfig) -> Result<(), RoutesError> {
    run_on(client, cfg, Host::default()).await
}

/// [`run`] programming `host` (a test network namespace, say).
pub async fn run_on(client: Client, cfg: AgentConfig, host: Host) -> Result<(), RoutesError> {
    let notify = Arc::new(Notify::new());
    let (store, writer) = reflector::store::<Node>();
    // Every event (deletions too, which `applied_objects` would drop) wakes the sync.
    let stream = reflector::reflector(
        writer,
        watcher(Api::<Node>::all(client), watcher::Config::default()),
    )
    .default_backoff();
    let events = notify.clone();
    let watch = tokio::spawn(async move {
        futures::pin_mut!(stream);
        while let Some(ev) = stream.next().await {
            if let Err(e) = ev {
                tracing::debug!(error = %e, "node watch error (routes)");
            }
            events.notify_one();
        }
    });
    let _ = store.wait_until_ready().await;
    let mut masq_done = false;
    while !watch.is_finished() {
        let nodes = store.state();
        let desired = desired_routes(nodes.iter().map(|n| n.as_ref()), &cfg.node_name, cfg.node_ip);
        let host = host.clone();
        let cluster = cfg.cluster_cidr;
        let need_masq = !masq_done;
        let result = tokio::task::spawn_blocking(move || -> Result<Vec<RouteOp>, RoutesError> {
            if need_masq {
                host.apply_masq(cluster)?;
            }
            host.sync_routes(&desired)
        })
        .await;
        match result {
            Ok(Ok(ops)) => {
                masq_done = true;
                if !ops.is_empty() {
                    tracing::info!(?ops, "node routes updated");
                }
            }
            Ok(Err(e)) => tracing::warn!(error = %e, "programming node routes; retrying"),
            Err(e) => tracing::warn!(error = %e, "programming node routes; retrying"),
        }
        let _ = tokio::time::timeout(RESYNC, notify.notified()).await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, cidr: Option<&str>, ip: Option<&str>) -> Node {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": name},
            "spec": {"podCIDR": cidr},
            "status": {"addresses": ip.map(|ip| vec![
                serde_json::json!({"type": "Hostname", "address": name}),
                serde_json::json!({"type": "InternalIP", "address": ip}),
            ])},
        }))
        .unwrap()
    }

    fn net(s: &str) -> Ipv4Net {
        s.parse().unwrap()
    }

    #[test]
    fn desired_routes_cover_other_nodes_only() {
        let nodes = [
            node("a", Some("10.42.0.0/24"), Some("192.168.5.1")),
            node("b", Some("10.42.1.0/24"), Some("192.168.5.2")),
            node("c", Some("10.42.2.0/24"), None),
            node("d", None, Some("192.168.5.4")),
            node("e", Some("10.42.4.0/24"), Some("127.0.0.1")),
            node("f", Some("10.42.0.0/16"), Some("192.168.5.6")),
        ];
        let got = desired_routes(&nodes, "a", "192.168.5.1".parse().unwrap());
        assert_eq!(
            got,
            RouteTable::from([(net("10.42.1.0/24"), "192.168.5.2".parse().unwrap())])
        );
    }

    #[test]
    fn plan_replaces_changed_deletes_gone_and_keeps_foreign() {
        let json = r#"[{"dst":"default","gateway":"192.168.5.254","dev":"eth0","protocol":"boot"},
            {"dst":"10.42.1.0/24","gateway":"192.168.5.2","dev":"eth0","protocol":"250"},
            {"dst":"10.42.2.0/24","gateway":"192.168.5.3","dev":"eth0","protocol":"250"},
            {"dst":"10.42.9.0/24","gateway":"192.168.5.9","dev":"eth0","protocol":"static"},
            {"dst":"192.168.5.0/24","dev":"eth0","protocol":"kernel","scope":"link","prefsrc":"192.168.5.1"}]"#;
        let current = parse_routes(json).unwrap();
        assert_eq!(current.ours.len(), 2);
        let desired = RouteTable::from([
            (net("10.42.1.0/24"), "192.168.5.2".parse().unwrap()),
            (net("10.42.3.0/24"), "192.168.5.33".parse().unwrap()),
            (net("10.42.9.0/24"), "192.168.5.99".parse().unwrap()),
        ]);
        assert_eq!(
            plan(&current, &desired),
            vec![
                RouteOp::Delete {
                    dst: net("10.42.2.0/24")
                },
                RouteOp::Replace {
                    dst: net("10.42.3.0/24"),
                    via: "192.168.5.33".parse().unwrap()
                },
            ]
        );
        assert!(plan(&current, &current.ours).is_empty());
    }

    #[test]
    fn route_commands_carry_the_skiff_proto() {
        let op = RouteOp::Replace {
            dst: net("10.42.1.0/24"),
            via: "10.0.0.2".parse().unwrap(),
        };
        assert_eq!(
            op.args().join(" "),
            "route replace 10.42.1.0/24 via 10.0.0.2 proto 250"
        );
        let op = RouteOp::Delete {
            dst: net("10.42.1.0/24"),
        };
        assert_eq!(op.args().join(" "), "route del 10.42.1.0/24 proto 250");
    }

    #[test]
    fn masq_script_recreates_only_its_table() {
        let s = masq_script(net("10.42.0.0/16"));
        assert!(s.starts_with("add table ip skiff-masq\ndelete table ip skiff-masq\n"));
        assert!(s.contains("ip saddr 10.42.0.0/16 ip daddr != 10.42.0.0/16 masquerade"));
        assert!(s.contains("type nat hook postrouting priority srcnat"));
        assert!(s.lines().all(|l| l.contains("skiff-masq")));
    }
}
