use super::*;

/// Keys made by `ssh-keygen` (thrown away after).
pub(crate) const ED25519: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPjsWCgW3BI5PDsbLuSJon7lmBj7AOqlwB7kR9XRKDWs ops@example";
const RSA: &str = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABgQDbCjuUH2LSTd2sPxRU85b4hwPp64oXdRDBPASqQdd+qUL7PJVl2t3eQWnWCmawL7h3CU0JTNycMAWH9nwdbVW9fGmi25j3kYXI+u+S5gRTOvoyxndVqMU0axvhIBX7RcALAAcHUSU+J/Z3/bKDIttKFJYujGr2DPmak1ng1SM8B3ghza8ZECfoFrMYb2hKYIPuRFj70HaaXiIo6MrqhaAuhLZiZIsiXPvy7yPGCQrelQU98mEXtj1frmT7FzOV6UwhMEuGdrUY5fPDBEuubWpERCuqRIctfuQwF+77LoGFxr5Xnau3by/HgwqSKv58drfi6G6k5OJxvqBpbFt23MBb5rDqKalm21SwEiNugxz0Cs57QBlgVEzpLKgazevEm5Nv6ZjkHOhVWPkPXaz4NlUMa5mrPNw2A5Jk/VSJ62iHTae5obt+8cTqno8WxD1i1Kus7LzWVqyTrNyHrtbBvWynH4w3BvqgIpR9bBrk5788rFVnmquhlCVQq+6XOWrjOs8= ops@example";
const ECDSA256: &str = "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBBJJxagPSUBxjewEkpZvwCqAmdhpe/Y91LM9L/2ms5QTVzh+GiH26A/bCJjwr7zZ+PwOKWPnjlgOtw6Hxd42xRI= ci";
const ECDSA521: &str = "ecdsa-sha2-nistp521 AAAAE2VjZHNhLXNoYTItbmlzdHA1MjEAAAAIbmlzdHA1MjEAAACFBADsnd1s+52FcjWTBLufADNVQ7m26/sbPrKpv3Hh5C6SCxM8KmR/lcxSEMxjb03B9KK8AGZFQtC1ZKB6kg3X7Cz7QgE4vUjQfqJzHCXio4KycBk56YYM1R2LESfY01Mac31DebERmCKzkkhb3w5cK5bDquNF7UycrdjXRX2Q5GbwJUk3dA==";

fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A key blob of SSH strings.
fn blob(strings: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for s in strings {
        out.extend_from_slice(&(s.len() as u32).to_be_bytes());
        out.extend_from_slice(s);
    }
    out
}

/// A well-formed key line of `key_type` (its blob: type, 32 key bytes).
pub(crate) fn key_of(key_type: &str, comment: &str) -> String {
    let body = base64(&blob(&[key_type.as_bytes(), &[7u8; 32]]));
    if comment.is_empty() {
        format!("{key_type} {body}")
    } else {
        format!("{key_type} {body} {comment}")
    }
}

#[test]
fn the_test_encoder_agrees_with_real_keys() {
    let body = ED25519.split(' ').nth(1).unwrap();
    assert_eq!(base64(&decode_base64(body).unwrap()), body);
    let body = RSA.split(' ').nth(1).unwrap();
    assert_eq!(base64(&decode_base64(body).unwrap()), body);
}

#[test]
fn real_keys_of_every_type_are_accepted() {
    for key in [ED25519, RSA, ECDSA256, ECDSA521] {
        assert_eq!(check_public_key(key), Ok(()), "{key}");
    }
    for t in KEY_TYPES {
        assert_eq!(check_public_key(&key_of(t, "")), Ok(()), "{t}");
        assert_eq!(check_public_key(&key_of(t, "alice@laptop")), Ok(()), "{t}");
    }
    for comment in [
        "bob's key (work)",
        "user:host",
        "a#b",
        "a  b",
        "ключ Ünïcödé 鍵 🔑",
        "x=1,y=2;z",
        "\"quoted\" 'single' [flow] {map} &anchor *alias !tag |>%@`",
        "- dash ? question",
        ":leading-colon",
    ] {
        assert_eq!(
            check_public_key(&key_of("ssh-ed25519", comment)),
            Ok(()),
            "{comment:?}"
        );
    }
}

