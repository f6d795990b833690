//! The HTTPS (or plain HTTP) server and the embedding API: [`SimServer::start`] returns a
//! [`RunningSim`] with the URL, certificate fingerprint and root password.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tower::ServiceExt;

use crate::config::ClusterConfig;
use crate::error::SimError;
use crate::pipeline::Shared;
use crate::response::DropConnection;
use crate::router::Router;
use crate::state::{Sim, SimState};

/// How to start a simulator.
#[derive(Clone)]
pub struct SimOptions {
    /// Address to listen on; port 0 picks a free port. Default `127.0.0.1:0`.
    pub listen: SocketAddr,
    /// Password of `root@pam`.
    pub root_password: String,
    /// The cluster to pretend to be.
    pub config: ClusterConfig,
    /// Persist the state to this file (and resume from it when it exists).
    pub state_file: Option<PathBuf>,
    /// Serve plain HTTP instead of HTTPS.
    pub insecure_http: bool,
}

impl std::fmt::Debug for SimOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimOptions")
            .field("listen", &self.listen)
            .field("root_password", &"***")
            .field("state_file", &self.state_file)
            .field("insecure_http", &self.insecure_http)
            .finish_non_exhaustive()
    }
}

impl SimOptions {
    /// Defaults: `127.0.0.1:0`, HTTPS, the built-in cluster, no persistence.
    pub fn new(root_password: impl Into<String>) -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            root_password: root_password.into(),
            config: ClusterConfig::default(),
            state_file: None,
            insecure_http: false,
        }
    }
}

/// Starts simulators.
pub struct SimServer;

impl SimServer {
    /// Binds, builds (or restores) the state and serves in the background on the current tokio
    /// runtime. The server stops when the returned [`RunningSim`] is dropped or shut down.
    pub async fn start(opts: SimOptions) -> Result<RunningSim, SimError> {
        let now = crate::clock::now_ms(0);
        let fresh = SimState::new(opts.config.clone(), &opts.root_password, now)?;
        let loaded = match &opts.state_file {
            Some(path) => crate::persist::load(path)?,
            None => None,
        };
        // Reset returns to a fresh cluster that keeps the TLS identity and signing keys, so that
        // fingerprints and tickets stay valid.
        let (state, initial) = match loaded {
            Some(state) => {
                let mut initial = fresh;
                initial.tls = state.tls.clone();
                initial.keys = state.keys.clone();
                (state, initial)
            }
            None => (fresh.clone(), fresh),
        };
        let fingerprint = state.tls.fingerprint()?;
        let ca_pem = state.tls.ca_pem.clone();
        let tls = if opts.insecure_http {
            None
        } else {
            Some(tokio_rustls::TlsAcceptor::from(state.tls.server_config()?))
        };
        let listener = TcpListener::bind(opts.listen)
            .await
            .map_err(|e| SimError::io(format!("binding {}", opts.listen), e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| SimError::io("reading the local address", e))?;
        let shared = Arc::new(Shared {
            sim: Mutex::new(Sim::new(state, initial)),
            router: Router::build(),
            persist_notify: tokio::sync::Notify::new(),
            workers: Default::default(),
        });
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut tasks = vec![tokio::spawn(accept_loop(
            listener,
            tls,
            shared.clone(),
            stop_rx.clone(),
        ))];
        tasks.push(tokio::spawn(ticker(shared.clone(), stop_rx.clone())));
        if let Some(path) = opts.state_file.clone() {
            tasks.push(tokio::spawn(persister(shared.clone(), path, stop_rx)));
        }
        let scheme = if opts.insecure_http { "http" } else { "https" };
        tracing::info!(%addr, %fingerprint, scheme, "pve-sim listening");
        Ok(RunningSim {
            addr,
            scheme,
            fingerprint,
            ca_pem,
            root_password: opts.root_password,
            shared,
            stop: stop_tx,
            tasks,
        })
    }
}

/// A running simulator.
pub struct RunningSim {
    addr: SocketAddr,
    scheme: &'static str,
    fingerprint: String,
    ca_pem: String,
    root_password: String,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for RunningSim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningSim")
            .field("addr", &self.addr)
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

impl RunningSim {
    /// The API base URL, e.g. `https://127.0.0.1:41234/api2/json`.
    pub fn url(&self) -> String {
        format!("{}/api2/json", self.base_url())
    }

    /// `https://127.0.0.1:PORT` (where `/_sim/*` lives).
    pub fn base_url(&self) -> String {
        format!("{}://{}", self.scheme, self.addr)
    }

    /// The socket address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// SHA-256 fingerprint of the server certificate, `AB:CD:...`.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// PEM of the CA that signed the server certificate (valid for `127.0.0.1` and `localhost`).
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// The `root@pam` password.
    pub fn root_password(&self) -> &str {
        &self.root_password
    }

