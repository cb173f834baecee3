//! Service-account tokens: the signing key, the JWTs, the TokenRequest
//! subresource (`serviceaccounts/NAME/token`) and the authentication of
//! bearer tokens it issued.
//!
//! The server enables TokenRequest by adding a [`ServiceAccountTokens`] as an
//! axum extension to its router, and accepts the tokens by passing a
//! [`TokenAuthenticator`] to [`crate::authn::Authenticator::with_service_accounts`].
//! Without the extension the subresource is a 404, as on an upstream server
//! without a service-account key.
//!
//! Must not: authorize, or issue tokens for accounts that do not exist.

pub mod jwt;
pub mod key;
pub(crate) mod request;

use std::sync::Arc;

use serde_json::Value;

use crate::authn::UserInfo;
use crate::server::ApiServer;
pub use key::{KeyError, SigningKey};

/// The group of every service account.
pub const SERVICE_ACCOUNTS_GROUP: &str = "system:serviceaccounts";

/// Enables TokenRequest: add it to the router as `axum::Extension`.
#[derive(Debug, Clone)]
pub struct ServiceAccountTokens {
    key: Arc<SigningKey>,
}

impl ServiceAccountTokens {
    /// Issues tokens signed with `key`.
    pub fn new(key: Arc<SigningKey>) -> ServiceAccountTokens {
        ServiceAccountTokens { key }
    }
}

/// Accepts bearer tokens the server issued: signed with its key, unexpired,
/// for the server's audience ([`jwt::ISSUER`]), whose service account (and
/// bound pod or secret) still exists with the same uid.
#[derive(Clone)]
pub struct TokenAuthenticator {
    key: Arc<SigningKey>,
    server: Arc<ApiServer>,
}

impl std::fmt::Debug for TokenAuthenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenAuthenticator")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl TokenAuthenticator {
    /// Verifies tokens signed with `key` against the objects of `server`.
    pub fn new(key: Arc<SigningKey>, server: Arc<ApiServer>) -> TokenAuthenticator {
        TokenAuthenticator { key, server }
    }

    /// The user of `token`, or `None` when it is not a valid service-account token.
    pub fn authenticate(&self, token: &str) -> Option<UserInfo> {
        if !jwt::looks_like_jwt(token) {
            return None;
        }
        let claims = jwt::decode(&self.key, token, jiff::Timestamp::now().as_second()).ok()?;
        if !claims.aud.iter().any(|a| a == jwt::ISSUER) {
            return None;
        }
        let k = &claims.kubernetes;
        let ns = k.namespace.as_str();
        let still_there = |plural: &str, r: &jwt::Ref| {
            lookup(&self.server, plural, ns, &r.name).is_some_and(|o| uid_of(&o) == r.uid)
        };
        if !still_there("serviceaccounts", &k.serviceaccount)
            || k.pod.as_ref().is_some_and(|p| !still_there("pods", p))
            || k.secret.as_ref().is_some_and(|s| !still_there("secrets", s))
        {
            return None;
        }
        Some(user_of(ns, &k.serviceaccount.name))
    }
}

/// The user of service account `namespace/name`: `system:serviceaccount:NS:NAME`
/// in `system:serviceaccounts`, `system:serviceaccounts:NS` and `system:authenticated`.
pub fn user_of(namespace: &str, name: &str) -> UserInfo {
    UserInfo::authenticated(
        format!("system:serviceaccount:{namespace}:{name}"),
        [
            SERVICE_ACCOUNTS_GROUP.to_string(),
            format!("{SERVICE_ACCOUNTS_GROUP}:{namespace}"),
        ],
    )
}

/// The cached core/v1 object `plural` `namespace/name`, if it exists.
pub(crate) fn lookup(server: &ApiServer, plural: &str, namespace: &str, name: &str) -> Option<Value> {
    let def = server.registry.find("", "v1", plural)?;
    let cached = server.cache.get(&def.key(Some(namespace), name))?;
    Some(cached.value())
}

/// `metadata.uid` of an object.
pub(crate) fn uid_of(obj: &Value) -> String {
    obj["metadata"]["uid"].as_str().unwrap_or_default().to_string()
}
