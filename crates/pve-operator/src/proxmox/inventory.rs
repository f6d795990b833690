//! One Proxmox inventory per cluster (docs/design.md principle 8): a single periodic
//! `/cluster/resources` read shared by every reconcile, which also notices VMs that changed or
//! vanished behind the controller's back and triggers their requests. Steady state costs one
//! Proxmox call per interval, whatever the number of machines.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kube::runtime::reflector::ObjectRef;
use pve_client::api::cluster::ClusterResource;
use pve_client::{PveClient, PveError};
use pve_operator_api::MachineRequest;
use tokio::sync::{Mutex as AsyncMutex, watch};

use super::Trigger;
use crate::vmspec::Marker;

/// A QEMU guest as the inventory sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmEntry {
    /// Its VMID.
    pub vmid: u32,
    /// The node it is on.
    pub node: String,
    /// Its name.
    pub name: String,
    /// `running`, `stopped`, `unknown`, ...
    pub status: String,
    /// Its tags.
    pub tags: Vec<String>,
    /// Its config lock (`create`, `clone`, `destroyed`, ...), if any.
    pub lock: Option<String>,
    /// Whether it is a template.
    pub template: bool,
}

impl VmEntry {
    /// Whether the VM runs.
    pub fn is_running(&self) -> bool {
        self.status == "running"
    }

    /// Whether it carries `tag` (a uid tag), in any letter case.
    pub fn carries_tag(&self, tag: &str) -> bool {
        self.tags.iter().any(|t| t.trim().eq_ignore_ascii_case(tag))
    }
}

/// What a VM looks like to change detection: VMID, node and power status.
pub type VmFingerprint = (u32, String, String);

/// A watched request: whom to trigger, and what its last reconcile left the VM as.
struct Watched {
    request: ObjectRef<MachineRequest>,
    expected: Option<VmFingerprint>,
}

/// A node as the inventory sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeEntry {
    /// The node's name.
    pub name: String,
    /// Whether it is online.
    pub online: bool,
    /// Memory in bytes, when the caller may see node statistics.
    pub max_memory: Option<u64>,
    /// Used memory in bytes, when the caller may see node statistics.
    pub used_memory: Option<u64>,
    /// Logical CPUs, when the caller may see node statistics.
    pub max_cpu: Option<u32>,
}

/// One read of `/cluster/resources`.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// QEMU guests by VMID.
    pub vms: BTreeMap<u32, VmEntry>,
    /// Nodes by name.
    pub nodes: BTreeMap<String, NodeEntry>,
    /// The resource pools the credentials can see (Pool.Audit).
    pub pools: BTreeSet<String>,
    /// When the read started.
    pub read_at: Option<Instant>,
}

impl Snapshot {
    fn from_resources(resources: Vec<ClusterResource>, read_at: Instant) -> Self {
        let mut snapshot = Snapshot {
            read_at: Some(read_at),
            ..Snapshot::default()
        };
        for r in resources {
            match r.resource_type.as_str() {
                "qemu" => {
                    let (Some(vmid), Some(node)) = (r.vmid, r.node.clone()) else {
                        continue;
                    };
                    snapshot.vms.insert(
                        vmid,
                        VmEntry {
                            vmid,
                            node,
                            name: r.name.clone().unwrap_or_default(),
                            status: r.status.clone().unwrap_or_default(),
                            tags: r.tag_list().into_iter().map(str::to_string).collect(),
                            lock: r.lock.clone(),
                            template: r.template.unwrap_or(false),
                        },
                    );
                }
                "node" => {
                    let Some(name) = r.node.clone().or(r.name.clone()) else {
                        continue;
                    };
                    snapshot.nodes.insert(
                        name.clone(),
                        NodeEntry {
                            name,
                            online: r.status.as_deref() == Some("online"),
                            max_memory: r.maxmem,
                            used_memory: r.mem,
                            max_cpu: r
                                .maxcpu
                                .filter(|c| c.is_finite() && *c >= 1.0)
                                .map(|c| c.min(f64::from(u32::MAX)) as u32),
                        },
                    );
                }
                "pool" => {
                    if let Some(pool) = r.pool.clone().filter(|p| !p.is_empty()) {
                        snapshot.pools.insert(pool);
                    }
                }
                _ => {}
            }
        }
        snapshot
    }

