//! `pve-operator demo`: the whole system on one machine, for trying it out. It starts a real
//! kube-apiserver and etcd (testenv), a Proxmox VE simulator (pve-sim), installs the CRDs, runs
//! the controller, applies the examples of `deploy/examples/`, shows their progress until all are
//! Ready, and keeps everything running until Ctrl-C.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::Args;
use kube::api::{Patch, PatchParams};

use kube::{Api, Client, ResourceExt};
use pve_operator_api::conditions::types;
use pve_operator_api::{HasConditions, MachineRequest, ProxmoxImage};
use pve_sim::{SimOptions, SimServer};

use super::examples::read_examples;
use super::image_server::serve_stand_ins;
use super::run::{InProcessController, RunArgs};

/// Options of `pve-operator demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Directory of MachineRequest manifests to apply.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy/examples"))]
    pub examples: PathBuf,
    /// Exit (stopping everything) once every request is Ready, instead of waiting for Ctrl-C.
    #[arg(long)]
    pub exit_when_ready: bool,
    /// Give up when the requests are not all Ready after this many seconds.
    #[arg(long, default_value_t = 300)]
    pub timeout: u64,
    /// Start no controller: print the kubeconfig and Proxmox config a controller needs, and wait
    /// for one started separately (another build, or the container image) to do the work.
    #[arg(long)]
    pub external_controller: bool,
}

const NAMESPACE: &str = "default";

/// The simulator of the demo: the default cluster, plus the resource mappings the
/// passthrough example names (a PCI `gpu_a4000` and a USB `yubikey` on node `pve`).
pub fn demo_sim_options() -> SimOptions {
    let mut options = SimOptions::new("demo-root-password");
    let mapping = |id: &str, device: &str| pve_sim::MappingConfig {
        id: id.into(),
        description: Some("demo".into()),
        map: vec![format!("node=pve,{device}")],
        mdev: false,
    };
    options.config.mappings.pci = vec![mapping("gpu_a4000", "path=0000:01:00.0,id=10de:24b0")];
    options.config.mappings.usb = vec![mapping("yubikey", "id=1050:0407")];
    // Cloud images are imported from `local`, as on a Proxmox VE 8.2+ whose admin enabled the
    // `import` content type there.
    for storage in &mut options.config.storages {
        if storage.id == "local" && !storage.content.iter().any(|c| c == "import") {
            storage.content.push("import".into());
        }
    }
    options
}

