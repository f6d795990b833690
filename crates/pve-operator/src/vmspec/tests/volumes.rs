//! The admission pattern for ISO volumes (`ISO_VOLUME`) admits only what pve-client's volume
//! encoder accepts, so an ISO the API server stores never fails later in the controller.

use pve_client::propstring::check::volume_id;
use pve_operator_api::patterns::ISO_VOLUME;

#[test]
fn every_iso_volume_admission_accepts_the_encoder_accepts_and_dots_never_pair() {
    let pattern = regex::Regex::new(ISO_VOLUME).expect("the pattern compiles");
    for good in [
        "local:iso/debian-12.7.0-amd64-netinst.iso",
        "local:iso/x.iso",
        "nfs-isos:iso/virtio-win-0.1.262.iso",
        "local:iso/a_b+c.img",
    ] {
        assert!(pattern.is_match(good), "{good}");
        assert!(volume_id(good).is_ok(), "{good}");
    }
    for bad in [
        "local:iso/a..iso",
        "local:iso/a...b.iso",
        "local:iso/..iso",
        "local:iso/../../etc/passwd.iso",
        "local:iso/sub/x.iso",
        "local:iso/x.iso,media=disk",
        "local:images/x.qcow2",
    ] {
        assert!(!pattern.is_match(bad), "admission refuses {bad}");
    }
    for bad in ["local:iso/a..iso", "local:iso/../x.iso"] {
        let error = volume_id(bad).expect_err("the encoder refuses it");
        assert!(error.contains("'..'"), "{error}");
    }
}
