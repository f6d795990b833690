use super::*;
use crate::request::ParamValue;

fn params_of(config: &VmConfig) -> String {
    config.to_params().expect("encodes").form_encode()
}

#[test]
fn tpm_state_is_allocated_on_its_storage_with_the_version() {
    let config = VmConfig {
        tpmstate: Some(TpmState {
            storage: "local-lvm".into(),
            version: TpmVersion::V2_0,
        }),
        ..VmConfig::default()
    };
    assert_eq!(
        params_of(&config),
        "tpmstate0=local-lvm%3A1%2Cversion%3Dv2.0"
    );
    let bad = VmConfig {
        tpmstate: Some(TpmState {
            storage: "local,import-from=x".into(),
            version: TpmVersion::V1_2,
        }),
        ..VmConfig::default()
    };
    let e = bad.to_params().unwrap_err().to_string();
    assert!(e.contains("tpmstate0.storage"), "{e}");
}

#[test]
fn passthrough_is_written_by_mapping_with_its_options() {
    let gpu = PciDevice {
        mdev: Some("nvidia-63".into()),
        pcie: Some(true),
        rombar: Some(false),
        primary_gpu: Some(true),
        ..PciDevice::mapped("gpu_a")
    };
    let mut config = VmConfig::default();
    config.pci_devices.insert(0, gpu);
    config.usb_devices.insert(
        2,
        UsbDevice {
            usb3: Some(true),
            ..UsbDevice::mapped("yubikey")
        },
    );
    let p = config.to_params().expect("encodes");
    assert_eq!(
        p.get("hostpci0").map(ParamValue::wire),
        Some("mapping=gpu_a,mdev=nvidia-63,pcie=1,rombar=0,x-vga=1".into())
    );
    assert_eq!(
        p.get("usb2").map(ParamValue::wire),
        Some("mapping=yubikey,usb3=1".into())
    );
}

#[test]
fn a_mapping_name_cannot_carry_a_raw_host_address_or_another_key() {
    for evil in ["0000:01:00.0", "gpu,host=0000:01:00", "gpu;x", "1gpu", ""] {
        let mut config = VmConfig::default();
        config.pci_devices.insert(0, PciDevice::mapped(evil));
        let e = config.to_params().unwrap_err().to_string();
        assert!(e.contains("hostpci0.mapping"), "{evil:?}: {e}");
        let mut config = VmConfig::default();
        config.usb_devices.insert(0, UsbDevice::mapped(evil));
        let e = config.to_params().unwrap_err().to_string();
        assert!(e.contains("usb0.mapping"), "{evil:?}: {e}");
    }
    let mut config = VmConfig::default();
    config.pci_devices.insert(
        0,
        PciDevice {
            mdev: Some("a,host=01:00".into()),
            ..PciDevice::mapped("gpu")
        },
    );
    assert!(config.to_params().is_err());
}

#[test]
fn device_indexes_stop_where_the_schema_does() {
    let mut config = VmConfig::default();
    config
        .pci_devices
        .insert(MAX_HOSTPCI_INDEX + 1, PciDevice::mapped("gpu"));
    let e = config.to_params().unwrap_err().to_string();
    assert!(e.contains("hostpci0..=hostpci15"), "{e}");
    let mut config = VmConfig::default();
    config
        .usb_devices
        .insert(MAX_USB_INDEX + 1, UsbDevice::mapped("key"));
    let e = config.to_params().unwrap_err().to_string();
    assert!(e.contains("usb0..=usb13"), "{e}");
}
