//! Node IPAM: gives every node a podCIDR (`spec.podCIDR`/`spec.podCIDRs`)
//! cut from the cluster CIDR (`--cluster-cidr`, /24 each by default). A
//! range is free again once its node is deleted.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use futures::TryStreamExt;
use ipnet::Ipv4Net;
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::watcher::{self, Event};
use serde_json::json;

use crate::manager::{ControllerConfig, Error};

/// The first range of `cluster` with prefix `mask` that is not in `used`.
pub fn pick(cluster: Ipv4Net, mask: u8, used: &HashSet<Ipv4Net>) -> Option<Ipv4Net> {
    cluster.subnets(mask).ok()?.find(|s| !used.contains(s))
}

fn cidr_of(node: &Node) -> Option<Ipv4Net> {
    node.spec.as_ref()?.pod_cidr.as_deref()?.parse().ok()
}

/// Watches nodes and allocates podCIDRs until the watch fails.
pub async fn run(client: kube::Client, cfg: Arc<ControllerConfig>) -> Result<(), Error> {
    if cfg.node_cidr_mask_size < cfg.cluster_cidr.prefix_len() || cfg.node_cidr_mask_size > 32 {
        return Err(Error::Config(format!(
            "node CIDR mask /{} does not fit cluster CIDR {}",
            cfg.node_cidr_mask_size, cfg.cluster_cidr
        )));
    }
    let api: Api<Node> = Api::all(client);
    let mut stream = Box::pin(watcher::watcher(api.clone(), watcher::Config::default()));
    // node name -> its range (None: not allocated yet).
    let mut nodes: HashMap<String, Option<Ipv4Net>> = HashMap::new();
    let mut initial: HashMap<String, Option<Ipv4Net>> = HashMap::new();
    while let Some(ev) = stream.try_next().await? {
        let todo: Vec<String> = match ev {
            Event::Init => {
                initial.clear();
                Vec::new()
            }
            Event::InitApply(n) => {
                if let Some(name) = n.metadata.name.clone() {
                    initial.insert(name, cidr_of(&n));
                }
                Vec::new()
            }
            Event::InitDone => {
                nodes = std::mem::take(&mut initial);
                nodes
                    .iter()
                    .filter(|(_, c)| c.is_none())
                    .map(|(n, _)| n.clone())
                    .collect()
            }
            Event::Apply(n) => {
                let Some(name) = n.metadata.name.clone() else {
                    continue;
                };
                let cidr = cidr_of(&n).or_else(|| nodes.get(&name).copied().flatten());
                nodes.insert(name.clone(), cidr);
                if cidr.is_none() { vec![name] } else { Vec::new() }
            }
            Event::Delete(n) => {
                if let Some(name) = n.metadata.name.as_deref() {
                    nodes.remove(name);
                }
                Vec::new()
            }
        };
        for name in todo {
            let used: HashSet<Ipv4Net> = nodes.values().flatten().copied().collect();
            let Some(cidr) = pick(cfg.cluster_cidr, cfg.node_cidr_mask_size, &used) else {
                tracing::warn!(node = %name, cidr = %cfg.cluster_cidr, "node-ipam: cluster CIDR exhausted");
                continue;
            };
            let patch = json!({"spec": {"podCIDR": cidr.to_string(), "podCIDRs": [cidr.to_string()]}});
            match api
                .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => {
                    nodes.insert(name, Some(cidr));
                }
                Err(e) => tracing::warn!(node = %name, error = %e, "node-ipam: could not set podCIDR"),
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_handed_out_in_order_and_reused_after_release() {
        let cluster: Ipv4Net = "10.42.0.0/16".parse().unwrap();
        let mut used = HashSet::new();
        let a = pick(cluster, 24, &used).unwrap();
        assert_eq!(a.to_string(), "10.42.0.0/24");
        used.insert(a);
        let b = pick(cluster, 24, &used).unwrap();
        assert_eq!(b.to_string(), "10.42.1.0/24");
        used.insert(b);
        used.remove(&a);
        assert_eq!(pick(cluster, 24, &used), Some(a));
    }

    #[test]
    fn an_exhausted_range_gives_nothing() {
        let cluster: Ipv4Net = "10.42.0.0/23".parse().unwrap();
        let used: HashSet<Ipv4Net> = cluster.subnets(24).unwrap().collect();
        assert_eq!(pick(cluster, 24, &used), None);
    }
}
