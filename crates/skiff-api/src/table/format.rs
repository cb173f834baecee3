//! Cell formatting shared by the printers: upstream's HumanDuration, ages,
//! label maps and selectors as kubectl prints them, container/image lists.

use serde_json::Value;

/// Upstream's `duration.HumanDuration` for a span in seconds: `45s`, `3m20s`,
/// `15m`, `5h10m`, `20h`, `2d3h`, `30d`, `2y40d`; `<invalid>` far in the future.
pub fn human_duration(seconds: i64) -> String {
    if seconds < -1 {
        return "<invalid>".to_string();
    } else if seconds < 0 {
        return "0s".to_string();
    } else if seconds < 60 * 2 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        let s = seconds % 60;
        return if s == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{s}s")
        };
    } else if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = seconds / 3600;
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        };
    } else if hours < 48 {
        return format!("{hours}h");
    } else if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 {
            format!("{}d", hours / 24)
        } else {
            format!("{}d{}h", hours / 24, h)
        };
    } else if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    } else if hours < 24 * 365 * 8 {
        let dy = (hours / 24) % 365;
        return if dy == 0 {
            format!("{}y", hours / 24 / 365)
        } else {
            format!("{}y{}d", hours / 24 / 365, dy)
        };
    }
    format!("{}y", hours / 24 / 365)
}

/// Upstream's `translateTimestampSince`: the HumanDuration from an RFC 3339
/// time to `now`, `<unknown>` when the time is missing or unparseable.
pub fn age(created: &str, now: jiff::Timestamp) -> String {
    match created.parse::<jiff::Timestamp>() {
        Ok(t) => human_duration(now.as_second() - t.as_second()),
        Err(_) => "<unknown>".to_string(),
    }
}

/// [`age`] of the time at JSON pointer `ptr` in `obj`.
pub(crate) fn since(obj: &Value, ptr: &str, now: jiff::Timestamp) -> String {
    age(text(obj, ptr), now)
}

/// The AGE cell of an object.
pub(crate) fn age_of(obj: &Value, now: jiff::Timestamp) -> String {
    since(obj, "/metadata/creationTimestamp", now)
}

/// `metadata.name`.
pub(crate) fn name(obj: &Value) -> &str {
    text(obj, "/metadata/name")
}

/// The string at a JSON pointer, or "".
pub(crate) fn text<'a>(obj: &'a Value, ptr: &str) -> &'a str {
    obj.pointer(ptr).and_then(Value::as_str).unwrap_or_default()
}

/// The integer at a JSON pointer, or 0.
pub(crate) fn int(obj: &Value, ptr: &str) -> i64 {
    obj.pointer(ptr).and_then(Value::as_i64).unwrap_or(0)
}

/// The array at a JSON pointer, or an empty slice.
pub(crate) fn list<'a>(obj: &'a Value, ptr: &str) -> &'a [Value] {
    obj.pointer(ptr)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

/// `s` or `<none>` when empty.
pub(crate) fn or_none(s: impl Into<String>) -> String {
    let s = s.into();
    if s.is_empty() { "<none>".to_string() } else { s }
}

/// A label map as `k=v,k2=v2` sorted by key (`labels.FormatLabels`), `<none>` when empty.
pub(crate) fn labels(map: Option<&Value>) -> String {
    let mut pairs: Vec<String> = map
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
        .collect();
    pairs.sort();
    or_none(pairs.join(","))
}

/// A `LabelSelector` as `metav1.FormatLabelSelector` prints it: requirements
/// sorted by key, `k=v`, `k in (a,b)`, `k notin (a)`, `k`, `!k`; `<none>` when empty.
pub(crate) fn label_selector(sel: Option<&Value>) -> String {
    let Some(sel) = sel.filter(|s| s.is_object()) else {
        return "<none>".to_string();
    };
    let mut reqs: Vec<(String, String)> = Vec::new();
    for (k, v) in sel
        .get("matchLabels")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        reqs.push((k.clone(), format!("{k}={}", v.as_str().unwrap_or_default())));
    }
    for e in sel
        .get("matchExpressions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let key = e.get("key").and_then(Value::as_str).unwrap_or_default();
        let mut values: Vec<&str> = e
            .get("values")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        values.sort();
        let text = match e.get("operator").and_then(Value::as_str).unwrap_or_default() {
            "In" => format!("{key} in ({})", values.join(",")),
            "NotIn" => format!("{key} notin ({})", values.join(",")),
            "Exists" => key.to_string(),
            "DoesNotExist" => format!("!{key}"),
            _ => continue,
        };
        reqs.push((key.to_string(), text));
    }
    reqs.sort();
    or_none(reqs.into_iter().map(|(_, t)| t).collect::<Vec<_>>().join(","))
}

/// The CONTAINERS and IMAGES cells of a pod spec.
pub(crate) fn containers_images(pod_spec: Option<&Value>) -> (String, String) {
    let containers = pod_spec
        .and_then(|s| s.get("containers"))
        .and_then(Value::as_array);
    let mut names = Vec::new();
    let mut images = Vec::new();
    for c in containers.into_iter().flatten() {
        names.push(c.get("name").and_then(Value::as_str).unwrap_or_default());
        images.push(c.get("image").and_then(Value::as_str).unwrap_or_default());
    }
    (names.join(","), images.join(","))
}

/// A `*bool` as upstream prints it: `True`/`False`, `<unset>` when absent.
pub(crate) fn bool_ptr(v: Option<&Value>) -> String {
    match v.and_then(Value::as_bool) {
        Some(true) => "True".to_string(),
        Some(false) => "False".to_string(),
        None => "<unset>".to_string(),
    }
}
