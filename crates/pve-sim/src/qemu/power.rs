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
