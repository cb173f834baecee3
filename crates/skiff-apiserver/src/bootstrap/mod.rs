//! TLS bootstrap of joining nodes: bootstrap tokens (stored as upstream's
//! `bootstrap.kubernetes.io/token` Secrets, authenticated as
//! `system:bootstrap:<id>` in `system:bootstrappers`), the public
//! `kube-public/cluster-info` ConfigMap, and what bootstrap and anonymous
//! users may do ([`authz`]).
//!
//! Must not: sign certificates (the CSR signer controller does) or decide
//! what other users may do.

pub mod authz;
pub mod token;

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;

use crate::authn::UserInfo;
use crate::server::ApiServer;
pub use token::{BootstrapToken, JoinToken, TokenError, ca_hash};

/// The namespace of the public cluster information.
pub const CLUSTER_INFO_NAMESPACE: &str = "kube-public";
/// The ConfigMap holding the cluster's CA and address (`data.kubeconfig`).
pub const CLUSTER_INFO_NAME: &str = "cluster-info";
/// The URL path of the cluster-info ConfigMap, readable without credentials.
pub const CLUSTER_INFO_PATH: &str = "/api/v1/namespaces/kube-public/configmaps/cluster-info";

/// Accepts bearer tokens that match a bootstrap-token Secret which is
/// meant for authentication and not expired (checked on every request).
#[derive(Clone)]
pub struct BootstrapTokenAuthenticator {
    server: Arc<ApiServer>,
}

impl std::fmt::Debug for BootstrapTokenAuthenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BootstrapTokenAuthenticator")
            .finish_non_exhaustive()
    }
}

impl BootstrapTokenAuthenticator {
    /// Checks tokens against the Secrets of `server`.
    pub fn new(server: Arc<ApiServer>) -> BootstrapTokenAuthenticator {
        BootstrapTokenAuthenticator { server }
    }

    /// The user of `token`, or `None` when it is no valid bootstrap token.
    pub fn authenticate(&self, token: &str) -> Option<UserInfo> {
        let token = BootstrapToken::parse(token).ok()?;
        let secret = crate::serviceaccount_token::lookup(
            &self.server,
            "secrets",
            token::SECRET_NAMESPACE,
            &token.secret_name(),
        )?;
        user_of_secret(&secret, &token, jiff::Timestamp::now())
    }
}

fn data_field(secret: &Value, key: &str) -> Option<String> {
    let raw = secret["data"][key].as_str()?;
    String::from_utf8(STANDARD.decode(raw).ok()?).ok()
}

/// The user `token` authenticates as according to its Secret at time
/// `now`: the secret must be of the bootstrap type, match, be usable for
/// authentication, not be expired and not be being deleted.
pub fn user_of_secret(secret: &Value, token: &BootstrapToken, now: jiff::Timestamp) -> Option<UserInfo> {
    if secret["type"] != token::SECRET_TYPE || secret["metadata"]["deletionTimestamp"].is_string() {
        return None;
    }
    if data_field(secret, "token-id").as_deref() != Some(token.id.as_str()) {
        return None;
    }
    let stored = data_field(secret, "token-secret")?;
    if !crate::authn::constant_time_eq(stored.as_bytes(), token.secret.as_bytes()) {
        return None;
    }
    if data_field(secret, "usage-bootstrap-authentication").as_deref() != Some("true") {
        return None;
    }
    if let Some(exp) = data_field(secret, "expiration") {
        match exp.parse::<jiff::Timestamp>() {
            Ok(at) if at > now => {}
            _ => {
                tracing::debug!(token = %token.id, "expired bootstrap token");
                return None;
            }
        }
    }
    let mut groups = vec![token::GROUP.to_string()];
    for g in data_field(secret, "auth-extra-groups")
        .unwrap_or_default()
        .split(',')
    {
        let g = g.trim();
        if g.starts_with("system:bootstrappers:") && !groups.iter().any(|x| x == g) {
            groups.push(g.to_string());
        }
    }
    Some(UserInfo::authenticated(token.user_name(), groups))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn token() -> BootstrapToken {
        BootstrapToken::parse("abcdef.0123456789abcdef").unwrap()
    }

    #[test]
    fn a_matching_secret_gives_a_bootstrap_user() {
        let now = jiff::Timestamp::now();
        let secret = token().secret(Some(now + jiff::SignedDuration::from_hours(1)), "");
        let user = user_of_secret(&secret, &token(), now).unwrap();
        assert_eq!(user.name, "system:bootstrap:abcdef");
        assert!(user.in_group("system:bootstrappers"));
        assert!(user.in_group(token::NODE_TOKEN_GROUP));
        assert!(user.in_group("system:authenticated"));
    }

    #[test]
    fn expired_wrong_or_unusable_tokens_are_refused() {
        let now = jiff::Timestamp::now();
        let expired = token().secret(Some(now - jiff::SignedDuration::from_secs(1)), "");
        assert!(user_of_secret(&expired, &token(), now).is_none());
        let good = token().secret(None, "");
        let wrong = BootstrapToken::parse("abcdef.aaaaaaaaaaaaaaaa").unwrap();
        assert!(user_of_secret(&good, &wrong, now).is_none());
        let mut opaque = good.clone();
        opaque["type"] = "Opaque".into();
        assert!(user_of_secret(&opaque, &token(), now).is_none());
        let mut no_auth = good.clone();
        no_auth["data"]["usage-bootstrap-authentication"] = STANDARD.encode("false").into();
        assert!(user_of_secret(&no_auth, &token(), now).is_none());
        let mut bad_date = good;
        bad_date["data"]["expiration"] = STANDARD.encode("tomorrow").into();
        assert!(user_of_secret(&bad_date, &token(), now).is_none());
    }
}
