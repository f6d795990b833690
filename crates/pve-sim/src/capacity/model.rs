//! The parameters of the capacity model (`capacity:` in the cluster YAML) and the cost class of
//! each API call. Sources and which numbers are estimates: `docs/pve-sim-capacity.md`.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};

/// What a real Proxmox VE node can do at once, and how long things take on it. Absent from the
/// cluster YAML, the simulator runs every call and task at once at no cost (as before).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CapacityModel {
    /// pveproxy workers per node: they run the non-`protected` methods (PVE: 3).
    pub proxy_workers: u32,
    /// pvedaemon workers per node: they run the `protected` methods, task polls and logins
    /// included (PVE: 3; 9.x: `MAX_WORKERS` 1..127).
    pub daemon_workers: u32,
    /// How long pveproxy waits for an answer before the client gets `596 Connection timed out`
    /// (AnyEvent::HTTP `timeout => 30`).
    pub proxy_timeout_ms: u64,
    /// How long each class of synchronous call holds its worker.
    pub call_cost_ms: CallCosts,
    /// How long the VM config flock is waited for, per kind of locker.
    pub flock_timeout_ms: FlockTimeouts,
    /// How long a disk allocation waits for its storage's allocation lock (PVE: 10 s).
    pub storage_lock_timeout_ms: u64,
    /// How long one disk allocation holds the storage lock (lvcreate, `zfs create`, ...).
    pub alloc_ms_per_disk: u64,
    /// Copy bandwidth of every storage (MiB/s), shared equally by the full clones copying to it.
    pub copy_bandwidth_mib_s: f64,
    /// Per-storage bandwidth overrides (MiB/s), by storage id.
    pub storage_bandwidth_mib_s: BTreeMap<String, f64>,
    /// What a `qmcreate` task takes besides its disk allocations.
    pub create_task_ms: u64,
    /// What a linked clone takes besides its allocation (PVE: "nearly instantaneous").
    pub linked_clone_ms: u64,
    /// What a `qmstart` takes for a small VM.
    pub start_base_ms: u64,
    /// What a `qmstart` takes in addition per GiB of memory.
    pub start_ms_per_gib: u64,
}

/// Worker time per class of synchronous call, in ms (see [`CallClass`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CallCosts {
    /// `/version`, `/cluster/nextid`, `/cluster/resources`, `/nodes`, lists and other reads.
    pub light_read: u64,
    /// `GET …/qemu/{vmid}/config` and `…/pending`.
    pub config_read: u64,
    /// `GET /nodes/{node}/tasks/{upid}/status` and `…/log`.
    pub task_status: u64,
    /// `GET …/status/current` (QMP queries).
    pub status_current: u64,
    /// `GET /nodes/{node}/qemu`: this plus [`CallCosts::list_vms_per_vm`] per VM on the node.
    pub list_vms_base: u64,
    /// `GET /nodes/{node}/qemu`, per VM on the node.
    pub list_vms_per_vm: u64,
    /// `PUT`/`POST …/config`, resize, cloud-init regeneration.
    pub config_write: u64,
    /// `POST /nodes/{node}/qemu` (create_and_lock_config and the checks before the fork).
    pub create: u64,
    /// `POST …/clone`.
    pub clone: u64,
    /// `POST …/status/{start,stop,shutdown,…}` and `DELETE …/qemu/{vmid}`.
    pub power: u64,
    /// `POST /access/ticket` (password check in pvedaemon).
    pub login: u64,
    /// Anything else.
    pub other: u64,
}

/// Timeouts of the per-VM config flock (`/var/lock/qemu-server/lock-<vmid>.conf`), in ms.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FlockTimeouts {
    /// `lock_config` (config updates, power tasks, destroy): 10 s.
    pub update: u64,
    /// `create_and_lock_config`: 5 s.
    pub create: u64,
    /// The create worker's `lock_config_full(…, 1)`: 1 s.
    pub create_worker: u64,
    /// The clone's source and target locks: 1 s.
    pub clone: u64,
}

impl Default for CapacityModel {
    fn default() -> Self {
        Self::pve_default()
    }
}

impl Default for CallCosts {
    fn default() -> Self {
        Self {
            light_read: 5,
            config_read: 10,
            task_status: 5,
            status_current: 20,
            list_vms_base: 10,
            list_vms_per_vm: 1,
            config_write: 50,
            create: 100,
            clone: 100,
            power: 30,
            login: 50,
            other: 20,
        }
    }
}

impl Default for FlockTimeouts {
    fn default() -> Self {
        Self {
            update: 10_000,
            create: 5_000,
            create_worker: 1_000,
            clone: 1_000,
        }
    }
}

