//! The Swagger 2.0 document in protobuf (gnostic's `openapi.v2.Document`),
//! the only form client-go's `OpenAPISchema()` can read: kubectl uses it for
//! client-side validation (e.g. of `kind: List` manifests) and
//! `explain --output=plaintext-openapiv2`.
//!
//! Owns: a small protobuf writer and the mapping of the JSON document onto
//! gnostic's field numbers. Vendor extensions, defaults and enums travel as
//! `Any { yaml }` (JSON is YAML). Must not: build the document itself.

use serde_json::{Map, Value};

/// Field writer for one protobuf message.
#[derive(Default)]
struct Msg(Vec<u8>);

impl Msg {
    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }

    fn key(&mut self, field: u32, wire: u8) {
        self.varint(u64::from(field) << 3 | u64::from(wire));
    }

    fn bytes(&mut self, field: u32, data: &[u8]) {
        self.key(field, 2);
        self.varint(data.len() as u64);
        self.0.extend_from_slice(data);
    }

    fn string(&mut self, field: u32, s: &str) {
        if !s.is_empty() {
            self.bytes(field, s.as_bytes());
        }
    }

    fn message(&mut self, field: u32, m: Msg) {
        self.bytes(field, &m.0);
    }

    fn boolean(&mut self, field: u32, b: bool) {
        if b {
            self.key(field, 0);
            self.varint(1);
        }
    }

    fn int64(&mut self, field: u32, v: i64) {
        if v != 0 {
            self.key(field, 0);
            self.varint(v as u64);
        }
    }

    fn double(&mut self, field: u32, v: f64) {
        if v != 0.0 {
            self.key(field, 1);
            self.0.extend_from_slice(&v.to_le_bytes());
        }
    }

    fn str_of(&mut self, field: u32, obj: &Map<String, Value>, key: &str) {
        if let Some(s) = obj.get(key).and_then(Value::as_str) {
            self.string(field, s);
        }
    }

    fn bool_of(&mut self, field: u32, obj: &Map<String, Value>, key: &str) {
        self.boolean(field, obj.get(key).and_then(Value::as_bool).unwrap_or(false));
    }

    fn int_of(&mut self, field: u32, obj: &Map<String, Value>, key: &str) {
        self.int64(field, obj.get(key).and_then(Value::as_i64).unwrap_or(0));
    }

    fn double_of(&mut self, field: u32, obj: &Map<String, Value>, key: &str) {
        self.double(field, obj.get(key).and_then(Value::as_f64).unwrap_or(0.0));
    }

    fn strings_of(&mut self, field: u32, obj: &Map<String, Value>, key: &str) {
        for s in obj
            .get(key)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            self.bytes(field, s.as_bytes());
        }
    }

    /// `Any { yaml = 2 }` holding a value.
    fn any(&mut self, field: u32, v: &Value) {
        let mut any = Msg::default();
        any.string(2, &v.to_string());
        self.message(field, any);
    }

    /// `repeated NamedAny` of every `x-` key.
    fn vendor_extensions(&mut self, field: u32, obj: &Map<String, Value>) {
        for (k, v) in obj.iter().filter(|(k, _)| k.starts_with("x-")) {
            let mut named = Msg::default();
            named.string(1, k);
            named.any(2, v);
            self.message(field, named);
        }
    }
}

fn obj(v: &Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap_or_default()
}

