//! Reading and writing the `/etc/pve/user.cfg` format, as `parse_user_config` and
//! `write_user_config` of pve-access-control do. Like PVE, the reader skips invalid entries with a
//! warning instead of failing.

use std::collections::BTreeMap;

use crate::version::PveVersion;

use super::{
    AccessControl, ROOT_USER,
    model::{Token, User},
    names, privileges,
    text::{decode_text, encode_text},
};

/// `PVE::Tools::split_list`: items separated by `,`, `;` or whitespace.
pub fn split_list(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| c == ',' || c == ';' || c.is_whitespace())
        .filter(|s| !s.is_empty())
}

/// Perl's truthiness of a config field (`""` and `"0"` are false).
fn perl_true(field: Option<&str>) -> bool {
    !matches!(field, None | Some("") | Some("0"))
}

/// A non-empty decoded text field.
fn text_field(field: Option<&str>) -> Option<String> {
    field.filter(|s| !s.is_empty()).map(decode_text)
}

/// An `expire` field: empty means 0; anything but digits is invalid.
fn expire_field(field: Option<&str>) -> Option<u64> {
    match field {
        None | Some("") => Some(0),
        Some(s) if s.bytes().all(|b| b.is_ascii_digit()) => s.parse().ok(),
        Some(_) => None,
    }
}

impl AccessControl {
    /// Applies one `user.cfg` line; returns a warning for what PVE would ignore.
    fn parse_line(&mut self, line: &str) -> Result<(), String> {
        // Perl's split(/:/) drops trailing empty fields; every field is trimmed.
        let mut fields: Vec<&str> = line.split(':').map(str::trim).collect();
        while fields.last().is_some_and(|f| f.is_empty()) {
            fields.pop();
        }
        let field = |i: usize| fields.get(i).copied();
        match field(0) {
            Some("user") => self.parse_user(&fields[1..]),
            Some("group") => self.parse_group(field(1).unwrap_or(""), field(2), field(3)),
            Some("role") => self.parse_role(field(1).unwrap_or(""), field(2)),
            Some("acl") => self.parse_acl(field(1), field(2), field(3), field(4)),
            Some("pool") => self.parse_pool(field(1).unwrap_or(""), field(2), field(3), field(4)),
            Some("token") => self.parse_token(field(1).unwrap_or(""), field(2), field(3), field(4)),
            _ => Err(format!("ignore config line: {line}")),
        }
    }

    /// A `user:` line.
    fn parse_user(&mut self, f: &[&str]) -> Result<(), String> {
        let get = |i: usize| f.get(i).copied();
        let userid = get(0).unwrap_or("");
        if !names::is_valid_userid(userid) {
            return Err(format!("ignore user '{userid}' - invalid user name"));
        }
        let Some(expire) = expire_field(get(2)) else {
            return Err(format!(
                "ignore user '{userid}' - (illegal characters in expire '{}')",
                get(2).unwrap_or("")
            ));
        };
        let tokens = self
            .users
            .remove(userid)
            .map(|u| u.tokens)
            .unwrap_or_default();
        self.users.insert(
            userid.to_string(),
            User {
                enable: perl_true(get(1)),
                expire,
                firstname: text_field(get(3)),
                lastname: text_field(get(4)),
                email: get(5).filter(|s| !s.is_empty()).map(str::to_string),
                comment: text_field(get(6)),
                keys: get(7).filter(|s| !s.is_empty()).map(str::to_string),
                tokens,
                password: None,
            },
        );
        Ok(())
    }

    /// A `group:` line.
    fn parse_group(
        &mut self,
        name: &str,
        members: Option<&str>,
        comment: Option<&str>,
    ) -> Result<(), String> {
        if !names::is_valid_groupname(name) {
            return Err(format!(
                "ignore group '{name}' - invalid characters in group name"
            ));
        }
        let mut warnings = Vec::new();
        let group = self.groups.entry(name.to_string()).or_default();
        if let Some(c) = text_field(comment) {
            group.comment = Some(c);
        }
        for user in split_list(members.unwrap_or("")) {
            if !names::is_valid_userid(user) {
                warnings.push(format!("ignore invalid group member '{user}'"));
                continue;
            }
            if !self.users.contains_key(user) {
                warnings.push(format!("ignore invalid group member '{user}'"));
            }
            // PVE records the membership even for users it does not know (yet).
            group.users.insert(user.to_string());
        }
        if warnings.is_empty() {
            Ok(())
        } else {
            Err(warnings.join("; "))
        }
    }

