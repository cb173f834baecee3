//! The pure renderer: service ports → the skiff nftables ruleset (one
//! `table ip skiff`), as a [`Ruleset`] of named chains, sets and map
//! elements that [`super::nft`] turns into `nft -f` transactions.
//!
//! Layout (after kube-proxy's nftables mode): the `service-ips` verdict map
//! sends `daddr . proto . dport` to one chain per service port, and
//! `service-nodeports` sends `proto . dport` (for local, non-loopback
//! destination addresses) to the port's external chain. Unlike upstream
//! there are no per-endpoint chains: a service chain balances with one
//! `numgen random` rule per endpoint that DNATs directly, and hairpin
//! traffic (a pod reaching itself through its service) is masqueraded by
//! one postrouting rule matching `saddr . daddr` in the `hairpin` set.
//! That keeps the chain count at about one per service port, which is what
//! `nft`'s cache reads and the kernel's table validation scale with.
//! Packets needing masquerade get mark 0x4000 (set inline, no jumps) and are
//! masqueraded in postrouting. Services without usable endpoints are
//! rejected (or dropped, for Local policies) in filter hooks, before DNAT.

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
/// `ip . ip` of every endpoint: DNATed packets from an endpoint to itself
/// (hairpin) are masqueraded.
pub const HAIRPIN: &str = "hairpin";
/// The statement marking a packet for masquerade.
const MARK_MASQ: &str = "meta mark set meta mark | 0x4000";

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
pub fn local_chain(sp: &ServicePort) -> String {
    let id = sp.id();
    format!("local-{}-{id}", short_hash(&id))
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

/// The base of the table alone: hooks, dispatch maps, masquerading.
pub fn render_base() -> Ruleset {
    let mut rs = Ruleset::default();
    add_base(&mut rs);
    rs
}

/// One service port's share of the table (its chains, affinity sets and
/// map elements), to be merged into [`render_base`]'s output.
pub fn render_service(sp: &ServicePort, cfg: &RenderConfig) -> Ruleset {
    let mut rs = Ruleset::default();
    add_service(&mut rs, sp, cfg);
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
                &format!("ct status dnat ip saddr . ip daddr @{HAIRPIN} {MARK_MASQ}"),
                &format!("meta mark & {MASQ_MARK:#x} == 0 return"),
                &format!("meta mark set meta mark ^ {MASQ_MARK:#x}"),
                "masquerade fully-random",
            ],
        ),
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
    s.insert(HAIRPIN.into(), "type ipv4_addr . ipv4_addr;".into());
    for name in [
        SERVICE_IPS,
        SERVICE_NODEPORTS,
        NO_ENDPOINT_SERVICES,
        NO_ENDPOINT_NODEPORTS,
        HAIRPIN,
    ] {
        rs.elements.insert(name.to_string(), BTreeMap::new());
    }
}

fn element(rs: &mut Ruleset, map: &str, key: String, value: String) {
    rs.elements.entry(map.to_string()).or_default().insert(key, value);
}

fn chain(rs: &mut Ruleset, name: &str, rules: Vec<String>) {
    rs.chains.insert(
        name.to_string(),
        Chain {
            hook: String::new(),
            rules,
        },
    );
}

