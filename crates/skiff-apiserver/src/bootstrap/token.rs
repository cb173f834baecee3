//! Bootstrap tokens and join tokens as text: `ID.SECRET` (`[a-z0-9]{6}` dot
//! `[a-z0-9]{16}`, upstream's format), the Secret that stores one
//! (`kube-system/bootstrap-token-ID`, type `bootstrap.kubernetes.io/token`),
//! and skiff's join token `K10<sha256 of the CA certificate's DER>::ID.SECRET`
//! that carries the CA's fingerprint beside the token, as k3s' does.
//!
//! Must not: reach the store; callers read and write the Secret.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use serde_json::{Value, json};

/// The Secret type of bootstrap tokens.
pub const SECRET_TYPE: &str = "bootstrap.kubernetes.io/token";
/// Bootstrap-token Secrets are named this plus the token ID.
pub const SECRET_PREFIX: &str = "bootstrap-token-";
/// Bootstrap-token Secrets live in this namespace.
pub const SECRET_NAMESPACE: &str = "kube-system";
/// The prefix of a bootstrap token's user name (then the token ID).
pub const USER_PREFIX: &str = "system:bootstrap:";
/// The group of every bootstrap-token user.
pub const GROUP: &str = "system:bootstrappers";
/// The extra group skiff's tokens carry, as kubeadm's default node token.
pub const NODE_TOKEN_GROUP: &str = "system:bootstrappers:skiff:default-node-token";
/// How a join token starts (k3s' version marker).
pub const JOIN_PREFIX: &str = "K10";

const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";

/// Why a token text was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("a bootstrap token has the form [a-z0-9]{{6}}.[a-z0-9]{{16}}")]
    BadBootstrapToken,
    #[error("a join token has the form K10<sha256 of the CA certificate>::<id>.<secret>")]
    BadJoinToken,
    #[error("the CA certificate is not PEM")]
    BadCa,
}

/// A bootstrap token `ID.SECRET`.
#[derive(Clone, PartialEq, Eq)]
pub struct BootstrapToken {
    /// The public part, `[a-z0-9]{6}`.
    pub id: String,
    /// The secret part, `[a-z0-9]{16}`.
    pub secret: String,
}

impl fmt::Debug for BootstrapToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BootstrapToken")
            .field("id", &self.id)
            .field("secret", &"[elided]")
            .finish()
    }
}

impl fmt::Display for BootstrapToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.id, self.secret)
    }
}

fn is_token_part(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| ALPHABET.contains(&b))
}

fn random_part(len: usize) -> String {
    (0..len)
        .map(|_| ALPHABET[rand::random_range(0..ALPHABET.len())] as char)
        .collect()
}

impl BootstrapToken {
    /// Parses `ID.SECRET`.
    pub fn parse(text: &str) -> Result<BootstrapToken, TokenError> {
        let (id, secret) = text.trim().split_once('.').ok_or(TokenError::BadBootstrapToken)?;
        if !is_token_part(id, 6) || !is_token_part(secret, 16) {
            return Err(TokenError::BadBootstrapToken);
        }
        Ok(BootstrapToken {
            id: id.to_string(),
            secret: secret.to_string(),
        })
    }

    /// A new random token.
    pub fn generate() -> BootstrapToken {
        BootstrapToken {
            id: random_part(6),
            secret: random_part(16),
        }
    }

    /// The name of the Secret that stores it.
    pub fn secret_name(&self) -> String {
        format!("{SECRET_PREFIX}{}", self.id)
    }

    /// The user it authenticates as.
    pub fn user_name(&self) -> String {
        format!("{USER_PREFIX}{}", self.id)
    }

    /// The Secret that stores it for authentication (upstream's keys),
    /// expiring at `expiration` when given.
    pub fn secret(&self, expiration: Option<jiff::Timestamp>, description: &str) -> Value {
        let mut data = serde_json::Map::new();
        let mut put = |k: &str, v: &str| {
            data.insert(k.to_string(), json!(STANDARD.encode(v)));
        };
        put("token-id", &self.id);
        put("token-secret", &self.secret);
        put("usage-bootstrap-authentication", "true");
        put("usage-bootstrap-signing", "true");
        put("auth-extra-groups", NODE_TOKEN_GROUP);
        if !description.is_empty() {
            put("description", description);
        }
        if let Some(at) = expiration {
            put("expiration", &at.strftime("%Y-%m-%dT%H:%M:%SZ").to_string());
        }
        json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": self.secret_name(), "namespace": SECRET_NAMESPACE},
            "type": SECRET_TYPE,
            "data": data,
        })
    }
}

