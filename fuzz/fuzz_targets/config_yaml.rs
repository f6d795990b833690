//! The `config.yaml` loader: `RawProxmoxConfig::from_yaml_str` + `resolve`, and the same document
//! as the `config.yaml` key of a ProxmoxCluster's credentials Secret
//! (`pve_operator::proxmox::registry::raw_config_from_secret`). Never a panic; a resolved URL
//! is normalised; and no error, nor the `Debug` form of what was loaded, shows the value of
//! `tokenSecret` or `password`.
//!
//! The secret values are the ones written on a `tokenSecret:`/`password:` line of the input
//! (plain or quoted); a leak is a text that shows the value, and shows the changed value when
//! the value is changed in place (so a text that merely contains the same characters does not
//! count).
#![no_main]

use std::collections::BTreeMap;
use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use pve_client::config::RawProxmoxConfig;
use pve_operator::proxmox::registry::raw_config_from_secret;
use pve_operator_fuzz::{assert_no_leak, kube_secret, resolve_texts, shift};
use regex::Regex;

static SECRET_LINE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"(?m)^[ \t]*(tokenSecret|password)[ \t]*:[ \t]*(\S[^\r\n]*?)[ \t]*\r?$"#)
        .expect("static regex")
});

/// Every text a user could see when `doc` is loaded by either path.
fn texts(doc: &str) -> Vec<String> {
    let mut out = resolve_texts(RawProxmoxConfig::from_yaml_str(doc));
    let secret = kube_secret(&BTreeMap::from([(
        "config.yaml".to_owned(),
        doc.as_bytes().to_vec(),
    )]));
    out.extend(resolve_texts(raw_config_from_secret(&secret)));
    out
}

/// The value of a `key: value` line without its quotes, as a byte range of `doc`.
fn unquoted(m: regex::Match<'_>) -> std::ops::Range<usize> {
    let v = m.as_str();
    let quoted = v.len() >= 2
        && ((v.starts_with('"') && v.ends_with('"')) || (v.starts_with('\'') && v.ends_with('\'')));
    if quoted {
        m.start() + 1..m.end() - 1
    } else {
        m.range()
    }
}

/// What the YAML parser itself makes of `proxmox.<key>`, as text, when the document parses.
fn parsed_value(doc: &str, key: &str) -> Option<Option<String>> {
    let value: serde_yaml::Value = serde_yaml::from_str(doc).ok()?;
    Some(match value.get("proxmox").and_then(|p| p.get(key)) {
        Some(serde_yaml::Value::String(s)) => Some(s.clone()),
        Some(serde_yaml::Value::Number(n)) => Some(n.to_string()),
        Some(serde_yaml::Value::Bool(b)) => Some(b.to_string()),
        _ => None,
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(doc) = std::str::from_utf8(data) else {
        return;
    };
    let seen = texts(doc);
    for caps in SECRET_LINE.captures_iter(doc) {
        let (Some(key), Some(value)) = (caps.get(1), caps.get(2)) else {
            continue;
        };
        let range = unquoted(value);
        let secret = &doc[range.clone()];
        if doc.matches(secret).count() != 1 {
            continue;
        }
        // When the document parses, the line must really be the secret key's value (not, say,
        // a line inside another key's block scalar).
        match parsed_value(doc, key.as_str()) {
            Some(Some(v)) if v == secret => {}
            Some(_) => continue,
            None => {}
        }
        let mut changed = doc.to_owned();
        changed.replace_range(range, &shift(secret));
        assert_no_leak(secret, &seen, &texts(&changed), doc);
    }
});
