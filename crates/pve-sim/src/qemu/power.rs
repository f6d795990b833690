//! Power actions: start, stop, shutdown, reboot, reset, suspend, resume.

use super::*;
use crate::error::ApiError;
use crate::router::{Ctx, Reply};
use crate::state::Power;
use crate::tasks::TaskAction;

fn power_action(
    ctx: &mut Ctx<'_>,
    kind: &str,
    make: fn(u32) -> TaskAction,
) -> Result<Reply, ApiError> {
    let node = ctx.param("node")?;
    let vmid = ctx.vmid()?;
    perms::check_root_only(ctx)?;
    load(&ctx.sim.state, &node, vmid)?;
    Ok(start_task(ctx, &node, kind, &vmid.to_string(), make(vmid)))
}

pub(super) fn start(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
    power_action(ctx, "qmstart", |vmid| TaskAction::Start { vmid })
}

pub(super) fn stop(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
    power_action(ctx, "qmstop", |vmid| TaskAction::Stop { vmid })
}

pub(super) fn shutdown(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
    let node = ctx.param("node")?;
    let vmid = ctx.vmid()?;
    perms::check_root_only(ctx)?;
    let force = ctx.params.flag("forceStop");
    let vm = load(&ctx.sim.state, &node, vmid)?;
    if vm.power == Power::Paused && !force {
        return Err(ApiError::internal("VM is paused - cannot shutdown"));
    }
    let action = if force && vm.power == Power::Paused {
        TaskAction::Stop { vmid }
    } else {
        TaskAction::Shutdown { vmid, force }
    };
    Ok(start_task(
        ctx,
        &node,
        "qmshutdown",
        &vmid.to_string(),
        action,
    ))
}

pub(super) fn reboot(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
    let node = ctx.param("node")?;
    let vmid = ctx.vmid()?;
    let vm = load(&ctx.sim.state, &node, vmid)?;
    match vm.power {
        Power::Stopped => return Err(ApiError::internal(format!("VM {vmid} not running"))),
        Power::Paused => return Err(ApiError::internal("VM is paused - cannot shutdown")),
        Power::Running => {}
    }
    Ok(start_task(
        ctx,
        &node,
        "qmreboot",
        &vmid.to_string(),
        TaskAction::Reboot { vmid },
    ))
}

pub(super) fn reset(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
    power_action(ctx, "qmreset", |vmid| TaskAction::Reset { vmid })
}

pub(super) fn suspend(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
    if ctx.params.flag("todisk") {
        return Err(ApiError::internal(
            "suspend to disk is not supported by pve-sim",
        ));
    }
    power_action(ctx, "qmpause", |vmid| TaskAction::Suspend { vmid })
}

pub(super) fn resume(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
    power_action(ctx, "qmresume", |vmid| TaskAction::Resume { vmid })
}

/// What qemu-server checks of a VM's passthrough devices when it builds the QEMU command line
/// at start: each `hostpciN`/`usbN` mapping must have a device on the VM's node (`PCI device
/// mapping not found for '<id>'`, the same for USB, when it does not exist or has none there),
/// and `pcie=1` needs a q35 machine.
pub(super) fn check_passthrough_at_start(
    state: &crate::state::SimState,
    vm: &crate::state::Vm,
) -> Result<(), String> {
    let mappings = &state.config.mappings;
    let machine = vm.conf.get("machine").map(String::as_str).unwrap_or("pc");
    let q35 = machine
        .split(',')
        .next()
        .is_some_and(|m| m.trim_start_matches("type=").contains("q35"));
    for (key, value) in &vm.conf {
        let (word, list) = if is_indexed(key, "hostpci") {
            ("PCI", &mappings.pci)
        } else if is_indexed(key, "usb") {
            ("USB", &mappings.usb)
        } else {
            continue;
        };
        let options: Vec<(&str, &str)> = value
            .split(',')
            .filter_map(|part| part.split_once('='))
            .collect();
        let option = |name: &str| options.iter().find(|(k, _)| *k == name).map(|(_, v)| *v);
        if let Some(id) = option("mapping") {
            let on_node = list.iter().find(|m| m.id == id).is_some_and(|m| {
                m.map.iter().any(|entry| {
                    entry
                        .split(',')
                        .any(|part| part.strip_prefix("node=") == Some(vm.node.as_str()))
                })
            });
            if !on_node {
                return Err(format!("{word} device mapping not found for '{id}'"));
            }
        }
        if word == "PCI" && option("pcie") == Some("1") && !q35 {
            return Err(
                "q35 machine model is not enabled at /usr/share/perl5/PVE/QemuServer/PCI.pm line 514."
                    .to_string(),
            );
        }
    }
    Ok(())
}

/// Whether `key` is `{prefix}N`.
fn is_indexed(key: &str, prefix: &str) -> bool {
    key.strip_prefix(prefix)
        .is_some_and(|i| !i.is_empty() && i.chars().all(|c| c.is_ascii_digit()))
}
