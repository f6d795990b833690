//! Stored secrets: passwords and token values are kept only as salted SHA-256 hashes, and the
//! types print `***` in `Debug`.

use ring::{digest, rand::SecureRandom};
use serde::{Deserialize, Serialize};

/// A salted SHA-256 hash of a password or token secret (`sha256$<salt hex>$<hash hex>`).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SecretHash(String);

impl std::fmt::Debug for SecretHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// Lower-case hex of `bytes`.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// SHA-256 of `salt || secret`, in hex.
fn digest_hex(salt: &str, secret: &str) -> String {
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(salt.as_bytes());
    ctx.update(secret.as_bytes());
    hex(ctx.finish().as_ref())
}

/// `n` random bytes from the system generator (falls back to a time-derived value if it fails).
fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    if ring::rand::SystemRandom::new().fill(&mut buf).is_err() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let seed = digest::digest(&digest::SHA256, &nanos.to_le_bytes());
        for (dst, src) in buf.iter_mut().zip(seed.as_ref().iter().cycle()) {
            *dst = *src;
        }
    }
    buf
}

impl SecretHash {
    /// Hashes `secret` with a fresh random salt.
    pub fn new(secret: &str) -> Self {
        let salt = hex(&random_bytes::<16>());
        let hash = digest_hex(&salt, secret);
        Self(format!("sha256${salt}${hash}"))
    }

    /// Whether `secret` hashes to this value (compared without an early exit).
    pub fn matches(&self, secret: &str) -> bool {
        let mut parts = self.0.splitn(3, '$');
        let (Some("sha256"), Some(salt), Some(stored)) = (parts.next(), parts.next(), parts.next())
        else {
            return false;
        };
        let computed = digest_hex(salt, secret);
        computed.len() == stored.len()
            && computed
                .bytes()
                .zip(stored.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    }
}

/// A random version-4 UUID in lower-case hex form, as PVE's token values look
/// (`TokenConfig::generate_token` uses `UUID::uuid()`).
pub fn random_uuid() -> String {
    let mut b = random_bytes::<16>();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex(&b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_only_their_secret_and_never_print_it() {
        let h = SecretHash::new("s3cret");
        assert!(h.matches("s3cret"));
        assert!(!h.matches("s3cret "));
        assert_eq!(format!("{h:?}"), "***");
        let json = serde_json::to_string(&h).unwrap_or_default();
        assert!(!json.contains("s3cret"));
        assert_ne!(SecretHash::new("s3cret"), h, "salts differ");
    }

    #[test]
    fn uuids_have_the_v4_shape() {
        let u = random_uuid();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
        assert!(u.chars().all(|c| c.is_ascii_hexdigit() || c == '-'));
        assert_ne!(random_uuid(), u);
    }
}
