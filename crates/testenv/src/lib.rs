//! A real Kubernetes control plane for tests: etcd and kube-apiserver on free loopback ports, like
//! Go's envtest, for kube-rs.
//!
//! ```no_run
//! # async fn example() -> Result<(), testenv::Error> {
//! let env = testenv::TestEnv::shared().await?; // one control plane per test process
//! let client = env.client()?;                  // a client bound to the caller's runtime
//! let ns = env.create_namespace(&client, "my-test").await?;
//! # let _ = ns; Ok(()) }
//! ```
//!
//! The binaries come from `TEST_ASSET_KUBE_APISERVER`/`TEST_ASSET_ETCD`, `KUBEBUILDER_ASSETS`, or
//! the project's pinned build (`hack/envtest/build.sh`, built once into `~/.cache/pve-operator`).
//! Processes are killed and the temporary directory removed when a [`TestEnv`] is dropped, and —
//! through a watchdog — also when the test process ends without dropping it (a shared control
//! plane, a panic, a SIGKILL).

mod assets;
mod crds;
mod kubeconfig;
mod pki;
mod process;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{ObjectMeta, PostParams};
use kube::{Api, Client, Config};
use tokio::sync::OnceCell;

pub use assets::{Assets, locate as locate_assets};
pub use crds::{apply_crds, committed_crds_dir, install_committed_crds, read_crd_dir};
use process::ServerProcess;

/// How long the control plane may take to report ready before start fails.
const READY_TIMEOUT: Duration = Duration::from_secs(90);

