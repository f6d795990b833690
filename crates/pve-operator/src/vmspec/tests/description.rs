//! The admission pattern for descriptions (`FREE_TEXT`, evaluated by the API server's RE2) and
//! pve-client's description encoder refuse the same characters, so a description the API server
//! stores never fails later in the controller (after a VMID is recorded).

use pve_client::api::vmconfig::VmConfig;
use pve_operator_api::patterns::FREE_TEXT;

fn encoder_accepts(text: &str) -> bool {
    VmConfig {
        description: Some(text.to_owned()),
        ..VmConfig::default()
    }
    .to_params()
    .is_ok()
}

#[test]
fn admission_and_the_encoder_agree_on_every_character_of_a_description() {
    let pattern = regex::Regex::new(FREE_TEXT).expect("the pattern compiles");
    let mut refused = Vec::new();
    // The Basic Multilingual Plane: every control, space and line separator Unicode has.
    for c in (0..=0xFFFFu32).filter_map(char::from_u32) {
        let text = format!("notes{c}more\nline two");
        let admitted = pattern.is_match(&text);
        assert_eq!(
            admitted,
            encoder_accepts(&text),
            "U+{:04X}: admission {admitted}, encoder disagrees",
            u32::from(c)
        );
        if !admitted {
            refused.push(u32::from(c));
        }
    }
    let expected: Vec<u32> = (0..0x20)
        .chain(0x7F..0xA0)
        .filter(|c| *c != 0x09 && *c != 0x0A)
        .collect();
    assert_eq!(
        refused, expected,
        "exactly the control characters but tab and newline"
    );
}

#[test]
fn free_text_keeps_separators_and_unicode_line_separators() {
    let pattern = regex::Regex::new(FREE_TEXT).expect("the pattern compiles");
    let text = "a , = ; : / \t & * ! | > { [ # \" ' %0a\n\u{2028}\u{2029}\u{a0}";
    assert!(pattern.is_match(text) && encoder_accepts(text));
    for bad in [
        "a\rb",
        "a\0b",
        "a\u{85}b",
        "a\u{0B}b",
        "a\u{0C}b",
        "a\u{1B}[31mb",
    ] {
        assert!(!pattern.is_match(bad) && !encoder_accepts(bad), "{bad:?}");
    }
}
