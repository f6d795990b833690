//! The simulator's parameter validation (`pve_sim::params::validate`, with the table each route
//! is wired to, `/access` and `/pools` ones included) on arbitrary parameter maps. Never a panic;
//! an accepted map holds only known parameters, every required one, values normalised to their
//! schema type within the schema's bounds, and validating it again gives the same map; a
//! refusal is a 400 naming only given or required parameters.
//!
//! Input: the first line `METHOD /path/template` picks the route (an unknown one picks a route
//! by a hash of the line); the rest is a JSON object (a JSON body) or `name=value` lines (a form
//! body).
#![no_main]

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use pve_sim::params::{Format, Param, Ty, find, parse_property_string, validate};
use pve_sim::router::Router;
use serde_json::Value;

static ROUTES: LazyLock<Vec<(String, &'static [Param])>> = LazyLock::new(|| {
    Router::build()
        .routes()
        .iter()
        .filter_map(|r| r.params.map(|t| (format!("{} {}", r.method, r.path), t)))
        .collect()
});

fn route(line: &str) -> &'static (String, &'static [Param]) {
    let routes = &*ROUTES;
    routes
        .iter()
        .find(|(name, _)| name == line)
        .unwrap_or_else(|| {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            line.hash(&mut h);
            &routes[(h.finish() % routes.len() as u64) as usize]
        })
}

fn check_accepted(
    endpoint: &str,
    table: &[Param],
    input: &BTreeMap<String, Value>,
    out: &BTreeMap<String, Value>,
) {
    for (name, value) in out {
        assert!(input.contains_key(name), "{endpoint}: {name} was not given");
        let rule =
            find(table, name).unwrap_or_else(|| panic!("{endpoint}: unknown {name} accepted"));
        match rule.ty {
            Ty::Boolean => assert!(
                value.is_boolean(),
                "{endpoint}: {name}={value} is not a boolean"
            ),
            Ty::Integer | Ty::Number => {
                let n = match (rule.ty, value) {
                    (Ty::Integer, Value::Number(n)) if n.is_i64() => n.as_f64(),
                    (Ty::Number, Value::Number(n)) => n.as_f64(),
                    // A number JSON cannot carry (`1e999`) stays as given.
                    (Ty::Number, Value::String(s)) => s
                        .trim_start_matches('+')
                        .parse::<f64>()
                        .ok()
                        .filter(|n| !n.is_finite()),
                    _ => None,
                };
                let Some(n) = n else {
                    panic!("{endpoint}: {name}={value} is not a {}", rule.ty.name());
                };
                assert!(
                    rule.minimum.is_none_or(|m| n >= m) && rule.maximum.is_none_or(|m| n <= m),
                    "{endpoint}: {name}={value} is outside {:?}..={:?}",
                    rule.minimum,
                    rule.maximum
                );
            }
            Ty::String => {
                let Value::String(s) = value else {
                    panic!("{endpoint}: {name}={value} is not a string");
                };
                if let Some(max) = rule.max_length {
                    assert!(
                        s.chars().count() <= max,
                        "{endpoint}: {name} longer than {max}"
                    );
                }
                if !rule.enumeration.is_empty() {
                    assert!(
                        rule.enumeration.contains(&s.as_str()),
                        "{endpoint}: {name}={s:?}"
                    );
                }
                if let Format::Props(subs) = rule.format {
                    assert!(
                        parse_property_string(subs, s).is_ok(),
                        "{endpoint}: {name}={s:?} accepted but does not parse"
                    );
                }
            }
        }
    }
    for rule in table {
        if rule.indexed.is_none() && !rule.optional {
            assert!(
                out.contains_key(rule.name),
                "{endpoint}: required {} missing",
                rule.name
            );
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (first, rest) = text.split_once('\n').unwrap_or((text, ""));
    let (endpoint, table) = route(first);
    let input: BTreeMap<String, Value> = if rest.trim_start().starts_with('{') {
        match serde_json::from_str::<Value>(rest) {
            Ok(Value::Object(map)) => map.into_iter().collect(),
            _ => return,
        }
    } else {
        rest.lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_owned(), Value::String(v.to_owned())))
            .collect()
    };
    match validate(table, input.clone()) {
        Ok(params) => {
            check_accepted(endpoint, table, &input, &params.0);
            match validate(table, params.0.clone()) {
                Ok(again) => {
                    assert_eq!(again.0, params.0, "{endpoint}: validating again changed it")
                }
                Err(e) => panic!(
                    "{endpoint}: {:?} was accepted, normalised to {:?}, which is refused: {:?}",
                    input, params.0, e.errors
                ),
            }
        }
        Err(e) => {
            assert_eq!(e.code, 400, "{endpoint}: {e:?}");
            assert!(
                !e.errors.is_empty(),
                "{endpoint}: a refusal without a reason"
            );
            for name in e.errors.keys() {
                let known = input.contains_key(name)
                    || table
                        .iter()
                        .any(|r| r.name == name.as_str() || r.requires == Some(name.as_str()));
                assert!(
                    known,
                    "{endpoint}: the error names {name:?}, neither given nor a rule"
                );
            }
        }
    }
});
