//! QEMU VM endpoints (`/nodes/{node}/qemu/...`): list, create, config GET/POST/PUT with
//! `digest` and pending changes, status, power actions, resize, clone, delete, guest agent.

pub mod alloc;
pub mod cloudinit;
pub mod drive;
pub mod effects;
pub mod import;
mod lifecycle;
pub mod perms;
mod power;
mod read;
mod update;

use lifecycle::{clone, create, destroy};
use power::{reboot, reset, resume, shutdown, start, stop, suspend};
use read::{agent_interfaces, get_config, list, pending, status_current, status_index, vm_index};
use update::{resize, update_config_async, update_config_sync};

use std::collections::BTreeMap;

use serde_json::Value;

use crate::error::ApiError;
use crate::params::{self, Ty};
use crate::router::{Ctx, Perm, Reply, Route};
use crate::state::{SimState, Vm};
use crate::tasks::TaskAction;
use crate::version::PveVersion;

const CONFIG_ANY: &[&str] = &[
    "VM.Config.Disk",
    "VM.Config.CDROM",
    "VM.Config.CPU",
    "VM.Config.Memory",
    "VM.Config.Network",
    "VM.Config.HWType",
    "VM.Config.Options",
    "VM.Config.Cloudinit",
];

/// The guest agent's read commands (`ping`, `info`, `get-*`, `network-get-interfaces`, ...):
/// `VM.Monitor` on 8.4; on 9.x (qemu-server 9.0.3, `Agent.pm`) `VM.GuestAgent.Audit` or
/// `VM.GuestAgent.Unrestricted`, whose 403 names both: `(/vms/<id>, VM.GuestAgent.Audit|…)`.
const AGENT_AUDIT: Perm = Perm::ByVersion {
    pve8: &Perm::Check {
        path: "/vms/{vmid}",
        privs: &["VM.Monitor"],
        any: false,
    },
    pve9: &Perm::Check {
        path: "/vms/{vmid}",
        privs: &["VM.GuestAgent.Audit", "VM.GuestAgent.Unrestricted"],
        any: true,
    },
};

