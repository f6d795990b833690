//! Operations on the VM as a whole or its disks beyond the config: clone, grow a disk, destroy.

use super::vm_request;
use crate::api::vmconfig::DiskSlot;
use crate::api::{
    validate_dns_name, validate_node, validate_pool, validate_storage, validate_vmid,
};
use crate::client::PveClient;
use crate::error::{PveError, Result};
use crate::request::{ApiRequest, Method, Params};
use crate::task::Upid;

/// Options of `clone`.
#[derive(Debug, Clone)]
pub struct CloneOptions {
    /// The new VMID.
    pub newid: u32,
    /// The new name.
    pub name: Option<String>,
    /// `true`: full copy; `false`: linked clone (from a template only).
    pub full: bool,
    /// Target storage (full clones).
    pub storage: Option<String>,
    /// Target node (shared storage only).
    pub target: Option<String>,
    /// Add the new VM to this pool.
    pub pool: Option<String>,
    /// The new description.
    pub description: Option<String>,
}

/// Options of `DELETE /nodes/{node}/qemu/{vmid}`.
#[derive(Debug, Clone, Copy)]
pub struct DeleteOptions {
    /// Also remove the VM from backup jobs, replication and HA.
    pub purge: bool,
    /// Also destroy disks with this VMID that are not referenced in the config.
    pub destroy_unreferenced_disks: bool,
}

impl Default for DeleteOptions {
    fn default() -> Self {
        Self {
            purge: true,
            destroy_unreferenced_disks: true,
        }
    }
}

/// A new disk size for `resize`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum DiskSize {
    /// Grow to this absolute size in GiB.
    AbsoluteGib(u64),
    /// Grow by this many GiB.
    GrowGib(u64),
}

/// `PUT /nodes/{node}/qemu/{vmid}/resize`.
pub fn resize_request(
    node: &str,
    vmid: u32,
    disk: DiskSlot,
    size: DiskSize,
    digest: Option<&str>,
) -> Result<ApiRequest> {
    let mut p = Params::new();
    p.str("disk", disk.to_string());
    p.str(
        "size",
        match size {
            DiskSize::AbsoluteGib(0) | DiskSize::GrowGib(0) => {
                return Err(PveError::invalid_input("size", "must be positive"));
            }
            DiskSize::AbsoluteGib(g) => format!("{g}G"),
            DiskSize::GrowGib(g) => format!("+{g}G"),
        },
    );
    if let Some(d) = digest {
        if d.len() > 40 || !d.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(PveError::invalid_input(
                "digest",
                format!("{d:?} is not a config digest"),
            ));
        }
        p.str("digest", d);
    }
    vm_request(
        Method::Put,
        "/nodes/{node}/qemu/{vmid}/resize",
        node,
        vmid,
        p,
    )
}

/// `POST /nodes/{node}/qemu/{vmid}/clone`.
pub fn clone_request(node: &str, vmid: u32, opts: &CloneOptions) -> Result<ApiRequest> {
    validate_vmid("newid", opts.newid)?;
    if opts.newid == vmid {
        return Err(PveError::invalid_input(
            "newid",
            "must differ from the source VMID",
        ));
    }
    let mut p = Params::new();
    p.int("newid", i64::from(opts.newid));
    if let Some(n) = &opts.name {
        validate_dns_name("name", n)?;
        p.str("name", n);
    }
    p.bool("full", opts.full);
    if let Some(s) = &opts.storage {
        if !opts.full {
            return Err(PveError::invalid_input(
                "storage",
                "a target storage needs a full clone",
            ));
        }
        validate_storage("storage", s)?;
        p.str("storage", s);
    }
    if let Some(t) = &opts.target {
        validate_node(t)
            .map_err(|_| PveError::invalid_input("target", format!("{t:?} is not a node name")))?;
        p.str("target", t);
    }
    if let Some(pool) = &opts.pool {
        validate_pool("pool", pool)?;
        p.str("pool", pool);
    }
    if let Some(d) = &opts.description {
        if d.chars().count() > 8192 {
            return Err(PveError::invalid_input(
                "description",
                "longer than 8192 characters",
            ));
        }
        p.str("description", d);
    }
    vm_request(
        Method::Post,
        "/nodes/{node}/qemu/{vmid}/clone",
        node,
        vmid,
        p,
    )
}

/// `DELETE /nodes/{node}/qemu/{vmid}?purge=1&destroy-unreferenced-disks=1`.
pub fn delete_request(node: &str, vmid: u32, opts: DeleteOptions) -> Result<ApiRequest> {
    let mut p = Params::new();
    p.bool("purge", opts.purge);
    p.bool(
        "destroy-unreferenced-disks",
        opts.destroy_unreferenced_disks,
    );
    vm_request(Method::Delete, "/nodes/{node}/qemu/{vmid}", node, vmid, p)
}

impl PveClient {
    /// `PUT .../resize`: grows a disk; a `resize` task in PVE 8 (`None` on 7.x, which resized
    /// synchronously).
    pub async fn qemu_resize(
        &self,
        node: &str,
        vmid: u32,
        disk: DiskSlot,
        size: DiskSize,
        digest: Option<&str>,
    ) -> Result<Option<Upid>> {
        self.call(&resize_request(node, vmid, disk, size, digest)?)
            .await
    }

    /// `POST .../clone`: a `qmclone` task (its id is the SOURCE vmid).
    pub async fn qemu_clone(&self, node: &str, vmid: u32, opts: &CloneOptions) -> Result<Upid> {
        self.call(&clone_request(node, vmid, opts)?).await
    }

    /// `DELETE /nodes/{node}/qemu/{vmid}`: a `qmdestroy` task. Fails with [`PveError::Conflict`]
    /// while the VM runs.
    pub async fn qemu_delete(&self, node: &str, vmid: u32, opts: DeleteOptions) -> Result<Upid> {
        self.call(&delete_request(node, vmid, opts)?).await
    }
}
