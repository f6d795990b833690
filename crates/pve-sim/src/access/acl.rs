//! ACL evaluation, replaying `AccessControl::roles` and `RPCEnvironment::permissions` /
//! `$compile_acl_path` of pve-access-control stable-bookworm step by step.

use std::collections::{BTreeMap, BTreeSet};

use super::{AccessControl, ROOT_USER, model::AclNode, names, privileges};

/// Role name -> propagate flag, or privilege name -> propagate flag.
pub type FlagMap = BTreeMap<String, bool>;

/// The top-level paths `get_effective_permissions` always looks at.
const DEFAULT_TREE_PATHS: &[&str] = &[
    "/",
    "/access",
    "/access/groups",
    "/nodes",
    "/pool",
    "/sdn",
    "/storage",
    "/vms",
];

/// The path components as Perl's `split("/", $path)` yields them (trailing empty fields dropped),
/// with `/` itself as one empty component.
fn split_path(path: &str) -> Vec<&str> {
    if path == "/" {
        return vec![""];
    }
    let mut parts: Vec<&str> = path.split('/').collect();
    while parts.last().is_some_and(|p| p.is_empty()) {
        parts.pop();
    }
    parts
}

/// The roles of one member entry that apply at this level: all on the final path, else only the
/// propagating ones. `None` if none apply.
fn applicable(roles: &BTreeMap<String, bool>, is_final: bool) -> Option<FlagMap> {
    let new: FlagMap = roles
        .iter()
        .filter(|(_, propagate)| is_final || **propagate)
        .map(|(r, p)| (r.clone(), *p))
        .collect();
    (!new.is_empty()).then_some(new)
}

impl AccessControl {
    /// The privileges of a role (built-in or custom), `None` if it does not exist.
    pub(super) fn role_privileges(&self, role: &str) -> Option<BTreeSet<String>> {
        if let Some(set) = privileges::builtin_role_privileges(self.version, role) {
            return Some(set.into_iter().map(str::to_string).collect());
        }
        self.roles.get(role).cloned()
    }

    /// `AccessControl::roles`: role -> propagate for `auth_id` at `path`, without pools.
    pub(super) fn role_flags(&self, auth_id: &str, path: &str) -> FlagMap {
        if auth_id == ROOT_USER {
            return FlagMap::from([("Administrator".to_string(), true)]);
        }
        if let Some((user, token)) = names::split_tokenid(auth_id) {
            let Some(info) = self.users.get(user).and_then(|u| u.tokens.get(token)) else {
                return FlagMap::new();
            };
            if !info.privsep {
                return self.role_flags(user, path);
            }
        }

        let mut roles = FlagMap::new();
        let parts = split_path(path);
        let mut current = String::new();
        for (i, part) in parts.iter().enumerate() {
            let is_final = i + 1 == parts.len();
            if !part.is_empty() {
                current.push('/');
                current.push_str(part);
            }
            let key = if current.is_empty() { "/" } else { &current };
            let Some(node) = self.acl.get(key) else {
                continue;
            };
            if let Some(new) = self.level_roles(node, auth_id, is_final) {
                roles = new; // a deeper match replaces what was set above
            }
        }
        if let Some(flag) = roles.get("NoAccess") {
            return FlagMap::from([("NoAccess".to_string(), *flag)]);
        }
        roles
    }

    /// The roles one ACL node gives: the token's entry, else the user's entry (which overrides
    /// groups), else the union of the groups' entries.
    fn level_roles(&self, node: &AclNode, auth_id: &str, is_final: bool) -> Option<FlagMap> {
        if let Some(new) = node
            .tokens
            .get(auth_id)
            .and_then(|r| applicable(r, is_final))
        {
            return Some(new);
        }
        if let Some(new) = node
            .users
            .get(auth_id)
            .and_then(|r| applicable(r, is_final))
        {
            return Some(new);
        }
        let mut new: Option<FlagMap> = None;
        for (group, roles) in &node.groups {
            let member = self
                .groups
                .get(group)
                .is_some_and(|g| g.users.contains(auth_id));
            if !member {
                continue;
            }
            if let Some(found) = applicable(roles, is_final) {
                new.get_or_insert_with(FlagMap::new).extend(found);
            }
        }
        new
    }