    /// The VMs that carry `marker`'s uid tag, templates left out (a template is never a
    /// request's VM, whatever it carries). Carrying the tag is not ownership: the caller
    /// verifies the full marker in the VM's config before touching it.
    pub fn find_marked(&self, marker: &Marker) -> Marked<'_> {
        let tag = marker.uid_tag();
        let mut found = self
            .vms
            .values()
            .filter(|vm| !vm.template && vm.carries_tag(&tag));
        match (found.next(), found.next()) {
            (None, _) => Marked::None,
            (Some(vm), None) => Marked::One(vm),
            (Some(first), Some(second)) => Marked::Several(
                [first.vmid, second.vmid]
                    .into_iter()
                    .chain(found.map(|vm| vm.vmid))
                    .collect(),
            ),
        }
    }

    /// The template called `name`, or with VMID `vmid`.
    pub fn find_template(&self, vmid: Option<u32>, name: Option<&str>) -> Option<&VmEntry> {
        self.vms.values().find(|vm| {
            vm.template
                && (Some(vm.vmid) == vmid || (name.is_some() && Some(vm.name.as_str()) == name))
        })
    }

    /// What a request's VM looks like, for change detection: `None` when no VM (templates
    /// aside) carries its uid tag, or when several do (so that removing one shows as a change).
    pub fn fingerprint_of(&self, uid: &str) -> Option<VmFingerprint> {
        match self.find_marked(&Marker::new(uid, "", "")) {
            Marked::One(vm) => Some((vm.vmid, vm.node.clone(), vm.status.clone())),
            Marked::None | Marked::Several(_) => None,
        }
    }

    /// [`fingerprint_of`](Self::fingerprint_of) for every tag at once, from one pass over the
    /// VMs: by tag (trimmed, lowercase), the VM that alone carries it, or `None` where several
    /// do. Checking every watched request against it costs O(VMs + requests), where calling
    /// `fingerprint_of` for each costs O(VMs × requests).
    fn fingerprints_by_tag(&self) -> HashMap<String, Option<VmFingerprint>> {
        let mut by_tag: HashMap<String, Option<VmFingerprint>> = HashMap::new();
        for vm in self.vms.values().filter(|vm| !vm.template) {
            let tags: BTreeSet<String> = vm
                .tags
                .iter()
                .map(|t| t.trim().to_ascii_lowercase())
                .collect();
            for tag in tags {
                by_tag
                    .entry(tag)
                    .and_modify(|seen| *seen = None)
                    .or_insert_with(|| Some((vm.vmid, vm.node.clone(), vm.status.clone())));
            }
        }
        by_tag
    }
}

/// The VMs of a snapshot that carry one request's uid tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Marked<'a> {
    /// None.
    None,
    /// Exactly one.
    One(&'a VmEntry),
    /// Several (their VMIDs, ascending): none of them is the request's until only one is left.
    Several(Vec<u32>),
}

struct Shared {
    latest: watch::Sender<Arc<Snapshot>>,
    /// Requests whose VMs the inventory watches, by uid.
    watched: Mutex<HashMap<String, Watched>>,
    /// Serialises reads, so that concurrent `refresh` callers share one call.
    refreshing: AsyncMutex<()>,
    pve: PveClient,
    trigger: Trigger,
}

/// The shared inventory of one Proxmox cluster.
#[derive(Clone)]
pub struct Inventory {
    shared: Arc<Shared>,
}

