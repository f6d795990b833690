//! The effective privileges of one connection, read from Proxmox at most once per path and TTL,
//! so that the check before each step of a reconcile costs a lookup.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use pve_client::{ErrorKind, PveClient, PveConfig, PveError};

use super::Subject;

/// The effective privileges of one connection by path, each read at most once per TTL, so a
/// reconcile's check costs nothing but a lookup.
pub struct PermissionCache {
    subject: Subject,
    ttl: Duration,
    entries: tokio::sync::Mutex<HashMap<String, (Instant, Option<Held>)>>,
}

/// Privilege → propagate flag, on one path.
type Held = BTreeMap<String, bool>;

/// How long a connection trusts what Proxmox said about its privileges.
pub const PERMISSION_CACHE_TTL: Duration = Duration::from_secs(60);

impl PermissionCache {
    /// A cache for the credentials of `config`, keeping answers for `ttl`.
    pub fn new(config: &PveConfig, ttl: Duration) -> Self {
        Self {
            subject: Subject::of(config),
            ttl,
            entries: tokio::sync::Mutex::default(),
        }
    }

    /// Who the credentials are.
    pub fn subject(&self) -> &Subject {
        &self.subject
    }

    /// The privileges (with their propagate flags) held on `path`, or `None` when this Proxmox
    /// cannot tell (`/access/permissions` not implemented).
    pub async fn on_path(&self, pve: &PveClient, path: &str) -> Result<Option<Held>, PveError> {
        let mut entries = self.entries.lock().await;
        if let Some((read_at, privileges)) = entries.get(path)
            && read_at.elapsed() < self.ttl
        {
            return Ok(privileges.clone());
        }
        let privileges = match pve.permissions(Some(path), None).await {
            Ok(permissions) => Some(
                permissions
                    .0
                    .get(path)
                    .map(|m| m.iter().map(|(k, v)| (k.clone(), v.0)).collect())
                    .unwrap_or_default(),
            ),
            Err(e) if e.kind() == ErrorKind::NotImplemented => {
                tracing::warn!(path, error = %e, "this Proxmox cannot report effective permissions; requests are sent unchecked and its refusals reported");
                None
            }
            Err(e) => return Err(e),
        };
        entries.insert(path.to_string(), (Instant::now(), privileges.clone()));
        Ok(privileges)
    }
}

/// The cache against pve-sim (a dependency of the default `demo` feature).
#[cfg(all(test, feature = "demo"))]
mod with_simulator {
    use super::*;
    use pve_sim::faults::{FaultConfig, FaultKind, FaultRule};

    #[tokio::test]
    async fn the_cache_asks_proxmox_once_per_path_within_its_ttl_and_tolerates_no_answer() {
        let sim = pve_sim::SimServer::start(pve_sim::SimOptions::new("pw"))
            .await
            .expect("simulator");
        let config = PveConfig::from_yaml_str(&sim.root_config_yaml()).expect("config");
        let pve = PveClient::new(&config).expect("client");
        let asked = || -> u64 {
            sim.stats()
                .requests_by_endpoint
                .iter()
                .filter(|(endpoint, _)| endpoint.contains("/access/permissions"))
                .map(|(_, n)| *n)
                .sum()
        };
        let cache = PermissionCache::new(&config, Duration::from_secs(60));
        for _ in 0..3 {
            let held = cache.on_path(&pve, "/vms").await.expect("permissions");
            assert!(held.is_some_and(|h| h.get("VM.Allocate") == Some(&true)));
        }
        assert_eq!(asked(), 1, "three checks, one request");
        cache.on_path(&pve, "/nodes").await.expect("permissions");
        assert_eq!(asked(), 2, "one request per path");
        let expired = PermissionCache::new(&config, Duration::ZERO);
        expired.on_path(&pve, "/vms").await.expect("permissions");
        expired.on_path(&pve, "/vms").await.expect("permissions");
        assert_eq!(asked(), 4, "asked again once the answer expired");

        sim.set_faults(FaultConfig {
            seed: 0,
            rules: vec![FaultRule {
                method: Some("GET".into()),
                path: Some("/access/permissions".into()),
                rate: 1.0,
                max_count: None,
                fault: FaultKind::Error {
                    status: 501,
                    message: "Method 'GET /access/permissions' not implemented".into(),
                },
            }],
        });
        let unreadable = PermissionCache::new(&config, Duration::from_secs(60));
        assert_eq!(
            unreadable
                .on_path(&pve, "/vms")
                .await
                .expect("not an error"),
            None,
            "a Proxmox that cannot tell: unchecked, Proxmox decides"
        );
        sim.shutdown().await;
    }
}
