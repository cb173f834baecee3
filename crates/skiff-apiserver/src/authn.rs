//! Authentication: who a request is from.
//!
//! In upstream's order: a verified client certificate (CN = user name, each O
//! = a group), else a bearer token from the static token table (in an
//! `Authorization: Bearer` header, or for WebSocket upgrades in a
//! `base64url.bearer.authorization.k8s.io.` subprotocol), else anonymous. Anonymous requests are let through only to the
//! public health and version paths (upstream's `system:public-info-viewer`);
//! anything else gets a 401 `Unauthorized` Status. A bearer token that matches
//! nothing is a 401 everywhere, as upstream.
//!
//! The token table is small and documented: the server token in
//! `DATA_DIR/token` (created at first start, mode 0600) maps to user
//! [`AGENT_USER`] in group [`NODES_GROUP`]; agents join with it.
//!
//! Service-account JWTs (see [`crate::serviceaccount_token`]) are accepted
//! when [`Authenticator::with_service_accounts`] was given a verifier, and
//! bootstrap tokens (see [`crate::bootstrap`]) with
//! [`Authenticator::with_bootstrap_tokens`]; anonymous requests may then also
//! read `kube-public/cluster-info`.
//!
//! Must not: authorize. Whether a user may do something is decided later.

use std::path::Path;

use axum::body::Body;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::{HeaderMap, Response, StatusCode, header};
use rustls::pki_types::CertificateDer;
use skiff_api::status::ApiError;

/// The user of the server token.
pub const AGENT_USER: &str = "system:skiff-agent";
/// The group of the server token's user.
pub const NODES_GROUP: &str = "system:nodes";
/// Added to every authenticated user, as upstream does.
pub const AUTHENTICATED_GROUP: &str = "system:authenticated";
/// The user of requests without credentials.
pub const ANONYMOUS_USER: &str = "system:anonymous";
/// The group of requests without credentials.
pub const UNAUTHENTICATED_GROUP: &str = "system:unauthenticated";

/// Paths anyone may read without credentials.
pub const PUBLIC_PATHS: [&str; 5] = ["/healthz", "/livez", "/readyz", "/version", "/version/"];

/// The authenticated user of a request, inserted as a request extension.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UserInfo {
    /// The user name (a client certificate's CN).
    pub name: String,
    /// The groups (a client certificate's O attributes, plus `system:authenticated`).
    pub groups: Vec<String>,
}

impl UserInfo {
    /// An authenticated user: `groups` plus `system:authenticated`.
    pub fn authenticated(name: impl Into<String>, groups: impl IntoIterator<Item = String>) -> UserInfo {
        let mut groups: Vec<String> = groups.into_iter().collect();
        if !groups.iter().any(|g| g == AUTHENTICATED_GROUP) {
            groups.push(AUTHENTICATED_GROUP.to_string());
        }
        UserInfo {
            name: name.into(),
            groups,
        }
    }

    /// `system:anonymous` in `system:unauthenticated`.
    pub fn anonymous() -> UserInfo {
        UserInfo {
            name: ANONYMOUS_USER.to_string(),
            groups: vec![UNAUTHENTICATED_GROUP.to_string()],
        }
    }

    /// The user of a verified client certificate (DER): CN is the name, each O
    /// a group. `None` when it cannot be parsed or has no CN.
    pub fn from_certificate(der: &CertificateDer<'_>) -> Option<UserInfo> {
        let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref()).ok()?;
        let subject = cert.subject();
        let name = subject.iter_common_name().next()?.as_str().ok()?.to_string();
        if name.is_empty() {
            return None;
        }
        let groups = subject
            .iter_organization()
            .filter_map(|o| o.as_str().ok())
            .map(str::to_string);
        Some(UserInfo::authenticated(name, groups.collect::<Vec<_>>()))
    }

    /// True for a user in `group`.
    pub fn in_group(&self, group: &str) -> bool {
        self.groups.iter().any(|g| g == group)
    }
}

/// Why a request was not authenticated. Both are a 401 `Unauthorized` Status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthnError {
    #[error("invalid bearer token")]
    InvalidToken,
    #[error("no credentials")]
    NoCredentials,
}

impl AuthnError {
    /// The API error clients see: 401 `Unauthorized`, as upstream (which does
    /// not say why).
    pub fn to_api_error(self) -> ApiError {
        ApiError::unauthorized()
    }
}

/// Errors loading or creating the token file.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {source}")]
pub struct TokenFileError {
    path: std::path::PathBuf,
    #[source]
    source: std::io::Error,
}

/// Decides the [`UserInfo`] of each request.
#[derive(Debug, Default, Clone)]
pub struct Authenticator {
    tokens: Vec<(String, UserInfo)>,
    service_accounts: Option<crate::serviceaccount_token::TokenAuthenticator>,
    bootstrap: Option<crate::bootstrap::BootstrapTokenAuthenticator>,
}

impl Authenticator {
    /// An authenticator that knows no tokens (client certificates only).
    pub fn new() -> Authenticator {
        Authenticator::default()
    }

    /// Adds a bearer token for `user`.
    pub fn with_token(mut self, token: impl Into<String>, user: UserInfo) -> Authenticator {
        self.tokens.push((token.into(), user));
        self
    }

    /// Also accepts the service-account tokens `sa` verifies.
    pub fn with_service_accounts(
        mut self,
        sa: crate::serviceaccount_token::TokenAuthenticator,
    ) -> Authenticator {
        self.service_accounts = Some(sa);
        self
    }

