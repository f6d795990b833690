//! `PropertyString::parse` on any text: never panics, and what it accepts is a consistent list
//! of entries that, written out again, parses back to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pve_client::propstring::PropertyString;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(parsed) = PropertyString::parse(text) else {
        return;
    };
    let mut keys: Vec<&str> = Vec::new();
    let mut defaults = 0;
    let mut parts = Vec::new();
    for (key, value) in parsed.entries() {
        assert!(
            !value.contains(','),
            "{text:?}: value {value:?} contains ','"
        );
        match key {
            Some(key) => {
                assert!(
                    !key.is_empty() && !key.contains([',', '=']),
                    "{text:?}: bad key {key:?}"
                );
                assert!(!keys.contains(&key), "{text:?}: duplicate key {key:?}");
                keys.push(key);
                assert_eq!(parsed.get(key), Some(value), "{text:?}: get({key:?})");
                let _ = (parsed.get_bool(key), parsed.get_u64(key));
                parts.push(format!("{key}={value}"));
            }
            None => {
                defaults += 1;
                assert!(!value.contains('='), "{text:?}: default value {value:?}");
                assert_eq!(parsed.default_value(), Some(value));
                parts.push(value.to_owned());
            }
        }
    }
    assert!(defaults <= 1, "{text:?}: {defaults} values without a key");
    let written = parts.join(",");
    match PropertyString::parse(&written) {
        Ok(again) => assert_eq!(again, parsed, "{text:?} -> {written:?}"),
        Err(e) => panic!("{text:?} parsed, written out as {written:?} it does not: {e}"),
    }
});
