//! How the client authenticates: an API token or a user and password, checked for the forms
//! Proxmox accepts (`USER@REALM!TOKENNAME`, `USER@REALM`).

use crate::error::{PveError, Result};
use crate::secret::Secret;

fn is_realm(s: &str) -> bool {
    let mut chars = s.chars();
    s.len() >= 2
        && chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
}

fn is_user(s: &str) -> bool {
    !s.is_empty()
        && !s
            .chars()
            .any(|c| c.is_whitespace() || c == ':' || c == '/' || c == '@' || c == '!')
}

pub(super) fn resolve_credentials(
    token_id: Option<String>,
    token_secret: Option<Secret>,
    username: Option<String>,
    password: Option<Secret>,
    realm: Option<String>,
) -> Result<Credentials> {
    let token = token_id.is_some() || token_secret.is_some();
    let ticket = username.is_some() || password.is_some();
    if token && ticket {
        return Err(PveError::config(
            "tokenID",
            "both an API token (tokenID/tokenSecret) and username/password are set; set one (the token is recommended)",
        ));
    }
    if token {
        let token_id = token_id.ok_or_else(|| {
            PveError::config("tokenID", "tokenSecret is set but tokenID is missing")
        })?;
        let secret = token_secret.ok_or_else(|| {
            PveError::config(
                "tokenSecret",
                "tokenID is set but tokenSecret is missing (or PVE_TOKEN_SECRET)",
            )
        })?;
        let valid = token_id.split_once('@').and_then(|(user, rest)| {
            let (realm, name) = rest.split_once('!')?;
            (is_user(user) && is_realm(realm) && is_realm(name)).then_some(())
        });
        if valid.is_none() {
            return Err(PveError::config(
                "tokenID",
                // Not quoted: a secret pasted into the wrong key must not end up in a status.
                "is not of the form USER@REALM!TOKENNAME (e.g. omni@pve!omni-provider)",
            ));
        }
        if secret
            .expose()
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '=')
        {
            return Err(PveError::config(
                "tokenSecret",
                "contains whitespace, a control character or '='; expected a UUID like xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx",
            ));
        }
        return Ok(Credentials::Token(ApiToken { token_id, secret }));
    }
    if ticket {
        let username = username.ok_or_else(|| {
            PveError::config("username", "password is set but username is missing")
        })?;
        let password = password.ok_or_else(|| {
            PveError::config("password", "username is set but password is missing")
        })?;
        let userid = match (username.split_once('@'), realm) {
            (Some((user, r)), Some(realm)) if r != realm => {
                return Err(PveError::config(
                    "realm",
                    format!("username {user}@{r} names realm {r:?} but realm is {realm:?}"),
                ));
            }
            (Some((user, r)), _) => (user.to_owned(), r.to_owned()),
            (None, Some(realm)) => (username.clone(), realm),
            (None, None) => {
                return Err(PveError::config(
                    "realm",
                    format!(
                        "username {username:?} has no realm: write {username}@pve (or @pam) or set realm"
                    ),
                ));
            }
        };
        if !is_user(&userid.0) || !is_realm(&userid.1) {
            return Err(PveError::config(
                "username",
                format!(
                    "{}@{} is not a valid Proxmox user id USER@REALM",
                    userid.0, userid.1
                ),
            ));
        }
        return Ok(Credentials::Password {
            userid: format!("{}@{}", userid.0, userid.1),
            password,
        });
    }
    Err(PveError::config(
        "tokenID",
        "no credentials: set tokenID and tokenSecret (or username and password)",
    ))
}

/// How the client authenticates.
#[derive(Debug, Clone)]
pub enum Credentials {
    /// An API token (recommended).
    Token(ApiToken),
    /// A user and password: a ticket is obtained from `POST /access/ticket` and renewed.
    Password {
        /// `user@realm`.
        userid: String,
        /// The password.
        password: Secret,
    },
}

/// An API token.
#[derive(Debug, Clone)]
pub struct ApiToken {
    /// `USER@REALM!TOKENNAME`.
    pub token_id: String,
    /// The secret (a UUID).
    pub secret: Secret,
}

impl ApiToken {
    /// The user that owns the token (`USER@REALM`).
    pub fn userid(&self) -> &str {
        self.token_id
            .split_once('!')
            .map_or(self.token_id.as_str(), |(u, _)| u)
    }
}
