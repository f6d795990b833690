//! Name rules of PVE 8 (`PVE::Auth::Plugin::verify_username`, `AccessControl.pm` `split_tokenid`,
//! `verify_groupname`, `verify_rolename`, `verify_poolname`, `normalize_path`).

/// Whether `s` matches the realm regex `[A-Za-z][A-Za-z\d\.\-_]+` (also the token-name regex).
pub fn is_realm_like(s: &str) -> bool {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() => {}
        _ => return false,
    }
    let rest = chars.as_str();
    !rest.is_empty()
        && rest
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
}

/// Splits a user id `name@realm` as `verify_username` does (user part `[^\s:/]+`, length 3..=64).
pub fn split_userid(userid: &str) -> Option<(&str, &str)> {
    if userid.len() < 3 || userid.len() > 64 {
        return None;
    }
    let at = userid.rfind('@')?;
    let (name, realm) = (&userid[..at], &userid[at + 1..]);
    let name_ok = !name.is_empty()
        && name
            .chars()
            .all(|c| !c.is_whitespace() && c != ':' && c != '/');
    (name_ok && is_realm_like(realm)).then_some((name, realm))
}

/// Whether `userid` is a valid `name@realm` user id.
pub fn is_valid_userid(userid: &str) -> bool {
    split_userid(userid).is_some()
}

/// Splits a full token id `user@realm!name` into the user id and the token name.
pub fn split_tokenid(tokenid: &str) -> Option<(&str, &str)> {
    let bang = tokenid.rfind('!')?;
    let (user, name) = (&tokenid[..bang], &tokenid[bang + 1..]);
    (is_valid_userid(user) && is_realm_like(name)).then_some((user, name))
}

/// Whether `s` matches `[A-Za-z0-9\.\-_]+` (group and role names, pool name components).
fn is_simple_id(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
}

/// Whether `name` is a valid group name (`pve-groupid`).
pub fn is_valid_groupname(name: &str) -> bool {
    is_simple_id(name)
}

/// Whether `name` is a valid role name (`pve-roleid`).
pub fn is_valid_rolename(name: &str) -> bool {
    is_simple_id(name)
}

/// Whether `name` is a valid pool name (`pve-poolid`: up to three `/`-separated levels).
pub fn is_valid_poolname(name: &str) -> bool {
    let parts: Vec<&str> = name.split('/').collect();
    parts.len() <= 3 && parts.iter().all(|p| is_simple_id(p))
}

/// Whether `id` is a valid storage id as the pool parser accepts it (`[a-z][a-z0-9\-_.]*[a-z0-9]`, any case).
pub fn is_valid_storeid(id: &str) -> bool {
    let bytes = id.as_bytes();
    if bytes.len() < 2 {
        return false;
    }
    let first_ok = bytes[0].is_ascii_alphabetic();
    let last_ok = bytes[bytes.len() - 1].is_ascii_alphanumeric();
    let mid_ok = bytes[1..bytes.len() - 1]
        .iter()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    first_ok && last_ok && mid_ok
}

/// `normalize_path`: collapses repeated `/`, strips a trailing `/`, adds a leading `/`; `None` for
/// an empty path or one with characters outside `[[:alnum:]._/-]`.
pub fn normalize_path(path: &str) -> Option<String> {
    if path.is_empty() || path == "0" {
        return None;
    }
    let mut out = String::with_capacity(path.len() + 1);
    for c in path.chars() {
        if c == '/' && out.ends_with('/') {
            continue;
        }
        out.push(c);
    }
    if out.ends_with('/') {
        out.pop();
    }
    if out.is_empty() {
        out.push('/');
    }
    if !out.starts_with('/') {
        out.insert(0, '/');
    }
    out.chars()
        .all(|c| c.is_alphanumeric() || matches!(c, '.' | '-' | '_' | '/'))
        .then_some(out)
}

/// `check_path`: whether `path` (normalized) is one of the ACL paths PVE 8 accepts in the API.
pub fn is_valid_acl_path(path: &str) -> bool {
    let parts: Vec<&str> = path.split('/').skip(1).filter(|s| !s.is_empty()).collect();
    let vmid_ok = |s: &str| {
        let b = s.as_bytes();
        b.len() >= 3 && (b'1'..=b'9').contains(&b[0]) && b.iter().all(u8::is_ascii_digit)
    };
    let id_ok = |s: &str| is_simple_id(s);
    match parts.as_slice() {
        [] => true,
        ["access"] | ["access", "groups"] | ["access", "realm"] => true,
        ["access", "groups", g] => is_valid_groupname(g),
        ["access", "realm", r] => is_realm_like(r),
        ["nodes"] | ["pool"] | ["sdn"] | ["storage"] | ["vms"] | ["mapping"] => true,
        ["nodes", n] => id_ok(n),
        ["pool", rest @ ..] => rest.len() <= 3 && rest.iter().all(|p| id_ok(p)),
        ["sdn", "controllers" | "dns" | "ipams"] => true,
        ["sdn", "controllers" | "dns" | "ipams", id] => id_ok(id),
        ["sdn", "zones"] => true,
        ["sdn", "zones", z] => id_ok(z),
        ["sdn", "zones", z, v] => id_ok(z) && id_ok(v),
        ["sdn", "zones", z, v, tag] => {
            id_ok(z)
                && id_ok(v)
                && tag.parse::<u32>().is_ok_and(|t| (1..=9999).contains(&t))
                && !tag.starts_with('0')
        }
        ["storage", s] => id_ok(s),
        ["vms", id] => vmid_ok(id),
        ["mapping", t] => id_ok(t),
        ["mapping", t, id] => id_ok(t) && id_ok(id),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn userids_need_a_realm_and_no_colon() {
        assert_eq!(split_userid("root@pam"), Some(("root", "pam")));
        assert!(is_valid_userid("a.b-c@pve"));
        assert!(!is_valid_userid("root"));
        assert!(!is_valid_userid("ro:ot@pam"));
        assert!(!is_valid_userid("max@pve!token"));
        assert!(!is_valid_userid("x@p"));
    }

    #[test]
    fn tokenids_split_at_the_last_bang() {
        assert_eq!(split_tokenid("max@pve!token2"), Some(("max@pve", "token2")));
        assert_eq!(split_tokenid("max@pve"), None);
        assert_eq!(split_tokenid("max@pve!1abc"), None);
    }

    #[test]
    fn paths_normalize_like_pve() {
        assert_eq!(normalize_path("/vms/100/").as_deref(), Some("/vms/100"));
        assert_eq!(normalize_path("//vms//100").as_deref(), Some("/vms/100"));
        assert_eq!(normalize_path("vms").as_deref(), Some("/vms"));
        assert_eq!(normalize_path("/").as_deref(), Some("/"));
        assert_eq!(normalize_path(""), None);
        assert_eq!(normalize_path("/vms/1 00"), None);
    }

    #[test]
    fn acl_paths_follow_check_path() {
        for ok in [
            "/",
            "/vms",
            "/vms/100",
            "/storage/local-lvm",
            "/pool/a/b/c",
            "/sdn/zones/localnetwork/vmbr0/10",
            "/access/groups/admins",
            "/mapping/pci/gpu",
        ] {
            assert!(is_valid_acl_path(ok), "{ok}");
        }
        for bad in [
            "/users",
            "/vms/99",
            "/vms/abc",
            "/pool/a/b/c/d",
            "/kvm",
            "/sdn/zones/z/v/0",
        ] {
            assert!(!is_valid_acl_path(bad), "{bad}");
        }
    }
}
