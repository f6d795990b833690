//! Creating, cloning and destroying VMs (the synchronous part; the rest is in the tasks).

use super::drive::{Drive, Nic, is_drive_key, is_net_key};
use super::update::normalise_tags;
use super::*;
use crate::error::ApiError;
use crate::router::{Ctx, Reply};
use crate::state::{Power, SimState, Vm};
use crate::tasks::TaskAction;

/// Keys of the create call that are not VM config options.
const CREATE_ONLY: &[&str] = &[
    "node",
    "vmid",
    "archive",
    "storage",
    "force",
    "unique",
    "live-restore",
    "pool",
    "bwlimit",
    "start",
    "import-working-storage",
    // 9.1: puts the new VM under HA; not a config option (the simulator has no HA manager).
    "ha-managed",
];

pub(super) fn create(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
    let node = ctx.param("node")?;
    let vmid = ctx.vmid()?;
    perms::check_root_only(ctx)?;
    let pool = ctx.params.str("pool");
    if let Some(p) = &pool
        && ctx.sim.state.access.pool(p).is_none()
    {
        return Err(ApiError::perm(format!("pool '{p}' does not exist")));
    }
    let storage = ctx.params.str("storage");
    if ctx.params.has("archive") {
        return Err(ApiError::internal(
            "restore from backup archives is not supported by pve-sim",
        ));
    }
    if let Some(s) = &storage
        && !ctx.is_root()
    {
        ctx.require(
            &format!("/storage/{s}"),
            &["Datastore.AllocateSpace"],
            false,
        )?;
    }
    let pve9 = ctx.sim.state.config.pve_version.is_pve9();
    let start = ctx.params.flag("start");
    // 9.1.10+: autostart no longer bypasses the power check inside the worker; it is checked
    // up front, on the VM only (the pool too only from 9.2.0).
    if pve9 && start && !ctx.is_root() {
        ctx.require(&format!("/vms/{vmid}"), &["VM.PowerMgmt"], false)?;
    }
    if !ctx.is_root() {
        let on_vm = ctx.check(&format!("/vms/{vmid}"), &["VM.Allocate"], false);
        let on_pool = pool
            .as_ref()
            .is_some_and(|p| ctx.check(&format!("/pool/{p}"), &["VM.Allocate"], false));
        if !on_vm && !on_pool {
            return Err(ApiError::perm_bare());
        }
    }
    let mut conf = config_options(ctx, CREATE_ONLY);
    if let Some(cd) = conf.remove("cdrom") {
        conf.insert("ide2".into(), format!("{cd},media=cdrom"));
    }
    // 9.1.17+ (fix #7480): create normalises tags as config updates do; 8.4 stores them as given.
    if pve9 && let Some(tags) = conf.get_mut("tags") {
        *tags = normalise_tags(tags);
    }
    for (key, value) in &conf {
        if is_drive_key(key) {
            perms::check_drive_storage(ctx, key, value, storage.as_deref())?;
            check_drive_request(&ctx.sim.state, key, value, storage.as_deref())?;
        }
    }
    for (key, value) in &conf {
        perms::check_option(ctx, vmid, pool.as_deref(), key, Some(value))?;
        if is_net_key(key) {
            perms::check_nic(ctx, value)?;
        }
    }
    if let Some(existing) = ctx.sim.state.vms.get(&vmid) {
        return Err(ApiError::internal(format!(
            "unable to create VM {vmid} - VM {vmid} already exists on node '{}'",
            existing.node
        )));
    }
    for (key, value) in conf.iter_mut() {
        if is_net_key(key)
            && let Some(mut nic) = Nic::parse(value)
        {
            if nic.mac.is_none() {
                nic.mac = Some(ctx.sim.state.random_mac());
            }
            *value = nic.print();
        }
    }
    if let Some(s) = storage {
        conf.insert("__storage".into(), s);
    }
    let mut vm = Vm::new(vmid, &node);
    vm.lock = Some("create".into());
    vm.created_ms = ctx.now_ms;
    if let Some(p) = &pool {
        ctx.sim
            .state
            .access
            .pool_add_vm(p, vmid)
            .map_err(|e| ApiError::internal(e.to_string()))?;
    }
    ctx.sim.state.vms.insert(vmid, vm);
    Ok(start_task(
        ctx,
        &node,
        "qmcreate",
        &vmid.to_string(),
        TaskAction::Create { vmid, start, conf },
    ))
}

/// Synchronous checks of a drive in a create or update request: the storage exists and holds images.
pub(super) fn check_drive_request(
    state: &SimState,
    key: &str,
    value: &str,
    default_storage: Option<&str>,
) -> Result<(), ApiError> {
    let Some(drive) = Drive::parse(key, value) else {
        return Ok(());
    };
    super::import::check_request(state, key, &drive)?;
    let storage = match drive.new_disk(default_storage) {
        Some((Some(s), _)) => s,
        Some((None, _)) => {
            return Err(ApiError::param(
                key,
                "no storage ID specified (and no default storage)",
            ));
        }
        None if drive.file.ends_with(":cloudinit") => drive.storage().unwrap_or("").to_string(),
        None => return Ok(()),
    };
    let Some(cfg) = state.config.storage(&storage) else {
        return Err(ApiError::internal(format!(
            "storage '{storage}' does not exist"
        )));
    };
    if !cfg.content.iter().any(|c| c == "images") {
        return Err(ApiError::param(
            "storage",
            format!("storage '{storage}' does not support vm images"),
        ));
    }
    Ok(())
}

