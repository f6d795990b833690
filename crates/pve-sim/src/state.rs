//! The simulator's state: the persisted part ([`SimState`]: cluster, VMs, volumes, tasks,
//! access control, keys) and the run-time part ([`Sim`]: statistics, faults, dirty flag).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::access::AccessControl;
use crate::config::ClusterConfig;
use crate::error::SimError;
use crate::faults::Faults;
use crate::stats::Stats;
use crate::tasks::{Task, TaskAction, encode_upid};
use crate::tls::TlsMaterial;

/// Power state of a VM.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Power {
    /// Not running.
    Stopped,
    /// Running.
    Running,
    /// Paused (`qmpstatus: paused`).
    Paused,
}

/// One QEMU VM.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Vm {
    /// VMID.
    pub vmid: u32,
    /// Node it lives on.
    pub node: String,
    /// Current config (`key -> value` as in the config file; `description` unescaped).
    pub conf: BTreeMap<String, String>,
    /// Pending changes (`[PENDING]` section).
    pub pending: BTreeMap<String, String>,
    /// Keys pending deletion.
    pub pending_delete: Vec<String>,
    /// `lock` (`create`, `clone`, `destroyed`, ...).
    pub lock: Option<String>,
    /// Power state.
    pub power: Power,
    /// When it was started (seconds since the epoch).
    pub started_at: Option<u64>,
    /// When the VM was created (ms since the epoch); `/cluster/resources` shows it as `unknown`
    /// until the simulated RRD has seen it.
    #[serde(default)]
    pub created_ms: u64,
    /// The cloud-init options as they were when the cloud-init image was last generated (at
    /// start or `PUT .../cloudinit`); `GET .../cloudinit` shows changes since as pending.
    #[serde(default)]
    pub cloudinit: BTreeMap<String, String>,
}

impl Vm {
    /// A VM with an empty config.
    pub fn new(vmid: u32, node: &str) -> Self {
        Self {
            vmid,
            node: node.to_string(),
            conf: BTreeMap::new(),
            pending: BTreeMap::new(),
            pending_delete: Vec::new(),
            lock: None,
            power: Power::Stopped,
            started_at: None,
            created_ms: 0,
            cloudinit: BTreeMap::new(),
        }
    }

    /// Whether `template: 1`.
    pub fn is_template(&self) -> bool {
        self.conf.get("template").is_some_and(|v| v == "1")
    }

    /// Whether the guest agent is enabled (`agent: 1` or `agent: enabled=1,...`).
    pub fn agent_enabled(&self) -> bool {
        self.conf.get("agent").is_some_and(|v| {
            let first = v.split(',').next().unwrap_or("");
            first == "1" || first == "enabled=1" || v.split(',').any(|p| p == "enabled=1")
        })
    }

    /// The config file text (`qemu-server/<vmid>.conf`), whose SHA-1 is the `digest`.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if let Some(d) = self.conf.get("description") {
            for line in d.lines() {
                out.push('#');
                out.push_str(line);
                out.push('\n');
            }
        }
        if let Some(lock) = &self.lock {
            out.push_str(&format!("lock: {lock}\n"));
        }
        for (k, v) in &self.conf {
            if k != "description" {
                out.push_str(&format!("{k}: {v}\n"));
            }
        }
        if !self.pending.is_empty() || !self.pending_delete.is_empty() {
            out.push_str("\n[PENDING]\n");
            if !self.pending_delete.is_empty() {
                out.push_str(&format!("delete: {}\n", self.pending_delete.join(",")));
            }
            for (k, v) in &self.pending {
                out.push_str(&format!("{k}: {v}\n"));
            }
        }
        out
    }

    /// SHA-1 hex of the config file.
    pub fn digest(&self) -> String {
        let d = ring::digest::digest(
            &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
            self.render().as_bytes(),
        );
        d.as_ref().iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Memory in MiB (`memory` is `[current=]<MiB>`, default 512).
    pub fn memory_mib(&self) -> u64 {
        self.conf
            .get("memory")
            .map(|m| m.trim_start_matches("current="))
            .and_then(|m| m.split(',').next())
            .and_then(|m| m.parse().ok())
            .unwrap_or(512)
    }

    /// `sockets * cores` (or `vcpus`).
    pub fn cpus(&self) -> u64 {
        let get = |k: &str, d: u64| self.conf.get(k).and_then(|v| v.parse().ok()).unwrap_or(d);
        get("vcpus", get("sockets", 1) * get("cores", 1))
    }

    /// The VM name (`VM <vmid>` when unset).
    pub fn name(&self) -> String {
        self.conf
            .get("name")
            .cloned()
            .unwrap_or_else(|| format!("VM {}", self.vmid))
    }
}

