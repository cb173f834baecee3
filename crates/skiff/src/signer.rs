//! The cluster CA as the CSR signer of the controller manager: turns a
//! checked request into a client or serving certificate with
//! [`Pki::sign_client_csr`] / [`Pki::sign_serving_csr`].

use std::sync::Arc;

use skiff_apiserver::pki::{Pki, San};
use skiff_controllers::csr::{CsrSigner, Profile, SignRequest};

/// Signs with the server's cluster CA.
#[derive(Debug)]
pub struct PkiSigner(pub Arc<Pki>);

impl CsrSigner for PkiSigner {
    fn sign(&self, req: &SignRequest<'_>) -> Result<String, String> {
        let info = req.info;
        let signed = match req.profile {
            Profile::Client => {
                self.0
                    .sign_client_csr(req.request_pem, &info.common_name, &info.organizations)
            }
            Profile::Serving => {
                let mut sans: Vec<San> = info.ip_addresses.iter().map(|ip| San::Ip(*ip)).collect();
                for name in &info.dns_names {
                    sans.push(San::parse(name).map_err(|e| e.to_string())?);
                }
                self.0
                    .sign_serving_csr(req.request_pem, &info.common_name, &info.organizations, &sans)
            }
        };
        signed.map_err(|e| e.to_string())
    }
}
