//! OpenSSH public keys as `sshkeys` carries them into cloud-init, checked strictly.
//!
//! Proxmox VE writes every key unquoted into the cloud-init user-data (`Cloudinit.pm`:
//! `ssh_authorized_keys:` then `  - <key>` per line), and cloud-init parses that with PyYAML
//! (YAML 1.1), for which U+0085 (NEL), U+2028 and U+2029 are line breaks, `: ` and a trailing `:`
//! turn the item into a mapping, ` #` starts a comment, and other control characters (and
//! U+FFFE/U+FFFF) make the whole document unreadable. A key is therefore accepted only as
//!
//! ```text
//! TYPE SP BASE64 [SP COMMENT]
//! ```
//!
//! * `TYPE` is one of [`KEY_TYPES`];
//! * `BASE64` is canonical base64 of a key blob: a sequence of SSH strings (4-byte big-endian
//!   length, then the bytes) filling it exactly, the first of which is `TYPE` itself;
//! * `COMMENT` is words separated by spaces, with no character of Unicode category Cc (control,
//!   NEL included) or Cf (format), no line or paragraph separator (U+2028, U+2029), no
//!   U+FFFE/U+FFFF, no word starting with `#` and no word ending with `:` (so neither `: `, nor a
//!   trailing `:`, nor ` #`), and no leading, trailing or doubled-at-the-start space.
//!
//! The admission pattern of the CRD (`pve-operator-api`'s `SSH_PUBLIC_KEY`) expresses the same
//! rule, except the decoding: it checks the shape of the base64 and the encoded type prefix.

use std::fmt::Write as _;

/// The key types accepted, as OpenSSH names them (DSA keys, disabled since OpenSSH 7.0 and gone
/// in 10.0, are not among them).
pub const KEY_TYPES: [&str; 7] = [
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
];

/// The longest key line accepted, in bytes (an RSA-16384 key is about 2,800).
pub const MAX_KEY_LEN: usize = 16384;

/// Checks one key line; `Err` says what is wrong, in words fit for a status condition (it quotes
/// no more of the key than its type).
pub fn check_public_key(line: &str) -> Result<(), String> {
    if line.is_empty() {
        return Err(
            "is empty; expected an OpenSSH public key such as `ssh-ed25519 AAAA... user@host`"
                .into(),
        );
    }
    if line.len() > MAX_KEY_LEN {
        return Err(format!("is longer than {MAX_KEY_LEN} bytes"));
    }
    if let Some(c) = line.chars().find(|c| is_forbidden(*c)) {
        return Err(format!(
            "contains {}, a control, format or line-separator character (cloud-init's YAML reads \
             some of these as line breaks): a key is one line of printable text",
            char_name(c)
        ));
    }
    let mut parts = line.splitn(3, ' ');
    let key_type = parts.next().unwrap_or_default();
    let Some(declared) = KEY_TYPES.iter().find(|t| **t == key_type) else {
        return Err(format!(
            "does not start with a key type of {} (got {:?}); give the public key (`.pub` file), \
             without options",
            KEY_TYPES.join(", "),
            short(key_type)
        ));
    };
    let body = parts.next().unwrap_or_default();
    if body.is_empty() {
        return Err(format!(
            "has no key data after {declared:?} (type and base64 data are separated by one space)"
        ));
    }
    let blob = decode_base64(body)
        .ok_or("has key data that is not canonical base64 (A-Z a-z 0-9 + / with = padding)")?;
    check_blob(declared, &blob)?;
    if let Some(comment) = parts.next() {
        check_comment(comment)?;
    }
    Ok(())
}

/// Whether `c` may never appear in a key: Cc (controls, NEL included), Cf (format characters),
/// U+2028, U+2029, and the noncharacters U+FFFE/U+FFFF that PyYAML refuses.
pub fn is_forbidden(c: char) -> bool {
    c.is_control() || is_format(c) || matches!(c, '\u{2028}' | '\u{2029}' | '\u{FFFE}' | '\u{FFFF}')
}

/// Unicode general category Cf (format characters: soft hyphen, zero-width and bidi controls,
/// BOM, tags, ...), as of Unicode 15.
fn is_format(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{0600}'..='\u{0605}'
            | '\u{061C}'
            | '\u{06DD}'
            | '\u{070F}'
            | '\u{0890}'..='\u{0891}'
            | '\u{08E2}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{206F}'
            | '\u{FEFF}'
            | '\u{FFF9}'..='\u{FFFB}'
            | '\u{110BD}'
            | '\u{110CD}'
            | '\u{13430}'..='\u{1343F}'
            | '\u{1BCA0}'..='\u{1BCA3}'
            | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0001}'
            | '\u{E0020}'..='\u{E007F}'
    )
}

