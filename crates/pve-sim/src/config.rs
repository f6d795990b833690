//! The cluster the simulator pretends to be, read from YAML (with a built-in default).

use serde::{Deserialize, Deserializer, Serialize};

use crate::error::SimError;
use crate::version::PveVersion;

/// A byte size; in YAML either a number of bytes or a string with a unit (`64G`, `512M`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Size(pub u64);

impl Size {
    /// Parses `123`, `512K`, `64G`, `2T` (binary units).
    pub fn parse(text: &str) -> Option<Size> {
        let text = text.trim();
        let (num, mult) = match text.char_indices().last()? {
            (i, 'K' | 'k') => (&text[..i], 1u64 << 10),
            (i, 'M' | 'm') => (&text[..i], 1 << 20),
            (i, 'G' | 'g') => (&text[..i], 1 << 30),
            (i, 'T' | 't') => (&text[..i], 1 << 40),
            _ => (text, 1),
        };
        let value: f64 = num.trim().parse().ok()?;
        (value >= 0.0).then_some(Size((value * mult as f64) as u64))
    }
}

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            N(u64),
            S(String),
        }
        match Raw::deserialize(d)? {
            Raw::N(n) => Ok(Size(n)),
            Raw::S(s) => Size::parse(&s)
                .ok_or_else(|| serde::de::Error::custom(format!("invalid size '{s}'"))),
        }
    }
}

/// The whole simulated cluster.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterConfig {
    /// Cluster name; `None` for a standalone node (no `cluster` entry in `/cluster/status`).
    pub cluster_name: Option<String>,
    /// Which Proxmox VE this is (`"8.4"` or `"9.1"`; `9` means 9.1): privileges, roles,
    /// permission checks, parameters and answers follow that version.
    pub pve_version: PveVersion,
    /// What `/version` reports; by default that of `pve_version` ([`ClusterConfig::version_info`]).
    pub version: Option<VersionConfig>,
    /// Nodes.
    pub nodes: Vec<NodeConfig>,
    /// Storages.
    pub storages: Vec<StorageConfig>,
    /// ISO images present at start.
    pub isos: Vec<IsoConfig>,
    /// Template VMs present at start.
    pub templates: Vec<TemplateConfig>,
    /// How long each kind of task runs.
    pub task_durations_ms: TaskDurations,
    /// Authentication behaviour.
    pub auth: AuthConfig,
    /// Whether error bodies carry `"message"` (pve-http-server >= 5.2.0, PVE 8.3+); otherwise the
    /// message is only in the reason phrase.
    pub json_error_message: bool,
    /// The VMID range `/cluster/nextid` searches (datacenter.cfg `next-id`).
    pub nextid: NextIdConfig,
    /// An `/etc/pve/user.cfg` to start with (users, groups, roles, ACLs, pools, tokens).
    pub user_cfg: Option<String>,
    /// How long a new VM appears in `/cluster/resources` with only `id, vmid, node, type`,
    /// `status: unknown` (and the live `tags`, `lock`, `pool`) before pvestatd's RRD has it. Real
    /// PVE: up to about 10 s. 0 (the default) turns this off.
    pub rrd_delay_ms: u64,
    /// How long an operation waits for a VM's config lock held by a running task before it fails
    /// with `can't lock file '/var/lock/qemu-server/lock-<vmid>.conf' - got timeout` (PVE: 10 s).
    pub flock_timeout_ms: u64,
    /// Cluster resource mappings (`/cluster/mapping/pci`, `/cluster/mapping/usb`).
    pub mappings: MappingsConfig,
    /// How long after a VM starts its guest agent answers; until then agent calls fail with
    /// `QEMU guest agent is not running`, as on real PVE while the guest boots (tens of seconds).
    pub agent_boot_delay_ms: u64,
    /// The capacity model (API worker pools, locks, bandwidth, durations); absent = off: every
    /// call and task runs at once at no cost. `capacity: pve_default` for the preset.
    #[serde(
        default,
        deserialize_with = "crate::capacity::model::deserialize_capacity",
        skip_serializing_if = "Option::is_none"
    )]
    pub capacity: Option<crate::capacity::CapacityModel>,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        Self {
            cluster_name: None,
            pve_version: PveVersion::Pve9_1,
            version: None,
            nodes: vec![NodeConfig {
                name: "pve".to_string(),
                cpus: 16,
                memory: Size(64 << 30),
                bridges: vec!["vmbr0".to_string(), "vmbr1".to_string()],
                online: true,
            }],
            storages: vec![
                StorageConfig {
                    id: "local".to_string(),
                    r#type: "dir".to_string(),
                    content: vec!["iso".into(), "vztmpl".into(), "backup".into()],
                    capacity: Size(100 << 30),
                    shared: false,
                    nodes: None,
                },
                StorageConfig {
                    id: "local-lvm".to_string(),
                    r#type: "lvmthin".to_string(),
                    content: vec!["images".into(), "rootdir".into()],
                    capacity: Size(2 << 40),
                    shared: false,
                    nodes: None,
                },
            ],
            isos: vec![IsoConfig {
                storage: "local".to_string(),
                name: "debian-12.7.0-amd64-netinst.iso".to_string(),
                size: Size(661_651_456),
            }],
            templates: vec![TemplateConfig {
                vmid: 9000,
                node: "pve".to_string(),
                name: "debian-12-template".to_string(),
                memory_mib: 2048,
                cores: 2,
                disk_storage: "local-lvm".to_string(),
                disk_size: Size(8 << 30),
                bridge: "vmbr0".to_string(),
            }],
            task_durations_ms: TaskDurations::default(),
            auth: AuthConfig::default(),
            json_error_message: true,
            nextid: NextIdConfig::default(),
            user_cfg: None,
            rrd_delay_ms: 0,
            flock_timeout_ms: 10_000,
            agent_boot_delay_ms: 1_000,
            mappings: MappingsConfig::default(),
            capacity: None,
        }
    }
}