impl CapacityModel {
    /// A default PVE node: 3 + 3 workers, the source's timeouts, and estimated costs and
    /// durations (`docs/pve-sim-capacity.md` says which are which).
    pub fn pve_default() -> Self {
        Self {
            proxy_workers: 3,
            daemon_workers: 3,
            proxy_timeout_ms: 30_000,
            call_cost_ms: CallCosts::default(),
            flock_timeout_ms: FlockTimeouts::default(),
            storage_lock_timeout_ms: 10_000,
            alloc_ms_per_disk: 200,
            copy_bandwidth_mib_s: 500.0,
            storage_bandwidth_mib_s: BTreeMap::new(),
            create_task_ms: 500,
            linked_clone_ms: 1_000,
            start_base_ms: 3_000,
            start_ms_per_gib: 100,
        }
    }

    /// The preset called `name` (`pve_default`, or its alias `realistic`).
    pub fn preset(name: &str) -> Option<Self> {
        matches!(name, "pve_default" | "realistic").then(Self::pve_default)
    }

    /// Copy bandwidth of `storage` in bytes per ms.
    pub fn bytes_per_ms(&self, storage: &str) -> f64 {
        let mib_s = self
            .storage_bandwidth_mib_s
            .get(storage)
            .copied()
            .unwrap_or(self.copy_bandwidth_mib_s);
        (mib_s * (1u64 << 20) as f64 / 1000.0).max(f64::MIN_POSITIVE)
    }

    /// How long a `qmstart` of a VM with `memory_mib` takes.
    pub fn start_ms(&self, memory_mib: u64) -> u64 {
        self.start_base_ms + self.start_ms_per_gib * memory_mib / 1024
    }

    /// How long the task of type `kind` waits for a VM's config flock held by another task.
    pub fn task_flock_timeout_ms(&self, kind: &str) -> u64 {
        match kind {
            "qmcreate" => self.flock_timeout_ms.create_worker,
            "qmclone" => self.flock_timeout_ms.clone,
            _ => self.flock_timeout_ms.update,
        }
    }

    /// Worker time of one call of `class` on a node holding `vms_on_node` VMs.
    pub fn cost_ms(&self, class: CallClass, vms_on_node: u64) -> u64 {
        let c = &self.call_cost_ms;
        match class {
            CallClass::LightRead => c.light_read,
            CallClass::ConfigRead => c.config_read,
            CallClass::TaskStatus => c.task_status,
            CallClass::StatusCurrent => c.status_current,
            CallClass::ListVms => c.list_vms_base + c.list_vms_per_vm * vms_on_node,
            CallClass::ConfigWrite => c.config_write,
            CallClass::Create => c.create,
            CallClass::Clone => c.clone,
            CallClass::Power => c.power,
            CallClass::Login => c.login,
            CallClass::Other => c.other,
        }
    }
}

/// `capacity: pve_default` (or `realistic`) or `capacity: {…}` (missing keys keep
/// [`CapacityModel::pve_default`]'s values).
pub fn deserialize_capacity<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<CapacityModel>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Preset(String),
        Model(Box<CapacityModel>),
    }
    match Option::<Raw>::deserialize(d)? {
        None => Ok(None),
        Some(Raw::Model(m)) => Ok(Some(*m)),
        Some(Raw::Preset(name)) => CapacityModel::preset(&name).map(Some).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "unknown capacity preset '{name}': use 'pve_default' (or 'realistic'), or give the parameters"
            ))
        }),
    }
}

/// The cost class of an API call: what its synchronous part does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallClass {
    /// A cheap read.
    LightRead,
    /// A VM config read.
    ConfigRead,
    /// A task status or log poll.
    TaskStatus,
    /// `status/current`.
    StatusCurrent,
    /// `GET /nodes/{node}/qemu`.
    ListVms,
    /// A VM config write.
    ConfigWrite,
    /// A create request.
    Create,
    /// A clone request.
    Clone,
    /// A power or destroy request.
    Power,
    /// A login.
    Login,
    /// Anything else.
    Other,
}

