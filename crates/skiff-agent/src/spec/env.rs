//! A container's environment as the kubelet computes it: service link
//! variables, `envFrom` (ConfigMaps and Secrets with a prefix), then `env`
//! (literal values with `$(VAR)` expansion, `valueFrom` configMapKeyRef,
//! secretKeyRef, fieldRef and resourceFieldRef), later entries overriding
//! earlier ones.
//!
//! Pure: the ConfigMaps, Secrets and Services it reads are fetched by the
//! caller into [`EnvSources`] (see [`super::fetch`]).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ConfigMap, Container, Pod, Secret, Service};

use super::SpecError;
use super::expand::expand;
use super::fieldref::{DownwardInputs, field_value, resource_value};

/// Everything a container's environment reads from the cluster, fetched
/// before resolution. A `None` entry means "looked up and not found".
#[derive(Debug, Clone, Default)]
pub struct EnvSources {
    /// ConfigMaps of the pod's namespace by name.
    pub config_maps: BTreeMap<String, Option<ConfigMap>>,
    /// Secrets of the pod's namespace by name.
    pub secrets: BTreeMap<String, Option<Secret>>,
    /// Services whose link variables the container gets: the pod
    /// namespace's (when `enableServiceLinks` is not false) and
    /// `default/kubernetes`.
    pub services: Vec<Service>,
    /// Pod/host IPs and node allocatable for fieldRef/resourceFieldRef.
    pub downward: DownwardInputs,
}

/// An ordered environment in which a later `set` of a name replaces the
/// earlier value in place (the kubelet's map, with a stable order).
#[derive(Debug, Default, Clone)]
pub struct Env {
    entries: Vec<(String, String)>,
    index: BTreeMap<String, usize>,
}

impl Env {
    /// Sets `name` to `value`, replacing an earlier value.
    pub fn set(&mut self, name: String, value: String) {
        match self.index.get(&name) {
            Some(&i) => self.entries[i].1 = value,
            None => {
                self.index.insert(name.clone(), self.entries.len());
                self.entries.push((name, value));
            }
        }
    }

    /// The value of `name`, if set.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.index.get(name).map(|&i| self.entries[i].1.as_str())
    }

    /// The variables in order.
    pub fn into_vec(self) -> Vec<(String, String)> {
        self.entries
    }
}

/// The container's final environment, in a stable order.
pub fn resolve(pod: &Pod, container: &Container, sources: &EnvSources) -> Result<Env, SpecError> {
    let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
    let service_env = service_env(&sources.services);
    let mut env = Env::default();

    for from in container.env_from.iter().flatten() {
        let prefix = from.prefix.as_deref().unwrap_or("");
        if let Some(cm) = &from.config_map_ref {
            let optional = cm.optional.unwrap_or(false);
            match sources.config_maps.get(&cm.name).and_then(Option::as_ref) {
                Some(found) => {
                    for (k, v) in found.data.iter().flatten() {
                        set_checked(&mut env, format!("{prefix}{k}"), v.clone());
                    }
                }
                None if optional => {}
                None => return Err(SpecError::Config(format!("configmap \"{}\" not found", cm.name))),
            }
        }
        if let Some(sec) = &from.secret_ref {
            let optional = sec.optional.unwrap_or(false);
            match sources.secrets.get(&sec.name).and_then(Option::as_ref) {
                Some(found) => {
                    for (k, v) in found.data.iter().flatten() {
                        set_checked(
                            &mut env,
                            format!("{prefix}{k}"),
                            String::from_utf8_lossy(&v.0).into_owned(),
                        );
                    }
                }
                None if optional => {}
                None => return Err(SpecError::Config(format!("secret \"{}\" not found", sec.name))),
            }
        }
    }

    for var in container.env.iter().flatten() {
        let value = if let Some(literal) = var.value.as_deref().filter(|v| !v.is_empty()) {
            expand(literal, |name| {
                env.get(name)
                    .or_else(|| service_env.get(name).map(String::as_str))
                    .map(str::to_string)
            })
        } else if let Some(from) = &var.value_from {
            if let Some(sel) = &from.config_map_key_ref {
                let optional = sel.optional.unwrap_or(false);
                let found = match sources.config_maps.get(&sel.name).and_then(Option::as_ref) {
                    Some(cm) => cm,
                    None if optional => continue,
                    None => return Err(SpecError::Config(format!("configmap \"{}\" not found", sel.name))),
                };
                match found.data.as_ref().and_then(|d| d.get(&sel.key)) {
                    Some(v) => v.clone(),
                    None if optional => continue,
                    None => {
                        return Err(SpecError::Config(format!(
                            "couldn't find key {} in ConfigMap {namespace}/{}",
                            sel.key, sel.name
                        )));
                    }
                }
            } else if let Some(sel) = &from.secret_key_ref {
                let optional = sel.optional.unwrap_or(false);
                let found = match sources.secrets.get(&sel.name).and_then(Option::as_ref) {
                    Some(s) => s,
                    None if optional => continue,
                    None => return Err(SpecError::Config(format!("secret \"{}\" not found", sel.name))),
                };
                match found.data.as_ref().and_then(|d| d.get(&sel.key)) {
                    Some(v) => String::from_utf8_lossy(&v.0).into_owned(),
                    None if optional => continue,
                    None => {
                        return Err(SpecError::Config(format!(
                            "couldn't find key {} in Secret {namespace}/{}",
                            sel.key, sel.name
                        )));
                    }
                }
            } else if let Some(sel) = &from.field_ref {
                field_value(pod, sel, &sources.downward, false)
                    .map_err(|e| SpecError::Config(e.to_string()))?
            } else if let Some(sel) = &from.resource_field_ref {
                let target = resource_container(pod, container, sel.container_name.as_deref())?;
                resource_value(target, sel, &sources.downward)
                    .map_err(|e| SpecError::Config(e.to_string()))?
            } else {
                String::new()
            }
        } else {
            String::new()
        };
        env.set(var.name.clone(), value);
    }

    for (k, v) in service_env {
        if env.get(&k).is_none() {
            env.set(k, v);
        }
    }
    Ok(env)
}

