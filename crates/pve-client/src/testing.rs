//! Test support: a tiny HTTP/1.1 server on loopback that records requests and returns canned
//! responses, with arbitrary reason phrases (as PVE < 8.3 sends its errors). Optional TLS.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::client::RetryPolicy;
use crate::config::{ApiToken, Credentials, PveConfig, TlsTrust};
use crate::secret::Secret;

/// A request as the server saw it.
#[derive(Debug, Clone)]
pub(crate) struct Recorded {
    pub method: String,
    pub path: String,
    pub query: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Form parameters from the body (POST/PUT) or the query string.
    pub fn params(&self) -> HashMap<String, String> {
        let src = if self.body.is_empty() {
            &self.query
        } else {
            &self.body
        };
        form_urlencoded::parse(src.as_bytes())
            .into_owned()
            .collect()
    }
}

/// What the server answers.
#[derive(Debug, Clone)]
pub(crate) struct Canned {
    pub status: u16,
    pub reason: String,
    pub body: String,
}

impl Canned {
    pub fn data(data: serde_json::Value) -> Self {
        Self {
            status: 200,
            reason: "OK".into(),
            body: serde_json::json!({ "data": data }).to_string(),
        }
    }

    pub fn raw(status: u16, reason: &str, body: &str) -> Self {
        Self {
            status,
            reason: reason.into(),
            body: body.into(),
        }
    }
}

/// A config for `url` (public roots, as a loopback server without TLS needs none) that
/// authenticates with the API token `token_id` and its `secret`.
pub(crate) fn token_config(url: &str, token_id: &str, secret: &str) -> PveConfig {
    PveConfig {
        url: url.to_owned(),
        credentials: Credentials::Token(ApiToken {
            token_id: token_id.into(),
            secret: Secret::new(secret),
        }),
        tls: TlsTrust::PublicRoots,
    }
}

/// A config for `url` (public roots) that logs in as `userid` with `password`.
pub(crate) fn password_config(url: &str, userid: &str, password: &str) -> PveConfig {
    PveConfig {
        url: url.to_owned(),
        credentials: Credentials::Password {
            userid: userid.into(),
            password: Secret::new(password),
        },
        tls: TlsTrust::PublicRoots,
    }
}

/// `max_attempts` attempts whose backoff starts at 1 ms and stops at `max_backoff_ms`: retries
/// against a loopback server that take no noticeable time.
pub(crate) fn quick_retries(max_attempts: u32, max_backoff_ms: u64) -> RetryPolicy {
    RetryPolicy {
        max_attempts,
        initial_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(max_backoff_ms),
    }
}

type Handler = Arc<dyn Fn(&Recorded) -> Canned + Send + Sync>;

/// Holds responses back: each request is announced on `arrivals` and answered only after the
/// test adds a permit to `release`; `in_flight`/`max_in_flight` count requests awaiting an answer.
#[derive(Clone)]
pub(crate) struct Gate {
    pub arrivals: tokio::sync::mpsc::UnboundedSender<()>,
    pub release: Arc<tokio::sync::Semaphore>,
    pub in_flight: Arc<std::sync::atomic::AtomicUsize>,
    pub max_in_flight: Arc<std::sync::atomic::AtomicUsize>,
}

impl Gate {
    /// A closed gate (no permits yet) and the receiver of its arrival announcements.
    pub fn new() -> (Self, tokio::sync::mpsc::UnboundedReceiver<()>) {
        let (arrivals, rx) = tokio::sync::mpsc::unbounded_channel();
        let gate = Self {
            arrivals,
            release: Arc::new(tokio::sync::Semaphore::new(0)),
            in_flight: Arc::new(std::sync::atomic::AtomicUsize::new(0)),
            max_in_flight: Arc::new(std::sync::atomic::AtomicUsize::new(0)),
        };
        (gate, rx)
    }
}