/// Why a control plane could not be started or used.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The binaries are missing and could not be built.
    #[error("control-plane binaries unavailable: {0}")]
    Assets(String),
    /// Generating certificates or keys failed.
    #[error("generating the control plane's certificates failed: {0}")]
    Pki(String),
    /// A file or directory of the control plane could not be written.
    #[error("preparing the control plane's directory failed: {0}")]
    Io(#[from] std::io::Error),
    /// A process could not be started.
    #[error("could not start {name}: {reason}")]
    Spawn {
        /// Which server.
        name: &'static str,
        /// What the OS said.
        reason: String,
    },
    /// A process exited while it should be serving.
    #[error("{name} exited ({status}); last lines of its output:\n{log_tail}")]
    Exited {
        /// Which server.
        name: &'static str,
        /// Its exit status.
        status: String,
        /// The end of its log.
        log_tail: String,
    },
    /// The API server did not become ready in time.
    #[error("kube-apiserver not ready after {seconds}s; last lines of its output:\n{log_tail}")]
    NotReady {
        /// How long we waited.
        seconds: u64,
        /// The end of its log.
        log_tail: String,
    },
    /// Building a client or talking to the API server failed.
    #[error("kubernetes client error: {0}")]
    Kube(#[from] kube::Error),
    /// The kubeconfig could not be turned into a client configuration.
    #[error("kubeconfig error: {0}")]
    Kubeconfig(String),
    /// A CRD could not be read or did not become Established.
    #[error("{0}")]
    Crd(String),
}

/// A running etcd + kube-apiserver pair with an admin credential.
pub struct TestEnv {
    // Field order is drop order: the API server goes before etcd, the directory last.
    apiserver: ServerProcess,
    etcd: ServerProcess,
    config: Config,
    kubeconfig_path: PathBuf,
    server_url: String,
    startup: Duration,
    dir: tempfile::TempDir,
}

impl TestEnv {
    /// Starts a new control plane owned by the caller; it stops when the value is dropped.
    pub async fn start() -> Result<Self, Error> {
        let assets = assets::locate()?;
        // A port taken between choosing and binding makes a server exit at once; try again.
        let mut attempt = 0;
        loop {
            attempt += 1;
            match Self::start_with(&assets).await {
                Err(Error::Exited { .. }) if attempt < 3 => continue,
                other => return other,
            }
        }
    }

    /// The control plane shared by every test of this process (started on first use). Tests
    /// sharing it isolate themselves by namespace ([`TestEnv::create_namespace`]).
    pub async fn shared() -> Result<&'static TestEnv, Error> {
        static SHARED: OnceCell<Result<TestEnv, String>> = OnceCell::const_new();
        SHARED
            .get_or_init(|| async { TestEnv::start().await.map_err(|e| e.to_string()) })
            .await
            .as_ref()
            .map_err(|e| {
                Error::Kubeconfig(format!("the shared control plane failed to start: {e}"))
            })
    }

    async fn start_with(assets: &Assets) -> Result<Self, Error> {
        let began = Instant::now();
        let dir = tempfile::Builder::new()
            .prefix("pve-operator-testenv-")
            .tempdir_in(fast_tmp())?;
        let root = dir.path();
        let pki = pki::Pki::generate()?;
        let write = |name: &str, text: &str| std::fs::write(root.join(name), text);
        write("ca.crt", &pki.ca_cert)?;
        write("apiserver.crt", &pki.serving_cert)?;
        write("apiserver.key", &pki.serving_key)?;
        write("service-account.key", &pki.service_account_key)?;
        write("service-account.pub", &pki.service_account_public_key)?;

        let [etcd_port, peer_port, api_port] = free_ports()?;
        let etcd_url = format!("http://127.0.0.1:{etcd_port}");
        let peer_url = format!("http://127.0.0.1:{peer_port}");
        let etcd_args: Vec<String> = vec![
            "--name=testenv".into(),
            format!("--data-dir={}", root.join("etcd").display()),
            format!("--listen-client-urls={etcd_url}"),
            format!("--advertise-client-urls={etcd_url}"),
            format!("--listen-peer-urls={peer_url}"),
            format!("--initial-advertise-peer-urls={peer_url}"),
            format!("--initial-cluster=testenv={peer_url}"),
            // Test data is thrown away: durability is not worth the fsync latency.
            "--unsafe-no-fsync".into(),
            "--log-level=warn".into(),
        ];
        // The etcd watchdog removes the directory once etcd (the only writer) is gone.
        let etcd = ServerProcess::spawn(
            "etcd",
            &assets.etcd,
            &etcd_args,
            root.join("etcd.log"),
            Some(root),
        )?;

        let path = |name: &str| root.join(name).display().to_string();
        let api_args: Vec<String> = vec![
            format!("--etcd-servers={etcd_url}"),
            "--bind-address=127.0.0.1".into(),
            "--advertise-address=127.0.0.1".into(),
            format!("--secure-port={api_port}"),
            format!("--cert-dir={}", path("apiserver-certs")),
            format!("--tls-cert-file={}", path("apiserver.crt")),
            format!("--tls-private-key-file={}", path("apiserver.key")),
            format!("--client-ca-file={}", path("ca.crt")),
            format!("--service-account-key-file={}", path("service-account.pub")),
            format!(
                "--service-account-signing-key-file={}",
                path("service-account.key")
            ),
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local".into(),
            "--service-cluster-ip-range=10.0.0.0/24".into(),
            "--authorization-mode=RBAC".into(),
            "--allow-privileged=true".into(),
            // No other API server shares this etcd: skip the endpoint lease reconciler.
            "--endpoint-reconciler-type=none".into(),
            "--enable-priority-and-fairness=false".into(),
        ];
        let mut apiserver = ServerProcess::spawn(
            "kube-apiserver",
            &assets.kube_apiserver,
            &api_args,
            root.join("kube-apiserver.log"),
            None,
        )?;

        let server_url = format!("https://127.0.0.1:{api_port}");
        let kubeconfig = kubeconfig::admin(&server_url, &pki);
        let kubeconfig_path = root.join("kubeconfig");
        std::fs::write(&kubeconfig_path, kubeconfig::to_yaml(&kubeconfig)?)?;
        let config = Config::from_custom_kubeconfig(kubeconfig, &Default::default())
            .await
            .map_err(|e| Error::Kubeconfig(e.to_string()))?;

        let mut etcd = etcd;
        wait_ready(&server_url, &pki, &mut etcd, &mut apiserver).await?;
        let startup = began.elapsed();
        tracing::info!(url = %server_url, startup_ms = startup.as_millis() as u64, "control plane ready");
        Ok(TestEnv {
            apiserver,
            etcd,
            config,
            kubeconfig_path,
            server_url,
            startup,
            dir,
        })
    }

    /// A new admin client. Create one per test (per tokio runtime): a client is bound to the
    /// runtime it was made in.
    pub fn client(&self) -> Result<Client, Error> {
        Ok(Client::try_from(self.config.clone())?)
    }

    /// The admin client configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// A kubeconfig file with the admin credential, for `kubectl --kubeconfig` and subprocesses.
    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig_path
    }

    /// The API server's URL (`https://127.0.0.1:<port>`).
    pub fn server_url(&self) -> &str {
        &self.server_url
    }

    /// The temporary directory holding certificates, logs and etcd's data.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Process ids of etcd and kube-apiserver, for tests of the cleanup itself.
    pub fn pids(&self) -> [u32; 2] {
        [self.etcd.pid(), self.apiserver.pid()]
    }

    /// How long the start took, from nothing to `/readyz` answering ok.
    pub fn startup_time(&self) -> Duration {
        self.startup
    }

    /// Creates a namespace with a unique name starting with `prefix` and returns its name.
    pub async fn create_namespace(&self, client: &Client, prefix: &str) -> Result<String, Error> {
        let namespaces: Api<Namespace> = Api::all(client.clone());
        let ns = Namespace {
            metadata: ObjectMeta {
                generate_name: Some(format!("{prefix}-")),
                ..Default::default()
            },
            ..Default::default()
        };
        let created = namespaces.create(&PostParams::default(), &ns).await?;
        created.metadata.name.ok_or_else(|| {
            Error::Kubeconfig("the API server returned a namespace without a name".into())
        })
    }
}

