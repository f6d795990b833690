//! Command-line interface of the `pve-operator` binary.

pub mod crd;
#[cfg(feature = "demo")]
pub mod demo;
pub mod examples;
pub mod image_server;
pub mod manifests;
pub mod preflight;
pub mod privileges;
pub mod run;

use clap::{Parser, Subcommand};

use crate::logging::LogArgs;

/// Kubernetes controller that turns MachineRequests into Proxmox VE virtual machines.
#[derive(Debug, Parser)]
#[command(name = "pve-operator", version, about)]
pub struct Cli {
    /// Logging options (apply to every command).
    #[command(flatten)]
    pub log: LogArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands of `pve-operator`.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the controller (in-cluster, or with --kubeconfig).
    Run(Box<run::RunCommand>),
    /// Print the CustomResourceDefinitions (MachineRequest, ProxmoxCluster, ProxmoxIdentity) as
    /// YAML.
    Crd(crd::CrdArgs),
    /// Print the `pveum` commands that create a least-privilege role, user, token and ACLs.
    Privileges(privileges::PrivilegesArgs),
    /// Check that the Proxmox credentials hold every privilege the MachineRequests need, and
    /// nothing dangerous (exit 0: all held, 1: something missing, 2: could not check).
    Preflight(preflight::PreflightArgs),
    /// Run everything locally: a real kube-apiserver and etcd on loopback, ready for kubectl.
    #[cfg(feature = "demo")]
    Demo(demo::DemoArgs),
}