/// The hex SHA-256 of the first certificate in `ca_pem`, in DER.
pub fn ca_hash(ca_pem: &str) -> Result<String, TokenError> {
    let der = CertificateDer::pem_slice_iter(ca_pem.as_bytes())
        .next()
        .and_then(Result::ok)
        .ok_or(TokenError::BadCa)?;
    let digest = ring::digest::digest(&ring::digest::SHA256, der.as_ref());
    Ok(digest.as_ref().iter().map(|b| format!("{b:02x}")).collect())
}

/// A join token: the CA's fingerprint and a bootstrap token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinToken {
    /// Hex SHA-256 of the CA certificate's DER.
    pub ca_hash: String,
    /// The bootstrap token.
    pub token: BootstrapToken,
}

impl fmt::Display for JoinToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{JOIN_PREFIX}{}::{}", self.ca_hash, self.token)
    }
}

impl JoinToken {
    /// Parses `K10<64 hex>::ID.SECRET`.
    pub fn parse(text: &str) -> Result<JoinToken, TokenError> {
        let rest = text
            .trim()
            .strip_prefix(JOIN_PREFIX)
            .ok_or(TokenError::BadJoinToken)?;
        let (hash, token) = rest.split_once("::").ok_or(TokenError::BadJoinToken)?;
        if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(TokenError::BadJoinToken);
        }
        Ok(JoinToken {
            ca_hash: hash.to_ascii_lowercase(),
            token: BootstrapToken::parse(token)?,
        })
    }

    /// True when the text looks like a join token (as opposed to a raw token).
    pub fn looks_like(text: &str) -> bool {
        text.trim().starts_with(JOIN_PREFIX) && text.contains("::")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn bootstrap_tokens_parse_and_print() {
        let t = BootstrapToken::parse("abcdef.0123456789abcdef").unwrap();
        assert_eq!((t.id.as_str(), t.secret.as_str()), ("abcdef", "0123456789abcdef"));
        assert_eq!(t.to_string(), "abcdef.0123456789abcdef");
        assert_eq!(t.user_name(), "system:bootstrap:abcdef");
        assert!(!format!("{t:?}").contains("0123456789abcdef"));
        for bad in [
            "abcdef0123456789abcdef",
            "ABCDEF.0123456789abcdef",
            "abcde.0123456789abcdef",
            "abcdef.0123",
        ] {
            assert_eq!(
                BootstrapToken::parse(bad),
                Err(TokenError::BadBootstrapToken),
                "{bad}"
            );
        }
        let g = BootstrapToken::generate();
        assert_eq!(BootstrapToken::parse(&g.to_string()).unwrap(), g);
    }

    #[test]
    fn secrets_carry_upstream_keys() {
        let t = BootstrapToken::parse("abcdef.0123456789abcdef").unwrap();
        let at: jiff::Timestamp = "2030-01-02T03:04:05Z".parse().unwrap();
        let s = t.secret(Some(at), "joins nodes");
        assert_eq!(s["metadata"]["name"], "bootstrap-token-abcdef");
        assert_eq!(s["type"], SECRET_TYPE);
        let get =
            |k: &str| String::from_utf8(STANDARD.decode(s["data"][k].as_str().unwrap()).unwrap()).unwrap();
        assert_eq!(get("token-secret"), "0123456789abcdef");
        assert_eq!(get("expiration"), "2030-01-02T03:04:05Z");
        assert_eq!(get("usage-bootstrap-authentication"), "true");
    }

    #[test]
    fn join_tokens_round_trip_and_refuse_garbage() {
        let hash = "a".repeat(64);
        let text = format!("K10{hash}::abcdef.0123456789abcdef");
        let j = JoinToken::parse(&text).unwrap();
        assert_eq!(j.ca_hash, hash);
        assert_eq!(j.to_string(), text);
        assert!(JoinToken::looks_like(&text));
        assert!(!JoinToken::looks_like("0123abcd"));
        for bad in [
            "abcdef.0123456789abcdef".to_string(),
            format!("K10{}::abcdef.0123456789abcdef", "a".repeat(63)),
            format!("K10{}::abcdef.0123", "a".repeat(64)),
            format!("K10{}::abcdef.0123456789abcdef", "g".repeat(64)),
        ] {
            assert!(JoinToken::parse(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ca_hash_is_sha256_of_der() {
        assert_eq!(ca_hash("nope"), Err(TokenError::BadCa));
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let cert = rcgen::CertificateParams::default().self_signed(&key).unwrap();
        let hash = ca_hash(&cert.pem()).unwrap();
        let want = ring::digest::digest(&ring::digest::SHA256, cert.der());
        let want: String = want.as_ref().iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hash, want);
    }
}