    /// A `role:` line.
    fn parse_role(&mut self, name: &str, privs: Option<&str>) -> Result<(), String> {
        if !names::is_valid_rolename(name) {
            return Err(format!(
                "ignore role '{name}' - invalid characters in role name"
            ));
        }
        if privileges::is_builtin_role(name) {
            return Err(format!("ignore role '{name}' - built-in role"));
        }
        let mut warnings = Vec::new();
        let set = self.roles.entry(name.to_string()).or_default();
        for p in split_list(privs.unwrap_or("")) {
            if privileges::is_valid_privilege(self.version, p) {
                set.insert(p.to_string());
            } else {
                warnings.push(format!("ignore invalid privilege '{p}'"));
            }
        }
        if warnings.is_empty() {
            Ok(())
        } else {
            Err(warnings.join("; "))
        }
    }

    /// An `acl:` line: `acl:PROPAGATE:PATH:MEMBERS:ROLES`.
    fn parse_acl(
        &mut self,
        propagate: Option<&str>,
        path: Option<&str>,
        members: Option<&str>,
        roles: Option<&str>,
    ) -> Result<(), String> {
        let propagate = perl_true(propagate);
        let path_text = path.unwrap_or("");
        let Some(path) = names::normalize_path(path_text) else {
            return Err(format!("ignore invalid path in acl '{path_text}'"));
        };
        let mut warnings = Vec::new();
        for role in split_list(roles.unwrap_or("")) {
            if !names::is_valid_rolename(role) {
                warnings.push(format!("ignore invalid role name '{role}' in acl"));
                continue;
            }
            if self.role_privileges(role).is_none() {
                warnings.push(format!("ignore invalid acl role '{role}'"));
                continue;
            }
            for member in split_list(members.unwrap_or("")) {
                let group = member
                    .strip_prefix('@')
                    .filter(|g| names::is_valid_groupname(g));
                let node = if let Some(group) = group {
                    if !self.groups.contains_key(group) {
                        warnings.push(format!("ignore invalid acl group '{group}'"));
                    }
                    let node = self.acl.entry(path.clone()).or_default();
                    node.groups.entry(group.to_string()).or_default()
                } else if names::is_valid_userid(member) {
                    if !self.users.contains_key(member) {
                        warnings.push(format!("ignore invalid acl member '{member}'"));
                    }
                    let node = self.acl.entry(path.clone()).or_default();
                    node.users.entry(member.to_string()).or_default()
                } else if self.token_exists(member) {
                    let node = self.acl.entry(path.clone()).or_default();
                    node.tokens.entry(member.to_string()).or_default()
                } else {
                    warnings.push(format!("invalid user/group/token '{member}' in acl"));
                    continue;
                };
                node.insert(role.to_string(), propagate);
            }
        }
        if warnings.is_empty() {
            Ok(())
        } else {
            Err(warnings.join("; "))
        }
    }

    /// A `pool:` line: `pool:NAME:COMMENT:VMIDS:STORAGES`.
    fn parse_pool(
        &mut self,
        name: &str,
        comment: Option<&str>,
        vms: Option<&str>,
        storages: Option<&str>,
    ) -> Result<(), String> {
        if !names::is_valid_poolname(name) {
            return Err(format!(
                "ignore pool '{name}' - invalid characters in pool name"
            ));
        }
        let mut warnings = Vec::new();
        let taken: Vec<u32> = self
            .pools
            .values()
            .flat_map(|p| p.vms.iter().copied())
            .collect();
        let pool = self.pools.entry(name.to_string()).or_default();
        if let Some(c) = text_field(comment) {
            pool.comment = Some(c);
        }
        for vmid in split_list(vms.unwrap_or("")) {
            let Some(id) = vmid
                .bytes()
                .all(|b| b.is_ascii_digit())
                .then(|| vmid.parse::<u32>().ok())
                .flatten()
            else {
                warnings.push(format!("ignore invalid vmid '{vmid}' in pool '{name}'"));
                continue;
            };
            if taken.contains(&id) || pool.vms.contains(&id) {
                warnings.push(format!("ignore duplicate vmid '{id}' in pool '{name}'"));
                continue;
            }
            pool.vms.insert(id);
        }
        for store in split_list(storages.unwrap_or("")) {
            if names::is_valid_storeid(store) {
                pool.storage.insert(store.to_string());
            } else {
                warnings.push(format!("ignore invalid storage '{store}' in pool '{name}'"));
            }
        }
        if warnings.is_empty() {
            Ok(())
        } else {
            Err(warnings.join("; "))
        }
    }

