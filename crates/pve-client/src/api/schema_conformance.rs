//! Schema conformance: every request the client can build ([`super::samples::all`]) is checked
//! against the published PVE 8.4 and 9.1 API schemas (method exists, every parameter known,
//! types, enums, patterns, formats — including each key of property strings —, required
//! parameters), and every response type decodes values generated from each schema's `returns`.
//!
//! The validators here are written from the schema and PVE's format definitions, independently
//! of the client's own checks.

use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;

use regex::Regex;
use serde_json::{Map, Value, json};

use super::samples::{self, Sample};
use crate::request::{ApiRequest, Method, ParamValue, Params};

/// A published Proxmox VE API schema (`shared/pve-reference/`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Schema {
    /// `pve-8.4-api-schema.json`.
    Pve8_4,
    /// `pve-9-api-schema.json` (pve-docs 9.1.3).
    Pve9_1,
}

impl Schema {
    /// Every schema the client must fit.
    const ALL: [Schema; 2] = [Schema::Pve8_4, Schema::Pve9_1];

    fn path(self) -> &'static str {
        match self {
            Schema::Pve8_4 => concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../../shared/pve-reference/pve-8.4-api-schema.json"
            ),
            Schema::Pve9_1 => concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../../shared/pve-reference/pve-9-api-schema.json"
            ),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Schema::Pve8_4 => "PVE 8.4",
            Schema::Pve9_1 => "PVE 9.1",
        }
    }
}

fn index(schema: Schema) -> &'static HashMap<String, Value> {
    static INDEX_8_4: OnceLock<HashMap<String, Value>> = OnceLock::new();
    static INDEX_9_1: OnceLock<HashMap<String, Value>> = OnceLock::new();
    let cell = match schema {
        Schema::Pve8_4 => &INDEX_8_4,
        Schema::Pve9_1 => &INDEX_9_1,
    };
    cell.get_or_init(|| {
        let path = schema.path();
        let name = schema.name();
        let text = std::fs::read_to_string(path).unwrap_or_else(|e| {
            panic!(
                "the {name} API schema is missing: expected it at {path} \
                 (shared/pve-reference/ beside the repository checkout, see its README.md): {e}"
            )
        });
        let doc: Value = serde_json::from_str(&text).expect("the schema file is JSON");
        let mut idx = HashMap::new();
        fn walk(nodes: &Value, idx: &mut HashMap<String, Value>) {
            for n in nodes.as_array().into_iter().flatten() {
                if let Some(p) = n["path"].as_str() {
                    idx.insert(p.to_owned(), n.clone());
                }
                walk(&n["children"], idx);
            }
        }
        walk(&doc["tree"], &mut idx);
        idx
    })
}

fn method_info(schema: Schema, req_method: Method, template: &str) -> Option<&'static Value> {
    let info = index(schema)
        .get(template)?
        .get("info")?
        .get(req_method.as_str())?;
    Some(info)
}

fn truthy(v: &Value) -> bool {
    match v {
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty() && s != "0",
        _ => false,
    }
}

fn num(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

fn anchored(pattern: &str) -> Regex {
    let p = pattern.replace("(?^:", "(?:").replace("(?^i:", "(?i:");
    Regex::new(&format!("^(?:{p})$")).unwrap_or_else(|e| panic!("schema pattern {pattern:?}: {e}"))
}

/// Finds the schema of parameter `name`: exact, or `prefix[n]` for `prefixN`.
fn lookup<'a>(props: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    if let Some(p) = props.get(name) {
        return Some(p);
    }
    let prefix = name.trim_end_matches(|c: char| c.is_ascii_digit());
    if prefix.len() < name.len() {
        return props.get(&format!("{prefix}[n]"));
    }
    None
}

// ---------- named formats ----------

fn re(p: &str) -> Regex {
    Regex::new(p).expect("test regex")
}

fn is_volid(s: &str) -> bool {
    re(r"(?i)^[a-z][a-z0-9\-_.]*[a-z0-9]:.+$").is_match(s)
}