impl ClusterConfig {
    /// What `GET /version` answers: `version` when given, else that of `pve_version`.
    pub fn version_info(&self) -> VersionConfig {
        self.version
            .clone()
            .unwrap_or_else(|| VersionConfig::of(self.pve_version))
    }

    /// Parses a YAML cluster description and checks that it is consistent.
    pub fn from_yaml(text: &str) -> Result<Self, SimError> {
        let cfg: ClusterConfig =
            serde_yaml::from_str(text).map_err(|e| SimError::Config(e.to_string()))?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks references between nodes, storages, ISOs and templates.
    pub fn validate(&self) -> Result<(), SimError> {
        let err = |m: String| Err(SimError::Config(m));
        if let Some(v) = &self.version
            && v.release != self.pve_version.release()
        {
            return err(format!(
                "version.release '{}' is not pve_version '{}': set pve_version (and leave version out) to choose the Proxmox VE version",
                v.release, self.pve_version
            ));
        }
        if self.nodes.is_empty() {
            return err("at least one node is needed".into());
        }
        for t in &self.templates {
            if !self.nodes.iter().any(|n| n.name == t.node) {
                return err(format!(
                    "template {} is on unknown node '{}'",
                    t.vmid, t.node
                ));
            }
            if !self.storages.iter().any(|s| s.id == t.disk_storage) {
                return err(format!(
                    "template {} uses unknown storage '{}'",
                    t.vmid, t.disk_storage
                ));
            }
        }
        for iso in &self.isos {
            if !self.storages.iter().any(|s| s.id == iso.storage) {
                return err(format!(
                    "iso '{}' is on unknown storage '{}'",
                    iso.name, iso.storage
                ));
            }
        }
        Ok(())
    }

    /// How long a synchronous change waits for a VM's config flock (`lock_config`): the capacity
    /// model's `flock_timeout_ms.update` when on, else `flock_timeout_ms`.
    pub fn vm_flock_timeout_ms(&self) -> u64 {
        self.capacity
            .as_ref()
            .map_or(self.flock_timeout_ms, |m| m.flock_timeout_ms.update)
    }

    /// How long a task of type `kind` waits for a VM's config flock.
    pub fn task_flock_timeout_ms(&self, kind: &str) -> u64 {
        self.capacity
            .as_ref()
            .map_or(self.flock_timeout_ms, |m| m.task_flock_timeout_ms(kind))
    }

    /// The node called `name`.
    pub fn node(&self, name: &str) -> Option<&NodeConfig> {
        self.nodes.iter().find(|n| n.name == name)
    }

    /// The storage called `id`.
    pub fn storage(&self, id: &str) -> Option<&StorageConfig> {
        self.storages.iter().find(|s| s.id == id)
    }
}

/// `/version` contents.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VersionConfig {
    /// pve-manager version, `X.Y.Z`.
    pub version: String,
    /// `X.Y`.
    pub release: String,
    /// 16 hex digits.
    pub repoid: String,
}

