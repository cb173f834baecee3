//! CSR approver (upstream's csrapproving controller, with skiff's rules in
//! place of SubjectAccessReviews):
//!
//! - `kube-apiserver-client-kubelet` requests for `system:node:NAME` /
//!   `system:nodes` are approved when a bootstrap-token user
//!   (`system:bootstrappers`) asks, or the node itself renews;
//! - `kubelet-serving` requests are approved — unlike upstream, which leaves
//!   them to an administrator — when node NAME itself asks, the Node exists
//!   and every name is its name or one of its addresses. Until the Node shows
//!   the addresses the request waits.
//!
//! Anything else stays Pending for `kubectl certificate approve|deny`.

use std::net::IpAddr;

use k8s_openapi::api::certificates::v1::{
    CertificateSigningRequest, CertificateSigningRequestCondition, CertificateSigningRequestStatus,
};
use k8s_openapi::api::core::v1::Node;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, PostParams};
use skiff_api::certificates::{
    BOOTSTRAPPERS_GROUP, CsrInfo, KUBELET_CLIENT_SIGNER, KUBELET_SERVING_SIGNER, NODES_GROUP,
};

use super::rules;
use crate::manager::Error;

/// The approver's reason on the Approved condition, as upstream's.
pub const REASON: &str = "AutoApproved";

/// What to do with one pending request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Approve with this message.
    Approve(&'static str),
    /// Not yet: ask again later (the Node is not there yet).
    Wait,
    /// Not ours to approve: leave it to a person.
    Leave,
}

/// Decides on a pending request from `username` in `groups`.
pub fn decide(
    signer: &str,
    username: &str,
    groups: &[String],
    usages: &[String],
    info: &CsrInfo,
    node: Option<&Node>,
) -> Decision {
    let in_group = |g: &str| groups.iter().any(|x| x == g);
    match signer {
        KUBELET_CLIENT_SIGNER => {
            let Ok(name) = rules::kubelet_client(info, usages) else {
                return Decision::Leave;
            };
            if username == format!("system:node:{name}") && in_group(NODES_GROUP) {
                Decision::Approve("Auto approving self kubelet client certificate after SubjectAccessReview.")
            } else if in_group(BOOTSTRAPPERS_GROUP) {
                Decision::Approve("Auto approving kubelet client certificate after SubjectAccessReview.")
            } else {
                Decision::Leave
            }
        }
        KUBELET_SERVING_SIGNER => {
            let Ok(name) = rules::kubelet_serving(info, usages) else {
                return Decision::Leave;
            };
            if username != format!("system:node:{name}") || !in_group(NODES_GROUP) {
                return Decision::Leave;
            }
            let Some(node) = node else {
                return Decision::Wait;
            };
            let addresses = node_addresses(node);
            let ips_ok = info.ip_addresses.iter().all(|ip| addresses.ips.contains(ip));
            let dns_ok = info
                .dns_names
                .iter()
                .all(|d| d == name || addresses.names.contains(d));
            match (ips_ok, dns_ok) {
                (true, true) => Decision::Approve(
                    "Auto approving kubelet serving certificate: the names are the node's own (skiff).",
                ),
                (false, true) => Decision::Wait,
                _ => Decision::Leave,
            }
        }
        _ => Decision::Leave,
    }
}

struct Addresses {
    ips: Vec<IpAddr>,
    names: Vec<String>,
}

fn node_addresses(node: &Node) -> Addresses {
    let mut out = Addresses {
        ips: Vec::new(),
        names: Vec::new(),
    };
    let list = node.status.as_ref().and_then(|s| s.addresses.as_ref());
    for a in list.into_iter().flatten() {
        match a.address.parse::<IpAddr>() {
            Ok(ip) => out.ips.push(ip),
            Err(_) => out.names.push(a.address.clone()),
        }
    }
    out
}

