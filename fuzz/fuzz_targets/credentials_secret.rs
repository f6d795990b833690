//! A ProxmoxCluster's credentials Secret with the keys `tokenID`/`tokenSecret` or
//! `username`/`password`/`realm` (`raw_config_from_secret`, then `resolve` as the registry
//! does): never a panic, and no error nor `Debug` form shows the value of `tokenSecret` or
//! `password` (a leak is a text that shows the value and shows the changed value when the value
//! is changed, see `assert_no_leak`).
//!
//! Input: one `key=value` line per Secret key (values are bytes, not necessarily UTF-8); a
//! `url=` line sets the endpoint, as the ProxmoxCluster's `spec.endpoint` does.
#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use pve_operator::proxmox::registry::raw_config_from_secret;
use pve_operator_fuzz::{assert_no_leak, kube_secret, resolve_texts, shift};

const SECRET_KEYS: [&str; 2] = ["tokenSecret", "password"];

fn texts(data: &BTreeMap<String, Vec<u8>>, url: Option<&str>) -> Vec<String> {
    let raw = raw_config_from_secret(&kube_secret(data)).map(|mut raw| {
        raw.url = Some(url.unwrap_or("https://pve.example:8006").to_owned());
        raw
    });
    resolve_texts(raw)
}

fuzz_target!(|input: &[u8]| {
    let mut data: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut url = None;
    for line in input.split(|b| *b == b'\n') {
        let Some(eq) = line.iter().position(|b| *b == b'=') else {
            continue;
        };
        let Ok(key) = std::str::from_utf8(&line[..eq]) else {
            continue;
        };
        let value = line[eq + 1..].to_vec();
        if key == "url" {
            url = String::from_utf8(value).ok();
        } else {
            data.insert(key.to_owned(), value);
        }
    }
    let seen = texts(&data, url.as_deref());
    for key in SECRET_KEYS {
        let Some(secret) = data.get(key).and_then(|v| std::str::from_utf8(v).ok()) else {
            continue;
        };
        if secret.is_empty() {
            continue;
        }
        let mut changed = data.clone();
        changed.insert(key.to_owned(), shift(secret).into_bytes());
        let rendered = String::from_utf8_lossy(input);
        assert_no_leak(secret, &seen, &texts(&changed, url.as_deref()), &rendered);
    }
});
