//! The create call (ISO or network boot) and the clone call (template boot), each carrying the
//! marker so that the VM is never without its identity (docs/design.md principle 1).

use pve_client::api::qemu::CloneOptions;
use pve_client::api::vmconfig::{AgentConfig, Drive, EncodedConfig, ScsiHw, VmConfig};

use super::desired::{Baseline, Desired, cloudinit_slot, iso_slot};
use super::error::SpecError;

/// The guest OS type of every created VM (Linux 2.6+ kernel; Proxmox's choice for modern
/// Linux guests).
const OSTYPE: &str = "l26";

impl Desired {
    /// Full create parameters (ISO or network boot): cpu, memory, balloon, scsihw
    /// (`virtio-scsi-single`), ostype `l26`, disks, `efidisk0`, `tpmstate0`, `hostpciN` and
    /// `usbN` by mapping, NICs, ISO CD-ROM (`ide2`,
    /// `media=cdrom`), cloud-init drive and keys, boot order, bios, machine, agent, tags
    /// (`pve-operator`, the uid tag, the user's), description (the user's text and the marker
    /// line), smbios1 (the uid), onboot, pool, name. The marker is part of the create call
    /// itself. [`Desired::new`] has run it through the encoders.
    ///
    /// A template boot source is refused: it is cloned ([`Desired::clone_options`]), then
    /// configured with [`Desired::plan_update`].
    pub fn create_config(&self) -> Result<VmConfig, SpecError> {
        if self.baseline == Baseline::Template {
            return Err(SpecError::invalid(
                "spec.boot.template",
                "is a template to clone, not a VM to create: use clone_options, then plan_update",
            ));
        }
        config_of(self, true)
    }

    /// Clone options for a template boot source: the new VM's id, name, pool, full or linked
    /// clone, target storage, and the description carrying the marker (the clone call takes no
    /// tags: until [`Desired::plan_update`] has run, the description is the VM's only marker).
    /// The reconciler sets `target` when the VM goes to another node than the template's.
    pub fn clone_options(&self, newid: u32) -> Result<CloneOptions, SpecError> {
        let Some(template) = &self.template else {
            return Err(SpecError::invalid(
                "spec.boot",
                "has no template to clone (iso and network boot sources are created with create_config)",
            ));
        };
        pve_client::api::validate_vmid("newid", newid).map_err(|e| self.rejected(e))?;
        Ok(CloneOptions {
            newid,
            name: Some(self.name.clone()),
            full: template.full,
            storage: template.storage.clone(),
            target: None,
            pool: self.pool.clone(),
            description: Some(self.description.clone()),
        })
    }

    /// Checks that every field gets through the client's encoders on the spec's boot path: the
    /// whole config as a create would send it (for a clone, whose drives partly come from the
    /// template, without a cloud-init drive that has no storage yet) and a clone's target
    /// storage. What they refuse is the spec's, named by field. Returns the create call's
    /// parameters (for a VM that is created rather than cloned), to be sent as encoded here.
    pub(super) fn check_encodes(&self) -> Result<Option<EncodedConfig>, SpecError> {
        let c = config_of(self, self.baseline != Baseline::Template)?;
        let encoded = encode(self, &c)?;
        if let Some(s) = self.template.as_ref().and_then(|t| t.storage.as_ref()) {
            pve_client::api::validate_storage("spec.boot.template.storage", s)
                .map_err(|e| SpecError::invalid("spec.boot.template.storage", e.to_string()))?;
        }
        Ok((self.baseline == Baseline::Defaults).then_some(encoded))
    }

    /// The create call's parameters, encoded once by [`Desired::new`]: what the reconcile
    /// sends. A template boot source is refused as by [`Desired::create_config`].
    pub fn create_params(&self) -> Result<&EncodedConfig, SpecError> {
        self.create.as_ref().ok_or_else(|| {
            SpecError::invalid(
                "spec.boot.template",
                "is a template to clone, not a VM to create: use clone_options, then plan_update",
            )
        })
    }
}

/// Runs `c` through the client's encoders, naming the spec field of anything refused.
fn encode(d: &Desired, c: &VmConfig) -> Result<EncodedConfig, SpecError> {
    c.encode().map_err(|e| d.rejected(e))
}

/// The full config of `d`. The cloud-init drive needs a storage; without one it is an error
/// when `cloud_init_drive_needed`, and left out otherwise.
fn config_of(d: &Desired, cloud_init_drive_needed: bool) -> Result<VmConfig, SpecError> {
    let mut c = VmConfig::new();
    c.name = Some(d.name.clone());
    c.cores = Some(d.cores);
    c.sockets = Some(d.sockets);
    c.cpu = d.cpu_type.clone();
    c.memory_mib = Some(d.memory_mib);
    c.balloon_mib = d.balloon_mib;
    c.scsihw = Some(ScsiHw::VirtioScsiSingle);
    c.ostype = Some(OSTYPE.to_owned());
    for disk in &d.disks {
        c.drives.insert(disk.slot, disk.new_drive());
    }
    if let Some(iso) = &d.iso {
        c.drives.insert(iso_slot()?, Drive::CdromIso(iso.clone()));
    }
    for nic in &d.nics {
        c.nics.insert(nic.index, nic.to_nic(None));
    }
    if let Some(ci) = &d.cloud_init {
        match ci.storage.clone() {
            Some(storage) => {
                let slot = cloudinit_slot(|s| c.drives.contains_key(&s)).ok_or_else(|| {
                    SpecError::invalid(
                        "spec.disks",
                        "leave no free ide or sata slot for the cloud-init drive",
                    )
                })?;
                c.drives.insert(slot, Drive::CloudInit { storage });
            }
            None if cloud_init_drive_needed => {
                return Err(SpecError::invalid(
                    "spec.cloudInit.storage",
                    "is required when spec.disks is empty (the cloud-init drive needs a storage)",
                ));
            }
            None => {}
        }
        c.ciuser = ci.user.clone();
        c.sshkeys = ci.sshkeys.clone();
        c.ipconfigs = ci
            .ipconfigs
            .iter()
            .map(|(i, (_, ip))| (*i, ip.clone()))
            .collect();
        c.nameservers = ci.nameservers.clone();
        c.searchdomain = ci.searchdomain.clone();
    }
    c.efidisk = d.efidisk.clone();
    c.tpmstate = d.tpmstate.clone();
    c.pci_devices = d.pci_devices.clone();
    c.usb_devices = d.usb_devices.clone();
    c.boot_order = d.boot_order()?;
    c.bios = Some(d.bios);
    c.machine = d.machine.clone();
    c.agent = d.agent.then_some(AgentConfig {
        enabled: true,
        fstrim_cloned_disks: None,
    });
    c.tags = d.tags.clone();
    c.description = Some(d.description.clone());
    c.smbios_uuid = d.smbios_uuid.clone();
    c.onboot = Some(d.onboot);
    c.pool = d.pool.clone();
    Ok(c)
}
