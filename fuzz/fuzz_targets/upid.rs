//! The UPID parser against PVE's own decoder regex (pve-common `Tools.pm::upid_decode`, quoted in
//! wire-behaviour.md §4): a string parses if and only if PVE's regex matches it; what parses
//! prints (`Display`) in PVE's `upid_encode` form, which parses back to the same value and is
//! the input itself when the input was in that form.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use pve_client::Upid;
use regex::Regex;

static PVE_UPID: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^UPID:([a-zA-Z0-9]([a-zA-Z0-9\-]*[a-zA-Z0-9])?):([0-9A-Fa-f]{8}):([0-9A-Fa-f]{8,9}):([0-9A-Fa-f]{8}):([^:\s/]+):([^:\s/]*):([^:\s/]+):$",
    )
    .expect("PVE's UPID regex compiles")
});

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let parsed = text.parse::<Upid>();
    assert_eq!(
        parsed.is_ok(),
        PVE_UPID.is_match(text),
        "{text:?}: the client says {parsed:?}, PVE's regex disagrees"
    );
    let Ok(upid) = parsed else {
        return;
    };
    let printed = upid.to_string();
    match printed.parse::<Upid>() {
        Ok(again) => assert_eq!(again, upid, "{text:?} -> {printed:?}"),
        Err(e) => panic!("{text:?} parsed, but its printed form {printed:?} does not: {e}"),
    }
    // `upid_encode` is `%08X` for the numbers: an input written that way prints back unchanged.
    let canonical = [
        format!("{:08X}", upid.pid),
        format!("{:08X}", upid.pstart),
        format!("{:08X}", upid.starttime),
    ];
    let fields: Vec<&str> = text.split(':').collect();
    if fields.get(2..5).is_some_and(|f| f == canonical) {
        assert_eq!(printed, text);
    }
    let json = serde_json::to_string(&upid).expect("a UPID serialises");
    let back: Upid = serde_json::from_str(&json).expect("a serialised UPID deserialises");
    assert_eq!(back, upid);
});
