//! Turning a [`Ruleset`] into `nft -f` scripts (full, and incremental
//! against the previously applied one) and running `nft` to apply them.

use std::fmt::Write as _;
use std::io::Write as _;
use std::process::{Command, Stdio};

use super::render::{Chain, Ruleset, TABLE, quote};

/// Why applying rules failed.
#[derive(Debug, thiserror::Error)]
pub enum NftError {
    /// `nft` could not be started or fed.
    #[error("running nft: {0}")]
    Spawn(#[from] std::io::Error),
    /// `nft` rejected the transaction.
    #[error("nft failed: {0}")]
    Rejected(String),
}

/// Where `nft` runs: the host, or (for tests and benches) a network namespace.
#[derive(Debug, Clone, Default)]
pub struct Nft {
    /// `ip netns exec NAME nft ...` when set.
    pub netns: Option<String>,
}

impl Nft {
    fn command(&self) -> Command {
        match &self.netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, "nft"]);
                c
            }
            None => Command::new("nft"),
        }
    }

    /// Applies `script` as ONE transaction (`nft -f -`).
    pub fn apply(&self, script: &str) -> Result<(), NftError> {
        let mut child = self
            .command()
            .args(["-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin.write_all(script.as_bytes())?;
        }
        let out = child.wait_with_output()?;
        if out.status.success() {
            Ok(())
        } else {
            Err(NftError::Rejected(
                String::from_utf8_lossy(&out.stderr).trim().to_string(),
            ))
        }
    }

    /// Deletes the skiff table (and nothing else); absent is fine.
    pub fn delete_table(&self) -> Result<(), NftError> {
        self.apply(&format!("add table {TABLE}\ndelete table {TABLE}\n"))
    }

    /// `nft list table ip skiff` output.
    pub fn list_table(&self) -> Result<String, NftError> {
        let out = self.command().args(["list", "table", "ip", "skiff"]).output()?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(NftError::Rejected(
                String::from_utf8_lossy(&out.stderr).trim().to_string(),
            ))
        }
    }
}

fn set_kind(decl: &str) -> &'static str {
    if decl.contains(": verdict") { "map" } else { "set" }
}

fn add_chain_decl(out: &mut String, name: &str, chain: &Chain) {
    if chain.hook.is_empty() {
        let _ = writeln!(out, "add chain {TABLE} {}", quote(name));
    } else {
        let _ = writeln!(out, "add chain {TABLE} {} {{ {} }}", quote(name), chain.hook);
    }
}

fn add_rules(out: &mut String, name: &str, chain: &Chain) {
    for rule in &chain.rules {
        let _ = writeln!(out, "add rule {TABLE} {} {rule}", quote(name));
    }
}

fn add_elements<'a>(out: &mut String, set: &str, elems: impl Iterator<Item = (&'a String, &'a String)>) {
    for (k, v) in elems {
        if v.is_empty() {
            let _ = writeln!(out, "add element {TABLE} {} {{ {k} }}", quote(set));
        } else {
            let _ = writeln!(out, "add element {TABLE} {} {{ {k} : {v} }}", quote(set));
        }
    }
}

/// The full-sync script: recreates the table atomically (one transaction).
pub fn full_script(rs: &Ruleset) -> String {
    let mut out = String::with_capacity(rs.chains.len() * 200);
    let _ = writeln!(out, "add table {TABLE}\ndelete table {TABLE}\nadd table {TABLE}");
    for (name, decl) in &rs.sets {
        let _ = writeln!(out, "add {} {TABLE} {} {{ {decl} }}", set_kind(decl), quote(name));
    }
    for (name, chain) in &rs.chains {
        add_chain_decl(&mut out, name, chain);
    }
    for (set, elems) in &rs.elements {
        add_elements(&mut out, set, elems.iter());
    }
    for (name, chain) in &rs.chains {
        add_rules(&mut out, name, chain);
    }
    out
}

/// The incremental script taking the applied `old` to `new`: only changed
/// chains are flushed and refilled, only changed map elements touched.
/// None when the fixed part (hooks, set types) changed: do a full sync.
/// Returns an empty string when nothing changed.
pub fn incremental_script(old: &Ruleset, new: &Ruleset) -> Option<String> {
    let mut out = String::new();
    for (name, decl) in &new.sets {
        match old.sets.get(name) {
            Some(d) if d == decl => {}
            Some(_) => return None,
            None => {
                let _ = writeln!(out, "add {} {TABLE} {} {{ {decl} }}", set_kind(decl), quote(name));
            }
        }
    }
    for (name, chain) in &new.chains {
        match old.chains.get(name) {
            Some(c) if c.hook != chain.hook => return None,
            Some(_) => {}
            None => add_chain_decl(&mut out, name, chain),
        }
    }
    for (name, chain) in &new.chains {
        match old.chains.get(name) {
            Some(c) if c.rules == chain.rules => {}
            Some(_) => {
                let _ = writeln!(out, "flush chain {TABLE} {}", quote(name));
                add_rules(&mut out, name, chain);
            }
            None => add_rules(&mut out, name, chain),
        }
    }
    let empty = Default::default();
    let maps = old.elements.keys().chain(new.elements.keys());
    for set in maps.collect::<std::collections::BTreeSet<_>>() {
        let o = old.elements.get(set).unwrap_or(&empty);
        let n = new.elements.get(set).unwrap_or(&empty);
        for (k, v) in o {
            if n.get(k) != Some(v) && new.sets.contains_key(set) {
                let _ = writeln!(out, "delete element {TABLE} {} {{ {k} }}", quote(set));
            }
        }
        add_elements(&mut out, set, n.iter().filter(|(k, v)| o.get(*k) != Some(*v)));
    }
    let removed: Vec<&String> = old
        .chains
        .keys()
        .filter(|n| !new.chains.contains_key(*n))
        .collect();
    for name in &removed {
        let _ = writeln!(out, "flush chain {TABLE} {}", quote(name));
    }
    for name in &removed {
        let _ = writeln!(out, "delete chain {TABLE} {}", quote(name));
    }
    for name in old.sets.keys().filter(|n| !new.sets.contains_key(*n)) {
        let _ = writeln!(
            out,
            "delete {} {TABLE} {}",
            set_kind(&old.sets[name]),
            quote(name)
        );
    }
    Some(out)
}