    /// Also accepts bootstrap tokens (and lets anonymous requests reach cluster-info).
    pub fn with_bootstrap_tokens(
        mut self,
        b: crate::bootstrap::BootstrapTokenAuthenticator,
    ) -> Authenticator {
        self.bootstrap = Some(b);
        self
    }

    /// The user of a request: `peer` (the connection's verified client
    /// certificate) first, then a bearer token, then anonymous on public paths.
    pub fn authenticate(
        &self,
        headers: &HeaderMap,
        path: &str,
        peer: Option<&UserInfo>,
    ) -> Result<UserInfo, AuthnError> {
        if let Some(user) = peer {
            return Ok(user.clone());
        }
        if let Some(token) = bearer_token(headers) {
            return self.user_for_token(token).ok_or(AuthnError::InvalidToken);
        }
        if let Some(token) = websocket_token(headers) {
            let token = token.ok_or(AuthnError::InvalidToken)?;
            return self.user_for_token(&token).ok_or(AuthnError::InvalidToken);
        }
        if PUBLIC_PATHS.contains(&path)
            || (self.bootstrap.is_some() && path == crate::bootstrap::CLUSTER_INFO_PATH)
        {
            return Ok(UserInfo::anonymous());
        }
        Err(AuthnError::NoCredentials)
    }

    fn user_for_token(&self, token: &str) -> Option<UserInfo> {
        // Compare with every entry in constant time per entry, so timing does
        // not reveal how much of a token matched.
        let mut found = None;
        for (known, user) in &self.tokens {
            if constant_time_eq(known.as_bytes(), token.as_bytes()) {
                found = Some(user);
            }
        }
        if let Some(user) = found {
            return Some(user.clone());
        }
        let sa = self
            .service_accounts
            .as_ref()
            .and_then(|sa| sa.authenticate(token));
        sa.or_else(|| self.bootstrap.as_ref().and_then(|b| b.authenticate(token)))
    }
}

/// The token of an `Authorization: Bearer <token>` header, if any.
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// The subprotocol prefix under which WebSocket clients that cannot set
/// headers (browsers) pass a bearer token, base64url-encoded, as upstream.
pub const WEBSOCKET_TOKEN_PROTOCOL: &str = "base64url.bearer.authorization.k8s.io.";

/// The token of a WebSocket upgrade's `Sec-WebSocket-Protocol` token entry:
/// `None` when there is none (or the request is no WebSocket upgrade),
/// `Some(None)` when the entry does not decode to a token.
pub fn websocket_token(headers: &HeaderMap) -> Option<Option<String>> {
    let upgrade = headers.get(header::UPGRADE).and_then(|v| v.to_str().ok());
    if !upgrade.is_some_and(|u| u.eq_ignore_ascii_case("websocket")) {
        return None;
    }
    let encoded = websocket_protocols(headers).find_map(|p| p.strip_prefix(WEBSOCKET_TOKEN_PROTOCOL))?;
    let decoded = URL_SAFE_NO_PAD.decode(encoded.trim_end_matches('=')).ok();
    Some(
        decoded
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .filter(|t| !t.is_empty()),
    )
}

fn websocket_protocols(headers: &HeaderMap) -> impl Iterator<Item = &str> {
    headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
}

/// Removes the token entry from `Sec-WebSocket-Protocol`, so handlers never
/// see (or echo) the credential; the header goes when nothing else is left.
pub fn strip_websocket_token(headers: &mut HeaderMap) {
    if !websocket_protocols(headers).any(|p| p.starts_with(WEBSOCKET_TOKEN_PROTOCOL)) {
        return;
    }
    let rest: Vec<String> = websocket_protocols(headers)
        .filter(|p| !p.is_empty() && !p.starts_with(WEBSOCKET_TOKEN_PROTOCOL))
        .map(str::to_string)
        .collect();
    headers.remove(header::SEC_WEBSOCKET_PROTOCOL);
    if let Ok(value) = http::HeaderValue::from_str(&rest.join(", "))
        && !rest.is_empty()
    {
        headers.insert(header::SEC_WEBSOCKET_PROTOCOL, value);
    }
}

pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Reads the server token from `DATA_DIR/token`, creating it (64 random hex
/// characters, mode 0600) on first start.
pub fn load_or_create_server_token(data_dir: &Path) -> Result<String, TokenFileError> {
    let path = data_dir.join("token");
    let err = |source| TokenFileError {
        path: path.clone(),
        source,
    };
    match std::fs::read_to_string(&path) {
        Ok(text) if !text.trim().is_empty() => return Ok(text.trim().to_string()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(err(e)),
    }
    let bytes: [u8; 32] = rand::random();
    let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    std::fs::create_dir_all(data_dir).map_err(err)?;
    crate::pki::write_atomic(&path, format!("{token}\n").as_bytes(), 0o600).map_err(err)?;
    Ok(token)
}

/// The user of the server token.
pub fn agent_user() -> UserInfo {
    UserInfo::authenticated(AGENT_USER, [NODES_GROUP.to_string()])
}

/// The JSON `Status` response of an authentication failure.
pub fn error_response(err: &ApiError) -> Response<Body> {
    let body = serde_json::to_vec(&err.to_status()).unwrap_or_default();
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = StatusCode::from_u16(err.code).unwrap_or(StatusCode::UNAUTHORIZED);
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    resp
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
#[path = "authn_tests.rs"]
mod tests;
