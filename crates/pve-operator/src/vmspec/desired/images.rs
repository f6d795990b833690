//! The volume IDs of the ProxmoxImages a spec names, as the reconcile resolved them.

use std::collections::BTreeMap;

use crate::vmspec::error::SpecError;

/// The volumes of a request's images: the ISO it boots (`spec.boot.image`) and, per disk
/// field (`spec.disks[i]`), the disk image it is imported from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageVolumes {
    /// `spec.boot.image`'s volume, e.g. `local:iso/pveop-sha256-….iso`.
    pub boot: Option<String>,
    /// `spec.disks[i].image`'s volume by the image's field (`spec.disks[0].image`).
    pub disks: BTreeMap<String, String>,
}

impl ImageVolumes {
    /// The boot ISO's volume, or the error that it was not resolved.
    pub(super) fn boot_volume(&self) -> Result<String, SpecError> {
        self.boot.clone().ok_or_else(|| {
            SpecError::invalid(
                "spec.boot.image",
                "names a ProxmoxImage whose volume is not known yet",
            )
        })
    }

    /// The volume of the disk at `disk_field` (`spec.disks[i]`), or the error.
    pub(super) fn disk_volume(&self, disk_field: &str) -> Result<String, SpecError> {
        let field = format!("{disk_field}.image");
        self.disks.get(&field).cloned().ok_or_else(|| {
            SpecError::invalid(field, "names a ProxmoxImage whose volume is not known yet")
        })
    }
}
