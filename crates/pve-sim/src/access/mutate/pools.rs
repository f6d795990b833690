//! Pools: creating, changing and deleting them, and their VM and storage members.

use super::non_empty;
use crate::access::model::Pool;
use crate::access::{AccessControl, AccessError, names};

impl AccessControl {
    /// Creates a pool (nested pools need their parent).
    pub fn pool_add(&mut self, name: &str, comment: Option<&str>) -> Result<(), AccessError> {
        if !names::is_valid_poolname(name) {
            return Err(AccessError::InvalidPoolname(name.to_string()));
        }
        if self.pools.contains_key(name) {
            return Err(AccessError::PoolExists(name.to_string()));
        }
        if let Some((parent, _)) = name.rsplit_once('/')
            && !self.pools.contains_key(parent)
        {
            return Err(AccessError::NoSuchParentPool {
                parent: parent.to_string(),
                pool: name.to_string(),
            });
        }
        let pool = Pool {
            comment: non_empty(comment.map(str::to_string)),
            ..Pool::default()
        };
        self.pools.insert(name.to_string(), pool);
        Ok(())
    }

    /// Changes a pool's comment.
    pub fn pool_modify(&mut self, name: &str, comment: Option<&str>) -> Result<(), AccessError> {
        let pool = self.pool_mut(name)?;
        if let Some(c) = comment {
            pool.comment = non_empty(Some(c.to_string()));
        }
        Ok(())
    }

    /// Adds VMs and storages to a pool, or removes them with `delete` (`PUT /pools`). A VM in
    /// another pool moves only with `allow_move`. All or nothing.
    pub fn pool_update_members(
        &mut self,
        name: &str,
        vms: &[u32],
        storages: &[String],
        delete: bool,
        allow_move: bool,
    ) -> Result<(), AccessError> {
        let mut updated = self.clone();
        updated.pool_mut(name)?;
        for &vmid in vms {
            let current = updated.vm_pool(vmid).map(str::to_string);
            if delete {
                if current.as_deref() != Some(name) {
                    return Err(AccessError::VmNotInPool(vmid));
                }
                updated.pool_remove_vm(vmid);
                continue;
            }
            match current {
                Some(p) if p == name => return Err(AccessError::VmInPool(vmid)),
                Some(p) if !allow_move => {
                    return Err(AccessError::VmInOtherPool { vmid, pool: p });
                }
                _ => {}
            }
            updated.pool_remove_vm(vmid);
            updated.pool_mut(name)?.vms.insert(vmid);
        }
        for store in storages {
            let pool = updated.pool_mut(name)?;
            if delete {
                if !pool.storage.remove(store) {
                    return Err(AccessError::StorageNotInPool(store.clone()));
                }
            } else if !names::is_valid_storeid(store) {
                return Err(AccessError::InvalidStorageId(store.clone()));
            } else if !pool.storage.insert(store.clone()) {
                return Err(AccessError::StorageInPool(store.clone()));
            }
        }
        *self = updated;
        Ok(())
    }

    /// Deletes an empty pool (no VMs, storages or child pools) and its ACL entries.
    pub fn pool_delete(&mut self, name: &str) -> Result<(), AccessError> {
        let pool = self
            .pools
            .get(name)
            .ok_or_else(|| AccessError::NoSuchPool(name.to_string()))?;
        let not_empty = |what: String| AccessError::PoolNotEmpty(name.to_string(), what);
        if let Some(vmid) = pool.vms.iter().next() {
            return Err(not_empty(format!("VM {vmid}")));
        }
        if let Some(store) = pool.storage.iter().next() {
            return Err(not_empty(format!("storage '{store}'")));
        }
        let prefix = format!("{name}/");
        if let Some(child) = self.pools.keys().find(|p| p.starts_with(&prefix)) {
            return Err(not_empty(format!("child pool '{child}'")));
        }
        self.pools.remove(name);
        self.acl.remove(&format!("/pool/{name}"));
        Ok(())
    }

    /// The pool, or `pool '…' does not exist`.
    fn pool_mut(&mut self, name: &str) -> Result<&mut Pool, AccessError> {
        self.pools
            .get_mut(name)
            .ok_or_else(|| AccessError::NoSuchPool(name.to_string()))
    }

    /// Adds a VM to a pool (VM create with `pool`). A VM belongs to at most one pool.
    pub fn pool_add_vm(&mut self, pool: &str, vmid: u32) -> Result<(), AccessError> {
        self.pool_mut(pool)?;
        match self.vm_pool(vmid) {
            Some(p) if p == pool => return Ok(()),
            Some(_) => return Err(AccessError::VmInPool(vmid)),
            None => {}
        }
        self.pool_mut(pool)?.vms.insert(vmid);
        Ok(())
    }

    /// Removes a VM from whatever pool holds it.
    pub fn pool_remove_vm(&mut self, vmid: u32) {
        for p in self.pools.values_mut() {
            p.vms.remove(&vmid);
        }
    }

    /// Adds a storage to a pool.
    pub fn pool_add_storage(&mut self, pool: &str, storage: &str) -> Result<(), AccessError> {
        if !names::is_valid_storeid(storage) {
            return Err(AccessError::InvalidStorageId(storage.to_string()));
        }
        self.pool_mut(pool)?.storage.insert(storage.to_string());
        Ok(())
    }

    /// Removes a storage from a pool.
    pub fn pool_remove_storage(&mut self, pool: &str, storage: &str) -> Result<(), AccessError> {
        self.pool_mut(pool)?.storage.remove(storage);
        Ok(())
    }

    /// Forgets a destroyed VM: its pool membership and its `/vms/<id>` ACL entries
    /// (`remove_vm_access`).
    pub fn remove_vm(&mut self, vmid: u32) {
        self.pool_remove_vm(vmid);
        self.acl.remove(&format!("/vms/{vmid}"));
    }
}
