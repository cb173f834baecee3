//! The host's own IP addresses, read from procfs (`/proc/net/fib_trie` for
//! IPv4 local addresses, `/proc/net/if_inet6` for global IPv6 addresses),
//! so the serving certificate is valid for them without extra dependencies.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The host's IPv4 addresses and global IPv6 addresses, loopback included.
/// Unreadable procfs files yield no addresses rather than an error.
pub fn host_addresses() -> Vec<IpAddr> {
    let mut out = BTreeSet::new();
    if let Ok(trie) = std::fs::read_to_string("/proc/net/fib_trie") {
        out.extend(parse_fib_trie(&trie).into_iter().map(IpAddr::V4));
    }
    if let Ok(inet6) = std::fs::read_to_string("/proc/net/if_inet6") {
        out.extend(parse_if_inet6(&inet6).into_iter().map(IpAddr::V6));
    }
    out.into_iter().collect()
}

/// Addresses listed as `/32 host LOCAL` in the kernel's FIB trie.
pub(crate) fn parse_fib_trie(text: &str) -> BTreeSet<Ipv4Addr> {
    let mut out = BTreeSet::new();
    let mut last: Option<Ipv4Addr> = None;
    for line in text.lines() {
        let line = line.trim();
        if let Some(addr) = line.strip_prefix("|-- ") {
            last = addr.trim().parse().ok();
        } else if line.starts_with("/32 host LOCAL")
            && let Some(addr) = last
        {
            out.insert(addr);
        }
    }
    out
}

/// Global-scope (and loopback) addresses of `/proc/net/if_inet6`; link-local ones are skipped.
pub(crate) fn parse_if_inet6(text: &str) -> BTreeSet<Ipv6Addr> {
    let mut out = BTreeSet::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (Some(hex), Some(scope)) = (fields.first(), fields.get(3)) else {
            continue;
        };
        if *scope != "00" && *scope != "10" {
            continue;
        }
        if let Ok(bits) = u128::from_str_radix(hex, 16)
            && hex.len() == 32
        {
            out.insert(Ipv6Addr::from(bits));
        }
    }
    out
}
