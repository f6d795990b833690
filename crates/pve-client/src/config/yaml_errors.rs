//! Parser errors of the configuration document, naming the key but never quoting text of the
//! document that could be a secret written in the wrong place.

use super::ENV_VARS;
use crate::error::PveError;

/// The error for a document that does not parse, naming the key. The parser's message may quote
/// the offending value (`invalid type: string "..."`) or an unknown key, and either may be a
/// secret written in the wrong place: a value is never quoted for a secret key, and an unknown
/// key is named only when it looks like a key name.
pub(super) fn parse_error(path: &str, inner: &str) -> PveError {
    const SECRET_KEYS: [&str; 2] = ["proxmox.tokenSecret", "proxmox.password"];
    const UNKNOWN: &str = "unknown field `";
    if let Some(k) = inner
        .find(UNKNOWN)
        .and_then(|i| inner[i + UNKNOWN.len()..].split('`').next())
    {
        let looks_like_a_key = !k.is_empty()
            && k.len() <= 40
            && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        return if looks_like_a_key {
            let known: Vec<&str> = ENV_VARS.iter().map(|(key, _)| *key).collect();
            PveError::config(
                format!("proxmox.{k}"),
                format!("unknown key; the keys are {}", known.join(", ")),
            )
        } else {
            PveError::config(
                "proxmox",
                "has a key that is not a key name (not shown, in case it holds a value); write `key: value` with a space after the colon",
            )
        };
    }
    if SECRET_KEYS.contains(&path) {
        return PveError::config(path, "must be a string (the value is not shown)");
    }
    let key = if path.starts_with("proxmox.") {
        path.to_owned()
    } else {
        "proxmox".to_owned()
    };
    PveError::config(key, format!("cannot parse the configuration: {inner}"))
}

/// serde and serde_yaml copy text of the document into their messages: the offending value
/// (`invalid type: string "…"`, ``integer `5` ``) or a key (``unknown field `tokenId` ``,
/// `duplicate entry with key "url"`). A misplaced line can put the value of `tokenSecret` or
/// `password` there (`proxmox:` followed by lines without `: ` is one string), so quoted text is
/// kept only when it is a key name, never when it is a value.
pub(super) fn without_document_text(message: &str) -> String {
    // serde writes ``unknown field `KEY`, expected one of `url`, ...``: the key may itself hold
    // backticks, so it ends at the last "`, expected" (or "`, there are no fields").
    const UNKNOWN: &str = "unknown field `";
    if let Some(start) = message.find(UNKNOWN) {
        let after = start + UNKNOWN.len();
        let end = ["`, expected", "`, there are no fields"]
            .iter()
            .filter_map(|t| message.rfind(t))
            .max()
            .filter(|end| *end >= after);
        if let Some(end) = end {
            let key = &message[after..end];
            return format!(
                "{}{UNKNOWN}{}{}",
                without_document_text(&message[..start]),
                if is_key_name(key) { key } else { "…" },
                &message[end..]
            );
        }
    }
    const VALUE_TYPES: [&str; 5] = [
        "string ",
        "integer ",
        "floating point ",
        "boolean ",
        "character ",
    ];
    let mut out = String::with_capacity(message.len());
    let mut chars = message.chars();
    while let Some(c) = chars.next() {
        let close = match c {
            '"' | '`' => c,
            _ => {
                out.push(c);
                continue;
            }
        };
        let mut quoted = String::new();
        let mut escaped = false;
        for q in chars.by_ref() {
            if escaped {
                escaped = false;
            } else if q == '\\' && close == '"' {
                escaped = true;
                continue;
            } else if q == close {
                break;
            }
            quoted.push(q);
        }
        let a_value = VALUE_TYPES.iter().any(|t| out.ends_with(t));
        out.push(close);
        out.push_str(if !a_value && is_key_name(&quoted) {
            &quoted
        } else {
            "…"
        });
        out.push(close);
    }
    out
}

/// Whether `s` looks like a configuration key (`tokenID`, `insecureSkipVerify`), not like a value.
fn is_key_name(s: &str) -> bool {
    s.len() <= 40
        && s.starts_with(|c: char| c.is_ascii_alphabetic())
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}
