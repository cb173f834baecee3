use std::net::IpAddr;
use std::os::unix::fs::PermissionsExt;

use super::*;

fn sans(extra: &[&str]) -> Vec<San> {
    let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
    serving_sans(
        "10.43.0.1".parse().unwrap(),
        &["192.0.2.2".parse().unwrap()],
        &extra,
    )
    .unwrap()
}

fn has_ip(info: &CertInfo, ip: &str) -> bool {
    info.sans.contains(&San::Ip(ip.parse::<IpAddr>().unwrap()))
}

#[test]
fn first_start_creates_ca_serving_and_admin_with_private_keys() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::load_or_create(dir.path(), &sans(&["api.example.test"])).unwrap();
    for name in ["ca", "serving", "admin"] {
        let key = dir.path().join("tls").join(format!("{name}.key"));
        let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{name}.key mode");
        assert!(dir.path().join("tls").join(format!("{name}.crt")).exists());
    }
    let serving = inspect(Path::new("serving.crt"), &pki.serving().cert_pem).unwrap();
    for dns in [
        "localhost",
        "kubernetes",
        "kubernetes.default.svc.cluster.local",
        "api.example.test",
    ] {
        assert!(serving.sans.contains(&San::Dns(dns.into())), "missing {dns}");
    }
    for ip in ["127.0.0.1", "::1", "10.43.0.1", "192.0.2.2"] {
        assert!(has_ip(&serving, ip), "missing {ip}");
    }
    let admin = inspect(Path::new("admin.crt"), &pki.admin().cert_pem).unwrap();
    assert_eq!(admin.common_name, "system:admin");
    assert_eq!(admin.organizations, vec!["system:masters".to_string()]);
    let ca = inspect(Path::new("ca.crt"), pki.ca_cert_pem()).unwrap();
    assert_eq!(admin.issuer_raw, ca.subject_raw);
    assert!(ca.common_name.starts_with("skiff-ca@"));
}

#[test]
fn later_start_reuses_everything_when_nothing_changed() {
    let dir = tempfile::tempdir().unwrap();
    let first = Pki::load_or_create(dir.path(), &sans(&[])).unwrap();
    let second = Pki::load_or_create(dir.path(), &sans(&[])).unwrap();
    assert_eq!(first.ca_cert_pem(), second.ca_cert_pem());
    assert_eq!(first.serving(), second.serving());
    assert_eq!(first.admin(), second.admin());
}

#[test]
fn changed_sans_reissue_only_the_serving_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let first = Pki::load_or_create(dir.path(), &sans(&[])).unwrap();
    let second = Pki::load_or_create(dir.path(), &sans(&["10.9.8.7"])).unwrap();
    assert_eq!(first.ca_cert_pem(), second.ca_cert_pem());
    assert_eq!(first.admin(), second.admin());
    assert_ne!(first.serving(), second.serving());
    let serving = inspect(Path::new("serving.crt"), &second.serving().cert_pem).unwrap();
    assert!(has_ip(&serving, "10.9.8.7"));
}

#[test]
fn a_lost_ca_key_reissues_every_leaf() {
    let dir = tempfile::tempdir().unwrap();
    let first = Pki::load_or_create(dir.path(), &sans(&[])).unwrap();
    std::fs::remove_file(dir.path().join("tls/ca.key")).unwrap();
    let second = Pki::load_or_create(dir.path(), &sans(&[])).unwrap();
    assert_ne!(first.ca_cert_pem(), second.ca_cert_pem());
    assert_ne!(first.admin(), second.admin());
    assert_ne!(first.serving(), second.serving());
}

#[test]
fn a_corrupt_leaf_is_reissued() {
    let dir = tempfile::tempdir().unwrap();
    Pki::load_or_create(dir.path(), &sans(&[])).unwrap();
    std::fs::write(dir.path().join("tls/admin.crt"), "garbage").unwrap();
    let pki = Pki::load_or_create(dir.path(), &sans(&[])).unwrap();
    assert_eq!(
        inspect(Path::new("admin.crt"), &pki.admin().cert_pem)
            .unwrap()
            .common_name,
        "system:admin"
    );
}

#[test]
fn a_leaf_whose_key_does_not_match_is_reissued() {
    let dir = tempfile::tempdir().unwrap();
    let first = Pki::load_or_create(dir.path(), &sans(&[])).unwrap();
    let other = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    std::fs::write(dir.path().join("tls/serving.key"), other.serialize_pem()).unwrap();
    let second = Pki::load_or_create(dir.path(), &sans(&[])).unwrap();
    assert_ne!(first.serving(), second.serving());
    let key = KeyPair::from_pem(&second.serving().key_pem).unwrap();
    let info = inspect(Path::new("serving.crt"), &second.serving().cert_pem).unwrap();
    assert_eq!(key.public_key_raw(), info.public_key_raw.as_slice());
}