/// One storage volume (disk image, ISO, cloud-init drive).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Volume {
    /// `storage:name`.
    pub volid: String,
    /// Storage id.
    pub storage: String,
    /// The node for node-local storages; `None` on shared storages.
    pub node: Option<String>,
    /// Size in bytes.
    pub size: u64,
    /// Owner VMID (none for ISOs).
    pub vmid: Option<u32>,
    /// Content type (`images`, `iso`).
    pub content: String,
    /// Format (`raw`, `qcow2`, `iso`).
    pub format: String,
}

/// A running task: its UPID, when it ends and the VM whose config lock it holds.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RunningTask {
    /// UPID.
    pub upid: String,
    /// End (ms since the epoch).
    pub end_ms: u64,
    /// VM.
    pub vmid: u32,
}

/// Secrets used to sign tickets and CSRF tokens.
#[derive(Clone, Serialize, Deserialize)]
pub struct AuthKeys {
    /// HMAC key of tickets (base64).
    pub ticket_key: String,
    /// HMAC key of CSRF prevention tokens (base64).
    pub csrf_key: String,
}

impl std::fmt::Debug for AuthKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuthKeys(***)")
    }
}

/// Everything that is persisted with `--state`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SimState {
    /// The cluster description.
    pub config: ClusterConfig,
    /// Users, groups, roles, ACLs, pools, tokens.
    pub access: AccessControl,
    /// Ticket and CSRF keys.
    pub keys: AuthKeys,
    /// TLS identity.
    pub tls: TlsMaterial,
    /// VMs by VMID.
    pub vms: BTreeMap<u32, Vm>,
    /// Volumes.
    pub volumes: Vec<Volume>,
    /// Tasks, oldest first.
    pub tasks: Vec<Task>,
    /// The running tasks (kept apart so that completing them needs no search of all tasks).
    pub running: Vec<RunningTask>,
    /// Next simulated pid.
    pub next_pid: u32,
    /// Deterministic generator state for MACs, UUIDs and pids.
    pub rng: u64,
    /// Clock offset in ms (tests age tickets with it).
    pub clock_offset_ms: i64,
    /// Simulated boot time (seconds since the epoch) for `pstart` and uptimes.
    pub boot_time: u64,
    /// The checksums of downloaded files ([`crate::storage_files`]), by node and volume.
    #[serde(default)]
    pub file_checksums: BTreeMap<String, BTreeMap<String, String>>,
}

/// The most tasks kept; older finished ones are dropped.
const MAX_TASKS: usize = 20_000;