/// The container a resourceFieldRef names (the current one by default).
fn resource_container<'a>(
    pod: &'a Pod,
    current: &'a Container,
    name: Option<&str>,
) -> Result<&'a Container, SpecError> {
    match name.filter(|n| !n.is_empty() && *n != current.name) {
        None => Ok(current),
        Some(n) => pod
            .spec
            .iter()
            .flat_map(|s| s.containers.iter().chain(s.init_containers.iter().flatten()))
            .find(|c| c.name == n)
            .ok_or_else(|| SpecError::Config(format!("container {n:?} not found in the pod"))),
    }
}

/// Keys from envFrom that are not valid variable names are skipped, as
/// upstream does (it records an InvalidEnvironmentVariableNames event).
fn set_checked(env: &mut Env, name: String, value: String) {
    if is_env_var_name(&name) {
        env.set(name, value);
    } else {
        tracing::warn!(%name, "skipping envFrom key that is not a valid environment variable name");
    }
}

/// Upstream's relaxed rule: printable ASCII without `=`, not empty.
pub fn is_env_var_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| (0x20..0x7f).contains(&b) && b != b'=')
}

/// Docker-link style variables for services, as the kubelet injects them:
/// `<NAME>_SERVICE_HOST`, `<NAME>_SERVICE_PORT[_<PORT>]`, `<NAME>_PORT...`.
pub fn service_env(services: &[Service]) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for svc in services {
        let Some(spec) = &svc.spec else { continue };
        let Some(ip) = spec
            .cluster_ip
            .as_deref()
            .filter(|ip| !ip.is_empty() && *ip != "None")
        else {
            continue;
        };
        let name = env_name(svc.metadata.name.as_deref().unwrap_or_default());
        out.insert(format!("{name}_SERVICE_HOST"), ip.to_string());
        let ports = spec.ports.as_deref().unwrap_or_default();
        let host = if ip.contains(':') {
            format!("[{ip}]")
        } else {
            ip.to_string()
        };
        if let Some(first) = ports.first() {
            out.insert(format!("{name}_SERVICE_PORT"), first.port.to_string());
            let proto = first.protocol.as_deref().unwrap_or("TCP").to_lowercase();
            out.insert(format!("{name}_PORT"), format!("{proto}://{host}:{}", first.port));
        }
        for port in ports {
            if let Some(port_name) = port.name.as_deref().filter(|n| !n.is_empty()) {
                out.insert(
                    format!("{name}_SERVICE_PORT_{}", env_name(port_name)),
                    port.port.to_string(),
                );
            }
            let proto_upper = port.protocol.as_deref().unwrap_or("TCP").to_uppercase();
            let proto = proto_upper.to_lowercase();
            let base = format!("{name}_PORT_{}_{proto_upper}", port.port);
            out.insert(base.clone(), format!("{proto}://{host}:{}", port.port));
            out.insert(format!("{base}_PROTO"), proto);
            out.insert(format!("{base}_PORT"), port.port.to_string());
            out.insert(format!("{base}_ADDR"), ip.to_string());
        }
    }
    out
}

fn env_name(s: &str) -> String {
    s.replace('-', "_").to_uppercase()
}

#[cfg(test)]
#[path = "env_tests.rs"]
mod tests;
