//! Config changes (POST async, PUT sync) with digest, locks, pending values, and resize.

use std::collections::BTreeMap;

use serde_json::Value;

use super::drive::{Drive, Nic, is_drive_key, is_net_key, is_unused_key};
use super::lifecycle::check_drive_request;
use super::*;
use crate::error::ApiError;
use crate::params::split_list;
use crate::router::{Ctx, Reply};
use crate::state::Power;
use crate::tasks::TaskAction;

/// Keys of the config update calls that are not VM config options.
const UPDATE_ONLY: &[&str] = &[
    "node",
    "vmid",
    "delete",
    "revert",
    "force",
    "digest",
    "skiplock",
    "background_delay",
];

/// Normalises tags as `get_unique_tags` does with the default tag style: split, lower-case,
/// de-duplicate, sort, join with `;` (config updates; create too on 9.1).
pub(super) fn normalise_tags(tags: &str) -> String {
    let mut list: Vec<String> = split_list(tags).map(|t| t.to_ascii_lowercase()).collect();
    list.sort();
    list.dedup();
    list.join(";")
}

/// Keys a running VM takes at once (hot-plug with the default `hotplug=network,disk,usb`, and
/// options that need no restart).
fn hotpluggable(key: &str) -> bool {
    const FAST: &[&str] = &[
        "name",
        "description",
        "onboot",
        "protection",
        "tags",
        "startup",
        "hookscript",
        "lock",
        "ciuser",
        "cipassword",
        "citype",
        "cicustom",
        "sshkeys",
        "nameserver",
        "searchdomain",
        "ciupgrade",
    ];
    FAST.contains(&key)
        || key.starts_with("ipconfig")
        || is_net_key(key)
        || (is_drive_key(key)
            && !key.starts_with("ide")
            && !key.starts_with("efidisk")
            && !key.starts_with("tpmstate"))
        || is_unused_key(key)
}

/// Where a config update takes the VM's config flock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flock {
    /// First thing, in the API worker (`PUT`; `POST` up to qemu-server 9.1.18): a timeout is
    /// a synchronous 500.
    Sync,
    /// Inside the `qmconfig` task (`POST` from 9.1.19): digest, lock and permission checks run
    /// without it, and a timeout fails the task with nothing changed.
    InTask,
}

/// What a config update did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// The change is made.
    Applied,
    /// The change waits for a flock inside its task that will time out: nothing is changed.
    LockTimesOut,
}

