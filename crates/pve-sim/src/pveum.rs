//! `pve-sim pveum ...`: the `pveum` commands of the Proxmox documentation, run against a running
//! simulator through its HTTP API as `root@pam`, so that the setup steps of a Proxmox guide run
//! verbatim with `pve-sim` in front:
//!
//! ```text
//! export PVE_SIM_ROOT_PASSWORD=secret            # and PVE_SIM_URL if not https://127.0.0.1:8006
//! pve-sim pveum role add Provisioner -privs "VM.Allocate,VM.Audit"
//! pve-sim pveum user add omni@pve
//! pve-sim pveum aclmod / -user omni@pve -role Provisioner
//! pve-sim pveum user token add omni@pve omni-provider --privsep 0
//! ```
//!
//! Options are written `--name value` or `-name value`; like PVE's `Getopt::Long`, a unique prefix
//! of a parameter name is enough (`-user` for `--users`, `-role` for `--roles`).

use std::collections::BTreeMap;
use std::io::BufRead;

use anyhow::{Context, anyhow, bail};
use serde_json::{Map, Value};

/// Arguments of `pve-sim pveum`.
#[derive(clap::Args)]
pub struct PveumArgs {
    /// Base URL of the running simulator.
    #[arg(long, env = "PVE_SIM_URL", default_value = "https://127.0.0.1:8006")]
    url: String,
    /// Password of root@pam on the simulator.
    #[arg(long, env = "PVE_SIM_ROOT_PASSWORD", hide_env_values = true)]
    root_password: String,
    /// Output format: `text` (tables, as pveum), `json` or `json-pretty`.
    #[arg(long, default_value = "text")]
    output_format: String,
    /// The pveum command line, e.g. `user token add omni@pve provider --privsep 0`.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
    command: Vec<String>,
}

impl std::fmt::Debug for PveumArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PveumArgs")
            .field("url", &self.url)
            .field("root_password", &"***")
            .field("output_format", &self.output_format)
            .field("command", &self.command)
            .finish()
    }
}

impl PveumArgs {
    /// Arguments for running `command` (pveum's words and options) against the simulator at
    /// `url` with root@pam's `root_password`, printing text tables.
    pub fn new(url: &str, root_password: &str, command: &[&str]) -> Self {
        Self {
            url: url.to_string(),
            root_password: root_password.to_string(),
            output_format: "text".to_string(),
            command: command.iter().map(|s| s.to_string()).collect(),
        }
    }
}

