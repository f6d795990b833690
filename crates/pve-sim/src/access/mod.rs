//! The access-control engine of the simulator, behaving like pve-access-control of the
//! configured Proxmox VE version (8.4: stable-bookworm; 9.1: master 9.1.1): users, groups,
//! built-in and custom roles, ACLs with propagation, pools, `NoAccess`, API tokens with privilege
//! separation, and the `/etc/pve/user.cfg` format. Evaluation is the same in both versions; the
//! privileges and the built-in roles differ.
//!
//! Passwords and token secrets are kept only as salted hashes and never appear in `Debug` output.

mod acl;
mod api;
mod error;
mod model;
mod mutate;
mod names;
mod params;
mod params_9_1;
mod pools_api;
mod privileges;
mod secret;
mod text;
mod user_cfg;

#[cfg(test)]
mod api_test;
#[cfg(test)]
mod engine_test;
#[cfg(test)]
mod vectors_test;

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::version::PveVersion;

pub use api::routes;
pub use error::AccessError;
pub use model::{AclEntry, AclNode, AclSubject, Group, Pool, Token, User};
pub use mutate::{AclChange, UserOptions};
pub use names::{is_valid_acl_path, is_valid_userid, normalize_path, split_tokenid};
pub use privileges::{
    all_privileges, builtin_role_privileges, is_builtin_role, is_valid_privilege,
};
pub use user_cfg::split_list;

/// The parameter rules of an `/access` endpoint (method, schema path template), from the PVE 8.4
/// schema.
pub fn param_table(method: &str, path: &str) -> Option<&'static [crate::params::Param]> {
    params::table(method, path)
}

/// The parameter rules of an `/access` or `/pools` endpoint (method, schema path template) in
/// `version`'s schema.
pub fn param_table_for(
    version: crate::version::PveVersion,
    method: &str,
    path: &str,
) -> Option<&'static [crate::params::Param]> {
    match version {
        crate::version::PveVersion::Pve8_4 => params::table(method, path),
        crate::version::PveVersion::Pve9_1 => params_9_1::table(method, path),
    }
}

/// The superuser, who has every privilege everywhere.
pub const ROOT_USER: &str = "root@pam";

/// The authentication realms the simulator has (as a default PVE install: `pam` and `pve`).
pub const REALMS: &[&str] = &["pam", "pve"];

/// Users, groups, roles, ACLs, pools and tokens: the content of `user.cfg` plus the password and
/// token-secret hashes PVE keeps in `priv/`, for one Proxmox VE version (whose privileges and
/// built-in roles apply).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessControl {
    /// The version whose privileges and built-in roles apply (state files without it are 8.4's).
    #[serde(default = "pve8")]
    version: PveVersion,
    /// Users by user id.
    users: BTreeMap<String, User>,
    /// Groups by name.
    groups: BTreeMap<String, Group>,
    /// Custom roles (built-in roles are computed, never stored).
    roles: BTreeMap<String, BTreeSet<String>>,
    /// ACL entries by normalized path.
    acl: BTreeMap<String, AclNode>,
    /// Pools by name.
    pools: BTreeMap<String, Pool>,
}

/// The version of state files written before versions existed.
fn pve8() -> PveVersion {
    PveVersion::Pve8_4
}

impl Default for AccessControl {
    /// An empty PVE 8.4 configuration.
    fn default() -> Self {
        Self {
            version: PveVersion::Pve8_4,
            users: BTreeMap::new(),
            groups: BTreeMap::new(),
            roles: BTreeMap::new(),
            acl: BTreeMap::new(),
            pools: BTreeMap::new(),
        }
    }
}

/// Seconds since the epoch, now.
fn now_epoch() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

impl AccessControl {
    /// An empty configuration of `version` (not even root@pam).
    fn empty(version: PveVersion) -> Self {
        Self {
            version,
            ..Self::default()
        }
    }

    /// A fresh installation of `version`: `root@pam` exists with `root_password`, and the
    /// built-in roles.
    pub fn new_default(root_password: &str, version: PveVersion) -> Self {
        let mut cfg = Self::parse_user_cfg("", version);
        if let Some(root) = cfg.users.get_mut(ROOT_USER) {
            root.password = Some(secret::SecretHash::new(root_password));
        }
        cfg
    }

