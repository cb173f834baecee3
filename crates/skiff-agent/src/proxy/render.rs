//! The pure renderer: service ports → the skiff nftables ruleset (one
//! `table ip skiff`), as a [`Ruleset`] of named chains, sets and map
//! elements that [`super::diff`] turns into `nft -f` transactions.
//!
//! Layout (after kube-proxy's nftables mode): `service-ips` maps
//! `daddr . proto . dport` to a per-service chain, `service-nodeports` maps
//! `proto . dport` (for local destination addresses) to the external chain;
//! service chains balance with `numgen random` rules over per-endpoint chains that
//! DNAT; packets needing masquerade get mark 0x4000 and are masqueraded in
//! postrouting. Services without usable endpoints are rejected (or dropped,
//! for Local policies) in filter hooks, before DNAT could apply.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use super::model::{Endpoint, ServicePort, usable_endpoints};

/// The skiff table's family and name.
pub const TABLE: &str = "ip skiff";
/// The mark set on packets to masquerade.
pub const MASQ_MARK: u32 = 0x4000;

/// A chain: its declaration (base chains carry their hook) and its rules.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Chain {
    /// `type nat hook output priority -100; policy accept;` or empty.
    pub hook: String,
    /// The rules, in order.
    pub rules: Vec<String>,
}

/// A whole rendered ruleset of the skiff table.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Ruleset {
    /// Chains by name.
    pub chains: BTreeMap<String, Chain>,
    /// Set/map declarations (the body inside `{ }`) by name.
    pub sets: BTreeMap<String, String>,
    /// Elements of maps/sets: set name → key → value (`""` for plain sets).
    pub elements: BTreeMap<String, BTreeMap<String, String>>,
}

/// What the renderer needs besides the services.
#[derive(Debug, Clone)]
pub struct RenderConfig {
    /// The pod network: traffic from outside it to a ClusterIP is masqueraded.
    pub cluster_cidr: Ipv4Net,
}

/// Names of the verdict maps.
pub const SERVICE_IPS: &str = "service-ips";
/// `proto . port : verdict` for NodePorts.
pub const SERVICE_NODEPORTS: &str = "service-nodeports";
/// `daddr . proto . port : verdict` (reject/drop) for services without endpoints.
pub const NO_ENDPOINT_SERVICES: &str = "no-endpoint-services";
/// `proto . port : verdict` (reject/drop) for NodePorts without endpoints.
pub const NO_ENDPOINT_NODEPORTS: &str = "no-endpoint-nodeports";