impl CallClass {
    /// The class of `method template` (a path template as in the schema).
    pub fn of(method: &str, template: &str) -> Self {
        const QEMU: &str = "/nodes/{node}/qemu/{vmid}";
        match (method, template) {
            ("POST", "/access/ticket") => CallClass::Login,
            ("POST", "/nodes/{node}/qemu") => CallClass::Create,
            ("GET", "/nodes/{node}/qemu") => CallClass::ListVms,
            ("GET", t) if t.starts_with("/nodes/{node}/tasks/{upid}") => CallClass::TaskStatus,
            ("GET", t) if t == format!("{QEMU}/status/current") => CallClass::StatusCurrent,
            ("GET", t) if t == format!("{QEMU}/config") || t == format!("{QEMU}/pending") => {
                CallClass::ConfigRead
            }
            ("GET", _) => CallClass::LightRead,
            ("POST", t) if t == format!("{QEMU}/clone") => CallClass::Clone,
            ("DELETE", QEMU) => CallClass::Power,
            (_, t) if t.starts_with(&format!("{QEMU}/status/")) => CallClass::Power,
            (_, t) if t.starts_with(QEMU) => CallClass::ConfigWrite,
            _ => CallClass::Other,
        }
    }

    /// Whether the method is `protected` (runs in pvedaemon rather than pveproxy), from the
    /// schema ([`super::unprotected::UNPROTECTED`]).
    pub fn protected(method: &str, template: &str) -> bool {
        !super::unprotected::UNPROTECTED
            .iter()
            .any(|(m, p)| *m == method && *p == template)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_fall_into_their_classes_and_pools() {
        assert_eq!(
            CallClass::of("GET", "/nodes/{node}/tasks/{upid}/status"),
            CallClass::TaskStatus
        );
        assert_eq!(
            CallClass::of("PUT", "/nodes/{node}/qemu/{vmid}/config"),
            CallClass::ConfigWrite
        );
        assert_eq!(
            CallClass::of("POST", "/nodes/{node}/qemu/{vmid}/status/start"),
            CallClass::Power
        );
        assert!(CallClass::protected(
            "GET",
            "/nodes/{node}/tasks/{upid}/status"
        ));
        assert!(CallClass::protected("POST", "/access/ticket"));
        assert!(CallClass::protected("GET", "/nodes/{node}/qemu"));
        assert!(!CallClass::protected("GET", "/cluster/resources"));
        assert!(!CallClass::protected(
            "GET",
            "/nodes/{node}/qemu/{vmid}/config"
        ));
    }

    #[test]
    fn the_cluster_yaml_turns_the_model_on_by_preset_or_parameters_and_leaves_it_off_by_default() {
        let nodes = "nodes:\n  - {name: pve, cpus: 4, memory: 8G}\ntemplates: []\n";
        let off = crate::ClusterConfig::from_yaml(nodes).expect("valid");
        assert_eq!(off.capacity, None);
        assert_eq!(off.vm_flock_timeout_ms(), off.flock_timeout_ms);
        let preset = crate::ClusterConfig::from_yaml(&format!("{nodes}capacity: pve_default\n"))
            .expect("valid");
        assert_eq!(preset.capacity, Some(CapacityModel::pve_default()));
        let custom =
            format!("{nodes}capacity:\n  daemon_workers: 1\n  flock_timeout_ms: {{update: 500}}\n");
        let custom = crate::ClusterConfig::from_yaml(&custom).expect("valid");
        assert_eq!(custom.vm_flock_timeout_ms(), 500);
        assert_eq!(custom.task_flock_timeout_ms("qmclone"), 1_000);
        let bad = crate::ClusterConfig::from_yaml(&format!("{nodes}capacity: fast\n"));
        assert!(bad.is_err());
    }

    #[test]
    fn the_documented_parameters_are_the_preset_with_one_override() {
        let doc = include_str!("../../../../docs/pve-sim-capacity.md");
        let start = doc
            .find("capacity:                      #")
            .expect("the example");
        let block = &doc[start..];
        let block = &block[..block.find("```").expect("its end")];
        let model: CapacityModel = serde_yaml::from_str::<BTreeMap<String, CapacityModel>>(block)
            .expect("the documented YAML parses")
            .remove("capacity")
            .expect("capacity");
        let mut want = CapacityModel::pve_default();
        want.storage_bandwidth_mib_s.insert("ceph".into(), 300.0);
        assert_eq!(model, want);
    }

    #[test]
    fn presets_and_partial_yaml_keep_the_defaults() {
        assert_eq!(
            CapacityModel::preset("realistic"),
            Some(CapacityModel::pve_default())
        );
        let m: CapacityModel =
            serde_yaml::from_str("daemon_workers: 8\ncall_cost_ms: {create: 7}\n").expect("yaml");
        assert_eq!((m.daemon_workers, m.proxy_workers), (8, 3));
        assert_eq!((m.call_cost_ms.create, m.call_cost_ms.clone), (7, 100));
        assert_eq!(m.cost_ms(CallClass::ListVms, 40), 10 + 40);
        assert_eq!(m.start_ms(4096), 3_000 + 400);
    }
}
