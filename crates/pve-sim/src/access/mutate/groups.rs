//! Creating, changing and deleting groups.

use std::collections::BTreeSet;

use super::non_empty;
use crate::access::model::Group;
use crate::access::{AccessControl, AccessError, names};

impl AccessControl {
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
}
