//! The decoded answers of the QEMU endpoints: the VM list, the current status, pending changes
//! and the guest agent's network interfaces.

use serde::Deserialize;

use crate::de;

/// An entry of `GET /nodes/{node}/qemu`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct QemuListEntry {
    /// The VMID.
    #[serde(deserialize_with = "de::u32")]
    pub vmid: u32,
    /// `running` or `stopped`.
    pub status: String,
    /// The name.
    #[serde(default)]
    pub name: Option<String>,
    /// Tags (`;`-separated).
    #[serde(default)]
    pub tags: Option<String>,
    /// The config lock, if any.
    #[serde(default)]
    pub lock: Option<String>,
    /// Whether it is a template.
    #[serde(default, deserialize_with = "de::opt_bool")]
    pub template: Option<bool>,
    /// CPUs.
    #[serde(default, deserialize_with = "de::opt_f64")]
    pub cpus: Option<f64>,
    /// Memory in bytes.
    #[serde(default, deserialize_with = "de::opt_u64")]
    pub maxmem: Option<u64>,
    /// Boot disk size in bytes.
    #[serde(default, deserialize_with = "de::opt_u64")]
    pub maxdisk: Option<u64>,
    /// Uptime in seconds.
    #[serde(default, deserialize_with = "de::opt_u64")]
    pub uptime: Option<u64>,
}

/// `GET /nodes/{node}/qemu/{vmid}/status/current`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct QemuStatus {
    /// The VMID.
    #[serde(default, deserialize_with = "de::opt_u32")]
    pub vmid: Option<u32>,
    /// `running` or `stopped`.
    pub status: String,
    /// The QMP state (`running`, `paused`, `prelaunch`, ...).
    #[serde(default)]
    pub qmpstatus: Option<String>,
    /// The name.
    #[serde(default)]
    pub name: Option<String>,
    /// The config lock, if any (the key is absent when unlocked).
    #[serde(default)]
    pub lock: Option<String>,
    /// Tags.
    #[serde(default)]
    pub tags: Option<String>,
    /// Whether the guest agent is enabled in the config.
    #[serde(default, deserialize_with = "de::opt_bool")]
    pub agent: Option<bool>,
    /// Whether it is a template.
    #[serde(default, deserialize_with = "de::opt_bool")]
    pub template: Option<bool>,
    /// CPUs.
    #[serde(default, deserialize_with = "de::opt_f64")]
    pub cpus: Option<f64>,
    /// CPU utilisation.
    #[serde(default, deserialize_with = "de::opt_f64")]
    pub cpu: Option<f64>,
    /// Memory in bytes.
    #[serde(default, deserialize_with = "de::opt_u64")]
    pub maxmem: Option<u64>,
    /// Used memory in bytes.
    #[serde(default, deserialize_with = "de::opt_u64")]
    pub mem: Option<u64>,
    /// Boot disk size in bytes.
    #[serde(default, deserialize_with = "de::opt_u64")]
    pub maxdisk: Option<u64>,
    /// Uptime in seconds.
    #[serde(default, deserialize_with = "de::opt_u64")]
    pub uptime: Option<u64>,
    /// The QEMU pid when running.
    #[serde(default, deserialize_with = "de::opt_u64")]
    pub pid: Option<u64>,
    /// The running QEMU version.
    #[serde(rename = "running-qemu", default)]
    pub running_qemu: Option<String>,
    /// HA state (`{"managed":0}`).
    #[serde(default)]
    pub ha: Option<serde_json::Value>,
}

impl QemuStatus {
    /// Whether the VM is running (and not paused).
    pub fn is_running(&self) -> bool {
        self.status == "running" && self.qmpstatus.as_deref().is_none_or(|q| q == "running")
    }
}

/// An entry of `GET /nodes/{node}/qemu/{vmid}/pending`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct PendingEntry {
    /// The config key.
    pub key: String,
    /// The current value.
    #[serde(default, deserialize_with = "de::opt_string")]
    pub value: Option<String>,
    /// The pending value.
    #[serde(default, deserialize_with = "de::opt_string")]
    pub pending: Option<String>,
    /// 1 = pending delete, 2 = pending force-delete.
    #[serde(default, deserialize_with = "de::opt_u32")]
    pub delete: Option<u32>,
}

/// The guest agent's answer to `network-get-interfaces`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct AgentNetworkInterfaces {
    /// The interfaces.
    #[serde(default)]
    pub result: Vec<AgentInterface>,
}

/// A guest network interface as reported by the agent.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct AgentInterface {
    /// The name inside the guest (`eth0`).
    pub name: String,
    /// The MAC address.
    #[serde(rename = "hardware-address", default)]
    pub hardware_address: Option<String>,
    /// The addresses.
    #[serde(rename = "ip-addresses", default)]
    pub ip_addresses: Vec<AgentIpAddress>,
}

/// An address of a guest interface.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct AgentIpAddress {
    /// The address.
    #[serde(rename = "ip-address")]
    pub ip_address: String,
    /// `ipv4` or `ipv6`.
    #[serde(rename = "ip-address-type")]
    pub ip_address_type: String,
    /// The prefix length.
    #[serde(default, deserialize_with = "de::opt_u32")]
    pub prefix: Option<u32>,
}
