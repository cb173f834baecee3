//! Service-account JWTs: upstream's claims (`iss`, `sub`, `aud`, `exp`,
//! `iat`, `nbf`, `jti` and the private `kubernetes.io` claim naming the
//! namespace, service account and bound pod/secret), signed ES256 and
//! verified (signature, expiry, not-before, issuer).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use super::key::{KeyError, SigningKey};

/// The issuer of every token (kube-apiserver's default `--service-account-issuer`).
pub const ISSUER: &str = "https://kubernetes.default.svc.cluster.local";

/// Clock skew tolerated when checking `exp` and `nbf`, in seconds.
const LEEWAY_SECONDS: i64 = 60;

/// A name and uid (service account, pod, secret, node).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Ref {
    pub name: String,
    pub uid: String,
}

/// The `kubernetes.io` private claim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct KubernetesClaim {
    pub namespace: String,
    pub serviceaccount: Ref,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<Ref>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<Ref>,
}

/// The claims of a service-account token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub sub: String,
    pub aud: Vec<String>,
    pub exp: i64,
    pub iat: i64,
    pub nbf: i64,
    #[serde(default)]
    pub jti: String,
    #[serde(rename = "kubernetes.io")]
    pub kubernetes: KubernetesClaim,
}

impl Claims {
    /// Claims for `namespace/sa` valid from `now` for `seconds`.
    pub fn new(namespace: &str, sa: Ref, audiences: Vec<String>, now: i64, seconds: i64) -> Claims {
        Claims {
            iss: ISSUER.to_string(),
            sub: format!("system:serviceaccount:{namespace}:{}", sa.name),
            aud: audiences,
            exp: now + seconds,
            iat: now,
            nbf: now,
            jti: uuid::Uuid::new_v4().to_string(),
            kubernetes: KubernetesClaim {
                namespace: namespace.to_string(),
                serviceaccount: sa,
                pod: None,
                secret: None,
            },
        }
    }
}

/// Why a token was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    #[error("malformed token")]
    Malformed,
    #[error("unsupported algorithm or key")]
    Algorithm,
    #[error("invalid signature")]
    Signature,
    #[error("token is expired or not yet valid")]
    Expired,
    #[error("wrong issuer")]
    Issuer,
}

#[derive(Serialize, Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    kid: String,
}

/// Signs `claims` as a compact JWS (`header.payload.signature`).
pub fn encode(key: &SigningKey, claims: &Claims) -> Result<String, KeyError> {
    let header = Header {
        alg: "ES256".to_string(),
        kid: key.kid().to_string(),
    };
    let header = serde_json::to_vec(&header).map_err(|_| KeyError::Sign)?;
    let payload = serde_json::to_vec(claims).map_err(|_| KeyError::Sign)?;
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(payload)
    );
    let sig = key.sign(signing_input.as_bytes())?;
    Ok(format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(sig)))
}

/// The claims of `token` if `key` signed it, it is valid at `now` and its
/// issuer is [`ISSUER`]. The audience is the caller's to check.
pub fn decode(key: &SigningKey, token: &str, now: i64) -> Result<Claims, JwtError> {
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(JwtError::Malformed);
    };
    let header: Header = URL_SAFE_NO_PAD
        .decode(h)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or(JwtError::Malformed)?;
    if header.alg != "ES256" || (!header.kid.is_empty() && header.kid != key.kid()) {
        return Err(JwtError::Algorithm);
    }
    let sig = URL_SAFE_NO_PAD.decode(s).map_err(|_| JwtError::Malformed)?;
    let signing_input = &token[..h.len() + 1 + p.len()];
    if !key.verify(signing_input.as_bytes(), &sig) {
        return Err(JwtError::Signature);
    }
    let claims: Claims = URL_SAFE_NO_PAD
        .decode(p)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or(JwtError::Malformed)?;
    if claims.iss != ISSUER {
        return Err(JwtError::Issuer);
    }
    if now > claims.exp + LEEWAY_SECONDS || now + LEEWAY_SECONDS < claims.nbf {
        return Err(JwtError::Expired);
    }
    Ok(claims)
}

/// True when `token` looks like a JWT (three dot-separated parts), so the
/// authenticator only tries to verify what could be one.
pub fn looks_like_jwt(token: &str) -> bool {
    token.split('.').count() == 3 && token.starts_with("eyJ")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn sa() -> Ref {
        Ref {
            name: "builder".into(),
            uid: "u-1".into(),
        }
    }

    #[test]
    fn round_trip_keeps_upstream_claims() {
        let key = SigningKey::generate().unwrap();
        let claims = Claims::new("ns1", sa(), vec![ISSUER.into()], 1_000, 3600);
        let token = encode(&key, &claims).unwrap();
        assert!(looks_like_jwt(&token));
        let back = decode(&key, &token, 1_010).unwrap();
        assert_eq!(back, claims);
        assert_eq!(back.sub, "system:serviceaccount:ns1:builder");
        let payload: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(token.split('.').nth(1).unwrap()).unwrap())
                .unwrap();
        assert_eq!(payload["kubernetes.io"]["serviceaccount"]["name"], "builder");
        assert_eq!(payload["kubernetes.io"]["namespace"], "ns1");
        assert_eq!(payload["exp"], 4600);
    }

    #[test]
    fn expired_and_future_tokens_are_rejected() {
        let key = SigningKey::generate().unwrap();
        let token = encode(&key, &Claims::new("ns", sa(), vec![], 1_000, 600)).unwrap();
        assert_eq!(decode(&key, &token, 1_000 + 600 + 61), Err(JwtError::Expired));
        assert_eq!(decode(&key, &token, 1_000 - 61), Err(JwtError::Expired));
        assert!(decode(&key, &token, 1_500).is_ok());
    }

    #[test]
    fn tampered_or_foreign_tokens_are_rejected() {
        let key = SigningKey::generate().unwrap();
        let token = encode(&key, &Claims::new("ns", sa(), vec![], 1_000, 600)).unwrap();
        let mut forged = Claims::new("kube-system", sa(), vec![], 1_000, 600);
        forged.sub = "system:serviceaccount:kube-system:builder".into();
        let forged_payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged).unwrap());
        let parts: Vec<&str> = token.split('.').collect();
        let tampered = format!("{}.{}.{}", parts[0], forged_payload, parts[2]);
        assert_eq!(decode(&key, &tampered, 1_100), Err(JwtError::Signature));
        let other = SigningKey::generate().unwrap();
        assert_eq!(decode(&other, &token, 1_100), Err(JwtError::Algorithm));
        assert_eq!(decode(&key, "a.b", 1_100), Err(JwtError::Malformed));
    }
}