pub(crate) struct MockServer {
    pub url: String,
    requests: Arc<Mutex<Vec<Recorded>>>,
    connections: Arc<std::sync::atomic::AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for MockServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl MockServer {
    pub async fn start(handler: impl Fn(&Recorded) -> Canned + Send + Sync + 'static) -> Self {
        Self::start_inner(Arc::new(handler), None, None).await
    }

    pub async fn start_gated(
        handler: impl Fn(&Recorded) -> Canned + Send + Sync + 'static,
        gate: Gate,
    ) -> Self {
        Self::start_inner(Arc::new(handler), None, Some(gate)).await
    }

    pub async fn start_tls(
        handler: impl Fn(&Recorded) -> Canned + Send + Sync + 'static,
        acceptor: tokio_rustls::TlsAcceptor,
    ) -> Self {
        Self::start_inner(Arc::new(handler), Some(acceptor), None).await
    }

    async fn start_inner(
        handler: Handler,
        tls: Option<tokio_rustls::TlsAcceptor>,
        gate: Option<Gate>,
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let scheme = if tls.is_some() { "https" } else { "http" };
        let host = if tls.is_some() {
            "localhost"
        } else {
            "127.0.0.1"
        };
        let requests = Arc::new(Mutex::new(Vec::new()));
        let recorded = requests.clone();
        let connections = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let accepted = connections.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                accepted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let handler = handler.clone();
                let recorded = recorded.clone();
                let tls = tls.clone();
                let gate = gate.clone();
                tokio::spawn(async move {
                    match tls {
                        Some(acceptor) => {
                            if let Ok(s) = acceptor.accept(stream).await {
                                serve(s, handler, recorded, gate).await;
                            }
                        }
                        None => serve(stream, handler, recorded, gate).await,
                    }
                });
            }
        });
        Self {
            url: format!("{scheme}://{host}:{}/api2/json", addr.port()),
            requests,
            connections,
            task,
        }
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }

    /// TCP connections accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.load(std::sync::atomic::Ordering::SeqCst)
    }

    pub fn count(&self, method: &str, path: &str) -> usize {
        self.requests()
            .iter()
            .filter(|r| r.method == method && r.path == path)
            .count()
    }
}

/// Serves requests on one connection until the peer closes it (keep-alive supported).
async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
    mut s: S,
    handler: Handler,
    recorded: Arc<Mutex<Vec<Recorded>>>,
    gate: Option<Gate>,
) {
    let mut buf = Vec::new();
    loop {
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i;
            }
            let mut chunk = [0u8; 4096];
            match s.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        let mut lines = head.split("\r\n");
        let request_line = lines.next().unwrap_or_default().to_owned();
        let mut parts = request_line.split(' ');
        let method = parts.next().unwrap_or_default().to_owned();
        let target = parts.next().unwrap_or_default().to_owned();
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
            .collect();
        let len: usize = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        let body_start = head_end + 4;
        while buf.len() < body_start + len {
            let mut chunk = [0u8; 4096];
            match s.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        let body = String::from_utf8_lossy(&buf[body_start..body_start + len]).into_owned();
        buf.drain(..body_start + len);
        let (path, query) = match target.split_once('?') {
            Some((p, q)) => (p.to_owned(), q.to_owned()),
            None => (target.clone(), String::new()),
        };
        let path = path.strip_prefix("/api2/json").unwrap_or(&path).to_owned();
        let req = Recorded {
            method,
            path,
            query,
            headers,
            body,
        };
        recorded.lock().unwrap().push(req.clone());
        let canned = handler(&req);
        if let Some(g) = &gate {
            use std::sync::atomic::Ordering;
            let now = g.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            g.max_in_flight.fetch_max(now, Ordering::SeqCst);
            let _ = g.arrivals.send(());
            match g.release.acquire().await {
                Ok(permit) => permit.forget(),
                Err(_) => return,
            }
            g.in_flight.fetch_sub(1, Ordering::SeqCst);
        }
        let close = canned.status >= 400;
        let mut out = format!(
            "HTTP/1.1 {} {}\r\nServer: pve-api-daemon/3.0\r\nContent-Length: {}\r\n",
            canned.status,
            canned.reason,
            canned.body.len()
        );
        if !canned.body.is_empty() {
            out.push_str("Content-Type: application/json;charset=UTF-8\r\n");
        }
        if close {
            out.push_str("Connection: close\r\n");
        }
        out.push_str("\r\n");
        out.push_str(&canned.body);
        if s.write_all(out.as_bytes()).await.is_err() {
            return;
        }
        let _ = s.flush().await;
        if close {
            let _ = s.shutdown().await;
            return;
        }
    }
}