/// Property-string formats that the schema names instead of inlining.
fn named_propstring_format(name: &str) -> Option<Value> {
    let v = match name {
        "pve-qm-ipconfig" => json!({
            "ip": {"type": "string", "optional": 1, "format": "pve-ipv4-config"},
            "gw": {"type": "string", "optional": 1, "format": "ipv4"},
            "ip6": {"type": "string", "optional": 1, "format": "pve-ipv6-config"},
            "gw6": {"type": "string", "optional": 1, "format": "ipv6"},
        }),
        "pve-qm-boot" => json!({
            "legacy": {"type": "string", "optional": 1, "default_key": 1, "pattern": "[acdn]{1,4}"},
            "order": {"type": "string", "optional": 1, "format": "pve-qm-bootdev-list"},
        }),
        "pve-qm-smbios1" => json!({
            "uuid": {"type": "string", "optional": 1, "pattern": "[a-fA-F0-9]{8}(?:-[a-fA-F0-9]{4}){3}-[a-fA-F0-9]{12}"},
            "base64": {"type": "boolean", "optional": 1},
            "family": {"type": "string", "optional": 1, "pattern": "[A-Za-z0-9+/]+={0,2}"},
            "manufacturer": {"type": "string", "optional": 1, "pattern": "[A-Za-z0-9+/]+={0,2}"},
            "product": {"type": "string", "optional": 1, "pattern": "[A-Za-z0-9+/]+={0,2}"},
            "serial": {"type": "string", "optional": 1, "pattern": "[A-Za-z0-9+/]+={0,2}"},
            "sku": {"type": "string", "optional": 1, "pattern": "[A-Za-z0-9+/]+={0,2}"},
            "version": {"type": "string", "optional": 1, "pattern": "[A-Za-z0-9+/]+={0,2}"},
        }),
        "pve-vm-cpu-conf" => json!({
            "cputype": {"type": "string", "optional": 1, "default_key": 1, "pattern": "(?:custom-)?[a-zA-Z0-9_.\\-]+"},
            "flags": {"type": "string", "optional": 1, "pattern": "(?:[+-][a-zA-Z0-9\\-_.]+;?)*"},
            "hidden": {"type": "boolean", "optional": 1},
            "hv-vendor-id": {"type": "string", "optional": 1, "pattern": "[a-zA-Z0-9]{1,12}"},
            "phys-bits": {"type": "string", "optional": 1, "pattern": "(?:[0-9]+|host)"},
            "reported-model": {"type": "string", "optional": 1},
        }),
        _ => return None,
    };
    Some(v)
}

