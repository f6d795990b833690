//! `/cluster`, `/cluster/resources`, `/cluster/status`, `/cluster/nextid`.

use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::config::{NodeConfig, StorageConfig};
use crate::error::ApiError;
use crate::qemu::drive;
use crate::router::{Ctx, Perm, Reply, Route};
use crate::state::{Power, SimState, Vm};

/// The `/cluster/resources` entry of `storage` on `node` (pool member lists use it too).
pub(crate) fn storage_resource(
    state: &SimState,
    storage: &StorageConfig,
    node: &NodeConfig,
) -> Value {
    json!({
        "id": format!("storage/{}/{}", node.name, storage.id),
        "storage": storage.id,
        "node": node.name,
        "type": "storage",
        "plugintype": storage.r#type,
        "status": if node.online { "available" } else { "unknown" },
        "shared": u8::from(storage.shared),
        "content": storage.content.join(","),
        "disk": state.storage_used(&storage.id, &node.name),
        "maxdisk": storage.capacity.0,
    })
}

/// The cluster routes.
pub fn routes() -> Vec<Route> {
    vec![
        Route::new("GET", "/cluster", Perm::All, |_| {
            let dirs = [
                "log",
                "options",
                "resources",
                "status",
                "tasks",
                "nextid",
                "backup",
                "ha",
                "sdn",
            ];
            Ok(Value::Array(dirs.iter().map(|d| json!({ "name": d })).collect()).into())
        }),
        Route::new("GET", "/cluster/resources", Perm::All, resources),
        Route::new(
            "GET",
            "/cluster/status",
            Perm::Check {
                path: "/",
                privs: &["Sys.Audit"],
                any: false,
            },
            status,
        ),
        Route::new("GET", "/cluster/nextid", Perm::All, nextid),
        Route::new("GET", "/cluster/mapping/pci", Perm::All, |ctx| {
            Ok(mappings(ctx, "pci").into())
        }),
        Route::new("GET", "/cluster/mapping/usb", Perm::All, |ctx| {
            Ok(mappings(ctx, "usb").into())
        }),
    ]
}

fn resources(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
    let filter = ctx.params.str("type");
    let want = |t: &str| filter.as_deref().is_none_or(|f| f == t);
    let state = &ctx.sim.state;
    let now = ctx.now_secs();
    let mut out = Vec::new();
    // VM entries are serialised straight from a struct: with thousands of VMs this list is the
    // biggest answer the simulator gives.
    let mut vm_entries: Vec<VmResource<'_>> = Vec::new();
    if want("vm") {
        for vm in state.vms.values() {
            if !ctx.check(&format!("/vms/{}", vm.vmid), &["VM.Audit"], false) {
                continue;
            }
            vm_entries.push(VmResource::of(state, vm, ctx.now_ms, now));
        }
    }
    if want("node") {
        for n in &state.config.nodes {
            let mut m = Map::new();
            m.insert("id".into(), json!(format!("node/{}", n.name)));
            m.insert("node".into(), json!(n.name));
            m.insert("type".into(), json!("node"));
            m.insert(
                "status".into(),
                json!(if n.online { "online" } else { "offline" }),
            );
            m.insert("level".into(), json!(""));
            if n.online && ctx.check(&format!("/nodes/{}", n.name), &["Sys.Audit"], false) {
                m.extend(super::nodes::node_stats(state, &n.name, now));
                m.insert("cgroup-mode".into(), json!(2));
            }
            out.push(Value::Object(m));
        }
    }
    if want("storage") {
        for n in &state.config.nodes {
            for s in state.config.storages.iter().filter(|s| s.on_node(&n.name)) {
                if !ctx.check(&format!("/storage/{}", s.id), &["Datastore.Audit"], false) {
                    continue;
                }
                out.push(storage_resource(state, s, n));
            }
        }
    }
    if filter.is_none() {
        for name in state.access.pools().keys() {
            if ctx.check(&format!("/pool/{name}"), &["Pool.Audit"], false) {
                out.push(json!({ "id": format!("/pool/{name}"), "pool": name, "type": "pool" }));
            }
        }
    }
    let zone_visible = ctx.check("/sdn/zones/localnetwork", &["SDN.Audit"], false);
    if state.config.pve_version.is_pve9() {
        // pve-manager 9.0.12+: every node broadcasts `network`, so zones are `network` entries
        // (no `type` filter selects them: the enum is still vm/storage/node/sdn) and there are
        // no `sdn` entries.
        if filter.is_none() && zone_visible {
            for n in &state.config.nodes {
                out.push(json!({
                    "id": format!("network/{}/zone/localnetwork", n.name),
                    "type": "network",
                    "network-type": "zone",
                    "network": "localnetwork",
                    "node": n.name,
                    "status": "ok",
                }));
            }
        }
    } else if want("sdn") && zone_visible {
        for n in &state.config.nodes {
            out.push(json!({
                "id": format!("sdn/{}/localnetwork", n.name),
                "sdn": "localnetwork",
                "node": n.name,
                "type": "sdn",
                "status": "ok",
            }));
        }
    }
    let mut text = serde_json::to_string(&vm_entries).unwrap_or_else(|_| "[]".to_string());
    if !out.is_empty() {
        let rest = Value::Array(out).to_string();
        text = if vm_entries.is_empty() {
            rest
        } else {
            // Join the two JSON arrays: drop `]` of the first and `[` of the second.
            format!("{},{}", &text[..text.len() - 1], &rest[1..])
        };
    }
    Ok(Reply::raw(text))
}

