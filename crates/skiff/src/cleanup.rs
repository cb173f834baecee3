//! `skiff cleanup`: removes what skiff put on this host's network — the
//! nftables tables `ip skiff` (service proxy) and `ip skiff-masq` (pod
//! masquerade), the routes tagged `proto 250` (other nodes' podCIDRs) and
//! the pod network bridge — and nothing else. Idempotent: a second run
//! finds nothing and succeeds.
//!
//! It must not touch any other table, route or link; containers and data
//! are not its business (stop skiff first; `rm -rf` the data dir after).

use std::process::Command;

use anyhow::{Context, bail};
use skiff_agent::routes::{self, MASQ_TABLE, RouteTable};

/// The nftables table of the service proxy.
const PROXY_TABLE: &str = "ip skiff";

/// Flags of `skiff cleanup`.
#[derive(Debug, clap::Args)]
pub struct CleanupArgs {
    /// Name of the pod network bridge to delete (the agent's --cni-bridge).
    #[arg(long, value_name = "NAME", default_value = "skiff0")]
    pub cni_bridge: String,
}

/// Removes skiff's tables, routes and bridge, printing each removal.
pub fn run(args: &CleanupArgs) -> anyhow::Result<()> {
    let mut removed = Vec::new();
    let tables = nft_tables().context("listing nftables tables")?;
    for table in [PROXY_TABLE, MASQ_TABLE] {
        if tables.iter().any(|t| t == table) {
            let (family, name) = table.split_once(' ').unwrap_or(("ip", table));
            run_tool("nft", &["delete", "table", family, name])?;
            removed.push(format!("nftables table {table}"));
        }
    }
    let ops = routes::Host::default()
        .sync_routes(&RouteTable::new())
        .context("removing skiff's routes (proto 250)")?;
    for op in ops {
        if let routes::RouteOp::Delete { dst } = op {
            removed.push(format!("route {dst} proto {}", routes::ROUTE_PROTO));
        }
    }
    match link_kind(&args.cni_bridge)? {
        None => {}
        Some("bridge") => {
            run_tool("ip", &["link", "delete", &args.cni_bridge, "type", "bridge"])?;
            removed.push(format!("bridge {}", args.cni_bridge));
        }
        Some(_) => eprintln!(
            "{} is not a bridge, so not one skiff made: left alone",
            args.cni_bridge
        ),
    }
    if removed.is_empty() {
        println!("nothing of skiff's on this host's network");
    }
    for what in removed {
        println!("removed {what}");
    }
    Ok(())
}

/// `nft list tables`: one `FAMILY NAME` per table (none without `nft`:
/// skiff cannot have made any).
fn nft_tables() -> anyhow::Result<Vec<String>> {
    match Command::new("nft").arg("--version").output() {
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        _ => {}
    }
    Ok(parse_tables(&run_tool("nft", &["list", "tables"])?))
}

/// The tables of `nft list tables` output (`table ip skiff` → `ip skiff`).
fn parse_tables(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("table "))
        .map(|t| t.trim().to_string())
        .collect()
}

/// What `name` is in sysfs: None when there is no such link, else whether
/// it is a bridge. (`ip netns exec` mounts the namespace's own sysfs.)
fn link_kind(name: &str) -> anyhow::Result<Option<&'static str>> {
    if name.is_empty() || name.contains('/') || name == "." || name == ".." {
        bail!("{name:?} is not a link name");
    }
    let dir = std::path::Path::new("/sys/class/net").join(name);
    if !dir.exists() {
        return Ok(None);
    }
    Ok(Some(if dir.join("bridge").is_dir() {
        "bridge"
    } else {
        "not-bridge"
    }))
}

/// Runs `tool args...`; its stdout, or an error with its stderr.
fn run_tool(tool: &str, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new(tool)
        .args(args)
        .output()
        .with_context(|| format!("running {tool} (is it installed?)"))?;
    if !out.status.success() {
        bail!(
            "`{tool} {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_read_from_nft_list_tables() {
        let text = "table ip skiff\ntable inet filter\ntable ip skiff-masq\n";
        assert_eq!(
            parse_tables(text),
            vec!["ip skiff", "inet filter", "ip skiff-masq"]
        );
        assert!(parse_tables("").is_empty());
    }
}
