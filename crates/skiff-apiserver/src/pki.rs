//! The cluster PKI: one CA, the API server's serving certificate and the
//! admin client certificate, created on first start under `DATA_DIR/tls/`
//! and reused on later starts.
//!
//! A leaf certificate is re-issued when its file is missing or unreadable,
//! when it expires within [`RENEW_BEFORE_DAYS`], when the CA was (re)created,
//! or (serving certificate only) when the wanted set of SANs changed. Keys are
//! ECDSA P-256 (rcgen with ring) and written with mode 0600.
//!
//! Must not: decide who may get a certificate. [`Pki::issue_client`] and
//! [`Pki::sign_client_csr`] sign what the caller asks for; the caller
//! authorises it.

mod files;
mod host;
mod inspect;
mod names;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SerialNumber,
};
use time::{Duration, OffsetDateTime};

pub use files::write_atomic;
pub use host::host_addresses;
pub use inspect::{CertInfo, inspect};
pub use names::{San, serving_sans};

/// Lifetime of the CA.
pub const CA_VALIDITY_DAYS: i64 = 3650;
/// Lifetime of leaf certificates (serving, clients).
pub const LEAF_VALIDITY_DAYS: i64 = 365;
/// Leaf certificates expiring within this many days are re-issued at start.
/// The CA is never replaced while its files exist.
pub const RENEW_BEFORE_DAYS: i64 = 90;

/// The user name of the admin client certificate.
pub const ADMIN_USER: &str = "system:admin";
/// The group of the admin client certificate (bypasses authorization upstream).
pub const ADMIN_GROUP: &str = "system:masters";

/// Errors creating, loading or using the PKI.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("generating {what}: {source}")]
    Generate {
        what: &'static str,
        #[source]
        source: rcgen::Error,
    },
    #[error("{path}: not a usable PEM file: {detail}")]
    Parse { path: PathBuf, detail: String },
    #[error("invalid subject alternative name {0:?}")]
    InvalidSan(String),
    #[error("a client certificate holds at most 2 groups, {0} requested")]
    TooManyGroups(usize),
    #[error("invalid certificate signing request: {0}")]
    Csr(#[source] rcgen::Error),
}

/// A PEM certificate with its PEM private key.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct CertKey {
    pub cert_pem: String,
    pub key_pem: String,
}

impl std::fmt::Debug for CertKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertKey")
            .field("cert_pem", &self.cert_pem)
            .field("key_pem", &"[elided]")
            .finish()
    }
}

/// The loaded cluster PKI.
pub struct Pki {
    dir: PathBuf,
    ca_cert_pem: String,
    issuer: Issuer<'static, KeyPair>,
    serving: CertKey,
    admin: CertKey,
}

impl std::fmt::Debug for Pki {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pki")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

const CA: &str = "ca";
const SERVING: &str = "serving";
const ADMIN: &str = "admin";

impl Pki {
    /// Loads the PKI under `data_dir/tls/`, creating or re-issuing what is
    /// missing, expiring or (for the serving certificate) has other SANs than `sans`.
    pub fn load_or_create(data_dir: &Path, sans: &[San]) -> Result<Pki, PkiError> {
        let dir = data_dir.join("tls");
        files::create_private_dir(&dir)?;
        let (ca_cert_pem, ca_key, fresh_ca) = match files::read_pair(&dir, CA)? {
            Some(pair) => {
                let key = parse_key(&dir.join("ca.key"), &pair.key_pem)?;
                (pair.cert_pem, key, false)
            }
            None => {
                let (pem, key) = new_ca()?;
                files::write_pair(&dir, CA, &pem, &key.serialize_pem())?;
                tracing::info!(dir = %dir.display(), "created cluster CA");
                (pem, key, true)
            }
        };
        let ca_path = dir.join("ca.crt");
        let ca_subject = inspect::inspect(&ca_path, &ca_cert_pem)?.subject_raw;
        let issuer = Issuer::from_ca_cert_pem(&ca_cert_pem, ca_key).map_err(|e| PkiError::Parse {
            path: ca_path,
            detail: e.to_string(),
        })?;
        let mut pki = Pki {
            dir,
            ca_cert_pem,
            issuer,
            serving: CertKey::default(),
            admin: CertKey::default(),
        };
        let wanted: BTreeSet<San> = sans.iter().cloned().collect();
        let reuse = |info: &CertInfo| {
            !fresh_ca && info.issuer_raw == ca_subject && !info.expires_within(RENEW_BEFORE_DAYS)
        };
        pki.serving = pki.ensure_leaf(
            SERVING,
            |info| reuse(info) && info.sans == wanted,
            |pki| pki.issue_serving(sans),
        )?;
        let admin_groups = [ADMIN_GROUP.to_string()];
        pki.admin = pki.ensure_leaf(
            ADMIN,
            |info| reuse(info) && info.common_name == ADMIN_USER && info.organizations == admin_groups,
            |pki| pki.issue_client(ADMIN_USER, &admin_groups),
        )?;
        Ok(pki)
    }

