//! `pve-operator privileges`: the `pveum` commands that give the controller exactly the
//! privileges its MachineRequests need, on the Proxmox VE release it will talk to.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;
use pve_client::{PveClient, PveConfig, PveRelease};

use super::manifests::read_manifests;
use crate::privileges::{VmScope, markdown_table, needs_with_images, pveum_plan};

/// Options of `pve-operator privileges`.
#[derive(Debug, Args)]
pub struct PrivilegesArgs {
    /// MachineRequest and ProxmoxImage manifests whose features to cover; all features (with
    /// placeholders for storages and bridges) when none is given.
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
    /// The Proxmox VE release the commands are for: 9 (or 9.0, 9.1, ...) or 8.4 [default: 9,
    /// or what the server of --config says].
    #[arg(
        long = "pve-version",
        value_name = "VERSION",
        conflicts_with = "config"
    )]
    pub pve_version: Option<PveRelease>,
    /// Ask this Proxmox which release it runs (a connection file in the `proxmox:` format, as
    /// for `preflight`; any credentials that can read `GET /version`).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Confine the controller's VMs to this Proxmox pool: VM privileges on `/pool/<pool>`
    /// instead of `/vms`. Every MachineRequest given must then set `spec.pool` to it.
    #[arg(long, value_name = "NAME")]
    pub pool: Option<String>,
}

/// Prints the commands (or the Markdown table).
pub async fn run(args: PrivilegesArgs) -> anyhow::Result<()> {
    let release = release_of(&args).await?;
    print!("{}", output(&args, release)?);
    Ok(())
}

/// The release to print for: `--pve-version`, else the server's (`--config`), else the newest.
async fn release_of(args: &PrivilegesArgs) -> anyhow::Result<PveRelease> {
    if let Some(release) = args.pve_version {
        return Ok(release);
    }
    let Some(path) = &args.config else {
        return Ok(PveRelease::NEWEST_CHECKED);
    };
    let config = PveConfig::load(Some(path))
        .with_context(|| format!("loading the Proxmox connection from {}", path.display()))?;
    let pve = PveClient::new(&config).context("setting up the Proxmox client")?;
    let version = pve
        .version()
        .await
        .with_context(|| format!("asking {} for its version", config.url))?;
    version.pve_release().with_context(|| {
        format!(
            "{} answered version {:?}, release {:?}: not major.minor; give --pve-version instead",
            config.url, version.version, version.release
        )
    })
}

/// What `pve-operator privileges` prints for `release`: the commands (or the Markdown table,
/// which covers every release).
pub fn output(args: &PrivilegesArgs, release: PveRelease) -> anyhow::Result<String> {
    if args.markdown {
        return Ok(markdown_table());
    }
    if !args.user.contains('@') {
        anyhow::bail!(
            "--user must include the realm, e.g. pve-operator@pve (got {:?})",
            args.user
        );
    }
    let manifests = read_manifests(&args.files)?;
    let specs = &manifests.requests;
    let scope = match &args.pool {
        None => VmScope::AllVms,
        Some(pool) => {
            check_pool_name(pool)?;
            if specs
                .iter()
                .any(|s| s.boot.template.as_ref().is_some_and(|t| t.vmid.is_none()))
            {
                anyhow::bail!(
                    "--pool {pool}: a MachineRequest given clones a template named only by name; give boot.template.vmid, so that the template's privileges (VM.Audit, VM.Clone) go on /vms/<vmid> alone (by name they would be needed on /vms, every VM)"
                );
            }
            if let Some(other) = specs.iter().find(|s| s.pool.as_deref() != Some(pool)) {
                anyhow::bail!(
                    "--pool {pool}: a MachineRequest given has spec.pool {}; with --pool every request must set spec.pool: {pool} (its VM would otherwise be created outside the pool, where the token has no privileges)",
                    other.pool.as_deref().unwrap_or("unset")
                );
            }
            VmScope::Pool(pool.clone())
        }
    };
    let needs = needs_with_images(specs, &manifests.images, release, &scope);
    let mut commands = format!("# For Proxmox VE {release}\n");
    commands.push_str(&pveum_plan(&needs, &args.user, &args.token).commands());
    Ok(commands)
}

