//! PVE property strings (`virtio,bridge=vmbr0,tag=10`): parsing and checking against sub-key rules.

use std::collections::BTreeMap;

use serde_json::Value;

use super::{Param, check_value};

/// A parsed property string: key → value (aliases resolved).
pub type PropMap = BTreeMap<String, String>;

/// Parses `text` with the sub-key rules `subs` as PVE's `parse_property_string` does, without
/// checking the values. Errors are PVE's messages.
pub fn parse_property_string(subs: &[Param], text: &str) -> Result<PropMap, String> {
    let mut out = PropMap::new();
    for part in text.split(',') {
        if part.is_empty() {
            continue;
        }
        let (key, value) = match part.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => match subs.iter().find(|p| p.default_key) {
                Some(d) => (d.name.to_string(), part.to_string()),
                None => {
                    return Err(
                        "value without key, but schema does not define a default key\n".to_string(),
                    );
                }
            },
        };
        let Some(rule) = subs.iter().find(|p| p.name == key) else {
            return Err(format!(
                "invalid key in comma-separated list property: {key}\n"
            ));
        };
        let mut insert = |k: &str, v: String| -> Result<(), String> {
            if out.insert(k.to_string(), v).is_some() {
                return Err(format!(
                    "duplicate key in comma-separated list property: {k}\n"
                ));
            }
            Ok(())
        };
        match (rule.key_alias, rule.alias) {
            (Some(key_alias), Some(alias)) => {
                insert(key_alias, key.clone())?;
                insert(alias, value)?;
            }
            (None, Some(alias)) => insert(alias, value)?,
            _ => insert(&key, value)?,
        }
    }
    Ok(out)
}

/// Parses and checks a property string against `subs`.
pub fn check(subs: &[Param], text: &str) -> Result<PropMap, String> {
    let map = parse_property_string(subs, text)?;
    let mut errors = Vec::new();
    for (key, value) in &map {
        if let Some(rule) = subs.iter().find(|p| p.name == key)
            && let Err(e) = check_value(rule, &Value::String(value.clone()))
        {
            errors.push(format!("{key}: {}", e.trim_end()));
        }
    }
    for rule in subs {
        if !rule.optional && rule.alias.is_none() && !map.contains_key(rule.name) {
            errors.push(format!(
                "{}: property is missing and it is not optional",
                rule.name
            ));
        }
    }
    if errors.is_empty() {
        Ok(map)
    } else {
        Err(format!("format error\n{}\n", errors.join("\n")))
    }
}
