//! Certificate signing requests: the approver ([`approver`]) and the signer
//! ([`signer`]) of nodes' certificates, run together by [`run`] over one
//! watch of CertificateSigningRequests (plus a retry tick for requests that
//! wait for their Node).
//!
//! The signing key stays outside this crate: [`ControllerConfig::csr_signer`]
//! is a [`CsrSigner`] the server builds from the cluster CA. Without one the
//! controllers do nothing.
//!
//! Must not: sign or approve anything the rules in [`rules`] do not allow.

pub mod approver;
pub mod rules;
pub mod signer;

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
use kube::api::{Api, ListParams};
use kube::runtime::watcher;
use skiff_api::certificates::CsrInfo;

use crate::manager::{ControllerConfig, Error};

/// How often requests that wait (for their Node) are looked at again.
const RETRY: Duration = Duration::from_secs(1);

/// Which kind of certificate to issue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// A client certificate (`client auth`), subject from the request.
    Client,
    /// A serving certificate (`server auth`), subject and names from the request.
    Serving,
}

/// One certificate to sign.
#[derive(Debug)]
pub struct SignRequest<'a> {
    pub profile: Profile,
    /// The PEM `CERTIFICATE REQUEST`.
    pub request_pem: &'a str,
    /// What it asks for (already checked against the signer's rules).
    pub info: &'a CsrInfo,
    /// `spec.expirationSeconds`, a hint the signer may honour.
    pub expiration_seconds: Option<i32>,
}

/// Signs certificates with the cluster CA; returns the PEM certificate.
pub trait CsrSigner: Send + Sync + std::fmt::Debug {
    /// Signs `req`, or says why it cannot.
    fn sign(&self, req: &SignRequest<'_>) -> Result<String, String>;
}

/// Approves and signs node certificate requests until a watch fails.
pub async fn run(client: kube::Client, cfg: Arc<ControllerConfig>) -> Result<(), Error> {
    let Some(signer) = cfg.csr_signer.clone() else {
        std::future::pending::<()>().await;
        return Ok(());
    };
    let api: Api<CertificateSigningRequest> = Api::all(client.clone());
    let mut events = watcher::watcher(api.clone(), watcher::Config::default()).boxed();
    let mut tick = tokio::time::interval(RETRY);
    let mut waiting = true;
    loop {
        tokio::select! {
            ev = events.next() => match ev {
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e.into()),
                None => return Ok(()),
            },
            _ = tick.tick() => if !waiting { continue },
        }
        waiting = false;
        for csr in api.list(&ListParams::default()).await?.items {
            waiting |= sync_one(&client, signer.as_ref(), &csr).await?;
        }
    }
}

/// Approves or signs one request; true when it waits for something.
async fn sync_one(
    client: &kube::Client,
    signer: &dyn CsrSigner,
    csr: &CertificateSigningRequest,
) -> Result<bool, Error> {
    let status = csr.status.as_ref();
    if status.is_some_and(|s| s.certificate.as_ref().is_some_and(|c| !c.0.is_empty())) {
        return Ok(false);
    }
    let has = |ty: &str| {
        status
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| cs.iter().any(|c| c.type_ == ty && c.status == "True"))
    };
    if has("Denied") || has("Failed") {
        return Ok(false);
    }
    let pem = String::from_utf8_lossy(&csr.spec.request.0).into_owned();
    let Ok(info) = skiff_api::certificates::parse_request(pem.as_bytes()) else {
        return Ok(false);
    };
    if has("Approved") {
        signer::reconcile(client, signer, csr, &pem, &info).await?;
        Ok(false)
    } else {
        approver::reconcile(client, csr, &info).await
    }
}
