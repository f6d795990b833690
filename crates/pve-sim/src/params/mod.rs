//! Parameter rules (a declarative table per endpoint) and their validation, as PVE's
//! `JSONSchema::validate`: unknown parameters rejected, types, ranges, lengths, patterns,
//! enumerations, named formats and property strings enforced.
//!
//! There is one generated table set per simulated version ([`generated`] from the PVE 8.4
//! schema, [`generated_9_1`] from the 9.1 one); [`table`] picks by [`PveVersion`].

mod formats;
#[rustfmt::skip]
pub mod generated;
#[rustfmt::skip]
pub mod generated_9_1;
mod propstring;

use std::collections::{BTreeMap, HashMap};
use std::sync::{LazyLock, Mutex};

use regex::Regex;
use serde_json::Value;

use crate::error::ApiError;
use crate::version::PveVersion;

pub use formats::split_list;
pub use propstring::{PropMap, parse_property_string};

/// JSON-schema type of a parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ty {
    /// `string`
    String,
    /// `integer`
    Integer,
    /// `number`
    Number,
    /// `boolean`
    Boolean,
}

impl Ty {
    /// The schema name of the type.
    pub fn name(self) -> &'static str {
        match self {
            Ty::String => "string",
            Ty::Integer => "integer",
            Ty::Number => "number",
            Ty::Boolean => "boolean",
        }
    }
}

/// The `format` of a parameter.
#[derive(Debug, Clone, Copy)]
pub enum Format {
    /// No format.
    None,
    /// A named PVE format such as `pve-vmid` or `dns-name`.
    Named(&'static str),
    /// A property string with these sub-keys.
    Props(&'static [Param]),
}

/// One parameter (or property-string sub-key) rule.
#[derive(Debug, Clone, Copy)]
pub struct Param {
    /// Name; `net[n]` for indexed parameters.
    pub name: &'static str,
    /// Type.
    pub ty: Ty,
    /// Whether it may be omitted.
    pub optional: bool,
    /// Minimum value.
    pub minimum: Option<f64>,
    /// Maximum value.
    pub maximum: Option<f64>,
    /// Maximum string length.
    pub max_length: Option<usize>,
    /// Regex the whole value must match.
    pub pattern: Option<&'static str>,
    /// Allowed values.
    pub enumeration: &'static [&'static str],
    /// Format.
    pub format: Format,
    /// Property-string key used for a value given without `key=`.
    pub default_key: bool,
    /// Property-string alias: this key is another name of `alias`.
    pub alias: Option<&'static str>,
    /// Property-string key alias (`virtio=MAC` sets `model=virtio,macaddr=MAC`).
    pub key_alias: Option<&'static str>,
    /// Another parameter that must be present with this one.
    pub requires: Option<&'static str>,
    /// Number of instances (`name0..name{N-1}`) of an indexed parameter.
    pub indexed: Option<u32>,
}

impl Param {
    /// The base name of an indexed parameter (`net` for `net[n]`), or the name.
    pub fn base(&self) -> &'static str {
        self.name.strip_suffix("[n]").unwrap_or(self.name)
    }
}

/// Validated request parameters (path, query and body merged), normalised to JSON:
/// integers and numbers as numbers, booleans as `true`/`false`, the rest as strings.
#[derive(Debug, Clone, Default)]
pub struct Params(pub BTreeMap<String, Value>);

impl Params {
    /// The raw value.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.0.get(name)
    }

    /// Whether the parameter is present.
    pub fn has(&self, name: &str) -> bool {
        self.0.contains_key(name)
    }

    /// A string parameter (numbers are rendered).
    pub fn str(&self, name: &str) -> Option<String> {
        match self.0.get(name)? {
            Value::String(s) => Some(s.clone()),
            Value::Bool(b) => Some(if *b { "1" } else { "0" }.to_string()),
            Value::Null => None,
            other => Some(other.to_string()),
        }
    }

    /// An integer parameter.
    pub fn int(&self, name: &str) -> Option<i64> {
        match self.0.get(name)? {
            Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
            Value::String(s) => s.parse().ok(),
            Value::Bool(b) => Some(i64::from(*b)),
            _ => None,
        }
    }

    /// A boolean parameter (absent is `false`).
    pub fn flag(&self, name: &str) -> bool {
        match self.0.get(name) {
            Some(Value::Bool(b)) => *b,
            Some(Value::Number(n)) => n.as_i64().is_some_and(|v| v != 0),
            Some(Value::String(s)) => s == "1" || s == "true",
            _ => false,
        }
    }
}