/// Polls `/readyz` until the API server answers `ok`, failing early when a process exits.
///
/// A plain HTTPS client with the admin certificate is used rather than a `kube::Client`, whose
/// tracing reports every 500 of a starting server as an error.
async fn wait_ready(
    server_url: &str,
    pki: &pki::Pki,
    etcd: &mut ServerProcess,
    apiserver: &mut ServerProcess,
) -> Result<(), Error> {
    let http_err = |e: reqwest::Error| Error::Kubeconfig(format!("readiness client: {e}"));
    let ca = reqwest::Certificate::from_pem(pki.ca_cert.as_bytes()).map_err(http_err)?;
    let identity =
        reqwest::Identity::from_pem(format!("{}{}", pki.admin_cert, pki.admin_key).as_bytes())
            .map_err(http_err)?;
    let http = reqwest::Client::builder()
        .add_root_certificate(ca)
        .identity(identity)
        .timeout(Duration::from_secs(5))
        .build()
        .map_err(http_err)?;
    let url = format!("{server_url}/readyz");
    let began = Instant::now();
    loop {
        etcd.ensure_running()?;
        apiserver.ensure_running()?;
        if let Ok(response) = http.get(&url).send().await
            && response.status().is_success()
        {
            return Ok(());
        }
        if began.elapsed() > READY_TIMEOUT {
            return Err(Error::NotReady {
                seconds: READY_TIMEOUT.as_secs(),
                log_tail: apiserver.log_tail(40),
            });
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A tmpfs when there is one (etcd is much faster there), the system temp dir otherwise.
fn fast_tmp() -> PathBuf {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() && tempfile::tempdir_in(shm).is_ok() {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    }
}

/// Picks free loopback ports by binding to port 0 (all held until all are chosen, so distinct).
fn free_ports<const N: usize>() -> Result<[u16; N], Error> {
    let listeners = (0..N)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<Vec<_>, _>>()?;
    let mut ports = [0u16; N];
    for (port, listener) in ports.iter_mut().zip(&listeners) {
        *port = listener.local_addr()?.port();
    }
    Ok(ports)
}
