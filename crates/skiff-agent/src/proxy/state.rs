//! The applied state behind incremental syncs: the ruleset in the kernel,
//! each service port's fragment of it, and reference counts for map
//! elements several ports share (hairpin entries of one endpoint). A sync
//! re-renders only the ports that changed and diffs only what they touch,
//! so one added service costs the same at 10 or 10,000 services.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::model::ServicePort;
use super::render::{RenderConfig, Ruleset, render_base, render_service};

/// A service port's identity: `ns/name/proto/portname`.
type PortKey = String;

/// What is in the kernel, by service port.
#[derive(Debug, Default)]
pub struct Applied {
    /// The whole ruleset as applied.
    ruleset: Ruleset,
    /// Each port as last rendered, with its fragment.
    ports: HashMap<PortKey, (ServicePort, Ruleset)>,
    /// How many fragments hold each `(set, key)` element.
    refs: HashMap<(String, String), u32>,
}

/// The part of the ruleset a change touches, before and after.
#[derive(Debug, Default)]
pub struct Delta {
    /// The touched chains, sets and elements as they were.
    pub old: Ruleset,
    /// The same names as they are now (absent = removed).
    pub new: Ruleset,
}

impl Delta {
    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.old == self.new
    }
}

impl Applied {
    /// Renders `ports` from scratch.
    pub fn build(ports: &[ServicePort], cfg: &RenderConfig) -> Applied {
        let mut applied = Applied {
            ruleset: render_base(),
            ..Default::default()
        };
        for sp in ports {
            let frag = render_service(sp, cfg);
            applied.add(&frag);
            applied.ports.insert(sp.id(), (sp.clone(), frag));
        }
        applied
    }

    /// The whole applied ruleset.
    pub fn ruleset(&self) -> &Ruleset {
        &self.ruleset
    }

    /// Moves to `ports`, re-rendering only changed ports; returns what
    /// changed. The state is updated even if applying the delta later
    /// fails: callers then rebuild from scratch.
    pub fn update(&mut self, ports: &[ServicePort], cfg: &RenderConfig) -> Delta {
        let mut changed: Vec<&ServicePort> = Vec::new();
        let mut seen: BTreeSet<&str> = BTreeSet::new();
        let mut keys = Vec::with_capacity(ports.len());
        for sp in ports {
            keys.push(sp.id());
        }
        for (sp, key) in ports.iter().zip(&keys) {
            seen.insert(key);
            match self.ports.get(key) {
                Some((old, _)) if old == sp => {}
                _ => changed.push(sp),
            }
        }
        let removed: Vec<PortKey> = self
            .ports
            .keys()
            .filter(|k| !seen.contains(k.as_str()))
            .cloned()
            .collect();
        let mut delta = Delta::default();
        if changed.is_empty() && removed.is_empty() {
            return delta;
        }
        let new_frags: Vec<(&ServicePort, Ruleset)> =
            changed.iter().map(|sp| (*sp, render_service(sp, cfg))).collect();
        // Everything the old and new fragments name is "touched".
        let mut olds: Vec<Ruleset> = Vec::new();
        for key in changed.iter().map(|sp| sp.id()).chain(removed.iter().cloned()) {
            if let Some((_, frag)) = self.ports.remove(&key) {
                olds.push(frag);
            }
        }
        let touched = Touched::of(olds.iter().chain(new_frags.iter().map(|(_, f)| f)));
        delta.old = touched.extract(&self.ruleset);
        for frag in &olds {
            self.remove(frag);
        }
        for (sp, frag) in new_frags {
            self.add(&frag);
            self.ports.insert(sp.id(), (sp.clone(), frag));
        }
        delta.new = touched.extract(&self.ruleset);
        delta
    }

    fn add(&mut self, frag: &Ruleset) {
        let rs = &mut self.ruleset;
        for (name, chain) in &frag.chains {
            rs.chains.insert(name.clone(), chain.clone());
        }
        for (name, decl) in &frag.sets {
            rs.sets.insert(name.clone(), decl.clone());
        }
        for (set, elems) in &frag.elements {
            let target = rs.elements.entry(set.clone()).or_default();
            for (k, v) in elems {
                target.insert(k.clone(), v.clone());
                *self.refs.entry((set.clone(), k.clone())).or_default() += 1;
            }
        }
    }

    fn remove(&mut self, frag: &Ruleset) {
        let rs = &mut self.ruleset;
        for name in frag.chains.keys() {
            rs.chains.remove(name);
        }
        for name in frag.sets.keys() {
            rs.sets.remove(name);
        }
        for (set, elems) in &frag.elements {
            for k in elems.keys() {
                let id = (set.clone(), k.clone());
                let left = match self.refs.get_mut(&id) {
                    Some(n) => {
                        *n = n.saturating_sub(1);
                        *n
                    }
                    None => 0,
                };
                if left == 0 {
                    self.refs.remove(&id);
                    if let Some(m) = rs.elements.get_mut(set) {
                        m.remove(k);
                    }
                }
            }
        }
    }
}

/// Names of chains, sets and elements some fragments mention.
#[derive(Debug, Default)]
struct Touched {
    chains: BTreeSet<String>,
    sets: BTreeSet<String>,
    elements: BTreeMap<String, BTreeSet<String>>,
}

impl Touched {
    fn of<'a>(frags: impl Iterator<Item = &'a Ruleset>) -> Touched {
        let mut t = Touched::default();
        for f in frags {
            t.chains.extend(f.chains.keys().cloned());
            t.sets.extend(f.sets.keys().cloned());
            for (set, elems) in &f.elements {
                t.sets.insert(set.clone());
                t.elements
                    .entry(set.clone())
                    .or_default()
                    .extend(elems.keys().cloned());
            }
        }
        t
    }

    /// The touched part of `rs` (what exists of it).
    fn extract(&self, rs: &Ruleset) -> Ruleset {
        let mut out = Ruleset::default();
        for name in &self.chains {
            if let Some(c) = rs.chains.get(name) {
                out.chains.insert(name.clone(), c.clone());
            }
        }
        for name in &self.sets {
            if let Some(d) = rs.sets.get(name) {
                out.sets.insert(name.clone(), d.clone());
            }
        }
        for (set, keys) in &self.elements {
            let mut m = BTreeMap::new();
            if let Some(have) = rs.elements.get(set) {
                for k in keys {
                    if let Some(v) = have.get(k) {
                        m.insert(k.clone(), v.clone());
                    }
                }
            }
            out.elements.insert(set.clone(), m);
        }
        out
    }
}
