//! The controller end to end: a real kube-apiserver, pve-sim, and the controller running in the
//! test process against its own namespace (the [`Harness`]): a request's [`lifecycle`], changes
//! made [`out_of_band`] in Proxmox, [`crashes`] of the controller, the controller under
//! [`stress`], and ProxmoxCluster's status and certificate pin ([`clusters`]).

mod clusters;
mod crashes;
mod lifecycle;
mod out_of_band;
mod stress;

use kube::ResourceExt;

use crate::support::Harness;
pub(super) use crate::support::vmid_of;

/// Every request has exactly one VM carrying its marker.
async fn assert_one_vm_per_request(h: &Harness, names: &[String]) {
    let resources = h.pve.cluster_resources(None).await.expect("resources");
    for name in names {
        let uid = h
            .requests()
            .get(name)
            .await
            .expect("request")
            .uid()
            .expect("uid");
        let tagged = resources
            .iter()
            .filter(|r| r.tag_list().iter().any(|t| t.contains(&uid)))
            .count();
        assert_eq!(tagged, 1, "{name}: exactly one VM carries its marker");
    }
}
