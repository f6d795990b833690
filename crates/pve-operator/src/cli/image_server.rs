//! A small HTTP server on loopback that serves image files from memory, so that the demo (and
//! the tests) can have Proxmox download images with `download-url` without reaching the
//! internet ([`serve_stand_ins`] points ProxmoxImages at stand-in files). Responses can be
//! held back until released, to stand for a slow download.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use pve_operator_api::{ChecksumAlgorithm, ImageChecksum, ProxmoxImage};
use sha2::{Digest, Sha256};
use tokio::sync::watch;

/// The server's files and counters, shared with its handler.
struct Files {
    by_path: BTreeMap<String, Arc<Vec<u8>>>,
    requests: BTreeMap<String, AtomicUsize>,
    held: watch::Sender<bool>,
}

/// A running image server; it stops when dropped.
pub struct ImageServer {
    addr: SocketAddr,
    files: Arc<Files>,
    task: tokio::task::JoinHandle<()>,
}

impl ImageServer {
    /// Serves `files` (path without the leading `/` → content) on `127.0.0.1` at a free port.
    pub async fn start(files: Vec<(String, Vec<u8>)>) -> std::io::Result<ImageServer> {
        let requests = files
            .iter()
            .map(|(p, _)| (p.clone(), AtomicUsize::new(0)))
            .collect();
        let files = Arc::new(Files {
            by_path: files.into_iter().map(|(p, c)| (p, Arc::new(c))).collect(),
            requests,
            held: watch::Sender::new(false),
        });
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let app = Router::new()
            .route("/{*path}", get(serve))
            .with_state(files.clone());
        let task = tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, app).await {
                tracing::warn!(%error, "the image server stopped");
            }
        });
        Ok(ImageServer { addr, files, task })
    }

    /// The URL of `path`, e.g. `http://127.0.0.1:41234/debian.qcow2`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}/{path}", self.addr)
    }

    /// How many requests for `path` the server has received.
    pub fn requests_for(&self, path: &str) -> usize {
        self.files
            .requests
            .get(path)
            .map_or(0, |c| c.load(Ordering::SeqCst))
    }

    /// Holds every response (new and waiting ones) until [`ImageServer::release`].
    pub fn hold(&self) {
        self.files.held.send_replace(true);
    }

    /// Lets held responses go.
    pub fn release(&self) {
        self.files.held.send_replace(false);
    }
}

/// The size of a stand-in image file.
const STAND_IN_SIZE: usize = 1 << 20;

/// A stand-in for the file at `name`: the same bytes for the same name, so that its checksum
/// is stable.
pub fn stand_in_content(name: &str) -> Vec<u8> {
    format!("pve-operator stand-in for {name}\n")
        .into_bytes()
        .into_iter()
        .cycle()
        .take(STAND_IN_SIZE)
        .collect()
}

/// The file name at the end of a URL's path.
fn file_name_of(url: &str) -> String {
    let path = url.split(['?', '#']).next().unwrap_or_default();
    path.rsplit('/')
        .next()
        .filter(|n| !n.is_empty())
        .unwrap_or("image")
        .to_string()
}

/// Serves a stand-in file for each image and points the image at it: its `url` becomes the
/// loopback server's and its checksum the stand-in's (sha256). Returns the server (`None`
/// for no images) and, per image, the URL it had.
pub async fn serve_stand_ins(
    images: &mut [ProxmoxImage],
) -> std::io::Result<(Option<ImageServer>, Vec<String>)> {
    if images.is_empty() {
        return Ok((None, Vec::new()));
    }
    let mut files = Vec::new();
    for (i, image) in images.iter().enumerate() {
        let path = format!("{i}/{}", file_name_of(&image.spec.url));
        files.push((path.clone(), stand_in_content(&path)));
    }
    let server = ImageServer::start(files.clone()).await?;
    let mut original = Vec::new();
    for (image, (path, content)) in images.iter_mut().zip(&files) {
        original.push(std::mem::replace(&mut image.spec.url, server.url(path)));
        image.spec.checksum = ImageChecksum {
            algorithm: ChecksumAlgorithm::Sha256,
            value: Sha256::digest(content)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect(),
        };
    }
    Ok((Some(server), original))
}

impl Drop for ImageServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(State(files): State<Arc<Files>>, Path(path): Path<String>) -> Response {
    let Some(content) = files.by_path.get(&path).cloned() else {
        return (StatusCode::NOT_FOUND, "no such file").into_response();
    };
    if let Some(count) = files.requests.get(&path) {
        count.fetch_add(1, Ordering::SeqCst);
    }
    let mut held = files.held.subscribe();
    // A sender that is gone cannot hold anything back any more.
    let _ = held.wait_for(|h| !*h).await;
    (StatusCode::OK, content.as_ref().clone()).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn it_serves_its_files_counts_requests_and_holds_until_released() {
        let server = ImageServer::start(vec![("a/b.iso".into(), b"iso bytes".to_vec())])
            .await
            .expect("server");
        let client = hyper_get(&server.url("a/b.iso")).await;
        assert_eq!(client, (200, b"iso bytes".to_vec()));
        assert_eq!(hyper_get(&server.url("missing")).await.0, 404);
        assert_eq!(server.requests_for("a/b.iso"), 1);
        server.hold();
        let url = server.url("a/b.iso");
        let pending = tokio::spawn(async move { hyper_get(&url).await });
        while server.requests_for("a/b.iso") < 2 {
            tokio::task::yield_now().await;
        }
        assert!(!pending.is_finished(), "a held response waits");
        server.release();
        assert_eq!(pending.await.expect("joined").0, 200);
    }

    /// A plain HTTP/1.1 GET over a TCP stream: status and body.
    async fn hyper_get(url: &str) -> (u16, Vec<u8>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let rest = url.strip_prefix("http://").expect("http");
        let (host, path) = rest.split_once('/').expect("path");
        let mut stream = tokio::net::TcpStream::connect(host).await.expect("connect");
        let request = format!("GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.expect("sent");
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await.expect("read");
        let text = String::from_utf8_lossy(&answer).to_string();
        let status = text[9..12].parse().expect("status");
        let body_at = text.find("\r\n\r\n").expect("headers end") + 4;
        (status, answer[body_at..].to_vec())
    }
}