/// One `qemu` entry of `/cluster/resources`.
#[derive(Serialize)]
struct VmResource<'a> {
    id: String,
    vmid: u32,
    node: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    status: &'static str,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    stats: Option<VmStats>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tags: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    lock: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pool: Option<&'a str>,
}

/// The fields that come from pvestatd's RRD cache.
#[derive(Serialize)]
struct VmStats {
    name: String,
    template: u8,
    maxcpu: u64,
    cpu: f64,
    maxmem: u64,
    mem: u64,
    /// The host's view of the VM's memory (cgroup), PVE 9 only (the `pve-vm-9.0` RRD format).
    #[serde(skip_serializing_if = "Option::is_none")]
    memhost: Option<u64>,
    maxdisk: u64,
    disk: u64,
    uptime: u64,
    netin: u64,
    netout: u64,
    diskread: u64,
    diskwrite: u64,
}

impl<'a> VmResource<'a> {
    fn of(state: &'a SimState, vm: &'a Vm, now_ms: u64, now_secs: u64) -> Self {
        let running = vm.power != Power::Stopped;
        let rrd_delay = state.config.rrd_delay_ms;
        // Not yet in pvestatd's RRD cache: only the live fields, status unknown.
        let fresh = rrd_delay > 0 && now_ms < vm.created_ms.saturating_add(rrd_delay);
        let stats = (!fresh).then(|| {
            let maxmem = vm.memory_mib() << 20;
            let mem = if running { maxmem / 2 } else { 0 };
            VmStats {
                name: vm.name(),
                template: u8::from(vm.is_template()),
                maxcpu: vm.cpus(),
                cpu: if running { 0.01 } else { 0.0 },
                maxmem,
                mem,
                memhost: state.config.pve_version.is_pve9().then_some(mem),
                maxdisk: vm
                    .conf
                    .iter()
                    .filter(|(k, v)| drive::is_drive_key(k) && !v.contains("media=cdrom"))
                    .map(|(_, v)| drive::drive_size(v))
                    .next()
                    .unwrap_or(0),
                disk: 0,
                uptime: vm
                    .started_at
                    .map(|s| now_secs.saturating_sub(s))
                    .unwrap_or(0),
                netin: 0,
                netout: 0,
                diskread: 0,
                diskwrite: 0,
            }
        });
        Self {
            id: format!("qemu/{}", vm.vmid),
            vmid: vm.vmid,
            node: &vm.node,
            kind: "qemu",
            status: match (fresh, running) {
                (true, _) => "unknown",
                (false, true) => "running",
                (false, false) => "stopped",
            },
            stats,
            tags: vm.conf.get("tags").map(String::as_str),
            lock: vm.lock.as_deref(),
            pool: state.access.vm_pool(vm.vmid),
        }
    }
}

fn status(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
    let state = &ctx.sim.state;
    let mut out = Vec::new();
    let clustered = state.config.cluster_name.is_some();
    if let Some(name) = &state.config.cluster_name {
        out.push(json!({
            "type": "cluster", "id": "cluster", "name": name, "nodes": state.config.nodes.len(),
            "quorate": 1, "version": state.config.nodes.len() + 1,
        }));
    }
    for (i, n) in state.config.nodes.iter().enumerate() {
        out.push(json!({
            "type": "node", "id": format!("node/{}", n.name), "name": n.name, "online": u8::from(n.online),
            "local": u8::from(i == 0), "nodeid": if clustered { i + 1 } else { 0 },
            "ip": format!("127.0.0.{}", i + 1), "level": "",
        }));
    }
    Ok(Value::Array(out).into())
}

fn nextid(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
    let state = &ctx.sim.state;
    if let Some(id) = ctx.params.int("vmid") {
        let taken = u32::try_from(id).is_ok_and(|id| state.vms.contains_key(&id));
        if taken {
            return Err(ApiError::param("vmid", format!("VM {id} already exists")));
        }
        return Ok(Value::String(id.to_string()).into());
    }
    let (lower, upper) = (state.config.nextid.lower, state.config.nextid.upper);
    (lower..upper)
        .find(|id| !state.vms.contains_key(id))
        .map(|id| Value::String(id.to_string()).into())
        .ok_or_else(|| {
            ApiError::internal(format!(
                "unable to get any free VMID in range [{lower}, {upper}]"
            ))
        })
}

/// `GET /cluster/mapping/{kind}`: "Only lists entries where you have 'Mapping.Modify',
/// 'Mapping.Use' or 'Mapping.Audit' permissions on '/mapping/<kind>/<id>'."
fn mappings(ctx: &Ctx<'_>, kind: &str) -> Value {
    let config = &ctx.sim.state.config.mappings;
    let list = if kind == "pci" {
        &config.pci
    } else {
        &config.usb
    };
    let visible = list.iter().filter(|m| {
        ctx.check(
            &format!("/mapping/{kind}/{}", m.id),
            &["Mapping.Audit", "Mapping.Use", "Mapping.Modify"],
            true,
        )
    });
    Value::Array(
        visible
            .map(|m| {
                let mut entry = json!({ "id": m.id, "map": m.map });
                if let Some(d) = &m.description {
                    entry["description"] = json!(d);
                }
                if m.mdev {
                    entry["mdev"] = json!(1);
                }
                entry
            })
            .collect(),
    )
}
