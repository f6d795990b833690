//! Removing a volume from a storage: `DELETE /nodes/{node}/storage/{storage}/content/{volume}`
//! (a downloaded image once it has been imported, say). Proxmox (8.4 and 9.1 alike) answers the
//! UPID of an `imgdel` task; it needs `Datastore.Allocate` on the storage. A file that is already
//! gone is no error there: the task ends `WARNINGS: 1`.

use crate::api::{validate_node, validate_storage};
use crate::client::PveClient;
use crate::error::{PveError, Result};
use crate::propstring::check;
use crate::request::{ApiRequest, Method, Params};
use crate::task::Upid;

/// `DELETE /nodes/{node}/storage/{storage}/content/{volume}` for the volume `volid`
/// (`local:import/debian-12.qcow2`), which must be on `storage`. No `delay` is sent, so the
/// answer is always the task's UPID.
pub fn delete_volume_request(node: &str, storage: &str, volid: &str) -> Result<ApiRequest> {
    validate_node(node)?;
    validate_storage("storage", storage)?;
    check::volume_id(volid)
        .map_err(|m| PveError::invalid_input("volid", format!("{volid:?} {m}")))?;
    let on = volid.split_once(':').map(|(s, _)| s).unwrap_or_default();
    if on != storage {
        return Err(PveError::invalid_input(
            "volid",
            format!("{volid:?} is on storage {on:?}, not on {storage:?}"),
        ));
    }
    let req = ApiRequest::new(
        Method::Delete,
        "/nodes/{node}/storage/{storage}/content/{volume}",
        &[("node", node), ("storage", storage), ("volume", volid)],
        Params::new(),
    );
    req.check_path()?;
    Ok(req)
}

impl PveClient {
    /// `DELETE /nodes/{node}/storage/{storage}/content/{volume}`: starts the `imgdel` task that
    /// removes `volid` from `storage` (needs `Datastore.Allocate` on `/storage/{storage}`).
    pub async fn delete_volume(&self, node: &str, storage: &str, volid: &str) -> Result<Upid> {
        self.call(&delete_volume_request(node, storage, volid)?)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_volume_id_is_one_encoded_path_segment() {
        let r = delete_volume_request("pve", "local", "local:import/debian-12.qcow2").unwrap();
        assert_eq!(r.method, Method::Delete);
        assert_eq!(
            r.path,
            "/nodes/pve/storage/local/content/local:import%2Fdebian-12.qcow2"
        );
        assert!(r.params.form_encode().is_empty());
    }

    #[test]
    fn volumes_of_another_storage_and_odd_names_are_refused() {
        for (storage, volid) in [
            ("local", "nfs:iso/a.iso"),
            ("local", "iso/a.iso"),
            ("local", "local:../../etc/passwd"),
            ("local", "local:iso/a b.iso"),
            ("lo/cal", "lo/cal:iso/a.iso"),
        ] {
            assert!(
                delete_volume_request("pve", storage, volid).is_err(),
                "{storage} {volid}"
            );
        }
    }
}
