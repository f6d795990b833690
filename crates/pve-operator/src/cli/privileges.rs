//! `pve-operator privileges`: the `pveum` commands that give the controller exactly the
//! privileges its MachineRequests need.

use std::path::PathBuf;

use clap::Args;

use super::manifests::read_machine_requests;
use crate::privileges::{markdown_table, needs_for_specs, pveum_plan};

/// Options of `pve-operator privileges`.
#[derive(Debug, Args)]
pub struct PrivilegesArgs {
    /// MachineRequest manifests whose features to cover; all features (with placeholders for
    /// storages and bridges) when none is given.
    #[arg(short = 'f', long = "filename")]
    pub files: Vec<PathBuf>,
    /// The Proxmox user to create.
    #[arg(long, default_value = "pve-operator@pve")]
    pub user: String,
    /// The API token id to create for that user.
    #[arg(long, default_value = "controller")]
    pub token: String,
    /// Print the privilege table as Markdown (the block in docs/permissions.md) instead.
    #[arg(long)]
    pub markdown: bool,
}

/// Prints the commands (or the Markdown table).
pub fn run(args: PrivilegesArgs) -> anyhow::Result<()> {
    print!("{}", output(&args)?);
    Ok(())
}

/// What `pve-operator privileges` prints: the commands (or the Markdown table).
pub fn output(args: &PrivilegesArgs) -> anyhow::Result<String> {
    if args.markdown {
        return Ok(markdown_table());
    }
    if !args.user.contains('@') {
        anyhow::bail!(
            "--user must include the realm, e.g. pve-operator@pve (got {:?})",
            args.user
        );
    }
    let specs = read_machine_requests(&args.files)?;
    let needs = needs_for_specs(&specs);
    Ok(pveum_plan(&needs, &args.user, &args.token).commands())
}