/// Runs the demo.
pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    let examples = read_examples(&args.examples)?;
    let manifests = examples.requests;
    let mut images = examples.images;

    eprintln!("[1/5] starting a local Kubernetes control plane (kube-apiserver + etcd)...");
    let env = testenv::TestEnv::start().await?;
    let kube = env.client()?;

    eprintln!("[2/5] starting the Proxmox VE simulator...");
    let sim = SimServer::start(demo_sim_options()).await?;
    let config_path = env.dir().join("proxmox.yaml");
    std::fs::write(
        &config_path,
        format!(
            "proxmox:\n  url: \"{}\"\n  fingerprint: \"{}\"\n  username: root\n  realm: pam\n  password: \"{}\"\n",
            sim.url(),
            sim.fingerprint(),
            sim.root_password()
        ),
    )?;

    eprintln!("[3/5] installing the CRDs...");
    install_crds(&kube).await?;

    let controller = if args.external_controller {
        eprintln!(
            "[4/5] --external-controller: start the controller yourself, e.g.\n      \
             pve-operator run --kubeconfig {} --config {}",
            env.kubeconfig_path().display(),
            config_path.display()
        );
        None
    } else {
        eprintln!("[4/5] starting the controller...");
        let run_args = RunArgs {
            config: Some(config_path.clone()),
            inventory_interval: 2,
            task_poll_interval: 200,
            shutdown_grace: 5,
            ..RunArgs::default()
        };
        Some(InProcessController::start(run_args, kube.clone()))
    };

    eprintln!(
        "[5/5] applying {} example MachineRequest(s) and {} ProxmoxImage(s) from {}...",
        manifests.len(),
        images.len(),
        args.examples.display()
    );
    // The simulated Proxmox is offline: each image's file comes from a server of the demo's own.
    let (_image_server, original_urls) = serve_stand_ins(&mut images).await?;
    let image_api: Api<ProxmoxImage> = Api::namespaced(kube.clone(), NAMESPACE);
    for (image, original) in images.iter().zip(&original_urls) {
        eprintln!(
            "      ProxmoxImage {}: a stand-in for {original} is served on {} (with its own checksum)",
            image.name_any(),
            image.spec.url
        );
        image_api
            .patch(
                &image.name_any(),
                &PatchParams::apply("pve-operator-demo").force(),
                &Patch::Apply(image),
            )
            .await
            .with_context(|| format!("applying ProxmoxImage {}", image.name_any()))?;
    }
    let requests: Api<MachineRequest> = Api::namespaced(kube.clone(), NAMESPACE);
    for request in &manifests {
        requests
            .patch(
                &request.name_any(),
                &PatchParams::apply("pve-operator-demo").force(),
                &Patch::Apply(request),
            )
            .await
            .with_context(|| format!("applying MachineRequest {}", request.name_any()))?;
    }

    let ready = show_progress(
        &requests,
        manifests.len(),
        Duration::from_secs(args.timeout),
    )
    .await;
    let kubeconfig = env.kubeconfig_path().display().to_string();
    match &ready {
        Ok(()) => println!("\nAll {} MachineRequests are Ready.", manifests.len()),
        Err(error) => println!("\n{error}"),
    }
    println!(
        "\nKubernetes: {}\nProxmox (simulated): {} (connection settings and credentials in {})\n\n\
         Use it from another shell:\n  export KUBECONFIG={kubeconfig}\n  kubectl get machinerequests\n  \
         kubectl describe mr cloud-init-vm\n  kubectl delete mr small-iso-vm\n",
        env.server_url(),
        sim.url(),
        config_path.display()
    );
    if !args.exit_when_ready {
        println!("Press Ctrl-C to stop; everything started here is stopped and removed.");
        tokio::signal::ctrl_c().await?;
    }
    eprintln!("Stopping...");
    if let Some(controller) = controller {
        controller.stop().await?;
    }
    sim.shutdown().await;
    drop(env);
    ready
}

/// Applies the CRDs (server-side) and waits until each is Established.
pub async fn install_crds(kube: &Client) -> anyhow::Result<()> {
    testenv::apply_crds(kube, &pve_operator_api::crds(), "pve-operator-demo").await?;
    Ok(())
}

/// Prints a table of the requests whenever it changes, until all are Ready or time runs out.
async fn show_progress(
    requests: &Api<MachineRequest>,
    expected: usize,
    timeout: Duration,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let tty = std::io::stdout().is_terminal();
    let mut last = String::new();
    let mut drawn_lines = 0;
    loop {
        let list = requests.list(&Default::default()).await?;
        let mut rows = BTreeMap::new();
        let mut ready = 0;
        for request in &list.items {
            let status = request.status.clone().unwrap_or_default();
            let condition = status.condition(types::READY);
            if status.is_ready() {
                ready += 1;
            }
            rows.insert(
                request.name_any(),
                format!(
                    "{:<15} {:<13} {:<6} {:<6} {:<6} {}",
                    request.name_any(),
                    status
                        .phase
                        .map(|p| format!("{p:?}"))
                        .unwrap_or_else(|| "-".into()),
                    status.node.clone().unwrap_or_else(|| "-".into()),
                    status
                        .vmid
                        .map(|v| v.to_string())
                        .unwrap_or_else(|| "-".into()),
                    condition.map(|c| c.status.as_str()).unwrap_or("-"),
                    condition
                        .map(|c| c.message.chars().take(60).collect::<String>())
                        .unwrap_or_default(),
                ),
            );
        }
        let table = format!(
            "{:<15} {:<13} {:<6} {:<6} {:<6} {}\n{}\n",
            "NAME",
            "PHASE",
            "NODE",
            "VMID",
            "READY",
            "MESSAGE",
            rows.into_values().collect::<Vec<_>>().join("\n")
        );
        if table != last {
            if tty && drawn_lines > 0 {
                print!("\x1b[{drawn_lines}A\x1b[J");
            } else if !tty {
                println!("--- after {:.1}s", started.elapsed().as_secs_f64());
            }
            print!("{table}");
            drawn_lines = table.lines().count();
            last = table;
        }
        if ready == expected {
            return Ok(());
        }
        if started.elapsed() > timeout {
            bail!(
                "{ready} of {expected} MachineRequests Ready after {}s; see `kubectl describe mr`",
                timeout.as_secs()
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
