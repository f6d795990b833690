//! Which Proxmox VE the simulator is: one point in PVE's timeline, chosen per run
//! (`pve-sim serve --pve-version`, the cluster YAML's `pve_version`).
//!
//! "9.x" is not one thing: several behaviours a provisioner sees changed within 9.1
//! (`shared/pve-reference/pve9-changes.md`). The 9.1 profile is the latest 9.1 point release, with
//! every 9.1 change that file lists and none of 9.2's.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A simulated Proxmox VE version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PveVersion {
    /// PVE 8.4 (pve-manager 8.4.x, qemu-server 8.4.x, pve-access-control 8.2.x): 42 privileges,
    /// `VM.Monitor`, the 8.4 API schema.
    Pve8_4,
    /// PVE 9.1, its latest point release (pve-access-control 9.1.1, qemu-server 9.1.19+): 47
    /// privileges, `VM.GuestAgent.*` instead of `VM.Monitor`, the 9.1 API schema.
    Pve9_1,
}

impl PveVersion {
    /// Every version the simulator can be, oldest first.
    pub const ALL: [PveVersion; 2] = [PveVersion::Pve8_4, PveVersion::Pve9_1];

    /// The major release: 8 or 9.
    pub fn major(self) -> u32 {
        match self {
            PveVersion::Pve8_4 => 8,
            PveVersion::Pve9_1 => 9,
        }
    }

    /// `X.Y`, as `GET /version` reports it in `release`.
    pub fn release(self) -> &'static str {
        match self {
            PveVersion::Pve8_4 => "8.4",
            PveVersion::Pve9_1 => "9.1",
        }
    }

    /// Whether this is PVE 9 or later.
    pub fn is_pve9(self) -> bool {
        self.major() >= 9
    }
}

impl fmt::Display for PveVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.release())
    }
}

/// A version the simulator cannot be.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unsupported Proxmox VE version '{0}': use 9 (= 9.1) or 8.4")]
pub struct UnsupportedVersion(pub String);

impl FromStr for PveVersion {
    type Err = UnsupportedVersion;

    /// `9`, `9.1`, `8`, `8.4` (`8` and `9` mean the newest of that major the simulator knows).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim() {
            "9" | "9.1" => Ok(PveVersion::Pve9_1),
            "8" | "8.4" => Ok(PveVersion::Pve8_4),
            other => Err(UnsupportedVersion(other.to_string())),
        }
    }
}

impl Serialize for PveVersion {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.release())
    }
}

impl<'de> Deserialize<'de> for PveVersion {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // YAML may give `9`, `9.1` or `8.4` as numbers.
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            S(String),
            I(u64),
            F(f64),
        }
        let text = match Raw::deserialize(d)? {
            Raw::S(s) => s,
            Raw::I(i) => i.to_string(),
            Raw::F(f) => format!("{f:.1}"),
        };
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_from_the_cli_and_yaml_forms_and_others_are_refused() {
        assert_eq!("9".parse(), Ok(PveVersion::Pve9_1));
        assert_eq!("9.1".parse(), Ok(PveVersion::Pve9_1));
        assert_eq!("8.4".parse(), Ok(PveVersion::Pve8_4));
        let refused = "7.4".parse::<PveVersion>().expect_err("7.4");
        assert_eq!(
            refused.to_string(),
            "unsupported Proxmox VE version '7.4': use 9 (= 9.1) or 8.4"
        );
        for (yaml, want) in [
            ("9", PveVersion::Pve9_1),
            ("9.1", PveVersion::Pve9_1),
            ("8.4", PveVersion::Pve8_4),
            ("'8.4'", PveVersion::Pve8_4),
        ] {
            let got: PveVersion = serde_yaml::from_str(yaml).expect(yaml);
            assert_eq!(got, want, "{yaml}");
        }
        assert!(serde_yaml::from_str::<PveVersion>("9.0").is_err());
        assert_eq!(
            serde_yaml::to_string(&PveVersion::Pve9_1)
                .expect("serialises")
                .trim(),
            "'9.1'"
        );
        assert!(PveVersion::Pve8_4 < PveVersion::Pve9_1);
    }
}