/// The generated parameter table of `method path` (a schema path template) in `version`'s
/// schema, if the simulator serves it (`/access` and `/pools` tables are in
/// [`crate::access::param_table_for`]).
pub fn table(version: PveVersion, method: &str, path: &str) -> Option<&'static [Param]> {
    match version {
        PveVersion::Pve8_4 => generated::table(method, path),
        PveVersion::Pve9_1 => generated_9_1::table(method, path),
    }
}

/// The text of the JSON-schema `requires` error for parameter `name`: pve-common changed it in
/// 9.0.8 (`0f0e791`).
pub fn requires_message(version: PveVersion, name: &str) -> String {
    if version.is_pve9() {
        format!("missing property required by '{name}'")
    } else {
        format!("missing property - '{name}' requires this property")
    }
}

/// Finds the rule for `name` in `table`, resolving indexed names such as `net0`.
pub fn find<'a>(table: &'a [Param], name: &str) -> Option<&'a Param> {
    if let Some(p) = table.iter().find(|p| p.indexed.is_none() && p.name == name) {
        return Some(p);
    }
    let digits = name.len() - name.trim_end_matches(|c: char| c.is_ascii_digit()).len();
    if digits == 0 {
        return None;
    }
    let (base, idx) = name.split_at(name.len() - digits);
    if idx.len() > 1 && idx.starts_with('0') {
        return None;
    }
    let idx: u32 = idx.parse().ok()?;
    table
        .iter()
        .find(|p| p.indexed.is_some_and(|n| idx < n) && p.base() == base)
}

/// [`validate_for`] with PVE 8.4's error texts.
pub fn validate(table: &[Param], input: BTreeMap<String, Value>) -> Result<Params, ApiError> {
    validate_for(PveVersion::Pve8_4, table, input)
}

/// Validates `input` against `table` as PVE `version` does; returns the normalised parameters or
/// a 400 `Parameter verification failed.` error with one entry per failing parameter.
pub fn validate_for(
    version: PveVersion,
    table: &[Param],
    input: BTreeMap<String, Value>,
) -> Result<Params, ApiError> {
    let mut errors: BTreeMap<String, String> = BTreeMap::new();
    let mut out = BTreeMap::new();
    for (name, value) in input {
        let Some(rule) = find(table, &name) else {
            add_error(
                &mut errors,
                &name,
                "property is not defined in schema and the schema does not allow additional properties",
            );
            continue;
        };
        match check_value(rule, &value) {
            Ok(v) => {
                out.insert(name, v);
            }
            Err(e) => add_error(&mut errors, &name, &e),
        }
    }
    for rule in table {
        if rule.indexed.is_none()
            && !rule.optional
            && !out.contains_key(rule.name)
            && !errors.contains_key(rule.name)
        {
            add_error(
                &mut errors,
                rule.name,
                "property is missing and it is not optional",
            );
        }
    }
    let present: Vec<String> = out.keys().cloned().collect();
    for name in present {
        if let Some(req) = find(table, &name).and_then(|r| r.requires)
            && !out.contains_key(req)
        {
            add_error(&mut errors, req, &requires_message(version, &name));
        }
    }
    if errors.is_empty() {
        Ok(Params(out))
    } else {
        Err(ApiError::params(errors))
    }
}

fn add_error(errors: &mut BTreeMap<String, String>, name: &str, msg: &str) {
    errors
        .entry(name.to_string())
        .and_modify(|e| {
            e.push_str("\\n");
            e.push_str(msg);
        })
        .or_insert_with(|| msg.to_string());
}

/// Renders a JSON value as PVE sees it in a check message.
fn as_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Bool(b) => if *b { "1" } else { "0" }.to_string(),
        other => other.to_string(),
    }
}