    /// A `token:` line: `token:USER@REALM!NAME:EXPIRE:PRIVSEP:COMMENT`. A missing privsep field
    /// reads as 0, as in PVE.
    fn parse_token(
        &mut self,
        tokenid: &str,
        expire: Option<&str>,
        privsep: Option<&str>,
        comment: Option<&str>,
    ) -> Result<(), String> {
        let Some((user, name)) = names::split_tokenid(tokenid) else {
            return Err(format!("ignore invalid tokenid '{tokenid}'"));
        };
        let Some(expire) = expire_field(expire) else {
            return Err(format!(
                "ignore token '{tokenid}' - (illegal characters in expire '{}')",
                expire.unwrap_or("")
            ));
        };
        let Some(u) = self.users.get_mut(user) else {
            return Err(format!("ignore token '{tokenid}' - user does not exist"));
        };
        let token = u.tokens.entry(name.to_string()).or_insert(Token {
            privsep: false,
            expire: 0,
            comment: None,
            secret: None,
        });
        token.privsep = perl_true(privsep);
        token.expire = expire;
        if let Some(c) = text_field(comment) {
            token.comment = Some(c);
        }
        Ok(())
    }

    /// Reads `user.cfg` text as `version` does, on top of an empty configuration (root@pam is
    /// added if missing).
    pub(super) fn parse_user_cfg(text: &str, version: PveVersion) -> Self {
        let mut cfg = Self::empty(version);
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
            if let Err(warning) = cfg.parse_line(line) {
                tracing::warn!(target: "pve_sim::access", "user config - {warning}");
            }
        }
        cfg.users
            .entry(ROOT_USER.to_string())
            .or_insert_with(|| User {
                enable: true,
                ..User::default()
            });
        cfg
    }

    /// Writes the configuration in the `user.cfg` format, in the order and layout PVE writes it.
    pub(super) fn write_user_cfg(&self) -> String {
        let mut out = String::new();
        for (userid, u) in &self.users {
            let enc = |v: &Option<String>| v.as_deref().map(encode_text).unwrap_or_default();
            out.push_str(&format!(
                "user:{userid}:{}:{}:{}:{}:{}:{}:{}:\n",
                u8::from(u.enable),
                u.expire,
                enc(&u.firstname),
                enc(&u.lastname),
                u.email.as_deref().unwrap_or(""),
                enc(&u.comment),
                u.keys.as_deref().unwrap_or(""),
            ));
            for (name, t) in &u.tokens {
                out.push_str(&format!(
                    "token:{userid}!{name}:{}:{}:{}:\n",
                    t.expire,
                    u8::from(t.privsep),
                    enc(&t.comment),
                ));
            }
        }
        out.push('\n');
        for (name, g) in &self.groups {
            let members: Vec<&str> = g.users.iter().map(String::as_str).collect();
            let comment = g.comment.as_deref().map(encode_text).unwrap_or_default();
            out.push_str(&format!("group:{name}:{}:{comment}:\n", members.join(",")));
        }
        out.push('\n');
        for (name, p) in &self.pools {
            let vms: Vec<String> = p.vms.iter().map(u32::to_string).collect();
            let stores: Vec<&str> = p.storage.iter().map(String::as_str).collect();
            let comment = p.comment.as_deref().map(encode_text).unwrap_or_default();
            out.push_str(&format!(
                "pool:{name}:{comment}:{}:{}:\n",
                vms.join(","),
                stores.join(",")
            ));
        }
        out.push('\n');
        for (name, privs) in &self.roles {
            let list: Vec<&str> = privs.iter().map(String::as_str).collect();
            out.push_str(&format!("role:{name}:{}:\n", list.join(",")));
        }
        out.push('\n');
        // ACL tree order: depth first, children sorted by name.
        let mut paths: Vec<(&String, Vec<&str>)> = self
            .acl
            .keys()
            .map(|p| (p, p.split('/').filter(|s| !s.is_empty()).collect()))
            .collect();
        paths.sort_by(|a, b| a.1.cmp(&b.1));
        for (path, _) in paths {
            let Some(node) = self.acl.get(path) else {
                continue;
            };
            // propagate flag -> role list -> members
            let mut lines: [BTreeMap<String, Vec<String>>; 2] = Default::default();
            let mut collect = |members: &BTreeMap<String, BTreeMap<String, bool>>, prefix: &str| {
                for (member, roles) in members {
                    if prefix.is_empty() && member == ROOT_USER {
                        continue; // root@pam is always Administrator; PVE does not save it
                    }
                    for flag in [false, true] {
                        let list: Vec<&str> = roles
                            .iter()
                            .filter(|(_, p)| **p == flag)
                            .map(|(r, _)| r.as_str())
                            .collect();
                        if !list.is_empty() {
                            lines[usize::from(flag)]
                                .entry(list.join(","))
                                .or_default()
                                .push(format!("{prefix}{member}"));
                        }
                    }
                }
            };
            collect(&node.groups, "@");
            collect(&node.users, "");
            collect(&node.tokens, "");
            for (flag, by_roles) in lines.iter_mut().enumerate() {
                for (roles, members) in by_roles.iter_mut() {
                    members.sort();
                    out.push_str(&format!(
                        "acl:{flag}:{path}:{}:{roles}:\n",
                        members.join(",")
                    ));
                }
            }
        }
        out
    }
}