    /// A `proxmox:` connection block (the config format clients of this project read) for
    /// `root@pam` with its password, trusting this server by its certificate fingerprint: the
    /// setup every test that talks to the simulator as root starts with.
    pub fn root_config_yaml(&self) -> String {
        format!(
            "proxmox:\n  url: \"{}\"\n  fingerprint: \"{}\"\n  username: root@pam\n  password: \"{}\"\n",
            self.url(),
            self.fingerprint,
            self.root_password
        )
    }

    /// Runs `f` on the simulator state (for tests that set up or inspect state directly).
    pub fn with_state<R>(&self, f: impl FnOnce(&mut SimState) -> R) -> R {
        let mut sim = self.shared.lock();
        sim.dirty = true;
        f(&mut sim.state)
    }

    /// The request and task counters (as `GET /_sim/stats`).
    pub fn stats(&self) -> crate::stats::Stats {
        self.shared.lock().stats.clone()
    }

    /// The capacity model's counters (as `capacity` in `GET /_sim/stats`); `None` when the
    /// model is off.
    pub fn capacity_stats(&self) -> Option<crate::capacity::CapacityStats> {
        self.shared.lock().capacity_stats()
    }

    /// The requests received so far, in arrival order (as `GET /_sim/requests`).
    pub fn requests(&self) -> Vec<crate::requests::RequestRecord> {
        self.shared.lock().requests.records()
    }

    /// Replaces the fault rules (as `PUT /_sim/faults`).
    pub fn set_faults(&self, faults: crate::faults::FaultConfig) {
        self.shared.lock().faults.configure(faults);
    }

    /// Stops the server, writes the state file one last time, and waits for it to finish.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        for t in std::mem::take(&mut self.tasks) {
            let _ = t.await;
        }
    }
}

impl Drop for RunningSim {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        for t in &self.tasks {
            t.abort();
        }
    }
}

#[derive(Debug)]
struct Dropped;

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by fault injection")
    }
}

impl std::error::Error for Dropped {}

async fn accept_loop(
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) {
    let app = axum::Router::new()
        .fallback(crate::pipeline::handle)
        .with_state(shared);
    loop {
        let accepted = tokio::select! {
            _ = stop.changed() => break,
            a = listener.accept() => a,
        };
        let (tcp, _) = match accepted {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let app = app.clone();
        let tls = tls.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            match tls {
                Some(acceptor) => match acceptor.accept(tcp).await {
                    Ok(stream) => serve_connection(TokioIo::new(stream), app, stop).await,
                    Err(e) => tracing::debug!(error = %e, "TLS handshake failed"),
                },
                None => serve_connection(TokioIo::new(tcp), app, stop).await,
            }
        });
    }
}

async fn serve_connection<I>(io: I, app: axum::Router, mut stop: watch::Receiver<bool>)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
        let app = app.clone();
        async move {
            let resp = match app.oneshot(req.map(Body::new)).await {
                Ok(r) => r,
                Err(never) => match never {},
            };
            if resp.extensions().get::<DropConnection>().is_some() {
                return Err(Dropped);
            }
            Ok(resp)
        }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .keep_alive(true)
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(Duration::from_secs(30))
        .serve_connection(io, service);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        _ = stop.changed() => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}

/// Completes due tasks even when nobody asks.
async fn ticker(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            _ = tokio::time::sleep(Duration::from_millis(20)) => {
                let mut sim = shared.lock();
                let now = sim.now_ms();
                sim.advance(now);
            }
        }
    }
}

/// Writes the state file when it changed, at most every 500 ms, and once more at shutdown.
async fn persister(shared: Arc<Shared>, path: PathBuf, mut stop: watch::Receiver<bool>) {
    loop {
        let stopping = tokio::select! {
            _ = stop.changed() => true,
            _ = shared.persist_notify.notified() => false,
            _ = tokio::time::sleep(Duration::from_millis(500)) => false,
        };
        let bytes = {
            let mut sim = shared.lock();
            if sim.dirty {
                sim.dirty = false;
                serde_json::to_vec(&sim.state).ok()
            } else {
                None
            }
        };
        if let Some(bytes) = bytes {
            let path = path.clone();
            let res =
                tokio::task::spawn_blocking(move || crate::persist::write_atomic(&path, &bytes))
                    .await;
            if let Ok(Err(e)) = res {
                tracing::error!(error = %e, "persisting the state failed");
            }
        }
        if stopping {
            break;
        }
        // At most two writes a second: a big state is serialised under the lock.
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_hides_the_root_password() {
        let text = format!("{:?}", SimOptions::new("hunter2-secret"));
        assert!(!text.contains("hunter2-secret"), "{text}");
        assert!(text.contains("***"));
    }
}
