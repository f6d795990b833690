//! Changes to the configuration, with the checks and error texts of PVE 8's `/access` API
//! handlers (`API2/User.pm`, `Group.pm`, `Role.pm`, `ACL.pm`, `Pool.pm`). Callers check the
//! caller's permissions; these methods check the configuration.

use std::collections::BTreeSet;

use super::{
    AccessControl, AccessError, REALMS, ROOT_USER,
    model::{AclSubject, Group, Pool, Token, User},
    names, privileges,
    secret::{SecretHash, random_uuid},
};

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
    /// Checks that `userid` is valid and its realm exists.
    fn check_userid(userid: &str) -> Result<(), AccessError> {
        let (_, realm) = names::split_userid(userid)
            .ok_or_else(|| AccessError::InvalidUserid(userid.to_string()))?;
        if !REALMS.contains(&realm) {
            return Err(AccessError::NoSuchRealm(realm.to_string()));
        }
        Ok(())
    }

    /// The user, or `no such user ('…')`.
    fn user_mut(&mut self, userid: &str) -> Result<&mut User, AccessError> {
        self.users
            .get_mut(userid)
            .ok_or_else(|| AccessError::NoSuchUser(userid.to_string()))
    }

    /// Puts `userid` into each of `groups`, which must all exist.
    fn add_to_groups(&mut self, userid: &str, groups: &[String]) -> Result<(), AccessError> {
        if let Some(missing) = groups.iter().find(|g| !self.groups.contains_key(*g)) {
            return Err(AccessError::UnknownGroup(missing.clone()));
        }
        for g in groups {
            if let Some(group) = self.groups.get_mut(g) {
                group.users.insert(userid.to_string());
            }
        }
        Ok(())
    }

    /// Creates a user (`POST /access/users`); `enable` defaults to true.
    pub fn user_add(
        &mut self,
        userid: &str,
        password: Option<&str>,
        opts: UserOptions,
    ) -> Result<(), AccessError> {
        Self::check_userid(userid)?;
        if self.users.contains_key(userid) {
            return Err(AccessError::UserExists(userid.to_string()));
        }
        if let Some(groups) = &opts.groups
            && let Some(missing) = groups.iter().find(|g| !self.groups.contains_key(*g))
        {
            return Err(AccessError::UnknownGroup(missing.clone()));
        }
        let user = User {
            enable: opts.enable.unwrap_or(true),
            expire: opts.expire.unwrap_or(0),
            firstname: non_empty(opts.firstname),
            lastname: non_empty(opts.lastname),
            email: non_empty(opts.email),
            comment: non_empty(opts.comment),
            keys: non_empty(opts.keys),
            tokens: Default::default(),
            password: password.map(SecretHash::new),
        };
        self.users.insert(userid.to_string(), user);
        self.add_to_groups(userid, &opts.groups.unwrap_or_default())
    }

    /// Changes a user (`PUT /access/users/{userid}`). Given `groups` replace the current ones
    /// unless `append` is set.
    pub fn user_modify(
        &mut self,
        userid: &str,
        opts: UserOptions,
        append: bool,
    ) -> Result<(), AccessError> {
        self.user_mut(userid)?;
        if let Some(groups) = &opts.groups {
            if let Some(missing) = groups.iter().find(|g| !self.groups.contains_key(*g)) {
                return Err(AccessError::UnknownGroup(missing.clone()));
            }
            if !append {
                for g in self.groups.values_mut() {
                    g.users.remove(userid);
                }
            }
            self.add_to_groups(userid, groups)?;
        }
        let user = self.user_mut(userid)?;
        if let Some(e) = opts.enable {
            user.enable = e;
        }
        if let Some(e) = opts.expire {
            user.expire = e;
        }
        let set = |field: &mut Option<String>, v: Option<String>| {
            if let Some(v) = v {
                *field = non_empty(Some(v));
            }
        };
        set(&mut user.firstname, opts.firstname);
        set(&mut user.lastname, opts.lastname);
        set(&mut user.email, opts.email);
        set(&mut user.comment, opts.comment);
        set(&mut user.keys, opts.keys);
        Ok(())
    }

    /// Sets a user's password (`PUT /access/password`, `pveum passwd`).
    pub fn user_passwd(&mut self, userid: &str, password: &str) -> Result<(), AccessError> {
        self.user_mut(userid)?.password = Some(SecretHash::new(password));
        Ok(())
    }

    /// Deletes a user with its tokens, group memberships and ACL entries.
    pub fn user_delete(&mut self, userid: &str) -> Result<(), AccessError> {
        let user = self
            .users
            .remove(userid)
            .ok_or_else(|| AccessError::NoSuchUser(userid.to_string()))?;
        for g in self.groups.values_mut() {
            g.users.remove(userid);
        }
        let token_ids: BTreeSet<String> = user
            .tokens
            .keys()
            .map(|t| format!("{userid}!{t}"))
            .collect();
        for node in self.acl.values_mut() {
            node.users.remove(userid);
            node.tokens.retain(|t, _| !token_ids.contains(t));
        }
        self.prune_acl();
        Ok(())
    }

    /// Removes ACL nodes nobody has a role on any more.
    fn prune_acl(&mut self) {
        for node in self.acl.values_mut() {
            node.users.retain(|_, r| !r.is_empty());
            node.groups.retain(|_, r| !r.is_empty());
            node.tokens.retain(|_, r| !r.is_empty());
        }
        self.acl.retain(|_, n| !n.is_empty());
    }

    /// Creates a group.
    pub fn group_add(&mut self, name: &str, comment: Option<&str>) -> Result<(), AccessError> {
        if !names::is_valid_groupname(name) {
            return Err(AccessError::InvalidGroupname(name.to_string()));
        }
        if self.groups.contains_key(name) {
            return Err(AccessError::GroupExists(name.to_string()));
        }
        let group = Group {
            users: BTreeSet::new(),
            comment: non_empty(comment.map(str::to_string)),
        };
        self.groups.insert(name.to_string(), group);
        Ok(())
    }

    /// Changes a group's comment.
    pub fn group_modify(&mut self, name: &str, comment: Option<&str>) -> Result<(), AccessError> {
        let group = self
            .groups
            .get_mut(name)
            .ok_or_else(|| AccessError::NoSuchGroup(name.to_string()))?;
        if let Some(c) = comment {
            group.comment = non_empty(Some(c.to_string()));
        }
        Ok(())
    }

    /// Deletes a group and its ACL entries.
    pub fn group_delete(&mut self, name: &str) -> Result<(), AccessError> {
        self.groups
            .remove(name)
            .ok_or_else(|| AccessError::NoSuchGroup(name.to_string()))?;
        for node in self.acl.values_mut() {
            node.groups.remove(name);
        }
        self.prune_acl();
        Ok(())
    }

    /// Checks privilege names against this version's, as `add_role_privs` does.
    fn checked_privs(&self, privs: &[&str]) -> Result<BTreeSet<String>, AccessError> {
        privs
            .iter()
            .map(|p| {
                if privileges::is_valid_privilege(self.version, p) {
                    Ok((*p).to_string())
                } else {
                    Err(AccessError::InvalidPrivilege((*p).to_string()))
                }
            })
            .collect()
    }

    /// Creates a custom role. Names starting with `PVE` (any case) are reserved.
    pub fn role_add(&mut self, name: &str, privs: &[&str]) -> Result<(), AccessError> {
        if !names::is_valid_rolename(name) {
            return Err(AccessError::InvalidRolename(name.to_string()));
        }
        if name.get(..3).is_some_and(|p| p.eq_ignore_ascii_case("PVE")) {
            return Err(AccessError::ReservedRolePrefix);
        }
        if self.role_privileges(name).is_some() {
            return Err(AccessError::RoleExists(name.to_string()));
        }
        let set = self.checked_privs(privs)?;
        self.roles.insert(name.to_string(), set);
        Ok(())
    }

    /// Changes a custom role's privileges: replaces them, or adds to them with `append`.
    pub fn role_modify(
        &mut self,
        name: &str,
        privs: &[&str],
        append: bool,
    ) -> Result<(), AccessError> {
        if privileges::is_builtin_role(name) {
            return Err(AccessError::BuiltinRoleModify(name.to_string()));
        }
        let add = self.checked_privs(privs)?;
        let set = self
            .roles
            .get_mut(name)
            .ok_or_else(|| AccessError::NoSuchRole(name.to_string()))?;
        if !append {
            set.clear();
        }
        set.extend(add);
        Ok(())
    }

    /// Deletes a custom role and its ACL entries.
    pub fn role_delete(&mut self, name: &str) -> Result<(), AccessError> {
        if privileges::is_builtin_role(name) {
            return Err(AccessError::BuiltinRoleDelete(name.to_string()));
        }
        self.roles
            .remove(name)
            .ok_or_else(|| AccessError::NoSuchRole(name.to_string()))?;
        for node in self.acl.values_mut() {
            for roles in node
                .users
                .values_mut()
                .chain(node.groups.values_mut())
                .chain(node.tokens.values_mut())
            {
                roles.remove(name);
            }
        }
        self.prune_acl();
        Ok(())
    }

    /// Grants or revokes roles on a path (`PUT /access/acl`, `pveum aclmod`/`acldel`). On behalf
    /// of a caller without `Permissions.Modify` on the path, only roles whose privileges the caller
    /// holds there (propagating, if the grant propagates) may be granted, as PVE 8 enforces.
    pub fn acl_update(
        &mut self,
        change: &AclChange,
        caller: Option<&str>,
    ) -> Result<(), AccessError> {
        if change.users.is_empty() && change.groups.is_empty() && change.tokens.is_empty() {
            return Err(AccessError::NoAclMembers);
        }
        let path = names::normalize_path(&change.path)
            .ok_or_else(|| AccessError::InvalidAclPath(change.path.clone()))?;
        if !change.delete && !names::is_valid_acl_path(&path) {
            return Err(AccessError::InvalidAclPath(change.path.clone()));
        }
        let mut updated = self.clone();
        let caller_privs = caller.map(|c| self.privilege_flags(c, &path));
        for role in &change.roles {
            let role_privs = self
                .role_privileges(role)
                .ok_or_else(|| AccessError::NoSuchRole(role.clone()))?;
            if let Some(have) = &caller_privs
                && !have.contains_key("Permissions.Modify")
            {
                Self::check_acl_subset(role, &role_privs, have, change)?;
            }
            for group in &change.groups {
                if !self.groups.contains_key(group) {
                    return Err(AccessError::NoSuchGroup(group.clone()));
                }
                updated.set_acl(&path, AclSubject::Group(group.clone()), role, change);
            }
            for user in &change.users {
                if !names::is_valid_userid(user) {
                    return Err(AccessError::InvalidUserid(user.clone()));
                }
                if !self.users.contains_key(user) {
                    return Err(AccessError::AclUserMissing(user.clone()));
                }
                updated.set_acl(&path, AclSubject::User(user.clone()), role, change);
            }
            for token in &change.tokens {
                let (user, name) = names::split_tokenid(token)
                    .ok_or_else(|| AccessError::InvalidTokenid(token.clone()))?;
                if self.token(user, name).is_none() {
                    return Err(AccessError::NoSuchToken {
                        user: user.to_string(),
                        token: name.to_string(),
                    });
                }
                updated.set_acl(&path, AclSubject::Token(token.clone()), role, change);
            }
        }
        updated.prune_acl();
        *self = updated;
        Ok(())
    }

    /// PVE 8's rule for callers without `Permissions.Modify` on the path (`perm-modify` lets
    /// `VM.Allocate` on `/vms/*` and similar through): they may only grant or revoke roles whose
    /// privileges they hold there, propagating ones for propagating grants, and never `NoAccess`.
    fn check_acl_subset(
        role: &str,
        role_privs: &BTreeSet<String>,
        have: &super::acl::FlagMap,
        change: &AclChange,
    ) -> Result<(), AccessError> {
        let verb = if change.delete { "remove" } else { "add" };
        for p in role_privs {
            match have.get(p) {
                None => {
                    return Err(AccessError::AclRoleDenied(format!(
                        "Cannot {verb} role '{role}' - requires 'Permissions.Modify' or superset of privileges."
                    )));
                }
                Some(false) if change.propagate && !change.delete => {
                    return Err(AccessError::AclRoleDenied(format!(
                        "Cannot {verb} role '{role}' with propagation - requires 'Permissions.Modify' or propagated superset of privileges."
                    )));
                }
                Some(_) => {}
            }
        }
        if role == "NoAccess" {
            return Err(AccessError::AclRoleDenied(format!(
                "Cannot {verb} role '{role}' - requires 'Permissions.Modify'"
            )));
        }
        Ok(())
    }

    /// Grants one role to one user, group or token on `path` (as root does; `pveum aclmod`).
    pub fn acl_modify(
        &mut self,
        path: &str,
        subject: AclSubject,
        role: &str,
        propagate: bool,
    ) -> Result<(), AccessError> {
        self.acl_update(
            &Self::single_change(path, subject, role, propagate, false),
            None,
        )
    }

    /// Revokes one role of one user, group or token on `path` (`pveum acldel`).
    pub fn acl_delete(
        &mut self,
        path: &str,
        subject: AclSubject,
        role: &str,
    ) -> Result<(), AccessError> {
        self.acl_update(&Self::single_change(path, subject, role, false, true), None)
    }

    /// An [`AclChange`] for one subject and role.
    fn single_change(
        path: &str,
        subject: AclSubject,
        role: &str,
        propagate: bool,
        delete: bool,
    ) -> AclChange {
        let mut change = AclChange {
            path: path.to_string(),
            roles: vec![role.to_string()],
            propagate,
            delete,
            ..AclChange::default()
        };
        match subject {
            AclSubject::User(u) => change.users.push(u),
            AclSubject::Group(g) => change.groups.push(g),
            AclSubject::Token(t) => change.tokens.push(t),
        }
        change
    }

    /// Sets or removes one role of one subject on a normalized path.
    fn set_acl(&mut self, path: &str, subject: AclSubject, role: &str, change: &AclChange) {
        let node = self.acl.entry(path.to_string()).or_default();
        let roles = match subject {
            AclSubject::User(u) => node.users.entry(u).or_default(),
            AclSubject::Group(g) => node.groups.entry(g).or_default(),
            AclSubject::Token(t) => node.tokens.entry(t).or_default(),
        };
        if change.delete {
            roles.remove(role);
        } else {
            roles.insert(role.to_string(), change.propagate);
        }
    }

    /// Creates an API token and returns its secret value (a UUID, shown only this once).
    /// `privsep` defaults to true; without `expire` the token has none of its own (the user's
    /// expiration still applies, as PVE's "same as user").
    pub fn token_add(
        &mut self,
        userid: &str,
        name: &str,
        privsep: Option<bool>,
        expire: Option<u64>,
        comment: Option<&str>,
    ) -> Result<String, AccessError> {
        if !names::is_realm_like(name) {
            return Err(AccessError::InvalidTokenid(format!("{userid}!{name}")));
        }
        let user = self.user_mut(userid)?;
        if user.tokens.contains_key(name) {
            return Err(AccessError::TokenExists);
        }
        let value = random_uuid();
        let expire = expire.unwrap_or(0);
        user.tokens.insert(
            name.to_string(),
            Token {
                privsep: privsep.unwrap_or(true),
                expire,
                comment: non_empty(comment.map(str::to_string)),
                secret: Some(SecretHash::new(&value)),
            },
        );
        Ok(value)
    }

    /// Changes an API token's privilege separation, expiration or comment.
    pub fn token_modify(
        &mut self,
        userid: &str,
        name: &str,
        privsep: Option<bool>,
        expire: Option<u64>,
        comment: Option<&str>,
    ) -> Result<(), AccessError> {
        let token = self.user_mut(userid)?.tokens.get_mut(name).ok_or_else(|| {
            AccessError::NoSuchToken {
                user: userid.to_string(),
                token: name.to_string(),
            }
        })?;
        if let Some(p) = privsep {
            token.privsep = p;
        }
        if let Some(e) = expire {
            token.expire = e;
        }
        if let Some(c) = comment {
            token.comment = non_empty(Some(c.to_string()));
        }
        Ok(())
    }

    /// Removes an API token and its ACL entries.
    pub fn token_remove(&mut self, userid: &str, name: &str) -> Result<(), AccessError> {
        self.user_mut(userid)?
            .tokens
            .remove(name)
            .ok_or_else(|| AccessError::NoSuchToken {
                user: userid.to_string(),
                token: name.to_string(),
            })?;
        let full = format!("{userid}!{name}");
        for node in self.acl.values_mut() {
            node.tokens.remove(&full);
        }
        self.prune_acl();
        Ok(())
    }

    /// Creates a pool (nested pools need their parent).
    pub fn pool_add(&mut self, name: &str, comment: Option<&str>) -> Result<(), AccessError> {
        if !names::is_valid_poolname(name) {
            return Err(AccessError::InvalidPoolname(name.to_string()));
        }
        if self.pools.contains_key(name) {
            return Err(AccessError::PoolExists(name.to_string()));
        }
        if let Some((parent, _)) = name.rsplit_once('/')
            && !self.pools.contains_key(parent)
        {
            return Err(AccessError::NoSuchParentPool {
                parent: parent.to_string(),
                pool: name.to_string(),
            });
        }
        let pool = Pool {
            comment: non_empty(comment.map(str::to_string)),
            ..Pool::default()
        };
        self.pools.insert(name.to_string(), pool);
        Ok(())
    }

    /// Changes a pool's comment.
    pub fn pool_modify(&mut self, name: &str, comment: Option<&str>) -> Result<(), AccessError> {
        let pool = self.pool_mut(name)?;
        if let Some(c) = comment {
            pool.comment = non_empty(Some(c.to_string()));
        }
        Ok(())
    }

    /// Adds VMs and storages to a pool, or removes them with `delete` (`PUT /pools`). A VM in
    /// another pool moves only with `allow_move`. All or nothing.
    pub fn pool_update_members(
        &mut self,
        name: &str,
        vms: &[u32],
        storages: &[String],
        delete: bool,
        allow_move: bool,
    ) -> Result<(), AccessError> {
        let mut updated = self.clone();
        updated.pool_mut(name)?;
        for &vmid in vms {
            let current = updated.vm_pool(vmid).map(str::to_string);
            if delete {
                if current.as_deref() != Some(name) {
                    return Err(AccessError::VmNotInPool(vmid));
                }
                updated.pool_remove_vm(vmid);
                continue;
            }
            match current {
                Some(p) if p == name => return Err(AccessError::VmInPool(vmid)),
                Some(p) if !allow_move => {
                    return Err(AccessError::VmInOtherPool { vmid, pool: p });
                }
                _ => {}
            }
            updated.pool_remove_vm(vmid);
            updated.pool_mut(name)?.vms.insert(vmid);
        }
        for store in storages {
            let pool = updated.pool_mut(name)?;
            if delete {
                if !pool.storage.remove(store) {
                    return Err(AccessError::StorageNotInPool(store.clone()));
                }
            } else if !names::is_valid_storeid(store) {
                return Err(AccessError::InvalidStorageId(store.clone()));
            } else if !pool.storage.insert(store.clone()) {
                return Err(AccessError::StorageInPool(store.clone()));
            }
        }
        *self = updated;
        Ok(())
    }

    /// Deletes an empty pool (no VMs, storages or child pools) and its ACL entries.
    pub fn pool_delete(&mut self, name: &str) -> Result<(), AccessError> {
        let pool = self
            .pools
            .get(name)
            .ok_or_else(|| AccessError::NoSuchPool(name.to_string()))?;
        let not_empty = |what: String| AccessError::PoolNotEmpty(name.to_string(), what);
        if let Some(vmid) = pool.vms.iter().next() {
            return Err(not_empty(format!("VM {vmid}")));
        }
        if let Some(store) = pool.storage.iter().next() {
            return Err(not_empty(format!("storage '{store}'")));
        }
        let prefix = format!("{name}/");
        if let Some(child) = self.pools.keys().find(|p| p.starts_with(&prefix)) {
            return Err(not_empty(format!("child pool '{child}'")));
        }
        self.pools.remove(name);
        self.acl.remove(&format!("/pool/{name}"));
        Ok(())
    }

    /// The pool, or `pool '…' does not exist`.
    fn pool_mut(&mut self, name: &str) -> Result<&mut Pool, AccessError> {
        self.pools
            .get_mut(name)
            .ok_or_else(|| AccessError::NoSuchPool(name.to_string()))
    }

    /// Adds a VM to a pool (VM create with `pool`). A VM belongs to at most one pool.
    pub fn pool_add_vm(&mut self, pool: &str, vmid: u32) -> Result<(), AccessError> {
        self.pool_mut(pool)?;
        match self.vm_pool(vmid) {
            Some(p) if p == pool => return Ok(()),
            Some(_) => return Err(AccessError::VmInPool(vmid)),
            None => {}
        }
        self.pool_mut(pool)?.vms.insert(vmid);
        Ok(())
    }

    /// Removes a VM from whatever pool holds it.
    pub fn pool_remove_vm(&mut self, vmid: u32) {
        for p in self.pools.values_mut() {
            p.vms.remove(&vmid);
        }
    }

    /// Adds a storage to a pool.
    pub fn pool_add_storage(&mut self, pool: &str, storage: &str) -> Result<(), AccessError> {
        if !names::is_valid_storeid(storage) {
            return Err(AccessError::InvalidStorageId(storage.to_string()));
        }
        self.pool_mut(pool)?.storage.insert(storage.to_string());
        Ok(())
    }

    /// Removes a storage from a pool.
    pub fn pool_remove_storage(&mut self, pool: &str, storage: &str) -> Result<(), AccessError> {
        self.pool_mut(pool)?.storage.remove(storage);
        Ok(())
    }

    /// Forgets a destroyed VM: its pool membership and its `/vms/<id>` ACL entries
    /// (`remove_vm_access`).
    pub fn remove_vm(&mut self, vmid: u32) {
        self.pool_remove_vm(vmid);
        self.acl.remove(&format!("/vms/{vmid}"));
    }

    /// Whether a user is root@pam.
    pub fn is_root(auth_id: &str) -> bool {
        auth_id == ROOT_USER
    }
}