    /// The roles `auth_id` has on the pools that hold `path` (a `/vms/<id>` or `/storage/<id>`).
    fn pool_roles(&self, auth_id: &str, path: &str) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        for (name, pool) in &self.pools {
            let member = if let Some(id) = path.strip_prefix("/vms/") {
                pool.vms.iter().any(|v| v.to_string() == id)
            } else if let Some(id) = path.strip_prefix("/storage/") {
                pool.storage.contains(id)
            } else {
                false
            };
            if member {
                out.extend(
                    self.role_flags(auth_id, &format!("/pool/{name}"))
                        .into_keys(),
                );
            }
        }
        out
    }

    /// `RPCEnvironment::permissions`: privilege -> propagate for `auth_id` at `path`.
    pub(super) fn privilege_flags(&self, auth_id: &str, path: &str) -> FlagMap {
        if auth_id == ROOT_USER {
            return privileges::all_privileges(self.version)
                .into_iter()
                .map(|p| (p.to_string(), true))
                .collect();
        }
        let mut owner: Option<&str> = None;
        if let Some((user, token)) = names::split_tokenid(auth_id) {
            let Some(info) = self.users.get(user).and_then(|u| u.tokens.get(token)) else {
                return FlagMap::new();
            };
            if !info.privsep {
                return self.privilege_flags(user, path);
            }
            owner = Some(user);
        } else if !names::is_valid_userid(auth_id) {
            return FlagMap::new();
        }

        let mut roles = self.role_flags(auth_id, path);
        let pool_roles = self.pool_roles(auth_id, path);
        // A regular NoAccess is never trumped by pool ACLs; a pool NoAccess trumps regular ACLs;
        // other pool roles are added without propagation where no regular ACL set them.
        if !pool_roles.is_empty() && !roles.contains_key("NoAccess") {
            if pool_roles.contains("NoAccess") {
                roles = FlagMap::from([("NoAccess".to_string(), false)]);
            } else {
                for role in pool_roles {
                    roles.entry(role).or_insert(false);
                }
            }
        }

        // Privilege with propagation wins over the same privilege without.
        let mut privs = FlagMap::new();
        for (role, propagate) in &roles {
            for p in self.role_privileges(role).unwrap_or_default() {
                let entry = privs.entry(p).or_insert(*propagate);
                *entry |= *propagate;
            }
        }

        if let Some(user) = owner.filter(|u| *u != ROOT_USER) {
            let user_privs = self.privilege_flags(user, path);
            privs = privs
                .into_iter()
                .filter_map(|(p, tok)| user_privs.get(&p).map(|usr| (p, tok && *usr)))
                .collect();
        }
        privs
    }

    /// The paths `GET /access/permissions` lists without `path`: the top-level ones, every ACL
    /// tree node, and the member VMs and storages of pools.
    pub(super) fn effective_permission_paths(&self) -> BTreeSet<String> {
        let mut paths: BTreeSet<String> =
            DEFAULT_TREE_PATHS.iter().map(|p| p.to_string()).collect();
        for acl_path in self.acl.keys() {
            let mut prefix = String::new();
            for part in acl_path.split('/').filter(|p| !p.is_empty()) {
                prefix.push('/');
                prefix.push_str(part);
                paths.insert(prefix.clone());
            }
        }
        for pool in self.pools.values() {
            paths.extend(pool.vms.iter().map(|v| format!("/vms/{v}")));
            paths.extend(pool.storage.iter().map(|s| format!("/storage/{s}")));
        }
        paths
    }
}
