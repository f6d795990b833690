//! `pve-sim`: a Proxmox VE API simulator (9.1 or 8.4).

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use pve_sim::{ClusterConfig, SimOptions, SimServer};

#[derive(Parser)]
#[command(
    name = "pve-sim",
    version,
    about = "A Proxmox VE API simulator (9.1 or 8.4)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API.
    Serve {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8006")]
        listen: SocketAddr,
        /// Password of root@pam.
        #[arg(long, env = "PVE_SIM_ROOT_PASSWORD", hide_env_values = true)]
        root_password: String,
        /// Cluster description (YAML); the built-in default otherwise.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Which Proxmox VE to be: 9 (= 9.1) or 8.4. Overrides the YAML's `pve_version`.
        #[arg(long, value_name = "VERSION")]
        pve_version: Option<pve_sim::PveVersion>,
        /// Persist the state to this file and resume from it.
        #[arg(long)]
        state: Option<PathBuf>,
        /// Serve plain HTTP instead of HTTPS.
        #[arg(long)]
        insecure_http: bool,
        /// Log as JSON.
        #[arg(long)]
        log_json: bool,
    },
    /// Print the built-in cluster description as YAML.
    DefaultConfig,
    /// Run a `pveum` command (user, token, role, acl, ...) against a running simulator as root.
    Pveum(pve_sim::pveum::PveumArgs),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Pveum(args) => pve_sim::pveum::run(args).await,
        Command::DefaultConfig => {
            print!("{}", serde_yaml::to_string(&ClusterConfig::default())?);
            Ok(())
        }
        Command::Serve {
            listen,
            root_password,
            config,
            pve_version,
            state,
            insecure_http,
            log_json,
        } => {
            let filter = tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
            if log_json {
                tracing_subscriber::fmt()
                    .with_env_filter(filter)
                    .json()
                    .init();
            } else {
                tracing_subscriber::fmt().with_env_filter(filter).init();
            }
            let config = match config {
                Some(path) => {
                    let text = std::fs::read_to_string(&path)
                        .with_context(|| format!("reading {}", path.display()))?;
                    ClusterConfig::from_yaml(&text)?
                }
                None => ClusterConfig::default(),
            };
            let config = match pve_version {
                Some(pve_version) => {
                    let config = ClusterConfig {
                        pve_version,
                        ..config
                    };
                    config.validate()?;
                    config
                }
                None => config,
            };
            let sim = SimServer::start(SimOptions {
                listen,
                root_password,
                config,
                state_file: state,
                insecure_http,
            })
            .await?;
            println!("pve-sim listening on {}", sim.url());
            println!("fingerprint: {}", sim.fingerprint());
            tokio::signal::ctrl_c()
                .await
                .context("waiting for Ctrl-C")?;
            sim.shutdown().await;
            Ok(())
        }
    }
}
