//! Upstream defaulting: fills the fields Kubernetes fills when a client leaves
//! them out (restartPolicy, dnsPolicy, imagePullPolicy, strategy 25%/25%, ...).
//!
//! STUB: to be written per kind.

use crate::registry::ResourceDef;
use serde_json::Value;

/// Applies upstream defaults for `def`'s kind to `obj` in place.
pub fn apply_defaults(_def: &ResourceDef, _obj: &mut Value) {}
