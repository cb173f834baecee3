//! `skiff_dns::serve` against a real `skiff server` (API only): Services and
//! EndpointSlices created through the API are answered over UDP and TCP on a
//! loopback port, and other names are forwarded to a fake upstream resolver
//! on 127.0.0.1.

#![allow(clippy::unwrap_used)] // tests may unwrap

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{Name, RData, Record, RecordType};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::Api;
use kube::api::PostParams;
use skiff_dns::DnsConfig;
use skiff_testkit::server::{ServerOptions, SkiffServer, free_port};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

async fn client(server: &SkiffServer) -> kube::Client {
    let kc = kube::config::Kubeconfig::read_from(server.kubeconfig()).unwrap();
    let cfg = kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
        .await
        .unwrap();
    kube::Client::try_from(cfg).unwrap()
}

fn request(name: &str, t: RecordType) -> Vec<u8> {
    let mut m = Message::new(rand::random(), MessageType::Query, OpCode::Query);
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), t));
    m.to_vec().unwrap()
}

async fn udp(server: SocketAddr, name: &str, t: RecordType) -> Message {
    let s = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    s.send_to(&request(name, t), server).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), s.recv(&mut buf))
        .await
        .unwrap()
        .unwrap();
    Message::from_vec(&buf[..n]).unwrap()
}

async fn tcp(server: SocketAddr, name: &str, t: RecordType) -> Message {
    let mut s = TcpStream::connect(server).await.unwrap();
    let req = request(name, t);
    s.write_u16(req.len() as u16).await.unwrap();
    s.write_all(&req).await.unwrap();
    let n = s.read_u16().await.unwrap();
    let mut buf = vec![0u8; n as usize];
    s.read_exact(&mut buf).await.unwrap();
    Message::from_vec(&buf).unwrap()
}

fn ips(m: &Message) -> Vec<String> {
    let mut v: Vec<String> = m
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(a.0.to_string()),
            _ => None,
        })
        .collect();
    v.sort();
    v
}

/// A resolver on 127.0.0.1 that answers every question with 192.0.2.1.
async fn fake_upstream() -> SocketAddr {
    let s = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = s.local_addr().unwrap();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        loop {
            let (n, peer) = s.recv_from(&mut buf).await.unwrap();
            let req = Message::from_vec(&buf[..n]).unwrap();
            let mut resp = Message::response(req.metadata.id, OpCode::Query);
            resp.add_queries(req.queries.clone());
            let name = req.queries[0].name().clone();
            resp.add_answer(Record::from_rdata(
                name,
                60,
                RData::A(A("192.0.2.1".parse().unwrap())),
            ));
            s.send_to(&resp.to_vec().unwrap(), peer).await.unwrap();
        }
    });
    addr
}

fn obj<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> T {
    serde_json::from_value(v).unwrap()
}

