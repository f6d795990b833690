//! The records of `user.cfg`: users with their tokens, groups, pools and ACL entries.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::secret::SecretHash;

/// A user (`user:` line), with its API tokens (`token:` lines).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// Whether the user may log in.
    pub enable: bool,
    /// Account expiration, seconds since the epoch; 0 means never.
    pub expire: u64,
    /// First name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub firstname: Option<String>,
    /// Last name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lastname: Option<String>,
    /// E-mail address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Free-text comment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// Second-factor keys (`keys` field, kept verbatim).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keys: Option<String>,
    /// API tokens by token name.
    #[serde(default)]
    pub tokens: BTreeMap<String, Token>,
    /// Hash of the password (PVE keeps it in `priv/shadow.cfg`, not in `user.cfg`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) password: Option<SecretHash>,
}

/// An API token of a user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Token {
    /// Privilege separation: the token's rights are its own ACLs intersected with its user's.
    pub privsep: bool,
    /// Expiration, seconds since the epoch; 0 means never.
    pub expire: u64,
    /// Free-text comment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// Hash of the secret value (PVE keeps it in `priv/token.cfg`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) secret: Option<SecretHash>,
}

/// A group (`group:` line).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Group {
    /// Member user ids.
    pub users: BTreeSet<String>,
    /// Free-text comment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

/// A resource pool (`pool:` line): VMs and storages whose `/pool/<name>` ACLs apply to them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pool {
    /// Free-text comment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// Member VM ids.
    pub vms: BTreeSet<u32>,
    /// Member storage ids.
    pub storage: BTreeSet<String>,
}

/// Role assignments of one ACL path: member -> role -> propagate.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AclNode {
    /// User ids.
    #[serde(default)]
    pub users: BTreeMap<String, BTreeMap<String, bool>>,
    /// Group names (without `@`).
    #[serde(default)]
    pub groups: BTreeMap<String, BTreeMap<String, bool>>,
    /// Full token ids.
    #[serde(default)]
    pub tokens: BTreeMap<String, BTreeMap<String, bool>>,
}

impl AclNode {
    /// Whether no one has a role here.
    pub fn is_empty(&self) -> bool {
        self.users.values().all(BTreeMap::is_empty)
            && self.groups.values().all(BTreeMap::is_empty)
            && self.tokens.values().all(BTreeMap::is_empty)
    }
}

/// Who an ACL entry is for.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum AclSubject {
    /// A user id.
    User(String),
    /// A group name.
    Group(String),
    /// A full token id.
    Token(String),
}

/// One ACL entry, as `GET /access/acl` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclEntry {
    /// The ACL path.
    pub path: String,
    /// Who it is for.
    pub subject: AclSubject,
    /// The role.
    pub role: String,
    /// Whether it propagates to sub-paths.
    pub propagate: bool,
}
