//! A real Ansible playbook (`ansible.yml` beside this file) with
//! `community.general.proxmox_kvm` from the project's Python environment (`$PVE_OPERATOR_PYENV`,
//! built by `hack/pyenv.sh`), creating and starting the benchmark's VMs with `--forks 10`
//! over an inventory of one local host per VM, the way the e2e test `third_party.rs` drives it.
//!
//! The clock runs from `ansible-playbook`'s start to its exit: Ansible's own start-up and
//! per-task module runs are part of what a user waits for. Ansible's linear strategy runs the
//! create on every host (10 at a time) before any start. proxmox_kvm logs in on each module run,
//! looks the VM up in `/cluster/resources`, polls its task every second and sleeps one more
//! second after the task ends (`wait_for_task`).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context as _, bail};

use super::super::{Measured, Options, PASSWORD};

/// Ansible's forks.
const FORKS: usize = 10;
/// The first VMID the inventory hands out (pve-sim's and Proxmox's first free id).
const FIRST_VMID: usize = 100;

/// Provisions `machines` VMs with Ansible on a fresh simulator; `None` (with a line on stderr)
/// when the Python environment or Ansible is missing.
pub async fn run(options: &Options, machines: usize) -> anyhow::Result<Option<Measured>> {
    let Some(venv) = python_env() else {
        return Ok(None);
    };
    eprintln!("[ansible] starting the simulator...");
    let (sim, _pve) = super::fresh_sim(options).await?;
    let port = sim
        .base_url
        .rsplit(':')
        .next()
        .context("the simulator's port")?
        .to_owned();
    let dir = tempfile::tempdir()?;
    let playbook = dir.path().join("playbook.yml");
    std::fs::write(&playbook, include_str!("ansible.yml"))?;
    let inventory = dir.path().join("inventory.ini");
    std::fs::write(&inventory, inventory_ini(options, machines, &venv))?;
    let home = dir.path().join("home");
    std::fs::create_dir(&home)?;

    eprintln!(
        "[ansible] provisioning {machines} machines with ansible-playbook --forks {FORKS}..."
    );
    let started = Instant::now();
    let output = tokio::process::Command::new(venv.join("bin/ansible-playbook"))
        .arg("-i")
        .arg(&inventory)
        .arg("--forks")
        .arg(FORKS.to_string())
        .arg(&playbook)
        .env("PVE_HOST", "127.0.0.1")
        .env("PVE_PORT", &port)
        .env("PVE_PASSWORD", PASSWORD)
        // A private Ansible home: no user config, no collections but the pinned ones.
        .env("ANSIBLE_HOME", &home)
        .env("ANSIBLE_LOCAL_TEMP", &home)
        .env("ANSIBLE_NOCOLOR", "1")
        .env(
            "PATH",
            format!("{}:/usr/bin:/bin", venv.join("bin").display()),
        )
        .kill_on_drop(true)
        .output()
        .await
        .context("running ansible-playbook")?;
    let to_all_ready = started.elapsed();
    if !output.status.success() {
        let text = String::from_utf8_lossy(&output.stdout);
        let tail: Vec<&str> = text.lines().rev().take(40).collect();
        bail!(
            "ansible-playbook failed ({}); the end of its output:\n{}\n{}",
            output.status,
            tail.into_iter().rev().collect::<Vec<_>>().join("\n"),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    eprintln!(
        "[ansible] all running in {:.1} s",
        to_all_ready.as_secs_f64()
    );
    super::measured(&sim, to_all_ready).await.map(Some)
}

/// `$PVE_OPERATOR_PYENV` when it holds `ansible-playbook`.
fn python_env() -> Option<PathBuf> {
    let Some(venv) = std::env::var_os("PVE_OPERATOR_PYENV").map(PathBuf::from) else {
        eprintln!(
            "[ansible] skipped: PVE_OPERATOR_PYENV is not set (hack/pyenv.sh prints the directory to set it to)"
        );
        return None;
    };
    if !venv.join("bin/ansible-playbook").is_file() {
        eprintln!(
            "[ansible] skipped: {} has no bin/ansible-playbook (rebuild it with hack/pyenv.sh)",
            venv.display()
        );
        return None;
    }
    Some(venv)
}

/// One local host per machine, each with its VMID and node (round robin, as the other sides).
fn inventory_ini(options: &Options, machines: usize, venv: &Path) -> String {
    let mut ini = String::from("[machines]\n");
    for index in 0..machines {
        let _ = writeln!(
            ini,
            "bench-{index:05} vmid={} pve_node={}",
            FIRST_VMID + index,
            super::node_of(options, index)
        );
    }
    let _ = write!(
        ini,
        "\n[machines:vars]\nansible_connection=local\nansible_python_interpreter={}\n",
        venv.join("bin/python").display()
    );
    ini
}
