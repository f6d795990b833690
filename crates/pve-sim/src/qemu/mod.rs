//! QEMU VM endpoints (`/nodes/{node}/qemu/...`): list, create, config GET/POST/PUT with
//! `digest` and pending changes, status, power actions, resize, clone, delete, guest agent.

pub mod alloc;
pub mod drive;
pub mod effects;
pub mod perms;

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::error::ApiError;
use crate::params::{self, Ty, generated, split_list};
use crate::router::{Ctx, Perm, Reply, Route};
use crate::state::{Power, SimState, Vm};
use crate::tasks::TaskAction;
use drive::{Drive, Nic, drive_size, is_drive_key, is_net_key, is_unused_key};

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
];
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
            "/nodes/{node}/qemu/{vmid}/agent/network-get-interfaces",
            Perm::Check {
                path: "/vms/{vmid}",
                privs: &["VM.Monitor"],
                any: false,
            },
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

/// Starts a task. Its worker needs the VM's config lock: while another task holds it, the new
/// task waits (its end moves back), and fails with a lock timeout if the wait is too long.
fn start_task(ctx: &mut Ctx<'_>, node: &str, kind: &str, id: &str, action: TaskAction) -> Reply {
    let user = ctx.auth_id();
    let now = ctx.now_ms;
    let vmid = action.vmid();
    let busy = ctx
        .sim
        .state
        .flock_busy_until(vmid)
        .filter(|until| *until > now);
    let timeout = ctx.sim.state.config.flock_timeout_ms;
    let upid = ctx.sim.state.start_task(node, kind, id, &user, action, now);
    if let Some(until) = busy
        && let Some(task) = ctx.sim.state.task_mut(&upid)
    {
        let end = if until - now > timeout {
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
    let table = generated::table("POST", "/nodes/{node}/qemu").unwrap_or(&[]);
    match params::find(table, key).map(|p| p.ty) {
        Some(Ty::Integer) | Some(Ty::Boolean) => value
            .parse::<i64>()
            .map(Value::from)
            .unwrap_or_else(|_| Value::String(value.to_string())),
        _ => Value::String(value.to_string()),
    }
}

fn vm_summary(state: &SimState, vm: &Vm, now_secs: u64) -> Map<String, Value> {
    let running = vm.power != Power::Stopped;
    let maxdisk = boot_disk_size(vm);
    let mut m = Map::new();
    m.insert("vmid".into(), json!(vm.vmid));
    m.insert("name".into(), json!(vm.name()));
    m.insert(
        "status".into(),
        json!(if running { "running" } else { "stopped" }),
    );
    m.insert("cpus".into(), json!(vm.cpus()));
    m.insert("maxmem".into(), json!(vm.memory_mib() << 20));
    m.insert("maxdisk".into(), json!(maxdisk));
    m.insert("disk".into(), json!(0));
    m.insert(
        "mem".into(),
        json!(if running {
            (vm.memory_mib() << 20) / 2
        } else {
            0
        }),
    );
    m.insert("cpu".into(), json!(if running { 0.01 } else { 0.0 }));
    m.insert(
        "uptime".into(),
        json!(
            vm.started_at
                .map(|s| now_secs.saturating_sub(s))
                .unwrap_or(0)
        ),
    );
    for k in ["netin", "netout", "diskread", "diskwrite"] {
        m.insert(k.into(), json!(0));
    }
    if running {
        m.insert("pid".into(), json!(10_000 + vm.vmid));
    }
    if let Some(tags) = vm.conf.get("tags") {
        m.insert("tags".into(), json!(tags));
    }
    if let Some(lock) = &vm.lock {
        m.insert("lock".into(), json!(lock));
    }
    if vm.is_template() {
        m.insert("template".into(), json!(1));
    }
    let _ = state;
    m
}

/// Size of the boot disk (the first disk in `boot` order, else the first disk).
fn boot_disk_size(vm: &Vm) -> u64 {
    let order = vm
        .conf
        .get("boot")
        .and_then(|b| b.strip_prefix("order="))
        .map(|o| o.split(';').map(str::to_string).collect::<Vec<_>>())
        .unwrap_or_default();
    let first = order
        .iter()
        .find(|k| {
            vm.conf
                .get(*k)
                .is_some_and(|v| is_drive_key(k) && !v.contains("media=cdrom"))
        })
        .cloned()
        .or_else(|| {
            vm.conf
                .iter()
                .find(|(k, v)| is_drive_key(k) && !v.contains("media=cdrom"))
                .map(|(k, _)| k.clone())
        });
    first
        .and_then(|k| vm.conf.get(&k))
        .map(|v| drive_size(v))
        .unwrap_or(0)
}

fn list(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
    let node = ctx.param("node")?;
    let now = ctx.now_secs();
    let out: Vec<Value> = ctx
        .sim
        .state
        .vms
        .values()
        .filter(|vm| vm.node == node)
        .filter(|vm| ctx.check(&format!("/vms/{}", vm.vmid), &["VM.Audit"], false))
        .map(|vm| Value::Object(vm_summary(&ctx.sim.state, vm, now)))
        .collect();
    Ok(Value::Array(out).into())
}

fn vm_index(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
    let node = ctx.param("node")?;
    load(&ctx.sim.state, &node, ctx.vmid()?)?;
    let dirs = [
        "config", "pending", "status", "agent", "clone", "resize", "snapshot", "firewall", "rrd",
        "rrddata",
    ];
    Ok(Value::Array(dirs.iter().map(|d| json!({ "subdir": d })).collect()).into())
}

fn status_index(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
    let node = ctx.param("node")?;
    load(&ctx.sim.state, &node, ctx.vmid()?)?;
    let dirs = [
        "current", "start", "stop", "reset", "shutdown", "suspend", "reboot", "resume",
    ];
    Ok(Value::Array(dirs.iter().map(|d| json!({ "subdir": d })).collect()).into())
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

/// Normalises tags on update: split, lower-case, de-duplicate, sort, join with `;`.
fn normalise_tags(tags: &str) -> String {
    let mut list: Vec<String> = split_list(tags).map(|t| t.to_ascii_lowercase()).collect();
    list.sort();
    list.dedup();
    list.join(";")
}

fn create(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
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
    let start = ctx.params.flag("start");
    Ok(start_task(
        ctx,
        &node,
        "qmcreate",
        &vmid.to_string(),
        TaskAction::Create { vmid, start, conf },
    ))
}

/// Synchronous checks of a drive in a create or update request: the storage exists and holds images.
fn check_drive_request(
    state: &SimState,
    key: &str,
    value: &str,
    default_storage: Option<&str>,
) -> Result<(), ApiError> {
    let Some(drive) = Drive::parse(key, value) else {
        return Ok(());
    };
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

fn get_config(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
    let node = ctx.param("node")?;
    let vm = load(&ctx.sim.state, &node, ctx.vmid()?)?;
    if ctx.params.has("snapshot") {
        return Err(ApiError::internal(format!(
            "snapshot '{}' does not exist",
            ctx.params.str("snapshot").unwrap_or_default()
        )));
    }
    let current = ctx.params.flag("current");
    let mut conf = vm.conf.clone();
    if !current {
        for k in &vm.pending_delete {
            conf.remove(k);
        }
        conf.extend(vm.pending.clone());
    }
    let mut m = Map::new();
    for (k, v) in &conf {
        let v = if k == "cipassword" {
            "**********"
        } else {
            v.as_str()
        };
        m.insert(k.clone(), typed_value(k, v));
    }
    if let Some(lock) = &vm.lock {
        m.insert("lock".into(), json!(lock));
    }
    m.insert("digest".into(), json!(vm.digest()));
    Ok(Value::Object(m).into())
}

fn pending(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
    let node = ctx.param("node")?;
    let vm = load(&ctx.sim.state, &node, ctx.vmid()?)?;
    let mut keys: Vec<&String> = vm.conf.keys().chain(vm.pending.keys()).collect();
    keys.sort();
    keys.dedup();
    let mut out = Vec::new();
    for k in keys {
        let mut e = Map::new();
        e.insert("key".into(), json!(k));
        if let Some(v) = vm.conf.get(k) {
            e.insert("value".into(), typed_value(k, v));
        }
        if let Some(v) = vm.pending.get(k) {
            e.insert("pending".into(), typed_value(k, v));
        }
        if vm.pending_delete.contains(k) {
            e.insert("delete".into(), json!(1));
        }
        out.push(Value::Object(e));
    }
    Ok(Value::Array(out).into())
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

fn update_config(ctx: &mut Ctx<'_>) -> Result<u32, ApiError> {
    let node = ctx.param("node")?;
    let vmid = ctx.vmid()?;
    perms::check_root_only(ctx)?;
    take_flock(ctx, vmid)?;
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
    // Rewrite NICs (keeping the MAC of an existing NIC) and allocate new disks now.
    let mut rewritten = BTreeMap::new();
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
            alloc::allocate_disk(&mut ctx.sim.state, vmid, &node, &k, &v, None)
                .map(|(v, _)| v)
                .map_err(ApiError::internal)?
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
    Ok(vmid)
}

fn update_config_async(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
    let node = ctx.param("node")?;
    let vmid = update_config(ctx)?;
    // With `background_delay`, PVE waits that long for the worker and answers `null` when it
    // finished in time.
    if let Some(delay) = ctx.params.int("background_delay")
        && ctx.sim.state.config.task_durations_ms.config <= delay.max(0) as u64 * 1000
    {
        return Ok(Value::Null.into());
    }
    Ok(start_task(
        ctx,
        &node,
        "qmconfig",
        &vmid.to_string(),
        TaskAction::Config { vmid },
    ))
}

fn update_config_sync(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
    update_config(ctx)?;
    Ok(Value::Null.into())
}

fn status_current(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
    let node = ctx.param("node")?;
    let now = ctx.now_secs();
    let vm = load(&ctx.sim.state, &node, ctx.vmid()?)?;
    let mut m = vm_summary(&ctx.sim.state, vm, now);
    let qmp = match vm.power {
        Power::Stopped => "stopped",
        Power::Running => "running",
        Power::Paused => "paused",
    };
    m.insert("qmpstatus".into(), json!(qmp));
    m.insert("ha".into(), json!({ "managed": 0 }));
    if vm.agent_enabled() {
        m.insert("agent".into(), json!(1));
    }
    if vm.power != Power::Stopped {
        m.insert("running-machine".into(), json!("pc-i440fx-9.2+pve1"));
        m.insert("running-qemu".into(), json!("9.2.0"));
    }
    Ok(Value::Object(m).into())
}

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

fn start(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
    power_action(ctx, "qmstart", |vmid| TaskAction::Start { vmid })
}

fn stop(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
    power_action(ctx, "qmstop", |vmid| TaskAction::Stop { vmid })
}

fn shutdown(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
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

fn reboot(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
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

fn reset(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
    power_action(ctx, "qmreset", |vmid| TaskAction::Reset { vmid })
}

fn suspend(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
    if ctx.params.flag("todisk") {
        return Err(ApiError::internal(
            "suspend to disk is not supported by pve-sim",
        ));
    }
    power_action(ctx, "qmpause", |vmid| TaskAction::Suspend { vmid })
}

fn resume(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
    power_action(ctx, "qmresume", |vmid| TaskAction::Resume { vmid })
}

fn resize(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
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

fn clone(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
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

fn destroy(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
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
    if locked.is_none()
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

fn agent_interfaces(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
    let node = ctx.param("node")?;
    let vmid = ctx.vmid()?;
    let vm = load(&ctx.sim.state, &node, vmid)?;
    if vm.power == Power::Stopped {
        return Err(ApiError::internal(format!("VM {vmid} is not running")));
    }
    if !vm.agent_enabled() {
        return Err(ApiError::internal("No QEMU guest agent configured"));
    }
    let mut ifaces = vec![json!({
        "name": "lo",
        "hardware-address": "00:00:00:00:00:00",
        "ip-addresses": [
            { "ip-address": "127.0.0.1", "ip-address-type": "ipv4", "prefix": 8 },
            { "ip-address": "::1", "ip-address-type": "ipv6", "prefix": 128 }
        ],
        "statistics": { "rx-bytes": 0, "rx-dropped": 0, "rx-errs": 0, "rx-packets": 0, "tx-bytes": 0, "tx-dropped": 0, "tx-errs": 0, "tx-packets": 0 }
    })];
    let mut nets: Vec<(u32, &String)> = vm
        .conf
        .iter()
        .filter(|(k, _)| is_net_key(k))
        .filter_map(|(k, v)| k.trim_start_matches("net").parse().ok().map(|n| (n, v)))
        .collect();
    nets.sort();
    for (n, value) in nets {
        let mac = Nic::parse(value)
            .and_then(|nic| nic.mac)
            .unwrap_or_default()
            .to_ascii_lowercase();
        let (ip, prefix) = vm
            .conf
            .get(&format!("ipconfig{n}"))
            .and_then(|c| c.split(',').find_map(|p| p.strip_prefix("ip=")))
            .filter(|ip| *ip != "dhcp")
            .and_then(|cidr| cidr.split_once('/'))
            .map(|(ip, p)| (ip.to_string(), p.parse::<u32>().unwrap_or(24)))
            .unwrap_or_else(|| {
                (
                    format!("10.{}.{}.{}", n, (vmid >> 8) & 0xff, (vmid & 0xff).max(2)),
                    24,
                )
            });
        ifaces.push(json!({
            "name": format!("eth{n}"),
            "hardware-address": mac,
            "ip-addresses": [ { "ip-address": ip, "ip-address-type": "ipv4", "prefix": prefix } ],
            "statistics": { "rx-bytes": 0, "rx-dropped": 0, "rx-errs": 0, "rx-packets": 0, "tx-bytes": 0, "tx-dropped": 0, "tx-errs": 0, "tx-packets": 0 }
        }));
    }
    Ok(json!({ "result": ifaces }).into())
}