fn check_named_format(format: &str, s: &str) -> Result<(), String> {
    let ok = match format {
        "pve-node" => re(r"^[a-zA-Z0-9]([a-zA-Z0-9\-]*[a-zA-Z0-9])?$").is_match(s),
        "pve-storage-id" => re(r"(?i)^[a-z][a-z0-9\-_.]*[a-z0-9]$").is_match(s),
        "pve-poolid" => re(r"^[A-Za-z0-9_\-]+(/[A-Za-z0-9_\-]+){0,2}$").is_match(s),
        "dns-name" => {
            re(r"^[a-zA-Z0-9]([a-zA-Z0-9\-]*[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9\-]*[a-zA-Z0-9])?)*$").is_match(s)
        }
        "urlencoded" => re(r"^[-%a-zA-Z0-9_.!~*'()]*$").is_match(s),
        "pve-tag-list" => {
            let tag = re(r"(?i)^[a-z0-9_][a-z0-9_\-+.]*$");
            let tags: Vec<&str> = s.split([';', ',', ' ']).filter(|t| !t.is_empty()).collect();
            !tags.is_empty() && tags.iter().all(|t| tag.is_match(t))
        }
        "address-list" => s
            .split([';', ',', ' '])
            .filter(|t| !t.is_empty())
            .all(|a| a.parse::<std::net::IpAddr>().is_ok()),
        "mac-addr" => re(r"(?i)^[a-f0-9][02468ace](:[a-f0-9]{2}){5}$").is_match(s),
        "pve-bridge-id" => re(r"^[-_.\w\d]+$").is_match(s),
        "pve-volume-id-or-qm-path" => s == "none" || s == "cdrom" || s.starts_with('/') || is_volid(s),
        "pve-volume-id-or-absolute-path" => s.starts_with('/') || is_volid(s),
        "disk-size" => re(r"^\d+(\.\d+)?[KMGT]?$").is_match(s),
        "pve-configid" => re(r"^[a-z][a-z0-9_]+$").is_match(s),
        "pve-configid-list" => s.split(',').all(|k| re(r"^[a-z][a-z0-9_]+$").is_match(k)),
        "pve-storage-content" => re(r"^[a-z]+$").is_match(s),
        "pve-storage-content-list" => s.split(',').all(|k| re(r"^[a-z]+$").is_match(k)),
        "ipv4" => s.parse::<std::net::Ipv4Addr>().is_ok(),
        "ipv6" => s.parse::<std::net::Ipv6Addr>().is_ok(),
        "pve-ipv4-config" => s == "dhcp" || cidr(s, false),
        "pve-ipv6-config" => s == "dhcp" || s == "auto" || cidr(s, true),
        "pve-qm-bootdev-list" => s
            .split(';')
            .all(|d| re(r"^(ide|sata|scsi|virtio|efidisk|tpmstate|net|hostpci|usb)\d+$").is_match(d)),
        other => return Err(format!("the test has no validator for format {other:?}; add one")),
    };
    if ok {
        Ok(())
    } else {
        Err(format!("{s:?} does not match format {format}"))
    }
}

fn cidr(s: &str, v6: bool) -> bool {
    let Some((ip, prefix)) = s.split_once('/') else {
        return false;
    };
    let Ok(prefix) = prefix.parse::<u8>() else {
        return false;
    };
    if v6 {
        ip.parse::<std::net::Ipv6Addr>().is_ok() && prefix <= 128
    } else {
        ip.parse::<std::net::Ipv4Addr>().is_ok() && prefix <= 32
    }
}

// ---------- value checks ----------

fn check_string(name: &str, schema: &Value, s: &str, out: &mut Vec<String>) {
    if let Some(max) = schema.get("maxLength").and_then(num)
        && s.chars().count() as f64 > max
    {
        out.push(format!("{name}: longer than maxLength {max}"));
    }
    if let Some(values) = schema.get("enum").and_then(Value::as_array)
        && !values.iter().any(|v| v.as_str() == Some(s))
    {
        out.push(format!("{name}: {s:?} is not in the enum {values:?}"));
    }
    if let Some(p) = schema.get("pattern").and_then(Value::as_str)
        && !anchored(p).is_match(s)
    {
        out.push(format!("{name}: {s:?} does not match the pattern {p}"));
    }
    match schema.get("format") {
        Some(Value::String(f)) => match named_propstring_format(f) {
            Some(fmt) => check_propstring(name, fmt.as_object().expect("object"), s, out),
            None => {
                if let Err(e) = check_named_format(f, s) {
                    out.push(format!("{name}: {e}"));
                }
            }
        },
        Some(Value::Object(fmt)) => check_propstring(name, fmt, s, out),
        _ => {}
    }
}

fn check_scalar(name: &str, schema: &Value, wire: &str, out: &mut Vec<String>) {
    match schema
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("string")
    {
        "boolean" => {
            if wire != "0" && wire != "1" {
                out.push(format!("{name}: boolean must be 0 or 1, got {wire:?}"));
            }
        }
        "integer" => match wire.parse::<i64>() {
            Ok(i) => {
                if let Some(min) = schema.get("minimum").and_then(num)
                    && (i as f64) < min
                {
                    out.push(format!("{name}: {i} is below the minimum {min}"));
                }
                if let Some(max) = schema.get("maximum").and_then(num)
                    && (i as f64) > max
                {
                    out.push(format!("{name}: {i} is above the maximum {max}"));
                }
            }
            Err(_) => out.push(format!("{name}: {wire:?} is not an integer")),
        },
        "number" => {
            if wire.parse::<f64>().is_err() {
                out.push(format!("{name}: {wire:?} is not a number"));
            }
        }
        "string" => check_string(name, schema, wire, out),
        other => out.push(format!("{name}: the test does not handle type {other}")),
    }
}