    /// Reads the real `/etc/pve/user.cfg` format as `version` does. Like PVE, invalid entries
    /// are skipped with a warning (a role keeps its valid privileges and loses the ones
    /// `version` lacks: `user config - ignore invalid privilege 'VM.Monitor'` on 9.1);
    /// `root@pam` is added if missing. Passwords are not part of `user.cfg`: set them with
    /// [`AccessControl::user_passwd`].
    pub fn from_user_cfg(text: &str, version: PveVersion) -> Result<Self, AccessError> {
        if text.contains('\0') {
            return Err(AccessError::Parse("NUL byte in user.cfg".to_string()));
        }
        Ok(Self::parse_user_cfg(text, version))
    }

    /// The version whose privileges and built-in roles apply.
    pub fn version(&self) -> PveVersion {
        self.version
    }

    /// Switches to `version` (a restored state, an upgrade): custom roles keep their privileges
    /// that `version` has and lose the others, with the warning PVE logs when it reads such a
    /// `user.cfg` (`user config - ignore invalid privilege '<priv>'`).
    pub fn set_version(&mut self, version: PveVersion) {
        self.version = version;
        for privs in self.roles.values_mut() {
            privs.retain(|p| {
                let valid = privileges::is_valid_privilege(version, p);
                if !valid {
                    tracing::warn!(
                        target: "pve_sim::access",
                        "user config - ignore invalid privilege '{p}'"
                    );
                }
                valid
            });
        }
    }

    /// Writes the configuration in the `/etc/pve/user.cfg` format (without secrets).
    pub fn to_user_cfg(&self) -> String {
        self.write_user_cfg()
    }

    /// The effective privileges of `auth_id` (`user@realm` or `user@realm!tokenid`) at `path`,
    /// as `RPCEnvironment::permissions` computes them (pools and token privilege separation
    /// included). The path is used as given; API paths are normalized by the caller.
    pub fn permissions(&self, auth_id: &str, path: &str) -> BTreeSet<String> {
        self.privilege_flags(auth_id, path).into_keys().collect()
    }

    /// The effective privileges of `auth_id` at `path` with their propagate flag.
    pub fn permissions_with_propagation(
        &self,
        auth_id: &str,
        path: &str,
    ) -> BTreeMap<String, bool> {
        self.privilege_flags(auth_id, path)
    }

    /// The roles that apply to `auth_id` at `path` as `AccessControl::roles` returns them (ACLs
    /// only, no pools; a privsep token's own roles, not filtered by its user's).
    pub fn roles(&self, auth_id: &str, path: &str) -> BTreeSet<String> {
        self.role_flags(auth_id, path).into_keys().collect()
    }

    /// Whether `auth_id` holds all of `privs` (`any == false`) or at least one (`any == true`) at
    /// `path`. Unknown privilege names never match.
    pub fn check(&self, auth_id: &str, path: &str, privs: &[&str], any: bool) -> bool {
        self.permission_error(auth_id, path, privs, any).is_none()
    }

    /// `None` if [`AccessControl::check`] passes, else PVE's 403 message, e.g.
    /// `Permission check failed (/vms/100, VM.Allocate)` or, with `any`,
    /// `Permission check failed (/vms/100, VM.Config.Disk|VM.Config.CDROM)`.
    pub fn permission_error(
        &self,
        auth_id: &str,
        path: &str,
        privs: &[&str],
        any: bool,
    ) -> Option<String> {
        let have = self.privilege_flags(auth_id, path);
        if any {
            if privs.iter().any(|p| have.contains_key(*p)) {
                return None;
            }
            return Some(format!(
                "Permission check failed ({path}, {})",
                privs.join("|")
            ));
        }
        privs
            .iter()
            .find(|p| !have.contains_key(**p))
            .map(|p| format!("Permission check failed ({path}, {p})"))
    }

