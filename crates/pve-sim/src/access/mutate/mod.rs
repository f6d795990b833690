//! Changes to the configuration, with the checks and error texts of PVE 8's `/access` API
//! handlers (`API2/User.pm`, `Group.pm`, `Role.pm`, `ACL.pm`, `Pool.pm`). Callers check the
//! caller's permissions; these methods check the configuration.
//!
//! This module holds the parameter types of the changes and what they share; the methods live
//! beside it by object: `users`, `tokens`, `groups`, `roles`, `acl` and `pools`.

use super::{AccessControl, ROOT_USER};

mod acl;
mod groups;
mod pools;
mod roles;
mod tokens;
mod users;

/// The optional fields of a user create or update (`POST`/`PUT /access/users`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserOptions {
    /// Enable or disable the account.
    pub enable: Option<bool>,
    /// Account expiration, seconds since the epoch (0 = never).
    pub expire: Option<u64>,
    /// First name.
    pub firstname: Option<String>,
    /// Last name.
    pub lastname: Option<String>,
    /// E-mail address.
    pub email: Option<String>,
    /// Comment.
    pub comment: Option<String>,
    /// Second-factor keys.
    pub keys: Option<String>,
    /// Groups to put the user in (on update: replacing the current ones unless appending).
    pub groups: Option<Vec<String>>,
}

/// One `PUT /access/acl` call.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AclChange {
    /// The ACL path (normalized by the engine).
    pub path: String,
    /// Roles to grant or revoke.
    pub roles: Vec<String>,
    /// User ids.
    pub users: Vec<String>,
    /// Group names.
    pub groups: Vec<String>,
    /// Full token ids.
    pub tokens: Vec<String>,
    /// Propagate to sub-paths (PVE's default is true).
    pub propagate: bool,
    /// Revoke instead of grant.
    pub delete: bool,
}

/// A non-empty string, or `None`.
fn non_empty(v: Option<String>) -> Option<String> {
    v.filter(|s| !s.is_empty())
}

impl AccessControl {
    /// Removes ACL nodes nobody has a role on any more.
    fn prune_acl(&mut self) {
        for node in self.acl.values_mut() {
            node.users.retain(|_, r| !r.is_empty());
            node.groups.retain(|_, r| !r.is_empty());
            node.tokens.retain(|_, r| !r.is_empty());
        }
        self.acl.retain(|_, n| !n.is_empty());
    }

    /// Whether a user is root@pam.
    pub fn is_root(auth_id: &str) -> bool {
        auth_id == ROOT_USER
    }
}
