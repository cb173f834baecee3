//! Turning a [`Ruleset`] into `nft -f` scripts (full, and incremental
//! against the previously applied one) and running `nft` to apply them.

use std::collections::{BTreeMap, BTreeSet};
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

/// Elements per `add element` command: big enough to amortise nft's
/// per-command cost, small enough for its parser.
const ELEMENTS_PER_COMMAND: usize = 1000;

/// Writes `chain` as one command: `add chain T X { hook rules; }`. Rules
/// inside a chain block make nft skip its cache read when they reference
/// no other chain, which is what makes incremental syncs cheap.
fn chain_block(out: &mut String, name: &str, chain: &Chain) {
    let _ = write!(out, "add chain {TABLE} {}", quote(name));
    if chain.hook.is_empty() && chain.rules.is_empty() {
        out.push('\n');
        return;
    }
    out.push_str(" { ");
    if !chain.hook.is_empty() {
        out.push_str(&chain.hook);
        out.push(' ');
    }
    for rule in &chain.rules {
        out.push_str(rule);
        out.push_str("; ");
    }
    out.push_str("}\n");
}

/// The chains named in `goto X` / `jump X` of `chain`'s rules (quoted form).
fn references(chain: &Chain) -> impl Iterator<Item = &str> {
    chain.rules.iter().flat_map(|r| {
        let mut words = r.split_whitespace();
        let mut found = Vec::new();
        while let Some(w) = words.next() {
            if (w == "goto" || w == "jump")
                && let Some(target) = words.next()
            {
                found.push(target);
            }
        }
        found
    })
}

/// Orders `names` so every chain comes after the chains it jumps to (nft
/// resolves a jump target when the rule is added).
fn dependency_order<'a>(chains: &'a BTreeMap<String, Chain>, names: &BTreeSet<&'a str>) -> Vec<&'a str> {
    let by_quoted: BTreeMap<String, &'a str> = names.iter().map(|n| (quote(n), *n)).collect();
    let mut done: BTreeSet<&str> = BTreeSet::new();
    let mut order = Vec::with_capacity(names.len());
    for &start in names {
        // Iterative post-order DFS (chains are shallow, but inputs are not ours).
        let mut stack: Vec<(&str, bool)> = vec![(start, false)];
        while let Some((name, expanded)) = stack.pop() {
            if done.contains(name) {
                continue;
            }
            if expanded {
                done.insert(name);
                order.push(name);
                continue;
            }
            stack.push((name, true));
            if let Some(chain) = chains.get(name) {
                for target in references(chain) {
                    if let Some(&dep) = by_quoted.get(target)
                        && !done.contains(dep)
                        && dep != name
                    {
                        stack.push((dep, false));
                    }
                }
            }
        }
    }
    order
}

fn element_commands<'a>(
    out: &mut String,
    verb: &str,
    set: &str,
    elems: impl Iterator<Item = (&'a String, &'a String)>,
    with_values: bool,
) {
    let mut batch: Vec<String> = Vec::new();
    let flush = |out: &mut String, batch: &mut Vec<String>| {
        if !batch.is_empty() {
            let _ = writeln!(
                out,
                "{verb} element {TABLE} {} {{ {} }}",
                quote(set),
                batch.join(", ")
            );
            batch.clear();
        }
    };
    for (k, v) in elems {
        if with_values && !v.is_empty() {
            batch.push(format!("{k} : {v}"));
        } else {
            batch.push(k.clone());
        }
        if batch.len() == ELEMENTS_PER_COMMAND {
            flush(out, &mut batch);
        }
    }
    flush(out, &mut batch);
}

/// The full-sync script: recreates the table atomically (one transaction).
pub fn full_script(rs: &Ruleset) -> String {
    let mut out = String::with_capacity(rs.chains.len() * 300);
    let _ = writeln!(out, "add table {TABLE}\ndelete table {TABLE}\nadd table {TABLE}");
    for (name, decl) in &rs.sets {
        let _ = writeln!(out, "add {} {TABLE} {} {{ {decl} }}", set_kind(decl), quote(name));
    }
    let names: BTreeSet<&str> = rs.chains.keys().map(String::as_str).collect();
    for name in dependency_order(&rs.chains, &names) {
        chain_block(&mut out, name, &rs.chains[name]);
    }
    for (set, elems) in &rs.elements {
        element_commands(&mut out, "add", set, elems.iter(), true);
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
    let mut write: BTreeSet<&str> = BTreeSet::new();
    for (name, chain) in &new.chains {
        match old.chains.get(name) {
            Some(c) if c.hook != chain.hook => return None,
            Some(c) if c.rules == chain.rules => {}
            _ => {
                write.insert(name);
            }
        }
    }
    for name in dependency_order(&new.chains, &write) {
        if old.chains.contains_key(name) {
            let _ = writeln!(out, "flush chain {TABLE} {}", quote(name));
        }
        chain_block(&mut out, name, &new.chains[name]);
    }
    let empty = BTreeMap::new();
    let maps = old.elements.keys().chain(new.elements.keys());
    for set in maps.collect::<BTreeSet<_>>() {
        let o = old.elements.get(set).unwrap_or(&empty);
        let n = new.elements.get(set).unwrap_or(&empty);
        if new.sets.contains_key(set) {
            let gone = o.iter().filter(|(k, v)| n.get(*k) != Some(*v));
            element_commands(&mut out, "delete", set, gone, false);
        }
        let added = n.iter().filter(|(k, v)| o.get(*k) != Some(*v));
        element_commands(&mut out, "add", set, added, true);
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
    for (name, decl) in old.sets.iter().filter(|(n, _)| !new.sets.contains_key(*n)) {
        let _ = writeln!(out, "delete {} {TABLE} {}", set_kind(decl), quote(name));
    }
    Some(out)
}