/// Approves `csr` if [`decide`] says so. Returns true when it must be looked
/// at again later.
pub async fn reconcile(
    client: &kube::Client,
    csr: &CertificateSigningRequest,
    info: &CsrInfo,
) -> Result<bool, Error> {
    let spec = &csr.spec;
    let node_name = skiff_api::certificates::node_of_user(spec.username.as_deref().unwrap_or_default());
    let node = match (spec.signer_name.as_str(), node_name) {
        (KUBELET_SERVING_SIGNER, Some(n)) => Api::<Node>::all(client.clone()).get_opt(n).await?,
        _ => None,
    };
    let groups = spec.groups.clone().unwrap_or_default();
    let usages = spec.usages.clone().unwrap_or_default();
    let username = spec.username.as_deref().unwrap_or_default();
    let message = match decide(&spec.signer_name, username, &groups, &usages, info, node.as_ref()) {
        Decision::Approve(m) => m,
        Decision::Wait => return Ok(true),
        Decision::Leave => return Ok(false),
    };
    let mut approved = csr.clone();
    let now = Time(jiff::Timestamp::now());
    let status = approved
        .status
        .get_or_insert_with(CertificateSigningRequestStatus::default);
    status
        .conditions
        .get_or_insert_with(Vec::new)
        .push(CertificateSigningRequestCondition {
            type_: "Approved".into(),
            status: "True".into(),
            reason: Some(REASON.into()),
            message: Some(message.into()),
            last_update_time: Some(now.clone()),
            last_transition_time: Some(now),
        });
    let name = csr.metadata.name.clone().unwrap_or_default();
    let api: Api<CertificateSigningRequest> = Api::all(client.clone());
    match api
        .replace_subresource("approval", &name, &PostParams::default(), &approved)
        .await
    {
        Ok(_) => {
            tracing::info!(csr = %name, requester = %username, "approved certificate signing request");
            Ok(false)
        }
        Err(kube::Error::Api(s)) if s.code == 409 || s.code == 404 => Ok(false),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{NodeAddress, NodeStatus};

    use super::*;

    fn info(cn: &str, ips: &[&str], dns: &[&str]) -> CsrInfo {
        CsrInfo {
            common_name: cn.into(),
            organizations: vec!["system:nodes".into()],
            ip_addresses: ips.iter().filter_map(|i| i.parse().ok()).collect(),
            dns_names: dns.iter().map(|d| d.to_string()).collect(),
            other_names: vec![],
        }
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn node(ip: &str) -> Node {
        Node {
            status: Some(NodeStatus {
                addresses: Some(vec![NodeAddress {
                    type_: "InternalIP".into(),
                    address: ip.into(),
                }]),
                ..NodeStatus::default()
            }),
            ..Node::default()
        }
    }

    #[test]
    fn bootstrappers_get_node_client_certificates() {
        let client = strings(&["digital signature", "client auth"]);
        let boot = strings(&["system:bootstrappers", "system:authenticated"]);
        let i = info("system:node:n1", &[], &[]);
        let d = decide(
            KUBELET_CLIENT_SIGNER,
            "system:bootstrap:abcdef",
            &boot,
            &client,
            &i,
            None,
        );
        assert!(matches!(d, Decision::Approve(_)));
        let someone = strings(&["system:authenticated"]);
        let d = decide(KUBELET_CLIENT_SIGNER, "alice", &someone, &client, &i, None);
        assert_eq!(d, Decision::Leave);
        let admin = CsrInfo {
            organizations: vec!["system:masters".into()],
            ..i.clone()
        };
        let d = decide(
            KUBELET_CLIENT_SIGNER,
            "system:bootstrap:abcdef",
            &boot,
            &client,
            &admin,
            None,
        );
        assert_eq!(
            d,
            Decision::Leave,
            "a bootstrap token cannot get a system:masters certificate"
        );
        let node_renews = strings(&["system:nodes"]);
        let d = decide(
            KUBELET_CLIENT_SIGNER,
            "system:node:n1",
            &node_renews,
            &client,
            &i,
            None,
        );
        assert!(matches!(d, Decision::Approve(_)));
        let d = decide(
            KUBELET_CLIENT_SIGNER,
            "system:node:n2",
            &node_renews,
            &client,
            &i,
            None,
        );
        assert_eq!(d, Decision::Leave, "a node cannot get another node's certificate");
    }

    #[test]
    fn serving_certificates_only_for_the_nodes_own_names() {
        let serving = strings(&["digital signature", "server auth"]);
        let nodes = strings(&["system:nodes"]);
        let i = info("system:node:n1", &["10.0.0.2"], &["n1"]);
        let d = decide(
            KUBELET_SERVING_SIGNER,
            "system:node:n1",
            &nodes,
            &serving,
            &i,
            None,
        );
        assert_eq!(d, Decision::Wait, "no Node yet");
        let n = node("10.0.0.2");
        let d = decide(
            KUBELET_SERVING_SIGNER,
            "system:node:n1",
            &nodes,
            &serving,
            &i,
            Some(&n),
        );
        assert!(matches!(d, Decision::Approve(_)));
        let other_ip = info("system:node:n1", &["10.0.0.9"], &[]);
        let d = decide(
            KUBELET_SERVING_SIGNER,
            "system:node:n1",
            &nodes,
            &serving,
            &other_ip,
            Some(&n),
        );
        assert_eq!(d, Decision::Wait);
        let other_name = info("system:node:n1", &["10.0.0.2"], &["kubernetes.default"]);
        let d = decide(
            KUBELET_SERVING_SIGNER,
            "system:node:n1",
            &nodes,
            &serving,
            &other_name,
            Some(&n),
        );
        assert_eq!(d, Decision::Leave);
        let boot = strings(&["system:bootstrappers"]);
        let d = decide(
            KUBELET_SERVING_SIGNER,
            "system:bootstrap:abcdef",
            &boot,
            &serving,
            &i,
            Some(&n),
        );
        assert_eq!(d, Decision::Leave);
    }
}
