//! Creating, changing and removing API tokens (the secret value is returned once and kept only
//! as a hash).

use super::non_empty;
use crate::access::model::Token;
use crate::access::secret::{SecretHash, random_uuid};
use crate::access::{AccessControl, AccessError, names};

impl AccessControl {
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
}