fn check_propstring(name: &str, fmt: &Map<String, Value>, s: &str, out: &mut Vec<String>) {
    let mut given: HashSet<String> = HashSet::new();
    for part in s.split(',') {
        let (key, value) = match part.split_once('=') {
            Some((k, v)) => (k.to_owned(), v),
            None => match fmt
                .iter()
                .find(|(_, p)| p.get("default_key").is_some_and(truthy))
            {
                Some((k, _)) => (k.clone(), part),
                None => {
                    out.push(format!(
                        "{name}: {part:?} has no key and the format has no default key"
                    ));
                    continue;
                }
            },
        };
        let Some(prop) = fmt.get(&key) else {
            out.push(format!("{name}: unknown property-string key {key:?}"));
            continue;
        };
        let (target, schema) = match (
            prop.get("alias").and_then(Value::as_str),
            prop.get("keyAlias").and_then(Value::as_str),
        ) {
            (Some(alias), Some(key_alias)) => {
                // `virtio=MAC`: the key is the value of `model`, the value is `macaddr`.
                if let Some(model) = fmt.get(key_alias) {
                    check_scalar(&format!("{name}.{key_alias}"), model, &key, out);
                }
                given.insert(key_alias.to_owned());
                (alias.to_owned(), fmt.get(alias))
            }
            (Some(alias), None) => (alias.to_owned(), fmt.get(alias)),
            _ => (key.clone(), Some(prop)),
        };
        if !given.insert(target.clone()) {
            out.push(format!("{name}: key {target:?} given twice"));
        }
        match schema {
            Some(schema) => check_scalar(&format!("{name}.{target}"), schema, value, out),
            None => out.push(format!("{name}: alias {key:?} points nowhere")),
        }
    }
    for (k, p) in fmt {
        if p.get("type").is_some() && !p.get("optional").is_some_and(truthy) && !given.contains(k) {
            out.push(format!(
                "{name}: required property-string key {k:?} is missing"
            ));
        }
    }
}

/// Every problem of `req` with respect to `schema`.
fn check_request(schema: Schema, req: &ApiRequest) -> Vec<String> {
    let mut out = Vec::new();
    let what = format!("{}: {}", schema.name(), req.describe());
    let Some(info) = method_info(schema, req.method, req.template) else {
        return vec![format!(
            "{what}: no such path/method in the {} schema",
            schema.name()
        )];
    };
    let empty = Map::new();
    let props = info
        .pointer("/parameters/properties")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let mut present: HashSet<String> = HashSet::new();
    for (t, p) in req.template.split('/').zip(req.path.split('/')) {
        if let Some(name) = t.strip_prefix('{').and_then(|t| t.strip_suffix('}')) {
            let value = percent_encoding::percent_decode_str(p)
                .decode_utf8_lossy()
                .into_owned();
            match props.get(name) {
                Some(schema) => {
                    check_scalar(&format!("{what}: path {name}"), schema, &value, &mut out)
                }
                None => out.push(format!(
                    "{what}: path parameter {name} is not in the schema"
                )),
            }
            present.insert(name.to_owned());
        }
    }
    for (name, value) in req.params.iter() {
        let label = format!("{what}: {name}");
        let Some(schema) = lookup(props, name) else {
            out.push(format!("{label}: unknown parameter"));
            continue;
        };
        let ty = schema
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("string");
        match (ty, value) {
            ("boolean", ParamValue::Bool(_))
            | ("integer", ParamValue::Int(_))
            | ("number", ParamValue::Num(_) | ParamValue::Int(_)) => {}
            ("string", ParamValue::Str(_) | ParamValue::Secret(_)) => {}
            (ty, v) => out.push(format!(
                "{label}: schema type {ty} but the client sends {v:?}"
            )),
        }
        check_scalar(&label, schema, &value.wire(), &mut out);
        present.insert(name.to_owned());
    }
    for (name, schema) in props {
        if !schema.get("optional").is_some_and(truthy)
            && !present.contains(name)
            && !name.ends_with("[n]")
        {
            out.push(format!("{what}: required parameter {name} is missing"));
        }
    }
    for (name, _) in req.params.iter() {
        if let Some(req_name) = lookup(props, name)
            .and_then(|s| s.get("requires"))
            .and_then(Value::as_str)
            && !present.contains(req_name)
        {
            out.push(format!("{what}: {name} requires {req_name}"));
        }
    }
    out
}

