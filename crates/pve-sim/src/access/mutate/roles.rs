//! Creating, changing and deleting custom roles, with the privilege names of the configured
//! version.

use std::collections::BTreeSet;

use crate::access::{AccessControl, AccessError, names, privileges};

impl AccessControl {
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
}