/// gnostic `Schema`.
fn schema(v: &Value) -> Msg {
    let s = obj(v);
    let mut m = Msg::default();
    m.str_of(1, &s, "$ref");
    m.str_of(2, &s, "format");
    m.str_of(3, &s, "title");
    m.str_of(4, &s, "description");
    if let Some(d) = s.get("default") {
        m.any(5, d);
    }
    m.double_of(6, &s, "multipleOf");
    m.double_of(7, &s, "maximum");
    m.bool_of(8, &s, "exclusiveMaximum");
    m.double_of(9, &s, "minimum");
    m.bool_of(10, &s, "exclusiveMinimum");
    m.int_of(11, &s, "maxLength");
    m.int_of(12, &s, "minLength");
    m.str_of(13, &s, "pattern");
    m.int_of(14, &s, "maxItems");
    m.int_of(15, &s, "minItems");
    m.bool_of(16, &s, "uniqueItems");
    m.int_of(17, &s, "maxProperties");
    m.int_of(18, &s, "minProperties");
    m.strings_of(19, &s, "required");
    for e in s.get("enum").and_then(Value::as_array).into_iter().flatten() {
        m.any(20, e);
    }
    match s.get("additionalProperties") {
        Some(Value::Bool(b)) => {
            let mut item = Msg::default();
            item.key(2, 0);
            item.varint(u64::from(*b));
            m.message(21, item);
        }
        Some(sub @ Value::Object(_)) => {
            let mut item = Msg::default();
            item.message(1, schema(sub));
            m.message(21, item);
        }
        _ => {}
    }
    match s.get("type") {
        Some(Value::String(t)) => {
            let mut ty = Msg::default();
            ty.string(1, t);
            m.message(22, ty);
        }
        Some(Value::Array(ts)) => {
            let mut ty = Msg::default();
            ts.iter()
                .filter_map(Value::as_str)
                .for_each(|t| ty.bytes(1, t.as_bytes()));
            m.message(22, ty);
        }
        _ => {}
    }
    match s.get("items") {
        Some(one @ Value::Object(_)) => {
            let mut items = Msg::default();
            items.message(1, schema(one));
            m.message(23, items);
        }
        Some(Value::Array(many)) => {
            let mut items = Msg::default();
            many.iter().for_each(|i| items.message(1, schema(i)));
            m.message(23, items);
        }
        _ => {}
    }
    for sub in s.get("allOf").and_then(Value::as_array).into_iter().flatten() {
        m.message(24, schema(sub));
    }
    if let Some(Value::Object(props)) = s.get("properties") {
        let mut p = Msg::default();
        for (name, sub) in props {
            p.message(1, named(name, schema(sub)));
        }
        m.message(25, p);
    }
    m.str_of(26, &s, "discriminator");
    m.bool_of(27, &s, "readOnly");
    if let Some(e) = s.get("example") {
        m.any(30, e);
    }
    m.vendor_extensions(31, &s);
    m
}

/// A `Named*` pair: `name = 1`, `value = 2`.
fn named(name: &str, value: Msg) -> Msg {
    let mut m = Msg::default();
    m.string(1, name);
    m.message(2, value);
    m
}

/// gnostic `ParametersItem`.
fn parameter(v: &Value) -> Msg {
    let p = obj(v);
    let mut param = Msg::default();
    if p.get("in").and_then(Value::as_str) == Some("body") {
        let mut body = Msg::default();
        body.str_of(1, &p, "description");
        body.str_of(2, &p, "name");
        body.str_of(3, &p, "in");
        body.bool_of(4, &p, "required");
        if let Some(s) = p.get("schema") {
            body.message(5, schema(s));
        }
        body.vendor_extensions(6, &p);
        param.message(1, body);
    } else {
        let path = p.get("in").and_then(Value::as_str) == Some("path");
        let mut sub = Msg::default();
        sub.bool_of(1, &p, "required");
        sub.str_of(2, &p, "in");
        sub.str_of(3, &p, "description");
        sub.str_of(4, &p, "name");
        // Query sub-schemas have allow_empty_value at 5, shifting the rest by one.
        let shift = u32::from(!path);
        sub.str_of(5 + shift, &p, "type");
        sub.str_of(6 + shift, &p, "format");
        sub.bool_of(19 + shift, &p, "uniqueItems");
        let mut non_body = Msg::default();
        non_body.message(if path { 4 } else { 3 }, sub);
        param.message(2, non_body);
    }
    let mut item = Msg::default();
    item.message(1, param);
    item
}

