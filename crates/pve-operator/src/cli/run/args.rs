//! The options of `pve-operator run`: the controller's ([`RunArgs`]) and its operation's
//! ([`OpsArgs`]: metrics, probes, leader election).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;

/// The defaults of the controller's flags, in the flags' units. clap applies and shows them
/// (`--help`), and [`RunArgs::default`] is made of them; each is read from the setting it feeds
/// (the reconcile [`Settings`](crate::reconcile::Settings), the connections'
/// [`Intervals`](crate::proxmox::registry::Intervals), the task deadline), so no default is
/// written twice.
mod defaults {
    use crate::proxmox::registry::Intervals;
    use crate::proxmox::tasks::DEFAULT_TASK_DEADLINE;
    use crate::reconcile::Settings;

    /// `--concurrency`.
    pub fn concurrency() -> u16 {
        Settings::default().concurrency
    }

    /// `--inventory-interval`, in seconds.
    pub fn inventory_interval() -> u64 {
        Intervals::DEFAULT.inventory.as_secs()
    }

    /// `--task-poll-interval`, in milliseconds.
    pub fn task_poll_interval() -> u64 {
        u64::try_from(Intervals::DEFAULT.tasks.as_millis()).unwrap_or(u64::MAX)
    }

    /// `--resync-interval`, in seconds (0: never).
    pub fn resync_interval() -> u64 {
        Settings::default()
            .resync
            .map_or(0, |every| every.as_secs())
    }

    /// `--shutdown-grace`, in seconds.
    pub const SHUTDOWN_GRACE: u64 = 20;

    /// `--max-tasks-per-node`.
    pub fn max_tasks_per_node() -> usize {
        Intervals::DEFAULT.max_tasks_per_node
    }

    /// `--task-deadline`, in seconds.
    pub fn task_deadline() -> u64 {
        DEFAULT_TASK_DEADLINE.as_secs()
    }
}

/// Options of `pve-operator run`.
#[derive(Debug, Args, Clone)]
pub struct RunArgs {
    /// kubeconfig file; in-cluster configuration (or $KUBECONFIG) when omitted.
    #[arg(long, env = "KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// The default Proxmox connection, in the source documents' `proxmox:` format (PVE_*
    /// environment variables override its keys). Requests without spec.clusterRef use it.
    #[arg(long, env = "PVE_OPERATOR_CONFIG")]
    pub config: Option<PathBuf>,
    /// Watch only this namespace (all namespaces when omitted).
    #[arg(long, env = "PVE_OPERATOR_NAMESPACE")]
    pub namespace: Option<String>,
    /// The namespace of the Secrets that ProxmoxIdentities name (the controller's own); by
    /// default $POD_NAMESPACE, else the client's default namespace (in a pod: its own). No
    /// other Secret is ever read.
    #[arg(long, env = "PVE_OPERATOR_IDENTITY_NAMESPACE")]
    pub identity_namespace: Option<String>,
    /// The namespaces whose MachineRequests may use the default connection (--config) without
    /// a clusterRef (repeatable, or comma-separated; "*": every namespace). Default: the watched
    /// namespace (--namespace), else the controller's own namespace.
    #[arg(
        long = "default-allowed-namespaces",
        env = "PVE_OPERATOR_DEFAULT_ALLOWED_NAMESPACES",
        value_delimiter = ','
    )]
    pub default_allowed_namespaces: Vec<String>,
    /// Serve only the ProxmoxIdentities with these labels (`key=value`, repeatable or
    /// comma-separated), e.g. to run one controller per group of identities. Default: every
    /// identity.
    #[arg(long = "identity-selector", value_delimiter = ',')]
    pub identity_selector: Vec<String>,
    /// MachineRequests reconciled at once.
    #[arg(long, default_value_t = defaults::concurrency())]
    pub concurrency: u16,
    /// How often each Proxmox cluster's shared inventory is read, in seconds.
    #[arg(long, default_value_t = defaults::inventory_interval())]
    pub inventory_interval: u64,
    /// How often in-flight Proxmox tasks are polled, in milliseconds.
    #[arg(long, default_value_t = defaults::task_poll_interval())]
    pub task_poll_interval: u64,
    /// Reconcile every request this often even when nothing changed, in seconds (0: never).
    #[arg(long, default_value_t = defaults::resync_interval())]
    pub resync_interval: u64,
    /// Seconds that in-flight reconciles may take to finish after SIGTERM.
    #[arg(long, default_value_t = defaults::SHUTDOWN_GRACE)]
    pub shutdown_grace: u64,
    /// At most this many of the controller's Proxmox tasks (create, clone, start, ...) run at once
    /// on one node. Each node starts at 8 (or this, if lower) and adapts: one more per task that
    /// succeeds, half as many when Proxmox answers with a lock timeout.
    #[arg(long, default_value_t = defaults::max_tasks_per_node())]
    pub max_tasks_per_node: usize,
    /// Seconds a Proxmox task may run before its request reports it as overdue (a TaskOverdue
    /// condition and a Warning Event naming the UPID); the controller keeps waiting for it.
    #[arg(long, default_value_t = defaults::task_deadline())]
    pub task_deadline: u64,
}

