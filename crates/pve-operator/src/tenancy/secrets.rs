//! The Secrets that ProxmoxIdentities name, each read and watched on its own (a field selector on
//! its name), so that the controller's RBAC can grant exactly those Secrets by `resourceNames`
//! and never the rest of its namespace.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::runtime::{WatchStreamExt, watcher};
use tokio::sync::{broadcast, watch};

/// How long a first read waits for its watch to answer before it gives up (the reconcile is
/// retried).
const FIRST_ANSWER: Duration = Duration::from_secs(10);

/// What the watch of one Secret knows.
#[derive(Debug, Clone)]
enum State {
    /// No answer yet.
    Unknown,
    /// The Secret does not exist.
    Absent,
    /// Its current content.
    Present(Arc<Secret>),
    /// The watch fails (usually: RBAC does not grant this Secret).
    Failing(String),
}

/// Why a Secret could not be read.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SecretError {
    /// The watch has not answered yet.
    #[error("Secret {namespace}/{name} has not been read yet; retrying")]
    NotYetRead {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
    },
    /// Kubernetes refused or failed the read.
    #[error(
        "Secret {namespace}/{name} cannot be read: {reason}; grant the controller list and watch on it by name (Helm chart: identitySecrets)"
    )]
    Unreadable {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
        /// What Kubernetes said.
        reason: String,
    },
}

struct Entry {
    state: watch::Receiver<State>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Entry {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The identity Secrets of one namespace, by name.
pub struct SecretCache {
    api: Api<Secret>,
    namespace: String,
    changed: broadcast::Sender<String>,
    entries: Mutex<HashMap<String, Entry>>,
}

impl SecretCache {
    /// A cache of Secrets in `namespace`.
    pub fn new(client: kube::Client, namespace: &str) -> Self {
        Self {
            api: Api::namespaced(client, namespace),
            namespace: namespace.to_string(),
            changed: broadcast::channel(256).0,
            entries: Mutex::default(),
        }
    }

    /// The names of the Secrets that change from now on (after their first read), as a stream.
    pub fn changes(&self) -> impl futures::Stream<Item = String> + Send + 'static {
        futures::stream::unfold(self.changed.subscribe(), |mut rx| async move {
            loop {
                match rx.recv().await {
                    Ok(name) => return Some((name, rx)),
                    // Missed some: the periodic recheck covers them.
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        })
    }

    /// The namespace the Secrets are read in.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The Secret `name` (`None`: it does not exist), as its watch last saw it. The first call
    /// for a name starts the watch and waits for its first answer.
    pub async fn get(&self, name: &str) -> Result<Option<Arc<Secret>>, SecretError> {
        let mut state = self.watch(name);
        let answered = tokio::time::timeout(
            FIRST_ANSWER,
            state.wait_for(|s| !matches!(s, State::Unknown)),
        )
        .await;
        let current = match answered {
            Ok(Ok(current)) => current.clone(),
            _ => {
                return Err(SecretError::NotYetRead {
                    namespace: self.namespace.clone(),
                    name: name.to_string(),
                });
            }
        };
        match current {
            State::Present(secret) => Ok(Some(secret)),
            State::Absent => Ok(None),
            State::Failing(reason) => Err(SecretError::Unreadable {
                namespace: self.namespace.clone(),
                name: name.to_string(),
                reason,
            }),
            State::Unknown => Err(SecretError::NotYetRead {
                namespace: self.namespace.clone(),
                name: name.to_string(),
            }),
        }
    }

    fn watch(&self, name: &str) -> watch::Receiver<State> {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(entry) = entries.get(name)
            && !entry.task.is_finished()
        {
            return entry.state.clone();
        }
        let (tx, rx) = watch::channel(State::Unknown);
        let task = tokio::spawn(watch_one(
            self.api.clone(),
            name.to_string(),
            tx,
            self.changed.clone(),
        ));
        entries.insert(
            name.to_string(),
            Entry {
                state: rx.clone(),
                task,
            },
        );
        rx
    }
}

/// Follows one Secret until the receiver side is gone.
async fn watch_one(
    api: Api<Secret>,
    name: String,
    state: watch::Sender<State>,
    changed: broadcast::Sender<String>,
) {
    let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
    let mut events = watcher(api, config).default_backoff().boxed();
    // During a (re)list, what the list found; `None` outside of one.
    let mut listing: Option<Option<Secret>> = None;
    while let Some(event) = events.next().await {
        let next = match event {
            Ok(watcher::Event::Init) => {
                listing = Some(None);
                continue;
            }
            Ok(watcher::Event::InitApply(secret)) => {
                listing = Some(Some(secret));
                continue;
            }
            Ok(watcher::Event::InitDone) => match listing.take().flatten() {
                Some(secret) => State::Present(Arc::new(secret)),
                None => State::Absent,
            },
            Ok(watcher::Event::Apply(secret)) => State::Present(Arc::new(secret)),
            Ok(watcher::Event::Delete(_)) => State::Absent,
            Err(error) => State::Failing(error.to_string()),
        };
        let first = matches!(*state.borrow(), State::Unknown);
        let differs = !same(&state.borrow(), &next);
        if state.send(next).is_err() {
            return;
        }
        if differs && !first {
            let _ = changed.send(name.clone());
        }
    }
}

/// Whether two states say the same (a Secret by its resourceVersion).
fn same(a: &State, b: &State) -> bool {
    match (a, b) {
        (State::Present(x), State::Present(y)) => {
            x.metadata.resource_version == y.metadata.resource_version
        }
        (State::Absent, State::Absent) | (State::Unknown, State::Unknown) => true,
        (State::Failing(x), State::Failing(y)) => x == y,
        _ => false,
    }
}