/// Makes a chain/set name safe for nft's unquoted identifiers (nft 1.0.6
/// rejects quoted chain names): letters, digits, `/`, `_`, `.`, `-`.
pub fn quote(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "/_.-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// A short stable hash (base32, 8 chars) making chain names unique.
fn short_hash(s: &str) -> String {
    // FNV-1a 64: stable across runs and platforms.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    (0..8)
        .map(|i| char::from(ALPHABET[((h >> (i * 5)) & 31) as usize]))
        .collect()
}

/// The per-service (cluster traffic) chain name.
pub fn service_chain(sp: &ServicePort) -> String {
    let id = sp.id();
    format!("service-{}-{id}", short_hash(&id))
}

/// The per-service external (NodePort/external IP) chain name.
pub fn external_chain(sp: &ServicePort) -> String {
    let id = sp.id();
    format!("external-{}-{id}", short_hash(&id))
}

/// The per-service chain balancing over node-local endpoints only.
fn local_chain(sp: &ServicePort) -> String {
    let id = sp.id();
    format!("local-{}-{id}", short_hash(&id))
}

/// The per-endpoint DNAT chain name.
pub fn endpoint_chain(sp: &ServicePort, ep: &Endpoint) -> String {
    let id = format!("{}__{}/{}", sp.id(), ep.ip, ep.port);
    format!("endpoint-{}-{id}", short_hash(&id))
}

/// The per-endpoint ClientIP affinity set name.
pub fn affinity_set(sp: &ServicePort, ep: &Endpoint) -> String {
    let id = format!("{}__{}/{}", sp.id(), ep.ip, ep.port);
    format!("affinity-{}-{id}", short_hash(&id))
}

fn base_chain(hook: &str, rules: &[&str]) -> Chain {
    Chain {
        hook: hook.to_string(),
        rules: rules.iter().map(|r| r.to_string()).collect(),
    }
}

/// Renders the whole skiff table for `ports`.
pub fn render(ports: &[ServicePort], cfg: &RenderConfig) -> Ruleset {
    let mut rs = Ruleset::default();
    add_base(&mut rs);
    for sp in ports {
        add_service(&mut rs, sp, cfg);
    }
    rs
}

fn add_base(rs: &mut Ruleset) {
    let c = &mut rs.chains;
    c.insert(
        "filter-input".into(),
        base_chain(
            "type filter hook input priority -110; policy accept;",
            &[
                "ct state new jump nodeport-endpoints-check",
                "ct state new jump service-endpoints-check",
            ],
        ),
    );
    c.insert(
        "filter-forward".into(),
        base_chain(
            "type filter hook forward priority -110; policy accept;",
            &["ct state new jump service-endpoints-check"],
        ),
    );
    c.insert(
        "filter-output".into(),
        base_chain(
            "type filter hook output priority -110; policy accept;",
            &["ct state new jump service-endpoints-check"],
        ),
    );
    c.insert(
        "service-endpoints-check".into(),
        base_chain(
            "",
            &[&format!(
                "ip daddr . meta l4proto . th dport vmap @{NO_ENDPOINT_SERVICES}"
            )],
        ),
    );
    c.insert(
        "nodeport-endpoints-check".into(),
        base_chain(
            "",
            &[&format!(
                "fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @{NO_ENDPOINT_NODEPORTS}"
            )],
        ),
    );
    c.insert(
        "nat-prerouting".into(),
        base_chain(
            "type nat hook prerouting priority -100; policy accept;",
            &["jump services"],
        ),
    );
    c.insert(
        "nat-output".into(),
        base_chain(
            "type nat hook output priority -100; policy accept;",
            &["jump services"],
        ),
    );
    c.insert(
        "nat-postrouting".into(),
        base_chain(
            "type nat hook postrouting priority 100; policy accept;",
            &["jump masquerading"],
        ),
    );
    c.insert(
        "masquerading".into(),
        base_chain(
            "",
            &[
                &format!("meta mark & {MASQ_MARK:#x} == 0 return"),
                &format!("meta mark set meta mark ^ {MASQ_MARK:#x}"),
                "masquerade fully-random",
            ],
        ),
    );
    c.insert(
        "mark-for-masquerade".into(),
        base_chain("", &[&format!("meta mark set meta mark | {MASQ_MARK:#x}")]),
    );
    c.insert(
        "services".into(),
        base_chain(
            "",
            &[
                &format!("ip daddr . meta l4proto . th dport vmap @{SERVICE_IPS}"),
                &format!(
                    "fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @{SERVICE_NODEPORTS}"
                ),
            ],
        ),
    );
    c.insert(
        "reject-chain".into(),
        base_chain("", &["meta l4proto tcp reject with tcp reset", "reject"]),
    );
    let s = &mut rs.sets;
    s.insert(
        SERVICE_IPS.into(),
        "type ipv4_addr . inet_proto . inet_service : verdict;".into(),
    );
    s.insert(
        SERVICE_NODEPORTS.into(),
        "type inet_proto . inet_service : verdict;".into(),
    );
    s.insert(
        NO_ENDPOINT_SERVICES.into(),
        "type ipv4_addr . inet_proto . inet_service : verdict;".into(),
    );
    s.insert(
        NO_ENDPOINT_NODEPORTS.into(),
        "type inet_proto . inet_service : verdict;".into(),
    );
    for name in [
        SERVICE_IPS,
        SERVICE_NODEPORTS,
        NO_ENDPOINT_SERVICES,
        NO_ENDPOINT_NODEPORTS,
    ] {
        rs.elements.insert(name.to_string(), BTreeMap::new());
    }
}

fn element(rs: &mut Ruleset, map: &str, key: String, value: String) {
    rs.elements.entry(map.to_string()).or_default().insert(key, value);
}

/// Adds the chains, sets and map elements of one service port.
fn add_service(rs: &mut Ruleset, sp: &ServicePort, cfg: &RenderConfig) {
    let proto = sp.protocol.nft();
    let cluster_eps = usable_endpoints(&sp.endpoints, sp.internal_local);
    let all_eps = usable_endpoints(&sp.endpoints, false);
    let ext_eps = usable_endpoints(&sp.endpoints, sp.external_local);
    let svc_chain = service_chain(sp);
    let cip_key = format!("{} . {proto} . {}", sp.cluster_ip, sp.port);

    // Endpoint chains are shared by the cluster, local and external paths.
    let mut needed: Vec<&Endpoint> = all_eps.clone();
    for ep in cluster_eps.iter().chain(ext_eps.iter()) {
        if !needed.contains(ep) {
            needed.push(ep);
        }
    }
    for ep in &needed {
        add_endpoint(rs, sp, ep);
    }

    // Cluster traffic (ClusterIP, and external traffic with policy Cluster).
    if cluster_eps.is_empty() {
        let verdict = if sp.endpoints.is_empty() || all_eps.is_empty() {
            "goto reject-chain"
        } else {
            "drop"
        };
        element(rs, NO_ENDPOINT_SERVICES, cip_key.clone(), verdict.to_string());
    } else {
        let mut rules = vec![format!(
            "ip daddr {} {proto} dport {} ip saddr != {} jump mark-for-masquerade",
            sp.cluster_ip, sp.port, cfg.cluster_cidr
        )];
        balance(&mut rules, sp, &cluster_eps);
        rs.chains.insert(
            svc_chain.clone(),
            Chain {
                hook: String::new(),
                rules,
            },
        );
        element(rs, SERVICE_IPS, cip_key, format!("goto {}", quote(&svc_chain)));
    }

    if !sp.has_external() {
        return;
    }
    // External traffic: NodePort on every local address, and external IPs.
    let ext_chain = external_chain(sp);
    let mut ext_rules = Vec::new();
    let ext_ok = if sp.external_local {
        // Locally originated traffic may use any endpoint (masqueraded);
        // other traffic keeps its source and goes to local endpoints only.
        if !all_eps.is_empty() && !cluster_eps.is_empty() {
            ext_rules.push("fib saddr type local jump mark-for-masquerade".to_string());
            ext_rules.push(format!("fib saddr type local goto {}", quote(&svc_chain)));
        }
        if !ext_eps.is_empty() {
            let lc = local_chain(sp);
            let mut rules = Vec::new();
            balance(&mut rules, sp, &ext_eps);
            rs.chains.insert(
                lc.clone(),
                Chain {
                    hook: String::new(),
                    rules,
                },
            );
            ext_rules.push(format!("goto {}", quote(&lc)));
        }
        !ext_eps.is_empty()
    } else {
        if !cluster_eps.is_empty() {
            ext_rules.push("jump mark-for-masquerade".to_string());
            ext_rules.push(format!("goto {}", quote(&svc_chain)));
        }
        !cluster_eps.is_empty()
    };
    let no_ep_verdict = if all_eps.is_empty() {
        "goto reject-chain"
    } else {
        "drop"
    };
    if ext_ok {
        rs.chains.insert(
            ext_chain.clone(),
            Chain {
                hook: String::new(),
                rules: ext_rules,
            },
        );
    }
    let target = format!("goto {}", quote(&ext_chain));
    if let Some(np) = sp.node_port {
        let key = format!("{proto} . {np}");
        if ext_ok {
            element(rs, SERVICE_NODEPORTS, key, target.clone());
        } else {
            element(rs, NO_ENDPOINT_NODEPORTS, key, no_ep_verdict.to_string());
        }
    }
    for ip in &sp.external_ips {
        let key = format!("{ip} . {proto} . {}", sp.port);
        if ext_ok {
            element(rs, SERVICE_IPS, key, target.clone());
        } else {
            element(rs, NO_ENDPOINT_SERVICES, key, no_ep_verdict.to_string());
        }
    }
}

/// Appends affinity lookups and the random balancing rule over `eps`.
fn balance(rules: &mut Vec<String>, sp: &ServicePort, eps: &[&Endpoint]) {
    if sp.affinity_timeout.is_some() {
        for ep in eps {
            rules.push(format!(
                "ip saddr @{} goto {}",
                quote(&affinity_set(sp, ep)),
                quote(&endpoint_chain(sp, ep))
            ));
        }
    }
    // One rule per endpoint, each picking with 1/(remaining) so every
    // endpoint gets 1/N; anonymous `numgen vmap` sets cost the kernel
    // quadratic time at 10k services (nf_tables set name allocation).
    let n = eps.len();
    for (i, ep) in eps.iter().enumerate() {
        let chain = quote(&endpoint_chain(sp, ep));
        if i + 1 == n {
            rules.push(format!("goto {chain}"));
        } else {
            rules.push(format!("numgen random mod {} == 0 goto {chain}", n - i));
        }
    }
}

fn add_endpoint(rs: &mut Ruleset, sp: &ServicePort, ep: &Endpoint) {
    let mut rules = vec![format!("ip saddr {} jump mark-for-masquerade", ep.ip)];
    if let Some(timeout) = sp.affinity_timeout {
        let set = affinity_set(sp, ep);
        rs.sets.insert(
            set.clone(),
            format!("type ipv4_addr; flags dynamic,timeout; timeout {timeout}s;"),
        );
        rules.push(format!("update @{} {{ ip saddr }}", quote(&set)));
    }
    rules.push(format!(
        "meta l4proto {} dnat to {}:{}",
        sp.protocol.nft(),
        ep.ip,
        ep.port
    ));
    rs.chains.insert(
        endpoint_chain(sp, ep),
        Chain {
            hook: String::new(),
            rules,
        },
    );
}

/// Endpoint IPs that received a chain, for tests and diagnostics.
pub fn endpoint_ips(rs: &Ruleset) -> Vec<Ipv4Addr> {
    let mut ips: Vec<Ipv4Addr> = rs
        .chains
        .values()
        .flat_map(|c| c.rules.iter())
        .filter_map(|r| r.split("dnat to ").nth(1))
        .filter_map(|t| t.split(':').next())
        .filter_map(|ip| ip.parse().ok())
        .collect();
    ips.sort();
    ips.dedup();
    ips
}