impl Default for VersionConfig {
    fn default() -> Self {
        Self::of(PveVersion::Pve9_1)
    }
}

impl VersionConfig {
    /// What `/version` of a real `pve` of that version answers.
    pub fn of(pve: PveVersion) -> Self {
        let (version, repoid) = match pve {
            PveVersion::Pve8_4 => ("8.4.1", "2a5fa54a8503f96d"),
            // pve-manager 9.1.5 is the first 9.1 with the one `Authentication failed!` text.
            PveVersion::Pve9_1 => ("9.1.5", "2b0c6e4f9a1d7c35"),
        };
        Self {
            version: version.to_string(),
            release: pve.release().to_string(),
            repoid: repoid.to_string(),
        }
    }
}

/// One node.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// Node name.
    pub name: String,
    /// Logical CPUs.
    pub cpus: u32,
    /// Memory.
    pub memory: Size,
    /// Linux bridges (`vmbr0`, ...).
    #[serde(default)]
    pub bridges: Vec<String>,
    /// Whether the node is online.
    #[serde(default = "yes")]
    pub online: bool,
}

fn yes() -> bool {
    true
}

/// One storage.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageConfig {
    /// Storage id.
    pub id: String,
    /// Plugin type (`dir`, `lvmthin`, `zfspool`, `nfs`, `rbd`, ...).
    pub r#type: String,
    /// Content types (`images`, `iso`, `rootdir`, `vztmpl`, `backup`, `snippets`).
    pub content: Vec<String>,
    /// Capacity (per node for node-local storages).
    pub capacity: Size,
    /// Shared between nodes.
    #[serde(default)]
    pub shared: bool,
    /// Nodes the storage is available on (all when absent).
    #[serde(default)]
    pub nodes: Option<Vec<String>>,
}

impl StorageConfig {
    /// Whether the storage is available on `node`.
    pub fn on_node(&self, node: &str) -> bool {
        self.nodes
            .as_ref()
            .is_none_or(|ns| ns.iter().any(|n| n == node))
    }

    /// Whether the storage keeps images as files (`dir`, `nfs`, `cifs`, ...), so volume names
    /// look like `100/vm-100-disk-0.qcow2`.
    pub fn is_path_based(&self) -> bool {
        matches!(
            self.r#type.as_str(),
            "dir" | "nfs" | "cifs" | "glusterfs" | "cephfs" | "btrfs"
        )
    }
}

/// An ISO image present at start.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IsoConfig {
    /// Storage id.
    pub storage: String,
    /// File name.
    pub name: String,
    /// Size.
    pub size: Size,
}

/// A template VM present at start.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateConfig {
    /// VMID.
    pub vmid: u32,
    /// Node.
    pub node: String,
    /// Name.
    pub name: String,
    /// Memory in MiB.
    pub memory_mib: u64,
    /// Cores.
    pub cores: u32,
    /// Storage of its disk (`scsi0`).
    pub disk_storage: String,
    /// Disk size.
    pub disk_size: Size,
    /// Bridge of its NIC (`net0`).
    pub bridge: String,
}

/// Task durations in milliseconds, per task kind.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TaskDurations {
    /// `qmcreate`.
    pub create: u64,
    /// `qmstart`.
    pub start: u64,
    /// `qmstop`.
    pub stop: u64,
    /// `qmshutdown`.
    pub shutdown: u64,
    /// `qmreboot`.
    pub reboot: u64,
    /// `qmreset`, `qmpause`, `qmresume`.
    pub reset: u64,
    /// `qmdestroy`.
    pub destroy: u64,
    /// `qmclone`.
    pub clone: u64,
    /// `qmconfig`.
    pub config: u64,
    /// `resize`.
    pub resize: u64,
    /// Anything else.
    pub other: u64,
}

impl Default for TaskDurations {
    fn default() -> Self {
        Self {
            create: 300,
            start: 200,
            stop: 100,
            shutdown: 200,
            reboot: 300,
            reset: 100,
            destroy: 200,
            clone: 400,
            config: 100,
            resize: 100,
            other: 100,
        }
    }
}

impl TaskDurations {
    /// Durations close to a real node with fast storage (seconds, not milliseconds), for
    /// benchmarks: create 3 s, start 2 s, stop 1 s, shutdown 5 s, reboot 8 s, clone 10 s,
    /// destroy 2 s.
    pub fn realistic() -> Self {
        Self {
            create: 3_000,
            start: 2_000,
            stop: 1_000,
            shutdown: 5_000,
            reboot: 8_000,
            reset: 500,
            destroy: 2_000,
            clone: 10_000,
            config: 500,
            resize: 1_000,
            other: 1_000,
        }
    }