#[tokio::test]
async fn answers_services_from_the_api_and_forwards_the_rest() {
    let server = SkiffServer::start(ServerOptions::api_only()).unwrap();
    let c = client(&server).await;
    let svcs: Api<Service> = Api::namespaced(c.clone(), "default");
    let pp = PostParams::default();
    let web = svcs
        .create(
            &pp,
            &obj(serde_json::json!({"metadata": {"name": "web"},
            "spec": {"ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}})),
        )
        .await
        .unwrap();
    let web_ip = web.spec.unwrap().cluster_ip.unwrap();
    svcs.create(
        &pp,
        &obj(serde_json::json!({"metadata": {"name": "db"},
        "spec": {"clusterIP": "None", "ports": [{"name": "pg", "port": 5432}]}})),
    )
    .await
    .unwrap();
    svcs.create(
        &pp,
        &obj(serde_json::json!({"metadata": {"name": "empty"},
        "spec": {"clusterIP": "None", "ports": [{"name": "pg", "port": 5432}]}})),
    )
    .await
    .unwrap();
    svcs.create(
        &pp,
        &obj(serde_json::json!({"metadata": {"name": "big"},
        "spec": {"clusterIP": "None", "ports": [{"name": "http", "port": 80}]}})),
    )
    .await
    .unwrap();
    svcs.create(
        &pp,
        &obj(serde_json::json!({"metadata": {"name": "alias"},
        "spec": {"type": "ExternalName", "externalName": "web.default.svc.cluster.local"}})),
    )
    .await
    .unwrap();
    svcs.create(
        &pp,
        &obj(serde_json::json!({"metadata": {"name": "ext"},
        "spec": {"type": "ExternalName", "externalName": "db.example.org"}})),
    )
    .await
    .unwrap();
    Api::<EndpointSlice>::namespaced(c.clone(), "default")
        .create(
            &pp,
            &obj(serde_json::json!({
            "metadata": {"name": "db-abc", "labels": {"kubernetes.io/service-name": "db"}},
            "addressType": "IPv4",
            "ports": [{"name": "pg", "port": 5432, "protocol": "TCP"}],
            "endpoints": [
                {"addresses": ["10.42.0.5"], "hostname": "db-0", "conditions": {"ready": true}},
                {"addresses": ["10.42.1.6"], "hostname": "db-1", "conditions": {"ready": true}},
                {"addresses": ["10.42.1.7"], "hostname": "db-2", "conditions": {"ready": false}}
            ]})),
        )
        .await
        .unwrap();
    let big: Vec<serde_json::Value> = (0..60)
        .map(|i| serde_json::json!({"addresses": [format!("10.42.2.{}", i + 1)], "conditions": {"ready": true}}))
        .collect();
    Api::<EndpointSlice>::namespaced(c.clone(), "default")
        .create(
            &pp,
            &obj(serde_json::json!({
            "metadata": {"name": "big-abc", "labels": {"kubernetes.io/service-name": "big"}},
            "addressType": "IPv4",
            "ports": [{"name": "http", "port": 80, "protocol": "TCP"}],
            "endpoints": big})),
        )
        .await
        .unwrap();

    let up = fake_upstream().await;
    let dns: SocketAddr = format!("127.0.0.1:{}", free_port().unwrap()).parse().unwrap();
    let cfg = DnsConfig {
        listen: vec![dns],
        upstreams: vec![up],
        ..DnsConfig::default()
    };
    tokio::spawn(skiff_dns::serve(c.clone(), cfg));

    // Wait until the watches have synced and the server listens.
    let start = Instant::now();
    let web_name = "web.default.svc.cluster.local.";
    loop {
        let s = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        s.send_to(&request(web_name, RecordType::A), dns).await.unwrap();
        let mut buf = vec![0u8; 4096];
        if let Ok(Ok(n)) = tokio::time::timeout(Duration::from_millis(300), s.recv(&mut buf)).await
            && ips(&Message::from_vec(&buf[..n]).unwrap()) == vec![web_ip.clone()]
        {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "DNS never answered web"
        );
    }

    // ClusterIP service, with the TTL CoreDNS uses, over UDP and TCP.
    let m = udp(dns, web_name, RecordType::A).await;
    assert!(m.metadata.authoritative);
    assert_eq!(m.answers[0].ttl, 5);
    assert_eq!(
        ips(&tcp(dns, web_name, RecordType::A).await),
        vec![web_ip.clone()]
    );

    // SRV for a named port points at the service name, with its address as additional.
    let m = udp(dns, "_http._tcp.web.default.svc.cluster.local.", RecordType::SRV).await;
    let RData::SRV(srv) = &m.answers[0].data else {
        panic!("no SRV: {m:?}")
    };
    assert_eq!(srv.port, 80);
    assert_eq!(srv.target.to_ascii(), web_name);
    assert_eq!(
        {
            let mut a = m.clone();
            a.answers = m.additionals.clone();
            ips(&a)
        },
        vec![web_ip.clone()]
    );

    // Headless: the ready endpoints only, and per-pod names.
    let m = udp(dns, "db.default.svc.cluster.local.", RecordType::A).await;
    assert_eq!(ips(&m), vec!["10.42.0.5", "10.42.1.6"]);
    let m = udp(dns, "db-1.db.default.svc.cluster.local.", RecordType::A).await;
    assert_eq!(ips(&m), vec!["10.42.1.6"]);
    let m = udp(dns, "_pg._tcp.db.default.svc.cluster.local.", RecordType::SRV).await;
    let mut targets: Vec<String> = m
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::SRV(s) => Some(format!("{}:{}", s.target.to_ascii(), s.port)),
            _ => None,
        })
        .collect();
    targets.sort();
    assert_eq!(
        targets,
        vec![
            "db-0.db.default.svc.cluster.local.:5432",
            "db-1.db.default.svc.cluster.local.:5432"
        ]
    );

    // ExternalName is a CNAME.
    let m = udp(dns, "ext.default.svc.cluster.local.", RecordType::A).await;
    let RData::CNAME(cname) = &m.answers[0].data else {
        panic!("no CNAME: {m:?}")
    };
    assert_eq!(cname.0.to_ascii(), "db.example.org.");
    // ... followed to the target's addresses (stub resolvers do not chase CNAMEs):
    // outside the cluster through the upstream, inside from the cluster's objects.
    assert_eq!(ips(&m), vec!["192.0.2.1"]);
    let m = udp(dns, "alias.default.svc.cluster.local.", RecordType::A).await;
    assert!(matches!(m.answers[0].data, RData::CNAME(_)));
    assert_eq!(ips(&m), vec![web_ip.clone()]);

    // A headless service without ready endpoints does not exist (NXDOMAIN, as CoreDNS).
    let m = udp(dns, "empty.default.svc.cluster.local.", RecordType::A).await;
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);

    // 60 addresses do not fit in 512 bytes: UDP says truncated, TCP has them all.
    let m = udp(dns, "big.default.svc.cluster.local.", RecordType::A).await;
    assert!(
        m.metadata.truncation,
        "not truncated: {} answers",
        m.answers.len()
    );
    let m = tcp(dns, "big.default.svc.cluster.local.", RecordType::A).await;
    assert_eq!(ips(&m).len(), 60);
    // Endpoints without a hostname are named by their dashed IP.
    let m = udp(dns, "10-42-2-7.big.default.svc.cluster.local.", RecordType::A).await;
    assert_eq!(ips(&m), vec!["10.42.2.7"]);

    // What a pod's search list makes of `web` and `web.default` (ndots:5):
    // the wrong expansions are NXDOMAIN, the right one answers.
    for wrong in [
        "web.default.svc.cluster.local.default.svc.cluster.local.",
        "web.default.default.svc.cluster.local.",
        "web.default.svc.cluster.local.svc.cluster.local.",
    ] {
        let m = udp(dns, wrong, RecordType::A).await;
        assert_eq!(m.metadata.response_code, ResponseCode::NXDomain, "{wrong}");
    }

    // Unknown names in the cluster domain: NXDOMAIN with the zone's SOA.
    let m = udp(dns, "nope.default.svc.cluster.local.", RecordType::A).await;
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    assert!(matches!(m.authorities[0].data, RData::SOA(_)));
    // A known name without records of the type: NOERROR, no answers.
    let m = udp(dns, web_name, RecordType::AAAA).await;
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert!(m.answers.is_empty());

    // PTR for the service IP.
    let ip: IpAddr = web_ip.parse().unwrap();
    let IpAddr::V4(v4) = ip else { panic!() };
    let o = v4.octets();
    let rev = format!("{}.{}.{}.{}.in-addr.arpa.", o[3], o[2], o[1], o[0]);
    let m = udp(dns, &rev, RecordType::PTR).await;
    let RData::PTR(ptr) = &m.answers[0].data else {
        panic!("no PTR: {m:?}")
    };
    assert_eq!(ptr.0.to_ascii(), web_name);
    // PTR for a headless service's endpoint: its hostname under the service.
    let m = udp(dns, "6.1.42.10.in-addr.arpa.", RecordType::PTR).await;
    let RData::PTR(ptr) = &m.answers[0].data else {
        panic!("no PTR: {m:?}")
    };
    assert_eq!(ptr.0.to_ascii(), "db-1.db.default.svc.cluster.local.");

    // Everything else goes to the upstream, over UDP and TCP.
    assert_eq!(
        ips(&udp(dns, "example.com.", RecordType::A).await),
        vec!["192.0.2.1"]
    );
    assert_eq!(
        ips(&tcp(dns, "example.com.", RecordType::A).await),
        vec!["192.0.2.1"]
    );

    // New services show up without a restart; kube-dns gets its fixed IP.
    skiff_dns::ensure_kube_dns_service(
        c.clone(),
        "10.43.0.10".parse().unwrap(),
        "127.0.0.1".parse().unwrap(),
        dns.port(),
    )
    .await
    .unwrap();
    skiff_dns::ensure_kube_dns_service(
        c.clone(),
        "10.43.0.10".parse().unwrap(),
        "127.0.0.1".parse().unwrap(),
        dns.port(),
    )
    .await
    .unwrap();
    let start = Instant::now();
    loop {
        let m = udp(dns, "kube-dns.kube-system.svc.cluster.local.", RecordType::A).await;
        if ips(&m) == vec!["10.43.0.10"] {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "kube-dns not answered: {m:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let m = udp(
        dns,
        "_dns._udp.kube-dns.kube-system.svc.cluster.local.",
        RecordType::SRV,
    )
    .await;
    assert_eq!(m.answers.len(), 1);
}
