//! `GET /version`, and the Proxmox VE releases this client supports.

use std::fmt;

use serde::Deserialize;

use crate::client::PveClient;
use crate::error::Result;
use crate::request::{ApiRequest, Method, Params};

/// The Proxmox VE version of the node that answered.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Version {
    /// The full pve-manager version (`8.4.1`).
    pub version: String,
    /// The point release (`8.4`).
    pub release: String,
    /// The git revision.
    pub repoid: String,
    /// The default console, if set in datacenter.cfg.
    #[serde(default)]
    pub console: Option<String>,
}

/// A Proxmox VE release, `major.minor` (`9.1`), as `GET /version` reports it in `release`.
/// Ordered: `8.4 < 9.0 < 9.1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PveRelease {
    /// `9` of `9.1`.
    pub major: u32,
    /// `1` of `9.1`.
    pub minor: u32,
}

impl PveRelease {
    /// PVE 8.4, the last 8.x (end of life since PVE 9's release; still supported here).
    pub const PVE_8_4: PveRelease = PveRelease::new(8, 4);
    /// PVE 9.0, the first 9.x: `VM.Monitor` gone, `VM.GuestAgent.*` and `VM.Replicate` new.
    pub const PVE_9_0: PveRelease = PveRelease::new(9, 0);
    /// The newest release this client was checked against (its published API schema).
    pub const NEWEST_CHECKED: PveRelease = PveRelease::new(9, 1);

    /// `major.minor`.
    pub const fn new(major: u32, minor: u32) -> Self {
        Self { major, minor }
    }

    /// Whether this client supports the release: 8.4 and every 9.x. (A 9.x newer than
    /// [`PveRelease::NEWEST_CHECKED`] is expected to work: Proxmox keeps its API within a major.)
    pub fn is_supported(self) -> bool {
        self.major == 9 || self == Self::PVE_8_4
    }

    /// Whether this is PVE 9 or later (the privilege model of 9.x).
    pub fn is_pve9(self) -> bool {
        self >= Self::PVE_9_0
    }
}

impl serde::Serialize for PveRelease {
    /// As `"9.1"`.
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl fmt::Display for PveRelease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// A release that is not `major.minor`, or not one of ours.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown Proxmox VE version '{0}': use 9 (or 9.0, 9.1, ...) or 8.4")]
pub struct UnknownRelease(pub String);

impl std::str::FromStr for PveRelease {
    type Err = UnknownRelease;

    /// `9.1`, `8.4`, or a bare `9` (the newest 9.x checked) / `8` (8.4).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let unknown = || UnknownRelease(text.to_string());
        let text = text.trim();
        let release = match text.split_once('.') {
            None => match text {
                "9" => Self::NEWEST_CHECKED,
                "8" => Self::PVE_8_4,
                _ => return Err(unknown()),
            },
            Some((major, minor)) => Self::new(
                major.parse().map_err(|_| unknown())?,
                minor.parse().map_err(|_| unknown())?,
            ),
        };
        if release.is_supported() {
            Ok(release)
        } else {
            Err(unknown())
        }
    }
}

impl PveRelease {
    /// The release of a pve-manager version or release text: the leading `major.minor` of
    /// `9.1.5`, `9.1` or `7.4-3`.
    pub fn of_version(text: &str) -> Option<Self> {
        let mut it = text.split(['.', '-']);
        let major = it.next()?.parse().ok()?;
        let minor = it.next()?.parse().ok()?;
        Some(Self::new(major, minor))
    }
}

impl Version {
    /// The release, if `release` (or `version`) parses as `major.minor`.
    pub fn pve_release(&self) -> Option<PveRelease> {
        PveRelease::of_version(if self.release.is_empty() {
            &self.version
        } else {
            &self.release
        })
    }

    /// The release whose privilege rows apply to this server: [`Version::pve_release`], or, for
    /// an answer that does not parse (no real Proxmox gives one), the newest release checked.
    pub fn privilege_release(&self) -> PveRelease {
        self.pve_release().unwrap_or(PveRelease::NEWEST_CHECKED)
    }

    /// `(major, minor)` from `release` (or `version`), if it parses.
    pub fn major_minor(&self) -> Option<(u32, u32)> {
        self.pve_release().map(|r| (r.major, r.minor))
    }
}

/// `GET /version`.
pub fn version_request() -> ApiRequest {
    ApiRequest::new(Method::Get, "/version", &[], Params::new())
}

impl PveClient {
    /// `GET /version`: also a cheap credentials check.
    pub async fn version(&self) -> Result<Version> {
        self.call(&version_request()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_version_responses_decode() {
        let v: Version = serde_json::from_str(
            r#"{"version":"8.4.1","release":"8.4","repoid":"0123456789abcdef"}"#,
        )
        .unwrap();
        assert_eq!(v.major_minor(), Some((8, 4)));
        let v: Version =
            serde_json::from_str(r#"{"repoid":"39d8a4de7dfb2c40","release":"9.0","version":"9.0.4","console":"xtermjs"}"#).unwrap();
        assert_eq!(v.major_minor(), Some((9, 0)));
        assert_eq!(v.console.as_deref(), Some("xtermjs"));
        assert_eq!(v.pve_release(), Some(PveRelease::PVE_9_0));
        assert_eq!(PveRelease::of_version("7.4-3"), Some(PveRelease::new(7, 4)));
        assert_eq!(PveRelease::of_version("nine"), None);
        let odd = Version {
            version: "x".into(),
            release: "y".into(),
            repoid: String::new(),
            console: None,
        };
        assert_eq!(odd.privilege_release(), PveRelease::NEWEST_CHECKED);
    }

    #[test]
    fn releases_parse_order_and_say_what_is_supported() {
        let parse = |s: &str| s.parse::<PveRelease>();
        assert_eq!(parse("9"), Ok(PveRelease::new(9, 1)));
        assert_eq!(parse("9.0"), Ok(PveRelease::PVE_9_0));
        assert_eq!(parse("8.4"), Ok(PveRelease::PVE_8_4));
        assert_eq!(parse("8"), Ok(PveRelease::PVE_8_4));
        for refused in ["8.3", "7.4", "10.0", "9.x", "", "nine"] {
            let error = parse(refused).expect_err(refused);
            assert_eq!(
                error.to_string(),
                format!("unknown Proxmox VE version '{refused}': use 9 (or 9.0, 9.1, ...) or 8.4")
            );
        }
        assert!(PveRelease::PVE_8_4 < PveRelease::PVE_9_0);
        assert!(PveRelease::new(9, 0) < PveRelease::new(9, 1));
        assert!(PveRelease::new(9, 2).is_pve9() && !PveRelease::PVE_8_4.is_pve9());
        assert_eq!(PveRelease::new(9, 1).to_string(), "9.1");
    }
}
