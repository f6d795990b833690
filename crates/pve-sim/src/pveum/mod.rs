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
//!
//! This module holds the arguments and runs a command; the parts live beside it: the supported
//! commands (`commands`), parsing a command's options (`args`), the logged-in connection
//! (`session`) and pveum's text tables (`table`).

use std::io::BufRead;

use anyhow::{Context, anyhow, bail};

mod args;
mod commands;
mod session;
mod table;

pub use table::{render_table, render_text};

use args::parse_args;
use commands::find_command;
use session::{Session, fill_path};

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
mod tests;
