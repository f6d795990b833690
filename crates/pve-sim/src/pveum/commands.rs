//! The pveum commands the simulator knows (those Proxmox guides use): the words that name each,
//! its API method and path, and its positional arguments.

/// One pveum command: its words, the API method and path, and its positional parameters.
pub(super) struct CommandSpec {
    /// The words that name it (one of several spellings).
    pub(super) words: &'static [&'static [&'static str]],
    /// HTTP method.
    pub(super) method: &'static str,
    /// API path template below `/api2/json`.
    pub(super) path: &'static str,
    /// Names of the positional arguments, in order.
    pub(super) positional: &'static [&'static str],
    /// Parameters the command sets by itself.
    pub(super) fixed: &'static [(&'static str, &'static str)],
}

/// The supported commands (`pveum help` lists more; these are the ones guides use).
const COMMANDS: &[CommandSpec] = &[
    CommandSpec {
        words: &[&["user", "add"], &["useradd"]],
        method: "POST",
        path: "/access/users",
        positional: &["userid"],
        fixed: &[],
    },
    CommandSpec {
        words: &[&["user", "modify"], &["usermod"]],
        method: "PUT",
        path: "/access/users/{userid}",
        positional: &["userid"],
        fixed: &[],
    },
    CommandSpec {
        words: &[&["user", "delete"], &["userdel"]],
        method: "DELETE",
        path: "/access/users/{userid}",
        positional: &["userid"],
        fixed: &[],
    },
    CommandSpec {
        words: &[&["user", "list"]],
        method: "GET",
        path: "/access/users",
        positional: &[],
        fixed: &[],
    },
    CommandSpec {
        words: &[&["user", "permissions"]],
        method: "GET",
        path: "/access/permissions",
        positional: &["userid"],
        fixed: &[],
    },
    CommandSpec {
        words: &[&["user", "token", "add"]],
        method: "POST",
        path: "/access/users/{userid}/token/{tokenid}",
        positional: &["userid", "tokenid"],
        fixed: &[],
    },
    CommandSpec {
        words: &[&["user", "token", "modify"]],
        method: "PUT",
        path: "/access/users/{userid}/token/{tokenid}",
        positional: &["userid", "tokenid"],
        fixed: &[],
    },
    CommandSpec {
        words: &[&["user", "token", "remove"], &["user", "token", "delete"]],
        method: "DELETE",
        path: "/access/users/{userid}/token/{tokenid}",
        positional: &["userid", "tokenid"],
        fixed: &[],
    },
    CommandSpec {
        words: &[&["user", "token", "list"]],
        method: "GET",
        path: "/access/users/{userid}/token",
        positional: &["userid"],
        fixed: &[],
    },
    CommandSpec {
        words: &[&["passwd"]],
        method: "PUT",
        path: "/access/password",
        positional: &["userid"],
        fixed: &[],
    },
    CommandSpec {
        words: &[&["group", "add"], &["groupadd"]],
        method: "POST",
        path: "/access/groups",
        positional: &["groupid"],
        fixed: &[],
    },
    CommandSpec {
        words: &[&["group", "modify"], &["groupmod"]],
        method: "PUT",
        path: "/access/groups/{groupid}",
        positional: &["groupid"],
        fixed: &[],
    },
    CommandSpec {
        words: &[&["group", "delete"], &["groupdel"]],
        method: "DELETE",
        path: "/access/groups/{groupid}",
        positional: &["groupid"],
        fixed: &[],
    },
    CommandSpec {
        words: &[&["group", "list"]],
        method: "GET",
        path: "/access/groups",
        positional: &[],
        fixed: &[],
    },
    CommandSpec {
        words: &[&["role", "add"], &["roleadd"]],
        method: "POST",
        path: "/access/roles",
        positional: &["roleid"],
        fixed: &[],
    },
    CommandSpec {
        words: &[&["role", "modify"], &["rolemod"]],
        method: "PUT",
        path: "/access/roles/{roleid}",
        positional: &["roleid"],
        fixed: &[],
    },
    CommandSpec {
        words: &[&["role", "delete"], &["roledel"]],
        method: "DELETE",
        path: "/access/roles/{roleid}",
        positional: &["roleid"],
        fixed: &[],
    },
    CommandSpec {
        words: &[&["role", "list"]],
        method: "GET",
        path: "/access/roles",
        positional: &[],
        fixed: &[],
    },
    CommandSpec {
        words: &[&["acl", "modify"], &["aclmod"]],
        method: "PUT",
        path: "/access/acl",
        positional: &["path"],
        fixed: &[],
    },
    CommandSpec {
        words: &[&["acl", "delete"], &["acldel"]],
        method: "PUT",
        path: "/access/acl",
        positional: &["path"],
        fixed: &[("delete", "1")],
    },
    CommandSpec {
        words: &[&["pool", "add"]],
        method: "POST",
        path: "/pools",
        positional: &["poolid"],
        fixed: &[],
    },
    CommandSpec {
        words: &[&["pool", "modify"]],
        method: "PUT",
        path: "/pools",
        positional: &["poolid"],
        fixed: &[],
    },
    CommandSpec {
        words: &[&["pool", "delete"]],
        method: "DELETE",
        path: "/pools",
        positional: &["poolid"],
        fixed: &[],
    },
    CommandSpec {
        words: &[&["pool", "list"]],
        method: "GET",
        path: "/pools",
        positional: &[],
        fixed: &[],
    },
    CommandSpec {
        words: &[&["acl", "list"]],
        method: "GET",
        path: "/access/acl",
        positional: &[],
        fixed: &[],
    },
];

/// Finds the command the leading words name; returns it and the remaining arguments.
pub(super) fn find_command(args: &[String]) -> Option<(&'static CommandSpec, &[String])> {
    let mut best: Option<(&'static CommandSpec, usize)> = None;
    for spec in COMMANDS {
        for words in spec.words {
            let matches = words.len() <= args.len() && words.iter().zip(args).all(|(w, a)| w == a);
            if matches && best.is_none_or(|(_, n)| words.len() > n) {
                best = Some((spec, words.len()));
            }
        }
    }
    best.map(|(spec, n)| (spec, &args[n..]))
}
