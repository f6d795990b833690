//! Granting and revoking roles on ACL paths, with PVE 8's rule for callers without
//! `Permissions.Modify`.

use std::collections::BTreeSet;

use super::AclChange;
use crate::access::model::AclSubject;
use crate::access::{AccessControl, AccessError, names};

impl AccessControl {
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
        have: &crate::access::acl::FlagMap,
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
}
