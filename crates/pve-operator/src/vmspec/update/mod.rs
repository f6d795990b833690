//! Drift: what to change so that a VM's current config matches the spec (docs/design.md principle
//! 7).

mod hardware;
mod network;
mod passthrough;

use std::collections::BTreeMap;

use pve_client::api::vmconfig::{AgentConfig, DiskSlot, VmConfigView};
use pve_client::propstring::PropertyString;

use super::desired::{Baseline, Desired};
use super::error::SpecError;
use super::plan::{UpdatePlan, config_keys};
use super::wire;
use pve_client::api::vmconfig::DriveView;

/// Proxmox's default memory in MiB when `memory` is absent.
const DEFAULT_MEMORY_MIB: u64 = 512;

impl Desired {
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
    pub fn plan_update(&self, current: &VmConfigView) -> Result<UpdatePlan, SpecError> {
        let d = self;
        let mut p = Planner {
            d,
            cur: current,
            drives: current.drive_views(),
            plan: UpdatePlan::default(),
        };
        p.identity();
        p.cpu_and_memory();
        p.firmware();
        p.disks();
        p.nics();
        p.passthrough();
        p.cloud_init()?;
        p.boot_order()?;
        p.plan.seal().map_err(|e| d.rejected(e))
    }
}

/// The state of one planning run.
struct Planner<'a> {
    /// The spec in Proxmox terms.
    d: &'a Desired,
    /// The VM's config as Proxmox returns it.
    cur: &'a VmConfigView,
    /// The drives of `cur`, decoded.
    drives: BTreeMap<DiskSlot, Option<DriveView>>,
    /// What has been planned so far.
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
        if cur.get_bool("onboot").unwrap_or(false) != d.onboot {
            c.onboot = Some(d.onboot);
        }
        let agent = cur
            .main_value("agent", "enabled")
            .and_then(|v| pve_client::de::bool_word(&v))
            .unwrap_or(false);
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
                if cur.main_value("cpu", "cputype").as_deref() != Some(t.as_str()) {
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