    /// Keeps the leaf `name` if its files are there, its key is the
    /// certificate's and `keep` accepts it; otherwise issues and writes a new one.
    fn ensure_leaf(
        &self,
        name: &str,
        keep: impl Fn(&CertInfo) -> bool,
        issue: impl Fn(&Pki) -> Result<CertKey, PkiError>,
    ) -> Result<CertKey, PkiError> {
        let cert_path = self.dir.join(format!("{name}.crt"));
        if let Some(pair) = files::read_pair(&self.dir, name)? {
            let key_matches = |info: &CertInfo| {
                KeyPair::from_pem(&pair.key_pem).is_ok_and(|key| key.public_key_raw() == info.public_key_raw)
            };
            match inspect::inspect(&cert_path, &pair.cert_pem) {
                Ok(info) if key_matches(&info) && keep(&info) => return Ok(pair),
                Ok(_) => {}
                Err(err) => tracing::warn!(%err, "re-issuing unreadable certificate"),
            }
        }
        let pair = issue(self)?;
        files::write_pair(&self.dir, name, &pair.cert_pem, &pair.key_pem)?;
        tracing::info!(path = %cert_path.display(), "issued certificate");
        Ok(pair)
    }

    /// The directory holding the PEM files (`DATA_DIR/tls`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The CA certificate, PEM.
    pub fn ca_cert_pem(&self) -> &str {
        &self.ca_cert_pem
    }

    /// The API server's serving certificate and key.
    pub fn serving(&self) -> &CertKey {
        &self.serving
    }

    /// The admin client certificate (CN=system:admin, O=system:masters) and key.
    pub fn admin(&self) -> &CertKey {
        &self.admin
    }

    /// Issues a serving certificate for `sans`, signed by the CA.
    pub fn issue_serving(&self, sans: &[San]) -> Result<CertKey, PkiError> {
        let mut params = leaf_params("kube-apiserver", &[])?;
        params.subject_alt_names = sans.iter().map(San::to_rcgen).collect::<Result<_, _>>()?;
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        self.sign_new_key(params, "serving certificate")
    }

    /// Issues a client certificate for user `name` in `groups` (CN = name,
    /// one O per group, at most two groups), signed by the CA, with a fresh key.
    pub fn issue_client(&self, name: &str, groups: &[String]) -> Result<CertKey, PkiError> {
        let params = client_params(name, groups)?;
        self.sign_new_key(params, "client certificate")
    }

    /// Signs the public key of a PEM certificate signing request as a client
    /// certificate for `name` in `groups`. The subject and extensions the CSR
    /// asks for are ignored: the caller decides the identity. Returns the PEM certificate.
    pub fn sign_client_csr(&self, csr_pem: &str, name: &str, groups: &[String]) -> Result<String, PkiError> {
        let mut csr = CertificateSigningRequestParams::from_pem(csr_pem).map_err(PkiError::Csr)?;
        csr.params = client_params(name, groups)?;
        let cert = csr.signed_by(&self.issuer).map_err(|source| PkiError::Generate {
            what: "client certificate",
            source,
        })?;
        Ok(cert.pem())
    }