fn check_blob(declared: &str, blob: &[u8]) -> Result<(), String> {
    let mut strings = Vec::new();
    let mut rest = blob;
    while !rest.is_empty() {
        let Some((len, tail)) = rest.split_first_chunk::<4>() else {
            return Err("has key data that is truncated (not a sequence of SSH strings)".into());
        };
        let len = u32::from_be_bytes(*len) as usize;
        if len > tail.len() {
            return Err("has key data that is truncated (not a sequence of SSH strings)".into());
        }
        let (item, tail) = tail.split_at(len);
        strings.push(item);
        rest = tail;
    }
    match strings.first() {
        Some(embedded) if *embedded == declared.as_bytes() => {}
        Some(embedded) => {
            return Err(format!(
                "says {declared:?} but its key data is of type {:?}",
                short(&String::from_utf8_lossy(embedded))
            ));
        }
        None => return Err("has empty key data".into()),
    }
    if strings.len() < 2 {
        return Err(format!(
            "has key data that holds only the type {declared:?}, no key"
        ));
    }
    Ok(())
}

fn check_comment(comment: &str) -> Result<(), String> {
    if comment.is_empty() || comment.starts_with(' ') || comment.ends_with(' ') {
        return Err(
            "has a comment with a leading or trailing space (type, key data and comment are \
             separated by single spaces)"
                .into(),
        );
    }
    for word in comment.split(' ').filter(|w| !w.is_empty()) {
        if word.starts_with('#') {
            return Err(
                "has a comment with a word starting with '#', which cloud-init's YAML reads as \
                 the start of a comment"
                    .into(),
            );
        }
        if word.ends_with(':') {
            return Err(
                "has a comment containing ': ' or ending with ':', which turns the key into a \
                 mapping in cloud-init's YAML"
                    .into(),
            );
        }
    }
    Ok(())
}

/// Canonical standard base64 (with padding, no trailing bits).
fn decode_base64(text: &str) -> Option<Vec<u8>> {
    fn value(b: u8) -> Option<u32> {
        Some(match b {
            b'A'..=b'Z' => b - b'A',
            b'a'..=b'z' => b - b'a' + 26,
            b'0'..=b'9' => b - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    }
    let bytes = text.as_bytes();
    if bytes.is_empty() || !bytes.len().is_multiple_of(4) {
        return None;
    }
    let mut out = Vec::with_capacity(bytes.len() / 4 * 3);
    let groups = bytes.len() / 4;
    for (i, group) in bytes.chunks_exact(4).enumerate() {
        let pad = group.iter().rev().take_while(|b| **b == b'=').count();
        if pad > 2 || (pad > 0 && i + 1 != groups) {
            return None;
        }
        let mut n = 0u32;
        for b in &group[..4 - pad] {
            n = (n << 6) | value(*b)?;
        }
        n <<= 6 * pad as u32;
        let decoded = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        // Bits below the last full byte must be zero (canonical encoding).
        let keep = 3 - pad;
        if decoded[keep..].iter().any(|b| *b != 0) {
            return None;
        }
        out.extend_from_slice(&decoded[..keep]);
    }
    Some(out)
}

/// `U+2028 (LINE SEPARATOR)`-style name of a character for messages.
fn char_name(c: char) -> String {
    let mut s = format!("U+{:04X}", u32::from(c));
    let name = match c {
        '\0' => Some("NUL"),
        '\t' => Some("TAB"),
        '\n' => Some("LINE FEED"),
        '\r' => Some("CARRIAGE RETURN"),
        '\u{85}' => Some("NEXT LINE"),
        '\u{2028}' => Some("LINE SEPARATOR"),
        '\u{2029}' => Some("PARAGRAPH SEPARATOR"),
        '\u{FEFF}' => Some("ZERO WIDTH NO-BREAK SPACE"),
        _ => None,
    };
    if let Some(n) = name {
        let _ = write!(s, " ({n})");
    }
    s
}

/// At most 40 characters of `s`, for quoting user input in messages.
fn short(s: &str) -> String {
    let mut out: String = s.chars().take(40).collect();
    if s.chars().count() > 40 {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests;
