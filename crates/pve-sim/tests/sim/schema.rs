//! Conformance with the published API schemas of PVE 8.4 and 9.1 (the reference material beside
//! the checkout): every served endpoint's parameter rules, and the return types of the read
//! endpoints' answers.

use std::collections::BTreeSet;
use std::path::PathBuf;

use pve_sim::version::PveVersion;
use reqwest::Method;
use serde_json::Value;

use crate::support::{advance_clock, create_vm, start_version, urlencode};

/// The reference material's directory (`../shared/pve-reference` beside the workspace).
fn reference_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/pve-reference");
    assert!(
        dir.join("pve-8.4-api-schema.json").is_file(),
        "the PVE reference material is missing: expected {} (shared/pve-reference beside the checkout)",
        dir.display()
    );
    dir
}

/// The published API schema of `version` (reference material).
fn schema_file(version: PveVersion) -> &'static str {
    match version {
        PveVersion::Pve8_4 => "pve-8.4-api-schema.json",
        PveVersion::Pve9_1 => "pve-9-api-schema.json",
    }
}

fn schema_index(version: PveVersion) -> std::collections::HashMap<String, Value> {
    let path = reference_dir().join(schema_file(version));
    let text = std::fs::read_to_string(&path).expect("schema readable");
    let schema: Value = serde_json::from_str(&text).expect("schema is JSON");
    let mut idx = std::collections::HashMap::new();
    fn walk(n: &Value, idx: &mut std::collections::HashMap<String, Value>) {
        if let Some(p) = n["path"].as_str() {
            idx.insert(p.to_string(), n.clone());
        }
        for c in n["children"].as_array().into_iter().flatten() {
            walk(c, idx);
        }
    }
    for n in schema["tree"].as_array().into_iter().flatten() {
        walk(n, &mut idx);
    }
    idx
}

fn compare_param(
    route: &str,
    name: &str,
    rule: &pve_sim::params::Param,
    schema: &Value,
    problems: &mut Vec<String>,
) {
    use pve_sim::params::{Format, Ty};
    let mut bad = |what: &str| problems.push(format!("{route} {name}: {what}"));
    let ty = match rule.ty {
        Ty::String => "string",
        Ty::Integer => "integer",
        Ty::Number => "number",
        Ty::Boolean => "boolean",
    };
    if schema
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("string")
        != ty
    {
        bad("type");
    }
    if schema.get("optional").and_then(Value::as_u64).unwrap_or(0) == 1 && !rule.optional {
        bad("optional");
    }
    // Perl sometimes serialises limits as strings ("minimum": "0").
    let num = |v: Option<&Value>| match v {
        Some(Value::String(s)) => s.parse::<f64>().ok(),
        Some(v) => v.as_f64(),
        None => None,
    };
    if num(schema.get("minimum")) != rule.minimum {
        bad("minimum");
    }
    if num(schema.get("maximum")) != rule.maximum {
        bad("maximum");
    }
    if schema
        .get("maxLength")
        .and_then(Value::as_u64)
        .map(|v| v as usize)
        != rule.max_length
    {
        bad("maxLength");
    }
    if schema.get("pattern").and_then(Value::as_str) != rule.pattern {
        bad("pattern");
    }
    let enumeration: Vec<String> = schema["enum"]
        .as_array()
        .map(|e| {
            e.iter()
                .map(|v| {
                    v.as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| v.to_string())
                })
                .collect()
        })
        .unwrap_or_default();
    if enumeration
        != rule
            .enumeration
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
    {
        bad("enum");
    }
    match (&schema["format"], rule.format) {
        (Value::Null, Format::None) => {}
        (Value::String(f), Format::Named(n)) if f == n => {}
        (Value::Object(subs), Format::Props(rules)) => {
            let names: BTreeSet<&str> = subs.keys().map(String::as_str).collect();
            let ours: BTreeSet<&str> = rules.iter().map(|r| r.name).collect();
            if names != ours {
                bad("property-string keys");
            }
            for r in rules {
                if let Some(s) = subs.get(r.name) {
                    compare_param(route, &format!("{name}.{}", r.name), r, s, problems);
                }
            }
        }
        _ => bad("format"),
    }
}

#[tokio::test]
async fn every_served_endpoint_has_the_schema_parameter_rules_of_each_version() {
    for version in PveVersion::ALL {
        served_endpoints_have_the_schema_parameter_rules(version);
    }
}

