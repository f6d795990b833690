//! Checks a request against a schema: the path and method exist, every parameter is known and
//! has the right type, enum, pattern and format (each key of a property string included), and
//! every required parameter is there.

use std::collections::HashSet;

use serde_json::{Map, Value};

use super::formats::{check_named_format, named_propstring_format};
use super::{Schema, anchored, lookup, method_info, num, truthy};
use crate::request::{ApiRequest, ParamValue};

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
pub(super) fn check_request(schema: Schema, req: &ApiRequest) -> Vec<String> {
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
