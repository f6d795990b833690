//! Read endpoints of a VM: list, index, config, pending, status/current, guest agent.

use serde_json::{Map, Value, json};

use super::drive::{drive_size, is_drive_key, nic_macs};
use super::*;
use crate::error::ApiError;
use crate::router::{Ctx, Reply};
use crate::state::{Power, SimState, Vm};

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
    let mem = if running {
        (vm.memory_mib() << 20) / 2
    } else {
        0
    };
    m.insert("mem".into(), json!(mem));
    // PVE 9 (`vmstatus`): the host's (cgroup) view of the memory, 0 when stopped.
    if state.config.pve_version.is_pve9() {
        m.insert("memhost".into(), json!(mem));
    }
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

pub(super) fn list(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
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

pub(super) fn vm_index(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
    let node = ctx.param("node")?;
    load(&ctx.sim.state, &node, ctx.vmid()?)?;
    let dirs = [
        "config", "pending", "status", "agent", "clone", "resize", "snapshot", "firewall", "rrd",
        "rrddata",
    ];
    Ok(Value::Array(dirs.iter().map(|d| json!({ "subdir": d })).collect()).into())
}

pub(super) fn status_index(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
    let node = ctx.param("node")?;
    load(&ctx.sim.state, &node, ctx.vmid()?)?;
    let dirs = [
        "current", "start", "stop", "reset", "shutdown", "suspend", "reboot", "resume",
    ];
    Ok(Value::Array(dirs.iter().map(|d| json!({ "subdir": d })).collect()).into())
}

pub(super) fn get_config(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
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

pub(super) fn pending(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
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

pub(super) fn status_current(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
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

pub(super) fn agent_interfaces(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
    let node = ctx.param("node")?;
    let vmid = ctx.vmid()?;
    let vm = load(&ctx.sim.state, &node, vmid)?;
    // qemu-server's Agent.pm::assert_agent_available, in its order: an `agent` key at all, a
    // running VM, then an agent that answers (enabled, and the guest booted far enough).
    if !vm.conf.contains_key("agent") {
        return Err(ApiError::internal("No QEMU guest agent configured"));
    }
    if vm.power == Power::Stopped {
        return Err(ApiError::internal(format!("VM {vmid} is not running")));
    }
    let booted_ms = vm
        .started_at
        .map(|s| ctx.now_ms.saturating_sub(s.saturating_mul(1000)))
        .unwrap_or(0);
    if !vm.agent_enabled() || booted_ms < ctx.sim.state.config.agent_boot_delay_ms {
        return Err(ApiError::internal("QEMU guest agent is not running"));
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
    for (n, mac) in nic_macs(&vm.conf) {
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
