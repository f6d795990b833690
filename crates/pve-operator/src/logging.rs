//! Log output: `tracing` with text or JSON lines, level from `--log-level` or `RUST_LOG`; the
//! same subscriber feeds the Proxmox request metrics ([`ProxmoxRequestLayer`]).

use clap::{Args, ValueEnum};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer as _};

use crate::ops::metrics::ProxmoxRequestLayer;

/// The log format.
#[derive(Debug, Clone, Copy, ValueEnum, Default)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Logging flags shared by all commands.
#[derive(Debug, Args)]
pub struct LogArgs {
    /// Log filter, e.g. `info` or `pve_operator=debug,kube=info`; `RUST_LOG` is used when unset.
    #[arg(long, global = true, env = "PVE_OPERATOR_LOG_LEVEL")]
    pub log_level: Option<String>,
    /// Log line format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// Installs the global subscriber. Fails when the filter does not parse.
pub fn init(args: &LogArgs) -> anyhow::Result<()> {
    let filter = match &args.log_level {
        Some(level) => EnvFilter::try_new(level)
            .map_err(|e| anyhow::anyhow!("--log-level {level:?} is not a valid filter: {e}"))?,
        None => EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
    };
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let fmt = match args.log_format {
        LogFormat::Text => fmt.with_filter(filter).boxed(),
        LogFormat::Json => fmt.json().with_filter(filter).boxed(),
    };
    // The Proxmox request metrics come from pve-client's `pve_request` spans, which this layer
    // sees through its own filter whatever the log level.
    let proxmox = ProxmoxRequestLayer.with_filter(ProxmoxRequestLayer::filter());
    tracing_subscriber::registry()
        .with(fmt)
        .with(proxmox)
        .try_init()
        .map_err(|e| anyhow::anyhow!("installing the log subscriber: {e}"))?;
    Ok(())
}
