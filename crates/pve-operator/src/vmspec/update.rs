//! Drift: what to change so that a VM's current config matches the spec (principle 7), and
//! how to release a VM for `deletionPolicy: Retain`.

use std::collections::BTreeSet;
use std::net::IpAddr;

use pve_client::api::vmconfig::{
    AgentConfig, Bios, DiskSlot, Drive, IpConfig, Ipv4Config, Ipv6Config, ScsiHw, VmConfig,
    VmConfigView,
};
use pve_client::propstring::PropertyString;
use pve_operator_api::machine_request::MachineRequestSpec;

use super::desired::{
    Baseline, Desired, DesiredCloudInit, DesiredDisk, cache_name, cloudinit_slot,
};
use super::error::SpecError;
use super::marker::{Marker, is_marker_line_of};
use super::wire::{self, DriveView, GIB};

/// Proxmox's default memory in MiB when `memory` is absent.
const DEFAULT_MEMORY_MIB: u64 = 512;
/// The cloud-init keys a created VM without `spec.cloudInit` must not carry.
const CLOUD_INIT_KEYS: [&str; 4] = ["ciuser", "sshkeys", "nameserver", "searchdomain"];

/// What to change so that the VM's current config matches the spec.
#[derive(Debug, Clone, Default)]
pub struct UpdatePlan {
    /// Keys to set (only those that differ), for `POST|PUT .../config`.
    pub config: VmConfig,
    /// Keys to delete (the `delete` parameter of the same call).
    pub delete: Vec<String>,
    /// Disks to grow to N GiB (`PUT .../resize`, one call each, after the config update).
    pub resizes: Vec<(DiskSlot, u64)>,
    /// Differences that cannot be reconciled, in words naming the spec field (a disk smaller
    /// in spec than in Proxmox, a disk on another storage, a slot used by something else, ...).
    /// They are reported, never acted on; the rest of the plan is still safe to apply.
    pub conflicts: Vec<String>,
}

impl UpdatePlan {
    /// True when there is nothing to apply: no key to set or delete and no disk to grow.
    /// Conflicts do not count (nothing can be applied for them); check `conflicts` separately.
    pub fn is_empty(&self) -> bool {
        !self.has_config_changes() && self.resizes.is_empty()
    }

    /// True when a config update call is needed (keys to set or delete).
    pub fn has_config_changes(&self) -> bool {
        !self.delete.is_empty() || !config_keys(&self.config).is_empty()
    }

    /// True when the VM matches the spec: nothing to apply and no conflict.
    pub fn is_in_sync(&self) -> bool {
        self.is_empty() && self.conflicts.is_empty()
    }

    /// The config keys the plan sets or deletes, sorted (`cores`, `net0`, `tags`, ...).
    /// Resized disks are not included; see `resizes`.
    pub fn changed_keys(&self) -> Vec<String> {
        let mut keys: BTreeSet<String> = config_keys(&self.config).into_iter().collect();
        keys.extend(self.delete.iter().cloned());
        keys.into_iter().collect()
    }

    fn delete(&mut self, key: impl Into<String>) {
        let key = key.into();
        if !self.delete.contains(&key) {
            self.delete.push(key);
        }
    }
}

/// The Proxmox keys a [`VmConfig`] sets. Destructured field by field, so that a field added to
/// the client's builder fails to compile here instead of going unreported.
fn config_keys(c: &VmConfig) -> Vec<String> {
    let VmConfig {
        name,
        cores,
        sockets,
        cpu,
        memory_mib,
        balloon_mib,
        scsihw,
        drives,
        efidisk,
        nics,
        ciuser,
        cipassword,
        sshkeys,
        ipconfigs,
        nameservers,
        searchdomain,
        boot_order,
        ostype,
        agent,
        bios,
        machine,
        tags,
        description,
        smbios_uuid,
        onboot,
        pool,
    } = c;
    let mut keys: Vec<String> = [
        ("name", name.is_some()),
        ("cores", cores.is_some()),
        ("sockets", sockets.is_some()),
        ("cpu", cpu.is_some()),
        ("memory", memory_mib.is_some()),
        ("balloon", balloon_mib.is_some()),
        ("scsihw", scsihw.is_some()),
        ("efidisk0", efidisk.is_some()),
        ("ciuser", ciuser.is_some()),
        ("cipassword", cipassword.is_some()),
        ("sshkeys", !sshkeys.is_empty()),
        ("nameserver", !nameservers.is_empty()),
        ("searchdomain", searchdomain.is_some()),
        ("boot", !boot_order.is_empty()),
        ("ostype", ostype.is_some()),
        ("agent", agent.is_some()),
        ("bios", bios.is_some()),
        ("machine", machine.is_some()),
        ("tags", !tags.is_empty()),
        ("description", description.is_some()),
        ("smbios1", smbios_uuid.is_some()),
        ("onboot", onboot.is_some()),
        ("pool", pool.is_some()),
    ]
    .into_iter()
    .filter(|(_, set)| *set)
    .map(|(k, _)| k.to_owned())
    .collect();
    keys.extend(drives.keys().map(DiskSlot::to_string));
    keys.extend(nics.keys().map(|i| format!("net{i}")));
    keys.extend(ipconfigs.keys().map(|i| format!("ipconfig{i}")));
    keys.sort();
    keys
}

