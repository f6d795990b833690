//! Checksums of downloaded files, for every algorithm `download-url` accepts (its
//! `checksum-algorithm` enum: md5, sha1, sha224, sha256, sha384, sha512), as lower-case hex like
//! `get_file_hash`.

use std::collections::BTreeMap;

use sha2::digest::DynDigest;

/// The algorithms of the schema's `checksum-algorithm` enum.
pub const ALGORITHMS: [&str; 6] = ["md5", "sha1", "sha224", "sha256", "sha384", "sha512"];

fn hasher(algorithm: &str) -> Option<Box<dyn DynDigest + Send>> {
    Some(match algorithm {
        "md5" => Box::new(md5::Md5::default()),
        "sha1" => Box::new(sha1::Sha1::default()),
        "sha224" => Box::new(sha2::Sha224::default()),
        "sha256" => Box::new(sha2::Sha256::default()),
        "sha384" => Box::new(sha2::Sha384::default()),
        "sha512" => Box::new(sha2::Sha512::default()),
        _ => return None,
    })
}

/// Lower-case hex of `bytes`.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Running checksums of a byte stream, and its length; also an [`std::io::Write`] sink (the
/// output of a decompressor).
pub struct Digests {
    hashers: Vec<(&'static str, Box<dyn DynDigest + Send>)>,
    len: u64,
}

impl Digests {
    /// Every algorithm of [`ALGORITHMS`].
    pub fn all() -> Self {
        Self::of(&ALGORITHMS)
    }

    /// The algorithms named (unknown names are skipped).
    pub fn of(algorithms: &[&'static str]) -> Self {
        Self {
            hashers: algorithms
                .iter()
                .filter_map(|a| hasher(a).map(|h| (*a, h)))
                .collect(),
            len: 0,
        }
    }

    /// Feeds `bytes`.
    pub fn update(&mut self, bytes: &[u8]) {
        for (_, h) in &mut self.hashers {
            h.update(bytes);
        }
        self.len += bytes.len() as u64;
    }

    /// Bytes fed so far.
    pub fn bytes(&self) -> u64 {
        self.len
    }

    /// The checksums by algorithm, in hex.
    pub fn finish(self) -> BTreeMap<String, String> {
        self.hashers
            .into_iter()
            .map(|(a, h)| (a.to_string(), hex(&h.finalize())))
            .collect()
    }
}

impl std::io::Write for Digests {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksums_are_lower_case_hex_of_each_algorithm() {
        let mut d = Digests::all();
        d.update(b"abc");
        assert_eq!(d.bytes(), 3);
        let sums = d.finish();
        assert_eq!(sums["md5"], "900150983cd24fb0d6963f7d28e17f72");
        assert_eq!(sums["sha1"], "a9993e364706816aba3e25717850c26c9cd0d89d");
        assert_eq!(
            sums["sha256"],
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(sums["sha512"].len(), 128);
        assert_eq!(sums.len(), ALGORITHMS.len());
    }
}
