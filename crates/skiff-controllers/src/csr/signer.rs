//! CSR signer (upstream's csrsigning controller): signs approved
//! `kube-apiserver-client-kubelet` and `kubelet-serving` requests with the
//! cluster CA through a [`CsrSigner`] and puts the certificate in
//! `status.certificate`. A request that breaks its signer's rules gets a
//! `Failed` condition instead (reason `SignerValidationFailure`).

use k8s_openapi::ByteString;
use k8s_openapi::api::certificates::v1::{
    CertificateSigningRequest, CertificateSigningRequestCondition, CertificateSigningRequestStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, PostParams};
use skiff_api::certificates::{CsrInfo, KUBELET_CLIENT_SIGNER, KUBELET_SERVING_SIGNER};

use super::{CsrSigner, Profile, SignRequest, rules};
use crate::manager::Error;

/// What the signer does with an approved request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Sign it with this profile.
    Sign(Profile),
    /// Mark it Failed with this message.
    Fail(String),
    /// Not for this signer.
    Skip,
}

/// The plan for an approved, unsigned request.
pub fn plan(signer: &str, usages: &[String], info: &CsrInfo) -> Plan {
    match signer {
        KUBELET_CLIENT_SIGNER => match rules::kubelet_client(info, usages) {
            Ok(_) => Plan::Sign(Profile::Client),
            Err(e) => Plan::Fail(e.to_string()),
        },
        KUBELET_SERVING_SIGNER => match rules::kubelet_serving(info, usages) {
            Ok(_) => Plan::Sign(Profile::Serving),
            Err(e) => Plan::Fail(e.to_string()),
        },
        _ => Plan::Skip,
    }
}

/// Signs (or fails) one approved request without a certificate.
pub async fn reconcile(
    client: &kube::Client,
    signer: &dyn CsrSigner,
    csr: &CertificateSigningRequest,
    request_pem: &str,
    info: &CsrInfo,
) -> Result<(), Error> {
    let name = csr.metadata.name.clone().unwrap_or_default();
    let usages = csr.spec.usages.clone().unwrap_or_default();
    let mut out = csr.clone();
    let status = out
        .status
        .get_or_insert_with(CertificateSigningRequestStatus::default);
    match plan(&csr.spec.signer_name, &usages, info) {
        Plan::Skip => return Ok(()),
        Plan::Sign(profile) => {
            let req = SignRequest {
                profile,
                request_pem,
                info,
                expiration_seconds: csr.spec.expiration_seconds,
            };
            match signer.sign(&req) {
                Ok(pem) => status.certificate = Some(ByteString(pem.into_bytes())),
                Err(err) => {
                    tracing::warn!(csr = %name, %err, "could not sign the certificate signing request");
                    return Ok(());
                }
            }
        }
        Plan::Fail(message) => {
            let now = Time(jiff::Timestamp::now());
            status
                .conditions
                .get_or_insert_with(Vec::new)
                .push(CertificateSigningRequestCondition {
                    type_: "Failed".into(),
                    status: "True".into(),
                    reason: Some("SignerValidationFailure".into()),
                    message: Some(message),
                    last_update_time: Some(now.clone()),
                    last_transition_time: Some(now),
                });
        }
    }
    let api: Api<CertificateSigningRequest> = Api::all(client.clone());
    match api.replace_status(&name, &PostParams::default(), &out).await {
        Ok(_) => {
            tracing::info!(csr = %name, "signed certificate signing request");
            Ok(())
        }
        Err(kube::Error::Api(s)) if s.code == 409 || s.code == 404 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_conforming_node_requests_are_signed() {
        let info = CsrInfo {
            common_name: "system:node:n1".into(),
            organizations: vec!["system:nodes".into()],
            ..CsrInfo::default()
        };
        let client = vec!["client auth".to_string()];
        assert_eq!(
            plan(KUBELET_CLIENT_SIGNER, &client, &info),
            Plan::Sign(Profile::Client)
        );
        assert!(matches!(
            plan(KUBELET_SERVING_SIGNER, &client, &info),
            Plan::Fail(_)
        ));
        assert_eq!(plan("example.com/other", &client, &info), Plan::Skip);
        let admin = CsrInfo {
            common_name: "system:admin".into(),
            ..info
        };
        assert!(matches!(
            plan(KUBELET_CLIENT_SIGNER, &client, &admin),
            Plan::Fail(_)
        ));
    }
}