    /// The duration of a task of type `kind` (`qmcreate`, ...).
    pub fn for_kind(&self, kind: &str) -> u64 {
        match kind {
            "qmcreate" => self.create,
            "qmstart" => self.start,
            "qmstop" => self.stop,
            "qmshutdown" => self.shutdown,
            "qmreboot" => self.reboot,
            "qmreset" | "qmpause" | "qmresume" | "qmsuspend" => self.reset,
            "qmdestroy" => self.destroy,
            "qmclone" => self.clone,
            "qmconfig" => self.config,
            "resize" => self.resize,
            _ => self.other,
        }
    }
}

/// Authentication behaviour.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Wording of 401 reasons: `"8.4.17+"` (`Authentication failed!`) or `"8.0"` (the detailed
    /// older texts).
    pub error_style: AuthErrorStyle,
    /// Delay of authentication failures (PVE waits about 3 s); 0 by default.
    pub failure_delay_ms: u64,
    /// Ticket lifetime in seconds (PVE: 7200).
    pub ticket_lifetime_secs: u64,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            error_style: AuthErrorStyle::Unified,
            failure_delay_ms: 0,
            ticket_lifetime_secs: 7200,
        }
    }
}

/// Which PVE version's 401 reason phrases to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AuthErrorStyle {
    /// pve-manager >= 8.4.17 and PVE 9: `Authentication failed!`.
    #[serde(rename = "8.4.17+")]
    Unified,
    /// PVE 8.0 .. 8.4.16: `permission denied - invalid PVE ticket`, `invalid token value!`, ...
    #[serde(rename = "8.0")]
    Detailed,
}

/// The `/cluster/nextid` range.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NextIdConfig {
    /// Lowest id.
    pub lower: u32,
    /// One past the highest id.
    pub upper: u32,
}

impl Default for NextIdConfig {
    fn default() -> Self {
        Self {
            lower: 100,
            upper: 1_000_000,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn realistic_durations_are_slower_than_the_test_defaults() {
        let (fast, real) = (TaskDurations::default(), TaskDurations::realistic());
        assert!(real.create > fast.create && real.clone > fast.clone && real.start > fast.start);
    }

    #[test]
    fn default_config_round_trips_through_yaml() {
        let text = serde_yaml::to_string(&ClusterConfig::default()).expect("serialises");
        let back = ClusterConfig::from_yaml(&text).expect("parses");
        assert_eq!(serde_yaml::to_string(&back).expect("serialises"), text);
    }

    #[test]
    fn default_config_is_valid() {
        assert!(ClusterConfig::default().validate().is_ok());
    }

    #[test]
    fn yaml_sizes_accept_units_and_partial_configs_keep_defaults() {
        let cfg = ClusterConfig::from_yaml(
            "nodes:\n  - {name: n1, cpus: 4, memory: 8G, bridges: [vmbr0]}\ntemplates: []\ntask_durations_ms: {create: 5}\n",
        )
        .expect("valid yaml");
        assert_eq!(cfg.nodes[0].memory, Size(8 << 30));
        assert_eq!(cfg.task_durations_ms.create, 5);
        assert_eq!(cfg.task_durations_ms.start, 200);
        assert_eq!(cfg.storages.len(), 2);
    }

    #[test]
    fn template_on_unknown_node_is_rejected() {
        let res = ClusterConfig::from_yaml("nodes:\n  - {name: n1, cpus: 4, memory: 8G}\n");
        assert!(res.is_err());
    }
}

/// The cluster's resource mappings, as `/etc/pve/mapping/{pci,usb}.cfg` hold them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MappingsConfig {
    /// PCI mappings.
    pub pci: Vec<MappingConfig>,
    /// USB mappings.
    pub usb: Vec<MappingConfig>,
}

/// One mapping: a logical ID and its device per node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MappingConfig {
    /// The mapping ID.
    pub id: String,
    /// Its description.
    #[serde(default)]
    pub description: Option<String>,
    /// One property string per node device, as Proxmox stores them
    /// (`node=pve,path=0000:01:00.0,id=10de:24b0`, `node=pve,id=1050:0407`).
    #[serde(default)]
    pub map: Vec<String>,
    /// Whether the mapping's devices can provide mediated devices (a PCI mapping's `mdev`
    /// flag, "Use with mediated devices" in the GUI).
    #[serde(default)]
    pub mdev: bool,
}
