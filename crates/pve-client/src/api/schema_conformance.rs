//! Schema conformance: every request the client can build ([`super::samples::all`]) is checked
//! against the published PVE 8.4 and 9.1 API schemas (method exists, every parameter known,
//! types, enums, patterns, formats — including each key of property strings —, required
//! parameters), and every response type decodes values generated from each schema's `returns`.
//!
//! The validators here are written from the schema and PVE's format definitions, independently
//! of the client's own checks.
//!
//! This module loads the schemas and holds the helpers shared by its parts: the validators of
//! PVE's named formats (`formats`), the request checker (`check`), the generator of sample
//! responses (`generate`) and the tests that run them over every sample (`tests`).

use std::collections::HashMap;
use std::sync::OnceLock;

use regex::Regex;
use serde_json::{Map, Value};

use crate::request::Method;

mod check;
mod formats;
mod generate;
mod tests;

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