/// What to change so that the VM's current config (`GET .../config`, pending changes
/// included) matches the spec. Idempotent: planning again against the config that results
/// from applying the plan gives an empty plan.
///
/// Everything the spec states is compared in normalised form (disks rewritten by Proxmox,
/// generated MACs, memory as text, reordered and lower-cased tags, URL-encoded SSH keys, the
/// description's trailing newline). A new disk is added as `storage:SIZE`; a grown disk is a
/// resize; a smaller, moved, re-optioned or unlisted disk is a conflict, never a change.
///
/// Optional fields the spec omits mean Proxmox's default for a created VM (a value set behind
/// the controller's back is deleted) and "as the template has it" for a cloned VM; lists
/// (networks, cloud-init IP configs) are managed for a cloned VM only when the spec lists
/// any. The ISO CD-ROM is part of the create call only (ejecting it later is not drift).
pub fn plan_update(
    spec: &MachineRequestSpec,
    marker: &Marker,
    vm_name: &str,
    current: &VmConfigView,
) -> Result<UpdatePlan, SpecError> {
    let d = Desired::from_spec(spec, marker, vm_name)?;
    let mut p = Planner {
        d: &d,
        cur: current,
        drives: wire::drives(current),
        plan: UpdatePlan::default(),
    };
    p.identity();
    p.cpu_and_memory();
    p.firmware();
    p.disks();
    p.nics();
    p.cloud_init()?;
    p.boot_order()?;
    let plan = p.plan;
    plan.config.to_params().map_err(|e| d.rejected(e))?;
    Ok(plan)
}

struct Planner<'a> {
    d: &'a Desired,
    cur: &'a VmConfigView,
    drives: std::collections::BTreeMap<DiskSlot, Option<DriveView>>,
    plan: UpdatePlan,
}