    /// `check_perm_modify`: may `auth_id` change ACLs on `path`? (`Permissions.Modify`, or the
    /// allocate privilege of `/storage/*`, `/vms/*` or `/pool/*` paths; `/access` without a path.)
    pub fn check_perm_modify(&self, auth_id: &str, path: Option<&str>) -> bool {
        let Some(path) = path else {
            return self.check(auth_id, "/access", &["Permissions.Modify"], false);
        };
        let mut privs = vec!["Permissions.Modify"];
        let under = |prefix: &str| path.strip_prefix(prefix).is_some_and(|r| !r.is_empty());
        if under("/storage/") {
            privs.push("Datastore.Allocate");
        } else if under("/vms/") {
            privs.push("VM.Allocate");
        } else if under("/pool/") {
            privs.push("Pool.Allocate");
        }
        self.check(auth_id, path, &privs, true)
    }

    /// The effective permissions as `GET /access/permissions` answers: path -> privilege ->
    /// propagate (1/0). With `path`, exactly that path (possibly empty); without, the top-level
    /// paths, every ACL tree node and the pools' members, omitting paths without privileges.
    pub fn permissions_tree(
        &self,
        auth_id: &str,
        path: Option<&str>,
    ) -> BTreeMap<String, BTreeMap<String, u8>> {
        let to_u8 = |m: BTreeMap<String, bool>| -> BTreeMap<String, u8> {
            m.into_iter().map(|(k, v)| (k, u8::from(v))).collect()
        };
        if let Some(path) = path {
            return BTreeMap::from([(
                path.to_string(),
                to_u8(self.privilege_flags(auth_id, path)),
            )]);
        }
        self.effective_permission_paths()
            .into_iter()
            .filter_map(|p| {
                let privs = self.privilege_flags(auth_id, &p);
                (!privs.is_empty()).then(|| (p, to_u8(privs)))
            })
            .collect()
    }

    /// Whether `password` is the password of `userid` and the user is enabled and not expired.
    pub fn verify_password(&self, userid: &str, password: &str) -> bool {
        self.authenticate_password(userid, password).is_ok()
    }

    /// Password login with PVE's reasons for refusing it (`user '…' is disabled`, `… access
    /// expired`, `no such user ('…')`, `authentication failure`).
    pub fn authenticate_password(&self, userid: &str, password: &str) -> Result<(), AccessError> {
        self.check_user_enabled(userid)?;
        let user = self
            .users
            .get(userid)
            .ok_or_else(|| AccessError::NoSuchUser(userid.to_string()))?;
        match &user.password {
            Some(hash) if hash.matches(password) => Ok(()),
            _ => Err(AccessError::AuthenticationFailure),
        }
    }

    /// Whether `secret` is the value of the token `user@realm!tokenid`, and both the token and its
    /// user are enabled and not expired.
    pub fn verify_token(&self, full_tokenid: &str, secret: &str) -> bool {
        self.authenticate_token(full_tokenid, secret).is_ok()
    }

    /// Token authentication with PVE's reasons for refusing it (`AccessControl::verify_token`).
    pub fn authenticate_token(&self, full_tokenid: &str, secret: &str) -> Result<(), AccessError> {
        self.authenticate_token_at(full_tokenid, secret, now_epoch())
    }

    /// [`AccessControl::authenticate_token`] at a given time (seconds since the epoch), for a
    /// simulated clock.
    pub fn authenticate_token_at(
        &self,
        full_tokenid: &str,
        secret: &str,
        now_secs: u64,
    ) -> Result<(), AccessError> {
        let (userid, name) = names::split_tokenid(full_tokenid)
            .ok_or_else(|| AccessError::InvalidTokenid(full_tokenid.to_string()))?;
        self.check_user_enabled_at(userid, now_secs)?;
        let token = self
            .token(userid, name)
            .ok_or_else(|| AccessError::NoSuchToken {
                user: userid.to_string(),
                token: name.to_string(),
            })?;
        if token.expire != 0 && token.expire < now_secs {
            return Err(AccessError::TokenExpired(name.to_string()));
        }
        match &token.secret {
            Some(hash) if hash.matches(secret) => Ok(()),
            _ => Err(AccessError::InvalidTokenValue),
        }
    }

    /// `check_user_enabled`: the user exists, is enabled and not expired.
    pub fn check_user_enabled(&self, userid: &str) -> Result<(), AccessError> {
        self.check_user_enabled_at(userid, now_epoch())
    }

