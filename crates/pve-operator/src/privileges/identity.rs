//! Who the credentials are: an API token or a user with a password ([`Identity`]), what else a
//! check needs to know about them ([`Subject`]), and, for a token, whether it is
//! privilege-separated ([`Privsep`]), as far as Proxmox lets the token read that about itself.

use std::fmt;

use pve_client::{Credentials, ErrorKind, PveClient, PveConfig, PveError, TlsTrust};
use serde::Serialize;

/// Who the credentials are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// An API token, `USER@REALM!NAME`.
    Token {
        /// The full token id.
        token_id: String,
    },
    /// A user logging in with a password (tickets).
    User {
        /// `USER@REALM`.
        userid: String,
    },
}

impl Identity {
    /// The identity of a connection configuration.
    pub fn of(config: &PveConfig) -> Self {
        match &config.credentials {
            Credentials::Token(token) => Identity::Token {
                token_id: token.token_id.clone(),
            },
            Credentials::Password { userid, .. } => Identity::User {
                userid: userid.clone(),
            },
        }
    }

    /// The user (the token's owner for a token).
    pub fn userid(&self) -> &str {
        match self {
            Identity::Token { token_id } => token_id.split_once('!').map_or(token_id, |(u, _)| u),
            Identity::User { userid } => userid,
        }
    }

    /// The token's name (after the `!`), for a token.
    pub fn token_name(&self) -> Option<&str> {
        match self {
            Identity::Token { token_id } => token_id.split_once('!').map(|(_, name)| name),
            Identity::User { .. } => None,
        }
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Identity::Token { token_id } => write!(f, "API token {token_id}"),
            Identity::User { userid } => write!(f, "user {userid} (password login)"),
        }
    }
}

/// Whether a token has privilege separation, and how that was found out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Privsep {
    /// `Some(true)`: separated; `Some(false)`: the token holds all of its user's privileges;
    /// `None`: could not be found out.
    pub privsep: Option<bool>,
    /// How it was found out (or why not).
    pub how: String,
}

/// What a check knows about the credentials besides their privileges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    /// Who they are.
    pub identity: Identity,
    /// Whether TLS verification is off (`insecureSkipVerify`).
    pub insecure_skip_verify: bool,
    /// The token's privilege separation, once asked ([`Subject::discover_privsep`]).
    pub privsep: Option<Privsep>,
}

impl Subject {
    /// The subject of a connection configuration (privilege separation not asked yet).
    pub fn of(config: &PveConfig) -> Self {
        Self {
            identity: Identity::of(config),
            insecure_skip_verify: matches!(config.tls, TlsTrust::InsecureSkipVerify),
            privsep: None,
        }
    }

    /// Asks Proxmox whether the token is privilege-separated: first
    /// `GET /access/users/{user}/token/{name}`, then the user's token list in
    /// `GET /access/users/{user}`. PVE lets a token read neither about itself unless it holds
    /// `User.Modify` (or, for the second, `Sys.Audit`) on `/access/groups`, so a least-privilege
    /// token usually gets "unknown" here, with that explanation. Nothing to do for a user.
    pub async fn discover_privsep(&mut self, pve: &PveClient) -> Result<(), PveError> {
        let (Some(name), userid) = (self.identity.token_name(), self.identity.userid()) else {
            return Ok(());
        };
        let found = match pve.user_token(userid, name).await {
            Ok(token) => token.privsep.map(|p| {
                (
                    p,
                    format!("read from GET /access/users/{userid}/token/{name}"),
                )
            }),
            Err(e) if refused(&e) => match pve.user(userid).await {
                Ok(user) => user
                    .tokens
                    .get(name)
                    .and_then(|token| token.privsep)
                    .map(|p| (p, format!("read from GET /access/users/{userid}"))),
                Err(e) if refused(&e) => None,
                Err(e) => return Err(e),
            },
            Err(e) => return Err(e),
        };
        self.privsep = Some(match found {
            Some((privsep, how)) => Privsep {
                privsep: Some(privsep),
                how,
            },
            None => Privsep {
                privsep: None,
                how: format!(
                    "Proxmox lets a token read its own settings only with User.Modify or Sys.Audit on /access/groups, which this one lacks; check on a node with `pveum user token list {userid}`"
                ),
            },
        });
        Ok(())
    }
}

/// A refusal that means "you may not read this" (403, or a missing user/token object).
fn refused(error: &PveError) -> bool {
    matches!(
        error.kind(),
        ErrorKind::PermissionDenied | ErrorKind::NotFound
    )
}

#[cfg(test)]
mod tests {
    use pve_client::api::access::TokenInfo;

    use super::*;

    #[test]
    fn identities_know_their_user_and_token() {
        let token = Identity::Token {
            token_id: "op@pve!ctl".into(),
        };
        assert_eq!(
            (token.userid(), token.token_name()),
            ("op@pve", Some("ctl"))
        );
        assert_eq!(token.to_string(), "API token op@pve!ctl");
        let config = PveConfig::from_yaml_str(
            "proxmox:\n  url: https://pve:8006\n  insecureSkipVerify: true\n  username: root@pam\n  password: pw\n",
        )
        .unwrap_or_else(|e| panic!("config: {e}"));
        let subject = Subject::of(&config);
        assert_eq!(subject.identity.userid(), "root@pam");
        assert!(subject.insecure_skip_verify);
    }

    #[test]
    fn privsep_flags_decode_in_every_spelling() {
        // The token's settings as Proxmox sends them, read through pve-client's lenient booleans.
        for (value, want) in [
            (serde_json::json!(1), Some(true)),
            (serde_json::json!("0"), Some(false)),
            (serde_json::json!(true), Some(true)),
            (serde_json::json!(null), None),
        ] {
            let token: TokenInfo = serde_json::from_value(serde_json::json!({ "privsep": value }))
                .unwrap_or_else(|e| panic!("{value}: {e}"));
            assert_eq!(token.privsep, want, "{value}");
        }
    }
}
