//! The VM's current status and the power actions (start, stop, shutdown, reboot, reset) with
//! their options.

use super::{QemuStatus, vm_request};
use crate::client::PveClient;
use crate::error::Result;
use crate::request::{ApiRequest, Method, Params};
use crate::task::Upid;

/// Options of `status/stop`.
#[derive(Debug, Clone, Default)]
pub struct StopOptions {
    /// Seconds to wait.
    pub timeout: Option<u32>,
    /// Abort a running shutdown task first.
    pub overrule_shutdown: Option<bool>,
}

/// Options of `status/shutdown`.
#[derive(Debug, Clone, Default)]
pub struct ShutdownOptions {
    /// Seconds to wait (Proxmox default 60).
    pub timeout: Option<u32>,
    /// Stop the VM if the shutdown did not complete in time.
    pub force_stop: Option<bool>,
}

/// The power actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PowerAction {
    /// `status/start`.
    Start,
    /// `status/stop` (hard stop).
    Stop,
    /// `status/shutdown` (ACPI or agent).
    Shutdown,
    /// `status/reboot` (applies pending changes).
    Reboot,
    /// `status/reset`.
    Reset,
}

impl PowerAction {
    fn template(self) -> &'static str {
        match self {
            PowerAction::Start => "/nodes/{node}/qemu/{vmid}/status/start",
            PowerAction::Stop => "/nodes/{node}/qemu/{vmid}/status/stop",
            PowerAction::Shutdown => "/nodes/{node}/qemu/{vmid}/status/shutdown",
            PowerAction::Reboot => "/nodes/{node}/qemu/{vmid}/status/reboot",
            PowerAction::Reset => "/nodes/{node}/qemu/{vmid}/status/reset",
        }
    }
}

/// `GET /nodes/{node}/qemu/{vmid}/status/current`.
pub fn status_request(node: &str, vmid: u32) -> Result<ApiRequest> {
    vm_request(
        Method::Get,
        "/nodes/{node}/qemu/{vmid}/status/current",
        node,
        vmid,
        Params::new(),
    )
}

/// `POST /nodes/{node}/qemu/{vmid}/status/{action}` with the action's options.
pub fn power_request(
    node: &str,
    vmid: u32,
    action: PowerAction,
    stop: &StopOptions,
    shutdown: &ShutdownOptions,
) -> Result<ApiRequest> {
    let mut p = Params::new();
    match action {
        PowerAction::Stop => {
            p.opt_int("timeout", stop.timeout.map(i64::from));
            p.opt_bool("overrule-shutdown", stop.overrule_shutdown);
        }
        PowerAction::Shutdown => {
            p.opt_int("timeout", shutdown.timeout.map(i64::from));
            p.opt_bool("forceStop", shutdown.force_stop);
        }
        PowerAction::Start | PowerAction::Reboot | PowerAction::Reset => {}
    }
    vm_request(Method::Post, action.template(), node, vmid, p)
}

impl PveClient {
    /// `GET .../status/current`.
    pub async fn qemu_status(&self, node: &str, vmid: u32) -> Result<QemuStatus> {
        self.call(&status_request(node, vmid)?).await
    }

    /// `POST .../status/start`: a `qmstart` task.
    pub async fn qemu_start(&self, node: &str, vmid: u32) -> Result<Upid> {
        self.power_plain(node, vmid, PowerAction::Start).await
    }

    /// `POST .../status/stop`: a `qmstop` task (hard stop).
    pub async fn qemu_stop(&self, node: &str, vmid: u32, opts: &StopOptions) -> Result<Upid> {
        self.power(
            node,
            vmid,
            PowerAction::Stop,
            opts,
            &ShutdownOptions::default(),
        )
        .await
    }

    /// `POST .../status/shutdown`: a `qmshutdown` task.
    pub async fn qemu_shutdown(
        &self,
        node: &str,
        vmid: u32,
        opts: &ShutdownOptions,
    ) -> Result<Upid> {
        self.power(
            node,
            vmid,
            PowerAction::Shutdown,
            &StopOptions::default(),
            opts,
        )
        .await
    }

    /// `POST .../status/reboot`: a `qmreboot` task (fails with [`PveError::Conflict`](crate::PveError::Conflict) when stopped).
    pub async fn qemu_reboot(&self, node: &str, vmid: u32) -> Result<Upid> {
        self.power_plain(node, vmid, PowerAction::Reboot).await
    }

    /// `POST .../status/reset`: a `qmreset` task.
    pub async fn qemu_reset(&self, node: &str, vmid: u32) -> Result<Upid> {
        self.power_plain(node, vmid, PowerAction::Reset).await
    }

    /// An action that takes no options (start, reboot, reset).
    async fn power_plain(&self, node: &str, vmid: u32, action: PowerAction) -> Result<Upid> {
        let (stop, shutdown) = (StopOptions::default(), ShutdownOptions::default());
        self.power(node, vmid, action, &stop, &shutdown).await
    }

    async fn power(
        &self,
        node: &str,
        vmid: u32,
        action: PowerAction,
        stop: &StopOptions,
        shutdown: &ShutdownOptions,
    ) -> Result<Upid> {
        self.call(&power_request(node, vmid, action, stop, shutdown)?)
            .await
    }
}