impl SimState {
    /// A fresh state for `config` with `root@pam` having `root_password`.
    pub fn new(config: ClusterConfig, root_password: &str, now_ms: u64) -> Result<Self, SimError> {
        config.validate()?;
        let access = match &config.user_cfg {
            Some(text) => {
                let mut access = AccessControl::from_user_cfg(text, config.pve_version)
                    .map_err(|e| SimError::Config(e.to_string()))?;
                // PAM passwords are not in user.cfg: root@pam gets the given one.
                if access.user_passwd("root@pam", root_password).is_err() {
                    access
                        .user_add("root@pam", Some(root_password), Default::default())
                        .map_err(|e| SimError::Config(e.to_string()))?;
                }
                access
            }
            None => AccessControl::new_default(root_password, config.pve_version),
        };
        let names: Vec<String> = config.nodes.iter().map(|n| n.name.clone()).collect();
        let tls = TlsMaterial::generate(&names)?;
        let mut seed = [0u8; 8];
        let rng = ring::rand::SystemRandom::new();
        ring::rand::SecureRandom::fill(&rng, &mut seed)
            .map_err(|_| SimError::Tls("no randomness".into()))?;
        let mut state = Self {
            config,
            access,
            keys: AuthKeys {
                ticket_key: random_b64(&rng)?,
                csrf_key: random_b64(&rng)?,
            },
            tls,
            vms: BTreeMap::new(),
            volumes: Vec::new(),
            tasks: Vec::new(),
            running: Vec::new(),
            next_pid: 0x1000 + (u64::from_le_bytes(seed) % 0x8000) as u32,
            rng: u64::from_le_bytes(seed) | 1,
            clock_offset_ms: 0,
            boot_time: (now_ms / 1000).saturating_sub(86_400),
            file_checksums: BTreeMap::new(),
        };
        state.seed_inventory();
        Ok(state)
    }

    /// ISOs and templates from the config.
    fn seed_inventory(&mut self) {
        for iso in self.config.isos.clone() {
            let shared = self.config.storage(&iso.storage).is_some_and(|s| s.shared);
            let nodes: Vec<Option<String>> = if shared {
                vec![None]
            } else {
                self.config
                    .nodes
                    .iter()
                    .map(|n| Some(n.name.clone()))
                    .collect()
            };
            for node in nodes {
                self.volumes.push(Volume {
                    volid: format!("{}:iso/{}", iso.storage, iso.name),
                    storage: iso.storage.clone(),
                    node,
                    size: iso.size.0,
                    vmid: None,
                    content: "iso".to_string(),
                    format: "iso".to_string(),
                });
            }
        }
        for t in self.config.templates.clone() {
            let mut vm = Vm::new(t.vmid, &t.node);
            let vol = self.volume_name(&t.disk_storage, t.vmid, "base", 0);
            let node = self.volume_node(&t.disk_storage, &t.node);
            self.volumes.push(Volume {
                volid: vol.clone(),
                storage: t.disk_storage.clone(),
                node,
                size: t.disk_size.0,
                vmid: Some(t.vmid),
                content: "images".to_string(),
                format: self.image_format(&t.disk_storage).to_string(),
            });
            let mac = self.random_mac();
            let uuid = self.random_uuid();
            for (k, v) in [
                ("name", t.name.clone()),
                ("memory", t.memory_mib.to_string()),
                ("cores", t.cores.to_string()),
                ("sockets", "1".to_string()),
                ("scsihw", "virtio-scsi-single".to_string()),
                (
                    "scsi0",
                    format!(
                        "{vol},iothread=1,size={}",
                        crate::qemu::drive::format_size(t.disk_size.0)
                    ),
                ),
                ("net0", format!("virtio={mac},bridge={}", t.bridge)),
                ("ostype", "l26".to_string()),
                ("agent", "1".to_string()),
                ("boot", "order=scsi0;net0".to_string()),
                ("template", "1".to_string()),
                ("smbios1", format!("uuid={uuid}")),
                (
                    "meta",
                    format!("creation-qemu=9.0.2,ctime={}", self.boot_time),
                ),
            ] {
                vm.conf.insert(k.to_string(), v);
            }
            self.vms.insert(t.vmid, vm);
        }
    }