/// Checks one value against its rule; returns the normalised value or the error text.
pub fn check_value(rule: &Param, value: &Value) -> Result<Value, String> {
    let text = as_text(value);
    let normalised = match rule.ty {
        Ty::Boolean => match value {
            Value::Bool(b) => Value::Bool(*b),
            _ if text == "1" => Value::Bool(true),
            _ if text == "0" => Value::Bool(false),
            _ => return Err(format!("type check ('boolean') failed - got '{text}'")),
        },
        Ty::Integer => {
            let ok = match value {
                Value::Number(n) => n.is_i64() || n.is_u64(),
                Value::String(s) => integer_re().is_match(s),
                _ => false,
            };
            let parsed = text.trim_start_matches('+').parse::<i64>();
            match (ok, parsed) {
                (true, Ok(v)) => Value::from(v),
                _ => return Err(format!("type check ('integer') failed - got '{text}'")),
            }
        }
        Ty::Number => {
            let ok = match value {
                Value::Number(_) => true,
                Value::String(s) => number_re().is_match(s),
                _ => false,
            };
            match (ok, text.trim_start_matches('+').parse::<f64>()) {
                // `1e999` is a number to Perl too (infinity); JSON cannot carry it, so the
                // value stays as it was given.
                (true, Ok(v)) => serde_json::Number::from_f64(v)
                    .map(Value::Number)
                    .unwrap_or_else(|| Value::String(text.clone())),
                _ => return Err(format!("type check ('number') failed - got '{text}'")),
            }
        }
        Ty::String => Value::String(text.clone()),
    };
    if matches!(rule.ty, Ty::Integer | Ty::Number) {
        // The bounds apply to the value as parsed (an infinite one included).
        let v = match &normalised {
            Value::Number(n) => n.as_f64().unwrap_or(0.0),
            _ => text.trim_start_matches('+').parse::<f64>().unwrap_or(0.0),
        };
        if let Some(min) = rule.minimum
            && v < min
        {
            return Err(format!("value must have a minimum value of {}", num(min)));
        }
        if let Some(max) = rule.maximum
            && v > max
        {
            return Err(format!("value must have a maximum value of {}", num(max)));
        }
    }
    if rule.ty == Ty::String {
        if let Some(max) = rule.max_length
            && text.chars().count() > max
        {
            return Err(format!("value may only be {max} characters long"));
        }
        if let Some(pattern) = rule.pattern
            && !pattern_matches(pattern, &text)
        {
            return Err("value does not match the regex pattern".to_string());
        }
    }
    if !rule.enumeration.is_empty() && !rule.enumeration.contains(&text.as_str()) {
        return Err(format!(
            "value '{text}' does not have a value in the enumeration '{}'",
            rule.enumeration.join(", ")
        ));
    }
    match rule.format {
        Format::None => {}
        Format::Named(name) => {
            formats::check(name, &text).map_err(|e| format!("invalid format - {e}\n"))?
        }
        Format::Props(subs) => {
            propstring::check(subs, &text).map_err(|e| format!("invalid format - {e}"))?;
        }
    }
    Ok(normalised)
}

fn num(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

fn integer_re() -> &'static Regex {
    static RE: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^[+-]?\d+$").expect("static regex"));
    &RE
}

fn number_re() -> &'static Regex {
    static RE: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$").expect("static regex")
    });
    &RE
}