impl Inventory {
    /// Starts the periodic read (every `interval`); it stops when every clone is dropped.
    pub fn spawn(pve: PveClient, trigger: Trigger, interval: Duration) -> Self {
        let (latest, _) = watch::channel(Arc::new(Snapshot::default()));
        let inventory = Inventory {
            shared: Arc::new(Shared {
                latest,
                watched: Mutex::default(),
                refreshing: AsyncMutex::new(()),
                pve,
                trigger,
            }),
        };
        let weak = Arc::downgrade(&inventory.shared);
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                let Some(shared) = weak.upgrade() else { break };
                let inventory = Inventory { shared };
                if let Err(error) = inventory.refresh().await {
                    tracing::warn!(%error, "reading /cluster/resources failed; keeping the last inventory");
                }
            }
        });
        inventory
    }

    /// The last snapshot (possibly empty before the first read).
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.shared.latest.borrow().clone()
    }

    /// A snapshot read after this call began: callers that need to be sure (before creating a
    /// VM) use it. Concurrent callers share one read.
    pub async fn fresh_snapshot(&self) -> Result<Arc<Snapshot>, PveError> {
        self.snapshot_since(Instant::now()).await
    }

    /// A snapshot whose read began at or after `since`: the latest when it did, else a new read
    /// (shared with concurrent callers).
    pub async fn snapshot_since(&self, since: Instant) -> Result<Arc<Snapshot>, PveError> {
        let current = self.snapshot();
        if current.read_at.is_some_and(|t| t >= since) {
            return Ok(current);
        }
        let _guard = self.shared.refreshing.lock().await;
        let current = self.snapshot();
        if current.read_at.is_some_and(|t| t >= since) {
            return Ok(current);
        }
        self.read_locked().await
    }

    /// Reads now and notifies the requests whose VMs changed.
    pub async fn refresh(&self) -> Result<Arc<Snapshot>, PveError> {
        let _guard = self.shared.refreshing.lock().await;
        self.read_locked().await
    }

    async fn read_locked(&self) -> Result<Arc<Snapshot>, PveError> {
        let read_at = Instant::now();
        let resources = self.shared.pve.cluster_resources(None).await?;
        let next = Arc::new(Snapshot::from_resources(resources, read_at));
        tracing::trace!(
            vms = next.vms.len(),
            nodes = next.nodes.len(),
            ms = read_at.elapsed().as_millis() as u64,
            "inventory read"
        );
        let previous = self.shared.latest.send_replace(next.clone());
        if previous.read_at.is_some() {
            self.notify_changes(&previous, &next);
        }
        Ok(next)
    }

    /// Registers `request` (by uid) so that a change of its VM triggers a reconcile. With
    /// `expected` (what a reconcile just left the VM as), any read that differs from it triggers
    /// once, even when the VM changed and changed back between two reads; without it, a change
    /// between two reads triggers.
    pub fn watch(
        &self,
        uid: &str,
        request: ObjectRef<MachineRequest>,
        expected: Option<VmFingerprint>,
    ) {
        let mut watched = self
            .shared
            .watched
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        watched.insert(uid.to_string(), Watched { request, expected });
    }

    /// Stops watching a request (after its deletion).
    pub fn unwatch(&self, uid: &str) {
        let mut watched = self
            .shared
            .watched
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        watched.remove(uid);
    }

    fn notify_changes(&self, previous: &Snapshot, next: &Snapshot) {
        let mut watched = self
            .shared
            .watched
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let (next_by_tag, mut previous_by_tag) = (next.fingerprints_by_tag(), None);
        let of = |by_tag: &HashMap<String, Option<VmFingerprint>>, uid: &str| {
            by_tag
                .get(&Marker::new(uid, "", "").uid_tag())
                .cloned()
                .flatten()
        };
        for (uid, entry) in watched.iter_mut() {
            let after = of(&next_by_tag, uid);
            let before = match entry.expected.take() {
                Some(expected) => Some(expected),
                None => of(
                    previous_by_tag.get_or_insert_with(|| previous.fingerprints_by_tag()),
                    uid,
                ),
            };
            if before != after {
                tracing::debug!(%uid, ?before, ?after, "VM changed in Proxmox");
                let _ = self
                    .shared
                    .trigger
                    .send(super::Wake::Request(entry.request.clone()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resource(json: serde_json::Value) -> ClusterResource {
        serde_json::from_value(json).expect("resource JSON")
    }

    #[test]
    fn snapshot_indexes_vms_and_nodes_and_finds_a_request_by_its_tag() {
        let marker = Marker::new("0b9b1a2c-1111-4c8e-9f00-123456789abc", "ns", "web");
        let tags = format!("pve-operator;{}", marker.uid_tag());
        let snapshot = Snapshot::from_resources(
            vec![
                resource(
                    serde_json::json!({"id": "qemu/100", "type": "qemu", "vmid": 100, "node": "pve", "name": "web", "status": "running", "tags": tags}),
                ),
                resource(
                    serde_json::json!({"id": "qemu/101", "type": "qemu", "vmid": "101", "node": "pve", "status": "stopped", "template": 1, "name": "tpl"}),
                ),
                resource(
                    serde_json::json!({"id": "node/pve", "type": "node", "node": "pve", "status": "online", "maxmem": 8_589_934_592u64, "mem": "1073741824"}),
                ),
            ],
            Instant::now(),
        );
        assert!(matches!(snapshot.find_marked(&marker), Marked::One(vm) if vm.vmid == 100));
        assert_eq!(
            snapshot.find_marked(&Marker::new("other", "ns", "x")),
            Marked::None
        );
        assert_eq!(
            snapshot.find_template(None, Some("tpl")).map(|vm| vm.vmid),
            Some(101)
        );
        assert_eq!(snapshot.nodes["pve"].used_memory, Some(1 << 30));
        assert!(snapshot.nodes["pve"].online);
    }

    fn vm(vmid: u32, tags: &str, template: bool) -> ClusterResource {
        resource(serde_json::json!({
            "id": format!("qemu/{vmid}"), "type": "qemu", "vmid": vmid, "node": "pve",
            "status": "stopped", "tags": tags, "template": u8::from(template),
        }))
    }

    #[test]
    fn a_template_carrying_a_requests_tag_is_never_its_vm() {
        let marker = Marker::new("0b9b1a2c-1111-4c8e-9f00-123456789abc", "ns", "web");
        let tag = marker.uid_tag();
        // The lowest VMID is a template with the tag; the request's VM is the other one.
        let snapshot = Snapshot::from_resources(
            vec![vm(100, &tag, true), vm(105, &format!("web;{tag}"), false)],
            Instant::now(),
        );
        assert!(matches!(snapshot.find_marked(&marker), Marked::One(vm) if vm.vmid == 105));
        assert_eq!(
            snapshot.fingerprint_of(&marker.uid),
            Some((105, "pve".into(), "stopped".into()))
        );
        let only_template = Snapshot::from_resources(vec![vm(100, &tag, true)], Instant::now());
        assert_eq!(only_template.find_marked(&marker), Marked::None);
        assert_eq!(only_template.fingerprint_of(&marker.uid), None);
    }

    #[test]
    fn several_vms_with_one_requests_tag_are_all_named_and_none_is_its_vm() {
        let marker = Marker::new("0b9b1a2c-1111-4c8e-9f00-123456789abc", "ns", "web");
        let tag = marker.uid_tag();
        let upper = tag.to_uppercase();
        let snapshot = Snapshot::from_resources(
            vec![
                vm(300, &format!("pve-operator;{upper}"), false),
                vm(101, &tag, false),
                vm(102, "web", false),
                vm(200, &tag, false),
                vm(90, &tag, true),
            ],
            Instant::now(),
        );
        assert_eq!(
            snapshot.find_marked(&marker),
            Marked::Several(vec![101, 200, 300])
        );
        // No fingerprint while duplicated: removing one shows as a change.
        assert_eq!(snapshot.fingerprint_of(&marker.uid), None);
    }

    #[test]
    fn fingerprints_of_every_tag_at_once_are_those_of_each_request() {
        let [one, several, template, none] = [
            "0b9b1a2c-1111-4c8e-9f00-123456789abc",
            "0b9b1a2c-2222-4c8e-9f00-123456789abc",
            "0b9b1a2c-3333-4c8e-9f00-123456789abc",
            "0b9b1a2c-4444-4c8e-9f00-123456789abc",
        ]
        .map(|uid| Marker::new(uid, "ns", "web"));
        let snapshot = Snapshot::from_resources(
            vec![
                // Carrying its tag twice (in two letter cases) is still one VM.
                vm(
                    100,
                    &format!(
                        "pve-operator;{};{}",
                        one.uid_tag(),
                        one.uid_tag().to_uppercase()
                    ),
                    false,
                ),
                vm(101, &format!("pve-operator; {}", several.uid_tag()), false),
                vm(102, &several.uid_tag().to_uppercase(), false),
                vm(103, &template.uid_tag(), true),
            ],
            Instant::now(),
        );
        let by_tag = snapshot.fingerprints_by_tag();
        for marker in [&one, &several, &template, &none] {
            assert_eq!(
                by_tag.get(&marker.uid_tag()).cloned().flatten(),
                snapshot.fingerprint_of(&marker.uid),
                "{}",
                marker.uid
            );
        }
        assert_eq!(
            by_tag[&one.uid_tag()],
            Some((100, "pve".into(), "stopped".into()))
        );
    }
}
