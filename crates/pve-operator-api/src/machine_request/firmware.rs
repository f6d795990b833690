//! The firmware of a machine: BIOS or UEFI, the EFI variables disk, the TPM and the machine type.

use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::patterns;

/// Firmware and machine type.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
#[x_kube(validation = Rule::new("self.bios != 'OVMF' || has(self.efiDisk)").message("OVMF (UEFI) needs an efiDisk to keep its variables"))]
#[x_kube(validation = Rule::new("self.bios == 'OVMF' || !has(self.efiDisk)").message("efiDisk is used only with bios: OVMF"))]
#[x_kube(validation = Rule::new("!has(oldSelf.tpmState) || has(self.tpmState)").message("tpmState cannot be removed: the keys sealed in the TPM (BitLocker, measured boot) would be lost; delete the MachineRequest to remove the VM"))]
#[x_kube(validation = Rule::new("self.bios == 'OVMF' || !has(self.tpmState)").message("tpmState is used only with bios: OVMF (Windows 11 and measured boot use a TPM with UEFI); set bios: OVMF and an efiDisk"))]
#[serde(rename_all = "camelCase")]
pub struct Firmware {
    /// SeaBIOS (legacy BIOS) or OVMF (UEFI). Immutable.
    #[serde(default)]
    #[x_kube(validation = Rule::new("self == oldSelf").message("bios is immutable"))]
    pub bios: Bios,
    /// The EFI variables disk, required with OVMF.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub efi_disk: Option<EfiDisk>,
    /// A TPM (`tpmstate0`), only with OVMF: its state volume's storage and the TPM version.
    /// Set when the VM is created; the version cannot be changed afterwards.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self == oldSelf").message("tpmState is immutable: the TPM's state is created with the VM"))]
    pub tpm_state: Option<TpmState>,
    /// QEMU machine type, e.g. `q35`; Proxmox's default (`pc`) when omitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 32), pattern(patterns::MACHINE_TYPE))]
    pub machine: Option<String>,
}

/// Firmware types.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Bios {
    /// Legacy BIOS.
    #[default]
    SeaBIOS,
    /// UEFI.
    OVMF,
}

/// The EFI variables disk.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct EfiDisk {
    /// Storage for the EFI disk.
    #[schemars(length(min = 2, max = 64), pattern(patterns::STORAGE_ID))]
    pub storage: String,
    /// Enroll Microsoft's and the distribution's Secure Boot keys.
    #[serde(default)]
    pub pre_enrolled_keys: bool,
}

/// The TPM state volume.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct TpmState {
    /// Storage for the TPM state volume (4 MiB).
    #[schemars(length(min = 2, max = 64), pattern(patterns::STORAGE_ID))]
    pub storage: String,
    /// The TPM interface version: `v2.0` (the default; what Windows 11 requires) or `v1.2`.
    #[serde(default)]
    pub version: TpmVersion,
}

/// TPM interface versions.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum TpmVersion {
    /// TPM 2.0.
    #[default]
    #[serde(rename = "v2.0")]
    V2_0,
    /// TPM 1.2.
    #[serde(rename = "v1.2")]
    V1_2,
}
