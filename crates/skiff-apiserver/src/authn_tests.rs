use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::*;
use crate::pki::{Pki, serving_sans};

fn headers(auth: Option<&str>) -> HeaderMap {
    let mut h = HeaderMap::new();
    if let Some(value) = auth {
        h.insert(header::AUTHORIZATION, value.parse().unwrap());
    }
    h
}

fn cert_der(pem: &str) -> CertificateDer<'static> {
    use rustls::pki_types::pem::PemObject;
    CertificateDer::from_pem_slice(pem.as_bytes()).unwrap()
}

#[test]
fn client_certificate_maps_cn_to_user_and_o_to_groups() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::load_or_create(
        dir.path(),
        &serving_sans("10.43.0.1".parse().unwrap(), &[], &[]).unwrap(),
    )
    .unwrap();
    let admin = UserInfo::from_certificate(&cert_der(&pki.admin().cert_pem)).unwrap();
    assert_eq!(admin.name, "system:admin");
    assert_eq!(admin.groups, vec!["system:masters", "system:authenticated"]);
    let node = pki
        .issue_client("system:node:n1", &["system:nodes".into()])
        .unwrap();
    let node = UserInfo::from_certificate(&cert_der(&node.cert_pem)).unwrap();
    assert_eq!(node.name, "system:node:n1");
    assert!(node.in_group("system:nodes"));
}

#[test]
fn peer_certificate_wins_over_a_token() {
    let authn = Authenticator::new().with_token("t0k", agent_user());
    let admin = UserInfo::authenticated("system:admin", ["system:masters".to_string()]);
    let user = authn
        .authenticate(&headers(Some("Bearer t0k")), "/api", Some(&admin))
        .unwrap();
    assert_eq!(user, admin);
}

#[test]
fn bearer_token_maps_to_its_user() {
    let authn = Authenticator::new().with_token("t0k", agent_user());
    let user = authn
        .authenticate(&headers(Some("Bearer t0k")), "/api/v1/nodes", None)
        .unwrap();
    assert_eq!(user.name, "system:skiff-agent");
    assert_eq!(user.groups, vec!["system:nodes", "system:authenticated"]);
    let user = authn
        .authenticate(&headers(Some("bearer  t0k ")), "/api", None)
        .unwrap();
    assert_eq!(user.name, "system:skiff-agent");
}

#[test]
fn unknown_token_is_unauthorized_even_on_public_paths() {
    let authn = Authenticator::new().with_token("t0k", agent_user());
    for path in ["/api", "/healthz"] {
        let err = authn
            .authenticate(&headers(Some("Bearer nope")), path, None)
            .unwrap_err();
        assert_eq!(err, AuthnError::InvalidToken);
        assert_eq!(err.to_api_error().code, 401);
    }
    assert!(
        authn
            .authenticate(&headers(Some("Bearer t0")), "/api", None)
            .is_err()
    );
}

#[test]
fn no_credentials_is_anonymous_on_public_paths_and_401_elsewhere() {
    let authn = Authenticator::new();
    for path in PUBLIC_PATHS {
        assert_eq!(
            authn.authenticate(&headers(None), path, None).unwrap(),
            UserInfo::anonymous()
        );
    }
    for path in [
        "/api",
        "/api/v1/namespaces",
        "/healthz/etcd",
        "/apis",
        "/openapi/v2",
    ] {
        let err = authn.authenticate(&headers(None), path, None).unwrap_err();
        assert_eq!(err, AuthnError::NoCredentials, "{path}");
        assert_eq!(err.to_api_error().to_status()["reason"], "Unauthorized");
    }
    assert!(
        authn
            .authenticate(&headers(Some("Basic dXNlcjpwdw==")), "/api", None)
            .is_err()
    );
}

#[tokio::test]
async fn error_response_is_a_json_status() {
    let resp = error_response(&ApiError::unauthorized());
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(resp.headers()[header::CONTENT_TYPE], "application/json");
    let body = axum::body::to_bytes(resp.into_body(), 1 << 20).await.unwrap();
    let status: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(status["kind"], "Status");
    assert_eq!(status["code"], 401);
    assert_eq!(status["message"], "Unauthorized");
}

#[test]
fn server_token_is_created_once_with_mode_0600() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let first = load_or_create_server_token(dir.path()).unwrap();
    assert_eq!(first.len(), 64);
    let mode = std::fs::metadata(dir.path().join("token"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    assert_eq!(load_or_create_server_token(dir.path()).unwrap(), first);
}

fn websocket_headers(protocols: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(header::CONNECTION, "Upgrade".parse().unwrap());
    h.insert(header::UPGRADE, "websocket".parse().unwrap());
    h.insert(header::SEC_WEBSOCKET_PROTOCOL, protocols.parse().unwrap());
    h
}

#[test]
fn websocket_subprotocol_carries_a_bearer_token() {
    let authn = Authenticator::new().with_token("t0k", agent_user());
    let encoded = URL_SAFE_NO_PAD.encode("t0k");
    let mut h = websocket_headers(&format!("v5.channel.k8s.io, {WEBSOCKET_TOKEN_PROTOCOL}{encoded}"));
    let user = authn
        .authenticate(&h, "/api/v1/namespaces/a/pods/p/exec", None)
        .unwrap();
    assert_eq!(user.name, AGENT_USER);
    strip_websocket_token(&mut h);
    assert_eq!(h[header::SEC_WEBSOCKET_PROTOCOL], "v5.channel.k8s.io");

    let bad = websocket_headers(&format!(
        "{WEBSOCKET_TOKEN_PROTOCOL}{}",
        URL_SAFE_NO_PAD.encode("nope")
    ));
    assert_eq!(
        authn.authenticate(&bad, "/api", None),
        Err(AuthnError::InvalidToken)
    );
    let garbage = websocket_headers(&format!("{WEBSOCKET_TOKEN_PROTOCOL}!!!"));
    assert_eq!(
        authn.authenticate(&garbage, "/healthz", None),
        Err(AuthnError::InvalidToken)
    );
    let mut only_token = websocket_headers(&format!("{WEBSOCKET_TOKEN_PROTOCOL}{encoded}"));
    strip_websocket_token(&mut only_token);
    assert!(only_token.get(header::SEC_WEBSOCKET_PROTOCOL).is_none());
}

#[test]
fn websocket_token_counts_only_on_websocket_upgrades() {
    let authn = Authenticator::new().with_token("t0k", agent_user());
    let mut h = HeaderMap::new();
    let protocol = format!("{WEBSOCKET_TOKEN_PROTOCOL}{}", URL_SAFE_NO_PAD.encode("t0k"));
    h.insert(header::SEC_WEBSOCKET_PROTOCOL, protocol.parse().unwrap());
    assert_eq!(
        authn.authenticate(&h, "/api", None),
        Err(AuthnError::NoCredentials)
    );
}