fn update_config(ctx: &mut Ctx<'_>, flock: Flock) -> Result<Outcome, ApiError> {
    let node = ctx.param("node")?;
    let vmid = ctx.vmid()?;
    perms::check_root_only(ctx)?;
    if flock == Flock::Sync {
        take_flock(ctx, vmid)?;
    }
    let skiplock = ctx.params.flag("skiplock");
    let mut set = config_options(ctx, UPDATE_ONLY);
    if let Some(cd) = set.remove("cdrom") {
        set.insert("ide2".into(), format!("{cd},media=cdrom"));
    }
    let delete: Vec<String> = ctx
        .params
        .str("delete")
        .map(|d| split_list(&d).map(str::to_string).collect())
        .unwrap_or_default();
    let revert: Vec<String> = ctx
        .params
        .str("revert")
        .map(|d| split_list(&d).map(str::to_string).collect())
        .unwrap_or_default();
    for d in &delete {
        if set.contains_key(d) {
            return Err(ApiError::param(
                "delete",
                format!("you can't use '-{d}' and -delete {d}' at the same time"),
            ));
        }
    }
    {
        let vm = load(&ctx.sim.state, &node, vmid)?;
        if let Some(digest) = ctx.params.str("digest")
            && digest != vm.digest()
        {
            return Err(ApiError::internal(
                "checksum mismatch (file change by other user?)",
            ));
        }
        if let Some(lock) = &vm.lock
            && !skiplock
        {
            return Err(ApiError::internal(format!("VM is locked ({lock})")));
        }
        if set.is_empty() && delete.is_empty() && revert.is_empty() {
            return Err(ApiError::internal("no options specified"));
        }
        let pool = ctx.sim.state.access.vm_pool(vmid).map(str::to_string);
        for (k, v) in &set {
            if k == "tags" {
                if !ctx.is_root() {
                    perms::check_option(ctx, vmid, pool.as_deref(), "name", None)?;
                }
            } else if k == "cpu"
                && ctx.sim.state.config.pve_version.is_pve9()
                && vm.conf.get("cpu").and_then(|o| perms::custom_cpu_model(o))
                    == perms::custom_cpu_model(v)
            {
                // 9.1.13+: the CPU mapping is checked only when the model changes.
                perms::check_option(ctx, vmid, pool.as_deref(), "cpu", None)?;
            } else {
                perms::check_option(ctx, vmid, pool.as_deref(), k, Some(v))?;
            }
            if is_net_key(k) {
                perms::check_nic(ctx, v)?;
            }
            if is_drive_key(k) {
                perms::check_drive_storage(ctx, k, v, None)?;
                check_drive_request(&ctx.sim.state, k, v, None)?;
            }
        }
        for k in &delete {
            let old = vm.conf.get(k).cloned();
            perms::check_option(ctx, vmid, pool.as_deref(), k, old.as_deref())?;
        }
        if let Some(boot) = set.get("boot").and_then(|b| b.strip_prefix("order=")) {
            for dev in boot.split(';').filter(|d| !d.is_empty()) {
                if !set.contains_key(dev) && !vm.conf.contains_key(dev) {
                    return Err(ApiError::param(
                        "boot",
                        format!("invalid bootorder: device '{dev}' does not exist'"),
                    ));
                }
            }
        }
    }
    if flock == Flock::InTask
        && (ctx.sim.lock_timeout_fault || task_flock_times_out(ctx, "qmconfig", vmid))
    {
        return Ok(Outcome::LockTimesOut);
    }
    // Rewrite NICs (keeping the MAC of an existing NIC) and allocate new disks now; if one
    // allocation fails, the volumes of this request are freed again.
    let mut rewritten = BTreeMap::new();
    let mut allocated: Vec<String> = Vec::new();
    for (k, v) in set {
        let v = if k == "tags" {
            normalise_tags(&v)
        } else if is_net_key(&k) {
            match Nic::parse(&v) {
                Some(mut nic) => {
                    if nic.mac.is_none() {
                        let old = ctx
                            .sim
                            .state
                            .vms
                            .get(&vmid)
                            .and_then(|vm| vm.conf.get(&k))
                            .and_then(|o| Nic::parse(o));
                        nic.mac = Some(match old.and_then(|o| o.mac) {
                            Some(m) => m,
                            None => ctx.sim.state.random_mac(),
                        });
                    }
                    nic.print()
                }
                None => v,
            }
        } else if is_drive_key(&k) {
            match alloc::allocate_disk(&mut ctx.sim.state, vmid, &node, &k, &v, None) {
                Ok((value, created)) => {
                    if created && let Some(d) = Drive::parse(&k, &value) {
                        allocated.push(d.file);
                    }
                    value
                }
                Err(e) => {
                    ctx.sim
                        .state
                        .volumes
                        .retain(|vol| !allocated.contains(&vol.volid));
                    return Err(ApiError::internal(e));
                }
            }
        } else {
            v
        };
        rewritten.insert(k, v);
    }
    let vm = load_mut(&mut ctx.sim.state, &node, vmid)?;
    let running = vm.power != Power::Stopped;
    for k in &revert {
        vm.pending.remove(k);
        vm.pending_delete.retain(|d| d != k);
    }
    let mut to_free = Vec::new();
    for k in &delete {
        if running && !hotpluggable(k) {
            if !vm.pending_delete.contains(k) {
                vm.pending_delete.push(k.clone());
            }
            vm.pending.remove(k);
            continue;
        }
        vm.pending.remove(k);
        if let Some(old) = vm.conf.remove(k) {
            if is_unused_key(k) {
                to_free.push(old);
            } else if is_drive_key(k)
                && let Some(d) = Drive::parse(k, &old)
                && !d.is_cdrom()
                && d.file.contains(':')
            {
                let n = (0..256)
                    .find(|i| !vm.conf.contains_key(&format!("unused{i}")))
                    .unwrap_or(0);
                vm.conf.insert(format!("unused{n}"), d.file);
            }
        }
    }
    for (k, v) in rewritten {
        // A drive replaced by another volume keeps its old volume as `unusedN`.
        if is_drive_key(&k)
            && let Some(old) = vm.conf.get(&k).and_then(|o| Drive::parse(&k, o))
            && !old.is_cdrom()
            && old.file.contains(':')
            && Drive::parse(&k, &v).is_none_or(|new| new.file != old.file)
        {
            let n = (0..256)
                .find(|i| !vm.conf.contains_key(&format!("unused{i}")))
                .unwrap_or(0);
            vm.conf.insert(format!("unused{n}"), old.file);
        }
        if running && !hotpluggable(&k) {
            vm.pending.insert(k, v);
        } else {
            vm.pending.remove(&k);
            vm.conf.insert(k, v);
        }
    }
    ctx.sim
        .state
        .volumes
        .retain(|v| !to_free.contains(&v.volid));
    Ok(Outcome::Applied)
}

