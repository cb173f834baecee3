use std::os::unix::fs::PermissionsExt;

use super::*;

fn pair() -> CertKey {
    CertKey {
        cert_pem: "-----CERT-----\n".into(),
        key_pem: "-----KEY-----\n".into(),
    }
}

#[test]
fn admin_kubeconfig_has_inline_credentials_and_default_names() {
    let creds = pair();
    let text = render(
        "https://127.0.0.1:6443",
        "-----CA-----\n",
        &Credentials::Certificate(&creds),
    )
    .unwrap();
    let config = kube::config::Kubeconfig::from_yaml(&text).unwrap();
    assert_eq!(config.current_context.as_deref(), Some("default"));
    let cluster = config.clusters[0].cluster.as_ref().unwrap();
    assert_eq!(config.clusters[0].name, "default");
    assert_eq!(cluster.server.as_deref(), Some("https://127.0.0.1:6443"));
    assert_eq!(
        cluster.certificate_authority_data.as_deref(),
        Some(STANDARD.encode("-----CA-----\n").as_str())
    );
    let context = config.contexts[0].context.as_ref().unwrap();
    assert_eq!(
        (config.contexts[0].name.as_str(), context.cluster.as_str()),
        ("default", "default")
    );
    assert_eq!(context.user.as_deref(), Some("default"));
    let user = config.auth_infos[0].auth_info.as_ref().unwrap();
    assert_eq!(
        user.client_certificate_data.as_deref(),
        Some(STANDARD.encode(&creds.cert_pem).as_str())
    );
    assert!(user.client_key_data.is_some());
}

#[test]
fn token_kubeconfig_carries_the_token() {
    let text = render("https://127.0.0.1:6443", "ca", &Credentials::Token("abc")).unwrap();
    let config = kube::config::Kubeconfig::from_yaml(&text).unwrap();
    let user = config.auth_infos[0].auth_info.as_ref().unwrap();
    assert!(user.token.is_some());
    assert!(user.client_certificate_data.is_none());
}

#[test]
fn written_file_is_private_and_replaced_on_rewrite() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(ADMIN_KUBECONFIG);
    write(&path, "https://127.0.0.1:1", "ca", &Credentials::Token("a")).unwrap();
    write(&path, "https://127.0.0.1:2", "ca", &Credentials::Token("a")).unwrap();
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert!(
        std::fs::read_to_string(&path)
            .unwrap()
            .contains("https://127.0.0.1:2")
    );
}

#[test]
fn server_url_is_loopback_unless_bound_to_one_address() {
    assert_eq!(
        local_server_url("0.0.0.0".parse().unwrap(), 6443),
        "https://127.0.0.1:6443"
    );
    assert_eq!(
        local_server_url("::".parse().unwrap(), 6443),
        "https://127.0.0.1:6443"
    );
    assert_eq!(
        local_server_url("127.0.0.2".parse().unwrap(), 1),
        "https://127.0.0.2:1"
    );
    assert_eq!(
        local_server_url("::1".parse().unwrap(), 6443),
        "https://[::1]:6443"
    );
}
