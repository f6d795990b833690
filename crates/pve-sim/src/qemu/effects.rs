//! What tasks do when their time has come: create and clone VMs (allocate disks), power
//! actions, resize, destroy. Every failure becomes the task's exit status.

use std::collections::BTreeMap;

use crate::qemu::alloc::{allocate_disk, free_vm_volumes};
use crate::qemu::drive::{
    Drive, Nic, drive_size, format_size, is_drive_key, is_net_key, parse_size,
};
use crate::state::{Power, SimState};
use crate::tasks::TaskAction;

/// Completes the task `upid`: applies its effect and records its exit status and log.
pub fn complete_task(state: &mut SimState, upid: &str, now_ms: u64) {
    let Some(task) = state.task(upid).cloned() else {
        return;
    };
    if !task.running() {
        return;
    }
    let mut log = Vec::new();
    let result = match &task.injected_failure {
        Some(msg) => {
            fail_cleanup(state, &task.action);
            Err(msg.clone())
        }
        None => apply(state, &task.action, &mut log, now_ms),
    };
    if let Some(t) = state.task_mut(upid) {
        t.log.extend(log);
        match result {
            Ok(()) => t.finish("OK", now_ms / 1000),
            Err(e) => t.finish(&e, now_ms / 1000),
        }
    }
}

/// Undoes the synchronous part of a task that fails before doing anything (injected failures,
/// stopped tasks).
pub fn fail_cleanup(state: &mut SimState, action: &TaskAction) {
    match action {
        TaskAction::Create { vmid, .. } => forget_vm(state, *vmid),
        TaskAction::Clone { newid, .. } => forget_vm(state, *newid),
        TaskAction::Destroy { vmid, locked, .. } => {
            if let Some(vm) = state.vms.get_mut(vmid)
                && vm.lock.as_deref() == Some("destroyed")
            {
                vm.lock = locked.clone();
            }
        }
        _ => {}
    }
}

/// Removes a VM that was never finished (create or clone failed), its volumes and pool membership.
fn forget_vm(state: &mut SimState, vmid: u32) {
    free_vm_volumes(state, vmid, true);
    state.vms.remove(&vmid);
    state.access.pool_remove_vm(vmid);
}

fn not_running(vmid: u32) -> String {
    format!("VM {vmid} not running")
}

fn apply(
    state: &mut SimState,
    action: &TaskAction,
    log: &mut Vec<String>,
    now_ms: u64,
) -> Result<(), String> {
    match action {
        TaskAction::Create { vmid, start, conf } => create(state, *vmid, *start, conf, log, now_ms),
        TaskAction::Start { vmid } => start_vm(state, *vmid, log, now_ms),
        TaskAction::Stop { vmid } => {
            let vm = state.vms.get_mut(vmid).ok_or_else(|| missing(*vmid))?;
            vm.power = Power::Stopped;
            vm.started_at = None;
            apply_pending(vm);
            Ok(())
        }
        TaskAction::Shutdown { vmid, .. } => {
            let vm = state.vms.get_mut(vmid).ok_or_else(|| missing(*vmid))?;
            if vm.power == Power::Paused {
                return Err("VM quit/powerdown failed - got timeout".to_string());
            }
            vm.power = Power::Stopped;
            vm.started_at = None;
            apply_pending(vm);
            Ok(())
        }
        TaskAction::Reboot { vmid } => {
            let vm = state.vms.get_mut(vmid).ok_or_else(|| missing(*vmid))?;
            if vm.power == Power::Stopped {
                return Err(not_running(*vmid));
            }
            apply_pending(vm);
            vm.power = Power::Running;
            vm.started_at = Some(now_ms / 1000);
            Ok(())
        }
        TaskAction::Reset { vmid } => {
            let vm = state.vms.get_mut(vmid).ok_or_else(|| missing(*vmid))?;
            if vm.power == Power::Stopped {
                return Err(not_running(*vmid));
            }
            vm.power = Power::Running;
            Ok(())
        }
        TaskAction::Suspend { vmid } => {
            let vm = state.vms.get_mut(vmid).ok_or_else(|| missing(*vmid))?;
            if vm.power == Power::Stopped {
                return Err(not_running(*vmid));
            }
            vm.power = Power::Paused;
            Ok(())
        }
        TaskAction::Resume { vmid } => {
            let vm = state.vms.get_mut(vmid).ok_or_else(|| missing(*vmid))?;
            if vm.power == Power::Stopped {
                return Err(not_running(*vmid));
            }
            vm.power = Power::Running;
            Ok(())
        }
        TaskAction::Destroy {
            vmid,
            destroy_unreferenced,
            locked,
        } => {
            if let Some(lock) = locked {
                return Err(format!("VM is locked ({lock})"));
            }
            let vm = state.vms.get(vmid).ok_or_else(|| missing(*vmid))?;
            if let Some(lock) = vm.lock.as_deref().filter(|l| *l != "destroyed") {
                return Err(format!("VM is locked ({lock})"));
            }
            if vm.power != Power::Stopped {
                return Err(format!("VM {vmid} is running - destroy failed"));
            }
            free_vm_volumes(state, *vmid, *destroy_unreferenced);
            state.vms.remove(vmid);
            state.access.remove_vm(*vmid);
            log.push(format!("Removed VM {vmid}"));
            Ok(())
        }
        TaskAction::Clone {
            vmid,
            newid,
            full,
            storage,
        } => clone(state, *vmid, *newid, *full, storage.as_deref(), log, now_ms),
        TaskAction::Config { .. } => Ok(()),
        TaskAction::Resize { vmid, disk, size } => resize(state, *vmid, disk, size, log),
        // Ended by its fetch (crate::storage_files), never by the clock.
        TaskAction::Download { .. } => Ok(()),
        TaskAction::DeleteVolume { volid, node } => {
            crate::storage_files::remove_volume(state, volid, node.as_deref(), log)
        }
    }
}