impl Planner<'_> {
    fn defaults(&self) -> bool {
        self.d.baseline == Baseline::Defaults
    }

    /// Deletes `key` if present, for a created VM (an omitted optional field).
    fn delete_if_default(&mut self, key: &str) {
        if self.defaults() && self.cur.get(key).is_some() {
            self.plan.delete(key);
        }
    }

    fn identity(&mut self) {
        let (d, cur) = (self.d, self.cur);
        let c = &mut self.plan.config;
        if cur.get("name") != Some(d.name.as_str()) {
            c.name = Some(d.name.clone());
        }
        if wire::normalise_tags(&cur.tags()) != wire::normalise_tags(&d.tags) {
            c.tags = d.tags.clone();
        }
        let description = cur.get("description").unwrap_or_default();
        if wire::normalise_description(description) != wire::normalise_description(&d.description) {
            c.description = Some(d.description.clone());
        }
        if let Some(u) = &d.smbios_uuid
            && !cur.smbios_uuid().is_some_and(|c| c.eq_ignore_ascii_case(u))
        {
            c.smbios_uuid = Some(u.clone());
        }
        if wire::config_bool(cur, "onboot", false) != d.onboot {
            c.onboot = Some(d.onboot);
        }
        let agent = wire::main_value_of(cur, "agent", "enabled")
            .is_some_and(|v| matches!(v.as_str(), "1" | "on" | "yes" | "true"));
        if agent != d.agent {
            c.agent = Some(AgentConfig {
                enabled: d.agent,
                fstrim_cloned_disks: None,
            });
        }
    }

    fn cpu_and_memory(&mut self) {
        let (d, cur) = (self.d, self.cur);
        if cur.get_u64("cores").unwrap_or(1) != u64::from(d.cores) {
            self.plan.config.cores = Some(d.cores);
        }
        if cur.get_u64("sockets").unwrap_or(1) != u64::from(d.sockets) {
            self.plan.config.sockets = Some(d.sockets);
        }
        match &d.cpu_type {
            Some(t) => {
                if wire::main_value_of(cur, "cpu", "cputype").as_deref() != Some(t.as_str()) {
                    self.plan.config.cpu = Some(t.clone());
                }
            }
            None => self.delete_if_default("cpu"),
        }
        if cur.memory_mib().unwrap_or(DEFAULT_MEMORY_MIB) != d.memory_mib {
            self.plan.config.memory_mib = Some(d.memory_mib);
        }
        match d.balloon_mib {
            Some(b) => {
                if cur.get_u64("balloon") != Some(b) {
                    self.plan.config.balloon_mib = Some(b);
                }
            }
            None => {
                let too_big = cur.get_u64("balloon").is_some_and(|b| b > d.memory_mib);
                if too_big {
                    // Proxmox refuses memory below the balloon minimum.
                    self.plan.delete("balloon");
                } else {
                    self.delete_if_default("balloon");
                }
            }
        }
    }

    fn firmware(&mut self) {
        let (d, cur) = (self.d, self.cur);
        let want_scsihw = self.defaults() || d.needs_single_scsi();
        if want_scsihw && cur.get("scsihw").unwrap_or("lsi") != "virtio-scsi-single" {
            self.plan.config.scsihw = Some(ScsiHw::VirtioScsiSingle);
        }
        let (want_bios, want_name) = match d.bios {
            Bios::Seabios => ("seabios", "SeaBIOS"),
            Bios::Ovmf => ("ovmf", "OVMF"),
        };
        let bios = cur.get("bios").unwrap_or("seabios");
        if bios != want_bios {
            if self.defaults() {
                self.plan.config.bios = Some(d.bios);
            } else {
                self.plan.conflicts.push(format!(
                    "spec.firmware.bios is {want_name} but the VM cloned from the template uses \
                     {bios}; set spec.firmware.bios to the template's firmware"
                ));
            }
        }
        if let Some(e) = &d.efidisk {
            match cur.get("efidisk0").map(DriveView::parse) {
                None => self.plan.config.efidisk = Some(e.clone()),
                Some(None) => self.plan.conflicts.push(format!(
                    "spec.firmware.efiDisk cannot be compared with efidisk0 in Proxmox ({:?})",
                    cur.get("efidisk0").unwrap_or_default()
                )),
                Some(Some(v)) => {
                    if v.storage() != Some(e.storage.as_str()) {
                        self.plan.conflicts.push(format!(
                            "spec.firmware.efiDisk.storage is {} but efidisk0 is on {} in \
                             Proxmox ({}); an EFI disk is not moved between storages",
                            e.storage,
                            v.storage().unwrap_or("no storage"),
                            v.volume
                        ));
                    }
                    let want_keys = e.pre_enrolled_keys.unwrap_or(false);
                    if v.flag("pre-enrolled-keys") != want_keys {
                        self.plan.conflicts.push(format!(
                            "spec.firmware.efiDisk.preEnrolledKeys is {want_keys} but efidisk0 \
                             in Proxmox has pre-enrolled-keys={}; keys are enrolled only when \
                             the EFI disk is created",
                            u8::from(!want_keys)
                        ));
                    }
                }
            }
        }
        match &d.machine {
            Some(m) => {
                if wire::main_value_of(cur, "machine", "type").as_deref() != Some(m.as_str()) {
                    self.plan.config.machine = Some(m.clone());
                }
            }
            None => self.delete_if_default("machine"),
        }
    }

    fn disks(&mut self) {
        for disk in &self.d.disks {
            match self.drives.get(&disk.slot) {
                None => {
                    self.plan.config.drives.insert(disk.slot, disk.new_drive());
                }
                Some(None) => self.plan.conflicts.push(format!(
                    "{}.slot {} holds something in Proxmox that is not a disk ({:?})",
                    disk.field,
                    disk.slot,
                    self.cur.get(&disk.slot.to_string()).unwrap_or_default()
                )),
                Some(Some(v)) if v.is_cdrom() => self.plan.conflicts.push(format!(
                    "{}.slot {} is used by {} in Proxmox",
                    disk.field,
                    disk.slot,
                    if v.is_cloudinit() {
                        "the cloud-init drive"
                    } else {
                        "a CD-ROM drive"
                    }
                )),
                Some(Some(v)) => {
                    let v = v.clone();
                    self.existing_disk(disk, &v);
                }
            }
        }
        if self.defaults() {
            for (slot, v) in &self.drives {
                let Some(v) = v else { continue };
                if v.is_cdrom() || self.d.disks.iter().any(|d| d.slot == *slot) {
                    continue;
                }
                self.plan.conflicts.push(format!(
                    "spec.disks has no {slot}, but Proxmox has {} there; add it to spec.disks \
                     or detach it in Proxmox (the controller never deletes a disk)",
                    v.volume
                ));
            }
        }
    }

    fn existing_disk(&mut self, disk: &DesiredDisk, v: &DriveView) {
        if v.storage() != Some(disk.storage.as_str()) {
            self.plan.conflicts.push(format!(
                "{}.storage is {} but {} is on {} in Proxmox ({}); a disk is not moved between \
                 storages",
                disk.field,
                disk.storage,
                disk.slot,
                v.storage().unwrap_or("no storage"),
                v.volume
            ));
        }
        if let Some(bytes) = v.size_bytes() {
            let want = disk.size_gib.saturating_mul(GIB);
            if bytes < want {
                self.plan.resizes.push((disk.slot, disk.size_gib));
            } else if bytes > want {
                self.plan.conflicts.push(format!(
                    "{}.sizeGiB is {} but {} is {} in Proxmox; disks never shrink (set sizeGiB \
                     to at least {})",
                    disk.field,
                    disk.size_gib,
                    disk.slot,
                    v.size_text().unwrap_or_default(),
                    bytes.div_ceil(GIB)
                ));
            }
        }
        // On a cloned VM, an option the spec leaves off (a bool's default) is the template's
        // choice (Proxmox's GUI turns iothread on for new disks, for instance); one the spec
        // turns on must be there.
        let mut differ = Vec::new();
        for (name, want, have) in [
            ("ssd", disk.ssd, v.flag("ssd")),
            ("discard", disk.discard, v.discard()),
            ("iothread", disk.iothread, v.flag("iothread")),
        ] {
            if want != have && (self.defaults() || want) {
                differ.push(format!("{name} is {want} in spec but {have} in Proxmox"));
            }
        }
        let want_cache = disk.cache.map(cache_name);
        if (self.defaults() || want_cache.is_some()) && want_cache.unwrap_or("none") != v.cache() {
            differ.push(format!(
                "cache is {} in spec but {} in Proxmox",
                want_cache.unwrap_or("none (default)"),
                v.cache()
            ));
        }
        if !differ.is_empty() {
            self.plan.conflicts.push(format!(
                "{} ({}): {}; the options of an existing disk are set when it is added, change \
                 them in Proxmox or in the spec",
                disk.field,
                disk.slot,
                differ.join(", ")
            ));
        }
    }

    fn nics(&mut self) {
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

    fn cloud_init(&mut self) -> Result<(), SpecError> {
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
        } else if wire::decode_sshkeys(cur.get("sshkeys").unwrap_or_default()) != ci.sshkeys {
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

    /// The boot order of a created VM, restricted to devices that exist (or are being added)
    /// so that Proxmox never sees an order naming a missing device.
    fn boot_order(&mut self) -> Result<(), SpecError> {
        if !self.defaults() {
            return Ok(());
        }
        let want: Vec<String> = self
            .d
            .boot_order()?
            .into_iter()
            .filter(|dev| {
                self.cur.get(dev).is_some() || config_keys(&self.plan.config).contains(dev)
            })
            .collect();
        let have: Vec<String> = self
            .cur
            .get("boot")
            .and_then(|b| PropertyString::parse(b).ok())
            .and_then(|p| p.get("order").map(str::to_owned))
            .map(|o| {
                o.split(';')
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        if !want.is_empty() && want != have {
            self.plan.config.boot_order = want;
        }
        Ok(())
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

/// For `deletionPolicy: Retain`: remove the managed tag, the uid tag and the marker line,
/// keeping the user's tags and description. The SMBIOS uuid stays: it is the guest's machine
/// identity, and a released VM is no longer found through it (the inventory reads tags).
pub fn release_marker(marker: &Marker, current: &VmConfigView) -> UpdatePlan {
    let mut plan = UpdatePlan::default();
    let tags = current.tags();
    let keep: Vec<String> = tags
        .iter()
        .filter(|t| !marker.is_marker_tag(t))
        .map(|t| (*t).to_owned())
        .collect();
    if keep.len() != tags.len() {
        if keep.is_empty() {
            plan.delete("tags");
        } else {
            plan.config.tags = keep;
        }
    }
    if let Some(description) = current.get("description") {
        let kept: Vec<&str> = description
            .lines()
            .filter(|l| !is_marker_line_of(l, &marker.uid))
            .collect();
        let kept = wire::normalise_description(&kept.join("\n"));
        if kept != wire::normalise_description(description) {
            if kept.is_empty() {
                plan.delete("description");
            } else {
                plan.config.description = Some(kept);
            }
        }
    }
    plan
}