/// The QEMU routes.
pub fn routes() -> Vec<Route> {
    let audit = Perm::Check {
        path: "/vms/{vmid}",
        privs: &["VM.Audit"],
        any: false,
    };
    let power = Perm::Check {
        path: "/vms/{vmid}",
        privs: &["VM.PowerMgmt"],
        any: false,
    };
    let config = Perm::Check {
        path: "/vms/{vmid}",
        privs: CONFIG_ANY,
        any: true,
    };
    vec![
        Route::new("GET", "/nodes/{node}/qemu", Perm::All, list),
        Route::new("POST", "/nodes/{node}/qemu", Perm::All, create),
        Route::new("GET", "/nodes/{node}/qemu/{vmid}", audit, vm_index),
        Route::new(
            "DELETE",
            "/nodes/{node}/qemu/{vmid}",
            Perm::Check {
                path: "/vms/{vmid}",
                privs: &["VM.Allocate"],
                any: false,
            },
            destroy,
        ),
        Route::new("GET", "/nodes/{node}/qemu/{vmid}/config", audit, get_config),
        Route::new(
            "POST",
            "/nodes/{node}/qemu/{vmid}/config",
            config,
            update_config_async,
        ),
        Route::new(
            "PUT",
            "/nodes/{node}/qemu/{vmid}/config",
            config,
            update_config_sync,
        ),
        Route::new("GET", "/nodes/{node}/qemu/{vmid}/pending", audit, pending),
        Route::new(
            "GET",
            "/nodes/{node}/qemu/{vmid}/status",
            audit,
            status_index,
        ),
        Route::new(
            "GET",
            "/nodes/{node}/qemu/{vmid}/status/current",
            audit,
            status_current,
        ),
        Route::new(
            "POST",
            "/nodes/{node}/qemu/{vmid}/status/start",
            power,
            start,
        ),
        Route::new("POST", "/nodes/{node}/qemu/{vmid}/status/stop", power, stop),
        Route::new(
            "POST",
            "/nodes/{node}/qemu/{vmid}/status/shutdown",
            power,
            shutdown,
        ),
        Route::new(
            "POST",
            "/nodes/{node}/qemu/{vmid}/status/reboot",
            power,
            reboot,
        ),
        Route::new(
            "POST",
            "/nodes/{node}/qemu/{vmid}/status/reset",
            power,
            reset,
        ),
        Route::new(
            "POST",
            "/nodes/{node}/qemu/{vmid}/status/suspend",
            power,
            suspend,
        ),
        Route::new(
            "POST",
            "/nodes/{node}/qemu/{vmid}/status/resume",
            power,
            resume,
        ),
        Route::new(
            "PUT",
            "/nodes/{node}/qemu/{vmid}/resize",
            Perm::Check {
                path: "/vms/{vmid}",
                privs: &["VM.Config.Disk"],
                any: false,
            },
            resize,
        ),
        Route::new(
            "POST",
            "/nodes/{node}/qemu/{vmid}/clone",
            Perm::Check {
                path: "/vms/{vmid}",
                privs: &["VM.Clone"],
                any: false,
            },
            clone,
        ),
        Route::new(
            "GET",
            "/nodes/{node}/qemu/{vmid}/cloudinit",
            audit,
            cloudinit::pending,
        ),
        Route::new(
            "PUT",
            "/nodes/{node}/qemu/{vmid}/cloudinit",
            Perm::Check {
                path: "/vms/{vmid}",
                privs: &["VM.Config.Cloudinit"],
                any: false,
            },
            cloudinit::update,
        ),
        Route::new(
            "GET",
            "/nodes/{node}/qemu/{vmid}/cloudinit/dump",
            audit,
            cloudinit::dump,
        ),
        Route::new(
            "GET",
            "/nodes/{node}/qemu/{vmid}/agent/network-get-interfaces",
            AGENT_AUDIT,
            agent_interfaces,
        ),
    ]
}

fn conf_missing(node: &str, vmid: u32) -> ApiError {
    ApiError::internal(format!(
        "Configuration file 'nodes/{node}/qemu-server/{vmid}.conf' does not exist"
    ))
}

/// The VM `vmid` on the URL's node, or PVE's "does not exist" error.
fn load<'a>(state: &'a SimState, node: &str, vmid: u32) -> Result<&'a Vm, ApiError> {
    state
        .vms
        .get(&vmid)
        .filter(|vm| vm.node == node)
        .ok_or_else(|| conf_missing(node, vmid))
}

fn load_mut<'a>(state: &'a mut SimState, node: &str, vmid: u32) -> Result<&'a mut Vm, ApiError> {
    state
        .vms
        .get_mut(&vmid)
        .filter(|vm| vm.node == node)
        .ok_or_else(|| conf_missing(node, vmid))
}

/// `can't lock file '/var/lock/qemu-server/lock-<vmid>.conf' - got timeout`.
pub fn lock_timeout_message(vmid: u32) -> String {
    format!("can't lock file '/var/lock/qemu-server/lock-{vmid}.conf' - got timeout")
}

/// Whether `method template` takes the VM's config flock inside its task rather than in the API
/// worker, so that a flock timeout fails the task instead of the request: `POST …/config` from
/// qemu-server 9.1.19 ("api: update vm: fork before locking"). `PUT` stays synchronous.
pub fn flock_in_task(version: PveVersion, method: &str, template: &str) -> bool {
    version.is_pve9() && method == "POST" && template == "/nodes/{node}/qemu/{vmid}/config"
}

