//! Drift of the NICs and of cloud-init (drive, user, keys, IP configs, DNS).

use std::collections::BTreeSet;
use std::net::IpAddr;

use pve_client::api::vmconfig::{DiskSlot, Drive, IpConfig, Ipv4Config, Ipv6Config};
use pve_client::propstring::PropertyString;

use super::Planner;
use crate::vmspec::desired::{DesiredCloudInit, cloudinit_slot};
use crate::vmspec::error::SpecError;
use pve_client::api::vmconfig::DriveView;

/// The cloud-init keys a created VM without `spec.cloudInit` must not carry.
const CLOUD_INIT_KEYS: [&str; 4] = ["ciuser", "sshkeys", "nameserver", "searchdomain"];

impl Planner<'_> {
    pub(super) fn nics(&mut self) {
        let current = self.cur.nics();
        for nic in &self.d.nics {
            match current.get(&nic.index) {
                Some(c) if nic.matches(c) => {}
                c => {
                    self.plan.config.nics.insert(nic.index, nic.to_nic(c));
                }
            }
        }
        if self.defaults() || !self.d.nics.is_empty() {
            for key in self.cur.values.keys() {
                let Some(i) = key.strip_prefix("net").and_then(|i| i.parse::<u8>().ok()) else {
                    continue;
                };
                if key == &format!("net{i}") && !self.d.nics.iter().any(|n| n.index == i) {
                    self.plan.delete(key.clone());
                }
            }
        }
    }

    pub(super) fn cloud_init(&mut self) -> Result<(), SpecError> {
        let Some(ci) = &self.d.cloud_init else {
            if self.defaults() {
                for key in CLOUD_INIT_KEYS {
                    self.delete_if_default(key);
                }
                self.delete_ipconfigs_except(&BTreeSet::new());
                let drives: Vec<DiskSlot> = self
                    .drives
                    .iter()
                    .filter(|(_, v)| v.as_ref().is_some_and(DriveView::is_cloudinit))
                    .map(|(s, _)| *s)
                    .collect();
                for slot in drives {
                    self.plan.delete(slot.to_string());
                }
            }
            return Ok(());
        };
        self.cloud_init_drive(ci)?;
        let cur = self.cur;
        match &ci.user {
            Some(u) => {
                if cur.get("ciuser") != Some(u.as_str()) {
                    self.plan.config.ciuser = Some(u.clone());
                }
            }
            None => self.delete_if_default("ciuser"),
        }
        if ci.sshkeys.is_empty() {
            self.delete_if_default("sshkeys");
        } else if cur.sshkeys() != ci.sshkeys {
            self.plan.config.sshkeys = ci.sshkeys.clone();
        }
        for (i, (_, want)) in &ci.ipconfigs {
            let key = format!("ipconfig{i}");
            if !ipconfig_matches(cur.get(&key), want) {
                self.plan.config.ipconfigs.insert(*i, want.clone());
            }
        }
        if self.defaults() || !ci.ipconfigs.is_empty() {
            let keep = ci.ipconfigs.keys().copied().collect();
            self.delete_ipconfigs_except(&keep);
        }
        if ci.nameservers.is_empty() {
            self.delete_if_default("nameserver");
        } else {
            let have: Vec<IpAddr> = cur
                .get("nameserver")
                .unwrap_or_default()
                .split([' ', ',', ';'])
                .filter_map(|s| s.trim().parse().ok())
                .collect();
            if have != ci.nameservers {
                self.plan.config.nameservers = ci.nameservers.clone();
            }
        }
        match &ci.searchdomain {
            Some(s) => {
                if cur.get("searchdomain").map(str::trim) != Some(s.as_str()) {
                    self.plan.config.searchdomain = Some(s.clone());
                }
            }
            None => self.delete_if_default("searchdomain"),
        }
        Ok(())
    }

    fn cloud_init_drive(&mut self, ci: &DesiredCloudInit) -> Result<(), SpecError> {
        let present = self
            .drives
            .values()
            .any(|v| v.as_ref().is_some_and(DriveView::is_cloudinit));
        if present {
            return Ok(());
        }
        // The storage: the spec's, else the first disk's, else (a template clone without
        // spec.disks) the storage of the VM's first hard disk.
        let storage = ci
            .storage
            .clone()
            .or_else(|| {
                self.drives.values().flatten().find_map(|v| {
                    (!v.is_cdrom())
                        .then(|| v.storage().map(str::to_owned))
                        .flatten()
                })
            })
            .ok_or_else(|| {
                SpecError::invalid(
                    "spec.cloudInit.storage",
                    "is required: the VM has no disk to take the storage from",
                )
            })?;
        let taken = |s: DiskSlot| {
            self.drives.contains_key(&s)
                || self.plan.config.drives.contains_key(&s)
                || self.d.disks.iter().any(|d| d.slot == s)
        };
        let slot = cloudinit_slot(taken).ok_or_else(|| {
            SpecError::invalid(
                "spec.cloudInit",
                "needs a free ide or sata slot for the cloud-init drive, and the VM has none",
            )
        })?;
        self.plan
            .config
            .drives
            .insert(slot, Drive::CloudInit { storage });
        Ok(())
    }

    fn delete_ipconfigs_except(&mut self, keep: &BTreeSet<u8>) {
        let keys: Vec<String> = self
            .cur
            .values
            .keys()
            .filter(|k| {
                k.strip_prefix("ipconfig")
                    .and_then(|i| i.parse::<u8>().ok())
                    .is_some_and(|i| !keep.contains(&i) && **k == format!("ipconfig{i}"))
            })
            .cloned()
            .collect();
        for k in keys {
            self.plan.delete(k);
        }
    }
}

/// Whether the `ipconfigN` value Proxmox holds is `want`.
fn ipconfig_matches(current: Option<&str>, want: &IpConfig) -> bool {
    let Some(props) = current.and_then(|c| PropertyString::parse(c).ok()) else {
        return false;
    };
    let (ip, gw) = match &want.ipv4 {
        Some(Ipv4Config::Dhcp) => (Some("dhcp".to_owned()), None),
        Some(Ipv4Config::Static { cidr, gateway }) => {
            (Some(cidr.clone()), gateway.map(|g| g.to_string()))
        }
        None => (None, None),
    };
    let (ip6, gw6) = match &want.ipv6 {
        Some(Ipv6Config::Dhcp) => (Some("dhcp".to_owned()), None),
        Some(Ipv6Config::Auto) => (Some("auto".to_owned()), None),
        Some(Ipv6Config::Static { cidr, gateway }) => {
            (Some(cidr.clone()), gateway.map(|g| g.to_string()))
        }
        None => (None, None),
    };
    props.get("ip").map(str::to_owned) == ip
        && props.get("gw").map(str::to_owned) == gw
        && props.get("ip6").map(str::to_owned) == ip6
        && props.get("gw6").map(str::to_owned) == gw6
}
