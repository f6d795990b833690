//! A loopback HTTP server of image files for the download tests: `/files/NAME` answers the file
//! (404 for a name it does not have), `/stall/NAME` answers it only once the test calls
//! [`ImageServer::release`] (the test learns that the request came with
//! [`ImageServer::stalled_request_arrived`]).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use tokio::sync::{Notify, watch};

struct Inner {
    files: BTreeMap<String, Vec<u8>>,
    arrived: Notify,
    released: watch::Receiver<bool>,
}

pub struct ImageServer {
    addr: SocketAddr,
    inner: Arc<Inner>,
    release: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

async fn file(State(inner): State<Arc<Inner>>, Path(name): Path<String>) -> impl IntoResponse {
    match inner.files.get(&name) {
        Some(body) => (StatusCode::OK, body.clone()).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn stalled(state: State<Arc<Inner>>, name: Path<String>) -> impl IntoResponse {
    state.arrived.notify_one();
    let mut released = state.released.clone();
    // An error means the server is going away: answer anyway.
    let _ = released.wait_for(|r| *r).await;
    file(state, name).await
}

impl ImageServer {
    pub async fn start(files: &[(&str, &[u8])]) -> Self {
        let (release, released) = watch::channel(false);
        let inner = Arc::new(Inner {
            files: files
                .iter()
                .map(|(n, b)| (n.to_string(), b.to_vec()))
                .collect(),
            arrived: Notify::new(),
            released,
        });
        let app = axum::Router::new()
            .route("/files/{name}", axum::routing::get(file))
            .route("/stall/{name}", axum::routing::get(stalled))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the image server");
        let addr = listener.local_addr().expect("address");
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("image server runs");
        });
        Self {
            addr,
            inner,
            release,
            task,
        }
    }

    /// `http://127.0.0.1:PORT/files/NAME`.
    pub fn url(&self, name: &str) -> String {
        format!("http://{}/files/{name}", self.addr)
    }

    /// A URL whose answer waits for [`ImageServer::release`].
    pub fn stalled_url(&self, name: &str) -> String {
        format!("http://{}/stall/{name}", self.addr)
    }

    /// Waits until a request to a [`ImageServer::stalled_url`] has come.
    pub async fn stalled_request_arrived(&self) {
        self.inner.arrived.notified().await;
    }

    /// Lets the stalled requests be answered.
    pub fn release(&self) {
        self.release.send_replace(true);
    }
}

impl Drop for ImageServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Lower-case hex SHA-256 of `bytes`.
pub fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex(&sha2::Sha256::digest(bytes))
}

/// Lower-case hex SHA-512 of `bytes`.
pub fn sha512(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex(&sha2::Sha512::digest(bytes))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A loopback port nothing listens on (bound, then released).
pub async fn closed_port() -> u16 {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    l.local_addr().expect("address").port()
}
