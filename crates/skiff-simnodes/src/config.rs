//! Configuration of a simulated-node process and parsing of its `k=v` label
//! and `k=v:Effect` taint arguments.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::Taint;

/// A malformed label, taint or duration argument.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    /// A label was not `key=value`.
    #[error("invalid label {0:?}: expected key=value")]
    Label(String),
    /// A taint was not `key[=value]:Effect` with a known effect.
    #[error("invalid taint {0:?}: expected key[=value]:NoSchedule|PreferNoSchedule|NoExecute")]
    Taint(String),
    /// A duration was not `<n>ms`, `<n>s`, `<n>m` or `<n>h`.
    #[error("invalid duration {0:?}: expected e.g. 500ms, 2s, 1m")]
    Duration(String),
}

/// What the simulated nodes look like and how they behave.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// How many nodes to simulate.
    pub count: usize,
    /// Node names are `<prefix><index>`.
    pub name_prefix: String,
    /// CPU capacity (a Kubernetes quantity, e.g. `8`).
    pub cpu: String,
    /// Memory capacity (a Kubernetes quantity, e.g. `32Gi`).
    pub memory: String,
    /// Pod capacity.
    pub pods: u32,
    /// Extra labels on every node.
    pub labels: BTreeMap<String, String>,
    /// Taints on every node.
    pub taints: Vec<Taint>,
    /// How long run-to-completion pods (restartPolicy Never/OnFailure) run.
    pub job_runtime: Duration,
    /// Nodes whose heartbeats are stopped from the start.
    pub failed: Vec<String>,
    /// Lease renewal period.
    pub lease_period: Duration,
    /// A file listing (one per line) the nodes whose heartbeats are stopped;
    /// re-read every second and on SIGUSR1.
    pub control_file: Option<std::path::PathBuf>,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            count: 1,
            name_prefix: "sim-".into(),
            cpu: "8".into(),
            memory: "32Gi".into(),
            pods: 110,
            labels: BTreeMap::new(),
            taints: Vec::new(),
            job_runtime: Duration::from_secs(2),
            failed: Vec::new(),
            lease_period: Duration::from_secs(2),
            control_file: None,
        }
    }
}

impl SimConfig {
    /// The name of node `index`.
    pub fn node_name(&self, index: usize) -> String {
        format!("{}{}", self.name_prefix, index)
    }
}

/// Parses `key=value`.
pub fn parse_label(arg: &str) -> Result<(String, String), ConfigError> {
    match arg.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(ConfigError::Label(arg.to_string())),
    }
}

/// Parses `key[=value]:Effect`, as `kubectl taint` does.
pub fn parse_taint(arg: &str) -> Result<Taint, ConfigError> {
    let err = || ConfigError::Taint(arg.to_string());
    let (kv, effect) = arg.rsplit_once(':').ok_or_else(err)?;
    if !["NoSchedule", "PreferNoSchedule", "NoExecute"].contains(&effect) {
        return Err(err());
    }
    let (key, value) = match kv.split_once('=') {
        Some((k, v)) => (k, Some(v.to_string())),
        None => (kv, None),
    };
    if key.is_empty() {
        return Err(err());
    }
    Ok(Taint {
        key: key.to_string(),
        value,
        effect: effect.to_string(),
        time_added: None,
    })
}

/// Parses `500ms`, `2s`, `1m`, `1h` (a bare number means seconds).
pub fn parse_duration(arg: &str) -> Result<Duration, ConfigError> {
    let err = || ConfigError::Duration(arg.to_string());
    let split = arg
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(arg.len());
    let (num, unit) = arg.split_at(split);
    let n: f64 = num.parse().map_err(|_| err())?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "" | "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(err()),
    };
    if !secs.is_finite() || secs < 0.0 {
        return Err(err());
    }
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn labels_need_a_key_and_equals() {
        assert_eq!(parse_label("zone=a").unwrap(), ("zone".into(), "a".into()));
        assert_eq!(parse_label("k=").unwrap(), ("k".into(), "".into()));
        assert!(parse_label("novalue").is_err());
        assert!(parse_label("=v").is_err());
    }

    #[test]
    fn taints_parse_like_kubectl_taint() {
        let t = parse_taint("gpu=true:NoSchedule").unwrap();
        assert_eq!(
            (t.key.as_str(), t.value.as_deref(), t.effect.as_str()),
            ("gpu", Some("true"), "NoSchedule")
        );
        let t = parse_taint("dedicated:NoExecute").unwrap();
        assert_eq!(
            (t.key.as_str(), t.value, t.effect.as_str()),
            ("dedicated", None, "NoExecute")
        );
        assert!(parse_taint("k=v:Sometimes").is_err());
        assert!(parse_taint("k=v").is_err());
    }

    #[test]
    fn durations_accept_common_units() {
        assert_eq!(parse_duration("2s").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("1m").unwrap(), Duration::from_secs(60));
        assert_eq!(parse_duration("3").unwrap(), Duration::from_secs(3));
        assert!(parse_duration("fast").is_err());
    }
}
