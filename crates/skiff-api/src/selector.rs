//! Label and field selectors as the `labelSelector` / `fieldSelector` query
//! parameters and `metav1.LabelSelector` objects express them.
//!
//! STUB: to be completed (set-based requirements, per-kind field labels).

use crate::registry::ResourceDef;
use crate::status::ApiError;
use serde_json::Value;

/// A parsed `labelSelector` (`a=b,c!=d,e in (x,y),!f,g`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelSelector {
    requirements: Vec<(String, String)>,
}

impl LabelSelector {
    /// Parses the query-parameter form. Empty selects everything.
    pub fn parse(s: &str) -> Result<Self, ApiError> {
        let mut requirements = Vec::new();
        for part in s.split(',').filter(|p| !p.trim().is_empty()) {
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| ApiError::bad_request(format!("unable to parse requirement: {part}")))?;
            requirements.push((k.trim().to_string(), v.trim_start_matches('=').trim().to_string()));
        }
        Ok(LabelSelector { requirements })
    }

    /// True when the selector selects everything.
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// Whether an object with these labels (`metadata.labels`, may be absent) matches.
    pub fn matches(&self, labels: Option<&Value>) -> bool {
        self.requirements.iter().all(|(k, v)| labels.and_then(|l| l.get(k)).and_then(Value::as_str) == Some(v))
    }
}

/// A parsed `fieldSelector` (`metadata.name=x,spec.nodeName!=`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSelector {
    requirements: Vec<(String, String)>,
}

impl FieldSelector {
    /// Parses the query-parameter form and checks each field label is supported for `def`.
    pub fn parse(s: &str, _def: &ResourceDef) -> Result<Self, ApiError> {
        let ls = LabelSelector::parse(s)?;
        Ok(FieldSelector { requirements: ls.requirements })
    }

    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// Whether the whole object matches.
    pub fn matches(&self, obj: &Value) -> bool {
        self.requirements.iter().all(|(path, want)| {
            let mut cur = obj;
            for seg in path.split('.') {
                match cur.get(seg) {
                    Some(v) => cur = v,
                    None => return want.is_empty(),
                }
            }
            match cur {
                Value::String(s) => s == want,
                Value::Bool(b) => b.to_string() == *want,
                Value::Number(n) => n.to_string() == *want,
                _ => false,
            }
        })
    }
}