/// One pveum command: its words, the API method and path, and its positional parameters.
struct CommandSpec {
    /// The words that name it (one of several spellings).
    words: &'static [&'static [&'static str]],
    /// HTTP method.
    method: &'static str,
    /// API path template below `/api2/json`.
    path: &'static str,
    /// Names of the positional arguments, in order.
    positional: &'static [&'static str],
    /// Parameters the command sets by itself.
    fixed: &'static [(&'static str, &'static str)],
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
fn find_command(args: &[String]) -> Option<(&'static CommandSpec, &[String])> {
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

/// The parameter names (and whether each is boolean) of an endpoint, from its schema table.
fn known_params(method: &str, path: &str) -> Vec<(&'static str, bool)> {
    crate::access::param_table(method, path)
        .map(|t| {
            t.iter()
                .map(|p| (p.name, p.ty == crate::params::Ty::Boolean))
                .collect()
        })
        .unwrap_or_default()
}

/// Resolves an option name to a parameter name: exact, or a unique prefix (`Getopt::Long`).
fn resolve_option(
    name: &str,
    known: &[(&'static str, bool)],
) -> anyhow::Result<(&'static str, bool)> {
    if let Some(k) = known.iter().find(|(n, _)| *n == name) {
        return Ok(*k);
    }
    let candidates: Vec<&(&str, bool)> =
        known.iter().filter(|(n, _)| n.starts_with(name)).collect();
    match candidates.as_slice() {
        [one] => Ok(**one),
        [] => bail!("Unknown option: {name}"),
        many => bail!(
            "Option {name} is ambiguous ({})",
            many.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
        ),
    }
}

/// A parsed command line: positional and named parameters.
#[derive(Debug, Default, PartialEq, Eq)]
struct Parsed {
    /// Parameter name -> value (path parameters included).
    params: BTreeMap<String, String>,
    /// Options given without a value where one was needed (`--password` alone: prompt).
    prompt: Vec<String>,
}

/// Parses pveum-style arguments against the command's positional names and parameter table.
fn parse_args(spec: &CommandSpec, args: &[String]) -> anyhow::Result<Parsed> {
    let known = known_params(spec.method, spec.path);
    let mut out = Parsed::default();
    let mut positional = spec.positional.iter();
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        let option = arg
            .strip_prefix("--")
            .or_else(|| arg.strip_prefix('-'))
            .filter(|o| !o.is_empty() && !arg.starts_with("-/"));
        if let Some(option) = option {
            let (name, inline) = match option.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (option, None),
            };
            let (param, boolean) = resolve_option(name, &known)?;
            let next = args.get(i + 1);
            let value = if let Some(v) = inline {
                v
            } else if boolean {
                match next.map(String::as_str) {
                    Some(v @ ("0" | "1" | "true" | "false" | "yes" | "no" | "on" | "off")) => {
                        i += 1;
                        match v {
                            "1" | "true" | "yes" | "on" => "1".to_string(),
                            _ => "0".to_string(),
                        }
                    }
                    _ => "1".to_string(),
                }
            } else if let Some(v) =
                next.filter(|n| !(n.starts_with('-') && n.len() > 1 && !n.starts_with("-/")))
            {
                i += 1;
                v.clone()
            } else {
                out.prompt.push(param.to_string());
                i += 1;
                continue;
            };
            out.params.insert(param.to_string(), value);
        } else if let Some(name) = positional.next() {
            out.params.insert((*name).to_string(), arg.clone());
        } else {
            bail!("too many arguments: '{arg}'");
        }
        i += 1;
    }
    for (k, v) in spec.fixed {
        out.params.insert((*k).to_string(), (*v).to_string());
    }
    if let Some(missing) = positional.next()
        && !(spec.path == "/access/permissions" && *missing == "userid")
    {
        bail!("not enough arguments: missing <{missing}>");
    }
    Ok(out)
}

/// Reads a password from standard input (twice when `confirm`), as pveum prompts for it.
fn read_password(confirm: bool) -> anyhow::Result<String> {
    let stdin = std::io::stdin();
    let mut lines = stdin.lock().lines();
    eprint!("Enter new password: ");
    let first = lines
        .next()
        .context("no password on standard input")?
        .context("reading the password")?;
    if confirm {
        eprint!("\nRetype new password: ");
        let second = lines
            .next()
            .context("no password confirmation on standard input")?
            .context("reading the password")?;
        if first != second {
            bail!("Passwords do not match.");
        }
    }
    eprintln!();
    Ok(first)
}

/// A logged-in connection to the simulator.
struct Session {
    /// HTTP client.
    client: reqwest::Client,
    /// `https://host:port/api2/json`.
    api: String,
    /// `PVEAuthCookie=...`.
    cookie: String,
    /// CSRF prevention token.
    csrf: String,
}

/// Whether the URL points at this machine (the simulator's self-signed certificate is then
/// accepted without verification; elsewhere it must be trusted normally).
fn is_loopback(url: &reqwest::Url) -> bool {
    let host = url.host_str().unwrap_or_default();
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

impl Session {
    /// Logs in as root@pam.
    async fn login(base: &str, password: &str) -> anyhow::Result<Self> {
        let base = base.trim_end_matches('/').trim_end_matches("/api2/json");
        let parsed = reqwest::Url::parse(base).with_context(|| format!("invalid URL '{base}'"))?;
        let client = reqwest::Client::builder()
            .danger_accept_invalid_certs(is_loopback(&parsed))
            .build()
            .context("building the HTTP client")?;
        let api = format!("{base}/api2/json");
        let resp = client
            .post(format!("{api}/access/ticket"))
            .form(&[("username", "root@pam"), ("password", password)])
            .send()
            .await
            .with_context(|| format!("connecting to {base}"))?;
        if !resp.status().is_success() {
            bail!("login as root@pam failed: {}", status_line(&resp));
        }
        let body: Value = resp.json().await.context("reading the login answer")?;
        let field = |k: &str| {
            body["data"][k]
                .as_str()
                .map(str::to_string)
                .ok_or_else(|| anyhow!("login answer without {k}"))
        };
        Ok(Self {
            cookie: format!("PVEAuthCookie={}", field("ticket")?),
            csrf: field("CSRFPreventionToken")?,
            client,
            api,
        })
    }

    /// One API call; returns `data` or the error as pveum prints it.
    async fn call(
        &self,
        method: &str,
        path: &str,
        params: &BTreeMap<String, String>,
    ) -> anyhow::Result<Value> {
        let url = format!("{}{path}", self.api);
        let req = match method {
            "GET" => self.client.get(&url).query(params),
            "DELETE" => self.client.delete(&url).query(params),
            "PUT" => self.client.put(&url).form(params),
            _ => self.client.post(&url).form(params),
        };
        let resp = req
            .header("Cookie", &self.cookie)
            .header("CSRFPreventionToken", &self.csrf)
            .send()
            .await
            .with_context(|| format!("{method} {path}"))?;
        let status = resp.status();
        let line = status_line(&resp);
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        if status.is_success() {
            return Ok(body.get("data").cloned().unwrap_or(Value::Null));
        }
        Err(anyhow!(error_text(status.as_u16(), &line, &body)))
    }
}

/// An API error as pveum prints it: the handler's message (with the status for parameter
/// errors), then one `param: message` line per parameter error.
fn error_text(code: u16, status_line: &str, body: &Value) -> String {
    let message = body
        .get("message")
        .and_then(Value::as_str)
        .map(|m| m.trim_end().to_string());
    let mut msg = match message {
        Some(m) if code == 400 => format!("{code} {m}"),
        Some(m) => m,
        None => status_line.to_string(),
    };
    if let Some(errors) = body.get("errors").and_then(Value::as_object) {
        for (k, v) in errors {
            msg.push_str(&format!(
                "\n{k}: {}",
                v.as_str().unwrap_or_default().trim_end()
            ));
        }
    }
    msg
}

/// `STATUS REASON` of a response (the reason phrase carries PVE's message).
fn status_line(resp: &reqwest::Response) -> String {
    let status = resp.status();
    format!(
        "{} {}",
        status.as_u16(),
        status.canonical_reason().unwrap_or("")
    )
}

/// Substitutes path parameters and removes them from the parameter list.
fn fill_path(template: &str, params: &mut BTreeMap<String, String>) -> String {
    let mut out = String::new();
    for seg in template.split('/').filter(|s| !s.is_empty()) {
        out.push('/');
        match seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            Some(name) => {
                let value = params.remove(name).unwrap_or_default();
                out.push_str(&utf8_percent_encode(&value));
            }
            None => out.push_str(seg),
        }
    }
    out
}

/// Percent-encodes a path segment (keeps `@`, `!` and the unreserved characters).
fn utf8_percent_encode(s: &str) -> String {
    const SET: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~')
        .remove(b'@')
        .remove(b'!');
    percent_encoding::utf8_percent_encode(s, SET).to_string()
}

/// A cell as pveum's text formatter renders it (objects and arrays as compact JSON).
fn cell(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A box-drawing table like `PVE::CLIFormatter` prints.
pub fn render_table(headers: &[String], rows: &[Vec<String>]) -> String {
    let widths: Vec<usize> = headers
        .iter()
        .enumerate()
        .map(|(i, h)| {
            rows.iter()
                .filter_map(|r| r.get(i))
                .map(|c| c.chars().count())
                .chain(std::iter::once(h.chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let rule = |l: &str, m: &str, r: &str, fill: &str| {
        let parts: Vec<String> = widths.iter().map(|w| fill.repeat(w + 2)).collect();
        format!("{l}{}{r}\n", parts.join(m))
    };
    let line = |cells: &[String]| {
        let parts: Vec<String> = widths
            .iter()
            .enumerate()
            .map(|(i, w)| {
                let c = cells.get(i).map(String::as_str).unwrap_or("");
                format!(" {c}{} ", " ".repeat(w - c.chars().count()))
            })
            .collect();
        format!("│{}│\n", parts.join("│"))
    };
    let mut out = rule("┌", "┬", "┐", "─");
    out.push_str(&line(headers));
    out.push_str(&rule("╞", "╪", "╡", "═"));
    for (i, r) in rows.iter().enumerate() {
        if i > 0 {
            out.push_str(&rule("├", "┼", "┤", "─"));
        }
        out.push_str(&line(r));
    }
    out.push_str(&rule("└", "┴", "┘", "─"));
    out
}

/// The key column of list answers, printed first.
const KEY_COLUMNS: &[&str] = &["userid", "tokenid", "groupid", "roleid", "poolid", "path"];

/// Renders an API answer as pveum's `text` output.
pub fn render_text(data: &Value) -> String {
    match data {
        Value::Null => String::new(),
        Value::Object(m) => {
            let rows: Vec<Vec<String>> = m.iter().map(|(k, v)| vec![k.clone(), cell(v)]).collect();
            render_table(&["key".to_string(), "value".to_string()], &rows)
        }
        Value::Array(items) => {
            let mut cols: Vec<String> = Vec::new();
            for item in items.iter().filter_map(Value::as_object) {
                for k in item.keys() {
                    if !cols.contains(k) {
                        cols.push(k.clone());
                    }
                }
            }
            cols.sort_by_key(|c| {
                (
                    KEY_COLUMNS
                        .iter()
                        .position(|k| k == c)
                        .unwrap_or(usize::MAX),
                    c.clone(),
                )
            });
            let empty = Map::new();
            let rows: Vec<Vec<String>> = items
                .iter()
                .map(|item| {
                    let obj = item.as_object().unwrap_or(&empty);
                    cols.iter()
                        .map(|c| obj.get(c).map(cell).unwrap_or_default())
                        .collect()
                })
                .collect();
            render_table(&cols, &rows)
        }
        other => format!("{}\n", cell(other)),
    }
}

/// Removes pveum's global `--output-format FORMAT` from the command line and returns it.
fn take_output_format(command: &mut Vec<String>) -> anyhow::Result<Option<String>> {
    let Some(i) = command.iter().position(|a| {
        a.trim_start_matches('-') == "output-format" || a.starts_with("--output-format=")
    }) else {
        return Ok(None);
    };
    let arg = command.remove(i);
    if let Some((_, v)) = arg.split_once('=') {
        return Ok(Some(v.to_string()));
    }
    if i < command.len() {
        return Ok(Some(command.remove(i)));
    }
    bail!("option --output-format needs a value")
}

/// Runs one pveum command against the simulator and prints its answer.
pub async fn run(mut args: PveumArgs) -> anyhow::Result<()> {
    if let Some(format) = take_output_format(&mut args.command)? {
        args.output_format = format;
    }
    let (spec, rest) = find_command(&args.command).ok_or_else(|| {
        anyhow!(
            "unknown pveum command '{}' (supported: user add|modify|delete|list|permissions, user token add|modify|remove|list, passwd, group add|modify|delete|list, role add|modify|delete|list, acl modify|delete|list, pool add|modify|delete|list, and the aclmod/useradd/... aliases)",
            args.command.join(" ")
        )
    })?;
    let mut parsed = parse_args(spec, rest)?;
    if spec.path == "/access/password" && !parsed.params.contains_key("password") {
        parsed
            .params
            .insert("password".into(), read_password(true)?);
    }
    for name in std::mem::take(&mut parsed.prompt) {
        if name == "password" {
            parsed.params.insert(name, read_password(true)?);
        } else {
            bail!("option --{name} needs a value");
        }
    }
    let session = Session::login(&args.url, &args.root_password).await?;
    let path = fill_path(spec.path, &mut parsed.params);
    let data = session.call(spec.method, &path, &parsed.params).await?;
    match args.output_format.as_str() {
        "json" => println!("{data}"),
        "json-pretty" => println!("{}", serde_json::to_string_pretty(&data)?),
        _ => print!("{}", render_text(&data)),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn documented_aclmod_line_maps_to_put_acl_with_abbreviated_options() {
        let args = strings(&[
            "aclmod",
            "/",
            "-user",
            "omni@pve",
            "-role",
            "Provisioner",
            "-propagate",
            "0",
        ]);
        let Some((spec, rest)) = find_command(&args) else {
            panic!("aclmod not found");
        };
        assert_eq!((spec.method, spec.path), ("PUT", "/access/acl"));
        let parsed = parse_args(spec, rest).unwrap_or_default();
        let want: BTreeMap<String, String> = [
            ("path", "/"),
            ("users", "omni@pve"),
            ("roles", "Provisioner"),
            ("propagate", "0"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(parsed.params, want);
    }

    #[test]
    fn token_add_takes_user_tokenid_and_privsep() {
        let args = strings(&[
            "user",
            "token",
            "add",
            "omni@pve",
            "omni-provider",
            "--privsep",
            "0",
        ]);
        let Some((spec, rest)) = find_command(&args) else {
            panic!("user token add not found");
        };
        let mut parsed = parse_args(spec, rest).unwrap_or_default();
        assert_eq!(parsed.params.get("privsep").map(String::as_str), Some("0"));
        let path = fill_path(spec.path, &mut parsed.params);
        assert_eq!(path, "/access/users/omni@pve/token/omni-provider");
        assert_eq!(parsed.params.len(), 1, "path parameters leave the form");
    }

    #[test]
    fn unknown_or_ambiguous_options_and_missing_arguments_are_refused() {
        let args = strings(&["role", "add", "X", "-bogus", "1"]);
        let Some((spec, rest)) = find_command(&args) else {
            panic!("role add not found");
        };
        assert!(parse_args(spec, rest).is_err());
        let args = strings(&["user", "token", "add", "omni@pve"]);
        let Some((spec, rest)) = find_command(&args) else {
            panic!("user token add not found");
        };
        assert!(parse_args(spec, rest).is_err());
        assert!(find_command(&strings(&["frobnicate"])).is_none());
    }

    #[test]
    fn output_format_may_follow_the_command_and_errors_read_like_pveum() {
        let mut cmd = strings(&["user", "list", "--output-format", "json"]);
        assert_eq!(
            take_output_format(&mut cmd).ok().flatten().as_deref(),
            Some("json")
        );
        assert_eq!(cmd, strings(&["user", "list"]));
        let body = serde_json::json!({
            "data": null,
            "message": "Parameter verification failed.\n",
            "errors": {"roleid": "cannot use role ID starting with the (case-insensitive) 'PVE' namespace"},
        });
        assert_eq!(
            error_text(400, "400 Bad Request", &body),
            "400 Parameter verification failed.\nroleid: cannot use role ID starting with the (case-insensitive) 'PVE' namespace"
        );
        let body = serde_json::json!({"data": null, "message": "create user failed: user 'a@pve' already exists\n"});
        assert_eq!(
            error_text(500, "500 Internal Server Error", &body),
            "create user failed: user 'a@pve' already exists"
        );
    }

    #[test]
    fn debug_output_hides_the_root_password() {
        let args = PveumArgs::new("http://127.0.0.1:1", "hunter2-secret", &["user", "list"]);
        let text = format!("{args:?}");
        assert!(!text.contains("hunter2-secret"), "{text}");
        assert!(text.contains("***"));
    }

    #[tokio::test]
    async fn a_guides_setup_steps_run_against_an_embedded_simulator() {
        let mut opts = crate::SimOptions::new("root-pw-123");
        opts.insecure_http = true;
        let sim = match crate::SimServer::start(opts).await {
            Ok(sim) => sim,
            Err(e) => panic!("simulator did not start: {e}"),
        };
        let url = sim.base_url();
        let steps: &[&[&str]] = &[
            &[
                "role",
                "add",
                "Provisioner",
                "-privs",
                "VM.Allocate,VM.Audit,Datastore.AllocateSpace",
            ],
            &["useradd", "omni@pve", "--comment", "Omni"],
            &["aclmod", "/", "-user", "omni@pve", "-role", "Provisioner"],
            &[
                "user",
                "token",
                "add",
                "omni@pve",
                "omni-provider",
                "--privsep",
                "0",
            ],
            &["pool", "add", "omni"],
        ];
        for step in steps {
            let result = run(PveumArgs::new(&url, "root-pw-123", step)).await;
            assert!(result.is_ok(), "{step:?}: {result:?}");
        }
        let (allowed, token_privsep, pool) = sim.with_state(|s| {
            (
                s.access.check(
                    "omni@pve!omni-provider",
                    "/vms/123",
                    &["VM.Allocate"],
                    false,
                ),
                s.access
                    .token("omni@pve", "omni-provider")
                    .map(|t| t.privsep),
                s.access.pool("omni").is_some(),
            )
        });
        assert!(allowed, "the non-privsep token has the user's rights");
        assert_eq!(token_privsep, Some(false));
        assert!(pool);
        let denied = run(PveumArgs::new(
            &url,
            "root-pw-123",
            &[
                "aclmod",
                "/nowhere",
                "-user",
                "omni@pve",
                "-role",
                "Provisioner",
            ],
        ))
        .await;
        assert!(denied.is_err());
        let bad_login = run(PveumArgs::new(&url, "wrong", &["user", "list"])).await;
        assert!(bad_login.is_err());
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn role_add_on_9_1_refuses_vm_monitor_like_the_api_and_takes_guest_agent_privileges() {
        let mut opts = crate::SimOptions::new("root-pw-123");
        opts.insecure_http = true;
        opts.config.pve_version = crate::PveVersion::Pve9_1;
        let sim = match crate::SimServer::start(opts).await {
            Ok(sim) => sim,
            Err(e) => panic!("simulator did not start: {e}"),
        };
        let url = sim.base_url();
        let refused = run(PveumArgs::new(
            &url,
            "root-pw-123",
            &["role", "add", "Watcher", "-privs", "VM.Audit,VM.Monitor"],
        ))
        .await;
        let text = refused.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(
            text.contains("privs: invalid format - invalid privilege 'VM.Monitor'"),
            "{text}"
        );
        let added = run(PveumArgs::new(
            &url,
            "root-pw-123",
            &["role", "add", "Watcher", "-privs", "VM.GuestAgent.Audit"],
        ))
        .await;
        assert!(added.is_ok(), "{added:?}");
        let privs = sim.with_state(|s| s.access.role("Watcher"));
        assert_eq!(
            privs.map(|p| p.into_iter().collect::<Vec<_>>()),
            Some(vec!["VM.GuestAgent.Audit".to_string()])
        );
        sim.shutdown().await;
    }

    #[test]
    fn token_answer_prints_as_pveums_key_value_table() {
        let data = serde_json::json!({
            "full-tokenid": "root@pam!monitoring",
            "info": {"privsep": 0},
            "value": "abc",
        });
        let text = render_text(&data);
        let expected = "┌──────────────┬─────────────────────┐\n│ key          │ value               │\n╞══════════════╪═════════════════════╡\n│ full-tokenid │ root@pam!monitoring │\n├──────────────┼─────────────────────┤\n│ info         │ {\"privsep\":0}       │\n├──────────────┼─────────────────────┤\n│ value        │ abc                 │\n└──────────────┴─────────────────────┘\n";
        assert_eq!(text, expected, "\n{text}");
    }
}