fn missing(vmid: u32) -> String {
    format!("Configuration file 'qemu-server/{vmid}.conf' does not exist")
}

/// Moves pending changes into the config (on stop, shutdown, reboot).
pub fn apply_pending(vm: &mut crate::state::Vm) {
    for k in std::mem::take(&mut vm.pending_delete) {
        vm.conf.remove(&k);
    }
    let pending = std::mem::take(&mut vm.pending);
    vm.conf.extend(pending);
}

fn create(
    state: &mut SimState,
    vmid: u32,
    start: bool,
    requested: &BTreeMap<String, String>,
    log: &mut Vec<String>,
    now_ms: u64,
) -> Result<(), String> {
    let node = state
        .vms
        .get(&vmid)
        .map(|v| v.node.clone())
        .ok_or_else(|| missing(vmid))?;
    let default_storage = requested.get("__storage").cloned();
    let mut conf = BTreeMap::new();
    let mut result = Ok(());
    for (key, value) in requested {
        if key.starts_with("__") {
            continue;
        }
        if is_drive_key(key) {
            match allocate_disk(state, vmid, &node, key, value, default_storage.as_deref()) {
                Ok((v, created)) => {
                    if created {
                        log.push(format!("{key}: successfully created disk '{v}'"));
                    }
                    conf.insert(key.clone(), v);
                }
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        } else {
            conf.insert(key.clone(), value.clone());
        }
    }
    if let Err(e) = result {
        forget_vm(state, vmid);
        return Err(format!("unable to create VM {vmid} - {e}"));
    }
    if !conf.contains_key("smbios1") {
        conf.insert("smbios1".into(), format!("uuid={}", state.random_uuid()));
    }
    if !conf.contains_key("vmgenid") {
        conf.insert("vmgenid".into(), state.random_uuid());
    }
    conf.insert(
        "meta".into(),
        format!("creation-qemu=9.2.0,ctime={}", now_ms / 1000),
    );
    if !conf.contains_key("boot") {
        conf.insert("boot".into(), default_boot(&conf));
    }
    if let Some(vm) = state.vms.get_mut(&vmid) {
        vm.conf = conf;
        vm.lock = None;
    }
    if start {
        log.push("Execute autostart".to_string());
        start_vm(state, vmid, log, now_ms)?;
    }
    Ok(())
}

/// `order=<first disk>;<first cdrom>;<first nic>` as `get_default_bootdevices`.
pub fn default_boot(conf: &BTreeMap<String, String>) -> String {
    let mut order = Vec::new();
    let is_cd = |k: &str, v: &str| Drive::parse(k, v).is_some_and(|d| d.is_cdrom());
    let mut drives: Vec<(&String, &String)> = conf
        .iter()
        .filter(|(k, _)| is_drive_key(k) && !k.starts_with("efidisk") && !k.starts_with("tpmstate"))
        .collect();
    drives.sort_by_key(|(k, _)| bus_order(k));
    if let Some((k, _)) = drives.iter().find(|(k, v)| !is_cd(k, v)) {
        order.push((*k).clone());
    }
    if let Some((k, _)) = drives.iter().find(|(k, v)| is_cd(k, v)) {
        order.push((*k).clone());
    }
    let mut nets: Vec<&String> = conf.keys().filter(|k| is_net_key(k)).collect();
    nets.sort_by_key(|k| k.trim_start_matches("net").parse::<u32>().unwrap_or(0));
    if let Some(n) = nets.first() {
        order.push((*n).clone());
    }
    format!("order={}", order.join(";"))
}

fn bus_order(key: &str) -> (u32, u32) {
    let (bus, rank) = [("ide", 0), ("sata", 1), ("scsi", 2), ("virtio", 3)]
        .into_iter()
        .find(|(b, _)| key.starts_with(b))
        .unwrap_or(("", 9));
    (rank, key[bus.len()..].parse().unwrap_or(0))
}

fn start_vm(
    state: &mut SimState,
    vmid: u32,
    log: &mut Vec<String>,
    now_ms: u64,
) -> Result<(), String> {
    let vm = state.vms.get(&vmid).ok_or_else(|| missing(vmid))?;
    if vm.is_template() {
        return Err("you can't start a vm if it's a template".to_string());
    }
    if let Some(lock) = &vm.lock {
        return Err(format!("VM is locked ({lock})"));
    }
    if vm.power != Power::Stopped {
        return Err(format!("VM {vmid} already running"));
    }
    crate::qemu::power::check_passthrough_at_start(state, vm)?;
    let node = vm.node.clone();
    let bridges = state
        .config
        .node(&node)
        .map(|n| n.bridges.clone())
        .unwrap_or_default();
    for (k, v) in &vm.conf {
        if is_net_key(k)
            && let Some(b) = Nic::parse(v)
                .as_ref()
                .and_then(|n| n.bridge().map(str::to_string))
            && !bridges.contains(&b)
        {
            return Err(format!("bridge '{b}' does not exist"));
        }
    }
    for (k, v) in &vm.conf {
        if is_drive_key(k)
            && let Some(d) = Drive::parse(k, v)
            && d.file.contains(':')
            && state.volume(&d.file, &node).is_none()
        {
            log.push(format!(
                "kvm: -drive file={},if=none,id=drive-{k}: Could not open '{}': No such file or directory",
                d.file, d.file
            ));
            return Err("start failed: QEMU exited with code 1".to_string());
        }
    }
    let want = vm.memory_mib() << 20;
    let used: u64 = state
        .vms
        .values()
        .filter(|v| v.node == node && v.power != Power::Stopped)
        .map(|v| v.memory_mib() << 20)
        .sum();
    let total = state.config.node(&node).map(|n| n.memory.0).unwrap_or(0);
    if used.saturating_add(want) > total {
        log.push(format!(
            "kvm: cannot set up guest memory 'pc.ram': Cannot allocate memory (VM {vmid} needs {}, {} of {} in use)",
            format_size(want),
            format_size(used),
            format_size(total)
        ));
        return Err("start failed: QEMU exited with code 1".to_string());
    }
    if let Some(vm) = state.vms.get_mut(&vmid) {
        apply_pending(vm);
        vm.power = Power::Running;
        vm.started_at = Some(now_ms / 1000);
        crate::qemu::cloudinit::regenerate(vm);
    }
    Ok(())
}

fn clone(
    state: &mut SimState,
    vmid: u32,
    newid: u32,
    full: bool,
    target_storage: Option<&str>,
    log: &mut Vec<String>,
    now_ms: u64,
) -> Result<(), String> {
    let src = state.vms.get(&vmid).cloned().ok_or_else(|| missing(vmid))?;
    let node = state
        .vms
        .get(&newid)
        .map(|v| v.node.clone())
        .ok_or_else(|| missing(newid))?;
    let mut conf = BTreeMap::new();
    let mut result = Ok(());
    for (key, value) in &src.conf {
        match key.as_str() {
            "template" | "smbios1" | "vmgenid" | "meta" => continue,
            k if k.starts_with("unused") => continue,
            _ => {}
        }
        if is_drive_key(key) {
            let Some(drive) = Drive::parse(key, value) else {
                continue;
            };
            if drive.is_cdrom() {
                conf.insert(key.clone(), value.clone());
                continue;
            }
            let size = drive_size(value);
            let storage = drive.storage().unwrap_or("").to_string();
            let res = if full {
                let target = target_storage.unwrap_or(&storage).to_string();
                let mut opts = drive.opts.clone();
                opts.remove("size");
                let mut req = Drive {
                    file: format!("{target}:{}", size as f64 / (1u64 << 30) as f64),
                    opts,
                };
                if size.is_multiple_of(1 << 30) {
                    req.file = format!("{target}:{}", size >> 30);
                }
                allocate_disk(state, newid, &node, key, &req.print(), None).map(|(v, _)| v)
            } else {
                crate::qemu::alloc::linked_clone_disk(state, newid, &node, &drive, size)
            };
            match res {
                Ok(v) => {
                    log.push(format!(
                        "create {} clone of drive {key} ({})",
                        if full { "full" } else { "linked" },
                        drive.file
                    ));
                    conf.insert(key.clone(), v);
                }
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        } else if is_net_key(key) {
            let mac = state.random_mac();
            let v = Nic::parse(value)
                .map(|mut n| {
                    n.mac = Some(mac);
                    n.print()
                })
                .unwrap_or_else(|| value.clone());
            conf.insert(key.clone(), v);
        } else {
            conf.insert(key.clone(), value.clone());
        }
    }
    if let Err(e) = result {
        forget_vm(state, newid);
        return Err(format!("clone failed: {e}"));
    }
    let existing = state
        .vms
        .get(&newid)
        .map(|v| v.conf.clone())
        .unwrap_or_default();
    for (k, v) in existing {
        conf.insert(k, v);
    }
    if !conf.contains_key("name") {
        conf.insert(
            "name".into(),
            format!("Copy-of-VM-{}", src.name().replace(' ', "-")),
        );
    }
    conf.insert("smbios1".into(), format!("uuid={}", state.random_uuid()));
    conf.insert("vmgenid".into(), state.random_uuid());
    conf.insert(
        "meta".into(),
        format!("creation-qemu=9.2.0,ctime={}", now_ms / 1000),
    );
    if let Some(vm) = state.vms.get_mut(&newid) {
        vm.conf = conf;
        vm.lock = None;
    }
    Ok(())
}

fn resize(
    state: &mut SimState,
    vmid: u32,
    disk: &str,
    size: &str,
    log: &mut Vec<String>,
) -> Result<(), String> {
    let vm = state.vms.get(&vmid).ok_or_else(|| missing(vmid))?;
    if let Some(lock) = &vm.lock {
        return Err(format!("VM is locked ({lock})"));
    }
    let value = vm
        .conf
        .get(disk)
        .cloned()
        .ok_or_else(|| format!("disk '{disk}' does not exist"))?;
    let drive =
        Drive::parse(disk, &value).ok_or_else(|| format!("disk '{disk}' does not exist"))?;
    if drive.is_cdrom() {
        return Err("you can't resize a cdrom".to_string());
    }
    let old = drive_size(&value);
    let new = match size.strip_prefix('+') {
        Some(rel) => old
            .saturating_add(parse_size(rel, true).ok_or_else(|| format!("invalid size '{size}'"))?),
        None => parse_size(size, true).ok_or_else(|| format!("invalid size '{size}'"))?,
    };
    if new < old {
        return Err("shrinking disks is not supported".to_string());
    }
    if new == old {
        return Ok(());
    }
    let node = vm.node.clone();
    let storage = drive.storage().unwrap_or("").to_string();
    let capacity = state
        .config
        .storage(&storage)
        .map(|s| s.capacity.0)
        .unwrap_or(0);
    if state
        .storage_used(&storage, &node)
        .saturating_add(new - old)
        > capacity
    {
        return Err(format!(
            "storage '{storage}' does not have enough free space"
        ));
    }
    if let Some(v) = state
        .volumes
        .iter_mut()
        .find(|v| v.volid == drive.file && v.node.as_deref().is_none_or(|n| n == node))
    {
        v.size = new;
    }
    let mut d = drive;
    d.opts.insert("size".into(), format_size(new));
    log.push(format!(
        "resized {disk} from {} to {}",
        format_size(old),
        format_size(new)
    ));
    if let Some(vm) = state.vms.get_mut(&vmid) {
        vm.conf.insert(disk.to_string(), d.print());
    }
    Ok(())
}