/// Whether a task of type `kind` started now on `vmid` would give up waiting for its config
/// flock.
fn task_flock_times_out(ctx: &Ctx<'_>, kind: &str, vmid: u32) -> bool {
    let now = ctx.now_ms;
    let timeout = ctx.sim.state.config.task_flock_timeout_ms(kind);
    ctx.sim
        .state
        .flock_busy_until(vmid)
        .is_some_and(|until| until > now && until - now > timeout)
}

/// Makes a just-started task fail with the lock timeout once its flock wait is over.
fn fail_task_with_lock_timeout(ctx: &mut Ctx<'_>, reply: &Reply, vmid: u32) {
    let Value::String(upid) = &reply.data else {
        return;
    };
    let end = ctx.now_ms + ctx.sim.state.config.vm_flock_timeout_ms();
    if let Some(task) = ctx.sim.state.task_mut(upid) {
        task.injected_failure = Some(lock_timeout_message(vmid));
    }
    ctx.sim.state.set_task_end(upid, end);
}

/// Starts a task. Its worker needs the VM's config lock: while another task holds it, the new
/// task waits (its end moves back), and fails with a lock timeout if the wait is too long.
fn start_task(ctx: &mut Ctx<'_>, node: &str, kind: &str, id: &str, action: TaskAction) -> Reply {
    let user = ctx.auth_id();
    let now = ctx.now_ms;
    let vmid = action.held_flock(ctx.sim.state.config.capacity.is_some());
    let busy = ctx
        .sim
        .state
        .flock_busy_until(vmid)
        .filter(|until| *until > now);
    let times_out = task_flock_times_out(ctx, kind, vmid);
    let upid = ctx.sim.state.start_task(node, kind, id, &user, action, now);
    if let Some(model) = ctx.sim.state.config.capacity.clone() {
        crate::capacity::durations::plan_task(ctx.sim, &model, &upid, node, now);
    }
    let timeout = ctx.sim.state.config.task_flock_timeout_ms(kind);
    if let Some(until) = busy
        && let Some(task) = ctx.sim.state.task_mut(&upid)
    {
        let end = if times_out {
            task.injected_failure = Some(lock_timeout_message(vmid));
            now + timeout
        } else {
            until + (task.end_ms - now)
        };
        ctx.sim.state.set_task_end(&upid, end);
    }
    Value::String(upid).into()
}

/// Takes the VM's config lock for a synchronous change; when a task holds it, asks the pipeline
/// to wait for it (see [`crate::state::Sim::lock_wait`]).
fn take_flock(ctx: &mut Ctx<'_>, vmid: u32) -> Result<(), ApiError> {
    if let Some(until) = ctx.sim.state.flock_busy_until(vmid)
        && until > ctx.now_ms
    {
        ctx.sim.lock_wait = Some(until);
        return Err(ApiError::internal(lock_timeout_message(vmid)));
    }
    Ok(())
}

/// A config value as PVE types it in JSON: integers and booleans as numbers, the rest (including
/// `number` options such as `cpulimit`, and `memory`) as strings.
pub fn typed_value(key: &str, value: &str) -> Value {
    // An option of either version (`allow-ksm` is 9.1 only); no option changed its type.
    let ty = PveVersion::ALL.iter().find_map(|v| {
        let table = params::table(*v, "POST", "/nodes/{node}/qemu")?;
        params::find(table, key).map(|p| p.ty)
    });
    match ty {
        Some(Ty::Integer) | Some(Ty::Boolean) => value
            .parse::<i64>()
            .map(Value::from)
            .unwrap_or_else(|_| Value::String(value.to_string())),
        _ => Value::String(value.to_string()),
    }
}

/// Options of a create or update request that are VM config keys.
fn config_options(ctx: &Ctx<'_>, non_config: &[&str]) -> BTreeMap<String, String> {
    ctx.params
        .0
        .keys()
        .filter(|k| !non_config.contains(&k.as_str()))
        .filter_map(|k| ctx.params.str(k).map(|v| (k.clone(), v)))
        .collect()
}