    /// Signs the public key of a PEM certificate signing request as a serving
    /// certificate for `sans`, with CN `name` and one O per group. As with
    /// [`Pki::sign_client_csr`], the caller decides what is asked for.
    pub fn sign_serving_csr(
        &self,
        csr_pem: &str,
        name: &str,
        groups: &[String],
        sans: &[San],
    ) -> Result<String, PkiError> {
        let mut csr = CertificateSigningRequestParams::from_pem(csr_pem).map_err(PkiError::Csr)?;
        let mut params = leaf_params(name, groups)?;
        params.subject_alt_names = sans.iter().map(San::to_rcgen).collect::<Result<_, _>>()?;
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        csr.params = params;
        let cert = csr.signed_by(&self.issuer).map_err(|source| PkiError::Generate {
            what: "serving certificate",
            source,
        })?;
        Ok(cert.pem())
    }

    fn sign_new_key(&self, params: CertificateParams, what: &'static str) -> Result<CertKey, PkiError> {
        let key = new_key(what)?;
        let cert = params
            .signed_by(&key, &self.issuer)
            .map_err(|source| PkiError::Generate { what, source })?;
        Ok(CertKey {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

fn new_key(what: &'static str) -> Result<KeyPair, PkiError> {
    KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
        .map_err(|source| PkiError::Generate { what, source })
}

fn parse_key(path: &Path, pem: &str) -> Result<KeyPair, PkiError> {
    KeyPair::from_pem(pem).map_err(|e| PkiError::Parse {
        path: path.to_path_buf(),
        detail: e.to_string(),
    })
}

fn new_ca() -> Result<(String, KeyPair), PkiError> {
    let key = new_key("CA key")?;
    let now = OffsetDateTime::now_utc();
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, format!("skiff-ca@{}", now.unix_timestamp()));
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.not_before = now - Duration::hours(1);
    params.not_after = now + Duration::days(CA_VALIDITY_DAYS);
    params.serial_number = Some(random_serial());
    let cert = params.self_signed(&key).map_err(|source| PkiError::Generate {
        what: "CA certificate",
        source,
    })?;
    Ok((cert.pem(), key))
}

fn client_params(name: &str, groups: &[String]) -> Result<CertificateParams, PkiError> {
    let mut params = leaf_params(name, groups)?;
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    Ok(params)
}

fn leaf_params(common_name: &str, organizations: &[String]) -> Result<CertificateParams, PkiError> {
    let now = OffsetDateTime::now_utc();
    let mut params = CertificateParams::default();
    // rcgen keys a name's attributes by type, so a second O goes in under the
    // same OID spelled as a custom type; that is as many as it can hold.
    let org_types = [DnType::OrganizationName, DnType::CustomDnType(vec![2, 5, 4, 10])];
    if organizations.len() > org_types.len() {
        return Err(PkiError::TooManyGroups(organizations.len()));
    }
    let mut dn = DistinguishedName::new();
    for (org, ty) in organizations.iter().zip(org_types) {
        dn.push(ty, org.as_str());
    }
    dn.push(DnType::CommonName, common_name);
    params.distinguished_name = dn;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.use_authority_key_identifier_extension = true;
    params.not_before = now - Duration::hours(1);
    params.not_after = now + Duration::days(LEAF_VALIDITY_DAYS);
    params.serial_number = Some(random_serial());
    Ok(params)
}

/// A positive 128-bit serial number.
fn random_serial() -> SerialNumber {
    let mut bytes: [u8; 16] = rand::random();
    bytes[0] &= 0x7f;
    bytes[0] |= 0x01;
    SerialNumber::from_slice(&bytes)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
