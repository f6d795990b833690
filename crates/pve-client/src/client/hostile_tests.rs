//! A hostile or broken endpoint cannot make the client buffer without bound: every body is read
//! up to a limit (generous for successes, small for errors) and refused past it, unread.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::*;
use crate::error::ErrorKind;
use crate::request::Params;
use crate::testing;

/// What the hostile server sends after the status line.
#[derive(Debug, Clone, Copy)]
enum Body {
    /// Chunked, endless (until the peer goes away).
    Endless,
    /// Announces this length, then sends that many bytes.
    Sized(u64),
}

/// A server answering every request with `status` and `body`; counts the body bytes it wrote.
async fn hostile(status: u16, body: Body) -> (String, Arc<AtomicU64>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://127.0.0.1:{}/api2/json",
        listener.local_addr().unwrap().port()
    );
    let written = Arc::new(AtomicU64::new(0));
    let counter = written.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let counter = counter.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let framing = match body {
                    Body::Endless => "Transfer-Encoding: chunked".to_owned(),
                    Body::Sized(n) => format!("Content-Length: {n}"),
                };
                let start = format!(
                    "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n{framing}\r\n\r\n"
                );
                if s.write_all(start.as_bytes()).await.is_err() {
                    return;
                }
                // `{"data":[` then endless `{"x":1},` items: valid JSON so far, never ending.
                let item =
                    b"{\"x\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"},";
                let chunk: Vec<u8> = item.iter().copied().cycle().take(64 * 1024).collect();
                let mut first = b"{\"data\":[".to_vec();
                first.extend_from_slice(&chunk[..chunk.len() - 9]);
                let mut left = match body {
                    Body::Endless => u64::MAX,
                    Body::Sized(n) => n,
                };
                let mut piece = first;
                while left > 0 {
                    let n = piece.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                    let data = &piece[..n];
                    let framed = match body {
                        Body::Endless => {
                            let mut f = format!("{:x}\r\n", data.len()).into_bytes();
                            f.extend_from_slice(data);
                            f.extend_from_slice(b"\r\n");
                            f
                        }
                        Body::Sized(_) => data.to_vec(),
                    };
                    if s.write_all(&framed).await.is_err() {
                        return;
                    }
                    counter.fetch_add(n as u64, Ordering::SeqCst);
                    left = left.saturating_sub(n as u64);
                    piece = chunk.clone();
                }
            });
        }
    });
    (url, written)
}

fn client(url: &str, max_response: usize, max_error: usize) -> PveClient {
    let config = testing::token_config(url, "omni@pve!tk", "5f2b1c3a-aaaa-bbbb-cccc-0123456789ab");
    let options = ClientOptions {
        timeout: Duration::from_secs(60),
        retry: RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        },
        max_response_bytes: max_response,
        max_error_body_bytes: max_error,
        ..ClientOptions::default()
    };
    PveClient::with_options(&config, options).unwrap()
}

fn resources() -> ApiRequest {
    ApiRequest::new(Method::Get, "/cluster/resources", &[], Params::new())
}

fn assert_too_large(r: Result<ApiResponse>, status: u16, limit: usize) {
    match r {
        Err(e @ PveError::ResponseTooLarge { .. }) => {
            let text = e.to_string();
            assert!(text.contains("GET /cluster/resources"), "{text}");
            assert!(text.contains(&format!("{limit} bytes")), "{text}");
            assert!(text.contains(&format!("HTTP {status}")), "{text}");
            assert_eq!(e.kind(), ErrorKind::ResponseTooLarge);
            assert!(!e.is_retryable(), "{text}");
        }
        other => panic!("expected ResponseTooLarge, got {other:?}"),
    }
}

/// A 200 with `body` meets a 1 MiB response limit: refused as too large, and the client stopped
/// reading long before the server could stop writing.
async fn expect_refused_at_one_mib(body: Body) {
    let (url, written) = hostile(200, body).await;
    let limit = 1 << 20;
    let r = client(&url, limit, 4096).execute(&resources()).await;
    assert_too_large(r, 200, limit);
    // The server could write on forever; the client stopped reading after ~1 MiB (what the
    // server got rid of beyond that sits in socket buffers, a few MiB at most).
    let sent = written.load(Ordering::SeqCst);
    assert!(sent < 64 << 20, "{body:?}: the server wrote {sent} bytes");
}

#[tokio::test]
async fn an_endless_success_body_is_refused_at_the_limit_without_reading_it_all() {
    expect_refused_at_one_mib(Body::Endless).await;
}

#[tokio::test]
async fn an_announced_oversized_body_is_refused_before_reading() {
    expect_refused_at_one_mib(Body::Sized(10 << 30)).await;
}

#[tokio::test]
async fn an_endless_error_body_is_refused_at_the_small_error_limit() {
    let (url, _) = hostile(500, Body::Endless).await;
    let r = client(&url, 32 << 20, 4096).execute(&resources()).await;
    assert_too_large(r, 500, 4096);
}

#[tokio::test]
async fn bodies_within_the_limits_are_read() {
    // The same server shape, with a body that fits: not refused (it is not valid JSON, as it is
    // cut mid-list, so decoding fails instead).
    let (url, _) = hostile(200, Body::Sized(200_000)).await;
    match client(&url, 1 << 20, 4096).execute(&resources()).await {
        Err(PveError::Decode { .. }) => {}
        other => panic!("expected a decode error of a fully read body, got {other:?}"),
    }
}

#[test]
fn the_default_limits_fit_a_10000_vm_cluster_and_small_error_bodies() {
    let options = ClientOptions::default();
    // One /cluster/resources entry of a VM is about 400 bytes of JSON.
    assert!(options.max_response_bytes >= 10_000 * 400 * 4);
    assert!(options.max_error_body_bytes <= 1 << 20);
    assert!(options.max_error_body_bytes >= 16 << 10);
}
