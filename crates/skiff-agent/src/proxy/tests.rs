//! Unit tests of the model and the renderer: golden-ish assertions on the
//! rules each feature produces, and on incremental scripts.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use k8s_openapi::api::core::v1::{Service, ServicePort as K8sPort, ServiceSpec};
use k8s_openapi::api::discovery::v1::{
    Endpoint as K8sEndpoint, EndpointConditions, EndpointPort, EndpointSlice,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::DEFAULT_CLUSTER_CIDR;
use super::model::{Endpoint, Protocol, ServicePort, service_ports};
use super::nft::{full_script, incremental_script};
use super::render::{
    self, HAIRPIN, NO_ENDPOINT_NODEPORTS, NO_ENDPOINT_SERVICES, RenderConfig, Ruleset, SERVICE_IPS,
    SERVICE_NODEPORTS,
};

fn ep(last: u8, local: bool) -> Endpoint {
    Endpoint {
        ip: Ipv4Addr::new(10, 42, 0, last),
        port: 8080,
        ready: true,
        serving: true,
        terminating: false,
        local,
    }
}

fn sp(endpoints: Vec<Endpoint>) -> ServicePort {
    ServicePort {
        namespace: "ns".into(),
        name: "web".into(),
        port_name: "http".into(),
        protocol: Protocol::Tcp,
        cluster_ip: Ipv4Addr::new(10, 43, 0, 10),
        port: 80,
        node_port: None,
        external_ips: Vec::new(),
        internal_local: false,
        external_local: false,
        affinity_timeout: None,
        endpoints,
    }
}

fn rendered(ports: &[ServicePort]) -> Ruleset {
    render::render(
        ports,
        &RenderConfig {
            cluster_cidr: DEFAULT_CLUSTER_CIDR,
        },
    )
}

fn value(rs: &Ruleset, map: &str, key: &str) -> Option<String> {
    rs.elements.get(map).and_then(|m| m.get(key)).cloned()
}

#[test]
fn cluster_ip_balances_over_ready_endpoints_with_dnat_and_masquerade() {
    let s = sp(vec![ep(11, true), ep(12, false)]);
    let rs = rendered(std::slice::from_ref(&s));
    let chain = render::service_chain(&s);
    assert_eq!(
        value(&rs, SERVICE_IPS, "10.43.0.10 . tcp . 80"),
        Some(format!("goto {chain}"))
    );
    let rules = &rs.chains[&chain].rules;
    assert_eq!(
        rules[..],
        [
            "ip saddr != 10.42.0.0/16 meta mark set meta mark | 0x4000",
            "numgen random mod 2 == 0 meta l4proto tcp dnat to 10.42.0.11:8080",
            "meta l4proto tcp dnat to 10.42.0.12:8080",
        ]
    );
    // Hairpin: an endpoint reaching itself is masqueraded in postrouting.
    assert_eq!(
        value(&rs, HAIRPIN, "10.42.0.11 . 10.42.0.11").as_deref(),
        Some("")
    );
    assert!(rs.chains["masquerading"].rules[0].contains("ip saddr . ip daddr @hairpin"));
    let script = full_script(&rs);
    assert!(script.starts_with("add table ip skiff\ndelete table ip skiff\nadd table ip skiff\n"));
    assert!(script.contains("type nat hook output priority -100"));
    assert!(script.contains("masquerade fully-random"));
    // Service chains are written as blocks, after nothing they depend on.
    assert!(
        script.contains(&format!("add chain ip skiff {chain} {{ ip saddr != ")),
        "{script}"
    );
    let svc_at = script.find("add chain ip skiff services").unwrap();
    assert!(script.find("add chain ip skiff nat-output").unwrap() > svc_at);
}

#[test]
fn no_endpoints_rejects_and_headless_or_external_name_get_nothing() {
    let rs = rendered(&[sp(Vec::new())]);
    assert_eq!(
        value(&rs, NO_ENDPOINT_SERVICES, "10.43.0.10 . tcp . 80").as_deref(),
        Some("goto reject-chain")
    );
    assert!(rs.elements[SERVICE_IPS].is_empty());

    let svc = |ty: &str, ip: &str| Service {
        metadata: ObjectMeta {
            name: Some("x".into()),
            namespace: Some("ns".into()),
            ..Default::default()
        },
        spec: Some(ServiceSpec {
            type_: Some(ty.into()),
            cluster_ip: Some(ip.into()),
            ports: Some(vec![K8sPort {
                port: 80,
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    };
    let services = [svc("ClusterIP", "None"), svc("ExternalName", "")];
    assert!(service_ports(services.iter(), std::iter::empty(), "n").is_empty());
}

#[test]
fn terminating_endpoints_are_only_a_fallback() {
    let mut t = ep(13, true);
    t.ready = false;
    t.terminating = true;
    let rs = rendered(&[sp(vec![ep(11, true), t.clone()])]);
    assert_eq!(render::endpoint_ips(&rs), [Ipv4Addr::new(10, 42, 0, 11)]);
    let rs = rendered(&[sp(vec![t])]);
    assert_eq!(render::endpoint_ips(&rs), [Ipv4Addr::new(10, 42, 0, 13)]);
}

#[test]
fn internal_traffic_policy_local_uses_local_endpoints_or_drops() {
    let mut s = sp(vec![ep(11, true), ep(12, false)]);
    s.internal_local = true;
    let rs = rendered(std::slice::from_ref(&s));
    let local = render::local_chain(&s);
    assert_eq!(
        value(&rs, SERVICE_IPS, "10.43.0.10 . tcp . 80"),
        Some(format!("goto {local}"))
    );
    assert_eq!(
        rs.chains[&local].rules[1..],
        ["meta l4proto tcp dnat to 10.42.0.11:8080"]
    );
    assert!(!rs.chains.contains_key(&render::service_chain(&s)));
    s.endpoints = vec![ep(12, false)];
    let rs = rendered(&[s]);
    assert_eq!(
        value(&rs, NO_ENDPOINT_SERVICES, "10.43.0.10 . tcp . 80").as_deref(),
        Some("drop")
    );
}

#[test]
fn node_port_with_external_policy_local() {
    let mut s = sp(vec![ep(11, true), ep(12, false)]);
    s.node_port = Some(30080);
    let rs = rendered(std::slice::from_ref(&s));
    let ext = render::external_chain(&s);
    assert_eq!(
        value(&rs, SERVICE_NODEPORTS, "tcp . 30080"),
        Some(format!("goto {ext}"))
    );
    assert_eq!(rs.chains[&ext].rules[0], "meta mark set meta mark | 0x4000");
    assert!(rs.chains["services"].rules[1].starts_with("fib daddr type local"));

    s.external_local = true;
    let rs = rendered(std::slice::from_ref(&s));
    let svc = render::service_chain(&s);
    assert_eq!(
        rs.chains[&ext].rules,
        [
            format!("ip saddr 10.42.0.0/16 goto {svc}"),
            format!("fib saddr type local meta mark set meta mark | 0x4000 goto {svc}"),
            format!("goto {}", render::local_chain(&s)),
        ]
    );
    // The local chain keeps the client's source (no masquerade mark).
    assert_eq!(
        rs.chains[&render::local_chain(&s)].rules,
        ["meta l4proto tcp dnat to 10.42.0.11:8080"]
    );

    // No local endpoint: outside traffic is dropped, pods and the node
    // itself still reach the remote endpoint (as upstream).
    s.endpoints = vec![ep(12, false)];
    let rs = rendered(std::slice::from_ref(&s));
    assert_eq!(rs.chains[&ext].rules.last().unwrap(), "drop");
    assert_eq!(
        value(&rs, SERVICE_NODEPORTS, "tcp . 30080"),
        Some(format!("goto {ext}"))
    );

    // No endpoint at all: rejected before DNAT.
    s.endpoints.clear();
    let rs = rendered(&[s]);
    assert_eq!(
        value(&rs, NO_ENDPOINT_NODEPORTS, "tcp . 30080").as_deref(),
        Some("goto reject-chain")
    );
    assert!(rs.elements[SERVICE_NODEPORTS].is_empty());
}

#[test]
fn client_ip_affinity_uses_a_timed_set_per_endpoint() {
    let mut s = sp(vec![ep(11, true)]);
    s.affinity_timeout = Some(600);
    let rs = rendered(std::slice::from_ref(&s));
    let set = render::affinity_set(&s, &s.endpoints[0]);
    assert_eq!(
        rs.sets[&set],
        "type ipv4_addr; flags dynamic,timeout; timeout 600s;"
    );
    let svc = &rs.chains[&render::service_chain(&s)].rules;
    assert_eq!(
        svc[1],
        format!("ip saddr @{set} update @{set} {{ ip saddr }} meta l4proto tcp dnat to 10.42.0.11:8080")
    );
    assert_eq!(
        svc[2],
        format!("update @{set} {{ ip saddr }} meta l4proto tcp dnat to 10.42.0.11:8080")
    );
}

#[test]
fn incremental_script_touches_only_the_changed_service() {
    let a = sp(vec![ep(11, true)]);
    let mut b = sp(vec![ep(12, true)]);
    b.name = "other".into();
    b.cluster_ip = Ipv4Addr::new(10, 43, 0, 11);
    let old = rendered(&[a.clone(), b.clone()]);
    assert_eq!(incremental_script(&old, &old).as_deref(), Some(""));
    let mut b2 = b.clone();
    b2.endpoints.push(ep(13, true));
    let script = incremental_script(&old, &rendered(&[a.clone(), b2])).unwrap();
    assert!(!script.contains("ns/web/"), "{script}");
    assert!(
        script.contains(&format!("flush chain ip skiff {}", render::service_chain(&b))),
        "{script}"
    );
    assert!(script.contains("dnat to 10.42.0.13:8080"), "{script}");
    let gone = incremental_script(&old, &rendered(&[a])).unwrap();
    assert!(
        gone.contains("delete element ip skiff service-ips { 10.43.0.11 . tcp . 80 }"),
        "{gone}"
    );
    assert!(
        gone.contains(&format!("delete chain ip skiff {}", render::service_chain(&b))),
        "{gone}"
    );
}

#[test]
fn slices_map_to_ports_by_name_with_conditions() {
    let svc = Service {
        metadata: ObjectMeta {
            name: Some("web".into()),
            namespace: Some("ns".into()),
            ..Default::default()
        },
        spec: Some(ServiceSpec {
            cluster_ip: Some("10.43.0.10".into()),
            type_: Some("NodePort".into()),
            ports: Some(vec![K8sPort {
                name: Some("http".into()),
                port: 80,
                node_port: Some(30080),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    };
    let slice = EndpointSlice {
        metadata: ObjectMeta {
            name: Some("web-abc".into()),
            namespace: Some("ns".into()),
            labels: Some(BTreeMap::from([(
                super::model::SERVICE_NAME_LABEL.to_string(),
                "web".to_string(),
            )])),
            ..Default::default()
        },
        address_type: "IPv4".into(),
        endpoints: vec![K8sEndpoint {
            addresses: vec!["10.42.0.11".into()],
            conditions: Some(EndpointConditions {
                ready: Some(false),
                ..Default::default()
            }),
            node_name: Some("n1".into()),
            ..Default::default()
        }],
        ports: Some(vec![EndpointPort {
            name: Some("http".into()),
            port: Some(8080),
            ..Default::default()
        }]),
    };
    let ports = service_ports([&svc], [&slice], "n1");
    assert_eq!(ports.len(), 1);
    assert_eq!(ports[0].node_port, Some(30080));
    let e = &ports[0].endpoints[0];
    assert_eq!((e.port, e.ready, e.serving, e.local), (8080, false, false, true));
}

#[test]
fn applied_state_rerenders_only_changed_ports_and_keeps_shared_elements() {
    use super::state::Applied;
    let cfg = RenderConfig {
        cluster_cidr: DEFAULT_CLUSTER_CIDR,
    };
    // Two services backed by the same pod share its hairpin element.
    let a = sp(vec![ep(11, true)]);
    let mut b = sp(vec![ep(11, true)]);
    b.name = "other".into();
    b.cluster_ip = Ipv4Addr::new(10, 43, 0, 11);
    let mut applied = Applied::build(&[a.clone(), b.clone()], &cfg);
    assert_eq!(applied.ruleset(), &rendered(&[a.clone(), b.clone()]));
    assert!(applied.update(&[a.clone(), b.clone()], &cfg).is_empty());

    // Removing b keeps the shared hairpin element (a still needs it) and
    // touches nothing of a.
    let delta = applied.update(std::slice::from_ref(&a), &cfg);
    assert!(delta.old.chains.contains_key(&render::service_chain(&b)));
    assert!(!delta.new.chains.contains_key(&render::service_chain(&b)));
    assert!(!delta.old.chains.contains_key(&render::service_chain(&a)));
    assert_eq!(
        value(&delta.new, HAIRPIN, "10.42.0.11 . 10.42.0.11").as_deref(),
        Some("")
    );
    let script = incremental_script(&delta.old, &delta.new).unwrap();
    assert!(!script.contains("hairpin"), "{script}");
    assert!(script.contains("delete element ip skiff service-ips { 10.43.0.11 . tcp . 80 }"));
    assert_eq!(applied.ruleset(), &rendered(std::slice::from_ref(&a)));

    // Removing a too drops the element.
    let delta = applied.update(&[], &cfg);
    let script = incremental_script(&delta.old, &delta.new).unwrap();
    assert!(
        script.contains("delete element ip skiff hairpin { 10.42.0.11 . 10.42.0.11 }"),
        "{script}"
    );
    assert_eq!(applied.ruleset(), &render::render_base());
}
