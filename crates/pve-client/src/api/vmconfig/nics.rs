//! Network devices (`netN`): the NIC models, encoding a NIC and decoding the form Proxmox returns.

use crate::error::{PveError, Result};
use crate::propstring::{PropertyString, PropertyStringBuilder, check};

/// A NIC model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NicModel {
    /// `virtio` (paravirtualised, recommended).
    Virtio,
    /// `e1000`.
    E1000,
    /// `e1000e`.
    E1000e,
    /// `rtl8139`.
    Rtl8139,
    /// `vmxnet3`.
    Vmxnet3,
}

impl NicModel {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            NicModel::Virtio => "virtio",
            NicModel::E1000 => "e1000",
            NicModel::E1000e => "e1000e",
            NicModel::Rtl8139 => "rtl8139",
            NicModel::Vmxnet3 => "vmxnet3",
        }
    }

    /// Parses a wire name.
    pub fn parse(s: &str) -> Option<Self> {
        [
            NicModel::Virtio,
            NicModel::E1000,
            NicModel::E1000e,
            NicModel::Rtl8139,
            NicModel::Vmxnet3,
        ]
        .into_iter()
        .find(|m| m.as_str() == s)
    }
}

/// A network device (`netN`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nic {
    /// The model.
    pub model: NicModel,
    /// The bridge (`vmbr0`).
    pub bridge: String,
    /// The VLAN tag (1..=4094).
    pub tag: Option<u16>,
    /// The MAC address; Proxmox generates one when absent.
    pub macaddr: Option<String>,
    /// Enable the Proxmox firewall on this NIC.
    pub firewall: Option<bool>,
    /// MTU (1..=65520; 1 = bridge MTU).
    pub mtu: Option<u16>,
    /// Disconnected.
    pub link_down: Option<bool>,
}

impl Nic {
    /// A NIC of `model` on `bridge`.
    pub fn new(model: NicModel, bridge: impl Into<String>) -> Self {
        Self {
            model,
            bridge: bridge.into(),
            tag: None,
            macaddr: None,
            firewall: None,
            mtu: None,
            link_down: None,
        }
    }

    /// Sets the VLAN tag.
    pub fn tag(mut self, tag: u16) -> Self {
        self.tag = Some(tag);
        self
    }

    /// Sets the MAC address.
    pub fn macaddr(mut self, mac: impl Into<String>) -> Self {
        self.macaddr = Some(mac.into());
        self
    }

    /// Sets the firewall flag.
    pub fn firewall(mut self, on: bool) -> Self {
        self.firewall = Some(on);
        self
    }

    /// Encodes as `virtio=MAC,bridge=vmbr0,tag=10,firewall=1` (Proxmox's canonical form).
    pub fn encode(&self, index: u8) -> Result<String> {
        let field = format!("net{index}");
        let mut b = PropertyStringBuilder::new(&field);
        match &self.macaddr {
            Some(mac) => b.push(self.model.as_str(), mac, check::mac)?,
            None => b.push("model", self.model.as_str(), check::word)?,
        };
        b.push("bridge", &self.bridge, check::bridge)?;
        if let Some(t) = self.tag {
            b.push("tag", &t.to_string(), check::vlan)?;
        }
        b.push_opt_bool("firewall", self.firewall);
        b.push_opt_bool("link_down", self.link_down);
        if let Some(m) = self.mtu {
            if !(1..=65520).contains(&m) {
                return Err(PveError::invalid_input(
                    format!("{field}.mtu"),
                    format!("{m} is outside 1..=65520"),
                ));
            }
            b.push_uint("mtu", u64::from(m));
        }
        Ok(b.build())
    }

    /// Decodes a `netN` value as Proxmox returns it (`virtio=BC:24:11:..,bridge=vmbr0,tag=10`).
    pub fn parse(value: &str) -> Result<Self> {
        let p = PropertyString::parse(value)?;
        let mut model = None;
        let mut macaddr = p.get("macaddr").map(str::to_owned);
        for (k, v) in p.entries() {
            match k {
                Some(k) if NicModel::parse(k).is_some() => {
                    model = NicModel::parse(k);
                    macaddr = Some(v.to_owned());
                }
                Some("model") | None => model = NicModel::parse(v).or(model),
                _ => {}
            }
        }
        let model = model.ok_or_else(|| {
            PveError::invalid_input("net", format!("{value:?} names no known NIC model"))
        })?;
        Ok(Self {
            model,
            bridge: p.get("bridge").unwrap_or_default().to_owned(),
            tag: p.get("tag").and_then(|t| t.parse().ok()),
            macaddr,
            firewall: p.get_bool("firewall"),
            mtu: p.get("mtu").and_then(|t| t.parse().ok()),
            link_down: p.get_bool("link_down"),
        })
    }
}
