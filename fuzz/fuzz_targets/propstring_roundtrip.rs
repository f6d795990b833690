//! `PropertyStringBuilder` → `PropertyString::parse`: whatever the builder accepts parses back
//! to exactly the entries that were pushed, in order; whatever could change the structure of the
//! string is refused, naming the field.
//!
//! Input: one entry per line. `key=value` is pushed with the check the client uses for that key
//! (`bridge` → `check::bridge`, `tag` → `check::vlan`, ...; other keys `check::any`), `order` and
//! `trunks` as lists split at `;`, `0`/`1` of a flag key with `push_bool`, digits of a number
//! key with `push_uint`; a line without `=` is the value of the default key. Keys are constants
//! in the client's code, so the harness only uses keys of `[a-z0-9_-]` and each key once, with
//! at most one default value (the builder's contract).
#![no_main]

use libfuzzer_sys::fuzz_target;
use pve_client::PveError;
use pve_client::propstring::{Check, PropertyString, PropertyStringBuilder, check};

const FIELD: &str = "net0";

fn check_for(key: &str) -> Check {
    match key {
        "bridge" => check::bridge,
        "virtio" | "e1000" | "e1000e" | "rtl8139" | "vmxnet3" | "macaddr" => check::mac,
        "tag" => check::vlan,
        "size" => check::size,
        "file" | "import-from" => check::volume_id,
        "model" | "cache" | "media" | "efitype" | "cputype" | "discard" => check::word,
        "ip" => check::ipv4_cidr,
        "ip6" => check::ipv6_cidr,
        "gw" => check::ipv4,
        "gw6" => check::ipv6,
        "uuid" => check::uuid,
        "order" => check::boot_device,
        "trunks" => check::vlan,
        "storage" => check::storage_id,
        _ => check::any,
    }
}

fn is_flag(key: &str) -> bool {
    matches!(
        key,
        "firewall"
            | "link_down"
            | "ssd"
            | "iothread"
            | "backup"
            | "enabled"
            | "fstrim_cloned_disks"
            | "pre-enrolled-keys"
    )
}

fn is_number(key: &str) -> bool {
    matches!(key, "mtu" | "queues" | "rate")
}

/// Must the builder refuse `value` as (one item of) a property-string value?
fn structural(value: &str) -> bool {
    value.is_empty() || value.contains([',', '=', ';']) || value.chars().any(char::is_control)
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut builder = PropertyStringBuilder::new(FIELD);
    let mut expected: Vec<(Option<String>, String)> = Vec::new();
    let mut all_ok = true;
    for line in text.strip_suffix('\n').unwrap_or(text).split('\n') {
        let (key, value) = match line.split_once('=') {
            Some((k, v)) => (Some(k), v),
            None => (None, line),
        };
        let key_ok = key.is_none_or(|k| {
            !k.is_empty()
                && k.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
        });
        if !key_ok || expected.iter().any(|(k, _)| k.as_deref() == key) {
            return;
        }
        let result = match key {
            None => builder
                .default_value("file", value, check_for("file"))
                .map(|_| ()),
            Some(k) if is_flag(k) && (value == "0" || value == "1") => {
                builder.push_bool(k, value == "1");
                Ok(())
            }
            Some(k)
                if is_number(k) && value.parse::<u64>().is_ok_and(|n| n.to_string() == value) =>
            {
                builder.push_uint(k, value.parse().unwrap_or_default());
                Ok(())
            }
            Some(k @ ("order" | "trunks")) => {
                let items: Vec<&str> = value.split(';').collect();
                let r = builder.push_list(k, &items, check_for(k)).map(|_| ());
                if r.is_ok() {
                    assert!(
                        !items.iter().any(|i| structural(i)),
                        "list {k}={value:?} was accepted"
                    );
                }
                r
            }
            Some(k) => {
                let r = builder.push(k, value, check_for(k)).map(|_| ());
                if r.is_ok() {
                    assert!(!structural(value), "{k}={value:?} was accepted");
                }
                r
            }
        };
        match result {
            Ok(()) => expected.push((key.map(str::to_owned), value.to_owned())),
            Err(PveError::InvalidInput { field, .. }) => {
                let named = format!("{FIELD}.{}", key.unwrap_or("file"));
                assert_eq!(field, named, "the error names another field");
                all_ok = false;
            }
            Err(other) => panic!("not an InvalidInput error: {other:?}"),
        }
    }
    if !all_ok {
        return;
    }
    let built = builder.build();
    let parsed = match PropertyString::parse(&built) {
        Ok(p) => p,
        Err(e) => panic!("the builder made {built:?}, which does not parse: {e}"),
    };
    let got: Vec<(Option<String>, String)> = parsed
        .entries()
        .map(|(k, v)| (k.map(str::to_owned), v.to_owned()))
        .collect();
    assert_eq!(
        got, expected,
        "{built:?} parses to other entries than were pushed"
    );
});
