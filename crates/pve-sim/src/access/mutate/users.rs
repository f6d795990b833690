//! Creating, changing and deleting users, and setting a password.

use std::collections::BTreeSet;

use super::{UserOptions, non_empty};
use crate::access::model::User;
use crate::access::secret::SecretHash;
use crate::access::{AccessControl, AccessError, REALMS, names};

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
    pub(super) fn user_mut(&mut self, userid: &str) -> Result<&mut User, AccessError> {
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
}
