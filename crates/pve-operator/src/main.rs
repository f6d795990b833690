//! The `pve-operator` binary: the controller and its companion commands.

use clap::Parser;

use pve_operator::cli::{Cli, Command};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    pve_operator::logging::init(&cli.log)?;
    match cli.command {
        Command::Run(args) => pve_operator::cli::run::run(*args).await,
        Command::Crd(args) => pve_operator::cli::crd::run(args),
        Command::Privileges(args) => pve_operator::cli::privileges::run(args).await,
        Command::Preflight(args) => {
            std::process::exit(pve_operator::cli::preflight::run(args).await)
        }
        #[cfg(feature = "demo")]
        Command::Demo(args) => pve_operator::cli::demo::run(args).await,
    }
}
