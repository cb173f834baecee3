//! What a node's certificate request must look like, shared by the approver
//! and the signer (upstream's `IsKubeletClientCSR` / `IsKubeletServingCSR`):
//! CN `system:node:NAME`, O exactly `system:nodes`, the usages of the
//! signer, and for client certificates no SANs, for serving ones DNS/IP SANs only.

use skiff_api::certificates::{CsrInfo, NODES_GROUP, node_of_user};

const CLIENT_USAGES: [&str; 3] = ["digital signature", "key encipherment", "client auth"];
const SERVING_USAGES: [&str; 3] = ["digital signature", "key encipherment", "server auth"];

/// Why a request is not a node certificate request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    #[error("subject CN must be system:node:<name>, got {0:?}")]
    CommonName(String),
    #[error("subject O must be exactly [system:nodes], got {0:?}")]
    Organization(Vec<String>),
    #[error("usages must be a subset of {allowed:?} and include {required:?}, got {got:?}")]
    Usages {
        allowed: &'static [&'static str],
        required: &'static str,
        got: Vec<String>,
    },
    #[error("a kubelet client certificate may not carry subject alternative names")]
    ClientSans,
    #[error("a kubelet serving certificate needs at least one DNS or IP name, and only those")]
    ServingSans,
}

fn node_subject(info: &CsrInfo) -> Result<&str, RuleError> {
    let node =
        node_of_user(&info.common_name).ok_or_else(|| RuleError::CommonName(info.common_name.clone()))?;
    if info.organizations != [NODES_GROUP] {
        return Err(RuleError::Organization(info.organizations.clone()));
    }
    Ok(node)
}

fn usages_ok(
    usages: &[String],
    allowed: &'static [&'static str],
    required: &'static str,
) -> Result<(), RuleError> {
    let fine = usages.iter().all(|u| allowed.contains(&u.as_str())) && usages.iter().any(|u| u == required);
    if fine {
        Ok(())
    } else {
        Err(RuleError::Usages {
            allowed,
            required,
            got: usages.to_vec(),
        })
    }
}

/// Checks a `kube-apiserver-client-kubelet` request; returns the node name.
pub fn kubelet_client<'a>(info: &'a CsrInfo, usages: &[String]) -> Result<&'a str, RuleError> {
    let node = node_subject(info)?;
    usages_ok(usages, &CLIENT_USAGES, "client auth")?;
    if !info.dns_names.is_empty() || !info.ip_addresses.is_empty() || !info.other_names.is_empty() {
        return Err(RuleError::ClientSans);
    }
    Ok(node)
}

/// Checks a `kubelet-serving` request; returns the node name.
pub fn kubelet_serving<'a>(info: &'a CsrInfo, usages: &[String]) -> Result<&'a str, RuleError> {
    let node = node_subject(info)?;
    usages_ok(usages, &SERVING_USAGES, "server auth")?;
    if !info.other_names.is_empty() || (info.dns_names.is_empty() && info.ip_addresses.is_empty()) {
        return Err(RuleError::ServingSans);
    }
    Ok(node)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(cn: &str, orgs: &[&str]) -> CsrInfo {
        CsrInfo {
            common_name: cn.into(),
            organizations: orgs.iter().map(|s| s.to_string()).collect(),
            ..CsrInfo::default()
        }
    }

    fn usages(u: &[&str]) -> Vec<String> {
        u.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn client_requests_must_be_a_node_identity_without_names() {
        let ok = info("system:node:n1", &["system:nodes"]);
        let u = usages(&["digital signature", "client auth"]);
        assert_eq!(kubelet_client(&ok, &u), Ok("n1"));
        assert!(matches!(
            kubelet_client(&info("system:admin", &["system:nodes"]), &u),
            Err(RuleError::CommonName(_))
        ));
        assert!(matches!(
            kubelet_client(&info("system:node:n1", &["system:masters"]), &u),
            Err(RuleError::Organization(_))
        ));
        assert!(matches!(
            kubelet_client(&info("system:node:n1", &["system:nodes", "system:masters"]), &u),
            Err(RuleError::Organization(_))
        ));
        let server = usages(&["digital signature", "server auth"]);
        assert!(matches!(
            kubelet_client(&ok, &server),
            Err(RuleError::Usages { .. })
        ));
        let mut named = ok.clone();
        named.dns_names.push("n1".into());
        assert_eq!(kubelet_client(&named, &u), Err(RuleError::ClientSans));
    }

    #[test]
    fn serving_requests_need_names() {
        let mut ok = info("system:node:n1", &["system:nodes"]);
        let u = usages(&["digital signature", "key encipherment", "server auth"]);
        assert_eq!(kubelet_serving(&ok, &u), Err(RuleError::ServingSans));
        ok.ip_addresses
            .push("10.0.0.2".parse().unwrap_or(std::net::IpAddr::from([0, 0, 0, 0])));
        assert_eq!(kubelet_serving(&ok, &u), Ok("n1"));
        ok.other_names.push("email:a@b".into());
        assert_eq!(kubelet_serving(&ok, &u), Err(RuleError::ServingSans));
    }
}