#[test]
fn yaml_line_breaks_controls_and_syntax_in_the_comment_are_refused() {
    let cases: &[(&str, &str)] = &[
        ("a\u{2028}runcmd: [id]", "U+2028"),
        ("a\u{2029}b", "U+2029"),
        ("a\u{85}b", "U+0085"),
        ("a\nb", "U+000A"),
        ("a\rb", "U+000D"),
        ("a\0b", "U+0000"),
        ("a\tb", "U+0009"),
        ("a\u{7f}b", "U+007F"),
        ("a\u{9b}b", "U+009B"),
        ("a\u{200b}b", "U+200B"),
        ("a\u{202e}b", "U+202E"),
        ("\u{feff}a", "U+FEFF"),
        ("a\u{E0041}", "U+E0041"),
        ("a\u{FFFE}", "U+FFFE"),
        ("a\u{FFFF}", "U+FFFF"),
        ("key: value", "': '"),
        ("trailing:", "':'"),
        ("x y:", "':'"),
        ("a #comment", "'#'"),
        ("#comment", "'#'"),
        (" lead", "leading or trailing space"),
        ("trail ", "leading or trailing space"),
    ];
    for (comment, expected) in cases {
        let key = key_of("ssh-ed25519", comment);
        match check_public_key(&key) {
            Err(m) => assert!(m.contains(expected), "{comment:?}: {m}"),
            Ok(()) => panic!("{comment:?} was accepted"),
        }
    }
}

#[test]
fn the_type_must_be_known_and_match_the_key_data() {
    let ed_body = ED25519.split(' ').nth(1).unwrap();
    let cases: Vec<(String, &str)> = vec![
        (format!("ssh-rsa {ed_body} x"), "of type \"ssh-ed25519\""),
        (format!("ssh-dss {ed_body}"), "key type"),
        (format!("command=\"id\" ssh-ed25519 {ed_body}"), "key type"),
        (format!("SSH-ED25519 {ed_body}"), "key type"),
        (format!(" ssh-ed25519 {ed_body}"), "key type"),
        (format!("ssh-ed25519  {ed_body}"), "no key data"),
        ("ssh-ed25519".into(), "no key data"),
        ("ssh-ed25519 AAAA".into(), "truncated"),
        ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5".into(), "only the type"),
        ("ssh-ed25519 AAAAC3Nza+/=".into(), "base64"),
        (
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGx0dGVzdGtleQ".into(),
            "base64",
        ),
        (
            format!("ssh-ed25519 {}", ed_body.replace('A', "-")),
            "base64",
        ),
        (format!("ssh-ed25519 {ed_body}="), "base64"),
        // Non-canonical: trailing bits set in the last group.
        ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAAQB=".into(), "base64"),
        (String::new(), "is empty"),
        ("x".repeat(MAX_KEY_LEN + 1), "longer than"),
    ];
    for (key, expected) in &cases {
        match check_public_key(key) {
            Err(m) => assert!(m.contains(expected), "{key:.60}: {m}"),
            Ok(()) => panic!("{key:.60} was accepted"),
        }
    }
}

#[test]
fn the_cf_table_covers_the_well_known_format_characters() {
    for c in [
        '\u{00AD}',
        '\u{200B}',
        '\u{200E}',
        '\u{2060}',
        '\u{2066}',
        '\u{FEFF}',
        '\u{E0001}',
    ] {
        assert!(is_forbidden(c), "{c:?}");
    }
    for c in [
        'a',
        ' ',
        '\u{A0}',
        '\u{3000}',
        'é',
        '\u{E000}',
        '\u{1F511}',
        '\u{FFFD}',
    ] {
        assert!(!is_forbidden(c), "{c:?}");
    }
}