// ---------- response generation ----------

#[derive(Clone, Copy, Debug)]
enum Mode {
    /// Every property, native JSON types, booleans as JSON booleans.
    Full,
    /// Only the properties the schema requires.
    Minimal,
    /// Every property the way Perl often serialises: numbers as strings, booleans as 0/1.
    Perl,
}

fn generate(schema: &Value, mode: Mode, top_string: Option<&str>) -> Value {
    let ty = schema.get("type").and_then(Value::as_str).unwrap_or(
        if schema.get("properties").is_some() {
            "object"
        } else {
            "string"
        },
    );
    match ty {
        "object" => {
            let mut m = Map::new();
            for (k, p) in schema
                .get("properties")
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
            {
                if matches!(mode, Mode::Minimal) && p.get("optional").is_some_and(truthy) {
                    continue;
                }
                m.insert(k.clone(), generate(p, mode, None));
            }
            Value::Object(m)
        }
        "array" => match schema.get("items") {
            Some(items) => json!([generate(items, mode, None)]),
            None => json!([]),
        },
        "integer" => {
            let n = schema
                .get("minimum")
                .and_then(num)
                .map_or(1, |m| m.max(1.0) as i64);
            match mode {
                Mode::Perl => json!(n.to_string()),
                _ => json!(n),
            }
        }
        "number" => match mode {
            Mode::Perl => json!("0.5"),
            _ => json!(0.5),
        },
        "boolean" => match mode {
            Mode::Full => json!(true),
            _ => json!(1),
        },
        "null" => Value::Null,
        _ => {
            if let Some(s) = top_string {
                return json!(s);
            }
            if let Some(first) = schema
                .get("enum")
                .and_then(Value::as_array)
                .and_then(|e| e.first())
            {
                return first.clone();
            }
            json!("x")
        }
    }
}

// ---------- tests ----------

#[test]
fn every_request_the_client_builds_fits_the_pve_8_4_and_9_1_schemas() {
    let mut problems = Vec::new();
    for Sample { req, .. } in samples::all() {
        for schema in Schema::ALL {
            problems.extend(check_request(schema, &req));
        }
    }
    assert!(
        problems.is_empty(),
        "requests that do not fit the schema:\n{}",
        problems.join("\n")
    );
}