    /// The next value of the deterministic generator (splitmix64).
    pub fn next_random(&mut self) -> u64 {
        self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A MAC with the Proxmox prefix `BC:24:11`.
    pub fn random_mac(&mut self) -> String {
        let r = self.next_random();
        format!(
            "BC:24:11:{:02X}:{:02X}:{:02X}",
            r & 0xff,
            (r >> 8) & 0xff,
            (r >> 16) & 0xff
        )
    }

    /// A random (version 4) UUID.
    pub fn random_uuid(&mut self) -> String {
        let a = self.next_random();
        let b = self.next_random();
        format!(
            "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xfff,
            0x8000 | (b >> 48) & 0x3fff,
            b & 0xffff_ffff_ffff
        )
    }

    /// `raw` on block storages, `qcow2` on path-based ones.
    pub fn image_format(&self, storage: &str) -> &'static str {
        if self
            .config
            .storage(storage)
            .is_some_and(|s| s.is_path_based())
        {
            "qcow2"
        } else {
            "raw"
        }
    }

    /// The node a new volume on `storage` belongs to (`None` for shared storages).
    pub fn volume_node(&self, storage: &str, node: &str) -> Option<String> {
        if self.config.storage(storage).is_some_and(|s| s.shared) {
            None
        } else {
            Some(node.to_string())
        }
    }

    /// `storage:vm-100-disk-0` or `storage:100/vm-100-disk-0.qcow2`.
    pub fn volume_name(&self, storage: &str, vmid: u32, prefix: &str, n: u32) -> String {
        if self
            .config
            .storage(storage)
            .is_some_and(|s| s.is_path_based())
        {
            format!("{storage}:{vmid}/{prefix}-{vmid}-disk-{n}.qcow2")
        } else {
            format!("{storage}:{prefix}-{vmid}-disk-{n}")
        }
    }

    /// Bytes used on `storage` as seen from `node`.
    pub fn storage_used(&self, storage: &str, node: &str) -> u64 {
        let shared = self.config.storage(storage).is_some_and(|s| s.shared);
        self.volumes
            .iter()
            .filter(|v| v.storage == storage && (shared || v.node.as_deref() == Some(node)))
            .map(|v| v.size)
            .sum()
    }

    /// The volume `volid` as seen from `node`.
    pub fn volume(&self, volid: &str, node: &str) -> Option<&Volume> {
        self.volumes
            .iter()
            .find(|v| v.volid == volid && v.node.as_deref().is_none_or(|n| n == node))
    }

    /// Starts a task; returns its UPID.
    pub fn start_task(
        &mut self,
        node: &str,
        kind: &str,
        id: &str,
        user: &str,
        action: TaskAction,
        now_ms: u64,
    ) -> String {
        let pid = self.next_pid;
        self.next_pid = if self.next_pid >= 0x3F_FFFF {
            0x1000
        } else {
            self.next_pid + 1
        };
        let starttime = now_ms / 1000;
        let pstart = (now_ms / 10).saturating_sub(self.boot_time * 100);
        let upid = encode_upid(node, pid, pstart, starttime, kind, id, user);
        let duration = self.config.task_durations_ms.for_kind(kind);
        let vmid = action.held_flock(self.config.capacity.is_some());
        self.tasks.push(Task {
            upid: upid.clone(),
            node: node.to_string(),
            pid,
            pstart,
            starttime,
            kind: kind.to_string(),
            id: id.to_string(),
            user: user.to_string(),
            end_ms: now_ms + duration,
            exitstatus: None,
            endtime: None,
            log: Vec::new(),
            action,
            injected_failure: None,
        });
        self.running.push(RunningTask {
            upid: upid.clone(),
            end_ms: now_ms + duration,
            vmid,
        });
        if self.tasks.len() > MAX_TASKS
            && let Some(pos) = self.tasks.iter().position(|t| !t.running())
        {
            self.tasks.remove(pos);
        }
        upid
    }

    /// The task with this UPID.
    pub fn task(&self, upid: &str) -> Option<&Task> {
        self.tasks.iter().rev().find(|t| t.upid == upid)
    }

    /// The task with this UPID, mutable.
    pub fn task_mut(&mut self, upid: &str) -> Option<&mut Task> {
        self.tasks.iter_mut().rev().find(|t| t.upid == upid)
    }