/// Each route's parameter table for `version` against `version`'s published schema.
fn served_endpoints_have_the_schema_parameter_rules(version: PveVersion) {
    let idx = schema_index(version);
    let router = pve_sim::router::Router::build();
    let mut problems = Vec::new();
    let mut checked = 0;
    for route in router.routes() {
        let id = format!("{version}: {} {}", route.method, route.path);
        if route.path == "/" {
            continue;
        }
        let Some(info) = idx
            .get(route.path)
            .and_then(|n| n["info"].get(route.method))
        else {
            problems.push(format!("{id}: not in the PVE {version} schema"));
            continue;
        };
        let Some(rules) = route.params_for(version) else {
            problems.push(format!("{id}: no parameter table"));
            continue;
        };
        let props = info["parameters"]["properties"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        let names: BTreeSet<&str> = props.keys().map(String::as_str).collect();
        let ours: BTreeSet<&str> = rules.iter().map(|r| r.name).collect();
        if names != ours {
            problems.push(format!(
                "{id}: parameters differ: schema-only {:?}, sim-only {:?}",
                names.difference(&ours).collect::<Vec<_>>(),
                ours.difference(&names).collect::<Vec<_>>()
            ));
        }
        for rule in rules {
            if let Some(s) = props.get(rule.name) {
                compare_param(&id, rule.name, rule, s, &mut problems);
            }
        }
        let allowtoken = info.get("allowtoken").and_then(Value::as_u64).unwrap_or(1) == 1;
        if allowtoken != route.allow_token {
            problems.push(format!("{id}: allowtoken differs"));
        }
        checked += 1;
    }
    assert!(
        problems.is_empty(),
        "{} problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
    assert!(checked >= 35, "{version}: only {checked} endpoints checked");
}

/// Whether a returned value fits the schema type of its property. Perl booleans are 0/1 numbers.
fn json_type_fits(spec: &Value, value: &Value) -> bool {
    match spec["type"].as_str() {
        Some("integer") => value.is_i64() || value.is_u64(),
        Some("number") => value.is_number(),
        Some("boolean") => value.is_boolean() || value.as_u64().is_some_and(|v| v <= 1),
        Some("string") => value.is_string(),
        Some("array") => value.is_array(),
        Some("object") => value.is_object(),
        _ => true,
    }
}

#[tokio::test]
async fn responses_of_read_endpoints_have_the_8_4_schema_return_types() {
    read_responses_have_the_schema_return_types(PveVersion::Pve8_4).await;
}

#[tokio::test]
async fn responses_of_read_endpoints_have_the_9_1_schema_return_types() {
    read_responses_have_the_schema_return_types(PveVersion::Pve9_1).await;
}

/// The read endpoints' answers of a `version` simulator against `version`'s `returns`.
async fn read_responses_have_the_schema_return_types(version: PveVersion) {
    let idx = schema_index(version);
    let (sim, api) = start_version(version).await;
    assert_eq!(
        create_vm(
            &api,
            "170",
            &[("agent", "1"), ("start", "1"), ("ciuser", "u")]
        )
        .await,
        "OK"
    );
    let upid = api
        .upid(Method::POST, "/nodes/pve/qemu/170/status/reset", &[])
        .await;
    api.wait_task(&upid).await;
    advance_clock(&sim, 5).await; // the guest agent answers once the guest has booted
    let enc = urlencode(&upid);
    // The read endpoints, each with its example path (`?type=network`: dump needs a type).
    let templates = [
        "/version",
        "/nodes",
        "/nodes/{node}",
        "/nodes/{node}/status",
        "/nodes/{node}/network",
        "/nodes/{node}/storage",
        "/nodes/{node}/storage/{storage}/content",
        "/storage",
        "/storage/{storage}",
        "/nodes/{node}/storage/{storage}",
        "/nodes/{node}/storage/{storage}/status",
        "/cluster",
        "/cluster/resources",
        "/cluster/status",
        "/cluster/nextid",
        "/cluster/tasks",
        "/nodes/{node}/qemu",
        "/nodes/{node}/qemu/{vmid}",
        "/nodes/{node}/qemu/{vmid}/config",
        "/nodes/{node}/qemu/{vmid}/pending",
        "/nodes/{node}/qemu/{vmid}/status",
        "/nodes/{node}/qemu/{vmid}/status/current",
        "/nodes/{node}/qemu/{vmid}/agent/network-get-interfaces",
        "/nodes/{node}/qemu/{vmid}/cloudinit",
        "/nodes/{node}/qemu/{vmid}/cloudinit/dump?type=network",
        "/nodes/{node}/tasks",
        "/nodes/{node}/tasks/{upid}",
        "/nodes/{node}/tasks/{upid}/status",
        "/nodes/{node}/tasks/{upid}/log",
    ];
    let calls = templates.map(|example| {
        let template = example.split('?').next().unwrap_or(example);
        let path = example
            .replace("{node}", "pve")
            .replace("{storage}", "local-lvm")
            .replace("{vmid}", "170")
            .replace("{upid}", &enc);
        (template, path)
    });
    let mut problems = Vec::new();
    for (template, path) in calls {
        let data = api.get(&path).await;
        let returns = &idx[template]["info"]["GET"]["returns"];
        let want = returns["type"].as_str().unwrap_or("null");
        let got = match &data {
            Value::Array(_) => "array",
            Value::Object(_) => "object",
            Value::String(_) => "string",
            Value::Number(_) => "number",
            Value::Bool(_) => "boolean",
            Value::Null => "null",
        };
        // nextid: the schema says integer, real PVE sends a string (wire-behaviour.md section 3).
        let perl_string = template == "/cluster/nextid" && got == "string";
        if want != got && !perl_string {
            problems.push(format!(
                "{version}: {template}: returns {got}, schema says {want}"
            ));
            continue;
        }
        // Required properties of object items (or the object) must be present.
        let (item_schema, items): (&Value, Vec<&Value>) = match &data {
            Value::Array(list) => (&returns["items"], list.iter().collect()),
            other => (returns, vec![other]),
        };
        if let Some(props) = item_schema["properties"].as_object() {
            for item in items {
                for (name, spec) in props {
                    let optional = spec.get("optional").and_then(Value::as_u64).unwrap_or(0) == 1;
                    if !optional && item.get(name).is_none() {
                        problems.push(format!(
                            "{version}: {template}: required property '{name}' missing in {item}"
                        ));
                    }
                    // `/pending` values come from the typed config (integers are numbers on the
                    // wire, as in GET config) although the schema calls them strings.
                    let typed_config_value =
                        template.ends_with("/pending") && (name == "value" || name == "pending");
                    if let Some(value) = item.get(name)
                        && !typed_config_value
                        && !json_type_fits(spec, value)
                    {
                        problems.push(format!(
                            "{version}: {template}: property '{name}' = {value} does not fit {}",
                            spec["type"]
                        ));
                    }
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
