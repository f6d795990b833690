//! `pve-operator demo`: the whole system on one machine, for trying it out.
//!
//! Today it brings up the local Kubernetes control plane (a real kube-apiserver and etcd) and
//! tells how to use it; the simulator and the controller join it as they land.

use clap::Args;

/// Options of `pve-operator demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {}

/// Starts the local control plane, prints how to reach it, and runs until Ctrl-C.
pub async fn run(_args: DemoArgs) -> anyhow::Result<()> {
    eprintln!("Starting a local Kubernetes control plane (kube-apiserver + etcd)...");
    let env = testenv::TestEnv::start().await?;
    let kubeconfig = env.kubeconfig_path().display();
    println!(
        "\nKubernetes API server ready at {} (started in {:.1}s).\n\n\
         Use it from another shell:\n  export KUBECONFIG={kubeconfig}\n  kubectl get namespaces\n\n\
         Press Ctrl-C to stop; everything started here is stopped and removed.",
        env.server_url(),
        env.startup_time().as_secs_f64()
    );
    tokio::signal::ctrl_c().await?;
    eprintln!("Stopping...");
    drop(env);
    Ok(())
}
