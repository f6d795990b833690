//! What the controller reads of a node to check a spec before it creates anything there: the
//! node's storages, its bridges, the ISO volumes of a storage, and the cluster's resource
//! mappings (which nodes have a passthrough device). A positive answer is kept for
//! a short time, so that a burst of requests costs one read per node; a negative one is always
//! confirmed by a fresh read, so that a storage or ISO added a moment ago is never refused.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pve_client::api::mapping::{Mapping, MappingKind};
use pve_client::api::nodes::{NetworkInterface, NetworkTypeFilter, StorageInfo, StorageVolume};
use pve_client::{PveClient, PveError};

/// How long a read is reused.
const FRESH_FOR: Duration = Duration::from_secs(30);

/// Reads by key, with the time of each.
type Entries<K, V> = HashMap<K, (Instant, Arc<Vec<V>>)>;

/// Cached reads of one kind.
struct Cache<K, V> {
    entries: Mutex<Entries<K, V>>,
}

impl<K: Eq + Hash + Clone, V> Default for Cache<K, V> {
    fn default() -> Self {
        Self {
            entries: Mutex::default(),
        }
    }
}

impl<K: Eq + Hash + Clone, V> Cache<K, V> {
    /// The entries for `key`, read by `read` when there is no recent read or when `accept`
    /// does not hold for the recent one.
    async fn get<F>(
        &self,
        key: &K,
        accept: impl Fn(&[V]) -> bool,
        read: impl FnOnce() -> F,
    ) -> Result<Arc<Vec<V>>, PveError>
    where
        F: std::future::Future<Output = Result<Vec<V>, PveError>>,
    {
        let cached = {
            let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
            entries
                .get(key)
                .filter(|(at, _)| at.elapsed() < FRESH_FOR)
                .map(|(_, v)| v.clone())
        };
        if let Some(values) = cached
            && accept(&values)
        {
            return Ok(values);
        }
        let values = Arc::new(read().await?);
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.insert(key.clone(), (Instant::now(), values.clone()));
        Ok(values)
    }
}

/// Node reads for spec checks, per connection.
pub struct NodeFacts {
    pve: PveClient,
    storages: Cache<String, StorageInfo>,
    bridges: Cache<String, NetworkInterface>,
    isos: Cache<(String, String), StorageVolume>,
    mappings: Cache<&'static str, Mapping>,
}

impl NodeFacts {
    /// Reads through `pve`.
    pub fn new(pve: PveClient) -> Self {
        Self {
            pve,
            storages: Cache::default(),
            bridges: Cache::default(),
            isos: Cache::default(),
            mappings: Cache::default(),
        }
    }

    /// The storage `storage` as `node` lists it (`None`: not there, or not visible to the
    /// credentials, which need Datastore.Audit or Datastore.AllocateSpace on it).
    pub async fn storage(
        &self,
        node: &str,
        storage: &str,
    ) -> Result<Option<StorageInfo>, PveError> {
        let list = self
            .storages
            .get(
                &node.to_string(),
                |list| list.iter().any(|s| s.storage == storage),
                || self.pve.storages(node, None, false),
            )
            .await?;
        Ok(list.iter().find(|s| s.storage == storage).cloned())
    }

    /// The names of the storages `node` lists (for messages).
    pub async fn storage_names(&self, node: &str) -> Result<Vec<String>, PveError> {
        let list = self
            .storages
            .get(
                &node.to_string(),
                |_| true,
                || self.pve.storages(node, None, false),
            )
            .await?;
        Ok(list.iter().map(|s| s.storage.clone()).collect())
    }

    /// Whether `node` has a bridge (Linux, OVS, or an SDN VNet) called `bridge`, and the
    /// bridges it has.
    pub async fn bridge(&self, node: &str, bridge: &str) -> Result<(bool, Vec<String>), PveError> {
        let list = self
            .bridges
            .get(
                &node.to_string(),
                |list| list.iter().any(|i| i.iface == bridge),
                || self.pve.network(node, Some(NetworkTypeFilter::AnyBridge)),
            )
            .await?;
        let names = list.iter().map(|i| i.iface.clone()).collect::<Vec<_>>();
        Ok((list.iter().any(|i| i.iface == bridge), names))
    }

    /// Whether the ISO volume `volume` (`storage:iso/name.iso`) is on `storage` as `node` sees it.
    pub async fn iso_exists(
        &self,
        node: &str,
        storage: &str,
        volume: &str,
    ) -> Result<bool, PveError> {
        let list = self
            .isos
            .get(
                &(node.to_string(), storage.to_string()),
                |list| list.iter().any(|v| v.volid == volume),
                || self.pve.storage_content(node, storage, Some("iso"), None),
            )
            .await?;
        Ok(list.iter().any(|v| v.volid == volume))
    }

    /// The resource mapping `id` of `kind` as `/cluster/mapping/{pci,usb}` lists it (`None`:
    /// not there, or not visible to the credentials, which need Mapping.Audit, Mapping.Use or
    /// Mapping.Modify on `/mapping/<kind>/<id>`).
    pub async fn mapping(&self, kind: MappingKind, id: &str) -> Result<Option<Mapping>, PveError> {
        let list = self
            .mappings
            .get(
                &kind.as_str(),
                |list| list.iter().any(|m| m.id == id),
                || self.pve.mappings(kind),
            )
            .await?;
        Ok(list.iter().find(|m| m.id == id).cloned())
    }
}