#[test]
fn client_certificates_carry_user_and_groups() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::load_or_create(dir.path(), &sans(&[])).unwrap();
    let groups = vec!["system:nodes".to_string(), "team-a".to_string()];
    let issued = pki.issue_client("system:node:n1", &groups).unwrap();
    let info = inspect(Path::new("n1.crt"), &issued.cert_pem).unwrap();
    assert_eq!(info.common_name, "system:node:n1");
    assert_eq!(info.organizations, groups);
    let three = vec!["a".to_string(), "b".to_string(), "c".to_string()];
    assert!(matches!(
        pki.issue_client("u", &three),
        Err(PkiError::TooManyGroups(3))
    ));
}

#[test]
fn csr_signing_uses_the_callers_identity_not_the_requested_one() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::load_or_create(dir.path(), &sans(&[])).unwrap();
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut params = CertificateParams::default();
    params.distinguished_name.push(DnType::CommonName, "system:admin");
    params
        .distinguished_name
        .push(DnType::OrganizationName, "system:masters");
    let csr = params.serialize_request(&key).unwrap().pem().unwrap();
    let cert = pki
        .sign_client_csr(&csr, "system:node:n2", &["system:nodes".to_string()])
        .unwrap();
    let info = inspect(Path::new("n2.crt"), &cert).unwrap();
    assert_eq!(info.common_name, "system:node:n2");
    assert_eq!(info.organizations, vec!["system:nodes".to_string()]);
    assert!(pki.sign_client_csr("not a csr", "x", &[]).is_err());
}

#[test]
fn serving_csr_signing_puts_the_given_names_in() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::load_or_create(dir.path(), &sans(&[])).unwrap();
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let csr = CertificateParams::default()
        .serialize_request(&key)
        .unwrap()
        .pem()
        .unwrap();
    let names = [San::parse("10.0.0.7").unwrap(), San::parse("n7").unwrap()];
    let cert = pki
        .sign_serving_csr(&csr, "system:node:n7", &["system:nodes".to_string()], &names)
        .unwrap();
    let info = inspect(Path::new("n7.crt"), &cert).unwrap();
    assert_eq!(info.common_name, "system:node:n7");
    assert_eq!(info.sans, names.into_iter().collect());
}

#[test]
fn san_parsing_accepts_ips_and_dns_names_only() {
    assert_eq!(
        San::parse("10.0.0.1").unwrap(),
        San::Ip("10.0.0.1".parse().unwrap())
    );
    assert_eq!(San::parse("[::1]").unwrap(), San::Ip("::1".parse().unwrap()));
    assert_eq!(
        San::parse("API.Example.com").unwrap(),
        San::Dns("api.example.com".into())
    );
    assert!(San::parse("bad name").is_err());
    assert!(San::parse("").is_err());
}

#[test]
fn host_addresses_come_from_procfs_formats() {
    let trie = "Main:\n  +-- 0.0.0.0/0 3 0 5\n     |-- 0.0.0.0\n        /0 universe UNICAST\n           \
                |-- 127.0.0.0\n              /8 host LOCAL\n           |-- 127.0.0.1\n              \
                /32 host LOCAL\n        |-- 192.0.2.255\n           /32 link BROADCAST\n           \
                |-- 192.0.2.2\n              /32 host LOCAL\n";
    let v4: Vec<String> = host::parse_fib_trie(trie).iter().map(|a| a.to_string()).collect();
    assert_eq!(v4, vec!["127.0.0.1", "192.0.2.2"]);
    let inet6 = "fe8000000000000000fc00fffe000001 04 40 20 80     eth0\n\
                 00000000000000000000000000000001 01 80 10 80       lo\n\
                 fd000000000000000000000000000002 04 40 00 82     eth0\n";
    let v6: Vec<String> = host::parse_if_inet6(inet6)
        .iter()
        .map(|a| a.to_string())
        .collect();
    assert_eq!(v6, vec!["::1", "fd00::2"]);
}

#[test]
fn host_addresses_of_this_machine_include_loopback() {
    if Path::new("/proc/net/fib_trie").exists() {
        assert!(host_addresses().contains(&IpAddr::from([127, 0, 0, 1])));
    }
}
