//! Comparing values as Proxmox writes them (the readers themselves are pve-client's).

use crate::vmspec::wire::normalise_description;

#[test]
fn descriptions_compare_without_the_trailing_newline_proxmox_adds() {
    assert_eq!(normalise_description("a\r\n\r\nb\n\n"), "a\n\nb");
}
