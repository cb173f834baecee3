//! Reading back an existing PEM certificate: subject, issuer, SANs and expiry,
//! to decide at start whether it can be reused.

use std::collections::BTreeSet;
use std::path::Path;

use x509_parser::extensions::GeneralName;

use super::{PkiError, San};

/// What the PKI needs to know about a certificate on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    /// The subject's first CN (empty if none).
    pub common_name: String,
    /// The subject's O attributes, in order.
    pub organizations: Vec<String>,
    /// DNS and IP SANs.
    pub sans: BTreeSet<San>,
    /// DER of the subject and issuer names, to match a leaf to its CA.
    pub subject_raw: Vec<u8>,
    pub issuer_raw: Vec<u8>,
    /// `notAfter` as Unix seconds.
    pub not_after: i64,
    /// The subject public key (for EC keys, the encoded point).
    pub public_key_raw: Vec<u8>,
}

impl CertInfo {
    /// True when the certificate is expired or expires within `days`.
    pub fn expires_within(&self, days: i64) -> bool {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        self.not_after - now < days * 86_400
    }
}

/// Parses the first certificate of a PEM text; `path` is for error messages.
pub fn inspect(path: &Path, pem: &str) -> Result<CertInfo, PkiError> {
    let bad = |detail: String| PkiError::Parse {
        path: path.to_path_buf(),
        detail,
    };
    let (_, pem) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).map_err(|e| bad(e.to_string()))?;
    let cert = pem.parse_x509().map_err(|e| bad(e.to_string()))?;
    let subject = cert.subject();
    let common_name = subject
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .unwrap_or_default()
        .to_string();
    let organizations = subject
        .iter_organization()
        .filter_map(|o| o.as_str().ok())
        .map(str::to_string)
        .collect();
    let mut sans = BTreeSet::new();
    if let Ok(Some(ext)) = cert.subject_alternative_name() {
        for name in &ext.value.general_names {
            match name {
                GeneralName::DNSName(dns) => {
                    sans.insert(San::Dns(dns.to_ascii_lowercase()));
                }
                GeneralName::IPAddress(bytes) => {
                    if let Ok(v4) = <[u8; 4]>::try_from(*bytes) {
                        sans.insert(San::Ip(v4.into()));
                    } else if let Ok(v6) = <[u8; 16]>::try_from(*bytes) {
                        sans.insert(San::Ip(v6.into()));
                    }
                }
                _ => {}
            }
        }
    }
    Ok(CertInfo {
        common_name,
        organizations,
        sans,
        subject_raw: subject.as_raw().to_vec(),
        issuer_raw: cert.issuer().as_raw().to_vec(),
        not_after: cert.validity().not_after.timestamp(),
        public_key_raw: cert.public_key().subject_public_key.data.to_vec(),
    })
}
