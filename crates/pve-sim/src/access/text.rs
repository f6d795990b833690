//! `PVE::Tools::encode_text`/`decode_text`: free-text fields of `user.cfg` (comments, names) are
//! percent-encoded for control characters, non-ASCII bytes and `:`.

/// Percent-encodes every byte outside `0x20..=0x39` and `0x3b..=0x7e` (so `:` and `%`-free text
/// stays readable, as `uri_escape($text, "^\x20-\x39\x3b-\x7e")` does).
pub fn encode_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if (0x20..=0x39).contains(&b) || (0x3b..=0x7e).contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Decodes `%XX` escapes (invalid escapes stay as they are) and reads the bytes as UTF-8, lossily.
pub fn decode_text(data: &str) -> String {
    let bytes = data.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let (Some(h), Some(l)) = (
                bytes.get(i + 1).and_then(|c| char::from(*c).to_digit(16)),
                bytes.get(i + 2).and_then(|c| char::from(*c).to_digit(16)),
            )
        {
            // Both digits are below 16, so the value fits a byte.
            out.push(u8::try_from(h * 16 + l).unwrap_or(b'?'));
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colons_and_non_ascii_are_escaped_and_restored() {
        let text = "Team: ops – nightly";
        let enc = encode_text(text);
        assert!(!enc.contains(':'));
        assert_eq!(enc, "Team%3A ops %E2%80%93 nightly");
        assert_eq!(decode_text(&enc), text);
    }

    #[test]
    fn broken_escapes_are_kept() {
        assert_eq!(decode_text("100%"), "100%");
        assert_eq!(decode_text("%zz"), "%zz");
    }
}
