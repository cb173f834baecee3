//! `kubectl get csr` columns: NAME AGE SIGNERNAME REQUESTOR
//! REQUESTEDDURATION CONDITION, as upstream's printer (conditions joined
//! with `,`, `Pending` when there is none, `Issued` once a certificate is set).

use serde_json::{Value, json};

use super::format::{age_of, human_duration, list, name, text};
use super::{AGE, Column, NAME, Printer, Row, col};
use crate::certificates;

const CSR: &[Column] = &[
    NAME,
    AGE,
    col(
        "SignerName",
        "string",
        "signerName indicates the requested signer, and is a qualified name.",
    ),
    col("Requestor", "string", "Name of the user which made this request."),
    col(
        "RequestedDuration",
        "string",
        "expirationSeconds is the requested duration of validity of the issued certificate.",
    ),
    col("Condition", "string", "State of the request."),
];

pub(super) fn printer(kind: &str) -> Option<Printer> {
    (kind == "CertificateSigningRequest").then_some(Printer {
        columns: CSR,
        row: csr,
    })
}

fn csr(obj: &Value, now: jiff::Timestamp) -> Row {
    let duration = obj
        .pointer("/spec/expirationSeconds")
        .and_then(Value::as_i64)
        .map_or_else(|| "<none>".to_string(), human_duration);
    vec![
        json!(name(obj)),
        json!(age_of(obj, now)),
        json!(text(obj, "/spec/signerName")),
        json!(text(obj, "/spec/username")),
        json!(duration),
        json!(condition(obj)),
    ]
    .into()
}

/// `Approved,Issued`, `Denied`, `Pending`...
pub(crate) fn condition(obj: &Value) -> String {
    let mut parts: Vec<&str> = list(obj, "/status/conditions")
        .iter()
        .filter_map(|c| c["type"].as_str())
        .collect();
    if parts.is_empty() {
        parts.push("Pending");
    }
    if certificates::is_issued(obj) {
        parts.push("Issued");
    }
    parts.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn condition_column() {
        assert_eq!(condition(&json!({})), "Pending");
        let approved = json!({"status": {"conditions": [{"type": "Approved", "status": "True"}]}});
        assert_eq!(condition(&approved), "Approved");
        let issued = json!({"status": {"conditions": [{"type": "Approved", "status": "True"}], "certificate": "eA=="}});
        assert_eq!(condition(&issued), "Approved,Issued");
    }

    #[test]
    fn row_has_requestor_and_duration() {
        let obj = json!({"metadata": {"name": "csr-1", "creationTimestamp": "2024-01-01T00:00:00Z"},
            "spec": {"signerName": "kubernetes.io/kube-apiserver-client-kubelet", "username": "system:bootstrap:abcdef", "expirationSeconds": 3600}});
        let now: jiff::Timestamp = "2024-01-01T00:00:30Z".parse().unwrap_or_default();
        let row = csr(&obj, now);
        assert_eq!(row.cells[3], "system:bootstrap:abcdef");
        assert_eq!(row.cells[4], "60m");
        assert_eq!(row.cells[5], "Pending");
    }
}