impl Default for RunArgs {
    /// What `pve-operator run` without flags and without environment variables has (for the
    /// controller embedded in tests, the demo and benchmarks: set what differs, keep the rest).
    fn default() -> Self {
        Self {
            kubeconfig: None,
            config: None,
            namespace: None,
            identity_namespace: None,
            default_allowed_namespaces: Vec::new(),
            identity_selector: Vec::new(),
            concurrency: defaults::concurrency(),
            inventory_interval: defaults::inventory_interval(),
            task_poll_interval: defaults::task_poll_interval(),
            resync_interval: defaults::resync_interval(),
            shutdown_grace: defaults::SHUTDOWN_GRACE,
            max_tasks_per_node: defaults::max_tasks_per_node(),
            task_deadline: defaults::task_deadline(),
        }
    }
}

/// Options of `pve-operator run` about operating it: metrics, probes, leader election.
#[derive(Debug, Args, Clone)]
pub struct OpsArgs {
    /// Address of the operations endpoints: /metrics (OpenMetrics), /healthz and /readyz.
    #[arg(
        long,
        env = "PVE_OPERATOR_METRICS_ADDR",
        default_value = "0.0.0.0:8080"
    )]
    pub metrics_addr: SocketAddr,
    /// Run the controllers only while holding a coordination.k8s.io Lease, so that several
    /// replicas are safe (one leads, the others stand by).
    #[arg(long, env = "PVE_OPERATOR_LEADER_ELECT")]
    pub leader_elect: bool,
    /// The Lease's name.
    #[arg(long, default_value = "pve-operator-leader")]
    pub lease_name: String,
    /// The Lease's namespace; by default $POD_NAMESPACE, else the client's default namespace
    /// (in a pod: its own).
    #[arg(long, env = "POD_NAMESPACE")]
    pub lease_namespace: Option<String>,
    /// How long a standby waits for a silent leader before taking over, in seconds.
    #[arg(long, default_value_t = 15)]
    pub lease_duration: u64,
    /// How often the leader renews the Lease and a standby tries to take it, in seconds.
    #[arg(long, default_value_t = 5)]
    pub lease_renew_interval: u64,
    /// This replica's identity in the Lease; by default $POD_NAME, else the host name and
    /// process id.
    #[arg(long, env = "POD_NAME")]
    pub leader_identity: Option<String>,
}

/// Everything `pve-operator run` takes.
#[derive(Debug, Args, Clone)]
pub struct RunCommand {
    /// The controllers' options.
    #[command(flatten)]
    pub controller: RunArgs,
    /// Metrics, probes and leader election.
    #[command(flatten)]
    pub ops: OpsArgs,
}

/// `pve-operator run ARGV...` parsed as the command line would be (for tests).
#[cfg(test)]
pub(super) fn parsed(argv: &[&str]) -> RunArgs {
    use clap::Parser;

    use crate::cli::{Cli, Command};

    let mut full = vec!["pve-operator", "run"];
    full.extend_from_slice(argv);
    match Cli::try_parse_from(full).expect("arguments parse").command {
        Command::Run(command) => command.controller,
        _ => unreachable!("the run command"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_args_default_is_what_the_flags_default_to() {
        let parsed = parsed(&[]);
        let default = RunArgs::default();
        // Environment variables aside (KUBECONFIG and the like may be set where tests run).
        assert_eq!(
            (
                parsed.concurrency,
                parsed.inventory_interval,
                parsed.task_poll_interval,
                parsed.resync_interval,
                parsed.shutdown_grace,
                parsed.max_tasks_per_node,
                parsed.task_deadline,
                parsed.identity_selector,
            ),
            (
                default.concurrency,
                default.inventory_interval,
                default.task_poll_interval,
                default.resync_interval,
                default.shutdown_grace,
                default.max_tasks_per_node,
                default.task_deadline,
                default.identity_selector,
            )
        );
    }
}