#[test]
fn every_response_type_decodes_the_schemas_returns_shape() {
    let mut problems = Vec::new();
    for (schema, sample) in Schema::ALL
        .into_iter()
        .flat_map(|schema| samples::all().into_iter().map(move |s| (schema, s)))
    {
        let what = format!("{}: {}", schema.name(), sample.req.describe());
        let Some(info) = method_info(schema, sample.req.method, sample.req.template) else {
            problems.push(format!("{what}: not in the schema"));
            continue;
        };
        let returns = info
            .get("returns")
            .cloned()
            .unwrap_or(json!({"type": "null"}));
        for mode in [Mode::Full, Mode::Minimal, Mode::Perl] {
            let value = generate(&returns, mode, sample.string_example);
            if let Err(e) = (sample.decode)(value.clone()) {
                problems.push(format!("{what} ({mode:?}): {e}\n  sample: {value}"));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "responses that do not decode:\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_samples_cover_every_endpoint_of_the_issue() {
    let covered: HashSet<(Method, &str)> = samples::all()
        .iter()
        .map(|s| (s.req.method, s.req.template))
        .collect();
    let q = "/nodes/{node}/qemu/{vmid}";
    let expected: Vec<(Method, String)> = vec![
        (Method::Get, "/version".into()),
        (Method::Get, "/nodes".into()),
        (Method::Get, "/nodes/{node}/status".into()),
        (Method::Get, "/nodes/{node}/storage".into()),
        (
            Method::Get,
            "/nodes/{node}/storage/{storage}/content".into(),
        ),
        (Method::Get, "/nodes/{node}/network".into()),
        (Method::Get, "/cluster/resources".into()),
        (Method::Get, "/cluster/nextid".into()),
        (Method::Get, "/nodes/{node}/qemu".into()),
        (Method::Post, "/nodes/{node}/qemu".into()),
        (Method::Get, format!("{q}/config")),
        (Method::Post, format!("{q}/config")),
        (Method::Put, format!("{q}/config")),
        (Method::Get, format!("{q}/pending")),
        (Method::Get, format!("{q}/status/current")),
        (Method::Post, format!("{q}/status/start")),
        (Method::Post, format!("{q}/status/stop")),
        (Method::Post, format!("{q}/status/shutdown")),
        (Method::Post, format!("{q}/status/reboot")),
        (Method::Post, format!("{q}/status/reset")),
        (Method::Put, format!("{q}/resize")),
        (Method::Post, format!("{q}/clone")),
        (Method::Delete, q.into()),
        (Method::Get, format!("{q}/agent/network-get-interfaces")),
        (Method::Get, "/access/permissions".into()),
        (Method::Post, "/access/ticket".into()),
        (Method::Get, "/nodes/{node}/tasks/{upid}/status".into()),
        (Method::Get, "/nodes/{node}/tasks/{upid}/log".into()),
        (Method::Get, "/nodes/{node}/tasks".into()),
    ];
    let missing: Vec<String> = expected
        .iter()
        .filter(|(m, t)| !covered.contains(&(*m, t.as_str())))
        .map(|(m, t)| format!("{m} {t}"))
        .collect();
    assert!(
        missing.is_empty(),
        "endpoints without a sample: {missing:?}"
    );
}

/// The checker must be able to fail: feed it requests that are wrong in each way it checks.
#[test]
fn the_schema_checker_reports_each_kind_of_mistake() {
    let cases: Vec<(ApiRequest, &str)> = vec![
        (
            ApiRequest::new(
                Method::Get,
                "/nodes/{node}/nope",
                &[("node", "pve")],
                Params::new(),
            ),
            "no such path",
        ),
        (
            ApiRequest::new(Method::Put, "/version", &[], Params::new()),
            "no such path/method",
        ),
        (
            ApiRequest::new(Method::Get, "/cluster/resources", &[], {
                let mut p = Params::new();
                p.str("type", "qemu");
                p
            }),
            "enum",
        ),
        (
            ApiRequest::new(Method::Get, "/cluster/resources", &[], {
                let mut p = Params::new();
                p.str("typ", "vm");
                p
            }),
            "unknown parameter",
        ),
        (
            ApiRequest::new(
                Method::Delete,
                "/nodes/{node}/qemu/{vmid}",
                &[("node", "pve"), ("vmid", "100")],
                {
                    let mut p = Params::new();
                    p.str("purge", "true");
                    p
                },
            ),
            "boolean",
        ),
        (
            ApiRequest::new(Method::Get, "/cluster/nextid", &[], {
                let mut p = Params::new();
                p.int("vmid", 99);
                p
            }),
            "minimum",
        ),
        (
            ApiRequest::new(
                Method::Post,
                "/nodes/{node}/qemu",
                &[("node", "pve")],
                Params::new(),
            ),
            "required parameter vmid",
        ),
        (
            ApiRequest::new(Method::Post, "/nodes/{node}/qemu", &[("node", "pve")], {
                let mut p = Params::new();
                p.int("vmid", 100).str("net0", "virtio,bridge=vmbr0,vlan=5");
                p
            }),
            "unknown property-string key",
        ),
        (
            ApiRequest::new(Method::Post, "/nodes/{node}/qemu", &[("node", "pve")], {
                let mut p = Params::new();
                p.int("vmid", 100)
                    .str("net0", "virtio=01:00:00:00:00:01,bridge=vmbr0");
                p
            }),
            "mac-addr",
        ),
        (
            ApiRequest::new(Method::Post, "/nodes/{node}/qemu", &[("node", "pve")], {
                let mut p = Params::new();
                p.int("vmid", 100).str("sshkeys", "ssh-ed25519 AAAA/x");
                p
            }),
            "urlencoded",
        ),
        (
            ApiRequest::new(Method::Post, "/nodes/{node}/qemu", &[("node", "pve")], {
                let mut p = Params::new();
                p.int("vmid", 100).str("scsi0", "local-lvm:32,ssd=yes");
                p
            }),
            "boolean",
        ),
        (
            ApiRequest::new(Method::Post, "/nodes/{node}/qemu", &[("node", "pve")], {
                let mut p = Params::new();
                p.int("vmid", 100).str("ipconfig0", "ip=10.0.0.1");
                p
            }),
            "pve-ipv4-config",
        ),
        (
            ApiRequest::new(
                Method::Put,
                "/nodes/{node}/qemu/{vmid}/config",
                &[("node", "pve"), ("vmid", "100")],
                {
                    let mut p = Params::new();
                    p.str("pool", "x");
                    p
                },
            ),
            "unknown parameter",
        ),
        (
            ApiRequest::new(
                Method::Get,
                "/nodes/{node}/status",
                &[("node", "pve_1")],
                Params::new(),
            ),
            "pve-node",
        ),
    ];
    for (req, expect) in cases {
        for schema in Schema::ALL {
            let problems = check_request(schema, &req);
            assert!(
                problems.iter().any(|p| p.contains(expect)),
                "{} {} {:?}: expected a problem mentioning {expect:?}, got {problems:?}",
                schema.name(),
                req.describe(),
                req.params
            );
        }
    }
}

/// Each schema is really consulted: a request that only one of them allows (pve9-changes.md
/// section 4.2) is reported against the other one only.
#[test]
fn each_schema_refuses_what_only_the_other_version_allows() {
    let create = |fill: &dyn Fn(&mut Params)| {
        let mut p = Params::new();
        p.int("vmid", 100);
        fill(&mut p);
        ApiRequest::new(Method::Post, "/nodes/{node}/qemu", &[("node", "pve")], p)
    };
    let cases = [
        (
            create(&|p| {
                p.str("scsi0", "local-lvm:32,cyls=1");
            }),
            Schema::Pve9_1,
            "cyls",
        ),
        (
            create(&|p| {
                p.bool("allow-ksm", false);
            }),
            Schema::Pve8_4,
            "unknown parameter",
        ),
        (
            create(&|p| {
                p.str("agent", "1,freeze-fs=0");
            }),
            Schema::Pve8_4,
            "freeze-fs",
        ),
    ];
    for (req, refusing, expect) in cases {
        for schema in Schema::ALL {
            let problems = check_request(schema, &req);
            if schema == refusing {
                assert!(
                    problems.iter().any(|p| p.contains(expect)),
                    "{}: {:?}: expected a problem mentioning {expect:?}, got {problems:?}",
                    schema.name(),
                    req.params
                );
            } else {
                assert!(
                    problems.is_empty(),
                    "{}: {:?}: {problems:?}",
                    schema.name(),
                    req.params
                );
            }
        }
    }
}

#[test]
fn the_response_generator_exercises_lenient_decoding() {
    let schema = json!({"type": "object", "properties": {
        "a": {"type": "integer", "minimum": 100},
        "b": {"type": "boolean", "optional": 1},
        "c": {"type": "number"}
    }});
    assert_eq!(
        generate(&schema, Mode::Full, None),
        json!({"a": 100, "b": true, "c": 0.5})
    );
    assert_eq!(
        generate(&schema, Mode::Minimal, None),
        json!({"a": 100, "c": 0.5})
    );
    assert_eq!(
        generate(&schema, Mode::Perl, None),
        json!({"a": "100", "b": 1, "c": "0.5"})
    );
}
