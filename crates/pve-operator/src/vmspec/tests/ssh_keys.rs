//! The admission pattern for SSH keys (`SSH_PUBLIC_KEY`, evaluated by the API server's RE2) and
//! the controller's own check (`pve_client::sshkey`) agree on every comment character and on the
//! shapes that matter; the controller alone also decodes the key data.

use pve_client::sshkey::{KEY_TYPES, check_public_key};
use pve_operator_api::patterns::SSH_PUBLIC_KEY;

/// What the controller accepts: the key with trailing spaces trimmed, checked.
fn controller_accepts(key: &str) -> bool {
    check_public_key(key.trim_end_matches(' ')).is_ok()
}

fn pattern() -> regex::Regex {
    regex::Regex::new(SSH_PUBLIC_KEY).expect("the pattern compiles with the Rust regex crate")
}

/// A well-formed key of `key_type` (blob: the type, then 32 bytes), base64 by hand.
fn key_of(key_type: &str, comment: &str) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut blob = (key_type.len() as u32).to_be_bytes().to_vec();
    blob.extend_from_slice(key_type.as_bytes());
    blob.extend_from_slice(&32u32.to_be_bytes());
    blob.extend_from_slice(&[0xA5; 32]);
    let mut body = String::new();
    for chunk in blob.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            body.push(if i <= chunk.len() {
                A[((n >> (18 - 6 * i)) & 63) as usize] as char
            } else {
                '='
            });
        }
    }
    if comment.is_empty() {
        format!("{key_type} {body}")
    } else {
        format!("{key_type} {body} {comment}")
    }
}

#[test]
fn pattern_and_controller_agree_on_every_comment_character() {
    let re = pattern();
    let mut disagreements = Vec::new();
    // Planes 0 and 1 and the tag block of plane 14 hold every Cc/Cf/Zl/Zp character; the rest
    // is sampled (a regex in a debug build is slow).
    let code_points = (0..=0x1FFFFu32)
        .chain(0xE0000..=0xE0FFF)
        .chain((0x20000..=0x10FFFF).step_by(251));
    for c in code_points.filter_map(char::from_u32) {
        let alone = (u32::from(c) < 0x100).then(|| c.to_string());
        for comment in std::iter::once(format!("a{c}b")).chain(alone) {
            let key = key_of("ssh-ed25519", &comment);
            let admitted = re.is_match(&key);
            let checked = controller_accepts(&key);
            if admitted != checked {
                disagreements.push(format!(
                    "U+{:04X} in {comment:?}: admission {admitted}, controller {checked}",
                    u32::from(c)
                ));
            }
        }
    }
    assert!(
        disagreements.is_empty(),
        "{} disagreements, first: {:?}",
        disagreements.len(),
        &disagreements[..disagreements.len().min(10)]
    );
}

#[test]
fn pattern_and_controller_agree_on_the_shapes_that_matter() {
    let re = pattern();
    let ed = key_of("ssh-ed25519", "");
    let ed_body = ed.split(' ').nth(1).expect("body").to_owned();
    let mut cases: Vec<(String, bool)> = KEY_TYPES
        .iter()
        .flat_map(|t| [(key_of(t, ""), true), (key_of(t, "alice@laptop"), true)])
        .collect();
    cases.extend([
        (key_of("ssh-ed25519", "bob's key (work)"), true),
        (key_of("ssh-ed25519", "user:host a#b x=1,y;z"), true),
        (key_of("ssh-ed25519", "a  b"), true),
        (key_of("ssh-ed25519", "key: value"), false),
        (key_of("ssh-ed25519", "trailing:"), false),
        (key_of("ssh-ed25519", "a :"), false),
        (key_of("ssh-ed25519", "a #b"), false),
        (key_of("ssh-ed25519", "#b"), false),
        (key_of("ssh-ed25519", " lead"), false),
        (key_of("ssh-ed25519", "x\u{2028}runcmd: [id]"), false),
        (key_of("ssh-dss", ""), false),
        (format!("ssh-rsa {ed_body}"), false),
        (format!("ecdsa-sha2-nistp256 {ed_body}"), false),
        (format!("ssh-ed25519  {ed_body}"), false),
        (format!("ssh-ed25519 {ed_body}="), false),
        (
            format!("ssh-ed25519 {}", &ed_body[..ed_body.len() - 1]),
            false,
        ),
        (format!("command=\"id\" {ed}"), false),
        (format!(" {ed}"), false),
        (String::new(), false),
        ("ssh-ed25519".into(), false),
    ]);
    for (key, valid) in &cases {
        assert_eq!(re.is_match(key), *valid, "admission of {key:?}");
        assert_eq!(controller_accepts(key), *valid, "controller on {key:?}");
    }
    // Trailing spaces are admitted; the controller trims them before its check.
    for key in [
        format!("{ed} "),
        format!("{}  ", key_of("ssh-ed25519", "c")),
    ] {
        assert!(re.is_match(&key) && controller_accepts(&key), "{key:?}");
        assert!(check_public_key(&key).is_err(), "untrimmed {key:?}");
    }
}