/// Whether `text` matches the schema `pattern` (anchored at both ends, as Perl's `^(?:..)$`).
/// A pattern the Rust regex engine cannot compile is treated as matching.
fn pattern_matches(pattern: &str, text: &str) -> bool {
    static CACHE: LazyLock<Mutex<HashMap<String, Option<Regex>>>> = LazyLock::new(Default::default);
    let Ok(mut cache) = CACHE.lock() else {
        return true;
    };
    let re = cache
        .entry(pattern.to_string())
        .or_insert_with(|| Regex::new(&format!("^(?:{pattern})$")).ok());
    re.as_ref().is_none_or(|re| re.is_match(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn qemu_create() -> &'static [Param] {
        generated::table("POST", "/nodes/{node}/qemu").unwrap_or(&[])
    }

    fn input(pairs: &[(&str, &str)]) -> BTreeMap<String, Value> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
            .collect()
    }

    #[test]
    fn unknown_parameter_is_rejected() {
        let err = validate(
            qemu_create(),
            input(&[("node", "pve"), ("vmid", "100"), ("bogus", "1")]),
        )
        .err()
        .map(|e| e.errors);
        assert_eq!(
            err.and_then(|e| e.get("bogus").cloned()).as_deref(),
            Some(
                "property is not defined in schema and the schema does not allow additional properties"
            )
        );
    }

    #[test]
    fn vmid_below_minimum_and_bad_integer_are_reported_per_parameter() {
        let err = validate(
            qemu_create(),
            input(&[("node", "pve"), ("vmid", "50"), ("cores", "abc")]),
        )
        .err()
        .map(|e| e.errors)
        .unwrap_or_default();
        assert_eq!(
            err.get("vmid").map(String::as_str),
            Some("value must have a minimum value of 100")
        );
        assert_eq!(
            err.get("cores").map(String::as_str),
            Some("type check ('integer') failed - got 'abc'")
        );
    }

    #[test]
    fn boolean_accepts_only_one_and_zero() {
        let err = validate(
            qemu_create(),
            input(&[("node", "pve"), ("vmid", "100"), ("start", "true")]),
        )
        .err()
        .map(|e| e.errors)
        .unwrap_or_default();
        assert_eq!(
            err.get("start").map(String::as_str),
            Some("type check ('boolean') failed - got 'true'")
        );
        let ok = validate(
            qemu_create(),
            input(&[("node", "pve"), ("vmid", "100"), ("start", "1")]),
        );
        assert!(ok.map(|p| p.flag("start")).unwrap_or(false));
    }

    #[test]
    fn missing_required_parameter_is_reported() {
        let err = validate(qemu_create(), input(&[("node", "pve")]))
            .err()
            .map(|e| e.errors)
            .unwrap_or_default();
        assert_eq!(
            err.get("vmid").map(String::as_str),
            Some("property is missing and it is not optional")
        );
    }

    #[test]
    fn indexed_parameters_respect_their_count() {
        assert!(find(qemu_create(), "net31").is_some());
        assert!(find(qemu_create(), "net32").is_none());
        assert!(find(qemu_create(), "scsi30").is_some());
        assert!(find(qemu_create(), "scsi31").is_none());
        assert!(find(qemu_create(), "net01").is_none());
    }

    #[test]
    fn property_strings_are_checked() {
        let bad = validate(
            qemu_create(),
            input(&[
                ("node", "pve"),
                ("vmid", "100"),
                ("net0", "virtio,bridge=vmbr0,bogus=1"),
            ]),
        );
        assert!(bad.is_err());
        let bad_model = validate(
            qemu_create(),
            input(&[("node", "pve"), ("vmid", "100"), ("net0", "nic9000")]),
        );
        assert!(bad_model.is_err());
        let ok = validate(
            qemu_create(),
            input(&[
                ("node", "pve"),
                ("vmid", "100"),
                ("net0", "virtio,bridge=vmbr0,tag=10"),
                ("scsi0", "local-lvm:32,iothread=1"),
                ("memory", "2048"),
                ("name", "web-1"),
            ]),
        );
        assert!(ok.is_ok(), "{ok:?}");
    }

    #[test]
    fn numbers_beyond_f64_are_checked_against_the_bounds_as_pve_does() {
        // Found by the sim_params fuzz target's invariant (accepted numbers lie within the
        // schema's bounds): `cpulimit=1e999` (infinity, maximum 128) was accepted as null.
        let err = validate(
            qemu_create(),
            input(&[("node", "pve"), ("vmid", "100"), ("cpulimit", "1e999")]),
        )
        .err()
        .map(|e| e.errors)
        .unwrap_or_default();
        assert_eq!(
            err.get("cpulimit").map(String::as_str),
            Some("value must have a maximum value of 128")
        );
        let err = validate(
            qemu_create(),
            input(&[("node", "pve"), ("vmid", "100"), ("cpulimit", "-1e999")]),
        )
        .err()
        .map(|e| e.errors)
        .unwrap_or_default();
        assert_eq!(
            err.get("cpulimit").map(String::as_str),
            Some("value must have a minimum value of 0")
        );
        let ok = validate(
            qemu_create(),
            input(&[("node", "pve"), ("vmid", "100"), ("cpulimit", "1.5")]),
        );
        assert_eq!(
            ok.ok().and_then(|p| p.get("cpulimit").cloned()),
            Some(Value::from(1.5))
        );
    }

    #[test]
    fn dns_name_format_is_enforced() {
        let err = validate(
            qemu_create(),
            input(&[("node", "pve"), ("vmid", "100"), ("name", "bad_name!")]),
        )
        .err()
        .map(|e| e.errors)
        .unwrap_or_default();
        assert_eq!(
            err.get("name").map(String::as_str),
            Some("invalid format - value does not look like a valid DNS name\n")
        );
    }
}