pub(super) fn update_config_async(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
    let node = ctx.param("node")?;
    let vmid = ctx.vmid()?;
    let version = ctx.sim.state.config.pve_version;
    let flock = if flock_in_task(version, "POST", "/nodes/{node}/qemu/{vmid}/config") {
        Flock::InTask
    } else {
        Flock::Sync
    };
    let outcome = update_config(ctx, flock)?;
    let fault = std::mem::take(&mut ctx.sim.lock_timeout_fault);
    let waits = flock == Flock::InTask
        && ctx
            .sim
            .state
            .flock_busy_until(vmid)
            .is_some_and(|until| until > ctx.now_ms);
    // With `background_delay`, PVE waits that long for the worker and answers `null` when it
    // finished in time.
    if let Some(delay) = ctx.params.int("background_delay")
        && outcome == Outcome::Applied
        && !fault
        && !waits
        && ctx.sim.state.config.task_durations_ms.config <= delay.max(0) as u64 * 1000
    {
        return Ok(Value::Null.into());
    }
    let reply = start_task(
        ctx,
        &node,
        "qmconfig",
        &vmid.to_string(),
        TaskAction::Config { vmid },
    );
    if fault {
        fail_task_with_lock_timeout(ctx, &reply, vmid);
    }
    Ok(reply)
}

pub(super) fn update_config_sync(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
    update_config(ctx, Flock::Sync)?;
    Ok(Value::Null.into())
}

pub(super) fn resize(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
    let node = ctx.param("node")?;
    let vmid = ctx.vmid()?;
    perms::check_root_only(ctx)?;
    let disk = ctx.param("disk")?;
    let size = ctx.param("size")?;
    let vm = load(&ctx.sim.state, &node, vmid)?;
    if let Some(digest) = ctx.params.str("digest")
        && digest != vm.digest()
    {
        return Err(ApiError::internal(
            "checksum mismatch (file change by other user?)",
        ));
    }
    // The storage permission is checked inside the worker: a failure is a task error.
    let denied = vm
        .conf
        .get(&disk)
        .and_then(|v| Drive::parse(&disk, v))
        .and_then(|d| d.storage().map(str::to_string))
        .and_then(|storage| {
            ctx.require(
                &format!("/storage/{storage}"),
                &["Datastore.AllocateSpace"],
                false,
            )
            .err()
        });
    let reply = start_task(
        ctx,
        &node,
        "resize",
        &vmid.to_string(),
        TaskAction::Resize { vmid, disk, size },
    );
    if let (Some(err), Value::String(upid)) = (denied, &reply.data)
        && let Some(task) = ctx.sim.state.task_mut(upid)
    {
        task.injected_failure = Some(err.message.trim_end().to_string());
    }
    Ok(reply)
}
