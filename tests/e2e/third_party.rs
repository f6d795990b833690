//! Real third-party Proxmox clients (proxmoxer, Ansible's proxmox_kvm), installed from PyPI by
//! `hack/pyenv.sh`, drive pve-sim with no special-casing: the simulator must be faithful enough
//! that they cannot tell it from Proxmox VE 8.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use pve_sim::{PveVersion, SimOptions, SimServer};

use crate::support::within;

/// The virtualenv with the clients (built once and cached by the project's script).
pub(crate) fn python_env() -> PathBuf {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../hack/pyenv.sh");
    let output = std::process::Command::new("bash")
        .arg(&script)
        .stderr(Stdio::inherit())
        .output()
        .expect("hack/pyenv.sh runs");
    assert!(
        output.status.success(),
        "hack/pyenv.sh failed; its message is above"
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    PathBuf::from(stdout.lines().last().unwrap_or_default().trim())
}

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("thirdparty")
        .join(name)
}

/// Runs `program args` against a fresh simulator of `version` and returns its combined output,
/// failing the test with that output when the program fails. The program finds the release it
/// should see in `PVE_EXPECTED_RELEASE`.
async fn run_against_sim(
    version: PveVersion,
    program: PathBuf,
    args: &[PathBuf],
    extra_env: &[(&str, &str)],
) -> String {
    let password = "third-party-test-password";
    let mut options = SimOptions::new(password);
    options.config.pve_version = version;
    let sim = SimServer::start(options).await.expect("simulator starts");
    let port = sim.addr().port().to_string();
    let mut command = tokio::process::Command::new(&program);
    command
        .args(args)
        .env("PVE_HOST", "127.0.0.1")
        .env("PVE_PORT", &port)
        .env("PVE_PASSWORD", password)
        .env("PVE_EXPECTED_RELEASE", version.release())
        .kill_on_drop(true);
    for (key, value) in extra_env {
        command.env(key, value);
    }
    let output = within("the third-party client to finish", command.output())
        .await
        .expect("client starts");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "{} failed against pve-sim:\n{text}",
        program.display()
    );
    sim.shutdown().await;
    text
}

#[tokio::test]
async fn proxmoxer_on_pve9_logs_in_creates_starts_stops_deletes_and_sees_a_permission_error() {
    proxmoxer_flow(PveVersion::Pve9_1).await;
}

#[tokio::test]
async fn proxmoxer_on_pve8_4_logs_in_creates_starts_stops_deletes_and_sees_a_permission_error() {
    proxmoxer_flow(PveVersion::Pve8_4).await;
}

async fn proxmoxer_flow(version: PveVersion) {
    let venv = python_env();
    let output = run_against_sim(
        version,
        venv.join("bin/python"),
        &[script("proxmoxer_flow.py")],
        &[],
    )
    .await;
    assert!(output.contains("checks passed"), "{output}");
}

#[tokio::test]
async fn ansible_proxmox_kvm_on_pve9_creates_starts_stops_and_removes_a_vm() {
    ansible_flow(PveVersion::Pve9_1).await;
}

#[tokio::test]
async fn ansible_proxmox_kvm_on_pve8_4_creates_starts_stops_and_removes_a_vm() {
    ansible_flow(PveVersion::Pve8_4).await;
}

async fn ansible_flow(version: PveVersion) {
    let venv = python_env();
    let home = tempfile::tempdir().expect("temp dir");
    let home = home.path().display().to_string();
    let output = run_against_sim(
        version,
        venv.join("bin/ansible-playbook"),
        &[script("proxmox_kvm.yml")],
        &[
            // A private Ansible home: no user config, no collections but the pinned ones.
            ("ANSIBLE_HOME", &home),
            ("ANSIBLE_LOCAL_TEMP", &home),
            ("ANSIBLE_NOCOLOR", "1"),
            (
                "ANSIBLE_PYTHON_INTERPRETER",
                &venv.join("bin/python").display().to_string(),
            ),
            (
                "PATH",
                &format!("{}:/usr/bin:/bin", venv.join("bin").display()),
            ),
        ],
    )
    .await;
    assert!(output.contains("failed=0"), "{output}");
    assert!(
        output.contains("changed=4"),
        "create, start, stop and remove each changed something:\n{output}"
    );
}