/// Adds the chains, sets and map elements of one service port, following
/// upstream's traffic policies: ClusterIP traffic uses all usable
/// endpoints (node-local ones for `internalTrafficPolicy: Local`);
/// external traffic (NodePort, external IPs) with
/// `externalTrafficPolicy: Local` keeps its source and goes to local
/// endpoints only, except that traffic from pods and from the node itself
/// is short-circuited to the cluster-wide chain, as upstream does.
fn add_service(rs: &mut Ruleset, sp: &ServicePort, cfg: &RenderConfig) {
    let proto = sp.protocol.nft();
    let all_eps = usable_endpoints(&sp.endpoints, false);
    let local_eps = usable_endpoints(&sp.endpoints, true);
    let svc_chain = service_chain(sp);
    let loc_chain = local_chain(sp);
    let cip_key = format!("{} . {proto} . {}", sp.cluster_ip, sp.port);
    // Verdict when a path has no endpoints: reject when the service has
    // none at all, drop when only the policy's (local) subset is empty.
    let no_ep_verdict = if all_eps.is_empty() {
        "goto reject-chain"
    } else {
        "drop"
    };

    for ep in all_eps.iter().chain(local_eps.iter()) {
        element(rs, HAIRPIN, format!("{} . {}", ep.ip, ep.ip), String::new());
        if let Some(timeout) = sp.affinity_timeout {
            rs.sets.insert(
                affinity_set(sp, ep),
                format!("type ipv4_addr; flags dynamic,timeout; timeout {timeout}s;"),
            );
        }
    }

    let external_local = sp.has_external() && sp.external_local;
    let uses_service_chain = !all_eps.is_empty() && (!sp.internal_local || sp.has_external());
    let uses_local_chain = !local_eps.is_empty() && (sp.internal_local || external_local);
    if uses_service_chain {
        // Traffic from outside the pod network to the ClusterIP is
        // masqueraded so replies come back through this node.
        let mut rules = vec![format!("ip saddr != {} {MARK_MASQ}", cfg.cluster_cidr)];
        balance(&mut rules, sp, &all_eps);
        chain(rs, &svc_chain, rules);
    }
    if uses_local_chain {
        let mut rules = Vec::new();
        if sp.internal_local {
            // Shared with external traffic: only ClusterIP traffic is marked.
            rules.push(format!(
                "ip daddr {} {proto} dport {} ip saddr != {} {MARK_MASQ}",
                sp.cluster_ip, sp.port, cfg.cluster_cidr
            ));
        }
        balance(&mut rules, sp, &local_eps);
        chain(rs, &loc_chain, rules);
    }

    // Cluster traffic.
    let (internal_ok, internal_chain) = if sp.internal_local {
        (uses_local_chain, &loc_chain)
    } else {
        (uses_service_chain, &svc_chain)
    };
    if internal_ok {
        element(
            rs,
            SERVICE_IPS,
            cip_key,
            format!("goto {}", quote(internal_chain)),
        );
    } else {
        element(rs, NO_ENDPOINT_SERVICES, cip_key, no_ep_verdict.to_string());
    }

    if !sp.has_external() {
        return;
    }
    // External traffic: NodePort on every local address, and external IPs.
    let ext_chain = external_chain(sp);
    let svc = quote(&svc_chain);
    if !all_eps.is_empty() {
        let rules = if external_local {
            vec![
                format!("ip saddr {} goto {svc}", cfg.cluster_cidr),
                format!("fib saddr type local {MARK_MASQ} goto {svc}"),
                if uses_local_chain {
                    format!("goto {}", quote(&loc_chain))
                } else {
                    "drop".to_string()
                },
            ]
        } else {
            vec![MARK_MASQ.to_string(), format!("goto {svc}")]
        };
        chain(rs, &ext_chain, rules);
    }
    let target = format!("goto {}", quote(&ext_chain));
    if let Some(np) = sp.node_port {
        let key = format!("{proto} . {np}");
        if all_eps.is_empty() {
            element(rs, NO_ENDPOINT_NODEPORTS, key, no_ep_verdict.to_string());
        } else {
            element(rs, SERVICE_NODEPORTS, key, target.clone());
        }
    }
    for ip in &sp.external_ips {
        let key = format!("{ip} . {proto} . {}", sp.port);
        if all_eps.is_empty() {
            element(rs, NO_ENDPOINT_SERVICES, key, no_ep_verdict.to_string());
        } else {
            element(rs, SERVICE_IPS, key, target.clone());
        }
    }
}

/// Appends the ClientIP affinity lookups and the random balancing over
/// `eps`, each rule DNATing directly (no per-endpoint chains).
fn balance(rules: &mut Vec<String>, sp: &ServicePort, eps: &[&Endpoint]) {
    let dnat = |ep: &Endpoint| format!("meta l4proto {} dnat to {}:{}", sp.protocol.nft(), ep.ip, ep.port);
    let remember = |ep: &Endpoint| match sp.affinity_timeout {
        Some(_) => format!("update @{} {{ ip saddr }} ", quote(&affinity_set(sp, ep))),
        None => String::new(),
    };
    if sp.affinity_timeout.is_some() {
        for ep in eps {
            let set = quote(&affinity_set(sp, ep));
            rules.push(format!("ip saddr @{set} {}{}", remember(ep), dnat(ep)));
        }
    }
    // One rule per endpoint, each picking with 1/(remaining) so every
    // endpoint gets 1/N; anonymous `numgen vmap` sets cost the kernel
    // quadratic time at 10k services (nf_tables set name allocation).
    let n = eps.len();
    for (i, ep) in eps.iter().enumerate() {
        let pick = if i + 1 == n {
            String::new()
        } else {
            format!("numgen random mod {} == 0 ", n - i)
        };
        rules.push(format!("{pick}{}{}", remember(ep), dnat(ep)));
    }
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