    /// When the running tasks holding the config lock (flock) of `vmid` are done, if any.
    pub fn flock_busy_until(&self, vmid: u32) -> Option<u64> {
        self.running
            .iter()
            .filter(|r| r.vmid == vmid)
            .map(|r| r.end_ms)
            .max()
    }

    /// Moves the end of a running task (it waits for a lock, or fails earlier).
    pub fn set_task_end(&mut self, upid: &str, end_ms: u64) {
        if let Some(t) = self.task_mut(upid) {
            t.end_ms = end_ms;
        }
        if let Some(r) = self.running.iter_mut().find(|r| r.upid == upid) {
            r.end_ms = end_ms;
        }
    }

    /// Number of running tasks.
    pub fn tasks_in_flight(&self) -> usize {
        self.running.len()
    }
}

fn random_b64(rng: &ring::rand::SystemRandom) -> Result<String, SimError> {
    use base64::Engine;
    let mut key = [0u8; 32];
    ring::rand::SecureRandom::fill(rng, &mut key)
        .map_err(|_| SimError::Tls("no randomness".into()))?;
    Ok(base64::engine::general_purpose::STANDARD.encode(key))
}

/// The state shared by all requests.
pub struct Sim {
    /// Persisted state.
    pub state: SimState,
    /// Request and task counters.
    pub stats: Stats,
    /// The requests received, in order (reset with the stats).
    pub requests: crate::requests::RequestLog,
    /// Fault injection.
    pub faults: Faults,
    /// Whether the state changed since it was last persisted.
    pub dirty: bool,
    /// The state to return to on `/_sim/reset`.
    pub initial: SimState,
    /// Set by a handler that found a VM's config lock busy: when the holder is done (ms). The
    /// pipeline then waits (up to the flock timeout) and runs the handler again.
    pub lock_wait: Option<u64>,
    /// Set by the pipeline while it runs a request that a `lock_timeout` fault hit and whose
    /// config flock is taken inside its task ([`crate::qemu::flock_in_task`]): the handler
    /// makes that task fail with the lock timeout instead of answering a synchronous 500.
    pub lock_timeout_fault: bool,
    /// Downloads a handler started, for the pipeline to spawn once the state is unlocked.
    pub downloads: Vec<crate::storage_files::DownloadJob>,
    /// The capacity model's storage locks and copies.
    pub storages: crate::capacity::StorageRuntime,
}

impl Sim {
    /// Wraps a state; `initial` is what `/_sim/reset` returns to.
    pub fn new(state: SimState, initial: SimState) -> Self {
        Self {
            initial,
            state,
            stats: Stats::default(),
            requests: Default::default(),
            faults: Faults::default(),
            dirty: true,
            lock_wait: None,
            lock_timeout_fault: false,
            downloads: Vec::new(),
            storages: Default::default(),
        }
    }

    /// The simulator clock.
    pub fn now_ms(&self) -> u64 {
        crate::clock::now_ms(self.state.clock_offset_ms)
    }

    /// Counts an `/api2` request to `endpoint` from `caller` and logs its arrival.
    pub fn note_request(&mut self, endpoint: &str, caller: &str) {
        let now = self.now_ms();
        self.stats.count_request(endpoint, caller);
        self.requests.record(now, caller, endpoint);
    }

    /// Completes every task whose time has come, in start order.
    pub fn advance(&mut self, now_ms: u64) {
        if !self.state.running.iter().any(|r| r.end_ms <= now_ms) {
            return;
        }
        let (mut due, rest): (Vec<RunningTask>, Vec<RunningTask>) =
            std::mem::take(&mut self.state.running)
                .into_iter()
                .partition(|r| r.end_ms <= now_ms);
        self.state.running = rest;
        due.sort_by_key(|r| r.end_ms);
        for RunningTask { upid, .. } in due {
            crate::qemu::effects::complete_task(&mut self.state, &upid, now_ms);
            self.dirty = true;
        }
    }
}