pub(super) fn clone(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
    let node = ctx.param("node")?;
    let vmid = ctx.vmid()?;
    let newid = ctx
        .params
        .int("newid")
        .and_then(|v| u32::try_from(v).ok())
        .ok_or_else(|| ApiError::param("newid", "property is missing and it is not optional"))?;
    let pool = ctx.params.str("pool");
    if let Some(p) = &pool
        && ctx.sim.state.access.pool(p).is_none()
    {
        return Err(ApiError::perm(format!("pool '{p}' does not exist")));
    }
    if !ctx.is_root() {
        let on_vm = ctx.check(&format!("/vms/{newid}"), &["VM.Allocate"], false);
        let on_pool = pool
            .as_ref()
            .is_some_and(|p| ctx.check(&format!("/pool/{p}"), &["VM.Allocate"], false));
        if !on_vm && !on_pool {
            return Err(ApiError::perm_bare());
        }
    }
    let src = load(&ctx.sim.state, &node, vmid)?.clone();
    let target = ctx.params.str("target").unwrap_or_else(|| node.clone());
    if ctx.sim.state.config.node(&target).is_none() {
        return Err(ApiError::param(
            "target",
            format!("no such cluster node '{target}'"),
        ));
    }
    let full_param = ctx.params.get("full").map(|_| ctx.params.flag("full"));
    let full = if src.is_template() {
        full_param.unwrap_or(false)
    } else {
        true
    };
    let storage = ctx.params.str("storage");
    if !full && storage.is_some() {
        return Err(ApiError::param(
            "storage",
            "parameter 'storage' not allowed for linked clones",
        ));
    }
    if let Some(s) = &storage {
        if ctx.sim.state.config.storage(s).is_none() {
            return Err(ApiError::internal(format!("storage '{s}' does not exist")));
        }
        if !ctx.is_root() {
            ctx.require(
                &format!("/storage/{s}"),
                &["Datastore.AllocateSpace"],
                false,
            )?;
        }
    } else if !ctx.is_root() {
        for (k, v) in &src.conf {
            if is_drive_key(k)
                && let Some(s) = Drive::parse(k, v)
                    .filter(|d| !d.is_cdrom())
                    .and_then(|d| d.storage().map(str::to_string))
            {
                ctx.require(
                    &format!("/storage/{s}"),
                    &["Datastore.AllocateSpace"],
                    false,
                )?;
            }
        }
    }
    if !ctx.is_root() {
        for (k, v) in &src.conf {
            if is_net_key(k) {
                perms::check_nic(ctx, v)?;
            }
        }
    }
    if ctx.sim.state.vms.contains_key(&newid) {
        return Err(ApiError::internal(format!(
            "unable to create VM {newid}: config file already exists"
        )));
    }
    let mut vm = Vm::new(newid, &target);
    vm.lock = Some("clone".into());
    vm.created_ms = ctx.now_ms;
    if let Some(p) = &pool {
        ctx.sim
            .state
            .access
            .pool_add_vm(p, newid)
            .map_err(|e| ApiError::internal(e.to_string()))?;
    }
    if let Some(name) = ctx.params.str("name") {
        vm.conf.insert("name".into(), name);
    }
    if let Some(d) = ctx.params.str("description") {
        vm.conf.insert("description".into(), d);
    }
    ctx.sim.state.vms.insert(newid, vm);
    Ok(start_task(
        ctx,
        &node,
        "qmclone",
        &vmid.to_string(),
        TaskAction::Clone {
            vmid,
            newid,
            full,
            storage,
        },
    ))
}

pub(super) fn destroy(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
    let node = ctx.param("node")?;
    let vmid = ctx.vmid()?;
    perms::check_root_only(ctx)?;
    let skiplock = ctx.params.flag("skiplock");
    let vm = load(&ctx.sim.state, &node, vmid)?;
    if vm.conf.get("protection").is_some_and(|p| p == "1") {
        return Err(ApiError::internal(format!(
            "can't remove VM {vmid} - protection mode enabled"
        )));
    }
    if vm.power != Power::Stopped {
        return Err(ApiError::internal(format!(
            "VM {vmid} is running - destroy failed"
        )));
    }
    let locked = if skiplock { None } else { vm.lock.clone() };
    let destroy_unreferenced = ctx.params.flag("destroy-unreferenced-disks");
    // The worker marks the config `lock: destroyed` once it has the config lock; when no other
    // task holds it, that is now.
    let lock_free = ctx
        .sim
        .state
        .flock_busy_until(vmid)
        .is_none_or(|until| until <= ctx.now_ms);
    if locked.is_none()
        && lock_free
        && let Ok(vm) = load_mut(&mut ctx.sim.state, &node, vmid)
    {
        vm.lock = Some("destroyed".into());
    }
    Ok(start_task(
        ctx,
        &node,
        "qmdestroy",
        &vmid.to_string(),
        TaskAction::Destroy {
            vmid,
            destroy_unreferenced,
            locked,
        },
    ))
}
