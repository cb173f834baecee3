//! certificates.k8s.io: the well-known signer names, key usages and
//! condition types of CertificateSigningRequests, reading the PKCS#10 request
//! a CSR carries, and the helpers the API server, the approver and the
//! signer share.
//!
//! Must not: sign or approve anything; that is the controllers' job.

use std::net::IpAddr;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;
use x509_parser::prelude::FromDer;

/// Signs client certificates for kubelets (CN `system:node:NAME`, O `system:nodes`).
pub const KUBELET_CLIENT_SIGNER: &str = "kubernetes.io/kube-apiserver-client-kubelet";
/// Signs serving certificates for kubelets' (skiff agents') node API.
pub const KUBELET_SERVING_SIGNER: &str = "kubernetes.io/kubelet-serving";
/// Signs client certificates the API server honours.
pub const API_CLIENT_SIGNER: &str = "kubernetes.io/kube-apiserver-client";
/// The group every node is in.
pub const NODES_GROUP: &str = "system:nodes";
/// The prefix of a node's user name.
pub const NODE_USER_PREFIX: &str = "system:node:";
/// The group of every bootstrap-token user.
pub const BOOTSTRAPPERS_GROUP: &str = "system:bootstrappers";

/// Every key usage upstream accepts in `spec.usages`, in its order.
pub const KEY_USAGES: [&str; 24] = [
    "signing",
    "digital signature",
    "content commitment",
    "key encipherment",
    "key agreement",
    "data encipherment",
    "cert sign",
    "crl sign",
    "encipher only",
    "decipher only",
    "any",
    "server auth",
    "client auth",
    "code signing",
    "email protection",
    "s/mime",
    "ipsec end system",
    "ipsec tunnel",
    "ipsec user",
    "timestamping",
    "ocsp signing",
    "microsoft sgc",
    "netscape sgc",
    "no expiration",
];

/// What a PKCS#10 request asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CsrInfo {
    /// The subject's CN.
    pub common_name: String,
    /// The subject's O attributes, in order.
    pub organizations: Vec<String>,
    /// DNS subject alternative names.
    pub dns_names: Vec<String>,
    /// IP subject alternative names.
    pub ip_addresses: Vec<IpAddr>,
    /// E-mail and URI subject alternative names (never allowed for node certificates).
    pub other_names: Vec<String>,
}

/// Why a request could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CsrError {
    #[error("PEM block type must be CERTIFICATE REQUEST")]
    NotPem,
    #[error("x509: malformed certificate request: {0}")]
    Malformed(String),
}

/// Reads a PEM `CERTIFICATE REQUEST` (the bytes of `spec.request`).
pub fn parse_request(pem: &[u8]) -> Result<CsrInfo, CsrError> {
    let (_, block) = x509_parser::pem::parse_x509_pem(pem).map_err(|_| CsrError::NotPem)?;
    if block.label != "CERTIFICATE REQUEST" {
        return Err(CsrError::NotPem);
    }
    let (_, req) = x509_parser::certification_request::X509CertificationRequest::from_der(&block.contents)
        .map_err(|e| CsrError::Malformed(e.to_string()))?;
    let subject = &req.certification_request_info.subject;
    let text = |a: &x509_parser::x509::AttributeTypeAndValue<'_>| a.as_str().ok().map(str::to_string);
    let mut info = CsrInfo {
        common_name: subject
            .iter_common_name()
            .next()
            .and_then(text)
            .unwrap_or_default(),
        organizations: subject.iter_organization().filter_map(text).collect(),
        ..CsrInfo::default()
    };
    use x509_parser::extensions::{GeneralName, ParsedExtension};
    for ext in req.requested_extensions().into_iter().flatten() {
        let ParsedExtension::SubjectAlternativeName(san) = ext else {
            continue;
        };
        for name in &san.general_names {
            match name {
                GeneralName::DNSName(d) => info.dns_names.push((*d).to_string()),
                GeneralName::IPAddress(b) => match ip_from_bytes(b) {
                    Some(ip) => info.ip_addresses.push(ip),
                    None => info.other_names.push(format!("{b:?}")),
                },
                other => info.other_names.push(other.to_string()),
            }
        }
    }
    Ok(info)
}

fn ip_from_bytes(b: &[u8]) -> Option<IpAddr> {
    match b.len() {
        4 => <[u8; 4]>::try_from(b).ok().map(IpAddr::from),
        16 => <[u8; 16]>::try_from(b).ok().map(IpAddr::from),
        _ => None,
    }
}

/// The PEM bytes of a CSR object's `spec.request` (base64 in JSON).
pub fn request_bytes(csr: &Value) -> Option<Vec<u8>> {
    let text = csr.pointer("/spec/request")?.as_str()?;
    STANDARD.decode(text).ok()
}

/// True when the CSR has a condition of `type_` with status True.
pub fn has_condition(csr: &Value, type_: &str) -> bool {
    csr.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| cs.iter().any(|c| c["type"] == type_ && c["status"] == "True"))
}

/// True once the CSR carries a certificate.
pub fn is_issued(csr: &Value) -> bool {
    csr.pointer("/status/certificate")
        .and_then(Value::as_str)
        .is_some_and(|c| !c.is_empty())
}

/// The node a `system:node:NAME` user name is, if it is one.
pub fn node_of_user(user: &str) -> Option<&str> {
    user.strip_prefix(NODE_USER_PREFIX).filter(|n| !n.is_empty())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_not_a_request() {
        assert_eq!(parse_request(b"hello"), Err(CsrError::NotPem));
        let cert = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        assert_eq!(parse_request(cert), Err(CsrError::NotPem));
        let bad = b"-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n";
        assert!(matches!(parse_request(bad), Err(CsrError::Malformed(_))));
    }

    #[test]
    fn node_users() {
        assert_eq!(node_of_user("system:node:n1"), Some("n1"));
        assert_eq!(node_of_user("system:node:"), None);
        assert_eq!(node_of_user("alice"), None);
    }

    #[test]
    fn conditions_and_certificate() {
        let csr = serde_json::json!({"status": {"conditions": [{"type": "Approved", "status": "True"}], "certificate": "eA=="}});
        assert!(has_condition(&csr, "Approved"));
        assert!(!has_condition(&csr, "Denied"));
        assert!(is_issued(&csr));
        assert!(!is_issued(&serde_json::json!({})));
    }
}