    /// [`AccessControl::check_user_enabled`] at a given time (seconds since the epoch).
    pub fn check_user_enabled_at(&self, userid: &str, now_secs: u64) -> Result<(), AccessError> {
        let user = self
            .users
            .get(userid)
            .ok_or_else(|| AccessError::NoSuchUser(userid.to_string()))?;
        if !user.enable {
            return Err(AccessError::UserDisabled(userid.to_string()));
        }
        if user.expire != 0 && user.expire < now_secs {
            return Err(AccessError::UserExpired(userid.to_string()));
        }
        Ok(())
    }

    /// Whether `userid` exists, is enabled and has not expired.
    pub fn user_enabled(&self, userid: &str) -> bool {
        self.check_user_enabled(userid).is_ok()
    }

    /// Whether the token `user@realm!name` exists (its user must exist too).
    pub fn token_exists(&self, full_tokenid: &str) -> bool {
        names::split_tokenid(full_tokenid).is_some_and(|(u, t)| self.token(u, t).is_some())
    }

    /// A user by id.
    pub fn user(&self, userid: &str) -> Option<&User> {
        self.users.get(userid)
    }

    /// All users by id.
    pub fn users(&self) -> &BTreeMap<String, User> {
        &self.users
    }

    /// The groups `userid` belongs to, sorted.
    pub fn user_groups(&self, userid: &str) -> Vec<String> {
        self.groups
            .iter()
            .filter(|(_, g)| g.users.contains(userid))
            .map(|(n, _)| n.clone())
            .collect()
    }

    /// A token of a user.
    pub fn token(&self, userid: &str, name: &str) -> Option<&Token> {
        self.users.get(userid).and_then(|u| u.tokens.get(name))
    }

    /// A group by name.
    pub fn group(&self, name: &str) -> Option<&Group> {
        self.groups.get(name)
    }

    /// All groups by name.
    pub fn groups(&self) -> &BTreeMap<String, Group> {
        &self.groups
    }

    /// The privileges of a role (built-in or custom), `None` if there is no such role.
    pub fn role(&self, name: &str) -> Option<BTreeSet<String>> {
        self.role_privileges(name)
    }

    /// Every role (built-in and custom) with its privileges and whether it is built in.
    pub fn all_roles(&self) -> BTreeMap<String, (BTreeSet<String>, bool)> {
        let mut out: BTreeMap<String, (BTreeSet<String>, bool)> = privileges::BUILTIN_ROLE_NAMES
            .iter()
            .map(|n| {
                (
                    n.to_string(),
                    (self.role_privileges(n).unwrap_or_default(), true),
                )
            })
            .collect();
        for (name, privs) in &self.roles {
            out.insert(name.clone(), (privs.clone(), false));
        }
        out
    }

    /// Every ACL entry, in path order (the root@pam entries PVE does not store are left out).
    pub fn acl_entries(&self) -> Vec<AclEntry> {
        let mut out = Vec::new();
        for (path, node) in &self.acl {
            let mut push = |subject: AclSubject, roles: &BTreeMap<String, bool>| {
                for (role, propagate) in roles {
                    out.push(AclEntry {
                        path: path.clone(),
                        subject: subject.clone(),
                        role: role.clone(),
                        propagate: *propagate,
                    });
                }
            };
            for (u, r) in &node.users {
                push(AclSubject::User(u.clone()), r);
            }
            for (g, r) in &node.groups {
                push(AclSubject::Group(g.clone()), r);
            }
            for (t, r) in &node.tokens {
                push(AclSubject::Token(t.clone()), r);
            }
        }
        out
    }

    /// A pool by name.
    pub fn pool(&self, name: &str) -> Option<&Pool> {
        self.pools.get(name)
    }

    /// All pools by name.
    pub fn pools(&self) -> &BTreeMap<String, Pool> {
        &self.pools
    }

    /// The pool a VM belongs to.
    pub fn vm_pool(&self, vmid: u32) -> Option<&str> {
        self.pools
            .iter()
            .find(|(_, p)| p.vms.contains(&vmid))
            .map(|(n, _)| n.as_str())
    }
}
