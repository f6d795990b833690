//! Drift of the passed-through devices (`hostpciN`, `usbN`). The spec is the truth for the keys
//! it manages: every `hostpciN` and `usbN` of a created VM, and for a VM cloned from a template
//! those of a bus once the spec lists a device on it (a template's devices stay while the spec
//! lists none). A device that differs is written again and one the spec does not list is
//! deleted. Proxmox cannot hot-plug a PCI device, so on a running VM such a change stays pending
//! until the next start and is reported or applied like every other pending change
//! (`spec.pendingChanges`); a USB device is hot-plugged where the VM's `hotplug` option allows
//! it (Proxmox's default includes `usb`) and pending otherwise.

use super::Planner;
use crate::vmspec::desired::{pci_matches, usb_matches};

impl Planner<'_> {
    pub(super) fn passthrough(&mut self) {
        let (d, cur) = (self.d, self.cur);
        for (i, want) in &d.pci_devices {
            if !cur
                .get(&format!("hostpci{i}"))
                .is_some_and(|v| pci_matches(want, v))
            {
                self.plan.config.pci_devices.insert(*i, want.clone());
            }
        }
        for (i, want) in &d.usb_devices {
            if !cur
                .get(&format!("usb{i}"))
                .is_some_and(|v| usb_matches(want, v))
            {
                self.plan.config.usb_devices.insert(*i, want.clone());
            }
        }
        if self.defaults() || !d.pci_devices.is_empty() {
            self.delete_unlisted("hostpci", |i| d.pci_devices.contains_key(&i));
        }
        if self.defaults() || !d.usb_devices.is_empty() {
            self.delete_unlisted("usb", |i| d.usb_devices.contains_key(&i));
        }
    }

    /// Deletes every `{bus}N` key of the current config whose index is not `listed`.
    fn delete_unlisted(&mut self, bus: &str, listed: impl Fn(u8) -> bool) {
        let unlisted: Vec<String> = self
            .cur
            .values
            .keys()
            .filter(|key| {
                key.strip_prefix(bus)
                    .and_then(|i| i.parse::<u8>().ok())
                    .is_some_and(|i| *key == &format!("{bus}{i}") && !listed(i))
            })
            .cloned()
            .collect();
        for key in unlisted {
            self.plan.delete(key);
        }
    }
}