/// gnostic `Operation`.
fn operation(v: &Value) -> Msg {
    let o = obj(v);
    let mut m = Msg::default();
    m.strings_of(1, &o, "tags");
    m.str_of(2, &o, "summary");
    m.str_of(3, &o, "description");
    m.str_of(5, &o, "operationId");
    m.strings_of(6, &o, "produces");
    m.strings_of(7, &o, "consumes");
    for p in o
        .get("parameters")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        m.message(8, parameter(p));
    }
    let mut responses = Msg::default();
    for (code, r) in o
        .get("responses")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        let r = obj(r);
        let mut resp = Msg::default();
        resp.str_of(1, &r, "description");
        if let Some(s) = r.get("schema") {
            let mut item = Msg::default();
            item.message(1, schema(s));
            resp.message(2, item);
        }
        let mut value = Msg::default();
        value.message(1, resp);
        responses.message(1, named(code, value));
    }
    m.message(9, responses);
    m.strings_of(10, &o, "schemes");
    m.vendor_extensions(13, &o);
    m
}

/// Encodes a Swagger 2.0 JSON document as gnostic's `openapi.v2.Document`.
pub(crate) fn encode_document(doc: &Value) -> Vec<u8> {
    let d = obj(doc);
    let mut m = Msg::default();
    m.str_of(1, &d, "swagger");
    if let Some(info) = d.get("info") {
        let info = obj(info);
        let mut i = Msg::default();
        i.str_of(1, &info, "title");
        i.str_of(2, &info, "version");
        m.message(2, i);
    }
    let mut paths = Msg::default();
    for (url, item) in d.get("paths").and_then(Value::as_object).into_iter().flatten() {
        let item = obj(item);
        let mut pi = Msg::default();
        for (field, method) in [(2, "get"), (3, "put"), (4, "post"), (5, "delete"), (8, "patch")] {
            if let Some(op) = item.get(method) {
                pi.message(field, operation(op));
            }
        }
        for p in item
            .get("parameters")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            pi.message(9, parameter(p));
        }
        paths.message(2, named(url, pi));
    }
    m.message(8, paths);
    let mut defs = Msg::default();
    for (name, s) in d
        .get("definitions")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        defs.message(1, named(name, schema(s)));
    }
    m.message(9, defs);
    for req in d.get("security").and_then(Value::as_array).into_iter().flatten() {
        let mut r = Msg::default();
        for (name, scopes) in req.as_object().into_iter().flatten() {
            let mut arr = Msg::default();
            scopes
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .for_each(|s| arr.bytes(1, s.as_bytes()));
            r.message(1, named(name, arr));
        }
        m.message(12, r);
    }
    if let Some(Value::Object(sec)) = d.get("securityDefinitions") {
        let mut s = Msg::default();
        for (name, def) in sec {
            let def = obj(def);
            let mut key = Msg::default();
            key.str_of(1, &def, "type");
            key.str_of(2, &def, "name");
            key.str_of(3, &def, "in");
            key.str_of(4, &def, "description");
            let mut item = Msg::default();
            item.message(2, key);
            s.message(1, named(name, item));
        }
        m.message(13, s);
    }
    m.vendor_extensions(16, &d);
    m.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn varints_and_strings_follow_the_wire_format() {
        let bytes = encode_document(&json!({"swagger": "2.0"}));
        // field 1, wire type 2, length 3, "2.0"; then empty paths (8) and definitions (9).
        assert_eq!(&bytes[..5], &[0x0a, 3, b'2', b'.', b'0']);
        assert_eq!(&bytes[5..], &[0x42, 0, 0x4a, 0]);
        let mut m = Msg::default();
        m.int64(11, 300);
        assert_eq!(m.0, vec![0x58, 0xac, 0x02]);
    }

    #[test]
    fn schema_type_and_extensions_are_encoded() {
        let s = schema(&json!({"type": "string", "x-kubernetes-list-type": "map"}));
        // type (22) is a TypeItem message: key 22<<3|2 = 0xb2 0x01.
        assert!(s.0.windows(2).any(|w| w == [0xb2, 0x01]));
        // vendor_extension (31): key 31<<3|2 = 0xfa 0x01, carrying the JSON as yaml.
        assert!(s.0.windows(2).any(|w| w == [0xfa, 0x01]));
        assert!(String::from_utf8_lossy(&s.0).contains("\"map\""));
    }
}