/// A pool name both a MachineRequest's `spec.pool` (letters, digits, `-`, `_`) and PVE 9's pool
/// creation (a letter first) accept.
fn check_pool_name(pool: &str) -> anyhow::Result<()> {
    let valid = pool.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && pool
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
        && pool.len() <= 64;
    if valid {
        Ok(())
    } else {
        anyhow::bail!(
            "--pool {pool:?} is not a pool name a MachineRequest can use: a letter, then letters, digits, '-' or '_' (at most 64)"
        )
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: PrivilegesArgs,
    }

    fn args(argv: &[&str]) -> PrivilegesArgs {
        let argv = std::iter::once("privileges").chain(argv.iter().copied());
        Cli::try_parse_from(argv)
            .unwrap_or_else(|e| panic!("{e}"))
            .args
    }

    fn commands(argv: &[&str]) -> String {
        let args = args(argv);
        let release = args.pve_version.unwrap_or(PveRelease::NEWEST_CHECKED);
        output(&args, release).unwrap_or_else(|e| panic!("{e:#}"))
    }

    #[test]
    fn each_release_gets_the_privileges_it_has() {
        let nine = commands(&[]);
        assert_eq!(nine, commands(&["--pve-version", "9"]), "9 is the default");
        assert!(nine.starts_with("# For Proxmox VE 9.1\n"), "{nine}");
        assert!(nine.contains("VM.GuestAgent.Audit") && !nine.contains("VM.Monitor"));
        let eight = commands(&["--pve-version", "8.4"]);
        assert!(eight.starts_with("# For Proxmox VE 8.4\n"), "{eight}");
        assert!(eight.contains("VM.Monitor") && !eight.contains("VM.GuestAgent"));
        // Apart from the agent's privilege, the same commands.
        assert_eq!(
            nine.lines()
                .skip(1)
                .map(|l| l.replace("VM.GuestAgent.Audit", "X"))
                .collect::<Vec<_>>(),
            eight
                .lines()
                .skip(1)
                .map(|l| l.replace("VM.Monitor", "X"))
                .collect::<Vec<_>>()
        );
        let error = Cli::try_parse_from(["privileges", "--pve-version", "7.4"])
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            error.contains("unknown Proxmox VE version '7.4': use 9 (or 9.0, 9.1, ...) or 8.4"),
            "{error}"
        );
        assert!(
            Cli::try_parse_from(["privileges", "--pve-version", "9", "--config", "c.yaml"])
                .is_err(),
            "--pve-version and --config exclude each other"
        );
    }

    #[test]
    fn a_pool_moves_every_vm_privilege_to_the_pool_and_requests_must_name_it() {
        let pooled = commands(&["--pool", "k8s"]);
        assert!(
            pooled.contains("\npveum aclmod /pool/k8s -user"),
            "{pooled}"
        );
        assert!(!pooled.contains(" /vms "), "nothing on every VM: {pooled}");
        assert!(
            pooled.contains("# replace the <placeholder>: pveum aclmod /vms/<template vmid>"),
            "VM.Clone on the template only: {pooled}"
        );
        for bad in ["9lives", "a/b", "", "a b", "a.b"] {
            let error = output(&args(&["--pool", bad]), PveRelease::NEWEST_CHECKED)
                .expect_err(bad)
                .to_string();
            assert!(
                error.contains("is not a pool name a MachineRequest can use"),
                "{error}"
            );
        }
        let dir = std::env::temp_dir().join(format!("privileges-pool-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
        let file = dir.join("mr.yaml");
        std::fs::write(
            &file,
            "apiVersion: pve-operator.dev/v1alpha1\nkind: MachineRequest\nmetadata: {name: a}\nspec:\n  memory: {sizeMiB: 512}\n  boot: {network: {}}\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let path = file.to_string_lossy().to_string();
        let error = output(
            &args(&["--pool", "k8s", "-f", &path]),
            PveRelease::NEWEST_CHECKED,
        )
        .expect_err("a request without the pool")
        .to_string();
        assert!(
            error
                .contains("has spec.pool unset; with --pool every request must set spec.pool: k8s"),
            "{error}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
